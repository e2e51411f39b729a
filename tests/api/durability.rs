//! What the server has answered, it keeps: through a crash, a graceful
//! stop, and other programs opening the database beside it. These tests
//! run the real `fengqiao` binary as its own process, as it is deployed.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::{both_backends, helpers::Backend};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

/// A `fengqiao serve` process on its own SQLite database.
struct Server {
    child: tokio::process::Child,
    base: String,
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

impl Server {
    /// Starts the server; the log starts over past `log_restart_mb` MiB.
    async fn start(dir: &Path, file: &Path, log_restart_mb: u64) -> Server {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fengqiao"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(format!("sqlite://{}", file.display()))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("FENGQIAO_SQLITE_LOG_RESTART_MB", log_restart_mb.to_string())
            .env("FENGQIAO_LOG", "warn")
            .env_remove("FENGQIAO_KEYS")
            .env_remove("FENGQIAO_KEY_FILE")
            .env_remove("FENGQIAO_SQLITE_SYNC")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(i) = line.find("http://") {
                    return line[i..].trim_end_matches('/').to_string();
                }
            }
            panic!("the server stopped before serving");
        })
        .await
        .expect("the server did not start within a minute");
        // Keep reading what it prints, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, base }
    }

    /// A graceful stop, as by systemd or `kill`.
    async fn terminate(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.unwrap().unwrap();
        assert!(exit.success(), "graceful stop: {exit}");
    }
}

/// A resident's report; answers its tracking code once the server has
/// acknowledged it, `None` if the server did not (it is gone).
async fn report(client: &reqwest::Client, base: &str, root: i64, n: usize) -> Option<String> {
    let body = json!({"category_code": "0303", "title": format!("路灯不亮 {n}"),
        "description": "3号楼前的两盏路灯一周不亮了，晚上很黑。", "address": "黑龙潭社区3号楼前", "node_id": root});
    let r = client.post(format!("{base}/api/v1/portal/orders")).json(&body).send().await.ok()?;
    if r.status() != reqwest::StatusCode::CREATED {
        return None;
    }
    let v: serde_json::Value = r.json().await.ok()?;
    Some(v["tracking_code"].as_str()?.to_string())
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
    let mut server = Server::start(dir.path(), &file, 1).await;

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
    let server = Server::start(dir.path(), &file, 256).await;
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
