//! Users, password login and sessions. Browsers hold a session cookie and
//! send a CSRF header on every state-changing request; API clients hold a
//! bearer token from `POST /api/v1/session`. Tokens are stored hashed.

use axum::{
    routing::{delete, get, post},
    Router,
};

pub mod account_pages;
pub mod admin_api;
pub mod admin_pages;
pub mod api;
pub mod lockout;
pub mod manage;
pub mod pages;
pub mod password;
pub mod policy;
pub mod tokens;
pub mod users;

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts, Method},
};
use sha2::{Digest, Sha256};
use sqlx::Row;

pub use crate::kernel::{
    perm::Perm,
    principal::{CurrentUser, NodeChoice, RoleGrant, CSRF_HEADER, SESSION_COOKIE},
};
use crate::{
    kernel::{
        error::{Error, Result},
        scope::Scope,
    },
    platform::db::{now_ms, Backend, Db},
    web::AppState,
};
pub use policy::SecurityPolicy;

/// API tokens for integrations start with this, so they are told apart
/// from session tokens before any lookup.
pub const API_TOKEN_PREFIX: &str = "fqt_";
/// `last_seen_at` is refreshed at most this often, to keep reads cheap.
const TOUCH_MS: i64 = 60 * 1000;

pub use crate::platform::crypto::random_token;

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The public id of a session: a prefix of its token's hash (the token
/// cannot be recovered from it).
pub fn session_id(token_hash: &str) -> String {
    token_hash[..16].to_string()
}

fn token_from_parts(parts: &Parts) -> Option<(String, bool)> {
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        let v = auth.to_str().ok()?;
        let token = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?;
        return Some((token.trim().to_string(), false));
    }
    let cookies = parts.headers.get_all(header::COOKIE);
    for c in cookies.iter().filter_map(|c| c.to_str().ok()) {
        for pair in c.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == SESSION_COOKIE {
                    return Some((v.to_string(), true));
                }
            }
        }
    }
    None
}

/// The session, its user, the node it acts at and the roles and
/// permissions granted there, and the nodes the user could act at, in one
/// round trip: the lists come back as JSON arrays, aggregated in the
/// database (the aggregate functions differ by backend).
///
/// A session acts at `active_node_id` only while the user still holds a
/// role there; otherwise (never switched, or the grant was taken away) at
/// the user's home node.
fn session_sql(backend: Backend) -> &'static str {
    macro_rules! session_sql {
        ($roles:literal, $perms:literal, $nodes:literal) => {
            concat!(
                "select s.user_id, s.kind, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, u.username, \
                 u.display_name, u.node_id as home_node_id, n.id as node_id, \
                 case when n.id = u.node_id then u.unit_id else (select min(un.id) from units un \
                   where un.node_id = n.id and un.status = 'active' and un.kind <> 'department') end as unit_id, \
                 u.must_change_password, u.disabled, n.path, n.name as node_name, ",
                $roles,
                " as roles, ",
                $perms,
                " as permissions, ",
                $nodes,
                " as nodes \
                 from sessions s join users u on u.id = s.user_id \
                 join nodes n on n.id = case when exists (select 1 from user_roles g \
                   where g.user_id = s.user_id and g.node_id = s.active_node_id) then s.active_node_id else u.node_id end \
                 where s.token_hash = $1"
            )
        };
    }
    match backend {
        Backend::Sqlite => session_sql!(
            "(select json_group_array(json_object('role', ur.role_code, 'name', r.name, 'node_id', ur.node_id)) \
              from user_roles ur join roles r on r.code = ur.role_code where ur.user_id = s.user_id and ur.node_id = n.id)",
            "(select json_group_array(distinct rp.permission) from user_roles ur \
              join role_permissions rp on rp.role_code = ur.role_code where ur.user_id = s.user_id and ur.node_id = n.id)",
            "(select json_group_array(json_object('node_id', gn.id, 'name', gn.name, 'code', gn.code)) from nodes gn \
              where gn.id in (select g.node_id from user_roles g where g.user_id = s.user_id))"
        ),
        Backend::Postgres => session_sql!(
            "(select coalesce(json_agg(json_build_object('role', ur.role_code, 'name', r.name, 'node_id', ur.node_id)), \
              '[]')::text from user_roles ur join roles r on r.code = ur.role_code \
              where ur.user_id = s.user_id and ur.node_id = n.id)",
            "(select coalesce(json_agg(distinct rp.permission), '[]')::text from user_roles ur \
              join role_permissions rp on rp.role_code = ur.role_code where ur.user_id = s.user_id and ur.node_id = n.id)",
            "(select coalesce(json_agg(json_build_object('node_id', gn.id, 'name', gn.name, 'code', gn.code)), \
              '[]')::text from nodes gn where gn.id in (select g.node_id from user_roles g where g.user_id = s.user_id))"
        ),
    }
}

#[derive(serde::Deserialize)]
struct RoleRow {
    role: String,
    name: String,
    node_id: i64,
}

#[derive(serde::Deserialize)]
struct NodeRow {
    node_id: i64,
    name: String,
    /// Children's codes extend their parent's, so codes sort in tree order
    /// with siblings in their numbered order (paths hold ids, which do not).
    code: String,
}

/// Reads the session row (see `session_sql`).
fn resolved_from_row(row: &sqlx::any::AnyRow, th: String) -> Result<(crate::platform::sessions::Resolved, bool)> {
    let json = |col: &str| -> Result<String> { Ok(row.try_get::<Option<String>, _>(col)?.unwrap_or_default()) };
    let mut roles: Vec<RoleRow> = serde_json::from_str(&json("roles")?).unwrap_or_default();
    roles.sort_by(|a, b| a.role.cmp(&b.role));
    let codes: Vec<String> = serde_json::from_str(&json("permissions")?).unwrap_or_default();
    let mut permissions: Vec<Perm> = codes.iter().filter_map(|c| Perm::parse(c)).collect();
    permissions.sort();
    permissions.dedup();
    let mut nodes: Vec<NodeRow> = serde_json::from_str(&json("nodes")?).unwrap_or_default();
    nodes.sort_by(|a, b| a.code.cmp(&b.code));
    let user = CurrentUser {
        id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        node_id: row.try_get("node_id")?,
        node_name: row.try_get("node_name")?,
        home_node_id: row.try_get("home_node_id")?,
        nodes: nodes.into_iter().map(|n| NodeChoice { node_id: n.node_id, name: n.name }).collect(),
        unit_id: row.try_get("unit_id")?,
        node_path: row.try_get("path")?,
        roles: roles.into_iter().map(|r| RoleGrant { role: r.role, name: r.name, node_id: r.node_id }).collect(),
        permissions,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        token_id: None,
        csrf_token: row.try_get("csrf_token")?,
        token_hash: th,
        client_addr: None,
    };
    let disabled = row.try_get::<i64, _>("disabled")? != 0;
    let resolved = crate::platform::sessions::Resolved {
        user,
        kind: row.try_get("kind")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
    };
    Ok((resolved, disabled))
}

/// Looks a session (or API token) up, enforcing idle and absolute expiry.
/// A session resolved within the last moment comes from `Db::sessions`
/// (see `cache` for what that may and may not delay); expiry is judged on
/// every request all the same.
pub async fn load_session(db: &Db, policy: &SecurityPolicy, token: &str) -> Result<Option<(CurrentUser, String)>> {
    if token.starts_with(API_TOKEN_PREFIX) {
        return Ok(tokens::load(db, token).await?.map(|u| (u, "token".to_string())));
    }
    session_by_hash(db, policy, hash_token(token)).await
}

/// The caller's session as it is now, after a change to it (e.g. the node
/// it acts at) was made and its cache entry forgotten.
pub async fn reload(db: &Db, policy: &SecurityPolicy, user: &CurrentUser) -> Result<CurrentUser> {
    let (mut fresh, _) = session_by_hash(db, policy, user.token_hash.clone()).await?.ok_or(Error::Unauthorized)?;
    fresh.client_addr = user.client_addr.clone();
    Ok(fresh)
}

/// The user of the session with this token hash, if it is still open: a
/// background task acting for a session (a large export) checks it is still
/// allowed, with the scope the session has now.
pub async fn session_user(db: &Db, policy: &SecurityPolicy, token_hash: &str) -> Result<Option<CurrentUser>> {
    Ok(session_by_hash(db, policy, token_hash.to_string()).await?.map(|(u, _)| u))
}

async fn session_by_hash(db: &Db, policy: &SecurityPolicy, th: String) -> Result<Option<(CurrentUser, String)>> {
    let now = now_ms();
    let cached = db.sessions.get(&th);
    let s = match cached {
        Some(s) => s,
        None => {
            let generation = db.sessions.generation();
            let row = sqlx::query(session_sql(db.backend)).bind(&th).fetch_optional(&db.pool).await?;
            let Some(row) = row else { return Ok(None) };
            let (s, disabled) = resolved_from_row(&row, th.clone())?;
            if disabled {
                sqlx::query("delete from sessions where token_hash = $1").bind(&th).execute(&db.pool).await?;
                return Ok(None);
            }
            db.sessions.put(&th, s.clone(), generation);
            s
        }
    };
    // The policy applies to sessions opened before it changed, too.
    let expired =
        now > s.expires_at || now > s.created_at + policy.absolute_ms() || now - s.last_seen_at > policy.idle_ms();
    if expired {
        sqlx::query("delete from sessions where token_hash = $1").bind(&th).execute(&db.pool).await?;
        db.sessions.forget(&th);
        return Ok(None);
    }
    if now - s.last_seen_at > TOUCH_MS {
        sqlx::query("update sessions set last_seen_at = $1 where token_hash = $2")
            .bind(now)
            .bind(&th)
            .execute(&db.pool)
            .await?;
        db.sessions.touched(&th, now);
    }
    Ok(Some((s.user, s.kind)))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What a user who must change their password may still reach.
fn allowed_before_password_change(method: &Method, path: &str) -> bool {
    matches!(path, "/api/v1/me" | "/api/v1/me/password" | "/account/password" | "/logout")
        || (path == "/api/v1/session" && method == Method::DELETE)
}

impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let (token, from_cookie) = token_from_parts(parts).ok_or(Error::Unauthorized)?;
        let policy = state.policy();
        let Some((user, kind)) = load_session(&state.db, &policy, &token).await? else {
            // A browser whose session ended (idle, logged out elsewhere) goes
            // back to the login form rather than seeing an API error.
            let path = parts.uri.path();
            return Err(if from_cookie && !path.starts_with("/api/") {
                let next = if is_safe(&parts.method) { parts.uri.path_and_query().map(|p| p.as_str()) } else { None };
                let escape = |n: &str| url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>();
                Error::Redirect(next.map_or("/login".into(), |n| format!("/login?next={}", escape(n))))
            } else {
                Error::Unauthorized
            });
        };
        // A bearer token must be an API session or token and a cookie a browser one.
        if from_cookie != (kind == "browser") {
            return Err(Error::Unauthorized);
        }
        if from_cookie && !is_safe(&parts.method) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if sent.is_empty() || sent != user.csrf_token {
                return Err(Error::Invalid { code: "auth.csrf".into(), field: None, detail: None });
            }
        }
        if user.must_change_password && !allowed_before_password_change(&parts.method, parts.uri.path()) {
            return Err(if parts.uri.path().starts_with("/api/") {
                Error::PasswordChangeRequired
            } else {
                Error::Redirect("/account/password".into())
            });
        }
        let mut user = user;
        user.client_addr =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(user)
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    /// No credentials → `None`; bad credentials are still an error, never
    /// silently anonymous.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if token_from_parts(parts).is_none() {
            return Ok(None);
        }
        <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state).await.map(Some)
    }
}

#[derive(Debug)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub node_id: i64,
    pub roles: &'a [&'a str],
    pub must_change_password: bool,
}

pub async fn create_user(conn: &mut sqlx::AnyConnection, u: NewUser<'_>) -> Result<i64> {
    let now = now_ms();
    let id: i64 = sqlx::query(
        "insert into users (username, display_name, password_hash, node_id, must_change_password, created_at, updated_at) \
         values ($1,$2,$3,$4,$5,$6,$6) returning id",
    )
    .bind(u.username)
    .bind(u.display_name)
    .bind(u.password_hash)
    .bind(u.node_id)
    .bind(u.must_change_password as i64)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| crate::kernel::error::on_unique(e, "user.username_taken"))?
    .try_get(0)?;
    for role in u.roles {
        sqlx::query("insert into user_roles (user_id, role_code, node_id) values ($1,$2,$3)")
            .bind(id)
            .bind(*role)
            .bind(u.node_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

pub struct LoggedIn {
    pub token: String,
    pub csrf_token: String,
    pub user_id: i64,
    pub must_change_password: bool,
}

/// Why a login did not open a session (each is audited differently).
#[derive(Debug)]
enum Refusal {
    /// Wrong name or password (or a disabled account): one answer for all.
    /// `locked_now`: this failure locked the name (for this address or all).
    Failed { user_id: Option<i64>, locked_now: bool },
    /// The name waits out a lockout (for this address or all); whether it
    /// is an account is not looked at, so the answer cannot tell.
    Locked,
    /// The client address made too many failed attempts.
    Throttled,
}

/// Checks a password and opens a session. Unknown names cost the same
/// hashing work and the same lockout bookkeeping as accounts (see
/// `lockout`), so neither the answer nor its timing reveals which exist.
/// Failures count towards the name's lockouts and the address throttle.
async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    kind: &str,
    addr: Option<&str>,
) -> Result<std::result::Result<LoggedIn, Refusal>> {
    let db = &state.db;
    let policy = state.policy();
    let now = now_ms();
    if let Some(a) = addr {
        if state.throttle.is_blocked(a, now, &policy) {
            return Ok(Err(Refusal::Throttled));
        }
    }
    let key = lockout::name_key(username);
    if lockout::is_locked(db, &key, addr, now).await? {
        return Ok(Err(Refusal::Locked));
    }
    let row = sqlx::query("select id, password_hash, disabled, must_change_password from users where username = $1")
        .bind(username.trim())
        .fetch_optional(&db.pool)
        .await?;
    let (user_id, hash, disabled, must_change) = match row {
        Some(r) => (
            r.try_get::<i64, _>(0)?,
            r.try_get::<String, _>(1)?,
            r.try_get::<i64, _>(2)? != 0,
            r.try_get::<i64, _>(3)? != 0,
        ),
        None => (0, password::DUMMY_HASH.to_string(), true, false),
    };
    let ok = password::verify(password.to_string(), hash).await;
    if !ok || disabled || user_id == 0 {
        if let Some(a) = addr {
            state.throttle.record_failure(a, now, &policy);
        }
        let counted = lockout::record_failure(db, &policy, &key, username, addr, now).await?;
        let locked_now = counted.pair_locked || counted.account_locked;
        return Ok(Err(Refusal::Failed { user_id: (user_id != 0).then_some(user_id), locked_now }));
    }
    let token = random_token();
    let csrf = random_token();
    let _w = db.write_lock().await;
    sqlx::query(
        "insert into sessions (token_hash, user_id, kind, csrf_token, created_at, last_seen_at, expires_at, client_addr) \
         values ($1,$2,$3,$4,$5,$5,$6,$7)",
    )
    .bind(hash_token(&token))
    .bind(user_id)
    .bind(kind)
    .bind(&csrf)
    .bind(now)
    .bind(now + policy.absolute_ms())
    .bind(addr)
    .execute(&db.pool)
    .await?;
    sqlx::query("update users set last_login_at = $1, failed_logins = 0, locked_until = null where id = $2")
        .bind(now)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    lockout::clear(db, &key, addr).await?;
    Ok(Ok(LoggedIn { token, csrf_token: csrf, user_id, must_change_password: must_change }))
}

pub async fn logout(db: &Db, user: &CurrentUser) -> Result<()> {
    sqlx::query("delete from sessions where token_hash = $1").bind(&user.token_hash).execute(&db.pool).await?;
    db.sessions.forget(&user.token_hash);
    Ok(())
}

/// Logs in and records the outcome in the audit log: a success with the
/// session kind, a failure with the name that was typed (never the
/// password), a lockout and a throttled address as their own entries.
pub async fn login_audited(
    state: &AppState,
    username: &str,
    password: &str,
    kind: &str,
    addr: Option<String>,
) -> Result<LoggedIn> {
    use crate::audit::{record, Actor, Object};
    use crate::auth::action;
    let db = &state.db;
    let detail = serde_json::json!({"kind": kind});
    match login(state, username, password, kind, addr.as_deref()).await? {
        Ok(done) => {
            let actor = Actor { user_id: Some(done.user_id), ..Actor::anonymous(username, addr) };
            let actor = with_roles(db, actor).await?;
            let object = Some(Object::new("user", done.user_id));
            record(db, &actor, action::LOGIN, object, None, detail).await?;
            Ok(done)
        }
        Err(Refusal::Failed { user_id, locked_now }) => {
            let actor =
                if user_id.is_some() { Actor::anonymous(username, addr) } else { Actor::unknown(username, addr) };
            let object = user_id.map(|id| Object::new("user", id));
            record(db, &actor, action::LOGIN_FAILED, object.clone(), None, detail).await?;
            if locked_now {
                record(db, &actor, action::ACCOUNT_LOCKED, object, None, serde_json::json!({})).await?;
            }
            Err(Error::LoginFailed)
        }
        Err(Refusal::Locked) => {
            let actor = Actor::anonymous(username, addr);
            let user_id: Option<i64> = sqlx::query_scalar("select id from users where username = $1")
                .bind(username.trim())
                .fetch_optional(&db.pool)
                .await?;
            let object = user_id.map(|id| Object::new("user", id));
            record(db, &actor, action::LOGIN_FAILED, object, None, detail).await?;
            Err(Error::Locked)
        }
        Err(Refusal::Throttled) => {
            let actor = Actor::unknown(username, addr);
            record(db, &actor, action::LOGIN_THROTTLED, None, None, detail).await?;
            Err(Error::Throttled)
        }
    }
}

/// Fills in the roles and node of a logged-in actor: a new session acts at
/// the home node, with the roles granted there.
async fn with_roles(db: &Db, mut actor: crate::audit::Actor) -> Result<crate::audit::Actor> {
    let Some(id) = actor.user_id else { return Ok(actor) };
    let row = sqlx::query("select username, node_id from users where id = $1").bind(id).fetch_one(&db.pool).await?;
    actor.username = row.try_get(0)?;
    let home: i64 = row.try_get(1)?;
    actor.node_id = Some(home);
    let roles: Vec<String> =
        sqlx::query("select role_code from user_roles where user_id = $1 and node_id = $2 order by role_code")
            .bind(id)
            .bind(home)
            .fetch_all(&db.pool)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
    actor.roles = roles.join(",");
    Ok(actor)
}

pub async fn logout_audited(db: &Db, user: &CurrentUser, addr: Option<String>) -> Result<()> {
    use crate::audit::{record, Actor, Object};
    use crate::auth::action;
    if let Some(id) = user.token_id {
        // Logging out with an API token ends that token: the credential the
        // caller presented stops working, as a session's would.
        tokens::revoke(db, &Scope::everything(), id).await?;
        let object = Some(Object::new("api_token", id));
        let detail = serde_json::json!({"logout": true});
        record(db, &Actor::user(user, addr), action::TOKEN_REVOKE, object, None, detail).await?;
        return Ok(());
    }
    logout(db, user).await?;
    let object = Some(Object::new("user", user.id));
    record(db, &Actor::user(user, addr), action::LOGOUT, object, None, serde_json::json!({})).await?;
    Ok(())
}

/// This domain's pages.
pub fn pages() -> Router<crate::web::AppState> {
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/account", get(account_pages::account))
        .route("/account/password", get(account_pages::forced_password).post(account_pages::change_password))
        .route("/account/sessions", delete(account_pages::end_all_sessions))
        .route("/account/sessions/{id}", delete(account_pages::end_session))
        .route("/account/node", post(account_pages::switch_node))
        .route("/admin/users", get(admin_pages::users).post(admin_pages::create_user))
        .route("/admin/users/node-fields", get(admin_pages::node_fields))
        .route("/admin/users/{id}", get(admin_pages::user).post(admin_pages::update_user))
        .route("/admin/users/{id}/status", post(admin_pages::user_status))
        .route("/admin/users/{id}/password-reset", post(admin_pages::reset_password))
        .route("/admin/users/{id}/grants", post(admin_pages::add_grant))
        .route("/admin/users/{id}/grants/remove", post(admin_pages::remove_grant))
        .route("/admin/roles", get(admin_pages::roles).post(admin_pages::create_role))
        .route("/admin/roles/{code}", post(admin_pages::update_role).delete(admin_pages::delete_role))
        .route("/admin/tokens", get(admin_pages::tokens).post(admin_pages::issue_token))
        .route("/admin/tokens/{id}", delete(admin_pages::revoke_token))
        .route("/admin/policy", get(admin_pages::policy).post(admin_pages::save_policy))
}

/// This domain's API routes, with their OpenAPI descriptions.
pub fn api() -> utoipa_axum::router::OpenApiRouter<crate::web::AppState> {
    utoipa_axum::router::OpenApiRouter::new().merge(api::router()).merge(admin_api::router())
}

/// Audit actions of identity: sessions, users, roles, tokens, the policy.
/// How the audit log names this domain's objects: users by name and
/// account, roles and API tokens by name.
pub fn register_labels() {
    use crate::audit::labels::{by_query, register};
    register("user", |db, ids| {
        Box::pin(by_query(db, "select display_name || '（' || username || '）' from users where id = $1", ids, true))
    });
    register("role", |db, ids| Box::pin(by_query(db, "select name from roles where code = $1", ids, false)));
    register("api_token", |db, ids| Box::pin(by_query(db, "select name from api_tokens where id = $1", ids, true)));
}

pub mod action {
    pub const LOGIN: &str = "session.login";
    pub const LOGIN_FAILED: &str = "session.login_failed";
    pub const LOGOUT: &str = "session.logout";
    pub const ACCOUNT_LOCKED: &str = "session.locked";
    pub const LOGIN_THROTTLED: &str = "session.throttled";
    pub const SESSION_REVOKE: &str = "session.revoke";
    pub const SESSION_REVOKE_ALL: &str = "session.revoke_all";
    pub const SESSION_SWITCH_NODE: &str = "session.switch_node";
    pub const PASSWORD_CHANGE: &str = "user.password_change";
    pub const PASSWORD_RESET: &str = "user.password_reset";
    pub const USER_CREATE: &str = "user.create";
    pub const USER_UPDATE: &str = "user.update";
    pub const ROLE_CREATE: &str = "role.create";
    pub const ROLE_UPDATE: &str = "role.update";
    pub const ROLE_DELETE: &str = "role.delete";
    pub const TOKEN_CREATE: &str = "token.create";
    pub const TOKEN_REVOKE: &str = "token.revoke";
    pub const POLICY_UPDATE: &str = "policy.update";

    /// Every action above, for the audit log's filters (`audit::action::register`).
    pub const ALL: &[&str] = &[
        LOGIN,
        LOGIN_FAILED,
        LOGOUT,
        ACCOUNT_LOCKED,
        LOGIN_THROTTLED,
        SESSION_REVOKE,
        SESSION_REVOKE_ALL,
        SESSION_SWITCH_NODE,
        PASSWORD_CHANGE,
        PASSWORD_RESET,
        USER_CREATE,
        USER_UPDATE,
        ROLE_CREATE,
        ROLE_UPDATE,
        ROLE_DELETE,
        TOKEN_CREATE,
        TOKEN_REVOKE,
        POLICY_UPDATE,
    ];
}
