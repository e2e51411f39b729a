//! The outbox: work-order steps become events in their own transaction,
//! consumers deliver each event once in effect, failed deliveries back off
//! and end as dead letters that an administrator sends again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use fengqiao::{
    kernel::error::Result,
    platform::{
        db::{now_ms, Backend as DbBackend},
        jobs::{Backoff, Job, Outcome},
        outbox::{Consumer, Event, Handler, NewEvent, Prune, Settings, Webhook},
    },
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    both_backends,
    helpers::*,
    orders::{act, act_ok, setup, staff_order},
};

/// (topic, payload) of every event, oldest first.
async fn events(app: &TestApp) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select topic, payload from outbox_events order by id").fetch_all(&app.db.pool).await.unwrap();
    rows.into_iter().map(|(t, p)| (t, serde_json::from_str(&p).unwrap())).collect()
}

/// Appends events outside any service, as a service would inside its write.
async fn append(app: &TestApp, topic: &str, n: i64) {
    for i in 0..n {
        let e = NewEvent::new(topic, json!({"n": i}), now_ms());
        match app.db.backend {
            DbBackend::Sqlite => app.db.write(move |conn| e.append_sqlite(conn)).await.unwrap(),
            DbBackend::Postgres => {
                let mut tx = app.db.pool.begin().await.unwrap();
                e.append_in(&mut tx).await.unwrap();
                tx.commit().await.unwrap();
            }
        }
    }
}

async fn row(app: &TestApp, id: i64) -> (String, i64, i64, Option<String>) {
    sqlx::query_as("select state, attempts, next_attempt_at, last_error from outbox_events where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

both_backends!(each_order_step_is_an_event_without_personal_data, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;
    // The deadline job, stepped by hand, marks it overdue.
    sqlx::query("update orders set deadline_at = $1 where id = $2")
        .bind(now_ms() - 1000)
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let deadlines = fengqiao::orders::timers::Deadlines {
        state: app.state_for_timers.clone(),
        rules: Default::default(),
        every: Duration::from_secs(30),
    };
    assert_eq!(deadlines.run_once().await.unwrap(), Outcome::Worked);
    assert_eq!(deadlines.run_once().await.unwrap(), Outcome::Idle, "each deadline fires once");

    let all = events(&app).await;
    let topics: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["orders.create", "orders.accept", "orders.dispatch", "orders.sign", "orders.mark_overdue"]);
    let code: String = sqlx::query_scalar("select tracking_code from orders where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let worker: i64 =
        sqlx::query_scalar("select id from users where username = 'wg'").fetch_one(&app.db.pool).await.unwrap();
    let (_, sign) = &all[3];
    assert_eq!(sign["order_id"], id);
    assert_eq!(sign["tracking_code"], code.as_str());
    assert_eq!(sign["action"], "sign");
    assert_eq!(sign["actor_id"], worker);
    assert_eq!(sign["node_id"], l.grid);
    assert_eq!((sign["from"].as_str(), sign["to"].as_str()), (Some("pending_sign"), Some("handling")));
    assert!(sign["at"].is_i64());
    assert_eq!(all[4].1["actor_id"], Value::Null, "the system marked it overdue");
    let text = serde_json::to_string(&all).unwrap();
    for personal in ["刘女士", "13900001111", "路灯", "黑龙潭社区3号楼", "\"wg\""] {
        assert!(!text.contains(personal), "{personal} in an event: {text}");
    }
    // A step that loses the version race tells nothing.
    let stale = app
        .post(&format!("/api/v1/orders/{id}/actions"), &l.worker, json!({"version": 2, "action": {"action": "sign"}}))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(events(&app).await.len(), 5);
});

/// Makes every audit append fail: the last step of a store's transaction.
async fn break_the_audit_log(app: &TestApp) {
    let statements: &[&str] = match app.db.backend {
        DbBackend::Sqlite => &["create trigger fail_audit before insert on audit_log begin \
            select raise(abort, 'audit log unavailable'); end"],
        DbBackend::Postgres => &[
            "create function fail_audit() returns trigger language plpgsql as \
             $$ begin raise exception 'audit log unavailable'; end $$",
            "create trigger fail_audit before insert on audit_log for each row execute function fail_audit()",
        ],
    };
    for sql in statements {
        sqlx::raw_sql(sql).execute(&app.db.pool).await.unwrap();
    }
}

both_backends!(a_failure_after_the_store_step_leaves_no_event, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    let before = events(&app).await.len();
    assert_eq!(before, 1);
    let orders = app.count("orders").await;
    break_the_audit_log(&app).await;

    // The order row and its event were written, then the audit entry failed.
    let mut body = crate::orders::report("0309");
    body["source"] = json!("patrol");
    let r = app.post("/api/v1/orders", &l.worker, body).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", r.body);
    assert_eq!(app.count("orders").await, orders, "no order");
    let r = act(&app, &l.centre, id, json!({"action": "accept"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", r.body);
    assert_eq!(events(&app).await.len(), before, "neither step left an event");
    let version: i64 =
        sqlx::query_scalar("select version from orders where id = $1").bind(id).fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(version, 1, "nor a change");

    sqlx::raw_sql("drop trigger fail_audit on audit_log").execute(&app.db.pool).await.ok();
    sqlx::raw_sql("drop trigger fail_audit").execute(&app.db.pool).await.ok();
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    assert_eq!(events(&app).await.last().unwrap().0, "orders.accept");
});

/// Counts the events it handled, by id; takes a moment over each, so that
/// consumers running side by side overlap.
#[derive(Clone, Default)]
struct Counter {
    seen: Arc<Mutex<HashMap<i64, usize>>>,
}

impl Handler for Counter {
    async fn handle(&self, event: &Event) -> Result<()> {
        *self.seen.lock().unwrap().entry(event.id).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
}

both_backends!(two_consumers_handle_each_event_once, |app| {
    append(&app, "test.counted", 120).await;
    append(&app, "other.topic", 3).await;
    let counter = Counter::default();
    let settings = || Settings { topic_prefix: "test.".into(), batch: 7, ..Settings::default() };
    let a = Consumer::new(app.db.clone(), "counted", counter.clone(), settings());
    let b = Consumer::new(app.db.clone(), "counted", counter.clone(), settings());
    let drain = |c: Consumer<Counter>| async move {
        let mut steps = 0;
        while c.run_once().await.unwrap() == Outcome::Worked {
            steps += 1;
        }
        steps
    };
    let (sa, sb) = tokio::join!(tokio::spawn(drain(a)), tokio::spawn(drain(b)));
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert!(sa > 0 && sb > 0, "both consumers took batches: {sa} and {sb}");
    let seen = counter.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 120, "every event of the topics");
    assert!(seen.values().all(|n| *n == 1), "each handled once: {seen:?}");
    let states: Vec<(String, String, i64)> =
        sqlx::query_as("select topic, state, count(*) from outbox_events group by topic, state order by topic")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        vec![("other.topic".to_string(), "pending".to_string(), 3), ("test.counted".into(), "done".into(), 120)]
    );
});

/// A webhook receiver that fails its first `failures` requests.
struct Receiver {
    url: String,
    /// (Idempotency-Key, body, answered status) of each request.
    got: Arc<Mutex<Vec<(String, Value, u16)>>>,
}

async fn receiver(failures: usize) -> Receiver {
    use axum::{http::HeaderMap, routing::post, Json, Router};
    let got: Arc<Mutex<Vec<(String, Value, u16)>>> = Default::default();
    let log = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, Json(body): Json<Value>| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                let status = if log.len() < failures { 500 } else { 200 };
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                log.push((key, body, status));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got }
}

both_backends!(failed_deliveries_back_off_then_wait_as_dead_letters_for_an_administrator, |app| {
    let hook = receiver(3).await;
    append(&app, "test.hook", 1).await;
    let id: i64 = sqlx::query_scalar("select id from outbox_events").fetch_one(&app.db.pool).await.unwrap();
    let first = Duration::from_millis(300);
    let settings = Settings {
        topic_prefix: "test.".into(),
        max_attempts: 3,
        retry: Backoff { first, max: Duration::from_secs(60) },
        ..Settings::default()
    };
    let webhook = Consumer::new(app.db.clone(), "webhook", Webhook::new(&hook.url), settings);

    // Attempt 1 fails: due again after 300 ms, not before.
    let failed_at = now_ms();
    assert_eq!(webhook.run_once().await.unwrap(), Outcome::Worked);
    let (state, attempts, next, error) = row(&app, id).await;
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("500"));
    assert!(next - failed_at >= 300 && next - now_ms() <= 300, "due in 300 ms: {}", next - failed_at);
    assert_eq!(webhook.run_once().await.unwrap(), Outcome::Idle, "not due yet");
    assert_eq!(hook.got.lock().unwrap().len(), 1);

    // Attempt 2 fails: twice the pause.
    tokio::time::sleep(Duration::from_millis((next - now_ms()).max(0) as u64 + 20)).await;
    let failed_at = now_ms();
    assert_eq!(webhook.run_once().await.unwrap(), Outcome::Worked);
    let (state, attempts, next, _) = row(&app, id).await;
    assert_eq!((state.as_str(), attempts), ("pending", 2));
    assert!(next - failed_at >= 600 && next - now_ms() <= 600, "due in 600 ms: {}", next - failed_at);

    // Attempt 3 fails: the last one allowed.
    tokio::time::sleep(Duration::from_millis((next - now_ms()).max(0) as u64 + 20)).await;
    assert_eq!(webhook.run_once().await.unwrap(), Outcome::Worked);
    assert_eq!(row(&app, id).await.0, "dead");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(webhook.run_once().await.unwrap(), Outcome::Idle, "a dead letter is not tried again");
    assert_eq!(hook.got.lock().unwrap().len(), 3);

    // The administrator finds it and sends it again; others may not.
    let admin = app.admin().await;
    app.add_user("clerk", app.root_id, &["acceptor"]).await;
    let clerk = app.login("clerk", PASSWORD).await;
    assert_eq!(app.get("/api/v1/outbox/dead", &clerk).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("/api/v1/outbox/{id}/retry"), &clerk, json!({})).await.status, StatusCode::FORBIDDEN);
    // The console page lists it for the administrator, in words, and
    // refuses the clerk.
    let page = crate::pages::browser(&app, ADMIN).await.get(format!("{}/admin/outbox", app.addr)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("data-event=\"{id}\"")) && html.contains("系统事件"), "{html}");
    assert!(html.contains("重新投递") && html.contains("href=\"/admin/outbox\""), "the button and the menu entry");
    let refused =
        crate::pages::browser(&app, "clerk").await.get(format!("{}/admin/outbox", app.addr)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let dead = app.get("/api/v1/outbox/dead", &admin).await;
    assert_eq!(dead.status, StatusCode::OK, "{:?}", dead.body);
    let listed = &dead.body["events"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["topic"], "test.hook");
    assert_eq!(listed[0]["attempts"], 3);
    assert!(listed[0]["last_error"].as_str().unwrap().contains("500"), "{listed}");
    assert!(!listed[0]["last_error"].as_str().unwrap().contains("127.0.0.1"), "no URL in the error");

    let r = app.post(&format!("/api/v1/outbox/{id}/retry"), &admin, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "pending");
    let again = app.post(&format!("/api/v1/outbox/{id}/retry"), &admin, json!({})).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "outbox.not_dead"));
    let missing = app.post(&format!("/api/v1/outbox/{}/retry", id + 1000), &admin, json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let audited: Vec<(String, String)> = sqlx::query_as(
        "select actor_username, object_id from audit_log where action = 'outbox.retry' and object_type = 'outbox_event'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 1, "the one retry that happened is audited: {audited:?}");
    assert!(audited[0].0.starts_with(ADMIN) && audited[0].1 == id.to_string(), "{audited:?}");

    // Delivered at the next step, with its id as the idempotency key.
    assert_eq!(webhook.run_once().await.unwrap(), Outcome::Worked);
    assert_eq!(row(&app, id).await.0, "done");
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let (key, body, status) = &got[3];
    assert_eq!((key.as_str(), *status), (id.to_string().as_str(), 200));
    assert_eq!(body["id"], id);
    assert_eq!(body["topic"], "test.hook");
    assert_eq!(body["payload"], json!({"n": 0}));
    assert_eq!(app.get("/api/v1/outbox/dead", &admin).await.body["events"], json!([]));
});

// A consumer that died holding a claim: its events are claimed again once
// the lease runs out, not before.
both_backends!(a_lapsed_lease_is_claimed_again, |app| {
    append(&app, "test.lease", 2).await;
    let settings =
        || Settings { topic_prefix: "test.".into(), lease: Duration::from_millis(400), ..Settings::default() };
    let died = Consumer::new(app.db.clone(), "counted", Counter::default(), settings());
    assert_eq!(died.claim().await.unwrap().len(), 2);
    let counter = Counter::default();
    let other = Consumer::new(app.db.clone(), "counted", counter.clone(), settings());
    assert_eq!(other.run_once().await.unwrap(), Outcome::Idle, "leased elsewhere");
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(other.run_once().await.unwrap(), Outcome::Worked);
    assert_eq!(counter.seen.lock().unwrap().len(), 2);
    let attempts: Vec<i64> =
        sqlx::query_scalar("select attempts from outbox_events order by id").fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(attempts, vec![2, 2], "the lapsed claim counts as an attempt");
});

both_backends!(delivered_events_are_pruned_after_a_while, |app| {
    append(&app, "test.prune", 4).await;
    let day = 24 * 3600 * 1000;
    let ids: Vec<i64> =
        sqlx::query_scalar("select id from outbox_events order by id").fetch_all(&app.db.pool).await.unwrap();
    // Delivered 8 days ago, delivered just now, dead 8 days ago, pending.
    for (id, state, finished) in [
        (ids[0], "done", Some(now_ms() - 8 * day)),
        (ids[1], "done", Some(now_ms())),
        (ids[2], "dead", Some(now_ms() - 8 * day)),
        (ids[3], "pending", None),
    ] {
        sqlx::query("update outbox_events set state = $1, finished_at = $2 where id = $3")
            .bind(state)
            .bind(finished)
            .bind(id)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    let prune =
        Prune { db: app.db.clone(), keep: Duration::from_secs(7 * 24 * 3600), every: Duration::from_secs(3600) };
    assert_eq!(prune.run_once().await.unwrap(), Outcome::Idle);
    let left: Vec<i64> =
        sqlx::query_scalar("select id from outbox_events order by id").fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(left, ids[1..].to_vec(), "only the event delivered long ago is gone");
});

/// Fails every event it is given, counting the attempts by id.
#[derive(Clone, Default)]
struct Refuser {
    seen: Arc<Mutex<HashMap<i64, usize>>>,
}

impl Handler for Refuser {
    async fn handle(&self, event: &Event) -> Result<()> {
        *self.seen.lock().unwrap().entry(event.id).or_default() += 1;
        Err(anyhow::anyhow!("receiver down").into())
    }
}

// Subscribers with delivery rows of their own: each gets every event once,
// whatever the webhook's consumers and the other subscribers do, and one
// that fails retries and ends as its own dead letter.
both_backends!(each_subscriber_gets_every_event_on_its_own, |app| {
    append(&app, "test.shared", 30).await;
    let own = |name: &'static str| Settings {
        topic_prefix: "test.".into(),
        batch: 7,
        subscriber: Some(name),
        ..Settings::default()
    };
    let drain = |c: Consumer<Counter>| async move { while c.run_once().await.unwrap() == Outcome::Worked {} };
    // The webhook's consumer takes them all first: the subscribers still get them.
    let webhook = Counter::default();
    drain(Consumer::new(
        app.db.clone(),
        "webhook",
        webhook.clone(),
        Settings { topic_prefix: "test.".into(), ..Settings::default() },
    ))
    .await;
    let (a, b) = (Counter::default(), Counter::default());
    // Two consumers of subscriber `a` (two server nodes) share its deliveries.
    let (r1, r2, r3) = tokio::join!(
        tokio::spawn(drain(Consumer::new(app.db.clone(), "a", a.clone(), own("a")))),
        tokio::spawn(drain(Consumer::new(app.db.clone(), "a", a.clone(), own("a")))),
        tokio::spawn(drain(Consumer::new(app.db.clone(), "b", b.clone(), own("b")))),
    );
    (r1.unwrap(), r2.unwrap(), r3.unwrap());
    for (who, c) in [("webhook", &webhook), ("a", &a), ("b", &b)] {
        let seen = c.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 30, "{who} got every event");
        assert!(seen.values().all(|n| *n == 1), "{who} got each once: {seen:?}");
    }
    // Events appended later reach the subscribers too.
    append(&app, "test.shared", 2).await;
    drain(Consumer::new(app.db.clone(), "b", b.clone(), own("b"))).await;
    assert_eq!(b.seen.lock().unwrap().len(), 32);
    let done: Vec<(String, i64)> = sqlx::query_as(
        "select subscriber, count(*) from outbox_deliveries where state = 'done' group by subscriber order by subscriber",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(done, vec![("a".to_string(), 30), ("b".to_string(), 32)]);

    // A subscriber that fails: retried after a pause, then dead, for the
    // administrator to send again; the others are untouched.
    let refuser = Refuser::default();
    let failing = Consumer::new(
        app.db.clone(),
        "c",
        refuser.clone(),
        Settings {
            topic_prefix: "test.".into(),
            batch: 100,
            max_attempts: 2,
            retry: Backoff { first: Duration::from_millis(200), max: Duration::from_secs(1) },
            subscriber: Some("c"),
            ..Settings::default()
        },
    );
    assert_eq!(failing.run_once().await.unwrap(), Outcome::Worked);
    assert_eq!(failing.run_once().await.unwrap(), Outcome::Idle, "not due again yet");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(failing.run_once().await.unwrap(), Outcome::Worked);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(failing.run_once().await.unwrap(), Outcome::Idle, "dead after two attempts");
    assert!(refuser.seen.lock().unwrap().values().all(|n| *n == 2));
    let admin = app.admin().await;
    let dead = app.get("/api/v1/outbox/dead?limit=500", &admin).await.body["events"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 32);
    assert!(dead.iter().all(|d| d["subscriber"] == "c" && d["last_error"].as_str().unwrap().contains("receiver down")));
    let id = dead[0]["id"].as_i64().unwrap();
    let wrong = app.post(&format!("/api/v1/outbox/{id}/retry"), &admin, json!({})).await;
    assert_eq!(wrong.status, StatusCode::CONFLICT, "the webhook's delivery of it is not dead");
    let r = app.post(&format!("/api/v1/outbox/{id}/retry?subscriber=c"), &admin, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let state: String =
        sqlx::query_scalar("select state from outbox_deliveries where subscriber = 'c' and event_id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(state, "pending");
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "select count(*) from outbox_deliveries where state = 'done' and subscriber = 'b'"
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap(),
        32
    );
});
