//! The password and session policy administrators may tune (stored by
//! identity in `settings`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::kernel::error::{Error, Result};

/// Defaults follow 等级保护 level-3 practice (standards §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Shortest password accepted.
    pub password_min_length: i64,
    /// How many of the four classes (lower, upper, digit, symbol) a password needs.
    pub password_min_classes: i64,
    /// Failed logins in a row, for one account from one client address,
    /// that lock that account for that address.
    pub lockout_threshold: i64,
    /// How long a lockout lasts, in minutes (a count of failures also
    /// starts again when none came for this long).
    pub lockout_minutes: i64,
    /// Failed logins in a row for one account from all addresses together
    /// that lock the account everywhere. Far above `lockout_threshold`, so
    /// that one address cannot lock anybody out (it is stopped at its own
    /// lockout first); only a guess spread over many addresses does.
    pub account_lockout_threshold: i64,
    /// Failed logins one client address may make per window before it is throttled.
    pub address_max_failures: i64,
    /// The throttle window, in minutes.
    pub address_window_minutes: i64,
    /// A session ends after this many idle minutes.
    pub session_idle_minutes: i64,
    /// A session ends this many hours after login, whatever its activity.
    pub session_absolute_hours: i64,
    /// Longest lifetime of an API token, in days.
    pub token_max_days: i64,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        SecurityPolicy {
            password_min_length: 8,
            password_min_classes: 3,
            lockout_threshold: 5,
            lockout_minutes: 15,
            account_lockout_threshold: 50,
            address_max_failures: 30,
            address_window_minutes: 15,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            token_max_days: 366,
        }
    }
}

impl SecurityPolicy {
    pub fn idle_ms(&self) -> i64 {
        self.session_idle_minutes * 60_000
    }

    pub fn absolute_ms(&self) -> i64 {
        self.session_absolute_hours * 3_600_000
    }

    /// Each setting as (field, value, lowest, highest). The bounds keep the
    /// system usable and no weaker than the floor the standards allow.
    pub fn fields(&self) -> [(&'static str, i64, i64, i64); 10] {
        [
            ("password_min_length", self.password_min_length, 8, 64),
            ("password_min_classes", self.password_min_classes, 2, 4),
            ("lockout_threshold", self.lockout_threshold, 3, 10),
            ("lockout_minutes", self.lockout_minutes, 5, 24 * 60),
            ("account_lockout_threshold", self.account_lockout_threshold, 20, 1000),
            ("address_max_failures", self.address_max_failures, 5, 1000),
            ("address_window_minutes", self.address_window_minutes, 1, 24 * 60),
            ("session_idle_minutes", self.session_idle_minutes, 5, 30),
            ("session_absolute_hours", self.session_absolute_hours, 1, 24),
            ("token_max_days", self.token_max_days, 1, 3 * 366),
        ]
    }

    pub fn lockout_ms(&self) -> i64 {
        self.lockout_minutes * 60_000
    }

    pub fn validate(&self) -> Result<()> {
        for (field, v, lo, hi) in self.fields() {
            if v < lo || v > hi {
                return Err(Error::invalid_detail("policy.out_of_range", field, format!("{lo}–{hi}")));
            }
        }
        Ok(())
    }

    /// Checks a new password against the policy (and against the username).
    pub fn check_password(&self, password: &str, username: &str) -> Result<()> {
        let len = password.chars().count() as i64;
        if len < self.password_min_length {
            return Err(Error::invalid_detail(
                "password.too_short",
                "password",
                format!("≥ {}", self.password_min_length),
            ));
        }
        if len > 128 {
            return Err(Error::invalid("password.too_long", "password"));
        }
        let classes = [
            password.chars().any(|c| c.is_ascii_lowercase()),
            password.chars().any(|c| c.is_ascii_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_ascii_alphanumeric()),
        ]
        .iter()
        .filter(|b| **b)
        .count() as i64;
        if classes < self.password_min_classes {
            return Err(Error::invalid_detail(
                "password.classes",
                "password",
                format!("≥ {}", self.password_min_classes),
            ));
        }
        let user = username.trim().to_lowercase();
        if !user.is_empty() && password.to_lowercase().contains(&user) {
            return Err(Error::invalid("password.contains_username", "password"));
        }
        Ok(())
    }
}
