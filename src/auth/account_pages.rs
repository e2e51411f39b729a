//! A staff user's own account (我的账号): profile, the posts held at each
//! node, password change, open sessions; switching the node a session acts
//! at (切换岗位, from the page header). `/account/password` is also the page a user with a temporary
//! password is sent to; it needs nothing beyond the paths allowed before
//! the change (`auth::allowed_before_password_change`).

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{
    extract::State,
    http::{header, Uri},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::web::{alert, hx_redirect, login_or_redirect, render, t, to_login, Msg as _, Shell};
use crate::{
    auth::{self, manage, users, users::SessionView},
    kernel::{
        error::{Error, Result},
        policy::SecurityPolicy,
        principal::CurrentUser,
    },
    web::{AppState, ClientAddr},
};

/// The password rules of the current policy, as one sentence.
pub fn password_rules(p: &SecurityPolicy) -> String {
    t("account.password_rules").replacen("{}", &p.password_min_length.to_string(), 1).replacen(
        "{}",
        &p.password_min_classes.to_string(),
        1,
    )
}

fn session_kind(kind: &str) -> &'static str {
    match kind {
        "browser" => t("account.session.browser"),
        "api" => t("account.session.api"),
        _ => t("account.session.other"),
    }
}

#[derive(Template)]
#[template(path = "account/index.html")]
struct AccountPage {
    shell: Shell,
    rules: String,
    sessions: Vec<SessionView>,
    /// The caller's roles by node, in tree order.
    posts: Vec<users::NodeRoles>,
    changed: bool,
}

impl AccountPage {
    fn kind_label(&self, kind: &str) -> &'static str {
        session_kind(kind)
    }
}

#[derive(Deserialize)]
pub struct AccountQuery {
    changed: Option<String>,
}

pub async fn account(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<AccountQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let sessions = users::sessions(&s, &user).await?;
    let rules = password_rules(&s.policy());
    let posts = users::by_node(&users::own_grants(&s.db, &user).await?);
    Ok(render(&AccountPage {
        shell: Shell { user, active: "account" },
        rules,
        sessions,
        posts,
        changed: q.changed.is_some(),
    }))
}

#[derive(Deserialize)]
pub struct NodeForm {
    node_id: i64,
    /// `/m/` from the field app; anything else goes to the console.
    next: Option<String>,
}

/// htmx: 切换岗位 from the page header (or the field app's 我的); the
/// console (or the field app) starts over at the new node, with its roles
/// and scope.
pub async fn switch_node(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<NodeForm>,
) -> Response {
    let next = if f.next.as_deref() == Some("/m/") { "/m/" } else { "/" };
    match manage::switch_node(&s, &user, addr, f.node_id).await {
        Ok(()) => hx_redirect(next),
        Err(e) => alert(&e),
    }
}

#[derive(Template)]
#[template(path = "account/password.html")]
struct ForcedPasswordPage {
    user: CurrentUser,
    rules: String,
}

/// The page for changing a temporary password before anything else.
/// Users without one are sent to their account page.
pub async fn forced_password(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    if !user.must_change_password {
        return Ok(axum::response::Redirect::to("/account").into_response());
    }
    let rules = password_rules(&s.policy());
    Ok(render(&ForcedPasswordPage { user, rules }))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    repeat_password: String,
}

/// htmx: changes the password; on success the forced page goes on to the
/// console and the account page reloads with a notice.
pub async fn change_password(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<PasswordForm>,
) -> Response {
    if f.new_password != f.repeat_password {
        return alert(&Error::invalid("password.mismatch", "repeat_password"));
    }
    match manage::change_password(&s, &user, addr, &f.current_password, &f.new_password).await {
        Ok(()) if user.must_change_password => hx_redirect("/"),
        Ok(()) => hx_redirect("/account?changed=1"),
        Err(e) => alert(&e),
    }
}

#[derive(Template)]
#[template(path = "account/_sessions.html")]
struct SessionsFragment {
    sessions: Vec<SessionView>,
}

impl SessionsFragment {
    fn kind_label(&self, kind: &str) -> &'static str {
        session_kind(kind)
    }
}

/// Back to the login form, with the cookie cleared (the session is gone).
fn logged_out() -> Response {
    let clear = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", auth::SESSION_COOKIE);
    let mut r = hx_redirect("/login");
    if let Ok(v) = clear.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// htmx: ends one session; ending this one logs out.
pub async fn end_session(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<String>,
) -> Response {
    let this_one = auth::session_id(&user.token_hash) == id;
    let r = async {
        manage::end_session(&s, &user, addr, &id).await?;
        users::sessions(&s, &user).await
    }
    .await;
    match r {
        Ok(_) if this_one => logged_out(),
        Ok(sessions) => render(&SessionsFragment { sessions }),
        Err(e) => alert(&e),
    }
}

/// htmx: 退出所有设备 — every session ends, this one too.
pub async fn end_all_sessions(State(s): State<AppState>, user: CurrentUser, ClientAddr(addr): ClientAddr) -> Response {
    match manage::end_all_sessions(&s, &user, addr).await {
        Ok(_) => logged_out(),
        Err(e) => alert(&e),
    }
}
