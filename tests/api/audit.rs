//! The audit log: every write and login is recorded in a hash chain that
//! `audit::verify` checks, naming the first entry that was changed,
//! removed or inserted; administrators search and export it.

use crate::{both_backends, helpers::*, tree::small_tree};
use fengqiao::audit::{self, chain, Actor, Entry, Problem, ProblemKind};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn entry(app: &TestApp, id: i64) -> Entry {
    let row = sqlx::query(&format!("select {} from audit_log where id = $1", chain::ENTRY_COLS))
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    chain::entry_from_row(&row).unwrap()
}

async fn problem(app: &TestApp) -> Option<Problem> {
    audit::verify(&app.db).await.unwrap().problem
}

/// Some history: logins (one failed), a subdistrict and a community.
async fn history(app: &TestApp) -> String {
    let bad = app.call(Method::POST, "/api/v1/session", None, Some(json!({"username": ADMIN, "password": "x"}))).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let token = app.admin().await;
    small_tree(app, &token).await;
    token
}

both_backends!(writes_and_logins_are_recorded_and_searchable, |app| {
    let token = history(&app).await;
    let root = app.root_id;
    let patch = app
        .call(
            Method::PATCH,
            &format!("/api/v1/nodes/{root}"),
            Some(&token),
            Some(json!({"version": 1, "households": 120})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{:?}", patch.body);

    let log = app.get("/api/v1/audit", &token).await;
    assert_eq!(log.status, StatusCode::OK);
    let actions: Vec<&str> =
        log.body["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["node.update", "node.create", "node.create", "session.login", "session.login_failed"]);
    let update = &log.body["entries"][0];
    assert_eq!(update["detail"], json!({"fields": ["households"], "version": 2}));
    assert_eq!(update["actor_roles"], "admin");
    assert_eq!(update["client_addr"], "127.0.0.1");
    let failed = &log.body["entries"][4];
    assert_eq!((failed["actor_username"].as_str(), failed["actor_user_id"].as_i64()), (Some(ADMIN), None));
    assert!(!log.body.to_string().contains("\"x\""), "no password in the log");

    let only = app.get("/api/v1/audit?action=session.&actor=admin", &token).await;
    assert_eq!(only.body["total"], 2);
    let by_object = app.get(&format!("/api/v1/audit?object_type=node&object_id={root}"), &token).await;
    assert_eq!(by_object.body["total"], 1);
    let paged = app.get("/api/v1/audit?per_page=2&page=3", &token).await;
    assert_eq!((paged.body["total"].as_i64(), paged.body["entries"].as_array().unwrap().len()), (Some(5), 1));
    let bad_date = app.get("/api/v1/audit?from=2026-02-30", &token).await;
    assert_eq!(bad_date.code(), "audit.date_invalid");

    let out = app.call(Method::DELETE, "/api/v1/session", Some(&token), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let report = audit::verify(&app.db).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.checked, 6);
    assert_eq!(entry(&app, 6).await.action, "session.logout");

    // Only administrators read the log.
    let comm: i64 =
        sqlx::query_scalar("select id from nodes where kind = 'community'").fetch_one(&app.db.pool).await.unwrap();
    app.add_user("sq1", comm, &["grid_leader"]).await;
    let sq = app.login("sq1", PASSWORD).await;
    assert_eq!(app.get("/api/v1/audit", &sq).await.status, StatusCode::FORBIDDEN);
});

both_backends!(tampering_is_reported_at_the_entry_it_touched, |app| {
    history(&app).await;
    let n = app.count("audit_log").await;
    assert_eq!(n, 4);
    assert_eq!(problem(&app).await, None);

    // 1. A changed action.
    sqlx::query("update audit_log set action = 'session.logout' where id = 2").execute(&app.db.pool).await.unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: 2, kind: ProblemKind::Changed }));
    sqlx::query("update audit_log set action = 'session.login' where id = 2").execute(&app.db.pool).await.unwrap();
    assert_eq!(problem(&app).await, None, "restored");

    // 2. A removed middle entry.
    let third = entry(&app, 3).await;
    sqlx::query("delete from audit_log where id = 3").execute(&app.db.pool).await.unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: 3, kind: ProblemKind::Removed }));
    let mut conn = app.db.pool.acquire().await.unwrap();
    chain::insert(&mut conn, &third).await.unwrap();
    assert_eq!(problem(&app).await, None, "restored");

    // 3. A forged row written with SQL after the head, with a made-up hash.
    let head = entry(&app, n).await;
    sqlx::query(
        "insert into audit_log (id, at, actor_username, actor_roles, action, detail, prev_hash, hash) \
         values ($1, $2, 'admin', 'admin', 'member.unmask', '{}', $3, $4)",
    )
    .bind(n + 1)
    .bind(head.at + 1)
    .bind(&head.hash)
    .bind("ab".repeat(32))
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: n + 1, kind: ProblemKind::Changed }));
    sqlx::query("delete from audit_log where id = $1").bind(n + 1).execute(&app.db.pool).await.unwrap();

    // 4. A forged row with a correctly computed hash but an id out of sequence.
    let mut forged = head.clone();
    forged.id = 1000;
    forged.prev_hash = head.hash.clone();
    forged.hash = chain::entry_hash(&forged);
    chain::insert(&mut conn, &forged).await.unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: 1000, kind: ProblemKind::Inserted }));
    sqlx::query("delete from audit_log where id = 1000").execute(&app.db.pool).await.unwrap();

    // 5. A rewritten entry whose hash was recomputed: the next entry no longer chains to it.
    let mut second = entry(&app, 2).await;
    second.client_addr = Some("10.0.0.1".into());
    second.hash = chain::entry_hash(&second);
    sqlx::query("update audit_log set client_addr = $1, hash = $2 where id = 2")
        .bind(&second.client_addr)
        .bind(&second.hash)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: 2, kind: ProblemKind::Changed }));
});

both_backends!(pruning_keeps_the_chain_verifiable, |app| {
    let actor = Actor::system("test");
    let old = fengqiao::db::now_ms() - 200 * 86_400_000;
    for i in 0..3 {
        let e = chain::NewEntry {
            at: old + i,
            actor: &actor,
            action: audit::action::NODE_CREATE,
            object_type: Some("node"),
            object_id: Some("1"),
            reason: None,
            detail: "{}".into(),
        };
        chain::append(&app.db, e).await.unwrap();
    }
    history(&app).await;
    let total = app.count("audit_log").await;

    let refused = audit::prune(&app.db, 30).await;
    assert!(matches!(refused, Err(chain::PruneError::TooShort { min: 180 })), "{refused:?}");
    assert_eq!(app.count("audit_log").await, total);

    let report = audit::prune(&app.db, 190).await.unwrap();
    assert_eq!((report.pruned, report.last_pruned_id), (3, Some(3)));
    assert_eq!(app.count("audit_log").await, total - 3);
    let v = audit::verify(&app.db).await.unwrap();
    assert!(v.ok(), "{v}");
    assert_eq!((v.from_checkpoint, v.checked), (Some(3), (total - 3) as u64));

    // The chain continues across the cut, and removals after it still show.
    audit::record(&app.db, &actor, audit::action::AUDIT_PRUNE, None, None, json!({})).await.unwrap();
    assert!(audit::verify(&app.db).await.unwrap().ok());
    sqlx::query("delete from audit_log where id = 4").execute(&app.db.pool).await.unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: 4, kind: ProblemKind::Removed }));
});

both_backends!(administrators_browse_and_export_the_log, |app| {
    history(&app).await;
    let login = app
        .client
        .post(format!("{}/login", app.addr))
        .form(&[("username", ADMIN), ("password", PASSWORD), ("next", "/admin/audit")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let page = app.client.get(format!("{}/admin/audit?action=session.login_failed", app.addr)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("审计日志") && html.contains("登录失败") && html.contains("共 1 条"), "{html}");
    assert!(html.contains("href=\"/admin/audit\""), "the menu links the page");

    let reversed =
        app.client.get(format!("{}/admin/audit?from=2026-02-01&to=2026-01-01", app.addr)).send().await.unwrap();
    assert!(reversed.text().await.unwrap().contains("结束日期不能早于开始日期"));

    let csv = app.client.get(format!("{}/admin/audit.csv?actor=admin", app.addr)).send().await.unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let body = csv.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].starts_with("\u{feff}\"序号\",\"时间\""), "{}", lines[0]);
    assert_eq!(lines.len(), 1 + 5, "failed login, login, two creates, browser login:\n{body}");
    let last = app.get("/api/v1/audit?per_page=1", &app.admin().await).await;
    assert_eq!(last.body["entries"][0]["action"], "session.login", "the API login");
    let export = app.get("/api/v1/audit?action=audit.export", &app.admin().await).await;
    assert_eq!(export.body["total"], 1, "the export itself is recorded");

    // Others are refused, and the menu does not offer the page.
    let comm: i64 =
        sqlx::query_scalar("select id from nodes where kind = 'community'").fetch_one(&app.db.pool).await.unwrap();
    app.add_user("sq1", comm, &["grid_leader"]).await;
    let other =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    other
        .post(format!("{}/login", app.addr))
        .form(&[("username", "sq1"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(other.get(format!("{}/admin/audit", app.addr)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        other.get(format!("{}/admin/audit.csv", app.addr)).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let home = other.get(format!("{}/", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(!home.contains("/admin/audit"));
});

both_backends!(a_community_administrator_reads_only_their_communitys_entries, |app| {
    let district = app.admin().await;
    let (sub, a) = small_tree(&app, &district).await;
    let b = app
        .create(&district, json!({"parent_id": sub, "kind": "community", "name": "三桥社区", "code": "140107001002"}))
        .await["id"]
        .as_i64()
        .unwrap();
    app.add_user("a_admin", a, &["admin"]).await;
    app.add_user("b_admin", b, &["admin"]).await;
    for name in ["a_admin", "ghost"] {
        let body = json!({"username": name, "password": "wrong"});
        let r = app.call(Method::POST, "/api/v1/session", None, Some(body)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let a_token = app.login("a_admin", PASSWORD).await;
    let b_token = app.login("b_admin", PASSWORD).await;
    for (token, node) in [(&b_token, b), (&district, a)] {
        let path = format!("/api/v1/nodes/{node}");
        let r = app.call(Method::PATCH, &path, Some(token), Some(json!({"version": 1, "households": 120}))).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    // Community 甲's administrator: what was done in or to 甲 (by anyone),
    // nothing of 乙, of the subdistrict, or of names that are no account here.
    let log = app.get("/api/v1/audit?per_page=200", &a_token).await;
    assert_eq!(log.status, StatusCode::OK);
    let seen: Vec<(&str, &str)> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor_username"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("node.update", ADMIN),
            ("session.login", "a_admin"),
            ("session.login_failed", "a_admin"),
            ("node.create", ADMIN)
        ],
        "{}",
        log.body
    );
    assert_eq!(log.body["total"], 4);
    // Filters narrow the reach; they never widen it.
    let theirs = app.get("/api/v1/audit?actor=b_admin", &a_token).await;
    assert_eq!(theirs.body["total"], 0);
    let by_object = app.get(&format!("/api/v1/audit?object_type=node&object_id={b}"), &a_token).await;
    assert_eq!(by_object.body["total"], 0);

    // The district's administrator still reads every entry.
    let all = app.get("/api/v1/audit?per_page=200", &district).await;
    assert_eq!(all.body["total"].as_i64(), Some(app.count("audit_log").await));
    assert!(all.body.to_string().contains("b_admin") && all.body.to_string().contains("ghost"));

    // The page and the export read the same reach.
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = browser
        .post(format!("{}/login", app.addr))
        .header("origin", &app.addr)
        .form(&[("username", "a_admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let page = browser.get(format!("{}/admin/audit", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("共 5 条") && !page.contains("b_admin") && !page.contains("ghost"), "{page}");
    let csv = browser.get(format!("{}/admin/audit.csv", app.addr)).send().await.unwrap().text().await.unwrap();
    assert_eq!(csv.lines().count(), 1 + 5, "{csv}");
    assert!(!csv.contains("b_admin") && !csv.contains("ghost") && !csv.contains("三桥社区"), "{csv}");
});
