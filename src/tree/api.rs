//! HTTP API of the tree under `/api/v1/`. Reads are scoped to the caller's
//! subtree; writes need the administrator role.

use crate::web::extract::{Json, Path, Query};
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    model::*,
    overlays::{self, NewOverlay, Overlay, OverlayKind},
    service,
    store::{self, MoveNode, NewMember, NewNode, NodePatch, PublicPhone, SubtreeQuery},
};
use crate::{
    audit::Object,
    kernel::{
        codes::{IdNumber, MobilePhone},
        error::{Error, ErrorBody, Result, ResultExt},
        perm::Perm,
        principal::CurrentUser,
    },
    tree::action,
    web::{AppState, ClientAddr},
};

use crate::audit::record_write as audited;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(super::unmask::unmask_member))
        .routes(routes!(list_nodes, create_node))
        .routes(routes!(get_node, update_node, delete_node))
        .routes(routes!(move_node))
        .routes(routes!(retire_node))
        .routes(routes!(subtree))
        .routes(routes!(geojson))
        .routes(routes!(list_members, add_member))
        .routes(routes!(end_member))
        .routes(routes!(set_public_phone))
        .routes(routes!(locate_grid))
        .routes(routes!(list_overlays, create_overlay))
        .routes(routes!(get_overlay))
        .routes(routes!(code_tables))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Children of this node; omit for the top of your scope.
    pub parent_id: Option<i64>,
    #[serde(default)]
    pub include_retired: bool,
}

#[derive(Serialize, ToSchema)]
pub struct NodeList {
    pub nodes: Vec<Node>,
}

/// List the top of your scope, or the children of a node.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "tree", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = NodeList), (status = 404, body = ErrorBody)))]
async fn list_nodes(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<NodeList>> {
    user.require(Perm::TreeRead)?;
    let scope = user.scope();
    let nodes = match q.parent_id {
        Some(pid) => store::children(&s.db, &scope, pid, q.include_retired).await?,
        None => store::scope_roots(&s.db, &scope).await?,
    };
    Ok(Json(NodeList { nodes }))
}

/// Create a node. Region nodes need their 统计用区划代码; grids and buildings
/// are numbered under their parent.
#[utoipa::path(post, path = "/api/v1/nodes", tag = "tree", request_body = NewNode, security(("bearer" = [])),
    responses((status = 201, body = Node), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_node(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(input): Json<NewNode>,
) -> Result<(StatusCode, Json<Node>)> {
    let node = service::create_node(&s, &user, addr, input).await?;
    Ok((StatusCode::CREATED, Json(node)))
}

#[derive(Serialize, ToSchema)]
pub struct Crumb {
    pub id: i64,
    pub kind: NodeKind,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct NodeDetail {
    pub node: Node,
    /// From the top of your scope down to the parent.
    pub ancestors: Vec<Crumb>,
    pub counts: SubtreeCounts,
}

/// One node with its polygon, ancestors and subtree counts.
#[utoipa::path(get, path = "/api/v1/nodes/{id}", tag = "tree", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = NodeDetail), (status = 404, body = ErrorBody)))]
async fn get_node(State(s): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<NodeDetail>> {
    user.require(Perm::TreeRead)?;
    let scope = user.scope();
    let node = store::get_node(&s.db, &scope, id).await?;
    let ancestors = store::ancestors(&s.db, &scope, &node)
        .await?
        .into_iter()
        .map(|n| Crumb { id: n.id, kind: n.kind, name: n.name })
        .collect();
    let counts = store::subtree_counts(&s.db, &node).await?;
    Ok(Json(NodeDetail { node, ancestors, counts }))
}

/// Edit a node's fields (send the `version` you read).
#[utoipa::path(patch, path = "/api/v1/nodes/{id}", tag = "tree", params(("id" = i64, Path)), request_body = NodePatch,
    security(("bearer" = [])),
    responses((status = 200, body = Node), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_node(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(patch): Json<NodePatch>,
) -> Result<Json<Node>> {
    Ok(Json(service::update_node(&s, &user, addr, id, patch).await?))
}

/// Delete a node that nothing refers to; a node with data must be retired.
#[utoipa::path(delete, path = "/api/v1/nodes/{id}", tag = "tree", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_node(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    user.require(Perm::TreeWrite)?;
    let scope = user.scope();
    let node = store::get_node(&s.db, &scope, id).await?;
    store::delete_node(&s.db, &scope, id).await?;
    let detail = serde_json::json!({"kind": node.kind, "code": node.code, "name": node.name});
    audited(&s, &user, addr, action::NODE_DELETE, Object::new("node", id), detail).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Move a node with its subtree under another parent; codes follow.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/move", tag = "tree", params(("id" = i64, Path)), request_body = MoveNode,
    security(("bearer" = [])),
    responses((status = 200, body = Node), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn move_node(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(mv): Json<MoveNode>,
) -> Result<Json<Node>> {
    Ok(Json(service::move_node(&s, &user, addr, id, mv).await?))
}

/// Retire a node (kept with its history, hidden from listings).
#[utoipa::path(post, path = "/api/v1/nodes/{id}/retire", tag = "tree", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Node), (status = 409, body = ErrorBody)))]
async fn retire_node(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Result<Json<Node>> {
    Ok(Json(service::retire_node(&s, &user, addr, id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct SubtreeList {
    pub nodes: Vec<Node>,
    /// Pass as `after` to fetch the next page; absent on the last page.
    pub next: Option<String>,
}

/// A whole subtree in tree order, paged.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/subtree", tag = "tree", params(("id" = i64, Path), SubtreeQuery),
    security(("bearer" = [])), responses((status = 200, body = SubtreeList), (status = 404, body = ErrorBody)))]
async fn subtree(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<SubtreeQuery>,
) -> Result<Json<SubtreeList>> {
    user.require(Perm::TreeRead)?;
    let page = store::subtree(&s.db, &user.scope(), id, &q).await?;
    Ok(Json(SubtreeList { nodes: page.nodes, next: page.next }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GeoQuery {
    /// Comma-separated kinds from the whole subtree (e.g. `grid`); omit for
    /// the node and its direct children.
    pub kinds: Option<String>,
}

/// The node's area as a GeoJSON FeatureCollection, for maps.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/geojson", tag = "tree", params(("id" = i64, Path), GeoQuery),
    security(("bearer" = [])), responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn geojson(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<GeoQuery>,
) -> Result<Json<serde_json::Value>> {
    user.require(Perm::TreeRead)?;
    Ok(Json(store::feature_collection(&s.db, &user.scope(), id, q.kinds.as_deref()).await?))
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<Member>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// Find current members with this mobile number anywhere in the node's
    /// subtree (exact match on the normalised number, via the blind index).
    pub mobile: Option<String>,
    /// Find current members with this 公民身份号码 anywhere in the node's
    /// subtree (18 characters or legacy 15 digits; exact match via the
    /// blind index). Not together with `mobile`.
    pub id_number: Option<String>,
}

/// Current members of a node (网格长, 网格员, 楼栋长), or those in its subtree
/// with a given mobile or ID number. Mobile and ID numbers are masked.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/members", tag = "tree", params(("id" = i64, Path), MemberQuery),
    security(("bearer" = [])),
    responses((status = 200, body = MemberList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_members(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<MemberQuery>,
) -> Result<Json<MemberList>> {
    user.require(Perm::TreeRead)?;
    let scope = user.scope();
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let members = match (given(&q.mobile), given(&q.id_number)) {
        (Some(_), Some(_)) => return Err(Error::invalid("member.search_one_key", "id_number")),
        (Some(m), None) => {
            let mobile = MobilePhone::parse(&m).field("mobile")?;
            store::members_by_mobile(&s.db, &s.crypto, &scope, id, &mobile).await?
        }
        (None, Some(n)) => {
            let id_number = IdNumber::parse(&n).field("id_number")?;
            store::members_by_id_number(&s.db, &s.crypto, &scope, id, &id_number).await?
        }
        (None, None) => store::members(&s.db, &s.crypto, &scope, id).await?,
    };
    Ok(Json(MemberList { members }))
}

/// Add a member to a node.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/members", tag = "tree", params(("id" = i64, Path)), request_body = NewMember,
    security(("bearer" = [])),
    responses((status = 201, body = Member), (status = 422, body = ErrorBody)))]
async fn add_member(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(m): Json<NewMember>,
) -> Result<(StatusCode, Json<Member>)> {
    let member = service::add_member(&s, &user, addr, id, m).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Set a member's public work phone (网格员公示) and whether the resident
/// portal shows it as a number to call. Off by default; publishing needs a
/// phone. The personal mobile is never published.
#[utoipa::path(put, path = "/api/v1/members/{id}/public-phone", tag = "tree", params(("id" = i64, Path)),
    request_body = PublicPhone, security(("bearer" = [])),
    responses((status = 200, body = Member), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_public_phone(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(p): Json<PublicPhone>,
) -> Result<Json<Member>> {
    user.require(Perm::TreeWrite)?;
    let member = store::set_public_phone(&s.db, &s.crypto, &user.scope(), id, &p).await?;
    let detail = serde_json::json!({"node_id": member.node_id, "name": member.name,
        "public_phone": member.public_phone, "published": member.public_phone_published});
    audited(&s, &user, addr, action::MEMBER_PUBLIC_PHONE, Object::new("member", member.id), detail).await?;
    Ok(Json(member))
}

/// End a membership (kept for history).
#[utoipa::path(delete, path = "/api/v1/members/{id}", tag = "tree", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn end_member(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    service::end_member(&s, &user, addr, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocateQuery {
    pub lon: f64,
    pub lat: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Located {
    /// The grid containing the point, if any.
    pub grid: Option<Node>,
}

/// Find the grid that contains a point (WGS84/CGCS2000 lon, lat).
#[utoipa::path(get, path = "/api/v1/grids/locate", tag = "tree", params(LocateQuery), security(("bearer" = [])),
    responses((status = 200, body = Located), (status = 422, body = ErrorBody)))]
async fn locate_grid(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<LocateQuery>,
) -> Result<Json<Located>> {
    user.require(Perm::TreeRead)?;
    Ok(Json(Located { grid: store::locate_grid(&s.db, &user.scope(), q.lon, q.lat).await? }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverlayQuery {
    pub kind: Option<OverlayKind>,
}

#[derive(Serialize, ToSchema)]
pub struct OverlayList {
    pub overlays: Vec<Overlay>,
}

/// 作战单元 and police zones anchored in your scope.
#[utoipa::path(get, path = "/api/v1/overlays", tag = "tree", params(OverlayQuery), security(("bearer" = [])),
    responses((status = 200, body = OverlayList)))]
async fn list_overlays(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<OverlayQuery>,
) -> Result<Json<OverlayList>> {
    user.require(Perm::TreeRead)?;
    Ok(Json(OverlayList { overlays: overlays::list(&s.db, &user.scope(), q.kind).await? }))
}

/// Create a 作战单元 or a police zone over some nodes.
#[utoipa::path(post, path = "/api/v1/overlays", tag = "tree", request_body = NewOverlay, security(("bearer" = [])),
    responses((status = 201, body = Overlay), (status = 422, body = ErrorBody)))]
async fn create_overlay(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(o): Json<NewOverlay>,
) -> Result<(StatusCode, Json<Overlay>)> {
    user.require(Perm::TreeWrite)?;
    let overlay = overlays::create(&s.db, &user.scope(), o).await?;
    let detail = serde_json::json!({"kind": overlay.kind, "name": overlay.name});
    audited(&s, &user, addr, action::OVERLAY_CREATE, Object::new("overlay", overlay.id), detail).await?;
    Ok((StatusCode::CREATED, Json(overlay)))
}

/// One overlay with the nodes it covers.
#[utoipa::path(get, path = "/api/v1/overlays/{id}", tag = "tree", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Overlay), (status = 404, body = ErrorBody)))]
async fn get_overlay(State(s): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<Overlay>> {
    user.require(Perm::TreeRead)?;
    Ok(Json(overlays::get(&s.db, &user.scope(), id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct CodeTableEntry {
    pub code: &'static str,
    pub name: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct CodeTables {
    pub gender: Vec<CodeTableEntry>,
    pub ethnicity: Vec<CodeTableEntry>,
    pub political_status: Vec<CodeTableEntry>,
    pub education: Vec<CodeTableEntry>,
}

/// The national code tables used by member forms (GB/T 2261.1, 3304, 4762, 4658).
#[utoipa::path(get, path = "/api/v1/code-tables", tag = "tree", security(("bearer" = [])),
    responses((status = 200, body = CodeTables)))]
async fn code_tables(_user: CurrentUser) -> Json<CodeTables> {
    use crate::kernel::code_tables::*;
    let conv = |t: &CodeTable| t.entries.iter().map(|(code, name)| CodeTableEntry { code, name }).collect();
    Json(CodeTables {
        gender: conv(&GENDER),
        ethnicity: conv(&ETHNICITY),
        political_status: conv(&POLITICAL_STATUS),
        education: conv(&EDUCATION),
    })
}
