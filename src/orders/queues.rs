//! What the staff queues show beyond an order's own fields: how long it
//! has waited, the name of the deadline that runs, and the places its
//! filter offers.

use sqlx::Row;

use super::store::OrderView;
use crate::{
    kernel::{error::Result, i18n::t, principal::CurrentUser},
    platform::db::Db,
};

impl OrderView {
    /// The name of the running deadline: 签收时限 before signing, 办结时限
    /// while handling, 评价时限 while the reporter may rate.
    pub fn step_deadline_label(&self) -> &'static str {
        match self.deadline_kind.as_deref() {
            Some("sign") => t("queue.deadline.sign"),
            Some("handle") | Some("urgent_handle") => t("queue.deadline.handle"),
            Some("evaluate") => t("queue.deadline.evaluate"),
            _ => t("queue.deadline.other"),
        }
    }

    /// Since when the order waits at its present step: the start of its
    /// running deadline, else its report (待受理) or its last step.
    pub fn waiting_since(&self) -> Option<i64> {
        // (A reopened order keeps the time it was first closed, and waits again.)
        if self.state.is_terminal() {
            return None;
        }
        Some(self.deadline_start.unwrap_or(if self.state.as_str() == "pending_accept" {
            self.created_at
        } else {
            self.updated_at
        }))
    }

    /// How long it has waited, e.g. 2天3小时, 5小时12分钟, 8分钟.
    pub fn waited(&self, now: &i64) -> String {
        self.waiting_since().map(|since| duration_text(now - since)).unwrap_or_default()
    }
}

/// A duration in days, hours and minutes as a duty desk says it.
pub fn duration_text(ms: i64) -> String {
    let minutes = (ms.max(0) / 60_000) as u64;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let (day, hour, minute) = (t("queue.unit.day"), t("queue.unit.hour"), t("queue.unit.minute"));
    if d > 0 {
        format!("{d}{day}{h}{hour}")
    } else if h > 0 {
        format!("{h}{hour}{m}{minute}")
    } else {
        format!("{m}{minute}")
    }
}

/// A place the queue filter offers: the subdistricts, communities and
/// grids of the caller's area, two levels deep.
pub struct Place {
    pub id: i64,
    pub name: String,
    /// 1 for the level right under the caller's node, 2 for the next.
    pub level: i64,
}

pub async fn places(db: &Db, user: &CurrentUser) -> Result<Vec<Place>> {
    let (lo, hi) = user.scope().bounds();
    let depth = user.node_path.matches('/').count() as i64 - 2;
    let rows = sqlx::query(
        "select id, name, depth from nodes where path > $1 and path < $2 and depth <= $3 and status = 'active' \
         and kind in ('subdistrict', 'community', 'grid') order by path",
    )
    .bind(lo)
    .bind(hi)
    .bind(depth + 2)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let d: i64 = r.try_get("depth")?;
            Ok(Place { id: r.try_get("id")?, name: r.try_get("name")?, level: d - depth })
        })
        .collect()
}

/// The queue the caller sees, with the same filters, as an xlsx workbook:
/// the same rows in the same order, masked as on screen (the reporter's
/// contact only ever masked; numbers typed into free text masked unless
/// the caller may unmask). Audited, with the filters and the row count.
pub async fn export(
    axum::extract::State(s): axum::extract::State<crate::web::AppState>,
    user: Option<CurrentUser>,
    uri: axum::http::Uri,
    crate::web::ClientAddr(addr): crate::web::ClientAddr,
    crate::web::extract::page::Query(q): crate::web::extract::page::Query<super::store::ListQuery>,
) -> Result<axum::response::Response> {
    use crate::web::{login_or_redirect, require_page, to_login};
    use axum::response::IntoResponse;
    let user = login_or_redirect!(user, uri);
    require_page!(user, crate::kernel::perm::Perm::OrdersRead);
    let clock = s.clock();
    let queue = q.queue.clone().unwrap_or_else(|| "all".into());
    let mut rows: Vec<OrderView> = vec![];
    let mut page = 1;
    loop {
        let query =
            super::store::ListQuery { queue: Some(queue.clone()), page: Some(page), per_page: Some(200), ..q.clone() };
        let p = super::store::list(&s.db, &clock, &user, &query).await?;
        if page == 1 && p.total > s.config.export_inline_rows {
            // Too many for one answer: a background job writes it, with progress.
            if p.total > super::exports::JOB_LIMIT {
                return Err(crate::kernel::error::Error::invalid("queue.export_too_large", "queue"));
            }
            let id = super::exports::enqueue(&s.db, &user, addr, uri.query().unwrap_or(""), p.total).await?;
            return Ok(super::exports::redirect_to(id));
        }
        let n = p.orders.len() as i64;
        rows.extend(p.orders.into_iter().map(|o| o.for_reader(&user)));
        if n < p.per_page {
            break;
        }
        page += 1;
    }
    let bytes = super::workbook::workbook(&rows, crate::platform::db::now_ms(), clock.offset())
        .map_err(|e| crate::kernel::error::Error::Internal(anyhow::anyhow!("xlsx: {e}")))?;
    crate::audit::record(
        &s.db,
        &crate::audit::Actor::user(&user, addr),
        super::action::ORDER_EXPORT,
        None,
        None,
        serde_json::json!({"query": uri.query().unwrap_or(""), "rows": rows.len()}),
    )
    .await?;
    let day = chrono::Utc::now().with_timezone(&clock.offset()).format("%Y%m%d").to_string();
    Ok(super::workbook::xlsx_response(bytes, &day).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn waiting_reads_in_days_hours_and_minutes() {
        let min = 60_000;
        assert_eq!(super::duration_text(8 * min), "8分钟");
        assert_eq!(super::duration_text((5 * 60 + 12) * min), "5小时12分钟");
        assert_eq!(super::duration_text((2 * 1440 + 3 * 60 + 7) * min), "2天3小时");
        assert_eq!(super::duration_text(-5), "0分钟");
    }
}
