use crate::{both_backends, helpers::*};
use reqwest::{Method, StatusCode};

both_backends!(pages_need_login_and_carry_security_headers, |app| {
    let r = app.call(Method::GET, "/", None, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/login?next=%2F");
    let login = app.call(Method::GET, "/login", None, None).await;
    assert_eq!(login.status, StatusCode::OK);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("script-src 'self' 'unsafe-inline'"));
    assert_eq!(login.headers["x-frame-options"], "DENY");
    assert_eq!(login.headers["x-content-type-options"], "nosniff");
    assert!(login.body.as_str().unwrap().contains("枫桥基层治理平台"));
});

both_backends!(browser_login_tree_page_and_csrf, |app| {
    let bad = app
        .client
        .post(format!("{}/login", app.addr))
        .form(&[("username", ADMIN), ("password", "nope"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.text().await.unwrap().contains("账号或密码不正确"));

    let ok = app
        .client
        .post(format!("{}/login", app.addr))
        .form(&[("username", ADMIN), ("password", PASSWORD), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/", "login never redirects off-site");
    let cookie = ok.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");

    let home = app.client.get(format!("{}/", app.addr)).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("杏花岭区"));
    let tree = app.client.get(format!("{}/tree/{}", app.addr, app.root_id)).send().await.unwrap();
    let html = tree.text().await.unwrap();
    assert!(html.contains("140107000000") && html.contains("node-map"));

    // A state-changing request with the cookie but without the CSRF header is refused.
    let forged = app.client.post(format!("{}/logout", app.addr)).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let still = app.client.get(format!("{}/", app.addr)).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::OK, "the forged logout did nothing");
    // The cookie does not work as an API bearer and vice versa is checked in session tests.
});

both_backends!(the_portal_is_public_and_shows_grids, |app| {
    let token = app.admin().await;
    let sub = app
        .create(&token, serde_json::json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "巨轮街道", "code": "140107001"}))
        .await;
    let comm = app
        .create(&token, serde_json::json!({"parent_id": sub["id"], "kind": "community", "name": "胜利西街社区", "code": "140107001001"}))
        .await;
    app.create(
        &token,
        serde_json::json!({"parent_id": comm["id"], "kind": "grid", "name": "胜利西街社区第一网格",
        "polygon": rect(112.56, 37.88, 112.57, 37.89)}),
    )
    .await;
    let home = app.call(Method::GET, "/portal/", None, None).await;
    assert!(home.body.as_str().unwrap().contains("巨轮街道"));
    let area = app.call(Method::GET, &format!("/portal/area/{}", comm["id"]), None, None).await;
    assert!(area.body.as_str().unwrap().contains("胜利西街社区第一网格"));
    let geo = app.call(Method::GET, &format!("/portal/area/{}/geojson", comm["id"]), None, None).await;
    assert_eq!(geo.body["features"].as_array().unwrap().len(), 1);
});

/// Logs a fresh cookie-holding client in through the login form.
pub(crate) async fn browser(app: &TestApp, username: &str) -> reqwest::Client {
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let r = client
        .post(format!("{}/login", app.addr))
        .form(&[("username", username), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{username}");
    client
}

both_backends!(pages_check_permissions_and_forced_password_change, |app| {
    app.add_user("helper1", app.root_id, &["volunteer"]).await;
    app.add_user("gridman", app.root_id, &["grid_worker"]).await;
    let volunteer = browser(&app, "helper1").await;
    let worker = browser(&app, "gridman").await;
    for path in [format!("/tree/{}", app.root_id), "/orders".into(), "/map".into(), "/m/tasks".into()] {
        let v = volunteer.get(format!("{}{path}", app.addr)).send().await.unwrap();
        assert_eq!(v.status(), StatusCode::FORBIDDEN, "{path} as volunteer");
        let w = worker.get(format!("{}{path}", app.addr)).send().await.unwrap();
        assert_eq!(w.status(), StatusCode::OK, "{path} as grid worker");
    }
    // An account that must change its password is sent to the change page.
    sqlx::query("update users set must_change_password = 1 where username = 'gridman'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Changed behind the server's back, as another node would: skip the
    // moment its session cache may take to notice.
    app.db.sessions.clear();
    let r = worker.get(format!("{}/orders", app.addr)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account/password");
    let page = worker.get(format!("{}/account/password", app.addr)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
});

/// The CSRF token a page hands its htmx requests.
pub(crate) fn csrf_of(html: &str) -> String {
    let start = html.find("\"x-csrf-token\": \"").expect("a page with a CSRF token") + "\"x-csrf-token\": \"".len();
    html[start..].split('"').next().unwrap().to_string()
}

both_backends!(the_header_switches_posts_with_a_csrf_checked_form, |app| {
    let admin = app.admin().await;
    let sub = app
        .create(&admin, serde_json::json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "巨轮街道", "code": "140107001"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let comm = app
        .create(
            &admin,
            serde_json::json!({"parent_id": sub, "kind": "community", "name": "胜利西街社区", "code": "140107001001"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.add_user("one_post", comm, &["grid_leader"]).await;
    app.add_user("two_posts", comm, &["grid_leader"]).await;
    let id = app.get("/api/v1/users?q=two_posts", &admin).await.body["users"][0]["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(serde_json::json!({"grants": [{"role": "dispatcher", "node_id": sub}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // One post: the place, no switcher.
    let one = browser(&app, "one_post").await;
    let html = one.get(format!("{}/", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("class=\"place\"") && !html.contains("node-switch"));
    // Two: a form offering both, the community chosen.
    let two = browser(&app, "two_posts").await;
    let html = two.get(format!("{}/", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("hx-post=\"/account/node\""), "{html}");
    assert!(html.contains(&format!("<option value=\"{comm}\" selected>胜利西街社区</option>")));
    assert!(html.contains(&format!("<option value=\"{sub}\">巨轮街道</option>")));
    let csrf = csrf_of(&html);
    // Without the CSRF header the form is refused and nothing changes.
    let forged =
        two.post(format!("{}/account/node", app.addr)).form(&[("node_id", sub.to_string())]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = two.get(format!("{}/", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<h1>胜利西街社区"));
    // A node without a post: an alert, nothing changes.
    let r = two
        .post(format!("{}/account/node", app.addr))
        .header("x-csrf-token", &csrf)
        .form(&[("node_id", app.root_id.to_string())])
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("hx-redirect").is_none());
    assert!(r.text().await.unwrap().contains("class=\"alert\""));
    // With it, the console starts over at the street.
    let r = two
        .post(format!("{}/account/node", app.addr))
        .header("x-csrf-token", &csrf)
        .form(&[("node_id", sub.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["hx-redirect"], "/");
    let html = two.get(format!("{}/", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<h1>巨轮街道"), "{html}");
    assert!(html.contains(&format!("<option value=\"{sub}\" selected>巨轮街道</option>")));
});
