//! Outbox administration under `/api/v1/outbox`: the events given up on
//! (dead letters) and sending one again. System administrators only
//! (`outbox.manage`); a retry is audited in its own transaction.

use axum::{
    extract::{FromRef, FromRequestParts, State},
    http::request::Parts,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::{
    audit,
    kernel::{
        error::{Error, ErrorBody, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    platform::{
        db::{now_ms, Backend},
        outbox::{self, DeadLetter},
    },
    web::extract::{Json, Path, Query},
};

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_dead)).routes(routes!(retry))
}

/// A caller who holds `outbox.manage`; anyone else is refused (403).
pub struct OutboxAdmin(CurrentUser);

impl<S> FromRequestParts<S> for OutboxAdmin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let user = <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        user.require(Perm::OutboxManage)?;
        Ok(OutboxAdmin(user))
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// At most this many (1–500, default 100).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetters {
    /// Most recently given up on first.
    pub events: Vec<DeadLetter>,
}

/// Events whose delivery was given up on after the most attempts.
#[utoipa::path(get, path = "/api/v1/outbox/dead", tag = "outbox", params(DeadQuery), security(("bearer" = [])),
    responses((status = 200, body = DeadLetters), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_dead(
    State(s): State<AppState>,
    _admin: OutboxAdmin,
    Query(q): Query<DeadQuery>,
) -> Result<Json<DeadLetters>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    Ok(Json(DeadLetters { events: outbox::dead_letters(&s.db, limit).await? }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetryQuery {
    /// The subscriber whose delivery to send again (as the dead letter
    /// names it, e.g. `notify`); none for the webhook's.
    pub subscriber: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Retried {
    pub id: i64,
    /// `pending`: due at once, with a fresh count of attempts.
    pub state: String,
}

/// Sends a dead event again: it is due at once with a fresh count of
/// attempts. 409 `outbox.not_dead` for an event that is not dead.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "outbox", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The event's id"), RetryQuery),
    responses((status = 200, body = Retried), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry(
    State(s): State<AppState>,
    OutboxAdmin(user): OutboxAdmin,
    Path(id): Path<i64>,
    Query(q): Query<RetryQuery>,
) -> Result<Json<Retried>> {
    retry_audited(&s, &user, id, q.subscriber).await?;
    Ok(Json(Retried { id, state: "pending".into() }))
}

/// Makes a dead event due again, audited in the same transaction (the API
/// and the console page both come here). 409 `outbox.not_dead` for an event
/// that is not dead, 404 for none.
pub async fn retry_audited(s: &AppState, user: &CurrentUser, id: i64, subscriber: Option<String>) -> Result<()> {
    let now = now_ms();
    let entry = audit::PendingEntry {
        actor: audit::Actor::user(&user, user.client_addr.clone()),
        action: audit::action::OUTBOX_RETRY,
        object: audit::Object::new("outbox_event", id),
        reason: None,
        detail: match &subscriber {
            Some(name) => serde_json::json!({ "subscriber": name }),
            None => serde_json::json!({}),
        },
        at: now,
    };
    // The retry and its audit entry commit together, or neither does.
    let retried = match s.db.backend {
        Backend::Postgres => {
            let mut tx = s.db.pool.begin().await?;
            let retried = outbox::retry_in(&mut tx, id, subscriber.as_deref(), now).await?;
            if retried {
                entry.append_in(&mut tx).await?;
                tx.commit().await?;
            }
            retried
        }
        Backend::Sqlite => {
            let subscriber = subscriber.clone();
            s.db.write(move |conn| {
                let retried = outbox::retry_sqlite(conn, id, subscriber.as_deref(), now)?;
                if retried {
                    entry.append_sqlite(conn)?;
                }
                Ok(retried)
            })
            .await?
        }
    };
    if !retried {
        return Err(match outbox::state_of(&s.db, id, subscriber.as_deref()).await? {
            Some(_) => Error::conflict("outbox.not_dead"),
            None => Error::NotFound,
        });
    }
    Ok(())
}
