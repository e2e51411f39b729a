//! The work-order steps someone should be told of, declared for the
//! notifications (see `platform::notices`): to whom, in which words, and
//! how an order reads as a notice's subject (tracking code, category,
//! community, deadline; never the reporter or the order's text).

use sqlx::Row;

use crate::{
    kernel::error::Result,
    platform::{
        db::Db,
        notices::{Audience, Kind, Source, Subject},
    },
};

const DISPATCH: &str = "orders.dispatch";

/// The notices of work-order steps.
pub const KINDS: &[Kind] = &[
    Kind { topic: DISPATCH, message: "notify.msg.orders.dispatch", audience: &[Audience::Unit], urgent: false },
    Kind {
        topic: "orders.reassign",
        message: "notify.msg.orders.dispatch",
        audience: &[Audience::Unit],
        urgent: false,
    },
    Kind { topic: "orders.sign", message: "notify.msg.orders.sign", audience: &[Audience::Assigner], urgent: false },
    Kind {
        topic: "orders.return_order",
        message: "notify.msg.orders.return_order",
        audience: &[Audience::Assigner, Audience::Approvers("orders.dispatch")],
        urgent: false,
    },
    Kind {
        topic: "orders.request_extension",
        message: "notify.msg.orders.request_extension",
        audience: &[Audience::Approvers("orders.dispatch")],
        urgent: false,
    },
    Kind {
        topic: "orders.verify_fail",
        message: "notify.msg.orders.verify_fail",
        audience: &[Audience::Unit],
        urgent: false,
    },
    Kind {
        topic: "orders.mark_overdue",
        message: "notify.msg.orders.mark_overdue",
        audience: &[Audience::Unit, Audience::Supervisor],
        urgent: true,
    },
    Kind {
        topic: "orders.supervise",
        message: "notify.msg.orders.supervise",
        audience: &[Audience::Unit],
        urgent: true,
    },
    Kind { topic: "orders.urge", message: "notify.msg.orders.urge", audience: &[Audience::Unit], urgent: true },
];

pub const SOURCE: Source = Source { kinds: KINDS, read: |db, payload| Box::pin(subject(db, payload)) };

/// The order an event names, as it stands now; none if it is gone.
async fn subject(db: &Db, payload: &serde_json::Value) -> Result<Option<Subject>> {
    let Some(id) = payload["order_id"].as_i64() else { return Ok(None) };
    // The place to community level: the community the order lies in, or
    // the order's own place when it lies above the communities.
    let row = sqlx::query(
        "select o.tracking_code, c.name as category, o.deadline_at, o.lead_unit_id, \
           coalesce((select p.name from nodes p where p.kind = 'community' \
             and substr(o.node_path, 1, length(p.path)) = p.path limit 1), n.name) as place, \
           (select e.actor_user_id from order_events e where e.order_id = o.id \
             and e.action in ('dispatch', 'reassign') order by e.seq desc limit 1) as assigner_id \
         from orders o join categories c on c.code = o.category_code join nodes n on n.id = o.node_id \
         where o.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Subject {
        object_type: "order",
        object_id: id,
        code: r.try_get("tracking_code")?,
        category: r.try_get("category")?,
        place: r.try_get("place")?,
        deadline_at: r.try_get("deadline_at")?,
        unit_id: r.try_get("lead_unit_id")?,
        assigner_id: r.try_get("assigner_id")?,
    }))
}
