//! Units that receive work orders (centres, grids, departments) and the
//! choices a dispatcher has; the suggestion is the dispatch catalogue's
//! (`dispatch`).

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::store::OrderView;
use crate::{db::Db, error::Result};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Unit {
    pub id: i64,
    /// `centre`, `grid` or `department`
    pub kind: String,
    pub code: String,
    pub name: String,
    pub node_id: i64,
}

fn unit_from_row(r: &sqlx::any::AnyRow) -> Result<Unit> {
    Ok(Unit {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        node_id: r.try_get("node_id")?,
    })
}

/// Departments and centres anywhere, plus the grids of one community when
/// given: the choices a dispatcher has.
pub async fn choices(db: &Db, community_node: Option<i64>) -> Result<Vec<Unit>> {
    let rows = sqlx::query(
        "select u.id, u.kind, u.code, u.name, u.node_id from units u join nodes n on n.id = u.node_id \
         where u.status = 'active' and (u.kind = 'department' or (u.kind = 'centre' and n.kind <> 'community') \
         or n.id = $1 or n.parent_id = $1) order by case u.kind when 'department' then 0 when 'centre' then 1 else 2 end, u.code",
    )
    .bind(community_node.unwrap_or(-1))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(unit_from_row).collect()
}

/// The community node of an order (its grid's or building's community).
pub async fn community_of(db: &Db, order: &OrderView) -> Result<Option<i64>> {
    let ids = crate::tree::ancestor_ids(&order.node_path);
    let list = ids.iter().chain(std::iter::once(&order.node_id)).map(i64::to_string).collect::<Vec<_>>().join(",");
    let row = sqlx::query(&format!("select id from nodes where id in ({list}) and kind = 'community'"))
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}
