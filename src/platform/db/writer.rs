//! Group commit for SQLite. SQLite has one writer at a time, and most of
//! a small write's cost is the hand-over around it: taking the lock,
//! `begin`, `commit`, waking the next waiter. One thread owns a direct
//! connection (rusqlite on the same SQLite library as sqlx's driver, so a
//! statement is a function call, not two thread hand-overs), takes every
//! write that queued up while the previous batch ran, and commits them
//! together. A write that fails (or panics) is rolled back alone and the
//! rest of its batch still commits: a batch first runs without savepoints
//! (each costs a copy of every page its write touches), and only when one
//! of its writes fails is it rolled back and run again with a savepoint
//! around each write. Writes are therefore functions that may run twice.
//! Nobody is answered before the commit that made their write durable.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
    sync::{mpsc, Arc},
};

use rusqlite::Connection;
use tokio::sync::{oneshot, Mutex};

use super::{SqliteOptions, Synchronous};
use crate::kernel::error::{Error, Result};

/// One queued write. `run` may be called more than once (a batch in
/// which some write failed is run again), each time in a fresh
/// transaction; only the last run's result counts.
trait Job: Send {
    /// Runs the write; says whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's outcome is known.
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

struct Write<F, R> {
    f: F,
    result: Option<Result<R>>,
    answer: oneshot::Sender<Result<R>>,
}

impl<F, R> Job for Write<F, R>
where
    F: FnMut(&Connection) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        self.result = None;
        let r = (self.f)(conn);
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let _ = self.answer.send(match (commit, self.result) {
            (_, None) => Err(anyhow::anyhow!("the SQLite write panicked").into()),
            (Ok(()), Some(r)) => r,
            (Err(_), Some(Err(e))) => Err(e),
            (Err(msg), Some(Ok(_))) => Err(anyhow::anyhow!("group commit failed: {msg}").into()),
        });
    }
}

/// Writes batched this many at most per transaction, so a long queue still
/// commits (and answers) in steady steps.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    stats: Arc<Stats>,
}

/// Batches committed and writes in them, for benchmarks.
#[derive(Default)]
pub struct Stats {
    pub batches: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
}

/// The page size of a new SQLite database (an existing one keeps its own
/// until `vacuum`). Every commit writes each page it changed whole into the
/// log, and the checkpoint writes it again into the database; an order's
/// action changes a few bytes on each of some twenty pages (its row, the
/// index entries its new state moves, its event, the queue counts, the
/// audit entry and its indexes). With 2 KiB pages a commit of the order
/// benchmark writes ~100 KiB of log instead of ~260 KiB (so does the
/// checkpoint after it); transitions per second stayed the same within
/// this machine's noise and the 99th percentile at half load fell by about
/// a tenth (21 A/B rounds in BENCHMARKS.md, ninth session). Order rows
/// (~450 bytes) still fit four to a page.
pub const PAGE_SIZE: u32 = 2048;

/// Opens a direct connection with the settings of the pool's connections.
pub fn open(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "pragma page_size = {PAGE_SIZE}; pragma foreign_keys = on; pragma busy_timeout = 5000; \
         pragma synchronous = {}; pragma cache_size = -65536",
        synchronous.name()
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Writer {
    /// Starts the writer thread on its own connection to the database at
    /// `path`. `lock` is the process's SQLite write lock, held for each
    /// batch so other writers (through the pool) queue fairly.
    pub fn start(path: &Path, lock: Arc<Mutex<()>>, options: SqliteOptions) -> anyhow::Result<Writer> {
        Writer::start_with(path, lock, LogLimits::restarting_at(options.log_restart_bytes), options.synchronous)
    }

    fn start_with(
        path: &Path,
        lock: Arc<Mutex<()>>,
        limits: LogLimits,
        synchronous: Synchronous,
    ) -> anyhow::Result<Writer> {
        let conn = open(path, synchronous)?;
        // Copying the log back into the database (a checkpoint) would
        // otherwise fall to whichever commit crosses the threshold, here
        // nearly always this thread, which every write waits for; a thread
        // of its own does it instead, beside the writes.
        conn.execute_batch("pragma wal_autocheckpoint = 0")?;
        // A savepoint (of a batch run again) or a statement that may fail
        // halfway (an upsert) keeps the pages it changes in a statement
        // journal, a temporary file that goes to disk past 64 KiB; in
        // memory it is a copy instead of a `pwrite` per page.
        conn.execute_batch("pragma temp_store = memory")?;
        // A page cache of 16 MiB rather than the pool's 64: when an insert
        // splits a page, SQLite renumbers pages through the number of the
        // lock-byte page (1 GiB in), and the commit that follows walks the
        // whole cache to drop pages past the end of the file, at a cost
        // that grows with the pages cached — 4 % of the writer's time with
        // ~4,000 pages, more as the cache fills. The pages writes keep
        // coming back to (upper levels, the newest rows) fit in 16 MiB, and
        // the rest come from the operating system's cache. With 8 MiB no
        // faster; A/B in BENCHMARKS.md.
        conn.execute_batch("pragma cache_size = -16384")?;
        // When the log starts over, a file grown well past the restart
        // threshold (below) is cut back.
        conn.execute_batch(&format!("pragma journal_size_limit = {}", limits.size_limit))?;
        let checkpointer = open(path, synchronous)?;
        // The checkpoint thread ends with the writer (when its sender goes).
        let (alive, writer_gone) = mpsc::channel::<()>();
        std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn({
            let lock = lock.clone();
            move || checkpoints(checkpointer, writer_gone, lock, limits.restart_after_frames)
        })?;
        let (jobs, rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let counted = stats.clone();
        std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || {
            let _alive = alive;
            run(conn, rx, lock, &counted)
        })?;
        Ok(Writer { jobs, stats })
    }

    /// (batches, writes) committed so far.
    pub fn stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.stats.batches.load(Relaxed), self.stats.writes.load(Relaxed))
    }

    /// Runs `f` in the next batch and answers after that batch commits. An
    /// `Err` from `f` rolls back only what `f` wrote. `f` may be called
    /// twice (see the module's documentation): it must not have effects
    /// outside the database.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&Connection) -> Result<R> + Send + 'static,
    {
        let (answer, rx) = oneshot::channel::<Result<R>>();
        let job: Box<dyn Job> = Box::new(Write { f, result: None, answer });
        self.jobs.send(job).map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer has stopped")))?;
        rx.await.map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer dropped a write")))?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, lock: Arc<Mutex<()>>, stats: &Stats) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let _guard = lock.blocking_lock();
        stats.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.writes.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let outcome = match run_batch(&conn, &mut batch, false) {
            Ok(true) => Ok(()),
            // A write failed: start again, each write in its own savepoint.
            Ok(false) => {
                let _ = conn.execute_batch("rollback");
                run_batch(&conn, &mut batch, true).map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = batch.len(), "SQLite group commit failed");
            let _ = conn.execute_batch("rollback");
        }
        let outcome = outcome.map_err(|e| e.to_string());
        for job in batch.drain(..) {
            job.finish(outcome.clone());
        }
    }
}

/// How often the checkpoint thread copies the log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// How long the log may grow.
#[derive(Clone, Copy)]
struct LogLimits {
    /// Frames (pages) in the log past which the log is made to start over.
    restart_after_frames: i64,
    /// Bytes the log file is cut back to when it starts over.
    size_limit: u64,
}

/// 256 MiB of pages in frames (131,072 of 2 KiB); a file of at most
/// 512 MiB. Each restart pauses writes while the checkpoint copies the
/// last frames and syncs, so under sustained load it must be rare: at
/// half the benchmark's peak, restarts every 0.4 s (at 64 MiB) held up
/// about 2 % of requests and set their 99th percentile (9–10 ms, against
/// 5 ms with no restarts at all); at 256 MiB they came about every 0.8 s
/// at the peak and 1.5 s at half of it with 4 KiB pages, less often with
/// 2 KiB ones. The file keeps its size and its pages stay in memory for
/// the next round. Under ordinary load the log starts over by itself
/// whenever the writer pauses long enough for a passive checkpoint to
/// catch up, so the file stays small.
pub const LOG_RESTART_BYTES: u64 = 1 << 28;

impl LogLimits {
    /// Restarts past `bytes` of log; the file is cut back to twice that.
    fn restarting_at(bytes: u64) -> LogLimits {
        LogLimits {
            restart_after_frames: (bytes / PAGE_SIZE as u64).max(1) as i64,
            size_limit: bytes.saturating_mul(2),
        }
    }
}

/// Checkpoints in the background until the writer stops. Mostly `passive`
/// (never waits for readers or the writer; what it cannot copy now it
/// copies next time). But SQLite starts the log over only when a write
/// transaction begins with every frame already copied, which under a
/// steady stream of writes never happens: the log would grow without end,
/// and every new page of it costs the kernel an allocation and zeroing
/// (a quarter of all CPU time at full load). So once the log is long, the
/// checkpoint takes the write lock for the moment it needs to copy the
/// last frames and wait out the readers of the log (`restart`); the next
/// write then starts the log from its beginning, over pages already in
/// memory.
fn checkpoints(conn: Connection, writer_gone: mpsc::Receiver<()>, lock: Arc<Mutex<()>>, restart_after_frames: i64) {
    let frames = |mode: &str| conn.query_row(&format!("pragma wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(1));
    while let Err(mpsc::RecvTimeoutError::Timeout) = writer_gone.recv_timeout(CHECKPOINT_EVERY) {
        let outcome = match frames("passive") {
            Ok(n) if n > restart_after_frames => {
                // Under steady writes a passive checkpoint seldom reaches the
                // end of the log, and only then does it sync the database
                // file: the pages it copied stay unsynced, and the restart's
                // sync, which writers wait for, would write them all (50–70
                // ms of stalled writes with a 1 GiB log). Synced here first,
                // beside the writes, they leave the restart only the last
                // moment's.
                if let Err(e) = sync_database_file(&conn) {
                    tracing::warn!(error = %e, "syncing the SQLite database file failed");
                }
                let _writes_wait = lock.blocking_lock();
                let held = std::time::Instant::now();
                let r = frames("restart");
                tracing::debug!(frames = n, held_ms = held.elapsed().as_secs_f64() * 1e3, "SQLite log restarted");
                r
            }
            other => other,
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
        }
    }
}

/// Syncs the database file through `conn`'s own handle on it. Never
/// through a file opened here: closing it would drop every lock this
/// process holds on the database (POSIX locks belong to the process, not
/// to a file handle; SQLite's "How To Corrupt An SQLite Database File",
/// 2.2), and the next program to open and close the database — the
/// `sqlite3` shell, a backup — would take itself for its last user and
/// delete the log the server is still writing, answered writes and all.
fn sync_database_file(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    let failed = |rc| rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some("syncing the database file".into()));
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` is open and used by this thread alone; the file
    // object SQLite hands back is its own and lives as long as `conn`.
    // `xSync` (an fsync of its descriptor) needs none of SQLite's locks.
    unsafe {
        let rc = ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&mut file as *mut *mut ffi::sqlite3_file).cast(),
        );
        if rc != ffi::SQLITE_OK {
            return Err(failed(rc));
        }
        // Not open yet: nothing of this connection's to sync.
        let Some(methods) = file.as_ref().and_then(|f| f.pMethods.as_ref()) else { return Ok(()) };
        match methods.xSync {
            Some(sync) => match sync(file, ffi::SQLITE_SYNC_NORMAL) {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(failed(rc)),
            },
            None => Ok(()),
        }
    }
}

fn step(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs a batch in one transaction. Without savepoints it stops at the
/// first write that fails and answers `false`, leaving the transaction
/// open for the caller to roll back; with them, a failing write is undone
/// alone and the batch commits.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>], savepoints: bool) -> rusqlite::Result<bool> {
    step(conn, "begin immediate")?;
    for job in batch.iter_mut() {
        if savepoints {
            step(conn, "savepoint w")?;
        }
        // A write that panics is a bug in that write: it is undone and
        // answered with an error, and the batch goes on.
        let ok = catch_unwind(AssertUnwindSafe(|| job.run(conn))).unwrap_or_else(|_| {
            tracing::error!("a SQLite write panicked; rolled back alone");
            false
        });
        match (ok, savepoints) {
            (true, _) => {}
            (false, false) => return Ok(false),
            (false, true) => step(conn, "rollback to w")?,
        }
        if savepoints {
            step(conn, "release w")?;
        }
    }
    step(conn, "commit")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use crate::platform::db::{Db, DbUrl};

    /// Concurrent writes share transactions; one that fails after writing
    /// is undone alone, and everyone else's write is there, once, though
    /// the batch it failed in ran again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_does_not_poison_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let url: DbUrl = format!("sqlite://{}", dir.path().join("w.db").display()).parse().unwrap();
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("create table t (k bigint primary key)").execute(&db.pool).await.unwrap();
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for k in 0..200i64 {
            let db = db.clone();
            let runs = runs.clone();
            tasks.spawn(async move {
                let r = db
                    .write(move |conn| {
                        runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        conn.execute("insert into t (k) values (?1)", [k])?;
                        if k % 7 == 3 {
                            // Fails after its insert: the insert must not survive.
                            conn.execute("insert into t (k) values (?1)", [k])?;
                        }
                        Ok(k)
                    })
                    .await;
                (k, r.is_ok())
            });
        }
        let mut ok = vec![];
        while let Some(r) = tasks.join_next().await {
            let (k, good) = r.unwrap();
            assert_eq!(good, k % 7 != 3, "write {k}");
            if good {
                ok.push(k);
            }
        }
        ok.sort();
        let stored: Vec<i64> = sqlx::query_scalar("select k from t order by k").fetch_all(&db.pool).await.unwrap();
        assert_eq!(stored, ok);
        // A batch with a failing write ran again, with savepoints.
        assert!(runs.load(std::sync::atomic::Ordering::Relaxed) > 200);
    }

    /// A write that panics fails alone, its rows undone; the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_survives_a_panicking_write() {
        let dir = tempfile::tempdir().unwrap();
        let url: DbUrl = format!("sqlite://{}", dir.path().join("p.db").display()).parse().unwrap();
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("create table t (k bigint primary key)").execute(&db.pool).await.unwrap();
        let panicked = db
            .write(|conn| {
                conn.execute("insert into t (k) values (1)", [])?;
                panic!("a bug in a write");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await;
        assert!(panicked.is_err());
        db.write(|conn| {
            conn.execute("insert into t (k) values (2)", [])?;
            Ok(())
        })
        .await
        .unwrap();
        let stored: Vec<i64> = sqlx::query_scalar("select k from t").fetch_all(&db.pool).await.unwrap();
        assert_eq!(stored, vec![2]);
    }

    /// The writer leaves checkpoints to their own thread, which copies
    /// what the writer logged into the database file within moments.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.db");
        let url: DbUrl = format!("sqlite://{}", file.display()).parse().unwrap();
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("create table t (k bigint primary key, v text)").execute(&db.pool).await.unwrap();
        // Let any checkpoint of the table's creation pass first.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let before = std::fs::metadata(&file).unwrap().len();
        db.write(|conn| {
            for k in 0..2000i64 {
                conn.execute("insert into t (k, v) values (?1, ?2)", rusqlite::params![k, "x".repeat(400)])?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::metadata(&file).unwrap().len() < before + 800_000 {
            assert!(std::time::Instant::now() < deadline, "the log was not checkpointed into {}", file.display());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Under a steady stream of writes and reads the log still starts over
    /// (SQLite alone would let it grow without end: it restarts only when
    /// a write begins with every frame already copied).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_stays_short_under_constant_writes() {
        use super::{LogLimits, Writer};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.db");
        let setup = rusqlite::Connection::open(&file).unwrap();
        setup.execute_batch("pragma journal_mode = wal; create table t (k integer primary key, v blob)").unwrap();
        drop(setup);
        let limits = LogLimits { restart_after_frames: 4096, size_limit: 32 << 20 };
        let writer = Writer::start_with(&file, Default::default(), limits, Default::default()).unwrap();
        let readers = std::sync::Arc::new(super::super::direct::Readers::new(file.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..8i64 {
            let (writer, readers) = (writer.clone(), readers.clone());
            tasks.spawn(async move {
                for i in 0..2000i64 {
                    // About 2 pages per row, more with the tree's pages: without
                    // restarts the log grows past 350 MB.
                    writer
                        .write(move |conn| {
                            conn.execute("insert into t (k, v) values (?1, zeroblob(8000))", [w * 10_000 + i])?;
                            Ok(())
                        })
                        .await
                        .unwrap();
                    readers
                        .with(|conn| Ok(conn.query_row("select count(*) from t where k < 5", [], |_| Ok(()))?))
                        .unwrap();
                }
            });
        }
        tasks.join_all().await;
        let log = std::fs::metadata(dir.path().join("r.db-wal")).map(|m| m.len()).unwrap();
        // Without restarts it reaches about 390 MB; with them it is cut back
        // to 32 MiB each time, though on a loaded machine (tests in parallel)
        // a few restarts' worth can pile up between two checkpoints.
        assert!(log < 8 * limits.size_limit, "the log grew to {log} bytes");
        let n: i64 = readers.with(|conn| Ok(conn.query_row("select count(*) from t", [], |r| r.get(0))?)).unwrap();
        assert_eq!(n, 16_000);
    }
}
