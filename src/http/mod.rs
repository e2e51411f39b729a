//! Assembles the application: state, API and page routers, middleware
//! (request ids, request logs, security headers), and serving with
//! graceful shutdown.

pub mod extract;
mod openapi;
mod outbox_api;

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::Response,
    routing::get,
    Json, Router,
};
use serde::Serialize;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{throttle::Throttle, SecurityPolicy},
    crypto::Crypto,
    db::Db,
    orders::clock::Clock,
};

/// Runtime settings that are not the database.
#[derive(Clone, Debug)]
pub struct Config {
    /// Mark cookies `Secure` (browsers still accept them on http://localhost).
    pub cookie_secure: bool,
    /// Optional map tile URL template (e.g. 天地图); none means plain background.
    pub tile_url: Option<String>,
    pub data_dir: PathBuf,
    /// Serve `POST /bench/insert` (one plain row insert), the reference of
    /// `fengqiao bench orders`. Off except in benchmarks.
    pub bench_endpoints: bool,
    /// Sizes and counts of work-order attachments.
    pub attachments: crate::attachments::Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cookie_secure: true,
            tile_url: None,
            data_dir: PathBuf::from("data"),
            bench_endpoints: false,
            attachments: Default::default(),
        }
    }
}

/// The benchmark's ceiling: the cheapest durable write this server can do.
/// On SQLite that is one insert through the same group-commit writer the
/// work orders use (so the comparison is path for path); on PostgreSQL an
/// insert on the pool.
async fn bench_insert(State(s): State<AppState>, body: String) -> Result<StatusCode, crate::error::Error> {
    const SQL: &str = "insert into bench_rows (payload, created_at) values ($1, $2)";
    let now = crate::db::now_ms();
    match s.db.backend {
        crate::db::Backend::Sqlite => {
            s.db.write(move |conn| {
                conn.prepare_cached(SQL)?.execute(rusqlite::params![body, now])?;
                Ok(())
            })
            .await?
        }
        crate::db::Backend::Postgres => {
            sqlx::query(SQL).bind(body).bind(now).execute(&s.db.pool).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    /// Encryption of personal data at rest (SM4-GCM, HMAC-SM3 blind indexes).
    pub crypto: Crypto,
    /// The working-day clock; replaced when administrators edit the calendar.
    clock: Arc<std::sync::RwLock<Arc<Clock>>>,
    /// The password and session policy; replaced when administrators edit it.
    policy: Arc<std::sync::RwLock<Arc<SecurityPolicy>>>,
    /// Failed logins per client address.
    pub throttle: Arc<Throttle>,
}

impl AppState {
    /// Loads what the state needs from the database (the holiday calendar).
    pub async fn new(db: Db, config: Config, crypto: Crypto) -> crate::error::Result<AppState> {
        let clock = crate::orders::calendar::load_clock(&db).await?;
        let policy = crate::auth::policy::load(&db).await?;
        crate::audit::chain::install_keys(&crypto);
        Ok(AppState {
            db,
            config: Arc::new(config),
            crypto,
            clock: Arc::new(std::sync::RwLock::new(Arc::new(clock))),
            policy: Arc::new(std::sync::RwLock::new(Arc::new(policy))),
            throttle: Arc::new(Throttle::default()),
        })
    }

    pub fn policy(&self) -> Arc<SecurityPolicy> {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stores a new policy and applies it on this node at once (other nodes
    /// pick it up on their next start or policy read).
    pub async fn set_policy(&self, policy: SecurityPolicy) -> crate::error::Result<()> {
        crate::auth::policy::save(&self.db, &policy).await?;
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
        Ok(())
    }

    pub fn clock(&self) -> Arc<Clock> {
        self.clock.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuilds the clock after a calendar change.
    pub async fn reload_clock(&self) -> crate::error::Result<()> {
        let clock = crate::orders::calendar::load_clock(&self.db).await?;
        *self.clock.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(clock);
        Ok(())
    }
}

/// Re-reads the security policy every step, so that a change made on one
/// server node reaches the others within a minute.
pub struct PolicyReload {
    pub state: AppState,
    pub every: std::time::Duration,
}

impl crate::platform::jobs::Job for PolicyReload {
    fn name(&self) -> &'static str {
        "policy-reload"
    }

    fn every(&self) -> std::time::Duration {
        self.every
    }

    async fn run_once(&self) -> crate::error::Result<crate::platform::jobs::Outcome> {
        let p = crate::auth::policy::load(&self.state.db).await?;
        *self.state.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
        Ok(crate::platform::jobs::Outcome::Idle)
    }
}

/// The client's address, for sessions and (later) throttling and audit.
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Fengqiao (枫桥) API", description = "Grassroots social governance platform. \
        Log in with POST /api/v1/session and send `Authorization: Bearer <token>`. Errors are \
        `{\"error\":{\"code\",\"message\",\"field\"}}`."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;
impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// `sqlite` or `postgres`
    pub backend: &'static str,
    pub version: &'static str,
}

/// Liveness and the database backend in use.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz(State(s): State<AppState>) -> Result<Json<Health>, crate::error::Error> {
    sqlx::query("select 1").execute(&s.db.pool).await?;
    Ok(Json(Health { status: "ok", backend: s.db.backend.name(), version: env!("CARGO_PKG_VERSION") }))
}

/// The API routes and their OpenAPI document, built together so that no
/// route can be missing from the document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .merge(crate::auth::api::router())
        .merge(crate::auth::admin_api::router())
        .merge(crate::tree::api::router())
        .merge(crate::orders::api::router())
        .merge(crate::attachments::api::router())
        .merge(crate::audit::api::router())
        .merge(outbox_api::api())
        .split_for_parts();
    openapi::document_refusals(&mut doc);
    (router, doc)
}

pub fn app(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    let csp = content_security_policy(state.config.tile_url.as_deref());
    let bench = if state.config.bench_endpoints {
        Router::new().route("/bench/insert", axum::routing::post(bench_insert))
    } else {
        Router::new()
    };
    Router::new()
        .merge(api)
        .merge(bench)
        .route("/api/v1/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .merge(crate::web::router())
        .fallback(crate::web::not_found)
        .method_not_allowed_fallback(crate::web::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), crate::auth::guard::guard))
        .layer(middleware::from_fn(move |req, next| security_headers(csp.clone(), req, next)))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The path only: query strings may carry personal data.
            let id = req.extensions().get::<RequestId>().and_then(|r| r.header_value().to_str().ok()).unwrap_or("");
            tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn content_security_policy(tile_url: Option<&str>) -> HeaderValue {
    // Tile images are allowed only from the configured tile host.
    let tile_host = tile_url
        .and_then(|u| url::Url::parse(&u.replace(['{', '}'], "")).ok())
        .and_then(|u| u.host_str().map(|h| format!(" {}://{}", u.scheme(), h.replace("s.", "*."))))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:{tile_host}; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ))
    .expect("CSP is ASCII")
}

async fn security_headers(csp: HeaderValue, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    res
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
