//! `fengqiao backup` while residents keep reporting, and `fengqiao restore`
//! into a fresh place, with the real binary on both backends: the restored
//! database holds exactly the backup's snapshot, its audit chain verifies,
//! and restore refuses a database in use, a key file that is not the
//! backup's, and (PostgreSQL) a database with tables unless forced.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use fengqiao::platform::backup::{self, TableDigest};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

use crate::{
    binary::{report, Server},
    helpers::{pg_base_url, Backend},
};

/// A database and its data directory (key file, attachments, anchor).
struct Place {
    url: String,
    data: PathBuf,
    sqlite: Option<PathBuf>,
    pg_database: Option<String>,
}

async fn connect(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap()
}

/// A fresh place: a new SQLite file in `dir`, or a new PostgreSQL
/// database (pg_dump dumps a whole database, so a schema per test would
/// not do); `None` when PostgreSQL is unreachable.
async fn place(backend: Backend, dir: &Path, name: &str) -> Option<Place> {
    let data = dir.join(format!("{name}-data"));
    std::fs::create_dir_all(&data).unwrap();
    match backend {
        Backend::Sqlite => {
            let file = dir.join(format!("{name}.db"));
            Some(Place { url: format!("sqlite://{}", file.display()), data, sqlite: Some(file), pg_database: None })
        }
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let admin =
                tokio::time::timeout(Duration::from_secs(5), sqlx::AnyConnection::connect(&pg_base_url())).await;
            let Ok(Ok(mut admin)) = admin else {
                eprintln!("\n!!! PostgreSQL SKIPPED: not reachable at {}\n", pg_base_url());
                return None;
            };
            let db = format!("fq_bk_{}", &fengqiao::platform::crypto::random_token()[..12].to_lowercase());
            let db: String = db.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            sqlx::raw_sql(&format!("create database {db}")).execute(&mut admin).await.unwrap();
            let mut url = url::Url::parse(&pg_base_url()).unwrap();
            url.set_path(&format!("/{db}"));
            Some(Place { url: url.to_string(), data, sqlite: None, pg_database: Some(db) })
        }
    }
}

async fn drop_databases(places: &[&Place]) {
    let mut admin = connect(&pg_base_url()).await;
    for db in places.iter().filter_map(|p| p.pg_database.as_ref()) {
        sqlx::raw_sql(&format!("drop database if exists {db} with (force)")).execute(&mut admin).await.unwrap();
    }
}

fn fengqiao() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fengqiao"));
    for var in ["FENGQIAO_DB", "FENGQIAO_KEYS", "FENGQIAO_KEY_FILE", "FENGQIAO_DATA_DIR", "FENGQIAO_SQLITE_SYNC"] {
        cmd.env_remove(var);
    }
    cmd.env("FENGQIAO_LOG", "warn").stdin(Stdio::null());
    cmd
}

/// Runs `fengqiao ARGS --db URL --data-dir DATA`; answers success and
/// what it printed (stdout and stderr).
async fn run(place: &Place, args: &[&str]) -> (bool, String) {
    let out =
        fengqiao().args(args).arg("--db").arg(&place.url).arg("--data-dir").arg(&place.data).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `fengqiao serve` on a place's database.
async fn serve(place: &Place) -> Server {
    let mut command = fengqiao();
    command.args(["serve", "--listen", "127.0.0.1:0", "--db", &place.url, "--data-dir"]).arg(&place.data);
    Server::spawn(command).await
}

/// The first column of a query's rows, as text. The connection is closed
/// before this returns, so that it never makes the database look in use.
async fn strings(place: &Place, sql: &str) -> Vec<String> {
    if let Some(file) = &place.sqlite {
        let conn = rusqlite::Connection::open(file).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        return stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    }
    let mut conn = connect(&place.url).await;
    let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

async fn digests(place: &Place) -> std::collections::BTreeMap<String, TableDigest> {
    match &place.sqlite {
        Some(file) => backup::sqlite_digests(&rusqlite::Connection::open(file).unwrap()).unwrap(),
        None => {
            let mut conn = connect(&place.url).await;
            let digests = backup::pg_digests(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            digests
        }
    }
}

/// Every row of every table, in rowid order, read without our own code.
fn sqlite_rows(file: &Path) -> std::collections::BTreeMap<String, Vec<Vec<rusqlite::types::Value>>> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let tables: Vec<String> = conn
        .prepare("select name from sqlite_schema where type = 'table' and name not like 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let mut stmt = conn.prepare(&format!("select * from \"{t}\" order by rowid")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (t, rows)
        })
        .collect()
}

async fn roundtrip(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(src) = place(backend, dir.path(), "src").await else { return };
    let dst = place(backend, dir.path(), "dst").await.unwrap();
    let other_keys = place(backend, dir.path(), "other").await.unwrap();

    let init = fengqiao()
        .args(["init", "--region-code", "140107", "--region-name", "杏花岭区", "--db", &src.url])
        .output()
        .await
        .unwrap();
    assert!(init.status.success(), "init: {}", String::from_utf8_lossy(&init.stderr));
    let root: i64 =
        strings(&src, "select cast(id as text) from nodes where parent_id is null").await[0].parse().unwrap();
    // One stored attachment file (content-addressed, as the server names them).
    let photo = b"not really a jpeg, but bytes all the same".to_vec();
    let sha = hex::encode(Sha256::digest(&photo));
    std::fs::create_dir_all(src.data.join("attachments").join(&sha[..2])).unwrap();
    std::fs::write(src.data.join("attachments").join(&sha[..2]).join(&sha), &photo).unwrap();

    let server = serve(&src).await;
    let client = reqwest::Client::new();
    let mut before = vec![];
    for n in 0..5 {
        before.push(report(&client, &server.base, root, n).await.expect("a report before the backup"));
    }

    // Residents keep reporting while the backup runs, and for a while after.
    let acknowledged = Arc::new(Mutex::new(vec![]));
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for c in 0..4 {
        let (acknowledged, done, base) = (acknowledged.clone(), done.clone(), server.base.clone());
        writers.spawn(async move {
            let client = reqwest::Client::new();
            let mut n = (c + 1) * 1_000_000;
            while !done.load(Ordering::Relaxed) {
                n += 1;
                match report(&client, &base, root, n).await {
                    Some(code) => acknowledged.lock().unwrap().push(code),
                    None => break,
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during_before = acknowledged.lock().unwrap().len();
    let file = dir.path().join("backup-1");
    let file_arg = file.display().to_string();
    let (ok, out) = run(&src, &["backup", &file_arg]).await;
    let during_after = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    writers.join_all().await;
    assert!(ok, "backup: {out}");
    assert!(out.contains("备份完成"), "{out}");
    assert!(during_before > 0 && during_after > during_before, "reports came in while the backup ran");
    server.terminate().await;
    let written = acknowledged.lock().unwrap().len() + before.len();

    // Only the finished backup is there, under its name; no key material in it.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o700,
            "the backup is its owner's only"
        );
    }
    let manifest = backup::read_backup(&file).unwrap();
    let ring: fengqiao::platform::crypto::KeyRing =
        serde_json::from_str(&std::fs::read_to_string(src.data.join("keys.json")).unwrap()).unwrap();
    for entry in std::fs::read_dir(&file).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for key in ring.keys.values().chain([&ring.index_key]) {
            let (hex_form, raw) = (key.as_bytes(), hex::decode(key).unwrap());
            assert!(!bytes.windows(hex_form.len()).any(|w| w == hex_form), "a key in the backup");
            assert!(!bytes.windows(raw.len()).any(|w| w == raw.as_slice()), "a key in the backup");
        }
    }
    assert_eq!(manifest.backend, if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
    let listed: Vec<_> = manifest.attachments.iter().map(|a| (a.path.as_str(), a.bytes, a.sha256.as_str())).collect();
    assert_eq!(listed, vec![(format!("{}/{sha}", &sha[..2]).as_str(), photo.len() as u64, sha.as_str())]);
    // The snapshot is of a moment during the load: everything answered
    // before the backup started, not what came after it ended.
    let snapshot_orders = manifest.tables["orders"].rows as usize;
    assert!(snapshot_orders >= before.len() + during_before, "{snapshot_orders} orders in the backup");
    assert!(snapshot_orders < written, "{snapshot_orders} of {written}: the backup is not of the end");

    // A key file that is not the backup's: refused, nothing written.
    std::fs::write(
        other_keys.data.join("keys.json"),
        serde_json::to_string(&fengqiao::platform::crypto::KeyRing::generate()).unwrap(),
    )
    .unwrap();
    let (ok, out) = run(&other_keys, &["restore", &file_arg]).await;
    assert!(!ok, "restore with another key file succeeded: {out}");
    assert!(out.contains("密钥文件与备份不匹配") && out.contains("does not match"), "{out}");
    match &other_keys.sqlite {
        Some(f) => assert!(!f.exists(), "the refused restore created the database"),
        None => {
            let tables = strings(
                &other_keys,
                "select table_name::text from information_schema.tables where table_schema = 'public'",
            )
            .await;
            assert!(tables.is_empty(), "the refused restore wrote {tables:?}");
        }
    }

    // The restore, into a fresh place with the key file copied separately
    // and without the attachments (they are copied separately too).
    std::fs::copy(src.data.join("keys.json"), dst.data.join("keys.json")).unwrap();
    let (ok, out) = run(&dst, &["restore", &file_arg]).await;
    assert!(ok, "restore: {out}");
    assert!(out.contains("逐表核对与备份一致"), "{out}");
    assert!(out.contains("1 个附件文件在数据目录中缺失"), "{out}");

    // Every table as in the snapshot; the audit log has one more entry,
    // the restore itself.
    let restored = digests(&dst).await;
    assert_eq!(restored.keys().collect::<Vec<_>>(), manifest.tables.keys().collect::<Vec<_>>());
    for (table, digest) in &manifest.tables {
        if table == "audit_log" {
            assert_eq!(restored[table].rows, digest.rows + 1);
        } else {
            assert_eq!(&restored[table], digest, "table {table}");
        }
    }
    let last: Vec<String> = strings(&dst, "select action from audit_log order by id desc limit 1").await;
    assert_eq!(last, vec!["backup.restore".to_string()]);
    if let Some(restored_file) = &dst.sqlite {
        // Row for row against the backup's own file, read independently.
        let expected = sqlite_rows(&file.join("database.sqlite"));
        let mut got = sqlite_rows(restored_file);
        let log_rows = expected["audit_log"].len();
        assert_eq!(got["audit_log"].len(), log_rows + 1);
        got.get_mut("audit_log").unwrap().truncate(log_rows);
        assert_eq!(expected, got);
    }
    let codes: std::collections::HashSet<String> =
        strings(&dst, "select tracking_code from orders").await.into_iter().collect();
    assert_eq!(codes.len(), snapshot_orders);
    assert!(before.iter().all(|c| codes.contains(c)));
    let source: std::collections::HashSet<String> =
        strings(&src, "select tracking_code from orders").await.into_iter().collect();
    assert!(codes.is_subset(&source));
    assert_eq!(source.len(), written, "the source kept every acknowledged report");

    let (ok, out) = run(&dst, &["audit", "verify"]).await;
    assert!(ok && out.contains("OK") && out.contains("与锚点"), "audit verify after restore: {out}");

    // A database a server is using is never overwritten.
    let server = serve(&dst).await;
    let (ok, out) = run(&dst, &["restore", &file_arg]).await;
    assert!(!ok && out.contains("正在被使用"), "restore over a running server: {out}");
    assert!(report(&reqwest::Client::new(), &server.base, root, 9).await.is_some(), "the server still serves");
    server.terminate().await;
    let (ok, out) = run(&dst, &["audit", "verify"]).await;
    assert!(ok, "audit verify after the refused restore: {out}");

    // Back over the source, stopped: the chain rolls back to the backup's
    // head, past the source's anchor, and still verifies, as the restore
    // anchored it afresh. PostgreSQL overwrites a database with tables
    // only when told to.
    let mut restore_over_source = vec!["restore", file_arg.as_str()];
    if backend == Backend::Postgres {
        let (ok, out) = run(&src, &restore_over_source).await;
        assert!(!ok && out.contains("--force"), "restore over a database with tables: {out}");
        restore_over_source.insert(1, "--force");
    }
    let (ok, out) = run(&src, &restore_over_source).await;
    assert!(ok, "restore over the source: {out}");
    let count = strings(&src, "select cast(count(*) as text) from orders").await;
    assert_eq!(count, vec![snapshot_orders.to_string()]);
    let (ok, out) = run(&src, &["audit", "verify"]).await;
    assert!(ok, "audit verify after the roll-back: {out}");
    let aside = std::fs::read_dir(&src.data)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("audit-anchor.json.before-restore-"))
        .count();
    assert_eq!(aside, 1, "the source's anchor is kept aside");
    if backend == Backend::Postgres {
        drop_databases(&[&src, &dst, &other_keys]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_to_its_snapshot_on_sqlite() {
    roundtrip(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_to_its_snapshot_on_postgres() {
    roundtrip(Backend::Postgres).await;
}
