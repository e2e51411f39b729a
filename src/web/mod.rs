//! Server-rendered pages: the staff console (`/`), field pages (`/m/`), the
//! resident portal (`/portal/`) and the map (`/map`). Templates escape by
//! default; all text comes from the message catalogue through `t()`.

mod admin;
/// A page that needs a login: anonymous browsers go to the login form.
macro_rules! login_or_redirect {
    ($user:expr, $uri:expr) => {
        match $user {
            Some(u) => u,
            None => return Ok(to_login(&$uri)),
        }
    };
}

mod accounts;
/// A page that needs a permission: others get the 403 page.
macro_rules! require_page {
    ($user:expr, $perm:expr) => {
        if !$user.can($perm) {
            return Ok(crate::web::forbidden());
        }
    };
}

mod assets;
pub mod catalogue;
mod dispatch;
mod me;
pub mod orders;
mod pages;

use askama::Template;
use axum::{
    extract::DefaultBodyLimit,
    http::{StatusCode, Uri},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{delete, get, post},
    Router,
};

use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/{*path}", get(assets::serve))
        .route("/favicon.ico", get(|| async { Redirect::permanent("/static/favicon.svg") }))
        .route("/login", get(pages::login_form).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/", get(pages::home))
        .route("/tree", get(pages::tree_root))
        .route("/tree/{id}", get(pages::tree_node))
        .route("/map", get(pages::map))
        .route("/orders", get(orders::list))
        .route("/orders/bulk", post(orders::bulk))
        .route("/orders/{id}", get(orders::detail))
        // Forms that may carry photos read their bodies within the
        // attachment limits themselves (see `attachments::upload`).
        .route("/orders/{id}/act", post(orders::act).layer(DefaultBodyLimit::disable()))
        .route("/orders/{id}/attachments", post(orders::attach).layer(DefaultBodyLimit::disable()))
        .route("/m/tasks", get(orders::mobile_tasks))
        .route("/m/orders/{id}", get(orders::mobile_order))
        .route(
            "/m/report",
            get(orders::mobile_report_form).post(orders::mobile_report).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/portal/report",
            get(orders::portal_report_form).post(orders::portal_report).layer(DefaultBodyLimit::disable()),
        )
        .route("/portal/track", get(orders::portal_track_form))
        .route("/portal/track/{code}", get(orders::portal_track).post(orders::portal_track_act))
        .route("/account", get(me::account))
        .route("/account/password", get(me::forced_password).post(me::change_password))
        .route("/account/sessions", delete(me::end_all_sessions))
        .route("/account/sessions/{id}", delete(me::end_session))
        .route("/account/node", post(me::switch_node))
        .route("/admin/users", get(accounts::users).post(accounts::create_user))
        .route("/admin/users/node-fields", get(accounts::node_fields))
        .route("/admin/users/{id}", get(accounts::user).post(accounts::update_user))
        .route("/admin/users/{id}/status", post(accounts::user_status))
        .route("/admin/users/{id}/password-reset", post(accounts::reset_password))
        .route("/admin/users/{id}/grants", post(accounts::add_grant))
        .route("/admin/users/{id}/grants/remove", post(accounts::remove_grant))
        .route("/admin/roles", get(accounts::roles).post(accounts::create_role))
        .route("/admin/roles/{code}", post(accounts::update_role).delete(accounts::delete_role))
        .route("/admin/tokens", get(accounts::tokens).post(accounts::issue_token))
        .route("/admin/tokens/{id}", delete(accounts::revoke_token))
        .route("/admin/policy", get(accounts::policy).post(accounts::save_policy))
        .route("/admin/categories", get(catalogue::list))
        .route("/admin/dispatch", get(dispatch::page).post(dispatch::save))
        .route("/admin/dispatch/{id}/delete", post(dispatch::remove))
        .route("/admin/departments", post(dispatch::add_department))
        .route("/admin/units/{id}", post(dispatch::update_unit))
        .route("/admin/calendar", get(catalogue::calendar_page))
        .route("/admin/calendar/days", post(catalogue::calendar_set))
        .route("/admin/calendar/days/{day}/delete", post(catalogue::calendar_remove))
        .route("/admin/calendar/import", post(catalogue::calendar_import))
        .route("/admin/categories/{code}", get(catalogue::edit).post(catalogue::save))
        .route("/admin/audit", get(admin::audit_page))
        .route("/admin/audit.csv", get(admin::audit_csv))
        .route("/m/", get(pages::mobile_home))
        .route("/m/buildings", get(pages::mobile_buildings))
        .route("/m/me", get(pages::mobile_me))
        .route("/portal/", get(pages::portal_home))
        .route("/portal/area/{id}", get(pages::portal_area))
        .route("/portal/area/{id}/geojson", get(pages::portal_area_geojson))
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
    crate::i18n::t(key)
}

/// Templates write `{{ t("nav.home") }}`, which askama calls as a method.
pub trait Msg {
    fn t(&self, key: &str) -> &'static str {
        t(key)
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
        return crate::error::Error::NotFound.into_response();
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
    let e = crate::error::Error::MethodNotAllowed;
    if uri.path().starts_with("/api/") {
        return e.into_response();
    }
    refusal_page(&e)
}

/// A page request refused before its handler ran (an address, query or
/// form that cannot be read) as the error page with the refusal's status.
pub fn refusal_page(e: &crate::error::Error) -> Response {
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
pub async fn page_error(e: crate::error::Error, uri: Uri) -> Result<Response, crate::error::Error> {
    use crate::error::Error;
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
pub fn alert(e: &crate::error::Error) -> Response {
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
