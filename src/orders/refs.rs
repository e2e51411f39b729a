//! Categories and units as transitions need them, kept in memory: they
//! change rarely (an administrator's edit), yet nearly every dispatch,
//! signature and verification read them again. A copy serves for at most
//! `FRESH`, and is reloaded at once when it lacks what is asked for, so a
//! new unit or category is usable immediately; a unit retired elsewhere can
//! still be chosen for up to `FRESH`.

use std::{collections::HashMap, sync::Arc, time::Duration, time::Instant};

use sqlx::Row;

use crate::{db::Db, error::Result};

const FRESH: Duration = Duration::from_secs(10);

pub struct Refs {
    loaded: Instant,
    categories: HashMap<String, CategoryRef>,
    units: HashMap<i64, UnitRef>,
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
    let refs = Arc::new(Refs { loaded: Instant::now(), categories, units });
    db.memo_put(refs.clone());
    Ok(refs)
}

/// The current copy, or `None` when it must be reloaded.
fn fresh(db: &Db) -> Option<Arc<Refs>> {
    db.memo_get::<Refs>().filter(|r| r.loaded.elapsed() < FRESH)
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
