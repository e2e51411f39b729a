//! Searching the audit log (administrators' page, API and CSV export).

use serde::Deserialize;
use utoipa::IntoParams;

use super::{chain, Entry};
use crate::{
    kernel::{
        error::{Error, Result},
        principal::CurrentUser,
        scope::Scope,
    },
    platform::db::Db,
};

pub const DEFAULT_PER_PAGE: i64 = 50;
pub const MAX_PER_PAGE: i64 = 200;
/// An export larger than this must be narrowed by the filters.
pub const MAX_EXPORT: i64 = 100_000;

/// Filters shared by the page, the API and the export. Empty strings mean
/// "no filter", so a submitted but blank form field filters nothing.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Username of the actor, exactly.
    pub actor: Option<String>,
    /// Action, e.g. `member.unmask`; a prefix ending in `.` (e.g. `session.`) matches a group.
    pub action: Option<String>,
    /// Object type: node, member, overlay, user, audit_log, key_ring.
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// First day, YYYY-MM-DD (China Standard Time), inclusive.
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (China Standard Time), inclusive.
    pub to: Option<String>,
    /// 1-based page number.
    pub page: Option<i64>,
    /// Entries per page (at most 200).
    pub per_page: Option<i64>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Midnight at the start of a CST day, in epoch ms.
fn day_start_ms(day: &str, field: &str) -> Result<i64> {
    let d =
        chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| Error::invalid("audit.date_invalid", field))?;
    let t = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    Ok(t.and_local_timezone(super::cst())
        .single()
        .ok_or_else(|| Error::invalid("audit.date_invalid", field))?
        .timestamp_millis())
}

enum Arg {
    I(i64),
    S(String),
}

/// Which entries a reader of the log may see: every entry for whoever acts
/// at the root of the tree (the district's, i.e. the system's,
/// administrators), otherwise those of their subtree.
pub fn reach(user: &CurrentUser) -> Option<Scope> {
    let at_root = user.node_path.trim_matches('/').split('/').count() <= 1;
    (!at_root).then(|| user.scope())
}

/// An entry lies in a subtree when the actor acted at a node of it, or when
/// its object is (now) placed in it: a node itself; a member by its grid;
/// an overlay by its anchor; a user, an API token, a unit and a dispatch
/// rule by their node; an order by its node; an attachment by its order.
/// Everything else stays with the root's administrators: entries without
/// an acting node (failed logins, the command line) and system-wide objects
/// (roles, the policy, categories, the calendar, keys), unless a reader
/// of the subtree made them. Objects that were deleted are reached only
/// through their actor. `$lo`/`$hi` are the subtree's path bounds.
const IN_SUBTREE: &str = "(actor_node_id in (select id from nodes where path >= $lo and path < $hi) \
     or (object_type = 'node' and object_id in (select cast(id as text) from nodes where path >= $lo and path < $hi)) \
     or (object_type = 'member' and object_id in (select cast(x.id as text) from node_members x \
         join nodes n on n.id = x.node_id where n.path >= $lo and n.path < $hi)) \
     or (object_type = 'overlay' and object_id in (select cast(x.id as text) from overlays x \
         join nodes n on n.id = x.anchor_node_id where n.path >= $lo and n.path < $hi)) \
     or (object_type = 'user' and object_id in (select cast(x.id as text) from users x \
         join nodes n on n.id = x.node_id where n.path >= $lo and n.path < $hi)) \
     or (object_type = 'api_token' and object_id in (select cast(x.id as text) from api_tokens x \
         join nodes n on n.id = x.node_id where n.path >= $lo and n.path < $hi)) \
     or (object_type = 'unit' and object_id in (select cast(x.id as text) from units x \
         join nodes n on n.id = x.node_id where n.path >= $lo and n.path < $hi)) \
     or (object_type = 'dispatch_rule' and object_id in (select cast(x.id as text) from dispatch_rules x \
         join nodes n on n.id = x.node_id where n.path >= $lo and n.path < $hi)) \
     or (object_type = 'order' and object_id in (select cast(x.id as text) from orders x \
         where x.node_path >= $lo and x.node_path < $hi)) \
     or (object_type = 'attachment' and object_id in (select cast(x.id as text) from attachments x \
         join orders o on o.id = x.order_id where o.node_path >= $lo and o.node_path < $hi)))";

/// The `where` clause and its arguments, numbered from `$1`: the filters,
/// within the reader's reach (see [`reach`]).
fn where_clause(f: &AuditFilter, reach: Option<&Scope>) -> Result<(String, Vec<Arg>)> {
    let mut conds: Vec<String> = vec![];
    let mut args: Vec<Arg> = vec![];
    if let Some(scope) = reach {
        let (lo, hi) = scope.bounds();
        args.push(Arg::S(lo));
        args.push(Arg::S(hi));
        conds.push(IN_SUBTREE.replace("$lo", "$1").replace("$hi", "$2"));
    }
    let mut push = |cond: &str, arg: Arg| {
        args.push(arg);
        conds.push(cond.replace('?', &format!("${}", args.len())));
    };
    if let Some(a) = present(&f.actor) {
        push("actor_username = ?", Arg::S(a.to_string()));
    }
    if let Some(a) = present(&f.action) {
        if a.ends_with('.') {
            // A group such as `session.`: escape nothing, actions are [a-z._].
            push("action like ?", Arg::S(format!("{a}%")));
        } else {
            push("action = ?", Arg::S(a.to_string()));
        }
    }
    if let Some(t) = present(&f.object_type) {
        push("object_type = ?", Arg::S(t.to_string()));
    }
    if let Some(o) = present(&f.object_id) {
        push("object_id = ?", Arg::S(o.to_string()));
    }
    let from = present(&f.from).map(|d| day_start_ms(d, "from")).transpose()?;
    let to = present(&f.to).map(|d| day_start_ms(d, "to").map(|ms| ms + 86_400_000)).transpose()?;
    if let (Some(a), Some(b)) = (from, to) {
        if a >= b {
            return Err(Error::invalid("audit.range_reversed", "to"));
        }
    }
    if let Some(ms) = from {
        push("at >= ?", Arg::I(ms));
    }
    if let Some(ms) = to {
        push("at < ?", Arg::I(ms));
    }
    let sql = if conds.is_empty() { String::new() } else { format!(" where {}", conds.join(" and ")) };
    Ok((sql, args))
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::I(i) => q.bind(*i),
            Arg::S(s) => q.bind(s.as_str()),
        };
    }
    q
}

pub struct Page {
    pub entries: Vec<Entry>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

impl Page {
    pub fn pages(&self) -> i64 {
        ((self.total + self.per_page - 1) / self.per_page).max(1)
    }
}

/// One page of matching entries, newest first.
pub async fn search(db: &Db, user: &CurrentUser, f: &AuditFilter) -> Result<Page> {
    let (cond, args) = where_clause(f, reach(user).as_ref())?;
    let per_page = f.per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE);
    let page = f.page.unwrap_or(1).max(1);
    let total: i64 = bind_all(sqlx::query(&format!("select count(*) from audit_log{cond}")), &args)
        .fetch_one(&db.pool)
        .await
        .and_then(|r| sqlx::Row::try_get(&r, 0))?;
    let n = args.len();
    let sql = format!(
        "select {} from audit_log{cond} order by id desc limit ${} offset ${}",
        chain::ENTRY_COLS,
        n + 1,
        n + 2
    );
    let rows = bind_all(sqlx::query(&sql), &args)
        .bind(per_page)
        .bind((page - 1).saturating_mul(per_page))
        .fetch_all(&db.pool)
        .await?;
    let entries = rows.iter().map(chain::entry_from_row).collect::<Result<_>>()?;
    Ok(Page { entries, total, page, per_page })
}

/// Every matching entry, oldest first, as CSV for Excel: a UTF-8 byte
/// order mark, quoted fields, and cells that a spreadsheet would run as a
/// formula defused with a leading apostrophe.
pub async fn export_csv(db: &Db, user: &CurrentUser, f: &AuditFilter) -> Result<String> {
    let (cond, args) = where_clause(f, reach(user).as_ref())?;
    let total: i64 = bind_all(sqlx::query(&format!("select count(*) from audit_log{cond}")), &args)
        .fetch_one(&db.pool)
        .await
        .and_then(|r| sqlx::Row::try_get(&r, 0))?;
    if total > MAX_EXPORT {
        return Err(Error::invalid_detail("audit.export_too_large", "from", MAX_EXPORT.to_string()));
    }
    let rows = bind_all(sqlx::query(&format!("select {} from audit_log{cond} order by id", chain::ENTRY_COLS)), &args)
        .fetch_all(&db.pool)
        .await?;
    let t = crate::kernel::i18n::t;
    let mut out = String::from("\u{feff}");
    let header = [
        "audit.col.id",
        "audit.col.at",
        "audit.col.actor",
        "audit.col.roles",
        "audit.col.node",
        "audit.col.addr",
        "audit.col.action",
        "audit.col.action_code",
        "audit.col.object_type",
        "audit.col.object_id",
        "audit.col.reason",
        "audit.col.detail",
        "audit.col.hash",
    ];
    csv_line(&mut out, header.iter().map(|k| t(k).to_string()));
    for row in &rows {
        let e = chain::entry_from_row(row)?;
        csv_line(
            &mut out,
            [
                e.id.to_string(),
                e.at_local(),
                e.actor_username.clone(),
                e.actor_roles.clone(),
                e.actor_node_id.map(|n| n.to_string()).unwrap_or_default(),
                e.client_addr.clone().unwrap_or_default(),
                e.action_label(),
                e.action.clone(),
                e.object_type.clone().unwrap_or_default(),
                e.object_id.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.detail.clone(),
                e.hash.clone(),
            ],
        );
    }
    Ok(out)
}

fn csv_line(out: &mut String, cells: impl IntoIterator<Item = String>) {
    let cells: Vec<String> = cells.into_iter().map(|c| csv_cell(&c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v.to_string() };
    format!("\"{}\"", v.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "\"'-1\"");
    }

    #[test]
    fn filters_become_numbered_conditions() {
        let f = AuditFilter {
            actor: Some("admin".into()),
            action: Some("session.".into()),
            from: Some("2026-01-01".into()),
            to: Some(" ".into()),
            ..Default::default()
        };
        let (sql, args) = where_clause(&f, None).unwrap();
        assert_eq!(sql, " where actor_username = $1 and action like $2 and at >= $3");
        assert_eq!(args.len(), 3);
        assert!(matches!(args[2], Arg::I(ms) if ms == 1_767_196_800_000));
        let bad = AuditFilter { from: Some("2026-13-01".into()), ..Default::default() };
        assert!(where_clause(&bad, None).is_err());
        let reversed =
            AuditFilter { from: Some("2026-02-01".into()), to: Some("2026-01-01".into()), ..Default::default() };
        assert_eq!(
            where_clause(&reversed, None).err().map(|e| e.code().to_string()),
            Some("audit.range_reversed".into())
        );
    }

    #[test]
    fn a_subtree_reader_gets_the_scope_first() {
        let f = AuditFilter { actor: Some("admin".into()), ..Default::default() };
        let scope = Scope { path: "/1/12/".into() };
        let (sql, args) = where_clause(&f, Some(&scope)).unwrap();
        assert!(sql.starts_with(" where (actor_node_id in (select id from nodes where path >= $1 and path < $2)"));
        assert!(sql.ends_with(" and actor_username = $3"), "{sql}");
        assert!(!sql.contains("$lo") && !sql.contains("$hi"));
        assert!(matches!((&args[0], &args[1]), (Arg::S(lo), Arg::S(hi)) if lo == "/1/12/" && hi == "/1/120"));
    }
}
