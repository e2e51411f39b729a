//! The staff console's home page: the caller's place in the tree with its
//! figures, and the work-order queues.

use askama::Template;
use axum::{extract::State, http::Uri, response::Response};

use crate::{
    kernel::{error::Result, perm::Perm, principal::CurrentUser},
    tree::{store, Node, NodeKind, SubtreeCounts},
    web::{login_or_redirect, render, to_login, AppState, Msg as _, Shell},
};

// ---------- staff console ----------

pub struct ChildRow {
    pub node: Node,
    pub counts: SubtreeCounts,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    shell: Shell,
    root: Node,
    counts: SubtreeCounts,
    rows: Vec<ChildRow>,
    queues: Vec<(crate::orders::store::Queue, i64)>,
}

pub async fn home(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let scope = user.scope();
    let root = store::get_node(&s.db, &scope, user.node_id).await?;
    let counts = store::subtree_counts(&s.db, &root).await?;
    let mut rows = vec![];
    if root.kind != NodeKind::Building {
        for node in store::children(&s.db, &scope, root.id, false).await? {
            let counts = store::subtree_counts(&s.db, &node).await?;
            rows.push(ChildRow { node, counts });
        }
    }
    let queues =
        if user.can(Perm::OrdersRead) { crate::orders::store::queue_counts(&s.db, &user).await? } else { vec![] };
    Ok(render(&HomePage { shell: Shell { user, active: "home" }, root, counts, rows, queues }))
}
