//! Login security, the password policy, forced change, sessions, API
//! tokens, editable roles and user administration, on both backends.

use crate::{both_backends, helpers::*};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn try_login(app: &TestApp, username: &str, password: &str) -> Resp {
    app.call(Method::POST, "/api/v1/session", None, Some(json!({"username": username, "password": password}))).await
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Resp {
    app.call(Method::PATCH, path, Some(token), Some(body)).await
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> Resp {
    app.call(Method::PUT, path, Some(token), Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Resp {
    app.call(Method::DELETE, path, Some(token), None).await
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_log where action = $1")
        .bind(action)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// A subdistrict with two communities: (subdistrict, community A, community B).
async fn two_communities(app: &TestApp, admin: &str) -> (i64, i64, i64) {
    let sub = app
        .create(
            admin,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "巨轮街道", "code": "140107001"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let a = app
        .create(admin, json!({"parent_id": sub, "kind": "community", "name": "甲社区", "code": "140107001001"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let b = app
        .create(admin, json!({"parent_id": sub, "kind": "community", "name": "乙社区", "code": "140107001002"}))
        .await["id"]
        .as_i64()
        .unwrap();
    (sub, a, b)
}

/// Creates a user through the API and returns (id, temporary password).
async fn new_user(app: &TestApp, admin: &str, username: &str, node: i64, roles: &[&str]) -> (i64, String) {
    let r = app
        .post(
            "/api/v1/users",
            admin,
            json!({"username": username, "display_name": "王芳", "node_id": node, "roles": roles}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (r.body["id"].as_i64().unwrap(), r.body["temporary_password"].as_str().unwrap().to_string())
}

/// Logs in with a temporary password and sets `new` through the forced change.
async fn first_login(app: &TestApp, username: &str, temp: &str, new: &str) -> String {
    let token = app.login(username, temp).await;
    let r = put(app, "/api/v1/me/password", &token, json!({"current_password": temp, "new_password": new})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    token
}

/// A client whose requests come from another loopback address (another
/// machine, as far as the server can tell).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

async fn login_from(app: &TestApp, client: &reqwest::Client, username: &str, password: &str) -> (StatusCode, Value) {
    let r = client
        .post(format!("{}/api/v1/session", app.addr))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

both_backends!(five_failures_lock_the_account_for_that_address_for_a_while, |app| {
    for _ in 0..4 {
        assert_eq!(try_login(&app, ADMIN, "wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    // A success before the fifth failure resets the count.
    app.admin().await;
    for _ in 0..5 {
        assert_eq!(try_login(&app, ADMIN, "wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    let r = try_login(&app, ADMIN, PASSWORD).await;
    assert_eq!(r.status, StatusCode::LOCKED);
    assert_eq!(r.code(), "auth.locked");
    assert_eq!(audit_count(&app, "session.locked").await, 1);
    // Administrators see the lockout on the account.
    let until: Option<i64> = sqlx::query_scalar("select locked_until from users where username = $1")
        .bind(ADMIN)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let minutes = (until.unwrap() - fengqiao::platform::db::now_ms()) as f64 / 60_000.0;
    assert!((14.0..=15.0).contains(&minutes), "locked for {minutes} minutes");
    // From another address the owner still logs in.
    let (status, _) = login_from(&app, &client_from("127.0.0.2"), ADMIN, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    // After the lockout has passed, the right password works again here too.
    sqlx::query("update login_failures set locked_until = $1")
        .bind(fengqiao::platform::db::now_ms() - 1)
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.admin().await;
});

both_backends!(unknown_names_answer_exactly_like_accounts, |app| {
    // An attacker probes which names exist: an account and a name that is
    // none get the same answers, failure by failure, lockout included.
    let mut answers = vec![];
    for name in [ADMIN, "ghost"] {
        let mut seq = vec![];
        for _ in 0..6 {
            let r = try_login(&app, name, "wrong").await;
            seq.push((r.status, r.body.to_string()));
        }
        answers.push(seq);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][4].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0][5].0, StatusCode::LOCKED);
    // And the same work: both verify a password hash (timed from another
    // address, whose counts are fresh).
    let client = client_from("127.0.0.3");
    let mut median = vec![];
    for name in [ADMIN, "ghost2"] {
        let mut times = vec![];
        for _ in 0..4 {
            let t = std::time::Instant::now();
            let (status, _) = login_from(&app, &client, name, "wrong").await;
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        times.sort_by(f64::total_cmp);
        median.push(times[1]);
    }
    let ratio = median[1] / median[0];
    assert!((0.33..3.0).contains(&ratio), "unknown/known time ratio {ratio:.2} ({median:?})");
    // No typed name is stored in clear by the lockout.
    let names: i64 = sqlx::query_scalar("select count(*) from login_failures where name_hash in ('ghost', 'admin')")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(names, 0);
});

both_backends!(one_address_cannot_lock_anybody_out, |app| {
    let admin = app.admin().await;
    let (_, a, _) = two_communities(&app, &admin).await;
    let (id, temp) = new_user(&app, &admin, "wangfang", a, &["grid_worker"]).await;
    let mut policy = app.get("/api/v1/policy", &admin).await.body;
    assert_eq!(policy["account_lockout_threshold"], 50);
    policy["account_lockout_threshold"] = json!(20);
    assert_eq!(put(&app, "/api/v1/policy", &admin, policy).await.status, StatusCode::OK);
    // Someone at one address hammers the account: that address is shut out,
    let attacker = client_from("127.0.0.2");
    for _ in 0..10 {
        login_from(&app, &attacker, "wangfang", "guess").await;
    }
    let (status, body) = login_from(&app, &attacker, "wangfang", &temp).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::LOCKED, Some("auth.locked")));
    // ... the owner is not.
    let token = app.login("wangfang", &temp).await;
    assert_eq!(delete(&app, "/api/v1/session", &token).await.status, StatusCode::NO_CONTENT);
    // Only failures from many addresses together lock the account itself.
    for ip in ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"] {
        let c = client_from(ip);
        for _ in 0..5 {
            login_from(&app, &c, "wangfang", "guess").await;
        }
    }
    assert_eq!(try_login(&app, "wangfang", &temp).await.code(), "auth.locked");
    let u = app.get(&format!("/api/v1/users/{id}"), &admin).await;
    assert!(u.body["locked_until"].is_i64(), "{:?}", u.body);
    // An administrator lifts it, from every address.
    let r = patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"unlock": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.login("wangfang", &temp).await;
    assert_eq!(login_from(&app, &attacker, "wangfang", &temp).await.0, StatusCode::CREATED);
});

both_backends!(administrators_unlock_accounts, |app| {
    let admin = app.admin().await;
    let (_, a, _) = two_communities(&app, &admin).await;
    let (id, temp) = new_user(&app, &admin, "wangfang", a, &["grid_worker"]).await;
    for _ in 0..5 {
        try_login(&app, "wangfang", "wrong").await;
    }
    assert_eq!(try_login(&app, "wangfang", &temp).await.code(), "auth.locked");
    let u = app.get(&format!("/api/v1/users/{id}"), &admin).await;
    assert!(u.body["locked_until"].is_i64(), "{:?}", u.body);
    assert!(u.body["recent_logins"].as_array().unwrap().len() >= 5);
    let r = patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"unlock": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["locked_until"].is_null());
    app.login("wangfang", &temp).await;
});

both_backends!(one_address_with_many_failures_is_throttled, |app| {
    let admin = app.admin().await;
    let mut policy = app.get("/api/v1/policy", &admin).await.body;
    policy["address_max_failures"] = json!(5);
    assert_eq!(put(&app, "/api/v1/policy", &admin, policy).await.status, StatusCode::OK);
    // Different (unknown) names, so no single account locks.
    for i in 0..5 {
        assert_eq!(try_login(&app, &format!("guess{i}"), "x").await.status, StatusCode::UNAUTHORIZED);
    }
    let r = try_login(&app, ADMIN, PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.code(), "auth.throttled");
    // The client is told how long to wait: the rest of the 15-minute window.
    let wait: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((14 * 60..=15 * 60).contains(&wait), "Retry-After: {wait}");
    assert_eq!(audit_count(&app, "session.throttled").await, 1);
    // Existing sessions are not affected.
    assert_eq!(app.get("/api/v1/me", &admin).await.status, StatusCode::OK);
});

both_backends!(the_policy_is_bounded_and_audited, |app| {
    let admin = app.admin().await;
    let mut policy = app.get("/api/v1/policy", &admin).await.body;
    assert_eq!(policy["password_min_length"], 8);
    assert_eq!(policy["lockout_threshold"], 5);
    policy["password_min_length"] = json!(6);
    let r = put(&app, "/api/v1/policy", &admin, policy.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "password_min_length");
    policy["password_min_length"] = json!(12);
    assert_eq!(put(&app, "/api/v1/policy", &admin, policy).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/policy", &admin).await.body["password_min_length"], 12);
    assert_eq!(audit_count(&app, "policy.update").await, 1);
    // The stricter rule applies at once.
    let r =
        put(&app, "/api/v1/me/password", &admin, json!({"current_password": PASSWORD, "new_password": "Abcdefgh123"}))
            .await;
    assert_eq!(r.code(), "password.too_short");
});

both_backends!(new_users_must_change_their_password_first, |app| {
    let admin = app.admin().await;
    let (_, a, _) = two_communities(&app, &admin).await;
    let (_, temp) = new_user(&app, &admin, "lisi", a, &["grid_leader"]).await;
    let token = app.login("lisi", &temp).await;
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.body["must_change_password"], true);
    let r = app.get("/api/v1/orders", &token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "auth.password_change_required");
    // Weak passwords are refused with the rule that failed.
    for (pw, code) in [
        ("Ab1!", "password.too_short"),
        ("abcdefgh1", "password.classes"),
        ("Lisi-2026a", "password.contains_username"),
    ] {
        let r = put(&app, "/api/v1/me/password", &token, json!({"current_password": temp, "new_password": pw})).await;
        assert_eq!(r.code(), code, "{pw}");
    }
    let r = put(&app, "/api/v1/me/password", &token, json!({"current_password": "nope", "new_password": "Grid-2026x"}))
        .await;
    assert_eq!(r.code(), "password.wrong_current");
    let r =
        put(&app, "/api/v1/me/password", &token, json!({"current_password": temp, "new_password": "Grid-2026x"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/orders", &token).await.status, StatusCode::OK);
    assert_eq!(try_login(&app, "lisi", &temp).await.status, StatusCode::UNAUTHORIZED);
    app.login("lisi", "Grid-2026x").await;
    // A reset forces the change again and ends the sessions.
    let id: i64 = app.get("/api/v1/users?q=lisi", &admin).await.body["users"][0]["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/users/{id}/password-reset"), &admin, json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let temp2 = r.body["temporary_password"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
    let token = app.login("lisi", temp2).await;
    assert_eq!(app.get("/api/v1/orders", &token).await.code(), "auth.password_change_required");
    assert_eq!(audit_count(&app, "user.password_reset").await, 1);
    assert_eq!(audit_count(&app, "user.password_change").await, 1);
});

both_backends!(sessions_expire_when_idle_and_after_twelve_hours, |app| {
    let idle = app.admin().await;
    let old = app.admin().await;
    let fresh = app.admin().await;
    let now = fengqiao::platform::db::now_ms();
    let hash = |t: &str| fengqiao::auth::hash_token(t);
    sqlx::query("update sessions set last_seen_at = $1 where token_hash = $2")
        .bind(now - 31 * 60_000)
        .bind(hash(&idle))
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("update sessions set created_at = $1 where token_hash = $2")
        .bind(now - 12 * 3_600_000 - 1000)
        .bind(hash(&old))
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Changed behind the server's back, as another node would: skip the
    // moment its session cache may take to notice.
    app.db.sessions.clear();
    assert_eq!(app.get("/api/v1/me", &idle).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &old).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &fresh).await.status, StatusCode::OK);
});

both_backends!(people_see_and_end_their_sessions, |app| {
    let a = app.admin().await;
    let b = app.admin().await;
    let c = app.admin().await;
    let list = app.get("/api/v1/me/sessions", &a).await.body;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let b_id = &fengqiao::auth::hash_token(&b)[..16];
    assert!(list.iter().any(|s| s["id"] == b_id));
    assert!(!list.iter().any(|s| s.to_string().contains(&b)), "tokens are never listed");
    assert_eq!(delete(&app, &format!("/api/v1/me/sessions/{b_id}"), &a).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &b).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(delete(&app, "/api/v1/me/sessions/0000000000000000", &a).await.status, StatusCode::NOT_FOUND);
    // Log out everywhere.
    assert_eq!(delete(&app, "/api/v1/me/sessions", &c).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &a).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &c).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&app, "session.revoke_all").await, 1);
});

both_backends!(api_tokens_are_scoped_expiring_revocable_and_hashed, |app| {
    let admin = app.admin().await;
    let (_, a, b) = two_communities(&app, &admin).await;
    let r = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "12345热线对接", "permissions": ["tree.read", "orders.read"], "node_id": a, "expires_in_days": 30}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    let id = r.body["id"].as_i64().unwrap();
    assert!(token.starts_with("fqt_"));
    // Stored only as a hash.
    let stored: i64 = sqlx::query_scalar("select count(*) from api_tokens where token_hash = $1 or prefix = $1")
        .bind(&token)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // Reads in its node's subtree, nothing outside, no writes.
    assert_eq!(app.get(&format!("/api/v1/nodes/{a}"), &token).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/nodes/{b}"), &token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/orders", &token).await.status, StatusCode::OK);
    let w = patch(&app, &format!("/api/v1/nodes/{a}"), &token, json!({"version": 1, "name": "改名"})).await;
    assert_eq!(w.status, StatusCode::FORBIDDEN);
    // Tokens are not sessions: no password change, no token issuing.
    let r = app
        .post(
            "/api/v1/tokens",
            &token,
            json!({"name": "x", "permissions": ["tree.read"], "node_id": a, "expires_in_days": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A token cannot be sent as a browser cookie.
    let as_cookie = reqwest::Client::new()
        .get(format!("{}/api/v1/orders", app.addr))
        .header("cookie", format!("fq_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_cookie.status(), StatusCode::UNAUTHORIZED);
    let list = app.get("/api/v1/tokens", &admin).await.body;
    assert_eq!(list[0]["status"], "active");
    assert!(list[0]["last_used_at"].is_i64());
    // Invalid requests.
    let bad = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "x", "permissions": ["orders.delete"], "node_id": a, "expires_in_days": 1}),
        )
        .await;
    assert_eq!(bad.code(), "role.permission_unknown");
    let bad = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "x", "permissions": ["tree.read"], "node_id": a, "expires_in_days": 5000}),
        )
        .await;
    assert_eq!(bad.code(), "token.expiry_invalid");
    // Revoked → unauthorised at once.
    assert_eq!(delete(&app, &format!("/api/v1/tokens/{id}"), &admin).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/orders", &token).await.status, StatusCode::UNAUTHORIZED);
    // Expired → unauthorised.
    let r = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "机器人", "permissions": ["orders.read"], "node_id": b, "expires_in_days": 1}),
        )
        .await;
    let t2 = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/orders", &t2).await.status, StatusCode::OK);
    sqlx::query("update api_tokens set expires_at = 1 where id = $1")
        .bind(r.body["id"].as_i64().unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
    // Changed behind the server's back, as another node would: skip the
    // moment its session cache may take to notice.
    app.db.sessions.clear();
    assert_eq!(app.get("/api/v1/orders", &t2).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit_count(&app, "token.create").await, 2);
    assert_eq!(audit_count(&app, "token.revoke").await, 1);
});

both_backends!(roles_are_editable_and_take_effect_at_once, |app| {
    let admin = app.admin().await;
    let (_, a, _) = two_communities(&app, &admin).await;
    let r = app
        .post(
            "/api/v1/roles",
            &admin,
            json!({"code": "hotline_agent", "name": "热线坐席", "description": "12345 热线转办", "permissions": ["orders.read", "orders.report"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let dup = app.post("/api/v1/roles", &admin, json!({"code": "hotline_agent", "name": "x", "permissions": []})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let (id, temp) = new_user(&app, &admin, "agent1", a, &["hotline_agent"]).await;
    let token = first_login(&app, "agent1", &temp, "Hotline-2026").await;
    assert_eq!(app.get("/api/v1/orders", &token).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/nodes/{a}"), &token).await.status, StatusCode::FORBIDDEN);
    // Take orders.read away: the next request is refused.
    let r =
        put(&app, "/api/v1/roles/hotline_agent", &admin, json!({"name": "热线坐席", "permissions": ["orders.report"]}))
            .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/orders", &token).await.status, StatusCode::FORBIDDEN);
    // The administrator role keeps user and role management.
    let r = put(&app, "/api/v1/roles/admin", &admin, json!({"name": "系统管理员", "permissions": ["tree.read"]})).await;
    assert_eq!(r.code(), "role.admin_core");
    // In use → cannot delete; built-in → cannot delete.
    assert_eq!(delete(&app, "/api/v1/roles/hotline_agent", &admin).await.code(), "role.in_use");
    assert_eq!(delete(&app, "/api/v1/roles/grid_worker", &admin).await.code(), "role.builtin");
    patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"roles": ["volunteer"]})).await;
    assert_eq!(delete(&app, "/api/v1/roles/hotline_agent", &admin).await.status, StatusCode::NO_CONTENT);
    let roles = app.get("/api/v1/roles", &admin).await.body;
    assert_eq!(roles.as_array().unwrap().len(), 12);
    assert_eq!(audit_count(&app, "role.create").await, 1);
    assert_eq!(audit_count(&app, "role.delete").await, 1);
});

both_backends!(user_administrators_stay_inside_their_scope_and_rights, |app| {
    let admin = app.admin().await;
    let (sub, a, _) = two_communities(&app, &admin).await;
    let other_sub = app
        .create(
            &admin,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "三桥街道", "code": "140107002"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/roles",
        &admin,
        json!({"code": "user_admin", "name": "街道账号管理员", "permissions": ["users.manage", "tree.read"]}),
    )
    .await;
    let (_, temp) = new_user(&app, &admin, "jdadmin", sub, &["user_admin"]).await;
    let (outside, _) = new_user(&app, &admin, "sqqiao", other_sub, &["grid_worker"]).await;
    let sub_admin = first_login(&app, "jdadmin", &temp, "Street-2026x").await;
    // Can create a grid worker in their subdistrict …
    let r = app
        .post(
            "/api/v1/users",
            &sub_admin,
            json!({"username": "wg_a1", "display_name": "赵强", "node_id": a, "roles": ["grid_worker"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // … but not hand out rights they do not hold, nor place users outside.
    let r = app
        .post(
            "/api/v1/users",
            &sub_admin,
            json!({"username": "boss", "display_name": "钱", "node_id": a, "roles": ["admin"]}),
        )
        .await;
    assert_eq!(r.code(), "token.permission_not_held");
    let r = app
        .post(
            "/api/v1/users",
            &sub_admin,
            json!({"username": "far", "display_name": "孙", "node_id": other_sub, "roles": ["volunteer"]}),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "node_id");
    // Users outside their subtree do not exist for them.
    assert_eq!(app.get(&format!("/api/v1/users/{outside}"), &sub_admin).await.status, StatusCode::NOT_FOUND);
    let listed = app.get("/api/v1/users", &sub_admin).await.body;
    let names: Vec<&str> =
        listed["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"wg_a1") && names.contains(&"jdadmin"));
    assert!(!names.contains(&"sqqiao") && !names.contains(&ADMIN));
    assert_eq!(listed["total"], 2);
    // Bad input is refused and changes nothing.
    let before = app.count("users").await;
    for body in [
        json!({"username": "a", "display_name": "x", "node_id": a, "roles": ["volunteer"]}),
        json!({"username": "okname", "display_name": "", "node_id": a, "roles": ["volunteer"]}),
        json!({"username": "okname", "display_name": "x", "node_id": a, "roles": []}),
        json!({"username": "okname", "display_name": "x", "node_id": a, "roles": ["nope"]}),
        json!({"username": "wg_a1", "display_name": "x", "node_id": a, "roles": ["volunteer"]}),
    ] {
        let r = app.post("/api/v1/users", &sub_admin, body.clone()).await;
        assert!(r.status.is_client_error(), "{body}: {:?}", r.body);
    }
    assert_eq!(app.count("users").await, before);
    // Disabling ends the user's sessions; one cannot disable oneself.
    let wg = app.get("/api/v1/users?q=wg_a1", &sub_admin).await.body["users"][0]["id"].as_i64().unwrap();
    let r = patch(&app, &format!("/api/v1/users/{wg}"), &sub_admin, json!({"disabled": true})).await;
    assert_eq!(r.body["disabled"], true);
    let me = app.get("/api/v1/me", &sub_admin).await.body["id"].as_i64().unwrap();
    let r = patch(&app, &format!("/api/v1/users/{me}"), &sub_admin, json!({"disabled": true})).await;
    assert_eq!(r.code(), "user.cannot_disable_self");
    assert_eq!(audit_count(&app, "user.create").await, 3);
});

// Sessions are kept resolved in memory for a moment (`auth::cache`); every
// change below is made on this node, so it must not wait for that moment.
both_backends!(a_recently_used_session_is_refused_at_once_when_it_should_end, |app| {
    let admin = app.admin().await;
    let (_, a, _) = two_communities(&app, &admin).await;
    let (id, temp) = new_user(&app, &admin, "agent2", a, &["grid_worker"]).await;
    let token = first_login(&app, "agent2", &temp, "Hotline-2026").await;
    let other = app.login("agent2", "Hotline-2026").await;
    // Losing a role's permission.
    assert_eq!(app.get("/api/v1/orders", &token).await.status, StatusCode::OK);
    patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"roles": ["volunteer"]})).await;
    assert_eq!(app.get("/api/v1/orders", &token).await.status, StatusCode::FORBIDDEN);
    // Logging out everywhere, from another session.
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::OK);
    assert_eq!(delete(&app, "/api/v1/me/sessions", &other).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
    // Being disabled.
    let token = app.login("agent2", "Hotline-2026").await;
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::OK);
    patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"disabled": true})).await;
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
});

// A user holds roles at several nodes (切换岗位): a session acts at one of
// them at a time, with exactly the roles granted there and that node's
// subtree as its scope — never the union.
both_backends!(a_user_with_posts_at_two_nodes_acts_at_one_at_a_time, |app| {
    let admin = app.admin().await;
    let (sub_a, home, comm_a) = two_communities(&app, &admin).await;
    let grid_a = app
        .create(
            &admin,
            json!({"parent_id": comm_a, "kind": "grid", "name": "乙社区第一网格", "polygon": rect(112.60, 37.90, 112.61, 37.91)}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let sub_b = app
        .create(
            &admin,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "三桥街道", "code": "140107002"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let comm_b = app
        .create(&admin, json!({"parent_id": sub_b, "kind": "community", "name": "丙社区", "code": "140107002001"}))
        .await["id"]
        .as_i64()
        .unwrap();
    // Made with the grid.
    let grid_unit: i64 = sqlx::query_scalar("select id from units where node_id = $1 and kind = 'grid'")
        .bind(grid_a)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    for (title, node) in [("甲社区的单", home), ("网格的单", grid_a), ("三桥的单", comm_b)] {
        let r = app
            .post(
                "/api/v1/orders",
                &admin,
                json!({"source": "patrol", "category_code": "0101", "title": title, "description": "楼道堆物",
                    "address": "某楼", "node_id": node}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    // Home at 甲社区 as 受理员; 网格员 of a grid of 乙社区 and 派遣员 of 三桥街道.
    let r = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "duogang", "display_name": "刘敏", "node_id": home, "roles": ["acceptor"],
                "grants": [{"role": "grid_worker", "node_id": grid_a}, {"role": "dispatcher", "node_id": sub_b}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["roles"], json!(["acceptor"]));
    let held: Vec<(String, i64)> = r.body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["role"].as_str().unwrap().to_string(), g["node_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(held.contains(&("grid_worker".into(), grid_a)) && held.contains(&("dispatcher".into(), sub_b)));
    let token = first_login(&app, "duogang", r.body["temporary_password"].as_str().unwrap(), "Posts-2026x").await;

    let titles = |r: &Resp| -> Vec<String> {
        r.body["orders"].as_array().unwrap().iter().map(|o| o["title"].as_str().unwrap().to_string()).collect()
    };
    let perms = |me: &Value| -> Vec<String> {
        me["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
    };
    // After login: the home node, its roles only, its subtree only.
    let me = app.get("/api/v1/me", &token).await.body;
    assert_eq!(me["node_id"], home);
    assert_eq!(me["home_node_id"], home);
    assert_eq!(me["roles"].as_array().unwrap().len(), 1);
    assert_eq!(me["roles"][0]["role"], "acceptor");
    let nodes: Vec<i64> = me["nodes"].as_array().unwrap().iter().map(|n| n["node_id"].as_i64().unwrap()).collect();
    assert_eq!(nodes, vec![home, grid_a, sub_b], "in tree order");
    assert!(perms(&me).contains(&"orders.accept".into()));
    assert!(!perms(&me).contains(&"orders.dispatch".into()) && !perms(&me).contains(&"orders.handle".into()));
    assert_eq!(titles(&app.get("/api/v1/orders?queue=all", &token).await), vec!["甲社区的单"]);
    assert_eq!(app.get(&format!("/api/v1/nodes/{home}"), &token).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/nodes/{grid_a}"), &token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/nodes/{comm_b}"), &token).await.status, StatusCode::NOT_FOUND);

    // At 三桥街道: 派遣员's permissions, not 网格员's nor 受理员's, and 三桥's subtree.
    let r = put(&app, "/api/v1/me/active-node", &token, json!({"node_id": sub_b})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["node_id"], sub_b);
    assert_eq!(r.body["node_name"], "三桥街道");
    let me = app.get("/api/v1/me", &token).await.body;
    assert_eq!(me["node_id"], sub_b);
    assert_eq!(me["home_node_id"], home);
    assert_eq!(me["roles"].as_array().unwrap().len(), 1);
    assert_eq!(me["roles"][0]["role"], "dispatcher");
    assert!(perms(&me).contains(&"orders.dispatch".into()));
    assert!(!perms(&me).contains(&"orders.handle".into()) && !perms(&me).contains(&"orders.accept".into()));
    assert_eq!(titles(&app.get("/api/v1/orders?queue=all", &token).await), vec!["三桥的单"]);
    assert_eq!(app.get(&format!("/api/v1/nodes/{comm_b}"), &token).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/nodes/{home}"), &token).await.status, StatusCode::NOT_FOUND);
    let subtree = app.get(&format!("/api/v1/nodes/{sub_b}/subtree"), &token).await;
    assert_eq!(subtree.status, StatusCode::OK);
    assert!(subtree.body.to_string().contains("丙社区") && !subtree.body.to_string().contains("甲社区"));

    // A node without a grant — even one above the home node — is not found,
    // exactly like one that does not exist, and nothing changes.
    let refused = put(&app, "/api/v1/me/active-node", &token, json!({"node_id": sub_a})).await;
    let missing = put(&app, "/api/v1/me/active-node", &token, json!({"node_id": 987_654_321})).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!((refused.status, refused.body.clone()), (missing.status, missing.body));
    assert_eq!(app.get("/api/v1/me", &token).await.body["node_id"], sub_b);
    // The switch is in the audit log, from where to where.
    assert_eq!(audit_count(&app, "session.switch_node").await, 1);
    let detail: String =
        sqlx::query_scalar("select detail from audit_log where action = 'session.switch_node' and object_id = $1")
            .bind(id.to_string())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!((detail["from"].as_i64(), detail["to"].as_i64()), (Some(home), Some(sub_b)));

    // At the grid: 网格员, handling the grid unit's work.
    let r = put(&app, "/api/v1/me/active-node", &token, json!({"node_id": grid_a})).await;
    assert_eq!(r.body["roles"][0]["role"], "grid_worker");
    assert_eq!(r.body["unit_id"], grid_unit);
    assert_eq!(titles(&app.get("/api/v1/orders?queue=all", &token).await), vec!["网格的单"]);
    // Another session of the same user still acts at home.
    let other = app.login("duogang", "Posts-2026x").await;
    assert_eq!(app.get("/api/v1/me", &other).await.body["node_id"], home);

    // An administrator of 巨轮街道 sees and manages only the grants in their
    // subtree: 三桥街道's stays out of sight and is kept when they edit.
    app.post(
        "/api/v1/roles",
        &admin,
        json!({"code": "user_admin", "name": "街道账号管理员", "permissions": ["users.manage", "tree.read"]}),
    )
    .await;
    let (_, temp) = new_user(&app, &admin, "jdadmin", sub_a, &["user_admin"]).await;
    let sub_admin = first_login(&app, "jdadmin", &temp, "Street-2026x").await;
    let seen = app.get(&format!("/api/v1/users/{id}"), &sub_admin).await.body;
    let seen_nodes: Vec<i64> =
        seen["grants"].as_array().unwrap().iter().map(|g| g["node_id"].as_i64().unwrap()).collect();
    assert_eq!(seen_nodes, vec![home, grid_a]);
    assert!(!seen.to_string().contains("三桥街道"));
    // Granting outside their subtree, handing out rights they lack, or a
    // grant at the home node is refused, and nothing is written.
    let roles_before = app.count("user_roles").await;
    let users_before = app.count("users").await;
    let updates_before = audit_count(&app, "user.update").await;
    for (grants, code) in [
        (json!([{"role": "grid_worker", "node_id": comm_b}]), "tree.node_not_found"),
        (
            json!([{"role": "grid_worker", "node_id": grid_a}, {"role": "volunteer", "node_id": sub_b}]),
            "tree.node_not_found",
        ),
        (json!([{"role": "admin", "node_id": comm_a}]), "token.permission_not_held"),
        (json!([{"role": "nope", "node_id": comm_a}]), "user.role_unknown"),
        (json!([{"role": "volunteer", "node_id": home}]), "user.grant_at_home"),
    ] {
        let r = patch(&app, &format!("/api/v1/users/{id}"), &sub_admin, json!({"grants": grants})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{grants}: {:?}", r.body);
        assert_eq!((r.code(), r.body["error"]["field"].as_str()), (code, Some("grants")), "{grants}");
    }
    let r = app
        .post(
            "/api/v1/users",
            &sub_admin,
            json!({"username": "far_grant", "display_name": "孙", "node_id": home, "roles": ["volunteer"],
                "grants": [{"role": "grid_worker", "node_id": comm_b}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "grants");
    assert_eq!(app.count("user_roles").await, roles_before);
    assert_eq!(app.count("users").await, users_before);
    assert_eq!(audit_count(&app, "user.update").await, updates_before);
    // Taking the grid away inside their subtree keeps 三桥街道's post; the
    // session acting at the grid falls back home on its next request.
    let r = patch(&app, &format!("/api/v1/users/{id}"), &sub_admin, json!({"grants": []})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let me = app.get("/api/v1/me", &token).await.body;
    assert_eq!(me["node_id"], home);
    assert_eq!(me["roles"][0]["role"], "acceptor");
    let nodes: Vec<i64> = me["nodes"].as_array().unwrap().iter().map(|n| n["node_id"].as_i64().unwrap()).collect();
    assert_eq!(nodes, vec![home, sub_b]);
    let detail: String =
        sqlx::query_scalar("select detail from audit_log where action = 'user.update' order by id desc limit 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(detail.contains("revoked") && detail.contains(&format!("\"node_id\":{grid_a}")), "{detail}");

    // Back at 三桥街道; the district administrator takes that post away
    // while the session acts there: the next request is at home again.
    assert_eq!(put(&app, "/api/v1/me/active-node", &token, json!({"node_id": sub_b})).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/orders?queue=all", &token).await.status, StatusCode::OK);
    let r = patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"grants": []})).await;
    assert_eq!(r.body["grants"].as_array().unwrap().len(), 1, "{:?}", r.body);
    let me = app.get("/api/v1/me", &token).await.body;
    assert_eq!(me["node_id"], home);
    assert_eq!(me["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(titles(&app.get("/api/v1/orders?queue=all", &token).await), vec!["甲社区的单"]);
    assert_eq!(
        put(&app, "/api/v1/me/active-node", &token, json!({"node_id": sub_b})).await.status,
        StatusCode::NOT_FOUND
    );

    // Moving the home node keeps posts elsewhere; API tokens cannot switch.
    patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"grants": [{"role": "dispatcher", "node_id": sub_b}]}))
        .await;
    let r = patch(&app, &format!("/api/v1/users/{id}"), &admin, json!({"node_id": comm_a})).await;
    assert_eq!(r.body["roles"], json!(["acceptor"]));
    let held: Vec<i64> = r.body["grants"].as_array().unwrap().iter().map(|g| g["node_id"].as_i64().unwrap()).collect();
    assert_eq!(held, vec![comm_a, sub_b]);
    let t = app
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "对接", "permissions": ["tree.read"], "node_id": home, "expires_in_days": 1}),
        )
        .await;
    let api_token = t.body["token"].as_str().unwrap();
    let r = put(&app, "/api/v1/me/active-node", api_token, json!({"node_id": app.root_id})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(audit_count(&app, "session.switch_node").await, 3);
});
