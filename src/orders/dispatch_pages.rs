//! The dispatch catalogue page (派单目录): which unit leads and which
//! assist, per category and region, as the dispatch form will suggest it.

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{extract::State, http::Uri, response::Response};
use serde::Deserialize;
use sqlx::Row;

use crate::web::{alert, hx_redirect, login_or_redirect, render, require_page, t, to_login, Msg as _, Shell};
use crate::{
    kernel::{
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    orders::{
        api::{categories, Category},
        dispatch::{self, DispatchRule, LocalLevel, RuleInput},
    },
    web::{AppState, ClientAddr},
};

/// A region a rule can cover, indented under its parent.
pub struct Region {
    pub id: i64,
    pub label: String,
    pub path: String,
}

/// A unit offered as a default lead or assisting unit.
pub struct Choice {
    pub id: i64,
    pub name: String,
}

#[derive(Template)]
#[template(path = "admin/dispatch.html")]
struct DispatchPage {
    shell: Shell,
    rules: Vec<(DispatchRule, bool)>,
    regions: Vec<Region>,
    groups: Vec<(Category, Vec<Category>)>,
    units: Vec<Choice>,
    editing: Option<DispatchRule>,
    region: Option<i64>,
    /// `rule` or `dept`: what was just saved.
    saved: Option<String>,
    /// The departments of the area, and whether each takes new orders.
    departments: Vec<(crate::orders::units::Unit, bool)>,
}

impl DispatchPage {
    fn lead_text(&self, r: &DispatchRule) -> String {
        r.lead_unit_name.clone().unwrap_or_else(|| t("dispatch.local_community_lead").to_string())
    }

    fn assisting_text(&self, r: &DispatchRule) -> String {
        let mut names: Vec<String> = r.assist_local.iter().map(|l| local_label(*l).to_string()).collect();
        names.extend(r.assisting_unit_names.iter().cloned());
        if names.is_empty() {
            "—".into()
        } else {
            names.join("、")
        }
    }

    fn is_region(&self, id: &i64) -> bool {
        self.editing.as_ref().map_or(self.region == Some(*id), |e| e.node_id == *id)
    }

    fn is_category(&self, code: &str) -> bool {
        self.editing.as_ref().is_some_and(|e| e.category_code == code)
    }

    fn is_lead(&self, id: &i64) -> bool {
        self.editing.as_ref().is_some_and(|e| e.lead_unit_id == Some(*id))
    }

    fn assists(&self, id: &i64) -> bool {
        self.editing.as_ref().is_some_and(|e| e.assisting_unit_ids.contains(id))
    }

    fn is_filter(&self, id: &i64) -> bool {
        self.region == Some(*id)
    }

    fn assists_local(&self, level: &str) -> bool {
        self.editing.as_ref().is_some_and(|e| e.assist_local.iter().any(|l| l.as_str() == level))
    }
}

pub fn local_label(level: LocalLevel) -> &'static str {
    t(&format!("dispatch.local.{}", level.as_str()))
}

/// The district, subdistricts and communities in the caller's scope, in tree order.
async fn regions(s: &AppState, user: &CurrentUser) -> Result<Vec<Region>> {
    let (lo, hi) = user.scope().bounds();
    let rows = sqlx::query(
        "select id, name, path, depth from nodes where path >= $1 and path < $2 and status = 'active' \
         and kind in ('province','city','district','subdistrict','community') order by path",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(&s.db.pool)
    .await?;
    let top = rows.first().map(|r| r.try_get::<i64, _>("depth")).transpose()?.unwrap_or(0);
    rows.iter()
        .map(|r| {
            let depth: i64 = r.try_get("depth")?;
            let indent = "　".repeat((depth - top).max(0) as usize);
            Ok(Region {
                id: r.try_get("id")?,
                label: format!("{indent}{}", r.try_get::<String, _>("name")?),
                path: r.try_get("path")?,
            })
        })
        .collect()
}

/// Departments and the centres above the communities: the units a rule
/// names (a community's own centre is `属地社区`).
async fn unit_choices(s: &AppState) -> Result<Vec<Choice>> {
    let rows = sqlx::query(
        "select u.id, u.name from units u join nodes n on n.id = u.node_id where u.status = 'active' \
         and (u.kind = 'department' or (u.kind = 'centre' and n.kind not in ('community','grid','building'))) \
         order by case u.kind when 'department' then 0 else 1 end, n.path, u.code",
    )
    .fetch_all(&s.db.pool)
    .await?;
    rows.iter().map(|r| Ok(Choice { id: r.try_get(0)?, name: r.try_get(1)? })).collect()
}

#[derive(Deserialize)]
pub struct PageQuery {
    edit: Option<i64>,
    region: Option<i64>,
    saved: Option<String>,
}

/// The rules (all, or those that apply in one region) and the form to add or change one.
pub async fn page(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::CalendarWrite);
    let all = dispatch::list(&s.db, &user).await?;
    let editing = match q.edit {
        Some(id) => Some(all.iter().find(|r| r.id == id).cloned().ok_or(Error::NotFound)?),
        None => None,
    };
    let regions = regions(&s, &user).await?;
    // Within one region: the rules of it and of the regions above it.
    let region_path = q.region.and_then(|id| regions.iter().find(|r| r.id == id)).map(|r| r.path.clone());
    let rules = all
        .into_iter()
        .filter(|r| region_path.as_ref().is_none_or(|p| p.starts_with(&r.node_path)))
        .map(|r| {
            let mine = r.node_path.starts_with(&user.node_path);
            (r, mine)
        })
        .collect();
    let departments = crate::orders::units::departments(&s.db, &user).await?;
    let groups = super::catalogue_pages::grouped(categories(&s.db).await?);
    Ok(render(&DispatchPage {
        shell: Shell { user, active: "dispatch" },
        rules,
        regions,
        groups,
        units: unit_choices(&s).await?,
        editing,
        region: q.region,
        saved: q.saved,
        departments,
    }))
}

#[derive(Deserialize)]
pub struct RuleForm {
    category_code: String,
    node_id: i64,
    /// Empty: the local community centre leads.
    #[serde(default)]
    lead_unit: String,
    #[serde(default)]
    assisting: Vec<i64>,
    #[serde(default)]
    assist_local: Vec<String>,
    #[serde(default)]
    note: String,
}

/// htmx: saves a rule through the API's checks.
pub async fn save(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<RuleForm>,
) -> Response {
    let r = async {
        let lead_unit_id = match f.lead_unit.trim() {
            "" => None,
            v => Some(v.parse::<i64>().map_err(|_| Error::invalid("dispatch.unit_unknown", "lead_unit_id"))?),
        };
        let assist_local = f
            .assist_local
            .iter()
            .map(|l| {
                serde_json::from_value(serde_json::json!(l))
                    .map_err(|_| Error::invalid("dispatch.unit_unknown", "assist_local"))
            })
            .collect::<Result<Vec<LocalLevel>>>()?;
        let input = RuleInput { lead_unit_id, assisting_unit_ids: f.assisting, assist_local, note: Some(f.note) };
        dispatch::save(&s, &user, addr, (f.node_id, &f.category_code), input).await
    }
    .await;
    match r {
        Ok(rule) => hx_redirect(&format!("/admin/dispatch?saved=1&region={}", rule.node_id)),
        Err(e) => alert(&e),
    }
}

/// htmx: removes a rule.
pub async fn remove(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    let r = async {
        let rule = dispatch::list(&s.db, &user).await?.into_iter().find(|r| r.id == id).ok_or(Error::NotFound)?;
        dispatch::remove(&s, &user, addr, (rule.node_id, &rule.category_code)).await
    }
    .await;
    match r {
        Ok(()) => hx_redirect("/admin/dispatch?saved=1"),
        Err(e) => alert(&e),
    }
}

#[derive(Deserialize)]
pub struct DepartmentForm {
    key: String,
    name: String,
}

/// htmx: adds a department.
pub async fn add_department(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<DepartmentForm>,
) -> Response {
    let input = crate::orders::units::NewDepartment { key: f.key, name: f.name };
    match crate::orders::units::create_department(&s, &user, addr, input).await {
        Ok(_) => hx_redirect("/admin/dispatch?saved=dept"),
        Err(e) => alert(&e),
    }
}

#[derive(Deserialize)]
pub struct UnitForm {
    name: Option<String>,
    active: Option<String>,
}

/// htmx: renames a unit, or stops / resumes it.
pub async fn update_unit(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<UnitForm>,
) -> Response {
    let patch =
        crate::orders::units::UnitPatch { name: f.name, active: f.active.map(|a| a == "true"), ..Default::default() };
    match crate::orders::units::update_unit(&s, &user, addr, id, patch).await {
        Ok(_) => hx_redirect("/admin/dispatch?saved=dept"),
        Err(e) => alert(&e),
    }
}
