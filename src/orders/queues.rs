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
    let bytes = workbook(&rows, crate::platform::db::now_ms(), clock.offset())
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
    Ok(xlsx_response(bytes, &day).into_response())
}

/// A workbook as a download named 工单清单-<day>.xlsx, kept out of caches.
pub fn xlsx_response(bytes: Vec<u8>, day: &str) -> impl axum::response::IntoResponse {
    let name: String =
        url::form_urlencoded::byte_serialize(format!("{}-{day}.xlsx", t("queue.export_file")).as_bytes()).collect();
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"orders-{day}.xlsx\"; filename*=UTF-8''{}", name.replace('+', "%20")),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
}

/// The workbook of an export: one sheet, a header row and one row per order.
pub fn workbook(
    rows: &[OrderView],
    now: i64,
    offset: chrono::FixedOffset,
) -> std::result::Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(t("queue.export_sheet"))?;
    let bold = Format::new().set_bold();
    let when = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.with_timezone(&offset).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let head = [
        "order.field.code",
        "order.field.title",
        "order.field.category",
        "order.field.place",
        "queue.col.address",
        "queue.col.source",
        "queue.filter.urgency",
        "order.field.state",
        "order.field.lead_unit",
        "order.field.reporter",
        "order.field.reporter_contact",
        "queue.col.waited",
        "queue.col.step",
        "queue.col.deadline",
        "queue.filter.warning",
        "order.field.created",
    ];
    for (c, key) in head.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, t(key), &bold)?;
    }
    for (i, o) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        let cells = [
            o.tracking_code.clone(),
            o.title.clone(),
            o.category_name.clone(),
            o.node_name.clone(),
            o.address.clone(),
            o.source_label().to_string(),
            if o.urgency == "urgent" { t("order.urgent") } else { t("queue.filter.normal") }.to_string(),
            o.state_label.to_string(),
            o.lead_unit_name.clone().unwrap_or_default(),
            o.reporter_name.clone().unwrap_or_default(),
            o.reporter_contact_masked.clone().unwrap_or_default(),
            o.waited(&now),
            if o.deadline_at.is_some() { o.step_deadline_label().to_string() } else { String::new() },
            o.deadline_at.map(when).unwrap_or_default(),
            if o.deadline_at.is_some() { o.warning_label().to_string() } else { String::new() },
            when(o.created_at),
        ];
        for (c, v) in cells.iter().enumerate() {
            sheet.write_string(r, c as u16, v)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    for (c, w) in [14.0, 36.0, 14.0, 18.0, 28.0, 12.0, 8.0, 10.0, 20.0, 10.0, 14.0, 12.0, 10.0, 18.0, 8.0, 18.0]
        .into_iter()
        .enumerate()
    {
        sheet.set_column_width(c as u16, w)?;
    }
    book.save_to_buffer()
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
