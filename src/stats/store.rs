//! Reading the facts of the orders of a subtree and period: SQL aggregates
//! over the event log (the same on SQLite and PostgreSQL), and the replay
//! that must agree with them.

use sqlx::Row;

use super::indicators::{facts_from_events, EventRow, OrderFacts};
use crate::{kernel::error::Result, platform::db::Db};

/// Orders whose place is in `[lo, hi)` (a subtree's path bounds) and that
/// were reported in `[from, to)` (epoch ms).
pub struct Window {
    pub lo: String,
    pub hi: String,
    pub from: i64,
    pub to: i64,
}

const FACTS: &str = "select o.id, o.node_path, o.level, o.rating, o.lead_unit_id, \
      cast(max(case when e.action in ('accept', 'handle_on_spot') then 1 else 0 end) as bigint) as accepted, \
      cast(max(case when e.action = 'dispatch' then 1 else 0 end) as bigint) as dispatched, \
      cast(max(case when e.action = 'sign' then 1 else 0 end) as bigint) as signed, \
      cast(max(case when e.action = 'mark_overdue' and e.from_state = 'pending_sign' then 1 else 0 end) as bigint) as sign_late, \
      cast(max(case when e.to_state = 'pending_evaluation' or e.action = 'handle_on_spot' then 1 else 0 end) as bigint) as closed, \
      cast(max(case when e.action = 'mark_overdue' and e.from_state = 'handling' then 1 else 0 end) as bigint) as handle_late, \
      cast(max(case when e.action = 'mark_overdue' then 1 else 0 end) as bigint) as overdue, \
      cast(max(case when e.action = 'approve_extension' then 1 else 0 end) as bigint) as extended, \
      cast(max(case when e.action = 'verify_fail' then 1 else 0 end) as bigint) as reworked, \
      cast(max(case when e.action = 'handle_on_spot' then 1 else 0 end) as bigint) as on_spot, \
      cast(max(case when e.action in ('evaluate', 'follow_up') and e.to_state = 'handling' then 1 else 0 end) as bigint) as redone \
    from orders o join order_events e on e.order_id = o.id \
    where o.node_path >= $1 and o.node_path < $2 and o.created_at >= $3 and o.created_at < $4 \
    group by o.id, o.node_path, o.level, o.rating, o.lead_unit_id order by o.id";

/// The facts of every order in the window, by SQL.
pub async fn facts(db: &Db, w: &Window) -> Result<Vec<OrderFacts>> {
    let rows = sqlx::query(FACTS).bind(&w.lo).bind(&w.hi).bind(w.from).bind(w.to).fetch_all(&db.pool).await?;
    let flag = |r: &sqlx::any::AnyRow, c: &str| -> Result<bool> { Ok(r.try_get::<i64, _>(c)? == 1) };
    rows.iter()
        .map(|r| {
            Ok(OrderFacts {
                order_id: r.try_get(0)?,
                node_path: r.try_get(1)?,
                level: r.try_get(2)?,
                rating: r.try_get(3)?,
                lead_unit: r.try_get(4)?,
                accepted: flag(r, "accepted")?,
                dispatched: flag(r, "dispatched")?,
                signed: flag(r, "signed")?,
                sign_late: flag(r, "sign_late")?,
                closed: flag(r, "closed")?,
                handle_late: flag(r, "handle_late")?,
                overdue: flag(r, "overdue")?,
                extended: flag(r, "extended")?,
                reworked: flag(r, "reworked")?,
                redone: flag(r, "redone")?,
                on_spot: flag(r, "on_spot")?,
            })
        })
        .collect()
}

/// The same facts by replaying every event of every order in the window.
pub async fn replayed_facts(db: &Db, w: &Window) -> Result<Vec<OrderFacts>> {
    let rows = sqlx::query(
        "select o.id, o.node_path, o.level, o.lead_unit_id, e.action, e.from_state, e.to_state, e.data from orders o \
         join order_events e on e.order_id = o.id \
         where o.node_path >= $1 and o.node_path < $2 and o.created_at >= $3 and o.created_at < $4 \
         order by o.id, e.seq",
    )
    .bind(&w.lo)
    .bind(&w.hi)
    .bind(w.from)
    .bind(w.to)
    .fetch_all(&db.pool)
    .await?;
    let mut out = vec![];
    let mut i = 0;
    while i < rows.len() {
        let id: i64 = rows[i].try_get(0)?;
        let mut events: Vec<(String, String, String, String)> = vec![];
        let (path, level, lead): (String, String, Option<i64>) =
            (rows[i].try_get(1)?, rows[i].try_get(2)?, rows[i].try_get(3)?);
        while i < rows.len() && rows[i].try_get::<i64, _>(0)? == id {
            let r = &rows[i];
            events.push((r.try_get(4)?, r.try_get(5)?, r.try_get(6)?, r.try_get(7)?));
            i += 1;
        }
        out.push(facts_from_events(
            id,
            &path,
            &level,
            lead,
            events.iter().map(|(a, f, t, d)| EventRow { action: a, from_state: f, to_state: t, data: d }),
        ));
    }
    Ok(out)
}

/// The ids of the orders in the window, newest first.
pub async fn newest_first(db: &Db, w: &Window) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "select id from orders where node_path >= $1 and node_path < $2 and created_at >= $3 and created_at < $4 \
         order by created_at desc, id desc",
    )
    .bind(&w.lo)
    .bind(&w.hi)
    .bind(w.from)
    .bind(w.to)
    .fetch_all(&db.pool)
    .await?)
}

/// The active departments registered at a node (the district's 职能部门).
pub async fn departments(db: &Db, node_id: i64) -> Result<Vec<(i64, String, String)>> {
    let rows = sqlx::query(
        "select id, code, name from units where kind = 'department' and status = 'active' and node_id = $1 order by code",
    )
    .bind(node_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
}

/// The matters most reported in the window: (category name, orders), most first.
pub async fn categories(db: &Db, w: &Window, limit: i64) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "select c.name, count(*) as n from orders o join categories c on c.code = o.category_code \
         where o.node_path >= $1 and o.node_path < $2 and o.created_at >= $3 and o.created_at < $4 \
         group by c.name order by n desc, c.name limit $5",
    )
    .bind(&w.lo)
    .bind(&w.hi)
    .bind(w.from)
    .bind(w.to)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}
