//! Group commit for SQLite. SQLite has one writer at a time, and most of
//! a small write's cost is the hand-over around it: taking the lock,
//! `begin`, `commit`, waking the next waiter. One task owns a connection,
//! takes every write that queued up while the previous batch ran, and
//! commits them together. Each write runs inside its own savepoint, so one
//! that fails is rolled back alone and the rest of its batch still commits;
//! nobody is answered before the commit that made their write durable.

use std::{future::Future, pin::Pin, sync::Arc};

use sqlx::AnyConnection;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::{Error, Result};

pub type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Delivers a write's result once its batch's outcome is known.
type Finish = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// Runs one write on the writer's connection; says whether it succeeded.
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Finish)> + Send>;

/// Writes batched this many at most per transaction, so a long queue still
/// commits (and answers) in steady steps.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer task on a connection of `pool`. `lock` is the
    /// process's SQLite write lock, held for each batch so other writers
    /// queue fairly.
    pub async fn start(pool: &sqlx::AnyPool, lock: Arc<Mutex<()>>) -> sqlx::Result<Writer> {
        let conn = pool.acquire().await?.detach();
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool.clone(), conn, rx, lock));
        Ok(Writer { jobs })
    }

    /// Runs `f` in the next batch and answers after that batch commits. An
    /// `Err` from `f` rolls back only what `f` wrote.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<R>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let r = f(conn).await;
                let ok = r.is_ok();
                let finish: Finish = Box::new(move |commit| {
                    let _ = tx.send(match (commit, r) {
                        (Ok(()), r) => r,
                        (Err(_), Err(e)) => Err(e),
                        (Err(msg), Ok(_)) => Err(anyhow::anyhow!("group commit failed: {msg}").into()),
                    });
                });
                (ok, finish)
            })
        });
        self.jobs.send(job).map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer has stopped")))?;
        rx.await.map_err(|_| Error::Internal(anyhow::anyhow!("the SQLite writer dropped a write")))?
    }
}

async fn run(pool: sqlx::AnyPool, mut conn: AnyConnection, mut rx: mpsc::UnboundedReceiver<Job>, lock: Arc<Mutex<()>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let _guard = lock.lock().await;
        let jobs = std::mem::take(&mut batch);
        // Each batch runs as a task of its own, so a write that panics costs
        // its batch (answered with errors, rolled back with the dropped
        // connection) and not every later write.
        let done = tokio::spawn(async move {
            let mut jobs = jobs;
            let mut finishes = Vec::with_capacity(jobs.len());
            let outcome = run_batch(&mut conn, &mut jobs, &mut finishes).await;
            if let Err(e) = &outcome {
                tracing::error!(error = %e, writes = finishes.len(), "SQLite group commit failed");
                let _ = sqlx::query("rollback").execute(&mut conn).await;
            }
            // Jobs not reached are dropped, which answers them with an error.
            drop(jobs);
            let outcome = outcome.map_err(|e| e.to_string());
            for finish in finishes {
                finish(outcome.clone());
            }
            conn
        })
        .await;
        conn = match done {
            Ok(conn) => conn,
            Err(e) => {
                tracing::error!(error = %e, "SQLite writer batch panicked; reconnecting");
                match pool.acquire().await {
                    Ok(c) => c.detach(),
                    Err(e) => {
                        tracing::error!(error = %e, "SQLite writer cannot reconnect; stopping");
                        return;
                    }
                }
            }
        };
    }
}

async fn run_batch(conn: &mut AnyConnection, batch: &mut Vec<Job>, finishes: &mut Vec<Finish>) -> sqlx::Result<()> {
    // Opening the next savepoint rides along with closing the previous
    // one: one trip to SQLite's worker thread per write, not two.
    sqlx::query("begin immediate; savepoint w").execute(&mut *conn).await?;
    let n = batch.len();
    for (i, job) in batch.drain(..).enumerate() {
        let (ok, finish) = job(&mut *conn).await;
        finishes.push(finish);
        let undo = if ok { "" } else { "rollback to w; " };
        let next = if i + 1 < n { "savepoint w" } else { "commit" };
        sqlx::query(&format!("{undo}release w; {next}")).execute(&mut *conn).await?;
    }
    Ok(())
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
                        Box::pin(async move {
                            sqlx::query("insert into t (k) values ($1)").bind(k).execute(&mut *conn).await?;
                            if k % 7 == 3 {
                                // Fails after its insert: the insert must not survive.
                                sqlx::query("insert into t (k) values ($1)").bind(k).execute(&mut *conn).await?;
                            }
                            Ok(k)
                        })
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

    /// A write that panics fails alone; the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_survives_a_panicking_write() {
        let dir = tempfile::tempdir().unwrap();
        let url: DbUrl = format!("sqlite://{}", dir.path().join("p.db").display()).parse().unwrap();
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("create table t (k bigint primary key)").execute(&db.pool).await.unwrap();
        let panicked = db
            .write(|conn| {
                Box::pin(async move {
                    sqlx::query("insert into t (k) values (1)").execute(&mut *conn).await?;
                    panic!("a bug in a write");
                    #[allow(unreachable_code)]
                    Ok(())
                })
            })
            .await;
        assert!(panicked.is_err());
        db.write(|conn| {
            Box::pin(async move {
                sqlx::query("insert into t (k) values (2)").execute(&mut *conn).await?;
                Ok(())
            })
        })
        .await
        .unwrap();
        let stored: Vec<i64> = sqlx::query_scalar("select k from t").fetch_all(&db.pool).await.unwrap();
        assert_eq!(stored, vec![2]);
    }
}
