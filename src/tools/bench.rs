//! `fengqiao bench`: measurements anyone can rerun on their machine. Each
//! runs on realistic generated data (the demo district) on SQLite and, when
//! reachable, PostgreSQL, and reports medians and tail percentiles.

use std::{sync::Arc, time::Instant};

use crate::{
    audit,
    platform::{crypto::Crypto, db::Db},
    web::Config,
};

/// Latency percentiles of a sample, in milliseconds.
pub struct Stats {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub n: usize,
}

pub fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Stats { p50: at(0.5), p95: at(0.95), p99: at(0.99), p999: at(0.999), n: ms.len() }
}

pub use crate::platform::db::scratch::Scratch;

/// Starts the server in this process on a free port; returns its base URL.
pub async fn serve_in_process(db: Db, crypto: Crypto) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state =
        crate::app::state(db, Config { cookie_secure: false, bench_endpoints: true, ..Config::default() }, crypto)
            .await?;
    tokio::spawn(crate::app::serve(listener, state, std::future::pending()));
    Ok(format!("http://{addr}"))
}

pub async fn api_login(client: &reqwest::Client, base: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let r: serde_json::Value = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(r["token"].as_str().unwrap_or_default().to_string())
}

/// Demo build time and subtree-listing latency over HTTP on one backend.
pub async fn tree_on(scratch: &Scratch, requests: usize) -> anyhow::Result<String> {
    let db = &scratch.db;
    let crypto = Crypto::ephemeral();
    let t0 = Instant::now();
    let summary = crate::demo::build(db, &crypto, 140107).await?;
    let build_s = t0.elapsed().as_secs_f64();
    let base = serve_in_process(db.clone(), crypto).await?;
    let client = reqwest::Client::new();
    let token = api_login(&client, &base, "admin", crate::demo::DEMO_PASSWORD).await?;
    let id = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db.pool).await };
    let root = id("select id from nodes where parent_id is null").await?;
    let sub = id("select id from nodes where code = '140107002000'").await?;
    let comm = id("select id from nodes where code = '140107002001'").await?;
    let cases = [
        (format!("/api/v1/nodes/{root}/subtree?kinds=subdistrict,community,grid&limit=5000"), "区→街道/社区/网格"),
        (format!("/api/v1/nodes/{root}/subtree?kinds=grid&with_polygons=true&limit=5000"), "区→全部网格含边界"),
        (format!("/api/v1/nodes/{sub}/subtree?limit=5000"), "街道→全部下级(含楼栋)"),
        (format!("/api/v1/nodes/{comm}/subtree"), "社区→网格与楼栋"),
        (format!("/api/v1/nodes/{root}"), "区节点详情与计数"),
    ];
    let mut out = format!(
        "### {}\n\n演示区县生成 {build_s:.2} s({} 个网格，{} 栋楼)\n\n| 查询 | 行数 | p50 ms | p95 ms | p99 ms | n |\n|---|---|---|---|---|---|\n",
        db.backend.name(),
        summary.grids,
        summary.buildings
    );
    for (path, label) in cases {
        let url = format!("{base}{path}");
        let mut rows = 0;
        for _ in 0..5 {
            let v: serde_json::Value = client.get(&url).bearer_auth(&token).send().await?.json().await?;
            rows = v["nodes"].as_array().map(|a| a.len()).unwrap_or(1);
        }
        let mut ms = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let r = client.get(&url).bearer_auth(&token).send().await?;
            let _ = r.bytes().await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let s = stats(ms);
        out += &format!("| {label} | {rows} | {:.2} | {:.2} | {:.2} | {} |\n", s.p50, s.p95, s.p99, s.n);
    }
    Ok(out)
}

/// Time from starting `fengqiao demo --reset` to its first healthy answer.
pub async fn demo_startup(runs: usize) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut secs = vec![];
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new(&exe)
            .args(["demo", "--reset", "--db", &db, "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let mut url = None;
        while let Some(line) = lines.next_line().await? {
            if let Some(i) = line.find("http://") {
                url = Some(line[i..].trim_end_matches('/').to_string());
                break;
            }
        }
        let url = url.ok_or_else(|| anyhow::anyhow!("demo printed no URL"))?;
        let client = reqwest::Client::new();
        while client.get(format!("{url}/healthz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        secs.push(t0.elapsed().as_secs_f64());
        child.kill().await?;
    }
    let s = stats(secs.iter().map(|s| s * 1000.0).collect());
    Ok(format!(
        "### fengqiao demo: start to serving (SQLite, --reset, {} runs)\n\nmedian {:.2} s, max {:.2} s (runs: {})\n",
        s.n,
        s.p50 / 1000.0,
        secs.iter().cloned().fold(0.0, f64::max),
        secs.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", ")
    ))
}

/// What the bench reads of an order in an answer.
#[derive(serde::Deserialize)]
struct Answer {
    id: i64,
    version: i64,
}

/// One bench client: its own grid unit, so it signs what it dispatches.
struct OrderClient {
    client: reqwest::Client,
    base: String,
    /// `Bearer <token>`.
    bearer: String,
    unit: i64,
    grid: i64,
}

impl OrderClient {
    /// Posts a JSON body and reads the answer's id and version (the rest of
    /// the order is skipped, not built, so the load generator stays light).
    async fn post(&self, path: &str, body: String) -> anyhow::Result<Answer> {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, &self.bearer)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await?;
        let status = r.status();
        let bytes = r.bytes().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&bytes));
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// The six transitions of one order after its creation, as JSON.
    fn steps(&self) -> [String; 6] {
        use serde_json::json;
        [
            json!({"action": "accept"}),
            json!({"action": "dispatch", "lead_unit": self.unit}),
            json!({"action": "sign"}),
            json!({"action": "report_back", "result": "已处理完毕"}),
            json!({"action": "verify_pass"}),
            json!({"action": "evaluate", "rating": "satisfied"}),
        ]
        .map(|v| v.to_string())
    }

    fn creation(&self) -> String {
        serde_json::json!({"source": "patrol", "category_code": "0309", "title": "单元门对讲机损坏",
            "description": "3号楼2单元对讲机无法使用", "address": "3号楼2单元", "node_id": self.grid})
        .to_string()
    }
}

/// Full-lifecycle throughput over HTTP, latency at half that load, and the
/// plain-insert ceiling of the same server, on one backend: `rounds` pairs of
/// phases (lifecycle flat out, then the insert endpoint), reported as medians.
pub async fn orders_on(scratch: &Scratch, seconds: u64, clients: usize, rounds: usize) -> anyhow::Result<String> {
    use std::time::Duration;
    let rounds = rounds.max(1);
    let db = &scratch.db;
    let crypto = Crypto::ephemeral();
    crate::demo::build(db, &crypto, 140107).await?;
    // Bench users: every role of the loop, each bound to one grid's unit.
    let hash = crate::auth::password::hash(crate::demo::DEMO_PASSWORD.into()).await;
    let grids: Vec<(i64, i64)> =
        sqlx::query_as("select u.id, u.node_id from units u where u.kind = 'grid' order by u.id limit $1")
            .bind(clients as i64)
            .fetch_all(&db.pool)
            .await?;
    let base = serve_in_process(db.clone(), crypto).await?;
    let mut cs = vec![];
    for (i, (unit, grid)) in grids.iter().enumerate() {
        let name = format!("bench{i}");
        let mut conn = db.pool.acquire().await?;
        let id = crate::auth::create_user(
            &mut conn,
            crate::auth::NewUser {
                username: &name,
                display_name: &name,
                password_hash: &hash,
                node_id: *grid,
                roles: &["acceptor", "dispatcher", "grid_worker"],
                must_change_password: false,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        sqlx::query("update users set unit_id = $1 where id = $2").bind(unit).bind(id).execute(&mut *conn).await?;
        drop(conn);
        let client = reqwest::Client::builder().pool_max_idle_per_host(4).build()?;
        let token = api_login(&client, &base, &name, crate::demo::DEMO_PASSWORD).await?;
        cs.push(Arc::new(OrderClient {
            client,
            base: base.clone(),
            bearer: format!("Bearer {token}"),
            unit: *unit,
            grid: *grid,
        }));
    }

    // One phase: every client runs orders through their lifecycle, flat out
    // or paced.
    let run = |pace: Option<Duration>| {
        let cs = cs.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = vec![];
            let n = cs.len() as u32;
            for (i, c) in cs.into_iter().enumerate() {
                tasks.push(tokio::spawn(async move {
                    let mut lat = vec![];
                    // Stagger the clients so paced requests arrive evenly, not in bursts.
                    let mut next = Instant::now() + pace.map(|p| p * i as u32 / n).unwrap_or_default();
                    // The bodies are built once; a step's is spliced into
                    // the request with the order's version.
                    let (creation, steps) = (c.creation(), c.steps());
                    'outer: while Instant::now() < deadline {
                        let o = c.post("/api/v1/orders", creation.clone()).await?;
                        let (id, mut version) = (o.id, o.version);
                        let path = format!("/api/v1/orders/{id}/actions");
                        for step in &steps {
                            if let Some(p) = pace {
                                next += p;
                                tokio::time::sleep_until(next.into()).await;
                            }
                            if Instant::now() >= deadline {
                                break 'outer;
                            }
                            let t = Instant::now();
                            let o = c.post(&path, format!(r#"{{"version":{version},"action":{step}}}"#)).await?;
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                            version = o.version;
                        }
                    }
                    Ok::<_, anyhow::Error>(lat)
                }));
            }
            let mut all = vec![];
            for t in tasks {
                all.extend(t.await??);
            }
            Ok::<_, anyhow::Error>(all)
        }
    };
    // The reference: one plain single-row insert per request, same clients.
    let inserts = || {
        let cs = cs.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = vec![];
            for c in cs {
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let r = c.client.post(format!("{}/bench/insert", c.base)).body("x").send().await?;
                        anyhow::ensure!(r.status().is_success(), "bench insert failed: {}", r.status());
                        n += 1;
                    }
                    Ok::<_, anyhow::Error>(n)
                }));
            }
            let mut n = 0u64;
            for t in tasks {
                n += t.await??;
            }
            Ok::<_, anyhow::Error>(n)
        }
    };

    // Rounds of the flat-out lifecycle followed at once by the reference, so
    // that each round's ratio compares two phases seconds apart on a machine
    // whose speed drifts; the medians of the rounds are reported.
    let (mut rates, mut ceilings, mut ratios, mut full) = (vec![], vec![], vec![], vec![]);
    let (mut cpu_lifecycle, mut lifecycle_requests, mut cpu_insert, mut insert_requests) = (0.0, 0.0, 0.0, 0.0);
    let (mut batches, mut writes) = (0u64, 0u64);
    for _ in 0..rounds {
        let t0 = Instant::now();
        let cpu0 = cpu_seconds();
        let w0 = db.writer_stats();
        let lat = run(None).await?;
        let rate = lat.len() as f64 / t0.elapsed().as_secs_f64();
        if let (Some((b0, w0)), Some((b1, w1))) = (w0, db.writer_stats()) {
            (batches, writes) = (batches + b1 - b0, writes + w1 - w0);
        }
        cpu_lifecycle += cpu_seconds() - cpu0;
        // Requests at full load: the transitions and the creations between them.
        lifecycle_requests += lat.len() as f64 * 7.0 / 6.0;
        full.extend(lat);

        let t2 = Instant::now();
        let cpu2 = cpu_seconds();
        let n = inserts().await?;
        let ceiling = n as f64 / t2.elapsed().as_secs_f64();
        cpu_insert += cpu_seconds() - cpu2;
        insert_requests += n as f64;
        rates.push(rate);
        ceilings.push(ceiling);
        ratios.push(rate / ceiling);
    }
    let batch = if batches > 0 { format!("{:.1}", writes as f64 / batches as f64) } else { "–".into() };
    let full_stats = stats(full);
    let (rate, ratio, ceiling) = (Spread::of(rates), Spread::of(ratios), Spread::of(ceilings));

    // Half the median load, paced per client.
    let per_client = Duration::from_secs_f64(clients as f64 / (rate.median / 2.0));
    let t1 = Instant::now();
    let half = run(Some(per_client)).await?;
    let half_rate = half.len() as f64 / t1.elapsed().as_secs_f64();
    let half_stats = stats(half);
    Ok(format!(
        "### {}{} — {clients} clients, {} rounds of {seconds} s lifecycle + {seconds} s reference, then {seconds} s at half load\n\n\
         | measure | value |\n|---|---|\n\
         | full-lifecycle transitions/s (max), median of rounds (min – max) | {} |\n\
         | reference: plain single-row insert endpoint, requests/s, median (min – max) | {} |\n\
         | ratio transitions / inserts, median of the rounds' ratios (min – max) | {} |\n\
         | latency at max load p50 / p99 ms (all rounds) | {:.2} / {:.2} |\n\
         | at half load: transitions/s | {half_rate:.0} |\n\
         | at half load: p50 / p95 / p99 / p99.9 ms | {:.2} / {:.2} / {:.2} / {:.2} |\n\
         | writes per group commit at max load (SQLite) | {batch} |\n\
         | CPU per lifecycle request / per insert request (server and clients), µs | {:.0} / {:.0} |\n",
        db.backend.name(),
        db.synchronous.map(|s| format!(", synchronous = {}", s.name())).unwrap_or_default(),
        rounds,
        rate.show(0),
        ceiling.show(0),
        ratio.show(2),
        full_stats.p50,
        full_stats.p99,
        half_stats.p50,
        half_stats.p95,
        half_stats.p99,
        half_stats.p999,
        cpu_lifecycle / lifecycle_requests * 1e6,
        cpu_insert / insert_requests.max(1.0) * 1e6,
    ))
}

/// The median and range of a few measurements (one per round).
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1] }
    }

    fn show(&self, decimals: usize) -> String {
        if self.min == self.max {
            return format!("{:.*}", decimals, self.median);
        }
        format!("{:.*} ({:.*} – {:.*})", decimals, self.median, decimals, self.min, decimals, self.max)
    }
}

/// CPU time this process has used (all threads), from /proc; 0 where
/// there is no /proc. On a shared machine it says what a request costs
/// even when other work slows the clock.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// Audit log appends per second: one writer, then four concurrent writers
/// (appends serialise on the chain head), then the time to verify it all.
pub async fn audit_on(scratch: &Scratch, n: usize) -> anyhow::Result<String> {
    let db = &scratch.db;
    let actor = audit::Actor {
        user_id: Some(1),
        username: "bench".into(),
        roles: "admin".into(),
        node_id: Some(1),
        client_addr: Some("127.0.0.1".into()),
    };
    let append = |db: Db, actor: audit::Actor, i: usize| async move {
        let object = Some(audit::Object::new("node", i));
        let detail = serde_json::json!({"fields": ["name", "households"], "version": i});
        audit::record(&db, &actor, crate::tree::action::NODE_UPDATE, object, None, detail).await
    };
    let t0 = Instant::now();
    for i in 0..n {
        append(db.clone(), actor.clone(), i).await?;
    }
    let serial = n as f64 / t0.elapsed().as_secs_f64();

    let writers = 4;
    let t1 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (db, actor) = (db.clone(), actor.clone());
        tasks.spawn(async move {
            for i in (w..n).step_by(writers) {
                append(db.clone(), actor.clone(), i).await?;
            }
            Ok::<_, crate::kernel::error::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let concurrent = n as f64 / t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    let report = audit::verify(db).await?;
    let verify_s = t2.elapsed().as_secs_f64();
    anyhow::ensure!(report.ok() && report.checked == 2 * n as u64, "chain broken after benchmark: {report}");
    Ok(format!(
        "### {} audit log\n\n| case | entries | entries/s |\n|---|---|---|\n\
         | 1 writer | {n} | {serial:.0} |\n| {writers} concurrent writers | {n} | {concurrent:.0} |\n\
         | verify whole chain | {} | {:.0} |\n",
        db.backend.name(),
        2 * n,
        (2 * n) as f64 / verify_s
    ))
}

/// What `load_orders` did.
pub struct Loaded {
    pub total: i64,
    pub seconds: f64,
}

/// Adds `n` synthetic orders to a built demo district, fast enough for ten
/// million. Order k copies demo order `k mod D` (same grid, category,
/// source, state, lead unit and outcome: the demo's realistic spread over
/// the district's real tree and the past year) and moves it back in time by
/// up to six hours, all its times together, so its state still fits its
/// age. The rows are generated inside the database (`insert … select`)
/// with the secondary indexes dropped and rebuilt afterwards, and the kept
/// queue counts are added up in memory from the same `k mod D` mapping
/// instead of recounting the table.
pub async fn load_orders(db: &Db, n: i64) -> anyhow::Result<Loaded> {
    use sqlx::Row;
    use std::collections::HashMap;

    use crate::orders::machine::State;
    let t0 = Instant::now();
    let templates =
        sqlx::query("select id, node_path, state, overdue from orders order by id").fetch_all(&db.pool).await?;
    let d = templates.len() as i64;
    anyhow::ensure!(d > 0, "no demo orders to copy");
    let first: i64 = templates[0].try_get("id")?;
    let last: i64 = templates[templates.len() - 1].try_get("id")?;
    anyhow::ensure!(last - first + 1 == d, "demo order ids are not contiguous");
    let pg = db.backend == crate::platform::db::Backend::Postgres;

    // Secondary indexes are rebuilt once at the end: far cheaper than
    // maintaining eleven of them row by row.
    let indexes: Vec<(String, String)> = if pg {
        sqlx::query_as(
            "select cast(indexname as text), cast(indexdef as text) from pg_indexes where schemaname = current_schema() and tablename = 'orders' \
             and indexdef not like 'CREATE UNIQUE%'",
        )
        .fetch_all(&db.pool)
        .await?
    } else {
        sqlx::query_as(
            "select name, sql from sqlite_master where type = 'index' and tbl_name = 'orders' and sql is not null",
        )
        .fetch_all(&db.pool)
        .await?
    };
    for (name, _) in &indexes {
        sqlx::query(&format!("drop index {name}")).execute(&db.pool).await?;
    }

    let series = if pg {
        "generate_series(cast($1 as bigint), cast($2 as bigint)) as seq(k)"
    } else {
        "(with recursive s(k) as (select $1 union all select k + 1 from s where k < $2) select k from s) seq"
    };
    let insert = format!(
        "insert into orders (tracking_code, source, category_code, urgency, title, description, address, lon, lat, \
           node_id, node_path, level, state, lead_unit_id, reporter_name, facts, deadline_kind, deadline_start, \
           deadline_at, overdue, rating, version, created_at, updated_at, closed_at, area1, area2, area3) \
         select 'B' || cast(k as text), o.source, o.category_code, o.urgency, o.title, o.description, o.address, \
           o.lon, o.lat, o.node_id, o.node_path, o.level, o.state, o.lead_unit_id, o.reporter_name, o.facts, \
           o.deadline_kind, o.deadline_start - (k / $4 % 3600) * 6000, o.deadline_at - (k / $4 % 3600) * 6000, \
           o.overdue, o.rating, o.version, o.created_at - (k / $4 % 3600) * 6000, o.updated_at - (k / $4 % 3600) * 6000, \
           o.closed_at - (k / $4 % 3600) * 6000, o.area1, o.area2, o.area3 \
         from {series} join orders o on o.id = $3 + k % $4"
    );
    let mut copies = vec![0i64; templates.len()];
    let chunk = 250_000i64;
    let mut k = 1i64;
    while k <= n {
        let hi = (k + chunk - 1).min(n);
        for j in k..=hi {
            copies[(j % d) as usize] += 1;
        }
        let _w = db.write_lock().await;
        sqlx::query(&insert).bind(k).bind(hi).bind(first).bind(d).execute(&db.pool).await?;
        k = hi + 1;
    }

    // Each copy counts where its template counts: in its state at every
    // ancestor of its place, and as overdue when it waits overdue.
    let mut counts: HashMap<(i64, String), i64> = HashMap::new();
    for (t, c) in templates.iter().zip(&copies) {
        let path: String = t.try_get("node_path")?;
        let state: String = t.try_get("state")?;
        let overdue = t.try_get::<i64, _>("overdue")? != 0
            && (state == State::PendingSign.as_str() || state == State::Handling.as_str());
        for id in path.split('/').filter_map(|s| s.parse::<i64>().ok()) {
            *counts.entry((id, state.clone())).or_default() += c;
            if overdue {
                *counts.entry((id, "overdue".into())).or_default() += c;
            }
        }
    }
    let counts: Vec<_> = counts.into_iter().filter(|(_, c)| *c > 0).collect();
    for part in counts.chunks(30) {
        let mut sql = String::from("insert into order_counts (node_id, state, n) values ");
        for (i, _) in part.iter().enumerate() {
            sql += &format!("{}(${}, ${}, ${})", if i > 0 { "," } else { "" }, 3 * i + 1, 3 * i + 2, 3 * i + 3);
        }
        sql += " on conflict (node_id, state) do update set n = order_counts.n + excluded.n";
        let mut q = sqlx::query(&sql);
        for ((id, state), c) in part {
            q = q.bind(*id).bind(state.as_str()).bind(*c);
        }
        let _w = db.write_lock().await;
        q.execute(&db.pool).await?;
    }

    for (_, def) in &indexes {
        sqlx::query(def).execute(&db.pool).await?;
    }
    if pg {
        sqlx::query("analyze orders").execute(&db.pool).await?;
    }
    let total: i64 = sqlx::query_scalar("select count(*) from orders").fetch_one(&db.pool).await?;
    Ok(Loaded { total, seconds: t0.elapsed().as_secs_f64() })
}

/// Queue-page latency with many orders (see `load_orders`), measured for a
/// district centre and a community through the HTML page and the JSON API.
pub async fn queue_on(scratch: &Scratch, n: i64, requests: usize) -> anyhow::Result<String> {
    let db = &scratch.db;
    let crypto = Crypto::ephemeral();
    crate::demo::build(db, &crypto, 140107).await?;
    let Loaded { total, seconds: load_s } = load_orders(db, n).await?;
    let size = db_size_gb(db).await?;
    let base = serve_in_process(db.clone(), crypto).await?;
    let mut out = format!(
        "### {} — {total} orders (loaded in {load_s:.0} s, database {size:.1} GB)\n\n| who | page | p50 ms | p95 ms | p99 ms | n |\n|---|---|---|---|---|---|\n",
        db.backend.name()
    );
    for (user, label) in [("zhongxin", "区综治中心"), ("sq140107002001", "黑龙潭社区")] {
        let client =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
        let r = client
            .post(format!("{base}/login"))
            .form(&[("username", user), ("password", crate::demo::DEMO_PASSWORD), ("next", "/")])
            .send()
            .await?;
        anyhow::ensure!(r.status().is_redirection(), "login failed for {user}");
        let token = api_login(&client, &base, user, crate::demo::DEMO_PASSWORD).await?;
        for (path, api) in [
            ("/orders?queue=pending_accept", false),
            ("/orders?queue=handling", false),
            ("/orders?queue=all&page=3", false),
            ("/api/v1/orders?queue=handling", true),
            ("/api/v1/orders/counts", true),
            // 一张图: the area's newest open orders, up to 2,000 points.
            ("/api/v1/orders/map", true),
        ] {
            let mut ms = Vec::with_capacity(requests);
            for i in 0..requests + 5 {
                let req = client.get(format!("{base}{path}"));
                let req = if api { req.bearer_auth(&token) } else { req };
                let t = Instant::now();
                let r = req.send().await?;
                anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
                let _ = r.bytes().await?;
                if i >= 5 {
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            let s = stats(ms);
            out += &format!("| {label} | `{path}` | {:.2} | {:.2} | {:.2} | {} |\n", s.p50, s.p95, s.p99, s.n);
        }
    }
    Ok(out)
}

/// The database's size on disk (SQLite: the main file; PostgreSQL: the
/// orders table with its indexes).
async fn db_size_gb(db: &Db) -> anyhow::Result<f64> {
    let bytes: i64 = if db.backend == crate::platform::db::Backend::Postgres {
        sqlx::query_scalar("select cast(pg_total_relation_size('orders') as bigint)").fetch_one(&db.pool).await?
    } else {
        sqlx::query_scalar("select page_count * page_size from pragma_page_count(), pragma_page_size()")
            .fetch_one(&db.pool)
            .await?
    };
    Ok(bytes as f64 / 1e9)
}

/// Times `requests` GETs of `path` (after five warm-up requests).
async fn time_gets(client: &reqwest::Client, url: &str, token: &str, requests: usize) -> anyhow::Result<Stats> {
    let mut ms = Vec::with_capacity(requests);
    for i in 0..requests + 5 {
        let t = Instant::now();
        let r = client.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
        let _ = r.bytes().await?;
        if i >= 5 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(stats(ms))
}

/// The cost of data scope on a list of `n` orders (issue 4): the same list
/// and count requests for a district-root administrator (whose scope is
/// everything, so no filter applies), a subdistrict user and a community
/// user (an equality on the ancestor column at their depth).
pub async fn scope_on(scratch: &Scratch, n: i64, requests: usize) -> anyhow::Result<String> {
    let db = &scratch.db;
    let crypto = Crypto::ephemeral();
    crate::demo::build(db, &crypto, 140107).await?;
    let Loaded { total, seconds } = load_orders(db, n).await?;
    let base = serve_in_process(db.clone(), crypto).await?;
    let mut out = format!(
        "### {} — {total} orders (loaded in {seconds:.0} s)\n\n\
         | who | request | rows in scope | p50 ms | p95 ms | p99 ms | n |\n|---|---|---|---|---|---|---|\n",
        db.backend.name()
    );
    let client = reqwest::Client::new();
    for (user, label) in [("admin", "区管理员 (no filter)"), ("jd140107002", "街道"), ("sq140107002001", "社区")]
    {
        let token = api_login(&client, &base, user, crate::demo::DEMO_PASSWORD).await?;
        let all: serde_json::Value =
            client.get(format!("{base}/api/v1/orders?per_page=1")).bearer_auth(&token).send().await?.json().await?;
        let in_scope = all["total"].as_i64().unwrap_or_default();
        for (path, what) in [
            ("/api/v1/orders", "list, first page (20)"),
            ("/api/v1/orders?page=50", "list, page 50"),
            ("/api/v1/orders?queue=handling", "list, 办理中"),
            ("/api/v1/orders/counts", "queue counts (kept)"),
            ("/api/v1/orders?category=0309", "list + count with a filter (count capped at 10,000)"),
        ] {
            let s = time_gets(&client, &format!("{base}{path}"), &token, requests).await?;
            out += &format!(
                "| {label} | {what} `{path}` | {in_scope} | {:.2} | {:.2} | {:.2} | {} |\n",
                s.p50, s.p95, s.p99, s.n
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_and_range_of_its_rounds() {
        let s = Spread::of(vec![0.36, 0.31, 0.33]);
        assert_eq!((s.median, s.min, s.max), (0.33, 0.31, 0.36));
        assert_eq!(s.show(2), "0.33 (0.31 – 0.36)");
        assert_eq!(Spread::of(vec![4.0, 1.0, 2.0, 10.0]).median, 3.0);
        assert_eq!(Spread::of(vec![7.0]).show(0), "7");
    }

    /// The counts added up in memory while loading equal a full recount.
    #[tokio::test(flavor = "multi_thread")]
    async fn loaded_counts_equal_a_recount() {
        let scratch = Scratch::sqlite().await.unwrap();
        let db = &scratch.db;
        crate::demo::build(db, &Crypto::ephemeral(), 140107).await.unwrap();
        let loaded = load_orders(db, 9_001).await.unwrap();
        assert_eq!(loaded.total, 4_000 + 9_001);
        let snapshot = || async {
            sqlx::query_as::<_, (i64, String, i64)>(
                "select node_id, state, n from order_counts where n <> 0 order by node_id, state",
            )
            .fetch_all(&db.pool)
            .await
            .unwrap()
        };
        let kept = snapshot().await;
        crate::orders::store::rebuild_counts(db).await.unwrap();
        assert_eq!(kept, snapshot().await);
        scratch.cleanup().await.unwrap();
    }
}
