//! The field app's work-order pages (`/m/`): tasks, an order, the report form.

use crate::web::extract::page::Path;
use askama::Template;
use axum::{extract::State, http::Uri, response::Response};

use crate::web::{login_or_redirect, render, require_page, to_login, Msg as _};
use crate::{
    attachments::Attachment,
    kernel::{
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    orders::{
        api::{categories, Category},
        dispatch::{self, Suggestion},
        store::{self, EventView, ListQuery, NewOrder, OrderView, Reporter, Source},
        units::Unit,
        upload::{self, FormWithFiles, Uploader},
    },
    web::AppState,
};

use super::pages::*;

// ---------- field app ----------

#[derive(Template)]
#[template(path = "m/tasks.html")]
struct MobileTasks {
    user: CurrentUser,
    active: &'static str,
    orders: Vec<OrderView>,
    accept: Vec<OrderView>,
    /// What the user's unit assists (协办) while it is being handled.
    assisting: Vec<OrderView>,
}

pub async fn mobile_tasks(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let clock = s.clock();
    let mine = store::list(
        &s.db,
        &clock,
        &user,
        &ListQuery { queue: Some("mine".into()), per_page: Some(50), ..Default::default() },
    )
    .await?;
    let accept = if user.can(Perm::OrdersAccept) {
        store::list(
            &s.db,
            &clock,
            &user,
            &ListQuery { queue: Some("pending_accept".into()), per_page: Some(20), ..Default::default() },
        )
        .await?
        .orders
    } else {
        vec![]
    };
    let assisting = store::list(
        &s.db,
        &clock,
        &user,
        &ListQuery { queue: Some("assisting".into()), per_page: Some(20), ..Default::default() },
    )
    .await?
    .orders;
    let shown = |orders: Vec<OrderView>| orders.into_iter().map(|o| o.for_reader(&user)).collect::<Vec<_>>();
    let (orders, accept, assisting) = (shown(mine.orders), shown(accept), shown(assisting));
    Ok(render(&MobileTasks { user, active: "tasks", orders, accept, assisting }))
}

#[derive(Template)]
#[template(path = "m/order.html")]
struct MobileOrder {
    user: CurrentUser,
    active: &'static str,
    order: OrderView,
    events: Vec<EventView>,
    actions: Vec<ActionForm>,
    suggestion: Suggestion,
    units: Vec<Unit>,
    back: String,
    attachments: Vec<Attachment>,
    assisting: Vec<dispatch::UnitName>,
}

pub async fn mobile_order(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let d = match detail_parts(&s, &user, id).await {
        Err(Error::NotFound) => return Ok(crate::web::not_found(uri).await),
        r => r?,
    };
    Ok(render(&MobileOrder {
        user,
        active: "tasks",
        order: d.order,
        events: d.events,
        actions: d.actions,
        suggestion: d.suggestion,
        units: d.units,
        back: format!("/m/orders/{id}"),
        attachments: d.attachments,
        assisting: d.assisting,
    }))
}

#[derive(Template)]
#[template(path = "m/report.html")]
struct MobileReport {
    user: CurrentUser,
    active: &'static str,
    categories: Vec<Category>,
}

pub async fn mobile_report_form(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersReport);
    Ok(render(&MobileReport { user, active: "report", categories: categories(&s.db).await? }))
}

/// 上报 from the field app, with the photos taken on the spot (on the
/// report step; staff-internal, as patrol photos may show residents).
pub async fn mobile_report(
    State(s): State<AppState>,
    user: CurrentUser,
    form: Result<FormWithFiles<ReportForm>>,
) -> Response {
    let r = async {
        user.require(Perm::OrdersReport)?;
        let FormWithFiles { form: f, files } = form?;
        // Check the photos before the order exists.
        let prepared = upload::prepare_all(files, &s.config.attachments, true).await?;
        let input = NewOrder {
            source: Source::Patrol,
            category_code: f.category_code,
            urgency: Some(if f.urgent.is_some() { store::Urgency::Urgent } else { store::Urgency::Normal }),
            title: f.title,
            description: f.description,
            address: f.address,
            lon: coord(&f.lon),
            lat: coord(&f.lat),
            // Without a point, the matter is in the worker's own grid.
            node_id: Some(user.node_id),
            reporter_name: None,
            reporter_contact: None,
        };
        let o =
            store::create(&s.db, Reporter { user: Some(&user), crypto: &s.crypto, scope: user.scope() }, input).await?;
        if !prepared.is_empty() {
            upload::save(&s, &o, Uploader::Staff(&user), true, prepared).await?;
        }
        Ok(format!("/m/orders/{}", o.id))
    }
    .await;
    act_outcome(r)
}
