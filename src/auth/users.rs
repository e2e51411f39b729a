//! Users and roles as administrators manage them, and a user's own
//! password, sessions and acting node. Scope: administrators manage users
//! bound to nodes in their subtree, grant roles only at nodes in it, and
//! can hand out only permissions they hold themselves.
//!
//! A user holds roles at one or more nodes: `roles` at the home node the
//! account is bound to, `grants` at others. A session acts at one of them
//! at a time (`switch_node`).

use rand::{seq::SliceRandom, Rng};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::{password, session_id, CurrentUser, Perm};
use crate::{
    kernel::{
        error::{Error, Result},
        scope::Scope,
    },
    platform::db::{now_ms, Db},
    web::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub node_id: i64,
    pub node_name: String,
    pub unit_id: Option<i64>,
    pub unit_name: Option<String>,
    /// The roles held at the home node.
    pub roles: Vec<String>,
    /// Every role held at a node in your scope, the home node's included, in
    /// tree order (roles held outside your scope are not shown).
    pub grants: Vec<GrantView>,
    pub disabled: bool,
    /// Set while the account is locked after failed logins.
    pub locked_until: Option<i64>,
    pub must_change_password: bool,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LoginRecord {
    pub at: i64,
    /// `session.login`, `session.login_failed` …
    pub action: String,
    pub client_addr: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    /// The last logins and failed attempts, newest first (from the audit log).
    pub recent_logins: Vec<LoginRecord>,
}

impl std::ops::Deref for UserDetail {
    type Target = UserView;
    fn deref(&self) -> &UserView {
        &self.user
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Part of the username or name.
    pub q: Option<String>,
    /// Holders of this role only.
    pub role: Option<String>,
    pub page: Option<i64>,
}

/// A role held at a node.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct GrantView {
    pub role: String,
    /// The role's display name, e.g. 网格员.
    pub role_name: String,
    pub node_id: i64,
    pub node_name: String,
}

/// A role to hold at a node other than the home node.
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantInput {
    pub role: String,
    /// A node inside your scope.
    pub node_id: i64,
}

/// A user's roles at one node, for pages.
pub struct NodeRoles {
    pub node_id: i64,
    pub node_name: String,
    pub roles: Vec<GrantView>,
}

impl NodeRoles {
    pub fn role_names(&self) -> String {
        self.roles.iter().map(|g| g.role_name.as_str()).collect::<Vec<_>>().join("、")
    }
}

/// Grants (in tree order) grouped by node.
pub fn by_node(grants: &[GrantView]) -> Vec<NodeRoles> {
    let mut out: Vec<NodeRoles> = vec![];
    for g in grants {
        match out.last_mut() {
            Some(last) if last.node_id == g.node_id => last.roles.push(g.clone()),
            _ => out.push(NodeRoles { node_id: g.node_id, node_name: g.node_name.clone(), roles: vec![g.clone()] }),
        }
    }
    out
}

/// At most this many roles at other nodes per user.
const MAX_GRANTS: usize = 50;

#[derive(Deserialize, ToSchema)]
pub struct NewUserRequest {
    pub username: String,
    pub display_name: String,
    /// The home node: the account's place, where its sessions start acting.
    pub node_id: i64,
    /// The roles at the home node.
    pub roles: Vec<String>,
    /// Roles at other nodes (e.g. 网格员 of a grid besides the community post).
    #[serde(default)]
    pub grants: Vec<GrantInput>,
    /// The unit whose work orders the user handles (centre, grid or department).
    pub unit_id: Option<i64>,
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    /// A new home node; the roles at the old one move with it, roles at other
    /// nodes stay.
    pub node_id: Option<i64>,
    /// The roles at the home node.
    pub roles: Option<Vec<String>>,
    /// The roles at other nodes in your scope, replacing those held there
    /// now (roles outside your scope are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<GrantInput>>,
    pub unit_id: Option<i64>,
    /// Remove the user's unit.
    #[serde(default)]
    pub clear_unit: bool,
    pub disabled: Option<bool>,
    /// Lift a lockout now.
    #[serde(default)]
    pub unlock: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    pub code: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<Perm>,
    /// How many users hold the role.
    pub users: i64,
}

const PER_PAGE: i64 = 50;

/// A readable temporary password that meets any allowed policy: four
/// groups of lower, upper, digits and a separator (e.g. `kmpt-QWRT-4829`).
pub fn temporary_password() -> String {
    let mut rng = rand::thread_rng();
    let pick = |set: &[u8], n: usize, rng: &mut rand::rngs::ThreadRng| -> String {
        (0..n).map(|_| *set.choose(rng).expect("non-empty") as char).collect()
    };
    let lower = pick(b"abcdefghjkmnpqrstuvwxyz", 4, &mut rng);
    let upper = pick(b"ABCDEFGHJKLMNPQRSTUVWXYZ", 4, &mut rng);
    let digits = format!("{:04}", rng.gen_range(0..10_000));
    format!("{lower}-{upper}-{digits}")
}

fn valid_username(u: &str) -> bool {
    (3..=32).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_display_name(n: &str) -> bool {
    let n = n.trim();
    !n.is_empty() && n.chars().count() <= 50 && !n.chars().any(char::is_control)
}

const USER_SQL: &str = "select u.id, u.username, u.display_name, u.node_id, n.name as node_name, u.unit_id, \
     un.name as unit_name, u.disabled, u.locked_until, u.must_change_password, u.last_login_at, u.created_at \
     from users u join nodes n on n.id = u.node_id left join units un on un.id = u.unit_id";

fn user_from_row(r: &sqlx::any::AnyRow, grants: Vec<GrantView>, now: i64) -> Result<UserView> {
    let locked: Option<i64> = r.try_get("locked_until")?;
    let node_id: i64 = r.try_get("node_id")?;
    let mut roles: Vec<String> = grants.iter().filter(|g| g.node_id == node_id).map(|g| g.role.clone()).collect();
    roles.sort();
    Ok(UserView {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        node_id,
        node_name: r.try_get("node_name")?,
        unit_id: r.try_get("unit_id")?,
        unit_name: r.try_get("unit_name")?,
        roles,
        grants,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        locked_until: locked.filter(|t| *t > now),
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        last_login_at: r.try_get("last_login_at")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The roles the users hold at nodes in the scope, by user, in tree order
/// (by code: children's codes extend their parent's).
async fn grants_of(db: &Db, scope: &Scope, ids: &[i64]) -> Result<std::collections::HashMap<i64, Vec<GrantView>>> {
    let mut out: std::collections::HashMap<i64, Vec<GrantView>> = Default::default();
    if ids.is_empty() {
        return Ok(out);
    }
    let (lo, hi) = scope.bounds();
    // Ids are numbers from our own query.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let rows = sqlx::query(&format!(
        "select ur.user_id, ur.role_code, r.name as role_name, ur.node_id, n.name as node_name \
         from user_roles ur join roles r on r.code = ur.role_code join nodes n on n.id = ur.node_id \
         where ur.user_id in ({list}) and n.path >= $1 and n.path < $2 order by ur.user_id, n.code, ur.role_code"
    ))
    .bind(lo)
    .bind(hi)
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        out.entry(r.try_get("user_id")?).or_default().push(GrantView {
            role: r.try_get("role_code")?,
            role_name: r.try_get("role_name")?,
            node_id: r.try_get("node_id")?,
            node_name: r.try_get("node_name")?,
        });
    }
    Ok(out)
}

pub async fn list(db: &Db, scope: &Scope, q: &UserQuery) -> Result<UserList> {
    let (lo, hi) = scope.bounds();
    let page = q.page.unwrap_or(1).max(1);
    let mut filter = String::from("n.path >= $1 and n.path < $2");
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| {
        let escaped: String =
            s.chars().take(50).flat_map(|c| if "%_\\".contains(c) { vec!['\\', c] } else { vec![c] }).collect();
        format!("%{escaped}%")
    });
    if search.is_some() {
        filter.push_str(" and (u.username like $3 escape '\\' or u.display_name like $3 escape '\\')");
    }
    let role_param = if search.is_some() { 4 } else { 3 };
    if q.role.is_some() {
        filter.push_str(&format!(
            " and exists (select 1 from user_roles r join nodes rn on rn.id = r.node_id where r.user_id = u.id \
             and r.role_code = ${role_param} and rn.path >= $1 and rn.path < $2)"
        ));
    }
    let count_sql = format!("select count(*) from users u join nodes n on n.id = u.node_id where {filter}");
    let page_sql = format!(
        "{USER_SQL} where {filter} order by n.path, u.username limit {PER_PAGE} offset {}",
        (page - 1).saturating_mul(PER_PAGE)
    );
    let mut count = sqlx::query(&count_sql).bind(&lo).bind(&hi);
    let mut rows = sqlx::query(&page_sql).bind(&lo).bind(&hi);
    if let Some(s) = &search {
        count = count.bind(s.clone());
        rows = rows.bind(s.clone());
    }
    if let Some(r) = &q.role {
        count = count.bind(r.clone());
        rows = rows.bind(r.clone());
    }
    let total: i64 = count.fetch_one(&db.pool).await?.try_get(0)?;
    let rows = rows.fetch_all(&db.pool).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get("id")).collect::<std::result::Result<_, _>>()?;
    let mut grants = grants_of(db, scope, &ids).await?;
    let now = now_ms();
    let users = rows
        .iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            user_from_row(r, grants.remove(&id).unwrap_or_default(), now)
        })
        .collect::<Result<_>>()?;
    Ok(UserList { users, total, page, per_page: PER_PAGE })
}

/// One user in scope, with recent logins; out of scope is not found.
pub async fn get(db: &Db, scope: &Scope, id: i64) -> Result<UserDetail> {
    let (lo, hi) = scope.bounds();
    let row = sqlx::query(&format!("{USER_SQL} where u.id = $1 and n.path >= $2 and n.path < $3"))
        .bind(id)
        .bind(lo)
        .bind(hi)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    let grants = grants_of(db, scope, &[id]).await?.remove(&id).unwrap_or_default();
    let user = user_from_row(&row, grants, now_ms())?;
    let recent_logins = sqlx::query(
        "select at, action, client_addr from audit_log where object_type = 'user' and object_id = $1 \
         and action in ('session.login', 'session.login_failed', 'session.locked') order by id desc limit 10",
    )
    .bind(id.to_string())
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| Ok(LoginRecord { at: r.try_get(0)?, action: r.try_get(1)?, client_addr: r.try_get(2)? }))
    .collect::<Result<_>>()?;
    Ok(UserDetail { user, recent_logins })
}

/// A node inside the caller's scope (else an error on `field`).
async fn node_in_scope(db: &Db, scope: &Scope, node_id: i64, field: &str) -> Result<()> {
    let (lo, hi) = scope.bounds();
    sqlx::query("select 1 from nodes where id = $1 and status = 'active' and path >= $2 and path < $3")
        .bind(node_id)
        .bind(lo)
        .bind(hi)
        .fetch_optional(&db.pool)
        .await?
        .map(|_| ())
        .ok_or_else(|| Error::invalid("tree.node_not_found", field))
}

/// A unit whose node is inside the caller's scope.
async fn unit_in_scope(db: &Db, scope: &Scope, unit_id: i64) -> Result<()> {
    let (lo, hi) = scope.bounds();
    sqlx::query(
        "select 1 from units un join nodes n on n.id = un.node_id where un.id = $1 and un.status = 'active' \
         and n.path >= $2 and n.path < $3",
    )
    .bind(unit_id)
    .bind(lo)
    .bind(hi)
    .fetch_optional(&db.pool)
    .await?
    .map(|_| ())
    .ok_or_else(|| Error::invalid("order.unit_unknown", "unit_id"))
}

/// The role exists, and if newly granted (not `held` already at that node)
/// it gives nothing the caller lacks: keeping a role escalates nothing.
async fn check_role(db: &Db, caller: &CurrentUser, role: &str, held: bool, field: &str) -> Result<()> {
    if sqlx::query("select 1 from roles where code = $1").bind(role).fetch_optional(&db.pool).await?.is_none() {
        return Err(Error::invalid_detail("user.role_unknown", field, role));
    }
    if held {
        return Ok(());
    }
    let perms = sqlx::query("select permission from role_permissions where role_code = $1")
        .bind(role)
        .fetch_all(&db.pool)
        .await?;
    for p in perms {
        let code: String = p.try_get(0)?;
        if Perm::parse(&code).is_some_and(|p| !caller.may_grant(p)) {
            return Err(Error::invalid_detail("token.permission_not_held", field, code));
        }
    }
    Ok(())
}

/// The roles at the home node: at least one, each passing `check_role`
/// (`held`: those the user holds there now).
async fn check_roles(db: &Db, caller: &CurrentUser, roles: &[String], held: &[String]) -> Result<Vec<String>> {
    let mut roles: Vec<String> = roles.iter().map(|r| r.trim().to_string()).collect();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(Error::invalid("user.roles_required", "roles"));
    }
    for role in &roles {
        check_role(db, caller, role, held.contains(role), "roles").await?;
    }
    Ok(roles)
}

/// The roles at other nodes than `home`: each node in the caller's scope,
/// each role passing `check_role` (`held`: what the user holds now).
async fn check_grants(
    db: &Db,
    caller: &CurrentUser,
    home: i64,
    grants: &[GrantInput],
    held: &[GrantView],
) -> Result<Vec<GrantInput>> {
    let mut grants: Vec<GrantInput> =
        grants.iter().map(|g| GrantInput { role: g.role.trim().to_string(), node_id: g.node_id }).collect();
    grants.sort();
    grants.dedup();
    if grants.len() > MAX_GRANTS {
        return Err(Error::invalid_detail("user.too_many_grants", "grants", MAX_GRANTS.to_string()));
    }
    let scope = caller.scope();
    for g in &grants {
        if g.node_id == home {
            return Err(Error::invalid("user.grant_at_home", "grants"));
        }
        node_in_scope(db, &scope, g.node_id, "grants").await?;
        let kept = held.iter().any(|h| h.role == g.role && h.node_id == g.node_id);
        check_role(db, caller, &g.role, kept, "grants").await?;
    }
    Ok(grants)
}

async fn insert_grants(conn: &mut sqlx::AnyConnection, user_id: i64, grants: &[GrantInput]) -> Result<()> {
    for g in grants {
        sqlx::query("insert into user_roles (user_id, role_code, node_id) values ($1,$2,$3)")
            .bind(user_id)
            .bind(&g.role)
            .bind(g.node_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn create(s: &AppState, caller: &CurrentUser, input: NewUserRequest) -> Result<(UserDetail, String)> {
    let db = &s.db;
    let username = input.username.trim();
    if !valid_username(username) {
        return Err(Error::invalid("user.username_invalid", "username"));
    }
    if !valid_display_name(&input.display_name) {
        return Err(Error::invalid("user.display_name_invalid", "display_name"));
    }
    let scope = caller.scope();
    node_in_scope(db, &scope, input.node_id, "node_id").await?;
    if let Some(u) = input.unit_id {
        unit_in_scope(db, &scope, u).await?;
    }
    let roles = check_roles(db, caller, &input.roles, &[]).await?;
    let grants = check_grants(db, caller, input.node_id, &input.grants, &[]).await?;
    let temp = temporary_password();
    let hash = password::hash(temp.clone()).await;
    let role_refs: Vec<&str> = roles.iter().map(String::as_str).collect();
    let id = {
        let _w = db.write_lock().await;
        let mut tx = db.begin_write().await?;
        let id = super::create_user(
            &mut tx,
            super::NewUser {
                username,
                display_name: input.display_name.trim(),
                password_hash: &hash,
                node_id: input.node_id,
                roles: &role_refs,
                must_change_password: true,
            },
        )
        .await?;
        if let Some(u) = input.unit_id {
            sqlx::query("update users set unit_id = $1 where id = $2").bind(u).bind(id).execute(&mut *tx).await?;
        }
        insert_grants(&mut tx, id, &grants).await?;
        tx.commit().await?;
        id
    };
    Ok((get(db, &scope, id).await?, temp))
}

pub async fn update(s: &AppState, caller: &CurrentUser, id: i64, patch: UserPatch) -> Result<UserDetail> {
    let db = &s.db;
    let scope = caller.scope();
    let current = get(db, &scope, id).await?;
    if let Some(n) = &patch.display_name {
        if !valid_display_name(n) {
            return Err(Error::invalid("user.display_name_invalid", "display_name"));
        }
    }
    if let Some(n) = patch.node_id {
        node_in_scope(db, &scope, n, "node_id").await?;
    }
    if let Some(u) = patch.unit_id {
        unit_in_scope(db, &scope, u).await?;
    }
    let roles = match &patch.roles {
        Some(r) => Some(check_roles(db, caller, r, &current.roles).await?),
        None => None,
    };
    let node_id = patch.node_id.unwrap_or(current.node_id);
    let grants = match &patch.grants {
        Some(g) => Some(check_grants(db, caller, node_id, g, &current.grants).await?),
        None => None,
    };
    if patch.disabled == Some(true) && id == caller.id {
        return Err(Error::invalid("user.cannot_disable_self", "disabled"));
    }
    let now = now_ms();
    {
        let _w = db.write_lock().await;
        let mut tx = db.begin_write().await?;
        if let Some(n) = &patch.display_name {
            sqlx::query("update users set display_name = $1 where id = $2")
                .bind(n.trim())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if patch.clear_unit {
            sqlx::query("update users set unit_id = null where id = $1").bind(id).execute(&mut *tx).await?;
        } else if let Some(u) = patch.unit_id {
            sqlx::query("update users set unit_id = $1 where id = $2").bind(u).bind(id).execute(&mut *tx).await?;
        }
        if let Some(d) = patch.disabled {
            sqlx::query("update users set disabled = $1 where id = $2")
                .bind(d as i64)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if d {
                sqlx::query("delete from sessions where user_id = $1").bind(id).execute(&mut *tx).await?;
            }
        }
        if patch.unlock {
            sqlx::query("update users set locked_until = null, failed_logins = 0 where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            super::lockout::unlock(&mut tx, &current.username).await?;
        }
        if patch.node_id.is_some() || roles.is_some() {
            // The home roles move with the home node; what the user held at
            // the new home before is replaced by them, roles elsewhere stay.
            let roles = roles.unwrap_or_else(|| current.roles.clone());
            sqlx::query("update users set node_id = $1 where id = $2").bind(node_id).bind(id).execute(&mut *tx).await?;
            sqlx::query("delete from user_roles where user_id = $1 and node_id in ($2, $3)")
                .bind(id)
                .bind(current.node_id)
                .bind(node_id)
                .execute(&mut *tx)
                .await?;
            let home: Vec<GrantInput> = roles.iter().map(|r| GrantInput { role: r.clone(), node_id }).collect();
            insert_grants(&mut tx, id, &home).await?;
        }
        if let Some(grants) = &grants {
            let (lo, hi) = scope.bounds();
            sqlx::query(
                "delete from user_roles where user_id = $1 and node_id <> $2 \
                 and node_id in (select id from nodes where path >= $3 and path < $4)",
            )
            .bind(id)
            .bind(node_id)
            .bind(lo)
            .bind(hi)
            .execute(&mut *tx)
            .await?;
            insert_grants(&mut tx, id, grants).await?;
        }
        sqlx::query("update users set updated_at = $1 where id = $2").bind(now).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    // Roles at any node, node, unit, name or being disabled: whatever
    // changed, their sessions and tokens are read afresh on the next request
    // (a session acting at a node where no role is left falls back home).
    db.sessions.forget_user(id);
    get(db, &scope, id).await
}

pub async fn reset_password(s: &AppState, caller: &CurrentUser, id: i64) -> Result<String> {
    let db = &s.db;
    let user = get(db, &caller.scope(), id).await?;
    let temp = temporary_password();
    let hash = password::hash(temp.clone()).await;
    let _w = db.write_lock().await;
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "update users set password_hash = $1, must_change_password = 1, failed_logins = 0, locked_until = null, \
         updated_at = $2 where id = $3",
    )
    .bind(hash)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    super::lockout::unlock(&mut tx, &user.username).await?;
    sqlx::query("delete from sessions where user_id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    db.sessions.forget_user(id);
    Ok(temp)
}

// ---------- own password and sessions ----------

pub async fn change_own_password(s: &AppState, user: &CurrentUser, current: &str, new: &str) -> Result<()> {
    if user.token_id.is_some() {
        return Err(Error::Forbidden);
    }
    let db = &s.db;
    let hash: String = sqlx::query("select password_hash from users where id = $1")
        .bind(user.id)
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
    if !password::verify(current.to_string(), hash).await {
        return Err(Error::invalid("password.wrong_current", "current_password"));
    }
    s.policy().check_password(new, &user.username).map_err(|e| match e {
        Error::Invalid { code, detail, .. } => Error::Invalid { code, field: Some("new_password".into()), detail },
        e => e,
    })?;
    if new == current {
        return Err(Error::invalid("password.same_as_old", "new_password"));
    }
    let new_hash = password::hash(new.to_string()).await;
    let now = now_ms();
    let _w = db.write_lock().await;
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "update users set password_hash = $1, must_change_password = 0, password_changed_at = $2, updated_at = $2 \
         where id = $3",
    )
    .bind(new_hash)
    .bind(now)
    .bind(user.id)
    .execute(&mut *tx)
    .await?;
    // Anyone else holding a session with the old password is out.
    sqlx::query("delete from sessions where user_id = $1 and token_hash <> $2")
        .bind(user.id)
        .bind(&user.token_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    db.sessions.forget_user(user.id);
    Ok(())
}

pub async fn sessions(s: &AppState, user: &CurrentUser) -> Result<Vec<SessionView>> {
    let policy = s.policy();
    let now = now_ms();
    let rows = sqlx::query(
        "select token_hash, kind, created_at, last_seen_at, expires_at, client_addr from sessions \
         where user_id = $1 order by last_seen_at desc",
    )
    .bind(user.id)
    .fetch_all(&s.db.pool)
    .await?;
    let mut out = vec![];
    for r in rows {
        let th: String = r.try_get(0)?;
        let created: i64 = r.try_get(2)?;
        let last_seen: i64 = r.try_get(3)?;
        let expires: i64 = r.try_get::<i64, _>(4)?.min(created + policy.absolute_ms());
        if now > expires || now - last_seen > policy.idle_ms() {
            continue;
        }
        out.push(SessionView {
            id: session_id(&th),
            kind: r.try_get(1)?,
            created_at: created,
            last_seen_at: last_seen,
            expires_at: expires,
            client_addr: r.try_get(5)?,
            current: th == user.token_hash,
        });
    }
    Ok(out)
}

/// Ends a user's sessions; returns how many.
pub async fn end_sessions(db: &Db, user_id: i64) -> Result<u64> {
    let _w = db.write_lock().await;
    let n =
        sqlx::query("delete from sessions where user_id = $1").bind(user_id).execute(&db.pool).await?.rows_affected();
    db.sessions.forget_user(user_id);
    Ok(n)
}

pub async fn end_own_session(db: &Db, user: &CurrentUser, id: &str) -> Result<()> {
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound);
    }
    let _w = db.write_lock().await;
    let n = sqlx::query("delete from sessions where user_id = $1 and token_hash like $2")
        .bind(user.id)
        .bind(format!("{}%", id.to_ascii_lowercase()))
        .execute(&db.pool)
        .await?
        .rows_affected();
    db.sessions.forget_user(user.id);
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Every role the caller holds, wherever (their own account page).
pub async fn own_grants(db: &Db, user: &CurrentUser) -> Result<Vec<GrantView>> {
    Ok(grants_of(db, &Scope::everything(), &[user.id]).await?.remove(&user.id).unwrap_or_default())
}

/// Makes the caller's session act at another node where they hold a role
/// (切换岗位); from the next request on, its roles and scope are that
/// node's. A node without such a role is not found, whatever it is, so
/// nothing is told about other nodes. API tokens keep their own node.
pub async fn switch_node(db: &Db, user: &CurrentUser, node_id: i64) -> Result<()> {
    if user.token_id.is_some() {
        return Err(Error::Forbidden);
    }
    let _w = db.write_lock().await;
    let home: i64 = sqlx::query(
        "select u.node_id from users u where u.id = $1 \
         and exists (select 1 from user_roles g where g.user_id = u.id and g.node_id = $2)",
    )
    .bind(user.id)
    .bind(node_id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(Error::NotFound)?
    .try_get(0)?;
    // Acting at home is stored as no choice, so that it follows the account
    // when its home node changes.
    sqlx::query("update sessions set active_node_id = $1 where token_hash = $2")
        .bind((node_id != home).then_some(node_id))
        .bind(&user.token_hash)
        .execute(&db.pool)
        .await?;
    db.sessions.forget(&user.token_hash);
    Ok(())
}

// ---------- roles ----------

pub async fn roles(db: &Db) -> Result<Vec<RoleView>> {
    let rows = sqlx::query(
        "select r.code, r.name, r.description, r.builtin, \
         (select count(distinct ur.user_id) from user_roles ur where ur.role_code = r.code) as users \
         from roles r order by r.builtin desc, r.code",
    )
    .fetch_all(&db.pool)
    .await?;
    let perms = sqlx::query("select role_code, permission from role_permissions").fetch_all(&db.pool).await?;
    let mut by_role: std::collections::HashMap<String, Vec<Perm>> = Default::default();
    for p in perms {
        if let Some(perm) = Perm::parse(&p.try_get::<String, _>(1)?) {
            by_role.entry(p.try_get(0)?).or_default().push(perm);
        }
    }
    rows.iter()
        .map(|r| {
            let code: String = r.try_get("code")?;
            let mut permissions = by_role.remove(&code).unwrap_or_default();
            permissions.sort();
            let builtin = r.try_get::<i64, _>("builtin")? != 0;
            let name = r.try_get("name")?;
            Ok(RoleView {
                code,
                name,
                description: r.try_get("description")?,
                builtin,
                permissions,
                users: r.try_get("users")?,
            })
        })
        .collect()
}

fn valid_role_code(c: &str) -> bool {
    (2..=32).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Creates (`code` None) or updates a role.
pub async fn save_role(db: &Db, caller: &CurrentUser, code: Option<&str>, input: RoleInput) -> Result<RoleView> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 30 {
        return Err(Error::invalid("role.name_invalid", "name"));
    }
    let description: String = input.description.trim().chars().take(200).collect();
    // A role may keep permissions the caller lacks; only new ones must be
    // the caller's own, so editing a role never escalates the editor.
    let held: Vec<String> = match code {
        Some(c) => sqlx::query("select permission from role_permissions where role_code = $1")
            .bind(c)
            .fetch_all(&db.pool)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?,
        None => vec![],
    };
    let mut perms = vec![];
    for c in &input.permissions {
        let p = Perm::parse(c).ok_or_else(|| Error::invalid_detail("role.permission_unknown", "permissions", c))?;
        if !caller.may_grant(p) && !held.contains(c) {
            return Err(Error::invalid_detail("token.permission_not_held", "permissions", c));
        }
        perms.push(p);
    }
    perms.sort();
    perms.dedup();
    let now = now_ms();
    let code_param_missing = code.is_none();
    let code = match code {
        Some(c) => {
            if sqlx::query("select 1 from roles where code = $1").bind(c).fetch_optional(&db.pool).await?.is_none() {
                return Err(Error::NotFound);
            }
            if c == "admin" && !Perm::ALL.iter().filter(|p| p.is_admin_core()).all(|p| perms.contains(p)) {
                return Err(Error::invalid("role.admin_core", "permissions"));
            }
            c.to_string()
        }
        None => {
            let c = input.code.as_deref().map(str::trim).unwrap_or("");
            if !valid_role_code(c) {
                return Err(Error::invalid("role.code_invalid", "code"));
            }
            c.to_string()
        }
    };
    let creating = code_param_missing;
    {
        let _w = db.write_lock().await;
        let mut tx = db.begin_write().await?;
        if creating {
            sqlx::query("insert into roles (code, name, description, builtin, updated_at) values ($1,$2,$3,0,$4)")
                .bind(&code)
                .bind(name)
                .bind(&description)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| crate::kernel::error::on_unique(e, "role.code_taken"))?;
        } else {
            sqlx::query("update roles set name = $1, description = $2, updated_at = $3 where code = $4")
                .bind(name)
                .bind(&description)
                .bind(now)
                .bind(&code)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("delete from role_permissions where role_code = $1").bind(&code).execute(&mut *tx).await?;
        for p in &perms {
            sqlx::query("insert into role_permissions (role_code, permission) values ($1,$2)")
                .bind(&code)
                .bind(p.code())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    // Anyone may hold the role.
    db.sessions.clear();
    roles(db).await?.into_iter().find(|r| r.code == code).ok_or(Error::NotFound)
}

pub async fn delete_role(db: &Db, code: &str) -> Result<()> {
    let row = sqlx::query("select builtin from roles where code = $1")
        .bind(code)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    if row.try_get::<i64, _>(0)? != 0 {
        return Err(Error::conflict("role.builtin"));
    }
    let _w = db.write_lock().await;
    let mut tx = db.begin_write().await?;
    if sqlx::query("select 1 from user_roles where role_code = $1").bind(code).fetch_optional(&mut *tx).await?.is_some()
    {
        return Err(Error::conflict("role.in_use"));
    }
    sqlx::query("delete from role_permissions where role_code = $1").bind(code).execute(&mut *tx).await?;
    sqlx::query("delete from roles where code = $1").bind(code).execute(&mut *tx).await?;
    tx.commit().await?;
    db.sessions.clear();
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// A public id (not the token).
    pub id: String,
    /// `browser` or `api`
    pub kind: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub client_addr: Option<String>,
    /// The session this request came with.
    pub current: bool,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct RoleInput {
    /// New roles only: lower-case code, e.g. `hotline_agent`.
    #[serde(default)]
    pub code: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_passwords_meet_the_strictest_policy() {
        let strict = crate::kernel::policy::SecurityPolicy { password_min_classes: 4, ..Default::default() };
        for _ in 0..200 {
            let p = temporary_password();
            assert_eq!(p.len(), 14);
            strict.check_password(&p, "someone").unwrap();
        }
    }

    #[test]
    fn usernames_and_role_codes() {
        assert!(valid_username("wg140107001001001"));
        assert!(valid_username("bm_police"));
        assert!(!valid_username("ab"));
        assert!(!valid_username("张三"));
        assert!(!valid_username("a b c"));
        assert!(valid_role_code("hotline_agent"));
        assert!(!valid_role_code("Hotline"));
    }
}
