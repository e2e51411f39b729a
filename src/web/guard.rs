//! What every answer gets, whatever route made it: the tracking-code
//! lookup limit per address, `Retry-After` on every 429, and
//! `Cache-Control: no-store` on answers that may carry a token or personal
//! data (all of the API, pages of logged-in callers, the login and the
//! portal's tracking pages), unless the handler chose its own.

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{platform::db::now_ms, web::AppState};

/// Tracking-code lookups: everything under a code, on the API and the portal pages.
fn is_tracking_lookup(path: &str) -> bool {
    path.strip_prefix("/api/v1/portal/orders/")
        .or_else(|| path.strip_prefix("/portal/track/"))
        .is_some_and(|rest| !rest.is_empty())
}

fn has_credentials(req: &Request) -> bool {
    req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().get_all(header::COOKIE).iter().filter_map(|c| c.to_str().ok()).any(|c| {
            c.split(';').any(|p| p.trim().starts_with(&format!("{}=", crate::kernel::principal::SESSION_COOKIE)))
        })
}

/// The answer to one lookup too many: our error body on the API, a page on the portal.
fn too_many_lookups(path: &str, wait_s: i64) -> Response {
    let code = "portal.too_many_lookups";
    let mut res = if path.starts_with("/api/") {
        let body = crate::kernel::error::ErrorBody {
            error: crate::kernel::error::ErrorDetail {
                code: code.to_string(),
                message: crate::kernel::i18n::t(code).to_string(),
                field: None,
            },
        };
        (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
    } else {
        crate::web::error_page(StatusCode::TOO_MANY_REQUESTS, "page.too_many.title", code)
    };
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
    res
}

pub async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let addr = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    if is_tracking_lookup(&path) {
        if let Some(a) = &addr {
            if let Err(wait_s) = s.throttle.portal_lookup(a, now_ms()) {
                return too_many_lookups(&path, wait_s);
            }
        }
    }
    let private =
        path.starts_with("/api/") || path == "/login" || path.starts_with("/portal/track") || has_credentials(&req);
    let mut res = next.run(req).await;
    if res.status() == StatusCode::TOO_MANY_REQUESTS && !res.headers().contains_key(header::RETRY_AFTER) {
        // The address's throttle window, or a minute if none is known.
        let wait_s = addr.and_then(|a| s.throttle.retry_after_s(&a, now_ms())).unwrap_or(60);
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
    }
    if private && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
