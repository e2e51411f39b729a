//! HTTP API of work orders under `/api/v1/`: staff queues and actions,
//! the dispatch catalogue, the holiday calendar, and the resident portal's
//! report, track and evaluate.

use crate::web::extract::{Json, Path, Query};
use axum::{extract::State, http::StatusCode};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    calendar::{self, Day},
    dispatch::{self, DispatchRule, RuleInput, Suggestion},
    machine::{Action, ActionKind},
    store::{self, ActRequest, Actor, EventView, ListQuery, NewOrder, OrderView, Reporter},
    units::{self, Unit},
};
use crate::kernel::clock::{CalendarEntry, DayKind, TimeLimit};
use crate::{
    attachments::{Attachment, PublicAttachment},
    audit::unmask::ReasonRequest,
    kernel::{
        error::{Error, ErrorBody, Result},
        perm::Perm,
        principal::CurrentUser,
        scope::Scope,
    },
    web::{AppState, ClientAddr},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders, create_order))
        .routes(routes!(queue_counts))
        .routes(routes!(order_map))
        .routes(routes!(get_order))
        .routes(routes!(reporter_contact))
        .routes(routes!(act))
        .routes(routes!(bulk_dispatch))
        .routes(routes!(list_units))
        .routes(routes!(create_department))
        .routes(routes!(update_unit))
        .routes(routes!(list_categories))
        .routes(routes!(update_category))
        .routes(routes!(list_dispatch_rules))
        .routes(routes!(put_dispatch_rule, delete_dispatch_rule))
        .routes(routes!(get_calendar, import_calendar))
        .routes(routes!(set_day, delete_day))
        .routes(routes!(portal_report))
        .routes(routes!(portal_track))
        .routes(routes!(portal_act))
        .routes(routes!(portal_locate))
}

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    pub orders: Vec<OrderView>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Orders on the map (一张图) as GeoJSON points.
#[derive(Serialize, ToSchema)]
pub struct OrderPoints {
    /// Always `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub features: Vec<OrderPoint>,
    /// More orders matched than a map shows (it shows the newest).
    pub truncated: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OrderPoint {
    /// Always `Feature`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub geometry: PointGeometry,
    pub properties: OrderPointProperties,
}

#[derive(Serialize, ToSchema)]
pub struct PointGeometry {
    /// Always `Point`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Longitude, latitude (WGS 84 as reported).
    pub coordinates: [f64; 2],
}

#[derive(Serialize, ToSchema)]
pub struct OrderPointProperties {
    pub id: i64,
    pub tracking_code: String,
    pub title: String,
    pub category_name: String,
    pub urgency: String,
    pub state: String,
    pub state_label: &'static str,
    /// The deadline light: `normal`, `yellow` or `red`.
    pub warning: String,
    pub overdue: bool,
    pub node_name: String,
    pub created_at: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MapQuery {
    /// A queue (as in `GET /api/v1/orders`), or `open` (default): every order
    /// being worked on.
    pub queue: Option<String>,
    /// Category code prefix, e.g. `03` or `0303`.
    pub category: Option<String>,
}

/// Where the orders of your area are: those with a location, a queue's or
/// by default every open one (在办), newest first, at most 2,000.
#[utoipa::path(get, path = "/api/v1/orders/map", tag = "orders", params(MapQuery), security(("bearer" = [])),
    responses((status = 200, body = OrderPoints), (status = 422, body = ErrorBody)))]
async fn order_map(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<MapQuery>,
) -> Result<Json<OrderPoints>> {
    user.require(Perm::OrdersRead)?;
    let q = ListQuery { queue: q.queue, category: q.category, ..Default::default() };
    let (orders, truncated) = store::located(&s.db, &s.clock(), &user, &q).await?;
    let features = orders
        .into_iter()
        .filter_map(|o| {
            let o = o.for_reader(&user);
            Some(OrderPoint {
                kind: "Feature",
                geometry: PointGeometry { kind: "Point", coordinates: [o.lon?, o.lat?] },
                properties: OrderPointProperties {
                    id: o.id,
                    tracking_code: o.tracking_code,
                    title: o.title,
                    category_name: o.category_name,
                    urgency: o.urgency,
                    state: o.state.as_str().to_string(),
                    state_label: o.state_label,
                    warning: o.warning,
                    overdue: o.overdue,
                    node_name: o.node_name,
                    created_at: o.created_at,
                },
            })
        })
        .collect();
    Ok(Json(OrderPoints { kind: "FeatureCollection", features, truncated }))
}

/// Orders in your scope, by queue (待受理, 待派单, 待签收, 办理中, 已超期, 督办 …).
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = OrderList), (status = 422, body = ErrorBody)))]
async fn list_orders(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<OrderList>> {
    user.require(Perm::OrdersRead)?;
    let page = store::list(&s.db, &s.clock(), &user, &q).await?;
    let orders = page.orders.into_iter().map(|o| o.for_reader(&user)).collect();
    Ok(Json(OrderList { orders, total: page.total, page: page.page, per_page: page.per_page }))
}

/// Report a matter as staff (网格员巡查, 热线, 上级交办 …).
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = NewOrder, security(("bearer" = [])),
    responses((status = 201, body = OrderView), (status = 422, body = ErrorBody)))]
async fn create_order(
    State(s): State<AppState>,
    user: CurrentUser,
    Json(input): Json<NewOrder>,
) -> Result<(StatusCode, Json<OrderView>)> {
    user.require(Perm::OrdersReport)?;
    let reporter = Reporter { user: Some(&user), crypto: &s.crypto, scope: user.scope() };
    Ok((StatusCode::CREATED, Json(store::create(&s.db, reporter, input).await?)))
}

#[derive(Serialize, ToSchema)]
pub struct QueueCount {
    pub queue: String,
    pub label: &'static str,
    pub count: i64,
}

/// Counts of every queue in your scope.
#[utoipa::path(get, path = "/api/v1/orders/counts", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Vec<QueueCount>)))]
async fn queue_counts(State(s): State<AppState>, user: CurrentUser) -> Result<Json<Vec<QueueCount>>> {
    user.require(Perm::OrdersRead)?;
    let counts = store::queue_counts(&s.db, &user).await?;
    Ok(Json(
        counts.into_iter().map(|(q, n)| QueueCount { queue: q.as_str().into(), label: q.label(), count: n }).collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct OrderDetail {
    pub order: OrderView,
    pub events: Vec<EventView>,
    /// Exactly the actions you may take now.
    #[schema(value_type = Vec<String>)]
    pub allowed_actions: Vec<ActionKind>,
    /// The units assisting the lead unit (协办单位), as dispatched.
    pub assisting_units: Vec<dispatch::UnitName>,
    /// The dispatch catalogue's suggestion.
    pub suggestion: Suggestion,
    /// Photos and documents; `event_seq` ties one to its timeline step.
    pub attachments: Vec<Attachment>,
}

/// One order with its timeline and the actions you may take.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = OrderDetail), (status = 404, body = ErrorBody)))]
async fn get_order(State(s): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<OrderDetail>> {
    user.require(Perm::OrdersRead)?;
    let order = store::get(&s.db, &s.clock(), &user, id).await?;
    let events = store::events(&s.db, order.id).await?;
    let allowed_actions = store::allowed(Some(&user), &order);
    let suggestion = dispatch::suggest(&s.db, &order).await?;
    let attachments = crate::attachments::store::list(&s.db, order.id).await?;
    let assisting_units = dispatch::unit_names(&s.db, &order.facts.assisting_units).await?;
    let (order, events) = (order.for_reader(&user), events.into_iter().map(|e| e.for_reader(&user)).collect());
    Ok(Json(OrderDetail { order, events, allowed_actions, assisting_units, suggestion, attachments }))
}

/// Take an action (受理, 派单, 签收, 反馈, 核查, 退单, 延期, 挂账, 上报 …).
/// A stale `version` answers 409 with what changed.
#[utoipa::path(post, path = "/api/v1/orders/{id}/actions", tag = "orders", params(("id" = i64, Path)),
    request_body = ActRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn act(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(req): Json<ActRequest>,
) -> Result<Json<OrderView>> {
    user.require(Perm::OrdersRead)?;
    let clock = s.clock();
    let order = store::get_to_act(&s.db, &clock, &user, id, req.version).await?;
    Ok(Json(store::act(&s.db, &clock, Actor::User(&user), &order, &req).await?.for_reader(&user)))
}

#[derive(Serialize, ToSchema)]
pub struct ReporterContact {
    pub order_id: i64,
    /// The full contact the reporter left (none for anonymous reports).
    pub contact: Option<String>,
    /// The audit entry that records this read.
    pub audit_id: i64,
}

/// The reporter's full contact, e.g. to call them back (回访). Needs the
/// unmask or the 回访 permission and a stated reason; every read is audited. Orders
/// outside your scope answer 404 like missing ones.
#[utoipa::path(post, path = "/api/v1/orders/{id}/reporter-contact", tag = "orders", params(("id" = i64, Path)),
    request_body = ReasonRequest, security(("bearer" = [])),
    responses((status = 200, body = ReporterContact), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn reporter_contact(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(req): Json<ReasonRequest>,
) -> Result<Json<ReporterContact>> {
    let (contact, audit_id) = disclose_contact(&s, &user, addr, id, &req.reason).await?;
    Ok(Json(ReporterContact { order_id: id, contact, audit_id }))
}

/// The reporter's full contact for the pages (see `reporter_contact`).
pub async fn reveal_contact(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    id: i64,
    reason: &str,
) -> Result<Option<String>> {
    Ok(disclose_contact(s, user, addr, id, reason).await?.0)
}

/// Checks the caller and the reason, records the disclosure in the audit
/// log, then decrypts: the contact and the audit entry's id.
async fn disclose_contact(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    id: i64,
    reason: &str,
) -> Result<(Option<String>, i64)> {
    use crate::audit::{record, Actor, Object};
    use crate::orders::action;
    if !may_see_contact(user) {
        return Err(Error::Forbidden);
    }
    let reason = crate::audit::unmask::check_reason(reason)?;
    let order = store::get(&s.db, &s.clock(), user, id).await?;
    let sealed: Option<String> = sqlx::query_scalar("select reporter_contact from orders where id = $1")
        .bind(order.id)
        .fetch_one(&s.db.pool)
        .await?;
    let contact = sealed
        .map(|c| s.crypto.decrypt(crate::platform::crypto::Field::ORDER_CONTACT, &c))
        .transpose()
        .map_err(anyhow::Error::from)?;
    let audit_id = record(
        &s.db,
        &Actor::user(user, addr),
        action::ORDER_CONTACT_UNMASK,
        Some(Object::new("order", id)),
        Some(reason),
        serde_json::json!({"field": "reporter_contact", "node_id": order.node_id}),
    )
    .await?;
    Ok((contact, audit_id))
}

/// Who may ask for a reporter's full contact (with a reason, audited):
/// those who unmask personal data, and those who make the 回访 calls.
pub fn may_see_contact(user: &CurrentUser) -> bool {
    user.can(Perm::MemberUnmask) || user.can(Perm::OrdersFollowUp)
}

#[derive(Deserialize, ToSchema)]
pub struct VersionedId {
    pub id: i64,
    pub version: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct BulkDispatch {
    pub orders: Vec<VersionedId>,
    /// Null: each order goes where the dispatch catalogue suggests (its lead and assisting units).
    pub lead_unit: Option<i64>,
    /// With `lead_unit` only.
    #[serde(default)]
    pub assisting: Vec<i64>,
    pub override_reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResult {
    pub id: i64,
    pub ok: bool,
    /// The error code when not ok.
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Dispatch several orders to one unit, or each as the dispatch catalogue suggests (each succeeds
/// or fails on its own).
#[utoipa::path(post, path = "/api/v1/orders/bulk-dispatch", tag = "orders", request_body = BulkDispatch,
    security(("bearer" = [])), responses((status = 200, body = Vec<BulkResult>)))]
async fn bulk_dispatch(
    State(s): State<AppState>,
    user: CurrentUser,
    Json(b): Json<BulkDispatch>,
) -> Result<Json<Vec<BulkResult>>> {
    user.require(Perm::OrdersDispatch)?;
    if b.orders.len() > 200 {
        return Err(Error::invalid("order.bulk_too_many", "orders"));
    }
    let clock = s.clock();
    let mut out = vec![];
    for o in b.orders {
        let r = async {
            let order = store::get_to_act(&s.db, &clock, &user, o.id, o.version).await?;
            let action = dispatch_action(&s.db, &order, b.lead_unit, &b.assisting, b.override_reason.clone()).await?;
            store::act(&s.db, &clock, Actor::User(&user), &order, &ActRequest { version: o.version, action }).await
        }
        .await;
        out.push(match r {
            Ok(_) => BulkResult { id: o.id, ok: true, code: None, message: None },
            Err(e) => BulkResult { id: o.id, ok: false, code: Some(e.code().to_string()), message: Some(e.message()) },
        });
    }
    Ok(Json(out))
}

/// A dispatch to the given unit, or (none given) to the catalogue's suggestion.
pub async fn dispatch_action(
    db: &crate::platform::db::Db,
    order: &OrderView,
    lead_unit: Option<i64>,
    assisting: &[i64],
    override_reason: Option<String>,
) -> Result<Action> {
    let (lead_unit, assisting) = match lead_unit {
        Some(u) => (u, assisting.to_vec()),
        None => {
            let sug = dispatch::suggest(db, order).await?;
            let lead = sug.lead.ok_or_else(|| Error::invalid("dispatch.no_suggestion", "lead_unit"))?;
            (lead.id, sug.assisting.iter().map(|u| u.id).collect())
        }
    };
    Ok(Action::Dispatch { lead_unit, assisting, override_reason })
}

/// The dispatch catalogue (派单目录) rules that apply in your area: those of your region and below,
/// and those of the regions above it. For editors of the catalogue and dispatchers.
#[utoipa::path(get, path = "/api/v1/dispatch-rules", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Vec<DispatchRule>), (status = 403, body = ErrorBody)))]
async fn list_dispatch_rules(State(s): State<AppState>, user: CurrentUser) -> Result<Json<Vec<DispatchRule>>> {
    Ok(Json(dispatch::list(&s.db, &user).await?))
}

/// Set the default lead and assisting units for a category in a region of yours (district,
/// subdistrict or community); saving again replaces the rule. A department's matter may not
/// default to a community or a grid.
#[utoipa::path(put, path = "/api/v1/nodes/{id}/dispatch-rules/{code}", tag = "orders",
    params(("id" = i64, Path, description = "the region"), ("code" = String, Path, description = "the category")),
    request_body = RuleInput, security(("bearer" = [])),
    responses((status = 200, body = DispatchRule), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn put_dispatch_rule(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path((id, code)): Path<(i64, String)>,
    Json(input): Json<RuleInput>,
) -> Result<Json<DispatchRule>> {
    Ok(Json(dispatch::save(&s, &user, addr, (id, &code), input).await?))
}

/// Remove the rule of a category in a region of yours, if any; the wider rule (or the default)
/// applies again.
#[utoipa::path(delete, path = "/api/v1/nodes/{id}/dispatch-rules/{code}", tag = "orders",
    params(("id" = i64, Path, description = "the region"), ("code" = String, Path, description = "the category")),
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_dispatch_rule(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path((id, code)): Path<(i64, String)>,
) -> Result<axum::http::StatusCode> {
    dispatch::remove(&s, &user, addr, (id, &code)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Add a functional department (职能部门) at your node (the district or above); categories can
/// then belong to it and the dispatch catalogue name it.
#[utoipa::path(post, path = "/api/v1/departments", tag = "orders", request_body = units::NewDepartment,
    security(("bearer" = [])),
    responses((status = 201, body = Unit), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_department(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Json(input): Json<units::NewDepartment>,
) -> Result<(axum::http::StatusCode, Json<Unit>)> {
    Ok((axum::http::StatusCode::CREATED, Json(units::create_department(&s, &user, addr, input).await?)))
}

/// Rename a unit of your area, or stop / resume its taking new orders.
#[utoipa::path(patch, path = "/api/v1/units/{id}", tag = "orders", params(("id" = i64, Path)),
    request_body = units::UnitPatch, security(("bearer" = [])),
    responses((status = 200, body = Unit), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_unit(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Json(patch): Json<units::UnitPatch>,
) -> Result<Json<Unit>> {
    Ok(Json(units::update_unit(&s, &user, addr, id, patch).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitQuery {
    /// Include the grids and centre of this community.
    pub community: Option<i64>,
}

/// Units you may dispatch to: departments and centres of your area and of the levels above it,
/// and a community's grids and centre. A community outside your area adds nothing.
#[utoipa::path(get, path = "/api/v1/units", tag = "orders", params(UnitQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Unit>)))]
async fn list_units(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<UnitQuery>,
) -> Result<Json<Vec<Unit>>> {
    user.require(Perm::OrdersRead)?;
    Ok(Json(units::choices(&s.db, &user, q.community).await?))
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Category {
    pub code: String,
    pub parent_code: Option<String>,
    pub name: String,
    /// The department the matter belongs to, if any.
    pub owner_unit: Option<String>,
    /// 签收时限, e.g. `{"unit":"working_hours","amount":2}`.
    #[schema(value_type = Object)]
    pub sign_limit: TimeLimit,
    /// 办理时限 (normal urgency).
    #[schema(value_type = Object)]
    pub handle_limit: TimeLimit,
    /// 办理时限 of urgent orders.
    #[schema(value_type = Object)]
    pub urgent_handle_limit: TimeLimit,
    /// 评价时限: how long the reporter has to rate the result.
    #[schema(value_type = Object)]
    pub evaluate_limit: TimeLimit,
    /// Offered to residents on the portal; internal categories (e.g.
    /// 重点人员动态) are for staff only and refused from the portal.
    pub resident_facing: bool,
    /// 即报即办: whether the reporting grid worker may handle such a matter on
    /// the spot and close it: `none`, `normal` (not when urgent) or `any`.
    pub on_spot: String,
}

impl Category {
    /// Whether its 即报即办 rule is `rule`.
    pub fn on_spot_is(&self, rule: &str) -> bool {
        self.on_spot == rule
    }
}

/// The values of `Category::on_spot`.
pub const ON_SPOT_RULES: [&str; 3] = ["none", "normal", "any"];

fn stored_limit(text: String) -> Result<TimeLimit> {
    Ok(serde_json::from_str(&text).map_err(anyhow::Error::from)?)
}

pub async fn categories(db: &crate::platform::db::Db) -> Result<Vec<Category>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "select code, parent_code, name, owner_unit, sign_limit, handle_limit, urgent_handle_limit, evaluate_limit, \
         resident_facing, on_spot from categories order by sort, code",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Category {
                code: r.try_get(0)?,
                parent_code: r.try_get(1)?,
                name: r.try_get(2)?,
                owner_unit: r.try_get(3)?,
                sign_limit: stored_limit(r.try_get(4)?)?,
                handle_limit: stored_limit(r.try_get(5)?)?,
                urgent_handle_limit: stored_limit(r.try_get(6)?)?,
                evaluate_limit: stored_limit(r.try_get(7)?)?,
                resident_facing: r.try_get::<i64, _>(8)? != 0,
                on_spot: r.try_get(9)?,
            })
        })
        .collect()
}

/// The category catalogue (平安建设, 社情民意, 公共服务, 应急处置 and sub-categories). Public.
#[utoipa::path(get, path = "/api/v1/categories", tag = "orders", responses((status = 200, body = Vec<Category>)))]
async fn list_categories(State(s): State<AppState>) -> Result<Json<Vec<Category>>> {
    Ok(Json(categories(&s.db).await?))
}

/// A category's name, owning department and time limits, as an administrator sets them.
#[derive(Deserialize, ToSchema)]
pub struct CategoryInput {
    pub name: String,
    /// The department key the matter belongs to (its unit's code is `dept:<key>`); null when it
    /// belongs to the communities. A department's matter is not pushed down without a reason.
    pub owner_unit: Option<String>,
    #[schema(value_type = Object)]
    pub sign_limit: TimeLimit,
    #[schema(value_type = Object)]
    pub handle_limit: TimeLimit,
    #[schema(value_type = Object)]
    pub urgent_handle_limit: TimeLimit,
    #[schema(value_type = Object)]
    pub evaluate_limit: TimeLimit,
    /// Offer it to residents on the portal; unchanged when left out.
    #[serde(default)]
    pub resident_facing: Option<bool>,
    /// 即报即办: `none`, `normal` or `any`; unchanged when left out.
    #[serde(default)]
    pub on_spot: Option<String>,
}

/// Edit a category of the catalogue (派单目录): its name, the department it belongs to and its
/// time limits. Deadlines started afterwards follow the new limits; running ones keep theirs.
#[utoipa::path(put, path = "/api/v1/categories/{code}", tag = "orders", params(("code" = String, Path)),
    request_body = CategoryInput, security(("bearer" = [])),
    responses((status = 200, body = Category), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_category(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(code): Path<String>,
    Json(input): Json<CategoryInput>,
) -> Result<Json<Category>> {
    Ok(Json(save_category(&s, &user, addr, code, input).await?))
}

/// Checks and stores a category edit (API and console page alike), then
/// reloads this node's copy and records the edit in the audit log.
pub async fn save_category(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    code: String,
    input: CategoryInput,
) -> Result<Category> {
    use crate::audit::{record_write, Object};
    use crate::orders::action;
    use sqlx::Row;
    user.require(Perm::CalendarWrite)?;
    let name = crate::kernel::codes::BoundedText::<50>::parse(&input.name)
        .map_err(|_| Error::invalid("text.empty", "name"))?;
    for (field, limit) in [
        ("sign_limit", input.sign_limit),
        ("handle_limit", input.handle_limit),
        ("urgent_handle_limit", input.urgent_handle_limit),
        ("evaluate_limit", input.evaluate_limit),
    ] {
        if !limit_in_range(limit) {
            return Err(Error::invalid("category.bad_limit", field));
        }
    }
    let owner = match input.owner_unit.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(key) => {
            let known =
                sqlx::query("select 1 from units where code = $1 and kind = 'department' and status = 'active'")
                    .bind(format!("dept:{key}"))
                    .fetch_optional(&s.db.pool)
                    .await?
                    .is_some();
            if !known {
                return Err(Error::invalid("category.owner_unknown", "owner_unit"));
            }
            Some(key.to_string())
        }
    };
    let on_spot = match input.on_spot.as_deref().map(str::trim) {
        None => None,
        Some(rule) if ON_SPOT_RULES.contains(&rule) => Some(rule.to_string()),
        Some(_) => return Err(Error::invalid("category.bad_on_spot", "on_spot")),
    };
    let text = |l: TimeLimit| serde_json::to_string(&l).map_err(anyhow::Error::from);
    let updated = sqlx::query(
        "update categories set name = $1, owner_unit = $2, sign_limit = $3, handle_limit = $4, \
         urgent_handle_limit = $5, evaluate_limit = $6, resident_facing = coalesce($8, resident_facing), \
         on_spot = coalesce($9, on_spot) where code = $7",
    )
    .bind(name.as_str())
    .bind(&owner)
    .bind(text(input.sign_limit)?)
    .bind(text(input.handle_limit)?)
    .bind(text(input.urgent_handle_limit)?)
    .bind(text(input.evaluate_limit)?)
    .bind(&code)
    .bind(input.resident_facing.map(i64::from))
    .bind(&on_spot)
    .execute(&s.db.pool)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(Error::NotFound);
    }
    // This node uses the new limits at once; others within their refresh interval.
    super::refs::reload(&s.db).await?;
    let detail = serde_json::json!({"name": name.as_str(), "owner_unit": owner, "sign_limit": input.sign_limit,
        "handle_limit": input.handle_limit, "urgent_handle_limit": input.urgent_handle_limit,
        "evaluate_limit": input.evaluate_limit, "resident_facing": input.resident_facing, "on_spot": on_spot});
    record_write(s, user, addr, action::CATEGORY_UPDATE, Object::new("category", &code), detail).await?;
    let row = sqlx::query("select parent_code, resident_facing, on_spot from categories where code = $1")
        .bind(&code)
        .fetch_one(&s.db.pool)
        .await?;
    Ok(Category {
        parent_code: row.try_get(0)?,
        resident_facing: row.try_get::<i64, _>(1)? != 0,
        code,
        name: name.as_str().to_string(),
        owner_unit: owner,
        sign_limit: input.sign_limit,
        handle_limit: input.handle_limit,
        urgent_handle_limit: input.urgent_handle_limit,
        evaluate_limit: input.evaluate_limit,
        on_spot: row.try_get(2)?,
    })
}

/// Limits an administrator may set: at least one unit, at most a year.
fn limit_in_range(limit: TimeLimit) -> bool {
    match limit {
        TimeLimit::WorkingDays(n) => (1..=250).contains(&n),
        TimeLimit::WorkingHours(n) => (1..=2000).contains(&n),
        TimeLimit::CalendarHours(n) => (1..=8760).contains(&n),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearQuery {
    pub year: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct CalendarView {
    pub days: Vec<Day>,
    /// Years the clock has data for; other years fall back to Monday–Friday.
    pub covered_years: Vec<i32>,
}

/// Statutory holidays and make-up working days (节假日与调休).
#[utoipa::path(get, path = "/api/v1/calendar", tag = "calendar", params(YearQuery), security(("bearer" = [])),
    responses((status = 200, body = CalendarView)))]
async fn get_calendar(
    State(s): State<AppState>,
    user: CurrentUser,
    Query(q): Query<YearQuery>,
) -> Result<Json<CalendarView>> {
    user.require(Perm::OrdersRead)?;
    let days = calendar::entries(&s.db, q.year).await?;
    let covered_years = s.clock().calendar().covered_years().into_iter().collect();
    Ok(Json(CalendarView { days, covered_years }))
}

/// Import a year's arrangement: CSV `date,kind,name` or an iCal feed, as the request body.
#[utoipa::path(post, path = "/api/v1/calendar", tag = "calendar", request_body(content = String, content_type = "text/plain"),
    security(("bearer" = [])), responses((status = 200, body = CalendarView), (status = 422, body = ErrorBody)))]
async fn import_calendar(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    body: String,
) -> Result<Json<CalendarView>> {
    import_calendar_text(&s, &user, addr, &body).await?;
    get_calendar(State(s), user, Query(YearQuery { year: None })).await
}

/// Imports CSV or iCal text (API and console page); answers how many days it set.
pub async fn import_calendar_text(s: &AppState, user: &CurrentUser, addr: Option<String>, body: &str) -> Result<usize> {
    user.require(Perm::CalendarWrite)?;
    let entries = calendar::parse_import(body)?;
    calendar::upsert(&s.db, &entries).await?;
    super::calendar::reload(&s).await?;
    calendar_audited(s, user, addr, serde_json::json!({"imported": entries.len()})).await?;
    Ok(entries.len())
}

/// Calendar edits change every deadline computed after them: audited.
async fn calendar_audited(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    detail: serde_json::Value,
) -> Result<()> {
    use crate::audit::{record_write, Object};
    use crate::orders::action;
    record_write(s, user, addr, action::CALENDAR_UPDATE, Object::new("calendar", "working_days"), detail).await
}

#[derive(Deserialize, ToSchema)]
pub struct DayInput {
    /// `holiday` or `workday`
    pub kind: String,
    pub name: String,
}

fn parse_day(day: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| Error::invalid("calendar.bad_date", "day"))
}

/// Set one day as a holiday or a make-up working day.
#[utoipa::path(put, path = "/api/v1/calendar/{day}", tag = "calendar", params(("day" = String, Path)),
    request_body = DayInput, security(("bearer" = [])), responses((status = 204), (status = 422, body = ErrorBody)))]
async fn set_day(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(day): Path<String>,
    Json(d): Json<DayInput>,
) -> Result<StatusCode> {
    set_calendar_day(&s, &user, addr, &day, &d).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets one day's arrangement (API and console page).
pub async fn set_calendar_day(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    day: &str,
    d: &DayInput,
) -> Result<()> {
    user.require(Perm::CalendarWrite)?;
    let date = parse_day(day)?;
    let kind = DayKind::parse(&d.kind).ok_or_else(|| Error::invalid("calendar.bad_kind", "kind"))?;
    let name =
        crate::kernel::codes::BoundedText::<50>::parse(&d.name).map_err(|_| Error::invalid("text.empty", "name"))?;
    calendar::upsert(&s.db, &[CalendarEntry::new(date, kind, name.as_str())]).await?;
    super::calendar::reload(&s).await?;
    calendar_audited(s, user, addr, serde_json::json!({"day": day, "kind": d.kind, "name": name.as_str()})).await
}

/// Remove a day's override (it follows the plain weekday rule again).
#[utoipa::path(delete, path = "/api/v1/calendar/{day}", tag = "calendar", params(("day" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 422, body = ErrorBody)))]
async fn delete_day(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(day): Path<String>,
) -> Result<StatusCode> {
    remove_calendar_day(&s, &user, addr, &day).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a day's override (API and console page).
pub async fn remove_calendar_day(s: &AppState, user: &CurrentUser, addr: Option<String>, day: &str) -> Result<()> {
    user.require(Perm::CalendarWrite)?;
    calendar::remove(&s.db, parse_day(day)?).await?;
    super::calendar::reload(&s).await?;
    calendar_audited(s, user, addr, serde_json::json!({"day": day, "removed": true})).await
}

#[derive(Deserialize, ToSchema)]
pub struct ResidentReport {
    pub category_code: String,
    pub title: String,
    pub description: String,
    pub address: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// The community (社区/村) when there is no point.
    pub node_id: Option<i64>,
    /// Leave empty to report anonymously.
    pub name: Option<String>,
    /// Kept private.
    pub contact: Option<String>,
}

/// What a resident sees of an order: no staff names or phone numbers, no
/// other residents' data.
#[derive(Serialize, ToSchema)]
pub struct PublicOrder {
    pub tracking_code: String,
    pub title: String,
    pub category_name: String,
    pub state: String,
    pub state_label: &'static str,
    pub created_at: i64,
    pub version: i64,
    /// Who handles it and by when, in plain words (none once it is over).
    pub progress: Option<String>,
    pub timeline: Vec<PublicStep>,
    /// Actions the reporter may take now (`evaluate`, `withdraw`).
    #[schema(value_type = Vec<String>)]
    pub allowed_actions: Vec<ActionKind>,
    pub rating: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicStep {
    pub at: i64,
    pub label: &'static str,
    pub state_label: &'static str,
    /// Public text: results and replies; staff-internal reasons are omitted.
    pub note: Option<String>,
    /// The unit the step concerns, or the rating given, in words.
    pub detail: Option<String>,
    /// The reporter's photos (on the report) and the result photos (on
    /// 反馈), as copies without location or other metadata.
    pub photos: Vec<PublicAttachment>,
}

pub async fn public_view(s: &AppState, order: &OrderView) -> Result<PublicOrder> {
    use crate::kernel::i18n::t;
    // Public: numbers typed into the text are masked for everyone.
    let events = store::events(&s.db, order.id).await?.into_iter().map(store::EventView::masked);
    let photos = crate::orders::attachment_api::public_photos(s, order.id, &order.tracking_code).await?;
    // Units are named (who handles it is public); staff names are not.
    let mut lead: Option<String> = None;
    let mut timeline = vec![];
    for e in events {
        if e.lead_unit_name.is_some() {
            lead = e.lead_unit_name.clone();
        }
        if matches!(
            e.action.as_str(),
            "handle" | "urge" | "supervise" | "mark_overdue" | "request_extension" | "refuse_extension"
        ) {
            continue;
        }
        let detail = match e.action.as_str() {
            "dispatch" | "reassign" | "approve_return" | "evaluate" => e.detail(),
            "sign" | "report_back" => lead.as_ref().map(|u| format!("{}{u}", t("portal.step_unit"))),
            _ => None,
        };
        timeline.push(PublicStep {
            photos: photos.iter().filter(|p| p.event_seq == Some(e.seq)).cloned().collect(),
            at: e.at,
            label: if e.action == "create" { t("order.action.create") } else { e.action_label },
            state_label: e.to_state_label,
            detail,
            note: match e.action.as_str() {
                "report_back" | "reject" | "evaluate" | "withdraw" | "conclude" => e.reason,
                _ => None,
            },
        });
    }
    Ok(PublicOrder {
        tracking_code: order.tracking_code.clone(),
        title: crate::kernel::redact::mask_numbers(&order.title).into_owned(),
        category_name: order.category_name.clone(),
        state: order.state.as_str().into(),
        state_label: order.state_label,
        created_at: order.created_at,
        version: order.version,
        progress: progress(order),
        timeline,
        allowed_actions: store::allowed(None, order),
        rating: order.rating.clone(),
    })
}

/// Where the order stands, in the words a resident uses: who handles it
/// and by when ("已由某某街道办事处受理，承诺12月8日前办结").
fn progress(order: &OrderView) -> Option<String> {
    use crate::kernel::i18n::t;
    let unit = order.lead_unit_name.as_deref();
    let day = |ms: i64| {
        chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, ms)
            .single()
            .map(|d| d.with_timezone(&crate::kernel::clock::CHINA_STANDARD_TIME).format("%-m月%-d日").to_string())
    };
    use super::machine::State as S;
    let text = match (order.state, unit) {
        (S::PendingAccept, _) => t("portal.progress.pending_accept").to_string(),
        (S::PendingDispatch, _) => t("portal.progress.pending_dispatch").to_string(),
        (S::PendingSign, Some(u)) => t("portal.progress.pending_sign").replace("{unit}", u),
        (S::Handling, Some(u)) => match (order.deadline_kind.as_deref(), order.deadline_at.and_then(day)) {
            (Some("handle"), Some(d)) => t("portal.progress.handling_by").replace("{unit}", u).replace("{date}", &d),
            _ => t("portal.progress.handling").replace("{unit}", u),
        },
        (S::PendingVerify, Some(u)) => t("portal.progress.pending_verify").replace("{unit}", u),
        (S::PendingEvaluation, _) => t("portal.progress.pending_evaluation").to_string(),
        (S::ReturnRequested, _) => t("portal.progress.return_requested").to_string(),
        (S::InDeliberation, _) => t("portal.progress.in_deliberation").to_string(),
        (S::Supervision, _) => t("portal.progress.supervision").to_string(),
        (S::Shelved, _) => t("portal.progress.shelved").to_string(),
        _ => return None,
    };
    Some(text)
}

/// Report a problem as a resident (居民提单). No login; returns the tracking code.
#[utoipa::path(post, path = "/api/v1/portal/orders", tag = "portal", request_body = ResidentReport,
    responses((status = 201, body = PublicOrder), (status = 422, body = ErrorBody)))]
async fn portal_report(
    State(s): State<AppState>,
    Json(r): Json<ResidentReport>,
) -> Result<(StatusCode, Json<PublicOrder>)> {
    let input = NewOrder {
        source: store::Source::Resident,
        category_code: r.category_code,
        urgency: None,
        title: r.title,
        description: r.description,
        address: r.address,
        lon: r.lon,
        lat: r.lat,
        node_id: r.node_id,
        reporter_name: r.name.filter(|n| !n.trim().is_empty()),
        reporter_contact: r.contact,
    };
    let order =
        store::create(&s.db, Reporter { user: None, crypto: &s.crypto, scope: Scope::everything() }, input).await?;
    Ok((StatusCode::CREATED, Json(public_view(&s, &order).await?)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocateQuery {
    pub lon: f64,
    pub lat: f64,
}

/// Where a point lies, in the words of the report form.
#[derive(Serialize, ToSchema)]
pub struct PortalPlace {
    /// The community (社区/村) whose grid contains the point: the report
    /// form's `node_id`.
    pub community_id: i64,
    pub community_name: String,
    pub subdistrict_name: Option<String>,
    pub grid_name: String,
    /// The nearest building of that grid, if the grid has buildings.
    pub building_name: Option<String>,
    /// One line for people: "胜利街道 · 胜利西街社区 · 第三网格（附近：3号楼）".
    pub place: String,
}

/// Which community a point is in (the grid polygon containing it) and the
/// nearest building: the portal's report form sets its community from the
/// phone's location and shows a place instead of coordinates. Public.
#[utoipa::path(get, path = "/api/v1/portal/locate", tag = "portal", params(LocateQuery),
    responses((status = 200, body = PortalPlace), (status = 422, body = ErrorBody)))]
async fn portal_locate(State(s): State<AppState>, Query(q): Query<LocateQuery>) -> Result<Json<PortalPlace>> {
    use crate::tree::store as tree;
    let everything = Scope::everything();
    let grid = tree::locate_grid(&s.db, &everything, q.lon, q.lat)
        .await?
        .ok_or_else(|| Error::invalid("order.outside_area", "lon"))?;
    let community = tree::get_node(&s.db, &everything, grid.parent_id.ok_or(Error::NotFound)?).await?;
    let subdistrict = match community.parent_id {
        Some(p) => Some(tree::get_node(&s.db, &everything, p).await?.name),
        None => None,
    };
    let building = tree::nearest_building(&s.db, grid.id, q.lon, q.lat).await?.map(|b| b.name);
    let community_name = portal_community_name(&community.name);
    // "黑龙潭社区 · 黑龙潭社区第一网格" says the community twice.
    let community_part = (!grid.name.starts_with(&community_name)).then_some(community_name.as_str());
    let mut place = [subdistrict.as_deref(), community_part, Some(grid.name.as_str())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    if let Some(b) = &building {
        place.push_str(&crate::kernel::i18n::t("portal.near").replace("{}", b));
    }
    Ok(Json(PortalPlace {
        community_id: community.id,
        community_name,
        subdistrict_name: subdistrict,
        grid_name: grid.name,
        building_name: building,
        place,
    }))
}

/// A community's name as residents say it (without 居委会/村委会).
pub fn portal_community_name(name: &str) -> String {
    name.trim_end_matches("居委会").trim_end_matches("委会").to_string()
}

/// Follow a report by its tracking code.
#[utoipa::path(get, path = "/api/v1/portal/orders/{code}", tag = "portal", params(("code" = String, Path)),
    responses((status = 200, body = PublicOrder), (status = 404, body = ErrorBody)))]
async fn portal_track(State(s): State<AppState>, Path(code): Path<String>) -> Result<Json<PublicOrder>> {
    let order = store::get_by_tracking_code(&s.db, &s.clock(), &code).await?;
    Ok(Json(public_view(&s, &order).await?))
}

/// As the reporter, by tracking code: evaluate (评单) or withdraw.
#[utoipa::path(post, path = "/api/v1/portal/orders/{code}/actions", tag = "portal", params(("code" = String, Path)),
    request_body = ActRequest, responses((status = 200, body = PublicOrder), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn portal_act(
    State(s): State<AppState>,
    Path(code): Path<String>,
    Json(req): Json<ActRequest>,
) -> Result<Json<PublicOrder>> {
    let clock = s.clock();
    let order = store::get_by_tracking_code(&s.db, &clock, &code).await?;
    if !matches!(req.action, Action::Evaluate { .. } | Action::Withdraw { .. }) {
        return Err(Error::Forbidden);
    }
    let after = store::act(&s.db, &clock, Actor::Resident, &order, &req).await?;
    Ok(Json(public_view(&s, &after).await?))
}
