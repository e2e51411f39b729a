//! API tokens for integrations (the 12345 feed, Open311 keys, robots):
//! each holds its own permissions and a node whose subtree is its scope,
//! expires, can be revoked, and is stored only as a SHA-256 hash. The
//! token is shown once, when issued.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::{hash_token, random_token, CurrentUser, Perm, API_TOKEN_PREFIX};
use crate::platform::sessions::Resolved;
use crate::{
    kernel::{
        error::{Error, Result},
        scope::Scope,
    },
    platform::db::{now_ms, Db},
};

/// `last_used_at` is refreshed at most this often.
const TOUCH_MS: i64 = 60 * 1000;

#[derive(Deserialize, ToSchema)]
pub struct NewToken {
    /// What the token is for, e.g. 「12345热线对接」.
    pub name: String,
    /// Permission codes, each one the issuer holds.
    pub permissions: Vec<String>,
    /// The node whose subtree the token may reach (inside the issuer's scope).
    pub node_id: i64,
    /// Lifetime in days (at most the policy's `token_max_days`).
    pub expires_in_days: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub node_id: i64,
    pub node_name: String,
    pub permissions: Vec<Perm>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct IssuedToken {
    /// Send as `Authorization: Bearer <token>`. Shown only now.
    pub token: String,
    #[serde(flatten)]
    pub view: TokenView,
}

fn parse_perms(text: &str) -> Vec<Perm> {
    serde_json::from_str::<Vec<String>>(text).unwrap_or_default().iter().filter_map(|c| Perm::parse(c)).collect()
}

/// Issues a token. The issuer can only hand out permissions they hold, at
/// a node inside their own scope.
pub async fn issue(db: &Db, issuer: &CurrentUser, max_days: i64, input: NewToken) -> Result<IssuedToken> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(Error::invalid("token.name_invalid", "name"));
    }
    if input.expires_in_days < 1 || input.expires_in_days > max_days {
        return Err(Error::invalid_detail("token.expiry_invalid", "expires_in_days", format!("1–{max_days}")));
    }
    let mut perms = vec![];
    for code in &input.permissions {
        let p =
            Perm::parse(code).ok_or_else(|| Error::invalid_detail("role.permission_unknown", "permissions", code))?;
        if !issuer.can(p) {
            return Err(Error::invalid_detail("token.permission_not_held", "permissions", code));
        }
        perms.push(p);
    }
    perms.sort();
    perms.dedup();
    if perms.is_empty() {
        return Err(Error::invalid("token.permissions_required", "permissions"));
    }
    let (lo, hi) = issuer.scope().bounds();
    let node = sqlx::query("select name from nodes where id = $1 and path >= $2 and path < $3")
        .bind(input.node_id)
        .bind(&lo)
        .bind(&hi)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| Error::invalid("tree.node_not_found", "node_id"))?;
    let node_name: String = node.try_get(0)?;
    let token = format!("{API_TOKEN_PREFIX}{}", random_token());
    let prefix = token[..API_TOKEN_PREFIX.len() + 6].to_string();
    let codes: Vec<&str> = perms.iter().map(|p| p.code()).collect();
    let now = now_ms();
    let expires_at = now + input.expires_in_days * 86_400_000;
    let _w = db.write_lock().await;
    let id: i64 = sqlx::query(
        "insert into api_tokens (name, token_hash, prefix, node_id, permissions, created_by, created_at, expires_at) \
         values ($1,$2,$3,$4,$5,$6,$7,$8) returning id",
    )
    .bind(name)
    .bind(hash_token(&token))
    .bind(&prefix)
    .bind(input.node_id)
    .bind(serde_json::to_string(&codes).map_err(anyhow::Error::from)?)
    .bind(issuer.id)
    .bind(now)
    .bind(expires_at)
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    let view = TokenView {
        id,
        name: name.to_string(),
        prefix,
        node_id: input.node_id,
        node_name,
        permissions: perms,
        created_by: issuer.display_name.clone(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        status: "active",
    };
    Ok(IssuedToken { token, view })
}

const VIEW_SQL: &str = "select t.id, t.name, t.prefix, t.node_id, n.name as node_name, n.path, t.permissions, \
     u.display_name as created_by, t.created_at, t.expires_at, t.revoked_at, t.last_used_at \
     from api_tokens t join nodes n on n.id = t.node_id join users u on u.id = t.created_by";

fn view_from_row(r: &sqlx::any::AnyRow, now: i64) -> Result<TokenView> {
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    let expires_at: i64 = r.try_get("expires_at")?;
    Ok(TokenView {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        node_id: r.try_get("node_id")?,
        node_name: r.try_get("node_name")?,
        permissions: parse_perms(&r.try_get::<String, _>("permissions")?),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at,
        revoked_at,
        last_used_at: r.try_get("last_used_at")?,
        status: if revoked_at.is_some() {
            "revoked"
        } else if expires_at <= now {
            "expired"
        } else {
            "active"
        },
    })
}

/// Tokens whose node lies in the caller's scope, newest first.
pub async fn list(db: &Db, scope: &Scope) -> Result<Vec<TokenView>> {
    let (lo, hi) = scope.bounds();
    let now = now_ms();
    sqlx::query(&format!("{VIEW_SQL} where n.path >= $1 and n.path < $2 order by t.id desc"))
        .bind(lo)
        .bind(hi)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| view_from_row(r, now))
        .collect()
}

/// Revokes a token in scope; out of scope is not found. Revoking twice is
/// harmless.
pub async fn revoke(db: &Db, scope: &Scope, id: i64) -> Result<TokenView> {
    let (lo, hi) = scope.bounds();
    let _w = db.write_lock().await;
    let found = sqlx::query(&format!("{VIEW_SQL} where t.id = $1 and n.path >= $2 and n.path < $3"))
        .bind(id)
        .bind(&lo)
        .bind(&hi)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    let now = now_ms();
    sqlx::query("update api_tokens set revoked_at = $1 where id = $2 and revoked_at is null")
        .bind(now)
        .bind(id)
        .execute(&db.pool)
        .await?;
    db.sessions.forget_token(id);
    let mut view = view_from_row(&found, now)?;
    view.revoked_at = view.revoked_at.or(Some(now));
    view.status = "revoked";
    Ok(view)
}

/// The caller an API token stands for, if it is valid now. The token acts
/// for its issuer (who must still be an enabled user) with the token's own
/// permissions and node.
pub async fn load(db: &Db, token: &str) -> Result<Option<CurrentUser>> {
    let th = hash_token(token);
    let now = now_ms();
    let t = match db.sessions.get(&th) {
        Some(t) => t,
        None => {
            let generation = db.sessions.generation();
            let Some(t) = lookup(db, &th).await? else { return Ok(None) };
            db.sessions.put(&th, t.clone(), generation);
            t
        }
    };
    if t.expires_at <= now {
        return Ok(None);
    }
    if now - t.last_seen_at > TOUCH_MS {
        sqlx::query("update api_tokens set last_used_at = $1 where id = $2")
            .bind(now)
            .bind(t.user.token_id)
            .execute(&db.pool)
            .await?;
        db.sessions.touched(&th, now);
    }
    Ok(Some(t.user))
}

/// A token that is neither revoked nor its issuer disabled; expiry is left
/// to the caller, which judges it on every request.
async fn lookup(db: &Db, th: &str) -> Result<Option<Resolved>> {
    let row = sqlx::query(
        "select t.id, t.name, t.node_id, t.permissions, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, \
         t.created_by, u.username, u.disabled, n.path, n.name as node_name \
         from api_tokens t join users u on u.id = t.created_by join nodes n on n.id = t.node_id \
         where t.token_hash = $1",
    )
    .bind(th)
    .fetch_optional(&db.pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let revoked: Option<i64> = r.try_get("revoked_at")?;
    if revoked.is_some() || r.try_get::<i64, _>("disabled")? != 0 {
        return Ok(None);
    }
    let user = CurrentUser {
        id: r.try_get("created_by")?,
        username: r.try_get("username")?,
        display_name: r.try_get("name")?,
        node_id: r.try_get("node_id")?,
        node_name: r.try_get("node_name")?,
        // A token is fixed to its node: nothing to switch to.
        home_node_id: r.try_get("node_id")?,
        nodes: vec![],
        unit_id: None,
        node_path: r.try_get("path")?,
        roles: vec![],
        permissions: parse_perms(&r.try_get::<String, _>("permissions")?),
        must_change_password: false,
        token_id: Some(r.try_get("id")?),
        csrf_token: String::new(),
        token_hash: th.to_string(),
        client_addr: None,
    };
    Ok(Some(Resolved {
        user,
        kind: "token".into(),
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get::<Option<i64>, _>("last_used_at")?.unwrap_or(0),
        expires_at: r.try_get("expires_at")?,
    }))
}
