//! Showing a grid member's full mobile or ID number: only with the unmask
//! permission and a reason, recorded in the audit log before it leaves.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store;
use crate::{
    audit::{
        unmask::{check_reason, may_unmask},
        Actor, Object,
    },
    kernel::{
        error::{Error, ErrorBody, Result},
        principal::CurrentUser,
    },
    tree::action,
    web::{
        extract::{Json, Path},
        AppState, ClientAddr,
    },
};

/// Which of a member's personal numbers to show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnmaskField {
    /// 手机号码
    #[default]
    Mobile,
    /// 公民身份号码
    IdNumber,
}

impl UnmaskField {
    pub fn as_str(self) -> &'static str {
        match self {
            UnmaskField::Mobile => "mobile",
            UnmaskField::IdNumber => "id_number",
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct UnmaskRequest {
    /// Why the full number is needed (recorded in the audit log), e.g. 核实身份后电话回访.
    pub reason: String,
    /// Which number to show; `mobile` when omitted.
    #[serde(default)]
    pub field: UnmaskField,
}

#[derive(Serialize, ToSchema)]
pub struct Unmasked {
    pub member_id: i64,
    /// The field shown, as requested.
    pub field: UnmaskField,
    /// The full mobile number (when `field` is `mobile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// The full 公民身份号码 (when `field` is `id_number`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    /// The audit entry that records this disclosure.
    pub audit_id: i64,
}

/// Show a member's full mobile number or, with `"field": "id_number"`, the
/// full 公民身份号码. Needs the unmask permission and a reason; every
/// disclosure is written to the audit log, naming the field. Members outside
/// your scope, and members with no ID number recorded when that is asked
/// for, answer 404 like missing ones.
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
    let scope = user.scope();
    let (node_id, mobile, id_number) = match req.field {
        UnmaskField::Mobile => {
            let (node_id, m) = store::member_mobile(&s.db, &s.crypto, &scope, id).await?;
            (node_id, Some(m.as_str().to_string()), None)
        }
        UnmaskField::IdNumber => {
            let (node_id, n) = store::member_id_number(&s.db, &s.crypto, &scope, id).await?;
            (node_id, None, Some(n.as_str().to_string()))
        }
    };
    let audit_id = crate::audit::record(
        &s.db,
        &Actor::user(&user, addr),
        action::MEMBER_UNMASK,
        Some(Object::new("member", id)),
        Some(reason),
        serde_json::json!({"field": req.field.as_str(), "node_id": node_id}),
    )
    .await?;
    Ok(Json(Unmasked { member_id: id, field: req.field, mobile, id_number, audit_id }))
}
