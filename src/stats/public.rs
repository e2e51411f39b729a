//! Public figures (政务公开) on the portal: each area's monthly 受理量,
//! 按期办结率 and 满意率, without login, so residents see how their area is
//! served. Only counts and rates of whole months are shown; nothing of any
//! single order or person.

use askama::Template;
use axum::{extract::State, http::Uri, response::Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::{
    indicators::{Tally, Value},
    store, window, Period,
};
use crate::{
    kernel::{error::Result, scope::Scope},
    tree::{store as tree_store, Node, NodeKind},
    web::{extract::page::Query, render, AppState, Msg as _},
};

/// The figures residents see, in this order.
pub const PUBLIC: [&str; 3] = ["received", "on_time_close", "satisfaction"];

#[derive(Deserialize, Default)]
pub struct PublicQuery {
    pub node: Option<i64>,
    /// A month, `YYYY-MM`; the last complete month by default.
    pub month: Option<String>,
}

pub struct Area {
    pub node: Node,
    pub tally: Tally,
}

#[derive(Template)]
#[template(path = "portal/figures.html")]
struct FiguresPage {
    node: Node,
    parent: Option<Node>,
    month_label: String,
    /// The month shown, `YYYY-MM`.
    month: String,
    prev: Option<String>,
    next: Option<String>,
    total: Tally,
    areas: Vec<Area>,
}

impl FiguresPage {
    fn keys(&self) -> &'static [&'static str] {
        &PUBLIC
    }

    fn label(&self, key: &str) -> &'static str {
        crate::web::t(&format!("stats.{key}"))
    }

    fn formula(&self, key: &str) -> &'static str {
        crate::web::t(&format!("stats.{key}.formula"))
    }

    fn value(&self, tally: &Tally, key: &str) -> Value {
        tally.value(key)
    }

    fn link(&self, node: impl std::borrow::Borrow<i64>, month: &str) -> String {
        format!("/portal/figures?node={}&month={month}", node.borrow())
    }
}

/// The first month with orders: the portal does not page back past it.
async fn first_month(s: &AppState) -> Result<Option<NaiveDate>> {
    let first: Option<i64> = sqlx::query_scalar("select min(created_at) from orders").fetch_one(&s.db.pool).await?;
    Ok(first.and_then(chrono::DateTime::from_timestamp_millis).map(|d| {
        let day = d.with_timezone(&crate::audit::cst()).date_naive();
        Period::Month.bounds(day).0
    }))
}

pub async fn figures(State(s): State<AppState>, uri: Uri, Query(q): Query<PublicQuery>) -> Result<Response> {
    let scope = Scope::everything();
    let node = match q.node {
        Some(id) => match tree_store::get_node(&s.db, &scope, id).await {
            // Areas only: grids and buildings are too small to publish on their own.
            Ok(n) if n.is_active() && !matches!(n.kind, NodeKind::Grid | NodeKind::Building) => n,
            Ok(_) | Err(crate::kernel::error::Error::NotFound) => return Ok(crate::web::not_found(uri).await),
            Err(e) => return Err(e),
        },
        None => match tree_store::scope_roots(&s.db, &scope).await?.into_iter().next() {
            Some(root) => root,
            None => return Ok(crate::web::not_found(uri).await),
        },
    };
    let today = chrono::Utc::now().with_timezone(&crate::audit::cst()).date_naive();
    let this_month = Period::Month.bounds(today).0;
    let last_complete = Period::Month.bounds(this_month.pred_opt().unwrap_or(this_month)).0;
    let asked = q.month.as_deref().and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok());
    let start = asked.filter(|d| *d <= last_complete).map_or(last_complete, |d| Period::Month.bounds(d).0);
    let end = Period::Month.bounds(start).1;
    let first = first_month(&s).await?;
    let prev_start = Period::Month.bounds(start.pred_opt().unwrap_or(start)).0;
    let prev = first.filter(|f| *f <= prev_start).map(|_| prev_start.format("%Y-%m").to_string());
    let next = (end <= last_complete).then(|| end.format("%Y-%m").to_string());

    let facts = store::facts(&s.db, &window(&node, start, end)).await?;
    let children = if node.kind == NodeKind::Community {
        vec![]
    } else {
        tree_store::children(&s.db, &scope, node.id, false).await?
    };
    let mut total = Tally::default();
    let mut areas: Vec<Area> =
        children.into_iter().filter(|c| c.is_active()).map(|c| Area { node: c, tally: Tally::default() }).collect();
    for f in &facts {
        total.add(f);
        if let Some(a) = areas.iter_mut().find(|a| f.node_path.starts_with(&a.node.path)) {
            a.tally.add(f);
        }
    }
    let parent = match node.parent_id {
        Some(p) => Some(tree_store::get_node(&s.db, &scope, p).await?),
        None => None,
    };
    Ok(render(&FiguresPage {
        month_label: Period::Month.label(start),
        month: start.format("%Y-%m").to_string(),
        node,
        parent,
        prev,
        next,
        total,
        areas,
    }))
}
