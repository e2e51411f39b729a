//! The region and grid tree (一张网): district → subdistrict → community or
//! village → grid → building, with members per node and overlays
//! (作战单元, police zones) drawn across it.

use axum::{
    routing::{get, post},
    Router,
};

pub mod admin_pages;
pub mod api;
pub mod model;
pub mod overlays;
pub mod pages;
pub mod service;
pub mod store;
pub mod unmask;

pub use model::*;

/// This domain's pages.
pub fn pages() -> Router<crate::web::AppState> {
    Router::new()
        .route("/tree", get(pages::tree_root))
        .route("/tree/{id}", get(pages::tree_node).post(admin_pages::update))
        .route("/tree/{id}/children", post(admin_pages::create_child))
        .route("/tree/{id}/move", post(admin_pages::move_to))
        .route("/tree/{id}/retire", post(admin_pages::retire))
        .route("/tree/{id}/members", post(admin_pages::add_member))
        .route("/tree/members/{id}/end", post(admin_pages::end_member))
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

/// Audit actions of the tree: nodes, members, overlays.
/// How the audit log names this domain's objects: nodes and overlays by
/// name, members by name and post.
pub fn register_labels() {
    use crate::audit::labels::{by_query, register};
    register("node", |db, ids| Box::pin(by_query(db, "select name from nodes where id = $1", ids, true)));
    register("overlay", |db, ids| Box::pin(by_query(db, "select name from overlays where id = $1", ids, true)));
    register("member", |db, ids| {
        Box::pin(by_query(
            db,
            "select m.name || '（' || n.name || '）' from node_members m join nodes n on n.id = m.node_id where m.id = $1",
            ids,
            true,
        ))
    });
}

pub mod action {
    pub const NODE_CREATE: &str = "node.create";
    pub const NODE_UPDATE: &str = "node.update";
    pub const NODE_DELETE: &str = "node.delete";
    pub const NODE_MOVE: &str = "node.move";
    pub const NODE_RETIRE: &str = "node.retire";
    pub const MEMBER_ADD: &str = "member.add";
    pub const MEMBER_END: &str = "member.end";
    pub const MEMBER_UNMASK: &str = "member.unmask";
    pub const MEMBER_PUBLIC_PHONE: &str = "member.public_phone";
    pub const OVERLAY_CREATE: &str = "overlay.create";

    /// Every action above, for the audit log's filters (`audit::action::register`).
    pub const ALL: &[&str] = &[
        NODE_CREATE,
        NODE_UPDATE,
        NODE_DELETE,
        NODE_MOVE,
        NODE_RETIRE,
        MEMBER_ADD,
        MEMBER_END,
        MEMBER_UNMASK,
        MEMBER_PUBLIC_PHONE,
        OVERLAY_CREATE,
    ];
}

/// This domain's encrypted columns, re-encrypted by `fengqiao keys rotate`.
pub const ENCRYPTED_COLUMNS: &[crate::platform::crypto::rotate::EncryptedColumn] = {
    use crate::platform::crypto::{rotate::EncryptedColumn, Field};
    &[
        EncryptedColumn { table: "node_members", column: "mobile_enc", field: Field::MEMBER_MOBILE },
        EncryptedColumn { table: "node_members", column: "id_number_enc", field: Field::MEMBER_ID_NUMBER },
    ]
};
