//! Tree administration on the pages (htmx forms): create a child, edit a
//! node, move it, retire it, add and end members. Each form goes through
//! `tree::service`, the same use cases and validation as the API; a refusal
//! comes back as a message naming the field, shown on the form.

use askama::Template;
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::{
    kernel::{
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    tree::{
        service,
        store::{MoveNode, NewMember, NewNode, NodePatch},
        GridType, MemberRole, NodeKind,
    },
    web::{
        extract::page::{Form, Path},
        hx_redirect, render, AppState, ClientAddr,
    },
};

#[derive(Template)]
#[template(
    source = r#"<p class="alert" role="alert"{% if let Some(f) = field %} data-field="{{ f }}"{% endif %}>{{ message }}</p>"#,
    ext = "html"
)]
struct FormError {
    message: String,
    field: Option<String>,
}

/// A refusal shown on the form, with the field it concerns so the page can
/// mark that input.
fn form_error(e: &Error) -> Response {
    if e.status().is_server_error() {
        tracing::error!(error = %e, "tree form failed");
    }
    let field = e.field().map(|f| match f {
        // Codes of grids and buildings come from their number under the parent.
        "seq" => "code".to_string(),
        f => f.to_string(),
    });
    render(&FormError { message: e.message(), field })
}

/// The page shown again as it is (a redirect to the same address with a
/// fragment would not reload it).
fn refresh<T>(r: Result<T>) -> Response {
    match r {
        Ok(_) => {
            let mut h = axum::http::HeaderMap::new();
            h.insert("HX-Refresh", axum::http::HeaderValue::from_static("true"));
            (h, axum::response::Html(String::new())).into_response()
        }
        Err(e) => form_error(&e),
    }
}

fn answer<T>(r: Result<T>, to: impl FnOnce(T) -> String) -> Response {
    match r {
        Ok(v) => hx_redirect(&to(v)),
        Err(e) => form_error(&e),
    }
}

/// A number typed into a form: blank is none.
fn number(v: &Option<String>, field: &str) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| Error::invalid("form.number_invalid", field)),
    }
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn grid_type(v: &Option<String>) -> Result<Option<GridType>> {
    match text(v) {
        None => Ok(None),
        Some(s) => GridType::parse(&s).map(Some).ok_or_else(|| Error::invalid("form.choice_invalid", "grid_type")),
    }
}

/// A building's storeys and units, kept in its attributes.
fn building_attrs(f: &NodeForm, old: Option<&serde_json::Value>) -> Result<Option<serde_json::Value>> {
    let floors = number(&f.floors, "floors")?;
    let units = number(&f.units, "units")?;
    if floors.is_some_and(|n| !(1..=120).contains(&n)) {
        return Err(Error::invalid("value.out_of_range", "floors"));
    }
    if units.is_some_and(|n| !(1..=30).contains(&n)) {
        return Err(Error::invalid("value.out_of_range", "units"));
    }
    let mut attrs = old.cloned().filter(|v| v.is_object()).unwrap_or_else(|| serde_json::json!({}));
    for (key, v) in [("floors", floors), ("units", units)] {
        match v {
            Some(n) => attrs[key] = n.into(),
            None => {
                attrs.as_object_mut().map(|o| o.remove(key));
            }
        }
    }
    Ok(Some(attrs))
}

/// The page offers no moving or retiring of the caller's own top node
/// (a community centre would cut itself off from its own tree).
async fn scope_top_refused(s: &AppState, user: &CurrentUser, id: i64) -> Result<()> {
    let scope = user.scope();
    if crate::tree::store::get_node(&s.db, &scope, id).await?.path == scope.path {
        return Err(Error::Forbidden);
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct NodeForm {
    #[serde(default)]
    name: String,
    code: Option<String>,
    grid_type: Option<String>,
    households: Option<String>,
    population: Option<String>,
    floors: Option<String>,
    units: Option<String>,
    version: Option<i64>,
}

/// htmx: creates a child of the node shown; the browser goes to it.
pub async fn create_child(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<NodeForm>,
) -> Response {
    let run = async {
        user.require(Perm::TreeWrite)?;
        let parent = crate::tree::store::get_node(&s.db, &user.scope(), id).await?;
        let kind = parent.kind.child_kind().ok_or_else(|| Error::invalid("node.parent_kind_mismatch", "parent_id"))?;
        let input = NewNode {
            parent_id: Some(parent.id),
            kind,
            name: f.name.clone(),
            code: if kind.region_level().is_some() { text(&f.code) } else { None },
            seq: match kind {
                NodeKind::Grid | NodeKind::Building => {
                    number(&f.code, "code")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                }
                _ => None,
            },
            grid_type: if kind == NodeKind::Grid { grid_type(&f.grid_type)? } else { None },
            households: if matches!(kind, NodeKind::Grid | NodeKind::Building) {
                number(&f.households, "households")?
            } else {
                None
            },
            population: if matches!(kind, NodeKind::Grid | NodeKind::Building) {
                number(&f.population, "population")?
            } else {
                None
            },
            polygon: None,
            lon: None,
            lat: None,
            attrs: if kind == NodeKind::Building { building_attrs(&f, None)? } else { None },
        };
        if kind == NodeKind::Grid && input.grid_type.is_none() {
            return Err(Error::invalid("form.choose", "grid_type"));
        }
        service::create_node(&s, &user, addr, input).await
    };
    answer(run.await, |n| format!("/tree/{}", n.id))
}

/// htmx: saves the node's own fields.
pub async fn update(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<NodeForm>,
) -> Response {
    let run = async {
        user.require(Perm::TreeWrite)?;
        let node = crate::tree::store::get_node(&s.db, &user.scope(), id).await?;
        let own_figures = matches!(node.kind, NodeKind::Grid | NodeKind::Building);
        let patch = NodePatch {
            version: f.version.ok_or_else(|| Error::invalid("request.missing_field", "version"))?,
            name: Some(f.name.clone()),
            grid_type: if node.kind == NodeKind::Grid { grid_type(&f.grid_type)? } else { None },
            households: if own_figures { number(&f.households, "households")? } else { None },
            population: if own_figures { number(&f.population, "population")? } else { None },
            attrs: if node.kind == NodeKind::Building { building_attrs(&f, Some(&node.attrs))? } else { None },
            ..Default::default()
        };
        service::update_node(&s, &user, addr, id, patch).await
    };
    answer(run.await, |n| format!("/tree/{}?saved=1", n.id))
}

#[derive(Deserialize)]
pub struct MoveForm {
    parent_id: Option<i64>,
    code: Option<String>,
    version: i64,
}

/// htmx: moves the node (with its subtree) under another parent.
pub async fn move_to(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<MoveForm>,
) -> Response {
    let run = async {
        scope_top_refused(&s, &user, id).await?;
        let parent_id = f.parent_id.ok_or_else(|| Error::invalid("form.choose", "parent_id"))?;
        service::move_node(&s, &user, addr, id, MoveNode { parent_id, code: text(&f.code), version: f.version }).await
    };
    answer(run.await, |n| format!("/tree/{}?saved=1", n.id))
}

/// htmx: retires the node (asked to confirm on the page); the browser goes
/// to its parent.
pub async fn retire(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    let run = async {
        scope_top_refused(&s, &user, id).await?;
        service::retire_node(&s, &user, addr, id).await
    };
    answer(run.await, |n| match n.parent_id {
        Some(p) => format!("/tree/{p}"),
        None => format!("/tree/{}", n.id),
    })
}

#[derive(Deserialize)]
pub struct MemberForm {
    role: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    gender: String,
    #[serde(default)]
    ethnicity: String,
    #[serde(default)]
    political_status: String,
    /// From a date input: YYYY-MM-DD.
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    education: String,
    #[serde(default)]
    mobile: String,
    id_number: Option<String>,
    phone: Option<String>,
    public_phone: Option<String>,
    public_phone_published: Option<String>,
}

/// htmx: adds a member to the node shown.
pub async fn add_member(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<MemberForm>,
) -> Response {
    let run = async {
        let role =
            text(&f.role).and_then(|r| MemberRole::parse(&r)).ok_or_else(|| Error::invalid("form.choose", "role"))?;
        for (value, field) in [
            (&f.gender, "gender"),
            (&f.ethnicity, "ethnicity"),
            (&f.political_status, "political_status"),
            (&f.education, "education"),
        ] {
            if value.trim().is_empty() {
                return Err(Error::invalid("form.choose", field));
            }
        }
        let m = NewMember {
            role,
            name: f.name.clone(),
            gender: f.gender.clone(),
            ethnicity: f.ethnicity.clone(),
            political_status: f.political_status.clone(),
            birth_date: f.birth_date.replace('-', ""),
            education: f.education.clone(),
            mobile: f.mobile.trim().to_string(),
            id_number: text(&f.id_number),
            phone: text(&f.phone),
            user_id: None,
            public_phone: text(&f.public_phone),
            public_phone_published: f.public_phone_published.is_some(),
        };
        service::add_member(&s, &user, addr, id, m).await
    };
    refresh(run.await)
}

/// htmx: ends a membership (asked to confirm on the page).
pub async fn end_member(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    refresh(service::end_member(&s, &user, addr, id).await)
}
