//! Account and administration API: one's own password and sessions; users,
//! roles, API tokens and the security policy for administrators. Every
//! change is recorded in the audit log, through `manage` (shared with the
//! console pages).

use crate::web::extract::{Json, Path, Query};
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    manage,
    tokens::{self, IssuedToken, NewToken, TokenView},
    users::{self, NewUserRequest, RoleInput, RoleView, SessionView, UserDetail, UserList, UserPatch, UserQuery},
    CurrentUser, Perm, SecurityPolicy,
};
use crate::{
    kernel::error::{ErrorBody, Result},
    web::{AppState, ClientAddr},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(my_sessions, end_all_sessions))
        .routes(routes!(end_session))
        .routes(routes!(switch_node))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(reset_password))
        .routes(routes!(list_permissions))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(update_role, delete_role))
        .routes(routes!(list_tokens, issue_token))
        .routes(routes!(revoke_token))
        .routes(routes!(get_policy, set_policy))
}

// ---------- own account ----------

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change your own password. Your other sessions end; this one stays.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "account", request_body = PasswordChange,
    security(("bearer" = [])), responses((status = 204), (status = 422, body = ErrorBody)))]
async fn change_password(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(c): Json<PasswordChange>,
) -> Result<StatusCode> {
    manage::change_password(&s, &user, addr, &c.current_password, &c.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your open sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = [SessionView])))]
async fn my_sessions(State(s): State<AppState>, user: CurrentUser) -> Result<Json<Vec<SessionView>>> {
    Ok(Json(users::sessions(&s, &user).await?))
}

/// Log out everywhere: end all your sessions, this one included.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "account", security(("bearer" = [])),
    responses((status = 204)))]
async fn end_all_sessions(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
) -> Result<StatusCode> {
    manage::end_all_sessions(&s, &user, addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End one of your sessions (e.g. a phone you lost).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn end_session(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    manage::end_session(&s, &user, addr, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct ActiveNode {
    /// One of the `nodes` in `/api/v1/me`.
    pub node_id: i64,
}

/// Act at another node where you hold roles (切换岗位): from now on this
/// session has the roles granted there and sees that node's subtree. A node
/// where you hold no role is not found. API tokens keep their own node.
#[utoipa::path(put, path = "/api/v1/me/active-node", tag = "account", request_body = ActiveNode,
    security(("bearer" = [])), responses((status = 200, body = CurrentUser), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody)))]
async fn switch_node(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(a): Json<ActiveNode>,
) -> Result<Json<CurrentUser>> {
    manage::switch_node(&s, &user, addr, a.node_id).await?;
    Ok(Json(super::reload(&s.db, &s.policy(), &user).await?))
}

// ---------- users ----------

/// Users bound to nodes in your scope.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin", params(UserQuery), security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<UserQuery>,
) -> Result<Json<UserList>> {
    user.require(Perm::UsersManage)?;
    Ok(Json(users::list(&s.db, &user.scope(), &q).await?))
}

#[derive(Serialize, ToSchema)]
pub struct UserCreated {
    #[serde(flatten)]
    pub user: UserDetail,
    /// The first password, to hand over in person; it must be changed at first login.
    pub temporary_password: String,
}

/// Create a user at a node with roles. They get a temporary password and
/// must change it at first login.
#[utoipa::path(post, path = "/api/v1/users", tag = "admin", request_body = NewUserRequest, security(("bearer" = [])),
    responses((status = 201, body = UserCreated), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(input): Json<NewUserRequest>,
) -> Result<(StatusCode, Json<UserCreated>)> {
    let (created, temporary_password) = manage::create_user(&s, &user, addr, input).await?;
    Ok((StatusCode::CREATED, Json(UserCreated { user: created, temporary_password })))
}

/// One user with their recent logins.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "admin", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody)))]
async fn get_user(State(s): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<UserDetail>> {
    user.require(Perm::UsersManage)?;
    Ok(Json(users::get(&s.db, &user.scope(), id).await?))
}

/// Change a user's name, node, roles or unit; disable, enable or unlock them.
/// Disabling ends their sessions.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "admin", params(("id" = i64, Path)), request_body = UserPatch,
    security(("bearer" = [])), responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(patch): Json<UserPatch>,
) -> Result<Json<UserDetail>> {
    Ok(Json(manage::update_user(&s, &user, addr, id, patch).await?))
}

#[derive(Serialize, ToSchema)]
pub struct PasswordReset {
    /// The new temporary password; it must be changed at next login.
    pub temporary_password: String,
}

/// Reset a user's password to a temporary one; their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "admin", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = PasswordReset), (status = 404, body = ErrorBody)))]
async fn reset_password(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Result<Json<PasswordReset>> {
    let temporary_password = manage::reset_password(&s, &user, addr, id).await?;
    Ok(Json(PasswordReset { temporary_password }))
}

// ---------- roles ----------

#[derive(Serialize, ToSchema)]
pub struct PermissionView {
    pub code: Perm,
    pub label: &'static str,
}

/// The permissions roles are made of.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [PermissionView])))]
async fn list_permissions(user: CurrentUser) -> Result<Json<Vec<PermissionView>>> {
    user.require(Perm::RolesManage)?;
    Ok(Json(Perm::ALL.into_iter().map(|p| PermissionView { code: p, label: p.label() }).collect()))
}

/// Roles, their permissions and how many users hold each.
#[utoipa::path(get, path = "/api/v1/roles", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [RoleView])))]
async fn list_roles(State(s): State<AppState>, user: CurrentUser) -> Result<Json<Vec<RoleView>>> {
    if !user.can(Perm::RolesManage) {
        user.require(Perm::UsersManage)?;
    }
    Ok(Json(users::roles(&s.db).await?))
}

/// Create a role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "admin", request_body = RoleInput, security(("bearer" = [])),
    responses((status = 201, body = RoleView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_role(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(input): Json<RoleInput>,
) -> Result<(StatusCode, Json<RoleView>)> {
    let role = manage::save_role(&s, &user, addr, None, input).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Rename a role or change its permissions (takes effect on the next request of its holders).
#[utoipa::path(put, path = "/api/v1/roles/{code}", tag = "admin", params(("code" = String, Path)),
    request_body = RoleInput, security(("bearer" = [])),
    responses((status = 200, body = RoleView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_role(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(code): Path<String>,
    Json(input): Json<RoleInput>,
) -> Result<Json<RoleView>> {
    Ok(Json(manage::save_role(&s, &user, addr, Some(&code), input).await?))
}

/// Delete a role nobody holds (built-in roles stay).
#[utoipa::path(delete, path = "/api/v1/roles/{code}", tag = "admin", params(("code" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_role(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(code): Path<String>,
) -> Result<StatusCode> {
    manage::delete_role(&s, &user, addr, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- API tokens ----------

/// API tokens whose node is in your scope.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [TokenView])))]
async fn list_tokens(State(s): State<AppState>, user: CurrentUser) -> Result<Json<Vec<TokenView>>> {
    user.require(Perm::TokensManage)?;
    Ok(Json(tokens::list(&s.db, &user.scope()).await?))
}

/// Issue an API token for an integration; the token is shown only in this answer.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", request_body = NewToken, security(("bearer" = [])),
    responses((status = 201, body = IssuedToken), (status = 422, body = ErrorBody)))]
async fn issue_token(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(input): Json<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    Ok((StatusCode::CREATED, Json(manage::issue_token(&s, &user, addr, input).await?)))
}

/// Revoke an API token at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Result<Json<TokenView>> {
    Ok(Json(manage::revoke_token(&s, &user, addr, id).await?))
}

// ---------- policy ----------

/// The password and session policy.
#[utoipa::path(get, path = "/api/v1/policy", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = SecurityPolicy)))]
async fn get_policy(State(s): State<AppState>, user: CurrentUser) -> Result<Json<SecurityPolicy>> {
    user.require(Perm::PolicyManage)?;
    Ok(Json(s.policy().as_ref().clone()))
}

/// Change the password and session policy (within the standards' bounds).
#[utoipa::path(put, path = "/api/v1/policy", tag = "admin", request_body = SecurityPolicy, security(("bearer" = [])),
    responses((status = 200, body = SecurityPolicy), (status = 422, body = ErrorBody)))]
async fn set_policy(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(policy): Json<SecurityPolicy>,
) -> Result<Json<SecurityPolicy>> {
    manage::set_policy(&s, &user, addr, policy.clone()).await?;
    Ok(Json(policy))
}
