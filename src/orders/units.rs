//! Units that receive work orders, and the dispatch suggestion (派单目录):
//! a department's matter goes to that department; anything else to the
//! community centre where it happened.

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

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub lead: Option<Unit>,
    /// The category belongs to a functional department (not to be pushed down).
    pub functional: bool,
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

pub async fn suggest(db: &Db, order: &OrderView) -> Result<Suggestion> {
    let owner: Option<String> = sqlx::query("select owner_unit from categories where code = $1")
        .bind(&order.category_code)
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
    let row = match &owner {
        Some(key) => {
            sqlx::query("select id, kind, code, name, node_id from units where code = $1 and status = 'active'")
                .bind(format!("dept:{key}"))
                .fetch_optional(&db.pool)
                .await?
        }
        None => match community_of(db, order).await? {
            Some(c) => sqlx::query(
                "select id, kind, code, name, node_id from units where node_id = $1 and kind = 'centre' and status = 'active'",
            )
            .bind(c)
            .fetch_optional(&db.pool)
            .await?,
            None => None,
        },
    };
    Ok(Suggestion { lead: row.as_ref().map(unit_from_row).transpose()?, functional: owner.is_some() })
}
