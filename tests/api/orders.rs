//! The closed loop of work orders through the HTTP API, on both backends.

use crate::{both_backends, helpers::*};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A community with one grid, and the people who work the loop.
pub struct Loop {
    pub community: i64,
    pub grid: i64,
    pub grid_unit: i64,
    pub community_unit: i64,
    pub dept_unit: i64,
    pub other_grid_unit: i64,
    /// 社区: 受理 / 派单 / 核查
    pub centre: String,
    pub worker: String,
    pub dept: String,
    /// 区: 值班长
    pub lead: String,
}

/// A unit: a centre or grid unit as its node's creation made it (renamed as
/// given), or a new one (a department).
async fn unit(app: &TestApp, kind: &str, code: &str, name: &str, node: i64) -> i64 {
    let own: Option<i64> =
        sqlx::query_scalar("select id from units where node_id = $1 and kind = $2 and kind <> 'department'")
            .bind(node)
            .bind(kind)
            .fetch_optional(&app.db.pool)
            .await
            .unwrap();
    if let Some(id) = own {
        sqlx::query("update units set name = $1 where id = $2")
            .bind(name)
            .bind(id)
            .execute(&app.db.pool)
            .await
            .unwrap();
        return id;
    }
    sqlx::query_scalar("insert into units (kind, code, name, node_id, created_at) values ($1,$2,$3,$4,0) returning id")
        .bind(kind)
        .bind(code)
        .bind(name)
        .bind(node)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn person(app: &TestApp, username: &str, node: i64, unit: i64, roles: &[&str]) -> String {
    let hash = fengqiao::auth::password::hash(PASSWORD.into()).await;
    let mut conn = app.db.pool.acquire().await.unwrap();
    let id = fengqiao::auth::create_user(
        &mut conn,
        fengqiao::auth::NewUser {
            username,
            display_name: username,
            password_hash: &hash,
            node_id: node,
            roles,
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    sqlx::query("update users set unit_id = $1 where id = $2").bind(unit).bind(id).execute(&mut *conn).await.unwrap();
    drop(conn);
    app.login(username, PASSWORD).await
}

pub async fn setup(app: &TestApp) -> Loop {
    let admin = app.admin().await;
    let sub = app
        .create(
            &admin,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "三桥街道", "code": "140107002"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let community = app
        .create(&admin, json!({"parent_id": sub, "kind": "community", "name": "黑龙潭社区", "code": "140107002001"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let grid = app
        .create(&admin, json!({"parent_id": community, "kind": "grid", "name": "第一网格", "polygon": rect(112.60, 37.90, 112.61, 37.91)}))
        .await["id"]
        .as_i64()
        .unwrap();
    let grid2 = app
        .create(&admin, json!({"parent_id": community, "kind": "grid", "name": "第二网格", "polygon": rect(112.61, 37.90, 112.62, 37.91)}))
        .await["id"]
        .as_i64()
        .unwrap();
    let community_unit = unit(app, "centre", "centre:140107002001", "黑龙潭社区综治中心", community).await;
    let grid_unit = unit(app, "grid", "grid:1", "第一网格", grid).await;
    let other_grid_unit = unit(app, "grid", "grid:2", "第二网格", grid2).await;
    let dept_unit = unit(app, "department", "dept:urban_mgmt", "区城市管理局", app.root_id).await;
    let district_unit = unit(app, "centre", "centre:140107", "区综治中心", app.root_id).await;
    Loop {
        community,
        grid,
        grid_unit,
        community_unit,
        dept_unit,
        other_grid_unit,
        centre: person(app, "sq", community, community_unit, &["grid_leader", "acceptor"]).await,
        worker: person(app, "wg", grid, grid_unit, &["grid_worker"]).await,
        dept: person(app, "bm", app.root_id, dept_unit, &["dept_handler"]).await,
        lead: person(app, "zx", app.root_id, district_unit, &["shift_lead", "dispatcher", "acceptor"]).await,
    }
}

pub fn report(category: &str) -> Value {
    json!({"category_code": category, "title": "小区路灯不亮", "description": "3号楼前的两盏路灯一周不亮了,晚上很黑。",
        "address": "黑龙潭社区3号楼前", "lon": 112.605, "lat": 37.905, "name": "刘女士", "contact": "13900001111"})
}

/// Acts on an order as a staff member, returning the response.
pub async fn act(app: &TestApp, token: &str, id: i64, action: Value) -> Resp {
    let version = app.get(&format!("/api/v1/orders/{id}"), token).await.body["order"]["version"].as_i64().unwrap();
    app.post(&format!("/api/v1/orders/{id}/actions"), token, json!({"version": version, "action": action})).await
}

pub async fn act_ok(app: &TestApp, token: &str, id: i64, action: Value) -> Value {
    let r = act(app, token, id, action.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
    r.body
}

/// A staff-reported order id in 待受理.
pub async fn staff_order(app: &TestApp, l: &Loop, category: &str) -> i64 {
    let mut body = report(category);
    body["source"] = json!("patrol");
    let r = app.post("/api/v1/orders", &l.worker, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn to_handling(app: &TestApp, l: &Loop, category: &str, unit: i64, handler: &str) -> i64 {
    let id = staff_order(app, l, category).await;
    act_ok(app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(app, &l.centre, id, json!({"action": "dispatch", "lead_unit": unit})).await;
    act_ok(app, handler, id, json!({"action": "sign"})).await;
    id
}

both_backends!(a_resident_report_goes_round_the_whole_loop, |app| {
    let l = setup(&app).await;
    // 居民提单 on the portal, without logging in.
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report("0303"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["tracking_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 12);
    assert_eq!(r.body["state"], "pending_accept");

    // The community centre sees it in 待受理 and accepts it.
    let queue = app.get("/api/v1/orders?queue=pending_accept", &l.centre).await;
    assert_eq!(queue.body["total"], 1);
    let id = queue.body["orders"][0]["id"].as_i64().unwrap();
    assert_eq!(queue.body["orders"][0]["node_name"], "第一网格", "the point was resolved to its grid");
    let detail = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await;
    let allowed: Vec<&str> =
        detail.body["allowed_actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(allowed.contains(&"accept") && allowed.contains(&"reject"), "{allowed:?}");
    assert!(!allowed.contains(&"sign"), "only allowed actions are offered");
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;

    // The catalogue suggests the community centre for 路灯 (a 城管 matter is
    // suggested to the department); dispatch to the grid with a reason.
    let d = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await;
    assert_eq!(d.body["suggestion"]["functional"], true);
    let refused = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    assert_eq!(refused.code(), "order.functional_push_down", "{:?}", refused.body);
    let o = act_ok(
        &app,
        &l.centre,
        id,
        json!({"action": "dispatch", "lead_unit": l.grid_unit,
        "override_reason": "网格员可现场报修,城管局协办"}),
    )
    .await;
    assert_eq!(o["state"], "pending_sign");
    assert_eq!(o["deadline_kind"], "sign");
    assert!(o["deadline_at"].as_i64().unwrap() > o["updated_at"].as_i64().unwrap());

    // The grid worker signs, handles and reports back.
    let mine = app.get("/api/v1/orders?queue=mine", &l.worker).await;
    assert_eq!(mine.body["total"], 1);
    act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;
    act_ok(&app, &l.worker, id, json!({"action": "handle", "note": "已联系物业电工"})).await;
    let o = act_ok(&app, &l.worker, id, json!({"action": "report_back", "result": "已更换两盏路灯,恢复照明"})).await;
    assert_eq!(o["state"], "pending_verify");

    // The centre verifies on site: 办结.
    let o = act_ok(&app, &l.centre, id, json!({"action": "verify_pass"})).await;
    assert_eq!(o["state"], "pending_evaluation");
    assert!(o["closed_at"].is_i64());

    // The resident follows the code and rates it.
    let t = app.call(Method::GET, &format!("/api/v1/portal/orders/{}", code.to_lowercase()), None, None).await;
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.body["allowed_actions"], json!(["evaluate"]));
    let text = t.body.to_string();
    assert!(text.contains("已更换两盏路灯"), "the result is public");
    assert!(
        !text.contains("网格员可现场报修") && !text.contains("\"wg\"") && !text.contains("13900001111"),
        "no staff-internal notes, staff names or contact numbers: {text}"
    );
    let v = t.body["version"].as_i64().unwrap();
    let e = app
        .call(
            Method::POST,
            &format!("/api/v1/portal/orders/{code}/actions"),
            None,
            Some(json!({"version": v, "action": {"action": "evaluate", "rating": "satisfied", "comment": "很及时"}})),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{:?}", e.body);
    assert_eq!(e.body["state"], "closed");
    assert_eq!(e.body["rating"], "satisfied");

    // Every step is an event; the row is their fold.
    let events: i64 = sqlx::query_scalar("select count(*) from order_events where order_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 8, "create, accept, dispatch, sign, handle, report back, verify, evaluate");
    let replayed: Vec<(String, String)> =
        sqlx::query_as("select actor_role, data from order_events where order_id = $1 and seq > 1 order by seq")
            .bind(id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let steps = replayed
        .into_iter()
        .map(|(role, data)| (serde_json::from_value(json!(role)).unwrap(), serde_json::from_str(&data).unwrap()));
    let order = fengqiao::orders::machine::replay(fengqiao::orders::machine::Level::Community, steps).unwrap();
    assert_eq!(order.state, fengqiao::orders::machine::State::Closed);
});

both_backends!(return_and_reassign, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0306").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.dept_unit})).await;
    let o =
        act_ok(&app, &l.dept, id, json!({"action": "return_order", "reason": "不属于本局职责,应由社区协调物业处理"}))
            .await;
    assert_eq!(o["state"], "return_requested");
    let o = act_ok(&app, &l.centre, id, json!({"action": "approve_return", "reassign_to": l.community_unit})).await;
    assert_eq!(o["state"], "pending_sign", "{o}");
    assert_eq!(o["lead_unit_id"], l.community_unit);
    // The department no longer sees it in its queue.
    assert_eq!(app.get("/api/v1/orders?queue=mine", &l.dept).await.body["total"], 0);
});

both_backends!(extension_moves_the_deadline_by_working_days, |app| {
    let l = setup(&app).await;
    let id = to_handling(&app, &l, "0309", l.grid_unit, &l.worker).await;
    let before =
        app.get(&format!("/api/v1/orders/{id}"), &l.worker).await.body["order"]["deadline_at"].as_i64().unwrap();
    let empty = act(&app, &l.worker, id, json!({"action": "request_extension", "days": 2, "reason": "  "})).await;
    assert_eq!(empty.code(), "order.reason_required");
    act_ok(&app, &l.worker, id, json!({"action": "request_extension", "days": 2, "reason": "需等待配件到货"})).await;
    let o = act_ok(&app, &l.centre, id, json!({"action": "approve_extension"})).await;
    let after = o["deadline_at"].as_i64().unwrap();
    let clock = fengqiao::kernel::clock::Clock::builtin();
    let to = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap();
    assert_eq!(clock.working_days_between(to(before), to(after)), 2, "two working days later");
});

both_backends!(rework_then_reopen_then_supervision, |app| {
    let l = setup(&app).await;
    let id = to_handling(&app, &l, "0309", l.grid_unit, &l.worker).await;
    act_ok(&app, &l.worker, id, json!({"action": "report_back", "result": "已处理"})).await;
    let o = act_ok(&app, &l.centre, id, json!({"action": "verify_fail", "reason": "现场核查未修复"})).await;
    assert_eq!(o["state"], "handling", "返工");
    act_ok(&app, &l.worker, id, json!({"action": "report_back", "result": "已彻底修复"})).await;
    act_ok(&app, &l.centre, id, json!({"action": "verify_pass"})).await;
    let code: String = sqlx::query_scalar("select tracking_code from orders where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let rate = |v: i64| json!({"version": v, "action": {"action": "evaluate", "rating": "dissatisfied", "comment": "还是不亮"}});
    let v = app.call(Method::GET, &format!("/api/v1/portal/orders/{code}"), None, None).await.body["version"]
        .as_i64()
        .unwrap();
    let r = app.call(Method::POST, &format!("/api/v1/portal/orders/{code}/actions"), None, Some(rate(v))).await;
    assert_eq!(r.body["state"], "handling", "重办 once");
    act_ok(&app, &l.worker, id, json!({"action": "report_back", "result": "更换线路"})).await;
    act_ok(&app, &l.centre, id, json!({"action": "verify_pass"})).await;
    let v = app.call(Method::GET, &format!("/api/v1/portal/orders/{code}"), None, None).await.body["version"]
        .as_i64()
        .unwrap();
    let r = app.call(Method::POST, &format!("/api/v1/portal/orders/{code}/actions"), None, Some(rate(v))).await;
    assert_eq!(r.body["state"], "supervision", "then to supervision");
    assert_eq!(app.get("/api/v1/orders?queue=supervision", &l.lead).await.body["total"], 1);

    // The kept queue counts equal a recount from the orders.
    let snapshot = || async {
        sqlx::query_as::<_, (i64, String, i64)>(
            "select node_id, state, n from order_counts where n <> 0 order by node_id, state",
        )
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
    };
    let kept = snapshot().await;
    fengqiao::orders::store::rebuild_counts(&app.db).await.unwrap();
    assert_eq!(kept, snapshot().await);
});

both_backends!(overdue_orders_escalate_once, |app| {
    let l = setup(&app).await;
    let id = to_handling(&app, &l, "0309", l.grid_unit, &l.worker).await;
    sqlx::query("update orders set deadline_at = $1 where id = $2")
        .bind(fengqiao::platform::db::now_ms() - 1000)
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let rules = fengqiao::orders::timers::Rules { escalate_overdue: true };
    // Two nodes polling at the same moment: the deadline fires once.
    let (a, b) = tokio::join!(
        fengqiao::orders::timers::tick(&app.state_for_timers, rules),
        fengqiao::orders::timers::tick(&app.state_for_timers, rules)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 2, "mark_overdue + escalate, once");
    assert_eq!(fengqiao::orders::timers::tick(&app.state_for_timers, rules).await.unwrap(), 0);
    let o = app.get(&format!("/api/v1/orders/{id}"), &l.lead).await;
    assert_eq!(o.body["order"]["state"], "pending_dispatch");
    assert_eq!(o.body["order"]["level"], "subdistrict");
    let actions: Vec<String> = sqlx::query_scalar("select action from order_events where order_id = $1 order by seq")
        .bind(id)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(actions.iter().filter(|a| *a == "mark_overdue").count(), 1);
    let notices: i64 =
        sqlx::query_scalar("select count(*) from order_notices where order_id = $1 and kind = 'overdue'")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(notices, 1, "the overdue raised one notice");
});

both_backends!(two_people_acting_at_once_one_wins, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    let v = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body["order"]["version"].as_i64().unwrap();
    let accept = json!({"version": v, "action": {"action": "accept"}});
    let reject = json!({"version": v, "action": {"action": "reject", "reason": "重复反映"}});
    let path = format!("/api/v1/orders/{id}/actions");
    let (a, b) = tokio::join!(app.post(&path, &l.centre, accept), app.post(&path, &l.lead, reject));
    let statuses = [a.status, b.status];
    assert!(statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::CONFLICT), "{statuses:?}");
    let loser = if a.status == StatusCode::CONFLICT { &a } else { &b };
    assert_eq!(loser.code(), "order.version_conflict");
    assert!(loser.body["error"]["message"].as_str().unwrap().contains("于"), "names what changed: {:?}", loser.body);
    let events: i64 = sqlx::query_scalar("select count(*) from order_events where order_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 2, "exactly one of the two actions was recorded");
});

both_backends!(orders_are_scoped_and_validated, |app| {
    let l = setup(&app).await;
    let before = app.count("orders").await;
    let mut bad = report("0303");
    bad["lon"] = json!(112.9);
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(bad)).await;
    assert_eq!(r.code(), "order.outside_area");
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report("9999"))).await;
    assert_eq!(r.code(), "order.category_unknown");
    let mut empty = report("0303");
    empty["title"] = json!(" ");
    assert_eq!(
        app.call(Method::POST, "/api/v1/portal/orders", None, Some(empty)).await.body["error"]["field"],
        "title"
    );
    assert_eq!(app.count("orders").await, before, "rejected reports store nothing");

    let id = staff_order(&app, &l, "0303").await;
    // The other grid's worker is outside the order's place: it is "not found".
    let other = person(&app, "wg2", l.grid + 1, l.other_grid_unit, &["grid_worker"]).await;
    let r = app.get(&format!("/api/v1/orders/{id}"), &other).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A worker may not accept.
    let r = act(&app, &l.worker, id, json!({"action": "accept"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/portal/orders/NOSUCHCODE12", "x").await.status, StatusCode::NOT_FOUND);
    let counts = app.get("/api/v1/orders/counts", &l.centre).await;
    let pending = counts.body.as_array().unwrap().iter().find(|c| c["queue"] == "pending_accept").unwrap();
    assert_eq!(pending["count"], 1);
    let _ = l.community;
});

both_backends!(order_writes_are_in_the_audit_chain, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0101").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    // A stale version changes nothing, in the order or the log.
    let before: i64 = sqlx::query_scalar("select count(*) from audit_log").fetch_one(&app.db.pool).await.unwrap();
    let stale = app
        .post(&format!("/api/v1/orders/{id}/actions"), &l.centre, json!({"version": 1, "action": {"action": "accept"}}))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let after: i64 = sqlx::query_scalar("select count(*) from audit_log").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(before, after);
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "select action, actor_username, client_addr, detail from audit_log where object_type = 'order' and object_id = $1 order by id",
    )
    .bind(id.to_string())
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("order.create", "wg"));
    assert_eq!((rows[1].0.as_str(), rows[1].1.as_str()), ("order.act", "sq"));
    assert_eq!(rows[1].2.as_deref(), Some("127.0.0.1"));
    assert!(rows[1].3.contains("\"action\":\"accept\"") && rows[1].3.contains("pending_dispatch"), "{}", rows[1].3);
    // Residents' reports and the deadline timer are recorded too, and the chain holds.
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report("0101"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let resident: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action = 'order.create' and actor_username = 'resident'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(resident, 1);
    assert!(fengqiao::audit::verify(&app.db).await.unwrap().ok());
});

both_backends!(concurrent_reports_and_actions_all_commit_with_their_audit_entries, |app| {
    // Creation and actions lock the same rows (the district's queue counts)
    // and the audit chain's head: under concurrency none may deadlock.
    let l = setup(&app).await;
    let mut tasks = vec![];
    for i in 0..12 {
        let (addr, worker, centre) = (app.addr.clone(), l.worker.clone(), l.centre.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut body = report("0101");
            body["source"] = json!("patrol");
            body["title"] = json!(format!("并发上报{i}"));
            let created: Value = client
                .post(format!("{addr}/api/v1/orders"))
                .bearer_auth(&worker)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = created["id"].as_i64().or(created["order"]["id"].as_i64()).expect("created");
            let r = client
                .post(format!("{addr}/api/v1/orders/{id}/actions"))
                .bearer_auth(&centre)
                .json(&json!({"version": 1, "action": {"action": "accept"}}))
                .send()
                .await
                .unwrap();
            r.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let n: i64 = sqlx::query_scalar("select count(*) from audit_log where action in ('order.create', 'order.act')")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 24);
    assert!(fengqiao::audit::verify(&app.db).await.unwrap().ok());
});

// An administrator edits a category's time limits and owner (派单目录): new deadlines follow the
// new limits at once, bad input changes nothing, and the edit is audited.
both_backends!(categories_are_edited_by_administrators, |app| {
    let l = setup(&app).await;
    let admin = app.admin().await;
    let limits = |handle: Value| {
        json!({"name": "小区公共设施维修", "owner_unit": null, "sign_limit": {"unit": "working_hours", "amount": 2},
            "handle_limit": handle, "urgent_handle_limit": {"unit": "working_days", "amount": 1},
            "evaluate_limit": {"unit": "working_days", "amount": 3}})
    };
    let put = |token: String, body: Value| {
        let app = &app;
        async move { app.call(Method::PUT, "/api/v1/categories/0309", Some(&token), Some(body)).await }
    };
    let before = app.call(Method::GET, "/api/v1/categories", None, None).await.body;
    let find = |list: &Value| list.as_array().unwrap().iter().find(|c| c["code"] == "0309").unwrap().clone();
    assert_eq!(
        find(&before)["handle_limit"],
        json!({"unit": "working_days", "amount": 7}),
        "seeded from the standards"
    );

    // Refused: no permission, a zero limit, an unknown department, an empty name, an unknown code.
    assert_eq!(
        put(l.centre.clone(), limits(json!({"unit": "working_days", "amount": 2}))).await.status,
        StatusCode::FORBIDDEN
    );
    let r = put(admin.clone(), limits(json!({"unit": "working_days", "amount": 0}))).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("handle_limit")),
        "{:?}",
        r.body
    );
    let mut body = limits(json!({"unit": "working_days", "amount": 2}));
    body["owner_unit"] = json!("no_such_dept");
    let r = put(admin.clone(), body).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("owner_unit")));
    let mut body = limits(json!({"unit": "working_days", "amount": 2}));
    body["name"] = json!("  ");
    assert_eq!(put(admin.clone(), body).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/categories/9999",
            Some(&admin),
            Some(limits(json!({"unit": "working_days", "amount": 2}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let after_refusals = app.call(Method::GET, "/api/v1/categories", None, None).await.body;
    assert_eq!(find(&after_refusals), find(&before), "a refused edit changes nothing");

    // Accepted: 12 calendar hours to handle, owned by the urban management department.
    let mut body = limits(json!({"unit": "calendar_hours", "amount": 12}));
    body["owner_unit"] = json!("urban_mgmt");
    let r = put(admin.clone(), body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["owner_unit"], "urban_mgmt");
    let listed = find(&app.call(Method::GET, "/api/v1/categories", None, None).await.body);
    assert_eq!(listed["handle_limit"], json!({"unit": "calendar_hours", "amount": 12}));

    // The next dispatch follows the new limit: signed, the handling clock runs 12 wall-clock hours.
    let id = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    // Now a department's matter: pushing it down to a grid needs a reason.
    let r = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    act_ok(
        &app,
        &l.centre,
        id,
        json!({"action": "dispatch", "lead_unit": l.grid_unit, "override_reason": "网格可自行处置"}),
    )
    .await;
    let o = act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;
    let (start, due) = (o["updated_at"].as_i64().unwrap(), o["deadline_at"].as_i64().unwrap());
    assert_eq!(due - start, 12 * 3600 * 1000, "{o}");

    let audit = app.get("/api/v1/audit?action=category.update", &admin).await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    let entries = audit.body["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "only the accepted edit is audited: {entries:?}");
});

both_backends!(dispatch_catalogue_suggests_lead_and_assisting_units, |app| {
    let l = setup(&app).await;
    let admin = app.admin().await;
    let sub: i64 = sqlx::query_scalar("select parent_id from nodes where id = $1")
        .bind(l.community)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let sub_centre = unit(&app, "centre", "centre:140107002", "三桥街道综治中心", sub).await;
    let other_sub = app
        .create(
            &admin,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "巨轮街道", "code": "140107001"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let other_centre = unit(&app, "centre", "centre:140107001", "巨轮街道综治中心", other_sub).await;
    let housing = unit(&app, "department", "dept:housing", "区住房和城乡建设局", app.root_id).await;
    // A rule's address is its region and category; the body the units.
    let put = |token: String, body: Value| {
        let app = &app;
        let path =
            format!("/api/v1/nodes/{}/dispatch-rules/{}", body["node_id"], body["category_code"].as_str().unwrap());
        async move { app.call(Method::PUT, &path, Some(&token), Some(body)).await }
    };
    let suggestion = |id: i64| {
        let (app, token) = (&app, l.centre.clone());
        async move { app.get(&format!("/api/v1/orders/{id}"), &token).await.body["suggestion"].clone() }
    };
    let ids = |v: &Value| v.as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect::<Vec<_>>();

    // No rule: the community handles its own matters, a department its own.
    let property = staff_order(&app, &l, "0202").await;
    let s = suggestion(property).await;
    assert_eq!((s["lead"]["id"].as_i64(), s["rule_id"].is_null()), (Some(l.community_unit), true), "{s}");
    assert!(s["assisting"].as_array().unwrap().is_empty());

    // Only editors of the catalogue change it; dispatchers read it; others neither.
    let rule = |category: &str, node: i64, lead: Option<i64>, assisting: Vec<i64>, local: Vec<&str>| {
        json!({"category_code": category, "node_id": node, "lead_unit_id": lead, "assisting_unit_ids": assisting,
            "assist_local": local, "note": "联合处置"})
    };
    let good = rule("0202", app.root_id, None, vec![housing], vec!["subdistrict"]);
    assert_eq!(put(l.lead.clone(), good.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/dispatch-rules", &l.lead).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/dispatch-rules", &l.worker).await.status, StatusCode::FORBIDDEN);

    // Refused: an unknown category or region is not found; the rest name their field. Nothing stored.
    assert_eq!(put(admin.clone(), rule("9999", app.root_id, None, vec![], vec![])).await.status, StatusCode::NOT_FOUND);
    assert_eq!(put(admin.clone(), rule("0202", 999_999, None, vec![], vec![])).await.status, StatusCode::NOT_FOUND);
    let refused = [
        (rule("0202", l.grid, None, vec![], vec![]), "node_id", "dispatch.node_level"),
        (rule("0202", app.root_id, Some(999_999), vec![], vec![]), "lead_unit_id", "dispatch.unit_unknown"),
        (
            rule("0202", app.root_id, Some(housing), vec![housing], vec![]),
            "assisting_unit_ids",
            "order.lead_also_assisting",
        ),
        (
            rule("0202", app.root_id, Some(housing), vec![sub_centre, sub_centre], vec![]),
            "assisting_unit_ids",
            "order.duplicate_assisting",
        ),
        (rule("0202", app.root_id, None, vec![], vec!["community"]), "assist_local", "order.lead_also_assisting"),
        (
            rule("0202", sub, Some(sub_centre), vec![other_centre], vec![]),
            "assisting_unit_ids",
            "dispatch.unit_out_of_region",
        ),
        // 国办函〔2025〕66号: a department's matter does not default to a community or a grid.
        (rule("0301", app.root_id, None, vec![], vec![]), "lead_unit_id", "dispatch.functional_push_down"),
        (rule("0301", l.community, Some(l.grid_unit), vec![], vec![]), "lead_unit_id", "dispatch.functional_push_down"),
    ];
    for (body, field, code) in refused {
        let r = put(admin.clone(), body.clone()).await;
        assert_eq!(
            (r.status, r.body["error"]["field"].as_str(), r.body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field), Some(code)),
            "{body}: {:?}",
            r.body
        );
    }
    assert_eq!(app.count("dispatch_rules").await, 0, "a refused rule stores nothing");

    // District-wide: 物业服务 led by the local community, assisted by the housing bureau and the
    // local subdistrict.
    let r = put(admin.clone(), good.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let district_rule = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["assisting_unit_names"], json!(["区住房和城乡建设局"]));
    let s = suggestion(property).await;
    assert_eq!(s["lead"]["id"].as_i64(), Some(l.community_unit), "{s}");
    assert_eq!(ids(&s["assisting"]), vec![housing, sub_centre]);
    assert_eq!(s["rule_id"].as_i64(), Some(district_rule));
    // Saving the same category and region again replaces the rule.
    let r = put(admin.clone(), rule("0202", app.root_id, None, vec![housing], vec![])).await;
    assert_eq!((r.status, r.body["id"].as_i64()), (StatusCode::OK, Some(district_rule)));
    assert_eq!(app.count("dispatch_rules").await, 1);
    assert_eq!(ids(&suggestion(property).await["assisting"]), vec![housing]);

    // A subdistrict's rule on the whole class 社情民意 beats the district's, being nearer; a
    // community's rule on the exact category nearer still.
    let r = put(admin.clone(), rule("02", sub, Some(sub_centre), vec![], vec![])).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(suggestion(property).await["lead"]["id"].as_i64(), Some(sub_centre));
    let r = put(admin.clone(), rule("0202", l.community, Some(l.grid_unit), vec![housing], vec!["community"])).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let community_rule = r.body["id"].as_i64().unwrap();
    let s = suggestion(property).await;
    assert_eq!((s["lead"]["id"].as_i64(), ids(&s["assisting"])), (Some(l.grid_unit), vec![housing, l.community_unit]));

    // A class rule that would push a department's matter down is passed over for that matter.
    let r = put(admin.clone(), rule("03", l.community, None, vec![], vec!["subdistrict"])).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let street = staff_order(&app, &l, "0301").await;
    let s = suggestion(street).await;
    assert_eq!(
        (s["lead"]["id"].as_i64(), s["rule_id"].is_null(), s["functional"].as_bool()),
        (Some(l.dept_unit), true, Some(true))
    );
    let repair = staff_order(&app, &l, "0309").await;
    assert_eq!(suggestion(repair).await["lead"]["id"].as_i64(), Some(l.community_unit));

    // A dispatcher sends the order where the catalogue says, assisting units included.
    act_ok(&app, &l.centre, property, json!({"action": "accept"})).await;
    let version = app.get(&format!("/api/v1/orders/{property}"), &l.lead).await.body["order"]["version"].clone();
    let r = app
        .post(
            "/api/v1/orders/bulk-dispatch",
            &l.lead,
            json!({"orders": [{"id": property, "version": version}], "lead_unit": null}),
        )
        .await;
    assert_eq!((r.status, r.body[0]["ok"].as_bool()), (StatusCode::OK, Some(true)), "{:?}", r.body);
    let d = app.get(&format!("/api/v1/orders/{property}"), &l.centre).await.body;
    assert_eq!(d["order"]["lead_unit_id"].as_i64(), Some(l.grid_unit));
    assert_eq!(ids(&d["assisting_units"]), vec![housing, l.community_unit], "{d}");

    // The list shows the rules of the caller's area, nearest region last.
    let list = app.get("/api/v1/dispatch-rules", &admin).await.body;
    let regions: Vec<i64> = list.as_array().unwrap().iter().map(|r| r["node_id"].as_i64().unwrap()).collect();
    assert_eq!(regions, vec![app.root_id, sub, l.community, l.community], "{list}");

    // Removing the community's rule brings the subdistrict's back; removing it again changes nothing.
    let del = |token: String, node: i64| {
        let app = &app;
        let path = format!("/api/v1/nodes/{node}/dispatch-rules/0202");
        async move { app.call(Method::DELETE, &path, Some(&token), None).await.status }
    };
    assert_eq!(del(l.lead.clone(), l.community).await, StatusCode::FORBIDDEN);
    assert_eq!(del(admin.clone(), l.community).await, StatusCode::NO_CONTENT);
    assert_eq!(del(admin.clone(), l.community).await, StatusCode::NO_CONTENT);
    assert_eq!(del(admin.clone(), 999_999).await, StatusCode::NOT_FOUND);
    assert!(!list_has(&app.get("/api/v1/dispatch-rules", &admin).await.body, community_rule));
    let later = staff_order(&app, &l, "0202").await;
    assert_eq!(suggestion(later).await["lead"]["id"].as_i64(), Some(sub_centre));

    let audit = |action: &'static str| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let r = app.get(&format!("/api/v1/audit?action={action}"), &admin).await;
            r.body["entries"].as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!(audit("dispatch_rule.save").await, 5, "only accepted saves are audited");
    assert_eq!(audit("dispatch_rule.delete").await, 1, "removing an absent rule records nothing");
});

fn list_has(list: &Value, id: i64) -> bool {
    list.as_array().unwrap().iter().any(|r| r["id"].as_i64() == Some(id))
}

both_backends!(departments_are_added_renamed_and_retired, |app| {
    let l = setup(&app).await;
    let admin = app.admin().await;
    let add = |token: String, body: Value| {
        let app = &app;
        async move { app.post("/api/v1/departments", &token, body).await }
    };
    let patch = |token: String, id: i64, body: Value| {
        let app = &app;
        async move { app.call(Method::PATCH, &format!("/api/v1/units/{id}"), Some(&token), Some(body)).await }
    };
    let before = app.count("units").await;
    assert_eq!(
        add(l.centre.clone(), json!({"key": "education", "name": "区教育局"})).await.status,
        StatusCode::FORBIDDEN
    );
    for (body, status, code) in [
        (json!({"key": "Edu-1", "name": "区教育局"}), StatusCode::UNPROCESSABLE_ENTITY, "department.bad_key"),
        (json!({"key": "education", "name": " "}), StatusCode::UNPROCESSABLE_ENTITY, "text.empty"),
        (json!({"key": "urban_mgmt", "name": "又一个城管局"}), StatusCode::CONFLICT, "department.key_taken"),
    ] {
        let r = add(admin.clone(), body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {:?}", r.body);
    }
    assert_eq!(app.count("units").await, before, "a refused department adds nothing");

    let r = add(admin.clone(), json!({"key": "education", "name": "区教育局"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let edu = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["code"], "dept:education");
    // At once a category can belong to it, and the catalogue name it.
    let category = json!({"name": "小区公共设施维修", "owner_unit": "education",
        "sign_limit": {"unit": "working_hours", "amount": 2}, "handle_limit": {"unit": "working_days", "amount": 5},
        "urgent_handle_limit": {"unit": "working_days", "amount": 1}, "evaluate_limit": {"unit": "working_days", "amount": 3}});
    let r = app.call(Method::PUT, "/api/v1/categories/0309", Some(&admin), Some(category.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let id = staff_order(&app, &l, "0309").await;
    let d = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body;
    assert_eq!(d["suggestion"]["lead"]["id"].as_i64(), Some(edu), "{d}");

    // Renamed; not retired while a category belongs to it; then retired and no longer offered.
    let r = patch(admin.clone(), edu, json!({"name": "区教育局(体育局)"})).await;
    assert_eq!((r.status, r.body["name"].as_str()), (StatusCode::OK, Some("区教育局(体育局)")), "{:?}", r.body);
    let r = patch(admin.clone(), edu, json!({"active": false})).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "unit.owns_categories"), "{:?}", r.body);
    let mut back = category.clone();
    back["owner_unit"] = json!(null);
    assert_eq!(app.call(Method::PUT, "/api/v1/categories/0309", Some(&admin), Some(back)).await.status, StatusCode::OK);
    let r = patch(admin.clone(), edu, json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let offered = app.get("/api/v1/units", &l.centre).await.body.to_string();
    assert!(!offered.contains("区教育局"), "{offered}");
    let r = act(&app, &l.centre, id, json!({"action": "accept"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": edu})).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "order.unit_unknown"), "{:?}", r.body);
    assert_eq!(patch(admin.clone(), 987_654, json!({"active": true})).await.status, StatusCode::NOT_FOUND);

    let audit = app.get("/api/v1/audit?object_type=unit", &admin).await;
    let entries = audit.body["entries"].as_array().map_or(0, Vec::len);
    assert_eq!(entries, 3, "one creation and two accepted changes: {:?}", audit.body);
});

both_backends!(assisting_units_find_and_open_the_orders_they_assist, |app| {
    let l = setup(&app).await;
    let grid2: i64 = sqlx::query_scalar("select node_id from units where id = $1")
        .bind(l.other_grid_unit)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let wg2 = person(&app, "wg2", grid2, l.other_grid_unit, &["grid_worker"]).await;
    let id = staff_order(&app, &l, "0309").await;
    let path = format!("/api/v1/orders/{id}");
    assert_eq!(app.get(&path, &wg2).await.status, StatusCode::NOT_FOUND, "another grid's order is out of reach");
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(
        &app,
        &l.centre,
        id,
        json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [l.other_grid_unit, l.dept_unit]}),
    )
    .await;

    // The assisting grid's worker opens it and finds it under 协办, as does the department.
    let d = app.get(&path, &wg2).await;
    assert_eq!(d.status, StatusCode::OK, "{:?}", d.body);
    let names: Vec<&str> =
        d.body["assisting_units"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["第二网格", "区城市管理局"]);
    for token in [&wg2, &l.dept] {
        let list = app.get("/api/v1/orders?queue=assisting", token).await.body;
        assert_eq!(list["total"], 1, "{list}");
        assert_eq!(list["orders"][0]["id"].as_i64(), Some(id));
        let counts = app.get("/api/v1/orders/counts", token).await.body;
        let n = counts.as_array().unwrap().iter().find(|c| c["queue"] == "assisting").unwrap()["count"].clone();
        assert_eq!(n, 1, "{counts}");
    }
    // Not the lead's: it is the grid's own work.
    assert_eq!(app.get("/api/v1/orders?queue=assisting", &l.worker).await.body["total"], 0);
    // An assisting unit does not act for the lead.
    assert_eq!(act(&app, &wg2, id, json!({"action": "sign"})).await.status, StatusCode::FORBIDDEN);

    // Handled and reported back: off the 协办 list, still open to read.
    act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;
    act_ok(&app, &l.worker, id, json!({"action": "report_back", "result": "已联系物业修好"})).await;
    assert_eq!(app.get("/api/v1/orders?queue=assisting", &wg2).await.body["total"], 0);
    assert_eq!(app.get(&path, &wg2).await.status, StatusCode::OK);
    assert_eq!(app.count("order_assists").await, 2);
});

both_backends!(the_map_shows_where_the_open_orders_of_the_area_are, |app| {
    let l = setup(&app).await;
    let open = staff_order(&app, &l, "0303").await;
    let rejected = staff_order(&app, &l, "0303").await;
    act_ok(&app, &l.centre, rejected, json!({"action": "reject", "reason": "重复反映"})).await;
    // Without a point: placed by its grid, not drawn.
    let mut body = report("0303");
    body["source"] = json!("patrol");
    body.as_object_mut().unwrap().remove("lon");
    body.as_object_mut().unwrap().remove("lat");
    body["node_id"] = json!(l.grid);
    let r = app.post("/api/v1/orders", &l.worker, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // In the community's second grid: the community sees it, grid 1's worker does not.
    let mut body = report("0303");
    body["source"] = json!("patrol");
    body["lon"] = json!(112.615);
    let other = app.post("/api/v1/orders", &l.lead, body).await;
    assert_eq!(other.status, StatusCode::CREATED, "{:?}", other.body);
    let other = other.body["id"].as_i64().unwrap();

    let ids = |v: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> =
            v["features"].as_array().unwrap().iter().map(|f| f["properties"]["id"].as_i64().unwrap()).collect();
        ids.sort();
        ids
    };
    let m = app.get("/api/v1/orders/map", &l.centre).await;
    assert_eq!(m.status, StatusCode::OK, "{:?}", m.body);
    assert_eq!(m.body["type"], "FeatureCollection");
    assert_eq!(m.body["truncated"], false);
    assert_eq!(ids(&m.body), vec![open, other], "open orders with a point, not the rejected one nor the unplaced one");
    let newest_first: Vec<i64> =
        m.body["features"].as_array().unwrap().iter().map(|f| f["properties"]["id"].as_i64().unwrap()).collect();
    assert_eq!(newest_first, vec![other, open], "newest first");
    let f = m.body["features"].as_array().unwrap().iter().find(|f| f["properties"]["id"] == open).unwrap();
    assert_eq!(f["geometry"], json!({"type": "Point", "coordinates": [112.605, 37.905]}));
    assert_eq!(f["properties"]["state"], "pending_accept");
    assert_eq!(f["properties"]["state_label"], "待受理");
    assert_eq!(f["properties"]["warning"], "normal");
    assert_eq!(f["properties"]["node_name"], "第一网格");
    assert!(f["properties"].get("reporter_contact_masked").is_none() && !m.body.to_string().contains("13900001111"));

    assert_eq!(ids(&app.get("/api/v1/orders/map", &l.worker).await.body), vec![open], "a grid sees its grid");
    assert_eq!(ids(&app.get("/api/v1/orders/map?queue=pending_accept", &l.centre).await.body), vec![open, other]);
    assert_eq!(ids(&app.get("/api/v1/orders/map?queue=overdue", &l.centre).await.body), Vec::<i64>::new());
    assert_eq!(ids(&app.get("/api/v1/orders/map?category=01", &l.centre).await.body), Vec::<i64>::new());
    let bad = app.get("/api/v1/orders/map?queue=everything", &l.centre).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.code(), "order.queue_unknown");
    let anonymous = app.call(Method::GET, "/api/v1/orders/map", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
});

both_backends!(an_order_names_its_category_place_and_unit_as_they_are_now, |app| {
    let l = setup(&app).await;
    let admin = app.admin().await;
    let id = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    let o = act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.dept_unit})).await;
    let dept_name: String = sqlx::query_scalar("select name from units where id = $1")
        .bind(l.dept_unit)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(o["lead_unit_name"].as_str(), Some(dept_name.as_str()), "{o}");
    assert_eq!(o["category_name"], "小区公共设施维修", "{o}");

    // The catalogue, the grid and the unit are renamed …
    let category = json!({"name": "公共设施维修", "sign_limit": {"unit": "working_hours", "amount": 2},
        "handle_limit": {"unit": "working_days", "amount": 5}, "urgent_handle_limit": {"unit": "working_days", "amount": 1},
        "evaluate_limit": {"unit": "working_days", "amount": 3}});
    let r = app.call(Method::PUT, "/api/v1/categories/0309", Some(&admin), Some(category)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let node = format!("/api/v1/nodes/{}", l.grid);
    let version = app.get(&node, &admin).await.body["node"]["version"].clone();
    let r = app.call(Method::PATCH, &node, Some(&admin), Some(json!({"version": version, "name": "第九网格"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let unit = format!("/api/v1/units/{}", l.dept_unit);
    let r = app.call(Method::PATCH, &unit, Some(&admin), Some(json!({"name": "区住建局(新)"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // … and the order says so at once, read and acted on.
    let d = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body;
    let names = |o: &Value| (o["category_name"].clone(), o["node_name"].clone(), o["lead_unit_name"].clone());
    assert_eq!(names(&d["order"]), (json!("公共设施维修"), json!("第九网格"), json!("区住建局(新)")), "{d}");
    let o = act_ok(&app, &l.dept, id, json!({"action": "sign"})).await;
    assert_eq!(names(&o), (json!("公共设施维修"), json!("第九网格"), json!("区住建局(新)")), "{o}");
});

// An order changed by another server (or process) behind this one's back:
// the copy this server kept of it after its last action is never acted on.
both_backends!(an_order_changed_elsewhere_is_not_acted_on_from_an_old_copy, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    let accepted = act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    let v = accepted["version"].as_i64().unwrap();
    // Elsewhere: rejected, one version on.
    let facts: String =
        sqlx::query_scalar("select facts from orders where id = $1").bind(id).fetch_one(&app.db.pool).await.unwrap();
    let mut facts: Value = serde_json::from_str(&facts).unwrap();
    facts["state"] = json!("rejected");
    sqlx::query("update orders set state = 'rejected', facts = $1, version = version + 1 where id = $2")
        .bind(facts.to_string())
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let path = format!("/api/v1/orders/{id}/actions");
    let dispatch = json!({"action": "dispatch", "lead_unit": l.grid_unit});
    // The old version, which the copy matches: the write's guard refuses it.
    let r = app.post(&path, &l.centre, json!({"version": v, "action": dispatch.clone()})).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "order.version_conflict"), "{:?}", r.body);
    // The current version: read afresh, and a rejected order is not dispatched.
    let r = app.post(&path, &l.centre, json!({"version": v + 1, "action": dispatch})).await;
    assert_ne!(r.status, StatusCode::OK, "{:?}", r.body);
    let state: String =
        sqlx::query_scalar("select state from orders where id = $1").bind(id).fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(state, "rejected");
    let events: i64 = sqlx::query_scalar("select count(*) from order_events where order_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 2, "created and accepted only");
});

/// Another subdistrict (巨轮街道) with a community, a grid and its people:
/// out of reach of the people of `setup`'s community.
pub struct Elsewhere {
    pub community: i64,
    pub centre_unit: i64,
    pub grid_unit: i64,
    /// 甲社区: 受理 / 派单
    pub centre: String,
    pub worker: String,
}

pub async fn elsewhere(app: &TestApp) -> Elsewhere {
    let admin = app.admin().await;
    let sub = app
        .create(
            &admin,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "巨轮街道", "code": "140107001"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let community = app
        .create(&admin, json!({"parent_id": sub, "kind": "community", "name": "甲社区", "code": "140107001001"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let grid = app
        .create(&admin, json!({"parent_id": community, "kind": "grid", "name": "甲网格", "polygon": rect(112.70, 37.90, 112.71, 37.91)}))
        .await["id"]
        .as_i64()
        .unwrap();
    let centre_unit = unit(app, "centre", "centre:140107001001", "甲社区综治中心", community).await;
    let grid_unit = unit(app, "grid", "grid:9", "甲网格", grid).await;
    Elsewhere {
        community,
        centre_unit,
        grid_unit,
        centre: person(app, "jsq", community, centre_unit, &["grid_leader", "acceptor"]).await,
        worker: person(app, "jwg", grid, grid_unit, &["grid_worker"]).await,
    }
}

/// An order reported by the other subdistrict's grid worker, in 待受理.
async fn order_elsewhere(app: &TestApp, e: &Elsewhere) -> i64 {
    let mut body = report("0309");
    body["source"] = json!("patrol");
    body["lon"] = json!(112.705);
    let r = app.post("/api/v1/orders", &e.worker, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// Status, code and message of an answer: two answers that agree here tell
/// the caller nothing more about one id than about the other.
fn answer(r: &Resp) -> (StatusCode, Value) {
    (r.status, r.body["error"].clone())
}

const NO_SUCH_ID: i64 = 987_654_321;

both_backends!(a_community_centre_cannot_hand_its_order_to_another_subdistricts_units, |app| {
    let l = setup(&app).await;
    let e = elsewhere(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;

    // The centre sends the order to the other subdistrict's grid, as lead or
    // as an assisting unit: refused just as an id that does not exist is.
    let missing = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": NO_SUCH_ID})).await;
    assert_eq!(missing.code(), "order.unit_unknown");
    for (lead, other) in [(e.grid_unit, NO_SUCH_ID), (e.centre_unit, NO_SUCH_ID)] {
        let r = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": lead})).await;
        assert_eq!(answer(&r), answer(&missing), "lead {lead} answers like {other}");
    }
    let missing_assist =
        act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [NO_SUCH_ID]}))
            .await;
    assert_eq!(missing_assist.code(), "order.unit_unknown");
    let r =
        act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [e.grid_unit]}))
            .await;
    assert_eq!(answer(&r), answer(&missing_assist));

    // 批量派单 is held to the same.
    let version = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body["order"]["version"].clone();
    let bulk = app
        .post(
            "/api/v1/orders/bulk-dispatch",
            &l.centre,
            json!({"orders": [{"id": id, "version": version}], "lead_unit": e.grid_unit}),
        )
        .await;
    assert_eq!(bulk.body[0]["ok"], false, "{:?}", bulk.body);
    assert_eq!(bulk.body[0]["code"], "order.unit_unknown");

    // The other grid's worker still cannot read it, nor find it in their queue.
    assert_eq!(app.get(&format!("/api/v1/orders/{id}"), &e.worker).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/orders?queue=mine", &e.worker).await.body["total"], 0);
    assert_eq!(app.get("/api/v1/orders?queue=assisting", &e.worker).await.body["total"], 0);

    // Its own grid, with the district's department assisting (a level above): fine.
    let o = act_ok(
        &app,
        &l.centre,
        id,
        json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [l.dept_unit]}),
    )
    .await;
    assert_eq!(o["lead_unit_id"], l.grid_unit);
});

both_backends!(a_community_centre_is_offered_only_the_units_it_may_dispatch_to, |app| {
    let l = setup(&app).await;
    let e = elsewhere(&app).await;
    let ids = |v: &Value| -> Vec<i64> { v.as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()).collect() };
    // Its own community: its grids and centre, and the department above.
    let own = ids(&app.get(&format!("/api/v1/units?community={}", l.community), &l.centre).await.body);
    assert!(own.contains(&l.grid_unit) && own.contains(&l.community_unit) && own.contains(&l.dept_unit), "{own:?}");
    // Asking for the other subdistrict's community lists none of its units,
    // the same list as for a community that does not exist.
    let other = app.get(&format!("/api/v1/units?community={}", e.community), &l.centre).await;
    let missing = app.get(&format!("/api/v1/units?community={NO_SUCH_ID}"), &l.centre).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, missing.body);
    let other = ids(&other.body);
    assert!(!other.contains(&e.grid_unit) && !other.contains(&e.centre_unit), "{other:?}");
});

both_backends!(merging_into_an_order_out_of_scope_answers_like_merging_into_none, |app| {
    let l = setup(&app).await;
    let e = elsewhere(&app).await;
    let duplicate = staff_order(&app, &l, "0309").await;
    let theirs_open = order_elsewhere(&app, &e).await;
    let theirs_closed = order_elsewhere(&app, &e).await;
    act_ok(&app, &e.centre, theirs_closed, json!({"action": "reject", "reason": "重复反映"})).await;

    // Probing ids by merging: an open order elsewhere, a closed one
    // elsewhere and no order at all answer the same, and nothing is merged.
    let missing = act(&app, &l.centre, duplicate, json!({"action": "merge", "into": NO_SUCH_ID})).await;
    assert_eq!(missing.code(), "order.merge_target_invalid");
    for into in [theirs_open, theirs_closed] {
        let r = act(&app, &l.centre, duplicate, json!({"action": "merge", "into": into})).await;
        assert_eq!(answer(&r), answer(&missing), "merge into {into}");
    }
    let d = app.get(&format!("/api/v1/orders/{duplicate}"), &l.centre).await;
    assert_eq!(d.body["order"]["state"], "pending_accept");

    // Within the centre's own area, an ended order may say so.
    let ours_closed = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, ours_closed, json!({"action": "reject", "reason": "重复反映"})).await;
    let r = act(&app, &l.centre, duplicate, json!({"action": "merge", "into": ours_closed})).await;
    assert_eq!(r.code(), "order.merge_target_closed");
    let master = staff_order(&app, &l, "0309").await;
    let o = act_ok(&app, &l.centre, duplicate, json!({"action": "merge", "into": master})).await;
    assert_eq!(o["state"], "merged");
});

both_backends!(a_department_handler_at_the_district_reads_only_its_units_orders, |app| {
    let l = setup(&app).await;
    // Three orders of the district: one the department leads, one it
    // assists, one it has nothing to do with, and one not yet dispatched.
    let led = staff_order(&app, &l, "0306").await;
    act_ok(&app, &l.centre, led, json!({"action": "accept"})).await;
    act_ok(&app, &l.centre, led, json!({"action": "dispatch", "lead_unit": l.dept_unit})).await;
    let assisted = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, assisted, json!({"action": "accept"})).await;
    act_ok(
        &app,
        &l.centre,
        assisted,
        json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [l.dept_unit]}),
    )
    .await;
    let unrelated = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, unrelated, json!({"action": "accept"})).await;
    act_ok(&app, &l.centre, unrelated, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    let waiting = staff_order(&app, &l, "0309").await;
    let unrelated_code =
        app.get(&format!("/api/v1/orders/{unrelated}"), &l.lead).await.body["order"]["tracking_code"].clone();
    let unrelated_code = unrelated_code.as_str().unwrap();

    let ids = |v: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = v["orders"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
        ids.sort();
        ids
    };
    // Every list, count, the map, search and each order: only its unit's work.
    let all = app.get("/api/v1/orders?queue=all", &l.dept).await.body;
    assert_eq!(ids(&all), vec![led, assisted], "{all}");
    assert_eq!(all["total"], 2);
    for queue in ["pending_accept", "pending_sign", "overdue"] {
        let list = app.get(&format!("/api/v1/orders?queue={queue}"), &l.dept).await.body;
        let expected: Vec<i64> = if queue == "pending_sign" { vec![led, assisted] } else { vec![] };
        assert_eq!(ids(&list), expected, "{queue}: {list}");
    }
    let search = app.get(&format!("/api/v1/orders?q={unrelated_code}"), &l.dept).await.body;
    assert_eq!(search["total"], 0, "{search}");
    let counts = app.get("/api/v1/orders/counts", &l.dept).await.body;
    let count = |q: &str| counts.as_array().unwrap().iter().find(|c| c["queue"] == q).unwrap()["count"].clone();
    assert_eq!(
        (count("all"), count("pending_accept"), count("pending_sign")),
        (json!(2), json!(0), json!(2)),
        "{counts}"
    );
    let map = app.get("/api/v1/orders/map", &l.dept).await.body;
    let mut on_map: Vec<i64> =
        map["features"].as_array().unwrap().iter().map(|f| f["properties"]["id"].as_i64().unwrap()).collect();
    on_map.sort();
    assert_eq!(on_map, vec![led, assisted]);
    for (id, status) in [
        (led, StatusCode::OK),
        (assisted, StatusCode::OK),
        (unrelated, StatusCode::NOT_FOUND),
        (waiting, StatusCode::NOT_FOUND),
    ] {
        assert_eq!(app.get(&format!("/api/v1/orders/{id}"), &l.dept).await.status, status, "order {id}");
        assert_eq!(app.get(&format!("/api/v1/orders/{id}/attachments"), &l.dept).await.status, status, "order {id}");
    }
    // The district's shift lead, in the same place, still sees the district.
    assert_eq!(app.get("/api/v1/orders?queue=all", &l.lead).await.body["total"], 4);
});
