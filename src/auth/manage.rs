//! Account and administration changes together with their audit entries:
//! the one path that both the JSON API (`admin_api`) and the console pages
//! take, so a change made in either place is checked and recorded alike.
//! Each function checks the caller's permission itself.

use super::{
    tokens::{self, IssuedToken, NewToken, TokenView},
    users::{self, GrantView, NewUserRequest, RoleInput, RoleView, UserDetail, UserPatch},
    CurrentUser, Perm, SecurityPolicy,
};
use crate::{audit::Object, auth::action, kernel::error::Result, web::AppState};

use crate::audit::record_write as audited;

// ---------- own account ----------

/// Changes the caller's own password; their other sessions end.
pub async fn change_password(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    current: &str,
    new: &str,
) -> Result<()> {
    users::change_own_password(s, user, current, new).await?;
    audited(s, user, addr, action::PASSWORD_CHANGE, Object::new("user", user.id), serde_json::json!({})).await
}

/// Logs the caller out everywhere, this session included.
pub async fn end_all_sessions(s: &AppState, user: &CurrentUser, addr: Option<String>) -> Result<u64> {
    let n = users::end_sessions(&s.db, user.id).await?;
    audited(s, user, addr, action::SESSION_REVOKE_ALL, Object::new("user", user.id), serde_json::json!({"ended": n}))
        .await?;
    Ok(n)
}

/// Ends one of the caller's sessions by its public id.
pub async fn end_session(s: &AppState, user: &CurrentUser, addr: Option<String>, id: &str) -> Result<()> {
    users::end_own_session(&s.db, user, id).await?;
    audited(s, user, addr, action::SESSION_REVOKE, Object::new("user", user.id), serde_json::json!({"session": id}))
        .await
}

/// Makes the caller's session act at another of their nodes (切换岗位).
pub async fn switch_node(s: &AppState, user: &CurrentUser, addr: Option<String>, node_id: i64) -> Result<()> {
    users::switch_node(&s.db, user, node_id).await?;
    let detail = serde_json::json!({"from": user.node_id, "to": node_id});
    audited(s, user, addr, action::SESSION_SWITCH_NODE, Object::new("user", user.id), detail).await
}

// ---------- users ----------

/// Creates a user; answers them with their temporary password.
pub async fn create_user(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    input: NewUserRequest,
) -> Result<(UserDetail, String)> {
    user.require(Perm::UsersManage)?;
    let (created, temporary_password) = users::create(s, user, input).await?;
    let grants: Vec<_> = created.grants.iter().filter(|g| g.node_id != created.node_id).map(grant_json).collect();
    let detail = serde_json::json!({"username": created.username, "roles": created.roles, "node_id": created.node_id,
        "grants": grants});
    audited(s, user, addr, action::USER_CREATE, Object::new("user", created.id), detail).await?;
    Ok((created, temporary_password))
}

pub async fn update_user(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    id: i64,
    patch: UserPatch,
) -> Result<UserDetail> {
    user.require(Perm::UsersManage)?;
    let mut detail = serde_json::to_value(&patch).map_err(anyhow::Error::from)?;
    let before = users::get(&s.db, &user.scope(), id).await?;
    let updated = users::update(s, user, id, patch).await?;
    // The roles given and taken at each node, so the entry says what changed.
    let key = |g: &&GrantView| (g.role.clone(), g.node_id);
    let held: Vec<_> = before.grants.iter().map(|g| key(&g)).collect();
    let holds: Vec<_> = updated.grants.iter().map(|g| key(&g)).collect();
    let granted: Vec<_> = updated.grants.iter().filter(|g| !held.contains(&key(g))).map(grant_json).collect();
    let revoked: Vec<_> = before.grants.iter().filter(|g| !holds.contains(&key(g))).map(grant_json).collect();
    if !granted.is_empty() || !revoked.is_empty() {
        detail["granted"] = granted.into();
        detail["revoked"] = revoked.into();
    }
    audited(s, user, addr, action::USER_UPDATE, Object::new("user", id), detail).await?;
    Ok(updated)
}

fn grant_json(g: &GrantView) -> serde_json::Value {
    serde_json::json!({"role": g.role, "node_id": g.node_id})
}

/// Resets a user's password to a temporary one (returned); their sessions end.
pub async fn reset_password(s: &AppState, user: &CurrentUser, addr: Option<String>, id: i64) -> Result<String> {
    user.require(Perm::UsersManage)?;
    let temporary_password = users::reset_password(s, user, id).await?;
    audited(s, user, addr, action::PASSWORD_RESET, Object::new("user", id), serde_json::json!({})).await?;
    Ok(temporary_password)
}

// ---------- roles ----------

/// Creates a role (`code` None) or changes one.
pub async fn save_role(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    code: Option<&str>,
    input: RoleInput,
) -> Result<RoleView> {
    user.require(Perm::RolesManage)?;
    let detail = serde_json::to_value(&input).map_err(anyhow::Error::from)?;
    let creating = code.is_none();
    let role = users::save_role(&s.db, user, code, input).await?;
    let act = if creating { action::ROLE_CREATE } else { action::ROLE_UPDATE };
    audited(s, user, addr, act, Object::new("role", &role.code), detail).await?;
    Ok(role)
}

pub async fn delete_role(s: &AppState, user: &CurrentUser, addr: Option<String>, code: &str) -> Result<()> {
    user.require(Perm::RolesManage)?;
    users::delete_role(&s.db, code).await?;
    audited(s, user, addr, action::ROLE_DELETE, Object::new("role", code), serde_json::json!({})).await
}

// ---------- API tokens ----------

pub async fn issue_token(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    input: NewToken,
) -> Result<IssuedToken> {
    user.require(Perm::TokensManage)?;
    let issued = tokens::issue(&s.db, user, s.policy().token_max_days, input).await?;
    let v = &issued.view;
    let detail = serde_json::json!({"name": v.name, "permissions": v.permissions, "node_id": v.node_id,
        "expires_at": v.expires_at});
    audited(s, user, addr, action::TOKEN_CREATE, Object::new("api_token", v.id), detail).await?;
    Ok(issued)
}

pub async fn revoke_token(s: &AppState, user: &CurrentUser, addr: Option<String>, id: i64) -> Result<TokenView> {
    user.require(Perm::TokensManage)?;
    let view = tokens::revoke(&s.db, &user.scope(), id).await?;
    audited(s, user, addr, action::TOKEN_REVOKE, Object::new("api_token", id), serde_json::json!({})).await?;
    Ok(view)
}

// ---------- policy ----------

pub async fn set_policy(s: &AppState, user: &CurrentUser, addr: Option<String>, policy: SecurityPolicy) -> Result<()> {
    user.require(Perm::PolicyManage)?;
    let detail = serde_json::to_value(&policy).map_err(anyhow::Error::from)?;
    super::policy::save(&s.db, &policy).await?;
    s.replace_policy(policy);
    s.db.settings_changed().await?;
    audited(s, user, addr, action::POLICY_UPDATE, Object::new("settings", "security_policy"), detail).await
}
