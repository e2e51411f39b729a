//! Statistics and assessment (统计考核): the work-order indicators of a
//! node and of each of its children, for a month, quarter or year, with
//! every figure's formula beside it. Exact by construction: the figures
//! are counted from the event log (see `indicators`).

use askama::Template;
use axum::{extract::State, http::Uri, response::Response, routing::get, Router};
use chrono::{Datelike, NaiveDate, TimeZone};
use serde::Deserialize;

pub mod assessment;
pub mod drill;
pub mod indicators;
pub mod public;
pub mod report;
pub mod store;
pub mod trend;

use assessment::{Assessed, Scheme};
use indicators::{Indicator, Tally, Value, INDICATORS};

use crate::{
    kernel::{error::Result, perm::Perm, principal::CurrentUser, scope::subtree_bounds},
    tree::{store as tree_store, Node, NodeKind},
    web::{extract::page::Query, login_or_redirect, render, require_page, t, to_login, AppState, Msg as _, Shell},
};

/// This domain's pages.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/stats", get(page))
        .route("/stats/orders", get(drill::orders))
        .route("/stats/export", get(drill::export))
        .route("/stats/report", get(report::monthly))
        .route("/portal/figures", get(public::figures))
        .route("/admin/assessment", get(drill::scheme_page).post(drill::save_scheme))
}

/// Audit actions of statistics and assessment.
pub mod action {
    pub const STATS_EXPORT: &str = "stats.export";
    pub const ASSESSMENT_SET: &str = "assessment.set";

    /// Every action above, for the audit log's filters (`audit::action::register`).
    pub const ALL: &[&str] = &[STATS_EXPORT, ASSESSMENT_SET];
}

/// A period of the calendar, in China Standard Time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Month,
    Quarter,
    Year,
}

impl Period {
    fn parse(s: Option<&str>) -> Period {
        match s {
            Some("quarter") => Period::Quarter,
            Some("year") => Period::Year,
            _ => Period::Month,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    /// The first day of the period that holds `day`, and of the next one.
    pub fn bounds(&self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        let (y, m) = (day.year(), day.month());
        let start_month = match self {
            Period::Month => m,
            Period::Quarter => (m - 1) / 3 * 3 + 1,
            Period::Year => 1,
        };
        let len = match self {
            Period::Month => 1,
            Period::Quarter => 3,
            Period::Year => 12,
        };
        let start = NaiveDate::from_ymd_opt(y, start_month, 1).unwrap_or(day);
        let end_month0 = start_month - 1 + len;
        let end = NaiveDate::from_ymd_opt(y + (end_month0 / 12) as i32, end_month0 % 12 + 1, 1).unwrap_or(day);
        (start, end)
    }

    /// "2026年12月", "2026年第四季度", "2026年".
    pub fn label(&self, start: NaiveDate) -> String {
        match self {
            Period::Month => format!("{}年{}月", start.year(), start.month()),
            Period::Quarter => {
                let q = ["一", "二", "三", "四"][((start.month() - 1) / 3) as usize];
                format!("{}年第{q}季度", start.year())
            }
            Period::Year => format!("{}年", start.year()),
        }
    }
}

fn epoch_ms(day: NaiveDate) -> i64 {
    let cst = crate::audit::cst();
    day.and_hms_opt(0, 0, 0).and_then(|t| cst.from_local_datetime(&t).single()).map_or(0, |t| t.timestamp_millis())
}

#[derive(Deserialize, Default, Clone)]
pub struct StatsQuery {
    pub node: Option<i64>,
    pub period: Option<String>,
    /// Any day of the period, `YYYY-MM-DD` (or a month, `YYYY-MM`).
    pub at: Option<String>,
    /// The indicator to rank the children by (or `score`).
    pub sort: Option<String>,
}

/// One row of the table: a child node (or the node itself, the total).
pub struct Row {
    pub node: Node,
    pub tally: Tally,
    pub assessed: Option<Assessed>,
    pub rank: Option<usize>,
}

/// One department's row (职能部门: the orders it leads).
pub struct UnitRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub tally: Tally,
    pub assessed: Option<Assessed>,
    pub rank: Option<usize>,
}

/// What ranking needs of a row.
trait Ranked {
    fn tally(&self) -> &Tally;
    fn assessed(&self) -> Option<&Assessed>;
    fn code(&self) -> &str;
    fn set_rank(&mut self, rank: usize);
}

impl Ranked for Row {
    fn tally(&self) -> &Tally {
        &self.tally
    }
    fn assessed(&self) -> Option<&Assessed> {
        self.assessed.as_ref()
    }
    fn code(&self) -> &str {
        &self.node.code
    }
    fn set_rank(&mut self, rank: usize) {
        self.rank = Some(rank);
    }
}

impl Ranked for UnitRow {
    fn tally(&self) -> &Tally {
        &self.tally
    }
    fn assessed(&self) -> Option<&Assessed> {
        self.assessed.as_ref()
    }
    fn code(&self) -> &str {
        &self.code
    }
    fn set_rank(&mut self, rank: usize) {
        self.rank = Some(rank);
    }
}

/// The figures of a node and its children for a period.
pub struct Table {
    pub node: Node,
    /// The ancestors from the user's own node down to the node's parent.
    pub trail: Vec<Node>,
    pub period: Period,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub today: NaiveDate,
    pub total: Tally,
    pub total_assessed: Option<Assessed>,
    pub rows: Vec<Row>,
    /// The departments registered at the node (the district's), by the
    /// orders each leads.
    pub units: Vec<UnitRow>,
    /// An indicator's key, or `score`.
    pub sort: &'static str,
    pub scheme: Scheme,
}

/// The window of orders of a node's subtree reported in a period.
fn window(node: &Node, start: NaiveDate, end: NaiveDate) -> store::Window {
    let (lo, hi) = subtree_bounds(&node.path);
    store::Window { lo, hi, from: epoch_ms(start), to: epoch_ms(end) }
}

/// The period a query names (the current one by default).
fn period_of(q: &StatsQuery) -> (Period, NaiveDate, NaiveDate, NaiveDate) {
    let period = Period::parse(q.period.as_deref());
    let today = chrono::Utc::now().with_timezone(&crate::audit::cst()).date_naive();
    let day =
        q.at.as_deref()
            .and_then(|a| {
                NaiveDate::parse_from_str(a, "%Y-%m-%d")
                    .ok()
                    .or_else(|| NaiveDate::parse_from_str(&format!("{a}-01"), "%Y-%m-%d").ok())
            })
            .unwrap_or(today);
    let (start, end) = period.bounds(day);
    (period, start, end, today)
}

/// Computes the table a query asks for, within the caller's scope.
pub async fn table(s: &AppState, user: &CurrentUser, q: &StatsQuery) -> Result<Table> {
    let scope = user.scope();
    // A node outside the caller's scope is "not found", like everywhere.
    let node = tree_store::get_node(&s.db, &scope, q.node.unwrap_or(user.node_id)).await?;
    let (period, start, end, today) = period_of(q);
    let facts = store::facts(&s.db, &window(&node, start, end)).await?;
    let scheme = Scheme::load(&s.db).await?;
    let children = if node.kind == NodeKind::Building {
        vec![]
    } else {
        tree_store::children(&s.db, &scope, node.id, false).await?
    };
    let mut total = Tally::default();
    let mut rows: Vec<Row> =
        children.into_iter().map(|c| Row { node: c, tally: Tally::default(), assessed: None, rank: None }).collect();
    for f in &facts {
        total.add(f);
        if let Some(r) = rows.iter_mut().find(|r| f.node_path.starts_with(&r.node.path)) {
            r.tally.add(f);
        }
    }
    for r in &mut rows {
        r.assessed = scheme.assess(&r.tally);
    }
    let mut units: Vec<UnitRow> = store::departments(&s.db, node.id)
        .await?
        .into_iter()
        .map(|(id, code, name)| UnitRow { id, code, name, tally: Tally::default(), assessed: None, rank: None })
        .collect();
    if !units.is_empty() {
        for f in &facts {
            if let Some(u) = units.iter_mut().find(|u| Some(u.id) == f.lead_unit) {
                u.tally.add(f);
            }
        }
        for u in &mut units {
            u.assessed = scheme.assess(&u.tally);
        }
    }
    let sort: &'static str = match q.sort.as_deref() {
        Some("score") => "score",
        other => INDICATORS.iter().find(|i| Some(i.key) == other).unwrap_or(&INDICATORS[0]).key,
    };
    rank(&mut rows, sort);
    rank(&mut units, sort);
    let mut trail = vec![];
    let mut at = node.parent_id;
    while let Some(id) = at {
        match tree_store::get_node(&s.db, &scope, id).await {
            Ok(n) => {
                at = n.parent_id;
                trail.push(n);
            }
            Err(_) => break,
        }
    }
    trail.reverse();
    let total_assessed = scheme.assess(&total);
    Ok(Table { node, trail, period, start, end, today, total, total_assessed, rows, units, sort, scheme })
}

#[derive(Template)]
#[template(path = "stats/index.html")]
struct StatsPage {
    shell: Shell,
    table: Table,
    period_label: String,
    at: String,
    prev: String,
    next: Option<String>,
    /// The twelve-month trend of the ranked indicator and of 受理量: (title, SVG).
    trends: Vec<(&'static str, String)>,
}

impl StatsPage {
    fn indicators(&self) -> &'static [Indicator] {
        INDICATORS
    }

    fn label(&self, key: &str) -> &'static str {
        t(&format!("stats.{key}"))
    }

    fn formula(&self, key: &str) -> &'static str {
        t(&format!("stats.{key}.formula"))
    }

    fn value(&self, tally: &Tally, key: &str) -> Value {
        tally.value(key)
    }

    fn link(&self, node: impl std::borrow::Borrow<i64>, sort: &str) -> String {
        let node = *node.borrow();
        format!("/stats?node={node}&period={}&at={}&sort={sort}", self.table.period.as_str(), self.at)
    }

    fn period_link(&self, period: &str) -> String {
        format!("/stats?node={}&period={period}&at={}&sort={}", self.table.node.id, self.at, self.table.sort)
    }

    fn at_link(&self, at: &str) -> String {
        format!(
            "/stats?node={}&period={}&at={at}&sort={}",
            self.table.node.id,
            self.table.period.as_str(),
            self.table.sort
        )
    }

    /// The orders behind a figure of a node.
    fn drill(&self, node: impl std::borrow::Borrow<i64>, key: &str) -> String {
        format!(
            "/stats/orders?node={}&period={}&at={}&indicator={key}",
            node.borrow(),
            self.table.period.as_str(),
            self.at
        )
    }

    /// The orders behind a figure of a department.
    fn unit_drill(&self, unit: impl std::borrow::Borrow<i64>, key: &str) -> String {
        format!("{}&unit={}", self.drill(self.table.node.id, key), unit.borrow())
    }

    fn report_link(&self) -> String {
        format!("/stats/report?node={}&at={}", self.table.node.id, self.at)
    }

    fn export_link(&self) -> String {
        format!(
            "/stats/export?node={}&period={}&at={}&sort={}",
            self.table.node.id,
            self.table.period.as_str(),
            self.at,
            self.table.sort
        )
    }

    fn weights(&self) -> String {
        self.table
            .scheme
            .weights
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(k, w)| format!("{}{w}%", t(&format!("stats.{k}"))))
            .collect::<Vec<_>>()
            .join("，")
    }

    fn grades(&self) -> String {
        self.table.scheme.grades.iter().map(|(g, least)| format!("{g} ≥ {least}")).collect::<Vec<_>>().join("，")
    }
}

pub async fn page(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<StatsQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let table = table(&s, &user, &q).await?;
    let prev_day = table.start.pred_opt().unwrap_or(table.start);
    let next = (table.end <= table.today).then(|| table.end.format("%Y-%m-%d").to_string());
    let last = table.end.pred_opt().unwrap_or(table.end).min(table.today);
    let months = trend::months(&s.db, &table.node, last).await?;
    let shown = if table.sort == "score" || table.sort == "received" { "close_rate" } else { table.sort };
    let trends = [shown, "received"]
        .iter()
        .map(|k| {
            let label = t(&format!("stats.{k}"));
            (label, trend::chart(&months, k, label))
        })
        .collect();
    Ok(render(&StatsPage {
        shell: Shell { user, active: "stats" },
        period_label: table.period.label(table.start),
        at: table.start.format("%Y-%m-%d").to_string(),
        prev: prev_day.format("%Y-%m-%d").to_string(),
        next,
        trends,
        table,
    }))
}

/// Orders the rows best first by an indicator or the score (rows without a
/// figure last, unranked) and numbers them; equal figures share a rank.
fn rank<R: Ranked>(rows: &mut [R], by: &str) {
    let higher_is_better = INDICATORS.iter().find(|i| i.key == by).is_none_or(|i| i.higher_is_better);
    let figure = |r: &R| {
        if by == "score" {
            r.assessed().map(|a| a.score)
        } else {
            r.tally().value(by).number()
        }
    };
    let better = |a: f64, b: f64| if higher_is_better { b.partial_cmp(&a) } else { a.partial_cmp(&b) };
    rows.sort_by(|a, b| {
        match (figure(a), figure(b)) {
            (Some(x), Some(y)) => better(x, y).unwrap_or(std::cmp::Ordering::Equal),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.code().cmp(b.code()))
    });
    let mut last: Option<(f64, usize)> = None;
    for i in 0..rows.len() {
        let Some(v) = figure(&rows[i]) else { continue };
        let place = match last {
            Some((prev, place)) if prev == v => place,
            _ => i + 1,
        };
        rows[i].set_rank(place);
        last = Some((v, place));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_the_calendar() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 17).unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(Period::Month.bounds(d), (day(2026, 11, 1), day(2026, 12, 1)));
        assert_eq!(Period::Quarter.bounds(d), (day(2026, 10, 1), day(2027, 1, 1)));
        assert_eq!(Period::Year.bounds(d), (day(2026, 1, 1), day(2027, 1, 1)));
        assert_eq!(Period::Month.bounds(day(2026, 12, 31)), (day(2026, 12, 1), day(2027, 1, 1)));
        assert_eq!(Period::Quarter.label(day(2026, 10, 1)), "2026年第四季度");
        // Midnight in Beijing is 16:00 UTC the day before.
        assert_eq!(epoch_ms(day(2026, 12, 1)), 1_796_054_400_000);
    }
}
