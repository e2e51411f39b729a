//! Personal data at rest: mobile and ID numbers are stored SM4-GCM
//! encrypted, masked in every response, searchable through the blind index,
//! shown in full only to those allowed with a reason (and audited), and
//! survive key rotation intact.

use crate::{both_backends, helpers::*, tree::small_tree};
use fengqiao::platform::crypto::{rotate, Crypto, Field};
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
        app.db.truncate_sqlite_log().await.unwrap();
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

    let report = rotate::rotate(&app.db, &app.crypto, &fengqiao::app::encrypted_columns()).await.unwrap();
    assert_ne!(report.new_key_id, old_key);
    assert_eq!(
        report.columns,
        [
            ("node_members.mobile_enc".to_string(), n as u64),
            ("node_members.id_number_enc".to_string(), 0),
            ("orders.reporter_contact".to_string(), 0)
        ]
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
    let again = rotate::rotate(&app.db, &app.crypto, &fengqiao::app::encrypted_columns()).await.unwrap();
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
    let report = rotate::rotate(&app.db, &app.crypto, &fengqiao::app::encrypted_columns()).await.unwrap();
    assert_eq!(report.columns[2], ("orders.reporter_contact".to_string(), 1));

    if app.backend == Backend::Sqlite {
        sqlx::query("vacuum").execute(&app.db.pool).await.unwrap();
        app.db.truncate_sqlite_log().await.unwrap();
        for file in app.sqlite_files() {
            let Ok(bytes) = std::fs::read(&file) else { continue };
            for plain in ["13900001111", "13700002222"] {
                assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_bytes()), "{plain} in {}", file.display());
            }
        }
    }
});

// 公民身份号码 of Taiyuan residents, checksum-valid.
const ID_WANG: &str = "140107198503120029";
const ID_LI: &str = "14010819900101100X";
/// A legacy 15-digit number; stored as its 18-character form.
const ID_ZHAO_15: &str = "140107720815031";
const ID_ZHAO: &str = "140107197208150319";

async fn add_with_id(app: &TestApp, token: &str, grid: i64, name: &str, mobile: &str, id_number: &str) -> Value {
    let mut body = worker(name, mobile);
    body["id_number"] = json!(id_number);
    let r = app.post(&format!("/api/v1/nodes/{grid}/members"), token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

fn ids_of(list: &Value) -> Vec<i64> {
    list["members"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

/// No plain ID number in the SQLite database file or its WAL.
async fn assert_not_in_sqlite_files(app: &TestApp, plains: &[&str]) {
    if app.backend != Backend::Sqlite {
        return;
    }
    app.db.truncate_sqlite_log().await.unwrap();
    let files = app.sqlite_files();
    assert!(!files.is_empty());
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        for plain in plains {
            assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_bytes()), "{plain} in {}", file.display());
        }
    }
}

both_backends!(id_numbers_are_encrypted_masked_and_searchable_within_scope, |app| {
    let token = app.admin().await;
    let (comm, grid) = grid(&app, &token).await;
    // A 网格员 registers with her 公民身份号码; the answer shows it masked.
    let wang = add_with_id(&app, &token, grid, "王秀英", "13912345678", ID_WANG).await;
    assert_eq!(wang["id_number_masked"], "140107********0029");
    assert!(!wang.to_string().contains(ID_WANG));
    let wang = wang["id"].as_i64().unwrap();
    // A lower-case x is the same number; a 15-digit one is converted.
    let li = add_with_id(&app, &token, grid, "李建国", "13800138000", &ID_LI.to_lowercase()).await;
    assert_eq!(li["id_number_masked"], "140108********100X");
    let zhao = add_with_id(&app, &token, grid, "赵国强", "13700137000", ID_ZHAO_15).await;
    assert_eq!(zhao["id_number_masked"], "140107********0319");
    // Existing members, and new ones without a number, have none: null.
    let none = add(&app, &token, grid, "刘芳", "13600136000").await;

    let (enc, idx): (String, String) =
        sqlx::query_as("select id_number_enc, id_number_idx from node_members where id = $1")
            .bind(wang)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(enc.starts_with(&format!("v1:{}:", app.crypto.active_key_id())), "{enc}");
    assert!(!enc.contains("19850312") && !idx.contains("19850312"));
    assert_eq!(app.crypto.decrypt(Field::MEMBER_ID_NUMBER, &enc).unwrap(), ID_WANG);
    // Bound to its column: the mobile number's key domain cannot open it.
    assert!(app.crypto.decrypt(Field::MEMBER_MOBILE, &enc).is_err());
    let stored_zhao: String = sqlx::query_scalar("select id_number_enc from node_members where name = '赵国强'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(app.crypto.decrypt(Field::MEMBER_ID_NUMBER, &stored_zhao).unwrap(), ID_ZHAO);
    let no_id: (Option<String>, Option<String>) =
        sqlx::query_as("select id_number_enc, id_number_idx from node_members where id = $1")
            .bind(none)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(no_id, (None, None));

    // Every route that returns members masks it: the list and searches.
    let list = app.get(&format!("/api/v1/nodes/{grid}/members"), &token).await;
    let shown: Vec<&Value> = list.body["members"].as_array().unwrap().iter().map(|m| &m["id_number_masked"]).collect();
    assert_eq!(
        shown,
        [&json!("140107********0029"), &json!("140108********100X"), &json!("140107********0319"), &Value::Null]
    );
    let by_mobile = app.get(&format!("/api/v1/nodes/{comm}/members?mobile=13912345678"), &token).await;
    assert_eq!(by_mobile.body["members"][0]["id_number_masked"], "140107********0029");
    for body in [&list.body, &by_mobile.body] {
        for plain in [ID_WANG, ID_LI, ID_ZHAO, ID_ZHAO_15] {
            assert!(!body.to_string().contains(plain));
        }
    }

    // Search by ID number through the blind index, from the community above
    // the grid, however the number is written.
    for (q, want) in [
        (ID_WANG, wang),
        (&ID_LI.to_lowercase(), li["id"].as_i64().unwrap()),
        (ID_ZHAO_15, zhao["id"].as_i64().unwrap()),
        (ID_ZHAO, zhao["id"].as_i64().unwrap()),
    ] {
        let found = app.get(&format!("/api/v1/nodes/{comm}/members?id_number={q}"), &token).await;
        assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
        assert_eq!(ids_of(&found.body), [want], "{q}");
    }
    let found = app.get(&format!("/api/v1/nodes/{comm}/members?id_number={ID_WANG}"), &token).await;
    assert_eq!(found.body["members"][0]["id_number_masked"], "140107********0029");
    assert_eq!(found.body["members"][0]["mobile"], "139****5678");
    // A valid number nobody holds finds nobody.
    let other = app.get(&format!("/api/v1/nodes/{comm}/members?id_number=140105197906051235"), &token).await;
    assert_eq!(ids_of(&other.body), Vec::<i64>::new());
    // The mobile number's index is another domain: no cross matches.
    let cross = app.get(&format!("/api/v1/nodes/{comm}/members?mobile=13912345678&id_number="), &token).await;
    assert_eq!(ids_of(&cross.body), [wang]);
    let both = app.get(&format!("/api/v1/nodes/{comm}/members?mobile=13912345678&id_number={ID_WANG}"), &token).await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(both.code(), "member.search_one_key");
    let bad = app.get(&format!("/api/v1/nodes/{comm}/members?id_number=140107198503120028"), &token).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.code(), "id_number.checksum");

    // Scoped like the mobile search: an administrator of another
    // subdistrict finds nobody in theirs and cannot search ours.
    let sub2 = app
        .create(
            &token,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "三桥街道", "code": "140107002"}),
        )
        .await;
    let sub2 = sub2["id"].as_i64().unwrap();
    app.add_user("other_admin", sub2, &["admin"]).await;
    let oa = app.login("other_admin", PASSWORD).await;
    let theirs = app.get(&format!("/api/v1/nodes/{sub2}/members?id_number={ID_WANG}"), &oa).await;
    assert_eq!((theirs.status, ids_of(&theirs.body)), (StatusCode::OK, vec![]));
    let ours = app.get(&format!("/api/v1/nodes/{comm}/members?id_number={ID_WANG}"), &oa).await;
    assert_eq!(ours.status, StatusCode::NOT_FOUND);
    // The root administrator finds her from the top.
    let top = app.get(&format!("/api/v1/nodes/{}/members?id_number={ID_WANG}", app.root_id), &token).await;
    assert_eq!(ids_of(&top.body), [wang]);
    // Once her membership ends she is no longer a current member.
    assert_eq!(
        app.call(reqwest::Method::DELETE, &format!("/api/v1/members/{wang}"), Some(&token), None).await.status,
        StatusCode::NO_CONTENT
    );
    let ended = app.get(&format!("/api/v1/nodes/{comm}/members?id_number={ID_WANG}"), &token).await;
    assert_eq!(ids_of(&ended.body), Vec::<i64>::new());

    // The grid page shows the masked number, never the full one.
    let login = app
        .client
        .post(format!("{}/login", app.addr))
        .form(&[("username", ADMIN), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let html = app.client.get(format!("{}/tree/{grid}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("公民身份号码") && html.contains("140108********100X") && html.contains("未登记"), "{html}");
    for plain in [ID_LI, ID_ZHAO, ID_ZHAO_15] {
        assert!(!html.contains(plain));
    }

    assert_not_in_sqlite_files(&app, &[ID_WANG, ID_LI, &ID_LI.to_lowercase(), ID_ZHAO, ID_ZHAO_15]).await;
});

both_backends!(an_invalid_id_number_is_refused_and_nothing_is_written, |app| {
    let token = app.admin().await;
    let (_, grid) = grid(&app, &token).await;
    let (members, audit) = (app.count("node_members").await, app.count("audit_log").await);
    // One digit off: the check character no longer matches.
    for (bad, code) in [
        ("140107198503120028", "id_number.checksum"),
        ("14010719850312002", "id_number.length"),
        ("1401071985031200X9", "id_number.format"),
    ] {
        let mut body = worker("王秀英", "13912345678");
        body["id_number"] = json!(bad);
        let r = app.post(&format!("/api/v1/nodes/{grid}/members"), &token, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(r.code(), code, "{bad}");
        assert_eq!(r.body["error"]["field"], "id_number");
        assert!(!r.body.to_string().contains(bad), "the answer does not echo the number");
    }
    let mut body = worker("王秀英", "13912345678");
    body["id_number"] = json!("140107198503120028");
    let r = app.post(&format!("/api/v1/nodes/{grid}/members"), &token, body).await;
    assert_eq!(r.body["error"]["message"], "身份证号校验位不正确，请核对后重新输入");
    assert_eq!((app.count("node_members").await, app.count("audit_log").await), (members, audit));
    // An empty field is no number at all.
    let mut body = worker("王秀英", "13912345678");
    body["id_number"] = json!("  ");
    let r = app.post(&format!("/api/v1/nodes/{grid}/members"), &token, body).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["id_number_masked"], Value::Null);
});

both_backends!(unmasking_an_id_number_needs_permission_a_reason_and_scope_and_is_audited, |app| {
    let token = app.admin().await;
    let (_, grid) = grid(&app, &token).await;
    let id = add_with_id(&app, &token, grid, "王秀英", "13912345678", ID_WANG).await["id"].as_i64().unwrap();
    let without = add(&app, &token, grid, "刘芳", "13600136000").await;
    let path = format!("/api/v1/members/{id}/unmask");

    for reason in ["", "   "] {
        let r = app.post(&path, &token, json!({"reason": reason, "field": "id_number"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.code(), "audit.reason_required");
    }
    let r = app.post(&path, &token, json!({"field": "id_number"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "no reason at all");
    let r = app.post(&path, &token, json!({"reason": "核实", "field": "passport"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown field");

    let before = app.count("audit_log").await;
    let r = app.post(&path, &token, json!({"reason": "核实网格员身份信息", "field": "id_number"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.body["field"].as_str(), r.body["id_number"].as_str()), (Some("id_number"), Some(ID_WANG)));
    assert!(r.body.get("mobile").is_none(), "only the field asked for");
    assert_eq!(app.count("audit_log").await, before + 1);
    let log = app.get("/api/v1/audit?action=member.unmask", &token).await;
    let e = &log.body["entries"][0];
    assert_eq!(e["id"], r.body["audit_id"]);
    assert_eq!(e["object_id"], id.to_string());
    assert_eq!(e["reason"], "核实网格员身份信息");
    assert_eq!(e["detail"]["field"], "id_number", "{e}");
    assert!(!log.body.to_string().contains(ID_WANG), "the audit log never holds the number");

    // The mobile number stays the default, and its entry says so.
    let m = app.post(&path, &token, json!({"reason": "电话回访"})).await;
    assert_eq!((m.body["field"].as_str(), m.body["mobile"].as_str()), (Some("mobile"), Some("13912345678")));
    assert!(m.body.get("id_number").is_none());
    let log = app.get("/api/v1/audit?action=member.unmask", &token).await;
    assert_eq!(log.body["entries"][0]["detail"]["field"], "mobile");

    // No ID number recorded answers like a missing member, and is not audited.
    let before = app.count("audit_log").await;
    let r = app
        .post(&format!("/api/v1/members/{without}/unmask"), &token, json!({"reason": "核实", "field": "id_number"}))
        .await;
    let missing =
        app.post("/api/v1/members/999999/unmask", &token, json!({"reason": "核实", "field": "id_number"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, missing.body);
    assert_eq!(app.count("audit_log").await, before);

    // The API document describes the choice, and the masked field.
    let doc = app.call(reqwest::Method::GET, "/api/v1/openapi.json", None, None).await.body;
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["UnmaskRequest"]["properties"]["field"].is_object(), "{}", schemas["UnmaskRequest"]);
    assert_eq!(schemas["UnmaskField"]["enum"], json!(["mobile", "id_number"]));
    assert!(schemas["Member"]["properties"]["id_number_masked"].is_object());
    assert!(schemas["NewMember"]["properties"]["id_number"].is_object());
    let params = doc["paths"]["/api/v1/nodes/{id}/members"]["get"]["parameters"].to_string();
    assert!(params.contains("\"id_number\""), "{params}");

    // A grid worker may not unmask.
    app.add_user("wg1", grid, &["grid_worker"]).await;
    let wg = app.login("wg1", PASSWORD).await;
    let r = app.post(&path, &wg, json!({"reason": "想看", "field": "id_number"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Out of scope: 404, the same answer as missing.
    let other = app
        .create(
            &token,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "三桥街道", "code": "140107002"}),
        )
        .await;
    app.add_user("other_admin", other["id"].as_i64().unwrap(), &["admin"]).await;
    let oa = app.login("other_admin", PASSWORD).await;
    let out = app.post(&path, &oa, json!({"reason": "核实", "field": "id_number"})).await;
    let missing = app.post("/api/v1/members/999999/unmask", &oa, json!({"reason": "核实", "field": "id_number"})).await;
    assert_eq!(out.status, StatusCode::NOT_FOUND);
    assert_eq!(out.body, missing.body);
});

both_backends!(key_rotation_keeps_id_numbers_readable_and_searchable, |app| {
    let token = app.admin().await;
    let (comm, grid) = grid(&app, &token).await;
    let wang = add_with_id(&app, &token, grid, "王秀英", "13912345678", ID_WANG).await["id"].as_i64().unwrap();
    add_with_id(&app, &token, grid, "李建国", "13800138000", ID_LI).await;
    add(&app, &token, grid, "刘芳", "13600136000").await;
    let old_key = app.crypto.active_key_id();

    let report = rotate::rotate(&app.db, &app.crypto, &fengqiao::app::encrypted_columns()).await.unwrap();
    assert_ne!(report.new_key_id, old_key);
    assert_eq!(report.columns[1], ("node_members.id_number_enc".to_string(), 2));
    let rows: Vec<(String, String)> =
        sqlx::query_as("select name, id_number_enc from node_members where id_number_enc is not null order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    for ((name, enc), plain) in rows.iter().zip([ID_WANG, ID_LI]) {
        assert_eq!(Crypto::key_id_of(enc), Some(report.new_key_id.as_str()), "{name}");
        assert_eq!(app.crypto.decrypt(Field::MEMBER_ID_NUMBER, enc).unwrap(), plain);
    }
    let found = app.get(&format!("/api/v1/nodes/{comm}/members?id_number={ID_WANG}"), &token).await;
    assert_eq!(ids_of(&found.body), [wang]);
    assert_eq!(found.body["members"][0]["id_number_masked"], "140107********0029");
    let r = app
        .post(&format!("/api/v1/members/{wang}/unmask"), &token, json!({"reason": "轮换后核对", "field": "id_number"}))
        .await;
    assert_eq!(r.body["id_number"], ID_WANG);
    assert_not_in_sqlite_files(&app, &[ID_WANG, ID_LI]).await;
});

both_backends!(numbers_residents_type_into_an_order_are_masked_for_staff_without_unmask_and_the_public, |app| {
    let l = crate::orders::setup(&app).await;
    let admin = app.admin().await;
    // A resident writes their numbers into the free text, where no field masks them.
    let mut report = crate::orders::report("0309");
    report["title"] = json!("路灯坏了请回电13912345678");
    report["description"] = json!("我是刘女士,电话139 1234 5678,身份证11010519491231002X,物业座机0351-7654321。");
    report["address"] = json!("3号楼 联系人手机13800138000");
    let r = app.call(reqwest::Method::POST, "/api/v1/portal/orders", None, Some(report)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["tracking_code"].as_str().unwrap().to_string();
    let id: i64 =
        sqlx::query_scalar("select id from orders order by id desc limit 1").fetch_one(&app.db.pool).await.unwrap();
    let typed = ["13912345678", "139 1234 5678", "11010519491231002X", "7654321", "13800138000"];
    let clean = |what: &str, text: String| {
        for n in typed {
            assert!(!text.contains(n), "{what} shows {n}: {text}");
        }
    };
    clean("the portal's answer", r.body.to_string());

    // The community centre (no unmask permission) reads it masked everywhere.
    let detail = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body;
    assert_eq!(detail["order"]["title"], "路灯坏了请回电139****5678");
    assert_eq!(
        detail["order"]["description"],
        "我是刘女士,电话139 **** 5678,身份证110105********002X,物业座机0351-***4321。"
    );
    assert_eq!(detail["order"]["address"], "3号楼 联系人手机138****8000");
    clean("the order", detail.to_string());
    clean("the list", app.get("/api/v1/orders?queue=all", &l.centre).await.body.to_string());
    clean("the map", app.get("/api/v1/orders/map", &l.centre).await.body.to_string());

    // A note written back to the resident is public: masked on the tracking page too.
    let version = detail["order"]["version"].clone();
    let rejected = app
        .post(
            &format!("/api/v1/orders/{id}/actions"),
            &l.centre,
            json!({"version": version, "action": {"action": "reject", "reason": "请直接致电物业0351-7654321报修"}}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{:?}", rejected.body);
    clean("the answer to an action", rejected.body.to_string());
    let detail = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body;
    clean("the timeline", detail.to_string());
    let track = app.call(reqwest::Method::GET, &format!("/api/v1/portal/orders/{code}"), None, None).await;
    assert_eq!(track.status, StatusCode::OK);
    assert!(track.body.to_string().contains("0351-***4321"), "{:?}", track.body);
    clean("the tracking answer", track.body.to_string());
    let page = app.call(reqwest::Method::GET, &format!("/portal/track/{code}"), None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    clean("the tracking page", page.body.to_string());

    // Someone holding the unmask permission reads the text as it was written.
    let full = app.get(&format!("/api/v1/orders/{id}"), &admin).await.body;
    assert_eq!(
        full["order"]["description"],
        "我是刘女士,电话139 1234 5678,身份证11010519491231002X,物业座机0351-7654321。"
    );
});
