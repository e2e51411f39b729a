//! Assembles the application: state, API and page routers, middleware
//! (request ids, request logs, security headers), and serving with
//! graceful shutdown.

pub mod cli;
mod openapi;
mod outbox_api;
mod outbox_pages;
mod pages;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue},
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

use crate::platform::{crypto::Crypto, db::Db};
pub use crate::web::{AppState, ClientAddr, Config};

#[cfg(feature = "bench")]
/// The benchmark's ceiling: the cheapest durable write this server can do.
/// On SQLite that is one insert through the same group-commit writer the
/// work orders use (so the comparison is path for path); on PostgreSQL an
/// insert on the pool.
async fn bench_insert(
    State(s): State<AppState>,
    body: String,
) -> Result<axum::http::StatusCode, crate::kernel::error::Error> {
    const SQL: &str = "insert into bench_rows (payload, created_at) values ($1, $2)";
    let now = crate::platform::db::now_ms();
    match s.db.backend {
        crate::platform::db::Backend::Sqlite => {
            s.db.write(move |conn| {
                conn.prepare_cached(SQL)?.execute(rusqlite::params![body, now])?;
                Ok(())
            })
            .await?
        }
        crate::platform::db::Backend::Postgres => {
            sqlx::query(SQL).bind(body).bind(now).execute(&s.db.pool).await?;
        }
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The application state: loads what it needs from the database (the
/// holiday calendar, the security policy) and installs the audit keys.
pub async fn state(db: Db, config: Config, crypto: Crypto) -> crate::kernel::error::Result<AppState> {
    let clock = crate::orders::calendar::load_clock(&db).await?;
    let policy = crate::auth::policy::load(&db).await?;
    crate::audit::chain::install_keys(&crypto);
    register_domains();
    Ok(AppState::new(db, config, crypto, clock, policy))
}

/// Every encrypted column of the schema, as the domains declare them.
pub fn encrypted_columns() -> Vec<&'static crate::platform::crypto::rotate::EncryptedColumn> {
    crate::tree::ENCRYPTED_COLUMNS.iter().chain(crate::orders::ENCRYPTED_COLUMNS).collect()
}

/// Registers what the domains declare with the layers below them: their
/// audit actions (for the audit log's labels and filters).
pub fn register_domains() {
    crate::audit::action::register(&[
        crate::auth::action::ALL,
        crate::tree::action::ALL,
        crate::orders::action::ALL,
        crate::stats::action::ALL,
    ]);
    crate::auth::register_labels();
    crate::tree::register_labels();
    crate::orders::register_labels();
    crate::platform::notices::register(crate::orders::notices::SOURCE);
}

/// Follows setting changes made on other server nodes (PostgreSQL): each
/// node announces a change it committed (`Db::settings_changed`), and every
/// node reloads its working-day clock, security policy and reference data
/// as soon as it hears it. A lost connection is re-opened, and everything is
/// reloaded then, since announcements made meanwhile were missed.
pub struct FollowSettings {
    state: AppState,
    listener: tokio::sync::Mutex<Option<sqlx::postgres::PgListener>>,
}

impl FollowSettings {
    pub fn new(state: AppState) -> FollowSettings {
        FollowSettings { state, listener: Default::default() }
    }
}

impl crate::platform::jobs::Job for FollowSettings {
    fn name(&self) -> &'static str {
        "follow-settings"
    }

    fn every(&self) -> std::time::Duration {
        std::time::Duration::from_millis(10)
    }

    /// Waits up to a second for an announcement (so that a stop is never
    /// held up longer), reloading on each one heard.
    async fn run_once(&self) -> crate::kernel::error::Result<crate::platform::jobs::Outcome> {
        use crate::platform::jobs::Outcome;
        let mut listener = self.listener.lock().await;
        if listener.is_none() {
            let url = self.state.db.listen_url().ok_or_else(|| anyhow::anyhow!("not a PostgreSQL database"))?;
            let mut l = sqlx::postgres::PgListener::connect(url).await?;
            l.listen(crate::platform::db::SETTINGS_CHANNEL).await?;
            *listener = Some(l);
            reload_settings(&self.state).await;
            return Ok(Outcome::Worked);
        }
        let l = listener.as_mut().expect("connected above");
        match tokio::time::timeout(std::time::Duration::from_secs(1), l.try_recv()).await {
            Err(_) => Ok(Outcome::Idle),
            // `None`: the connection dropped and was re-opened.
            Ok(Ok(_)) => {
                reload_settings(&self.state).await;
                Ok(Outcome::Worked)
            }
            Ok(Err(e)) => {
                *listener = None;
                Err(e.into())
            }
        }
    }
}

/// Reloads every setting a node keeps in memory.
async fn reload_settings(state: &AppState) {
    state.db.memo_forget();
    match crate::orders::calendar::load_clock(&state.db).await {
        Ok(clock) => state.replace_clock(clock),
        Err(e) => tracing::warn!(error = %e, "calendar reload failed"),
    }
    match crate::auth::policy::load(&state.db).await {
        Ok(p) => state.replace_policy(p),
        Err(e) => tracing::warn!(error = %e, "policy reload failed"),
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
async fn healthz(State(s): State<AppState>) -> Result<Json<Health>, crate::kernel::error::Error> {
    sqlx::query("select 1").execute(&s.db.pool).await?;
    Ok(Json(Health { status: "ok", backend: s.db.backend.name(), version: env!("CARGO_PKG_VERSION") }))
}

/// The API routes and their OpenAPI document, built together so that no
/// route can be missing from the document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .merge(crate::audit::api())
        .merge(crate::auth::api())
        .merge(crate::tree::api())
        .merge(crate::orders::api())
        .merge(crate::notify::api())
        .merge(outbox_api::api())
        .split_for_parts();
    openapi::document_refusals(&mut doc);
    (router, doc)
}

pub fn app(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    let csp = content_security_policy(state.config.tile_url.as_deref());
    #[cfg(feature = "bench")]
    let bench = if state.config.bench_endpoints {
        Router::new().route("/bench/insert", axum::routing::post(bench_insert))
    } else {
        Router::new()
    };
    #[cfg(not(feature = "bench"))]
    let bench = Router::new();
    Router::new()
        .merge(api)
        .merge(bench)
        .route("/api/v1/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }))
        .merge(pages::router())
        .fallback(crate::web::not_found)
        .method_not_allowed_fallback(crate::web::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), crate::web::guard::guard))
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_domains_audit_action_has_a_label() {
        super::register_domains();
        let all = crate::audit::action::all();
        assert!(all.contains(&crate::orders::action::ORDER_ACT) && all.contains(&crate::tree::action::NODE_MOVE));
        for a in all {
            let key = format!("audit.action.{a}");
            assert!(crate::kernel::i18n::has(&key), "catalogue misses {key}");
        }
    }

    #[test]
    fn every_encrypted_column_is_declared_once() {
        let cols = super::encrypted_columns();
        let mut names: Vec<_> = cols.iter().map(|c| (c.table, c.column)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cols.len());
        assert!(names.contains(&("orders", "reporter_contact")) && names.contains(&("node_members", "id_number_enc")));
    }
}
