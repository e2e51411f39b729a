//! Every page, gathered from the domains.

use axum::Router;

use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(crate::web::assets())
        .merge(crate::auth::pages())
        .merge(crate::tree::pages())
        .merge(crate::orders::pages())
        .merge(crate::stats::pages())
        .merge(crate::notify::pages())
        .merge(crate::audit::pages())
        .route("/admin/outbox", axum::routing::get(super::outbox_pages::page))
        .route("/admin/outbox/{id}/retry", axum::routing::post(super::outbox_pages::retry))
}
