//! The audit log: every write and login is recorded in a hash chain that
//! `audit::verify` checks, naming the first entry that was changed,
//! removed or inserted; administrators search and export it.

use crate::{both_backends, helpers::*, tree::small_tree};
use fengqiao::{
    audit::{self, chain, Actor, Anchor, Entry, Problem, ProblemKind},
    platform::crypto::{Crypto, KeyRing},
};
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

fn anchor_path(app: &TestApp) -> std::path::PathBuf {
    Anchor::path(&app.data_dir)
}

/// What `fengqiao audit verify` finds: the chain checked against the
/// anchored head in the data directory.
async fn anchored_problem(app: &TestApp) -> Option<Problem> {
    let anchor = Anchor::read(&anchor_path(app)).unwrap();
    assert!(anchor.is_some(), "an anchor was written");
    audit::verify_anchored(&app.db, anchor.as_ref()).await.unwrap().problem
}

/// An attacker who owns the database server: the append-only triggers
/// are no obstacle to them, so the tamper stories start by dropping them.
async fn drop_guards(app: &TestApp) {
    let sql: &[&str] = match app.backend {
        Backend::Sqlite => &[
            "drop trigger audit_log_no_update",
            "drop trigger audit_log_no_delete",
            "drop trigger audit_checkpoints_no_update",
            "drop trigger audit_checkpoints_no_delete",
        ],
        Backend::Postgres => &[
            "drop trigger audit_log_guard on audit_log",
            "drop trigger audit_checkpoints_append_only on audit_checkpoints",
        ],
    };
    for q in sql {
        sqlx::query(q).execute(&app.db.pool).await.unwrap();
    }
}

/// The attacker's own key ring: they can compute HMACs, just not with ours.
fn attacker_mac(e: &Entry) -> String {
    let id = e.key_id.clone().unwrap_or_else(|| "k1".into());
    let ring = KeyRing {
        active: id.clone(),
        keys: [(id, "00112233445566778899aabbccddeeff".to_string())].into(),
        index_key: "ab".repeat(32),
    };
    chain::entry_mac(&Crypto::in_memory(ring).unwrap(), e).unwrap()
}

/// `n` entries appended the way the server does, then anchored.
async fn anchored_history(app: &TestApp, n: i64) -> i64 {
    let actor = Actor::system("test");
    for i in 0..n {
        audit::record(&app.db, &actor, fengqiao::tree::action::NODE_UPDATE, None, None, json!({"i": i})).await.unwrap();
    }
    audit::anchor(&app.db, &anchor_path(app), None).await.unwrap();
    assert_eq!(anchored_problem(app).await, None);
    app.count("audit_log").await
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
    drop_guards(&app).await;

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

    // 4. A forged row chained on with a MAC, but an id out of sequence.
    let mut forged = head.clone();
    forged.id = 1000;
    forged.prev_hash = head.hash.clone();
    forged.hash = attacker_mac(&forged);
    chain::insert(&mut conn, &forged).await.unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: 1000, kind: ProblemKind::Inserted }));
    sqlx::query("delete from audit_log where id = 1000").execute(&app.db.pool).await.unwrap();

    // 5. A rewritten entry whose plain SM3 hash was recomputed.
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

both_backends!(the_database_refuses_to_change_or_delete_entries, |app| {
    history(&app).await;
    let n = app.count("audit_log").await;
    let refused = [
        "update audit_log set action = 'session.logout' where id = 2",
        "update audit_log set hash = prev_hash",
        "delete from audit_log where id = 1",
        "delete from audit_log",
        "insert into audit_checkpoints (id, at, last_pruned_id, last_pruned_hash, pruned_count) values (1, 0, 0, 'x', 0)",
    ];
    for (k, q) in refused.iter().enumerate() {
        let r = sqlx::query(q).execute(&app.db.pool).await;
        // The checkpoint insert is allowed (the MAC check catches it); only its change and removal are refused.
        if k == 4 {
            r.unwrap();
            continue;
        }
        assert!(r.is_err(), "{q} was allowed");
    }
    for q in ["update audit_checkpoints set last_pruned_id = 99", "delete from audit_checkpoints"] {
        assert!(sqlx::query(q).execute(&app.db.pool).await.is_err(), "{q} was allowed");
    }
    if app.backend == Backend::Postgres {
        assert!(sqlx::query("truncate audit_log").execute(&app.db.pool).await.is_err());
    }
    assert_eq!(app.count("audit_log").await, n, "nothing was removed");
    assert_eq!(entry(&app, 2).await.action, "session.login", "nothing was changed");
});

both_backends!(cutting_the_tail_back_past_the_anchor_is_named, |app| {
    let n = anchored_history(&app, 6).await;
    drop_guards(&app).await;
    let (head, second_last) = (entry(&app, n).await, entry(&app, n - 1).await);

    // The last two entries deleted: the chain that is left is intact,
    // but the anchor says it reached further.
    sqlx::query("delete from audit_log where id > $1").bind(n - 2).execute(&app.db.pool).await.unwrap();
    assert_eq!(problem(&app).await, None, "without the anchor the cut is invisible");
    assert_eq!(anchored_problem(&app).await, Some(Problem { id: n - 1, kind: ProblemKind::Cut { through: n } }));
    let report = audit::verify_anchored(&app.db, Anchor::read(&anchor_path(&app)).unwrap().as_ref()).await.unwrap();
    assert!(report.to_string().contains(&format!("第 #{} 至 #{n} 条", n - 1)), "{report}");

    // Nor may the anchor be moved back onto the shorter chain.
    assert!(audit::anchor(&app.db, &anchor_path(&app), None).await.is_err());
    assert_eq!(Anchor::read(&anchor_path(&app)).unwrap().unwrap().id, n);

    // Nor may new entries written over the gap cover it.
    audit::record(&app.db, &Actor::system("test"), fengqiao::tree::action::NODE_UPDATE, None, None, json!({}))
        .await
        .unwrap();
    audit::record(&app.db, &Actor::system("test"), fengqiao::tree::action::NODE_UPDATE, None, None, json!({}))
        .await
        .unwrap();
    assert!(audit::anchor(&app.db, &anchor_path(&app), None).await.is_err());
    assert_eq!(anchored_problem(&app).await, Some(Problem { id: n, kind: ProblemKind::Changed }));
    let mut conn = app.db.pool.acquire().await.unwrap();
    sqlx::query("delete from audit_log where id > $1").bind(n - 2).execute(&app.db.pool).await.unwrap();
    chain::insert(&mut conn, &second_last).await.unwrap();
    chain::insert(&mut conn, &head).await.unwrap();
    assert_eq!(anchored_problem(&app).await, None, "restored");

    // Every entry deleted.
    sqlx::query("delete from audit_log").execute(&app.db.pool).await.unwrap();
    assert_eq!(problem(&app).await, None, "an empty log looks like a new one");
    assert_eq!(anchored_problem(&app).await, Some(Problem { id: 1, kind: ProblemKind::Cut { through: n } }));
});

both_backends!(a_forged_entry_correctly_chained_on_is_caught, |app| {
    let n = anchored_history(&app, 3).await;
    drop_guards(&app).await;
    let head = entry(&app, n).await;
    let mut conn = app.db.pool.acquire().await.unwrap();

    // Chained on with a MAC under a key id of ours, but the attacker's key.
    let mut forged = head.clone();
    forged.id = n + 1;
    forged.action = "member.unmask".into();
    forged.prev_hash = head.hash.clone();
    forged.hash = attacker_mac(&forged);
    chain::insert(&mut conn, &forged).await.unwrap();
    assert_eq!(anchored_problem(&app).await, Some(Problem { id: n + 1, kind: ProblemKind::Changed }));
    sqlx::query("delete from audit_log where id = $1").bind(n + 1).execute(&app.db.pool).await.unwrap();

    // Chained on in the old unkeyed form, which anyone can compute.
    forged.key_id = None;
    forged.hash = chain::entry_hash(&forged);
    chain::insert(&mut conn, &forged).await.unwrap();
    assert_eq!(anchored_problem(&app).await, Some(Problem { id: n + 1, kind: ProblemKind::Changed }));
    assert_eq!(problem(&app).await, Some(Problem { id: n + 1, kind: ProblemKind::Changed }), "also without the anchor");
});

both_backends!(a_changed_entry_with_every_later_hash_recomputed_is_caught, |app| {
    let n = anchored_history(&app, 5).await;
    drop_guards(&app).await;
    // The attacker rewrites entry 2 and recomputes 2..n, in the keyed form
    // under their own key, then again in the plain form.
    for keyed in [true, false] {
        let mut prev = entry(&app, 1).await.hash;
        for id in 2..=n {
            let mut e = entry(&app, id).await;
            if id == 2 {
                e.detail = r#"{"i":"rewritten"}"#.into();
            }
            e.prev_hash = prev;
            if !keyed {
                e.key_id = None;
            }
            e.hash = if keyed { attacker_mac(&e) } else { chain::entry_hash(&e) };
            sqlx::query("update audit_log set detail = $1, prev_hash = $2, hash = $3, key_id = $4 where id = $5")
                .bind(&e.detail)
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .bind(&e.key_id)
                .bind(id)
                .execute(&app.db.pool)
                .await
                .unwrap();
            prev = e.hash;
        }
        assert_eq!(anchored_problem(&app).await, Some(Problem { id: 2, kind: ProblemKind::Changed }), "keyed: {keyed}");
    }
});

both_backends!(deleting_the_oldest_entries_behind_a_forged_checkpoint_is_caught, |app| {
    let n = anchored_history(&app, 6).await;
    drop_guards(&app).await;
    let third = entry(&app, 3).await;
    sqlx::query("delete from audit_log where id <= 3").execute(&app.db.pool).await.unwrap();
    assert_eq!(problem(&app).await, Some(Problem { id: 1, kind: ProblemKind::Removed }));

    // A checkpoint as `prune` wrote them before they were MAC'd, then one
    // with a made-up MAC.
    for (key_id, mac) in [(None, None), (Some("k1"), Some("ab".repeat(32)))] {
        sqlx::query("delete from audit_checkpoints").execute(&app.db.pool).await.unwrap();
        sqlx::query(
            "insert into audit_checkpoints (id, at, last_pruned_id, last_pruned_hash, pruned_count, key_id, mac) \
             values (1, $1, 3, $2, 3, $3, $4)",
        )
        .bind(fengqiao::platform::db::now_ms())
        .bind(&third.hash)
        .bind(key_id)
        .bind(&mac)
        .execute(&app.db.pool)
        .await
        .unwrap();
        let cut = Some(Problem { id: 1, kind: ProblemKind::Cut { through: 3 } });
        assert_eq!(problem(&app).await, cut, "{key_id:?}");
        assert_eq!(anchored_problem(&app).await, cut, "{key_id:?}");
    }
    assert_eq!(app.count("audit_log").await, n - 3);
});

both_backends!(plain_sm3_chains_keep_verifying_across_the_upgrade_and_a_key_rotation, |app| {
    // Entries as earlier versions wrote them: plain SM3, no key id.
    let mut conn = app.db.pool.acquire().await.unwrap();
    let mut prev = chain::GENESIS.to_string();
    for id in 1..=3 {
        let mut e = Entry {
            id,
            at: 1_700_000_000_000 + id,
            actor_user_id: None,
            actor_username: "system:test".into(),
            actor_roles: String::new(),
            actor_node_id: None,
            client_addr: None,
            action: fengqiao::tree::action::NODE_CREATE.into(),
            object_type: Some("node".into()),
            object_id: Some(id.to_string()),
            reason: None,
            detail: "{}".into(),
            prev_hash: prev.clone(),
            hash: String::new(),
            key_id: None,
        };
        e.hash = chain::entry_hash(&e);
        prev = e.hash.clone();
        chain::insert(&mut conn, &e).await.unwrap();
    }
    assert_eq!(problem(&app).await, None);
    // The first anchor fixes where keyed entries begin.
    let first = audit::anchor(&app.db, &anchor_path(&app), None).await.unwrap();
    assert_eq!((first.id, first.mac_from), (3, 4));

    let actor = Actor::system("test");
    audit::record(&app.db, &actor, fengqiao::tree::action::NODE_UPDATE, None, None, json!({})).await.unwrap();
    let keys = chain::keys().unwrap();
    let before = entry(&app, 4).await.key_id.unwrap();
    let rotated = keys.add_active_key().unwrap();
    audit::record(&app.db, &actor, fengqiao::tree::action::NODE_UPDATE, None, None, json!({})).await.unwrap();
    assert_eq!(entry(&app, 5).await.key_id.as_deref(), Some(rotated.as_str()));
    assert_ne!(before, rotated);
    let a = audit::anchor(&app.db, &anchor_path(&app), None).await.unwrap();
    assert_eq!((a.id, a.mac_from, a.key_id.as_str()), (5, 4, rotated.as_str()));
    let report = audit::verify_anchored(&app.db, Some(&a)).await.unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.checked, 5);

    // A plain entry is no longer accepted after the anchored switch.
    drop_guards(&app).await;
    let mut e = entry(&app, 5).await;
    e.id = 6;
    e.prev_hash = e.hash.clone();
    e.key_id = None;
    e.hash = chain::entry_hash(&e);
    chain::insert(&mut conn, &e).await.unwrap();
    assert_eq!(anchored_problem(&app).await, Some(Problem { id: 6, kind: ProblemKind::Changed }));
});

both_backends!(a_forged_anchor_file_is_reported, |app| {
    anchored_history(&app, 2).await;
    let path = anchor_path(&app);
    let mut a = Anchor::read(&path).unwrap().unwrap();
    a.id += 10;
    std::fs::write(&path, serde_json::to_vec(&a).unwrap()).unwrap();
    assert_eq!(anchored_problem(&app).await, Some(Problem { id: a.id, kind: ProblemKind::BadAnchor }));
});

both_backends!(each_anchor_is_posted_to_the_witness, |app| {
    use axum::{routing::post, Json, Router};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let router = Router::new().route(
        "/heads",
        post(move |Json(body): Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                tx.send(body).unwrap();
                StatusCode::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/heads", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    history(&app).await;
    let witness = audit::HttpWitness::new(&url);
    let a = audit::anchor(&app.db, &anchor_path(&app), Some(&witness)).await.unwrap();
    let got = rx.recv().await.unwrap();
    let seen: Anchor = serde_json::from_value(got).unwrap();
    assert_eq!(seen, a);
    assert!(seen.signature_ok(&chain::keys().unwrap()), "the witness holds a head it can show later");
    assert_eq!(seen.id, app.count("audit_log").await);
    server.abort();
});

both_backends!(a_failed_login_with_an_unknown_name_leaves_no_trace_of_it, |app| {
    let typed = ["13912345678", "Tr0ub4dor&3-secret"];
    for name in typed {
        let r = app.call(Method::POST, "/api/v1/session", None, Some(json!({"username": name, "password": "x"}))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let again =
        app.call(Method::POST, "/api/v1/session", None, Some(json!({"username": typed[0], "password": "y"}))).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let token = app.admin().await;
    let log = app.get("/api/v1/audit?action=session.login_failed", &token).await;
    let names: Vec<&str> =
        log.body["entries"].as_array().unwrap().iter().map(|e| e["actor_username"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3);
    assert!(names.iter().all(|n| n.starts_with("unknown:")), "{names:?}");
    assert_eq!(names[0], names[2], "the same typing shows as the same fingerprint");
    assert_ne!(names[0], names[1]);
    let body = log.body.to_string();
    for name in typed {
        assert!(!body.contains(name), "the API shows {name}");
    }
    // Nowhere in the stored rows either.
    let rows =
        sqlx::query(&format!("select {} from audit_log", chain::ENTRY_COLS)).fetch_all(&app.db.pool).await.unwrap();
    for row in &rows {
        let e = chain::entry_from_row(row).unwrap();
        let stored = serde_json::to_string(&e).unwrap();
        for name in typed {
            assert!(!stored.contains(name), "stored: {stored}");
        }
    }
    assert!(audit::verify(&app.db).await.unwrap().ok());
});

both_backends!(pruning_keeps_the_chain_verifiable, |app| {
    let actor = Actor::system("test");
    let old = fengqiao::platform::db::now_ms() - 200 * 86_400_000;
    for i in 0..3 {
        let e = chain::NewEntry {
            at: old + i,
            actor: &actor,
            action: fengqiao::tree::action::NODE_CREATE,
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
    // Pruning is anchored like any other head.
    audit::anchor(&app.db, &anchor_path(&app), None).await.unwrap();
    assert_eq!(anchored_problem(&app).await, None);
    drop_guards(&app).await;
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
    assert!(all.body.to_string().contains("b_admin") && all.body.to_string().contains("unknown:"));

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
    assert!(page.contains("共 5 条") && !page.contains("b_admin") && !page.contains("unknown:"), "{page}");
    let csv = browser.get(format!("{}/admin/audit.csv", app.addr)).send().await.unwrap().text().await.unwrap();
    assert_eq!(csv.lines().count(), 1 + 5, "{csv}");
    assert!(!csv.contains("b_admin") && !csv.contains("unknown:") && !csv.contains("三桥社区"), "{csv}");
});
