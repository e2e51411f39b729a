//! The resident portal's work-order pages: report, track and rate.

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::web::{render, t, Msg as _};
use crate::{
    kernel::{
        error::{Error, Result},
        scope::Scope,
    },
    orders::{
        api::{categories, public_view, Category, PublicOrder},
        machine::Action,
        store::{self, ActRequest, Actor, NewOrder, Reporter, Source},
        upload::{self, FormWithFiles, Uploader},
    },
    web::AppState,
};

use super::pages::*;

// ---------- portal ----------

pub struct CommunityGroup {
    pub name: String,
    pub communities: Vec<(i64, String)>,
}

#[derive(Template)]
#[template(path = "portal/report.html")]
struct PortalReport {
    categories: Vec<Category>,
    groups: Vec<CommunityGroup>,
    error: Option<String>,
    /// What the resident typed, kept when the report is refused.
    values: Values,
}

/// The report form's values (empty on a fresh form: nothing is chosen for
/// the resident).
#[derive(Default)]
pub struct Values {
    category_code: String,
    title: String,
    description: String,
    address: String,
    node_id: String,
    name: String,
    contact: String,
}

impl Values {
    fn of(f: &ReportForm) -> Values {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Values {
            category_code: f.category_code.clone(),
            title: f.title.clone(),
            description: f.description.clone(),
            address: f.address.clone(),
            node_id: text(&f.node_id),
            name: text(&f.name),
            contact: text(&f.contact),
        }
    }
}

/// The categories residents may pick (administrators mark them).
async fn resident_categories(s: &AppState) -> Result<Vec<Category>> {
    Ok(categories(&s.db).await?.into_iter().filter(|c| c.resident_facing).collect())
}

async fn community_groups(s: &AppState) -> Result<Vec<CommunityGroup>> {
    let scope = Scope::everything();
    let mut groups = vec![];
    for root in crate::tree::store::scope_roots(&s.db, &scope).await? {
        for sub in crate::tree::store::children(&s.db, &scope, root.id, false).await? {
            let communities = crate::tree::store::children(&s.db, &scope, sub.id, false)
                .await?
                .into_iter()
                .map(|c| (c.id, crate::orders::api::portal_community_name(&c.name)))
                .collect();
            groups.push(CommunityGroup { name: sub.name, communities });
        }
    }
    Ok(groups)
}

pub async fn portal_report_form(State(s): State<AppState>) -> Result<Response> {
    Ok(render(&PortalReport {
        categories: resident_categories(&s).await?,
        groups: community_groups(&s).await?,
        error: None,
        values: Values::default(),
    }))
}

/// 居民提单 with an optional photo: the photo is checked before the order
/// is created, so a refused photo leaves no order behind either.
pub async fn portal_report(State(s): State<AppState>, form: Result<FormWithFiles<ReportForm>>) -> Result<Response> {
    let mut values = Values::default();
    let r = async {
        let FormWithFiles { form: f, files } = form?;
        values = Values::of(&f);
        let prepared = upload::prepare_all(files, &s.config.attachments, true).await?;
        if prepared.len() as i64 > s.config.attachments.per_resident {
            return Err(Error::invalid("attachment.too_many", "photo"));
        }
        let o = store::create(
            &s.db,
            Reporter { user: None, crypto: &s.crypto, scope: Scope::everything() },
            report_input(f),
        )
        .await?;
        if !prepared.is_empty() {
            upload::save(&s, &o, Uploader::Resident, true, prepared).await?;
        }
        Ok(o)
    }
    .await;
    match r {
        Ok(o) => Ok(Redirect::to(&format!("/portal/track/{}?new=1", o.tracking_code)).into_response()),
        Err(e) if e.status().is_client_error() => {
            let page = PortalReport {
                categories: resident_categories(&s).await?,
                groups: community_groups(&s).await?,
                error: Some(e.message()),
                values,
            };
            Ok((e.status(), render(&page)).into_response())
        }
        Err(e) => Err(e),
    }
}

fn report_input(f: ReportForm) -> NewOrder {
    NewOrder {
        source: Source::Resident,
        category_code: f.category_code,
        urgency: None,
        title: f.title,
        description: f.description,
        address: f.address,
        lon: coord(&f.lon),
        lat: coord(&f.lat),
        node_id: f.node_id.as_deref().and_then(|n| n.parse().ok()),
        reporter_name: f.name.filter(|n| !n.trim().is_empty()),
        reporter_contact: f.contact,
    }
}

#[derive(Template)]
#[template(path = "portal/track.html")]
struct PortalTrack {
    order: Option<PublicOrder>,
    code: String,
    fresh: bool,
    error: Option<String>,
    /// The rating and comment given before a refusal, kept on the form.
    chosen: Option<String>,
    comment: String,
}

impl PortalTrack {
    fn can(&self, kind: &str) -> bool {
        self.order.as_ref().is_some_and(|o| o.allowed_actions.iter().any(|a| a.as_str() == kind))
    }
}

#[derive(Deserialize)]
pub struct TrackQuery {
    code: Option<String>,
    new: Option<String>,
}

pub async fn portal_track_form(Query(q): Query<TrackQuery>) -> Response {
    match q.code.map(|c| c.trim().to_uppercase()).filter(|c| !c.is_empty()) {
        Some(code) => Redirect::to(&format!(
            "/portal/track/{}",
            url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
        ))
        .into_response(),
        None => render(&PortalTrack {
            order: None,
            code: String::new(),
            fresh: false,
            error: None,
            chosen: None,
            comment: String::new(),
        }),
    }
}

pub async fn portal_track(
    State(s): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<TrackQuery>,
) -> Result<Response> {
    let order = match store::get_by_tracking_code(&s.db, &s.clock(), &code).await {
        Ok(o) => Some(public_view(&s, &o).await?),
        Err(Error::NotFound) => None,
        Err(e) => return Err(e),
    };
    let error = order.is_none().then(|| t("portal.track_not_found").to_string());
    Ok(render(&PortalTrack { order, code, fresh: q.new.is_some(), error, chosen: None, comment: String::new() }))
}

/// The resident rates or withdraws, by tracking code (the code is the key).
pub async fn portal_track_act(
    State(s): State<AppState>,
    Path(code): Path<String>,
    Form(f): Form<ActForm>,
) -> Result<Response> {
    let clock = s.clock();
    let order = store::get_by_tracking_code(&s.db, &clock, &code).await?;
    let r = async {
        let action = f.action()?;
        if !matches!(action, Action::Evaluate { .. } | Action::Withdraw { .. }) {
            return Err(Error::Forbidden);
        }
        store::act(&s.db, &clock, Actor::Resident, &order, &ActRequest { version: f.version, action }).await
    }
    .await;
    match r {
        Ok(_) => Ok(Redirect::to(&format!("/portal/track/{}", order.tracking_code)).into_response()),
        Err(e) => {
            let page = PortalTrack {
                order: Some(public_view(&s, &order).await?),
                code,
                fresh: false,
                error: Some(e.message()),
                chosen: Some(f.rating.clone()).filter(|r| !r.is_empty()),
                comment: f.comment.clone(),
            };
            Ok((e.status(), render(&page)).into_response())
        }
    }
}
