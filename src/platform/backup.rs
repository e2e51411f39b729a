//! `fengqiao backup` and `fengqiao restore`: a consistent copy of the
//! database taken while the server writes, and its way back.
//!
//! A backup is a directory, written under a hidden temporary name beside
//! its final one, synced, and renamed into place last: a directory with
//! the final name is always complete. It holds
//!
//! ```text
//! FILE/
//!   database.sqlite   SQLite: the database as one file (no log beside it)
//!   database.pgdump   PostgreSQL: `pg_dump --format=custom`
//!   manifest.json     what the backup is and how to check it (`Manifest`)
//! ```
//!
//! The manifest names the data file with its size and SHA-256, every
//! table's row count and digest as of the snapshot, the key ring's
//! fingerprints, and the attachments (path, size, SHA-256). It never holds
//! key material: the key file is backed up separately, and a restore
//! checks the key file it finds against the fingerprints. Attachments are
//! listed, not copied (they are content-addressed files; copy
//! `<data dir>/attachments/` with any file tool); a restore says which of
//! them are missing or differ in the target data directory.
//!
//! What to do with the audit chain's anchor after a restore is the app's
//! business (see `cli::restore_backup`): this module only moves data.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::Stdio,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::platform::{
    crypto::{Crypto, Field},
    db::{now_ms, Db, DbUrl},
};

/// The manifest's format tag; a restore refuses any other.
pub const FORMAT: &str = "fengqiao-backup-1";
pub const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "database.sqlite";
const PG_FILE: &str = "database.pgdump";
/// What a key's fingerprint is a MAC of, under that key.
const FINGERPRINT_TAG: &[u8] = b"fengqiao key fingerprint v1";
/// The blind-index key's fingerprint: its index of this fixed value.
const INDEX_FINGERPRINT_FIELD: Field = Field("backup.key_fingerprint");

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// When the snapshot was taken, UTC epoch milliseconds.
    pub created_at: i64,
    pub fengqiao_version: String,
    /// `sqlite` or `postgres`; a backup restores into the same backend.
    pub backend: String,
    pub data_file: String,
    pub data_bytes: u64,
    pub data_sha256: String,
    pub keys: KeyFingerprints,
    /// Per table of the snapshot, its rows and a digest of them.
    pub tables: BTreeMap<String, TableDigest>,
    pub attachments: Vec<AttachmentFile>,
}

/// Which key ring the data was written with, without the keys: per key
/// id, HMAC-SM3 of a fixed text under that key's MAC key; and the blind
/// index key's index of a fixed value. Neither reveals anything about a
/// key, and both change with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFingerprints {
    pub keys: BTreeMap<String, String>,
    pub index_key: String,
}

impl KeyFingerprints {
    pub fn of(crypto: &Crypto) -> anyhow::Result<KeyFingerprints> {
        let keys = crypto
            .key_ids()
            .into_iter()
            .map(|id| Ok((id.clone(), crypto.mac(&id, FINGERPRINT_TAG)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(KeyFingerprints { keys, index_key: crypto.blind_index(INDEX_FINGERPRINT_FIELD, "fingerprint") })
    }

    /// What `present` lacks to read data written under `self`: every key
    /// of the backup's ring must be there unchanged (a ring rotated since
    /// has more keys, which is fine), and the same blind-index key.
    pub fn missing_from(&self, present: &KeyFingerprints) -> Vec<String> {
        let mut missing: Vec<String> = self
            .keys
            .iter()
            .filter(|(id, print)| present.keys.get(*id) != Some(*print))
            .map(|(id, _)| id.clone())
            .collect();
        if self.index_key != present.index_key {
            missing.push("index_key".into());
        }
        missing
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    pub rows: i64,
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentFile {
    /// Relative to `<data dir>/attachments/`.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Where the key ring comes from must already exist: `Crypto::from_env`
/// makes a fresh key file when there is none, and a fingerprint of keys
/// made a moment ago would vouch for nothing.
fn open_keys(data_dir: &Path) -> anyhow::Result<Crypto> {
    let from_env = std::env::var("FENGQIAO_KEYS").is_ok_and(|k| !k.trim().is_empty());
    if !from_env {
        let file =
            std::env::var_os("FENGQIAO_KEY_FILE").map(PathBuf::from).unwrap_or_else(|| data_dir.join("keys.json"));
        if !file.exists() {
            anyhow::bail!(
                "找不到密钥文件 {}：请用 --data-dir 或 FENGQIAO_KEY_FILE 指明数据所用的密钥文件。\
                 (Key file {} not found: name the key file of this data with --data-dir or FENGQIAO_KEY_FILE.)",
                file.display(),
                file.display()
            );
        }
    }
    Ok(Crypto::from_env(data_dir)?)
}

/// What `backup` made.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub elapsed: std::time::Duration,
}

impl std::fmt::Display for BackupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        let rows: i64 = m.tables.values().map(|t| t.rows).sum();
        write!(
            f,
            "备份完成：{}（{}，{} 张表 {} 行，数据文件 {:.1} MB，附件清单 {} 个文件），用时 {:.1} 秒。\
             密钥文件不在备份中，请另行备份。",
            self.path.display(),
            m.backend,
            m.tables.len(),
            rows,
            m.data_bytes as f64 / 1_048_576.0,
            m.attachments.len(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Backs up the database at `url` (and lists the attachments under
/// `data_dir`) into a new directory `dest`, while a server may be writing.
pub async fn backup(url: &DbUrl, data_dir: &Path, dest: &Path) -> anyhow::Result<BackupReport> {
    let started = std::time::Instant::now();
    if dest.exists() {
        anyhow::bail!("{} 已存在；备份不会覆盖已有的文件或目录，请换一个名字。", dest.display());
    }
    let name = dest.file_name().ok_or_else(|| anyhow::anyhow!("{} 不是可用的备份名", dest.display()))?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        anyhow::bail!("备份所在目录 {} 不存在", parent.display());
    }
    let crypto = open_keys(data_dir)?;
    let keys = KeyFingerprints::of(&crypto)?;
    // Hidden and marked partial: never mistaken for a finished backup.
    let tmp = parent.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    // Owner only: the data is personal even where it is not encrypted.
    let mut dir = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(&tmp).map_err(|e| anyhow::anyhow!("无法创建 {}：{e}", tmp.display()))?;
    let result = async {
        let (data_file, tables, created_at) = match url {
            DbUrl::Sqlite { path } => {
                let (src, out) = (path.clone(), tmp.join(SQLITE_FILE));
                let (tables, at) = tokio::task::spawn_blocking(move || sqlite_snapshot(&src, &out)).await??;
                (SQLITE_FILE, tables, at)
            }
            DbUrl::Postgres { url } => {
                let (tables, at) = pg_snapshot(url, &tmp.join(PG_FILE)).await?;
                (PG_FILE, tables, at)
            }
        };
        let data_path = tmp.join(data_file);
        let attachments_root = data_dir.join(super::ATTACHMENTS_DIR);
        let (data, attachments) = tokio::task::spawn_blocking(move || {
            anyhow::Ok((file_sha256(&data_path)?, list_attachments(&attachments_root)?))
        })
        .await??;
        let manifest = Manifest {
            format: FORMAT.into(),
            created_at,
            fengqiao_version: env!("CARGO_PKG_VERSION").into(),
            backend: url.backend().name().into(),
            data_file: data_file.into(),
            data_bytes: data.0,
            data_sha256: data.1,
            keys,
            tables,
            attachments,
        };
        write_synced(&tmp.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
        sync_dir(&tmp)?;
        std::fs::rename(&tmp, dest).map_err(|e| anyhow::anyhow!("无法将备份改名为 {}：{e}", dest.display()))?;
        sync_dir(&parent)?;
        anyhow::Ok(manifest)
    }
    .await;
    match result {
        Ok(manifest) => {
            tracing::info!(path = %dest.display(), backend = %manifest.backend, bytes = manifest.data_bytes, "backup written");
            Ok(BackupReport { path: dest.to_path_buf(), manifest, elapsed: started.elapsed() })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Copies a live SQLite database into `out` and digests the copy.
///
/// SQLite's online backup API, in a single step (`step(-1)`): the step
/// reads every page inside one read transaction, and in WAL mode a reader
/// sees one snapshot and never blocks the writer, so the copy is the
/// database as of one commit while the server's group-commit writer goes
/// on committing (its log merely grows until the copy ends). The usual
/// incremental form (a few pages per step with pauses) starts over
/// whenever another connection writes, which under steady load it never
/// finishes. `VACUUM INTO` would be as consistent, but rebuilds every
/// table and index row by row instead of copying pages, which costs the
/// shared CPU more for the same snapshot.
fn sqlite_snapshot(src: &Path, out: &Path) -> anyhow::Result<(BTreeMap<String, TableDigest>, i64)> {
    if !src.is_file() {
        anyhow::bail!("SQLite 数据库 {} 不存在", src.display());
    }
    // Read-write without create, like the server's own check: a read-only
    // connection cannot take part in the log's shared memory if it is gone.
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let source = rusqlite::Connection::open_with_flags(src, flags)?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut copy = rusqlite::Connection::open(out)?;
    let created_at;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                // Busy or locked: the checkpoint thread holds the file for a
                // moment; anything else finishing early is a bug.
                other if tries < 100 => {
                    tracing::debug!(?other, "backup step waits");
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => anyhow::bail!("SQLite 备份未能完成：{other:?}"),
            }
        }
        created_at = now_ms();
    }
    drop(source);
    // The copy carries the source's WAL flag; as one self-contained file it
    // must not need a log beside it.
    copy.execute_batch("pragma journal_mode = delete")?;
    let tables = sqlite_digests(&copy)?;
    drop(copy);
    std::fs::File::open(out)?.sync_all()?;
    Ok((tables, created_at))
}

/// Every table's rows and digest on SQLite: SHA-256 over the sorted
/// SHA-256 of each row, each value hashed with its storage class, so the
/// digest depends on the rows and not on their order on disk.
pub fn sqlite_digests(conn: &rusqlite::Connection) -> anyhow::Result<BTreeMap<String, TableDigest>> {
    let names: Vec<String> = conn
        .prepare("select name from sqlite_schema where type = 'table' and name not like 'sqlite_%' order by name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = BTreeMap::new();
    for name in names {
        let mut stmt = conn.prepare(&format!("select * from \"{}\"", name.replace('"', "\"\"")))?;
        let n = stmt.column_count();
        let mut rows = stmt.query([])?;
        let mut hashes: Vec<[u8; 32]> = vec![];
        while let Some(row) = rows.next()? {
            let mut h = Sha256::new();
            for i in 0..n {
                use rusqlite::types::ValueRef;
                match row.get_ref(i)? {
                    ValueRef::Null => h.update([0]),
                    ValueRef::Integer(v) => {
                        h.update([1]);
                        h.update(v.to_le_bytes());
                    }
                    ValueRef::Real(v) => {
                        h.update([2]);
                        h.update(v.to_bits().to_le_bytes());
                    }
                    ValueRef::Text(b) => {
                        h.update([3]);
                        h.update((b.len() as u64).to_le_bytes());
                        h.update(b);
                    }
                    ValueRef::Blob(b) => {
                        h.update([4]);
                        h.update((b.len() as u64).to_le_bytes());
                        h.update(b);
                    }
                }
            }
            hashes.push(h.finalize().into());
        }
        out.insert(name, digest_of(hashes));
    }
    Ok(out)
}

fn digest_of(mut hashes: Vec<[u8; 32]>) -> TableDigest {
    hashes.sort_unstable();
    let mut h = Sha256::new();
    for r in &hashes {
        h.update(r);
    }
    TableDigest { rows: hashes.len() as i64, digest: hex::encode(h.finalize()) }
}

/// Every table's rows and digest on PostgreSQL (tables of the current
/// schema): the SQL counterpart of `sqlite_digests`, an MD5 over the sorted
/// MD5 of each row's text form. Only ever compared with digests of the
/// same backend.
pub async fn pg_digests(conn: &mut sqlx::AnyConnection) -> anyhow::Result<BTreeMap<String, TableDigest>> {
    let names: Vec<String> = sqlx::query(
        "select table_name::text from information_schema.tables \
         where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    let mut out = BTreeMap::new();
    for name in names {
        let q = format!(
            "select count(*)::bigint, coalesce(md5(string_agg(h, '' order by h)), '') \
             from (select md5(t::text) as h from \"{}\" t) r",
            name.replace('"', "\"\"")
        );
        let row = sqlx::query(&q).fetch_one(&mut *conn).await?;
        out.insert(name, TableDigest { rows: row.try_get(0)?, digest: row.try_get(1)? });
    }
    Ok(out)
}

/// Digests of whichever database `db` is (for tests and checks).
pub async fn digests(db: &Db) -> anyhow::Result<BTreeMap<String, TableDigest>> {
    match db.read_direct(|conn| sqlite_digests(conn).map_err(Into::into)) {
        Some(r) => Ok(r?),
        None => pg_digests(&mut *db.pool.acquire().await?).await,
    }
}

/// A program the PostgreSQL side needs: `env` names it, else the PATH.
fn pg_tool(tool: &str, env: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            anyhow::bail!(
                "{env} 指向的 {} 不存在。({env} points to {}, which does not exist.)",
                p.display(),
                p.display()
            );
        }
        return Ok(p);
    }
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file()))
        .unwrap_or_default();
    found.ok_or_else(|| {
        anyhow::anyhow!(
            "找不到 {tool}：PostgreSQL 的备份与恢复需要它。请安装 PostgreSQL 客户端（版本不低于服务器），\
             或用 {env} 指明其路径。({tool} not found: install the PostgreSQL client tools, at least the \
             server's version, or set {env}.)"
        )
    })
}

/// The URL as libpq reads it: sqlx's own parameters (with a `-` in their
/// names, which no libpq parameter has) are dropped.
fn libpq_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else { return url.to_string() };
    let kept: Vec<(String, String)> =
        u.query_pairs().filter(|(k, _)| !k.contains('-')).map(|(k, v)| (k.into(), v.into())).collect();
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    u.to_string()
}

async fn pg_connect(url: &str) -> anyhow::Result<sqlx::AnyConnection> {
    sqlx::any::install_default_drivers();
    let sep = if url.contains('?') { '&' } else { '?' };
    let conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{url}{sep}statement-cache-capacity=0"))
        .await
        .map_err(|e| anyhow::anyhow!("无法连接 PostgreSQL 数据库 {}：{e}", DbUrl::Postgres { url: url.into() }))?;
    Ok(conn)
}

/// Dumps the database with `pg_dump` and digests its tables, both in one
/// snapshot: a repeatable-read transaction exports its snapshot, the
/// digests are read in it, and `pg_dump --snapshot` dumps exactly it.
async fn pg_snapshot(url: &str, out: &Path) -> anyhow::Result<(BTreeMap<String, TableDigest>, i64)> {
    let pg_dump = pg_tool("pg_dump", "FENGQIAO_PG_DUMP")?;
    let mut conn = pg_connect(url).await?;
    sqlx::raw_sql("begin transaction isolation level repeatable read, read only").execute(&mut conn).await?;
    let snapshot: String = sqlx::query("select pg_export_snapshot()").fetch_one(&mut conn).await?.try_get(0)?;
    let created_at = now_ms();
    let tables = pg_digests(&mut conn).await?;
    let dumped = tokio::process::Command::new(&pg_dump)
        .arg("--format=custom")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(out)
        .arg(format!("--dbname={}", libpq_url(url)))
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("无法运行 {}：{e}", pg_dump.display()))?;
    sqlx::raw_sql("commit").execute(&mut conn).await?;
    if !dumped.status.success() {
        anyhow::bail!("pg_dump 失败（{}）：{}", dumped.status, String::from_utf8_lossy(&dumped.stderr).trim());
    }
    std::fs::File::open(out)?.sync_all()?;
    Ok((tables, created_at))
}

fn file_sha256(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("无法读取 {}：{e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((total, hex::encode(h.finalize())))
}

/// The attachment files under `root`, sorted by path; none if there is no
/// such directory. Temporary files of unfinished writes (hidden) are not
/// attachments.
fn list_attachments(root: &Path) -> anyhow::Result<Vec<AttachmentFile>> {
    let mut out = vec![];
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(anyhow::anyhow!("无法读取附件目录 {}：{e}", dir.display())),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            } else {
                let (bytes, sha256) = file_sha256(&path)?;
                let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.push(AttachmentFile { path: rel, bytes, sha256 });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| anyhow::anyhow!("无法写入 {}：{e}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Reads a finished backup's manifest and checks its data file.
pub fn read_backup(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{} 不是完整的备份（缺少 {MANIFEST}：{e}）。({} is not a complete backup.)",
            dir.display(),
            dir.display()
        )
    })?;
    let m: Manifest =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("备份清单 {} 无法读取：{e}", path.display()))?;
    if m.format != FORMAT {
        anyhow::bail!("备份格式 {} 无法识别（应为 {FORMAT}）", m.format);
    }
    if m.data_file != SQLITE_FILE && m.data_file != PG_FILE {
        anyhow::bail!("备份清单中的数据文件名 {} 无法识别", m.data_file);
    }
    let (bytes, sha) = file_sha256(&dir.join(&m.data_file))?;
    if bytes != m.data_bytes || sha != m.data_sha256 {
        anyhow::bail!(
            "备份数据文件 {} 与清单不符（已损坏或被改动），拒绝恢复。(The backup's data file does not match its manifest.)",
            dir.join(&m.data_file).display()
        );
    }
    Ok(m)
}

/// What `restore` did.
#[derive(Debug)]
pub struct RestoreReport {
    pub manifest: Manifest,
    /// Attachments of the manifest missing from the target data directory,
    /// or there with other content.
    pub attachments_missing: Vec<String>,
}

impl std::fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        let rows: i64 = m.tables.values().map(|t| t.rows).sum();
        let at = chrono::DateTime::from_timestamp_millis(m.created_at).map(|t| t.to_rfc3339()).unwrap_or_default();
        write!(f, "已从 {at} 的备份恢复 {} 张表 {} 行，逐表核对与备份一致。", m.tables.len(), rows)?;
        if !self.attachments_missing.is_empty() {
            write!(
                f,
                "\n注意：备份清单中的 {} 个附件文件在数据目录中缺失或内容不符（如 {}）；请从附件备份恢复 attachments 目录。",
                self.attachments_missing.len(),
                self.attachments_missing.iter().take(3).cloned().collect::<Vec<_>>().join("、")
            )?;
        }
        Ok(())
    }
}

/// Restores the backup in `dir` into the database at `url`, which no
/// server may be using. The key ring found for `data_dir` must be the one
/// the backup was made with. On PostgreSQL a database that already has
/// tables is overwritten only with `force`.
pub async fn restore(url: &DbUrl, data_dir: &Path, dir: &Path, force: bool) -> anyhow::Result<RestoreReport> {
    let manifest = read_backup(dir)?;
    if manifest.backend != url.backend().name() {
        anyhow::bail!(
            "这是 {} 的备份，不能恢复到 {} 数据库。(A {} backup cannot be restored into {}.)",
            manifest.backend,
            url.backend().name(),
            manifest.backend,
            url.backend().name()
        );
    }
    let crypto = open_keys(data_dir)?;
    let missing = manifest.keys.missing_from(&KeyFingerprints::of(&crypto)?);
    if !missing.is_empty() {
        anyhow::bail!(
            "密钥文件与备份不匹配（{} 的指纹不同或缺失），拒绝恢复：用这把密钥无法读取备份中的加密数据，也无法校验审计日志。\
             请使用做备份时的密钥文件（FENGQIAO_KEY_FILE 或 数据目录/keys.json）。\
             (The key file does not match the backup (fingerprint of {} differs or is missing); refusing to restore. \
             Use the key file the backup was made with.)",
            missing.join("、"),
            missing.join(", ")
        );
    }
    let data = dir.join(&manifest.data_file);
    let restored = match url {
        DbUrl::Sqlite { path } => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || sqlite_restore(&data, &path)).await??
        }
        DbUrl::Postgres { url } => pg_restore(url, &data, force).await?,
    };
    if restored != manifest.tables {
        let differ: std::collections::BTreeSet<&str> = manifest
            .tables
            .keys()
            .chain(restored.keys())
            .filter(|name| restored.get(*name) != manifest.tables.get(*name))
            .map(String::as_str)
            .collect();
        anyhow::bail!(
            "恢复后的数据与备份清单不一致（表 {}）；请勿使用此数据库，并检查备份。\
             (The restored data does not match the backup's manifest.)",
            differ.into_iter().collect::<Vec<_>>().join("、")
        );
    }
    let root = data_dir.join(super::ATTACHMENTS_DIR);
    let expected = manifest.attachments.clone();
    let attachments_missing = tokio::task::spawn_blocking(move || {
        expected
            .into_iter()
            .filter(|a| !file_sha256(&root.join(&a.path)).is_ok_and(|(bytes, sha)| bytes == a.bytes && sha == a.sha256))
            .map(|a| a.path)
            .collect::<Vec<_>>()
    })
    .await?;
    tracing::warn!(backup = %dir.display(), created_at = manifest.created_at, "database restored from a backup");
    Ok(RestoreReport { manifest, attachments_missing })
}

/// Copies the backup's pages into the target through SQLite's own locks:
/// the target is taken out of WAL mode first (which fails at once while a
/// server or any other program holds it), held with an exclusive lock for
/// the whole copy, and the copy commits as one transaction under a
/// rollback journal, so a crash midway leaves the old database, not half
/// of each. Answers the digests of what it restored.
fn sqlite_restore(data: &Path, target: &Path) -> anyhow::Result<BTreeMap<String, TableDigest>> {
    match target.parent() {
        Some(d) if !d.as_os_str().is_empty() && !d.is_dir() => {
            anyhow::bail!("目标数据库所在目录 {} 不存在", d.display())
        }
        _ => {}
    }
    let in_use = |e: &rusqlite::Error| {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if !busy {
            return anyhow::anyhow!("无法打开目标数据库 {}：{e}", target.display());
        }
        anyhow::anyhow!(
            "目标数据库 {} 正在被使用（服务仍在运行？），拒绝覆盖；请先停止服务。\
             (The target database {} is in use — is the server running? Refusing to overwrite it; stop the server first.) {e}",
            target.display(),
            target.display()
        )
    };
    let mut dst = crate::platform::db::open_sqlite_alone(target).map_err(|e| in_use(&e))?;
    dst.execute_batch("pragma locking_mode = exclusive; begin exclusive; commit").map_err(|e| in_use(&e))?;
    let src = rusqlite::Connection::open_with_flags(data, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => {}
            other => anyhow::bail!("SQLite 恢复未能完成：{other:?}"),
        }
    }
    // The copy came out of rollback mode; the server runs the log.
    dst.execute_batch("pragma journal_mode = wal")?;
    let digests = sqlite_digests(&dst)?;
    drop(dst);
    Ok(digests)
}

/// `pg_restore` into a database no one else is connected to; one with
/// tables only with `force` (then the backup's objects replace theirs).
async fn pg_restore(url: &str, data: &Path, force: bool) -> anyhow::Result<BTreeMap<String, TableDigest>> {
    let pg_restore = pg_tool("pg_restore", "FENGQIAO_PG_RESTORE")?;
    let shown = DbUrl::Postgres { url: url.into() }.to_string();
    let mut conn = pg_connect(url).await?;
    let others = sqlx::query(
        "select count(*)::bigint, coalesce(string_agg(distinct coalesce(nullif(application_name, ''), '?') || '@' \
         || coalesce(client_addr::text, 'local'), ', '), '') from pg_stat_activity \
         where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'",
    )
    .fetch_one(&mut conn)
    .await?;
    let (count, who): (i64, String) = (others.try_get(0)?, others.try_get(1)?);
    if count > 0 {
        anyhow::bail!(
            "目标数据库 {shown} 正在被使用（{count} 个连接：{who}；服务仍在运行？），拒绝覆盖；请先停止服务。\
             (The target database is in use by {count} connection(s); refusing to overwrite it. Stop the server first.)"
        );
    }
    let tables: Vec<String> = sqlx::query(
        "select table_schema::text || '.' || table_name::text from information_schema.tables \
         where table_schema not in ('pg_catalog', 'information_schema') order by 1 limit 5",
    )
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    if !tables.is_empty() && !force {
        anyhow::bail!(
            "目标数据库 {shown} 不是空的（已有表：{} 等），拒绝覆盖；确要用备份替换其中的数据，请加 --force。\
             (The target database is not empty; refusing to overwrite it without --force.)",
            tables.join("、")
        );
    }
    let mut cmd = tokio::process::Command::new(&pg_restore);
    cmd.args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]);
    if !tables.is_empty() {
        cmd.args(["--clean", "--if-exists"]);
    }
    let out = cmd
        .arg(format!("--dbname={}", libpq_url(url)))
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("无法运行 {}：{e}", pg_restore.display()))?;
    if !out.status.success() {
        anyhow::bail!("pg_restore 失败（{}）：{}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    pg_digests(&mut conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_name_the_keys_without_giving_them_away() {
        let ring = crate::platform::crypto::KeyRing::generate();
        let crypto = Crypto::in_memory(ring.clone()).unwrap();
        let prints = KeyFingerprints::of(&crypto).unwrap();
        let json = serde_json::to_string(&prints).unwrap();
        for key in ring.keys.values().chain([&ring.index_key]) {
            assert!(!json.contains(key.as_str()), "a fingerprint holds key material");
        }
        assert!(prints.missing_from(&KeyFingerprints::of(&crypto).unwrap()).is_empty());
        // A rotated ring still holds the backup's keys.
        let mut rotated = ring.clone();
        rotated.add_key();
        assert!(prints.missing_from(&KeyFingerprints::of(&Crypto::in_memory(rotated).unwrap()).unwrap()).is_empty());
        let other = KeyFingerprints::of(&Crypto::ephemeral()).unwrap();
        assert_eq!(prints.missing_from(&other), vec!["k1".to_string(), "index_key".to_string()]);
        let mut same_keys_other_index = ring;
        same_keys_other_index.index_key = "ab".repeat(32);
        let o = KeyFingerprints::of(&Crypto::in_memory(same_keys_other_index).unwrap()).unwrap();
        assert_eq!(prints.missing_from(&o), vec!["index_key".to_string()]);
    }

    /// A backup never overwrites, leaves nothing half-written under its
    /// name, and a changed data file is refused before anything is restored.
    #[tokio::test]
    async fn a_backup_is_complete_or_absent_and_checked_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("src.db");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("pragma journal_mode = wal; create table t (k integer primary key, v text); insert into t values (1, 'x');")
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let url: DbUrl = format!("sqlite://{}", db.display()).parse().unwrap();
        let dest = dir.path().join("b");
        let missing_keys = backup(&url, &data, &dest).await.unwrap_err().to_string();
        assert!(missing_keys.contains("找不到密钥文件"), "{missing_keys}");
        assert!(!data.join("keys.json").exists(), "a backup made up a key file");
        std::fs::write(
            data.join("keys.json"),
            serde_json::to_string(&crate::platform::crypto::KeyRing::generate()).unwrap(),
        )
        .unwrap();
        let report = backup(&url, &data, &dest).await.unwrap();
        assert_eq!(report.manifest.tables["t"].rows, 1);
        assert_eq!(read_backup(&dest).unwrap(), report.manifest);
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert!(backup(&url, &data, &dest).await.unwrap_err().to_string().contains("已存在"));

        let into_pg: DbUrl = "postgres://nobody@127.0.0.1:1/none".parse().unwrap();
        assert!(restore(&into_pg, &data, &dest, false).await.unwrap_err().to_string().contains("不能恢复到"));
        let file = dest.join(SQLITE_FILE);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        let target = dir.path().join("target.db");
        let err = restore(&format!("sqlite://{}", target.display()).parse().unwrap(), &data, &dest, false).await;
        assert!(err.unwrap_err().to_string().contains("与清单不符"));
        assert!(!target.exists());
    }

    #[test]
    fn sqlx_parameters_are_not_passed_to_libpq() {
        assert_eq!(
            libpq_url("postgres://u@h/db?statement-cache-capacity=0&sslmode=disable"),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(libpq_url("postgres://u@h/db?statement-cache-capacity=0"), "postgres://u@h/db");
    }

    #[test]
    fn digests_depend_on_rows_not_their_order() {
        let a = rusqlite::Connection::open_in_memory().unwrap();
        a.execute_batch("create table t (k integer primary key, v text); insert into t values (1, 'x'), (2, 'y');")
            .unwrap();
        let b = rusqlite::Connection::open_in_memory().unwrap();
        b.execute_batch("create table t (k integer primary key, v text); insert into t values (2, 'y'), (1, 'x');")
            .unwrap();
        assert_eq!(sqlite_digests(&a).unwrap(), sqlite_digests(&b).unwrap());
        b.execute_batch("update t set v = 'z' where k = 2").unwrap();
        assert_ne!(sqlite_digests(&a).unwrap(), sqlite_digests(&b).unwrap());
        // A number and its text are different values.
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("create table t (k integer primary key, v); insert into t values (1, 'x'), (2, 'y');").unwrap();
        assert_eq!(sqlite_digests(&a).unwrap(), sqlite_digests(&c).unwrap());
        c.execute_batch("update t set v = 5 where k = 2").unwrap();
        let d = rusqlite::Connection::open_in_memory().unwrap();
        d.execute_batch("create table t (k integer primary key, v); insert into t values (1, 'x'), (2, '5');").unwrap();
        assert_ne!(sqlite_digests(&c).unwrap(), sqlite_digests(&d).unwrap());
    }
}
