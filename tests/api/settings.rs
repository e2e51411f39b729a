//! Settings changed on one server node reach every other node at once:
//! two servers on one PostgreSQL database, a change made through one, read
//! on the other within a second.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app, start_with, Backend};

/// Polls `seen` until it holds, for at most a second.
async fn within_a_second(what: &str, mut seen: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !seen().await {
        assert!(start.elapsed() < Duration::from_secs(1), "{what} did not reach the other node within a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_changed_on_one_node_reaches_the_other_within_a_second() {
    let Some(a) = spawn_app(Backend::Postgres).await else { return };
    let url = a.db.listen_url().expect("a PostgreSQL database").to_string();
    let db_b = fengqiao::platform::db::Db::connect(&url.parse().unwrap()).await.unwrap();
    let b = start_with(db_b, a.crypto.clone(), None, Backend::Postgres, a.root_id).await;
    let mut jobs = fengqiao::platform::jobs::Jobs::default();
    for node in [&a, &b] {
        jobs.start(fengqiao::app::FollowSettings::new(node.state_for_timers.clone()));
    }
    // Both nodes have read everything once, and listen.
    let admin = a.admin().await;
    assert_eq!(
        fengqiao::orders::refs::category_name(&b.db, "0309").await.unwrap().as_deref(),
        Some("小区公共设施维修")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The security policy.
    let mut policy = a.get("/api/v1/policy", &admin).await.body;
    policy["password_min_length"] = json!(12);
    assert_eq!(a.call(Method::PUT, "/api/v1/policy", Some(&admin), Some(policy)).await.status, StatusCode::OK);
    within_a_second("the policy", async || b.state_for_timers.policy().password_min_length == 12).await;

    // The holiday calendar: a working Monday becomes a day off.
    let day = NaiveDate::from_ymd_opt(2026, 12, 14).unwrap();
    assert!(b.state_for_timers.clock().calendar().is_working_day(day));
    let r = a
        .client
        .post(format!("{}/api/v1/calendar", a.addr))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("date,kind,name\n2026-12-14,holiday,调休\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    within_a_second("the calendar", async || !b.state_for_timers.clock().calendar().is_working_day(day)).await;

    // A category's name and limits (kept in memory for dispatch and reads).
    let body = json!({"name": "公共设施维修", "owner_unit": null, "sign_limit": {"unit": "working_hours", "amount": 2},
        "handle_limit": {"unit": "working_days", "amount": 5}, "urgent_handle_limit": {"unit": "working_days", "amount": 1},
        "evaluate_limit": {"unit": "working_days", "amount": 3}});
    assert_eq!(a.call(Method::PUT, "/api/v1/categories/0309", Some(&admin), Some(body)).await.status, StatusCode::OK);
    within_a_second("the category", async || {
        fengqiao::orders::refs::category_name(&b.db, "0309").await.unwrap().as_deref() == Some("公共设施维修")
    })
    .await;
    jobs.stop().await;
}
