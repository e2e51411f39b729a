//! The audit log of the demo's year of work orders, as if it had happened:
//! every generated step is recorded by the account that would have taken
//! it (the community centre accepts, dispatches and verifies; the lead
//! unit's account signs and reports back; residents report and rate; the
//! deadline timer marks overdue), at the time it was taken, on the keyed
//! chain, so `fengqiao audit verify` passes and the log page reads like a
//! district's.

use std::collections::HashMap;

use sqlx::Row;

use super::Batch;
use crate::{
    audit::{
        chain::{self, NewEntry},
        Actor,
    },
    orders::action::{ORDER_ACT, ORDER_CREATE},
    platform::{crypto::Crypto, db::Db},
};

/// An account as the log records it.
struct Account {
    actor: Actor,
}

/// Writes the history; returns the number of entries.
pub async fn record(db: &Db, crypto: &Crypto) -> anyhow::Result<usize> {
    // Each unit has one account (its staff login), posted at the unit's node.
    let mut accounts: HashMap<i64, Account> = HashMap::new();
    let users =
        sqlx::query("select u.id, u.username, u.unit_id, un.node_id from users u join units un on un.id = u.unit_id")
            .fetch_all(&db.pool)
            .await?;
    let grants = sqlx::query("select user_id, role_code from user_roles order by user_id, role_code")
        .fetch_all(&db.pool)
        .await?;
    let mut roles: HashMap<i64, Vec<String>> = HashMap::new();
    for g in &grants {
        let list = roles.entry(g.try_get::<i64, _>(0)?).or_default();
        let role: String = g.try_get(1)?;
        if !list.contains(&role) {
            list.push(role);
        }
    }
    for u in &users {
        let id: i64 = u.try_get(0)?;
        let unit: i64 = u.try_get(2)?;
        accounts.entry(unit).or_insert(Account {
            actor: Actor {
                user_id: Some(id),
                username: u.try_get(1)?,
                roles: roles.get(&id).map(|r| r.join(",")).unwrap_or_default(),
                node_id: Some(u.try_get(3)?),
                client_addr: Some("10.14.1.".to_string() + &(20 + id % 200).to_string()),
            },
        });
    }
    // The centre unit of each community and the grid unit of each grid.
    let mut centre_at: HashMap<i64, i64> = HashMap::new();
    let mut grid_unit_at: HashMap<i64, i64> = HashMap::new();
    for r in sqlx::query("select id, kind, node_id from units").fetch_all(&db.pool).await? {
        let (id, kind, node): (i64, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        match kind.as_str() {
            "centre" => centre_at.insert(node, id),
            "grid" => grid_unit_at.insert(node, id),
            _ => None,
        };
    }
    // Each node's parent, to find the centre an escalated order reached.
    let mut parent: HashMap<i64, i64> = HashMap::new();
    for r in sqlx::query("select id, parent_id from nodes where kind <> 'building' and kind <> 'grid'")
        .fetch_all(&db.pool)
        .await?
    {
        if let Some(p) = r.try_get::<Option<i64>, _>(1)? {
            parent.insert(r.try_get(0)?, p);
        }
    }
    let resident = Actor {
        user_id: None,
        username: "resident".into(),
        roles: "reporter".into(),
        node_id: None,
        client_addr: None,
    };
    let timer = Actor::system("deadlines");

    let events = sqlx::query(
        "select e.order_id, e.seq, e.at, e.actor_role, e.action, e.from_state, e.to_state, e.reason, e.data, \
         o.source, o.category_code, o.node_id, n.parent_id from order_events e \
         join orders o on o.id = e.order_id join nodes n on n.id = o.node_id order by e.order_id, e.seq",
    )
    .fetch_all(&db.pool)
    .await?;
    // (at, order, seq, actor, action, reason, detail)
    let mut steps: Vec<(i64, i64, i64, &Actor, &'static str, Option<String>, serde_json::Value)> = vec![];
    let mut lead: Option<i64> = None;
    // 0 community, 1 subdistrict, 2 district: where the order is handled.
    let mut level = 0;
    let mut current_order = 0;
    for e in &events {
        let order: i64 = e.try_get(0)?;
        if order != current_order {
            current_order = order;
            lead = None;
            level = 0;
        }
        let (seq, at): (i64, i64) = (e.try_get(1)?, e.try_get(2)?);
        let (role, action): (String, String) = (e.try_get(3)?, e.try_get(4)?);
        let (from, to): (String, String) = (e.try_get(5)?, e.try_get(6)?);
        let reason: Option<String> = e.try_get(7)?;
        let data: serde_json::Value = serde_json::from_str(&e.try_get::<String, _>(8)?).unwrap_or_default();
        let (source, category, grid): (String, String, i64) = (e.try_get(9)?, e.try_get(10)?, e.try_get(11)?);
        let community: Option<i64> = e.try_get(12)?;
        // The lead unit changes with 派单 and with an approved 退单.
        if action == "dispatch" {
            lead = data.get("lead_unit").and_then(|v| v.as_i64()).or(lead);
        }
        let mut at_level = community;
        for _ in 0..level {
            at_level = at_level.and_then(|n| parent.get(&n).copied());
        }
        let centre = at_level.and_then(|c| centre_at.get(&c)).and_then(|u| accounts.get(u)).map(|a| &a.actor);
        let actor = match role.as_str() {
            "reporter" if action == "create" && source == "patrol" => {
                grid_unit_at.get(&grid).and_then(|u| accounts.get(u)).map(|a| &a.actor).or(centre)
            }
            "reporter" if action == "create" && source != "resident" => centre,
            "reporter" => Some(&resident),
            "handler" => lead.and_then(|u| accounts.get(&u)).map(|a| &a.actor).or(centre),
            "system" => Some(&timer),
            _ => centre,
        };
        if action == "escalate" {
            level += 1;
        }
        if action == "approve_return" {
            lead = data.get("reassign_to").and_then(|v| v.as_i64()).or(lead);
        }
        let Some(actor) = actor else { continue };
        let step = if action == "create" {
            (
                at,
                order,
                seq,
                actor,
                ORDER_CREATE,
                None,
                serde_json::json!({"source": source, "category": category, "node_id": grid}),
            )
        } else {
            (at, order, seq, actor, ORDER_ACT, reason, serde_json::json!({"action": action, "from": from, "to": to}))
        };
        steps.push(step);
    }
    steps.sort_by_key(|s| (s.0, s.1, s.2));

    let head = sqlx::query("select id, hash from audit_log order by id desc limit 1").fetch_optional(&db.pool).await?;
    let (mut last_id, mut prev_hash) = match head {
        Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?),
        None => (0, chain::GENESIS.to_string()),
    };
    let cols: &'static [&'static str] = &[
        "id",
        "at",
        "actor_user_id",
        "actor_username",
        "actor_roles",
        "actor_node_id",
        "client_addr",
        "action",
        "object_type",
        "object_id",
        "reason",
        "detail",
        "prev_hash",
        "hash",
        "key_id",
    ];
    let mut batch = Batch::new("audit_log", cols);
    let count = steps.len();
    for (at, order, _, actor, action, reason, detail) in steps {
        let id = order.to_string();
        let e = chain::entry_after_with(
            crypto,
            last_id,
            prev_hash,
            NewEntry {
                at,
                actor,
                action,
                object_type: Some("order"),
                object_id: Some(&id),
                reason: reason.as_deref(),
                detail: detail.to_string(),
            },
        )?;
        last_id = e.id;
        prev_hash = e.hash.clone();
        batch.push(chain::entry_values(e));
    }
    let mut tx = db.pool.begin().await?;
    batch.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(count)
}
