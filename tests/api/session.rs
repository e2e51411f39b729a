use crate::{both_backends, helpers::*};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(login_me_logout, |app| {
    let bad =
        app.call(Method::POST, "/api/v1/session", None, Some(json!({"username": ADMIN, "password": "wrong"}))).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.code(), "auth.login_failed");
    let unknown =
        app.call(Method::POST, "/api/v1/session", None, Some(json!({"username": "ghost", "password": "x"}))).await;
    assert_eq!(unknown.code(), "auth.login_failed", "unknown users look like wrong passwords");

    let token = app.admin().await;
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], ADMIN);
    assert_eq!(me.body["roles"][0]["role"], "admin");
    assert_eq!(me.body["node_name"], "杏花岭区");
    // The token is stored only as a hash.
    let stored: i64 = sqlx::query_scalar("select count(*) from sessions where token_hash = $1")
        .bind(&token)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    let out = app.call(Method::DELETE, "/api/v1/session", Some(&token), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = app.get("/api/v1/me", &token).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "auth.required");
});

both_backends!(a_bad_token_is_refused_not_treated_as_anonymous, |app| {
    let r = app.get("/api/v1/nodes", "not-a-token").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.call(Method::GET, "/api/v1/nodes", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
});

both_backends!(idle_sessions_expire, |app| {
    let token = app.admin().await;
    // Age the session past the 30-minute idle limit.
    sqlx::query("update sessions set last_seen_at = last_seen_at - $1")
        .bind(31 * 60 * 1000i64)
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Changed behind the server's back, as another node would: skip the
    // moment its session cache may take to notice.
    app.db.sessions.clear();
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count("sessions").await, 0, "expired sessions are removed");
});

both_backends!(logging_out_with_an_api_token_ends_that_token, |app| {
    let admin = app.admin().await;
    let issued = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "对接", "permissions": ["tree.read"], "node_id": app.root_id, "expires_in_days": 30}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
    let token = issued.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", token).await.status, StatusCode::OK);
    let out = app.call(Method::DELETE, "/api/v1/session", Some(token), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", token).await.status, StatusCode::UNAUTHORIZED, "the token no longer works");
    let list = app.get("/api/v1/tokens", &admin).await;
    assert_eq!(list.body.to_string().matches("\"revoked\"").count(), 1, "{}", list.body);
    let revoked: i64 = sqlx::query_scalar("select count(*) from audit_log where action = 'token.revoke'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(revoked, 1, "recorded");
});

both_backends!(another_site_cannot_post_our_login_form, |app| {
    // A page elsewhere submits the login form with the attacker's own
    // account, to have the victim work (and report) in it.
    let form = [("username", ADMIN), ("password", PASSWORD)];
    let url = format!("{}/login", app.addr);
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("referer", "https://evil.example/x"),
    ] {
        let r = app.client.post(&url).header(header, value).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(r.headers().get("set-cookie").is_none());
        assert!(r.text().await.unwrap().contains("不是从本站页面提交"));
    }
    assert_eq!(app.count("sessions").await, 0);
    // From our own login page it works.
    let r = app.client.post(&url).header("origin", &app.addr).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app.client.post(&url).header("sec-fetch-site", "same-origin").form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
});
