//! System administration pages for accounts (系统管理): users, roles and
//! their permissions, API tokens, the security policy. Reads go through the
//! same scoped functions as the API; every change goes through
//! `auth::manage`, which checks the permission and writes the audit entry.
//! Pages answer 403 without the permission and 404 for what is out of scope.

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{extract::State, http::Uri, response::Response};
use serde::Deserialize;
use sqlx::Row;

use crate::web::{alert, forbidden, hx_redirect, login_or_redirect, page_error, render, t, to_login, Msg as _, Shell};
use crate::{
    auth::{
        manage,
        tokens::{self, IssuedToken, NewToken, TokenView},
        users::RoleInput,
        users::{self, GrantInput, NewUserRequest, RoleView, UserDetail, UserPatch, UserQuery, UserView},
    },
    kernel::{
        error::{Error, Result},
        perm::Perm,
        policy::SecurityPolicy,
        principal::CurrentUser,
        scope::Scope,
    },
    platform::db::Db,
    web::{AppState, ClientAddr},
};

// ---------- shared pieces ----------

/// One option of the node picker, indented by its depth below the scope.
pub struct NodeChoice {
    pub id: i64,
    pub label: String,
}

/// The nodes a user or token can be bound to: the scope's regions down to
/// communities (grids are chosen next to it, per community).
async fn node_choices(db: &Db, user: &CurrentUser) -> Result<Vec<NodeChoice>> {
    let (lo, hi) = user.scope().bounds();
    let rows = sqlx::query(
        "select id, name, depth, kind from nodes where path >= $1 and path < $2 and status = 'active' \
         and (kind in ('province', 'city', 'district', 'subdistrict', 'community') or path = $1) \
         order by path limit 3000",
    )
    .bind(&lo)
    .bind(&hi)
    .fetch_all(&db.pool)
    .await?;
    let top = rows.first().map(|r| r.try_get::<i64, _>("depth")).transpose()?.unwrap_or(0);
    rows.iter()
        .map(|r| {
            let depth: i64 = r.try_get("depth")?;
            let name: String = r.try_get("name")?;
            let indent = "　".repeat((depth - top).max(0) as usize);
            Ok(NodeChoice { id: r.try_get("id")?, label: format!("{indent}{name}") })
        })
        .collect()
}

pub struct Choice {
    pub id: i64,
    pub label: String,
}

/// What goes next to the chosen node: its grids (a user may be bound to
/// one, or hold a role at one) and the units whose work orders the user
/// could handle (not for a role at another node: the unit is the account's).
struct NodeFields {
    grids: Vec<Choice>,
    units: Vec<Choice>,
    grid: Option<i64>,
    unit: Option<i64>,
    /// The pickers of the form that grants a role at another node.
    grant: bool,
}

async fn node_fields_for(
    db: &Db,
    scope: &Scope,
    node_id: i64,
    grid: Option<i64>,
    unit: Option<i64>,
) -> Result<NodeFields> {
    let (lo, hi) = scope.bounds();
    let Some(node) = sqlx::query("select path from nodes where id = $1 and path >= $2 and path < $3")
        .bind(node_id)
        .bind(&lo)
        .bind(&hi)
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(NodeFields { grids: vec![], units: vec![], grid: None, unit: None, grant: false });
    };
    let path: String = node.try_get(0)?;
    let grids = sqlx::query(
        "select id, name from nodes where parent_id = $1 and kind = 'grid' and status = 'active' order by code",
    )
    .bind(node_id)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| Ok(Choice { id: r.try_get(0)?, label: r.try_get(1)? }))
    .collect::<Result<_>>()?;
    // The node's own unit, its grids', the centres above it (in scope) and
    // the departments.
    let units = sqlx::query(
        "select un.id, un.name from units un join nodes n on n.id = un.node_id \
         where un.status = 'active' and n.path >= $1 and n.path < $2 \
         and (un.node_id = $3 or n.parent_id = $3 or un.kind = 'department' or $4 like n.path || '%') \
         order by case un.kind when 'centre' then 0 when 'grid' then 1 else 2 end, n.path, un.code",
    )
    .bind(&lo)
    .bind(&hi)
    .bind(node_id)
    .bind(&path)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| Ok(Choice { id: r.try_get(0)?, label: r.try_get(1)? }))
    .collect::<Result<_>>()?;
    Ok(NodeFields { grids, units, grid, unit, grant: false })
}

impl NodeFields {
    fn is_grid(&self, id: &i64) -> bool {
        self.grid == Some(*id)
    }

    fn is_unit(&self, id: &i64) -> bool {
        self.unit == Some(*id)
    }
}

#[derive(Template)]
#[template(path = "admin/_node_fields.html")]
struct NodeFieldsFragment {
    fields: NodeFields,
}

#[derive(Deserialize)]
pub struct NodeFieldsQuery {
    node_id: Option<i64>,
    /// For the form that grants a role at another node.
    #[serde(default)]
    grant: bool,
}

/// htmx: the grid and unit pickers for the node chosen in a user form.
pub async fn node_fields(State(s): State<AppState>, user: CurrentUser, Query(q): Query<NodeFieldsQuery>) -> Response {
    if !user.can(Perm::UsersManage) {
        return forbidden();
    }
    match node_fields_for(&s.db, &user.scope(), q.node_id.unwrap_or(0), None, None).await {
        Ok(fields) => render(&NodeFieldsFragment { fields: NodeFields { grant: q.grant, ..fields } }),
        Err(e) => alert(&e),
    }
}

/// A role the caller may hand out: it grants nothing they lack.
pub struct RoleChoice {
    pub code: String,
    pub name: String,
    pub grantable: bool,
}

fn role_choices(roles: &[RoleView], user: &CurrentUser) -> Vec<RoleChoice> {
    roles
        .iter()
        .map(|r| RoleChoice {
            code: r.code.clone(),
            name: r.name.clone(),
            grantable: r.permissions.iter().all(|p| user.may_grant(*p)),
        })
        .collect()
}

/// Empty form fields are absent, not zero.
fn id_field(v: &Option<String>) -> Option<i64> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).and_then(|v| v.parse().ok())
}

fn status_of(u: &UserView) -> (&'static str, String) {
    if u.disabled {
        ("off", t("user.status.disabled").to_string())
    } else if let Some(until) = u.locked_until {
        ("locked", t("user.status.locked_until").replace("{}", &crate::web::when(&until)))
    } else {
        ("ok", t("user.status.active").to_string())
    }
}

// ---------- users ----------

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    shell: Shell,
    users: Vec<UserView>,
    total: i64,
    page: i64,
    pages: i64,
    q: String,
    role: String,
    roles: Vec<RoleChoice>,
    nodes: Vec<NodeChoice>,
    fields: NodeFields,
}

impl UsersPage {
    fn link(&self, page: i64) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            q.append_pair("q", &self.q);
        }
        if !self.role.is_empty() {
            q.append_pair("role", &self.role);
        }
        q.append_pair("page", &page.to_string());
        format!("/admin/users?{}", q.finish())
    }

    fn status(&self, u: &UserView) -> (&'static str, String) {
        status_of(u)
    }

    fn role_names(&self, u: &UserView) -> String {
        u.roles
            .iter()
            .map(|c| self.roles.iter().find(|r| &r.code == c).map(|r| r.name.as_str()).unwrap_or(c.as_str()))
            .collect::<Vec<_>>()
            .join("、")
    }

    /// "另有 N 个岗位" for users with roles at other nodes (in scope).
    fn other_posts(&self, u: &UserView) -> Option<String> {
        let mut nodes: Vec<i64> = u.grants.iter().map(|g| g.node_id).filter(|n| *n != u.node_id).collect();
        nodes.dedup();
        (!nodes.is_empty()).then(|| t("user.other_posts").replace("{}", &nodes.len().to_string()))
    }

    fn total_label(&self) -> String {
        t("audit.total").replace("{}", &self.total.to_string())
    }

    fn page_label(&self) -> String {
        t("audit.page").replacen("{}", &self.page.to_string(), 1).replacen("{}", &self.pages.to_string(), 1)
    }
}

pub async fn users(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<UserQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    if !user.can(Perm::UsersManage) {
        return Ok(forbidden());
    }
    let role = q.role.clone().filter(|r| !r.is_empty());
    let list = users::list(&s.db, &user.scope(), &UserQuery { role: role.clone(), ..q }).await?;
    let pages = ((list.total + list.per_page - 1) / list.per_page).max(1);
    let nodes = node_choices(&s.db, &user).await?;
    let first = nodes.first().map(|n| n.id).unwrap_or(user.node_id);
    let fields = node_fields_for(&s.db, &user.scope(), first, None, None).await?;
    let roles = role_choices(&users::roles(&s.db).await?, &user);
    Ok(render(&UsersPage {
        shell: Shell { user, active: "users" },
        users: list.users,
        total: list.total,
        page: list.page,
        pages,
        q: uri_query_value(&uri, "q"),
        role: role.unwrap_or_default(),
        roles,
        nodes,
        fields,
    }))
}

fn uri_query_value(uri: &Uri, key: &str) -> String {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    username: String,
    display_name: String,
    node_id: i64,
    grid_id: Option<String>,
    unit_id: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

impl UserForm {
    /// A grid chosen next to the community binds the user to the grid.
    fn node(&self) -> i64 {
        id_field(&self.grid_id).unwrap_or(self.node_id)
    }
}

#[derive(Template)]
#[template(path = "admin/_temporary_password.html")]
struct TemporaryPassword {
    user: UserDetail,
    password: String,
    created: bool,
}

/// htmx: creates a user and shows their temporary password, once.
pub async fn create_user(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<UserForm>,
) -> Response {
    let input = NewUserRequest {
        username: f.username.clone(),
        display_name: f.display_name.clone(),
        node_id: f.node(),
        roles: f.roles.clone(),
        grants: vec![],
        unit_id: id_field(&f.unit_id),
    };
    match manage::create_user(&s, &user, addr, input).await {
        Ok((created, password)) => render(&TemporaryPassword { user: created, password, created: true }),
        Err(e) => alert(&e),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    shell: Shell,
    u: UserDetail,
    roles: Vec<RoleChoice>,
    nodes: Vec<NodeChoice>,
    node_pick: i64,
    fields: NodeFields,
    /// The user's roles by node (in the caller's scope).
    posts: Vec<users::NodeRoles>,
    /// The grid picker of the form that grants a role at another node.
    grant_fields: NodeFields,
    saved: bool,
}

impl UserPage {
    fn status(&self) -> (&'static str, String) {
        status_of(&self.u)
    }

    fn holds(&self, code: &str) -> bool {
        self.u.roles.iter().any(|r| r == code)
    }

    fn role_names(&self) -> String {
        self.u
            .roles
            .iter()
            .map(|c| self.roles.iter().find(|r| &r.code == c).map(|r| r.name.as_str()).unwrap_or(c.as_str()))
            .collect::<Vec<_>>()
            .join("、")
    }

    fn login_label(&self, action: &str) -> String {
        crate::audit::action_label(action)
    }

    fn is_self(&self) -> bool {
        self.u.id == self.shell.user.id
    }
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn user(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<SavedQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    if !user.can(Perm::UsersManage) {
        return Ok(forbidden());
    }
    let scope = user.scope();
    let u = match users::get(&s.db, &scope, id).await {
        Ok(u) => u,
        Err(e) => return page_error(e, uri).await,
    };
    let mut nodes = node_choices(&s.db, &user).await?;
    // A user bound to a grid shows as its community plus the grid.
    let row = sqlx::query("select kind, parent_id, name from nodes where id = $1")
        .bind(u.node_id)
        .fetch_one(&s.db.pool)
        .await?;
    let kind: String = row.try_get(0)?;
    let parent: Option<i64> = row.try_get(1)?;
    let (node_pick, grid) = match (kind.as_str(), parent) {
        ("grid", Some(p)) if nodes.iter().any(|n| n.id == p) => (p, Some(u.node_id)),
        _ => (u.node_id, None),
    };
    if !nodes.iter().any(|n| n.id == node_pick) {
        nodes.push(NodeChoice { id: node_pick, label: row.try_get(2)? });
    }
    let fields = node_fields_for(&s.db, &scope, node_pick, grid, u.unit_id).await?;
    let first = nodes.first().map(|n| n.id).unwrap_or(user.node_id);
    let grant_fields = NodeFields { grant: true, ..node_fields_for(&s.db, &scope, first, None, None).await? };
    let roles = role_choices(&users::roles(&s.db).await?, &user);
    let posts = users::by_node(&u.grants);
    Ok(render(&UserPage {
        shell: Shell { user, active: "users" },
        u,
        roles,
        nodes,
        node_pick,
        fields,
        posts,
        grant_fields,
        saved: q.saved.is_some(),
    }))
}

/// htmx: saves name, node, unit and roles.
pub async fn update_user(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<UserForm>,
) -> Response {
    let unit = id_field(&f.unit_id);
    let patch = UserPatch {
        display_name: Some(f.display_name.clone()),
        node_id: Some(f.node()),
        roles: Some(f.roles.clone()),
        unit_id: unit,
        clear_unit: unit.is_none(),
        ..Default::default()
    };
    match manage::update_user(&s, &user, addr, id, patch).await {
        Ok(_) => hx_redirect(&format!("/admin/users/{id}?saved=1")),
        Err(e) => alert(&e),
    }
}

#[derive(Deserialize)]
pub struct GrantForm {
    node_id: i64,
    grid_id: Option<String>,
    role: String,
}

/// The user's roles at other nodes than home (in the caller's scope), changed
/// by `change`, saved through `manage` like every other edit of a user.
async fn change_grants(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    id: i64,
    change: impl FnOnce(&mut Vec<GrantInput>) -> Result<()>,
) -> Result<()> {
    user.require(Perm::UsersManage)?;
    let current = users::get(&s.db, &user.scope(), id).await?;
    let mut grants: Vec<GrantInput> = current
        .grants
        .iter()
        .filter(|g| g.node_id != current.node_id)
        .map(|g| GrantInput { role: g.role.clone(), node_id: g.node_id })
        .collect();
    change(&mut grants)?;
    manage::update_user(s, user, addr, id, UserPatch { grants: Some(grants), ..Default::default() }).await?;
    Ok(())
}

/// htmx: grants the user a role at another node (a grid chosen next to the
/// community is the node).
pub async fn add_grant(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<GrantForm>,
) -> Response {
    let node_id = id_field(&f.grid_id).unwrap_or(f.node_id);
    let add = |grants: &mut Vec<GrantInput>| {
        grants.push(GrantInput { role: f.role, node_id });
        Ok(())
    };
    match change_grants(&s, &user, addr, id, add).await {
        Ok(()) => hx_redirect(&format!("/admin/users/{id}?saved=1")),
        Err(e) => alert(&e),
    }
}

#[derive(Deserialize)]
pub struct GrantRemoval {
    node_id: i64,
    role: String,
}

/// htmx: takes one role at another node away.
pub async fn remove_grant(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<GrantRemoval>,
) -> Response {
    let remove = |grants: &mut Vec<GrantInput>| {
        let before = grants.len();
        grants.retain(|g| !(g.role == f.role && g.node_id == f.node_id));
        if grants.len() == before {
            return Err(Error::NotFound);
        }
        Ok(())
    };
    match change_grants(&s, &user, addr, id, remove).await {
        Ok(()) => hx_redirect(&format!("/admin/users/{id}?saved=1")),
        Err(e) => alert(&e),
    }
}

#[derive(Deserialize)]
pub struct StatusForm {
    op: String,
}

/// htmx: 停用, 启用 or 解除锁定.
pub async fn user_status(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<StatusForm>,
) -> Response {
    let patch = match f.op.as_str() {
        "disable" => UserPatch { disabled: Some(true), ..Default::default() },
        "enable" => UserPatch { disabled: Some(false), ..Default::default() },
        "unlock" => UserPatch { unlock: true, ..Default::default() },
        _ => return alert(&Error::invalid("user.status_unknown", "op")),
    };
    match manage::update_user(&s, &user, addr, id, patch).await {
        Ok(_) => hx_redirect(&format!("/admin/users/{id}?saved=1")),
        Err(e) => alert(&e),
    }
}

/// htmx: resets the password and shows the temporary one, once.
pub async fn reset_password(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    let r = async {
        let password = manage::reset_password(&s, &user, addr, id).await?;
        Ok::<_, Error>((users::get(&s.db, &user.scope(), id).await?, password))
    }
    .await;
    match r {
        Ok((u, password)) => render(&TemporaryPassword { user: u, password, created: false }),
        Err(e) => alert(&e),
    }
}

// ---------- roles ----------

/// One cell of the role matrix.
pub struct Cell {
    pub checked: bool,
    /// The caller cannot add this permission (they lack it themselves).
    pub disabled: bool,
    /// Kept whatever the form says (the administrator role's core).
    pub locked: bool,
}

pub struct MatrixRow {
    pub perm: Perm,
    pub cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
struct RolesPage {
    shell: Shell,
    roles: Vec<RoleView>,
    rows: Vec<MatrixRow>,
    grantable: Vec<Perm>,
}

pub async fn roles(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    if !user.can(Perm::RolesManage) {
        return Ok(forbidden());
    }
    let roles = users::roles(&s.db).await?;
    let rows = Perm::ALL
        .into_iter()
        .map(|perm| MatrixRow {
            perm,
            cells: roles
                .iter()
                .map(|r| {
                    let checked = r.permissions.contains(&perm);
                    Cell {
                        checked,
                        disabled: !checked && !user.may_grant(perm),
                        locked: r.code == "admin" && perm.is_admin_core(),
                    }
                })
                .collect(),
        })
        .collect();
    let grantable = Perm::ALL.into_iter().filter(|p| user.may_grant(*p)).collect();
    Ok(render(&RolesPage { shell: Shell { user, active: "roles" }, roles, rows, grantable }))
}

#[derive(Deserialize)]
pub struct RoleForm {
    code: Option<String>,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
}

impl RoleForm {
    fn input(self) -> RoleInput {
        RoleInput { code: self.code, name: self.name, description: self.description, permissions: self.permissions }
    }
}

pub async fn create_role(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<RoleForm>,
) -> Response {
    match manage::save_role(&s, &user, addr, None, f.input()).await {
        Ok(_) => hx_redirect("/admin/roles"),
        Err(e) => alert(&e),
    }
}

#[derive(Template)]
#[template(source = r#"<p class="notice" role="status">{{ message }}</p>"#, ext = "html")]
struct Notice {
    message: String,
}

pub async fn update_role(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(code): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    match manage::save_role(&s, &user, addr, Some(&code), f.input()).await {
        Ok(role) => render(&Notice { message: t("role.saved").replace("{}", &role.name) }),
        Err(e) => alert(&e),
    }
}

pub async fn delete_role(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(code): Path<String>,
) -> Response {
    match manage::delete_role(&s, &user, addr, &code).await {
        Ok(()) => hx_redirect("/admin/roles"),
        Err(e) => alert(&e),
    }
}

// ---------- API tokens ----------

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    shell: Shell,
    tokens: Vec<TokenView>,
    grantable: Vec<Perm>,
    nodes: Vec<NodeChoice>,
    max_days: i64,
}

impl TokensPage {
    fn perm_labels(&self, t: &TokenView) -> String {
        t.permissions.iter().map(|p| p.label()).collect::<Vec<_>>().join("、")
    }

    fn status_label(&self, status: &str) -> &'static str {
        t(&format!("token.status.{status}"))
    }
}

pub async fn tokens(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    if !user.can(Perm::TokensManage) {
        return Ok(forbidden());
    }
    let tokens = tokens::list(&s.db, &user.scope()).await?;
    let nodes = node_choices(&s.db, &user).await?;
    let grantable = Perm::ALL.into_iter().filter(|p| user.can(*p)).collect();
    Ok(render(&TokensPage {
        shell: Shell { user, active: "tokens" },
        tokens,
        grantable,
        nodes,
        max_days: s.policy().token_max_days,
    }))
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
    #[serde(default)]
    permissions: Vec<String>,
    node_id: i64,
    days: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/_token_issued.html")]
struct TokenIssued {
    issued: IssuedToken,
}

/// htmx: issues a token and shows it, once.
pub async fn issue_token(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<TokenForm>,
) -> Response {
    let input = NewToken {
        name: f.name,
        permissions: f.permissions,
        node_id: f.node_id,
        expires_in_days: id_field(&f.days).unwrap_or(0),
    };
    match manage::issue_token(&s, &user, addr, input).await {
        Ok(issued) => render(&TokenIssued { issued }),
        Err(e) => alert(&e),
    }
}

pub async fn revoke_token(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    match manage::revoke_token(&s, &user, addr, id).await {
        Ok(_) => hx_redirect("/admin/tokens"),
        Err(e) => alert(&e),
    }
}

// ---------- policy ----------

pub struct PolicyField {
    pub name: &'static str,
    pub value: i64,
    pub min: i64,
    pub max: i64,
}

#[derive(Template)]
#[template(path = "admin/policy.html")]
struct PolicyPage {
    shell: Shell,
    groups: Vec<(&'static str, Vec<PolicyField>)>,
    saved: bool,
}

impl PolicyPage {
    fn label(&self, f: &PolicyField) -> &'static str {
        t(&format!("policy.field.{}", f.name))
    }

    fn help(&self, f: &PolicyField) -> String {
        t(&format!("policy.help.{}", f.name)).replacen("{}", &f.min.to_string(), 1).replacen(
            "{}",
            &f.max.to_string(),
            1,
        )
    }

    fn unit(&self, f: &PolicyField) -> &'static str {
        t(&format!("policy.unit.{}", f.name))
    }
}

/// The settings in the groups the page shows them in.
fn policy_groups(p: &SecurityPolicy) -> Vec<(&'static str, Vec<PolicyField>)> {
    let fields = p.fields();
    let pick = |names: &[&str]| -> Vec<PolicyField> {
        fields
            .iter()
            .filter(|(n, ..)| names.contains(n))
            .map(|(name, value, min, max)| PolicyField { name, value: *value, min: *min, max: *max })
            .collect()
    };
    vec![
        ("policy.group.password", pick(&["password_min_length", "password_min_classes"])),
        (
            "policy.group.lockout",
            pick(&[
                "lockout_threshold",
                "lockout_minutes",
                "account_lockout_threshold",
                "address_max_failures",
                "address_window_minutes",
            ]),
        ),
        ("policy.group.session", pick(&["session_idle_minutes", "session_absolute_hours"])),
        ("policy.group.token", pick(&["token_max_days"])),
    ]
}

pub async fn policy(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<SavedQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    if !user.can(Perm::PolicyManage) {
        return Ok(forbidden());
    }
    let groups = policy_groups(&s.policy());
    Ok(render(&PolicyPage { shell: Shell { user, active: "policy" }, groups, saved: q.saved.is_some() }))
}

/// htmx: saves the policy; each field must be a whole number in its bounds.
pub async fn save_policy(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let r = async {
        let mut values = serde_json::Map::new();
        for (name, ..) in SecurityPolicy::default().fields() {
            let v: i64 = f
                .get(name)
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| Error::invalid("policy.not_a_number", name))?;
            values.insert(name.to_string(), v.into());
        }
        let policy: SecurityPolicy = serde_json::from_value(values.into()).map_err(anyhow::Error::from)?;
        // The form shows several settings: name the one out of bounds.
        for (name, v, lo, hi) in policy.fields() {
            if v < lo || v > hi {
                let label = t(&format!("policy.field.{name}"));
                return Err(Error::invalid_detail("policy.out_of_range", name, format!("{label}:{lo}–{hi}")));
            }
        }
        manage::set_policy(&s, &user, addr, policy).await
    }
    .await;
    match r {
        Ok(()) => hx_redirect("/admin/policy?saved=1"),
        Err(e) => alert(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels the pages build from codes exist in the catalogue.
    #[test]
    fn policy_and_token_labels_have_messages() {
        for (name, ..) in SecurityPolicy::default().fields() {
            for prefix in ["policy.field", "policy.help", "policy.unit"] {
                assert!(crate::kernel::i18n::has(&format!("{prefix}.{name}")), "catalogue lacks {prefix}.{name}");
            }
        }
        for (group, _) in policy_groups(&SecurityPolicy::default()) {
            assert!(crate::kernel::i18n::has(group));
        }
        let grouped: usize = policy_groups(&SecurityPolicy::default()).iter().map(|(_, f)| f.len()).sum();
        assert_eq!(grouped, SecurityPolicy::default().fields().len(), "every setting is on the page");
        for status in ["active", "expired", "revoked"] {
            assert!(crate::kernel::i18n::has(&format!("token.status.{status}")));
        }
        for p in Perm::ALL {
            assert!(crate::kernel::i18n::has(&format!("perm.{}", p.code())));
        }
    }
}
