//! The region and grid tree (一张网): district → subdistrict → community or
//! village → grid → building, with members per node and overlays
//! (作战单元, police zones) drawn across it.

use axum::{routing::get, Router};

pub mod api;
pub mod model;
pub mod overlays;
pub mod pages;
pub mod store;
pub mod unmask;

pub use model::*;

/// This domain's pages.
pub fn pages() -> Router<crate::web::AppState> {
    Router::new()
        .route("/tree", get(pages::tree_root))
        .route("/tree/{id}", get(pages::tree_node))
        .route("/map", get(pages::map))
        .route("/m/", get(pages::mobile_home))
        .route("/m/buildings", get(pages::mobile_buildings))
        .route("/m/me", get(pages::mobile_me))
        .route("/portal/", get(pages::portal_home))
        .route("/portal/area/{id}", get(pages::portal_area))
        .route("/portal/area/{id}/geojson", get(pages::portal_area_geojson))
}

/// This domain's API routes, with their OpenAPI descriptions.
pub fn api() -> utoipa_axum::router::OpenApiRouter<crate::web::AppState> {
    api::router()
}
