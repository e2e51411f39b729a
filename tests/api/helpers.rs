//! Test harness: every test runs against a real server on a free port,
//! once on a fresh SQLite file and once on a fresh PostgreSQL schema.
//! When PostgreSQL is not reachable, the PostgreSQL half says so loudly
//! and is skipped.

use fengqiao::{
    platform::{
        crypto::Crypto,
        db::{self, Db, DbUrl},
    },
    web::{AppState, Config},
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::OnceCell;

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "Test@2026pass";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body on both backends as two separate tests.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.unwrap();
                $body
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                    return;
                };
                $body
            }
        }
    };
}

pub fn pg_base_url() -> String {
    std::env::var("FENGQIAO_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static PG_OK: OnceCell<bool> = OnceCell::const_new();

async fn pg_available() -> bool {
    *PG_OK
        .get_or_init(|| async {
            let url: DbUrl = pg_base_url().parse().unwrap();
            match tokio::time::timeout(std::time::Duration::from_secs(5), Db::connect(&url)).await {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => {
                    eprintln!("\n!!! PostgreSQL SKIPPED: not reachable at {}: {e}\n", pg_base_url());
                    false
                }
                Err(_) => {
                    eprintln!("\n!!! PostgreSQL SKIPPED: connecting to {} timed out\n", pg_base_url());
                    false
                }
            }
        })
        .await
}

pub struct TestApp {
    pub addr: String,
    pub db: Db,
    /// The server's key ring (in memory, fresh per test).
    pub crypto: Crypto,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub root_id: i64,
    /// The server's state, to drive the deadline timers step by step.
    pub state_for_timers: AppState,
    /// The server's data directory (attachments), fresh per test.
    pub data_dir: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
    _data: tempfile::TempDir,
}

/// A fresh database of the given backend, migrated, with a district root
/// and an administrator; `None` when PostgreSQL is unavailable.
pub async fn fresh_db(backend: Backend) -> Option<(Db, Option<tempfile::TempDir>)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url: DbUrl = format!("sqlite://{}", dir.path().join("t.db").display()).parse().unwrap();
            let db = Db::connect(&url).await.unwrap();
            db::migrate(&db).await.unwrap();
            Some((db, Some(dir)))
        }
        Backend::Postgres => {
            if !pg_available().await {
                return None;
            }
            // One schema per test: cheaper than a database, equally isolated.
            let schema = format!("fq_t_{}", &fengqiao::platform::crypto::random_token()[..16]);
            let base: DbUrl = pg_base_url().parse().unwrap();
            let admin = Db::connect(&base).await.unwrap();
            sqlx::query(&format!("create schema {schema}")).execute(&admin.pool).await.unwrap();
            admin.pool.close().await;
            let sep = if pg_base_url().contains('?') { '&' } else { '?' };
            let url: DbUrl = format!("{}{sep}options=-c%20search_path%3D{schema}", pg_base_url()).parse().unwrap();
            let db = Db::connect(&url).await.unwrap();
            db::migrate(&db).await.unwrap();
            Some((db, None))
        }
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Like `spawn_app`, with settings changed (e.g. small upload limits).
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let (db, dir) = fresh_db(backend).await?;
    fengqiao::demo::init_root(&db, "140107", "杏花岭区", ADMIN, PASSWORD).await.unwrap();
    // `init` makes the first administrator change the password at first
    // login; tests of that flow set the flag again themselves.
    sqlx::query("update users set must_change_password = 0").execute(&db.pool).await.unwrap();
    let root_id: i64 =
        sqlx::query_scalar("select id from nodes where parent_id is null").fetch_one(&db.pool).await.unwrap();
    Some(start_configured(db, Crypto::ephemeral(), dir, backend, root_id, tweak).await)
}

pub async fn start_with(
    db: Db,
    crypto: Crypto,
    dir: Option<tempfile::TempDir>,
    backend: Backend,
    root_id: i64,
) -> TestApp {
    start_configured(db, crypto, dir, backend, root_id, |_| {}).await
}

async fn start_configured(
    db: Db,
    crypto: Crypto,
    dir: Option<tempfile::TempDir>,
    backend: Backend,
    root_id: i64,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    if std::env::var("FQ_TEST_LOG").is_ok() {
        fengqiao::platform::telemetry::init(false);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let data = tempfile::tempdir().unwrap();
    let mut config = Config { cookie_secure: false, data_dir: data.path().to_path_buf(), ..Config::default() };
    tweak(&mut config);
    let state = fengqiao::app::state(db.clone(), config, crypto.clone()).await.unwrap();
    let state_clone = state.clone();
    tokio::spawn(fengqiao::app::serve(listener, state, std::future::pending()));
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let data_dir = data.path().to_path_buf();
    TestApp {
        addr,
        db,
        crypto,
        client,
        backend,
        root_id,
        state_for_timers: state_clone,
        data_dir,
        _dir: dir,
        _data: data,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// The error code of a JSON error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, body, headers }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/v1/session",
                None,
                Some(serde_json::json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "login {username}: {:?}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }

    pub async fn admin(&self) -> String {
        self.login(ADMIN, PASSWORD).await
    }

    /// The SQLite database file and its write-ahead log (SQLite only).
    pub fn sqlite_files(&self) -> Vec<std::path::PathBuf> {
        let dir = self._dir.as_ref().expect("an SQLite test app").path();
        vec![dir.join("t.db"), dir.join("t.db-wal")]
    }

    /// Creates a user bound to a node with the given roles; the password is `PASSWORD`.
    pub async fn add_user(&self, username: &str, node_id: i64, roles: &[&str]) {
        let hash = fengqiao::auth::password::hash(PASSWORD.to_string()).await;
        let mut conn = self.db.pool.acquire().await.unwrap();
        fengqiao::auth::create_user(
            &mut conn,
            fengqiao::auth::NewUser {
                username,
                display_name: username,
                password_hash: &hash,
                node_id,
                roles,
                must_change_password: false,
            },
        )
        .await
        .unwrap();
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(&self.db.pool).await.unwrap()
    }

    /// Creates a node through the API and returns its JSON.
    pub async fn create(&self, token: &str, body: Value) -> Value {
        let r = self.post("/api/v1/nodes", token, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "create {body}: {:?}", r.body);
        r.body
    }
}

/// A closed rectangle polygon in GeoJSON.
pub fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Value {
    serde_json::json!({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]})
}
