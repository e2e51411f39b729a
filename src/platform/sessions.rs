//! Resolved sessions and API tokens, kept in memory for a moment so that a
//! client's burst of requests costs one lookup instead of one per request.
//!
//! What is safe to keep and what is not:
//! - Expiry (idle, absolute, the token's own) is checked on every request
//!   from the timestamps kept here, so an entry never outlives its session.
//! - Every change on this node that ends a session or changes what a user
//!   may do (logout, ending sessions, password change or reset, editing or
//!   disabling a user, granting or taking away roles at any node, switching
//!   the node a session acts at, role edits, revoking a token, moving or
//!   renaming nodes) removes the affected entries once it has committed, so
//!   it takes effect at once here.
//! - Other server nodes keep their entries until they are older than
//!   [`TTL`]: a change made through one node reaches requests served by the
//!   others within that time.
//!
//! A lookup that raced with such a change must not put back what it read
//! before the change: every removal bumps a generation, and an entry is
//! only stored if no removal happened since its lookup began.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::kernel::principal::CurrentUser;

/// How long another node's change may go unseen here.
pub const TTL: Duration = Duration::from_secs(2);
/// Entries kept at most; beyond it stale ones go, then all.
const MAX_ENTRIES: usize = 10_000;

/// A session or token as loaded, with what expiry is judged on.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub user: CurrentUser,
    /// `browser`, `api` or `token`.
    pub kind: String,
    pub created_at: i64,
    /// `last_seen_at` of a session, `last_used_at` of a token (0: never).
    pub last_seen_at: i64,
    pub expires_at: i64,
}

struct Entry {
    value: Resolved,
    loaded: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    generation: u64,
}

/// Keyed by token hash.
#[derive(Default)]
pub struct SessionCache {
    inner: Mutex<Inner>,
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take before looking a session up; pass to [`put`](Self::put).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn get(&self, token_hash: &str) -> Option<Resolved> {
        let inner = self.lock();
        let e = inner.entries.get(token_hash)?;
        (e.loaded.elapsed() < TTL).then(|| e.value.clone())
    }

    pub fn put(&self, token_hash: &str, value: Resolved, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.retain(|_, e| e.loaded.elapsed() < TTL);
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
        }
        inner.entries.insert(token_hash.to_string(), Entry { value, loaded: Instant::now() });
    }

    /// Records that `last_seen_at` was written, so the next request does not
    /// write it again.
    pub fn touched(&self, token_hash: &str, now: i64) {
        if let Some(e) = self.lock().entries.get_mut(token_hash) {
            e.value.last_seen_at = now;
        }
    }

    fn remove_where(&self, f: impl Fn(&str, &Resolved) -> bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.retain(|k, e| !f(k, &e.value));
    }

    /// One session or token ended.
    pub fn forget(&self, token_hash: &str) {
        self.remove_where(|k, _| k == token_hash);
    }

    /// A user's sessions and the tokens they issued.
    pub fn forget_user(&self, user_id: i64) {
        self.remove_where(|_, v| v.user.id == user_id);
    }

    pub fn forget_token(&self, token_id: i64) {
        self.remove_where(|_, v| v.user.token_id == Some(token_id));
    }

    /// After changes that may touch anyone (roles, the node tree).
    pub fn clear(&self) {
        self.remove_where(|_, _| true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(user_id: i64, token_id: Option<i64>) -> Resolved {
        Resolved {
            user: CurrentUser {
                id: user_id,
                username: "u".into(),
                display_name: "u".into(),
                node_id: 1,
                node_name: "n".into(),
                home_node_id: 1,
                nodes: vec![],
                unit_id: None,
                node_path: "/1/".into(),
                roles: vec![],
                permissions: vec![],
                must_change_password: false,
                token_id,
                csrf_token: String::new(),
                token_hash: String::new(),
                client_addr: None,
            },
            kind: "api".into(),
            created_at: 0,
            last_seen_at: 0,
            expires_at: 0,
        }
    }

    #[test]
    fn removals_hit_the_right_entries() {
        let c = SessionCache::default();
        let g = c.generation();
        c.put("a", resolved(1, None), g);
        c.put("b", resolved(2, None), g);
        c.put("t", resolved(2, Some(7)), g);
        c.forget_token(7);
        assert!(c.get("t").is_none() && c.get("b").is_some());
        c.forget_user(2);
        assert!(c.get("b").is_none() && c.get("a").is_some());
        c.forget("a");
        assert!(c.get("a").is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_removal_is_not_stored() {
        let c = SessionCache::default();
        let g = c.generation();
        c.forget_user(1);
        c.put("a", resolved(1, None), g);
        assert!(c.get("a").is_none());
        c.put("a", resolved(1, None), c.generation());
        assert!(c.get("a").is_some());
    }

    #[test]
    fn touching_moves_last_seen() {
        let c = SessionCache::default();
        c.put("a", resolved(1, None), c.generation());
        c.touched("a", 42);
        assert_eq!(c.get("a").map(|r| r.last_seen_at), Some(42));
    }
}
