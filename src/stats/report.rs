//! The monthly report (月度通报) of a node: its grade and figures, its
//! children and departments ranked, the matters most reported and the
//! trend, laid out for paper (A4) and printed, or saved as PDF, from the
//! browser's print dialog.

use askama::Template;
use axum::{extract::State, http::Uri, response::Response};

use super::{
    indicators::{Indicator, Tally, Value, INDICATORS},
    store, table, trend, window, Period, StatsQuery, Table,
};
use crate::{
    kernel::{error::Result, perm::Perm, principal::CurrentUser},
    web::{extract::page::Query, login_or_redirect, render, require_page, t, to_login, AppState, Msg as _},
};

/// The figures of the report's tables, fewer than the full page's.
const SHOWN: [&str; 8] =
    ["received", "closed", "close_rate", "on_time_close", "overdue", "rework_rate", "satisfaction", "local_share"];

#[derive(Template)]
#[template(path = "stats/report.html")]
struct ReportPage {
    table: Table,
    month_label: String,
    made_by: String,
    made_at: String,
    categories: Vec<(String, i64)>,
    trend: String,
}

impl ReportPage {
    fn shown(&self) -> Vec<&'static Indicator> {
        SHOWN.iter().filter_map(|k| INDICATORS.iter().find(|i| i.key == *k)).collect()
    }

    fn all(&self) -> &'static [Indicator] {
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

    /// The statistics page of the same node and month.
    fn back(&self) -> String {
        format!("/stats?node={}&period=month&at={}", self.table.node.id, self.table.start.format("%Y-%m-%d"))
    }

    /// "12.5%" of the period's orders.
    fn share(&self, n: &i64) -> String {
        let total = self.table.total.received.max(1);
        format!("{:.1}%", *n as f64 * 100.0 / total as f64)
    }
}

pub async fn monthly(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<StatsQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let q = StatsQuery { period: Some("month".into()), sort: Some("score".into()), ..q };
    let table = table(&s, &user, &q).await?;
    let categories = store::categories(&s.db, &window(&table.node, table.start, table.end), 10).await?;
    let last = table.end.pred_opt().unwrap_or(table.end).min(table.today);
    let months = trend::months(&s.db, &table.node, last).await?;
    let trend = trend::chart(&months, "received", t("stats.received"));
    let now = chrono::Utc::now().with_timezone(&crate::audit::cst());
    Ok(render(&ReportPage {
        month_label: Period::Month.label(table.start),
        made_by: format!("{}（{}）", user.display_name, user.node_name),
        made_at: now.format("%Y-%m-%d %H:%M").to_string(),
        categories,
        trend,
        table,
    }))
}
