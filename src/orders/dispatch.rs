//! The dispatch catalogue (派单目录): for a category in a region, the unit
//! that leads (主办) and the units that assist (协办) by default, offered to
//! the dispatcher as a suggestion. A rule covers its region's whole subtree
//! and, when set on a top-level class, all its sub-categories; the most
//! specific rule wins (the deepest region, then the exact category). Where
//! no rule applies, a department's matter goes to that department and
//! anything else to the community centre where it happened.
//!
//! A department's matter is never suggested to a community or a grid
//! (国办函〔2025〕66号): such a rule is refused when saved, and a rule on a
//! top-level class that would push one of its department matters down is
//! passed over for that matter.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::{
    refs,
    store::OrderView,
    units::{self, Unit},
};
use crate::{
    kernel::{
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    platform::db::Db,
    web::AppState,
};

/// At most this many assisting units per rule.
pub const MAX_ASSISTING: usize = 10;

/// A local centre named by level rather than by unit: the centre of the
/// community or subdistrict where the matter is (属地).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocalLevel {
    Community,
    Subdistrict,
}

impl LocalLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalLevel::Community => "community",
            LocalLevel::Subdistrict => "subdistrict",
        }
    }

    fn parse(s: &str) -> Option<LocalLevel> {
        [LocalLevel::Community, LocalLevel::Subdistrict].into_iter().find(|l| l.as_str() == s)
    }
}

/// One rule of the catalogue.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DispatchRule {
    pub id: i64,
    pub category_code: String,
    pub category_name: String,
    /// The region the rule covers (with everything below it).
    pub node_id: i64,
    pub node_name: String,
    #[serde(skip)]
    pub node_path: String,
    /// `district`, `subdistrict` or `community` (or a higher level).
    pub node_kind: String,
    /// The default lead unit; null means the community centre where the matter is (属地社区).
    pub lead_unit_id: Option<i64>,
    pub lead_unit_name: Option<String>,
    pub assisting_unit_ids: Vec<i64>,
    pub assisting_unit_names: Vec<String>,
    /// Local centres that assist besides the named units.
    pub assist_local: Vec<LocalLevel>,
    pub note: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub updated_at: i64,
}

/// A rule as an administrator sets it, for the category and region named
/// in the address (one rule each; saving again replaces it).
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RuleInput {
    /// Null: the community centre where the matter is leads.
    pub lead_unit_id: Option<i64>,
    #[serde(default)]
    pub assisting_unit_ids: Vec<i64>,
    #[serde(default)]
    pub assist_local: Vec<LocalLevel>,
    pub note: Option<String>,
}

/// What the dispatcher is offered for one order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub lead: Option<Unit>,
    pub assisting: Vec<Unit>,
    /// The category belongs to a functional department (not to be pushed down).
    pub functional: bool,
    /// The catalogue rule behind the suggestion; null when the default applies.
    pub rule_id: Option<i64>,
    /// The region of that rule.
    pub rule_region: Option<String>,
}

impl Suggestion {
    /// Whether a unit is among the suggested assisting units.
    pub fn assists(&self, unit: &i64) -> bool {
        self.assisting.iter().any(|u| u.id == *unit)
    }
}

struct RuleRow {
    id: i64,
    category_code: String,
    node_id: i64,
    lead_unit_id: Option<i64>,
    assisting: Vec<i64>,
    assist_local: Vec<LocalLevel>,
    note: Option<String>,
    updated_at: i64,
}

fn json_ids(text: &str) -> Result<Vec<i64>> {
    Ok(serde_json::from_str(text).map_err(anyhow::Error::from)?)
}

fn json_levels(text: &str) -> Result<Vec<LocalLevel>> {
    let names: Vec<String> = serde_json::from_str(text).map_err(anyhow::Error::from)?;
    Ok(names.iter().filter_map(|n| LocalLevel::parse(n)).collect())
}

const RULE_COLS: &str =
    "r.id, r.category_code, r.node_id, r.lead_unit_id, r.assisting, r.assist_local, r.note, r.updated_at";

fn rule_from_row(r: &sqlx::any::AnyRow) -> Result<RuleRow> {
    Ok(RuleRow {
        id: r.try_get("id")?,
        category_code: r.try_get("category_code")?,
        node_id: r.try_get("node_id")?,
        lead_unit_id: r.try_get("lead_unit_id")?,
        assisting: json_ids(&r.try_get::<String, _>("assisting")?)?,
        assist_local: json_levels(&r.try_get::<String, _>("assist_local")?)?,
        note: r.try_get("note")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    let list = ids.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    if list.is_empty() {
        "-1".into()
    } else {
        list
    }
}

/// Active units by id.
async fn active_units(db: &Db, ids: impl IntoIterator<Item = i64>) -> Result<HashMap<i64, Unit>> {
    active_where(db, &format!("id in ({})", id_list(ids))).await.map(|us| us.into_iter().map(|u| (u.id, u)).collect())
}

/// Active units matching a condition on `units` (numbers only, no parameters).
async fn active_where(db: &Db, condition: &str) -> Result<Vec<Unit>> {
    let sql = format!("select id, kind, code, name, node_id from units where status = 'active' and {condition}");
    sqlx::query(&sql).fetch_all(&db.pool).await?.iter().map(units::unit_from_row).collect()
}

/// Whether a lead pushes a matter down to a community or a grid (none:
/// the local community centre).
fn pushes_down(lead: Option<&refs::UnitRef>) -> bool {
    lead.is_none_or(refs::UnitRef::below_subdistrict)
}

/// The nodes from the root down to the order's own, with their kinds.
struct Place {
    /// (id, kind, name), root first.
    chain: Vec<(i64, String, String)>,
}

impl Place {
    async fn of(db: &Db, order: &OrderView) -> Result<Place> {
        let mut ids = crate::tree::ancestor_ids(&order.node_path);
        ids.push(order.node_id);
        let rows = sqlx::query(&format!("select id, kind, name, depth from nodes where id in ({})", id_list(ids)))
            .fetch_all(&db.pool)
            .await?;
        let mut chain = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("depth")?, (r.try_get("id")?, r.try_get("kind")?, r.try_get("name")?))))
            .collect::<Result<Vec<_>>>()?;
        chain.sort_by_key(|(depth, _)| *depth);
        Ok(Place { chain: chain.into_iter().map(|(_, n)| n).collect() })
    }

    fn node_of_kind(&self, kind: &str) -> Option<i64> {
        self.chain.iter().find(|(_, k, _)| k == kind).map(|(id, _, _)| *id)
    }

    /// How deep a node lies on this place's chain (None: not on it).
    fn depth_of(&self, node: i64) -> Option<usize> {
        self.chain.iter().position(|(id, _, _)| *id == node)
    }

    fn name_of(&self, node: i64) -> Option<String> {
        self.chain.iter().find(|(id, _, _)| *id == node).map(|(_, _, n)| n.clone())
    }

    /// The governance centre of the community or subdistrict of this place.
    async fn local_centre(&self, db: &Db, level: LocalLevel) -> Result<Option<Unit>> {
        let Some(node) = self.node_of_kind(level.as_str()) else { return Ok(None) };
        Ok(active_where(db, &format!("node_id = {node} and kind = 'centre' order by id limit 1")).await?.pop())
    }
}

/// A unit by id and name (retired ones included: history keeps them).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UnitName {
    pub id: i64,
    pub name: String,
}

/// The names of units, in the given order.
pub async fn unit_names(db: &Db, ids: &[i64]) -> Result<Vec<UnitName>> {
    let mut out = vec![];
    for id in ids {
        let name = refs::unit(db, *id).await?.map_or_else(|| format!("#{id}"), |u| u.name);
        out.push(UnitName { id: *id, name });
    }
    Ok(out)
}

/// The catalogue's suggestion for an order: its rule, else the default.
pub async fn suggest(db: &Db, order: &OrderView) -> Result<Suggestion> {
    let category = refs::category(db, &order.category_code).await?.ok_or(Error::NotFound)?;
    let functional = category.owner.is_some();
    let place = Place::of(db, order).await?;
    let codes = [Some(order.category_code.clone()), category.parent.clone()];
    let rows = sqlx::query(&format!(
        "select {RULE_COLS} from dispatch_rules r where r.category_code in ($1, $2) and r.node_id in ({})",
        id_list(place.chain.iter().map(|(id, _, _)| *id))
    ))
    .bind(&order.category_code)
    .bind(category.parent.as_deref().unwrap_or(&order.category_code))
    .fetch_all(&db.pool)
    .await?;
    let mut rules = rows.iter().map(rule_from_row).collect::<Result<Vec<_>>>()?;
    // Deepest region first, then the exact category before its class.
    rules.sort_by_key(|r| {
        (std::cmp::Reverse(place.depth_of(r.node_id)), codes.iter().position(|c| c.as_ref() == Some(&r.category_code)))
    });
    for rule in rules {
        let lead_ref = match rule.lead_unit_id {
            Some(id) => match refs::unit(db, id).await? {
                Some(u) if u.active => Some(u),
                // A retired lead unit: this rule cannot be followed.
                _ => continue,
            },
            None => None,
        };
        if functional && pushes_down(lead_ref.as_ref()) {
            continue;
        }
        let lead = match rule.lead_unit_id {
            Some(id) => active_units(db, [id]).await?.remove(&id),
            None => place.local_centre(db, LocalLevel::Community).await?,
        };
        let Some(lead) = lead else { continue };
        let mut assisting: Vec<Unit> = vec![];
        let mut named = active_units(db, rule.assisting.iter().copied()).await?;
        for id in &rule.assisting {
            if let Some(u) = named.remove(id) {
                assisting.push(u);
            }
        }
        for level in &rule.assist_local {
            if let Some(u) = place.local_centre(db, *level).await? {
                assisting.push(u);
            }
        }
        let mut seen = vec![lead.id];
        assisting.retain(|u| {
            let new = !seen.contains(&u.id);
            seen.push(u.id);
            new
        });
        return Ok(Suggestion {
            lead: Some(lead),
            assisting,
            functional,
            rule_id: Some(rule.id),
            rule_region: place.name_of(rule.node_id),
        });
    }
    let lead = match &category.owner {
        Some(key) => {
            sqlx::query("select id, kind, code, name, node_id from units where code = $1 and status = 'active'")
                .bind(format!("dept:{key}"))
                .fetch_optional(&db.pool)
                .await?
                .map(|r| units::unit_from_row(&r))
                .transpose()?
        }
        None => place.local_centre(db, LocalLevel::Community).await?,
    };
    Ok(Suggestion { lead, assisting: vec![], functional, rule_id: None, rule_region: None })
}

/// May this caller read the catalogue? Its editors and dispatchers.
fn require_read(user: &CurrentUser) -> Result<()> {
    if user.can(Perm::CalendarWrite) || user.can(Perm::OrdersDispatch) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// The rules that matter to the caller: those in their subtree and those of
/// the regions above it (which apply to it too), region by region.
pub async fn list(db: &Db, user: &CurrentUser) -> Result<Vec<DispatchRule>> {
    require_read(user)?;
    let rows = sqlx::query(&format!(
        "select {RULE_COLS}, n.path, n.name as node_name, n.kind as node_kind, n.depth, c.name as category_name, \
         c.sort from dispatch_rules r join nodes n on n.id = r.node_id join categories c on c.code = r.category_code"
    ))
    .fetch_all(&db.pool)
    .await?;
    let mut keyed = vec![];
    for r in &rows {
        let path: String = r.try_get("path")?;
        if !(path.starts_with(&user.node_path) || user.node_path.starts_with(&path)) {
            continue;
        }
        let depth: i64 = r.try_get("depth")?;
        let sort: i64 = r.try_get("sort")?;
        let extra = (
            path.clone(),
            r.try_get::<String, _>("node_name")?,
            r.try_get::<String, _>("node_kind")?,
            r.try_get::<String, _>("category_name")?,
        );
        keyed.push(((depth, path, sort), rule_from_row(r)?, extra));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = vec![];
    for (_, row, (node_path, node_name, node_kind, category_name)) in keyed {
        out.push(view(db, row, [node_path, node_name, node_kind, category_name]).await?);
    }
    Ok(out)
}

/// A rule for reading, given its region's path, name and kind and its category's name.
async fn view(db: &Db, row: RuleRow, names: [String; 4]) -> Result<DispatchRule> {
    let [node_path, node_name, node_kind, category_name] = names;
    let name = |u: Option<refs::UnitRef>| u.map(|u| u.name);
    let lead_unit_name = match row.lead_unit_id {
        Some(id) => name(refs::unit(db, id).await?),
        None => None,
    };
    let mut assisting_unit_names = vec![];
    for id in &row.assisting {
        assisting_unit_names.push(name(refs::unit(db, *id).await?).unwrap_or_else(|| format!("#{id}")));
    }
    Ok(DispatchRule {
        id: row.id,
        category_code: row.category_code,
        category_name,
        node_id: row.node_id,
        node_name,
        node_path,
        node_kind,
        lead_unit_id: row.lead_unit_id,
        lead_unit_name,
        assisting_unit_ids: row.assisting,
        assisting_unit_names,
        assist_local: row.assist_local,
        note: row.note,
        updated_at: row.updated_at,
    })
}

/// One rule in the caller's reach (their subtree, or above it for reading).
async fn get(db: &Db, user: &CurrentUser, id: i64) -> Result<DispatchRule> {
    list(db, user).await?.into_iter().find(|r| r.id == id).ok_or(Error::NotFound)
}

/// A unit's status, kind and where it sits.
async fn unit_place(db: &Db, id: i64) -> Result<Option<(String, String, String)>> {
    let row =
        sqlx::query("select u.status, u.kind, n.path from units u join nodes n on n.id = u.node_id where u.id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        None => None,
    })
}

/// A region of the caller's (its path and kind); any other is not found.
async fn region_in_scope(db: &Db, user: &CurrentUser, node_id: i64) -> Result<(String, String)> {
    let row = sqlx::query("select path, kind, status from nodes where id = $1")
        .bind(node_id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    let (path, kind, status): (String, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if !path.starts_with(&user.node_path) || status != "active" {
        return Err(Error::NotFound);
    }
    Ok((path, kind))
}

/// Checks and stores a rule (API and console page alike): the category
/// exists; the region is a district, subdistrict or community in your
/// scope; the units are active and belong to the region, a level above it
/// or a place inside it; no unit twice; and a department's matter does not
/// default to a community or a grid. Saving the same category and region
/// again replaces the rule. Audited.
pub async fn save(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    (node_id, category_code): (i64, &str),
    input: RuleInput,
) -> Result<DispatchRule> {
    use crate::audit::{record_write, Object};
    use crate::orders::action;
    user.require(Perm::CalendarWrite)?;
    let db = &s.db;
    let (path, kind) = region_in_scope(db, user, node_id).await?;
    let category = refs::category(db, category_code).await?.ok_or(Error::NotFound)?;
    if matches!(kind.as_str(), "grid" | "building") {
        return Err(Error::invalid("dispatch.node_level", "node_id"));
    }
    let check_unit = |field: &'static str, found: Option<(String, String, String)>| -> Result<()> {
        match found {
            Some((status, _, upath)) if status == "active" => {
                if path.starts_with(&upath) || upath.starts_with(&path) {
                    Ok(())
                } else {
                    Err(Error::invalid("dispatch.unit_out_of_region", field))
                }
            }
            _ => Err(Error::invalid("dispatch.unit_unknown", field)),
        }
    };
    if let Some(lead) = input.lead_unit_id {
        check_unit("lead_unit_id", unit_place(db, lead).await?)?;
    }
    if input.assisting_unit_ids.len() > MAX_ASSISTING {
        return Err(Error::invalid("dispatch.too_many_assisting", "assisting_unit_ids"));
    }
    for (i, id) in input.assisting_unit_ids.iter().enumerate() {
        check_unit("assisting_unit_ids", unit_place(db, *id).await?)?;
        if Some(*id) == input.lead_unit_id {
            return Err(Error::invalid("order.lead_also_assisting", "assisting_unit_ids"));
        }
        if input.assisting_unit_ids[..i].contains(id) {
            return Err(Error::invalid("order.duplicate_assisting", "assisting_unit_ids"));
        }
    }
    for (i, level) in input.assist_local.iter().enumerate() {
        if input.assist_local[..i].contains(level) {
            return Err(Error::invalid("order.duplicate_assisting", "assist_local"));
        }
        if input.lead_unit_id.is_none() && *level == LocalLevel::Community {
            return Err(Error::invalid("order.lead_also_assisting", "assist_local"));
        }
    }
    let lead_ref = match input.lead_unit_id {
        Some(id) => refs::unit(db, id).await?,
        None => None,
    };
    if category.owner.is_some() && pushes_down(lead_ref.as_ref()) {
        return Err(Error::invalid("dispatch.functional_push_down", "lead_unit_id"));
    }
    let note = match input.note.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) => Some(
            crate::kernel::codes::BoundedText::<200>::parse(n)
                .map_err(|_| Error::invalid("text.too_long", "note"))?
                .as_str()
                .to_string(),
        ),
    };
    let levels: Vec<&str> = input.assist_local.iter().map(|l| l.as_str()).collect();
    let assisting = serde_json::to_string(&input.assisting_unit_ids).map_err(anyhow::Error::from)?;
    let assist_local = serde_json::to_string(&levels).map_err(anyhow::Error::from)?;
    let now = crate::platform::db::now_ms();
    let id: i64 = sqlx::query(
        "insert into dispatch_rules (category_code, node_id, lead_unit_id, assisting, assist_local, note, updated_at, \
         updated_by) values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (category_code, node_id) do update set \
         lead_unit_id = excluded.lead_unit_id, assisting = excluded.assisting, assist_local = excluded.assist_local, \
         note = excluded.note, updated_at = excluded.updated_at, updated_by = excluded.updated_by returning id",
    )
    .bind(category_code)
    .bind(node_id)
    .bind(input.lead_unit_id)
    .bind(&assisting)
    .bind(&assist_local)
    .bind(&note)
    .bind(now)
    .bind(user.id)
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    let detail = serde_json::json!({"category_code": category_code, "node_id": node_id,
        "lead_unit_id": input.lead_unit_id, "assisting_unit_ids": input.assisting_unit_ids, "assist_local": levels,
        "note": note});
    record_write(s, user, addr, action::DISPATCH_RULE_SAVE, Object::new("dispatch_rule", id), detail).await?;
    get(db, user, id).await
}

/// Removes the rule of a category in a region of yours, if there is one
/// (the wider rule, or the default, applies again). Removing an absent rule
/// changes nothing and records nothing; a region outside your scope is not
/// found. Audited.
pub async fn remove(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    (node_id, category_code): (i64, &str),
) -> Result<()> {
    use crate::audit::{record_write, Object};
    use crate::orders::action;
    user.require(Perm::CalendarWrite)?;
    region_in_scope(&s.db, user, node_id).await?;
    refs::category(&s.db, category_code).await?.ok_or(Error::NotFound)?;
    let gone = sqlx::query("delete from dispatch_rules where category_code = $1 and node_id = $2 returning id")
        .bind(category_code)
        .bind(node_id)
        .fetch_optional(&s.db.pool)
        .await?;
    if let Some(row) = gone {
        let id: i64 = row.try_get(0)?;
        let detail = serde_json::json!({"category_code": category_code, "node_id": node_id});
        record_write(s, user, addr, action::DISPATCH_RULE_DELETE, Object::new("dispatch_rule", id), detail).await?;
    }
    Ok(())
}
