//! Work-order pages: the staff queues and order detail, the field app's
//! tasks and report form, and the resident portal's report, track and rate.

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, Uri},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::web::{login_or_redirect, render, require_page, t, to_login, Msg as _, Shell};
use crate::{
    attachments::Attachment,
    kernel::{
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
        scope::Scope,
    },
    orders::{
        api::{categories, public_view, Category, PublicOrder},
        dispatch::{self, Suggestion},
        machine::{Action, ActionKind},
        store::{self, ActRequest, Actor, EventView, ListQuery, NewOrder, OrderView, Queue, Reporter, Source},
        units::{self, Unit},
        upload::{self, FormWithFiles, Incoming, Uploader},
    },
    web::AppState,
};

/// Which inputs an action's form needs.
pub fn form_kind(kind: &ActionKind) -> &'static str {
    use ActionKind as K;
    match kind {
        K::Accept | K::Sign | K::VerifyPass | K::ApproveExtension | K::Resume | K::Archive | K::MarkOverdue => "none",
        K::Handle | K::Supervise | K::Urge | K::FollowUp => "note",
        K::ReportBack => "result",
        K::Evaluate => "evaluate",
        K::Dispatch => "dispatch",
        K::Reassign => "reassign",
        K::ApproveReturn => "approve_return",
        K::RequestExtension => "extension",
        K::ResumeFromDeliberation => "resolution",
        K::Merge => "merge",
        _ => "reason",
    }
}

/// The action buttons shown for an order.
pub struct ActionForm {
    pub kind: ActionKind,
    pub label: &'static str,
    pub form: &'static str,
    /// Actions that end or refuse something get a quieter style.
    pub danger: bool,
    /// The form takes photos (处置, 反馈, 核查不通过).
    pub photos: bool,
}

/// Actions that carry attachments.
fn takes_photos(kind: &ActionKind) -> bool {
    matches!(kind, ActionKind::Handle | ActionKind::ReportBack | ActionKind::VerifyFail)
}

fn action_forms(kinds: &[ActionKind]) -> Vec<ActionForm> {
    kinds
        .iter()
        .map(|k| ActionForm {
            kind: *k,
            label: t(k.label_key()),
            form: form_kind(k),
            danger: matches!(
                k,
                ActionKind::Reject
                    | ActionKind::ReturnOrder
                    | ActionKind::VerifyFail
                    | ActionKind::Withdraw
                    | ActionKind::RefuseExtension
                    | ActionKind::RejectReturn
            ),
            photos: takes_photos(k),
        })
        .collect()
}

// ---------- staff queues ----------

#[derive(Template)]
#[template(path = "orders/list.html")]
struct OrdersPage {
    shell: Shell,
    counts: Vec<(Queue, i64)>,
    queue: Queue,
    orders: Vec<OrderView>,
    total: i64,
    page: i64,
    pages: i64,
    q: String,
    category: String,
    categories: Vec<Category>,
    can_dispatch: bool,
    units: Vec<Unit>,
}

impl OrdersPage {
    fn link(&self, queue: &Queue, page: i64) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("/orders?queue={}&category={}&q={}&page={page}", queue.as_str(), enc(&self.category), enc(&self.q))
    }
}

pub async fn list(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let queue = q.queue.as_deref().and_then(Queue::parse).unwrap_or(
        if user.unit_id.is_some() && user.can(Perm::OrdersHandle) && !user.can(Perm::OrdersAccept) {
            Queue::Mine
        } else {
            Queue::PendingAccept
        },
    );
    let query = ListQuery { queue: Some(queue.as_str().into()), ..q.clone() };
    let page = store::list(&s.db, &s.clock(), &user, &query).await?;
    let counts = store::queue_counts(&s.db, &user).await?;
    let can_dispatch = user.can(Perm::OrdersDispatch);
    let units = if can_dispatch && queue == Queue::PendingDispatch {
        units::choices(&s.db, &user, None).await?
    } else {
        vec![]
    };
    let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
    let orders = page.orders.into_iter().map(|o| o.for_reader(&user)).collect();
    Ok(render(&OrdersPage {
        shell: Shell { user, active: "orders" },
        counts,
        queue,
        orders,
        total: page.total,
        page: page.page,
        pages,
        q: q.q.unwrap_or_default(),
        category: q.category.unwrap_or_default(),
        categories: categories(&s.db).await?.into_iter().filter(|c| c.parent_code.is_none()).collect(),
        can_dispatch,
        units,
    }))
}

#[derive(Template)]
#[template(path = "orders/detail.html")]
struct OrderPage {
    shell: Shell,
    order: OrderView,
    events: Vec<EventView>,
    actions: Vec<ActionForm>,
    suggestion: Suggestion,
    units: Vec<Unit>,
    back: String,
    attachments: Vec<Attachment>,
    assisting: Vec<dispatch::UnitName>,
}

/// The attachments a timeline step carries.
pub fn step_files<'a>(attachments: &'a [Attachment], seq: &i64) -> Vec<&'a Attachment> {
    attachments.iter().filter(|a| a.event_seq == Some(*seq)).collect()
}

/// What both order pages (console and field app) show.
struct DetailParts {
    order: OrderView,
    events: Vec<EventView>,
    actions: Vec<ActionForm>,
    suggestion: Suggestion,
    units: Vec<Unit>,
    attachments: Vec<Attachment>,
    assisting: Vec<dispatch::UnitName>,
}

async fn detail_parts(s: &AppState, user: &CurrentUser, id: i64) -> Result<DetailParts> {
    let order = store::get(&s.db, &s.clock(), user, id).await?;
    let events = store::events(&s.db, order.id).await?;
    let allowed = store::allowed(Some(user), &order);
    let needs_units =
        allowed.iter().any(|k| matches!(k, ActionKind::Dispatch | ActionKind::Reassign | ActionKind::ApproveReturn));
    let units = if needs_units {
        units::choices(&s.db, user, units::community_of(&s.db, &order).await?).await?
    } else {
        vec![]
    };
    let suggestion = dispatch::suggest(&s.db, &order).await?;
    let attachments = crate::attachments::store::list(&s.db, order.id).await?;
    let assisting = dispatch::unit_names(&s.db, &order.facts.assisting_units).await?;
    let (order, events) = (order.for_reader(user), events.into_iter().map(|e| e.for_reader(user)).collect());
    Ok(DetailParts { order, events, actions: action_forms(&allowed), suggestion, units, attachments, assisting })
}

pub async fn detail(
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
    Ok(render(&OrderPage {
        shell: Shell { user, active: "orders" },
        order: d.order,
        events: d.events,
        actions: d.actions,
        suggestion: d.suggestion,
        units: d.units,
        back: format!("/orders/{id}"),
        attachments: d.attachments,
        assisting: d.assisting,
    }))
}

/// The fields of every action form; each action reads the ones it needs.
#[derive(Deserialize, Default)]
pub struct ActForm {
    pub action: String,
    pub version: i64,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub resolution: String,
    #[serde(default)]
    pub override_reason: String,
    #[serde(default)]
    pub rating: String,
    pub lead_unit: Option<i64>,
    /// 协办单位 (checkboxes, repeated).
    #[serde(default)]
    pub assisting: Vec<i64>,
    pub reassign_to: Option<i64>,
    pub days: Option<u32>,
    pub into: Option<i64>,
    #[serde(default)]
    pub back: String,
}

impl ActForm {
    /// Builds the machine's action from the form: text fields by name,
    /// numbers where the action has them.
    pub fn action(&self) -> Result<Action> {
        self.action_with(&[])
    }

    /// The action, carrying the given attachments if it takes any.
    pub fn action_with(&self, attachments: &[i64]) -> Result<Action> {
        let mut v = serde_json::json!({ "action": self.action });
        let obj = v.as_object_mut().ok_or_else(|| anyhow::anyhow!("json object"))?;
        let text = |s: &str| (!s.trim().is_empty()).then(|| serde_json::Value::String(s.trim().to_string()));
        let kind = serde_json::from_value::<ActionKind>(serde_json::json!(self.action))
            .map_err(|_| Error::invalid("order.action_not_allowed", "action"))?;
        match form_kind(&kind) {
            "reason" => {
                obj.insert("reason".into(), serde_json::json!(self.reason));
            }
            "note" => {
                obj.insert("note".into(), serde_json::json!(self.note));
            }
            "result" => {
                obj.insert("result".into(), serde_json::json!(self.result));
            }
            "resolution" => {
                obj.insert("resolution".into(), serde_json::json!(self.resolution));
            }
            "evaluate" => {
                obj.insert("rating".into(), serde_json::json!(self.rating));
                if let Some(c) = text(&self.comment) {
                    obj.insert("comment".into(), c);
                }
            }
            "dispatch" => {
                obj.insert("lead_unit".into(), serde_json::json!(self.lead_unit.unwrap_or(0)));
                obj.insert("assisting".into(), serde_json::json!(self.assisting));
                if let Some(r) = text(&self.override_reason) {
                    obj.insert("override_reason".into(), r);
                }
            }
            "reassign" => {
                obj.insert("lead_unit".into(), serde_json::json!(self.lead_unit.unwrap_or(0)));
                obj.insert("assisting".into(), serde_json::json!(self.assisting));
                obj.insert("reason".into(), serde_json::json!(self.reason));
            }
            "approve_return" => {
                if let Some(u) = self.reassign_to {
                    obj.insert("reassign_to".into(), serde_json::json!(u));
                }
            }
            "extension" => {
                obj.insert("days".into(), serde_json::json!(self.days.unwrap_or(0)));
                obj.insert("reason".into(), serde_json::json!(self.reason));
            }
            "merge" => {
                obj.insert("into".into(), serde_json::json!(self.into.unwrap_or(0)));
            }
            _ => {}
        }
        if !attachments.is_empty() && takes_photos(&kind) {
            obj.insert("attachments".into(), serde_json::json!(attachments));
        }
        serde_json::from_value(v).map_err(|_| Error::invalid("order.form_incomplete", "action"))
    }
}

/// htmx target: success sends the browser to `target` (HX-Redirect on a
/// 200, since the XHR would silently follow a 303); an error shows in place.
fn act_outcome(result: Result<String>) -> Response {
    match result {
        Ok(target) => {
            let mut h = HeaderMap::new();
            if let Ok(v) = target.parse() {
                h.insert("HX-Redirect", v);
            }
            (h, Html(format!("<a href=\"{0}\">{0}</a>", askama_escape(&target)))).into_response()
        }
        Err(e) => {
            if e.status().is_server_error() {
                tracing::error!(error = %e, "order action failed");
            }
            Html(format!("<p class=\"alert\" role=\"alert\">{}</p>", askama_escape(&e.message()))).into_response()
        }
    }
}

fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn safe_back(back: &str, fallback: String) -> String {
    if back.starts_with('/') && !back.starts_with("//") {
        back.to_string()
    } else {
        fallback
    }
}

/// An action from a page, with the photos taken for it: the photos are
/// checked and stored first and carried by the action; if the action then
/// fails, they are removed again.
pub async fn act(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: Result<FormWithFiles<ActForm>>,
) -> Response {
    let r = async {
        user.require(Perm::OrdersRead)?;
        let FormWithFiles { form: f, files } = form?;
        let clock = s.clock();
        let order = store::get_to_act(&s.db, &clock, &user, id, f.version).await?;
        let kind = f.action()?.kind();
        let files = if takes_photos(&kind) { files } else { vec![] };
        let saved = store_photos(&s, &order, &user, files, false).await?;
        let ids: Vec<i64> = saved.iter().map(|a| a.id).collect();
        let acted = async {
            let req = ActRequest { version: f.version, action: f.action_with(&ids)? };
            store::act(&s.db, &clock, Actor::User(&user), &order, &req).await
        }
        .await;
        if let Err(e) = acted {
            upload::discard(&s, &ids).await;
            return Err(e);
        }
        Ok(safe_back(&f.back, format!("/orders/{id}")))
    }
    .await;
    act_outcome(r)
}

/// Checks and stores a staff member's files on an order; `on_report` puts
/// them on the report step.
async fn store_photos(
    s: &AppState,
    order: &OrderView,
    user: &CurrentUser,
    files: Vec<Incoming>,
    on_report: bool,
) -> Result<Vec<Attachment>> {
    if files.is_empty() {
        return Ok(vec![]);
    }
    let prepared = upload::prepare_all(files, &s.config.attachments, false).await?;
    upload::save(s, order, Uploader::Staff(user), on_report, prepared).await
}

#[derive(Deserialize, Default)]
pub struct AttachForm {
    #[serde(default)]
    pub back: String,
}

/// 添加附件 on the order page: files for the order, on no step.
pub async fn attach(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: Result<FormWithFiles<AttachForm>>,
) -> Response {
    let r = async {
        user.require(Perm::OrdersRead)?;
        let FormWithFiles { form: f, files } = form?;
        let order = store::get(&s.db, &s.clock(), &user, id).await?;
        if order.state.is_terminal() {
            return Err(Error::conflict("attachment.order_closed"));
        }
        if files.is_empty() {
            return Err(Error::invalid("attachment.no_file", "file"));
        }
        store_photos(&s, &order, &user, files, false).await?;
        Ok(safe_back(&f.back, format!("/orders/{id}")))
    }
    .await;
    act_outcome(r)
}

#[derive(Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    pub sel: Vec<String>,
    /// A unit id, or `catalogue`: each order as the dispatch catalogue suggests.
    pub lead_unit: String,
    #[serde(default)]
    pub override_reason: String,
}

/// 批量派单 from the 待派单 queue; each order succeeds or fails on its own.
pub async fn bulk(State(s): State<AppState>, user: CurrentUser, Form(f): Form<BulkForm>) -> Response {
    if !user.can(Perm::OrdersDispatch) {
        return crate::web::forbidden();
    }
    let clock = s.clock();
    let (mut ok, mut failed) = (0, vec![]);
    for sel in &f.sel {
        let Some((id, version)) =
            sel.split_once(':').and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
        else {
            continue;
        };
        let lead_unit = f.lead_unit.parse::<i64>().ok();
        let override_reason = (!f.override_reason.trim().is_empty()).then(|| f.override_reason.trim().to_string());
        let r = async {
            let order = store::get_to_act(&s.db, &clock, &user, id, version).await?;
            let action = crate::orders::api::dispatch_action(&s.db, &order, lead_unit, &[], override_reason).await?;
            store::act(&s.db, &clock, Actor::User(&user), &order, &ActRequest { version, action }).await
        }
        .await;
        match r {
            Ok(_) => ok += 1,
            Err(e) => failed.push(format!("#{id}: {}", e.message())),
        }
    }
    if failed.is_empty() {
        return act_outcome(Ok("/orders?queue=pending_dispatch".into()));
    }
    Html(format!(
        "<p class=\"alert\" role=\"alert\">{} {ok};{}</p>",
        t("order.bulk_done"),
        askama_escape(&failed.join(";"))
    ))
    .into_response()
}

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

#[derive(Deserialize)]
pub struct ReportForm {
    pub category_code: String,
    pub title: String,
    pub description: String,
    pub address: String,
    pub lon: Option<String>,
    pub lat: Option<String>,
    #[serde(default)]
    pub urgent: Option<String>,
    pub name: Option<String>,
    pub contact: Option<String>,
    pub node_id: Option<String>,
}

fn coord(v: &Option<String>) -> Option<f64> {
    v.as_deref().and_then(|s| s.trim().parse().ok())
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
}

async fn community_groups(s: &AppState) -> Result<Vec<CommunityGroup>> {
    let scope = Scope::everything();
    let mut groups = vec![];
    for root in crate::tree::store::scope_roots(&s.db, &scope).await? {
        for sub in crate::tree::store::children(&s.db, &scope, root.id, false).await? {
            let communities = crate::tree::store::children(&s.db, &scope, sub.id, false)
                .await?
                .into_iter()
                .map(|c| (c.id, c.name.trim_end_matches("居委会").trim_end_matches("委会").to_string()))
                .collect();
            groups.push(CommunityGroup { name: sub.name, communities });
        }
    }
    Ok(groups)
}

pub async fn portal_report_form(State(s): State<AppState>) -> Result<Response> {
    Ok(render(&PortalReport { categories: categories(&s.db).await?, groups: community_groups(&s).await?, error: None }))
}

/// 居民提单 with an optional photo: the photo is checked before the order
/// is created, so a refused photo leaves no order behind either.
pub async fn portal_report(State(s): State<AppState>, form: Result<FormWithFiles<ReportForm>>) -> Result<Response> {
    let r = async {
        let FormWithFiles { form: f, files } = form?;
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
                categories: categories(&s.db).await?,
                groups: community_groups(&s).await?,
                error: Some(e.message()),
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
        None => render(&PortalTrack { order: None, code: String::new(), fresh: false, error: None }),
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
    Ok(render(&PortalTrack { order, code, fresh: q.new.is_some(), error }))
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
            };
            Ok((e.status(), render(&page)).into_response())
        }
    }
}
