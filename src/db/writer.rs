//! Group commit for SQLite. SQLite has one writer at a time, and most of
//! a small write's cost is the hand-over around it: taking the lock,
//! `begin`, `commit`, waking the next waiter. One thread owns a direct
//! connection (rusqlite on the same SQLite library as sqlx's driver, so a
//! statement is a function call, not two thread hand-overs), takes every
//! write that queued up while the previous batch ran, and commits them
//! together. Each write runs inside its own savepoint, so one that fails
//! (or panics) is rolled back alone and the rest of its batch still
//! commits; nobody is answered before the commit that made their write
//! durable.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
    sync::{mpsc, Arc},
};

use rusqlite::Connection;
use tokio::sync::{oneshot, Mutex};

use crate::error::{Error, Result};

/// Delivers a write's result once its batch's outcome is known.
type Finish = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// Runs one write on the writer's connection; says whether it succeeded.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// Writes batched this many at most per transaction, so a long queue still
/// commits (and answers) in steady steps.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<Stats>,
}

/// Batches committed and writes in them, for benchmarks.
#[derive(Default)]
pub struct Stats {
    pub batches: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
}

/// Opens a direct connection with the settings of the pool's connections.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "pragma foreign_keys = on; pragma busy_timeout = 5000; \
         pragma synchronous = normal; pragma cache_size = -65536",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Writer {
    /// Starts the writer thread on its own connection to the database at
    /// `path`. `lock` is the process's SQLite write lock, held for each
    /// batch so other writers (through the pool) queue fairly.
    pub fn start(path: &Path, lock: Arc<Mutex<()>>) -> anyhow::Result<Writer> {
        let conn = open(path)?;
        // Copying the log back into the database (a checkpoint) would
        // otherwise fall to whichever commit crosses the threshold, here
        // nearly always this thread, which every write waits for; a thread
        // of its own does it instead, beside the writes.
        conn.execute_batch("pragma wal_autocheckpoint = 0")?;
        // Each write's savepoint keeps the pages it changes in a statement
        // journal, a temporary file that goes to disk past 64 KiB; in
        // memory it is a copy instead of a `pwrite` per page.
        conn.execute_batch("pragma temp_store = memory")?;
        let checkpointer = open(path)?;
        // The checkpoint thread ends with the writer (when its sender goes).
        let (alive, writer_gone) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, writer_gone))?;
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
    /// `Err` from `f` rolls back only what `f` wrote.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let job: Job = Box::new(move |conn| {
            let r = f(conn);
            let ok = r.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = tx.send(match (commit, r) {
                    (Ok(()), r) => r,
                    (Err(_), Err(e)) => Err(e),
                    (Err(msg), Ok(_)) => Err(anyhow::anyhow!("group commit failed: {msg}").into()),
                });
            });
            (ok, finish)
        });
        self.jobs.send(job).map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer has stopped")))?;
        rx.await.map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer dropped a write")))?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>, lock: Arc<Mutex<()>>, stats: &Stats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
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
        let mut finishes = Vec::with_capacity(batch.len());
        let outcome = run_batch(&conn, &mut batch, &mut finishes);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = finishes.len(), "SQLite group commit failed");
            let _ = conn.execute_batch("rollback");
        }
        // Jobs not reached are dropped, which answers them with an error.
        batch.clear();
        let outcome = outcome.map_err(|e| e.to_string());
        for finish in finishes {
            finish(outcome.clone());
        }
    }
}

/// How often the checkpoint thread looks at the log.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Checkpoints in the background (`passive`: never waits for readers or
/// the writer; what it cannot copy now it copies next time) until the
/// writer stops.
fn checkpoints(conn: Connection, writer_gone: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = writer_gone.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("pragma wal_checkpoint(passive)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
        }
    }
}

fn step(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_batch(conn: &Connection, batch: &mut Vec<Job>, finishes: &mut Vec<Finish>) -> rusqlite::Result<()> {
    step(conn, "begin immediate")?;
    for job in batch.drain(..) {
        step(conn, "savepoint w")?;
        // A write that panics is a bug in that write: it is undone and
        // answered with an error (its sender is dropped), and the batch goes on.
        let ok = match catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok((ok, finish)) => {
                finishes.push(finish);
                ok
            }
            Err(_) => {
                tracing::error!("a SQLite write panicked; rolled back alone");
                false
            }
        };
        if !ok {
            step(conn, "rollback to w")?;
        }
        step(conn, "release w")?;
    }
    step(conn, "commit")
}

#[cfg(test)]
mod tests {
    use crate::db::{Db, DbUrl};

    /// Concurrent writes share transactions; one that fails after writing
    /// is undone alone, and everyone else's write is there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_does_not_poison_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let url: DbUrl = format!("sqlite://{}", dir.path().join("w.db").display()).parse().unwrap();
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("create table t (k bigint primary key)").execute(&db.pool).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for k in 0..200i64 {
            let db = db.clone();
            tasks.spawn(async move {
                let r = db
                    .write(move |conn| {
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
}
