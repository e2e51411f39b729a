//! The tree's use cases as both the API and the pages call them: check the
//! permission, write through the scoped store (which validates), record the
//! audit entry. Reads stay in `store`.

use super::{
    action,
    model::{Member, Node, NodeKind},
    store::{self, MoveNode, NewMember, NewNode, NodePatch},
};
use crate::{
    audit::{record_write as audited, Object},
    kernel::{error::Result, perm::Perm, principal::CurrentUser},
    web::AppState,
};

pub async fn create_node(s: &AppState, user: &CurrentUser, addr: Option<String>, input: NewNode) -> Result<Node> {
    user.require(Perm::TreeWrite)?;
    let node = store::create_node(&s.db, &user.scope(), input).await?;
    let detail =
        serde_json::json!({"kind": node.kind, "code": node.code, "name": node.name, "parent_id": node.parent_id});
    audited(s, user, addr, action::NODE_CREATE, Object::new("node", node.id), detail).await?;
    Ok(node)
}

pub async fn update_node(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    id: i64,
    patch: NodePatch,
) -> Result<Node> {
    user.require(Perm::TreeWrite)?;
    let fields = changed_fields(&patch);
    let node = store::update_node(&s.db, &user.scope(), id, patch).await?;
    let detail = serde_json::json!({"fields": fields, "version": node.version});
    audited(s, user, addr, action::NODE_UPDATE, Object::new("node", id), detail).await?;
    Ok(node)
}

pub async fn move_node(s: &AppState, user: &CurrentUser, addr: Option<String>, id: i64, mv: MoveNode) -> Result<Node> {
    user.require(Perm::TreeWrite)?;
    let scope = user.scope();
    let before = store::get_node(&s.db, &scope, id).await?;
    let node = store::move_node(&s.db, &scope, id, mv).await?;
    let detail = serde_json::json!({"from_parent_id": before.parent_id, "to_parent_id": node.parent_id,
        "old_code": before.code, "new_code": node.code});
    audited(s, user, addr, action::NODE_MOVE, Object::new("node", id), detail).await?;
    Ok(node)
}

pub async fn retire_node(s: &AppState, user: &CurrentUser, addr: Option<String>, id: i64) -> Result<Node> {
    user.require(Perm::TreeWrite)?;
    let node = store::retire_node(&s.db, &user.scope(), id).await?;
    let detail = serde_json::json!({"code": node.code, "name": node.name});
    audited(s, user, addr, action::NODE_RETIRE, Object::new("node", id), detail).await?;
    Ok(node)
}

pub async fn add_member(
    s: &AppState,
    user: &CurrentUser,
    addr: Option<String>,
    node_id: i64,
    m: NewMember,
) -> Result<Member> {
    user.require(Perm::TreeWrite)?;
    let member = store::add_member(&s.db, &s.crypto, &user.scope(), node_id, m).await?;
    // The name identifies the record for reviewers; the number stays out.
    let detail = serde_json::json!({"node_id": member.node_id, "role": member.role, "name": member.name});
    audited(s, user, addr, action::MEMBER_ADD, Object::new("member", member.id), detail).await?;
    Ok(member)
}

pub async fn end_member(s: &AppState, user: &CurrentUser, addr: Option<String>, id: i64) -> Result<()> {
    user.require(Perm::TreeWrite)?;
    store::end_member(&s.db, &user.scope(), id).await?;
    audited(s, user, addr, action::MEMBER_END, Object::new("member", id), serde_json::json!({})).await?;
    Ok(())
}

/// Which fields a patch touches, for the audit entry (values stay out:
/// a polygon is large, and attrs may hold contact details).
fn changed_fields(p: &NodePatch) -> Vec<&'static str> {
    [
        ("name", p.name.is_some()),
        ("grid_type", p.grid_type.is_some()),
        ("households", p.households.is_some()),
        ("population", p.population.is_some()),
        ("polygon", p.polygon.is_some()),
        ("lon", p.lon.is_some()),
        ("lat", p.lat.is_some()),
        ("attrs", p.attrs.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// Whether a node can take children of its own (buildings cannot).
pub fn takes_children(kind: NodeKind) -> bool {
    kind.child_kind().is_some()
}
