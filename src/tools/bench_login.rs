//! `fengqiao bench login`: what a login costs with the chosen argon2id
//! parameters — the bare password verification, and a whole
//! `POST /api/v1/session` over HTTP (lookup, verify, session insert, audit
//! entry), one at a time and with concurrent clients.

use std::time::Instant;

use crate::tools::bench::{serve_in_process, stats, Scratch};

const PASSWORD: &str = "Bench@2026pass";

pub async fn login_on(scratch: &Scratch, requests: usize) -> anyhow::Result<String> {
    let db = scratch.db.clone();
    crate::demo::init_root(&db, "140107", "杏花岭区", "admin", PASSWORD).await?;
    sqlx::query("update users set must_change_password = 0").execute(&db.pool).await?;
    let hash: String =
        sqlx::query_scalar("select password_hash from users where username = 'admin'").fetch_one(&db.pool).await?;
    let params = hash.split('$').nth(3).unwrap_or("").to_string();

    let mut verify_ms = vec![];
    for _ in 0..requests.clamp(10, 50) {
        let t = Instant::now();
        anyhow::ensure!(crate::auth::password::verify(PASSWORD.into(), hash.clone()).await);
        verify_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let verify = stats(verify_ms);

    let base = serve_in_process(db.clone(), crate::platform::crypto::Crypto::ephemeral()).await?;
    let client = reqwest::Client::new();
    let body = serde_json::json!({"username": "admin", "password": PASSWORD});
    let mut seq_ms = vec![];
    for _ in 0..requests {
        let t = Instant::now();
        let r = client.post(format!("{base}/api/v1/session")).json(&body).send().await?;
        anyhow::ensure!(r.status() == reqwest::StatusCode::CREATED, "login failed: {}", r.status());
        seq_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let seq = stats(seq_ms);

    // Several people logging in at once (the morning shift change).
    let clients = 8;
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..clients {
        let (client, base, body) = (client.clone(), base.clone(), body.clone());
        let n = requests / clients;
        tasks.push(tokio::spawn(async move {
            let mut ms = vec![];
            for _ in 0..n {
                let t = Instant::now();
                let r = client.post(format!("{base}/api/v1/session")).json(&body).send().await?;
                anyhow::ensure!(r.status() == reqwest::StatusCode::CREATED);
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok(ms)
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let conc = stats(all);
    Ok(format!(
        "login on {backend}: argon2id {params}\n  \
         password verification alone: p50 {:.1} ms, p95 {:.1} ms (n={})\n  \
         POST /api/v1/session, one at a time: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms (n={})\n  \
         {clients} clients at once: {rate:.1} logins/s, p50 {:.1} ms, p95 {:.1} ms (n={})",
        verify.p50,
        verify.p95,
        verify.n,
        seq.p50,
        seq.p95,
        seq.p99,
        seq.n,
        conc.p50,
        conc.p95,
        conc.n,
        backend = db.backend.name(),
    ))
}
