//! The field app (即报即办, 已办) and 回访 (follow-up calls), on both backends.

use crate::{
    attachments::photo_with_gps,
    both_backends,
    helpers::*,
    orders::{act, act_ok, report, setup, staff_order, Loop},
    pages::{browser, csrf_of},
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A `multipart/form-data` body of text fields and files (field, file name, bytes).
fn form(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----fq-field-boundary-41a9";
    let mut body = vec![];
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (field, name, bytes) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
                 Content-Type: image/jpeg\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A page's CSRF token, read from the page at `path`.
async fn csrf(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let html = client.get(format!("{}{path}", app.addr)).send().await.unwrap().text().await.unwrap();
    csrf_of(&html)
}

/// Sends the field app's report form; the HX-Redirect target or the error text.
async fn field_report(app: &TestApp, client: &reqwest::Client, fields: &[(&str, &str)]) -> Result<String, String> {
    let token = csrf(app, client, "/m/report").await;
    let (before, after) = (photo_with_gps(1), photo_with_gps(2));
    let (ct, body) = form(fields, &[("photos", "before.jpg", &before), ("after_photos", "after.jpg", &after)]);
    let r = client
        .post(format!("{}/m/report", app.addr))
        .header("content-type", ct)
        .header("x-csrf-token", token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    match r.headers().get("hx-redirect") {
        Some(to) => Ok(to.to_str().unwrap().to_string()),
        None => Err(r.text().await.unwrap()),
    }
}

fn report_fields<'a>(category: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("category_code", category),
        ("title", "楼道堆放杂物"),
        ("description", "5号楼2单元楼道堆放纸箱，影响通行。"),
        ("address", "黑龙潭社区5号楼2单元"),
        ("lon", "112.605"),
        ("lat", "37.905"),
    ];
    f.extend_from_slice(extra);
    f
}

async fn scalar_i64(app: &TestApp, sql: &str, id: i64) -> i64 {
    sqlx::query_scalar(sql).bind(id).fetch_one(&app.db.pool).await.unwrap()
}

both_backends!(a_grid_worker_handles_a_small_matter_on_the_spot, |app| {
    let l = setup(&app).await;
    let worker = browser(&app, "wg").await;
    let on_spot = [("on_spot", "1"), ("result", "已协调住户清理，楼道恢复畅通。")];
    let to = field_report(&app, &worker, &report_fields("0301", &on_spot)).await.expect("reported and handled");
    let id: i64 = to.trim_start_matches("/m/orders/").parse().unwrap();

    // Closed at once, by the worker's own unit, without 受理 or 派单.
    let o = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body;
    assert_eq!(o["order"]["state"], "closed", "{o}");
    assert_eq!(o["order"]["lead_unit_id"], l.grid_unit);
    assert!(o["order"]["closed_at"].is_i64());
    let steps: Vec<&str> = o["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(steps, ["create", "handle_on_spot"]);
    assert_eq!(o["events"][1]["reason"], "已协调住户清理，楼道恢复畅通。");
    // Counted as handled on the spot (即报即办率), with photos before and after.
    assert_eq!(scalar_i64(&app, "select on_spot from orders where id = $1", id).await, 1);
    // …and by the indicators: 立案, 办结 and 即报即办 at once, the same by SQL and by replay.
    let all = fengqiao::stats::store::Window { lo: "/".into(), hi: "0".into(), from: 0, to: i64::MAX };
    let facts = fengqiao::stats::store::facts(&app.db, &all).await.unwrap();
    assert_eq!(facts, fengqiao::stats::store::replayed_facts(&app.db, &all).await.unwrap());
    let f = facts.iter().find(|f| f.order_id == id).unwrap();
    assert!(f.accepted && f.closed && f.on_spot && !f.dispatched, "{f:?}");
    let photos: Vec<(Option<i64>,)> =
        sqlx::query_as("select event_id from attachments where order_id = $1 order by id")
            .bind(id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(photos.len(), 2, "one photo before, one after");
    assert!(photos[0].0.is_some() && photos[1].0.is_some() && photos[0].0 != photos[1].0, "{photos:?}");
    // No order awaits the centre.
    assert_eq!(app.get("/api/v1/orders?queue=pending_accept", &l.centre).await.body["total"], 0);

    // Not for matters whose category does not allow it, nor urgent ones.
    let refused = field_report(&app, &worker, &report_fields("0303", &on_spot)).await.unwrap_err();
    assert!(refused.contains("不适用即报即办"), "{refused}");
    let urgent = [on_spot[0], on_spot[1], ("urgent", "1")];
    let refused = field_report(&app, &worker, &report_fields("0301", &urgent)).await.unwrap_err();
    assert!(refused.contains("不适用即报即办"), "{refused}");
    assert_eq!(app.get("/api/v1/orders?queue=all", &l.centre).await.body["total"], 1, "refused before reporting");

    // Through the API: only the reporting worker, with their own unit.
    let id = staff_order(&app, &l, "0301").await;
    // The order page offers it on the worker's own report, where allowed.
    let page = |id: i64| {
        let (worker, addr) = (worker.clone(), app.addr.clone());
        async move { worker.get(format!("{addr}/m/orders/{id}")).send().await.unwrap().text().await.unwrap() }
    };
    assert!(page(id).await.contains("data-action=\"handle_on_spot\""));
    let lamp = staff_order(&app, &l, "0303").await;
    assert!(!page(lamp).await.contains("data-action=\"handle_on_spot\""), "not offered where not allowed");
    let other =
        act(&app, &l.worker, id, json!({"action": "handle_on_spot", "unit": l.other_grid_unit, "result": "已处理"}))
            .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", other.body);
    let centre =
        act(&app, &l.centre, id, json!({"action": "handle_on_spot", "unit": l.community_unit, "result": "已处理"}))
            .await;
    assert_eq!(centre.status, StatusCode::FORBIDDEN, "{:?}", centre.body);
    let o =
        act_ok(&app, &l.worker, id, json!({"action": "handle_on_spot", "unit": l.grid_unit, "result": "已处理"})).await;
    assert_eq!(o["state"], "closed");
    let id = staff_order(&app, &l, "0303").await;
    let r =
        act(&app, &l.worker, id, json!({"action": "handle_on_spot", "unit": l.grid_unit, "result": "已处理"})).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "order.on_spot_not_allowed"));

    // Which matters allow it is the catalogue's setting.
    let admin = app.admin().await;
    let cats = app.call(Method::GET, "/api/v1/categories", None, None).await.body;
    let mut lamp = cats.as_array().unwrap().iter().find(|c| c["code"] == "0303").unwrap().clone();
    assert_eq!(lamp["on_spot"], "none");
    lamp["on_spot"] = json!("sometimes");
    let r = app.call(Method::PUT, "/api/v1/categories/0303", Some(&admin), Some(lamp.clone())).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "category.bad_on_spot"));
    lamp["on_spot"] = json!("any");
    let r = app.call(Method::PUT, "/api/v1/categories/0303", Some(&admin), Some(lamp)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["on_spot"], "any");
    let o =
        act_ok(&app, &l.worker, id, json!({"action": "handle_on_spot", "unit": l.grid_unit, "result": "已更换灯泡"}))
            .await;
    assert_eq!(o["state"], "closed");
});

/// A resident's report of `category`, handled by the grid and verified:
/// 已办结待评价. Returns its id and tracking code.
async fn closed_resident_order(app: &TestApp, l: &Loop, category: &str) -> (i64, String) {
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report(category))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["tracking_code"].as_str().unwrap().to_string();
    let id = app.get("/api/v1/orders?queue=pending_accept", &l.centre).await.body["orders"][0]["id"].as_i64().unwrap();
    act_ok(app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    act_ok(app, &l.worker, id, json!({"action": "sign"})).await;
    act_ok(app, &l.worker, id, json!({"action": "report_back", "result": "已调解，双方签字确认"})).await;
    act_ok(app, &l.centre, id, json!({"action": "verify_pass"})).await;
    (id, code)
}

both_backends!(the_done_list_keeps_what_the_worker_handled, |app| {
    let l = setup(&app).await;
    let worker = browser(&app, "wg").await;
    let (id, _) = closed_resident_order(&app, &l, "0102").await;
    let page = |path: &'static str| {
        let worker = worker.clone();
        let addr = app.addr.clone();
        async move { worker.get(format!("{addr}{path}")).send().await.unwrap().text().await.unwrap() }
    };
    let todo = page("/m/tasks").await;
    assert!(!todo.contains(&format!("/m/orders/{id}\"")), "gone from 待办 after 反馈");
    let done = page("/m/done").await;
    assert!(done.contains(&format!("/m/orders/{id}\"")) && done.contains("小区路灯不亮"), "{done}");
    // Someone else's 已办 is their own.
    let centre = browser(&app, "sq").await;
    let theirs = centre.get(format!("{}/m/done", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(!theirs.contains(&format!("/m/orders/{id}\"")));
});

both_backends!(follow_up_reveals_the_contact_with_a_reason_and_records_the_call, |app| {
    let l = setup(&app).await;
    let (id, code) = closed_resident_order(&app, &l, "0102").await;
    let path = format!("/api/v1/orders/{id}/reporter-contact");

    // The community's 网格长 (回访) sees the full contact with a reason, audited.
    let r = app.post(&path, &l.centre, json!({"reason": "办结后电话回访"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["contact"], "13900001111");
    let audit_id = r.body["audit_id"].as_i64().unwrap();
    let (action, reason): (String, Option<String>) =
        sqlx::query_as("select action, reason from audit_log where id = $1")
            .bind(audit_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((action.as_str(), reason.as_deref()), ("order.contact_unmask", Some("办结后电话回访")));
    // Without a reason: refused. A grid worker, without the permission: refused.
    let r = app.post(&path, &l.centre, json!({"reason": "  "})).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "audit.reason_required"));
    let r = app.post(&path, &l.worker, json!({"reason": "回访"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The 回访 list shows it to the centre, with the reveal; not to the worker.
    let centre = browser(&app, "sq").await;
    let list = centre.get(format!("{}/orders/follow-ups", app.addr)).send().await.unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let html = list.text().await.unwrap();
    assert!(html.contains(&format!("data-order=\"{id}\"")) && html.contains("139****1111"), "{html}");
    assert!(!html.contains("13900001111"), "masked until asked for");
    let worker = browser(&app, "wg").await;
    let denied = worker.get(format!("{}/orders/follow-ups", app.addr)).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    // The page's reveal: with a reason, the number and a call button.
    let token = csrf_of(&html);
    let shown = centre
        .post(format!("{}/orders/{id}/contact", app.addr))
        .header("x-csrf-token", &token)
        .form(&[("reason", "电话回访")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("href=\"tel:13900001111\""), "{shown}");
    let refused = centre
        .post(format!("{}/orders/{id}/contact", app.addr))
        .header("x-csrf-token", &token)
        .form(&[("reason", "")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refused.contains("须填写事由") && !refused.contains("13900001111"), "{refused}");

    // The resident rates it; then a call finds them not satisfied: the
    // timeline shows the call, the resident's rating stays theirs.
    let t = app.call(Method::GET, &format!("/api/v1/portal/orders/{code}"), None, None).await;
    let v = t.body["version"].as_i64().unwrap();
    let e = app
        .call(
            Method::POST,
            &format!("/api/v1/portal/orders/{code}/actions"),
            None,
            Some(json!({"version": v, "action": {"action": "evaluate", "rating": "satisfied"}})),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{:?}", e.body);
    let r = act(&app, &l.centre, id, json!({"action": "follow_up", "outcome": "not_reached"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let html = centre.get(format!("{}/orders/follow-ups", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("data-order=\"{id}\"")), "not reached: still to call");
    let r = act(&app, &l.centre, id, json!({"action": "follow_up", "outcome": "dissatisfied", "note": " "})).await;
    assert_eq!(r.code(), "order.note_required");
    let o = act_ok(
        &app,
        &l.centre,
        id,
        json!({"action": "follow_up", "outcome": "dissatisfied", "note": "调解后邻居仍有噪音"}),
    )
    .await;
    assert_eq!(o["rating"], "satisfied", "a call never replaces the resident's rating");
    let detail = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body;
    let calls: Vec<&Value> =
        detail["events"].as_array().unwrap().iter().filter(|e| e["action"] == "follow_up").collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0]["outcome_label"].as_str(), calls[1]["outcome_label"].as_str()),
        (Some("未接通"), Some("不满意"))
    );
    assert_eq!(calls[1]["reason"], "调解后邻居仍有噪音");
    let page = centre.get(format!("{}/orders/{id}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("不满意") && page.contains("调解后邻居仍有噪音"), "the timeline shows the call");
    let html = centre.get(format!("{}/orders/follow-ups", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains(&format!("data-order=\"{id}\"")), "reached: off the list");
});

both_backends!(a_dissatisfied_call_before_the_rating_sends_the_order_back, |app| {
    let l = setup(&app).await;
    let (id, _) = closed_resident_order(&app, &l, "0102").await;
    // The resident has not rated yet; the caller hears 不满意: 重办 by the same unit.
    let o = act_ok(
        &app,
        &l.centre,
        id,
        json!({"action": "follow_up", "outcome": "dissatisfied", "note": "邻居家仍有噪音，问题未解决"}),
    )
    .await;
    assert_eq!((o["state"].as_str(), o["lead_unit_id"].as_i64()), (Some("handling"), Some(l.grid_unit)), "{o}");
    assert!(o["rating"].is_null(), "the resident's rating is still theirs to give");
    // 重办 counts in the 重办率, the same by SQL and by replay.
    let all = fengqiao::stats::store::Window { lo: "/".into(), hi: "0".into(), from: 0, to: i64::MAX };
    let facts = fengqiao::stats::store::facts(&app.db, &all).await.unwrap();
    assert_eq!(facts, fengqiao::stats::store::replayed_facts(&app.db, &all).await.unwrap());
    act_ok(&app, &l.worker, id, json!({"action": "report_back", "result": "再次上门调解，已加装隔音垫"})).await;
    act_ok(&app, &l.centre, id, json!({"action": "verify_pass"})).await;
    let facts = fengqiao::stats::store::facts(&app.db, &all).await.unwrap();
    let f = facts.iter().find(|f| f.order_id == id).unwrap();
    assert!(f.redone && f.closed, "{f:?}");
    // Done anew, it is on the 回访 list again.
    let centre = browser(&app, "sq").await;
    let html = centre.get(format!("{}/orders/follow-ups", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("data-order=\"{id}\"")), "to be called again after the redo");
});
