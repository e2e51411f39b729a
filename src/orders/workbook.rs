//! A queue as an xlsx workbook: the same rows as on screen, masked as on
//! screen, and the download that carries it.

use super::store::OrderView;
use crate::kernel::i18n::t;

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
