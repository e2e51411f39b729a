use crate::{both_backends, helpers::*};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A subdistrict, a community under it, and the ids.
pub async fn small_tree(app: &TestApp, token: &str) -> (i64, i64) {
    let sub = app
        .create(
            token,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "巨轮街道", "code": "140107001"}),
        )
        .await;
    assert_eq!(sub["code"], "140107001000", "short codes are stored as 12 digits");
    let comm = app
        .create(
            token,
            json!({"parent_id": sub["id"], "kind": "community", "name": "胜利西街社区", "code": "140107001001"}),
        )
        .await;
    (sub["id"].as_i64().unwrap(), comm["id"].as_i64().unwrap())
}

both_backends!(region_codes_are_checked_against_the_parent, |app| {
    let token = app.admin().await;
    let (sub, _) = small_tree(&app, &token).await;
    let before = app.count("nodes").await;
    let wrong = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": sub, "kind": "community", "name": "外区社区", "code": "140108001001"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.code(), "region_code.parent_mismatch");
    assert_eq!(wrong.body["error"]["field"], "code");
    let level = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": sub, "kind": "community", "name": "错层", "code": "140107002"}),
        )
        .await;
    assert_eq!(level.status, StatusCode::UNPROCESSABLE_ENTITY);
    let garbage = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": sub, "kind": "community", "name": "乱码", "code": "14010700100A"}),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);
    let kind = app
        .post("/api/v1/nodes", &token, json!({"parent_id": app.root_id, "kind": "grid", "name": "挂在区下的网格"}))
        .await;
    assert_eq!(kind.code(), "node.parent_kind_mismatch", "a grid must belong to a community");
    let empty = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": sub, "kind": "community", "name": "  ", "code": "140107001002"}),
        )
        .await;
    assert_eq!(empty.body["error"]["field"], "name");
    let dup = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": sub, "kind": "community", "name": "重复", "code": "140107001001"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.code(), "node.code_taken");
    assert_eq!(app.count("nodes").await, before, "rejected requests change nothing");
});

both_backends!(grids_are_numbered_and_their_polygons_validated, |app| {
    let token = app.admin().await;
    let (_, comm) = small_tree(&app, &token).await;
    let g1 = app
        .create(
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "胜利西街社区第一网格", "households": 420,
            "polygon": rect(112.560, 37.880, 112.565, 37.884)}),
        )
        .await;
    assert_eq!(g1["code"], "140107001001001");
    assert_eq!(g1["grid_type"], "comprehensive");
    let area = g1["area_m2"].as_f64().unwrap();
    assert!((area - 440.0 * 444.0).abs() / area < 0.05, "area {area}");
    let g2 = app
        .create(
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "第二网格", "grid_type": "dedicated",
            "polygon": rect(112.565, 37.880, 112.570, 37.884)}),
        )
        .await;
    assert_eq!(g2["code"], "140107001001002", "sharing an edge is not an overlap");

    let before = app.count("nodes").await;
    let overlap = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "重叠网格",
            "polygon": rect(112.562, 37.881, 112.567, 37.883)}),
        )
        .await;
    assert_eq!(overlap.code(), "polygon.overlaps_sibling");
    let open_ring = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "未闭合",
            "polygon": {"type": "Polygon", "coordinates": [[[112.6, 37.9], [112.61, 37.9], [112.61, 37.91]]]}}),
        )
        .await;
    assert_eq!(open_ring.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(open_ring.body["error"]["field"], "polygon");
    let bowtie = app
        .post("/api/v1/nodes", &token, json!({"parent_id": comm, "kind": "grid", "name": "自相交",
            "polygon": {"type": "Polygon", "coordinates": [[[112.60, 37.90], [112.61, 37.91], [112.61, 37.90], [112.60, 37.91], [112.60, 37.90]]]}}))
        .await;
    assert_eq!(bowtie.code(), "polygon.self_intersection");
    let far = app
        .post(
            "/api/v1/nodes",
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "在海外",
            "polygon": rect(2.0, 48.0, 2.1, 48.1)}),
        )
        .await;
    assert_eq!(far.code(), "polygon.out_of_range");
    assert_eq!(app.count("nodes").await, before);

    let b1 = app
        .create(
            &token,
            json!({"parent_id": g1["id"], "kind": "building", "name": "1号楼", "lon": 112.562, "lat": 37.882,
            "households": 48, "attrs": {"floors": 6, "units": 2}}),
        )
        .await;
    assert_eq!(b1["code"], "14010700100100100001");

    // The point lies in the first grid, not the second.
    let hit = app.get("/api/v1/grids/locate?lon=112.5625&lat=37.882", &token).await;
    assert_eq!(hit.body["grid"]["id"], g1["id"]);
    let miss = app.get("/api/v1/grids/locate?lon=112.70&lat=37.95", &token).await;
    assert!(miss.body["grid"].is_null());
});

both_backends!(members_carry_the_standard_fields, |app| {
    let token = app.admin().await;
    let (_, comm) = small_tree(&app, &token).await;
    let grid = app
        .create(&token, json!({"parent_id": comm, "kind": "grid", "name": "第一网格", "polygon": rect(112.56, 37.88, 112.57, 37.89)}))
        .await;
    let path = format!("/api/v1/nodes/{}/members", grid["id"]);
    let worker = json!({"role": "grid_worker", "name": "王秀英", "gender": "2", "ethnicity": "01",
        "political_status": "01", "birth_date": "19850312", "education": "30", "mobile": "+86 139-1234-5678"});
    let r = app.post(&path, &token, worker.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["mobile"], "139****5678", "phone numbers are normalised, and masked in responses");

    for (field, value, code) in [
        ("mobile", "12345", "phone.invalid"),
        ("ethnicity", "77", "code_table.unknown"),
        ("birth_date", "19851332", "date.invalid"),
        ("role", "building_steward", "member.role_not_allowed_here"),
    ] {
        let mut bad = worker.clone();
        bad[field] = json!(value);
        let r = app.post(&path, &token, bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(r.code(), code, "{field}");
    }
    let list = app.get(&path, &token).await;
    assert_eq!(list.body["members"].as_array().unwrap().len(), 1, "rejected members were not stored");
    let id = list.body["members"][0]["id"].as_i64().unwrap();
    let end = app.call(Method::DELETE, &format!("/api/v1/members/{id}"), Some(&token), None).await;
    assert_eq!(end.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &token).await.body["members"].as_array().unwrap().len(), 0);
    assert_eq!(app.count("node_members").await, 1, "ended memberships stay for history");
});

both_backends!(moving_a_grid_rewrites_its_subtree_codes, |app| {
    let token = app.admin().await;
    let (sub, comm_a) = small_tree(&app, &token).await;
    let comm_b = app
        .create(&token, json!({"parent_id": sub, "kind": "community", "name": "北大街西社区", "code": "140107001007"}))
        .await["id"]
        .as_i64()
        .unwrap();
    app.create(
        &token,
        json!({"parent_id": comm_b, "kind": "grid", "name": "B1", "polygon": rect(112.60, 37.90, 112.61, 37.91)}),
    )
    .await;
    let grid = app
        .create(
            &token,
            json!({"parent_id": comm_a, "kind": "grid", "name": "A1", "polygon": rect(112.56, 37.88, 112.57, 37.89)}),
        )
        .await;
    let b = app.create(&token, json!({"parent_id": grid["id"], "kind": "building", "name": "1号楼"})).await;
    assert_eq!(b["code"], "14010700100100100001");

    let stale = app
        .post(&format!("/api/v1/nodes/{}/move", grid["id"]), &token, json!({"parent_id": comm_b, "version": 99}))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.code(), "node.version_conflict");

    let moved = app
        .post(
            &format!("/api/v1/nodes/{}/move", grid["id"]),
            &token,
            json!({"parent_id": comm_b, "version": grid["version"]}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["code"], "140107001007002", "renumbered after the community's existing grid");
    let building = app.get(&format!("/api/v1/nodes/{}", b["id"]), &token).await;
    assert_eq!(building.body["node"]["code"], "14010700100700200001");
    let crumbs: Vec<&str> =
        building.body["ancestors"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(crumbs, ["杏花岭区", "巨轮街道", "北大街西社区", "A1"]);

    let into_itself =
        app.post(&format!("/api/v1/nodes/{sub}/move"), &token, json!({"parent_id": sub, "version": 1})).await;
    assert_eq!(into_itself.status, StatusCode::UNPROCESSABLE_ENTITY);
});

both_backends!(nodes_with_data_are_retired_not_deleted, |app| {
    let token = app.admin().await;
    let (sub, comm) = small_tree(&app, &token).await;
    let grid = app
        .create(
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "A1", "polygon": rect(112.56, 37.88, 112.57, 37.89)}),
        )
        .await;
    let del = app.call(Method::DELETE, &format!("/api/v1/nodes/{comm}"), Some(&token), None).await;
    assert_eq!(del.code(), "node.has_data");
    let retire = app.post(&format!("/api/v1/nodes/{comm}/retire"), &token, json!({})).await;
    assert_eq!(retire.code(), "node.has_active_children");
    let r = app.post(&format!("/api/v1/nodes/{}/retire", grid["id"]), &token, json!({})).await;
    assert_eq!(r.body["status"], "retired");
    let children = app.get(&format!("/api/v1/nodes?parent_id={comm}"), &token).await;
    assert_eq!(children.body["nodes"].as_array().unwrap().len(), 0, "retired nodes leave listings");
    let with = app.get(&format!("/api/v1/nodes?parent_id={comm}&include_retired=true"), &token).await;
    assert_eq!(with.body["nodes"].as_array().unwrap().len(), 1, "but are kept");
    // A new grid never reuses a retired grid's code.
    let g2 = app
        .create(
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "A2", "polygon": rect(112.56, 37.88, 112.57, 37.89)}),
        )
        .await;
    assert_eq!(g2["code"], "140107001001002");
    let empty = app
        .create(&token, json!({"parent_id": sub, "kind": "community", "name": "新建社区", "code": "140107001010"}))
        .await;
    let del = app.call(Method::DELETE, &format!("/api/v1/nodes/{}", empty["id"]), Some(&token), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "an empty node may be deleted");
});

both_backends!(edits_use_optimistic_concurrency, |app| {
    let token = app.admin().await;
    let (_, comm) = small_tree(&app, &token).await;
    let path = format!("/api/v1/nodes/{comm}");
    let r = app.call(Method::PATCH, &path, Some(&token), Some(json!({"version": 1, "name": "胜利西街社区(新)"}))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["version"], 2);
    let lost = app.call(Method::PATCH, &path, Some(&token), Some(json!({"version": 1, "name": "另一个名字"}))).await;
    assert_eq!(lost.status, StatusCode::CONFLICT);
    assert_eq!(app.get(&path, &token).await.body["node"]["name"], "胜利西街社区(新)");
});

both_backends!(subtree_lists_in_pages_and_scope_hides_other_areas, |app| {
    let token = app.admin().await;
    let (sub, comm) = small_tree(&app, &token).await;
    for i in 0..5 {
        let x = 112.56 + i as f64 * 0.01;
        app.create(&token, json!({"parent_id": comm, "kind": "grid", "name": format!("网格{i}"), "polygon": rect(x, 37.88, x + 0.01, 37.89)}))
            .await;
    }
    let other = app
        .create(
            &token,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "三桥街道", "code": "140107002"}),
        )
        .await;
    let page1 = app.get(&format!("/api/v1/nodes/{}/subtree?kinds=grid&limit=3", app.root_id), &token).await;
    assert_eq!(page1.body["nodes"].as_array().unwrap().len(), 3);
    let next = page1.body["next"].as_str().unwrap().to_string();
    let page2 =
        app.get(&format!("/api/v1/nodes/{}/subtree?kinds=grid&limit=3&after={next}", app.root_id), &token).await;
    assert_eq!(page2.body["nodes"].as_array().unwrap().len(), 2);
    assert!(page2.body["next"].is_null());
    let counts = app.get(&format!("/api/v1/nodes/{}", app.root_id), &token).await;
    assert_eq!(counts.body["counts"]["grids"], 5);
    assert_eq!(counts.body["counts"]["subdistricts"], 2);

    // A community worker sees their community only; elsewhere is "not found".
    let hash = fengqiao::auth::password::hash(PASSWORD.into()).await;
    let mut conn = app.db.pool.acquire().await.unwrap();
    fengqiao::auth::create_user(
        &mut conn,
        fengqiao::auth::NewUser {
            username: "sq1",
            display_name: "社区网格长",
            password_hash: &hash,
            node_id: comm,
            roles: &["grid_leader"],
            must_change_password: false,
        },
    )
    .await
    .unwrap();
    drop(conn);
    let worker = app.login("sq1", PASSWORD).await;
    assert_eq!(app.get(&format!("/api/v1/nodes/{comm}"), &worker).await.status, StatusCode::OK);
    for id in [sub, other["id"].as_i64().unwrap(), app.root_id] {
        let r = app.get(&format!("/api/v1/nodes/{id}"), &worker).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "node {id} is outside the scope");
        assert_eq!(r.code(), "not_found");
    }
    let missing = app.get("/api/v1/nodes/999999", &worker).await;
    assert_eq!(missing.body, app.get(&format!("/api/v1/nodes/{sub}"), &worker).await.body, "out of scope == missing");
    let tops = app.get("/api/v1/nodes", &worker).await;
    assert_eq!(tops.body["nodes"][0]["id"], comm);
    let sub_tree = app.get(&format!("/api/v1/nodes/{comm}/subtree?kinds=grid"), &worker).await;
    assert_eq!(sub_tree.body["nodes"].as_array().unwrap().len(), 5);
    let write = app
        .post(
            "/api/v1/nodes",
            &worker,
            json!({"parent_id": comm, "kind": "grid", "name": "越权", "polygon": rect(112.7, 37.9, 112.71, 37.91)}),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
});

both_backends!(overlays_cover_nodes, |app| {
    let token = app.admin().await;
    let (sub, comm) = small_tree(&app, &token).await;
    let zone = app
        .post("/api/v1/overlays", &token, json!({"kind": "police_zone", "subtype": "major_zone", "name": "第一大防区",
            "anchor_node_id": app.root_id, "attrs": {"centre_station": "巨轮派出所", "stations": ["巨轮派出所", "三桥派出所"]},
            "node_ids": [sub]}))
        .await;
    assert_eq!(zone.status, StatusCode::CREATED, "{:?}", zone.body);
    let no_centre = app
        .post(
            "/api/v1/overlays",
            &token,
            json!({"kind": "police_zone", "subtype": "major_zone", "name": "无中心所",
            "anchor_node_id": app.root_id}),
        )
        .await;
    assert_eq!(no_centre.code(), "overlay.centre_station_required");
    let unit = app
        .post(
            "/api/v1/overlays",
            &token,
            json!({"kind": "combat_unit", "subtype": "compound", "name": "和平小区作战单元",
            "anchor_node_id": comm, "leader": "张伟", "node_ids": [comm]}),
        )
        .await;
    assert_eq!(unit.status, StatusCode::CREATED);
    let list = app.get("/api/v1/overlays?kind=police_zone", &token).await;
    assert_eq!(list.body["overlays"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["overlays"][0]["node_ids"], json!([sub]));
});

// A new community comes with its governance centre and a new grid with its
// own unit, so orders there can be dispatched at once; the units follow the
// node's name, retire with it and go when an unused node is deleted.
both_backends!(nodes_come_with_the_units_that_work_their_orders, |app| {
    let token = app.admin().await;
    let id = |v: serde_json::Value| v["id"].as_i64().unwrap();
    let sub = id(app
        .create(
            &token,
            json!({"parent_id": app.root_id, "kind": "subdistrict", "name": "中涧河镇", "code": "140107100"}),
        )
        .await);
    let comm = id(app
        .create(
            &token,
            json!({"parent_id": sub, "kind": "community", "name": "新城社区居委会", "code": "140107100001"}),
        )
        .await);
    let grid = id(app
        .create(
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "新城社区第一网格",
            "polygon": rect(112.60, 37.90, 112.61, 37.91)}),
        )
        .await);
    let spare = id(app
        .create(
            &token,
            json!({"parent_id": comm, "kind": "grid", "name": "新城社区第二网格",
            "polygon": rect(112.61, 37.90, 112.62, 37.91)}),
        )
        .await);
    let units = |node: i64| {
        let app = &app;
        async move {
            sqlx::query_as::<_, (String, String, String)>("select kind, name, status from units where node_id = $1")
                .bind(node)
                .fetch_all(&app.db.pool)
                .await
                .unwrap()
        }
    };
    let active = |name: &str| {
        (String::from(if name.ends_with("网格") { "grid" } else { "centre" }), name.to_string(), "active".to_string())
    };
    assert_eq!(units(sub).await, vec![active("中涧河镇综治中心")]);
    assert_eq!(units(comm).await, vec![active("新城社区综治中心")]);
    assert_eq!(units(grid).await, vec![active("新城社区第一网格")]);

    // An order in the grid is suggested to the new community's centre.
    let r = app
        .post(
            "/api/v1/orders",
            &token,
            json!({"source": "patrol", "category_code": "0202", "title": "物业不作为",
            "description": "楼道灯坏了一个月", "address": "新城社区1号楼", "lon": 112.605, "lat": 37.905}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let order = r.body["order"]["id"].as_i64().or(r.body["id"].as_i64()).unwrap();
    let d = app.get(&format!("/api/v1/orders/{order}"), &token).await.body;
    assert_eq!(d["suggestion"]["lead"]["name"], "新城社区综治中心", "{d}");
    let choices = app.get(&format!("/api/v1/units?community={comm}"), &token).await.body.to_string();
    assert!(choices.contains("新城社区第二网格"), "{choices}");

    // Renamed with the community.
    let path = format!("/api/v1/nodes/{comm}");
    let r = app.call(Method::PATCH, &path, Some(&token), Some(json!({"version": 1, "name": "新城二社区居委会"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(units(comm).await, vec![active("新城二社区综治中心")]);

    // Retired with the grid: no longer offered.
    let r = app.post(&format!("/api/v1/nodes/{spare}/retire"), &token, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(units(spare).await[0].2, "retired");
    let choices = app.get(&format!("/api/v1/units?community={comm}"), &token).await.body.to_string();
    assert!(!choices.contains("新城社区第二网格"), "{choices}");

    // An unused grid is deleted with its unit; one with an order is not.
    let r = app.call(Method::DELETE, &format!("/api/v1/nodes/{spare}"), Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert!(units(spare).await.is_empty());
    let r = app.call(Method::DELETE, &format!("/api/v1/nodes/{grid}"), Some(&token), None).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "node.has_data"), "{:?}", r.body);
});

/// A role that manages the tree within its holder's place, as a district
/// would give its community centres.
async fn tree_keeper_role(app: &TestApp) {
    sqlx::query("insert into roles (code, name, builtin) values ('tree_keeper', '网格管理员', 0)")
        .execute(&app.db.pool)
        .await
        .unwrap();
    for perm in ["tree.read", "tree.write"] {
        sqlx::query("insert into role_permissions (role_code, permission) values ('tree_keeper', $1)")
            .bind(perm)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
}

both_backends!(tree_pages_create_edit_retire_within_permission_and_scope, |app| {
    use crate::pages::{browser, csrf_of};
    let admin = app.admin().await;
    let (sub, comm) = small_tree(&app, &admin).await;
    let other = app
        .create(&admin, json!({"parent_id": sub, "kind": "community", "name": "五龙口社区", "code": "140107001002"}))
        .await["id"]
        .as_i64()
        .unwrap();
    tree_keeper_role(&app).await;
    app.add_user("keeper", comm, &["tree_keeper"]).await;
    app.add_user("worker", comm, &["grid_worker"]).await;
    let keeper = browser(&app, "keeper").await;
    let worker = browser(&app, "worker").await;
    let addr = app.addr.clone();
    let page = |c: &reqwest::Client, path: String| {
        let (c, url) = (c.clone(), format!("{addr}{path}"));
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let html = page(&keeper, format!("/tree/{comm}")).await;
    assert!(html.contains("id=\"node-admin\"") && html.contains(&format!("hx-post=\"/tree/{comm}/children\"")));
    let keeper_csrf = csrf_of(&html);
    let html = page(&worker, format!("/tree/{comm}")).await;
    assert!(!html.contains("id=\"node-admin\""), "no forms without the permission");
    let worker_csrf = csrf_of(&html);
    let post = |c: &reqwest::Client, csrf: &str, path: String, form: Vec<(&'static str, String)>| {
        let (c, csrf, url) = (c.clone(), csrf.to_string(), format!("{addr}{path}"));
        async move {
            let r =
                c.post(url).header("x-csrf-token", csrf).header("hx-request", "true").form(&form).send().await.unwrap();
            // Where the page goes next, or "refresh" when it is shown again.
            let to = r
                .headers()
                .get("hx-redirect")
                .map(|v| v.to_str().unwrap().to_string())
                .or_else(|| r.headers().get("hx-refresh").map(|_| "refresh".to_string()));
            (to, r.text().await.unwrap())
        }
    };
    let grid = |name: &str| {
        vec![("name", name.to_string()), ("grid_type", "comprehensive".into()), ("households", "320".into())]
    };
    let nodes = app.count("nodes").await;

    // Without the permission: refused, nothing changes.
    let (to, body) = post(&worker, &worker_csrf, format!("/tree/{comm}/children"), grid("第一网格")).await;
    assert!(to.is_none() && body.contains("您没有执行此操作的权限"), "{body}");
    // Outside the keeper's community: as if it did not exist.
    let (to, body) = post(&keeper, &keeper_csrf, format!("/tree/{other}/children"), grid("第一网格")).await;
    assert!(to.is_none() && body.contains("class=\"alert\""), "{body}");
    // The service's validation, in Chinese, naming the field.
    let (to, body) =
        post(&keeper, &keeper_csrf, format!("/tree/{comm}/children"), vec![("name", "第一网格".into())]).await;
    assert!(to.is_none() && body.contains("data-field=\"grid_type\""), "{body}");
    let (to, body) = post(
        &keeper,
        &keeper_csrf,
        format!("/tree/{comm}/children"),
        vec![("name", "第一网格".into()), ("grid_type", "comprehensive".into()), ("households", "三百".into())],
    )
    .await;
    assert!(to.is_none() && body.contains("data-field=\"households\"") && body.contains("请填写整数"), "{body}");
    assert_eq!(app.count("nodes").await, nodes, "refused forms change nothing");

    // Create, then edit, then retire.
    let (to, body) = post(&keeper, &keeper_csrf, format!("/tree/{comm}/children"), grid("第一网格")).await;
    let to = to.unwrap_or_else(|| panic!("created: {body}"));
    let id: i64 = to.trim_start_matches("/tree/").parse().unwrap();
    let node = app.get(&format!("/api/v1/nodes/{id}"), &admin).await.body;
    assert_eq!(node["node"]["code"], "140107001001001");
    assert_eq!(node["node"]["households"], 320);
    let version = node["node"]["version"].as_i64().unwrap().to_string();
    let (to, body) = post(
        &keeper,
        &keeper_csrf,
        format!("/tree/{id}"),
        vec![
            ("version", version.clone()),
            ("name", "胜利西街第一网格".into()),
            ("grid_type", "dedicated".into()),
            ("households", "330".into()),
        ],
    )
    .await;
    assert_eq!(to.as_deref(), Some(format!("/tree/{id}?saved=1").as_str()), "{body}");
    let node = app.get(&format!("/api/v1/nodes/{id}"), &admin).await.body;
    assert_eq!(
        (node["node"]["name"].as_str(), node["node"]["households"].as_i64()),
        (Some("胜利西街第一网格"), Some(330))
    );
    // A stale version is refused.
    let (to, body) =
        post(&keeper, &keeper_csrf, format!("/tree/{id}"), vec![("version", version), ("name", "旧".into())]).await;
    assert!(to.is_none() && body.contains("已被他人修改"), "{body}");
    // Members through the form: the GB/T 31000 fields, the number masked.
    let members = app.count("node_members").await;
    let member = vec![
        ("role", "grid_worker".to_string()),
        ("name", "王秀英".into()),
        ("gender", "2".into()),
        ("ethnicity", "01".into()),
        ("political_status", "13".into()),
        ("birth_date", "1985-04-12".into()),
        ("education", "30".into()),
        ("mobile", "13912345678".into()),
        ("id_number", "".into()),
        ("public_phone", "0351-5551234".into()),
    ];
    let (to, body) = post(&worker, &worker_csrf, format!("/tree/{id}/members"), member.clone()).await;
    assert!(to.is_none() && body.contains("您没有执行此操作的权限"), "{body}");
    let (to, body) = post(&keeper, &keeper_csrf, format!("/tree/{id}/members"), member).await;
    assert_eq!(to.as_deref(), Some("refresh"), "{body}");
    assert_eq!(app.count("node_members").await, members + 1);
    let html = page(&keeper, format!("/tree/{id}")).await;
    assert!(html.contains("王秀英") && html.contains("139****5678") && !html.contains("13912345678"));
    let listed = app.get(&format!("/api/v1/nodes/{id}/members"), &admin).await.body;
    let mid = listed["members"][0]["id"].as_i64().unwrap();
    let (to, _) = post(&worker, &worker_csrf, format!("/tree/members/{mid}/end"), vec![]).await;
    assert!(to.is_none());
    let (to, _) = post(&keeper, &keeper_csrf, format!("/tree/members/{mid}/end"), vec![]).await;
    assert!(to.is_some());
    assert!(app.get(&format!("/api/v1/nodes/{id}/members"), &admin).await.body["members"]
        .as_array()
        .unwrap()
        .is_empty());
    // Retire: refused to the worker, done for the keeper; the browser goes up.
    let (to, _) = post(&worker, &worker_csrf, format!("/tree/{id}/retire"), vec![]).await;
    assert!(to.is_none());
    let (to, body) = post(&keeper, &keeper_csrf, format!("/tree/{id}/retire"), vec![]).await;
    assert_eq!(to.as_deref(), Some(format!("/tree/{comm}").as_str()), "{body}");
    let node = app.get(&format!("/api/v1/nodes/{id}"), &admin).await.body;
    assert_eq!(node["node"]["status"], "retired");
    // The keeper's own community is the top of their scope: it cannot be retired from the page.
    let (to, _) = post(&keeper, &keeper_csrf, format!("/tree/{comm}/retire"), vec![]).await;
    assert!(to.is_none());
});
