//! The resident's side of the loop (issue 18): an evaluation is an explicit
//! choice stored as data and shown in every timeline; the report form offers
//! resident categories only and finds the community from a point; published
//! work phones of grid workers.

use crate::{
    both_backends,
    helpers::*,
    orders::{act_ok, report, setup, Loop},
    pages::browser,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A resident's order, dispatched to the first grid and handled: 待评价.
/// Returns (order id, tracking code).
async fn to_evaluation(app: &TestApp, l: &Loop) -> (i64, String) {
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report("0309"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["tracking_code"].as_str().unwrap().to_string();
    let id: i64 = sqlx::query_scalar("select id from orders where tracking_code = $1")
        .bind(&code)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    act_ok(app, &l.centre, id, json!({"action": "accept"})).await;
    act_ok(
        app,
        &l.centre,
        id,
        json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [l.community_unit]}),
    )
    .await;
    act_ok(app, &l.worker, id, json!({"action": "sign"})).await;
    // The resident reads who handles it and by when, without staff names.
    let t = public(app, &code).await;
    let progress = t["progress"].as_str().unwrap();
    assert!(progress.starts_with("已由第一网格受理，承诺") && progress.ends_with("前办结。"), "{progress}");
    let steps = t["timeline"].to_string();
    assert!(steps.contains("主办：第一网格；协办：黑龙潭社区综治中心"), "{steps}");
    assert!(!steps.contains("\"sq\"") && !steps.contains("\"wg\""), "no staff names: {steps}");
    act_ok(app, &l.worker, id, json!({"action": "report_back", "result": "已更换损坏的健身器材"})).await;
    act_ok(app, &l.centre, id, json!({"action": "verify_pass"})).await;
    (id, code)
}

async fn public(app: &TestApp, code: &str) -> Value {
    let r = app.call(Method::GET, &format!("/api/v1/portal/orders/{code}"), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn rate(app: &TestApp, code: &str, action: Value) -> Resp {
    let version = public(app, code).await["version"].as_i64().unwrap();
    let body = json!({"version": version, "action": action});
    app.call(Method::POST, &format!("/api/v1/portal/orders/{code}/actions"), None, Some(body)).await
}

both_backends!(an_evaluation_needs_a_choice_and_its_rating_shows_in_every_timeline, |app| {
    let l = setup(&app).await;
    let (id, code) = to_evaluation(&app, &l).await;

    // No rating: refused with a message that says what to do, never 满意.
    let r = rate(&app, &code, json!({"action": "evaluate", "comment": "还行吧"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((r.code(), r.body["error"]["field"].as_str()), ("order.rating_required", Some("rating")));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("请选择评价结果"), "{:?}", r.body);
    // The portal page refuses the same way, keeping the resident on the form.
    let version = public(&app, &code).await["version"].to_string();
    let page = app
        .client
        .post(format!("{}/portal/track/{code}", app.addr))
        .form(&[("action", "evaluate"), ("version", version.as_str()), ("comment", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = page.text().await.unwrap();
    assert!(html.contains("请选择评价结果") && html.contains("id=\"rate-form\""), "{html}");
    assert!(!html.contains(" checked"), "nothing is chosen for the resident");
    assert_eq!(app.count("order_evaluations").await, 0);
    assert_eq!(public(&app, &code).await["state"], "pending_evaluation");

    // 不满意 needs a reason; reasons go with 不满意 only.
    let r = rate(&app, &code, json!({"action": "evaluate", "rating": "dissatisfied"})).await;
    assert_eq!(r.code(), "order.dissatisfied_reason_required");
    let r = rate(&app, &code, json!({"action": "evaluate", "rating": "satisfied", "reasons": ["attitude"]})).await;
    assert_eq!(r.code(), "order.reasons_only_dissatisfied");
    let r = rate(&app, &code, json!({"action": "evaluate", "rating": "dissatisfied", "reasons": ["rude"]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown reasons are refused: {:?}", r.body);

    let r = rate(
        &app,
        &code,
        json!({"action": "evaluate", "rating": "dissatisfied", "reasons": ["unresolved", "too_slow"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "handling", "重办");

    // Stored as data for the KPIs.
    let rows: Vec<(String, String)> =
        sqlx::query_as("select rating, reasons from order_evaluations where order_id = $1 order by seq")
            .bind(id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![("dissatisfied".to_string(), "unresolved,too_slow".to_string())]);

    // Shown in the staff timeline (API, console page, field app) and on the portal.
    let words = "评价：不满意（问题未解决、办理时间过长）";
    let detail = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await;
    let last = detail.body["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["rating"].as_str(), last["rating_reasons"].clone()),
        (Some("dissatisfied"), json!(["unresolved", "too_slow"]))
    );
    let dispatch =
        detail.body["events"].as_array().unwrap().iter().find(|e| e["action"] == "dispatch").unwrap().clone();
    assert_eq!(dispatch["lead_unit_name"], "第一网格");
    let centre = browser(&app, "sq").await;
    let console = centre.get(format!("{}/orders/{id}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(console.contains(words), "console timeline");
    assert!(console.contains("主办：第一网格；协办：黑龙潭社区综治中心"), "the dispatch names its units");
    let worker = browser(&app, "wg").await;
    let field = worker.get(format!("{}/m/orders/{id}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(field.contains(words), "field app timeline");
    let track = app.call(Method::GET, &format!("/portal/track/{code}"), None, None).await;
    assert!(track.body.as_str().unwrap().contains(words), "portal timeline");
});

both_backends!(the_portal_form_chooses_nothing_and_refuses_internal_categories, |app| {
    let l = setup(&app).await;
    let form = app.call(Method::GET, "/portal/report", None, None).await;
    let html = form.body.as_str().unwrap();
    assert!(!html.contains("重点人员动态"), "internal categories are not offered");
    assert!(html.contains("路灯不亮"));
    // The only selected options are the empty "请选择" ones.
    assert_eq!(html.matches(" selected").count(), 2, "{html}");
    assert_eq!(html.matches("<option value=\"\" selected>").count(), 2, "{html}");

    // The portal API refuses an internal category and a missing one.
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report("0104"))).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "order.category_internal"));
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report(""))).await;
    assert_eq!(r.code(), "order.category_required");
    assert_eq!(app.count("orders").await, 0);
    // Staff still report it.
    let mut staff = report("0104");
    staff["source"] = json!("patrol");
    assert_eq!(app.post("/api/v1/orders", &l.worker, staff).await.status, StatusCode::CREATED);

    // The page form refuses a missing choice with our message and keeps what was typed.
    let community = l.community.to_string();
    let page = app
        .client
        .post(format!("{}/portal/report", app.addr))
        .form(&[
            ("category_code", ""),
            ("title", "楼道灯坏了"),
            ("description", "5号楼2单元楼道灯坏了一个月"),
            ("address", "5号楼"),
            ("node_id", community.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = page.text().await.unwrap();
    assert!(html.contains("请选择反映的事项类别") && html.contains("5号楼2单元楼道灯坏了一个月"), "{html}");

    // Administrators decide which categories residents see.
    let admin = app.admin().await;
    let mut cat = app
        .call(Method::GET, "/api/v1/categories", None, None)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "0104")
        .unwrap()
        .clone();
    assert_eq!(cat["resident_facing"], false);
    cat["resident_facing"] = json!(true);
    cat["owner_unit"] = Value::Null;
    let r = app.call(Method::PUT, "/api/v1/categories/0104", Some(&admin), Some(cat)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(report("0104"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
});

both_backends!(a_point_finds_its_community_and_a_place_people_know, |app| {
    let l = setup(&app).await;
    let admin = app.admin().await;
    let grid2: i64 =
        sqlx::query_scalar("select id from nodes where name = '第二网格'").fetch_one(&app.db.pool).await.unwrap();
    for (name, lon) in [("7号楼", 112.612), ("9号楼", 112.618)] {
        app.create(&admin, json!({"parent_id": grid2, "kind": "building", "name": name, "lon": lon, "lat": 37.905}))
            .await;
    }
    let r = app.call(Method::GET, "/api/v1/portal/locate?lon=112.6175&lat=37.9052", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["community_id"], l.community);
    assert_eq!(r.body["grid_name"], "第二网格");
    assert_eq!(r.body["building_name"], "9号楼");
    assert_eq!(r.body["place"], "三桥街道 · 黑龙潭社区 · 第二网格（附近：9号楼）");
    // Outside every grid: our refusal, not a guess.
    let r = app.call(Method::GET, "/api/v1/portal/locate?lon=113.5&lat=37.9", None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "order.outside_area"));
    let r = app.call(Method::GET, "/api/v1/portal/locate?lon=abc&lat=37.9", None, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["error"]["code"].is_string());
});

both_backends!(a_work_phone_is_a_tel_link_only_when_published, |app| {
    let l = setup(&app).await;
    let admin = app.admin().await;
    let worker = json!({"role": "grid_worker", "name": "王秀英", "gender": "2", "ethnicity": "01",
        "political_status": "01", "birth_date": "19850312", "education": "30", "mobile": "13912345678"});
    let m = app.post(&format!("/api/v1/nodes/{}/members", l.grid), &admin, worker).await;
    assert_eq!(m.status, StatusCode::CREATED, "{:?}", m.body);
    assert_eq!((m.body["public_phone"].clone(), m.body["public_phone_published"].clone()), (Value::Null, json!(false)));
    let id = m.body["id"].as_i64().unwrap();
    let html = area(&app, l.community).await;
    assert!(html.contains("王秀英") && !html.contains("tel:0351") && !html.contains("139****5678"), "{html}");

    let path = format!("/api/v1/members/{id}/public-phone");
    let r = app.call(Method::PUT, &path, Some(&admin), Some(json!({"phone": null, "published": true}))).await;
    assert_eq!(r.code(), "member.public_phone_required");
    let r = app.call(Method::PUT, &path, Some(&admin), Some(json!({"phone": "call me", "published": false}))).await;
    assert_eq!(r.code(), "phone.invalid");
    let r =
        app.call(Method::PUT, &path, Some(&admin), Some(json!({"phone": "0351-6123456", "published": false}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(!area(&app, l.community).await.contains("0351-6123456"), "not published yet");
    let r = app.call(Method::PUT, &path, Some(&admin), Some(json!({"phone": "0351-6123456", "published": true}))).await;
    assert_eq!(r.body["public_phone_published"], true);
    assert!(area(&app, l.community).await.contains("href=\"tel:0351-6123456\""));
    // Staff outside the member's area may not change it; the change is audited.
    let r = app.call(Method::PUT, &path, Some(&l.dept), Some(json!({"phone": null, "published": false}))).await;
    assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{:?}", r.body);
    let audited: i64 = sqlx::query_scalar("select count(*) from audit_log where action = 'member.public_phone'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(audited, 2);
});

async fn area(app: &TestApp, community: i64) -> String {
    let r = app.call(Method::GET, &format!("/portal/area/{community}"), None, None).await;
    r.body.as_str().unwrap().to_string()
}
