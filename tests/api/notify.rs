//! Notifications: work-order steps reach the right people's inboxes through
//! the outbox (the handlers of the unit an order is dispatched to, the
//! dispatcher when it is signed or returned, the approvers of an extension,
//! the unit and its supervising centre when it is overdue), once each, in
//! words without personal data, and each person sees and marks only their own.

use std::time::Duration;

use fengqiao::platform::{
    db::now_ms,
    jobs::{Job, Outcome},
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    both_backends,
    helpers::*,
    orders::{act_ok, setup, staff_order},
};

/// Runs the notifications' subscriber until it has nothing left to do.
async fn deliver(app: &TestApp) {
    let notify = fengqiao::notify::consumer(app.db.clone(), Duration::from_secs(1));
    while notify.run_once().await.unwrap() == Outcome::Worked {}
}

/// (topic, body, urgent) of a user's notices, oldest first.
async fn inbox(app: &TestApp, token: &str) -> Vec<(String, String, bool)> {
    let r = app.get("/api/v1/inbox", token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut out: Vec<(String, String, bool)> = r.body["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (n["topic"].as_str().unwrap().to_string(), n["body"].as_str().unwrap().to_string(), n["urgent"] == true)
        })
        .collect();
    out.reverse();
    out
}

fn topics(notices: &[(String, String, bool)]) -> Vec<&str> {
    notices.iter().map(|(t, _, _)| t.as_str()).collect()
}

both_backends!(each_step_reaches_the_people_its_rule_names, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    let code: String = sqlx::query_scalar("select tracking_code from orders where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    deliver(&app).await;

    // Dispatched: the handlers of the grid's unit, not the dispatcher.
    let worker = inbox(&app, &l.worker).await;
    assert_eq!(topics(&worker), ["orders.dispatch"]);
    let (_, body, urgent) = &worker[0];
    assert!(!urgent);
    for part in [code.as_str(), "小区公共设施维修", "黑龙潭社区", "签收"] {
        assert!(body.contains(part), "{part} in {body}");
    }
    assert_eq!(inbox(&app, &l.centre).await, vec![], "not told of one's own step");
    assert_eq!(inbox(&app, &l.lead).await, vec![]);
    assert_eq!(inbox(&app, &l.dept).await, vec![]);

    // Signed: the dispatcher.
    act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;
    deliver(&app).await;
    assert_eq!(topics(&inbox(&app, &l.centre).await), ["orders.sign"]);

    // An extension awaiting approval: the approvers of the dispatcher's unit.
    act_ok(&app, &l.worker, id, json!({"action": "request_extension", "days": 2, "reason": "需等待配件到货"})).await;
    deliver(&app).await;
    assert_eq!(topics(&inbox(&app, &l.centre).await), ["orders.sign", "orders.request_extension"]);
    act_ok(&app, &l.centre, id, json!({"action": "refuse_extension", "reason": "请按期办结"})).await;

    // Overdue: the unit, and the centre that supervises it; a red alert.
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
    deliver(&app).await;
    let worker = inbox(&app, &l.worker).await;
    assert_eq!(topics(&worker), ["orders.dispatch", "orders.mark_overdue"]);
    assert!(worker[1].2, "overdue is urgent");
    assert!(worker[1].1.contains("超期"), "{}", worker[1].1);
    let centre = inbox(&app, &l.centre).await;
    assert_eq!(topics(&centre), ["orders.sign", "orders.request_extension", "orders.mark_overdue"]);
    assert_eq!(inbox(&app, &l.lead).await, vec![], "the district centre supervises the community, not this grid");

    // Returned: the dispatcher, who also decides on it — told once.
    act_ok(&app, &l.worker, id, json!({"action": "return_order", "reason": "不属于本网格"})).await;
    deliver(&app).await;
    let centre = inbox(&app, &l.centre).await;
    assert_eq!(topics(&centre).iter().filter(|t| **t == "orders.return_order").count(), 1, "{centre:?}");

    // Nothing personal in any notice: not the reporter's name or phone,
    // not the order's title, text or address.
    let bodies: Vec<String> =
        sqlx::query_scalar("select body from notifications").fetch_all(&app.db.pool).await.unwrap();
    assert!(bodies.len() >= 6, "{bodies:?}");
    for body in &bodies {
        for personal in ["刘女士", "13900001111", "小区路灯不亮", "3号楼", "黑龙潭社区3号楼前", "wg", "sq"]
        {
            assert!(!body.contains(personal), "{personal} in {body}");
        }
    }

    // A delivery made again (a lapsed lease, a crash before it was marked
    // done) changes nothing.
    let before = app.count("notifications").await;
    sqlx::query("update outbox_deliveries set state = 'pending', next_attempt_at = 0, attempts = 0")
        .execute(&app.db.pool)
        .await
        .unwrap();
    deliver(&app).await;
    assert_eq!(app.count("notifications").await, before, "each person is told once per event");
});

both_backends!(each_person_reads_and_marks_only_their_own, |app| {
    let l = setup(&app).await;
    for _ in 0..2 {
        let id = staff_order(&app, &l, "0309").await;
        act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
        act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
        act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;
    }
    deliver(&app).await;
    let count = |token: String| {
        let app = &app;
        async move { app.get("/api/v1/inbox/unread-count", &token).await.body["unread"].as_i64().unwrap() }
    };
    assert_eq!(count(l.worker.clone()).await, 2);
    assert_eq!(count(l.centre.clone()).await, 2);
    let centre_notice = app.get("/api/v1/inbox", &l.centre).await.body["notices"][0]["id"].as_i64().unwrap();
    let mine = app.get("/api/v1/inbox", &l.worker).await.body;
    let first = mine["notices"][0]["id"].as_i64().unwrap();
    assert_eq!(mine["unread"], 2);

    // Someone else's notice answers as if there were none, and stays unread.
    let r = app.post(&format!("/api/v1/inbox/{centre_notice}/read"), &l.worker, json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(count(l.centre.clone()).await, 2);

    let r = app.post(&format!("/api/v1/inbox/{first}/read"), &l.worker, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["read_at"].is_i64());
    assert_eq!(count(l.worker.clone()).await, 1);
    let unread = app.get("/api/v1/inbox?unread=true", &l.worker).await.body;
    assert_eq!(unread["notices"].as_array().unwrap().len(), 1);
    assert_ne!(unread["notices"][0]["id"], first);

    let bad = app.get("/api/v1/inbox?limit=0", &l.worker).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::UNPROCESSABLE_ENTITY, "notify.limit_invalid"));
    assert_eq!(bad.body["error"]["field"], "limit");

    let r = app.post("/api/v1/inbox/read-all", &l.worker, json!({})).await;
    assert_eq!((r.status, r.body["marked"].clone()), (StatusCode::OK, json!(1)));
    assert_eq!(count(l.worker.clone()).await, 0);
    assert_eq!(count(l.centre.clone()).await, 2, "another's inbox is untouched");

    // Without a login: refused.
    let anon = app.client.get(format!("{}/api/v1/inbox", app.addr)).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let openapi: Value =
        app.client.get(format!("{}/api/v1/openapi.json", app.addr)).send().await.unwrap().json().await.unwrap();
    for path in ["/api/v1/inbox", "/api/v1/inbox/unread-count", "/api/v1/inbox/{id}/read", "/api/v1/inbox/read-all"] {
        assert!(openapi["paths"][path].is_object(), "{path} described");
    }
});

/// Every declared notice has its text in the catalogue, and those texts can
/// only name a code, a category, a place and a deadline.
#[test]
fn every_notice_template_is_free_of_personal_data() {
    fengqiao::app::register_domains();
    let kinds = fengqiao::platform::notices::all();
    assert!(kinds.len() >= 8, "{kinds:?}");
    for k in kinds {
        assert!(fengqiao::kernel::i18n::has(k.message), "{} has no text", k.message);
        let text = fengqiao::kernel::i18n::t(k.message);
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').expect("closed placeholder") + start;
            let name = &rest[start + 1..end];
            assert!(["code", "category", "place", "deadline"].contains(&name), "{{{name}}} in {}", k.message);
            rest = &rest[end + 1..];
        }
        for word in ["姓名", "电话", "手机", "身份证", "{name}", "{contact}", "{phone}"] {
            assert!(!text.contains(word), "{word} in {}", k.message);
        }
    }
}

/// Reads a live stream until `until` holds for what came so far (or 10 s).
async fn read_stream(mut r: reqwest::Response, until: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !until(&text) {
        match tokio::time::timeout_at(deadline, r.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            _ => break,
        }
    }
    text
}

both_backends!(a_reconnecting_stream_catches_up_from_its_last_event_id, |app| {
    let l = setup(&app).await;
    let mut codes = vec![];
    for _ in 0..2 {
        let id = staff_order(&app, &l, "0309").await;
        act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
        act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
        codes.push(
            sqlx::query_scalar::<_, String>("select tracking_code from orders where id = $1")
                .bind(id)
                .fetch_one(&app.db.pool)
                .await
                .unwrap(),
        );
    }
    deliver(&app).await;
    let ids: Vec<i64> = app.get("/api/v1/inbox", &l.worker).await.body["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .rev()
        .collect();
    assert_eq!(ids.len(), 2);
    let open = |last: Option<i64>| {
        let mut req = app.client.get(format!("{}/inbox/stream", app.addr)).bearer_auth(&l.worker);
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last.to_string());
        }
        req.send()
    };

    // A new client gets the bell's count, and no old items.
    let r = open(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = read_stream(r, |t| t.contains("event: bell")).await;
    assert!(text.contains("data-unread=\"2\""), "{text}");
    assert!(!text.contains("event: item"), "{text}");

    // One that saw the first notice gets the second, then the bell.
    let text = read_stream(open(Some(ids[0])).await.unwrap(), |t| t.contains("event: bell")).await;
    assert!(text.contains(&format!("id: {}", ids[1])), "{text}");
    assert!(text.contains("event: item") && text.contains(&codes[1]) && !text.contains(&codes[0]), "{text}");

    // A live client hears of a new notice at once.
    let r = open(Some(ids[1])).await.unwrap();
    let id = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    deliver(&app).await;
    let text = read_stream(r, |t| t.contains("data-unread=\"3\"")).await;
    assert!(text.contains("data-unread=\"3\""), "{text}");

    // Without a login: refused.
    let anon = app.client.get(format!("{}/inbox/stream", app.addr)).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
});
