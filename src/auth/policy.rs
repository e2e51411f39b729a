//! The password and session policy: what administrators may tune, stored
//! in `settings` and cached in the application state.

pub use crate::kernel::policy::SecurityPolicy;
use crate::{
    kernel::error::Result,
    platform::db::{settings, Db},
};

const KEY: &str = "security_policy";

pub async fn load(db: &Db) -> Result<SecurityPolicy> {
    Ok(settings::get(db, KEY).await?.unwrap_or_default())
}

pub async fn save(db: &Db, policy: &SecurityPolicy) -> Result<()> {
    policy.validate()?;
    settings::put(db, KEY, policy).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_wants_eight_characters_of_three_classes() {
        let p = SecurityPolicy::default();
        p.validate().unwrap();
        assert_eq!(p.check_password("Short1!", "x").unwrap_err().code(), "password.too_short");
        assert_eq!(p.check_password("alllowercase", "x").unwrap_err().code(), "password.classes");
        assert_eq!(p.check_password("lowerUPPER", "x").unwrap_err().code(), "password.classes");
        p.check_password("lowerUPPER1", "x").unwrap();
        p.check_password("lower-1234", "x").unwrap();
        p.check_password("密码很长很长Aa1", "x").unwrap();
        assert_eq!(p.check_password("Zhang3Wei!", "zhang3").unwrap_err().code(), "password.contains_username");
    }

    #[test]
    fn policy_bounds_are_enforced() {
        let weak = SecurityPolicy { password_min_length: 6, ..Default::default() };
        assert_eq!(weak.validate().unwrap_err().field(), Some("password_min_length"));
        let long_idle = SecurityPolicy { session_idle_minutes: 120, ..Default::default() };
        assert!(long_idle.validate().is_err());
        let unknown: std::result::Result<SecurityPolicy, _> = serde_json::from_str(r#"{"foo":1}"#);
        assert!(unknown.is_err());
    }
}
