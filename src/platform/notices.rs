//! What the outbox's events mean to people: each domain declares which of
//! its topics someone should be told of, who (as an audience the
//! notifications resolve from units, nodes and roles), in which words (a
//! key of the message catalogue), and how to read the object an event
//! names. The notifications (`notify`) learn everything from here and from
//! the outbox; the domains never call them, and a new domain adds its
//! events by registering them (see `app::register_domains`), without
//! editing a central list.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{OnceLock, RwLock},
};

use crate::{kernel::error::Result, platform::db::Db};

/// Who is told, resolved against the event's subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The users of the unit the object is with (e.g. an order's lead unit).
    Unit,
    /// The users of the governance centre above that unit (its supervisor:
    /// the nearest centre at the unit's node or above, other than itself).
    Supervisor,
    /// The person who gave the object to the unit (e.g. its dispatcher).
    Assigner,
    /// Who decides on a request about the object: the assigner's colleagues
    /// in their unit holding the permission (and the assigner).
    Approvers(&'static str),
}

/// One kind of notice: an outbox topic, its audience and its words.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// The outbox topic, e.g. `orders.dispatch`.
    pub topic: &'static str,
    /// The catalogue key of its text; placeholders `{code}`, `{category}`,
    /// `{place}` and `{deadline}` take the subject's values.
    pub message: &'static str,
    pub audience: &'static [Audience],
    /// A red alert (overdue and the like), shown first and marked.
    pub urgent: bool,
}

/// The object an event names, as a notice may tell of it: codes, a
/// category, a place and a deadline, never a person's name, contact or
/// the object's text. Reading it is the declaring domain's business.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    /// `order`, …: what the notice links to.
    pub object_type: &'static str,
    pub object_id: i64,
    /// The tracking code (or another code people quote).
    pub code: String,
    pub category: String,
    /// The place, to community level at the finest.
    pub place: String,
    /// The running step's deadline, epoch milliseconds.
    pub deadline_at: Option<i64>,
    /// The unit it is with.
    pub unit_id: Option<i64>,
    /// Who gave it to that unit.
    pub assigner_id: Option<i64>,
}

/// Reads the subject of an event's payload; none if it is gone.
pub type Reader =
    for<'a> fn(&'a Db, &'a serde_json::Value) -> Pin<Box<dyn Future<Output = Result<Option<Subject>>> + Send + 'a>>;

/// What a domain declares: its notices and how to read their subjects.
#[derive(Clone, Copy)]
pub struct Source {
    pub kinds: &'static [Kind],
    pub read: Reader,
}

fn sources() -> &'static RwLock<HashMap<&'static str, (Kind, Reader)>> {
    static SOURCES: OnceLock<RwLock<HashMap<&'static str, (Kind, Reader)>>> = OnceLock::new();
    SOURCES.get_or_init(Default::default)
}

/// Registers a domain's notices (a later registration of a topic replaces
/// the earlier one).
pub fn register(source: Source) {
    let mut all = sources().write().unwrap_or_else(|e| e.into_inner());
    for k in source.kinds {
        all.insert(k.topic, (*k, source.read));
    }
}

/// The notice of a topic and the reader of its subject, if any domain
/// declared one.
pub fn of(topic: &str) -> Option<(Kind, Reader)> {
    sources().read().unwrap_or_else(|e| e.into_inner()).get(topic).copied()
}

/// Every declared notice, by topic.
pub fn all() -> Vec<Kind> {
    let mut kinds: Vec<Kind> = sources().read().unwrap_or_else(|e| e.into_inner()).values().map(|(k, _)| *k).collect();
    kinds.sort_by_key(|k| k.topic);
    kinds
}
