//! Limits and headers that hold across routes, and inputs that used to be
//! taken unchecked: tracking-code lookups per address, `Retry-After`,
//! `Cache-Control: no-store`, a member's login account, a unit's patch body.

use crate::{both_backends, helpers::*};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(one_address_cannot_try_tracking_codes_without_end, |app| {
    crate::orders::setup(&app).await;
    let r = app.call(Method::POST, "/api/v1/portal/orders", None, Some(crate::orders::report("0303"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["tracking_code"].as_str().unwrap().to_string();
    // Someone walks through codes from one address.
    let mut limited = None;
    for i in 0..200 {
        let r = app.call(Method::GET, &format!("/api/v1/portal/orders/AAAABBBB{i:04}"), None, None).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let (at, r) = limited.expect("lookups are limited");
    assert_eq!(at, 120, "120 lookups a minute are answered");
    assert_eq!(r.code(), "portal.too_many_lookups");
    assert_eq!(r.body["error"]["message"], "查询过于频繁，请稍后再试。");
    let wait: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    // The portal's pages count the same lookups, and say so in a page.
    let page = app.client.get(format!("{}/portal/track/{code}", app.addr)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key("retry-after"));
    assert!(page.text().await.unwrap().contains("查询过于频繁"));
    // A resident elsewhere is not affected.
    let other =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let mine = other.get(format!("{}/api/v1/portal/orders/{code}", app.addr)).send().await.unwrap();
    assert_eq!(mine.status(), StatusCode::OK);
});

both_backends!(answers_with_tokens_or_personal_data_are_not_stored_by_caches, |app| {
    let login =
        app.call(Method::POST, "/api/v1/session", None, Some(json!({"username": ADMIN, "password": PASSWORD}))).await;
    assert_eq!(login.status, StatusCode::CREATED);
    assert_eq!(login.headers["cache-control"], "no-store", "the answer carries a token");
    let token = login.body["token"].as_str().unwrap();
    for path in ["/api/v1/me", "/api/v1/nodes", "/api/v1/audit"] {
        assert_eq!(app.get(path, token).await.headers["cache-control"], "no-store", "{path}");
    }
    let refused = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(refused.headers["cache-control"], "no-store");
    // Pages of a logged-in browser, too; static files keep their own caching.
    let browser = &app.client;
    let r = browser
        .post(format!("{}/login", app.addr))
        .form(&[("username", ADMIN), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = browser.get(format!("{}/", app.addr)).send().await.unwrap();
    assert_eq!(home.headers()["cache-control"], "no-store");
    let css = browser.get(format!("{}/static/css/app.css", app.addr)).send().await.unwrap();
    assert_ne!(css.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
});

both_backends!(a_members_login_account_must_exist_and_be_in_scope, |app| {
    let admin = app.admin().await;
    let (sub, a) = crate::tree::small_tree(&app, &admin).await;
    let b = app
        .create(&admin, json!({"parent_id": sub, "kind": "community", "name": "三桥社区", "code": "140107001002"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let grid_a = app
        .create(
            &admin,
            json!({"parent_id": a, "kind": "grid", "name": "第一网格", "polygon": rect(112.60, 37.90, 112.61, 37.91)}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.add_user("sq_a", a, &["admin"]).await;
    app.add_user("wg_a", a, &["grid_worker"]).await;
    app.add_user("wg_b", b, &["grid_worker"]).await;
    let mut ids = vec![];
    for name in ["wg_a", "wg_b"] {
        let id: i64 = sqlx::query_scalar("select id from users where username = $1")
            .bind(name)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        ids.push(id);
    }
    let (wg_a, wg_b) = (ids[0], ids[1]);
    let community_admin = app.login("sq_a", PASSWORD).await;
    let member = |user_id: i64| {
        json!({"role": "grid_worker", "name": "张伟", "gender": "1", "ethnicity": "01", "political_status": "13",
            "birth_date": "19900101", "education": "30", "mobile": "13800138000", "user_id": user_id})
    };
    let path = format!("/api/v1/nodes/{grid_a}/members");
    for (user_id, why) in [(987_654_321, "no such user"), (wg_b, "another community's user")] {
        let r = app.post(&path, &community_admin, member(user_id)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {:?}", r.body);
        assert_eq!((r.code(), r.body["error"]["field"].as_str()), ("member.user_unknown", Some("user_id")), "{why}");
    }
    let r = app.post(&path, &community_admin, member(wg_a)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["user_id"], wg_a);
});

both_backends!(a_unit_patch_must_be_an_object, |app| {
    let admin = app.admin().await;
    let dept = app.post("/api/v1/departments", &admin, json!({"key": "urban_mgmt", "name": "区城市管理局"})).await;
    assert_eq!(dept.status, StatusCode::CREATED, "{:?}", dept.body);
    let unit = dept.body["id"].as_i64().unwrap();
    let before: String =
        sqlx::query_scalar("select name from units where id = $1").bind(unit).fetch_one(&app.db.pool).await.unwrap();
    for body in [json!([null, null]), json!(["改名", false]), json!("x"), json!(null)] {
        let r = app.call(Method::PATCH, &format!("/api/v1/units/{unit}"), Some(&admin), Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {:?}", r.body);
        assert_eq!(r.code(), "request.not_object", "{body}");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("JSON对象"));
    }
    let after: String =
        sqlx::query_scalar("select name from units where id = $1").bind(unit).fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(before, after);
    let r = app
        .call(Method::PATCH, &format!("/api/v1/units/{unit}"), Some(&admin), Some(json!({"name": "区城管局"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
});
