//! What the server has answered, it keeps: through a crash, a graceful
//! stop, and other programs opening the database beside it. These tests
//! run the real `fengqiao` binary as its own process, as it is deployed.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::{
    binary::{report, Server},
    both_backends,
    helpers::Backend,
};

/// `fengqiao serve` on its own SQLite database.
async fn start(dir: &Path, file: &Path, log_restart_mb: u64) -> Server {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fengqiao"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(format!("sqlite://{}", file.display()))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("FENGQIAO_SQLITE_LOG_RESTART_MB", log_restart_mb.to_string())
        .env("FENGQIAO_LOG", "warn")
        .env_remove("FENGQIAO_KEYS")
        .env_remove("FENGQIAO_KEY_FILE")
        .env_remove("FENGQIAO_SQLITE_SYNC");
    Server::spawn(command).await
}

/// A directory with a database set up by `fengqiao init`, as an operator
/// would; answers the database file and the root node's id.
async fn initialised(dir: &Path) -> (PathBuf, i64) {
    let file = dir.join("fengqiao.db");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fengqiao"))
        .args(["init", "--region-code", "140107", "--region-name", "杏花岭区", "--db"])
        .arg(format!("sqlite://{}", file.display()))
        .env_remove("FENGQIAO_DB")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    let conn = rusqlite::Connection::open(&file).unwrap();
    let root = conn.query_row("select id from nodes where parent_id is null", [], |r| r.get(0)).unwrap();
    (file, root)
}

/// `clients` residents reporting one after another until `stop`; answers
/// every tracking code the server acknowledged.
async fn report_until(
    base: &str,
    root: i64,
    clients: usize,
    stop: impl std::future::Future<Output = ()>,
) -> Vec<String> {
    let acknowledged = Arc::new(Mutex::new(vec![]));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (acknowledged, done, base) = (acknowledged.clone(), done.clone(), base.to_string());
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            let mut n = c * 1_000_000;
            while !done.load(Ordering::Relaxed) {
                n += 1;
                match report(&client, &base, root, n).await {
                    Some(code) => acknowledged.lock().unwrap().push(code),
                    None => break,
                }
            }
        });
    }
    stop.await;
    done.store(true, Ordering::Relaxed);
    tasks.join_all().await;
    let codes = acknowledged.lock().unwrap().clone();
    codes
}

/// The tracking codes in the database file (with its log), read as the
/// next program to open it would, after checking the file is sound.
fn stored_codes(file: &Path) -> std::collections::HashSet<String> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let check: String = conn.query_row("pragma integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok", "the database is damaged");
    let mut stmt = conn.prepare("select tracking_code from orders").unwrap();
    let codes = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    codes
}

/// Reports keep coming in long enough for the server's log to start over
/// again and again, while another program (a monitoring script, the
/// `sqlite3` shell, a backup) opens the database, reads a count and closes
/// it, over and over. The server then dies (power supply, OOM killer:
/// SIGKILL). Every report it acknowledged is in the database afterwards,
/// and the other program never saw a damaged database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_survive_a_crash_while_another_program_reads_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (file, root) = initialised(dir.path()).await;
    let mut server = start(dir.path(), &file, 1).await;

    let stop = Arc::new(AtomicBool::new(false));
    let monitor = std::thread::spawn({
        let (stop, file) = (stop.clone(), file.clone());
        move || {
            let (mut reads, mut errors) = (0, vec![]);
            while !stop.load(Ordering::Relaxed) {
                let counted = rusqlite::Connection::open(&file).and_then(|conn| {
                    conn.busy_timeout(Duration::from_secs(5))?;
                    conn.query_row("select count(*) from orders", [], |r| r.get::<_, i64>(0))
                });
                match counted {
                    Ok(_) => reads += 1,
                    Err(e) => errors.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (reads, errors)
        }
    });

    let wal = file.with_extension("db-wal");
    let mut logged = 0u64;
    let base = server.base.clone();
    let acknowledged = report_until(&base, root, 8, async {
        // Reports for long enough that the log (1 MiB before it starts
        // over) has been filled many times.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(8) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            logged = logged.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        // Killed mid-stream: the reports answered just now are the ones
        // only the log holds.
        server.child.kill().await.unwrap();
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (reads, errors) = monitor.join().unwrap();

    assert!(acknowledged.len() > 300, "only {} reports acknowledged", acknowledged.len());
    assert!(reads > 50, "the other program read only {reads} times");
    assert!(logged >= 1 << 20, "the log never reached its restart size ({logged} bytes)");
    let stored = stored_codes(&file);
    let lost: Vec<_> = acknowledged.iter().filter(|c| !stored.contains(*c)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged reports lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(3)]
    );
    assert!(errors.is_empty(), "the other program saw: {:?}", &errors[..errors.len().min(3)]);
}

/// A graceful stop copies the log into the database and empties it: what
/// stays on disk is one complete file that a copy of it alone preserves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_leaves_no_log_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (file, root) = initialised(dir.path()).await;
    let server = start(dir.path(), &file, 256).await;
    let acknowledged = report_until(&server.base, root, 4, tokio::time::sleep(Duration::from_secs(2))).await;
    assert!(acknowledged.len() > 50, "only {} reports acknowledged", acknowledged.len());
    let wal = file.with_extension("db-wal");
    assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0, "the reports went to the log first");
    server.terminate().await;
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "the stopped server left {left} bytes of log");
    let stored = stored_codes(&file);
    assert!(acknowledged.iter().all(|c| stored.contains(c)));
}

// An answered write is on disk, not only handed to the operating system:
// a power cut right after the answer keeps it. Every connection that
// commits waits for the disk at commit.
both_backends!(answered_writes_wait_for_the_disk, |app| {
    match app.backend {
        Backend::Sqlite => {
            // 2 = full: the log is synced at every commit.
            for _ in 0..4 {
                let mut conn = app.db.pool.acquire().await.unwrap();
                let level: i64 = sqlx::query_scalar("pragma synchronous").fetch_one(&mut *conn).await.unwrap();
                assert_eq!(level, 2, "a pool connection");
            }
            let level =
                app.db.write(|conn| Ok(conn.query_row("pragma synchronous", [], |r| r.get::<_, i64>(0))?)).await;
            assert_eq!(level.unwrap(), 2, "the group-commit writer");
        }
        Backend::Postgres => {
            for _ in 0..4 {
                let mut conn = app.db.pool.acquire().await.unwrap();
                let (commit, fsync): (String, String) =
                    sqlx::query_as("select current_setting('synchronous_commit'), current_setting('fsync')")
                        .fetch_one(&mut *conn)
                        .await
                        .unwrap();
                assert_eq!((commit.as_str(), fsync.as_str()), ("on", "on"));
            }
        }
    }
});
