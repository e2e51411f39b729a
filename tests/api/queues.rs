//! The staff queues and the dispatch form (issue 18): urgent and overdue
//! orders first, filters that only ever narrow the caller's queue, numbered
//! pages, the xlsx export, and the units a dispatcher may choose.

use std::io::Read;

use crate::{
    both_backends,
    helpers::*,
    orders::{act, act_ok, elsewhere, report, setup, staff_order},
    pages::browser,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn ids(list: &Value) -> Vec<i64> {
    list["orders"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect()
}

async fn hotline_order(app: &TestApp, token: &str, urgent: bool) -> i64 {
    let mut body = report("0309");
    body["source"] = json!("hotline");
    if urgent {
        body["urgency"] = json!("urgent");
    }
    let r = app.post("/api/v1/orders", token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

both_backends!(a_queue_puts_the_urgent_order_first, |app| {
    let l = setup(&app).await;
    // The urgent matter was reported first; two routine ones came after it.
    let urgent = hotline_order(&app, &l.lead, true).await;
    let a = staff_order(&app, &l, "0309").await;
    let b = staff_order(&app, &l, "0309").await;
    let list = app.get("/api/v1/orders?queue=pending_accept", &l.centre).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    assert_eq!(ids(&list.body), vec![urgent, a, b], "urgent first, then the longest waiting");
    let page = browser(&app, "sq").await;
    let html =
        page.get(format!("{}/orders?queue=pending_accept", app.addr)).send().await.unwrap().text().await.unwrap();
    let at = |id: i64| html.find(&format!("href=\"/orders/{id}\"")).unwrap();
    assert!(at(urgent) < at(a) && at(a) < at(b), "the page lists them in the same order");
    // Newest first on request, and by default for 全部工单.
    let newest = app.get("/api/v1/orders?queue=pending_accept&sort=newest", &l.centre).await;
    assert_eq!(ids(&newest.body), vec![b, a, urgent]);
    assert_eq!(ids(&app.get("/api/v1/orders?queue=all", &l.centre).await.body), vec![b, a, urgent]);

    // Among handling orders the overdue one leads, then by the nearest deadline.
    for id in [a, b] {
        act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
        act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
        act_ok(&app, &l.worker, id, json!({"action": "sign"})).await;
    }
    sqlx::query("update orders set overdue = 1, deadline_at = deadline_at - 864000000 where id = $1")
        .bind(b)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let handling = app.get("/api/v1/orders?queue=handling", &l.centre).await;
    assert_eq!(ids(&handling.body), vec![b, a]);

    // The page shows the waiting time and names the running deadline.
    let html = page.get(format!("{}/orders?queue=handling", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("办结时限") && html.contains("已等待"), "{html}");
    assert!(html.contains("本单位承办") && html.contains("辖区工单"), "counts say whose work they count");
});

both_backends!(each_queue_filter_narrows_and_none_reaches_beyond_the_area, |app| {
    let l = setup(&app).await;
    let e = elsewhere(&app).await;
    let patrol = staff_order(&app, &l, "0309").await;
    let hotline = hotline_order(&app, &l.lead, false).await;
    let urgent = hotline_order(&app, &l.lead, true).await;
    let all = |q: &str| format!("/api/v1/orders?queue=all&{q}");
    let got = |v: &Value| {
        let mut v = ids(v);
        v.sort();
        v
    };
    assert_eq!(got(&app.get(&all(""), &l.centre).await.body), vec![patrol, hotline, urgent]);
    assert_eq!(got(&app.get(&all("source=patrol"), &l.centre).await.body), vec![patrol]);
    assert_eq!(got(&app.get(&all("source=hotline"), &l.centre).await.body), vec![hotline, urgent]);
    assert_eq!(got(&app.get(&all("urgency=urgent"), &l.centre).await.body), vec![urgent]);
    assert_eq!(got(&app.get(&all(&format!("node={}", l.grid)), &l.centre).await.body), vec![patrol, hotline, urgent]);

    // State, light and dates.
    act_ok(&app, &l.centre, patrol, json!({"action": "accept"})).await;
    act_ok(&app, &l.centre, patrol, json!({"action": "dispatch", "lead_unit": l.grid_unit})).await;
    assert_eq!(got(&app.get(&all("state=pending_sign"), &l.centre).await.body), vec![patrol]);
    assert!(got(&app.get(&all("warning=red"), &l.centre).await.body).is_empty());
    sqlx::query("update orders set deadline_at = $1 where id = $2")
        .bind(fengqiao::platform::db::now_ms() - 60_000)
        .bind(patrol)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(got(&app.get(&all("warning=red"), &l.centre).await.body), vec![patrol]);
    assert!(got(&app.get(&all("warning=yellow"), &l.centre).await.body).is_empty());
    // Nine of ten hours used: the yellow light, not the red one.
    let now = fengqiao::platform::db::now_ms();
    sqlx::query(
        "update orders set deadline_kind = 'sign:calendar_hours', deadline_start = $1, deadline_at = $2 where id = $3",
    )
    .bind(now - 9 * 3_600_000)
    .bind(now + 3_600_000)
    .bind(patrol)
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(got(&app.get(&all("warning=yellow"), &l.centre).await.body), vec![patrol]);
    assert!(got(&app.get(&all("warning=red"), &l.centre).await.body).is_empty());
    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive();
    let tomorrow = today.succ_opt().unwrap();
    assert_eq!(got(&app.get(&all(&format!("from={today}&to={today}")), &l.centre).await.body).len(), 3);
    assert!(got(&app.get(&all(&format!("from={tomorrow}")), &l.centre).await.body).is_empty());
    let r = app.get(&all(&format!("from={tomorrow}&to={today}")), &l.centre).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "queue.date_order"));

    // Another subdistrict's community, or a node that does not exist: the
    // same refusal, and nothing of that community is listed.
    order_elsewhere(&app, &e).await;
    let outside = app.get(&all(&format!("node={}", e.community)), &l.centre).await;
    let missing = app.get(&all("node=987654321"), &l.centre).await;
    assert_eq!((outside.status, outside.code()), (StatusCode::UNPROCESSABLE_ENTITY, "queue.node_unknown"));
    assert_eq!((outside.status, outside.body["error"].clone()), (missing.status, missing.body["error"].clone()));
    assert!(outside.body.get("orders").is_none());
    // The district sees that community's order through the same filter.
    assert_eq!(ids(&app.get(&all(&format!("node={}", e.community)), &l.lead).await.body).len(), 1);
    for bad in ["source=fax", "urgency=very", "state=lost", "warning=blue", "from=2026-13-40", "sort=random"] {
        let r = app.get(&all(bad), &l.centre).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {:?}", r.body);
        assert!(r.code().starts_with("queue."), "{bad}: {:?}", r.body);
    }
    // A page with a bad filter is our error page, not the framework's text.
    let page = browser(&app, "sq").await;
    let r = page.get(format!("{}/orders?queue=all&node={}", app.addr, e.community)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("所选属地不在您的管辖范围内"));
});

async fn order_elsewhere(app: &TestApp, e: &crate::orders::Elsewhere) -> i64 {
    let mut body = report("0309");
    body["source"] = json!("patrol");
    body["lon"] = json!(112.705);
    let r = app.post("/api/v1/orders", &e.worker, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

both_backends!(queue_pages_are_numbered_with_a_total, |app| {
    let l = setup(&app).await;
    for _ in 0..45 {
        staff_order(&app, &l, "0309").await;
    }
    let page = browser(&app, "sq").await;
    let html = page
        .get(format!("{}/orders?queue=pending_accept&page=2", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("共45件") && html.contains("共3页"), "total and pages");
    for p in [1, 3] {
        assert!(html.contains(&format!("page={p}\">{p}</a>")), "a link to page {p}");
    }
    assert!(html.contains("aria-current=\"page\">2</span>"));
    let api = app.get("/api/v1/orders?queue=pending_accept&page=3", &l.centre).await;
    assert_eq!((api.body["total"].as_i64(), ids(&api.body).len()), (Some(45), 5));
});

both_backends!(an_export_is_a_workbook_of_the_filtered_queue_with_contacts_masked, |app| {
    let l = setup(&app).await;
    // A resident's report with a phone number, and a grid worker's without.
    let r = app.call(reqwest::Method::POST, "/api/v1/portal/orders", None, Some(report("0309"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let resident: i64 =
        sqlx::query_scalar("select id from orders order by id desc limit 1").fetch_one(&app.db.pool).await.unwrap();
    staff_order(&app, &l, "0309").await;
    let page = browser(&app, "sq").await;
    let r = page.get(format!("{}/orders/export?queue=pending_accept&source=resident", app.addr)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a valid xlsx (zip) file");
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml").unwrap().read_to_string(&mut strings).unwrap();
    let code = app.get(&format!("/api/v1/orders/{resident}"), &l.centre).await.body["order"]["tracking_code"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(strings.contains(&code), "the resident's order is exported");
    assert!(strings.contains("追踪码") && strings.contains("居民提单") && !strings.contains("网格员巡查"));
    assert!(strings.contains("139****1111"), "the contact masked as on screen");
    assert!(!strings.contains("13900001111"), "never the full contact");
    // Only the filtered queue: one order, one header row.
    let mut sheet = String::new();
    zip.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
    assert_eq!(sheet.matches("<row ").count(), 2, "{sheet}");
    // The export is audited, and a filter out of the area is refused here too.
    let n: i64 = sqlx::query_scalar("select count(*) from audit_log where action = 'order.export'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let e = elsewhere(&app).await;
    let r = page.get(format!("{}/orders/export?queue=all&node={}", app.addr, e.community)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
});

/// The unit ids a page offers in its lists.
fn offered(html: &str) -> Vec<i64> {
    html.split("<option value=\"").skip(1).filter_map(|s| s.split('"').next()?.parse().ok()).collect()
}

both_backends!(the_dispatch_form_offers_only_the_units_of_the_orders_place, |app| {
    let l = setup(&app).await;
    let e = elsewhere(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    let centre_of = |node: i64| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select u.id from units u where u.kind = 'centre' and u.node_id = (select parent_id from nodes where id = $1)",
            )
            .bind(node)
            .fetch_one(&db.pool)
            .await
            .unwrap()
        }
    };
    let sub_centre = centre_of(l.community).await;
    let other_sub_centre = centre_of(e.community).await;

    // The community: its own centre and grids, the centres above it and the
    // departments; nothing of another subdistrict.
    let html =
        browser(&app, "sq").await.get(format!("{}/orders/{id}", app.addr)).send().await.unwrap().text().await.unwrap();
    let units = offered(&html);
    for unit in [l.grid_unit, l.other_grid_unit, l.community_unit, l.dept_unit, sub_centre] {
        assert!(units.contains(&unit), "{unit} offered to the community");
    }
    for unit in [other_sub_centre, e.centre_unit, e.grid_unit] {
        assert!(!units.contains(&unit), "{unit} not offered to the community");
    }
    assert!(html.contains("<optgroup label=\"职能部门\">") && html.contains("<optgroup label=\"属地\">"));
    assert!(html.contains("<optgroup label=\"网格\">") && html.contains("data-unit-search"));
    assert!(!html.contains("type=\"checkbox\" name=\"assisting\""), "no wall of checkboxes");

    // The district, on the same order: the centres on the way down to its
    // place, not every subdistrict's.
    let html =
        browser(&app, "zx").await.get(format!("{}/orders/{id}", app.addr)).send().await.unwrap().text().await.unwrap();
    let units = offered(&html);
    for unit in [l.grid_unit, l.community_unit, l.dept_unit, sub_centre] {
        assert!(units.contains(&unit), "{unit} offered to the district");
    }
    for unit in [other_sub_centre, e.centre_unit, e.grid_unit] {
        assert!(!units.contains(&unit), "{unit} not offered to the district for this order");
    }

    // The server holds the community to its reach when the form is bypassed.
    let missing = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": 987_654_321})).await;
    assert_eq!(missing.code(), "order.unit_unknown");
    for unit in [other_sub_centre, e.centre_unit, e.grid_unit] {
        let r = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": unit})).await;
        assert_eq!((r.status, r.code()), (missing.status, missing.code()), "lead {unit}");
        let r = act(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [unit]}))
            .await;
        assert_eq!(r.code(), "order.unit_unknown", "assisting {unit}");
    }
    act_ok(&app, &l.centre, id, json!({"action": "dispatch", "lead_unit": l.grid_unit, "assisting": [l.dept_unit]}))
        .await;
    // Before signing, the order's page names the deadline that runs: 签收时限.
    let html =
        browser(&app, "sq").await.get(format!("{}/orders/{id}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<dt>签收时限</dt>"), "{html}");
});

/// A queue too large for one answer (here: more than one row) is written by
/// the export job: the caller follows its progress, downloads the workbook
/// once it is done, and nobody else sees the job; a job whose session ended
/// stops without writing anything.
async fn large_export(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.export_inline_rows = 1).await else {
        return;
    };
    let l = setup(&app).await;
    for _ in 0..3 {
        staff_order(&app, &l, "0309").await;
    }
    let page = browser(&app, "sq").await;
    let r = page.get(format!("{}/orders/export?queue=pending_accept", app.addr)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a large export becomes a job");
    let job = r.headers()["location"].to_str().unwrap().to_string();
    assert!(job.starts_with("/orders/exports/"), "{job}");
    let html = page.get(format!("{}{job}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("排队中") && html.contains("hx-trigger=\"every 1s\""), "{html}");
    // Not downloadable before it is done; another person's job is missing to them.
    let r = page.get(format!("{}{job}/file", app.addr)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let other = browser(&app, "wg").await;
    assert_eq!(other.get(format!("{}{job}", app.addr)).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    let exports = fengqiao::orders::exports::Exports::new(app.state_for_timers.clone());
    use fengqiao::platform::jobs::Job;
    assert_eq!(exports.run_once().await.unwrap(), fengqiao::platform::jobs::Outcome::Worked);
    assert_eq!(exports.run_once().await.unwrap(), fengqiao::platform::jobs::Outcome::Idle);
    let html = page.get(format!("{}{job}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("已完成") && html.contains("已导出 3 件") && !html.contains("every 1s"), "{html}");
    let r = page.get(format!("{}{job}/file", app.addr)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a valid xlsx (zip) file");
    let mut sheet = String::new();
    zip.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
    assert_eq!(sheet.matches("<row ").count(), 4, "a header and the three orders");
    let audited: i64 = sqlx::query_scalar("select count(*) from audit_log where action = 'order.export'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(audited, 1, "the finished export is audited");

    // A second export whose session ends before it runs fails and holds nothing.
    let r = page.get(format!("{}/orders/export?queue=all", app.addr)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let job = r.headers()["location"].to_str().unwrap().to_string();
    let hash: String = sqlx::query_scalar("select token_hash from export_jobs order by id desc limit 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("delete from sessions where token_hash = $1").bind(&hash).execute(&app.db.pool).await.unwrap();
    app.db.sessions.forget(&hash);
    exports.run_once().await.unwrap();
    let (state, file): (String, Option<Vec<u8>>) =
        sqlx::query_as("select state, file from export_jobs where token_hash = $1 order by id desc limit 1")
            .bind(&hash)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), file.is_none()), ("failed", true), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_runs_as_a_job_with_progress_sqlite() {
    large_export(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_runs_as_a_job_with_progress_postgres() {
    large_export(Backend::Postgres).await;
}

both_backends!(bulk_dispatch_asks_for_a_unit_and_names_failures_by_tracking_code, |app| {
    let l = setup(&app).await;
    let id = staff_order(&app, &l, "0309").await;
    act_ok(&app, &l.centre, id, json!({"action": "accept"})).await;
    let order = app.get(&format!("/api/v1/orders/{id}"), &l.centre).await.body["order"].clone();
    let (version, code) = (order["version"].as_i64().unwrap(), order["tracking_code"].as_str().unwrap().to_string());
    let bulk = |sel: String, unit: String| {
        app.client
            .post(format!("{}/orders/bulk", app.addr))
            .bearer_auth(&l.centre)
            .form(&[("sel", sel), ("lead_unit", unit)])
            .send()
    };
    // Nothing chosen: refused with a question, nothing dispatched.
    let html = bulk(format!("{id}:{version}"), String::new()).await.unwrap().text().await.unwrap();
    assert!(html.contains("请选择派给哪个单位"), "{html}");
    let state = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>("select state from orders where id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(state(&app).await, "pending_dispatch");
    // A stale copy fails, named by its tracking code (never a raw id).
    let html = bulk(format!("{id}:{}", version - 1), l.grid_unit.to_string()).await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("{code}：")) && !html.contains(&format!("#{id}")), "{html}");
    assert_eq!(state(&app).await, "pending_dispatch");
    let r = bulk(format!("{id}:{version}"), l.grid_unit.to_string()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(state(&app).await, "pending_sign");
});
