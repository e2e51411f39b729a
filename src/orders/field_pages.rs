//! The field app's work-order pages (`/m/`): tasks, an order, the report form.

use crate::web::extract::page::{Path, Query};
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
        machine::Action,
        store::{self, ActRequest, Actor, EventView, ListQuery, NewOrder, OrderView, Reporter, Source},
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
    /// The user may show the reporter's contact (with a reason) and call it.
    can_contact: bool,
    /// Opens the phone's map app at the place (`geo:`).
    geo_link: String,
    /// The same place in 高德地图, when the order has a point.
    amap_link: Option<String>,
}

/// Links that open a map app at the order's place: `geo:` (the phone's
/// chooser) at its point or by its address, and 高德地图 at its point (WGS 84,
/// which the link says, so the app converts it).
fn map_links(order: &OrderView) -> (String, Option<String>) {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    match (order.lon, order.lat) {
        (Some(lon), Some(lat)) => (
            format!("geo:{lat},{lon}?q={lat},{lon}({})", enc(&order.address)),
            Some(format!(
                "https://uri.amap.com/marker?position={lon},{lat}&name={}&coordinate=wgs84&callnative=1",
                enc(&order.address)
            )),
        ),
        _ => (format!("geo:0,0?q={}", enc(&format!("{}{}", order.node_name, order.address))), None),
    }
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
    let (geo_link, amap_link) = map_links(&d.order);
    Ok(render(&MobileOrder {
        can_contact: crate::orders::api::may_see_contact(&user),
        geo_link,
        amap_link,
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
    /// The user may handle small matters on the spot (即报即办).
    can_on_spot: bool,
    /// Categories that allow it: code and `normal` or `any` urgency.
    on_spot: Vec<(String, String)>,
}

impl MobileReport {
    /// Which urgencies of a category allow 即报即办: `none`, `normal` or `any`.
    fn on_spot_rule(&self, code: &str) -> &str {
        self.on_spot.iter().find(|(c, _)| c == code).map_or("none", |(_, r)| r.as_str())
    }
}

pub async fn mobile_report_form(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersReport);
    let can_on_spot = user.can(Perm::OrdersHandle) && user.unit_id.is_some();
    let on_spot = if can_on_spot { store::on_spot_categories(&s.db).await? } else { vec![] };
    Ok(render(&MobileReport { user, active: "report", categories: categories(&s.db).await?, can_on_spot, on_spot }))
}

/// The field app's report form: the report, and for 即报即办 what was done
/// on the spot.
#[derive(serde::Deserialize)]
pub struct FieldReportForm {
    #[serde(flatten)]
    pub report: ReportForm,
    /// Handled on the spot (即报即办).
    #[serde(default)]
    pub on_spot: Option<String>,
    /// What was done on the spot.
    #[serde(default)]
    pub result: String,
}

/// The file field of the photos taken after the work (即报即办).
const AFTER_PHOTOS: &str = "after_photos";

/// 上报 from the field app, with the photos taken on the spot (on the
/// report step; staff-internal, as patrol photos may show residents). With
/// 即报即办 the same request records the work as done on the spot: the
/// photos after it go on that step, and the order closes without dispatch.
pub async fn mobile_report(
    State(s): State<AppState>,
    user: CurrentUser,
    form: Result<FormWithFiles<FieldReportForm>>,
) -> Response {
    let r = async {
        user.require(Perm::OrdersReport)?;
        let FormWithFiles { form: FieldReportForm { report: f, on_spot, result }, files } = form?;
        let on_spot = on_spot.is_some();
        let (after, before): (Vec<_>, Vec<_>) = files.into_iter().partition(|f| f.field == AFTER_PHOTOS);
        if on_spot {
            // Refused before anything is stored: who may, what, and the result.
            user.require(Perm::OrdersHandle)?;
            if user.unit_id.is_none() {
                return Err(Error::Forbidden);
            }
            if result.trim().is_empty() {
                return Err(Error::invalid("order.result_required", "result"));
            }
            let urgency = if f.urgent.is_some() { "urgent" } else { "normal" };
            if !store::on_spot_allowed(&s.db, &f.category_code, urgency).await? {
                return Err(Error::conflict("order.on_spot_not_allowed"));
            }
        }
        // Check the photos before the order exists.
        let prepared = upload::prepare_all(before, &s.config.attachments, true).await?;
        let prepared_after =
            if on_spot { upload::prepare_all(after, &s.config.attachments, true).await? } else { vec![] };
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
        if on_spot {
            let clock = s.clock();
            let saved = if prepared_after.is_empty() {
                vec![]
            } else {
                upload::save(&s, &o, Uploader::Staff(&user), false, prepared_after).await?
            };
            let ids: Vec<i64> = saved.iter().map(|a| a.id).collect();
            let action = Action::HandleOnSpot {
                unit: user.unit_id.unwrap_or(0),
                result: result.trim().to_string(),
                attachments: ids.clone(),
            };
            let req = ActRequest { version: o.version, action };
            if let Err(e) = store::act(&s.db, &clock, Actor::User(&user), &o, &req).await {
                // The report stands; only the on-spot step failed.
                upload::discard(&s, &ids).await;
                return Err(e);
            }
        }
        Ok(format!("/m/orders/{}", o.id))
    }
    .await;
    act_outcome(r)
}

#[derive(Template)]
#[template(path = "m/done.html")]
struct MobileDone {
    user: CurrentUser,
    active: &'static str,
    orders: Vec<OrderView>,
    page: i64,
    pages: i64,
}

#[derive(serde::Deserialize, Default)]
pub struct PageQuery {
    pub page: Option<i64>,
}

/// 已办: what the person handled (反馈, 即报即办), the latest first.
pub async fn mobile_done(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let page = store::handled_by(&s.db, &s.clock(), &user, q.page.unwrap_or(1), 20).await?;
    let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
    let orders = page.orders.into_iter().map(|o| o.for_reader(&user)).collect();
    Ok(render(&MobileDone { user, active: "tasks", orders, page: page.page, pages }))
}
