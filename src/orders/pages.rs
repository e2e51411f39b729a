//! Work-order pages of the staff console: the queues and the order detail.
//! The field app's pages are in `field_pages`, the resident portal's in
//! `portal_pages`; they share the action forms defined here.

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, Uri},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use crate::web::{login_or_redirect, render, require_page, t, to_login, Msg as _, Shell};
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
        machine::{Action, ActionKind},
        store::{self, ActRequest, Actor, EventView, ListQuery, OrderView, Queue},
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
        K::Handle | K::Supervise | K::Urge => "note",
        K::FollowUp => "follow_up",
        K::HandleOnSpot => "on_spot",
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
pub(super) fn takes_photos(kind: &ActionKind) -> bool {
    matches!(kind, ActionKind::Handle | ActionKind::ReportBack | ActionKind::VerifyFail | ActionKind::HandleOnSpot)
}

pub(super) fn action_forms(kinds: &[ActionKind]) -> Vec<ActionForm> {
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
    /// The numbered pages around the current one (0 marks a gap).
    page_list: Vec<i64>,
    q: ListQuery,
    categories: Vec<Category>,
    places: Vec<super::queues::Place>,
    can_dispatch: bool,
    units: Vec<Unit>,
    now: i64,
}

impl OrdersPage {
    /// The query string of the current filters, without queue and page.
    fn filters(&self) -> String {
        let q = &self.q;
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("category", &q.category),
            ("q", &q.q),
            ("from", &q.from),
            ("to", &q.to),
            ("node", &q.node),
            ("source", &q.source),
            ("urgency", &q.urgency),
            ("state", &q.state),
            ("warning", &q.warning),
            ("sort", &q.sort),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                ser.append_pair(k, v);
            }
        }
        ser.finish()
    }

    fn link(&self, queue: &Queue, page: i64) -> String {
        let f = self.filters();
        format!("/orders?queue={}&page={page}{}{f}", queue.as_str(), if f.is_empty() { "" } else { "&" })
    }

    /// The export of what is on screen: this queue with these filters.
    fn export_link(&self) -> String {
        let f = self.filters();
        format!("/orders/export?queue={}{}{f}", self.queue.as_str(), if f.is_empty() { "" } else { "&" })
    }

    fn val<'a>(&self, v: &'a Option<String>) -> &'a str {
        v.as_deref().unwrap_or("")
    }

    /// ` selected` on the option that is the current filter's value.
    fn sel(&self, v: &Option<String>, option: &str) -> &'static str {
        if v.as_deref() == Some(option) {
            " selected"
        } else {
            ""
        }
    }

    fn sources(&self) -> [&'static str; 5] {
        ["resident", "patrol", "hotline", "video", "assigned"]
    }

    fn states(&self) -> Vec<(&'static str, &'static str)> {
        crate::orders::machine::State::ALL.iter().map(|s| (s.as_str(), t(s.label_key()))).collect()
    }
}

/// Pages 1, last, and two either side of the current one; 0 for a gap.
pub(super) fn page_numbers(page: i64, pages: i64) -> Vec<i64> {
    let mut out = vec![];
    for p in 1..=pages {
        if p == 1 || p == pages || (p - page).abs() <= 2 {
            out.push(p);
        } else if out.last() != Some(&0) {
            out.push(0);
        }
    }
    out
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
    let places = super::queues::places(&s.db, &user).await?;
    Ok(render(&OrdersPage {
        shell: Shell { user, active: "orders" },
        counts,
        queue,
        orders,
        total: page.total,
        page: page.page,
        pages,
        page_list: page_numbers(page.page, pages),
        q,
        categories: categories(&s.db).await?.into_iter().filter(|c| c.parent_code.is_none()).collect(),
        places,
        can_dispatch,
        units,
        now: crate::platform::db::now_ms(),
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
pub(super) struct DetailParts {
    pub(super) order: OrderView,
    pub(super) events: Vec<EventView>,
    pub(super) actions: Vec<ActionForm>,
    pub(super) suggestion: Suggestion,
    pub(super) units: Vec<Unit>,
    pub(super) attachments: Vec<Attachment>,
    pub(super) assisting: Vec<dispatch::UnitName>,
}

pub(super) async fn detail_parts(s: &AppState, user: &CurrentUser, id: i64) -> Result<DetailParts> {
    let order = store::get(&s.db, &s.clock(), user, id).await?;
    let events = store::events(&s.db, order.id).await?;
    let mut allowed = store::allowed(Some(user), &order);
    // 即报即办 is offered only where the catalogue allows it.
    if allowed.contains(&ActionKind::HandleOnSpot)
        && !store::on_spot_allowed(&s.db, &order.category_code, &order.urgency).await?
    {
        allowed.retain(|k| *k != ActionKind::HandleOnSpot);
    }
    let needs_units =
        allowed.iter().any(|k| matches!(k, ActionKind::Dispatch | ActionKind::Reassign | ActionKind::ApproveReturn));
    let units = if needs_units {
        units::choices_for(&s.db, user, units::community_of(&s.db, &order).await?, Some(&order.node_path)).await?
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
    /// 不满意原因 (checkboxes, repeated).
    #[serde(default)]
    pub reasons: Vec<String>,
    pub lead_unit: Option<i64>,
    /// 协办单位 (checkboxes, repeated).
    #[serde(default)]
    pub assisting: Vec<i64>,
    pub reassign_to: Option<i64>,
    pub days: Option<u32>,
    pub into: Option<i64>,
    /// 回访: what the call found (`reached`, `not_reached`, `satisfied`, `dissatisfied`).
    #[serde(default)]
    pub outcome: String,
    /// 即报即办: the acting person's unit, set by the handler, never read from the form.
    #[serde(skip)]
    pub unit: Option<i64>,
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
                // No choice is refused by the machine, never read as 满意.
                if !self.rating.trim().is_empty() {
                    obj.insert("rating".into(), serde_json::json!(self.rating));
                }
                obj.insert("reasons".into(), serde_json::json!(self.reasons));
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
            "follow_up" => {
                obj.insert("note".into(), serde_json::json!(self.note));
                if !self.outcome.trim().is_empty() {
                    obj.insert("outcome".into(), serde_json::json!(self.outcome.trim()));
                }
            }
            "on_spot" => {
                obj.insert("unit".into(), serde_json::json!(self.unit.unwrap_or(0)));
                obj.insert("result".into(), serde_json::json!(self.result));
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
pub(super) fn act_outcome(result: Result<String>) -> Response {
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

pub(super) fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(super) fn safe_back(back: &str, fallback: String) -> String {
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
        let FormWithFiles { form: mut f, files } = form?;
        f.unit = user.unit_id;
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
pub(super) async fn store_photos(
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
    if f.lead_unit.trim().is_empty() {
        return Html(format!("<p class=\"alert\" role=\"alert\">{}</p>", t("order.bulk_choose_unit"))).into_response();
    }
    if f.sel.is_empty() {
        return Html(format!("<p class=\"alert\" role=\"alert\">{}</p>", t("order.bulk_choose_orders")))
            .into_response();
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
            Err(e) => {
                // Name the order by its tracking code where the caller may see it.
                let code = match store::get(&s.db, &clock, &user, id).await {
                    Ok(o) => o.tracking_code,
                    Err(_) => t("order.bulk_unknown_order").to_string(),
                };
                failed.push(format!("{code}：{}", e.message()));
            }
        }
    }
    if failed.is_empty() {
        return act_outcome(Ok("/orders?queue=pending_dispatch".into()));
    }
    Html(format!(
        "<p class=\"alert\" role=\"alert\">{}{ok}{}；{}</p>",
        t("order.bulk_done_prefix"),
        t("order.bulk_done_suffix"),
        askama_escape(&failed.join("；"))
    ))
    .into_response()
}

/// The report form of the field app and of the portal.
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

pub(super) fn coord(v: &Option<String>) -> Option<f64> {
    v.as_deref().and_then(|s| s.trim().parse().ok())
}
