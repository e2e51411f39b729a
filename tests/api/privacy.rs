//! Personal data at rest: mobile numbers are stored SM4-GCM encrypted,
//! masked in every response, searchable through the blind index, shown in
//! full only to those allowed with a reason (and audited), and survive key
//! rotation intact.

use crate::{both_backends, helpers::*, tree::small_tree};
use fengqiao::crypto::{rotate, Crypto, Field};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn worker(name: &str, mobile: &str) -> Value {
    json!({"role": "grid_worker", "name": name, "gender": "2", "ethnicity": "01", "political_status": "01",
        "birth_date": "19850312", "education": "30", "mobile": mobile})
}

/// A community with one grid; returns (community id, grid id).
async fn grid(app: &TestApp, token: &str) -> (i64, i64) {
    let (_, comm) = small_tree(app, token).await;
    let g = app
        .create(token, json!({"parent_id": comm, "kind": "grid", "name": "第一网格", "polygon": rect(112.56, 37.88, 112.57, 37.89)}))
        .await;
    (comm, g["id"].as_i64().unwrap())
}

async fn add(app: &TestApp, token: &str, grid: i64, name: &str, mobile: &str) -> i64 {
    let r = app.post(&format!("/api/v1/nodes/{grid}/members"), token, worker(name, mobile)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

both_backends!(mobile_numbers_are_encrypted_masked_and_searchable, |app| {
    let token = app.admin().await;
    let (comm, grid) = grid(&app, &token).await;
    let id = add(&app, &token, grid, "王秀英", "13912345678").await;
    add(&app, &token, grid, "李建国", "13800138000").await;

    let stored: (String, String) = sqlx::query_as("select mobile_enc, mobile_idx from node_members where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(stored.0.starts_with(&format!("v1:{}:", app.crypto.active_key_id())), "{}", stored.0);
    assert!(!stored.0.contains("5678") && !stored.1.contains("5678"));
    assert_eq!(app.crypto.decrypt(Field::MEMBER_MOBILE, &stored.0).unwrap(), "13912345678");

    let list = app.get(&format!("/api/v1/nodes/{grid}/members"), &token).await;
    let shown: Vec<&str> =
        list.body["members"].as_array().unwrap().iter().map(|m| m["mobile"].as_str().unwrap()).collect();
    assert_eq!(shown, ["139****5678", "138****8000"]);
    assert!(!list.body.to_string().contains("13912345678"));

    // The blind index finds the member from the community above the grid,
    // however the number is written.
    for q in ["13912345678", "%2B86%20139-1234-5678"] {
        let found = app.get(&format!("/api/v1/nodes/{comm}/members?mobile={q}"), &token).await;
        assert_eq!(found.status, StatusCode::OK);
        let ids: Vec<i64> =
            found.body["members"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [id], "{q}");
        assert_eq!(found.body["members"][0]["mobile"], "139****5678");
    }
    let none = app.get(&format!("/api/v1/nodes/{comm}/members?mobile=13912345679"), &token).await;
    assert_eq!(none.body["members"].as_array().unwrap().len(), 0);
    let bad = app.get(&format!("/api/v1/nodes/{comm}/members?mobile=12345"), &token).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.code(), "phone.invalid");

    if app.backend == Backend::Sqlite {
        sqlx::query("pragma wal_checkpoint(truncate)").execute(&app.db.pool).await.unwrap();
        for file in app.sqlite_files() {
            let Ok(bytes) = std::fs::read(&file) else { continue };
            for plain in ["13912345678", "13800138000"] {
                assert!(
                    !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
                    "{plain} found in plain text in {}",
                    file.display()
                );
            }
        }
    }
});

both_backends!(unmasking_needs_permission_a_reason_and_scope_and_is_audited, |app| {
    let token = app.admin().await;
    let (comm, grid) = grid(&app, &token).await;
    let id = add(&app, &token, grid, "王秀英", "13912345678").await;
    let path = format!("/api/v1/members/{id}/unmask");

    for reason in ["", "   "] {
        let r = app.post(&path, &token, json!({"reason": reason})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.code(), "audit.reason_required");
        assert_eq!(r.body["error"]["message"], "查看完整信息须填写事由");
    }
    let before = app.count("audit_log").await;
    let r = app.post(&path, &token, json!({"reason": "核实网格员身份后电话回访"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["mobile"], "13912345678");
    assert_eq!(app.count("audit_log").await, before + 1);
    let log = app.get("/api/v1/audit?action=member.unmask", &token).await;
    let e = &log.body["entries"][0];
    assert_eq!(e["id"], r.body["audit_id"]);
    assert_eq!((e["actor_username"].as_str(), e["object_type"].as_str()), (Some(ADMIN), Some("member")));
    assert_eq!(e["object_id"], id.to_string());
    assert_eq!(e["reason"], "核实网格员身份后电话回访");
    assert!(!log.body.to_string().contains("13912345678"), "the audit log never holds the number");

    // A grid worker may not unmask at all.
    app.add_user("wg1", grid, &["grid_worker"]).await;
    let wg = app.login("wg1", PASSWORD).await;
    let r = app.post(&path, &wg, json!({"reason": "想看"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // An administrator of another community sees a 404, as for a missing member.
    let other = app
        .create(
            &token,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "三桥街道", "code": "140107002"}),
        )
        .await;
    app.add_user("other_admin", other["id"].as_i64().unwrap(), &["admin"]).await;
    let oa = app.login("other_admin", PASSWORD).await;
    let out_of_scope = app.post(&path, &oa, json!({"reason": "核实"})).await;
    let missing = app.post("/api/v1/members/999999/unmask", &oa, json!({"reason": "核实"})).await;
    assert_eq!(out_of_scope.status, StatusCode::NOT_FOUND);
    assert_eq!(out_of_scope.body, missing.body);
    let _ = comm;
});

both_backends!(key_rotation_reencrypts_every_row_without_loss, |app| {
    let token = app.admin().await;
    let (comm, grid) = grid(&app, &token).await;
    // More rows than one rotation batch, written the way the demo does.
    let n = rotate::BATCH as usize + 37;
    let mobiles: Vec<String> = (0..n).map(|i| format!("1391234{:04}", i)).collect();
    for (i, m) in mobiles.iter().enumerate() {
        let sealed = app.crypto.seal_mobile(&m.parse().unwrap()).unwrap();
        sqlx::query(
            "insert into node_members (node_id, role, name, gender, ethnicity, political_status, birth_date, \
             education, mobile_enc, mobile_idx, started_at, created_at) values ($1,'grid_worker',$2,'1','01','13','19800101','30',$3,$4,0,0)",
        )
        .bind(grid)
        .bind(format!("人员{i}"))
        .bind(sealed.enc)
        .bind(sealed.idx)
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let old_key = app.crypto.active_key_id();

    let report = rotate::rotate(&app.db, &app.crypto).await.unwrap();
    assert_ne!(report.new_key_id, old_key);
    assert_eq!(
        report.columns,
        [("node_members.mobile_enc".to_string(), n as u64), ("orders.reporter_contact".to_string(), 0)]
    );

    let rows: Vec<(String, String)> =
        sqlx::query_as("select name, mobile_enc from node_members order by id").fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(rows.len(), n);
    for (i, (name, enc)) in rows.iter().enumerate() {
        assert_eq!(name, &format!("人员{i}"));
        assert_eq!(Crypto::key_id_of(enc), Some(report.new_key_id.as_str()));
        assert_eq!(app.crypto.decrypt(Field::MEMBER_MOBILE, enc).unwrap(), mobiles[i]);
    }
    // The blind index is unchanged by rotation, so search still works.
    let found = app.get(&format!("/api/v1/nodes/{comm}/members?mobile={}", mobiles[n - 1]), &token).await;
    assert_eq!(found.body["members"].as_array().unwrap().len(), 1);
    // A second rotation finds nothing left under the old key but still re-encrypts all.
    let again = rotate::rotate(&app.db, &app.crypto).await.unwrap();
    assert_eq!(again.columns[0].1, n as u64);
});

both_backends!(numbers_from_before_encryption_are_sealed_at_start, |app| {
    let token = app.admin().await;
    let (_, grid) = grid(&app, &token).await;
    sqlx::query(
        "insert into node_members (node_id, role, name, gender, ethnicity, political_status, birth_date, \
         education, mobile_plain, started_at, created_at) values ($1,'grid_worker','旧数据','1','01','13','19800101','30','13612345678',0,0)",
    )
    .bind(grid)
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(rotate::seal_pending(&app.db, &app.crypto).await.unwrap(), 1);
    assert_eq!(rotate::seal_pending(&app.db, &app.crypto).await.unwrap(), 0, "idempotent");
    let (plain, enc): (Option<String>, String) =
        sqlx::query_as("select mobile_plain, mobile_enc from node_members").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(plain, None);
    assert_eq!(app.crypto.decrypt(Field::MEMBER_MOBILE, &enc).unwrap(), "13612345678");
    let list = app.get(&format!("/api/v1/nodes/{grid}/members"), &token).await;
    assert_eq!(list.body["members"][0]["mobile"], "136****5678");
});

both_backends!(reporters_contacts_are_encrypted_masked_and_read_with_a_reason, |app| {
    let token = app.admin().await;
    let (_, grid) = grid(&app, &token).await;
    let center: Value = app.get(&format!("/api/v1/nodes/{grid}"), &token).await.body;
    let (lon, lat) = (center["node"]["lon"].as_f64(), center["node"]["lat"].as_f64());
    let (lon, lat) = (lon.or(center["lon"].as_f64()).unwrap(), lat.or(center["lat"].as_f64()).unwrap());
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/portal/orders",
            None,
            Some(json!({"category_code": "0101", "title": "楼道堆放杂物", "description": "三单元楼道堆满纸箱,有火灾隐患。",
                "address": "3号楼3单元", "lon": lon, "lat": lat, "name": "刘女士", "contact": "13900001111"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(!r.body.to_string().contains("13900001111"), "the portal answer does not echo it");
    let id: i64 =
        sqlx::query_scalar("select id from orders order by id desc limit 1").fetch_one(&app.db.pool).await.unwrap();
    let stored: String = sqlx::query_scalar("select reporter_contact from orders where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains("1111"), "{stored}");
    assert_eq!(app.crypto.decrypt(Field::ORDER_CONTACT, &stored).unwrap(), "13900001111");

    // Staff see it masked, in the order and in lists.
    let order = app.get(&format!("/api/v1/orders/{id}"), &token).await;
    assert_eq!(order.body["order"]["reporter_contact_masked"], "139****1111", "{:?}", order.body);
    let list = app.get("/api/v1/orders?queue=all", &token).await;
    assert!(list.body.to_string().contains("139****1111") && !list.body.to_string().contains("13900001111"));

    // In full only with the permission and a reason, and audited.
    app.add_user("wg_contact", grid, &["grid_worker"]).await;
    let worker = app.login("wg_contact", PASSWORD).await;
    let path = format!("/api/v1/orders/{id}/reporter-contact");
    assert_eq!(app.post(&path, &worker, json!({"reason": "回访"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, &token, json!({"reason": " "})).await.code(), "audit.reason_required");
    let full = app.post(&path, &token, json!({"reason": "办结后电话回访"})).await;
    assert_eq!(full.status, StatusCode::OK, "{:?}", full.body);
    assert_eq!(full.body["contact"], "13900001111");
    let (action, reason): (String, Option<String>) =
        sqlx::query_as("select action, reason from audit_log where id = $1")
            .bind(full.body["audit_id"].as_i64().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((action.as_str(), reason.as_deref()), ("order.contact_unmask", Some("办结后电话回访")));

    // Old plain text is sealed at start; rotation re-encrypts it.
    sqlx::query("update orders set reporter_contact = '13700002222', reporter_contact_masked = null where id = $1")
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    rotate::seal_pending(&app.db, &app.crypto).await.unwrap();
    let (sealed, masked): (String, String) =
        sqlx::query_as("select reporter_contact, reporter_contact_masked from orders where id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(masked, "137****2222");
    assert_eq!(app.crypto.decrypt(Field::ORDER_CONTACT, &sealed).unwrap(), "13700002222");
    let report = rotate::rotate(&app.db, &app.crypto).await.unwrap();
    assert_eq!(report.columns[1], ("orders.reporter_contact".to_string(), 1));

    if app.backend == Backend::Sqlite {
        sqlx::query("vacuum").execute(&app.db.pool).await.unwrap();
        sqlx::query("pragma wal_checkpoint(truncate)").execute(&app.db.pool).await.unwrap();
        for file in app.sqlite_files() {
            let Ok(bytes) = std::fs::read(&file) else { continue };
            for plain in ["13900001111", "13700002222"] {
                assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_bytes()), "{plain} in {}", file.display());
            }
        }
    }
});
