//! The outbox: what happened, told to others reliably. A service appends
//! an event (`NewEvent`) in the same transaction as the change it tells
//! of, so the event exists exactly when the change does. Consumers
//! deliver events afterwards, at least once: a consumer claims a batch
//! by writing a lease on it (PostgreSQL skips rows another claim has
//! locked; SQLite's claims queue on its one writer), hands each event to
//! its `Handler`, and marks it done, or due again after a growing pause,
//! or dead after too many attempts. An event whose lease runs out (its
//! consumer died) is claimed again, so handlers must be idempotent by
//! event id. Administrators list dead events and send them again.
//!
//! The webhook's consumers keep their state on the event itself: they
//! share its events (several nodes, one subscriber). Any other subscriber
//! (`Settings::subscriber`, e.g. the notifications) keeps a delivery row
//! per event of its own (`outbox_deliveries`), made as it first sees the
//! event, so that each subscriber gets every event, retries and gives up
//! on its own, and its consumers on several nodes share its deliveries.
//!
//! Payloads name objects by id and never carry personal data: events
//! leave the database, and are kept after they are delivered.

use std::{future::Future, time::Duration};

use serde::Serialize;
use utoipa::ToSchema;

use super::jobs::{Backoff, Job, Outcome};
use crate::{
    kernel::error::{Error, Result},
    platform::db::{bind_args, bind_sqlite, exec_sqlite, now_ms, Backend, Cols, Db, Statements, V},
};

/// An event to append in the caller's transaction.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub topic: String,
    pub payload: serde_json::Value,
    /// Epoch milliseconds, UTC.
    pub at: i64,
}

const INSERT: &str = "insert into outbox_events (topic, payload, created_at, next_attempt_at) values ($1, $2, $3, $3)";

impl NewEvent {
    pub fn new(topic: impl Into<String>, payload: serde_json::Value, at: i64) -> NewEvent {
        NewEvent { topic: topic.into(), payload, at }
    }

    fn args(&self) -> Vec<V> {
        vec![V::S(Some(self.topic.clone())), V::S(Some(self.payload.to_string())), V::I(Some(self.at))]
    }

    /// Adds the insert to a group of statements that run together (on
    /// PostgreSQL, a guarded group inserts it only if its update won).
    pub fn push_to(&self, statements: &mut Statements) {
        statements.push(INSERT, self.args());
    }

    /// PostgreSQL (or any sqlx connection): appends in the caller's transaction.
    pub async fn append_in(&self, conn: &mut sqlx::AnyConnection) -> Result<()> {
        bind_args(sqlx::query(INSERT), self.args()).execute(conn).await?;
        Ok(())
    }

    /// SQLite: appends on the group-commit writer's connection, inside
    /// the caller's write.
    pub fn append_sqlite(&self, conn: &rusqlite::Connection) -> Result<()> {
        exec_sqlite(conn, INSERT, &self.args())?;
        Ok(())
    }
}

/// A stored event, as handed to a consumer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Event {
    /// Unique and never reused: the key that makes handling idempotent.
    pub id: i64,
    /// e.g. `orders.dispatch`
    pub topic: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Epoch milliseconds, UTC.
    pub created_at: i64,
    /// Deliveries tried, this one included.
    pub attempts: i64,
}

const EVENT_COLS: &str = "id, topic, payload, created_at, attempts";

fn event_from(row: &impl Cols) -> Result<Event> {
    let payload: String = row.col("payload")?;
    Ok(Event {
        id: row.col("id")?,
        topic: row.col("topic")?,
        payload: serde_json::from_str(&payload).map_err(anyhow::Error::from)?,
        created_at: row.col("created_at")?,
        attempts: row.col("attempts")?,
    })
}

/// What a consumer does with each event. It may see an event more than
/// once (a lease that ran out, a crash before the event was marked done):
/// the event's id says whether it was handled already.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, event: &Event) -> impl Future<Output = Result<()>> + Send;
}

/// How a consumer claims and retries.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Topics taken: those that start with this ("" for all).
    pub topic_prefix: String,
    /// Events claimed at once.
    pub batch: i64,
    /// How long a claim holds its events; past it they are claimed again.
    /// Longer than a batch takes to handle.
    pub lease: Duration,
    /// Attempts after which an event is dead (kept for an administrator).
    pub max_attempts: i64,
    /// Pauses before an event is tried again.
    pub retry: Backoff,
    /// Polling interval when there is nothing to do.
    pub every: Duration,
    /// A subscriber with delivery state of its own; none for the webhook's
    /// state on the events.
    pub subscriber: Option<&'static str>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            topic_prefix: String::new(),
            batch: 16,
            lease: Duration::from_secs(300),
            max_attempts: 10,
            retry: Backoff { first: Duration::from_secs(10), max: Duration::from_secs(3600) },
            every: Duration::from_secs(5),
            subscriber: None,
        }
    }
}

/// Whether any event of the topics is due.
const DUE: &str = "select id from outbox_events where state = 'pending' and next_attempt_at <= $1 \
    and (lease_until is null or lease_until <= $1) and substr(topic, 1, length($2)) = $2 limit 1";

/// Claims: the due pending events of the topics, oldest first, not under
/// another's lease. PostgreSQL locks the rows it picks and skips those a
/// concurrent claim has locked; the lease keeps them from later claims.
const CLAIM_POSTGRES: &str = "update outbox_events set lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
    where id in (select id from outbox_events where state = 'pending' and next_attempt_at <= $3 \
      and (lease_until is null or lease_until <= $3) and substr(topic, 1, length($4)) = $4 \
      order by id limit $5 for update skip locked) \
    returning id, topic, payload, created_at, attempts";
/// SQLite: the same through the one writer, which no claim can overtake.
const CLAIM_SQLITE: &str = "update outbox_events set lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
    where id in (select id from outbox_events where state = 'pending' and next_attempt_at <= $3 \
      and (lease_until is null or lease_until <= $3) and substr(topic, 1, length($4)) = $4 \
      order by id limit $5) \
    returning id, topic, payload, created_at, attempts";
/// Only while the claim is still ours: a lease that ran out may have
/// passed the event to another consumer, whose outcome then counts.
const MARK_DONE: &str = "update outbox_events set state = 'done', finished_at = $1, lease_until = null, \
    lease_owner = null, last_error = null where id = $2 and lease_owner = $3 and state = 'pending'";
const MARK_FAILED: &str = "update outbox_events set state = $1, next_attempt_at = $2, finished_at = $3, \
    lease_until = null, lease_owner = null, last_error = $4 where id = $5 and lease_owner = $6 and state = 'pending'";

/// How long after its creation an event may still be committed (its
/// transaction still running): a subscriber's cursor does not pass events
/// younger than this, so a slow transaction's event, committed after a
/// later one's, is still seen.
const SETTLING: Duration = Duration::from_secs(60);
/// Delivery rows made per claim at most.
const ENROLL_BATCH: i64 = 500;

/// Whether a subscriber has an event it has not seen, or a due delivery.
const OWN_DUE: &str = "select e.id from outbox_events e where e.id > coalesce((select cursor_id from outbox_subscribers \
      where name = $1), 0) and substr(e.topic, 1, length($3)) = $3 \
      and not exists (select 1 from outbox_deliveries d where d.subscriber = $1 and d.event_id = e.id) \
    union all select event_id from outbox_deliveries where subscriber = $1 and state = 'pending' and next_attempt_at <= $2 \
      and (lease_until is null or lease_until <= $2) \
    limit 1";
const OWN_SUBSCRIBE: &str =
    "insert into outbox_subscribers (name, cursor_id, created_at) values ($1, 0, $2) on conflict (name) do nothing";
/// A delivery row for each event past the cursor that has none.
macro_rules! own_enroll {
    () => {
        "insert into outbox_deliveries (subscriber, event_id, next_attempt_at) \
        select $1, e.id, e.created_at from outbox_events e \
        where e.id > (select cursor_id from outbox_subscribers where name = $1) \
          and substr(e.topic, 1, length($2)) = $2 \
          and not exists (select 1 from outbox_deliveries d where d.subscriber = $1 and d.event_id = e.id) \
        order by e.id limit $3"
    };
}
const OWN_ENROLL_SQLITE: &str = own_enroll!();
/// Concurrent claims on several nodes may make the same row: one wins.
const OWN_ENROLL_POSTGRES: &str = concat!(own_enroll!(), " on conflict do nothing");
/// The cursor moves up to the first event that is still settling or, of
/// the subscriber's topics, has no delivery row yet; to the newest event
/// if there is none such.
macro_rules! own_advance {
    ($greatest:literal) => {
        concat!(
            "update outbox_subscribers set cursor_id = ",
            $greatest,
            "(outbox_subscribers.cursor_id, coalesce(\
            (select min(e.id) - 1 from outbox_events e where e.id > outbox_subscribers.cursor_id \
              and (e.created_at > $3 or (substr(e.topic, 1, length($2)) = $2 and not exists \
                (select 1 from outbox_deliveries d where d.subscriber = $1 and d.event_id = e.id)))), \
            (select max(id) from outbox_events), outbox_subscribers.cursor_id)) where name = $1"
        )
    };
}
const OWN_ADVANCE_SQLITE: &str = own_advance!("max");
const OWN_ADVANCE_POSTGRES: &str = own_advance!("greatest");
macro_rules! own_pick {
    () => {
        "select event_id from outbox_deliveries where subscriber = $4 and state = 'pending' \
        and next_attempt_at <= $3 and (lease_until is null or lease_until <= $3) order by event_id limit $5"
    };
}
const OWN_CLAIM_SQLITE: &str = concat!(
    "update outbox_deliveries set lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
    where subscriber = $4 and event_id in (",
    own_pick!(),
    ") returning event_id, attempts"
);
const OWN_CLAIM_POSTGRES: &str = concat!(
    "update outbox_deliveries d set lease_owner = $1, lease_until = $2, attempts = d.attempts + 1 \
    from outbox_events e where e.id = d.event_id and d.subscriber = $4 and d.event_id in (",
    own_pick!(),
    " for update skip locked) returning e.id, e.topic, e.payload, e.created_at, d.attempts"
);
const OWN_DONE: &str = "update outbox_deliveries set state = 'done', finished_at = $1, lease_until = null, \
    lease_owner = null, last_error = null where event_id = $2 and lease_owner = $3 and subscriber = $4 \
    and state = 'pending'";
const OWN_FAILED: &str = "update outbox_deliveries set state = $1, next_attempt_at = $2, finished_at = $3, \
    lease_until = null, lease_owner = null, last_error = $4 where event_id = $5 and lease_owner = $6 \
    and subscriber = $7 and state = 'pending'";

/// Delivers the events of some topics to a handler; a job.
pub struct Consumer<H> {
    db: Db,
    name: &'static str,
    /// This consumer's name on its leases, unique per process and consumer.
    owner: String,
    handler: H,
    settings: Settings,
}

impl<H: Handler> Consumer<H> {
    pub fn new(db: Db, name: &'static str, handler: H, settings: Settings) -> Consumer<H> {
        let owner = format!("{name}:{:016x}", rand::random::<u64>());
        Consumer { db, name, owner, handler, settings }
    }

    /// Claims up to a batch of due events.
    pub async fn claim(&self) -> Result<Vec<Event>> {
        if let Some(subscriber) = self.settings.subscriber {
            return self.claim_own(subscriber).await;
        }
        let now = now_ms();
        // Most polls find nothing: a read says so without a write (on
        // SQLite, without a turn of the one writer).
        let due: Option<i64> = sqlx::query_scalar(DUE)
            .bind(now)
            .bind(self.settings.topic_prefix.clone())
            .fetch_optional(&self.db.pool)
            .await?;
        if due.is_none() {
            return Ok(vec![]);
        }
        let args = vec![
            V::S(Some(self.owner.clone())),
            V::I(Some(now.saturating_add(self.settings.lease.as_millis() as i64))),
            V::I(Some(now)),
            V::S(Some(self.settings.topic_prefix.clone())),
            V::I(Some(self.settings.batch)),
        ];
        let mut events = match self.db.backend {
            Backend::Sqlite => {
                self.db
                    .write(move |conn| {
                        let mut stmt = conn.prepare_cached(CLAIM_SQLITE)?;
                        bind_sqlite(&mut stmt, &args)?;
                        let mut rows = stmt.raw_query();
                        let mut out = vec![];
                        while let Some(row) = rows.next()? {
                            out.push(event_from(row)?);
                        }
                        Ok(out)
                    })
                    .await?
            }
            Backend::Postgres => bind_args(sqlx::query(CLAIM_POSTGRES), args)
                .fetch_all(&self.db.pool)
                .await?
                .iter()
                .map(event_from)
                .collect::<Result<Vec<_>>>()?,
        };
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    async fn done(&self, event: &Event) -> Result<()> {
        let mut args = vec![V::I(Some(now_ms())), V::I(Some(event.id)), V::S(Some(self.owner.clone()))];
        match self.settings.subscriber {
            None => exec(&self.db, MARK_DONE, args).await?,
            Some(s) => {
                args.push(V::S(Some(s.into())));
                exec(&self.db, OWN_DONE, args).await?
            }
        };
        Ok(())
    }

    /// Claims for a subscriber with its own deliveries: makes the delivery
    /// rows of the events it has not seen yet, then claims the due ones.
    async fn claim_own(&self, subscriber: &'static str) -> Result<Vec<Event>> {
        let now = now_ms();
        let prefix = self.settings.topic_prefix.clone();
        let due: Option<i64> = sqlx::query_scalar(OWN_DUE)
            .bind(subscriber)
            .bind(now)
            .bind(prefix.clone())
            .fetch_optional(&self.db.pool)
            .await?;
        if due.is_none() {
            return Ok(vec![]);
        }
        let lease_until = now.saturating_add(self.settings.lease.as_millis() as i64);
        let settled = now.saturating_sub(SETTLING.as_millis() as i64);
        let name = || V::S(Some(subscriber.into()));
        let subscribe = vec![name(), V::I(Some(now))];
        let enroll = vec![name(), V::S(Some(prefix.clone())), V::I(Some(ENROLL_BATCH))];
        let advance = vec![name(), V::S(Some(prefix)), V::I(Some(settled))];
        let claim = vec![
            V::S(Some(self.owner.clone())),
            V::I(Some(lease_until)),
            V::I(Some(now)),
            V::S(Some(subscriber.into())),
            V::I(Some(self.settings.batch)),
        ];
        let mut events = match self.db.backend {
            Backend::Sqlite => {
                self.db
                    .write(move |conn| {
                        exec_sqlite(conn, OWN_SUBSCRIBE, &subscribe)?;
                        exec_sqlite(conn, OWN_ENROLL_SQLITE, &enroll)?;
                        exec_sqlite(conn, OWN_ADVANCE_SQLITE, &advance)?;
                        let mut stmt = conn.prepare_cached(OWN_CLAIM_SQLITE)?;
                        bind_sqlite(&mut stmt, &claim)?;
                        let mut rows = stmt.raw_query();
                        let mut claimed: Vec<(i64, i64)> = vec![];
                        while let Some(row) = rows.next()? {
                            claimed.push((row.get(0)?, row.get(1)?));
                        }
                        drop(rows);
                        let mut out = vec![];
                        let mut stmt =
                            conn.prepare_cached(&format!("select {EVENT_COLS} from outbox_events where id = $1"))?;
                        for (id, attempts) in claimed {
                            bind_sqlite(&mut stmt, &[V::I(Some(id))])?;
                            let mut rows = stmt.raw_query();
                            if let Some(row) = rows.next()? {
                                let mut e = event_from(row)?;
                                e.attempts = attempts;
                                out.push(e);
                            }
                        }
                        Ok(out)
                    })
                    .await?
            }
            Backend::Postgres => {
                let mut tx = self.db.pool.begin().await?;
                for (sql, args) in
                    [(OWN_SUBSCRIBE, subscribe), (OWN_ENROLL_POSTGRES, enroll), (OWN_ADVANCE_POSTGRES, advance)]
                {
                    bind_args(sqlx::query(sql), args).execute(&mut *tx).await?;
                }
                let rows = bind_args(sqlx::query(OWN_CLAIM_POSTGRES), claim).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.iter().map(event_from).collect::<Result<Vec<_>>>()?
            }
        };
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    /// Due again after the backoff of its attempts so far, or dead.
    async fn failed(&self, event: &Event, error: &Error) -> Result<()> {
        let now = now_ms();
        let dead = event.attempts >= self.settings.max_attempts;
        let pause = self.settings.retry.after(event.attempts.clamp(1, 64) as u32);
        // The handler's words, cut short: they are shown to administrators.
        let message: String = error.to_string().chars().take(500).collect();
        tracing::warn!(consumer = self.name, event = event.id, topic = %event.topic, attempts = event.attempts,
            dead, error = %message, "outbox delivery failed");
        let args = vec![
            V::S(Some(if dead { "dead" } else { "pending" }.into())),
            V::I(Some(now.saturating_add(pause.as_millis() as i64))),
            V::I(dead.then_some(now)),
            V::S(Some(message)),
            V::I(Some(event.id)),
            V::S(Some(self.owner.clone())),
        ];
        match self.settings.subscriber {
            None => exec(&self.db, MARK_FAILED, args).await?,
            Some(s) => {
                let mut args = args;
                args.push(V::S(Some(s.into())));
                exec(&self.db, OWN_FAILED, args).await?
            }
        };
        Ok(())
    }
}

impl<H: Handler> Job for Consumer<H> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn every(&self) -> Duration {
        self.settings.every
    }

    /// Claims a batch and handles each of its events in order.
    async fn run_once(&self) -> Result<Outcome> {
        let events = self.claim().await?;
        if events.is_empty() {
            return Ok(Outcome::Idle);
        }
        for event in &events {
            match self.handler.handle(event).await {
                Ok(()) => self.done(event).await?,
                Err(e) => self.failed(event, &e).await?,
            }
        }
        Ok(Outcome::Worked)
    }
}

/// One write outside any other: on SQLite through the writer.
async fn exec(db: &Db, sql: &'static str, args: Vec<V>) -> Result<u64> {
    match db.backend {
        Backend::Sqlite => db.write(move |conn| Ok(exec_sqlite(conn, sql, &args)? as u64)).await,
        Backend::Postgres => Ok(bind_args(sqlx::query(sql), args).execute(&db.pool).await?.rows_affected()),
    }
}

/// Deletes delivered events some time after their delivery (dead ones
/// stay until an administrator has seen to them); a job.
pub struct Prune {
    pub db: Db,
    /// How long a delivered event is kept.
    pub keep: Duration,
    pub every: Duration,
}

/// Rows deleted per step, so that one step stays a short write.
const PRUNE_BATCH: i64 = 1000;

impl Job for Prune {
    fn name(&self) -> &'static str {
        "outbox-prune"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn run_once(&self) -> Result<Outcome> {
        let before = now_ms().saturating_sub(self.keep.as_millis() as i64);
        // A subscriber's delivered rows go the same way; an event goes only
        // once no subscriber's delivery of it waits or is dead.
        let sql = "delete from outbox_deliveries where (subscriber, event_id) in (select subscriber, event_id \
            from outbox_deliveries where state = 'done' and finished_at < $1 order by event_id limit $2)";
        let delivered = exec(&self.db, sql, vec![V::I(Some(before)), V::I(Some(PRUNE_BATCH))]).await?;
        let sql = "delete from outbox_events where id in (select id from outbox_events e \
            where state = 'done' and finished_at < $1 \
              and not exists (select 1 from outbox_deliveries d where d.event_id = e.id) \
              and not exists (select 1 from outbox_subscribers s where s.cursor_id < e.id) \
            order by id limit $2)";
        let deleted = exec(&self.db, sql, vec![V::I(Some(before)), V::I(Some(PRUNE_BATCH))]).await?.max(delivered);
        Ok(if deleted as i64 >= PRUNE_BATCH { Outcome::Worked } else { Outcome::Idle })
    }
}

/// An event given up on, for administrators.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    pub id: i64,
    /// The subscriber that gave up on it (e.g. `notify`); none for the webhook.
    pub subscriber: Option<String>,
    pub topic: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Epoch milliseconds, UTC.
    pub created_at: i64,
    pub attempts: i64,
    /// When it was given up on.
    pub finished_at: Option<i64>,
    /// What the last attempt failed with.
    pub last_error: Option<String>,
}

/// Dead events, the most recently given up on first: the webhook's and
/// every subscriber's.
pub async fn dead_letters(db: &Db, limit: i64) -> Result<Vec<DeadLetter>> {
    let rows = sqlx::query(
        "select * from (\
           select id, null as subscriber, topic, payload, created_at, attempts, finished_at, last_error \
           from outbox_events where state = 'dead' \
           union all select e.id, d.subscriber, e.topic, e.payload, e.created_at, d.attempts, d.finished_at, \
             d.last_error from outbox_deliveries d join outbox_events e on e.id = d.event_id where d.state = 'dead'\
         ) dead order by finished_at desc, id desc limit $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let e = event_from(r)?;
            Ok(DeadLetter {
                id: e.id,
                subscriber: r.col("subscriber")?,
                topic: e.topic,
                payload: e.payload,
                created_at: e.created_at,
                attempts: e.attempts,
                finished_at: r.col("finished_at")?,
                last_error: r.col("last_error")?,
            })
        })
        .collect()
}

/// Where an event stands for the webhook (`subscriber` none) or a
/// subscriber: `pending`, `done` or `dead`; none if there is no such event
/// or delivery.
pub async fn state_of(db: &Db, id: i64, subscriber: Option<&str>) -> Result<Option<String>> {
    Ok(match subscriber {
        None => {
            sqlx::query_scalar("select state from outbox_events where id = $1")
                .bind(id)
                .fetch_optional(&db.pool)
                .await?
        }
        Some(s) => {
            sqlx::query_scalar("select state from outbox_deliveries where event_id = $1 and subscriber = $2")
                .bind(id)
                .bind(s.to_string())
                .fetch_optional(&db.pool)
                .await?
        }
    })
}

/// Makes a dead event due again with a fresh count of attempts (its last
/// error stays until it is delivered); answers whether it was dead.
const RETRY: &str = "update outbox_events set state = 'pending', attempts = 0, next_attempt_at = $1, \
    finished_at = null, lease_until = null, lease_owner = null where id = $2 and state = 'dead'";

/// The same for a subscriber's delivery of an event.
const RETRY_OWN: &str = "update outbox_deliveries set state = 'pending', attempts = 0, next_attempt_at = $1, \
    finished_at = null, lease_until = null, lease_owner = null where event_id = $2 and subscriber = $3 and state = 'dead'";

fn retry_args(id: i64, now: i64, subscriber: Option<&str>) -> (&'static str, Vec<V>) {
    match subscriber {
        None => (RETRY, vec![V::I(Some(now)), V::I(Some(id))]),
        Some(s) => (RETRY_OWN, vec![V::I(Some(now)), V::I(Some(id)), V::S(Some(s.to_string()))]),
    }
}

/// `RETRY` in the caller's transaction.
pub async fn retry_in(conn: &mut sqlx::AnyConnection, id: i64, subscriber: Option<&str>, now: i64) -> Result<bool> {
    let (sql, args) = retry_args(id, now, subscriber);
    Ok(bind_args(sqlx::query(sql), args).execute(conn).await?.rows_affected() > 0)
}

/// `RETRY` on the SQLite writer's connection, inside the caller's write.
pub fn retry_sqlite(conn: &rusqlite::Connection, id: i64, subscriber: Option<&str>, now: i64) -> Result<bool> {
    let (sql, args) = retry_args(id, now, subscriber);
    Ok(exec_sqlite(conn, sql, &args)? > 0)
}

/// Posts each event as JSON to a URL (`FENGQIAO_WEBHOOK_URL`), which must
/// answer 2xx. The event's id goes along as `Idempotency-Key`, so the
/// receiver can tell a repeated delivery.
pub struct Webhook {
    url: String,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(url: &str) -> Webhook {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client with a timeout builds");
        Webhook { url: url.to_string(), client }
    }
}

impl Handler for Webhook {
    async fn handle(&self, event: &Event) -> Result<()> {
        let answer = self
            .client
            .post(&self.url)
            .header("Idempotency-Key", event.id.to_string())
            .json(event)
            .send()
            .await
            // Without the URL, which may carry a secret.
            .map_err(|e| anyhow::anyhow!("webhook not reached: {}", e.without_url()))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("webhook answered {}", answer.status()).into())
        }
    }
}
