//! Page handlers. Each gathers data through the same scoped store functions
//! the API uses, then renders a template.

use crate::http::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{
    extract::State,
    http::{header, HeaderMap, Uri},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{render, t, to_login, Msg as _};
use crate::{
    auth::{self, CurrentUser, Perm},
    domain::code_tables,
    error::{Error, Result},
    http::{AppState, ClientAddr},
    tree::{
        store::{self, Scope, SubtreeQuery},
        Member, Node, NodeKind, SubtreeCounts,
    },
};

/// What every staff page shows around its content.
pub struct Shell {
    pub user: CurrentUser,
    pub active: &'static str,
}

impl Shell {
    pub fn roles(&self) -> String {
        self.user.role_names().join("、")
    }
}

// ---------- login ----------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<&'static str>,
    next: String,
    username: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only same-site relative targets, so the login cannot redirect elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

pub async fn login_form(Query(q): Query<NextQuery>) -> Response {
    render(&LoginPage { error: None, next: safe_next(q.next.as_deref()), username: String::new() })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Whether a login form was posted from one of our own pages. Another
/// site's form could otherwise log the victim's browser into the
/// attacker's account (login CSRF). Browsers name the page's origin in
/// `Origin` (or, failing that, `Sec-Fetch-Site` or `Referer`); it must be
/// this host. A request with none of them comes from no browser page.
fn posted_from_here(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = get("host") else {
        return ["origin", "sec-fetch-site", "referer"].iter().all(|h| get(h).is_none());
    };
    let authority = |url: &str| url.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or("").to_string());
    if let Some(origin) = get("origin") {
        return authority(origin).is_some_and(|a| a.eq_ignore_ascii_case(host));
    }
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    if let Some(referer) = get("referer") {
        return authority(referer).is_some_and(|a| a.eq_ignore_ascii_case(host));
    }
    true
}

pub async fn login_submit(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    if !posted_from_here(&headers) {
        let page = LoginPage { error: Some(t("auth.cross_site")), next, username: String::new() };
        return (axum::http::StatusCode::FORBIDDEN, render(&page)).into_response();
    }
    match auth::login_audited(&s, &f.username, &f.password, "browser", addr).await {
        Ok(done) => {
            let secure = if s.config.cookie_secure { "; Secure" } else { "" };
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                auth::SESSION_COOKIE,
                done.token,
                s.policy().absolute_ms() / 1000
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Err(e) => {
            let error = match e {
                Error::LoginFailed | Error::Locked | Error::Throttled => t(e.code()),
                _ => t("internal"),
            };
            let page = LoginPage { error: Some(error), next, username: f.username };
            (e.status(), render(&page)).into_response()
        }
    }
}

pub async fn logout(State(s): State<AppState>, user: CurrentUser, ClientAddr(addr): ClientAddr) -> Result<Response> {
    auth::logout_audited(&s.db, &user, addr).await?;
    let clear = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", auth::SESSION_COOKIE);
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, clear.parse().map_err(anyhow::Error::from)?);
    // htmx follows HX-Redirect; a plain form post follows the 303.
    headers.insert("HX-Redirect", "/login".parse().map_err(anyhow::Error::from)?);
    Ok((headers, Redirect::to("/login")).into_response())
}

// ---------- staff console ----------

pub struct ChildRow {
    pub node: Node,
    pub counts: SubtreeCounts,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    shell: Shell,
    root: Node,
    counts: SubtreeCounts,
    rows: Vec<ChildRow>,
    queues: Vec<(crate::orders::store::Queue, i64)>,
}

pub async fn home(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let scope = user.scope();
    let root = store::get_node(&s.db, &scope, user.node_id).await?;
    let counts = store::subtree_counts(&s.db, &root).await?;
    let mut rows = vec![];
    if root.kind != NodeKind::Building {
        for node in store::children(&s.db, &scope, root.id, false).await? {
            let counts = store::subtree_counts(&s.db, &node).await?;
            rows.push(ChildRow { node, counts });
        }
    }
    let queues =
        if user.can(Perm::OrdersRead) { crate::orders::store::queue_counts(&s.db, &user).await? } else { vec![] };
    Ok(render(&HomePage { shell: Shell { user, active: "home" }, root, counts, rows, queues }))
}

/// One line of the tree panel: the path to the current node is expanded.
pub struct TreeRow {
    pub node: Node,
    pub indent: usize,
    pub open: bool,
    pub current: bool,
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
    children: Vec<Node>,
    more_children: bool,
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
        Err(Error::NotFound) => return Ok(super::not_found(uri).await),
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
    let mut children = store::children(&s.db, &scope, node.id, false).await?;
    let more_children = children.len() > TREE_CHILD_LIMIT;
    children.truncate(TREE_CHILD_LIMIT);
    Ok(render(&TreePage {
        shell: Shell { user, active: "tree" },
        rows,
        node,
        ancestors,
        counts,
        members,
        children,
        more_children,
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
        Ok(_) | Err(Error::NotFound) => return Ok(super::not_found(uri).await),
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

#[cfg(test)]
mod login_origin_tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_our_own_pages_may_post_the_login_form() {
        let host = ("host", "fq.example.cn");
        assert!(posted_from_here(&headers(&[host, ("origin", "https://fq.example.cn")])));
        assert!(!posted_from_here(&headers(&[host, ("origin", "https://evil.example")])));
        assert!(!posted_from_here(&headers(&[host, ("origin", "null")])));
        assert!(!posted_from_here(&headers(&[host, ("origin", "https://fq.example.cn.evil.example")])));
        assert!(posted_from_here(&headers(&[host, ("sec-fetch-site", "same-origin")])));
        assert!(!posted_from_here(&headers(&[host, ("sec-fetch-site", "cross-site")])));
        assert!(posted_from_here(&headers(&[host, ("referer", "https://fq.example.cn/login?next=/")])));
        assert!(!posted_from_here(&headers(&[host, ("referer", "https://evil.example/fq.example.cn")])));
        assert!(posted_from_here(&headers(&[host])), "no browser page: a script or an old client");
    }
}
