//! Categories and units as transitions need them, kept in memory: they
//! change rarely (an administrator's edit), yet nearly every dispatch,
//! signature and verification read them again. A copy older than `FRESH`
//! is reloaded in the background by one task while requests go on with it
//! (were every request that found it old to reload it, a busy server would
//! stall for a moment every `FRESH`); it is reloaded at once when it lacks
//! what is asked for, so a new unit or category is usable immediately. A
//! unit retired elsewhere can still be chosen for about `FRESH`.

use std::{
    collections::HashMap,
    sync::{atomic::AtomicBool, atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use sqlx::Row;

use crate::{db::Db, error::Result};

const FRESH: Duration = Duration::from_secs(10);

pub struct Refs {
    loaded: Instant,
    categories: HashMap<String, CategoryRef>,
    units: HashMap<i64, UnitRef>,
    /// A background reload of this copy is under way.
    reloading: AtomicBool,
}

#[derive(Clone, Debug)]
pub struct CategoryRef {
    pub name: String,
    /// Orders take sub-categories only (the top level groups them).
    pub leaf: bool,
    /// The department a matter belongs to (国办函〔2025〕66号).
    pub owner: Option<String>,
    /// Time limits as stored (JSON), by deadline column.
    pub sign_limit: String,
    pub handle_limit: String,
    pub urgent_handle_limit: String,
    pub evaluate_limit: String,
}

#[derive(Clone, Debug)]
pub struct UnitRef {
    pub kind: String,
    pub active: bool,
    pub name: String,
    /// The kind of tree node the unit sits on (a community centre…).
    pub node_kind: String,
}

async fn load(db: &Db) -> Result<Arc<Refs>> {
    let mut categories = HashMap::new();
    for r in sqlx::query(
        "select code, name, parent_code, owner_unit, sign_limit, handle_limit, urgent_handle_limit, evaluate_limit \
         from categories",
    )
    .fetch_all(&db.pool)
    .await?
    {
        categories.insert(
            r.try_get("code")?,
            CategoryRef {
                name: r.try_get("name")?,
                leaf: r.try_get::<Option<String>, _>("parent_code")?.is_some(),
                owner: r.try_get("owner_unit")?,
                sign_limit: r.try_get("sign_limit")?,
                handle_limit: r.try_get("handle_limit")?,
                urgent_handle_limit: r.try_get("urgent_handle_limit")?,
                evaluate_limit: r.try_get("evaluate_limit")?,
            },
        );
    }
    let mut units = HashMap::new();
    for r in sqlx::query(
        "select u.id, u.kind, u.status, u.name, n.kind as node_kind from units u join nodes n on n.id = u.node_id",
    )
    .fetch_all(&db.pool)
    .await?
    {
        units.insert(
            r.try_get("id")?,
            UnitRef {
                kind: r.try_get("kind")?,
                active: r.try_get::<String, _>("status")? == "active",
                name: r.try_get("name")?,
                node_kind: r.try_get("node_kind")?,
            },
        );
    }
    let refs = Arc::new(Refs { loaded: Instant::now(), categories, units, reloading: AtomicBool::new(false) });
    db.memo_put(refs.clone());
    Ok(refs)
}

/// The current copy, if any; when it is old, one background task reloads it.
fn fresh(db: &Db) -> Option<Arc<Refs>> {
    let refs = db.memo_get::<Refs>()?;
    if refs.loaded.elapsed() >= FRESH && !refs.reloading.swap(true, Ordering::AcqRel) {
        let (db, old) = (db.clone(), refs.clone());
        tokio::spawn(async move {
            if let Err(e) = load(&db).await {
                tracing::warn!(error = %e, "reloading categories and units failed");
                old.reloading.store(false, Ordering::Release);
            }
        });
    }
    Some(refs)
}

pub async fn category(db: &Db, code: &str) -> Result<Option<CategoryRef>> {
    if let Some(c) = fresh(db).and_then(|r| r.categories.get(code).cloned()) {
        return Ok(Some(c));
    }
    Ok(load(db).await?.categories.get(code).cloned())
}

pub async fn unit(db: &Db, id: i64) -> Result<Option<UnitRef>> {
    if let Some(u) = fresh(db).and_then(|r| r.units.get(&id).cloned()) {
        return Ok(Some(u));
    }
    Ok(load(db).await?.units.get(&id).cloned())
}
