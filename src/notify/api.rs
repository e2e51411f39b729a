//! The inbox API under `/api/v1/inbox`: the caller's own notices, their
//! unread count, marking read. Every route answers for the caller only: a
//! notice of someone else's answers like one that does not exist.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::store::{self, Notice};
use crate::{
    kernel::{
        error::{Error, ErrorBody, Result},
        principal::CurrentUser,
    },
    platform::db::now_ms,
    web::{
        extract::{Json, Path, Query},
        AppState,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(unread_count))
        .routes(routes!(read_one))
        .routes(routes!(read_all))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only the unread ones.
    #[serde(default)]
    pub unread: bool,
    /// Those older than this notice id (the next page).
    pub before: Option<i64>,
    /// At most this many (1–100, default 50).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Inbox {
    /// Newest first.
    pub notices: Vec<Notice>,
    /// The caller's unread notices, all pages.
    pub unread: i64,
}

/// The caller's notices, newest first, with their unread count.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "inbox", params(InboxQuery), security(("bearer" = [])),
    responses((status = 200, body = Inbox), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(State(s): State<AppState>, user: CurrentUser, Query(q): Query<InboxQuery>) -> Result<Json<Inbox>> {
    if q.before.is_some_and(|b| b < 1) {
        return Err(Error::invalid("notify.before_invalid", "before"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("notify.limit_invalid", "limit"));
    }
    let notices = store::list(&s.db, user.id, q.unread, q.before, limit).await?;
    let (unread, _) = store::unread(&s.db, user.id).await?;
    Ok(Json(Inbox { notices, unread }))
}

#[derive(Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
    /// The newest notice's id (0 for none): a live stream resumes after it.
    pub newest: i64,
}

/// The caller's unread count (the bell).
#[utoipa::path(get, path = "/api/v1/inbox/unread-count", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = UnreadCount), (status = 401, body = ErrorBody)))]
async fn unread_count(State(s): State<AppState>, user: CurrentUser) -> Result<Json<UnreadCount>> {
    let (unread, newest) = store::unread(&s.db, user.id).await?;
    Ok(Json(UnreadCount { unread, newest }))
}

/// Marks one of the caller's notices read (again changes nothing). 404
/// for a notice that is not the caller's.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/read", tag = "inbox", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The notice's id")),
    responses((status = 200, body = Notice), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn read_one(State(s): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<Notice>> {
    Ok(Json(store::mark_read(&s.db, user.id, id, now_ms()).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ReadAll {
    /// How many were unread.
    pub marked: i64,
}

/// Marks all the caller's notices read.
#[utoipa::path(post, path = "/api/v1/inbox/read-all", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = ReadAll), (status = 401, body = ErrorBody)))]
async fn read_all(State(s): State<AppState>, user: CurrentUser) -> Result<Json<ReadAll>> {
    let marked = store::mark_all_read(&s.db, user.id, now_ms()).await? as i64;
    Ok(Json(ReadAll { marked }))
}
