//! The password and session policy: what administrators may tune, stored
//! in `settings` and cached in the application state.

use sqlx::Row;

pub use crate::kernel::policy::SecurityPolicy;
use crate::{
    kernel::error::Result,
    platform::db::{now_ms, Db},
};

const KEY: &str = "security_policy";

pub async fn load(db: &Db) -> Result<SecurityPolicy> {
    let row = sqlx::query("select value from settings where key = $1").bind(KEY).fetch_optional(&db.pool).await?;
    Ok(match row {
        Some(r) => serde_json::from_str(&r.try_get::<String, _>(0)?).map_err(anyhow::Error::from)?,
        None => SecurityPolicy::default(),
    })
}

pub async fn save(db: &Db, policy: &SecurityPolicy) -> Result<()> {
    policy.validate()?;
    let value = serde_json::to_string(policy).map_err(anyhow::Error::from)?;
    let _w = db.write_lock().await;
    sqlx::query(
        "insert into settings (key, value, updated_at) values ($1, $2, $3) \
         on conflict (key) do update set value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(KEY)
    .bind(value)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
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
