//! What every page and API handler shares: the application state, our
//! extractors and refusals, guards and throttles, the page shell, error
//! pages and static files. The pages themselves live in their domains
//! (the staff console, field pages under `/m/`, the resident portal under
//! `/portal/`). Templates escape by default; all text comes from the
//! message catalogue through `t()`.

/// A page that needs a login: anonymous browsers go to the login form.
macro_rules! login_or_redirect {
    ($user:expr, $uri:expr) => {
        match $user {
            Some(u) => u,
            None => return Ok(to_login(&$uri)),
        }
    };
}

/// A page that needs a permission: others get the 403 page.
macro_rules! require_page {
    ($user:expr, $perm:expr) => {
        if !$user.can($perm) {
            return Ok(crate::web::forbidden());
        }
    };
}

pub(crate) use login_or_redirect;
pub(crate) use require_page;

mod assets;
pub mod extract;
pub mod guard;
mod state;
pub mod throttle;

pub use state::{AppState, ClientAddr, Config, UploadLimits};

use askama::Template;
use axum::{
    http::{StatusCode, Uri},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
    Router,
};

/// The static files (scripts, styles, vendored libraries) and the icon.
pub fn assets() -> Router<AppState> {
    Router::new()
        .route("/static/{*path}", get(assets::serve))
        .route("/favicon.ico", get(|| async { Redirect::permanent("/static/favicon.svg") }))
}

/// What every staff page shows around its content.
pub struct Shell {
    pub user: crate::kernel::principal::CurrentUser,
    pub active: &'static str,
}

impl Shell {
    pub fn roles(&self) -> String {
        self.user.role_names().join("、")
    }
}

/// Renders a template into a response; a rendering failure is a 500.
pub fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Catalogue lookup: `t("nav.home")`.
pub fn t(key: &str) -> &'static str {
    crate::kernel::i18n::t(key)
}

/// Templates write `{{ t("nav.home") }}`, which askama calls as a method.
pub trait Msg {
    fn t(&self, key: &str) -> &'static str {
        t(key)
    }

    /// The words `static/js/map.js` shows, from the catalogue, as the JSON a
    /// map element carries in `data-msgs`.
    fn map_msgs(&self) -> String {
        const KEYS: &[(&str, &str)] = &[
            ("households", "map.legend_households"),
            ("households_value", "map.households_value"),
            ("red", "map.light.red"),
            ("yellow", "map.light.yellow"),
            ("normal", "map.light.normal"),
            ("open_order", "map.open_order"),
            ("orders_count", "map.orders_count"),
            ("orders_truncated", "map.orders_truncated"),
            ("details", "map.details"),
            ("incident_place", "map.incident_place"),
            ("load_failed", "map.load_failed"),
            ("polygon_changed", "map.polygon_changed"),
            ("polygon_saved", "map.polygon_saved"),
            ("polygon_save_failed", "map.polygon_save_failed"),
            ("polygon_none", "map.polygon_none"),
        ];
        let map: serde_json::Map<String, serde_json::Value> =
            KEYS.iter().map(|(name, key)| (name.to_string(), t(key).into())).collect();
        serde_json::Value::Object(map).to_string()
    }
}
impl<T> Msg for T {}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    message: String,
}

pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::kernel::error::Error::NotFound.into_response();
    }
    let page = ErrorPage { title: t("page.not_found.title"), message: t("page.not_found.message").to_string() };
    (StatusCode::NOT_FOUND, render(&page)).into_response()
}

/// An error page with a status, a title and a message (catalogue keys).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    (status, render(&ErrorPage { title: t(title), message: t(message).to_string() })).into_response()
}

/// A route asked with a method it does not answer: our JSON error under
/// `/api/`, the error page elsewhere (axum adds the `Allow` header).
pub async fn method_not_allowed(uri: Uri) -> Response {
    let e = crate::kernel::error::Error::MethodNotAllowed;
    if uri.path().starts_with("/api/") {
        return e.into_response();
    }
    refusal_page(&e)
}

/// A page request refused before its handler ran (an address, query or
/// form that cannot be read) as the error page with the refusal's status.
pub fn refusal_page(e: &crate::kernel::error::Error) -> Response {
    let page = if e.status() == StatusCode::NOT_FOUND {
        ErrorPage { title: t("page.not_found.title"), message: t("page.not_found.message").to_string() }
    } else {
        ErrorPage { title: t("page.refused.title"), message: e.message() }
    };
    (e.status(), render(&page)).into_response()
}

/// The 403 page, for staff without the permission a page needs.
pub fn forbidden() -> Response {
    let page = ErrorPage { title: t("page.forbidden.title"), message: t("auth.forbidden").to_string() };
    (StatusCode::FORBIDDEN, render(&page)).into_response()
}

/// A page handler's error as a page: 403 and 404 (also what out-of-scope
/// objects answer) get their pages; anything else stays an error.
pub async fn page_error(e: crate::kernel::error::Error, uri: Uri) -> Result<Response, crate::kernel::error::Error> {
    use crate::kernel::error::Error;
    match e {
        Error::Forbidden => Ok(forbidden()),
        Error::NotFound => Ok(not_found(uri).await),
        e => Err(e),
    }
}

/// htmx: go to `target` (HX-Redirect on a 200, since the XHR would
/// silently follow a 303).
pub fn hx_redirect(target: &str) -> Response {
    let mut h = axum::http::HeaderMap::new();
    if let Ok(v) = target.parse() {
        h.insert("HX-Redirect", v);
    }
    (h, Html(String::new())).into_response()
}

#[derive(Template)]
#[template(source = r#"<p class="alert" role="alert">{{ message }}</p>"#, ext = "html")]
struct Alert {
    message: String,
}

/// htmx: an error shown in place of the form's result. Answered with 200
/// so htmx swaps it in; server errors are logged first.
pub fn alert(e: &crate::kernel::error::Error) -> Response {
    if e.status().is_server_error() {
        tracing::error!(error = %e, "page action failed");
    }
    render(&Alert { message: e.message() })
}

/// Where to send a browser that is not logged in.
pub fn to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Redirect::to(&format!("/login?next={}", url_escape(next))).into_response()
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Beijing time for people: `2026-11-24 13:05`.
pub fn when(ms: &i64) -> String {
    chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, *ms)
        .single()
        .map(|t| t.with_timezone(&crate::kernel::clock::CHINA_STANDARD_TIME).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}
