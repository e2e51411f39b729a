//! Storage of work orders. An order row caches the state derived from its
//! append-only events; every action goes through the pure state machine
//! and is written with an optimistic version check, so two people acting at
//! once never both succeed and no update is lost.

use chrono::{DateTime, TimeZone, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::{
    machine::{self, Action, ActionKind, ActorRole, ClockEffect, Level, Order, State},
    refs,
};
use crate::kernel::clock::{Clock, LimitKind, TimeLimit, Warning};
use crate::{
    kernel::{
        codes::BoundedText,
        error::{Error, Result, ResultExt},
        perm::Perm,
        principal::CurrentUser,
        scope::Scope,
    },
    platform::{
        db::{now_ms, Backend, Cols, Db, Statements, V},
        outbox::NewEvent,
    },
    tree::store as tree,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// 居民提单
    Resident,
    /// 网格员巡查
    Patrol,
    /// 12345 热线
    Hotline,
    /// 视频告警
    Video,
    /// 上级交办
    Assigned,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Resident => "resident",
            Source::Patrol => "patrol",
            Source::Hotline => "hotline",
            Source::Video => "video",
            Source::Assigned => "assigned",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Normal,
    Urgent,
}

/// What the API and pages show of an order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub tracking_code: String,
    pub source: String,
    pub category_code: String,
    pub category_name: String,
    pub urgency: String,
    pub title: String,
    pub description: String,
    pub address: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub node_id: i64,
    pub node_name: String,
    #[schema(value_type = String)]
    pub level: Level,
    #[schema(value_type = String)]
    pub state: State,
    pub state_label: &'static str,
    pub lead_unit_id: Option<i64>,
    pub lead_unit_name: Option<String>,
    pub reporter_name: Option<String>,
    /// The reporter's contact, masked (`139****1111`); the full one needs
    /// `POST /api/v1/orders/{id}/reporter-contact` with a reason.
    pub reporter_contact_masked: Option<String>,
    pub deadline_kind: Option<String>,
    pub deadline_at: Option<i64>,
    /// `normal`, `yellow` (80% of the limit used) or `red` (overdue).
    pub warning: String,
    pub paused: bool,
    pub overdue: bool,
    pub rating: Option<String>,
    /// Send back with every action.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    #[serde(skip)]
    pub facts: Order,
    #[serde(skip)]
    pub reporter_user_id: Option<i64>,
    #[serde(skip)]
    pub deadline_start: Option<i64>,
    #[serde(skip)]
    pub node_path: String,
    /// The deadline column as stored: `sign:working_hours`, `handle:working_days`…
    #[serde(skip)]
    pub deadline_raw: Option<String>,
    #[serde(skip)]
    pub paused_at: Option<i64>,
}

impl OrderView {
    pub fn source_label(&self) -> &'static str {
        crate::kernel::i18n::t(&format!("order.source.{}", self.source))
    }

    pub fn warning_label(&self) -> &'static str {
        crate::kernel::i18n::t(&format!("order.warning.{}", self.warning))
    }

    /// The order with the phone and ID numbers typed into its free text
    /// masked, as shown to the public and to staff without the unmask
    /// permission (residents write "请联系139…" where no field masks it).
    pub fn masked(mut self) -> OrderView {
        for text in [&mut self.title, &mut self.description, &mut self.address] {
            if let std::borrow::Cow::Owned(m) = crate::kernel::redact::mask_numbers(text) {
                *text = m;
            }
        }
        self
    }

    /// The order as `user` may read it: free text masked unless they hold
    /// the unmask permission.
    pub fn for_reader(self, user: &CurrentUser) -> OrderView {
        if user.can(Perm::MemberUnmask) {
            self
        } else {
            self.masked()
        }
    }
}

impl EventView {
    /// The step with numbers in its note masked (see `OrderView::masked`).
    pub fn masked(mut self) -> EventView {
        if let Some(r) = &self.reason {
            if let std::borrow::Cow::Owned(m) = crate::kernel::redact::mask_numbers(r) {
                self.reason = Some(m);
            }
        }
        self
    }

    pub fn for_reader(self, user: &CurrentUser) -> EventView {
        if user.can(Perm::MemberUnmask) {
            self
        } else {
            self.masked()
        }
    }
}

const ORDER_COLS: &str = "o.id, o.tracking_code, o.source, o.category_code, c.name as category_name, o.urgency, \
    o.title, o.description, o.address, o.lon, o.lat, o.node_id, n.name as node_name, o.node_path, o.level, o.state, \
    o.lead_unit_id, u.name as lead_unit_name, o.reporter_user_id, o.reporter_name, o.reporter_contact_masked, o.facts, o.deadline_kind, \
    o.deadline_start, o.deadline_at, o.paused_at, o.overdue, o.rating, o.version, o.created_at, o.updated_at, o.closed_at";
const ORDER_FROM: &str = "orders o join categories c on c.code = o.category_code join nodes n on n.id = o.node_id \
    left join units u on u.id = o.lead_unit_id";

fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn limit_kind(kind: &str) -> LimitKind {
    match kind {
        "working_hours" => LimitKind::WorkingHours,
        "calendar_hours" => LimitKind::CalendarHours,
        _ => LimitKind::WorkingDays,
    }
}

/// The deadline light: `normal`, `yellow` or `red`.
fn warning_of(
    clock: &Clock,
    deadline_kind: Option<&str>,
    start: Option<i64>,
    at: Option<i64>,
    paused_at: Option<i64>,
    now: i64,
) -> &'static str {
    let unit = deadline_kind.and_then(|k| k.split(':').nth(1)).unwrap_or("");
    match (start, at) {
        (Some(s), Some(d)) => {
            match clock.warning(ms_to_utc(s), ms_to_utc(d), ms_to_utc(paused_at.unwrap_or(now)), limit_kind(unit)) {
                Warning::Normal => "normal",
                Warning::Yellow => "yellow",
                Warning::Red => "red",
            }
        }
        _ => "normal",
    }
}

fn order_from_row(row: &impl Cols, clock: &Clock, now: i64) -> Result<OrderView> {
    // Read in `ORDER_COLS` order: a direct row finds the next column first.
    let id = row.col("id")?;
    let tracking_code = row.col("tracking_code")?;
    let source = row.col("source")?;
    let category_code = row.col("category_code")?;
    let category_name = row.col("category_name")?;
    let urgency = row.col("urgency")?;
    let title = row.col("title")?;
    let description = row.col("description")?;
    let address = row.col("address")?;
    let lon = row.col("lon")?;
    let lat = row.col("lat")?;
    let node_id = row.col("node_id")?;
    let node_name = row.col("node_name")?;
    let node_path = row.col("node_path")?;
    let lead_unit_id = row.col("lead_unit_id")?;
    let lead_unit_name = row.col("lead_unit_name")?;
    let reporter_user_id = row.col("reporter_user_id")?;
    let reporter_name = row.col("reporter_name")?;
    let reporter_contact_masked = row.col("reporter_contact_masked")?;
    let facts: String = row.col("facts")?;
    let deadline_kind: Option<String> = row.col("deadline_kind")?;
    let deadline_start: Option<i64> = row.col("deadline_start")?;
    let deadline_at: Option<i64> = row.col("deadline_at")?;
    let paused_at: Option<i64> = row.col("paused_at")?;
    let overdue = row.col::<i64>("overdue")? != 0;
    let rating = row.col("rating")?;
    let version = row.col("version")?;
    let created_at = row.col("created_at")?;
    let updated_at = row.col("updated_at")?;
    let closed_at = row.col("closed_at")?;
    let facts: Order = serde_json::from_str(&facts).map_err(anyhow::Error::from)?;
    let warning = warning_of(clock, deadline_kind.as_deref(), deadline_start, deadline_at, paused_at, now);
    Ok(OrderView {
        id,
        tracking_code,
        source,
        category_code,
        category_name,
        urgency,
        title,
        description,
        address,
        lon,
        lat,
        node_id,
        node_name,
        level: facts.level,
        state: facts.state,
        state_label: crate::kernel::i18n::t(facts.state.label_key()),
        lead_unit_id,
        lead_unit_name,
        reporter_name,
        reporter_contact_masked,
        deadline_kind: deadline_kind.as_deref().map(|k| k.split(':').next().unwrap_or("").to_string()),
        deadline_at,
        warning: warning.to_string(),
        paused: paused_at.is_some(),
        overdue,
        rating,
        version,
        created_at,
        updated_at,
        closed_at,
        reporter_user_id,
        deadline_start,
        node_path,
        deadline_raw: deadline_kind,
        paused_at,
        facts,
    })
}

/// Permissions that work on every order of an area, not only on those of
/// one's unit.
const AREA_PERMS: [Perm; 4] = [Perm::OrdersAccept, Perm::OrdersDispatch, Perm::OrdersVerify, Perm::OrdersSupervise];

/// Which orders a person may read: those of their area (the subtree of the
/// node they act at) and those led or assisted by their unit. A department
/// handler (部门办理人) sits at the district only to be found there: unless a
/// role lets them accept, dispatch, verify or supervise, their unit's work
/// is all they see.
#[derive(Clone, Debug)]
pub struct OrderScope {
    /// Bounds of the area's paths; none for a department's own work only.
    area: Option<(String, String)>,
    unit: i64,
}

impl OrderScope {
    pub async fn of(db: &Db, user: &CurrentUser) -> Result<OrderScope> {
        let unit_only = match user.unit_id {
            Some(u) if !AREA_PERMS.iter().any(|p| user.can(*p)) => {
                refs::unit(db, u).await?.is_some_and(|u| u.kind == "department")
            }
            _ => false,
        };
        let area = (!unit_only).then(|| user.scope().bounds());
        Ok(OrderScope { area, unit: user.unit_id.unwrap_or(-1) })
    }

    /// The area's bounds; an empty range (no path is in it) when none.
    fn bounds(&self) -> (String, String) {
        self.area.clone().unwrap_or_default()
    }

    /// Whether an order at `node_path` led by `lead_unit` is visible
    /// (assisting units are checked in the database).
    fn sees(&self, node_path: &str, lead_unit: Option<i64>) -> bool {
        self.area.as_ref().is_some_and(|(lo, hi)| node_path >= lo.as_str() && node_path < hi.as_str())
            || lead_unit == Some(self.unit)
    }
}

/// Who may see an order: its place is in the caller's area, or it is led
/// or assisted by the caller's unit (see `OrderScope`).
fn scope_sql(first: usize) -> String {
    let unit = first + 2;
    format!(
        "((o.node_path >= ${first} and o.node_path < ${}) or o.lead_unit_id = ${unit} \
         or exists (select 1 from order_assists a where a.unit_id = ${unit} and a.order_id = o.id))",
        first + 1
    )
}

/// `ORDER_COLS` from `orders` alone: the names of its category, place and
/// lead unit left empty for `refs` to fill in.
static ORDER_COLS_OWN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    ORDER_COLS
        .replace("c.name as category_name", "'' as category_name")
        .replace("n.name as node_name", "'' as node_name")
        .replace("u.name as lead_unit_name", "null as lead_unit_name")
});

/// One order, as the caller may see it. The order every action reads
/// first, so it reads `orders` alone and takes the names from `refs`: on
/// SQLite a reader's page cache starts empty after every commit elsewhere,
/// and each joined table cost its pages read again (a tenth of all the
/// work of an action).
pub async fn get(db: &Db, clock: &Clock, user: &CurrentUser, id: i64) -> Result<OrderView> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("select {} from orders o where o.id = $1 and {}", *ORDER_COLS_OWN, scope_sql(2))
    });
    let scope = OrderScope::of(db, user).await?;
    let (lo, hi) = scope.bounds();
    let unit = scope.unit;
    // On SQLite straight from a direct connection.
    let args = vec![V::I(Some(id)), V::S(Some(lo)), V::S(Some(hi)), V::I(Some(unit))];
    let mut order = db.fetch_optional(&SQL, args, OrderMap { clock, now: now_ms() }).await?.ok_or(Error::NotFound)?;
    name(db, &mut order).await?;
    Recent::of(db).remember(&order);
    Ok(order)
}

/// Names the order's category, place and lead unit (from `refs`).
async fn name(db: &Db, order: &mut OrderView) -> Result<()> {
    order.category_name = refs::category_name(db, &order.category_code).await?.unwrap_or_default();
    order.node_name = refs::node_name(db, order.node_id).await?.unwrap_or_default();
    if let Some(u) = order.lead_unit_id {
        order.lead_unit_name = refs::unit_name(db, u).await?;
    }
    Ok(())
}

/// Rows of `ORDER_COLS` as orders, their deadline warnings as of `now`.
struct OrderMap<'a> {
    clock: &'a Clock,
    now: i64,
}

impl crate::platform::db::RowMap<OrderView> for OrderMap<'_> {
    fn map(&self, row: &impl Cols) -> Result<OrderView> {
        order_from_row(row, self.clock, self.now)
    }
}

/// For the system (timers): no scope.
pub async fn get_unscoped(db: &Db, clock: &Clock, id: i64) -> Result<OrderView> {
    let row = sqlx::query(&format!("select {ORDER_COLS} from {ORDER_FROM} where o.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    order_from_row(&row, clock, now_ms())
}

pub async fn get_by_tracking_code(db: &Db, clock: &Clock, code: &str) -> Result<OrderView> {
    let row = sqlx::query(&format!("select {ORDER_COLS} from {ORDER_FROM} where o.tracking_code = $1"))
        .bind(code.trim().to_uppercase())
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    order_from_row(&row, clock, now_ms())
}

/// The staff queues (工作台): each is a filter over state and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    PendingAccept,
    PendingDispatch,
    PendingSign,
    Handling,
    PendingReview,
    PendingVerify,
    PendingEvaluation,
    Overdue,
    Supervision,
    Mine,
    /// Orders the caller's unit assists (协办) while they are being handled.
    Assisting,
    All,
}

impl Queue {
    pub const ALL: [Queue; 12] = [
        Queue::PendingAccept,
        Queue::PendingDispatch,
        Queue::PendingSign,
        Queue::Handling,
        Queue::PendingReview,
        Queue::PendingVerify,
        Queue::PendingEvaluation,
        Queue::Overdue,
        Queue::Supervision,
        Queue::Mine,
        Queue::Assisting,
        Queue::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::PendingAccept => "pending_accept",
            Queue::PendingDispatch => "pending_dispatch",
            Queue::PendingSign => "pending_sign",
            Queue::Handling => "handling",
            Queue::PendingReview => "pending_review",
            Queue::PendingVerify => "pending_verify",
            Queue::PendingEvaluation => "pending_evaluation",
            Queue::Overdue => "overdue",
            Queue::Supervision => "supervision",
            Queue::Mine => "mine",
            Queue::Assisting => "assisting",
            Queue::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        crate::kernel::i18n::t(&format!("order.queue.{}", self.as_str()))
    }

    /// Whether a tab shows with this count: 协办 only when there is some
    /// (most people's units never assist).
    pub fn shown(self, count: &i64) -> bool {
        self != Queue::Assisting || *count > 0
    }

    /// The tab's name on the console, which says whose work it counts:
    /// the area's queues by their step, the unit's own as 本单位承办 / 协办.
    pub fn tab_label(self) -> &'static str {
        match self {
            Queue::Mine => crate::kernel::i18n::t("queue.tab.mine"),
            Queue::Assisting => crate::kernel::i18n::t("queue.tab.assisting"),
            other => other.label(),
        }
    }

    /// The caller's unit's own work (led or assisted), not their area's.
    pub fn is_own(self) -> bool {
        matches!(self, Queue::Mine | Queue::Assisting)
    }

    /// The SQL condition; `$unit` is the caller's unit for "mine".
    fn condition(self, unit_param: usize) -> String {
        match self {
            Queue::PendingAccept => "o.state = 'pending_accept'".into(),
            Queue::PendingDispatch => "o.state = 'pending_dispatch'".into(),
            Queue::PendingSign => "o.state = 'pending_sign'".into(),
            Queue::Handling => "o.state = 'handling'".into(),
            Queue::PendingReview => "o.state = 'return_requested'".into(),
            Queue::PendingVerify => "o.state = 'pending_verify'".into(),
            Queue::PendingEvaluation => "o.state = 'pending_evaluation'".into(),
            Queue::Overdue => "o.overdue = 1 and o.state in ('pending_sign','handling')".into(),
            Queue::Supervision => "o.state = 'supervision'".into(),
            Queue::Mine => format!("o.lead_unit_id = ${unit_param} and o.state in ('pending_sign','handling')"),
            Queue::Assisting => format!(
                "o.id in (select order_id from order_assists where unit_id = ${unit_param}) \
                 and o.state in ('pending_sign','handling')"
            ),
            Queue::All => "1 = 1".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Queue name, e.g. `pending_dispatch`; default `all`.
    pub queue: Option<String>,
    /// Category code prefix, e.g. `03` or `0303`.
    pub category: Option<String>,
    /// Text in the title, or a tracking code.
    pub q: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
    /// Reported on or after this day, `YYYY-MM-DD` (local time).
    pub from: Option<String>,
    /// Reported on or before this day, `YYYY-MM-DD` (local time).
    pub to: Option<String>,
    /// A subdistrict, community or grid of the caller's area (its node id);
    /// one outside the area is refused like one that does not exist.
    pub node: Option<String>,
    /// `resident`, `patrol`, `hotline`, `video` or `assigned`.
    pub source: Option<String>,
    /// `normal` or `urgent`.
    pub urgency: Option<String>,
    /// One state, e.g. `handling` (narrows the queue).
    pub state: Option<String>,
    /// The deadline light: `yellow` or `red`.
    pub warning: Option<String>,
    /// `priority` (urgent and overdue first, then by deadline; the default
    /// of the work queues) or `newest` (the default of `all`).
    pub sort: Option<String>,
}

pub struct Page {
    pub orders: Vec<OrderView>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

pub async fn list(db: &Db, clock: &Clock, user: &CurrentUser, q: &ListQuery) -> Result<Page> {
    let queue = match q.queue.as_deref() {
        None | Some("") => Queue::All,
        Some(s) => Queue::parse(s).ok_or_else(|| Error::invalid("order.queue_unknown", "queue"))?,
    };
    let per_page = q.per_page.unwrap_or(20).clamp(1, 200);
    let page = q.page.unwrap_or(1).max(1);
    let scope = OrderScope::of(db, user).await?;
    let now = now_ms();
    let narrow = Narrowing::parse(db, clock, user, q, now).await?;
    let condition = format!("{}{}", queue.condition(4), narrow.sql);
    let f = Filter::new(user, &scope, &condition, queue.is_own(), q);
    let priority = match q.sort.as_deref() {
        None | Some("") => queue != Queue::All,
        Some("priority") => true,
        Some("newest") => false,
        Some(_) => return Err(Error::invalid("queue.sort_unknown", "sort")),
    };
    if narrow.yellow {
        return yellow_page(db, clock, &f, priority, page, per_page, now).await;
    }
    // Without filters the kept counts answer; with them, count at most
    // 10,000 matches (the pager shows "10000+" beyond).
    let unfiltered = f.category.is_empty() && f.text.is_empty() && !f.own && narrow.sql.is_empty();
    let kept = if unfiltered {
        queue_counts(db, user).await?.into_iter().find(|(q, _)| *q == queue).map(|(_, n)| n)
    } else {
        None
    };
    let total: i64 = match kept {
        Some(n) => n,
        None => f
            .bind(sqlx::query(&format!("select count(*) from (select 1 from orders o where {} limit 10000) t", f.sql)))
            .fetch_one(&db.pool)
            .await?
            .try_get(0)?,
    };
    let sql = format!(
        "select {ORDER_COLS} from {ORDER_FROM} where {} order by {} limit $7 offset $8",
        f.sql,
        if priority { PRIORITY_ORDER } else { "o.created_at desc, o.id desc" }
    );
    let rows =
        f.bind(sqlx::query(&sql)).bind(per_page).bind((page - 1).saturating_mul(per_page)).fetch_all(&db.pool).await?;
    let orders = rows.iter().map(|r| order_from_row(r, clock, now)).collect::<Result<_>>()?;
    Ok(Page { orders, total, page, per_page })
}

/// A work queue's order: overdue first, then urgent, then the nearest
/// deadline, then the longest waiting. The (area, state, overdue, urgency,
/// deadline) indexes of migration 0140 give a page of it without sorting.
const PRIORITY_ORDER: &str = "o.overdue desc, o.urgency desc, o.deadline_at, o.created_at, o.id";

/// The most orders the yellow-light filter looks at (see `yellow_page`).
const YELLOW_CANDIDATES: i64 = 2000;

/// The filters of a queue beyond its state, category and text, as SQL
/// conditions. Every value is checked against its list or parsed as a
/// number before it is written into the SQL, so nothing the caller typed
/// reaches it as text. They only ever narrow the caller's queue.
struct Narrowing {
    sql: String,
    /// The yellow light depends on working time, which SQL cannot count:
    /// the orders whose deadline runs are read and checked one by one.
    yellow: bool,
}

impl Narrowing {
    async fn parse(db: &Db, clock: &Clock, user: &CurrentUser, q: &ListQuery, now: i64) -> Result<Narrowing> {
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let mut sql = String::new();
        let day = |v: &str, field: &'static str| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .and_then(|d| d.and_local_timezone(clock.offset()).single())
                .map(|d| d.timestamp_millis())
                .ok_or_else(|| Error::invalid("queue.bad_date", field))
        };
        let from = given(&q.from).map(|v| day(&v, "from")).transpose()?;
        let to = given(&q.to).map(|v| day(&v, "to")).transpose()?.map(|t| t + 86_400_000);
        if let (Some(a), Some(b)) = (from, to) {
            if a >= b {
                return Err(Error::invalid("queue.date_order", "to"));
            }
        }
        if let Some(a) = from {
            sql += &format!(" and o.created_at >= {a}");
        }
        if let Some(b) = to {
            sql += &format!(" and o.created_at < {b}");
        }
        if let Some(v) = given(&q.node) {
            let id: i64 = v.parse().map_err(|_| Error::invalid("queue.node_unknown", "node"))?;
            // Out of the caller's area answers like a node that does not exist.
            let node = match tree::get_node(db, &user.scope(), id).await {
                Err(Error::NotFound) => return Err(Error::invalid("queue.node_unknown", "node")),
                r => r?,
            };
            let path = node.path.clone();
            if !path.bytes().all(|b| b.is_ascii_digit() || b == b'/') {
                return Err(Error::invalid("queue.node_unknown", "node"));
            }
            let depth = path.matches('/').count().saturating_sub(2);
            if (1..=3).contains(&depth) {
                sql += &format!(" and o.area{depth} = {id}");
            } else {
                let (lo, hi) = crate::kernel::scope::subtree_bounds(&path);
                sql += &format!(" and o.node_path >= '{lo}' and o.node_path < '{hi}'");
            }
        }
        if let Some(v) = given(&q.source) {
            let s = [Source::Resident, Source::Patrol, Source::Hotline, Source::Video, Source::Assigned]
                .into_iter()
                .find(|s| s.as_str() == v)
                .ok_or_else(|| Error::invalid("queue.source_unknown", "source"))?;
            sql += &format!(" and o.source = '{}'", s.as_str());
        }
        if let Some(v) = given(&q.urgency) {
            let u = ["normal", "urgent"]
                .into_iter()
                .find(|u| *u == v)
                .ok_or_else(|| Error::invalid("queue.urgency_unknown", "urgency"))?;
            sql += &format!(" and o.urgency = '{u}'");
        }
        if let Some(v) = given(&q.state) {
            let st = State::ALL
                .iter()
                .find(|s| s.as_str() == v)
                .ok_or_else(|| Error::invalid("queue.state_unknown", "state"))?;
            sql += &format!(" and o.state = '{}'", st.as_str());
        }
        let mut yellow = false;
        match given(&q.warning).as_deref() {
            None => {}
            // Red: the deadline has passed (as of the pause, if paused).
            Some("red") => {
                sql += &format!(" and o.deadline_at is not null and o.deadline_at < coalesce(o.paused_at, {now})")
            }
            Some("yellow") => {
                sql += &format!(
                    " and o.deadline_at is not null and o.deadline_start is not null \
                     and o.deadline_at >= coalesce(o.paused_at, {now}) and o.deadline_start <= coalesce(o.paused_at, {now})"
                );
                yellow = true;
            }
            Some(_) => return Err(Error::invalid("queue.warning_unknown", "warning")),
        }
        Ok(Narrowing { sql, yellow })
    }
}

/// A page of the yellow-light orders: the running deadlines nearest their
/// end (at most [`YELLOW_CANDIDATES`]) are read, the light of each worked
/// out in working time, and the page cut from those that are yellow.
async fn yellow_page(
    db: &Db,
    clock: &Clock,
    f: &Filter,
    priority: bool,
    page: i64,
    per_page: i64,
    now: i64,
) -> Result<Page> {
    let sql = format!("select {ORDER_COLS} from {ORDER_FROM} where {} order by o.deadline_at, o.id limit $7", f.sql);
    let rows = f.bind(sqlx::query(&sql)).bind(YELLOW_CANDIDATES).fetch_all(&db.pool).await?;
    let mut orders: Vec<OrderView> = rows
        .iter()
        .map(|r| order_from_row(r, clock, now))
        .filter(|o| o.as_ref().map_or(true, |o| o.warning == "yellow"))
        .collect::<Result<_>>()?;
    if priority {
        orders.sort_by(|a, b| {
            (b.overdue, &b.urgency, a.deadline_at.is_none(), a.deadline_at, a.created_at, a.id).cmp(&(
                a.overdue,
                &a.urgency,
                b.deadline_at.is_none(),
                b.deadline_at,
                b.created_at,
                b.id,
            ))
        });
    } else {
        orders.sort_by(|a, b| (b.created_at, b.id).cmp(&(a.created_at, a.id)));
    }
    let total = orders.len() as i64;
    let orders = orders.into_iter().skip(((page - 1) * per_page) as usize).take(per_page as usize).collect();
    Ok(Page { orders, total, page, per_page })
}

/// The most orders one map shows; beyond, the newest.
pub const MAP_LIMIT: i64 = 2000;

/// Orders with a location in the caller's area for the map (一张图): a
/// queue's, or by default every open one, newest first, at most
/// [`MAP_LIMIT`]; and whether there were more.
pub async fn located(db: &Db, clock: &Clock, user: &CurrentUser, q: &ListQuery) -> Result<(Vec<OrderView>, bool)> {
    // One branch per state: each walks its (area, state, created_at) index
    // from the newest and stops at the limit, where one query over all the
    // open states would sort every open order of the area. The branches
    // gather keys only; just the newest `MAP_LIMIT + 1` of them all are read
    // whole (with their names and facts) — at 10 million orders, a district's
    // eight open states would otherwise read 16,000 orders to draw 2,000.
    let conditions: Vec<(String, bool)> = match q.queue.as_deref() {
        // Open (在办): neither finished (办结, terminal) nor waiting for its evaluation.
        None | Some("") | Some("open") => State::ALL
            .iter()
            .filter(|s| !s.is_terminal() && !s.is_closed())
            .map(|s| (format!("o.state = '{}'", s.as_str()), false))
            .collect(),
        Some(s) => {
            let queue = Queue::parse(s).ok_or_else(|| Error::invalid("order.queue_unknown", "queue"))?;
            vec![(queue.condition(4), queue.is_own())]
        }
    };
    // Every branch is either the area's or the unit's own work, so one
    // filter's values bind them all.
    let scope = OrderScope::of(db, user).await?;
    let filters: Vec<Filter> = conditions.iter().map(|(c, own)| Filter::new(user, &scope, c, *own, q)).collect();
    let branches: Vec<String> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "select id, created_at from (select o.id, o.created_at from orders o where {} \
                 and o.lon is not null and o.lat is not null order by o.created_at desc, o.id desc limit $7) as b{i}",
                f.sql
            )
        })
        .collect();
    let sql = format!(
        "select {ORDER_COLS} from {ORDER_FROM} where o.id in (select id from ({}) as newest \
         order by created_at desc, id desc limit $7) order by o.created_at desc, o.id desc",
        branches.join(" union all ")
    );
    let now = now_ms();
    let rows = filters[0].bind(sqlx::query(&sql)).bind(MAP_LIMIT + 1).fetch_all(&db.pool).await?;
    let mut orders = rows.iter().map(|r| order_from_row(r, clock, now)).collect::<Result<Vec<_>>>()?;
    let more = orders.len() as i64 > MAP_LIMIT;
    orders.truncate(MAP_LIMIT as usize);
    Ok((orders, more))
}

/// The `where` of a list: the caller's area (or their unit's own work), a
/// queue's condition, a category and a search text, as `$1`–`$6`.
struct Filter {
    sql: String,
    lo: String,
    hi: String,
    area: i64,
    unit: i64,
    category: String,
    text: String,
    own: bool,
}

impl Filter {
    fn new(user: &CurrentUser, scope: &OrderScope, condition: &str, own: bool, q: &ListQuery) -> Filter {
        let (lo, hi) = scope.bounds();
        let category = q.category.clone().unwrap_or_default();
        let text = q.q.clone().unwrap_or_default().trim().to_string();
        // A list is either the caller's area or their unit's own work. The area
        // is an equality on the ancestor column at the caller's depth, so the
        // (area, state, created_at) indexes give a page without sorting.
        let depth = user.node_path.matches('/').count().saturating_sub(2);
        let place = if scope.area.is_none() && !own {
            "(o.lead_unit_id = $4 or exists (select 1 from order_assists a where a.unit_id = $4 and a.order_id = o.id)) \
             and $1 = $1 and $2 = $2 and $3 = $3"
                .to_string()
        } else if own || depth == 0 {
            "$1 = $1 and $2 = $2 and $3 = $3".to_string()
        } else if depth <= 3 {
            format!("o.area{depth} = $3 and $1 = $1 and $2 = $2")
        } else {
            "(o.node_path >= $1 and o.node_path < $2 and $3 = $3)".to_string()
        };
        let area = if depth == 0 || own { user.unit_id.unwrap_or(-1) } else { user.node_id };
        // A sub-category (4 characters) is an equality the (area, category,
        // created_at) indexes answer; a top-level one a prefix.
        let category_sql = match category.len() {
            0 => "$5 = $5",
            1..=3 => "o.category_code like $5 || '%'",
            _ => "o.category_code = $5",
        };
        let sql = format!(
            "{place} and {condition} and {category_sql} and ($6 = '' or o.tracking_code = upper($6) or o.title like '%' || $6 || '%')"
        );
        Filter { sql, lo, hi, area, unit: scope.unit, category, text, own: own || scope.area.is_none() }
    }

    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query.bind(&self.lo).bind(&self.hi).bind(self.area).bind(self.unit).bind(&self.category).bind(&self.text)
    }
}

/// Counts per queue for the caller: the kept counts of their node, and
/// their unit's own work from the lead-unit index.
pub async fn queue_counts(db: &Db, user: &CurrentUser) -> Result<Vec<(Queue, i64)>> {
    let scope = OrderScope::of(db, user).await?;
    let rows = if scope.area.is_some() {
        sqlx::query("select state, n from order_counts where node_id = $1")
            .bind(user.node_id)
            .fetch_all(&db.pool)
            .await?
    } else {
        // A department's own work: counted from its lead-unit and assist indexes.
        sqlx::query(
            "select o.state as state, count(*) as n from orders o where o.lead_unit_id = $1 \
               or exists (select 1 from order_assists a where a.unit_id = $1 and a.order_id = o.id) group by o.state \
             union all select 'overdue' as state, count(*) as n from orders o where o.overdue = 1 \
               and o.state in ('pending_sign','handling') and (o.lead_unit_id = $1 \
               or exists (select 1 from order_assists a where a.unit_id = $1 and a.order_id = o.id))",
        )
        .bind(scope.unit)
        .fetch_all(&db.pool)
        .await?
    };
    let mut by_state = std::collections::HashMap::new();
    for r in rows {
        by_state.insert(r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?);
    }
    let mine: i64 =
        sqlx::query("select count(*) from orders where lead_unit_id = $1 and state in ('pending_sign','handling')")
            .bind(user.unit_id.unwrap_or(-1))
            .fetch_one(&db.pool)
            .await?
            .try_get(0)?;
    let assisting: i64 = sqlx::query(
        "select count(*) from order_assists a join orders o on o.id = a.order_id \
         where a.unit_id = $1 and o.state in ('pending_sign','handling')",
    )
    .bind(user.unit_id.unwrap_or(-1))
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    let st = |s: &str| by_state.get(s).copied().unwrap_or(0);
    let all: i64 = by_state.iter().filter(|(k, _)| k.as_str() != "overdue").map(|(_, v)| v).sum();
    Ok(Queue::ALL
        .into_iter()
        .map(|q| {
            let n = match q {
                Queue::Mine => mine,
                Queue::Assisting => assisting,
                Queue::All => all,
                Queue::PendingReview => st("return_requested"),
                other => st(other.as_str()),
            };
            (q, n)
        })
        .collect())
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventView {
    pub seq: i64,
    pub at: i64,
    pub actor_name: String,
    pub actor_role: String,
    pub action: String,
    pub action_label: &'static str,
    pub from_state: String,
    pub to_state: String,
    pub to_state_label: &'static str,
    pub reason: Option<String>,
    /// The unit the step sent the order to (派单, 改派), by name.
    pub lead_unit_name: Option<String>,
    /// The assisting units (协办) named by the step.
    pub assisting_unit_names: Vec<String>,
    /// The rating of an evaluation step (`satisfied`, `fairly_satisfied`,
    /// `dissatisfied`) and its picked reasons (`unresolved`, `too_slow`,
    /// `attitude`, `not_contacted`).
    pub rating: Option<String>,
    pub rating_reasons: Vec<String>,
    /// What a 回访 call found (已接通, 未接通, 满意, 不满意), if recorded.
    pub outcome_label: Option<&'static str>,
}

impl EventView {
    /// Who the step sent the order to and what the resident rated, in
    /// words: "主办：某某街道办事处；协办：某某局", "评价：不满意（问题未解决）".
    pub fn detail(&self) -> Option<String> {
        use crate::kernel::i18n::t;
        let mut parts = vec![];
        if let Some(u) = &self.lead_unit_name {
            parts.push(format!("{}{}", t("order.timeline.lead"), u));
        }
        if !self.assisting_unit_names.is_empty() {
            parts.push(format!("{}{}", t("order.timeline.assisting"), self.assisting_unit_names.join("、")));
        }
        if let Some(r) = &self.rating {
            let mut line = format!("{}{}", t("order.timeline.rating"), t(&format!("order.rating.{r}")));
            if !self.rating_reasons.is_empty() {
                let reasons: Vec<&str> =
                    self.rating_reasons.iter().map(|c| t(&format!("order.eval_reason.{c}"))).collect();
                line.push_str(&format!("（{}）", reasons.join("、")));
            }
            parts.push(line);
        }
        (!parts.is_empty()).then(|| parts.join("；"))
    }
}

pub async fn events(db: &Db, order_id: i64) -> Result<Vec<EventView>> {
    let rows = sqlx::query(
        "select seq, at, actor_name, actor_role, action, from_state, to_state, reason, data from order_events \
         where order_id = $1 order by seq",
    )
    .bind(order_id)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let action: String = r.try_get("action")?;
        let to: String = r.try_get("to_state")?;
        let data: String = r.try_get("data")?;
        // The step's data is the action as sent (creation's is not an action).
        let parsed = serde_json::from_str::<Action>(&data);
        let outcome_label = match &parsed {
            Ok(Action::FollowUp { outcome: Some(o), .. }) => Some(crate::kernel::i18n::t(o.label_key())),
            _ => None,
        };
        let (lead, assisting, rating, reasons) = match parsed {
            Ok(Action::Dispatch { lead_unit, assisting, .. }) | Ok(Action::Reassign { lead_unit, assisting, .. }) => {
                (Some(lead_unit), assisting, None, vec![])
            }
            Ok(Action::ApproveReturn { reassign_to: Some(u) }) => (Some(u), vec![], None, vec![]),
            Ok(Action::Evaluate { rating, reasons, .. }) => (
                None,
                vec![],
                rating.map(|r| r.as_str().to_string()),
                reasons.iter().map(|r| r.as_str().to_string()).collect(),
            ),
            _ => (None, vec![], None, vec![]),
        };
        let lead_unit_name = match lead {
            Some(u) => refs::unit_name(db, u).await?,
            None => None,
        };
        let mut assisting_unit_names = vec![];
        for u in assisting {
            if let Some(n) = refs::unit_name(db, u).await? {
                assisting_unit_names.push(n);
            }
        }
        out.push(EventView {
            seq: r.try_get("seq")?,
            at: r.try_get("at")?,
            actor_name: r.try_get("actor_name")?,
            actor_role: r.try_get("actor_role")?,
            action_label: crate::kernel::i18n::t(&format!("order.action.{action}")),
            action,
            from_state: r.try_get("from_state")?,
            to_state_label: crate::kernel::i18n::t(&format!("order.state.{to}")),
            to_state: to,
            reason: r.try_get("reason")?,
            lead_unit_name,
            assisting_unit_names,
            rating,
            rating_reasons: reasons,
            outcome_label,
        });
    }
    Ok(out)
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewOrder {
    pub source: Source,
    pub category_code: String,
    pub urgency: Option<Urgency>,
    pub title: String,
    pub description: String,
    pub address: String,
    /// WGS84/CGCS2000; the grid is found from the point.
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// Where the matter is, when there is no point (a community, grid or building).
    pub node_id: Option<i64>,
    pub reporter_name: Option<String>,
    /// Kept private: never shown on the portal or to other residents.
    pub reporter_contact: Option<String>,
}

/// 12 characters from an alphabet without look-alikes (0/O, 1/I/L): about
/// 60 bits, so codes cannot be guessed.
pub fn tracking_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    (0..12).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// The ancestors at depths 1–3 of a node path (`/root/a1/a2/a3/...`).
pub fn area_columns(path: &str) -> [Option<i64>; 3] {
    let ids: Vec<i64> = path.split('/').filter_map(|s| s.parse().ok()).collect();
    [ids.get(1).copied(), ids.get(2).copied(), ids.get(3).copied()]
}

fn level_of(kind: crate::tree::NodeKind) -> Level {
    use crate::tree::NodeKind as K;
    match kind {
        K::Province | K::City | K::District => Level::District,
        K::Subdistrict => Level::Subdistrict,
        K::Community | K::Grid | K::Building => Level::Community,
    }
}

pub struct Reporter<'a> {
    pub user: Option<&'a CurrentUser>,
    /// Seals the reporter's contact.
    pub crypto: &'a crate::platform::crypto::Crypto,
    /// For anonymous residents: the public part of the tree.
    pub scope: Scope,
}

/// Records a new order in 待受理 with its first event.
pub async fn create(db: &Db, reporter: Reporter<'_>, input: NewOrder) -> Result<OrderView> {
    let title = BoundedText::<100>::parse(&input.title).field("title")?;
    let description = input.description.trim();
    if description.is_empty() {
        return Err(Error::invalid("text.empty", "description"));
    }
    if description.chars().count() > 4000 {
        return Err(Error::invalid("text.too_long", "description"));
    }
    let address = BoundedText::<200>::parse(&input.address).field("address")?;
    let reporter_name =
        input.reporter_name.as_deref().map(BoundedText::<50>::parse).transpose().field("reporter_name")?;
    let contact = input.reporter_contact.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if contact.is_some_and(|c| c.chars().count() > 50) {
        return Err(Error::invalid("text.too_long", "reporter_contact"));
    }
    if input.category_code.trim().is_empty() {
        return Err(Error::invalid("order.category_required", "category_code"));
    }
    let category = refs::category(db, &input.category_code)
        .await?
        .filter(|c| c.leaf)
        .ok_or_else(|| Error::invalid("order.category_unknown", "category_code"))?;
    // The portal (no signed-in reporter) offers resident-facing categories only.
    if reporter.user.is_none() && !category.resident_facing {
        return Err(Error::invalid("order.category_internal", "category_code"));
    }
    let category_name = category.name;
    let category = input.category_code.clone();
    // Where is it? A point resolves to its grid; otherwise the given node.
    let node = match (input.lon, input.lat, input.node_id) {
        (Some(lon), Some(lat), _) => tree::locate_grid(db, &reporter.scope, lon, lat)
            .await?
            .map(tree::Place::from)
            .ok_or_else(|| Error::invalid("order.outside_area", "lon"))?,
        (_, _, Some(id)) => tree::place(db, &reporter.scope, id)
            .await?
            .ok_or_else(|| Error::invalid("node.parent_not_found", "node_id"))?,
        _ => return Err(Error::invalid("order.location_required", "lon")),
    };
    let level = level_of(node.kind);
    let areas = area_columns(&node.path);
    let facts = Order::new(level);
    let now = now_ms();
    let (actor_id, actor_name) = match reporter.user {
        Some(u) => (Some(u.id), u.display_name.clone()),
        None => (
            None,
            reporter_name
                .as_ref()
                .map(|n| n.as_str().to_string())
                .unwrap_or_else(|| crate::kernel::i18n::t("order.anonymous").to_string()),
        ),
    };
    let row = NewRow {
        source: input.source.as_str(),
        category,
        urgency: if input.urgency == Some(Urgency::Urgent) { "urgent" } else { "normal" },
        title: title.as_str().to_string(),
        description: description.to_string(),
        address: address.as_str().to_string(),
        lon: input.lon,
        lat: input.lat,
        node_id: node.id,
        node_path: node.path.clone(),
        level: level.as_str(),
        state: facts.state.as_str(),
        reporter_user_id: actor_id,
        reporter_name: reporter_name.as_ref().map(|n| n.as_str().to_string()),
        contact: contact
            .map(|c| reporter.crypto.encrypt(crate::platform::crypto::Field::ORDER_CONTACT, c))
            .transpose()
            .map_err(anyhow::Error::from)?,
        contact_masked: contact.map(crate::platform::crypto::rotate::mask_contact),
        audit: crate::audit::PendingEntry {
            actor: match reporter.user {
                Some(u) => Actor::User(u).audit_actor(),
                None => Actor::Resident.audit_actor(),
            },
            action: crate::orders::action::ORDER_CREATE,
            object: crate::audit::Object::new("order", 0),
            reason: None,
            detail: serde_json::json!({"source": input.source.as_str(), "category": input.category_code,
                "node_id": node.id}),
            at: now,
        },
        facts: serde_json::to_string(&facts).map_err(anyhow::Error::from)?,
        now,
        areas,
        actor_name,
        counts: count_rows(&node.path, &[(facts.state.as_str(), 1)]),
    };
    let (id, code) = match db.backend {
        Backend::Postgres => {
            let mut tx = db.pool.begin().await?;
            let r = row.insert(&mut tx).await?;
            tx.commit().await?;
            r
        }
        Backend::Sqlite => db.write(move |conn| row.insert_sqlite(conn)).await?,
    };
    // Built from what was written, like an action's answer (see `Recent`).
    let created = OrderView {
        id,
        tracking_code: code,
        source: input.source.as_str().to_string(),
        category_code: input.category_code,
        category_name,
        urgency: if input.urgency == Some(Urgency::Urgent) { "urgent" } else { "normal" }.to_string(),
        title: title.as_str().to_string(),
        description: description.to_string(),
        address: address.as_str().to_string(),
        lon: input.lon,
        lat: input.lat,
        node_id: node.id,
        node_name: node.name.clone(),
        level,
        state: facts.state,
        state_label: crate::kernel::i18n::t(facts.state.label_key()),
        lead_unit_id: None,
        lead_unit_name: None,
        reporter_name: reporter_name.as_ref().map(|n| n.as_str().to_string()),
        reporter_contact_masked: contact.map(crate::platform::crypto::rotate::mask_contact),
        deadline_kind: None,
        deadline_at: None,
        warning: "normal".into(),
        paused: false,
        overdue: false,
        rating: None,
        version: 1,
        created_at: now,
        updated_at: now,
        closed_at: None,
        facts,
        reporter_user_id: actor_id,
        deadline_start: None,
        node_path: node.path,
        deadline_raw: None,
        paused_at: None,
    };
    Recent::of(db).remember(&created);
    Ok(created)
}

/// A new order's row, first event and counts, owned for the writer.
struct NewRow {
    source: &'static str,
    category: String,
    urgency: &'static str,
    title: String,
    description: String,
    address: String,
    lon: Option<f64>,
    lat: Option<f64>,
    node_id: i64,
    node_path: String,
    level: &'static str,
    state: &'static str,
    reporter_user_id: Option<i64>,
    reporter_name: Option<String>,
    contact: Option<String>,
    contact_masked: Option<String>,
    /// The creation's audit entry (its object id is filled in on insert).
    audit: crate::audit::PendingEntry,
    facts: String,
    now: i64,
    areas: [Option<i64>; 3],
    actor_name: String,
    counts: Vec<(i64, &'static str, i64)>,
}

const INSERT_ORDER: &str = "insert into orders (tracking_code, source, category_code, urgency, title, description, \
    address, lon, lat, node_id, node_path, level, state, reporter_user_id, reporter_name, reporter_contact, facts, \
    created_at, updated_at, area1, area2, area3, reporter_contact_masked) \
    values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$18,$19,$20,$21,$22) \
    on conflict (tracking_code) do nothing returning id";

impl NewRow {
    fn order_args(&self, code: &str) -> Vec<V> {
        let s = |v: &str| V::S(Some(v.to_string()));
        vec![
            s(code),
            s(self.source),
            s(&self.category),
            s(self.urgency),
            s(&self.title),
            s(&self.description),
            s(&self.address),
            V::F(self.lon),
            V::F(self.lat),
            V::I(Some(self.node_id)),
            s(&self.node_path),
            s(self.level),
            s(self.state),
            V::I(self.reporter_user_id),
            V::S(self.reporter_name.clone()),
            V::S(self.contact.clone()),
            s(&self.facts),
            V::I(Some(self.now)),
            V::I(self.areas[0]),
            V::I(self.areas[1]),
            V::I(self.areas[2]),
            V::S(self.contact_masked.clone()),
        ]
    }

    /// The first event and the queue counts of order `id`.
    fn rest(&self, id: i64) -> Statements {
        let mut rest = Statements::new(
            "insert into order_events (order_id, seq, at, actor_user_id, actor_name, actor_role, action, from_state, to_state, reason, data) \
             values ($1, 1, $2, $3, $4, 'reporter', 'create', '', $5, null, '{}')",
            vec![
                V::I(Some(id)),
                V::I(Some(self.now)),
                V::I(self.reporter_user_id),
                V::S(Some(self.actor_name.clone())),
                V::S(Some(self.state.into())),
            ],
        );
        count_statement(&mut rest, &self.counts);
        rest
    }

    /// The outbox event of the creation of order `id`.
    fn event(&self, id: i64, code: &str) -> NewEvent {
        let step = Step { action: "create", from: "", to: self.state, version: 1 };
        order_event(&step, id, code, self.reporter_user_id, self.node_id, self.now)
    }

    /// PostgreSQL: inserts the order under a fresh tracking code, in the
    /// caller's transaction; returns its id and code.
    async fn insert(self, conn: &mut sqlx::AnyConnection) -> Result<(i64, String)> {
        // A tracking-code collision (astronomically rare) inserts nothing: draw again.
        let (id, code) = loop {
            let code = tracking_code();
            let q = crate::platform::db::bind_args(sqlx::query(INSERT_ORDER), self.order_args(&code));
            if let Some(row) = q.fetch_optional(&mut *conn).await? {
                break (row.try_get::<i64, _>(0)?, code);
            }
        };
        self.rest(id).execute(conn).await?;
        self.event(id, &code).append_in(conn).await?;
        let mut audit = self.audit;
        audit.object = crate::audit::Object::new("order", id);
        audit.append_in(conn).await?;
        Ok((id, code))
    }

    /// SQLite: the same on the group-commit writer's connection.
    fn insert_sqlite(&self, conn: &rusqlite::Connection) -> Result<(i64, String)> {
        let (id, code) = loop {
            let code = tracking_code();
            let mut stmt = conn.prepare_cached(INSERT_ORDER)?;
            crate::platform::db::bind_sqlite(&mut stmt, &self.order_args(&code))?;
            let id: Option<i64> = stmt.raw_query().next()?.map(|row| row.get(0)).transpose()?;
            if let Some(id) = id {
                break (id, code);
            }
        };
        self.rest(id).execute_sqlite(conn)?;
        self.event(id, &code).append_sqlite(conn)?;
        let mut audit = self.audit.clone();
        audit.object = crate::audit::Object::new("order", id);
        audit.append_sqlite(conn)?;
        Ok((id, code))
    }
}

/// The queue-count changes of one order: each (state, delta) at the node
/// at `path` and at each of its ancestors.
fn count_rows(path: &str, changes: &[(&'static str, i64)]) -> Vec<(i64, &'static str, i64)> {
    path.split('/')
        .filter_map(|s| s.parse().ok())
        .flat_map(|id| changes.iter().map(move |(state, delta)| (id, *state, *delta)))
        .collect()
}

/// Adds the deltas to the kept queue counts: one statement whose shape
/// depends only on the number of rows, so its prepared form is reused.
fn count_statement(out: &mut Statements, rows: &[(i64, &'static str, i64)]) {
    if rows.is_empty() {
        return;
    }
    let mut sql = String::from("insert into order_counts (node_id, state, n) values ");
    let mut args = Vec::with_capacity(3 * rows.len());
    for (i, (id, state, delta)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql += &format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3);
        args.extend([V::I(Some(*id)), V::S(Some((*state).into())), V::I(Some(*delta))]);
    }
    sql.push_str(" on conflict (node_id, state) do update set n = order_counts.n + excluded.n");
    out.push(&sql, args);
}

fn counts_overdue(state: State, overdue: bool) -> bool {
    overdue && matches!(state, State::PendingSign | State::Handling)
}

/// Recomputes every queue count from the orders (after bulk loads).
pub async fn rebuild_counts(db: &Db) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("delete from order_counts").execute(&mut *tx).await?;
    for (filter, state, group) in [
        ("1 = 1", "o.state", ", o.state"),
        ("o.overdue = 1 and o.state in ('pending_sign','handling')", "'overdue'", ""),
    ] {
        sqlx::query(&format!(
            "insert into order_counts (node_id, state, n) select n.id, {state}, count(*) from nodes n \
             join orders o on o.node_path >= n.path and o.node_path < substr(n.path, 1, length(n.path) - 1) || '0' \
             where n.kind not in ('building') and {filter} group by n.id{group}"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The machine roles a user can act in on this order.
pub fn actor_roles(user: Option<&CurrentUser>, order: &OrderView) -> Vec<ActorRole> {
    let Some(user) = user else { return vec![ActorRole::Reporter] };
    let mut roles = vec![];
    if order.reporter_user_id == Some(user.id) {
        roles.push(ActorRole::Reporter);
    }
    if user.can(Perm::OrdersAccept) {
        roles.push(ActorRole::Acceptor);
    }
    if user.can(Perm::OrdersDispatch) {
        roles.push(ActorRole::Dispatcher);
    }
    // Unit staff act on what their unit leads, and on a matter they reported
    // themselves that nobody has taken up yet (即报即办).
    let own_report = order.state == State::PendingAccept && order.reporter_user_id == Some(user.id);
    if user.can(Perm::OrdersHandle) && user.unit_id.is_some() && (user.unit_id == order.lead_unit_id || own_report) {
        roles.push(ActorRole::Handler);
    }
    if user.can(Perm::OrdersVerify) {
        roles.push(ActorRole::Verifier);
    }
    if user.can(Perm::OrdersSupervise) {
        roles.push(ActorRole::Supervisor);
    }
    roles.dedup();
    roles
}

/// Actions the user may take now, for buttons and the API.
pub fn allowed(user: Option<&CurrentUser>, order: &OrderView) -> Vec<ActionKind> {
    let mut kinds: Vec<ActionKind> = actor_roles(user, order)
        .into_iter()
        .flat_map(|r| machine::allowed_actions(&order.facts, r))
        .filter(|k| *k != ActionKind::MarkOverdue)
        .collect();
    kinds.sort_by_key(|k| ActionKind::ALL.iter().position(|x| x == k));
    kinds.dedup();
    kinds
}

/// An actor for one action: a person or the system.
pub enum Actor<'a> {
    User(&'a CurrentUser),
    /// A resident acting through the tracking code.
    Resident,
    System,
}

impl Actor<'_> {
    /// Who acted, as the audit log records it.
    fn audit_actor(&self) -> crate::audit::Actor {
        match self {
            Actor::User(u) => crate::audit::Actor::user(u, u.client_addr.clone()),
            Actor::Resident => crate::audit::Actor {
                user_id: None,
                username: "resident".into(),
                roles: "reporter".into(),
                node_id: None,
                client_addr: None,
            },
            Actor::System => crate::audit::Actor::system("deadlines"),
        }
    }

    fn id_and_name(&self) -> (Option<i64>, String) {
        match self {
            Actor::User(u) => (Some(u.id), u.display_name.clone()),
            Actor::Resident => (None, crate::kernel::i18n::t("order.role.reporter").to_string()),
            Actor::System => (None, crate::kernel::i18n::t("order.role.system").to_string()),
        }
    }
}

fn machine_error(e: machine::MachineError) -> Error {
    let code = e.code().to_string();
    match e.class() {
        machine::ErrorClass::Forbidden => Error::Forbidden,
        machine::ErrorClass::Conflict => Error::Conflict { code, detail: None },
        machine::ErrorClass::Invalid => Error::Invalid { code, field: e.field().map(str::to_string), detail: None },
    }
}

/// Checks the parts of an action that need the database: the units exist
/// and a person may dispatch to them, department matters are not pushed
/// down without a reason, merge targets are open orders the person may see.
async fn check_references(db: &Db, actor: &Actor<'_>, order: &OrderView, action: &Action) -> Result<()> {
    let (lead, assisting, override_reason) = match action {
        Action::Dispatch { lead_unit, assisting, override_reason } => {
            (Some(*lead_unit), assisting.clone(), override_reason.clone())
        }
        Action::Reassign { lead_unit, assisting, .. } => (Some(*lead_unit), assisting.clone(), Some(String::new())),
        // The unit's return reason, reviewed by the dispatcher, is the reason.
        Action::ApproveReturn { reassign_to: Some(u) } => (Some(*u), vec![], Some("退单".to_string())),
        Action::Merge { into } => return check_merge_target(db, actor, order, *into).await,
        Action::HandleOnSpot { unit, .. } => return check_on_spot(db, actor, order, *unit).await,
        _ => return Ok(()),
    };
    let Some(lead) = lead else { return Ok(()) };
    // A unit out of the person's reach answers like a missing one: a
    // community centre may not hand its order to another subdistrict's grid
    // (whose people could then read it), nor learn which unit ids exist.
    let reach = match actor {
        Actor::User(u) => Some(u.node_path.as_str()),
        Actor::Resident | Actor::System => None,
    };
    let usable =
        |u: Option<refs::UnitRef>| u.filter(|u| u.active && reach.is_none_or(|path| u.dispatchable_from(path)));
    let lead = usable(refs::unit(db, lead).await?).ok_or_else(|| Error::invalid("order.unit_unknown", "lead_unit"))?;
    for a in &assisting {
        usable(refs::unit(db, *a).await?).ok_or_else(|| Error::invalid("order.unit_unknown", "assisting"))?;
    }
    // 国办函〔2025〕66号: a department's matter is not pushed down to a
    // community centre or a grid unless the dispatcher says why.
    let owner = refs::category(db, &order.category_code).await?.ok_or(Error::NotFound)?.owner;
    if owner.is_some() && lead.below_subdistrict() && override_reason.as_deref().map(str::trim).unwrap_or("").is_empty()
    {
        return Err(Error::invalid("order.functional_push_down", "override_reason"));
    }
    Ok(())
}

/// 即报即办 is for the reporting person's own unit, and only for matters
/// whose category allows it at this urgency (`categories.on_spot`).
async fn check_on_spot(db: &Db, actor: &Actor<'_>, order: &OrderView, unit: i64) -> Result<()> {
    let Actor::User(user) = actor else { return Err(Error::Forbidden) };
    if user.unit_id != Some(unit) || order.reporter_user_id != Some(user.id) {
        return Err(Error::invalid("order.unit_unknown", "unit"));
    }
    if !on_spot_allowed(db, &order.category_code, &order.urgency).await? {
        return Err(Error::conflict("order.on_spot_not_allowed"));
    }
    Ok(())
}

/// Whether a matter of this category and urgency may be handled on the
/// spot (即报即办) by the worker who reports it.
pub async fn on_spot_allowed(db: &Db, category: &str, urgency: &str) -> Result<bool> {
    let rule: Option<String> = sqlx::query_scalar("select on_spot from categories where code = $1")
        .bind(category)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match rule.as_deref() {
        Some("any") => true,
        Some("normal") => urgency != "urgent",
        _ => false,
    })
}

/// The categories that allow 即报即办, with the urgencies it is allowed at.
pub async fn on_spot_categories(db: &Db) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("select code, on_spot from categories where on_spot <> 'none'").fetch_all(&db.pool).await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// A merge target must be another order the person may see; one they may
/// not see answers exactly like a missing one (so ids out of scope cannot be
/// probed), and only a visible one may tell that it has ended.
async fn check_merge_target(db: &Db, actor: &Actor<'_>, order: &OrderView, into: i64) -> Result<()> {
    let state: Option<String> = match actor {
        Actor::User(u) => {
            let scope = OrderScope::of(db, u).await?;
            let (lo, hi) = scope.bounds();
            sqlx::query(&format!("select o.state from orders o where o.id = $1 and {}", scope_sql(2)))
                .bind(into)
                .bind(lo)
                .bind(hi)
                .bind(scope.unit)
                .fetch_optional(&db.pool)
                .await?
        }
        Actor::Resident | Actor::System => {
            sqlx::query("select state from orders where id = $1").bind(into).fetch_optional(&db.pool).await?
        }
    }
    .map(|r| r.try_get(0))
    .transpose()?;
    match state {
        Some(_) if into == order.id => Err(Error::invalid("order.merge_target_invalid", "into")),
        Some(s) if matches!(s.as_str(), "rejected" | "withdrawn" | "merged") => {
            Err(Error::invalid("order.merge_target_closed", "into"))
        }
        Some(_) => Ok(()),
        None => Err(Error::invalid("order.merge_target_invalid", "into")),
    }
}

/// The time limit for a deadline kind, from the order's category.
async fn limit_for(db: &Db, order: &OrderView, kind: &str) -> Result<TimeLimit> {
    let c = refs::category(db, &order.category_code).await?.ok_or(Error::NotFound)?;
    let text = match kind {
        "sign" => c.sign_limit,
        "evaluate" => c.evaluate_limit,
        _ if order.urgency == "urgent" => c.urgent_handle_limit,
        _ => c.handle_limit,
    };
    Ok(serde_json::from_str(&text).map_err(anyhow::Error::from)?)
}

fn unit_name(limit: &TimeLimit) -> &'static str {
    match limit.kind() {
        LimitKind::WorkingDays => "working_days",
        LimitKind::WorkingHours => "working_hours",
        LimitKind::CalendarHours => "calendar_hours",
    }
}

/// The deadline columns after a transition.
struct Deadline {
    kind: Option<String>,
    start: Option<i64>,
    at: Option<i64>,
    paused_at: Option<i64>,
    overdue: bool,
}

async fn next_deadline(
    db: &Db,
    clock: &Clock,
    order: &OrderView,
    effect: ClockEffect,
    new: &Order,
    now: i64,
) -> Result<Deadline> {
    let unit = order.deadline_raw.as_deref().and_then(|k| k.split(':').nth(1)).unwrap_or("working_days");
    let current = Deadline {
        kind: order.deadline_raw.clone(),
        start: order.deadline_start,
        at: order.deadline_at,
        paused_at: None,
        overdue: new.overdue,
    };
    let start = |kind: &'static str| async move {
        let limit = limit_for(db, order, kind).await?;
        let due = limit.due(clock, ms_to_utc(now)).timestamp_millis();
        Ok::<_, Error>(Deadline {
            kind: Some(format!("{kind}:{}", unit_name(&limit))),
            start: Some(now),
            at: Some(due),
            paused_at: None,
            overdue: false,
        })
    };
    Ok(match effect {
        ClockEffect::StartSign => start("sign").await?,
        ClockEffect::StartHandle => start("handle").await?,
        ClockEffect::Pause => Deadline { paused_at: Some(now), ..current },
        ClockEffect::Resume => match (order.paused_at, current.at) {
            (Some(p), Some(at)) => {
                let kind = limit_kind(unit);
                let moved = clock.extend_for_pause(ms_to_utc(at), ms_to_utc(p), ms_to_utc(now), kind);
                Deadline { at: Some(moved.timestamp_millis()), paused_at: None, ..current }
            }
            _ => Deadline { paused_at: None, ..current },
        },
        ClockEffect::Extend => {
            let days = new.extension_days.saturating_sub(order.facts.extension_days);
            match current.at {
                Some(at) => Deadline {
                    at: Some(clock.due_after_working_days(ms_to_utc(at), days).timestamp_millis()),
                    overdue: false,
                    ..current
                },
                None => current,
            }
        }
        ClockEffect::Stop if new.state == State::PendingEvaluation => start("evaluate").await?,
        ClockEffect::Stop => Deadline { kind: None, start: None, at: None, paused_at: None, overdue: false },
        ClockEffect::None => Deadline { paused_at: order.paused_at, ..current },
    })
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ActRequest {
    /// The `version` you read; a stale one answers 409 naming what changed.
    pub version: i64,
    /// The action and its data, e.g. `{"action":"dispatch","lead_unit":3}`.
    #[schema(value_type = Object)]
    pub action: Action,
}

/// Applies one action to an order: the machine decides if it is allowed,
/// the version check decides who wins a race, and the order row, its event
/// and its deadline are written in one transaction.
pub async fn act(db: &Db, clock: &Clock, actor: Actor<'_>, order: &OrderView, req: &ActRequest) -> Result<OrderView> {
    let kind = req.action.kind();
    let roles: Vec<ActorRole> = match &actor {
        Actor::User(u) => actor_roles(Some(u), order),
        Actor::Resident => vec![ActorRole::Reporter],
        Actor::System => vec![ActorRole::System],
    };
    let role = kind.roles().iter().copied().find(|r| roles.contains(r)).ok_or(Error::Forbidden)?;
    if req.version != order.version {
        return Err(version_conflict(db, order.id).await);
    }
    let transition = machine::apply(&order.facts, role, &req.action).map_err(machine_error)?;
    check_references(db, &actor, order, &req.action).await?;
    let attachments = req.action.attachments();
    crate::attachments::store::check_unlinked(db, order.id, attachments).await?;
    let now = now_ms();
    let new = &transition.new_order;
    let deadline = next_deadline(db, clock, order, transition.clock, new, now).await?;
    let closed_at = if new.state.is_terminal() || new.state == State::PendingEvaluation {
        order.closed_at.or(Some(now))
    } else {
        None
    };
    let (actor_id, actor_name) = actor.id_and_name();
    let mut changes: Vec<(&'static str, i64)> = vec![];
    if transition.from != transition.to {
        changes.push((transition.from.as_str(), -1));
        changes.push((transition.to.as_str(), 1));
    }
    let was = counts_overdue(transition.from, order.overdue);
    let is = counts_overdue(transition.to, deadline.overdue);
    if was != is {
        changes.push(("overdue", if is { 1 } else { -1 }));
    }
    let notice = match kind {
        ActionKind::Supervise => Some("supervise"),
        ActionKind::Urge => Some("urge"),
        ActionKind::MarkOverdue => Some("overdue"),
        _ => None,
    };
    let write = Transition {
        id: order.id,
        version: req.version,
        state: new.state.as_str(),
        level: new.level.as_str(),
        lead_unit: new.lead_unit,
        facts: serde_json::to_string(new).map_err(anyhow::Error::from)?,
        deadline_kind: deadline.kind.clone(),
        deadline_start: deadline.start,
        deadline_at: deadline.at,
        paused_at: deadline.paused_at,
        overdue: deadline.overdue,
        rating: new.rating.map(|r| r.as_str()),
        closed_at,
        now,
        actor_id,
        actor_name,
        role: role.as_str(),
        action: kind.as_str(),
        from: transition.from.as_str(),
        to: transition.to.as_str(),
        reason: req.action.text().map(str::to_string),
        data: serde_json::to_string(&req.action).map_err(anyhow::Error::from)?,
        counts: count_rows(&order.node_path, &changes),
        notice,
        attachments: attachments.to_vec(),
        // The result photos of 反馈 are what the resident sees of the work.
        public_photos: kind == ActionKind::ReportBack,
        follow_up: match &req.action {
            // Reopened by the call: call again once it is done anew.
            Action::FollowUp { .. } if transition.to == State::Handling => Some("reopened"),
            Action::FollowUp { outcome: Some(o), .. } => Some(o.as_str()),
            _ => None,
        },
        audit: crate::audit::PendingEntry {
            actor: actor.audit_actor(),
            action: crate::orders::action::ORDER_ACT,
            object: crate::audit::Object::new("order", order.id),
            reason: req.action.text().map(str::to_string),
            detail: serde_json::json!({"action": kind.as_str(), "from": transition.from.as_str(),
                "to": transition.to.as_str(), "version": req.version + 1}),
            at: now,
        },
        assists: (new.assisting_units != order.facts.assisting_units).then(|| new.assisting_units.clone()),
        evaluation: match &req.action {
            Action::Evaluate { rating: Some(r), reasons, .. } => {
                Some((r.as_str(), reasons.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(",")))
            }
            _ => None,
        },
        event: order_event(
            &Step {
                action: kind.as_str(),
                from: transition.from.as_str(),
                to: transition.to.as_str(),
                version: req.version + 1,
            },
            order.id,
            &order.tracking_code,
            actor_id,
            order.node_id,
            now,
        ),
    };
    let won = match db.backend {
        // The transition, its audit entry (under the chain's append lock)
        // and any photos linked to the event commit together.
        Backend::Postgres => {
            let mut tx = db.pool.begin().await?;
            let won = write.apply(&mut tx).await?;
            tx.commit().await?;
            won
        }
        Backend::Sqlite => {
            let write = write.into_write();
            db.write(move |conn| write.apply_sqlite(conn)).await?
        }
    };
    if !won {
        return Err(version_conflict(db, order.id).await);
    }
    // The answer is built from what was written rather than read back.
    let lead_unit_name = match new.lead_unit {
        u if u == order.lead_unit_id => order.lead_unit_name.clone(),
        Some(u) => refs::unit_name(db, u).await?,
        None => None,
    };
    let after = OrderView {
        level: new.level,
        state: new.state,
        state_label: crate::kernel::i18n::t(new.state.label_key()),
        lead_unit_id: new.lead_unit,
        lead_unit_name,
        deadline_kind: deadline.kind.as_deref().map(|k| k.split(':').next().unwrap_or("").to_string()),
        deadline_at: deadline.at,
        warning: warning_of(clock, deadline.kind.as_deref(), deadline.start, deadline.at, deadline.paused_at, now)
            .to_string(),
        paused: deadline.paused_at.is_some(),
        overdue: deadline.overdue,
        rating: new.rating.map(|r| r.as_str().to_string()),
        version: req.version + 1,
        updated_at: now,
        closed_at,
        facts: new.clone(),
        deadline_start: deadline.start,
        deadline_raw: deadline.kind,
        paused_at: deadline.paused_at,
        ..order.clone()
    };
    Recent::of(db).remember(&after);
    Ok(after)
}

// ---------- the field app's 已办 and the 回访 list ----------

/// Steps that count as having handled an order (已办).
const HANDLED_ACTIONS: &str = "('report_back','handle_on_spot')";

/// 已办: orders the person reported back on or handled on the spot, the
/// most recently handled first; only those they may still see.
pub async fn handled_by(db: &Db, clock: &Clock, user: &CurrentUser, page: i64, per_page: i64) -> Result<Page> {
    let per_page = per_page.clamp(1, 100);
    let page = page.max(1);
    let scope = OrderScope::of(db, user).await?;
    let (lo, hi) = scope.bounds();
    let from = format!(
        "(select order_id, max(at) as handled_at from order_events where actor_user_id = $1 \
         and action in {HANDLED_ACTIONS} group by order_id) h join orders o on o.id = h.order_id \
         join categories c on c.code = o.category_code join nodes n on n.id = o.node_id \
         left join units u on u.id = o.lead_unit_id where {}",
        scope_sql(2)
    );
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from {from}"))
        .bind(user.id)
        .bind(&lo)
        .bind(&hi)
        .bind(scope.unit)
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query(&format!(
        "select {ORDER_COLS} from {from} order by h.handled_at desc, o.id desc limit $5 offset $6"
    ))
    .bind(user.id)
    .bind(&lo)
    .bind(&hi)
    .bind(scope.unit)
    .bind(per_page)
    .bind((page - 1).saturating_mul(per_page))
    .fetch_all(&db.pool)
    .await?;
    let now = now_ms();
    let orders = rows.iter().map(|r| order_from_row(r, clock, now)).collect::<Result<_>>()?;
    Ok(Page { orders, total, page, per_page })
}

/// How far back the 回访 list looks: calls are made the day after 办结.
pub const FOLLOW_UP_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// 回访: orders of the person's area closed (办结) in the last 30 days whose
/// reporter left a contact and that no call has reached yet, the longest
/// waiting first.
pub async fn awaiting_follow_up(db: &Db, clock: &Clock, user: &CurrentUser, page: i64, per_page: i64) -> Result<Page> {
    let per_page = per_page.clamp(1, 100);
    let page = page.max(1);
    let scope = OrderScope::of(db, user).await?;
    let (lo, hi) = scope.bounds();
    let since = now_ms() - FOLLOW_UP_WINDOW_MS;
    let filter = format!(
        "o.state in ('pending_evaluation','closed') and o.reporter_contact is not null \
         and (o.follow_up is null or o.follow_up in ('not_reached', 'reopened')) and o.closed_at >= $4 and {}",
        scope_sql(1)
    );
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from orders o where {filter}"))
        .bind(&lo)
        .bind(&hi)
        .bind(scope.unit)
        .bind(since)
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query(&format!(
        "select {ORDER_COLS} from {ORDER_FROM} where {filter} order by o.closed_at, o.id limit $5 offset $6"
    ))
    .bind(&lo)
    .bind(&hi)
    .bind(scope.unit)
    .bind(since)
    .bind(per_page)
    .bind((page - 1).saturating_mul(per_page))
    .fetch_all(&db.pool)
    .await?;
    let now = now_ms();
    let orders = rows.iter().map(|r| order_from_row(r, clock, now)).collect::<Result<_>>()?;
    Ok(Page { orders, total, page, per_page })
}

/// Orders as they were last created, read or acted on here, by id, so that
/// the action that follows — a click on the order page just shown, the
/// same person's next step — need not read it again. Safe without invalidation:
/// every change to what an action reads (state, facts, level, units,
/// deadlines) goes through `act`, which adds one to the version; a copy is
/// used only for a request naming its exact version, and the write is
/// guarded by that version, so a copy made stale by a write elsewhere (a
/// second server, another process) fails that guard with the 409 the
/// request deserved anyway.
pub struct Recent {
    orders: std::sync::Mutex<std::collections::HashMap<i64, OrderView>>,
}

impl Recent {
    /// Orders kept; when full, the copies start over.
    const CAPACITY: usize = 4096;

    fn of(db: &Db) -> std::sync::Arc<Recent> {
        db.memo_get::<Recent>().unwrap_or_else(|| {
            let fresh = std::sync::Arc::new(Recent { orders: Default::default() });
            db.memo_put(fresh.clone());
            fresh
        })
    }

    fn remember(&self, order: &OrderView) {
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        if orders.len() >= Self::CAPACITY && !orders.contains_key(&order.id) {
            orders.clear();
        }
        orders.insert(order.id, order.clone());
    }

    /// The copy of `id` at `version`, if `user` may see it by its place or
    /// lead unit (an assisting unit's people are checked in the database).
    fn get(&self, scope: &OrderScope, id: i64, version: i64) -> Option<OrderView> {
        let orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        let order = orders.get(&id).filter(|o| o.version == version)?;
        scope.sees(&order.node_path, order.lead_unit_id).then(|| order.clone())
    }
}

/// The order an action at `version` starts from: the copy its last
/// creation, read or action here left (see `Recent`) or, failing that, the
/// order as read.
pub async fn get_to_act(db: &Db, clock: &Clock, user: &CurrentUser, id: i64, version: i64) -> Result<OrderView> {
    let scope = OrderScope::of(db, user).await?;
    let Some(mut order) = Recent::of(db).get(&scope, id, version) else {
        return get(db, clock, user, id).await;
    };
    name(db, &mut order).await?;
    let warning = warning_of(
        clock,
        order.deadline_raw.as_deref(),
        order.deadline_start,
        order.deadline_at,
        order.paused_at,
        now_ms(),
    );
    order.warning = warning.to_string();
    Ok(order)
}

/// Everything one transition writes, owned so it can wait for the writer.
struct Transition {
    id: i64,
    version: i64,
    state: &'static str,
    level: &'static str,
    lead_unit: Option<i64>,
    facts: String,
    deadline_kind: Option<String>,
    deadline_start: Option<i64>,
    deadline_at: Option<i64>,
    paused_at: Option<i64>,
    overdue: bool,
    rating: Option<&'static str>,
    closed_at: Option<i64>,
    now: i64,
    actor_id: Option<i64>,
    actor_name: String,
    role: &'static str,
    action: &'static str,
    from: &'static str,
    to: &'static str,
    reason: Option<String>,
    data: String,
    counts: Vec<(i64, &'static str, i64)>,
    notice: Option<&'static str>,
    /// Attachments of this step (checked unlinked beforehand).
    attachments: Vec<i64>,
    public_photos: bool,
    /// A 回访 call's outcome, kept on the order for the 回访 list.
    follow_up: Option<&'static str>,
    /// The hash-chained audit entry of this action.
    audit: crate::audit::PendingEntry,
    /// The order's assisting units, when this step changed them.
    assists: Option<Vec<i64>>,
    /// Told to the outbox if the step wins.
    event: NewEvent,
    /// An evaluation's rating and its reason codes (comma-separated).
    evaluation: Option<(&'static str, String)>,
}

/// One step of an order, as its outbox event names it.
struct Step<'a> {
    action: &'a str,
    from: &'a str,
    to: &'a str,
    version: i64,
}

/// The outbox event of an order's step (`orders.<action>`): ids, codes and
/// the step, never the people's names, contacts or the order's text.
fn order_event(
    step: &Step<'_>,
    order_id: i64,
    tracking_code: &str,
    actor_id: Option<i64>,
    node_id: i64,
    at: i64,
) -> NewEvent {
    NewEvent::new(
        format!("orders.{}", step.action),
        serde_json::json!({
            "order_id": order_id,
            "tracking_code": tracking_code,
            "action": step.action,
            "from": step.from,
            "to": step.to,
            "version": step.version,
            "actor_id": actor_id,
            "node_id": node_id,
            "at": at,
        }),
        at,
    )
}

/// The outbox event of a step taken earlier without one (the demo
/// district's history is written straight into the tables): the same event
/// the step would have told of when it was taken.
#[allow(clippy::too_many_arguments)]
pub fn past_step_event(
    action: &str,
    from: &str,
    to: &str,
    version: i64,
    order_id: i64,
    tracking_code: &str,
    actor_id: Option<i64>,
    node_id: i64,
    at: i64,
) -> NewEvent {
    order_event(&Step { action, from, to, version }, order_id, tracking_code, actor_id, node_id, at)
}

const UPDATE_ORDER: &str = "update orders set state = $1, level = $2, lead_unit_id = $3, facts = $4, \
    deadline_kind = $5, deadline_start = $6, deadline_at = $7, paused_at = $8, overdue = $9, rating = $10, \
    closed_at = $11, version = version + 1, updated_at = $12 where id = $13 and version = $14";

/// Columns a few actions set besides the machine's: 即报即办 (for 即报即办率)
/// and the latest 回访 outcome (for the 回访 list).
struct OrderMarks {
    on_spot: bool,
    follow_up: Option<&'static str>,
}

/// What a transition writes, as statements: the guarded order update and
/// what follows it only if it won (event, queue counts, notice).
struct TransitionWrite {
    marks: OrderMarks,
    update: Vec<V>,
    rest: Statements,
    audit: crate::audit::PendingEntry,
    order_id: i64,
    seq: i64,
    attachments: Vec<i64>,
    public_photos: bool,
    assists: Option<Vec<i64>>,
}

impl Transition {
    fn into_write(self) -> TransitionWrite {
        let update = vec![
            V::S(Some(self.state.into())),
            V::S(Some(self.level.into())),
            V::I(self.lead_unit),
            V::S(Some(self.facts)),
            V::S(self.deadline_kind),
            V::I(self.deadline_start),
            V::I(self.deadline_at),
            V::I(self.paused_at),
            V::I(Some(self.overdue as i64)),
            V::S(self.rating.map(str::to_string)),
            V::I(self.closed_at),
            V::I(Some(self.now)),
            V::I(Some(self.id)),
            V::I(Some(self.version)),
        ];
        // Every action adds one to the version and appends one event, and
        // creation writes version 1 with event 1, so the new event's number
        // is the new version; `unique (order_id, seq)` guards it.
        let mut rest = Statements::new(
            "insert into order_events (order_id, seq, at, actor_user_id, actor_name, actor_role, action, from_state, to_state, reason, data) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            vec![
                V::I(Some(self.id)),
                V::I(Some(self.version + 1)),
                V::I(Some(self.now)),
                V::I(self.actor_id),
                V::S(Some(self.actor_name)),
                V::S(Some(self.role.into())),
                V::S(Some(self.action.into())),
                V::S(Some(self.from.into())),
                V::S(Some(self.to.into())),
                V::S(self.reason.clone()),
                V::S(Some(self.data)),
            ],
        );
        count_statement(&mut rest, &self.counts);
        if let Some((rating, reasons)) = self.evaluation {
            rest.push(
                "insert into order_evaluations (order_id, seq, at, rating, reasons) values ($1, $2, $3, $4, $5)",
                vec![
                    V::I(Some(self.id)),
                    V::I(Some(self.version + 1)),
                    V::I(Some(self.now)),
                    V::S(Some(rating.into())),
                    V::S(Some(reasons)),
                ],
            );
        }
        self.event.push_to(&mut rest);
        if let Some(kind) = self.notice {
            rest.push(
                "insert into order_notices (order_id, unit_id, kind, note, created_at) values ($1,$2,$3,$4,$5)",
                vec![
                    V::I(Some(self.id)),
                    V::I(self.lead_unit),
                    V::S(Some(kind.into())),
                    V::S(self.reason),
                    V::I(Some(self.now)),
                ],
            );
        }
        let marks = OrderMarks { on_spot: self.action == ActionKind::HandleOnSpot.as_str(), follow_up: self.follow_up };
        TransitionWrite {
            marks,
            update,
            rest,
            audit: self.audit,
            order_id: self.id,
            seq: self.version + 1,
            attachments: self.attachments,
            public_photos: self.public_photos,
            assists: self.assists,
        }
    }

    /// PostgreSQL: the order row if its version is still the one acted on
    /// (else `false`: someone else won), its event, its queue counts and
    /// notice, in one statement; then the audit entry, appended after the
    /// rows are locked, as order creation does, so every writer takes the
    /// rows (the district's count row first of all) before the chain's
    /// append lock and none can wait for the other in reverse.
    async fn apply(self, conn: &mut sqlx::AnyConnection) -> Result<bool> {
        let w = self.into_write();
        let won = w.rest.execute_if(UPDATE_ORDER, w.update, conn).await?;
        if won {
            w.audit.append_in(conn).await?;
            if w.marks.on_spot {
                sqlx::query("update orders set on_spot = 1 where id = $1").bind(w.order_id).execute(&mut *conn).await?;
            }
            if let Some(outcome) = w.marks.follow_up {
                sqlx::query("update orders set follow_up = $1 where id = $2")
                    .bind(outcome)
                    .bind(w.order_id)
                    .execute(&mut *conn)
                    .await?;
            }
            link_attachments(conn, w.order_id, w.seq, &w.attachments, w.public_photos).await?;
            if let Some(units) = &w.assists {
                sqlx::query("delete from order_assists where order_id = $1")
                    .bind(w.order_id)
                    .execute(&mut *conn)
                    .await?;
                for u in units {
                    sqlx::query("insert into order_assists (unit_id, order_id) values ($1, $2)")
                        .bind(u)
                        .bind(w.order_id)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        Ok(won)
    }
}

impl TransitionWrite {
    /// SQLite: the same on the group-commit writer's connection, which
    /// holds the database's write lock; the audit entry follows a won update.
    fn apply_sqlite(&self, conn: &rusqlite::Connection) -> Result<bool> {
        let won = self.rest.execute_if_sqlite(UPDATE_ORDER, &self.update, conn)?;
        if !won {
            return Ok(false);
        }
        self.audit.append_sqlite(conn)?;
        if self.marks.on_spot {
            conn.prepare_cached("update orders set on_spot = 1 where id = $1")?.execute([self.order_id])?;
        }
        if let Some(outcome) = self.marks.follow_up {
            conn.prepare_cached("update orders set follow_up = $1 where id = $2")?
                .execute(rusqlite::params![outcome, self.order_id])?;
        }
        if let Some(units) = &self.assists {
            conn.prepare_cached("delete from order_assists where order_id = $1")?.execute([self.order_id])?;
            let mut insert = conn.prepare_cached("insert into order_assists (unit_id, order_id) values ($1, $2)")?;
            for u in units {
                insert.execute([*u, self.order_id])?;
            }
        }
        if !self.attachments.is_empty() {
            let event_id: i64 = conn
                .prepare_cached("select id from order_events where order_id = $1 and seq = $2")?
                .query_row([self.order_id, self.seq], |r| r.get(0))?;
            crate::attachments::store::link_sqlite(
                conn,
                self.order_id,
                event_id,
                &self.attachments,
                self.public_photos,
            )?;
        }
        Ok(true)
    }
}

/// Links a step's attachments to its event (number `seq`).
async fn link_attachments(
    conn: &mut sqlx::AnyConnection,
    order_id: i64,
    seq: i64,
    attachments: &[i64],
    public: bool,
) -> Result<()> {
    if attachments.is_empty() {
        return Ok(());
    }
    let event_id: i64 = sqlx::query("select id from order_events where order_id = $1 and seq = $2")
        .bind(order_id)
        .bind(seq)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    crate::attachments::store::link(conn, order_id, event_id, attachments, public).await
}

/// A 409 that says what changed: the latest event on the order.
async fn version_conflict(db: &Db, order_id: i64) -> Error {
    let last =
        sqlx::query("select actor_name, action, at from order_events where order_id = $1 order by seq desc limit 1")
            .bind(order_id)
            .fetch_optional(&db.pool)
            .await;
    let detail = match last {
        Ok(Some(r)) => {
            let who: String = r.try_get("actor_name").unwrap_or_default();
            let action: String = r.try_get("action").unwrap_or_default();
            let at: i64 = r.try_get("at").unwrap_or_default();
            let when = ms_to_utc(at).with_timezone(&crate::kernel::clock::CHINA_STANDARD_TIME).format("%m-%d %H:%M:%S");
            Some(format!("{who} 于 {when} {}", crate::kernel::i18n::t(&format!("order.action.{action}"))))
        }
        _ => None,
    };
    Error::Conflict { code: "order.version_conflict".into(), detail }
}
