//! Per-address throttle of failed logins: after too many failures from one
//! client address within the window, that address may not try again until
//! the window has passed. Kept in memory on each server node (password
//! guessing spread over nodes still meets the per-account lockout, which
//! lives in the database).

use std::{collections::HashMap, sync::Mutex};

use super::SecurityPolicy;

/// Above this many tracked addresses, expired windows are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct Throttle {
    /// address → (window start, failures in the window)
    windows: Mutex<HashMap<String, (i64, i64)>>,
}

impl Throttle {
    fn window_ms(policy: &SecurityPolicy) -> i64 {
        policy.address_window_minutes * 60_000
    }

    pub fn is_blocked(&self, addr: &str, now: i64, policy: &SecurityPolicy) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(addr) {
            Some((start, n)) => now - start < Self::window_ms(policy) && *n >= policy.address_max_failures,
            None => false,
        }
    }

    pub fn record_failure(&self, addr: &str, now: i64, policy: &SecurityPolicy) {
        let window = Self::window_ms(policy);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_AT {
            windows.retain(|_, (start, _)| now - *start < window);
        }
        let entry = windows.entry(addr.to_string()).or_insert((now, 0));
        if now - entry.0 >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
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
    }
}
