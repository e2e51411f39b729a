//! What the log's readers see instead of ids: people by name, units and
//! nodes by name, work orders by tracking code. The log knows no domain;
//! each domain registers how to name its own object types (see
//! `app::register_domains`), and a type nobody names shows as its kind and
//! number.

use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    pin::Pin,
    sync::{OnceLock, RwLock},
};

use super::Entry;
use crate::kernel::i18n::has;
use crate::{kernel::error::Result, platform::db::Db};

/// Names the objects of one type: ids in, a label for each id it knows out.
pub type Namer =
    for<'a> fn(&'a Db, &'a [String]) -> Pin<Box<dyn Future<Output = Result<HashMap<String, String>>> + Send + 'a>>;

fn namers() -> &'static RwLock<HashMap<&'static str, Namer>> {
    static NAMERS: OnceLock<RwLock<HashMap<&'static str, Namer>>> = OnceLock::new();
    NAMERS.get_or_init(Default::default)
}

/// Registers how objects of `kind` are named (a later call for the same
/// kind replaces the earlier one).
pub fn register(kind: &'static str, namer: Namer) {
    namers().write().unwrap_or_else(|e| e.into_inner()).insert(kind, namer);
}

/// The detail keys whose values are ids of another object type.
const ID_KEYS: &[(&str, &str)] = &[
    ("node_id", "node"),
    ("parent_id", "node"),
    ("from_parent_id", "node"),
    ("to_parent_id", "node"),
    ("lead_unit", "unit"),
    ("unit_id", "unit"),
    ("order_id", "order"),
    ("user_id", "user"),
    ("category", "category"),
    ("category_code", "category"),
];

/// Other catalogue sections a detail's code may be labelled in, by key
/// (after `audit.value.<key>.<code>`).
const VALUE_SECTIONS: &[(&str, &str)] = &[
    ("action", "order.action."),
    ("from", "order.state."),
    ("to", "order.state."),
    ("source", "order.source."),
    ("kind", "kind."),
];

/// Keys of no use to a reader (the optimistic-lock version).
const HIDDEN_KEYS: &[&str] = &["version"];

/// Labels for the people and objects of some entries.
#[derive(Default, Debug)]
pub struct Labels {
    by_kind: HashMap<String, HashMap<String, String>>,
}

impl Labels {
    /// Names everything the entries refer to: their actors, the nodes the
    /// actors acted at, their objects and the ids in their details.
    pub async fn of(db: &Db, entries: &[Entry]) -> Result<Labels> {
        let mut wanted: HashMap<&str, BTreeSet<String>> = HashMap::new();
        for e in entries {
            if let Some(u) = e.actor_user_id {
                wanted.entry("user").or_default().insert(u.to_string());
            }
            if let Some(n) = e.actor_node_id {
                wanted.entry("node").or_default().insert(n.to_string());
            }
            if let (Some(kind), Some(id)) = (&e.object_type, &e.object_id) {
                if let Some(kind) = super::OBJECT_TYPES.iter().find(|k| **k == kind) {
                    wanted.entry(kind).or_default().insert(id.clone());
                }
            }
            if let Ok(serde_json::Value::Object(detail)) = serde_json::from_str(&e.detail) {
                for (key, kind) in ID_KEYS {
                    if let Some(id) = detail.get(*key).and_then(id_text) {
                        wanted.entry(kind).or_default().insert(id);
                    }
                }
            }
        }
        let namers: Vec<(&'static str, Namer)> = {
            let map = namers().read().unwrap_or_else(|e| e.into_inner());
            map.iter().map(|(k, v)| (*k, *v)).collect()
        };
        let mut labels = Labels::default();
        for (kind, namer) in namers {
            let Some(ids) = wanted.get(kind) else { continue };
            let ids: Vec<String> = ids.iter().cloned().collect();
            labels.by_kind.insert(kind.to_string(), namer(db, &ids).await?);
        }
        Ok(labels)
    }

    pub fn get(&self, kind: &str, id: &str) -> Option<&str> {
        self.by_kind.get(kind).and_then(|m| m.get(id)).map(String::as_str)
    }

    /// The object of an entry: "工单 TS20261203001（标题）", or its kind and
    /// number when nothing names it.
    pub fn object(&self, e: &Entry) -> String {
        let t = crate::kernel::i18n::t;
        match (&e.object_type, &e.object_id) {
            (Some(kind), Some(id)) => {
                let kind_label = t(&format!("audit.object.{kind}"));
                match self.get(kind, id) {
                    Some(name) => format!("{kind_label} {name}"),
                    None => format!("{kind_label} #{id}"),
                }
            }
            (Some(kind), None) => t(&format!("audit.object.{kind}")).to_string(),
            _ => String::new(),
        }
    }

    /// Who acted: "王芳（wangfang）", or the name typed at a failed login.
    pub fn actor(&self, e: &Entry) -> String {
        let named = e.actor_user_id.and_then(|u| self.get("user", &u.to_string()));
        let t = crate::kernel::i18n::t;
        match named {
            Some(name) => name.to_string(),
            None if e.actor_username.is_empty() => t("audit.anonymous").to_string(),
            None if e.actor_username == "resident" => t("audit.actor.resident").to_string(),
            None if e.actor_username.starts_with("unknown") => match e.actor_username.strip_prefix("unknown:") {
                Some(print) => format!("{}（{print}）", t("audit.actor.unknown")),
                None => t("audit.actor.unknown").to_string(),
            },
            None => match e.actor_username.strip_prefix("system:") {
                Some(task) if has(&format!("audit.actor.system.{task}")) => {
                    t(&format!("audit.actor.system.{task}")).to_string()
                }
                Some(_) => t("audit.actor.system").to_string(),
                None => e.actor_username.clone(),
            },
        }
    }

    /// Where the actor was posted when acting.
    pub fn actor_node(&self, e: &Entry) -> Option<&str> {
        e.actor_node_id.and_then(|n| self.get("node", &n.to_string()))
    }

    /// The details as "标签：值" pairs, with ids named and codes translated;
    /// keys without a catalogue label keep their key.
    pub fn detail(&self, e: &Entry) -> Vec<(String, String)> {
        let t = crate::kernel::i18n::t;
        let Ok(serde_json::Value::Object(detail)) = serde_json::from_str(&e.detail) else {
            return if e.detail.trim().is_empty() || e.detail == "{}" {
                vec![]
            } else {
                vec![(String::new(), e.detail.clone())]
            };
        };
        detail
            .iter()
            .filter(|(k, v)| !v.is_null() && !HIDDEN_KEYS.contains(&k.as_str()))
            .map(|(key, value)| {
                let label_key = format!("audit.detail.{key}");
                let label = if has(&label_key) { t(&label_key).to_string() } else { key.clone() };
                let kind = ID_KEYS.iter().find(|(k, _)| k == key).map(|(_, kind)| *kind);
                let text = match (kind, id_text(value)) {
                    (Some(kind), Some(id)) => self.get(kind, &id).map_or(id, str::to_string),
                    _ => value_text(key, value),
                };
                (label, text)
            })
            .collect()
    }
}

fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A detail value as text: strings as they are (a code with a catalogue
/// label under `audit.value.<key>.<code>` shows the label), lists joined,
/// objects summarised.
fn value_text(key: &str, v: &serde_json::Value) -> String {
    let t = crate::kernel::i18n::t;
    if matches!(key, "coordinates" | "geometry" | "features") {
        return t("audit.value.shape").to_string();
    }
    match v {
        serde_json::Value::String(s) => {
            let own = format!("audit.value.{key}.{s}");
            let other = VALUE_SECTIONS.iter().find(|(k, _)| *k == key).map(|(_, section)| format!("{section}{s}"));
            match other {
                _ if has(&own) => t(&own).to_string(),
                Some(k) if has(&k) => t(&k).to_string(),
                _ => s.clone(),
            }
        }
        serde_json::Value::Bool(b) => t(if *b { "audit.value.yes" } else { "audit.value.no" }).to_string(),
        serde_json::Value::Array(items) => items.iter().map(|i| value_text(key, i)).collect::<Vec<_>>().join("、"),
        serde_json::Value::Object(map) if map.contains_key("coordinates") || map.contains_key("geometry") => {
            t("audit.value.shape").to_string()
        }
        serde_json::Value::Object(map) => {
            map.iter().map(|(k, v)| format!("{k}：{}", value_text(k, v))).collect::<Vec<_>>().join("；")
        }
        other => other.to_string(),
    }
}

/// A namer's usual body: one query per id, `sql` taking the id as `$1`
/// (an integer when `numeric`) and answering the label as its one column.
/// Pages show a few dozen entries, so a few dozen small indexed reads.
pub async fn by_query(db: &Db, sql: &str, ids: &[String], numeric: bool) -> Result<HashMap<String, String>> {
    use sqlx::Row;
    let mut out = HashMap::new();
    for id in ids {
        let q = sqlx::query(sql);
        let q = if numeric {
            match id.parse::<i64>() {
                Ok(n) => q.bind(n),
                Err(_) => continue,
            }
        } else {
            q.bind(id.as_str())
        };
        if let Some(row) = q.fetch_optional(&db.pool).await? {
            out.insert(id.clone(), row.try_get::<String, _>(0)?);
        }
    }
    Ok(out)
}
