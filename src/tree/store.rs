//! Storage of the tree. Every read takes a `Scope` (the caller's place in
//! the tree) and applies it inside the SQL, so an out-of-scope node is
//! indistinguishable from a missing one.

use serde::Deserialize;
use sqlx::{any::AnyRow, Row};
use utoipa::ToSchema;

use super::model::*;
use crate::kernel::scope::Scope;
use crate::{
    kernel::{
        codes::{BoundedText, BuildingCode, GridCode, IdNumber, MobilePhone, RegionCode},
        error::{on_unique, Error, Result, ResultExt},
        geo::polygon::{overlap_area_m2, GridPolygon},
    },
    platform::{
        crypto::{Crypto, Field},
        db::{now_ms, Db, V},
    },
};

const NODE_COLS: &str = "id, parent_id, path, depth, kind, code, name, status, grid_type, \
     households, population, area_m2, lon, lat, attrs, version, created_at, updated_at";

fn node_from_row(row: &AnyRow, polygon: Option<String>) -> Result<Node> {
    let kind: String = row.try_get("kind")?;
    let grid_type: Option<String> = row.try_get("grid_type")?;
    let attrs: String = row.try_get("attrs")?;
    Ok(Node {
        id: row.try_get("id")?,
        parent_id: row.try_get("parent_id")?,
        path: row.try_get("path")?,
        depth: row.try_get("depth")?,
        kind: NodeKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("bad node kind {kind}"))?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        grid_type: grid_type.as_deref().and_then(GridType::parse),
        households: row.try_get("households")?,
        population: row.try_get("population")?,
        area_m2: row.try_get("area_m2")?,
        lon: row.try_get("lon")?,
        lat: row.try_get("lat")?,
        polygon: polygon.map(|p| serde_json::from_str(&p)).transpose().map_err(anyhow::Error::from)?,
        attrs: serde_json::from_str(&attrs).map_err(anyhow::Error::from)?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// One node with its polygon, if it is inside the scope.
pub async fn get_node(db: &Db, scope: &Scope, id: i64) -> Result<Node> {
    let (lo, hi) = scope.bounds();
    let row =
        sqlx::query(&format!("select {NODE_COLS}, polygon from nodes where id = $1 and path >= $2 and path < $3"))
            .bind(id)
            .bind(lo)
            .bind(hi)
            .fetch_optional(&db.pool)
            .await?
            .ok_or(Error::NotFound)?;
    let polygon: Option<String> = row.try_get("polygon")?;
    node_from_row(&row, polygon)
}

/// What a work order needs of the node it happens at.
#[derive(Clone, Debug)]
pub struct Place {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub kind: NodeKind,
}

impl From<Node> for Place {
    fn from(n: Node) -> Place {
        Place { id: n.id, name: n.name, path: n.path, kind: n.kind }
    }
}

struct PlaceMap;

impl crate::platform::db::RowMap<Place> for PlaceMap {
    fn map(&self, row: &impl crate::platform::db::Cols) -> Result<Place> {
        let kind: String = row.col("kind")?;
        Ok(Place {
            id: row.col("id")?,
            name: row.col("name")?,
            path: row.col("path")?,
            kind: NodeKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("bad node kind {kind}"))?,
        })
    }
}

/// A node inside the scope, as a place (one keyed read, no polygon).
pub async fn place(db: &Db, scope: &Scope, id: i64) -> Result<Option<Place>> {
    let (lo, hi) = scope.bounds();
    let sql = "select id, name, path, kind from nodes where id = $1 and path >= $2 and path < $3";
    db.fetch_optional(sql, vec![V::I(Some(id)), V::S(Some(lo)), V::S(Some(hi))], PlaceMap).await
}

/// The nodes at the top of a scope (usually one: the caller's own node).
pub async fn scope_roots(db: &Db, scope: &Scope) -> Result<Vec<Node>> {
    if scope.path == "/" {
        let rows = sqlx::query(&format!("select {NODE_COLS} from nodes where parent_id is null order by code"))
            .fetch_all(&db.pool)
            .await?;
        return rows.iter().map(|r| node_from_row(r, None)).collect();
    }
    let rows = sqlx::query(&format!("select {NODE_COLS} from nodes where path = $1"))
        .bind(&scope.path)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(|r| node_from_row(r, None)).collect()
}

/// Direct children of a node, in code order.
pub async fn children(db: &Db, scope: &Scope, parent_id: i64, include_retired: bool) -> Result<Vec<Node>> {
    let parent = get_node(db, scope, parent_id).await?;
    let rows = sqlx::query(&format!(
        "select {NODE_COLS} from nodes where parent_id = $1 and ($2 = 1 or status = 'active') order by code"
    ))
    .bind(parent.id)
    .bind(include_retired as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| node_from_row(r, None)).collect()
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubtreeQuery {
    /// Comma-separated kinds to include, e.g. `community,grid`. Default: all.
    pub kinds: Option<String>,
    #[serde(default)]
    pub include_retired: bool,
    /// Include each node's GeoJSON polygon.
    #[serde(default)]
    pub with_polygons: bool,
    /// Page size, at most 5000 (default 1000).
    pub limit: Option<i64>,
    /// Cursor: the `next` value of the previous page.
    pub after: Option<String>,
}

pub struct SubtreePage {
    pub nodes: Vec<Node>,
    pub next: Option<String>,
}

/// A subtree in one index range scan over `path`, paged by path.
pub async fn subtree(db: &Db, scope: &Scope, id: i64, q: &SubtreeQuery) -> Result<SubtreePage> {
    let root = get_node(db, scope, id).await?;
    let (lo, hi) = subtree_bounds(&root.path);
    let kinds: Vec<NodeKind> = match &q.kinds {
        None => vec![],
        Some(s) => s
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(|k| NodeKind::parse(k.trim()).ok_or_else(|| Error::invalid("node.kind_unknown", "kinds")))
            .collect::<Result<_>>()?,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 5000);
    let start = match &q.after {
        Some(after) if after.as_str() >= lo.as_str() => after.clone(),
        _ => String::new(),
    };
    // Kinds are a fixed vocabulary, so listing them inline is safe.
    let kind_filter = if kinds.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
        format!(" and kind in ({})", list.join(","))
    };
    let polygon_col = if q.with_polygons { ", polygon" } else { "" };
    let sql = format!(
        "select {NODE_COLS}{polygon_col} from nodes where path >= $1 and path < $2 and path > $3 \
         and ($4 = 1 or status = 'active'){kind_filter} order by path limit $5"
    );
    let rows = sqlx::query(&sql)
        .bind(&lo)
        .bind(&hi)
        .bind(&start)
        .bind(q.include_retired as i64)
        .bind(limit + 1)
        .fetch_all(&db.pool)
        .await?;
    let mut nodes = Vec::with_capacity(rows.len());
    for row in rows.iter().take(limit as usize) {
        let polygon = if q.with_polygons { row.try_get("polygon")? } else { None };
        nodes.push(node_from_row(row, polygon)?);
    }
    let next = (rows.len() as i64 > limit).then(|| nodes.last().map(|n| n.path.clone())).flatten();
    Ok(SubtreePage { nodes, next })
}

/// Counts by kind in a subtree, one grouped range scan plus one for members.
pub async fn subtree_counts(db: &Db, node: &Node) -> Result<SubtreeCounts> {
    let (lo, hi) = subtree_bounds(&node.path);
    let rows = sqlx::query(
        "select kind, count(*) as n, cast(coalesce(sum(case when kind = 'grid' then households else 0 end), 0) as bigint) as hh, \
         cast(coalesce(sum(case when kind = 'grid' then population else 0 end), 0) as bigint) as pop \
         from nodes where path >= $1 and path < $2 and status = 'active' group by kind",
    )
    .bind(&lo)
    .bind(&hi)
    .fetch_all(&db.pool)
    .await?;
    let mut c = SubtreeCounts::default();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let n: i64 = row.try_get("n")?;
        let hh: i64 = row.try_get("hh")?;
        match kind.as_str() {
            "subdistrict" => c.subdistricts = n,
            "community" => c.communities = n,
            "grid" => {
                c.grids = n;
                c.households = hh;
                c.population = row.try_get("pop")?;
            }
            "building" => c.buildings = n,
            _ => {}
        }
    }
    c.members = sqlx::query(
        "select count(*) from node_members m join nodes n on n.id = m.node_id \
         where n.path >= $1 and n.path < $2 and m.ended_at is null",
    )
    .bind(&lo)
    .bind(&hi)
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    Ok(c)
}

/// The chain from the scope's root down to the node's parent, for breadcrumbs.
pub async fn ancestors(db: &Db, scope: &Scope, node: &Node) -> Result<Vec<Node>> {
    let ids = ancestor_ids(&node.path);
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let rows = sqlx::query(&format!("select {NODE_COLS} from nodes where id in ({list}) order by depth"))
        .fetch_all(&db.pool)
        .await?;
    let nodes: Vec<Node> = rows.iter().map(|r| node_from_row(r, None)).collect::<Result<_>>()?;
    Ok(nodes.into_iter().filter(|n| scope.contains_path(&n.path)).collect())
}

const MEMBER_COLS: &str = "id, node_id, role, name, gender, ethnicity, political_status, birth_date, \
     education, mobile_enc, id_number_enc, phone, public_phone, public_phone_published, user_id, started_at";

/// The member's mobile number, decrypted (for unmasking and masking).
fn member_mobile_from_row(row: &AnyRow, crypto: &Crypto) -> Result<MobilePhone> {
    let id: i64 = row.try_get("id")?;
    let sealed: Option<String> = row.try_get("mobile_enc")?;
    let sealed = sealed.ok_or_else(|| anyhow::anyhow!("member {id} has no sealed mobile number"))?;
    let plain = crypto.decrypt(Field::MEMBER_MOBILE, &sealed)?;
    Ok(MobilePhone::parse(&plain).map_err(|e| anyhow::anyhow!("member {id}: stored mobile invalid: {e}"))?)
}

/// The member's ID number, decrypted, if one was recorded.
fn member_id_number_from_row(row: &AnyRow, crypto: &Crypto) -> Result<Option<IdNumber>> {
    let id: i64 = row.try_get("id")?;
    let sealed: Option<String> = row.try_get("id_number_enc")?;
    let Some(sealed) = sealed else { return Ok(None) };
    let plain = crypto.decrypt(Field::MEMBER_ID_NUMBER, &sealed)?;
    let id_number =
        IdNumber::parse(&plain).map_err(|e| anyhow::anyhow!("member {id}: stored ID number invalid: {e}"))?;
    Ok(Some(id_number))
}

/// A member as every response shows it: mobile and ID numbers masked.
fn member_from_row(row: &AnyRow, crypto: &Crypto) -> Result<Member> {
    let role: String = row.try_get("role")?;
    Ok(Member {
        id: row.try_get("id")?,
        node_id: row.try_get("node_id")?,
        role: MemberRole::parse(&role).ok_or_else(|| anyhow::anyhow!("bad member role {role}"))?,
        name: row.try_get("name")?,
        gender: row.try_get("gender")?,
        ethnicity: row.try_get("ethnicity")?,
        political_status: row.try_get("political_status")?,
        birth_date: row.try_get("birth_date")?,
        education: row.try_get("education")?,
        mobile: member_mobile_from_row(row, crypto)?.masked(),
        id_number_masked: member_id_number_from_row(row, crypto)?.map(|n| n.masked()),
        phone: row.try_get("phone")?,
        public_phone: row.try_get("public_phone")?,
        public_phone_published: row.try_get::<i64, _>("public_phone_published")? != 0,
        user_id: row.try_get("user_id")?,
        started_at: row.try_get("started_at")?,
    })
}

/// Current members of one node (the node must be in scope).
pub async fn members(db: &Db, crypto: &Crypto, scope: &Scope, node_id: i64) -> Result<Vec<Member>> {
    let node = get_node(db, scope, node_id).await?;
    let rows = sqlx::query(&format!(
        "select {MEMBER_COLS} from node_members where node_id = $1 and ended_at is null order by role, id"
    ))
    .bind(node.id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| member_from_row(r, crypto)).collect()
}

/// Current members anywhere in a node's subtree with this mobile number,
/// found through the blind index without decrypting every row.
pub async fn members_by_mobile(
    db: &Db,
    crypto: &Crypto,
    scope: &Scope,
    node_id: i64,
    mobile: &MobilePhone,
) -> Result<Vec<Member>> {
    let index = crypto.blind_index(Field::MEMBER_MOBILE, mobile.as_str());
    members_by_index(db, crypto, scope, node_id, "mobile_idx", index).await
}

/// Current members anywhere in a node's subtree with this ID number,
/// found through the blind index like [`members_by_mobile`].
pub async fn members_by_id_number(
    db: &Db,
    crypto: &Crypto,
    scope: &Scope,
    node_id: i64,
    id_number: &IdNumber,
) -> Result<Vec<Member>> {
    let index = crypto.blind_index(Field::MEMBER_ID_NUMBER, id_number.as_str());
    members_by_index(db, crypto, scope, node_id, "id_number_idx", index).await
}

/// Current members in a node's subtree whose blind-index `column` equals `index`.
async fn members_by_index(
    db: &Db,
    crypto: &Crypto,
    scope: &Scope,
    node_id: i64,
    column: &'static str,
    index: String,
) -> Result<Vec<Member>> {
    let node = get_node(db, scope, node_id).await?;
    let (lo, hi) = subtree_bounds(&node.path);
    let rows = sqlx::query(&format!(
        "select {MEMBER_COLS} from node_members where {column} = $1 and ended_at is null \
         and node_id in (select id from nodes where path >= $2 and path < $3) order by node_id, role, id"
    ))
    .bind(index)
    .bind(lo)
    .bind(hi)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| member_from_row(r, crypto)).collect()
}

/// A member (current or past) of a node in scope: its node id and the row
/// with both sealed numbers. Out of scope answers like missing.
async fn member_sealed_row(db: &Db, scope: &Scope, member_id: i64) -> Result<(i64, AnyRow)> {
    let (lo, hi) = scope.bounds();
    let row = sqlx::query(
        "select m.id, m.node_id, m.mobile_enc, m.id_number_enc from node_members m join nodes n on n.id = m.node_id \
         where m.id = $1 and n.path >= $2 and n.path < $3",
    )
    .bind(member_id)
    .bind(lo)
    .bind(hi)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(Error::NotFound)?;
    Ok((row.try_get("node_id")?, row))
}

/// A member's node and full mobile number, if the member (current or
/// past) belongs to a node in scope.
pub async fn member_mobile(db: &Db, crypto: &Crypto, scope: &Scope, member_id: i64) -> Result<(i64, MobilePhone)> {
    let (node_id, row) = member_sealed_row(db, scope, member_id).await?;
    Ok((node_id, member_mobile_from_row(&row, crypto)?))
}

/// A member's node and full ID number; 404 when the member is missing, out
/// of scope, or has no ID number recorded.
pub async fn member_id_number(db: &Db, crypto: &Crypto, scope: &Scope, member_id: i64) -> Result<(i64, IdNumber)> {
    let (node_id, row) = member_sealed_row(db, scope, member_id).await?;
    let id_number = member_id_number_from_row(&row, crypto)?.ok_or(Error::NotFound)?;
    Ok((node_id, id_number))
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewNode {
    /// Omit only for a root (province, city or district).
    pub parent_id: Option<i64>,
    pub kind: NodeKind,
    pub name: String,
    /// Required for region nodes (6/9/12-digit 统计用区划代码); grids and
    /// buildings get their code from their parent and a sequence number,
    /// which may be given as `seq`.
    pub code: Option<String>,
    pub seq: Option<u32>,
    pub grid_type: Option<GridType>,
    pub households: Option<i64>,
    pub population: Option<i64>,
    /// GeoJSON Polygon/MultiPolygon (grids and region nodes).
    #[schema(value_type = Option<Object>)]
    pub polygon: Option<serde_json::Value>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    #[schema(value_type = Option<Object>)]
    pub attrs: Option<serde_json::Value>,
}

/// The validated form of a polygon input plus its derived columns.
struct Geometry {
    json: String,
    area_m2: f64,
    bbox: (f64, f64, f64, f64),
    centroid: (f64, f64),
    shape: GridPolygon,
}

fn parse_geometry(v: &serde_json::Value) -> Result<Geometry> {
    let shape = GridPolygon::from_geojson(v).field("polygon")?;
    Ok(Geometry {
        json: shape.to_geojson().to_string(),
        area_m2: shape.area_m2(),
        bbox: shape.bbox(),
        centroid: shape.centroid(),
        shape,
    })
}

fn check_count(v: Option<i64>, max: i64, field: &str) -> Result<()> {
    match v {
        Some(n) if !(0..=max).contains(&n) => Err(Error::invalid("value.out_of_range", field)),
        _ => Ok(()),
    }
}

fn check_point(lon: Option<f64>, lat: Option<f64>) -> Result<()> {
    match (lon, lat) {
        (None, None) => Ok(()),
        (Some(x), Some(y)) if (73.0..=136.0).contains(&x) && (3.0..=54.0).contains(&y) => Ok(()),
        _ => Err(Error::invalid("point.out_of_range", "lon")),
    }
}

/// Works out the code a new child gets under `parent`.
async fn code_for_new(
    tx: &mut sqlx::AnyConnection,
    parent: Option<&Node>,
    kind: NodeKind,
    code: Option<&str>,
    seq: Option<u32>,
) -> Result<String> {
    if let Some(level) = kind.region_level() {
        let code =
            RegionCode::parse(code.ok_or_else(|| Error::invalid("node.code_required", "code"))?).field("code")?;
        if code.level() != level {
            return Err(Error::invalid("region_code.level_mismatch", "code"));
        }
        if let Some(p) = parent {
            let pc = RegionCode::parse(&p.code).field("parent_id")?;
            code.validate_child(&pc).field("code")?;
        }
        return Ok(code.as_str().to_string());
    }
    let parent = parent.ok_or_else(|| Error::invalid("node.parent_required", "parent_id"))?;
    // Next number after the largest ever used under this parent, so a
    // retired grid's code is never handed to a new one.
    let next = match seq {
        Some(s) => s,
        None => {
            let max: Option<String> = sqlx::query("select max(code) from nodes where parent_id = $1")
                .bind(parent.id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            let tail = max.map(|m| m[parent.code.len()..].parse::<u32>().unwrap_or(0)).unwrap_or(0);
            tail + 1
        }
    };
    match kind {
        NodeKind::Grid => {
            let community = RegionCode::parse(&parent.code).field("parent_id")?;
            let seq = u16::try_from(next).map_err(|_| Error::invalid("grid_code.seq_range", "seq"))?;
            Ok(GridCode::new(&community, seq).field("seq")?.to_string())
        }
        _ => {
            let grid = GridCode::parse(&parent.code).field("parent_id")?;
            Ok(BuildingCode::new(&grid, next).field("seq")?.to_string())
        }
    }
}

/// Refuses a grid boundary that overlaps an active sibling grid.
async fn check_no_sibling_overlap(
    db: &mut sqlx::AnyConnection,
    parent_id: i64,
    own_id: Option<i64>,
    geo: &Geometry,
) -> Result<()> {
    let (x0, y0, x1, y1) = geo.bbox;
    let rows = sqlx::query(
        "select id, name, polygon from nodes where parent_id = $1 and kind = 'grid' and status = 'active' \
         and polygon is not null and min_lon < $2 and max_lon > $3 and min_lat < $4 and max_lat > $5",
    )
    .bind(parent_id)
    .bind(x1)
    .bind(x0)
    .bind(y1)
    .bind(y0)
    .fetch_all(&mut *db)
    .await?;
    for row in rows {
        let id: i64 = row.try_get("id")?;
        if Some(id) == own_id {
            continue;
        }
        let text: String = row.try_get("polygon")?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(anyhow::Error::from)?;
        if let Ok(other) = GridPolygon::from_geojson(&value) {
            if overlap_area_m2(&geo.shape, &other) > 1.0 {
                // Named, so the person drawing knows which neighbour to look at.
                let name: String = row.try_get("name")?;
                return Err(Error::invalid_detail("polygon.overlaps_sibling", "polygon", name));
            }
        }
    }
    Ok(())
}

/// Creates a node after validating it against its parent.
pub async fn create_node(db: &Db, scope: &Scope, input: NewNode) -> Result<Node> {
    let name = BoundedText::<100>::parse(&input.name).field("name")?;
    check_count(input.households, 999_999, "households")?;
    check_count(input.population, 9_999_999, "population")?;
    check_point(input.lon, input.lat)?;
    let geometry = match &input.polygon {
        Some(v) if input.kind != NodeKind::Building => Some(parse_geometry(v)?),
        Some(_) => return Err(Error::invalid("polygon.not_for_buildings", "polygon")),
        None => None,
    };
    let attrs = match &input.attrs {
        None => "{}".to_string(),
        Some(v) if v.is_object() => v.to_string(),
        Some(_) => return Err(Error::invalid("attrs.not_object", "attrs")),
    };
    let parent = match input.parent_id {
        Some(pid) => {
            let p = get_node(db, scope, pid).await.map_err(|e| match e {
                Error::NotFound => Error::invalid("node.parent_not_found", "parent_id"),
                e => e,
            })?;
            if input.kind.parent_kind() != Some(p.kind) {
                return Err(Error::invalid("node.parent_kind_mismatch", "parent_id"));
            }
            if !p.is_active() {
                return Err(Error::invalid("node.parent_retired", "parent_id"));
            }
            Some(p)
        }
        None if input.kind.can_be_root() && scope.path == "/" => None,
        None => return Err(Error::invalid("node.parent_required", "parent_id")),
    };
    let grid_type = match input.kind {
        NodeKind::Grid => Some(input.grid_type.unwrap_or(GridType::Comprehensive)),
        _ if input.grid_type.is_some() => return Err(Error::invalid("node.grid_type_only_for_grids", "grid_type")),
        _ => None,
    };
    let mut tx = db.begin_write().await?;
    let code = code_for_new(&mut tx, parent.as_ref(), input.kind, input.code.as_deref(), input.seq).await?;
    if let (Some(g), Some(p)) = (&geometry, &parent) {
        if input.kind == NodeKind::Grid {
            check_no_sibling_overlap(&mut tx, p.id, None, g).await?;
        }
    }
    let now = now_ms();
    let (lon, lat) = match (&geometry, input.lon, input.lat) {
        (_, Some(x), Some(y)) => (Some(x), Some(y)),
        (Some(g), _, _) => (Some(g.centroid.0), Some(g.centroid.1)),
        _ => (None, None),
    };
    let placeholder = format!("#{}", crate::platform::crypto::random_token());
    let id: i64 = sqlx::query(
        "insert into nodes (parent_id, path, depth, kind, code, name, grid_type, households, population, \
         area_m2, polygon, min_lon, min_lat, max_lon, max_lat, lon, lat, attrs, created_at, updated_at) \
         values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$19) returning id",
    )
    .bind(parent.as_ref().map(|p| p.id))
    .bind(&placeholder)
    .bind(parent.as_ref().map(|p| p.depth + 1).unwrap_or(0))
    .bind(input.kind.as_str())
    .bind(&code)
    .bind(name.as_str())
    .bind(grid_type.map(|g| g.as_str()))
    .bind(input.households)
    .bind(input.population)
    .bind(geometry.as_ref().map(|g| g.area_m2))
    .bind(geometry.as_ref().map(|g| g.json.clone()))
    .bind(geometry.as_ref().map(|g| g.bbox.0))
    .bind(geometry.as_ref().map(|g| g.bbox.1))
    .bind(geometry.as_ref().map(|g| g.bbox.2))
    .bind(geometry.as_ref().map(|g| g.bbox.3))
    .bind(lon)
    .bind(lat)
    .bind(&attrs)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| on_unique(e, "node.code_taken"))?
    .try_get(0)?;
    let path = format!("{}{id}/", parent.as_ref().map(|p| p.path.as_str()).unwrap_or("/"));
    sqlx::query("update nodes set path = $1 where id = $2").bind(&path).bind(id).execute(&mut *tx).await?;
    // Its centre or grid unit, so orders there can be dispatched at once.
    if let Some((kind, unit_code, unit_name)) = own_unit(input.kind, &code, name.as_str()) {
        let insert = "insert into units (kind, code, name, node_id, created_at) values ($1,$2,$3,$4,$5) \
                      on conflict (code) do nothing";
        let mut done = 0;
        // A code left by a node that moved away: the new unit takes its node id along.
        for c in [unit_code.clone(), format!("{unit_code}#{id}")] {
            if done == 0 {
                done = sqlx::query(insert)
                    .bind(kind)
                    .bind(c)
                    .bind(&unit_name)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
        }
    }
    tx.commit().await?;
    get_node(db, scope, id).await
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct NodePatch {
    /// The version you read; a stale version answers 409.
    pub version: i64,
    pub name: Option<String>,
    pub grid_type: Option<GridType>,
    pub households: Option<i64>,
    pub population: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub polygon: Option<serde_json::Value>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    #[schema(value_type = Option<Object>)]
    pub attrs: Option<serde_json::Value>,
}

/// Edits a node's own fields, with optimistic concurrency on `version`.
pub async fn update_node(db: &Db, scope: &Scope, id: i64, patch: NodePatch) -> Result<Node> {
    let node = get_node(db, scope, id).await?;
    let name = match &patch.name {
        Some(n) => BoundedText::<100>::parse(n).field("name")?.as_str().to_string(),
        None => node.name.clone(),
    };
    check_count(patch.households, 999_999, "households")?;
    check_count(patch.population, 9_999_999, "population")?;
    check_point(patch.lon, patch.lat)?;
    if patch.grid_type.is_some() && node.kind != NodeKind::Grid {
        return Err(Error::invalid("node.grid_type_only_for_grids", "grid_type"));
    }
    let geometry = match &patch.polygon {
        Some(_) if node.kind == NodeKind::Building => {
            return Err(Error::invalid("polygon.not_for_buildings", "polygon"))
        }
        Some(v) => Some(parse_geometry(v)?),
        None => None,
    };
    let attrs = match &patch.attrs {
        None => None,
        Some(v) if v.is_object() => Some(v.to_string()),
        Some(_) => return Err(Error::invalid("attrs.not_object", "attrs")),
    };
    let mut tx = db.begin_write().await?;
    if let (Some(g), Some(pid)) = (&geometry, node.parent_id) {
        if node.kind == NodeKind::Grid {
            check_no_sibling_overlap(&mut tx, pid, Some(node.id), g).await?;
        }
    }
    let (lon, lat) = match (&geometry, patch.lon, patch.lat) {
        (_, Some(x), Some(y)) => (Some(x), Some(y)),
        (Some(g), _, _) => (Some(g.centroid.0), Some(g.centroid.1)),
        _ => (node.lon, node.lat),
    };
    let done = sqlx::query(
        "update nodes set name = $1, grid_type = coalesce($2, grid_type), households = coalesce($3, households), \
         population = coalesce($4, population), area_m2 = coalesce($5, area_m2), polygon = coalesce($6, polygon), \
         min_lon = coalesce($7, min_lon), min_lat = coalesce($8, min_lat), max_lon = coalesce($9, max_lon), \
         max_lat = coalesce($10, max_lat), lon = $11, lat = $12, attrs = coalesce($13, attrs), \
         version = version + 1, updated_at = $14 where id = $15 and version = $16",
    )
    .bind(&name)
    .bind(patch.grid_type.map(|g| g.as_str()))
    .bind(patch.households)
    .bind(patch.population)
    .bind(geometry.as_ref().map(|g| g.area_m2))
    .bind(geometry.as_ref().map(|g| g.json.clone()))
    .bind(geometry.as_ref().map(|g| g.bbox.0))
    .bind(geometry.as_ref().map(|g| g.bbox.1))
    .bind(geometry.as_ref().map(|g| g.bbox.2))
    .bind(geometry.as_ref().map(|g| g.bbox.3))
    .bind(lon)
    .bind(lat)
    .bind(attrs)
    .bind(now_ms())
    .bind(node.id)
    .bind(patch.version)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::conflict("node.version_conflict"));
    }
    // Its own unit follows the new name, unless someone named it otherwise.
    if let (Some((kind, _, old)), Some((_, _, new))) =
        (own_unit(node.kind, &node.code, &node.name), own_unit(node.kind, &node.code, &name))
    {
        sqlx::query("update units set name = $1 where node_id = $2 and kind = $3 and name = $4")
            .bind(new)
            .bind(node.id)
            .bind(kind)
            .bind(old)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // Users bound below it see its new name at once (`auth::cache`), and
    // so do the orders placed there (`orders::refs`).
    db.sessions.clear();
    db.memo_forget();
    db.settings_changed().await?;
    get_node(db, scope, id).await
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct MoveNode {
    pub parent_id: i64,
    /// The node's new region code, required when moving a region node
    /// (a community moved to another subdistrict is recoded by the
    /// statistics bureau). Grids and buildings are renumbered.
    pub code: Option<String>,
    pub version: i64,
}

/// Moves a node and its whole subtree under a new parent: paths and codes
/// of every descendant are rewritten by prefix in two set-based updates.
pub async fn move_node(db: &Db, scope: &Scope, id: i64, mv: MoveNode) -> Result<Node> {
    let node = get_node(db, scope, id).await?;
    let parent =
        get_node(db, scope, mv.parent_id).await.map_err(|_| Error::invalid("node.parent_not_found", "parent_id"))?;
    if node.kind.parent_kind() != Some(parent.kind) {
        return Err(Error::invalid("node.parent_kind_mismatch", "parent_id"));
    }
    if parent.path.starts_with(&node.path) {
        return Err(Error::invalid("node.move_into_itself", "parent_id"));
    }
    if !parent.is_active() || !node.is_active() {
        return Err(Error::invalid("node.parent_retired", "parent_id"));
    }
    if node.parent_id == Some(parent.id) {
        return Ok(node);
    }
    let mut tx = db.begin_write().await?;
    let new_code = code_for_new(&mut tx, Some(&parent), node.kind, mv.code.as_deref(), None).await?;
    let new_path = format!("{}{}/", parent.path, node.id);
    let (lo, hi) = subtree_bounds(&node.path);
    let now = now_ms();
    let done = sqlx::query("update nodes set parent_id = $1, version = version + 1 where id = $2 and version = $3")
        .bind(parent.id)
        .bind(node.id)
        .bind(mv.version)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::conflict("node.version_conflict"));
    }
    // Every descendant's code extends its ancestor's, so both rewrites are
    // prefix replacements over the subtree's path range.
    sqlx::query(
        "update nodes set path = $1 || substr(path, cast($2 as integer)), code = $3 || substr(code, cast($4 as integer)), updated_at = $5 \
         where path >= $6 and path < $7",
    )
    .bind(&new_path)
    .bind(node.path.len() as i64 + 1)
    .bind(&new_code)
    .bind(node.code.len() as i64 + 1)
    .bind(now)
    .bind(&lo)
    .bind(&hi)
    .execute(&mut *tx)
    .await
    .map_err(|e| on_unique(e, "node.code_taken"))?;
    tx.commit().await?;
    // Users bound below it get their new scope at once (`auth::cache`).
    db.sessions.clear();
    get_node(db, scope, id).await
}

/// Retires a node: it stays with its history but leaves listings. A node
/// with active children must have them moved or retired first.
pub async fn retire_node(db: &Db, scope: &Scope, id: i64) -> Result<Node> {
    let node = get_node(db, scope, id).await?;
    if !node.is_active() {
        return Ok(node);
    }
    let active_children: i64 = sqlx::query("select count(*) from nodes where parent_id = $1 and status = 'active'")
        .bind(node.id)
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
    if active_children > 0 {
        return Err(Error::Conflict {
            code: "node.has_active_children".into(),
            detail: Some(active_children.to_string()),
        });
    }
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "update nodes set status = 'retired', retired_at = $1, updated_at = $1, version = version + 1 where id = $2",
    )
    .bind(now)
    .bind(node.id)
    .execute(&mut *tx)
    .await?;
    // Its units take no new orders; those they hold stay theirs.
    sqlx::query("update units set status = 'retired' where node_id = $1").bind(node.id).execute(&mut *tx).await?;
    tx.commit().await?;
    // Dispatch stops offering its units at once (`orders::refs`).
    db.memo_forget();
    db.settings_changed().await?;
    get_node(db, scope, id).await
}

/// Deletes a node only when nothing refers to it; otherwise it must be retired.
pub async fn delete_node(db: &Db, scope: &Scope, id: i64) -> Result<()> {
    let node = get_node(db, scope, id).await?;
    let refs: i64 = sqlx::query(
        "select (select count(*) from nodes where parent_id = $1) + \
                (select count(*) from node_members where node_id = $1) + \
                (select count(*) from users where node_id = $1) + \
                (select count(*) from user_roles where node_id = $1) + \
                (select count(*) from overlays where anchor_node_id = $1) + \
                (select count(*) from overlay_nodes where node_id = $1) + \
                (select count(*) from orders where node_id = $1) + \
                (select count(*) from dispatch_rules where node_id = $1) + \
                (select count(*) from units u where u.node_id = $1 and ( \
                    exists (select 1 from orders o where o.lead_unit_id = u.id) or \
                    exists (select 1 from users s where s.unit_id = u.id) or \
                    exists (select 1 from order_notices n where n.unit_id = u.id) or \
                    exists (select 1 from dispatch_rules r where r.lead_unit_id = u.id)))",
    )
    .bind(node.id)
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    if refs > 0 {
        return Err(Error::conflict("node.has_data"));
    }
    let mut tx = db.begin_write().await?;
    // Its own units, never used, go with it.
    sqlx::query("delete from units where node_id = $1").bind(node.id).execute(&mut *tx).await?;
    sqlx::query("delete from nodes where id = $1").bind(node.id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewMember {
    pub role: MemberRole,
    pub name: String,
    pub gender: String,
    pub ethnicity: String,
    pub political_status: String,
    /// YYYYMMDD (GB/T 31000 date format)
    pub birth_date: String,
    pub education: String,
    pub mobile: String,
    /// 公民身份号码 (GB 11643, 18 characters or legacy 15 digits), optional.
    /// Stored encrypted; answers show it masked.
    pub id_number: Option<String>,
    pub phone: Option<String>,
    pub user_id: Option<i64>,
    /// 网格员公示: a work phone residents may call (not the personal mobile).
    #[serde(default)]
    pub public_phone: Option<String>,
    /// Show `public_phone` on the portal; off unless set.
    #[serde(default)]
    pub public_phone_published: bool,
}

/// A member's public work phone and whether the portal shows it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct PublicPhone {
    /// Digits, `-` and spaces (e.g. `0351-5551234`); null or empty clears it.
    pub phone: Option<String>,
    /// Publish it on the portal (网格员公示); needs a phone.
    pub published: bool,
}

impl PublicPhone {
    /// The phone to store (trimmed, empty as none), checked.
    fn parse(&self) -> Result<Option<String>> {
        let phone = self.phone.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if let Some(p) = phone {
            let digits = p.chars().filter(char::is_ascii_digit).count();
            let ok =
                p.chars().count() <= 18 && digits >= 7 && p.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ' ');
            if !ok {
                return Err(Error::invalid("phone.invalid", "public_phone"));
            }
        }
        if self.published && phone.is_none() {
            return Err(Error::invalid("member.public_phone_required", "public_phone"));
        }
        Ok(phone.map(str::to_string))
    }
}

/// A member's validated input: name, mobile and optional ID number.
type ValidMember = (String, MobilePhone, Option<IdNumber>);

fn validate_member(m: &NewMember) -> Result<ValidMember> {
    use crate::kernel::code_tables::*;
    let name = BoundedText::<50>::parse(&m.name).field("name")?;
    if !GENDER.contains(&m.gender) {
        return Err(Error::invalid("code_table.unknown", "gender"));
    }
    if !ETHNICITY.contains(&m.ethnicity) {
        return Err(Error::invalid("code_table.unknown", "ethnicity"));
    }
    if !POLITICAL_STATUS.contains(&m.political_status) {
        return Err(Error::invalid("code_table.unknown", "political_status"));
    }
    if !EDUCATION.contains(&m.education) {
        return Err(Error::invalid("code_table.unknown", "education"));
    }
    let birth = chrono::NaiveDate::parse_from_str(&m.birth_date, "%Y%m%d")
        .map_err(|_| Error::invalid("date.invalid", "birth_date"))?;
    let age = chrono::Utc::now().date_naive().years_since(birth).unwrap_or(0);
    if !(16..=90).contains(&age) {
        return Err(Error::invalid("member.age_out_of_range", "birth_date"));
    }
    let mobile = MobilePhone::parse(&m.mobile).field("mobile")?;
    let id_number = match m.id_number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(IdNumber::parse(s).field("id_number")?),
        None => None,
    };
    if let Some(p) = &m.phone {
        let ok = p.chars().count() <= 18 && p.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ' ');
        if !ok {
            return Err(Error::invalid("phone.invalid", "phone"));
        }
    }
    Ok((name.as_str().to_string(), mobile, id_number))
}

pub async fn add_member(db: &Db, crypto: &Crypto, scope: &Scope, node_id: i64, m: NewMember) -> Result<Member> {
    let node = get_node(db, scope, node_id).await?;
    if !m.role.allowed_on(node.kind) {
        return Err(Error::invalid("member.role_not_allowed_here", "role"));
    }
    if !node.is_active() {
        return Err(Error::invalid("node.parent_retired", "node_id"));
    }
    let (name, mobile, id_number) = validate_member(&m)?;
    let public_phone = PublicPhone { phone: m.public_phone.clone(), published: m.public_phone_published }.parse()?;
    if let Some(user_id) = m.user_id {
        // The member's login account: an existing user of the caller's
        // subtree (someone else's account is as unknown as a missing one).
        let (lo, hi) = scope.bounds();
        let known: i64 = sqlx::query(
            "select count(*) from users u join nodes n on n.id = u.node_id where u.id = $1 and n.path >= $2 and n.path < $3",
        )
        .bind(user_id)
        .bind(&lo)
        .bind(&hi)
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
        if known == 0 {
            return Err(Error::invalid("member.user_unknown", "user_id"));
        }
    }
    let sealed = crypto.seal_mobile(&mobile)?;
    let sealed_id = id_number.as_ref().map(|n| crypto.seal_id_number(n)).transpose()?;
    let (id_enc, id_idx) = sealed_id.map(|s| (s.enc, s.idx)).unzip();
    let now = now_ms();
    let id: i64 = sqlx::query(
        "insert into node_members (node_id, role, name, gender, ethnicity, political_status, birth_date, \
         education, mobile_enc, mobile_idx, id_number_enc, id_number_idx, phone, user_id, started_at, created_at, \
         public_phone, public_phone_published) \
         values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$15,$16,$17) returning id",
    )
    .bind(node.id)
    .bind(m.role.as_str())
    .bind(name)
    .bind(&m.gender)
    .bind(&m.ethnicity)
    .bind(&m.political_status)
    .bind(&m.birth_date)
    .bind(&m.education)
    .bind(sealed.enc)
    .bind(sealed.idx)
    .bind(id_enc)
    .bind(id_idx)
    .bind(&m.phone)
    .bind(m.user_id)
    .bind(now)
    .bind(public_phone)
    .bind(i64::from(m.public_phone_published))
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    let row = sqlx::query(&format!("select {MEMBER_COLS} from node_members where id = $1"))
        .bind(id)
        .fetch_one(&db.pool)
        .await?;
    member_from_row(&row, crypto)
}

/// Sets a current member's public work phone and its publication (the
/// member must be in scope).
pub async fn set_public_phone(
    db: &Db,
    crypto: &Crypto,
    scope: &Scope,
    member_id: i64,
    input: &PublicPhone,
) -> Result<Member> {
    let phone = input.parse()?;
    let (lo, hi) = scope.bounds();
    let done = sqlx::query(
        "update node_members set public_phone = $1, public_phone_published = $2 where id = $3 and ended_at is null \
         and node_id in (select id from nodes where path >= $4 and path < $5)",
    )
    .bind(phone)
    .bind(i64::from(input.published))
    .bind(member_id)
    .bind(&lo)
    .bind(&hi)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(Error::NotFound);
    }
    let row = sqlx::query(&format!("select {MEMBER_COLS} from node_members where id = $1"))
        .bind(member_id)
        .fetch_one(&db.pool)
        .await?;
    member_from_row(&row, crypto)
}

/// Ends a membership (the record stays for history).
pub async fn end_member(db: &Db, scope: &Scope, member_id: i64) -> Result<()> {
    let (lo, hi) = scope.bounds();
    let done = sqlx::query(
        "update node_members set ended_at = $1 where id = $2 and ended_at is null \
         and node_id in (select id from nodes where path >= $3 and path < $4)",
    )
    .bind(now_ms())
    .bind(member_id)
    .bind(lo)
    .bind(hi)
    .execute(&db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// The active grid whose boundary contains a point: a bounding-box range
/// query narrows the candidates, the exact polygon test decides.
pub async fn locate_grid(db: &Db, scope: &Scope, lon: f64, lat: f64) -> Result<Option<Node>> {
    check_point(Some(lon), Some(lat))?;
    let (lo, hi) = scope.bounds();
    let rows = sqlx::query(&format!(
        "select {NODE_COLS}, polygon from nodes where kind = 'grid' and status = 'active' \
         and min_lon <= $1 and max_lon >= $1 and min_lat <= $2 and max_lat >= $2 \
         and path >= $3 and path < $4"
    ))
    .bind(lon)
    .bind(lat)
    .bind(lo)
    .bind(hi)
    .fetch_all(&db.pool)
    .await?;
    for row in rows {
        let text: Option<String> = row.try_get("polygon")?;
        let Some(text) = text else { continue };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(anyhow::Error::from)?;
        if GridPolygon::from_geojson(&value).map(|p| p.covers(lon, lat)).unwrap_or(false) {
            return Ok(Some(node_from_row(&row, Some(text))?));
        }
    }
    Ok(None)
}

/// The active building of a grid nearest to a point (buildings are points),
/// so that a located report names a place people know.
pub async fn nearest_building(db: &Db, grid_id: i64, lon: f64, lat: f64) -> Result<Option<Node>> {
    check_point(Some(lon), Some(lat))?;
    let row = sqlx::query(&format!(
        "select {NODE_COLS} from nodes where parent_id = $1 and kind = 'building' and status = 'active' \
         and lon is not null and lat is not null \
         order by (lon - $2) * (lon - $2) + (lat - $3) * (lat - $3), id limit 1"
    ))
    .bind(grid_id)
    .bind(lon)
    .bind(lat)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| node_from_row(&r, None)).transpose()
}

/// A GeoJSON FeatureCollection for maps: with `kinds`, every node of those
/// kinds in the subtree; otherwise the node itself (`self: true`) and its
/// direct children. Buildings are points.
pub async fn feature_collection(db: &Db, scope: &Scope, id: i64, kinds: Option<&str>) -> Result<serde_json::Value> {
    let node = get_node(db, scope, id).await?;
    let mut nodes = vec![];
    match kinds {
        Some(k) => {
            let mut q = SubtreeQuery {
                kinds: Some(k.to_string()),
                with_polygons: true,
                limit: Some(5000),
                ..Default::default()
            };
            loop {
                let page = subtree(db, scope, id, &q).await?;
                nodes.extend(page.nodes);
                match page.next {
                    Some(n) if nodes.len() < 50_000 => q.after = Some(n),
                    _ => break,
                }
            }
        }
        None => {
            // The node and its own children by key, however large the
            // subtree beneath them is.
            let rows = sqlx::query(&format!(
                "select {NODE_COLS}, polygon from nodes where parent_id = $1 and status = 'active' order by code"
            ))
            .bind(node.id)
            .fetch_all(&db.pool)
            .await?;
            nodes.push(node.clone());
            for row in &rows {
                nodes.push(node_from_row(row, row.try_get("polygon")?)?);
            }
        }
    }
    let features: Vec<serde_json::Value> = nodes
        .into_iter()
        .filter_map(|n| {
            let geometry = match (&n.polygon, n.lon, n.lat) {
                (Some(p), _, _) => p.clone(),
                (None, Some(x), Some(y)) => serde_json::json!({"type": "Point", "coordinates": [x, y]}),
                _ => return None,
            };
            Some(serde_json::json!({
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "id": n.id, "name": n.name, "kind": n.kind, "code": n.code,
                    "households": n.households, "population": n.population,
                    "self": n.id == node.id && kinds.is_none(),
                }
            }))
        })
        .collect();
    Ok(serde_json::json!({"type": "FeatureCollection", "features": features}))
}
