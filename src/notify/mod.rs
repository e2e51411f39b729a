//! Notifications (消息通知): what the domains declared worth telling
//! (`platform::notices`), learnt from the outbox by a subscriber of its own
//! (`deliver`), resolved to people by their units and roles (`store`), put
//! in each person's inbox, and pushed live to their open pages. The domains
//! never call this one.

use axum::{
    routing::{get, post},
    Router,
};

pub mod api;
pub mod deliver;
pub mod pages;
pub mod rules;
pub mod store;

pub use deliver::{consumer, SUBSCRIBER};

/// This domain's pages.
pub fn pages() -> Router<crate::web::AppState> {
    Router::new()
        .route("/inbox", get(pages::inbox))
        .route("/m/inbox", get(pages::mobile_inbox))
        .route("/inbox/stream", get(pages::stream))
        .route("/inbox/read-all", post(pages::read_all))
        .route("/inbox/{id}/read", post(pages::read_one))
        .route("/inbox/{id}/open", get(pages::open))
}

/// This domain's API routes, with their OpenAPI descriptions.
pub fn api() -> utoipa_axum::router::OpenApiRouter<crate::web::AppState> {
    api::router()
}
