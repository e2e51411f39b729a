//! Categories, units and the names of places as transitions need them,
//! kept in memory: they change rarely (an administrator's edit), yet nearly
//! every action and every order read names them again. A copy older than `FRESH`
//! is reloaded in the background by one task while requests go on with it
//! (were every request that found it old to reload it, a busy server would
//! stall for a moment every `FRESH`); it is reloaded at once when it lacks
//! what is asked for, so a new unit or category is usable immediately. An
//! edit on this server drops the copy (`Db::memo_forget`); one made on
//! another server (PostgreSQL) shows here within about `FRESH`: a unit
//! retired there can still be chosen, and an old name shown, until then.

use std::{
    collections::HashMap,
    sync::{atomic::AtomicBool, atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use sqlx::Row;

use crate::{kernel::error::Result, platform::db::Db};

const FRESH: Duration = Duration::from_secs(10);

pub struct Refs {
    loaded: Instant,
    categories: HashMap<String, CategoryRef>,
    units: HashMap<i64, UnitRef>,
    /// Names of the nodes above buildings, by id.
    nodes: HashMap<i64, String>,
    /// A background reload of this copy is under way.
    reloading: AtomicBool,
}

#[derive(Clone, Debug)]
pub struct CategoryRef {
    pub name: String,
    /// Orders take sub-categories only (the top level groups them).
    pub leaf: bool,
    /// The top-level category of a sub-category.
    pub parent: Option<String>,
    /// The department a matter belongs to (国办函〔2025〕66号).
    pub owner: Option<String>,
    /// Residents may report it on the portal (internal ones are staff-only).
    pub resident_facing: bool,
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
    /// The path of that node.
    pub node_path: String,
}

impl UnitRef {
    /// A community centre or a grid: where a department's matter is not
    /// pushed down to (国办函〔2025〕66号).
    pub fn below_subdistrict(&self) -> bool {
        self.kind == "grid" || (self.kind == "centre" && self.node_kind == "community")
    }

    /// Whether someone acting at `node_path` may dispatch to this unit: a
    /// unit of their own subtree, or one of the levels above them (a
    /// department or a centre there, for escalation) — never a unit of
    /// another branch of the tree.
    pub fn dispatchable_from(&self, node_path: &str) -> bool {
        self.node_path.starts_with(node_path) || node_path.starts_with(&self.node_path)
    }
}

/// Reloads the copy now (after an edit on this node).
pub async fn reload(db: &Db) -> Result<()> {
    load(db).await?;
    db.settings_changed().await
}

async fn load(db: &Db) -> Result<Arc<Refs>> {
    let mut categories = HashMap::new();
    for r in sqlx::query(
        "select code, name, parent_code, owner_unit, sign_limit, handle_limit, urgent_handle_limit, evaluate_limit, \
         resident_facing from categories",
    )
    .fetch_all(&db.pool)
    .await?
    {
        let parent: Option<String> = r.try_get("parent_code")?;
        categories.insert(
            r.try_get("code")?,
            CategoryRef {
                name: r.try_get("name")?,
                leaf: parent.is_some(),
                parent,
                owner: r.try_get("owner_unit")?,
                resident_facing: r.try_get::<i64, _>("resident_facing")? != 0,
                sign_limit: r.try_get("sign_limit")?,
                handle_limit: r.try_get("handle_limit")?,
                urgent_handle_limit: r.try_get("urgent_handle_limit")?,
                evaluate_limit: r.try_get("evaluate_limit")?,
            },
        );
    }
    let mut units = HashMap::new();
    for r in sqlx::query(
        "select u.id, u.kind, u.status, u.name, n.kind as node_kind, n.path as node_path from units u \
         join nodes n on n.id = u.node_id",
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
                node_path: r.try_get("node_path")?,
            },
        );
    }
    // Places down to grids (a few thousand in a district, found through
    // `nodes_kind_path`); buildings, ten times as many and with their
    // outlines, are looked up one by one.
    let mut nodes = HashMap::new();
    for r in sqlx::query(
        "select id, name from nodes where kind in ('province', 'city', 'district', 'subdistrict', 'community', 'grid')",
    )
    .fetch_all(&db.pool)
    .await?
    {
        nodes.insert(r.try_get("id")?, r.try_get("name")?);
    }
    let refs = Arc::new(Refs { loaded: Instant::now(), categories, units, nodes, reloading: AtomicBool::new(false) });
    db.memo_put(refs.clone());
    Ok(refs)
}

/// The current copy, if any; when it is old, one background task reloads it.
fn current(db: &Db) -> Option<Arc<Refs>> {
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

/// What `pick` finds in the current copy, or else in a copy loaded now
/// (so something added since the last load is found at once).
async fn find<T>(db: &Db, pick: impl Fn(&Refs) -> Option<T>) -> Result<Option<T>> {
    if let Some(found) = current(db).and_then(|r| pick(&r)) {
        return Ok(Some(found));
    }
    Ok(pick(&*load(db).await?))
}

pub async fn category(db: &Db, code: &str) -> Result<Option<CategoryRef>> {
    find(db, |r| r.categories.get(code).cloned()).await
}

/// A category's name alone (the rest of it is not copied).
pub async fn category_name(db: &Db, code: &str) -> Result<Option<String>> {
    find(db, |r| r.categories.get(code).map(|c| c.name.clone())).await
}

pub async fn unit(db: &Db, id: i64) -> Result<Option<UnitRef>> {
    find(db, |r| r.units.get(&id).cloned()).await
}

/// A unit's name alone.
pub async fn unit_name(db: &Db, id: i64) -> Result<Option<String>> {
    find(db, |r| r.units.get(&id).map(|u| u.name.clone())).await
}

/// A node's name: from the copy down to grids, else (a building, or a node
/// newer than the copy) from the database.
pub async fn node_name(db: &Db, id: i64) -> Result<Option<String>> {
    if let Some(n) = current(db).and_then(|r| r.nodes.get(&id).cloned()) {
        return Ok(Some(n));
    }
    Ok(sqlx::query_scalar("select name from nodes where id = $1").bind(id).fetch_optional(&db.pool).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes the current copy older than `FRESH`, as if time had passed.
    fn age(db: &Db) {
        let r = db.memo_get::<Refs>().expect("loaded");
        db.memo_put(Arc::new(Refs {
            loaded: Instant::now() - FRESH,
            categories: r.categories.clone(),
            units: r.units.clone(),
            nodes: r.nodes.clone(),
            reloading: AtomicBool::new(false),
        }));
    }

    /// A new unit is usable at once; an old copy keeps answering while one
    /// background task reloads it, and the change shows soon after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_old_copy_serves_while_it_is_reloaded() {
        let scratch = crate::platform::db::scratch::Scratch::sqlite().await.unwrap();
        let db = &scratch.db;
        let node: i64 = sqlx::query_scalar(
            "insert into nodes (parent_id, path, depth, kind, code, name, created_at, updated_at) \
             values (null, '/1/', 0, 'district', '140107', '杏花岭区', 0, 0) returning id",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(category(db, "0309").await.unwrap().unwrap().name, "小区公共设施维修");
        assert!(!category(db, "03").await.unwrap().unwrap().leaf);
        let unit_id: i64 = sqlx::query_scalar(
            "insert into units (kind, code, name, node_id, created_at) values ('centre', 'c1', '甲中心', $1, 0) \
             returning id",
        )
        .bind(node)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        // Not in the copy loaded above: reloaded at once.
        assert_eq!(unit(db, unit_id).await.unwrap().unwrap().name, "甲中心");
        sqlx::query("update units set name = '乙中心' where id = $1").bind(unit_id).execute(&db.pool).await.unwrap();
        age(db);
        assert_eq!(unit(db, unit_id).await.unwrap().unwrap().name, "甲中心", "the old copy answers");
        let deadline = Instant::now() + Duration::from_secs(5);
        while unit(db, unit_id).await.unwrap().unwrap().name != "乙中心" {
            assert!(Instant::now() < deadline, "the copy was not reloaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
