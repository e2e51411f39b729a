use crate::helpers::*;
use fengqiao::kernel::geo::polygon::{overlap_area_m2, GridPolygon};
use reqwest::StatusCode;

async fn demo_district(backend: Backend) {
    let Some((db, dir)) = fresh_db(backend).await else { return };
    let crypto = fengqiao::platform::crypto::Crypto::ephemeral();
    let summary = fengqiao::demo::build(&db, &crypto, 140107).await.unwrap();
    // The real 2023 list: 11 街道 + 1 镇, 126 社区 + 20 村; seed 002's figures
    // for grids and grid workers.
    assert_eq!(summary.subdistricts, 12);
    assert_eq!(summary.communities, 146);
    assert_eq!(summary.villages, 20);
    assert_eq!(summary.grids, 897);
    assert_eq!(summary.grid_workers, 886);
    assert_eq!(summary.grid_leaders, 146);
    assert!((15_000..25_000).contains(&summary.buildings), "{}", summary.buildings);

    // The indicators are exact: the facts SQL counts equal a replay of every
    // order's event log, on the demo's year of orders.
    let all = fengqiao::stats::store::Window { lo: "/".into(), hi: "0".into(), from: 0, to: i64::MAX };
    let counted = fengqiao::stats::store::facts(&db, &all).await.unwrap();
    let replayed = fengqiao::stats::store::replayed_facts(&db, &all).await.unwrap();
    assert_eq!(counted.len(), 4000);
    assert!(counted == replayed, "SQL facts differ from the replay");
    let mut tally = fengqiao::stats::indicators::Tally::default();
    counted.iter().for_each(|f| tally.add(f));
    assert!(tally.closed > 3000 && tally.rated > 2000 && tally.satisfied < tally.rated, "{tally:?}");
    // Every generated step is in the audit log, as if it had happened.
    let audited: i64 = sqlx::query_scalar("select count(*) from audit_log where object_type = 'order'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let steps: i64 = sqlx::query_scalar("select count(*) from order_events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(audited, steps);

    let root_id: i64 =
        sqlx::query_scalar("select id from nodes where parent_id is null").fetch_one(&db.pool).await.unwrap();
    let app = start_with(db, crypto, dir, backend, root_id).await;
    let token = app.login("admin", fengqiao::demo::DEMO_PASSWORD).await;
    let detail = app.get(&format!("/api/v1/nodes/{root_id}"), &token).await;
    assert_eq!(detail.body["node"]["name"], "杏花岭区");
    assert_eq!(detail.body["counts"]["grids"], 897);

    // Every grid has a valid polygon; together they tile the district with
    // no overlap and no gap.
    let fc = app.get(&format!("/api/v1/nodes/{root_id}/geojson?kinds=grid"), &token).await;
    assert_eq!(fc.status, StatusCode::OK);
    let mut grids: Vec<GridPolygon> = fc.body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| GridPolygon::from_geojson(&f["geometry"]).unwrap())
        .collect();
    assert_eq!(grids.len(), 897);
    grids.sort_by(|a, b| a.bbox().0.total_cmp(&b.bbox().0));
    for (i, a) in grids.iter().enumerate() {
        for b in &grids[i + 1..] {
            if b.bbox().0 >= a.bbox().2 {
                break;
            }
            let (ay0, ay1, by0, by1) = (a.bbox().1, a.bbox().3, b.bbox().1, b.bbox().3);
            if by0 < ay1 && ay0 < by1 {
                assert!(overlap_area_m2(a, b) < 1.0, "grids overlap");
            }
        }
    }
    let total: f64 = grids.iter().map(|g| g.area_m2()).sum();
    let district = detail.body["node"]["area_m2"].as_f64().unwrap();
    assert!((total - district).abs() / district < 1e-6, "grids {total} vs district {district}");

    // Logins printed by the demo work, and each sees its own area.
    let worker = app.login("wg140107002001001", fengqiao::demo::DEMO_PASSWORD).await;
    let me = app.get("/api/v1/me", &worker).await;
    assert_eq!(me.body["roles"][0]["role"], "grid_worker");
    let members = app.get(&format!("/api/v1/nodes/{}/members", me.body["node_id"]), &worker).await;
    assert_eq!(members.body["members"].as_array().unwrap().len(), 1);
    // Demo members carry a Taiyuan ID number, shown masked.
    let masked = members.body["members"][0]["id_number_masked"].as_str().unwrap();
    assert!(masked.starts_with("1401") && &masked[6..14] == "********", "{masked}");
    // The 总网格长 who covers grids without a worker holds 网格员 there too,
    // and starts at the community.
    let leader = app.login("sq140107001001", fengqiao::demo::DEMO_PASSWORD).await;
    let me = app.get("/api/v1/me", &leader).await.body;
    assert_eq!(me["node_name"], "胜利西街社区居委会");
    let posts: Vec<&str> = me["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(posts.len(), 5, "{posts:?}");
    assert!(posts[1..].iter().all(|n| n.ends_with("网格")), "{posts:?}");

    // 统计考核: the district compares its twelve subdistricts; a community
    // sees its own figures and cannot open another's.
    let chief = app.login("zhongxin", fengqiao::demo::DEMO_PASSWORD).await;
    let page = app.get("/stats?period=year", &chief).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.body.as_str().unwrap().to_string();
    let (children, departments) = html.split_once("职能部门对比").expect("departments compared too");
    assert_eq!(children.matches("<tr><td class=\"num\">").count(), 12, "one row per subdistrict");
    let demo_departments: i64 = sqlx::query_scalar("select count(*) from units where kind = 'department'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let shown = departments.split("近 12 个月走势").next().unwrap().matches("<tr><td class=\"num\">").count();
    assert_eq!(shown as i64, demo_departments, "one row per department");
    assert!(html.contains("满意率 =（满意 + 基本满意）÷ 已评价工单数"));
    let other = app.get(&format!("/stats?node={root_id}"), &leader).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    // Each subdistrict has a score and a grade of the default scheme.
    assert!(html.contains("综合得分") && html.matches("class=\"grade grade-").count() >= 12, "grades shown");
    // Drill-down lists exactly the orders a figure counts.
    let overdue = tally.value("overdue");
    let drill = app.get("/stats/orders?period=year&indicator=overdue", &chief).await;
    assert_eq!(drill.status, StatusCode::OK);
    let year = app.get("/stats?period=year", &chief).await.body.as_str().unwrap().to_string();
    let shown = year.split("超期数</span>").next().unwrap().rsplit("<b>").next().unwrap().split("</b>").next().unwrap();
    assert!(drill.body.as_str().unwrap().contains(&format!("共{shown}件。")), "the drill-down counts {shown} orders");
    assert!(matches!(overdue, fengqiao::stats::indicators::Value::Count(n) if n > 0));
    let bad = app.get("/stats/orders?indicator=nothing", &chief).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The district's departments are compared by the orders they lead; their
    // drill-down lists only those, and a unit that is no department of the node is missing.
    assert!(year.contains("职能部门对比"), "departments compared");
    let dept: i64 = sqlx::query_scalar("select id from units where kind = 'department' order by id limit 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let led: i64 = sqlx::query_scalar("select count(*) from orders where lead_unit_id = $1")
        .bind(dept)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let r = app.get(&format!("/stats/orders?period=year&indicator=received&unit={dept}"), &chief).await;
    assert_eq!(r.status, StatusCode::OK);
    let this_year: i64 = sqlx::query_scalar("select count(*) from orders where lead_unit_id = $1 and created_at >= $2")
        .bind(dept)
        .bind(chrono::Utc::now().timestamp_millis() - 400 * 86_400_000)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(led > 0 && this_year >= led.min(1));
    let centre: i64 = sqlx::query_scalar("select id from units where kind = 'centre' order by id limit 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let r = app.get(&format!("/stats/orders?period=year&indicator=received&unit={centre}"), &chief).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The monthly report of the district, for paper.
    let report = app.get("/stats/report", &chief).await;
    assert_eq!(report.status, StatusCode::OK);
    let report = report.body.as_str().unwrap();
    assert!(
        report.contains("群众诉求办理情况月度通报")
            && report.contains("反映较多的事项")
            && report.contains("data-print")
    );
    // The table as a workbook.
    let xlsx =
        app.client.get(format!("{}/stats/export?period=year", app.addr)).bearer_auth(&chief).send().await.unwrap();
    assert_eq!(xlsx.status(), StatusCode::OK);
    assert_eq!(xlsx.headers()["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    // The community's 网格长 has residents to call back (回访).
    let calls = app.get("/orders/follow-ups", &leader).await;
    assert_eq!(calls.status, StatusCode::OK);
    assert!(calls.body.as_str().unwrap().contains("class=\"card followup\""), "follow-ups in the demo");

    // 政务公开: each subdistrict's figures of the last complete month, without login.
    let public = app.call(reqwest::Method::GET, "/portal/figures", None, None).await;
    assert_eq!(public.status, StatusCode::OK);
    let html = public.body.as_str().unwrap();
    assert_eq!(html.matches("<tr><td><a href=\"/portal/figures?node=").count(), 12, "one row per subdistrict");
    assert!(html.contains("按期办结率") && html.contains("满意率") && !html.contains("追踪码"));
    let grid: i64 =
        sqlx::query_scalar("select id from nodes where kind = 'grid' limit 1").fetch_one(&app.db.pool).await.unwrap();
    let r = app.call(reqwest::Method::GET, &format!("/portal/figures?node={grid}"), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "grids are not published on their own");

    // The scheme is the administrator's to set: a sum other than 100 is refused and changes nothing.
    let admin = app.login("admin", fengqiao::demo::DEMO_PASSWORD).await;
    assert_eq!(app.get("/admin/assessment", &chief).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/admin/assessment", &admin).await.status, StatusCode::OK);
    let post = |form: Vec<(&'static str, &'static str)>| {
        app.client.post(format!("{}/admin/assessment", app.addr)).bearer_auth(&admin).form(&form).send()
    };
    let r = post(vec![
        ("w.close_rate", "60"),
        ("w.satisfaction", "30"),
        ("g0", "优秀"),
        ("m0", "90"),
        ("g1", "较差"),
        ("m1", "0"),
    ])
    .await
    .unwrap();
    assert!(r.text().await.unwrap().contains("各项权重之和须为 100"));
    assert_eq!(fengqiao::stats::assessment::Scheme::load(&app.db).await.unwrap(), Default::default());
    let r = post(vec![
        ("w.close_rate", "60"),
        ("w.satisfaction", "40"),
        ("g0", "优秀"),
        ("m0", "90"),
        ("g1", "良好"),
        ("m1", "75"),
        ("g2", "较差"),
        ("m2", "0"),
    ])
    .await
    .unwrap();
    assert_eq!(r.headers()["hx-redirect"], "/admin/assessment?saved=1");
    let scheme = fengqiao::stats::assessment::Scheme::load(&app.db).await.unwrap();
    assert_eq!(scheme.grades.len(), 3);
    let html = app.get("/stats?period=year", &chief).await.body.as_str().unwrap().to_string();
    assert!(html.contains("结案率60%，满意率40%") && !html.contains("grade-A"), "the new scheme applies at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_district_sqlite() {
    demo_district(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_district_postgres() {
    demo_district(Backend::Postgres).await;
}
