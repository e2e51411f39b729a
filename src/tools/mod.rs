//! Tools beside the server, built only with the `bench` feature: the
//! benchmarks (`fengqiao bench …`), which drive the whole app in process.

pub mod bench;
pub mod bench_login;

use crate::platform::db;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure: `tree` (demo build, subtree latency), `demo` (start to serving),
    /// `audit` (audit log appends per second), `orders` (transitions per second), `queue`
    /// (queue pages with many orders), `scope` (scope filtering on 1,000,000 orders).
    pub what: String,
    /// PostgreSQL database to measure in (a scratch schema is created and dropped).
    #[arg(long, env = "FENGQIAO_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub sqlite_only: bool,
    /// Skip SQLite (queue, scope).
    #[arg(long)]
    pub pg_only: bool,
    /// Requests per measured case.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
    /// Repetitions for whole-program timings.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds per measured phase (orders).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Synthetic orders to add before measuring (queue: default 10,000,000;
    /// scope: default 1,000,000).
    #[arg(long)]
    pub orders: Option<i64>,
    /// Concurrent HTTP clients (orders).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Rounds of lifecycle and reference phases, reported as medians (orders).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// `fengqiao bench WHAT`: runs one benchmark and prints its figures.
pub async fn run(a: BenchArgs, sqlite: db::SqliteOptions) -> anyhow::Result<()> {
    match a.what.as_str() {
        "demo" => println!("{}", bench::demo_startup(a.runs).await?),
        "login" => {
            let s = bench::Scratch::sqlite_with(sqlite).await?;
            println!("{}", bench_login::login_on(&s, a.requests).await?);
            s.cleanup().await?;
            if !a.sqlite_only {
                match bench::Scratch::postgres(&a.pg).await {
                    Ok(s) => {
                        println!("{}", bench_login::login_on(&s, a.requests).await?);
                        s.cleanup().await?;
                    }
                    Err(e) => println!("PostgreSQL SKIPPED: {e}"),
                }
            }
        }
        "queue" | "scope" => {
            let n = a.orders.unwrap_or(if a.what == "queue" { 10_000_000 } else { 1_000_000 });
            let run = |s| {
                let what = a.what.clone();
                async move {
                    let out = if what == "queue" {
                        bench::queue_on(&s, n, a.requests).await
                    } else {
                        bench::scope_on(&s, n, a.requests).await
                    };
                    s.cleanup().await?;
                    out
                }
            };
            if !a.pg_only {
                println!("{}", run(bench::Scratch::sqlite_with(sqlite).await?).await?);
            }
            if !a.sqlite_only {
                match bench::Scratch::postgres(&a.pg).await {
                    Ok(s) => println!("{}", run(s).await?),
                    Err(e) => println!("PostgreSQL SKIPPED: {e}"),
                }
            }
        }
        "orders" => {
            let s = bench::Scratch::sqlite_with(sqlite).await?;
            println!("{}", bench::orders_on(&s, a.seconds, a.clients, a.rounds).await?);
            s.cleanup().await?;
            if !a.sqlite_only {
                match bench::Scratch::postgres(&a.pg).await {
                    Ok(s) => {
                        println!("{}", bench::orders_on(&s, a.seconds, a.clients, a.rounds).await?);
                        s.cleanup().await?;
                    }
                    Err(e) => println!("PostgreSQL SKIPPED: {e}"),
                }
            }
        }
        "tree" => {
            let s = bench::Scratch::sqlite_with(sqlite).await?;
            println!("{}", bench::tree_on(&s, a.requests).await?);
            s.cleanup().await?;
            if a.sqlite_only {
                return Ok(());
            }
            match bench::Scratch::postgres(&a.pg).await {
                Ok(s) => {
                    println!("{}", bench::tree_on(&s, a.requests).await?);
                    s.cleanup().await?;
                }
                Err(e) => println!("PostgreSQL SKIPPED: {e}"),
            }
        }
        "audit" => {
            let n = a.requests.max(1000);
            let s = bench::Scratch::sqlite_with(sqlite).await?;
            println!("{}", bench::audit_on(&s, n).await?);
            s.cleanup().await?;
            if !a.sqlite_only {
                match bench::Scratch::postgres(&a.pg).await {
                    Ok(s) => {
                        println!("{}", bench::audit_on(&s, n).await?);
                        s.cleanup().await?;
                    }
                    Err(e) => println!("PostgreSQL SKIPPED: {e}"),
                }
            }
        }
        other => anyhow::bail!(
            "unknown benchmark `{other}`; try `tree`, `orders`, `queue`, `scope`, `demo`, `audit` or `login`"
        ),
    }
    Ok(())
}
