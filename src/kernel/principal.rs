//! The authenticated caller as plain data: who they are, where they act,
//! what they may do. Identity resolves it from a session or token.

use serde::Serialize;
use utoipa::ToSchema;

use crate::kernel::{
    error::{Error, Result},
    perm::Perm,
    scope::Scope,
};

pub const SESSION_COOKIE: &str = "fq_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RoleGrant {
    pub role: String,
    /// The role's display name, e.g. 网格员.
    pub name: String,
    pub node_id: i64,
}

/// A node where the user holds roles: one their session can act at.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NodeChoice {
    pub node_id: i64,
    pub name: String,
}

/// The authenticated caller: a person with a session, or an integration
/// with an API token.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// The node this session acts at: one of `nodes` (a token: its own node).
    /// Its subtree is the caller's scope.
    pub node_id: i64,
    pub node_name: String,
    /// The node the account is bound to; sessions start acting there.
    pub home_node_id: i64,
    /// The nodes where the user holds roles, in tree order; a session can
    /// switch to any of them (`PUT /api/v1/me/active-node`). Empty for tokens.
    pub nodes: Vec<NodeChoice>,
    /// The unit (centre, grid or department) whose work orders this user
    /// handles: the account's own at the home node, elsewhere the centre or
    /// grid unit of the acting node.
    pub unit_id: Option<i64>,
    #[serde(skip)]
    pub node_path: String,
    /// The roles granted at the acting node.
    pub roles: Vec<RoleGrant>,
    /// The union of the permissions of those roles (or the token's own).
    pub permissions: Vec<Perm>,
    pub must_change_password: bool,
    /// Set when the caller is an API token (acting for the user who issued it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<i64>,
    #[serde(skip)]
    pub csrf_token: String,
    #[serde(skip)]
    pub token_hash: String,
    /// Where this request came from (for the audit log); set per request.
    #[serde(skip)]
    pub client_addr: Option<String>,
}

impl CurrentUser {
    /// What the caller may see: the subtree of the node they act at
    /// (department handlers also see what was dispatched to their unit).
    pub fn scope(&self) -> Scope {
        Scope { path: self.node_path.clone() }
    }

    pub fn can(&self, perm: Perm) -> bool {
        self.permissions.contains(&perm)
    }

    /// Whether the caller may hand a permission on to others (in a role
    /// or by giving someone a role): rights over the system only if they
    /// hold them; seeing and working orders always.
    pub fn may_grant(&self, perm: Perm) -> bool {
        !perm.is_privileged() || self.can(perm)
    }

    /// For templates: `can_code("audit.read")`.
    pub fn can_code(&self, code: &str) -> bool {
        Perm::parse(code).is_some_and(|p| self.can(p))
    }

    /// Refuses callers without the permission (403: the route exists for
    /// everyone; what is in scope is decided by the query, as 404).
    pub fn require(&self, perm: Perm) -> Result<()> {
        if self.can(perm) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.role == role)
    }

    /// Whether the page header offers switching node: a person with roles
    /// at more than one node.
    pub fn can_switch_node(&self) -> bool {
        self.token_id.is_none() && self.nodes.len() > 1
    }

    pub fn role_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.roles.iter().map(|r| r.name.clone()).collect();
        names.dedup();
        names
    }
}
