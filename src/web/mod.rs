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

mod assets;
pub mod orders;
mod pages;

use askama::Template;
use axum::{
    http::{StatusCode, Uri},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
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
        .route("/orders/{id}/act", post(orders::act))
        .route("/m/tasks", get(orders::mobile_tasks))
        .route("/m/orders/{id}", get(orders::mobile_order))
        .route("/m/report", get(orders::mobile_report_form).post(orders::mobile_report))
        .route("/portal/report", get(orders::portal_report_form).post(orders::portal_report))
        .route("/portal/track", get(orders::portal_track_form))
        .route("/portal/track/{code}", get(orders::portal_track).post(orders::portal_track_act))
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
    message: &'static str,
}

pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::error::Error::NotFound.into_response();
    }
    let page = ErrorPage { title: t("page.not_found.title"), message: t("page.not_found.message") };
    (StatusCode::NOT_FOUND, render(&page)).into_response()
}

/// Where to send a browser that is not logged in.
pub fn to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Redirect::to(&format!("/login?next={}", url_escape(next))).into_response()
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
