//! Overlays drawn across the tree: 作战单元 (combat units of a 村居, 小区,
//! 企业 or 街区, as in the 党建+单元+警务 model) and police zones (大防区: a
//! 中心所 with its neighbouring stations covering a set of nodes).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::store::get_node;
use crate::kernel::scope::Scope;
use crate::{
    kernel::{
        codes::BoundedText,
        error::{Error, Result, ResultExt},
    },
    platform::db::{now_ms, Db},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverlayKind {
    CombatUnit,
    PoliceZone,
}

impl OverlayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OverlayKind::CombatUnit => "combat_unit",
            OverlayKind::PoliceZone => "police_zone",
        }
    }

    /// Allowed subtypes: 作战单元 by what they cover; a police zone is a
    /// 大防区 led by a central station.
    pub fn subtypes(self) -> &'static [&'static str] {
        match self {
            OverlayKind::CombatUnit => &["village", "compound", "enterprise", "block"],
            OverlayKind::PoliceZone => &["major_zone"],
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Overlay {
    pub id: i64,
    pub kind: OverlayKind,
    pub subtype: String,
    pub name: String,
    /// The node the overlay belongs to (whose staff manage it).
    pub anchor_node_id: i64,
    pub leader: Option<String>,
    /// Police zones: `{"centre_station": "...", "stations": ["...", ...]}`.
    #[schema(value_type = Object)]
    pub attrs: serde_json::Value,
    /// Nodes covered by the overlay.
    pub node_ids: Vec<i64>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewOverlay {
    pub kind: OverlayKind,
    pub subtype: String,
    pub name: String,
    pub anchor_node_id: i64,
    pub leader: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub attrs: Option<serde_json::Value>,
    #[serde(default)]
    pub node_ids: Vec<i64>,
}

fn validate(db_input: &NewOverlay) -> Result<String> {
    if !db_input.kind.subtypes().contains(&db_input.subtype.as_str()) {
        return Err(Error::invalid("overlay.subtype_unknown", "subtype"));
    }
    if db_input.kind == OverlayKind::PoliceZone {
        let centre = db_input.attrs.as_ref().and_then(|a| a.get("centre_station")).and_then(|v| v.as_str());
        if centre.map(str::trim).unwrap_or("").is_empty() {
            return Err(Error::invalid("overlay.centre_station_required", "attrs.centre_station"));
        }
    }
    if let Some(l) = &db_input.leader {
        BoundedText::<50>::parse(l).field("leader")?;
    }
    Ok(BoundedText::<100>::parse(&db_input.name).field("name")?.as_str().to_string())
}

pub async fn create(db: &Db, scope: &Scope, input: NewOverlay) -> Result<Overlay> {
    let name = validate(&input)?;
    let anchor = get_node(db, scope, input.anchor_node_id)
        .await
        .map_err(|_| Error::invalid("node.parent_not_found", "anchor_node_id"))?;
    for nid in &input.node_ids {
        get_node(db, scope, *nid).await.map_err(|_| Error::invalid("node.parent_not_found", "node_ids"))?;
    }
    let attrs = input.attrs.clone().unwrap_or_else(|| serde_json::json!({}));
    if !attrs.is_object() {
        return Err(Error::invalid("attrs.not_object", "attrs"));
    }
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let id: i64 = sqlx::query(
        "insert into overlays (kind, subtype, name, anchor_node_id, leader, attrs, created_at, updated_at) \
         values ($1,$2,$3,$4,$5,$6,$7,$7) returning id",
    )
    .bind(input.kind.as_str())
    .bind(&input.subtype)
    .bind(&name)
    .bind(anchor.id)
    .bind(&input.leader)
    .bind(attrs.to_string())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    let mut ids = input.node_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    for nid in ids {
        sqlx::query("insert into overlay_nodes (overlay_id, node_id) values ($1, $2)")
            .bind(id)
            .bind(nid)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    get(db, scope, id).await
}

/// Overlays anchored inside the scope.
pub async fn list(db: &Db, scope: &Scope, kind: Option<OverlayKind>) -> Result<Vec<Overlay>> {
    let (lo, hi) = scope.bounds();
    let rows = sqlx::query(
        "select o.id from overlays o join nodes n on n.id = o.anchor_node_id \
         where n.path >= $1 and n.path < $2 and ($3 = '' or o.kind = $3) and o.status = 'active' order by o.id",
    )
    .bind(lo)
    .bind(hi)
    .bind(kind.map(|k| k.as_str()).unwrap_or(""))
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(get(db, scope, r.try_get(0)?).await?);
    }
    Ok(out)
}

pub async fn get(db: &Db, scope: &Scope, id: i64) -> Result<Overlay> {
    let (lo, hi) = scope.bounds();
    let row = sqlx::query(
        "select o.id, o.kind, o.subtype, o.name, o.anchor_node_id, o.leader, o.attrs from overlays o \
         join nodes n on n.id = o.anchor_node_id where o.id = $1 and n.path >= $2 and n.path < $3",
    )
    .bind(id)
    .bind(lo)
    .bind(hi)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(Error::NotFound)?;
    let node_ids = sqlx::query("select node_id from overlay_nodes where overlay_id = $1 order by node_id")
        .bind(id)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    let kind: String = row.try_get("kind")?;
    let attrs: String = row.try_get("attrs")?;
    Ok(Overlay {
        id,
        kind: if kind == "police_zone" { OverlayKind::PoliceZone } else { OverlayKind::CombatUnit },
        subtype: row.try_get("subtype")?,
        name: row.try_get("name")?,
        anchor_node_id: row.try_get("anchor_node_id")?,
        leader: row.try_get("leader")?,
        attrs: serde_json::from_str(&attrs).map_err(anyhow::Error::from)?,
        node_ids,
    })
}
