//! Behind the figures: the orders a figure counts (drill-down), the table
//! as a workbook, and the assessment scheme's page.

use askama::Template;
use axum::{
    extract::State,
    http::Uri,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    assessment::Scheme,
    indicators::{behind, Part, INDICATORS},
    period_of, store, table, window, StatsQuery,
};
use crate::{
    kernel::{
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    orders::store::OrderView,
    tree::store as tree_store,
    web::{
        extract::page::{Form, Query},
        login_or_redirect, render, require_page, t, to_login, AppState, ClientAddr, Msg as _, Shell,
    },
};

#[derive(Deserialize, Default)]
pub struct DrillQuery {
    pub node: Option<i64>,
    pub period: Option<String>,
    pub at: Option<String>,
    pub indicator: Option<String>,
    /// `counted` (default) or `base`.
    pub part: Option<String>,
    /// A department of the node: only the orders it leads.
    pub unit: Option<i64>,
    pub page: Option<i64>,
}

const PER_PAGE: usize = 50;

#[derive(Template)]
#[template(path = "stats/orders.html")]
struct DrillPage {
    shell: Shell,
    node_name: String,
    period_label: String,
    key: &'static str,
    part: Part,
    rate: bool,
    back: String,
    base_link: String,
    counted_link: String,
    total: usize,
    hidden: usize,
    orders: Vec<OrderView>,
    page: usize,
    pages: usize,
    page_link: String,
}

impl DrillPage {
    fn label(&self) -> &'static str {
        t(&format!("stats.{}", self.key))
    }

    fn formula(&self) -> &'static str {
        t(&format!("stats.{}.formula", self.key))
    }
}

/// The orders behind one figure of a node and period, those the caller may
/// read listed (a figure may count orders of units the caller does not
/// see: they are counted, not shown).
pub async fn orders(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<DrillQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let key = INDICATORS
        .iter()
        .find(|i| Some(i.key) == q.indicator.as_deref())
        .ok_or_else(|| Error::invalid("stats.indicator_unknown", "indicator"))?;
    let part = if key.rate { Part::parse(q.part.as_deref()) } else { Part::Counted };
    let node = tree_store::get_node(&s.db, &user.scope(), q.node.unwrap_or(user.node_id)).await?;
    let sq = StatsQuery { node: Some(node.id), period: q.period.clone(), at: q.at.clone(), sort: None };
    let (period, start, end, _) = period_of(&sq);
    let w = window(&node, start, end);
    let facts = store::facts(&s.db, &w).await?;
    let unit = match q.unit {
        Some(id) => {
            Some(store::departments(&s.db, node.id).await?.into_iter().find(|u| u.0 == id).ok_or(Error::NotFound)?)
        }
        None => None,
    };
    let behind_ids: std::collections::HashSet<i64> = facts
        .iter()
        .filter(|f| unit.as_ref().is_none_or(|u| f.lead_unit == Some(u.0)))
        .filter(|f| behind(key.key, part, f))
        .map(|f| f.order_id)
        .collect();
    // Newest first, like the queues.
    let ids: Vec<i64> =
        store::newest_first(&s.db, &w).await?.into_iter().filter(|id| behind_ids.contains(id)).collect();
    let pages = ids.len().div_ceil(PER_PAGE).max(1);
    let page = (q.page.unwrap_or(1).max(1) as usize).min(pages);
    let clock = s.clock();
    let mut orders = vec![];
    let mut hidden = 0;
    for id in ids.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE) {
        match crate::orders::store::get(&s.db, &clock, &user, *id).await {
            Ok(o) => orders.push(o.for_reader(&user)),
            Err(Error::NotFound) => hidden += 1,
            Err(e) => return Err(e),
        }
    }
    let at = start.format("%Y-%m-%d");
    let mut base = format!("/stats/orders?node={}&period={}&at={at}&indicator={}", node.id, period.as_str(), key.key);
    if let Some(u) = &unit {
        base += &format!("&unit={}", u.0);
    }
    Ok(render(&DrillPage {
        shell: Shell { user, active: "stats" },
        node_name: match &unit {
            Some(u) => format!("{}（{}）", node.name, u.2),
            None => node.name.clone(),
        },
        period_label: period.label(start),
        key: key.key,
        part,
        rate: key.rate,
        back: format!("/stats?node={}&period={}&at={at}", node.id, period.as_str()),
        base_link: format!("{base}&part=base"),
        counted_link: format!("{base}&part=counted"),
        total: ids.len(),
        hidden,
        orders,
        page,
        pages,
        page_link: format!("{base}&part={}&page=", part.as_str()),
    }))
}

/// The table of a node's children as an xlsx workbook (audited).
pub async fn export(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    ClientAddr(addr): ClientAddr,
    Query(q): Query<StatsQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::OrdersRead);
    let table = table(&s, &user, &q).await?;
    let bytes = workbook(&table).map_err(|e| Error::Internal(anyhow::anyhow!("xlsx: {e}")))?;
    crate::audit::record(
        &s.db,
        &crate::audit::Actor::user(&user, addr),
        super::action::STATS_EXPORT,
        None,
        None,
        serde_json::json!({"node": table.node.name, "period": table.period.label(table.start)}),
    )
    .await?;
    let name = format!("{}-{}-{}.xlsx", t("stats.title"), table.node.name, table.period.label(table.start));
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"stats.xlsx\"; filename*=UTF-8''{}", encoded.replace('+', "%20")),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// One sheet: a title row, a header, one row per child and the total, with
/// rates as percentages Excel can compute with.
fn workbook(table: &super::Table) -> std::result::Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(t("stats.export_sheet"))?;
    let bold = Format::new().set_bold();
    let pct = Format::new().set_num_format("0.0%");
    sheet.write_string_with_format(
        0,
        0,
        format!("{} {} {}", table.node.name, table.period.label(table.start), t("stats.title")),
        &bold,
    )?;
    let mut head = vec![
        t("stats.rank").to_string(),
        t("field.name").to_string(),
        t("stats.score").into(),
        t("stats.grade").into(),
    ];
    head.extend(INDICATORS.iter().map(|i| t(&format!("stats.{}", i.key)).to_string()));
    for (c, h) in head.iter().enumerate() {
        sheet.write_string_with_format(1, c as u16, h, &bold)?;
    }
    let total = super::Row {
        node: table.node.clone(),
        tally: table.total.clone(),
        assessed: table.total_assessed.clone(),
        rank: None,
    };
    for (i, r) in table.rows.iter().chain(std::iter::once(&total)).enumerate() {
        let row = i as u32 + 2;
        if let Some(k) = r.rank {
            sheet.write_number(row, 0, k as f64)?;
        }
        let name = if i == table.rows.len() { t("stats.total").to_string() } else { r.node.name.clone() };
        sheet.write_string(row, 1, name)?;
        if let Some(a) = &r.assessed {
            sheet.write_number(row, 2, a.score)?;
            sheet.write_string(row, 3, &a.grade)?;
        }
        write_figures(sheet, row, &r.tally, &pct)?;
    }
    if !table.units.is_empty() {
        let first = table.rows.len() as u32 + 4;
        sheet.write_string_with_format(first, 1, t("stats.by_department"), &bold)?;
        for (i, u) in table.units.iter().enumerate() {
            let row = first + 1 + i as u32;
            if let Some(k) = u.rank {
                sheet.write_number(row, 0, k as f64)?;
            }
            sheet.write_string(row, 1, &u.name)?;
            if let Some(a) = &u.assessed {
                sheet.write_number(row, 2, a.score)?;
                sheet.write_string(row, 3, &a.grade)?;
            }
            write_figures(sheet, row, &u.tally, &pct)?;
        }
    }
    sheet.set_column_width(1, 18)?;
    book.save_to_buffer()
}

/// A row's figures from the fifth column on: counts as numbers, rates as
/// percentages, nothing where a rate has no base.
fn write_figures(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    tally: &super::Tally,
    pct: &rust_xlsxwriter::Format,
) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    for (c, ind) in INDICATORS.iter().enumerate() {
        let col = c as u16 + 4;
        match tally.value(ind.key) {
            super::Value::Count(n) => {
                sheet.write_number(row, col, n as f64)?;
            }
            super::Value::Rate { num, den } => {
                sheet.write_number_with_format(row, col, num as f64 / den as f64, pct)?;
            }
            super::Value::NoBase => {}
        }
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "stats/scheme.html")]
struct SchemePage {
    shell: Shell,
    scheme: Scheme,
    saved: bool,
}

impl SchemePage {
    /// Every rate with its weight in the scheme (0 when not weighted).
    fn rates(&self) -> Vec<(&'static str, &'static str, i64)> {
        INDICATORS
            .iter()
            .filter(|i| i.rate)
            .map(|i| {
                let w = self.scheme.weights.iter().find(|(k, _)| k == i.key).map_or(0, |(_, w)| *w);
                (i.key, t(&format!("stats.{}", i.key)), w)
            })
            .collect()
    }

    fn formula(&self, key: &str) -> &'static str {
        t(&format!("stats.{key}.formula"))
    }
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    pub saved: Option<String>,
}

/// The weights and grades of the assessment, for those who set them.
pub async fn scheme_page(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<SavedQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::StatsConfigure);
    let scheme = Scheme::load(&s.db).await?;
    Ok(render(&SchemePage { shell: Shell { user, active: "assessment" }, scheme, saved: q.saved.is_some() }))
}

/// htmx: saves the scheme from the form: `w.<key>` weights, `g<n>` grade
/// names and `m<n>` their least scores.
pub async fn save_scheme(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    if !user.can(Perm::StatsConfigure) {
        return crate::web::forbidden();
    }
    let r = async {
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
        let mut weights = vec![];
        for i in INDICATORS.iter().filter(|i| i.rate) {
            let v = get(&format!("w.{}", i.key));
            let w = if v.is_empty() {
                0
            } else {
                v.parse::<i64>().map_err(|_| Error::invalid("assessment.not_a_number", "weights"))?
            };
            if w != 0 {
                weights.push((i.key.to_string(), w));
            }
        }
        let mut grades = vec![];
        for n in 0..6 {
            let name = get(&format!("g{n}"));
            if name.is_empty() {
                continue;
            }
            let least = get(&format!("m{n}"))
                .parse::<i64>()
                .map_err(|_| Error::invalid("assessment.not_a_number", "grades"))?;
            grades.push((name, least));
        }
        let scheme = Scheme { weights, grades };
        scheme.save(&s.db).await?;
        crate::audit::record(
            &s.db,
            &crate::audit::Actor::user(&user, addr),
            super::action::ASSESSMENT_SET,
            None,
            None,
            serde_json::json!({"weights": scheme.weights, "grades": scheme.grades}),
        )
        .await?;
        Ok::<_, Error>(())
    }
    .await;
    match r {
        Ok(()) => crate::web::hx_redirect("/admin/assessment?saved=1"),
        Err(e) => crate::web::alert(&e),
    }
}
