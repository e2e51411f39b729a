//! Audit API under `/api/v1/`: searching the log (administrators only) and
//! unmasking personal numbers.

use crate::web::extract::{Json, Query};
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    query::{self, AuditFilter},
    Entry,
};
use crate::{
    kernel::{
        error::{ErrorBody, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    web::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<Entry>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Search the audit log (administrators only): the entries of the caller's
/// subtree (all of them for the root's administrators).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(f): Query<AuditFilter>,
) -> Result<Json<AuditPage>> {
    user.require(Perm::AuditRead)?;
    let p = query::search(&s.db, &user, &f).await?;
    Ok(Json(AuditPage { entries: p.entries, total: p.total, page: p.page, per_page: p.per_page }))
}
