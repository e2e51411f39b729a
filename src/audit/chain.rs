//! The hash chain: appending, verifying, pruning and anchoring.
//!
//! Each entry's `hash` chains on from the previous one's. Entries written
//! since migration 0110 carry a key id and their hash is
//! `hex(HMAC-SM3(mac_key(key_id), canonical("fq-audit-2", key_id, entry, prev_hash)))`,
//! with a MAC key derived from the encryption key of that id (see
//! `Crypto::mac`): kept in the key file, outside the database, and rotated
//! with it. Entries from before carry no key id and keep their plain
//! `hex(SM3(canonical("fq-audit-1", entry, prev_hash)))`; they verify as
//! they are, but none may follow a keyed entry or sit at or after the
//! anchored `mac_from`, so a forger cannot fall back to the unkeyed form.
//!
//! A MAC stops anyone without the key from changing, inserting or
//! appending entries, but not from cutting the chain's tail. So the head
//! is anchored outside the database ([`anchor`]): a signed record in the
//! data directory, written at intervals and on shutdown, also logged and
//! optionally sent to an external witness. `verify` against the anchor
//! names entries missing between the database's head and the anchored
//! one. The database itself refuses UPDATE and DELETE on `audit_log`
//! (triggers, migration 0110), except inside [`prune`], which holds a
//! one-row permit in its transaction and leaves a MAC'd checkpoint.
//!
//! Ids are assigned here as last id + 1 (never by a sequence, which leaves
//! gaps on rollback), so on an intact chain they are consecutive.

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::RwLock,
};

use serde::{Deserialize, Serialize};
use sm3::{Digest, Sm3};
use sqlx::{any::AnyRow, Row};

use super::{Actor, Entry};
use crate::{
    kernel::error::Result,
    platform::{
        crypto::Crypto,
        db::{now_ms, Backend, Db},
    },
};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The version tags of the two hash forms.
pub const PLAIN_V1: &str = "fq-audit-1";
pub const KEYED_V2: &str = "fq-audit-2";
const CHECKPOINT_TAG: &str = "fq-audit-checkpoint-2";
const ANCHOR_TAG: &str = "fq-audit-anchor-1";
/// The anchor file's name in the data directory.
pub const ANCHOR_FILE: &str = "audit-anchor.json";
/// Advisory lock key that serialises appends on PostgreSQL.
const APPEND_LOCK: i64 = 7_301_946;
const VERIFY_BATCH: i64 = 2_000;

/// The key ring the chain is MAC'd with. A process serves one database
/// with one key ring, loaded at start (`install_keys`); the chain reads it
/// here because appends happen deep inside writes (the SQLite
/// group-commit writer's connection) where no application state reaches.
static KEYS: RwLock<Option<Crypto>> = RwLock::new(None);

/// Makes `crypto` the chain's key ring, unless one is loaded already (the
/// first ring opened by the process stays, so every entry of a process is
/// MAC'd consistently).
pub fn install_keys(crypto: &Crypto) {
    let mut keys = KEYS.write().unwrap_or_else(|e| e.into_inner());
    if keys.is_none() {
        *keys = Some(crypto.clone());
    }
}

/// The chain's key ring; an error if none was loaded, rather than an
/// entry that could be forged.
pub fn keys() -> Result<Crypto> {
    KEYS.read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the audit chain's key ring is not loaded").into())
}

pub struct NewEntry<'a> {
    pub at: i64,
    pub actor: &'a Actor,
    pub action: &'a str,
    pub object_type: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub detail: String,
}

/// The bytes an entry's hash covers: a JSON array of scalars in fixed
/// order serialises the same way every time, and cannot be confused by
/// separators inside values. Serialised straight from the fields (a tuple
/// is a JSON array), without a `serde_json::Value`'s allocations: every
/// audited write pays for this.
fn canonical(tag: &str, e: &Entry) -> Vec<u8> {
    let fields = (
        e.id,
        e.at,
        e.actor_user_id,
        &e.actor_username,
        &e.actor_roles,
        e.actor_node_id,
        &e.client_addr,
        &e.action,
        &e.object_type,
        &e.object_id,
        &e.reason,
        &e.detail,
        &e.prev_hash,
    );
    let v = if tag == PLAIN_V1 {
        serde_json::to_vec(&(
            tag, fields.0, fields.1, fields.2, fields.3, fields.4, fields.5, fields.6, fields.7, fields.8, fields.9,
            fields.10, fields.11, fields.12,
        ))
    } else {
        serde_json::to_vec(&(
            tag, &e.key_id, fields.0, fields.1, fields.2, fields.3, fields.4, fields.5, fields.6, fields.7, fields.8,
            fields.9, fields.10, fields.11, fields.12,
        ))
    };
    v.expect("strings and integers serialise")
}

/// The plain SM3 hash of an entry written before the chain was keyed
/// (`fq-audit-1`). Anyone can compute it: entries of this form are
/// accepted only before the first keyed one.
pub fn entry_hash(e: &Entry) -> String {
    hex::encode(Sm3::digest(canonical(PLAIN_V1, e)))
}

/// The keyed hash of an entry (`fq-audit-2`) under the key its `key_id`
/// names.
pub fn entry_mac(crypto: &Crypto, e: &Entry) -> Result<String> {
    let key_id = e.key_id.as_deref().ok_or_else(|| anyhow::anyhow!("a keyed entry needs a key id"))?;
    Ok(crypto.mac(key_id, &canonical(KEYED_V2, e)).map_err(anyhow::Error::from)?)
}

pub const ENTRY_COLS: &str = "id, at, actor_user_id, actor_username, actor_roles, actor_node_id, client_addr, \
     action, object_type, object_id, reason, detail, prev_hash, hash, key_id";

pub fn entry_from_row(r: &AnyRow) -> Result<Entry> {
    Ok(Entry {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor_user_id: r.try_get("actor_user_id")?,
        actor_username: r.try_get("actor_username")?,
        actor_roles: r.try_get("actor_roles")?,
        actor_node_id: r.try_get("actor_node_id")?,
        client_addr: r.try_get("client_addr")?,
        action: r.try_get("action")?,
        object_type: r.try_get("object_type")?,
        object_id: r.try_get("object_id")?,
        reason: r.try_get("reason")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        key_id: r.try_get("key_id")?,
    })
}

/// Opens a transaction that holds the right to append: SQLite takes its
/// write lock at `begin immediate` (a deferred transaction could read the
/// head, then fail to upgrade); PostgreSQL takes an advisory lock released
/// at commit. Either way no two appends read the same head.
async fn begin_locked(db: &Db) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    match db.backend {
        Backend::Sqlite => Ok(db.pool.begin_with("begin immediate").await?),
        Backend::Postgres => {
            let mut tx = db.pool.begin().await?;
            sqlx::query("select pg_advisory_xact_lock($1)").bind(APPEND_LOCK).execute(&mut *tx).await?;
            Ok(tx)
        }
    }
}

/// Where the chain continues from: the last entry, else the last pruning
/// checkpoint, else the genesis.
async fn head(conn: &mut sqlx::AnyConnection) -> Result<(i64, String)> {
    if let Some(r) =
        sqlx::query("select id, hash from audit_log order by id desc limit 1").fetch_optional(&mut *conn).await?
    {
        return Ok((r.try_get(0)?, r.try_get(1)?));
    }
    Ok(checkpoints(conn)
        .await?
        .first()
        .map(|c| (c.last_pruned_id, c.last_pruned_hash.clone()))
        .unwrap_or((0, GENESIS.to_string())))
}

/// A pruning checkpoint: entries up to `last_pruned_id` were removed by
/// `prune`. Those written since migration 0110 carry a MAC.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub id: i64,
    pub at: i64,
    pub last_pruned_id: i64,
    pub last_pruned_hash: String,
    pub pruned_count: i64,
    pub key_id: Option<String>,
    pub mac: Option<String>,
}

impl Checkpoint {
    fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(&(
            CHECKPOINT_TAG,
            &self.key_id,
            self.id,
            self.at,
            self.last_pruned_id,
            &self.last_pruned_hash,
            self.pruned_count,
        ))
        .expect("strings and integers serialise")
    }

    /// Whether the MAC is the one the key ring makes.
    fn mac_ok(&self, crypto: &Crypto) -> bool {
        match (&self.key_id, &self.mac) {
            (Some(k), Some(mac)) => crypto.mac(k, &self.canonical()).is_ok_and(|m| &m == mac),
            _ => false,
        }
    }
}

/// The checkpoints, newest first.
async fn checkpoints(conn: &mut sqlx::AnyConnection) -> Result<Vec<Checkpoint>> {
    let rows = sqlx::query(
        "select id, at, last_pruned_id, last_pruned_hash, pruned_count, key_id, mac from audit_checkpoints \
         order by last_pruned_id desc, id desc",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Checkpoint {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                last_pruned_id: r.try_get(2)?,
                last_pruned_hash: r.try_get(3)?,
                pruned_count: r.try_get(4)?,
                key_id: r.try_get(5)?,
                mac: r.try_get(6)?,
            })
        })
        .collect()
}

pub async fn append(db: &Db, n: NewEntry<'_>) -> Result<i64> {
    let mut tx = begin_locked(db).await?;
    let id = append_in(&mut tx, n).await?;
    tx.commit().await?;
    Ok(id)
}

/// Appends inside the caller's transaction, so the entry commits or rolls
/// back with the write it records. On SQLite the transaction must already
/// hold the write lock (`begin immediate`, or the group-commit writer's
/// batch); on PostgreSQL this takes the append lock until it ends.
pub async fn append_in(conn: &mut sqlx::AnyConnection, n: NewEntry<'_>) -> Result<i64> {
    let e = next_entry(conn, n).await?;
    insert(conn, &e).await?;
    Ok(e.id)
}

/// The next entry of the chain, MAC'd, not yet written: the caller
/// inserts it in the same transaction (e.g. batched with other
/// statements). Takes the append lock on PostgreSQL, as `append_in`.
pub async fn next_entry(conn: &mut sqlx::AnyConnection, n: NewEntry<'_>) -> Result<Entry> {
    if conn.backend_name() != "SQLite" {
        sqlx::query("select pg_advisory_xact_lock($1)").bind(APPEND_LOCK).execute(&mut *conn).await?;
    }
    let (last_id, prev_hash) = head(&mut *conn).await?;
    entry_after(last_id, prev_hash, n)
}

/// `next_entry` on the SQLite group-commit writer's connection (which
/// holds the database's write lock for its batch).
pub fn next_entry_sqlite(conn: &rusqlite::Connection, n: NewEntry<'_>) -> Result<Entry> {
    use rusqlite::OptionalExtension;
    let last = conn
        .prepare_cached("select id, hash from audit_log order by id desc limit 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (last_id, prev_hash) = match last {
        Some(h) => h,
        None => conn
            .prepare_cached(
                "select last_pruned_id, last_pruned_hash from audit_checkpoints \
                 order by last_pruned_id desc, id desc limit 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, GENESIS.to_string())),
    };
    entry_after(last_id, prev_hash, n)
}

fn entry_after(last_id: i64, prev_hash: String, n: NewEntry<'_>) -> Result<Entry> {
    entry_after_with(&keys()?, last_id, prev_hash, n)
}

/// The entry that follows `last_id` (whose hash is `prev_hash`), MAC'd
/// under `crypto`'s active key: for writers that append many entries in
/// one go (the demo's history), keeping the head themselves.
pub fn entry_after_with(crypto: &Crypto, last_id: i64, prev_hash: String, n: NewEntry<'_>) -> Result<Entry> {
    let mut e = Entry {
        id: last_id + 1,
        at: n.at,
        actor_user_id: n.actor.user_id,
        actor_username: n.actor.username.clone(),
        actor_roles: n.actor.roles.clone(),
        actor_node_id: n.actor.node_id,
        client_addr: n.actor.client_addr.clone(),
        action: n.action.to_string(),
        object_type: n.object_type.map(str::to_string),
        object_id: n.object_id.map(str::to_string),
        reason: n.reason.map(str::to_string),
        detail: n.detail,
        prev_hash,
        hash: String::new(),
        key_id: Some(crypto.active_mac_key_id()),
    };
    e.hash = entry_mac(crypto, &e)?;
    Ok(e)
}

/// The values of an entry's row, in `ENTRY_COLS` order.
pub fn entry_values(e: Entry) -> Vec<crate::platform::db::V> {
    use crate::platform::db::V;
    vec![
        V::I(Some(e.id)),
        V::I(Some(e.at)),
        V::I(e.actor_user_id),
        V::S(Some(e.actor_username)),
        V::S(Some(e.actor_roles)),
        V::I(e.actor_node_id),
        V::S(e.client_addr),
        V::S(Some(e.action)),
        V::S(e.object_type),
        V::S(e.object_id),
        V::S(e.reason),
        V::S(Some(e.detail)),
        V::S(Some(e.prev_hash)),
        V::S(Some(e.hash)),
        V::S(e.key_id),
    ]
}

/// The insert statement of an entry, for `entry_values`.
pub static INSERT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("insert into audit_log ({ENTRY_COLS}) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)")
});

/// Writes an entry as given. Exposed for tests that forge rows.
pub async fn insert(conn: &mut sqlx::AnyConnection, e: &Entry) -> Result<()> {
    sqlx::query(&INSERT_SQL)
        .bind(e.id)
        .bind(e.at)
        .bind(e.actor_user_id)
        .bind(&e.actor_username)
        .bind(&e.actor_roles)
        .bind(e.actor_node_id)
        .bind(&e.client_addr)
        .bind(&e.action)
        .bind(&e.object_type)
        .bind(&e.object_id)
        .bind(&e.reason)
        .bind(&e.detail)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .bind(&e.key_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The entry's content no longer matches its hash (or its predecessor
    /// was rewritten with a recomputed hash).
    Changed,
    /// An entry is missing: the id is the one that should be there.
    Removed,
    /// An entry that the chain never produced.
    Inserted,
    /// Entries from the problem's id through `through` are gone and no
    /// authorised pruning removed them: the tail was cut back past the
    /// anchored head, or the oldest entries were deleted behind a forged
    /// checkpoint.
    Cut { through: i64 },
    /// The anchor file's signature does not match: it was not written by
    /// this key ring.
    BadAnchor,
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        crate::kernel::i18n::t(match self {
            ProblemKind::Changed => "audit.verify.changed",
            ProblemKind::Removed => "audit.verify.removed",
            ProblemKind::Inserted => "audit.verify.inserted",
            ProblemKind::Cut { .. } => "audit.verify.cut",
            ProblemKind::BadAnchor => "audit.verify.bad_anchor",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem {
    pub id: i64,
    pub kind: ProblemKind,
}

#[derive(Debug)]
pub struct VerifyReport {
    /// Entries checked before the first problem (or all of them).
    pub checked: u64,
    /// Where verification started: the last pruned id, if pruned.
    pub from_checkpoint: Option<i64>,
    /// The last intact entry.
    pub head: (i64, String),
    /// The anchored head the chain was checked against, if any.
    pub anchored: Option<i64>,
    pub problem: Option<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.problem {
            None => write!(
                f,
                "OK:审计日志完整,共校验 {} 条{};链头 #{} {}{}",
                self.checked,
                self.from_checkpoint.map(|c| format!("(自清理断点 #{c} 之后)")).unwrap_or_default(),
                self.head.0,
                self.head.1,
                match self.anchored {
                    Some(a) => format!("；与锚点 #{a} 一致"),
                    None => "；未找到锚点文件，无法发现链尾被截断".into(),
                }
            ),
            Some(Problem { id, kind: ProblemKind::Cut { through } }) => write!(
                f,
                "FAILED:审计日志第 #{id} 至 #{through} 条{}(此前 {} 条完整)",
                ProblemKind::Cut { through }.label(),
                self.checked
            ),
            Some(Problem { id, kind: ProblemKind::BadAnchor }) => {
                write!(f, "FAILED:锚点记录(链头 #{id}){}", ProblemKind::BadAnchor.label())
            }
            Some(p) => write!(f, "FAILED:审计日志第 #{} 条{}(此前 {} 条完整)", p.id, p.kind.label(), self.checked),
        }
    }
}

/// The state of the walk: what the next entry must look like.
struct Expect {
    id: i64,
    prev_hash: String,
    /// Whether an entry of this walk came before (not just the start point).
    seen_prev: bool,
    /// Whether a keyed entry came before: no plain one may follow it.
    keyed: bool,
}

/// Whether an entry's hash is the one its form demands: a keyed entry's
/// MAC under its key; a plain entry's SM3, and only where plain entries
/// may still be (`plain_allowed`).
fn hash_ok(entry: &Entry, crypto: &Crypto, plain_allowed: bool) -> bool {
    match &entry.key_id {
        Some(_) => entry_mac(crypto, entry).is_ok_and(|h| h == entry.hash),
        None => plain_allowed && entry_hash(entry) == entry.hash,
    }
}

/// Judges one entry against what the chain expects next. `mac_from` is the
/// first id that must be keyed (from the anchor; `i64::MAX` without one).
fn check(entry: &Entry, expect: &Expect, crypto: &Crypto, mac_from: i64) -> Option<Problem> {
    let problem = |id, kind| Some(Problem { id, kind });
    if entry.id < expect.id {
        // Ids at or below a pruning checkpoint should no longer exist.
        return problem(entry.id, ProblemKind::Inserted);
    }
    if entry.id > expect.id {
        // A forged row with a made-up id still chains on from the head;
        // after a removal the next row points at the missing one's hash.
        return if entry.prev_hash == expect.prev_hash {
            problem(entry.id, ProblemKind::Inserted)
        } else {
            problem(expect.id, ProblemKind::Removed)
        };
    }
    if !hash_ok(entry, crypto, !expect.keyed && entry.id < mac_from) {
        return problem(entry.id, ProblemKind::Changed);
    }
    if entry.prev_hash != expect.prev_hash {
        // This entry is intact, so its predecessor was rewritten together
        // with its hash (or this one was placed here in its stead).
        let id = if expect.seen_prev { entry.id - 1 } else { entry.id };
        return problem(id, ProblemKind::Changed);
    }
    None
}

/// Walks the whole chain from the genesis or the last pruning checkpoint
/// and reports the first entry that was changed, removed or inserted.
/// Without an anchor it cannot tell a cut tail; see `verify_anchored`.
pub async fn verify(db: &Db) -> Result<VerifyReport> {
    verify_anchored(db, None).await
}

/// `verify`, and checks the chain against an anchored head: the anchor's
/// signature, that the anchored entry is still there unchanged, and that
/// nothing before `mac_from` is unkeyed.
pub async fn verify_anchored(db: &Db, anchor: Option<&Anchor>) -> Result<VerifyReport> {
    let crypto = keys()?;
    let mut conn = db.pool.acquire().await?;
    let mut report = VerifyReport {
        checked: 0,
        from_checkpoint: None,
        head: (0, GENESIS.to_string()),
        anchored: anchor.map(|a| a.id),
        problem: None,
    };
    if let Some(a) = anchor.filter(|a| !a.signature_ok(&crypto)) {
        report.problem = Some(Problem { id: a.id, kind: ProblemKind::BadAnchor });
        return Ok(report);
    }
    let mac_from = anchor.map(|a| a.mac_from).unwrap_or(i64::MAX);

    // The newest checkpoint must be MAC'd, or be one of the unkeyed era
    // (cutting only plain entries, with a plain entry next). A forged one
    // hides every entry back to the last genuine checkpoint.
    let cps = checkpoints(&mut conn).await?;
    let first_key: Option<Option<String>> = match cps.first() {
        Some(cp) => sqlx::query("select key_id from audit_log where id > $1 order by id limit 1")
            .bind(cp.last_pruned_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
        None => None,
    };
    if let Some(cp) = cps.first() {
        let plain_era = cp.mac.is_none() && cp.last_pruned_id < mac_from && !matches!(first_key, Some(Some(_)));
        if !cp.mac_ok(&crypto) && !plain_era {
            let genuine = cps.iter().skip(1).find(|c| c.mac_ok(&crypto) || c.mac.is_none());
            let from = genuine.map(|c| c.last_pruned_id).unwrap_or(0) + 1;
            report.problem = Some(Problem { id: from, kind: ProblemKind::Cut { through: cp.last_pruned_id } });
            return Ok(report);
        }
    }
    let cp = cps.first().map(|c| (c.last_pruned_id, c.last_pruned_hash.clone()));
    let (start_id, start_hash) = cp.clone().unwrap_or((0, GENESIS.to_string()));
    report.from_checkpoint = cp.map(|c| c.0);
    report.head = (start_id, start_hash.clone());
    let mut expect = Expect { id: start_id + 1, prev_hash: start_hash, seen_prev: false, keyed: false };
    // Keyset paging by id; the first page also sees ids at or below the
    // checkpoint, which must not exist.
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(&format!("select {ENTRY_COLS} from audit_log where id > $1 order by id limit $2"))
            .bind(after)
            .bind(VERIFY_BATCH)
            .fetch_all(&mut *conn)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id")?;
        for row in &rows {
            let entry = entry_from_row(row)?;
            let mut found = check(&entry, &expect, &crypto, mac_from);
            if found.is_none() && anchor.is_some_and(|a| a.id == entry.id && a.hash != entry.hash) {
                found = Some(Problem { id: entry.id, kind: ProblemKind::Changed });
            }
            if let Some(p) = found {
                report.problem = Some(p);
                return Ok(report);
            }
            report.checked += 1;
            report.head = (entry.id, entry.hash.clone());
            expect = Expect {
                id: entry.id + 1,
                keyed: expect.keyed || entry.key_id.is_some(),
                prev_hash: entry.hash,
                seen_prev: true,
            };
        }
    }
    if let Some(a) = anchor {
        if a.id > report.head.0 {
            report.problem = Some(Problem { id: report.head.0 + 1, kind: ProblemKind::Cut { through: a.id } });
        } else if a.id == report.head.0 && a.hash != report.head.1 {
            report.problem = Some(Problem { id: a.id, kind: ProblemKind::Changed });
        }
    }
    Ok(report)
}

/// A signed record of the chain's head, kept outside the database: what
/// the chain must reach at least. `mac_from` is the first id that must be
/// keyed (entries before it may be plain SM3 from earlier versions); it is
/// fixed by the first anchor and carried forward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub format: String,
    pub id: i64,
    pub hash: String,
    pub at: i64,
    pub mac_from: i64,
    pub key_id: String,
    pub sig: String,
}

impl Anchor {
    fn signed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&(ANCHOR_TAG, &self.key_id, self.id, &self.hash, self.at, self.mac_from))
            .expect("strings and integers serialise")
    }

    fn sign(mut self, crypto: &Crypto) -> Result<Anchor> {
        self.sig = crypto.mac(&self.key_id, &self.signed_bytes()).map_err(anyhow::Error::from)?;
        Ok(self)
    }

    pub fn signature_ok(&self, crypto: &Crypto) -> bool {
        self.format == ANCHOR_TAG && crypto.mac(&self.key_id, &self.signed_bytes()).is_ok_and(|s| s == self.sig)
    }

    /// The anchor file of a data directory.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(ANCHOR_FILE)
    }

    /// Reads an anchor file; `None` if there is none yet.
    pub fn read(path: &Path) -> Result<Option<Anchor>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("anchor file {} is not valid: {e}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read anchor file {}: {e}", path.display()).into()),
        }
    }

    /// Replaces the file by rename, so a crash never leaves half an anchor.
    fn write(&self, path: &Path) -> Result<()> {
        let err = |e: std::io::Error| anyhow::anyhow!("cannot write anchor file {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).expect("an anchor serialises");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&json).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }
}

/// Somewhere outside this machine's reach that keeps the signed heads, so
/// that even whoever controls the data directory cannot roll them back.
pub trait Witness: Send + Sync {
    fn witness<'a>(&'a self, anchor: &'a Anchor) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;
}

/// A witness reached over HTTP: each anchor is POSTed as JSON to `url`,
/// which must answer 2xx (`FENGQIAO_AUDIT_WITNESS_URL`).
pub struct HttpWitness {
    url: String,
    client: reqwest::Client,
}

impl HttpWitness {
    pub fn new(url: &str) -> HttpWitness {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("a client with a timeout builds");
        HttpWitness { url: url.to_string(), client }
    }
}

impl Witness for HttpWitness {
    fn witness<'a>(&'a self, anchor: &'a Anchor) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>> {
        Box::pin(async move {
            self.client.post(&self.url).json(anchor).send().await?.error_for_status()?;
            Ok(())
        })
    }
}

/// Anchors the chain's current head: signs it, writes it to `path`, logs
/// it, and sends it to the witness if there is one (a witness that cannot
/// be reached is logged; the file anchor stands). Refuses to move an
/// anchor backwards or past an anchored entry that is no longer there as
/// anchored: that would cover up a cut or a rewrite.
pub async fn anchor(db: &Db, path: &Path, witness: Option<&dyn Witness>) -> Result<Anchor> {
    let crypto = keys()?;
    let mut conn = db.pool.acquire().await?;
    let (id, hash) = head(&mut conn).await?;
    let previous = Anchor::read(path)?.filter(|a| a.signature_ok(&crypto));
    let mac_from = match &previous {
        Some(p) => {
            let anchored: Option<String> = sqlx::query("select hash from audit_log where id = $1")
                .bind(p.id)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            let pruned = checkpoints(&mut conn).await?.first().is_some_and(|c| c.last_pruned_id >= p.id);
            let intact = match anchored {
                Some(h) => h == p.hash,
                None => pruned,
            };
            if id < p.id || !intact {
                tracing::error!(
                    anchored = p.id,
                    head = id,
                    "audit chain no longer reaches its anchored head; anchor kept"
                );
                return Err(anyhow::anyhow!(
                    "the audit chain no longer reaches its anchored head #{} (head is #{id}); run `fengqiao audit verify`",
                    p.id
                )
                .into());
            }
            p.mac_from
        }
        None => sqlx::query("select min(id) from audit_log where key_id is not null")
            .fetch_one(&mut *conn)
            .await?
            .try_get::<Option<i64>, _>(0)?
            .unwrap_or(id + 1),
    };
    drop(conn);
    let a = Anchor {
        format: ANCHOR_TAG.into(),
        id,
        hash,
        at: now_ms(),
        mac_from,
        key_id: crypto.active_mac_key_id(),
        sig: String::new(),
    }
    .sign(&crypto)?;
    a.write(path)?;
    tracing::info!(
        id = a.id,
        hash = %a.hash,
        at = a.at,
        mac_from = a.mac_from,
        key_id = %a.key_id,
        sig = %a.sig,
        "audit chain head anchored"
    );
    if let Some(w) = witness {
        if let Err(e) = w.witness(&a).await {
            tracing::warn!(error = %e, "audit anchor witness not reached");
        }
    }
    Ok(a)
}

/// The smallest retention `prune` accepts, in days: `FENGQIAO_AUDIT_MIN_DAYS`,
/// default 180 (网络安全法 Art. 21 asks for at least six months of logs).
pub fn min_retention_days() -> i64 {
    std::env::var("FENGQIAO_AUDIT_MIN_DAYS").ok().and_then(|v| v.trim().parse().ok()).filter(|d| *d > 0).unwrap_or(180)
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("保留期不能少于 {min} 天(网络安全法要求日志至少留存六个月;可用 FENGQIAO_AUDIT_MIN_DAYS 调整下限)")]
    TooShort { min: i64 },
    #[error("审计日志校验未通过,拒绝清理:{0}")]
    Broken(String),
    #[error(transparent)]
    Db(#[from] crate::kernel::error::Error),
}

#[derive(Debug, Default)]
pub struct PruneReport {
    pub pruned: u64,
    pub last_pruned_id: Option<i64>,
}

impl From<sqlx::Error> for PruneError {
    fn from(e: sqlx::Error) -> PruneError {
        PruneError::Db(e.into())
    }
}

/// Deletes entries older than `days` days and records the cut as a MAC'd
/// checkpoint (last pruned id and hash) from which `verify` continues.
/// The only way past the database's refusal to delete entries: a permit
/// row naming the last id, inserted and removed again inside this
/// transaction, so no other writer ever sees it. Refuses on a broken chain:
/// pruning would hide the evidence.
pub async fn prune(db: &Db, days: i64) -> std::result::Result<PruneReport, PruneError> {
    let min = min_retention_days();
    if days < min {
        return Err(PruneError::TooShort { min });
    }
    let report = verify(db).await?;
    if !report.ok() {
        return Err(PruneError::Broken(report.to_string()));
    }
    let crypto = keys()?;
    let cutoff = now_ms() - days * 86_400_000;
    let mut tx = begin_locked(db).await?;
    let boundary = sqlx::query("select id, hash from audit_log where at < $1 order by id desc limit 1")
        .bind(cutoff)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(boundary) = boundary else { return Ok(PruneReport::default()) };
    let (last_id, last_hash): (i64, String) = (boundary.try_get(0)?, boundary.try_get(1)?);
    sqlx::query("insert into audit_prune_permit (id, through_id) values (1, $1)")
        .bind(last_id)
        .execute(&mut *tx)
        .await?;
    let pruned =
        sqlx::query("delete from audit_log where id <= $1").bind(last_id).execute(&mut *tx).await?.rows_affected();
    sqlx::query("delete from audit_prune_permit").execute(&mut *tx).await?;
    let next_id: i64 =
        sqlx::query("select coalesce(max(id), 0) + 1 from audit_checkpoints").fetch_one(&mut *tx).await?.try_get(0)?;
    let mut cp = Checkpoint {
        id: next_id,
        at: now_ms(),
        last_pruned_id: last_id,
        last_pruned_hash: last_hash,
        pruned_count: pruned as i64,
        key_id: Some(crypto.active_mac_key_id()),
        mac: None,
    };
    let key_id = cp.key_id.clone().unwrap_or_default();
    cp.mac = Some(crypto.mac(&key_id, &cp.canonical()).map_err(|e| PruneError::Db(anyhow::Error::from(e).into()))?);
    sqlx::query(
        "insert into audit_checkpoints (id, at, last_pruned_id, last_pruned_hash, pruned_count, key_id, mac) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(cp.id)
    .bind(cp.at)
    .bind(cp.last_pruned_id)
    .bind(&cp.last_pruned_hash)
    .bind(cp.pruned_count)
    .bind(&cp.key_id)
    .bind(&cp.mac)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(PruneReport { pruned, last_pruned_id: Some(last_id) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, prev: &str) -> Entry {
        let mut e = Entry {
            id,
            at: 1_700_000_000_000 + id,
            actor_user_id: Some(1),
            actor_username: "admin".into(),
            actor_roles: "admin".into(),
            actor_node_id: Some(1),
            client_addr: Some("127.0.0.1".into()),
            action: "node.create".into(),
            object_type: Some("node".into()),
            object_id: Some(id.to_string()),
            reason: None,
            detail: "{}".into(),
            prev_hash: prev.into(),
            hash: String::new(),
            key_id: None,
        };
        e.hash = entry_hash(&e);
        e
    }

    /// Entries written by earlier versions keep verifying: the canonical
    /// form (and so the hash) of a fixed entry never changes.
    #[test]
    fn the_canonical_form_is_stable() {
        let mut e = entry(42, GENESIS);
        e.actor_username = "张三 \"quoted\"\n".into();
        e.reason = Some("核查 <b>原因</b> \\ / \u{2028}".into());
        e.object_id = None;
        e.actor_node_id = None;
        e.detail = r#"{"action":"sign","from":"pending_sign"}"#.into();
        assert_eq!(entry_hash(&e), "58c784f04514296be3155d8f0268a6de2854cfeae956b60b26a70f9953a68274");
    }

    fn chain(n: i64) -> Vec<Entry> {
        let mut v: Vec<Entry> = vec![];
        for id in 1..=n {
            let prev = v.last().map(|e| e.hash.clone()).unwrap_or(GENESIS.into());
            v.push(entry(id, &prev));
        }
        v
    }

    fn first_problem_with(crypto: &Crypto, entries: &[Entry]) -> Option<Problem> {
        let mut expect = Expect { id: 1, prev_hash: GENESIS.into(), seen_prev: false, keyed: false };
        for e in entries {
            if let Some(p) = check(e, &expect, crypto, i64::MAX) {
                return Some(p);
            }
            expect = Expect {
                id: e.id + 1,
                prev_hash: e.hash.clone(),
                seen_prev: true,
                keyed: expect.keyed || e.key_id.is_some(),
            };
        }
        None
    }

    fn first_problem(entries: &[Entry]) -> Option<Problem> {
        first_problem_with(&Crypto::ephemeral(), entries)
    }

    /// `chain(n)` continued with keyed entries under `crypto`.
    fn keyed(crypto: &Crypto, mut c: Vec<Entry>, more: i64) -> Vec<Entry> {
        for _ in 0..more {
            let mut e = entry(c.len() as i64 + 1, &c.last().map(|e| e.hash.clone()).unwrap_or(GENESIS.into()));
            e.key_id = Some(crypto.active_key_id());
            e.hash = entry_mac(crypto, &e).unwrap();
            c.push(e);
        }
        c
    }

    #[test]
    fn plain_entries_keep_verifying_and_keyed_ones_need_the_key() {
        let crypto = Crypto::ephemeral();
        let c = keyed(&crypto, chain(3), 3);
        assert_eq!(first_problem_with(&crypto, &c), None, "three plain SM3 entries, then three keyed ones");

        // Whoever lacks the key cannot append: neither a keyed entry under
        // a guessed key nor a plain one after the keyed ones.
        let mut forged = c.clone();
        forged.push(keyed(&Crypto::ephemeral(), c.clone(), 1).pop().unwrap());
        assert_eq!(first_problem_with(&crypto, &forged), Some(Problem { id: 7, kind: ProblemKind::Changed }));
        let mut plain = c.clone();
        plain.push(entry(7, &c[5].hash));
        assert_eq!(first_problem_with(&crypto, &plain), Some(Problem { id: 7, kind: ProblemKind::Changed }));

        // Nor rewrite one and recompute the rest.
        let mut rewritten = chain(3);
        rewritten[2].action = "node.delete".into();
        rewritten[2].hash = entry_hash(&rewritten[2]);
        let attacker = Crypto::ephemeral();
        let rewritten = keyed(&attacker, rewritten, 3);
        assert_eq!(first_problem_with(&crypto, &rewritten), Some(Problem { id: 4, kind: ProblemKind::Changed }));
    }

    #[test]
    fn hash_covers_every_field() {
        let e = entry(1, GENESIS);
        let mut variants = vec![];
        let mut f = e.clone();
        f.reason = Some(String::new());
        variants.push(f);
        let mut f = e.clone();
        f.client_addr = None;
        variants.push(f);
        let mut f = e.clone();
        f.detail = "{ }".into();
        variants.push(f);
        let mut f = e.clone();
        f.prev_hash = "1".repeat(64);
        variants.push(f);
        for v in variants {
            assert_ne!(entry_hash(&v), e.hash);
        }
    }

    #[test]
    fn an_intact_chain_passes_and_each_tampering_names_its_entry() {
        let c = chain(6);
        assert_eq!(first_problem(&c), None);

        let mut changed = c.clone();
        changed[2].action = "node.delete".into();
        assert_eq!(first_problem(&changed), Some(Problem { id: 3, kind: ProblemKind::Changed }));

        let mut rehashed = c.clone();
        rehashed[2].action = "node.delete".into();
        rehashed[2].hash = entry_hash(&rehashed[2]);
        assert_eq!(first_problem(&rehashed), Some(Problem { id: 3, kind: ProblemKind::Changed }));

        let mut removed = c.clone();
        removed.remove(3);
        assert_eq!(first_problem(&removed), Some(Problem { id: 4, kind: ProblemKind::Removed }));

        let mut forged = c.clone();
        forged.push(entry(42, &c[5].hash));
        assert_eq!(first_problem(&forged), Some(Problem { id: 42, kind: ProblemKind::Inserted }));

        let mut before = c.clone();
        before.insert(0, entry(0, GENESIS));
        assert_eq!(first_problem(&before), Some(Problem { id: 0, kind: ProblemKind::Inserted }));
    }
}
