//! Permissions: the fixed vocabulary that roles are made of. Roles (and
//! which permissions each holds) live in the database and are editable;
//! handlers check permissions, never role names.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
pub enum Perm {
    /// See the region and grid tree, members (masked) and overlays.
    #[serde(rename = "tree.read")]
    TreeRead,
    /// Create, edit, move, retire nodes; manage members and overlays.
    #[serde(rename = "tree.write")]
    TreeWrite,
    /// Read one protected field in clear, with a stated reason (audited).
    #[serde(rename = "member.unmask")]
    MemberUnmask,
    /// See work orders in scope, their queues and counts.
    #[serde(rename = "orders.read")]
    OrdersRead,
    /// Report a matter as staff (巡查上报, 热线, 上级交办).
    #[serde(rename = "orders.report")]
    OrdersReport,
    /// 受理 / 不予受理.
    #[serde(rename = "orders.accept")]
    OrdersAccept,
    /// 派单, 改派, review of 退单 and 延期.
    #[serde(rename = "orders.dispatch")]
    OrdersDispatch,
    /// 签收, 处置, 反馈, 退单, 延期申请 — on orders dispatched to the user's unit.
    #[serde(rename = "orders.handle")]
    OrdersHandle,
    /// 核查 and 回访.
    #[serde(rename = "orders.verify")]
    OrdersVerify,
    /// 回访: call residents back, seeing the reporter's full contact with a
    /// stated reason (audited), and record what they said.
    #[serde(rename = "orders.follow_up")]
    OrdersFollowUp,
    /// 督办, 催办, escalation.
    #[serde(rename = "orders.supervise")]
    OrdersSupervise,
    /// Edit the working-day calendar and the dispatch catalogue.
    #[serde(rename = "calendar.write")]
    CalendarWrite,
    /// Read and export the audit log.
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Create users, bind them to nodes and roles, disable, reset passwords.
    #[serde(rename = "users.manage")]
    UsersManage,
    /// Create roles and change their permissions.
    #[serde(rename = "roles.manage")]
    RolesManage,
    /// Issue and revoke API tokens.
    #[serde(rename = "tokens.manage")]
    TokensManage,
    /// Change the password and session policy.
    #[serde(rename = "policy.manage")]
    PolicyManage,
    /// See the outbox's dead letters and send them again.
    #[serde(rename = "outbox.manage")]
    OutboxManage,
    /// Set the assessment's weights and grades (考核方案).
    #[serde(rename = "stats.configure")]
    StatsConfigure,
}

impl Perm {
    pub const ALL: [Perm; 19] = [
        Perm::TreeRead,
        Perm::TreeWrite,
        Perm::MemberUnmask,
        Perm::OrdersRead,
        Perm::OrdersReport,
        Perm::OrdersAccept,
        Perm::OrdersDispatch,
        Perm::OrdersHandle,
        Perm::OrdersVerify,
        Perm::OrdersFollowUp,
        Perm::OrdersSupervise,
        Perm::CalendarWrite,
        Perm::AuditRead,
        Perm::UsersManage,
        Perm::RolesManage,
        Perm::TokensManage,
        Perm::PolicyManage,
        Perm::OutboxManage,
        Perm::StatsConfigure,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Perm::TreeRead => "tree.read",
            Perm::TreeWrite => "tree.write",
            Perm::MemberUnmask => "member.unmask",
            Perm::OrdersRead => "orders.read",
            Perm::OrdersReport => "orders.report",
            Perm::OrdersAccept => "orders.accept",
            Perm::OrdersDispatch => "orders.dispatch",
            Perm::OrdersHandle => "orders.handle",
            Perm::OrdersVerify => "orders.verify",
            Perm::OrdersFollowUp => "orders.follow_up",
            Perm::OrdersSupervise => "orders.supervise",
            Perm::CalendarWrite => "calendar.write",
            Perm::AuditRead => "audit.read",
            Perm::UsersManage => "users.manage",
            Perm::RolesManage => "roles.manage",
            Perm::TokensManage => "tokens.manage",
            Perm::PolicyManage => "policy.manage",
            Perm::OutboxManage => "outbox.manage",
            Perm::StatsConfigure => "stats.configure",
        }
    }

    pub fn parse(code: &str) -> Option<Perm> {
        Perm::ALL.into_iter().find(|p| p.code() == code)
    }

    /// The catalogue text, e.g. 「查看工单」.
    pub fn label(self) -> &'static str {
        crate::kernel::i18n::t(&format!("perm.{}", self.code()))
    }

    /// Acting on work orders (as opposed to seeing or reporting them).
    pub fn is_order_duty(self) -> bool {
        matches!(
            self,
            Perm::OrdersAccept
                | Perm::OrdersDispatch
                | Perm::OrdersHandle
                | Perm::OrdersVerify
                | Perm::OrdersFollowUp
                | Perm::OrdersSupervise
        )
    }

    /// Rights over the system or over personal data: only someone who holds
    /// one may hand it on (in a role or a user's roles). Seeing and working
    /// orders may be granted by any user administrator.
    pub fn is_privileged(self) -> bool {
        !matches!(self, Perm::TreeRead) && !self.code().starts_with("orders.")
    }

    /// Permissions that keep the system administrable: the built-in
    /// administrator role always holds them.
    pub fn is_admin_core(self) -> bool {
        matches!(self, Perm::UsersManage | Perm::RolesManage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_serialise_as_codes() {
        for p in Perm::ALL {
            assert_eq!(Perm::parse(p.code()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.code()));
        }
        assert_eq!(Perm::parse("orders.delete"), None);
    }

    #[test]
    fn the_migration_seeds_only_known_permissions() {
        // Permissions added later are seeded by later migrations.
        for sql in [
            concat!(
                include_str!("../../migrations/sqlite/0102_identity.sql"),
                include_str!("../../migrations/sqlite/0115_outbox.sql"),
                include_str!("../../migrations/sqlite/0150_field_follow_up.sql"),
                include_str!("../../migrations/sqlite/0156_assessment.sql")
            ),
            concat!(
                include_str!("../../migrations/postgres/0102_identity.sql"),
                include_str!("../../migrations/postgres/0115_outbox.sql"),
                include_str!("../../migrations/postgres/0150_field_follow_up.sql"),
                include_str!("../../migrations/postgres/0156_assessment.sql")
            ),
        ] {
            let seeded: Vec<&str> = sql
                .split("('")
                .skip(1)
                .filter_map(|s| s.split("','").nth(1))
                .filter_map(|s| s.split('\'').next())
                .collect();
            assert!(seeded.len() > 40);
            for code in seeded {
                assert!(Perm::parse(code).is_some(), "unknown permission {code} in the migration");
            }
            // The administrator holds everything but the operational duties
            // on work orders, which belong to the centres' staff.
            for p in Perm::ALL.into_iter().filter(|p| !p.is_order_duty()) {
                assert!(sql.contains(&format!("('admin','{}')", p.code())), "admin lacks {}", p.code());
            }
        }
    }
}
