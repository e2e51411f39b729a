//! Large queue exports: a queue of more orders than one answer holds (`Config::export_inline_rows`)
//! is exported by a background job (`Exports`), page by page, while its
//! owner watches the progress (`/orders/exports/{id}`); the workbook waits
//! in `export_jobs` for a day. The job acts as the session that asked for
//! it, re-checked at every page, so it shows what that session may see,
//! masked as on screen, and stops when the session ends.

use std::{sync::atomic::AtomicBool, time::Duration};

use askama::Template;
use axum::{
    extract::State,
    http::Uri,
    response::{IntoResponse, Redirect, Response},
};
use sqlx::Row;

use crate::{
    kernel::{
        error::{Error, Result},
        i18n::t,
        principal::CurrentUser,
    },
    platform::{
        db::{now_ms, Db},
        jobs::{Job, Outcome},
    },
    web::{extract::page::Path, login_or_redirect, render, to_login, AppState, Msg as _, Shell},
};

use super::{store, workbook};

/// The most rows an export job writes (one worksheet holds about a million;
/// a district's year of orders is some tens of thousands).
pub const JOB_LIMIT: i64 = 100_000;

/// How long a finished export waits for its owner.
const KEEP_MS: i64 = 24 * 3600 * 1000;

/// Rows per page the job reads at once.
const PAGE: i64 = 200;

/// Queues an export of `query` (the queue page's query string) for `user`,
/// who has `total` orders in it; answers the job's id.
pub async fn enqueue(db: &Db, user: &CurrentUser, addr: Option<String>, query: &str, total: i64) -> Result<i64> {
    let _w = db.write_lock().await;
    let id: i64 = sqlx::query_scalar(
        "insert into export_jobs (user_id, token_hash, client_addr, query, rows_total, created_at) \
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(user.id)
    .bind(&user.token_hash)
    .bind(addr)
    .bind(query)
    .bind(total)
    .bind(now_ms())
    .fetch_one(&db.pool)
    .await?;
    Ok(id)
}

/// One export as its owner sees it.
pub struct ExportView {
    pub id: i64,
    pub state: String,
    pub rows_total: i64,
    pub rows_done: i64,
    pub error: Option<String>,
    pub created_at: i64,
}

impl ExportView {
    pub fn done(&self) -> bool {
        self.state == "done"
    }

    /// The total shown: it may grow while a filtered queue is read.
    pub fn total(&self) -> i64 {
        self.rows_total.max(self.rows_done)
    }

    pub fn running(&self) -> bool {
        self.state == "queued" || self.state == "running"
    }

    /// Progress in percent (a filtered queue counts up to 10,000, so the
    /// total may grow while the job reads).
    pub fn percent(&self) -> i64 {
        if self.done() {
            return 100;
        }
        (self.rows_done * 100 / self.rows_total.max(self.rows_done).max(1)).min(99)
    }

    pub fn state_label(&self) -> &'static str {
        t(match self.state.as_str() {
            "queued" => "export.state.queued",
            "running" => "export.state.running",
            "done" => "export.state.done",
            _ => "export.state.failed",
        })
    }
}

/// The caller's own export `id`; another's answers like a missing one.
async fn own(db: &Db, user: &CurrentUser, id: i64) -> Result<ExportView> {
    let row = sqlx::query(
        "select id, state, rows_total, rows_done, error, created_at from export_jobs where id = $1 and user_id = $2",
    )
    .bind(id)
    .bind(user.id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(ExportView {
        id: row.try_get("id")?,
        state: row.try_get("state")?,
        rows_total: row.try_get("rows_total")?,
        rows_done: row.try_get("rows_done")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
    })
}

#[derive(Template)]
#[template(path = "orders/export.html")]
struct ExportPage {
    shell: Shell,
    job: ExportView,
}

/// The progress of an export, refreshed by htmx while it runs.
pub async fn page(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let job = own(&s.db, &user, id).await?;
    Ok(render(&ExportPage { shell: Shell { user, active: "orders" }, job }))
}

/// The finished workbook.
pub async fn file(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let job = own(&s.db, &user, id).await?;
    if !job.done() {
        return Err(Error::NotFound);
    }
    let bytes: Vec<u8> =
        sqlx::query_scalar("select file from export_jobs where id = $1").bind(id).fetch_one(&s.db.pool).await?;
    let day = chrono::DateTime::from_timestamp_millis(job.created_at)
        .unwrap_or_default()
        .with_timezone(&s.clock().offset())
        .format("%Y%m%d")
        .to_string();
    Ok(workbook::xlsx_response(bytes, &day).into_response())
}

/// Redirects a queue export that is too large for one answer to its job.
pub fn redirect_to(id: i64) -> Response {
    Redirect::to(&format!("/orders/exports/{id}")).into_response()
}

/// Runs queued exports, one page of one export per step.
pub struct Exports {
    pub state: AppState,
    pub every: Duration,
    /// Exports cut short by a restart are taken up again once, at start.
    recovered: AtomicBool,
}

impl Exports {
    pub fn new(state: AppState) -> Exports {
        Exports { state, every: Duration::from_secs(1), recovered: AtomicBool::new(false) }
    }

    /// Writes one export from start to end, checking the session at each page.
    pub async fn run_one(&self, id: i64) -> Result<()> {
        let db = &self.state.db;
        let row = sqlx::query("select token_hash, client_addr, query from export_jobs where id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await?;
        let token_hash: String = row.try_get("token_hash")?;
        let addr: Option<String> = row.try_get("client_addr")?;
        let query: String = row.try_get("query")?;
        let uri: Uri =
            format!("/orders/export?{query}").parse().map_err(|_| Error::invalid("queue.export_query", "query"))?;
        let q = axum::extract::Query::<store::ListQuery>::try_from_uri(&uri)
            .map_err(|_| Error::invalid("queue.export_query", "query"))?
            .0;
        let queue = q.queue.clone().unwrap_or_else(|| "all".into());
        let clock = self.state.clock();
        let mut rows = vec![];
        let mut page = 1;
        loop {
            let policy = self.state.policy();
            let Some(user) = crate::auth::session_user(db, &policy, &token_hash).await? else {
                return fail(db, id, "export.session_ended").await;
            };
            let query =
                store::ListQuery { queue: Some(queue.clone()), page: Some(page), per_page: Some(PAGE), ..q.clone() };
            let p = store::list(db, &clock, &user, &query).await?;
            let n = p.orders.len() as i64;
            rows.extend(p.orders.into_iter().map(|o| o.for_reader(&user)));
            let w = db.write_lock().await;
            sqlx::query("update export_jobs set rows_done = $1, rows_total = $2 where id = $3")
                .bind(rows.len() as i64)
                .bind(p.total.max(rows.len() as i64))
                .bind(id)
                .execute(&db.pool)
                .await?;
            drop(w);
            if n < PAGE || rows.len() as i64 >= JOB_LIMIT {
                let bytes = workbook::workbook(&rows, now_ms(), clock.offset())
                    .map_err(|e| Error::Internal(anyhow::anyhow!("xlsx: {e}")))?;
                let w = db.write_lock().await;
                sqlx::query(
                    "update export_jobs set state = 'done', file = $1, rows_total = $2, finished_at = $3 where id = $4",
                )
                .bind(bytes)
                .bind(rows.len() as i64)
                .bind(now_ms())
                .bind(id)
                .execute(&db.pool)
                .await?;
                drop(w);
                crate::audit::record(
                    db,
                    &crate::audit::Actor::user(&user, addr),
                    super::action::ORDER_EXPORT,
                    None,
                    None,
                    serde_json::json!({"query": query_text(&uri), "rows": rows.len(), "job": id}),
                )
                .await?;
                return Ok(());
            }
            page += 1;
        }
    }
}

fn query_text(uri: &Uri) -> String {
    uri.query().unwrap_or("").to_string()
}

async fn fail(db: &Db, id: i64, key: &str) -> Result<()> {
    let _w = db.write_lock().await;
    sqlx::query("update export_jobs set state = 'failed', error = $1, finished_at = $2 where id = $3")
        .bind(key)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

impl Job for Exports {
    fn name(&self) -> &'static str {
        "exports"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn run_once(&self) -> Result<Outcome> {
        let db = &self.state.db;
        let w = db.write_lock().await;
        if !self.recovered.swap(true, std::sync::atomic::Ordering::SeqCst) {
            sqlx::query("update export_jobs set state = 'queued', rows_done = 0 where state = 'running'")
                .execute(&db.pool)
                .await?;
        }
        // Finished exports are kept for a day.
        sqlx::query("delete from export_jobs where finished_at is not null and finished_at < $1")
            .bind(now_ms() - KEEP_MS)
            .execute(&db.pool)
            .await?;
        drop(w);
        let Some(id): Option<i64> =
            sqlx::query_scalar("select id from export_jobs where state = 'queued' order by id limit 1")
                .fetch_optional(&db.pool)
                .await?
        else {
            return Ok(Outcome::Idle);
        };
        // Claim it (another node may have been quicker).
        let w = db.write_lock().await;
        let claimed = sqlx::query("update export_jobs set state = 'running' where id = $1 and state = 'queued'")
            .bind(id)
            .execute(&db.pool)
            .await?
            .rows_affected();
        drop(w);
        if claimed == 1 {
            if let Err(e) = self.run_one(id).await {
                tracing::warn!(job = id, error = %e, "export failed");
                fail(db, id, "export.failed").await?;
            }
        }
        Ok(Outcome::Worked)
    }
}
