//! The tamper-evident audit log: who did what to which object, when, from
//! where and why. Entries are append-only and hash-chained with SM3
//! (`chain`); `fengqiao audit verify` walks the chain and names the first
//! entry that was changed, removed or inserted.
//!
//! Handlers call [`record`] right after the write they record succeeded.
//! Nothing sensitive goes into `detail`: no passwords, no plain phone or ID
//! numbers.

use axum::{routing::get, Router};

pub mod api;
pub mod chain;
pub mod labels;
pub mod pages;
pub mod query;
pub mod unmask;

use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    kernel::{error::Result, principal::CurrentUser},
    platform::db::Db,
};

pub use chain::{
    anchor, prune, verify, verify_anchored, Anchor, HttpWitness, Problem, ProblemKind, VerifyReport, Witness,
};
pub use unmask::may_unmask;

/// The action names, one per kind of recorded event. Each has a label in
/// the catalogue under `audit.action.<name>`.
/// Audit actions: the audit log's own and the system's (exports, pruning,
/// key rotation, outbox retries, restores). Each domain declares its own in
/// its `action` module; the app registers them here at start, so adding a
/// domain edits no list of ours.
pub mod action {
    pub const AUDIT_EXPORT: &str = "audit.export";
    pub const AUDIT_PRUNE: &str = "audit.prune";
    pub const KEYS_ROTATE: &str = "keys.rotate";
    pub const OUTBOX_RETRY: &str = "outbox.retry";
    pub const BACKUP_RESTORE: &str = "backup.restore";

    /// The actions above.
    pub const OWN: &[&str] = &[AUDIT_EXPORT, AUDIT_PRUNE, KEYS_ROTATE, OUTBOX_RETRY, BACKUP_RESTORE];

    static REGISTERED: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();

    /// Registers the domains' actions (once; later calls change nothing).
    pub fn register(lists: &[&'static [&'static str]]) {
        let _ = REGISTERED.get_or_init(|| OWN.iter().chain(lists.iter().flat_map(|l| l.iter())).copied().collect());
    }

    /// Every action known: the audit log's own and those registered.
    pub fn all() -> &'static [&'static str] {
        REGISTERED.get().map_or(OWN, |v| v.as_slice())
    }
}

/// The object types entries refer to.
pub const OBJECT_TYPES: &[&str] = &[
    "node",
    "member",
    "overlay",
    "user",
    "audit_log",
    "key_ring",
    "role",
    "api_token",
    "settings",
    "calendar",
    "category",
    "dispatch_rule",
    "unit",
    "order",
    "attachment",
    "outbox_event",
];

/// Who acted, as they were at the time (roles and node can change later).
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub username: String,
    pub roles: String,
    pub node_id: Option<i64>,
    pub client_addr: Option<String>,
}

impl Actor {
    pub fn user(u: &CurrentUser, client_addr: Option<String>) -> Actor {
        let roles: Vec<&str> = u.roles.iter().map(|r| r.role.as_str()).collect();
        Actor {
            user_id: Some(u.id),
            // A token acts for its issuer and is named in the entry.
            username: match u.token_id {
                Some(t) => format!("{}#token{t}", u.username),
                None => u.username.clone(),
            },
            roles: roles.join(","),
            node_id: Some(u.node_id),
            client_addr,
        }
    }

    /// Someone who is not (yet) logged in, e.g. a failed login. The name
    /// they typed is kept, cut short and stripped of control characters,
    /// since it is input, not an identity.
    pub fn anonymous(typed_username: &str, client_addr: Option<String>) -> Actor {
        let username: String = typed_username.trim().chars().filter(|c| !c.is_control()).take(64).collect();
        Actor { user_id: None, username, roles: String::new(), node_id: None, client_addr }
    }

    /// Someone who typed a name that is no account: people type phone
    /// numbers and passwords into that field, so the name is kept only as
    /// a keyed fingerprint (the same typing shows as the same fingerprint,
    /// so repeated attempts still stand out), never as typed.
    pub fn unknown(typed_username: &str, client_addr: Option<String>) -> Actor {
        let typed: String = typed_username.trim().chars().filter(|c| !c.is_control()).collect();
        let username = match chain::keys() {
            Ok(crypto) => {
                let print = crypto.blind_index(crate::platform::crypto::Field::AUDIT_UNKNOWN_USERNAME, &typed);
                format!("unknown:{}", &print[..16])
            }
            Err(_) => "unknown".to_string(),
        };
        Actor { user_id: None, username, roles: String::new(), node_id: None, client_addr }
    }

    /// The command line, run by an operator on the server.
    pub fn system(command: &str) -> Actor {
        Actor {
            user_id: None,
            username: format!("system:{command}"),
            roles: String::new(),
            node_id: None,
            client_addr: None,
        }
    }
}

/// What an entry is about.
#[derive(Clone, Debug)]
pub struct Object {
    pub kind: &'static str,
    pub id: String,
}

impl Object {
    pub fn new(kind: &'static str, id: impl ToString) -> Object {
        debug_assert!(OBJECT_TYPES.contains(&kind), "unknown object type {kind}");
        Object { kind, id: id.to_string() }
    }
}

/// One stored entry.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Entry {
    pub id: i64,
    /// Epoch milliseconds, UTC.
    pub at: i64,
    pub actor_user_id: Option<i64>,
    pub actor_username: String,
    /// Comma-separated role codes held at the time.
    pub actor_roles: String,
    pub actor_node_id: Option<i64>,
    pub client_addr: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub reason: Option<String>,
    /// A JSON object with non-sensitive particulars.
    #[serde(serialize_with = "as_json")]
    #[schema(value_type = Object)]
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// The key the entry's hash is a MAC under; none on the plain SM3
    /// entries of earlier versions (see `chain`).
    pub key_id: Option<String>,
}

fn as_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    serde_json::from_str::<serde_json::Value>(text).unwrap_or_else(|_| text.into()).serialize(s)
}

impl Entry {
    pub fn action_label(&self) -> String {
        action_label(&self.action)
    }

    /// The time in China Standard Time, as staff read it.
    pub fn at_local(&self) -> String {
        format_local(self.at)
    }
}

pub fn action_label(action: &str) -> String {
    if action::all().contains(&action) {
        crate::kernel::i18n::t(&format!("audit.action.{action}")).to_string()
    } else {
        // Unknown actions (e.g. from a newer version) show as themselves.
        action.to_string()
    }
}

/// China Standard Time (UTC+8, no daylight saving).
pub fn cst() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

pub fn format_local(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&cst()).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// An entry to append inside the transaction of the write it records
/// (work-order actions): owned, so it can wait for the group-commit writer.
#[derive(Clone, Debug)]
pub struct PendingEntry {
    pub actor: Actor,
    pub action: &'static str,
    pub object: Object,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
    pub at: i64,
}

impl PendingEntry {
    pub async fn append_in(self, conn: &mut sqlx::AnyConnection) -> Result<i64> {
        let e = self.next(conn).await?;
        chain::insert(conn, &e).await?;
        Ok(e.id)
    }

    /// The entry with its place in the chain (see `chain::next_entry`).
    pub async fn next(self, conn: &mut sqlx::AnyConnection) -> Result<Entry> {
        chain::next_entry(conn, self.new_entry()).await
    }

    /// `next` on the SQLite group-commit writer's connection.
    /// SQLite: appends the entry on the group-commit writer's connection
    /// (which holds the write lock, so the chain's head cannot move).
    pub fn append_sqlite(&self, conn: &rusqlite::Connection) -> Result<i64> {
        let e = chain::next_entry_sqlite(conn, self.new_entry())?;
        let id = e.id;
        crate::platform::db::exec_sqlite(conn, &chain::INSERT_SQL, &chain::entry_values(e))?;
        Ok(id)
    }

    fn new_entry(&self) -> chain::NewEntry<'_> {
        chain::NewEntry {
            at: self.at,
            actor: &self.actor,
            action: self.action,
            object_type: Some(self.object.kind),
            object_id: Some(self.object.id.as_str()),
            reason: self.reason.as_deref(),
            detail: self.detail.to_string(),
        }
    }
}

/// Records a successful write by a logged-in caller.
pub async fn record_write(
    s: &crate::web::AppState,
    user: &CurrentUser,
    addr: Option<String>,
    act: &str,
    object: Object,
    detail: serde_json::Value,
) -> Result<()> {
    record(&s.db, &Actor::user(user, addr), act, Some(object), None, detail).await?;
    Ok(())
}

/// Records one event. Call it after the write it records has succeeded;
/// an error here fails the request, so an unrecorded change is noticed.
pub async fn record(
    db: &Db,
    actor: &Actor,
    action: &str,
    object: Option<Object>,
    reason: Option<&str>,
    detail: serde_json::Value,
) -> Result<i64> {
    let entry = chain::NewEntry {
        at: crate::platform::db::now_ms(),
        actor,
        action,
        object_type: object.as_ref().map(|o| o.kind),
        object_id: object.as_ref().map(|o| o.id.as_str()),
        reason,
        detail: detail.to_string(),
    };
    chain::append(db, entry).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_label() {
        for a in action::OWN {
            let key = format!("audit.action.{a}");
            assert_ne!(crate::kernel::i18n::t(&key), key, "catalogue misses {key}");
        }
    }

    #[test]
    fn anonymous_names_are_cleaned() {
        let a = Actor::anonymous(&format!(" ad\nmin{} ", "x".repeat(100)), None);
        assert!(a.username.starts_with("admin"));
        assert_eq!(a.username.chars().count(), 64);
    }

    #[test]
    fn local_time_is_china_standard_time() {
        assert_eq!(format_local(0), "1970-01-01 08:00:00");
    }
}

/// This domain's pages.
pub fn pages() -> Router<crate::web::AppState> {
    Router::new().route("/admin/audit", get(pages::audit_page)).route("/admin/audit.csv", get(pages::audit_csv))
}

/// This domain's API routes, with their OpenAPI descriptions.
pub fn api() -> utoipa_axum::router::OpenApiRouter<crate::web::AppState> {
    api::router()
}
