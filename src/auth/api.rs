//! Session API for programs: log in for a bearer token, log out, who am I.

use crate::web::extract::Json;
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::CurrentUser;
use crate::{
    kernel::error::{ErrorBody, Result},
    web::{AppState, ClientAddr},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_session, delete_session)).routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Idle timeout in seconds; the token also expires a fixed time after
    /// login (12 hours by default). When `user.must_change_password` is set,
    /// only `PUT /api/v1/me/password` (and `me`, logout) work until it is changed.
    pub idle_timeout_s: i64,
    pub user: CurrentUser,
}

/// Log in with a username and password and receive a bearer token.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Credentials,
    responses((status = 201, body = SessionCreated), (status = 401, body = ErrorBody)))]
async fn create_session(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(c): Json<Credentials>,
) -> Result<(StatusCode, Json<SessionCreated>)> {
    let done = super::login_audited(&state, &c.username, &c.password, "api", addr).await?;
    let policy = state.policy();
    let (user, _) =
        super::load_session(&state.db, &policy, &done.token).await?.ok_or(crate::kernel::error::Error::LoginFailed)?;
    Ok((StatusCode::CREATED, Json(SessionCreated { token: done.token, idle_timeout_s: policy.idle_ms() / 1000, user })))
}

/// End the current session (log out).
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn delete_session(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
) -> Result<StatusCode> {
    super::logout_audited(&state.db, &user, addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in user, their node and roles.
#[utoipa::path(get, path = "/api/v1/me", tag = "session", security(("bearer" = [])),
    responses((status = 200, body = CurrentUser), (status = 401, body = ErrorBody)))]
async fn me(user: CurrentUser) -> Json<CurrentUser> {
    Json(user)
}
