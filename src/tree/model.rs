//! Types of the tree, independent of storage and HTTP.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::kernel::codes::RegionLevel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Province,
    City,
    District,
    Subdistrict,
    Community,
    Grid,
    Building,
}

impl NodeKind {
    pub const ALL: [NodeKind; 7] = [
        NodeKind::Province,
        NodeKind::City,
        NodeKind::District,
        NodeKind::Subdistrict,
        NodeKind::Community,
        NodeKind::Grid,
        NodeKind::Building,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Province => "province",
            NodeKind::City => "city",
            NodeKind::District => "district",
            NodeKind::Subdistrict => "subdistrict",
            NodeKind::Community => "community",
            NodeKind::Grid => "grid",
            NodeKind::Building => "building",
        }
    }

    pub fn parse(s: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a parent of this kind must have; `None` for possible roots.
    pub fn parent_kind(self) -> Option<NodeKind> {
        match self {
            NodeKind::Province => None,
            NodeKind::City => Some(NodeKind::Province),
            NodeKind::District => Some(NodeKind::City),
            NodeKind::Subdistrict => Some(NodeKind::District),
            NodeKind::Community => Some(NodeKind::Subdistrict),
            NodeKind::Grid => Some(NodeKind::Community),
            NodeKind::Building => Some(NodeKind::Grid),
        }
    }

    pub fn child_kind(self) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.parent_kind() == Some(self))
    }

    /// A deployment's root may be a province, a city or a district.
    pub fn can_be_root(self) -> bool {
        matches!(self, NodeKind::Province | NodeKind::City | NodeKind::District)
    }

    /// Region nodes carry a 统计用区划代码 of the matching level.
    pub fn region_level(self) -> Option<RegionLevel> {
        match self {
            NodeKind::Province => Some(RegionLevel::Province),
            NodeKind::City => Some(RegionLevel::City),
            NodeKind::District => Some(RegionLevel::District),
            NodeKind::Subdistrict => Some(RegionLevel::Subdistrict),
            NodeKind::Community => Some(RegionLevel::Community),
            NodeKind::Grid | NodeKind::Building => None,
        }
    }

    pub fn label_key(self) -> &'static str {
        match self {
            NodeKind::Province => "kind.province",
            NodeKind::City => "kind.city",
            NodeKind::District => "kind.district",
            NodeKind::Subdistrict => "kind.subdistrict",
            NodeKind::Community => "kind.community",
            NodeKind::Grid => "kind.grid",
            NodeKind::Building => "kind.building",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GridType {
    /// 综合网格 (基础网格)
    Comprehensive,
    /// 专属网格: an organ, park, hospital, school or enterprise
    Dedicated,
}

impl GridType {
    pub fn as_str(self) -> &'static str {
        match self {
            GridType::Comprehensive => "comprehensive",
            GridType::Dedicated => "dedicated",
        }
    }

    pub fn parse(s: &str) -> Option<GridType> {
        match s {
            "comprehensive" => Some(GridType::Comprehensive),
            "dedicated" => Some(GridType::Dedicated),
            _ => None,
        }
    }
}

/// One node of the tree as the API shows it. `polygon` is filled only on
/// single-node reads and when a listing asks for it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Node {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub kind: NodeKind,
    /// 12-digit region code, 15-digit grid code or 20-digit building code.
    pub code: String,
    pub name: String,
    pub status: String,
    pub depth: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid_type: Option<GridType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub households: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_m2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// GeoJSON geometry (Polygon or MultiPolygon).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub polygon: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub attrs: serde_json::Value,
    /// Optimistic-concurrency version; send it back when editing.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub path: String,
}

impl Node {
    pub fn kind_label(&self) -> &'static str {
        crate::kernel::i18n::t(self.kind.label_key())
    }

    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// 网格长 (总网格长 at a community)
    GridLeader,
    /// 网格员
    GridWorker,
    /// 楼栋长
    BuildingSteward,
    /// 协管员
    Assistant,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::GridLeader => "grid_leader",
            MemberRole::GridWorker => "grid_worker",
            MemberRole::BuildingSteward => "building_steward",
            MemberRole::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<MemberRole> {
        [Self::GridLeader, Self::GridWorker, Self::BuildingSteward, Self::Assistant]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn label_key(self) -> &'static str {
        match self {
            MemberRole::GridLeader => "member.role.grid_leader",
            MemberRole::GridWorker => "member.role.grid_worker",
            MemberRole::BuildingSteward => "member.role.building_steward",
            MemberRole::Assistant => "member.role.assistant",
        }
    }

    /// Where each role may serve.
    pub fn allowed_on(self, kind: NodeKind) -> bool {
        match self {
            MemberRole::GridLeader => matches!(kind, NodeKind::Community | NodeKind::Grid),
            MemberRole::GridWorker | MemberRole::Assistant => kind == NodeKind::Grid,
            MemberRole::BuildingSteward => kind == NodeKind::Building,
        }
    }
}

/// A person serving a node, with the GB/T 31000 table 8/9 fields.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Member {
    pub id: i64,
    pub node_id: i64,
    pub role: MemberRole,
    pub name: String,
    /// GB/T 2261.1 code
    pub gender: String,
    /// GB/T 3304 code
    pub ethnicity: String,
    /// GB/T 4762 code
    pub political_status: String,
    /// YYYYMMDD
    pub birth_date: String,
    /// GB/T 4658 code
    pub education: String,
    /// Masked, e.g. `139****5678`; stored encrypted. The full number only
    /// through `POST /api/v1/members/{id}/unmask`, which is audited.
    pub mobile: String,
    /// 公民身份号码, masked as `110105********0123`; null when none was
    /// recorded. Stored encrypted; the full number only through
    /// `POST /api/v1/members/{id}/unmask` with `"field": "id_number"`.
    pub id_number_masked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// 网格员公示: the work phone residents may call, shown on the portal
    /// only while `public_phone_published` is set.
    pub public_phone: Option<String>,
    pub public_phone_published: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    pub started_at: i64,
}

impl Member {
    pub fn role_label(&self) -> &'static str {
        crate::kernel::i18n::t(self.role.label_key())
    }

    /// The published work phone as shown and as a `tel:` target (no
    /// spaces); none unless published.
    pub fn published_phone(&self) -> Option<(String, String)> {
        let phone = self.public_phone.as_deref().filter(|_| self.public_phone_published)?;
        Some((phone.to_string(), phone.chars().filter(|c| c.is_ascii_digit() || *c == '-').collect()))
    }
}

/// Counts of active nodes by kind in a subtree.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct SubtreeCounts {
    pub subdistricts: i64,
    pub communities: i64,
    pub grids: i64,
    pub buildings: i64,
    /// Households and population of the subtree, summed over its grids
    /// (a grid's own figures for a grid).
    pub households: i64,
    pub population: i64,
    pub members: i64,
}

pub use crate::kernel::scope::subtree_bounds;

/// Ids of a node's ancestors (root first), read from its path.
/// The unit that works a node's orders, as (kind, code, name): a region's
/// governance centre (综治中心), named after it without 居委会/村委会, or a
/// grid's own unit; buildings have none.
pub fn own_unit(kind: NodeKind, code: &str, name: &str) -> Option<(&'static str, String, String)> {
    match kind {
        NodeKind::Building => None,
        NodeKind::Grid => Some(("grid", format!("grid:{code}"), name.to_string())),
        _ => Some(("centre", format!("centre:{code}"), format!("{}综治中心", short_name(name)))),
    }
}

/// A community's everyday name: 黑龙潭社区居委会 → 黑龙潭社区.
pub fn short_name(name: &str) -> String {
    name.trim_end_matches("居委会").trim_end_matches("委会").to_string()
}

pub fn ancestor_ids(path: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = path.split('/').filter_map(|s| s.parse().ok()).collect();
    ids.pop();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_bounds_cover_descendants_only() {
        let (lo, hi) = subtree_bounds("/1/12/");
        for inside in ["/1/12/", "/1/12/5/", "/1/12/999/3/"] {
            assert!(inside >= lo.as_str() && inside < hi.as_str(), "{inside}");
        }
        for outside in ["/1/120/", "/1/13/", "/1/1/", "/1/12", "/2/"] {
            assert!(!(outside >= lo.as_str() && outside < hi.as_str()), "{outside}");
        }
    }

    #[test]
    fn kinds_chain() {
        assert_eq!(NodeKind::Community.child_kind(), Some(NodeKind::Grid));
        assert_eq!(NodeKind::Building.child_kind(), None);
        assert_eq!(ancestor_ids("/1/12/40/"), vec![1, 12]);
    }
}
