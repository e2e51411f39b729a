//! The hash chain: appending, verifying and pruning.
//!
//! `hash = hex(SM3(canonical(entry) including prev_hash))`. Ids are
//! assigned here as last id + 1 (never by a sequence, which leaves gaps on
//! rollback), so on an intact chain the ids are consecutive and each
//! `prev_hash` is the previous entry's `hash`.
//!
//! The chain shows changes by anyone who does not recompute every later
//! hash. SM3 is unkeyed, so someone with write access to the database who
//! recomputes the chain from the point of change onward, or cuts its tail,
//! is only caught by comparing the head (`verify` reports it) with a copy
//! kept elsewhere.

use sm3::{Digest, Sm3};
use sqlx::{any::AnyRow, Row};

use super::{Actor, Entry};
use crate::{
    db::{now_ms, Backend, Db},
    error::Result,
};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Advisory lock key that serialises appends on PostgreSQL.
const APPEND_LOCK: i64 = 7_301_946;
const VERIFY_BATCH: i64 = 2_000;

pub struct NewEntry<'a> {
    pub at: i64,
    pub actor: &'a Actor,
    pub action: &'a str,
    pub object_type: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub detail: String,
}

/// The entry's hash over its content fields and `prev_hash`. A JSON array
/// of scalars in fixed order serialises the same way every time, and
/// cannot be confused by separators inside values.
pub fn entry_hash(e: &Entry) -> String {
    // Serialised straight from the fields (a tuple is a JSON array), the
    // same bytes as building a `serde_json::Value` first, without its
    // allocations: every audited write pays for this.
    let canonical = serde_json::to_vec(&(
        "fq-audit-1",
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
    ))
    .expect("strings and integers serialise");
    hex::encode(Sm3::digest(&canonical))
}

pub const ENTRY_COLS: &str = "id, at, actor_user_id, actor_username, actor_roles, actor_node_id, client_addr, \
     action, object_type, object_id, reason, detail, prev_hash, hash";

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
    Ok(checkpoint(conn).await?.unwrap_or((0, GENESIS.to_string())))
}

async fn checkpoint(conn: &mut sqlx::AnyConnection) -> Result<Option<(i64, String)>> {
    let row = sqlx::query(
        "select last_pruned_id, last_pruned_hash from audit_checkpoints order by last_pruned_id desc limit 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
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

/// The next entry of the chain, hashed, not yet written: the caller
/// inserts it in the same transaction (e.g. batched with other
/// statements). Takes the append lock on PostgreSQL, as `append_in`.
pub async fn next_entry(conn: &mut sqlx::AnyConnection, n: NewEntry<'_>) -> Result<Entry> {
    if conn.backend_name() != "SQLite" {
        sqlx::query("select pg_advisory_xact_lock($1)").bind(APPEND_LOCK).execute(&mut *conn).await?;
    }
    let (last_id, prev_hash) = head(&mut *conn).await?;
    Ok(entry_after(last_id, prev_hash, n))
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
                "select last_pruned_id, last_pruned_hash from audit_checkpoints order by last_pruned_id desc limit 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, GENESIS.to_string())),
    };
    Ok(entry_after(last_id, prev_hash, n))
}

fn entry_after(last_id: i64, prev_hash: String, n: NewEntry<'_>) -> Entry {
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
    };
    e.hash = entry_hash(&e);
    e
}

/// The values of an entry's row, in `ENTRY_COLS` order.
pub fn entry_values(e: Entry) -> Vec<crate::db::V> {
    use crate::db::V;
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
    ]
}

/// The insert statement of an entry, for `entry_values`.
pub static INSERT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("insert into audit_log ({ENTRY_COLS}) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)")
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
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        crate::i18n::t(match self {
            ProblemKind::Changed => "audit.verify.changed",
            ProblemKind::Removed => "audit.verify.removed",
            ProblemKind::Inserted => "audit.verify.inserted",
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
    /// The last intact entry: record it elsewhere to catch a recomputed chain.
    pub head: (i64, String),
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
                "OK:审计日志完整,共校验 {} 条{};链头 #{} {}",
                self.checked,
                self.from_checkpoint.map(|c| format!("(自清理断点 #{c} 之后)")).unwrap_or_default(),
                self.head.0,
                self.head.1
            ),
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
}

/// Judges one entry against what the chain expects next.
fn check(entry: &Entry, expect: &Expect) -> Option<Problem> {
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
    if entry_hash(entry) != entry.hash {
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
pub async fn verify(db: &Db) -> Result<VerifyReport> {
    let mut conn = db.pool.acquire().await?;
    let cp = checkpoint(&mut conn).await?;
    let (start_id, start_hash) = cp.clone().unwrap_or((0, GENESIS.to_string()));
    let mut expect = Expect { id: start_id + 1, prev_hash: start_hash.clone(), seen_prev: false };
    let mut report =
        VerifyReport { checked: 0, from_checkpoint: cp.map(|c| c.0), head: (start_id, start_hash), problem: None };
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
            if let Some(p) = check(&entry, &expect) {
                report.problem = Some(p);
                return Ok(report);
            }
            report.checked += 1;
            report.head = (entry.id, entry.hash.clone());
            expect = Expect { id: entry.id + 1, prev_hash: entry.hash, seen_prev: true };
        }
    }
    Ok(report)
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
    Db(#[from] crate::error::Error),
}

#[derive(Debug, Default)]
pub struct PruneReport {
    pub pruned: u64,
    pub last_pruned_id: Option<i64>,
}

/// Deletes entries older than `days` days and records the cut as a
/// checkpoint (last pruned id and hash) from which `verify` continues.
/// Refuses on a broken chain: pruning would hide the evidence.
pub async fn prune(db: &Db, days: i64) -> std::result::Result<PruneReport, PruneError> {
    let min = min_retention_days();
    if days < min {
        return Err(PruneError::TooShort { min });
    }
    let report = verify(db).await?;
    if !report.ok() {
        return Err(PruneError::Broken(report.to_string()));
    }
    let cutoff = now_ms() - days * 86_400_000;
    let mut tx = begin_locked(db).await?;
    let boundary = sqlx::query("select id, hash from audit_log where at < $1 order by id desc limit 1")
        .bind(cutoff)
        .fetch_optional(&mut *tx)
        .await
        .map_err(crate::error::Error::from)?;
    let Some(boundary) = boundary else { return Ok(PruneReport::default()) };
    let (last_id, last_hash): (i64, String) = (
        boundary.try_get(0).map_err(crate::error::Error::from)?,
        boundary.try_get(1).map_err(crate::error::Error::from)?,
    );
    let pruned = sqlx::query("delete from audit_log where id <= $1")
        .bind(last_id)
        .execute(&mut *tx)
        .await
        .map_err(crate::error::Error::from)?
        .rows_affected();
    sqlx::query(
        "insert into audit_checkpoints (id, at, last_pruned_id, last_pruned_hash, pruned_count) \
         values ((select coalesce(max(id), 0) + 1 from audit_checkpoints), $1, $2, $3, $4)",
    )
    .bind(now_ms())
    .bind(last_id)
    .bind(&last_hash)
    .bind(pruned as i64)
    .execute(&mut *tx)
    .await
    .map_err(crate::error::Error::from)?;
    tx.commit().await.map_err(crate::error::Error::from)?;
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

    fn first_problem(entries: &[Entry]) -> Option<Problem> {
        let mut expect = Expect { id: 1, prev_hash: GENESIS.into(), seen_prev: false };
        for e in entries {
            if let Some(p) = check(e, &expect) {
                return Some(p);
            }
            expect = Expect { id: e.id + 1, prev_hash: e.hash.clone(), seen_prev: true };
        }
        None
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
