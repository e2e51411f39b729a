//! The login form and logging out.

use askama::Template;
use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    auth,
    kernel::{
        error::{Error, Result},
        principal::CurrentUser,
    },
    web::{
        extract::page::{Form, Query},
        render, t, AppState, ClientAddr, Msg as _,
    },
};

// ---------- login ----------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<&'static str>,
    next: String,
    username: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only same-site relative targets, so the login cannot redirect elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

pub async fn login_form(Query(q): Query<NextQuery>) -> Response {
    render(&LoginPage { error: None, next: safe_next(q.next.as_deref()), username: String::new() })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Whether a login form was posted from one of our own pages. Another
/// site's form could otherwise log the victim's browser into the
/// attacker's account (login CSRF). Browsers name the page's origin in
/// `Origin` (or, failing that, `Sec-Fetch-Site` or `Referer`); it must be
/// this host. A request with none of them comes from no browser page.
fn posted_from_here(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = get("host") else {
        return ["origin", "sec-fetch-site", "referer"].iter().all(|h| get(h).is_none());
    };
    let authority = |url: &str| url.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or("").to_string());
    if let Some(origin) = get("origin") {
        return authority(origin).is_some_and(|a| a.eq_ignore_ascii_case(host));
    }
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    if let Some(referer) = get("referer") {
        return authority(referer).is_some_and(|a| a.eq_ignore_ascii_case(host));
    }
    true
}

pub async fn login_submit(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    if !posted_from_here(&headers) {
        let page = LoginPage { error: Some(t("auth.cross_site")), next, username: String::new() };
        return (axum::http::StatusCode::FORBIDDEN, render(&page)).into_response();
    }
    match auth::login_audited(&s, &f.username, &f.password, "browser", addr).await {
        Ok(done) => {
            let secure = if s.config.cookie_secure { "; Secure" } else { "" };
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                auth::SESSION_COOKIE,
                done.token,
                s.policy().absolute_ms() / 1000
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Err(e) => {
            let error = match e {
                Error::LoginFailed | Error::Locked | Error::Throttled => t(e.code()),
                _ => t("internal"),
            };
            let page = LoginPage { error: Some(error), next, username: f.username };
            (e.status(), render(&page)).into_response()
        }
    }
}

pub async fn logout(State(s): State<AppState>, user: CurrentUser, ClientAddr(addr): ClientAddr) -> Result<Response> {
    auth::logout_audited(&s.db, &user, addr).await?;
    let clear = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", auth::SESSION_COOKIE);
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, clear.parse().map_err(anyhow::Error::from)?);
    // htmx follows HX-Redirect; a plain form post follows the 303.
    headers.insert("HX-Redirect", "/login".parse().map_err(anyhow::Error::from)?);
    Ok((headers, Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod login_origin_tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_our_own_pages_may_post_the_login_form() {
        let host = ("host", "fq.example.cn");
        assert!(posted_from_here(&headers(&[host, ("origin", "https://fq.example.cn")])));
        assert!(!posted_from_here(&headers(&[host, ("origin", "https://evil.example")])));
        assert!(!posted_from_here(&headers(&[host, ("origin", "null")])));
        assert!(!posted_from_here(&headers(&[host, ("origin", "https://fq.example.cn.evil.example")])));
        assert!(posted_from_here(&headers(&[host, ("sec-fetch-site", "same-origin")])));
        assert!(!posted_from_here(&headers(&[host, ("sec-fetch-site", "cross-site")])));
        assert!(posted_from_here(&headers(&[host, ("referer", "https://fq.example.cn/login?next=/")])));
        assert!(!posted_from_here(&headers(&[host, ("referer", "https://evil.example/fq.example.cn")])));
        assert!(posted_from_here(&headers(&[host])), "no browser page: a script or an old client");
    }
}
