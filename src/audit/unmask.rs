//! Showing a masked personal number in full: only for callers allowed to,
//! only with a stated reason, and always recorded in the audit log before
//! the number leaves the server.

use axum::{
    extract::{Path, State},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{action, Actor, Object};
use crate::{
    auth::{CurrentUser, Perm},
    error::{Error, ErrorBody, Result},
    http::{AppState, ClientAddr},
    tree::store,
};

const MAX_REASON_CHARS: usize = 200;

/// Who may see full personal numbers.
pub fn may_unmask(user: &CurrentUser) -> bool {
    user.can(Perm::MemberUnmask)
}

/// The reason, trimmed; empty or overlong reasons are refused.
pub fn check_reason(reason: &str) -> Result<&str> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::invalid("audit.reason_required", "reason"));
    }
    if r.chars().count() > MAX_REASON_CHARS || r.chars().any(char::is_control) {
        return Err(Error::invalid("audit.reason_invalid", "reason"));
    }
    Ok(r)
}

#[derive(Deserialize, ToSchema)]
pub struct UnmaskRequest {
    /// Why the full number is needed (recorded in the audit log), e.g. 核实身份后电话回访.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Unmasked {
    pub member_id: i64,
    /// The full mobile number.
    pub mobile: String,
    /// The audit entry that records this disclosure.
    pub audit_id: i64,
}

/// Show a member's full mobile number. Needs the unmask permission and a
/// reason; every disclosure is written to the audit log. Members outside
/// your scope answer 404 like missing ones.
#[utoipa::path(post, path = "/api/v1/members/{id}/unmask", tag = "audit", params(("id" = i64, Path)),
    request_body = UnmaskRequest, security(("bearer" = [])),
    responses((status = 200, body = Unmasked), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn unmask_member(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(req): Json<UnmaskRequest>,
) -> Result<Json<Unmasked>> {
    if !may_unmask(&user) {
        return Err(Error::Forbidden);
    }
    let reason = check_reason(&req.reason)?;
    let (node_id, mobile) = store::member_mobile(&s.db, &s.crypto, &user.scope(), id).await?;
    let audit_id = super::record(
        &s.db,
        &Actor::user(&user, addr),
        action::MEMBER_UNMASK,
        Some(Object::new("member", id)),
        Some(reason),
        serde_json::json!({"field": "mobile", "node_id": node_id}),
    )
    .await?;
    Ok(Json(Unmasked { member_id: id, mobile: mobile.as_str().to_string(), audit_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_must_be_given_and_plain() {
        assert_eq!(check_reason("  核实身份 ").unwrap(), "核实身份");
        for bad in ["", "   ", "a\nb"] {
            assert!(check_reason(bad).is_err(), "{bad:?}");
        }
        assert!(check_reason(&"理".repeat(200)).is_ok());
        assert!(check_reason(&"理".repeat(201)).is_err());
    }
}
