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
