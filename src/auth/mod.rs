//! Users, password login and sessions. Browsers hold a session cookie and
//! send a CSRF header on every state-changing request; API clients hold a
//! bearer token from `POST /api/v1/session`. Tokens are stored hashed.

pub mod api;
pub mod password;

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts, Method},
};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

use crate::{
    db::{now_ms, Db},
    error::{Error, Result},
    http::AppState,
    tree::store::Scope,
};

pub const SESSION_COOKIE: &str = "fq_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Idle timeout and absolute lifetime of a session.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
pub const ABSOLUTE_MS: i64 = 12 * 60 * 60 * 1000;
/// `last_seen_at` is refreshed at most this often, to keep reads cheap.
const TOUCH_MS: i64 = 60 * 1000;

/// 32 random bytes, hex-encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RoleGrant {
    pub role: String,
    pub node_id: i64,
}

/// The authenticated caller.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub node_id: i64,
    pub node_name: String,
    /// The unit (centre, grid or department) whose work orders this user handles.
    pub unit_id: Option<i64>,
    #[serde(skip)]
    pub node_path: String,
    pub roles: Vec<RoleGrant>,
    pub must_change_password: bool,
    #[serde(skip)]
    pub csrf_token: String,
    #[serde(skip)]
    pub token_hash: String,
}

impl CurrentUser {
    /// What the caller may see: the subtree of the node they are bound to.
    pub fn scope(&self) -> Scope {
        Scope { path: self.node_path.clone() }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.role == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }

    /// Writes to the tree belong to administrators.
    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    pub fn role_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> =
            self.roles.iter().map(|r| crate::i18n::t(&format!("role.{}", r.role))).collect();
        names.dedup();
        names
    }
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

/// Looks a session up, enforcing idle and absolute expiry.
pub async fn load_session(db: &Db, token: &str) -> Result<Option<(CurrentUser, String)>> {
    let th = hash_token(token);
    let now = now_ms();
    let row = sqlx::query(
        "select s.user_id, s.kind, s.csrf_token, s.last_seen_at, s.expires_at, u.username, u.display_name, \
         u.node_id, u.unit_id, u.must_change_password, u.disabled, n.path, n.name as node_name \
         from sessions s join users u on u.id = s.user_id join nodes n on n.id = u.node_id \
         where s.token_hash = $1",
    )
    .bind(&th)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let last_seen: i64 = row.try_get("last_seen_at")?;
    let expires: i64 = row.try_get("expires_at")?;
    let disabled: i64 = row.try_get("disabled")?;
    if now > expires || now - last_seen > IDLE_MS || disabled != 0 {
        sqlx::query("delete from sessions where token_hash = $1").bind(&th).execute(&db.pool).await?;
        return Ok(None);
    }
    if now - last_seen > TOUCH_MS {
        sqlx::query("update sessions set last_seen_at = $1 where token_hash = $2")
            .bind(now)
            .bind(&th)
            .execute(&db.pool)
            .await?;
    }
    let user_id: i64 = row.try_get("user_id")?;
    let roles = sqlx::query("select role_code, node_id from user_roles where user_id = $1 order by role_code")
        .bind(user_id)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| Ok(RoleGrant { role: r.try_get(0)?, node_id: r.try_get(1)? }))
        .collect::<Result<Vec<_>>>()?;
    let kind: String = row.try_get("kind")?;
    let user = CurrentUser {
        id: user_id,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        node_id: row.try_get("node_id")?,
        node_name: row.try_get("node_name")?,
        unit_id: row.try_get("unit_id")?,
        node_path: row.try_get("path")?,
        roles,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        csrf_token: row.try_get("csrf_token")?,
        token_hash: th,
    };
    Ok(Some((user, kind)))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
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
        let (user, kind) = load_session(&state.db, &token).await?.ok_or(Error::Unauthorized)?;
        // A bearer token must be an API session and a cookie a browser one.
        if from_cookie != (kind == "browser") {
            return Err(Error::Unauthorized);
        }
        if from_cookie && !is_safe(&parts.method) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if sent.is_empty() || sent != user.csrf_token {
                return Err(Error::Invalid { code: "auth.csrf".into(), field: None, detail: None });
            }
        }
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
    .map_err(|e| crate::error::on_unique(e, "user.username_taken"))?
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
}

/// Checks a password and opens a session. Unknown users cost the same
/// hashing work as known ones, so timing does not reveal which exist.
pub async fn login(db: &Db, username: &str, password: &str, kind: &str, addr: Option<String>) -> Result<LoggedIn> {
    let row = sqlx::query("select id, password_hash, disabled from users where username = $1")
        .bind(username.trim())
        .fetch_optional(&db.pool)
        .await?;
    let (user_id, hash, disabled) = match row {
        Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)? != 0),
        None => (0, password::DUMMY_HASH.to_string(), true),
    };
    let ok = password::verify(password.to_string(), hash).await;
    if !ok || disabled || user_id == 0 {
        return Err(Error::LoginFailed);
    }
    let token = random_token();
    let csrf = random_token();
    let now = now_ms();
    sqlx::query(
        "insert into sessions (token_hash, user_id, kind, csrf_token, created_at, last_seen_at, expires_at, client_addr) \
         values ($1,$2,$3,$4,$5,$5,$6,$7)",
    )
    .bind(hash_token(&token))
    .bind(user_id)
    .bind(kind)
    .bind(&csrf)
    .bind(now)
    .bind(now + ABSOLUTE_MS)
    .bind(addr)
    .execute(&db.pool)
    .await?;
    sqlx::query("update users set last_login_at = $1 where id = $2").bind(now).bind(user_id).execute(&db.pool).await?;
    Ok(LoggedIn { token, csrf_token: csrf, user_id })
}

pub async fn logout(db: &Db, user: &CurrentUser) -> Result<()> {
    sqlx::query("delete from sessions where token_hash = $1").bind(&user.token_hash).execute(&db.pool).await?;
    Ok(())
}

/// Logs in and records the outcome in the audit log: a success with the
/// session kind, a failure with the name that was typed (never the
/// password).
pub async fn login_audited(
    db: &Db,
    username: &str,
    password: &str,
    kind: &str,
    addr: Option<String>,
) -> Result<LoggedIn> {
    use crate::audit::{action, record, Actor, Object};
    match login(db, username, password, kind, addr.clone()).await {
        Ok(done) => {
            let actor = Actor { user_id: Some(done.user_id), ..Actor::anonymous(username, addr) };
            let actor = with_roles(db, actor).await?;
            let object = Some(Object::new("user", done.user_id));
            record(db, &actor, action::LOGIN, object, None, serde_json::json!({"kind": kind})).await?;
            Ok(done)
        }
        Err(Error::LoginFailed) => {
            let actor = Actor::anonymous(username, addr);
            record(db, &actor, action::LOGIN_FAILED, None, None, serde_json::json!({"kind": kind})).await?;
            Err(Error::LoginFailed)
        }
        Err(e) => Err(e),
    }
}

/// Fills in the roles and node of a logged-in actor.
async fn with_roles(db: &Db, mut actor: crate::audit::Actor) -> Result<crate::audit::Actor> {
    let Some(id) = actor.user_id else { return Ok(actor) };
    let row = sqlx::query("select username, node_id from users where id = $1").bind(id).fetch_one(&db.pool).await?;
    actor.username = row.try_get(0)?;
    actor.node_id = Some(row.try_get(1)?);
    let roles: Vec<String> = sqlx::query("select role_code from user_roles where user_id = $1 order by role_code")
        .bind(id)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    actor.roles = roles.join(",");
    Ok(actor)
}

pub async fn logout_audited(db: &Db, user: &CurrentUser, addr: Option<String>) -> Result<()> {
    use crate::audit::{action, record, Actor, Object};
    logout(db, user).await?;
    let object = Some(Object::new("user", user.id));
    record(db, &Actor::user(user, addr), action::LOGOUT, object, None, serde_json::json!({})).await?;
    Ok(())
}
