//! Storage: embedded SQLite by default, PostgreSQL in production.
//!
//! One portable query layer (`sqlx::Any`) runs the same SQL text on both
//! backends: `$n` placeholders (which SQLite accepts too), integers as
//! BIGINT, times as UTC epoch milliseconds, JSON as text. Each backend keeps
//! its own migrations because DDL differs.

mod direct;
mod migrate;
pub mod scratch;
pub mod settings;
mod statements;
mod writer;

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
pub use sqlx::AnyPool as Pool;
use sqlx::{ConnectOptions, Executor};

pub use direct::{Col, Cols, RowMap};
pub use migrate::migrate;
pub use statements::{bind_args, bind_sqlite, exec_sqlite, Statements, V};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A parsed database URL. Its `Debug` and `Display` hide any password.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite { path: PathBuf },
    Postgres { url: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    #[error("数据库地址 `{0}` 无法识别:请使用 sqlite://文件路径 或 postgres://用户@主机/库名")]
    UnknownScheme(String),
    #[error("数据库地址 `{0}` 缺少文件路径")]
    EmptyPath(String),
    #[error("SQLite 数据库所在目录 `{0}` 不存在;请检查 FENGQIAO_DB 是否拼写正确")]
    MissingDirectory(String),
    #[error("`{0}` 不是 SQLite 数据库文件")]
    NotADatabase(String),
}

impl FromStr for DbUrl {
    type Err = DbUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(DbUrlError::EmptyPath(s.to_string()));
            }
            return Ok(DbUrl::Sqlite { path: PathBuf::from(path) });
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres { url: s.to_string() });
        }
        Err(DbUrlError::UnknownScheme(redact(s)))
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            DbUrl::Postgres { url } => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl DbUrl {
    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Sqlite { .. } => Backend::Sqlite,
            DbUrl::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Checks that an SQLite file can be opened without silently creating
    /// one in the wrong place: the directory must exist, and an existing
    /// file must be an SQLite database. Returns whether the file is new.
    fn check_sqlite(path: &std::path::Path) -> Result<bool, DbUrlError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(DbUrlError::MissingDirectory(dir.display().to_string()));
        }
        if path.exists() {
            // Asked through SQLite, not read with a file of our own: closing
            // such a file drops every lock this process holds on the
            // database (POSIX locks belong to the process, not the file
            // handle), and another process closing the database then takes
            // itself for its last user and deletes the log.
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let header = rusqlite::Connection::open_with_flags(path, flags)
                .and_then(|conn| conn.query_row("pragma schema_version", [], |_| Ok(())));
            if let Err(rusqlite::Error::SqliteFailure(e, _)) = &header {
                if e.code == rusqlite::ErrorCode::NotADatabase {
                    return Err(DbUrlError::NotADatabase(path.display().to_string()));
                }
            }
            return Ok(false);
        }
        Ok(true)
    }
}

/// How a SQLite commit reaches the disk (`pragma synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit syncs the log before anyone is answered: an answered
    /// write survives a power cut or an operating-system crash. The group
    /// commit shares one sync among all the writes of a batch.
    #[default]
    Full,
    /// The log is synced only when it is checkpointed: faster, and an
    /// answered write still survives the server's crash, but a power cut
    /// or an operating-system crash may take the last commits with it.
    Normal,
}

impl Synchronous {
    pub fn name(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

impl FromStr for Synchronous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            _ => Err(format!("`{s}` 不是可用的同步方式：请用 full 或 normal")),
        }
    }
}

/// SQLite settings of a running server (ignored on PostgreSQL).
#[derive(Clone, Copy, Debug)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Log size past which the checkpoint thread makes the log start over
    /// (see `writer::LogLimits`).
    pub log_restart_bytes: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { synchronous: Synchronous::Full, log_restart_bytes: writer::LOG_RESTART_BYTES }
    }
}

/// A connected database and which backend it is.
#[derive(Clone)]
pub struct Db {
    pub pool: Pool,
    pub backend: Backend,
    /// SQLite allows one writer at a time. Queuing writers here, in the
    /// process, replaces SQLite's busy-wait (sleep and retry) with a fair
    /// hand-over, which keeps write latency flat under concurrency.
    writer: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// SQLite only: the task that group-commits small writes (see `write`).
    batcher: Option<writer::Writer>,
    /// SQLite: direct read-only connections for the hottest reads.
    readers: Option<std::sync::Arc<direct::Readers>>,
    /// Reference data its users keep in memory, one value per type (see
    /// `orders::refs`).
    memo: std::sync::Arc<std::sync::Mutex<Memo>>,
    /// Sessions and API tokens resolved a moment ago (see `auth::cache`).
    pub sessions: std::sync::Arc<crate::platform::sessions::SessionCache>,
    /// SQLite: how commits reach the disk.
    pub synchronous: Option<Synchronous>,
    /// PostgreSQL: the address, for the connection that listens for other
    /// nodes' setting changes (see `settings_changed`).
    listen_url: Option<std::sync::Arc<str>>,
}

/// The channel on which PostgreSQL server nodes tell each other that a
/// setting changed.
pub const SETTINGS_CHANNEL: &str = "fengqiao_settings";

type Memo = std::collections::HashMap<std::any::TypeId, std::sync::Arc<dyn std::any::Any + Send + Sync>>;

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Db({})", self.backend.name())
    }
}

impl Db {
    /// A transaction that will write: on SQLite it takes the write lock at
    /// its start (`begin immediate`), since a deferred one that has read
    /// cannot upgrade once another connection — the group-commit writer, say
    /// — has committed meanwhile (`SQLITE_BUSY_SNAPSHOT`, no retry); on
    /// PostgreSQL a plain transaction.
    pub async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("begin immediate").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Hold the returned guard for the whole of a write transaction.
    pub async fn write_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    pub fn memo_get<T: std::any::Any + Send + Sync>(&self) -> Option<std::sync::Arc<T>> {
        let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.get(&std::any::TypeId::of::<T>()).cloned().and_then(|v| v.downcast().ok())
    }

    pub fn memo_put<T: std::any::Any + Send + Sync>(&self, value: std::sync::Arc<T>) {
        self.memo.lock().unwrap_or_else(|e| e.into_inner()).insert(std::any::TypeId::of::<T>(), value);
    }

    /// Reference data was edited here: every copy kept in memory is
    /// dropped, and the next use loads it afresh.
    pub fn memo_forget(&self) {
        self.memo.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A setting (calendar, security policy, categories, units, places)
    /// was changed and committed here: on PostgreSQL every other server
    /// node is told, and reloads its copies at once (`app::FollowSettings`).
    /// SQLite has one server process, which updated its own copies already.
    pub async fn settings_changed(&self) -> crate::kernel::error::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("select pg_notify($1, '')").bind(SETTINGS_CHANNEL).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// PostgreSQL: the address to listen for setting changes on.
    pub fn listen_url(&self) -> Option<&str> {
        self.listen_url.as_deref()
    }

    /// SQLite only: runs `f` on the group-commit writer's direct
    /// connection as part of a shared transaction and answers once it is
    /// durable (its `Err` undoes only its own writes; it may be called
    /// twice, so it must have no effect outside the database). PostgreSQL,
    /// which commits concurrent transactions in parallel, uses
    /// transactions of the pool instead.
    pub async fn write<R, F>(&self, f: F) -> crate::kernel::error::Result<R>
    where
        R: Send + 'static,
        F: FnMut(&rusqlite::Connection) -> crate::kernel::error::Result<R> + Send + 'static,
    {
        match &self.batcher {
            Some(b) => b.write(f).await,
            None => Err(anyhow::anyhow!("Db::write is for SQLite only").into()),
        }
    }

    /// SQLite: (batches, writes) the group-commit writer has committed.
    pub fn writer_stats(&self) -> Option<(u64, u64)> {
        self.batcher.as_ref().map(|b| b.stats())
    }

    /// SQLite: runs a short read on a direct connection on this thread
    /// (see `direct`); `None` on PostgreSQL, whose reads go through the pool.
    pub fn read_direct<R>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> crate::kernel::error::Result<R>,
    ) -> Option<crate::kernel::error::Result<R>> {
        self.readers.as_ref().map(|r| r.with(f))
    }

    /// One row of a short keyed read, mapped by `map`, or none: on SQLite
    /// from a direct connection on this thread, on PostgreSQL through the pool.
    pub async fn fetch_optional<T>(
        &self,
        sql: &str,
        args: Vec<V>,
        map: impl RowMap<T>,
    ) -> crate::kernel::error::Result<Option<T>> {
        let direct = self.read_direct(|conn| {
            let mut stmt = conn.prepare_cached(sql)?;
            bind_sqlite(&mut stmt, &args)?;
            let mut rows = stmt.raw_query();
            rows.next()?.map(|row| map.map(&direct::InOrder::new(row))).transpose()
        });
        if let Some(r) = direct {
            return r;
        }
        match bind_args(sqlx::query(sql), args).fetch_optional(&self.pool).await? {
            Some(row) => Ok(Some(map.map(&row)?)),
            None => Ok(None),
        }
    }

    /// SQLite: copies the whole log into the database file and empties it,
    /// so that nothing overwritten lingers in old frames (after personal
    /// data is sealed). Writers wait meanwhile; a checkpoint already under
    /// way elsewhere (the checkpoint thread's) is waited out. No-op on
    /// PostgreSQL.
    pub async fn truncate_sqlite_log(&self) -> crate::kernel::error::Result<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let _writes_wait = self.write_lock().await;
        self.checkpoint_truncate().await
    }

    /// `truncate_sqlite_log` once writes wait.
    async fn checkpoint_truncate(&self) -> crate::kernel::error::Result<()> {
        for _ in 0..200 {
            let (busy, _, _): (i64, i64, i64) =
                sqlx::query_as("pragma wal_checkpoint(truncate)").fetch_one(&self.pool).await?;
            if busy == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(anyhow::anyhow!("the SQLite log could not be emptied: readers kept it busy").into())
    }

    /// The last step of a server's graceful stop, once it takes no more
    /// requests. SQLite: the writer commits what is queued, and the log is
    /// copied into the database and emptied, so that the stopped server
    /// leaves one complete file (not a database beside a log larger than
    /// itself, which a copy of the file alone would miss). Writes stay
    /// stopped from then on: any still to come (a background task's) wait
    /// for the process to end and are never answered. A no-op on
    /// PostgreSQL.
    pub async fn close(&self) -> anyhow::Result<()> {
        let Some(lock) = self.writer.clone() else { return Ok(()) };
        // The writer takes its queue in order: once this is answered,
        // everything queued before it has been committed.
        if let Err(e) = self.write(|_| Ok(())).await {
            tracing::warn!(error = %e, "the SQLite writer had stopped before the server");
        }
        let writes_wait = lock.lock_owned().await;
        let outcome = self.checkpoint_truncate().await;
        std::mem::forget(writes_wait);
        match outcome {
            Ok(()) => tracing::info!("SQLite log copied into the database and emptied"),
            Err(e) => {
                tracing::warn!(error = %e, "the SQLite log was not emptied at shutdown; it is replayed at the next start")
            }
        }
        Ok(())
    }

    /// Connects with the default settings: on SQLite, answered writes
    /// survive a power cut.
    pub async fn connect(url: &DbUrl) -> anyhow::Result<Db> {
        Db::connect_with(url, SqliteOptions::default()).await
    }

    pub async fn connect_with(url: &DbUrl, sqlite: SqliteOptions) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        match url {
            DbUrl::Sqlite { path } => {
                if DbUrl::check_sqlite(path)? {
                    tracing::warn!(path = %path.display(), "creating a new SQLite database");
                }
                let conn_url = format!("sqlite://{}?mode=rwc", path.display());
                let opts = AnyConnectOptions::from_str(&conn_url)?.disable_statement_logging();
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            // Per-connection settings; WAL is persistent and set once below.
                            // Checkpoints are the checkpoint thread's alone (see `writer`):
                            // here one would run inside a commit, holding the process's
                            // write lock while it copies and syncs the log.
                            conn.execute(&*format!(
                                "pragma page_size = {}; \
                                 pragma foreign_keys = on; pragma busy_timeout = 5000; \
                                 pragma synchronous = {}; pragma cache_size = -65536; \
                                 pragma wal_autocheckpoint = 0",
                                writer::PAGE_SIZE,
                                sqlite.synchronous.name()
                            ))
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("无法打开 SQLite 数据库 {}: {e}", path.display()))?;
                sqlx::query("pragma journal_mode = wal").execute(&pool).await?;
                let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                let batcher = writer::Writer::start(path, lock.clone(), sqlite)?;
                Ok(Db {
                    pool,
                    backend: Backend::Sqlite,
                    writer: Some(lock),
                    batcher: Some(batcher),
                    readers: Some(std::sync::Arc::new(direct::Readers::new(path.clone()))),
                    memo: Default::default(),
                    sessions: Default::default(),
                    synchronous: Some(sqlite.synchronous),
                    listen_url: None,
                })
            }
            DbUrl::Postgres { url: raw } => {
                // The Any driver sends a NULL with a placeholder type, and a
                // cached prepared statement keeps that type for later non-NULL
                // values; without the statement cache every query is typed
                // from its own arguments.
                let sep = if raw.contains('?') { '&' } else { '?' };
                let tuned = if raw.contains("statement-cache-capacity") {
                    raw.clone()
                } else {
                    format!("{raw}{sep}statement-cache-capacity=0")
                };
                let opts = AnyConnectOptions::from_str(&tuned)?.disable_statement_logging();
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("无法连接 PostgreSQL 数据库 {}: {e}", redact(raw)))?;
                // Answers come after the commit that made a write durable; a
                // server (or this URL's `options`) that does not wait for the
                // disk at commit breaks that promise on a power cut.
                let (commit, fsync): (String, String) =
                    sqlx::query_as("select current_setting('synchronous_commit'), current_setting('fsync')")
                        .fetch_one(&pool)
                        .await?;
                if commit == "off" || fsync == "off" {
                    tracing::warn!(
                        synchronous_commit = %commit,
                        %fsync,
                        "PostgreSQL does not wait for the disk at commit: a power cut may lose answered writes"
                    );
                }
                Ok(Db {
                    pool,
                    backend: Backend::Postgres,
                    writer: None,
                    batcher: None,
                    readers: None,
                    memo: Default::default(),
                    sessions: Default::default(),
                    synchronous: None,
                    listen_url: Some(raw.as_str().into()),
                })
            }
        }
    }
}

/// Rewrites a SQLite database file compactly with [`writer::PAGE_SIZE`]
/// pages: a database made before the page size changed keeps its old one
/// until then. The server must be stopped (the rewrite needs the file to
/// itself) and the disk needs room for a copy. Answers the page sizes
/// before and after.
pub fn vacuum_sqlite(path: &std::path::Path) -> anyhow::Result<(i64, i64)> {
    if DbUrl::check_sqlite(path)? {
        anyhow::bail!("{} 不存在", path.display());
    }
    let conn =
        open_sqlite_alone(path).map_err(|e| anyhow::anyhow!("无法整理 {}（请先停止服务）: {e}", path.display()))?;
    let page_size = |conn: &rusqlite::Connection| conn.query_row("pragma page_size", [], |r| r.get::<_, i64>(0));
    let before = page_size(&conn)?;
    // A database in WAL mode cannot change its page size: it left the log
    // (`open_sqlite_alone`) for the rewrite and goes back to it afterwards.
    conn.execute_batch(&format!("pragma page_size = {}; vacuum; pragma journal_mode = wal", writer::PAGE_SIZE))
        .map_err(|e| anyhow::anyhow!("无法整理 {}（请先停止服务）: {e}", path.display()))?;
    Ok((before, page_size(&conn)?))
}

/// Opens a SQLite file (creating it if missing) for a program that needs
/// it to itself (`vacuum`, `restore`), out of WAL mode. Leaving the log
/// needs every other connection gone, so a running server — or any other
/// program holding the file — makes this fail at once rather than wait.
pub fn open_sqlite_alone(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("pragma busy_timeout = 0; pragma journal_mode = delete")?;
    Ok(conn)
}

/// Milliseconds since the Unix epoch, UTC: how every time is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_hide_passwords() {
        assert_eq!("sqlite://fengqiao.db".parse::<DbUrl>().unwrap(), DbUrl::Sqlite { path: "fengqiao.db".into() });
        let pg: DbUrl = "postgres://u:secret@127.0.0.1/test".parse().unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert!(!format!("{pg:?}").contains("secret"));
        assert!("sqlite:/".parse::<DbUrl>().is_ok());
        assert!(matches!("postgress://x".parse::<DbUrl>(), Err(DbUrlError::UnknownScheme(_))));
        assert!(matches!("fengqiao.db".parse::<DbUrl>(), Err(DbUrlError::UnknownScheme(_))));
        assert!(matches!("sqlite://".parse::<DbUrl>(), Err(DbUrlError::EmptyPath(_))));
    }

    #[test]
    fn sqlite_refuses_missing_directory_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope/x.db");
        assert!(matches!(DbUrl::check_sqlite(&missing), Err(DbUrlError::MissingDirectory(_))));
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello world, not sqlite").unwrap();
        assert!(matches!(DbUrl::check_sqlite(&text), Err(DbUrlError::NotADatabase(_))));
        assert!(DbUrl::check_sqlite(&dir.path().join("new.db")).unwrap());
    }

    /// A new database gets the writer's page size; an existing one keeps
    /// the page size it was made with.
    #[tokio::test]
    async fn new_sqlite_databases_get_the_page_size_existing_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |path: &std::path::Path| -> i64 {
            rusqlite::Connection::open(path).unwrap().query_row("pragma page_size", [], |r| r.get(0)).unwrap()
        };
        let fresh = dir.path().join("fresh.db");
        let db = Db::connect(&format!("sqlite://{}", fresh.display()).parse().unwrap()).await.unwrap();
        sqlx::query("create table t (k integer primary key)").execute(&db.pool).await.unwrap();
        drop(db);
        assert_eq!(page_size(&fresh), writer::PAGE_SIZE as i64);

        let old = dir.path().join("old.db");
        rusqlite::Connection::open(&old)
            .unwrap()
            .execute_batch("pragma page_size = 4096; create table t (k integer primary key)")
            .unwrap();
        let db = Db::connect(&format!("sqlite://{}", old.display()).parse().unwrap()).await.unwrap();
        sqlx::query("insert into t (k) values (1)").execute(&db.pool).await.unwrap();
        drop(db);
        assert_eq!(page_size(&old), 4096);

        // `fengqiao vacuum` brings it to the new size with its rows intact,
        // back in WAL mode; not while a server has it open.
        let db = Db::connect(&format!("sqlite://{}", old.display()).parse().unwrap()).await.unwrap();
        let r = tokio::task::spawn_blocking({
            let old = old.clone();
            move || vacuum_sqlite(&old)
        });
        assert!(r.await.unwrap().is_err(), "vacuum must refuse a database in use");
        db.pool.close().await;
        drop(db);
        // The writer's threads let go of the file as they notice they are done.
        let mut sizes = vacuum_sqlite(&old);
        for _ in 0..50 {
            if sizes.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            sizes = vacuum_sqlite(&old);
        }
        assert_eq!(sizes.unwrap(), (4096, writer::PAGE_SIZE as i64));
        let conn = rusqlite::Connection::open(&old).unwrap();
        assert_eq!(conn.query_row("select k from t", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
        assert_eq!(conn.query_row("pragma journal_mode", [], |r| r.get::<_, String>(0)).unwrap(), "wal");
        assert!(vacuum_sqlite(&dir.path().join("missing.db")).is_err());
    }
}
