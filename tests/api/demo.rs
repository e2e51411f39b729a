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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_district_sqlite() {
    demo_district(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_district_postgres() {
    demo_district(Backend::Postgres).await;
}
