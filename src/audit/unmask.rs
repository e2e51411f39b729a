//! Showing a masked personal number (mobile or ID number) in full: only for callers allowed to,
//! only with a stated reason, and always recorded in the audit log before
//! the number leaves the server.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::kernel::{
    error::{Error, Result},
    perm::Perm,
    principal::CurrentUser,
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

/// A disclosure with nothing to choose but the reason (e.g. a reporter's
/// contact on an order).
#[derive(Deserialize, ToSchema)]
pub struct ReasonRequest {
    /// Why the full value is needed (recorded in the audit log), e.g. 办结后电话回访.
    pub reason: String,
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
