//! Work orders (工单) and their closed loop: the pure state machine, the
//! working-day clock that times every step, storage, timers and the API.

use axum::{
    extract::DefaultBodyLimit,
    routing::{get, post},
    Router,
};

pub mod api;
pub mod attachment_api;
pub mod calendar;
pub mod catalogue_pages;
pub mod dispatch;
pub mod dispatch_pages;
pub mod exports;
pub mod field_pages;
pub mod follow_up_pages;
pub mod home;
pub mod machine;
pub mod notices;
pub mod pages;
pub mod portal_pages;
pub mod queues;
pub mod refs;
pub mod store;
pub mod timers;
pub mod units;
pub mod upload;
pub mod workbook;

impl crate::kernel::error::CodedError for machine::MachineError {
    fn code(&self) -> &'static str {
        machine::MachineError::code(self)
    }
}

/// This domain's pages.
pub fn pages() -> Router<crate::web::AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/orders", get(pages::list))
        .route("/orders/bulk", post(pages::bulk))
        .route("/orders/export", get(queues::export))
        .route("/orders/exports/{id}", get(exports::page))
        .route("/orders/exports/{id}/file", get(exports::file))
        .route("/orders/{id}", get(pages::detail))
        // Forms that may carry photos read their bodies within the
        // attachment limits themselves (see `attachments::upload`).
        .route("/orders/{id}/act", post(pages::act).layer(DefaultBodyLimit::disable()))
        .route("/orders/{id}/attachments", post(pages::attach).layer(DefaultBodyLimit::disable()))
        .route("/m/tasks", get(field_pages::mobile_tasks))
        .route("/m/orders/{id}", get(field_pages::mobile_order))
        .route("/m/done", get(field_pages::mobile_done))
        .route("/orders/follow-ups", get(follow_up_pages::list))
        .route("/orders/{id}/contact", post(follow_up_pages::reveal_contact))
        .route(
            "/m/report",
            get(field_pages::mobile_report_form).post(field_pages::mobile_report).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/portal/report",
            get(portal_pages::portal_report_form).post(portal_pages::portal_report).layer(DefaultBodyLimit::disable()),
        )
        .route("/portal/track", get(portal_pages::portal_track_form))
        .route("/portal/track/{code}", get(portal_pages::portal_track).post(portal_pages::portal_track_act))
        .route("/admin/categories", get(catalogue_pages::list))
        .route("/admin/dispatch", get(dispatch_pages::page).post(dispatch_pages::save))
        .route("/admin/dispatch/{id}/delete", post(dispatch_pages::remove))
        .route("/admin/departments", post(dispatch_pages::add_department))
        .route("/admin/units/{id}", post(dispatch_pages::update_unit))
        .route("/admin/calendar", get(catalogue_pages::calendar_page))
        .route("/admin/calendar/days", post(catalogue_pages::calendar_set))
        .route("/admin/calendar/days/{day}/delete", post(catalogue_pages::calendar_remove))
        .route("/admin/calendar/import", post(catalogue_pages::calendar_import))
        .route("/admin/categories/{code}", get(catalogue_pages::edit).post(catalogue_pages::save))
}

/// This domain's API routes, with their OpenAPI descriptions.
pub fn api() -> utoipa_axum::router::OpenApiRouter<crate::web::AppState> {
    utoipa_axum::router::OpenApiRouter::new().merge(api::router()).merge(attachment_api::router())
}

/// Audit actions of work orders, their catalogues and units.
/// How the audit log names this domain's objects: orders by tracking code
/// and title, categories and units by name.
pub fn register_labels() {
    use crate::audit::labels::{by_query, register};
    register("order", |db, ids| {
        Box::pin(by_query(db, "select tracking_code || '（' || title || '）' from orders where id = $1", ids, true))
    });
    register("category", |db, ids| Box::pin(by_query(db, "select name from categories where code = $1", ids, false)));
    register("unit", |db, ids| Box::pin(by_query(db, "select name from units where id = $1", ids, true)));
}

pub mod action {
    pub const CALENDAR_UPDATE: &str = "calendar.update";
    pub const CATEGORY_UPDATE: &str = "category.update";
    pub const DISPATCH_RULE_SAVE: &str = "dispatch_rule.save";
    pub const DISPATCH_RULE_DELETE: &str = "dispatch_rule.delete";
    pub const UNIT_CREATE: &str = "unit.create";
    pub const UNIT_UPDATE: &str = "unit.update";
    pub const ORDER_CONTACT_UNMASK: &str = "order.contact_unmask";
    pub const ORDER_CREATE: &str = "order.create";
    pub const ORDER_ACT: &str = "order.act";
    pub const ATTACHMENT_ORIGINAL: &str = "attachment.original";
    pub const ORDER_EXPORT: &str = "order.export";

    /// Every action above, for the audit log's filters (`audit::action::register`).
    pub const ALL: &[&str] = &[
        CALENDAR_UPDATE,
        CATEGORY_UPDATE,
        DISPATCH_RULE_SAVE,
        DISPATCH_RULE_DELETE,
        UNIT_CREATE,
        UNIT_UPDATE,
        ORDER_CONTACT_UNMASK,
        ORDER_CREATE,
        ORDER_ACT,
        ATTACHMENT_ORIGINAL,
        ORDER_EXPORT,
    ];
}

/// This domain's encrypted columns, re-encrypted by `fengqiao keys rotate`.
pub const ENCRYPTED_COLUMNS: &[crate::platform::crypto::rotate::EncryptedColumn] = {
    use crate::platform::crypto::{rotate::EncryptedColumn, Field};
    &[EncryptedColumn { table: "orders", column: "reporter_contact", field: Field::ORDER_CONTACT }]
};
