//! Units that receive work orders (centres, grids, departments) and the
//! choices a dispatcher has; the suggestion is the dispatch catalogue's
//! (`dispatch`).

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::store::OrderView;
use crate::{kernel::error::Result, platform::db::Db};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Unit {
    pub id: i64,
    /// `centre`, `grid` or `department`
    pub kind: String,
    pub code: String,
    pub name: String,
    pub node_id: i64,
}

pub(super) fn unit_from_row(r: &sqlx::any::AnyRow) -> Result<Unit> {
    Ok(Unit {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        node_id: r.try_get("node_id")?,
    })
}

/// The units someone acting at `user`'s node may dispatch to (see
/// `refs::UnitRef::dispatchable_from`), as far as they fit the place: the
/// departments of their area and of the levels above it; the centres above
/// them and, in their area, those on the way down to the order's place
/// (`order_path`; without an order, those above the communities) — never
/// another subdistrict's; and the grids and centre of the order's community
/// (`community_node`). A community out of their reach adds nothing, as if it
/// did not exist. Departments first, then centres, then grids: the groups
/// (职能部门 / 属地 / 网格) the dispatch form shows.
pub async fn choices(
    db: &Db,
    user: &crate::kernel::principal::CurrentUser,
    community_node: Option<i64>,
) -> Result<Vec<Unit>> {
    choices_for(db, user, community_node, None).await
}

/// The units by group as the dispatch form shows them: 职能部门, 属地 (the
/// centres), 网格; empty groups left out.
pub fn groups(units: &[Unit]) -> Vec<(&'static str, Vec<Unit>)> {
    ["department", "centre", "grid"]
        .into_iter()
        .map(|kind| {
            let label = crate::kernel::i18n::t(&format!("dispatch.group.{kind}"));
            (label, units.iter().filter(|u| u.kind == kind).cloned().collect::<Vec<_>>())
        })
        .filter(|(_, g)| !g.is_empty())
        .collect()
}

/// [`choices`] for one order at `order_path`.
pub async fn choices_for(
    db: &Db,
    user: &crate::kernel::principal::CurrentUser,
    community_node: Option<i64>,
    order_path: Option<&str>,
) -> Result<Vec<Unit>> {
    let (lo, hi) = user.scope().bounds();
    let above = crate::tree::ancestor_ids(&user.node_path).iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let above = if above.is_empty() { "-1".to_string() } else { above };
    // The order's own chain of places: its ancestors and itself.
    let chain = order_path.map(|p| {
        p.split('/').filter_map(|s| s.parse::<i64>().ok()).map(|id| id.to_string()).collect::<Vec<_>>().join(",")
    });
    let centres = match chain.as_deref() {
        Some(c) if !c.is_empty() => format!("n.id in ({c})"),
        _ => "n.kind <> 'community'".to_string(),
    };
    let rows = sqlx::query(&format!(
        "select u.id, u.kind, u.code, u.name, u.node_id from units u join nodes n on n.id = u.node_id \
         where u.status = 'active' and ((n.path >= $2 and n.path < $3 and (u.kind = 'department' \
         or (u.kind = 'centre' and ({centres} or n.id = $1)) or (u.kind = 'grid' and n.parent_id = $1))) \
         or (u.kind in ('department', 'centre') and n.id in ({above}))) \
         order by case u.kind when 'department' then 0 when 'centre' then 1 else 2 end, n.path, u.code",
    ))
    .bind(community_node.unwrap_or(-1))
    .bind(lo)
    .bind(hi)
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

/// A new functional department (职能部门) that takes dispatched matters.
#[derive(Clone, Debug, serde::Deserialize, ToSchema)]
pub struct NewDepartment {
    /// Its key: lower-case letters, digits and `_`, 2–30 long (`urban_mgmt`); its unit code is
    /// `dept:<key>` and categories name their owner by it.
    pub key: String,
    pub name: String,
}

/// A change to a unit: its name, or whether it takes new orders.
#[derive(Clone, Debug, Default, ToSchema)]
pub struct UnitPatch {
    pub name: Option<String>,
    pub active: Option<bool>,
    /// The body was not a JSON object (serde would take `[name, active]`
    /// for a struct); refused by `update_unit` with our error.
    #[schema(ignore)]
    pub not_object: bool,
}

impl<'de> serde::Deserialize<'de> for UnitPatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Fields {
            name: Option<String>,
            active: Option<bool>,
        }
        let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
        if !v.is_object() {
            return Ok(UnitPatch { not_object: true, ..Default::default() });
        }
        let f: Fields = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
        Ok(UnitPatch { name: f.name, active: f.active, not_object: false })
    }
}

fn valid_key(key: &str) -> bool {
    (2..=30).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn unit_name(name: &str) -> Result<String> {
    Ok(crate::kernel::codes::BoundedText::<50>::parse(name)
        .map_err(|_| crate::kernel::error::Error::invalid("text.empty", "name"))?
        .as_str()
        .to_string())
}

/// One unit with its status, in the caller's scope (else not found).
async fn unit_in_scope(db: &Db, user: &crate::kernel::principal::CurrentUser, id: i64) -> Result<(Unit, String)> {
    let row = sqlx::query(
        "select u.id, u.kind, u.code, u.name, u.node_id, u.status, n.path from units u join nodes n on n.id = u.node_id \
         where u.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(crate::kernel::error::Error::NotFound)?;
    let path: String = row.try_get("path")?;
    if !path.starts_with(&user.node_path) {
        return Err(crate::kernel::error::Error::NotFound);
    }
    Ok((unit_from_row(&row)?, row.try_get("status")?))
}

/// Adds a department at the caller's node (the district, or a level above). Audited.
pub async fn create_department(
    s: &crate::web::AppState,
    user: &crate::kernel::principal::CurrentUser,
    addr: Option<String>,
    input: NewDepartment,
) -> Result<Unit> {
    use crate::{
        audit::{record_write, Object},
        kernel::error::Error,
        orders::action,
    };
    user.require(crate::kernel::perm::Perm::CalendarWrite)?;
    let key = input.key.trim();
    if !valid_key(key) {
        return Err(Error::invalid("department.bad_key", "key"));
    }
    let name = unit_name(&input.name)?;
    let kind: String = sqlx::query("select kind from nodes where id = $1")
        .bind(user.node_id)
        .fetch_one(&s.db.pool)
        .await?
        .try_get(0)?;
    if !matches!(kind.as_str(), "district" | "city" | "province") {
        return Err(Error::invalid("department.node_level", "node_id"));
    }
    let id: Option<i64> = sqlx::query(
        "insert into units (kind, code, name, node_id, created_at) values ('department', $1, $2, $3, $4) \
         on conflict (code) do nothing returning id",
    )
    .bind(format!("dept:{key}"))
    .bind(&name)
    .bind(user.node_id)
    .bind(crate::platform::db::now_ms())
    .fetch_optional(&s.db.pool)
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    let id = id.ok_or_else(|| Error::conflict("department.key_taken"))?;
    super::refs::reload(&s.db).await?;
    record_write(
        s,
        user,
        addr,
        action::UNIT_CREATE,
        Object::new("unit", id),
        serde_json::json!({"key": key, "name": name}),
    )
    .await?;
    Ok(Unit { id, kind: "department".into(), code: format!("dept:{key}"), name, node_id: user.node_id })
}

/// Renames a unit of the caller's area, or stops / resumes its taking new
/// orders (what it holds stays its own). A department that categories belong
/// to keeps taking orders until they are given to another. Audited.
pub async fn update_unit(
    s: &crate::web::AppState,
    user: &crate::kernel::principal::CurrentUser,
    addr: Option<String>,
    id: i64,
    patch: UnitPatch,
) -> Result<Unit> {
    use crate::{
        audit::{record_write, Object},
        kernel::error::Error,
        orders::action,
    };
    user.require(crate::kernel::perm::Perm::CalendarWrite)?;
    if patch.not_object {
        return Err(Error::invalid("request.not_object", "body"));
    }
    let (mut unit, status) = unit_in_scope(&s.db, user, id).await?;
    let name = patch.name.as_deref().map(unit_name).transpose()?;
    if patch.active == Some(false) && unit.kind == "department" {
        let key = unit.code.trim_start_matches("dept:");
        let owned: i64 = sqlx::query("select count(*) from categories where owner_unit = $1")
            .bind(key)
            .fetch_one(&s.db.pool)
            .await?
            .try_get(0)?;
        if owned > 0 {
            return Err(Error::Conflict { code: "unit.owns_categories".into(), detail: Some(owned.to_string()) });
        }
    }
    let status = match patch.active {
        Some(true) => "active".to_string(),
        Some(false) => "retired".to_string(),
        None => status,
    };
    if let Some(n) = &name {
        unit.name = n.clone();
    }
    sqlx::query("update units set name = $1, status = $2 where id = $3")
        .bind(&unit.name)
        .bind(&status)
        .bind(id)
        .execute(&s.db.pool)
        .await?;
    super::refs::reload(&s.db).await?;
    let detail = serde_json::json!({"name": name, "active": patch.active});
    record_write(s, user, addr, action::UNIT_UPDATE, Object::new("unit", id), detail).await?;
    Ok(unit)
}

/// The departments of the caller's area with their status, for the console.
pub async fn departments(db: &Db, user: &crate::kernel::principal::CurrentUser) -> Result<Vec<(Unit, bool)>> {
    let (lo, hi) = user.scope().bounds();
    let rows = sqlx::query(
        "select u.id, u.kind, u.code, u.name, u.node_id, u.status from units u join nodes n on n.id = u.node_id \
         where u.kind = 'department' and n.path >= $1 and n.path < $2 order by u.status, u.code",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((unit_from_row(r)?, r.try_get::<String, _>("status")? == "active"))).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn department_keys_are_short_lower_case_words() {
        for ok in ["police", "urban_mgmt", "edu2"] {
            assert!(super::valid_key(ok), "{ok}");
        }
        for bad in ["", "x", "Police", "2edu", "urban-mgmt", "教育", &"a".repeat(31)] {
            assert!(!super::valid_key(bad), "{bad}");
        }
    }
}
