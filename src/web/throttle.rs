//! Per-address throttle of failed logins: after too many failures from one
//! client address within the window, that address may not try again until
//! the window has passed. Kept in memory on each server node (password
//! guessing spread over nodes still meets the per-account lockout, which
//! lives in the database).

use std::{collections::HashMap, sync::Mutex};

use crate::kernel::policy::SecurityPolicy;

/// Above this many tracked keys, expired windows are swept.
const SWEEP_AT: usize = 10_000;

/// Tracking-code lookups (portal pages and API) one address may make per
/// window: plenty for residents, even many behind one address, and far too
/// few to walk through codes.
pub const PORTAL_MAX_LOOKUPS: i64 = 120;
pub const PORTAL_WINDOW_MS: i64 = 60_000;

#[derive(Default)]
pub struct Throttle {
    /// key → (window start, events in the window, window length in ms).
    /// Keys are a client address (failed logins) or `portal:` and an
    /// address (tracking-code lookups).
    windows: Mutex<HashMap<String, (i64, i64, i64)>>,
}

impl Throttle {
    fn window_ms(policy: &SecurityPolicy) -> i64 {
        policy.address_window_minutes * 60_000
    }

    pub fn is_blocked(&self, addr: &str, now: i64, policy: &SecurityPolicy) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(addr) {
            Some((start, n, _)) => now - start < Self::window_ms(policy) && *n >= policy.address_max_failures,
            None => false,
        }
    }

    pub fn record_failure(&self, addr: &str, now: i64, policy: &SecurityPolicy) {
        self.count(addr, now, Self::window_ms(policy));
    }

    /// Counts one event of `key` and answers how many the window holds.
    fn count(&self, key: &str, now: i64, window: i64) -> i64 {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_AT {
            windows.retain(|_, (start, _, w)| now - *start < *w);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0, window));
        if now - entry.0 >= entry.2 {
            *entry = (now, 0, window);
        }
        entry.1 += 1;
        entry.1
    }

    /// Whole seconds until the window of `key` ends (at least 1), if it has one.
    pub fn retry_after_s(&self, key: &str, now: i64) -> Option<i64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (start, _, window) = windows.get(key)?;
        let left = start + window - now;
        (left > 0).then(|| (left + 999) / 1000)
    }

    /// Counts a tracking-code lookup from `addr`; `Err` with the seconds to
    /// wait once the address made more than its share in the window.
    pub fn portal_lookup(&self, addr: &str, now: i64) -> Result<(), i64> {
        let key = format!("portal:{addr}");
        if self.count(&key, now, PORTAL_WINDOW_MS) > PORTAL_MAX_LOOKUPS {
            return Err(self.retry_after_s(&key, now).unwrap_or(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let policy = SecurityPolicy { address_max_failures: 3, address_window_minutes: 15, ..Default::default() };
        let t = Throttle::default();
        for i in 0..3 {
            assert!(!t.is_blocked("10.0.0.1", i, &policy));
            t.record_failure("10.0.0.1", i, &policy);
        }
        assert!(t.is_blocked("10.0.0.1", 10, &policy));
        assert!(!t.is_blocked("10.0.0.2", 10, &policy), "other addresses are unaffected");
        assert!(!t.is_blocked("10.0.0.1", 15 * 60_000 + 1, &policy), "the window passes");
        t.record_failure("10.0.0.1", 15 * 60_000 + 1, &policy);
        assert!(!t.is_blocked("10.0.0.1", 15 * 60_000 + 2, &policy), "a new window starts from zero");
        assert_eq!(t.retry_after_s("10.0.0.1", 15 * 60_000 + 2), Some(15 * 60));
    }

    #[test]
    fn portal_lookups_are_limited_per_address_and_window() {
        let policy = SecurityPolicy::default();
        let t = Throttle::default();
        for i in 0..PORTAL_MAX_LOOKUPS {
            assert_eq!(t.portal_lookup("10.0.0.1", i), Ok(()));
        }
        assert_eq!(t.portal_lookup("10.0.0.1", 1_000), Err(59));
        assert_eq!(t.portal_lookup("10.0.0.2", 1_000), Ok(()), "other addresses are unaffected");
        assert!(!t.is_blocked("10.0.0.1", 1_000, &policy), "lookups are not failed logins");
        assert_eq!(t.portal_lookup("10.0.0.1", PORTAL_WINDOW_MS), Ok(()), "the window passes");
    }
}
