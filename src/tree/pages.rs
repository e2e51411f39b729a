//! Pages of the tree: the tree panel, the map, the field app's home and
//! buildings, the resident portal's areas. Each gathers data through the
//! same scoped store functions the API uses, then renders a template.

use askama::Template;
use axum::{
    extract::State,
    http::Uri,
    response::{IntoResponse, Redirect, Response},
};

use crate::{
    kernel::{
        code_tables,
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
        scope::Scope,
    },
    tree::{
        ancestor_ids,
        store::{self, SubtreeQuery},
        Member, MemberRole, Node, NodeKind, SubtreeCounts,
    },
    web::{extract::page::Path, login_or_redirect, render, require_page, t, to_login, AppState, Msg as _, Shell},
};

/// One line of the tree panel: the path to the current node is expanded.
pub struct TreeRow {
    pub node: Node,
    pub indent: usize,
    pub open: bool,
    pub current: bool,
}

/// A child in the node's table, with its households and population summed
/// over its grids when it is a region.
pub struct ChildRow {
    pub node: Node,
    pub households: i64,
    pub population: i64,
}

/// One choice of a select: value and label.
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// What the administration forms of a node page need.
pub struct AdminForms {
    /// The kind a new child gets, if this node takes children.
    pub child_kind: Option<NodeKind>,
    /// Where the node may move: the other nodes of its parent's kind under
    /// the same grandparent, in scope.
    pub parents: Vec<Choice>,
    /// The node is the top of the caller's scope: it cannot move or retire.
    pub scope_top: bool,
    pub roles: Vec<Choice>,
    pub genders: Vec<Choice>,
    pub ethnicities: Vec<Choice>,
    pub political: Vec<Choice>,
    pub education: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "tree.html")]
struct TreePage {
    shell: Shell,
    rows: Vec<TreeRow>,
    node: Node,
    ancestors: Vec<Node>,
    counts: SubtreeCounts,
    members: Vec<Member>,
    children: Vec<ChildRow>,
    more_children: bool,
    admin: Option<AdminForms>,
    saved: bool,
}

impl TreePage {
    fn table_name(&self, table: &str, code: &str) -> &'static str {
        let t = match table {
            "gender" => &code_tables::GENDER,
            "ethnicity" => &code_tables::ETHNICITY,
            "political" => &code_tables::POLITICAL_STATUS,
            _ => &code_tables::EDUCATION,
        };
        t.name_of(code).unwrap_or("—")
    }

    fn grid_type_label(&self) -> &'static str {
        match self.node.grid_type {
            Some(crate::tree::GridType::Dedicated) => t("grid_type.dedicated"),
            Some(crate::tree::GridType::Comprehensive) => t("grid_type.comprehensive"),
            None => "",
        }
    }

    fn area_km2(&self) -> String {
        self.node.area_m2.map(|a| format!("{:.2}", a / 1e6)).unwrap_or_else(|| "—".into())
    }

    /// Grids and buildings carry their own figures; regions sum their grids'.
    fn own_figures(&self) -> bool {
        matches!(self.node.kind, NodeKind::Grid | NodeKind::Building)
    }

    fn attr(&self, key: &str) -> String {
        match self.node.attrs.get(key) {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => String::new(),
        }
    }

    fn opt(&self, v: &Option<i64>) -> String {
        v.map(|n| n.to_string()).unwrap_or_default()
    }

    fn child_label(&self) -> &'static str {
        self.admin.as_ref().and_then(|a| a.child_kind).map(|k| t(k.label_key())).unwrap_or("")
    }

    /// Where to start drawing a grid with no boundary: the nearest
    /// ancestor's centre.
    fn around(&self) -> String {
        std::iter::once(&self.node)
            .chain(self.ancestors.iter().rev())
            .find_map(|n| n.lon.zip(n.lat))
            .map(|(x, y)| format!("{x},{y}"))
            .unwrap_or_default()
    }

    fn child_is(&self, name: &str) -> bool {
        self.admin.as_ref().and_then(|a| a.child_kind).is_some_and(|k| k.as_str() == name)
    }

    fn region_child(&self) -> bool {
        self.admin.as_ref().and_then(|a| a.child_kind).is_some_and(|k| k.region_level().is_some())
    }

    fn code_placeholder(&self) -> String {
        // A region child's code starts with the parent's significant digits.
        let code = self.node.code.trim_end_matches("000");
        format!("{code}…")
    }
}

fn choices(t: &code_tables::CodeTable) -> Vec<Choice> {
    t.entries.iter().map(|(code, name)| Choice { value: code.to_string(), label: name.to_string() }).collect()
}

async fn admin_forms(s: &AppState, scope: &Scope, node: &Node) -> Result<AdminForms> {
    let scope_top = node.path == scope.path || node.parent_id.is_none();
    let mut parents = vec![];
    if !scope_top {
        let grandparent = node.parent_id.map(|p| ancestor_ids(&node.path).into_iter().rev().nth(1).unwrap_or(p));
        if let Some(gp) = grandparent.filter(|gp| Some(*gp) != node.parent_id) {
            if let Ok(list) = store::children(&s.db, scope, gp, false).await {
                parents = list
                    .into_iter()
                    .filter(|p| Some(p.id) != node.parent_id && Some(p.kind) == node.kind.parent_kind())
                    .map(|p| Choice { value: p.id.to_string(), label: p.name })
                    .collect();
            }
        }
    }
    let roles = [MemberRole::GridLeader, MemberRole::GridWorker, MemberRole::Assistant, MemberRole::BuildingSteward]
        .into_iter()
        .filter(|r| r.allowed_on(node.kind))
        .map(|r| Choice { value: r.as_str().to_string(), label: t(r.label_key()).to_string() })
        .collect();
    Ok(AdminForms {
        child_kind: node.kind.child_kind(),
        parents,
        scope_top,
        roles,
        genders: choices(&code_tables::GENDER),
        ethnicities: choices(&code_tables::ETHNICITY),
        political: choices(&code_tables::POLITICAL_STATUS),
        education: choices(&code_tables::EDUCATION),
    })
}

pub async fn tree_root(user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    Ok(Redirect::to(&format!("/tree/{}", user.node_id)).into_response())
}

const TREE_CHILD_LIMIT: usize = 200;

pub async fn tree_node(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::TreeRead);
    let scope = user.scope();
    let node = match store::get_node(&s.db, &scope, id).await {
        Ok(n) => n,
        Err(Error::NotFound) => return Ok(crate::web::not_found(uri).await),
        Err(e) => return Err(e),
    };
    let ancestors = store::ancestors(&s.db, &scope, &node).await?;
    // The tree panel: the scope's top, then each level's children down to
    // the current node's own children.
    let mut rows = vec![];
    let chain: Vec<&Node> = ancestors.iter().chain(std::iter::once(&node)).collect();
    let top = chain[0];
    rows.push(TreeRow { node: top.clone(), indent: 0, open: true, current: top.id == node.id });
    expand(&s, &scope, &chain, 0, &node, &mut rows).await?;
    let counts = store::subtree_counts(&s.db, &node).await?;
    let members = store::members(&s.db, &s.crypto, &scope, node.id).await?;
    let mut list = store::children(&s.db, &scope, node.id, false).await?;
    let more_children = list.len() > TREE_CHILD_LIMIT;
    list.truncate(TREE_CHILD_LIMIT);
    let mut children = Vec::with_capacity(list.len());
    for c in list {
        let (households, population) = match c.kind {
            NodeKind::Grid | NodeKind::Building => (c.households.unwrap_or(0), c.population.unwrap_or(0)),
            _ => {
                let sum = store::subtree_counts(&s.db, &c).await?;
                (sum.households, sum.population)
            }
        };
        children.push(ChildRow { node: c, households, population });
    }
    let admin =
        if user.can(Perm::TreeWrite) && node.is_active() { Some(admin_forms(&s, &scope, &node).await?) } else { None };
    let saved = uri.query().is_some_and(|q| q.split('&').any(|p| p == "saved=1"));
    Ok(render(&TreePage {
        shell: Shell { user, active: "tree" },
        rows,
        node,
        ancestors,
        counts,
        members,
        children,
        more_children,
        admin,
        saved,
    }))
}

/// Adds the children of `chain[level]` to the panel, recursing into the
/// one on the path to the current node. Buildings are listed on the node
/// page rather than in the panel, to keep the panel short.
async fn expand(
    s: &AppState,
    scope: &Scope,
    chain: &[&Node],
    level: usize,
    current: &Node,
    rows: &mut Vec<TreeRow>,
) -> Result<()> {
    let parent = chain[level];
    if parent.kind == NodeKind::Grid {
        return Ok(());
    }
    for child in store::children(&s.db, scope, parent.id, false).await? {
        let on_path = chain.get(level + 1).map(|n| n.id) == Some(child.id);
        rows.push(TreeRow { node: child.clone(), indent: level + 1, open: on_path, current: child.id == current.id });
        if on_path && level + 1 < chain.len() - 1 || (on_path && child.id == current.id && child.kind != NodeKind::Grid)
        {
            Box::pin(expand(s, scope, chain, level + 1, current, rows)).await?;
        }
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "map.html")]
struct MapPage {
    shell: Shell,
    root: Node,
    tile_url: String,
    /// The caller sees orders: their open ones are drawn over the grids.
    orders: bool,
}

pub async fn map(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::TreeRead);
    let root = store::get_node(&s.db, &user.scope(), user.node_id).await?;
    let tile_url = s.config.tile_url.clone().unwrap_or_default();
    let orders = user.can(Perm::OrdersRead);
    Ok(render(&MapPage { shell: Shell { user, active: "map" }, root, tile_url, orders }))
}

// ---------- field pages (/m/) ----------

#[derive(Template)]
#[template(path = "m/home.html")]
struct MobileHome {
    user: CurrentUser,
    active: &'static str,
    node: Node,
    counts: SubtreeCounts,
    members: Vec<Member>,
}

pub async fn mobile_home(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let scope = user.scope();
    let node = store::get_node(&s.db, &scope, user.node_id).await?;
    let counts = store::subtree_counts(&s.db, &node).await?;
    let members = store::members(&s.db, &s.crypto, &scope, node.id).await?;
    Ok(render(&MobileHome { user, active: "grid", node, counts, members }))
}

#[derive(Template)]
#[template(path = "m/buildings.html")]
struct MobileBuildings {
    user: CurrentUser,
    active: &'static str,
    node: Node,
    buildings: Vec<Node>,
}

impl MobileBuildings {
    fn attr(&self, b: &Node, key: &str) -> String {
        match b.attrs.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }
}

pub async fn mobile_buildings(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::TreeRead);
    let scope = user.scope();
    let node = store::get_node(&s.db, &scope, user.node_id).await?;
    let q = SubtreeQuery { kinds: Some("building".into()), limit: Some(500), ..Default::default() };
    let buildings = store::subtree(&s.db, &scope, node.id, &q).await?.nodes;
    Ok(render(&MobileBuildings { user, active: "buildings", node, buildings }))
}

#[derive(Template)]
#[template(path = "m/me.html")]
struct MobileMe {
    user: CurrentUser,
    active: &'static str,
}

impl MobileMe {
    fn roles(&self) -> String {
        self.user.role_names().join("、")
    }
}

pub async fn mobile_me(user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    Ok(render(&MobileMe { user, active: "me" }))
}

// ---------- resident portal (/portal/), no login ----------

#[derive(Template)]
#[template(path = "portal/home.html")]
struct PortalHome {
    areas: Vec<Node>,
}

pub async fn portal_home(State(s): State<AppState>) -> Result<Response> {
    let scope = Scope::everything();
    let mut areas = vec![];
    for root in store::scope_roots(&s.db, &scope).await? {
        areas.extend(store::children(&s.db, &scope, root.id, false).await?);
    }
    Ok(render(&PortalHome { areas }))
}

pub struct PublicGrid {
    pub node: Node,
    pub members: Vec<Member>,
}

#[derive(Template)]
#[template(path = "portal/area.html")]
struct PortalArea {
    node: Node,
    parent: Option<Node>,
    children: Vec<Node>,
    grids: Vec<PublicGrid>,
}

impl PortalArea {
    fn supervision_phone(&self, g: &Node) -> String {
        g.attrs.get("supervision_phone").and_then(|v| v.as_str()).unwrap_or("12345").to_string()
    }
}

/// The public notice of an area: its sub-areas, or for a community its
/// grids with their boundaries, workers and phone numbers, which local
/// regulations require to be posted publicly.
pub async fn portal_area(State(s): State<AppState>, uri: Uri, Path(id): Path<i64>) -> Result<Response> {
    let scope = Scope::everything();
    let node = match store::get_node(&s.db, &scope, id).await {
        Ok(n) if n.is_active() && !matches!(n.kind, NodeKind::Grid | NodeKind::Building) => n,
        Ok(_) | Err(Error::NotFound) => return Ok(crate::web::not_found(uri).await),
        Err(e) => return Err(e),
    };
    let parent = match node.parent_id {
        Some(p) => Some(store::get_node(&s.db, &scope, p).await?),
        None => None,
    };
    let children = store::children(&s.db, &scope, node.id, false).await?;
    let mut grids = vec![];
    if node.kind == NodeKind::Community {
        for g in &children {
            let members = store::members(&s.db, &s.crypto, &scope, g.id).await?;
            grids.push(PublicGrid { node: g.clone(), members });
        }
    }
    Ok(render(&PortalArea { node, parent, children, grids }))
}

/// The public map data of a community's grids (boundaries only).
pub async fn portal_area_geojson(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<axum::Json<serde_json::Value>> {
    let scope = Scope::everything();
    let node = store::get_node(&s.db, &scope, id).await?;
    if node.kind != NodeKind::Community || !node.is_active() {
        return Err(Error::NotFound);
    }
    Ok(axum::Json(store::feature_collection(&s.db, &scope, id, Some("grid")).await?))
}
