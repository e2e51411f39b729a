//! The notifications' SQL: resolving audiences to people, and each
//! person's inbox. Audiences are read from who holds which unit and role
//! (no hand-kept lists of recipients).

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::{
    kernel::error::{Error, Result},
    platform::{
        db::{bind_args, exec_sqlite, Backend, Db, V},
        notices::{Audience, Subject},
    },
};

/// The active users of a unit: its own staff, and for a centre or grid
/// those who hold a post there that handles orders (a 总网格长 who is also
/// the 网格员 of a grid without one of its own).
const UNIT_USERS: &str = "select id from users where unit_id = $1 and disabled = 0 \
    union select ur.user_id from user_roles ur join units un on un.node_id = ur.node_id and un.kind in ('centre', 'grid') \
      join role_permissions rp on rp.role_code = ur.role_code and rp.permission = 'orders.handle' \
      join users u on u.id = ur.user_id and u.disabled = 0 \
    where un.id = $1";

/// The users of the nearest active centre at the unit's node or above,
/// other than the unit itself.
const SUPERVISOR_USERS: &str = "select users.id from users where disabled = 0 and unit_id = (\
    select s.id from units u join nodes n on n.id = u.node_id \
      join units s on s.kind = 'centre' and s.status = 'active' and s.id <> u.id \
      join nodes sn on sn.id = s.node_id and substr(n.path, 1, length(sn.path)) = sn.path \
    where u.id = $1 order by sn.depth desc, s.id limit 1) order by users.id";

/// The assigner's colleagues in their unit who hold the permission
/// through a role, and the assigner.
const APPROVERS: &str = "select distinct u.id from users u \
    join user_roles ur on ur.user_id = u.id join role_permissions rp on rp.role_code = ur.role_code \
    where u.disabled = 0 and rp.permission = $2 \
      and u.unit_id = (select a.unit_id from users a where a.id = $1) \
    union select id from users where id = $1 and disabled = 0";

async fn ids(db: &Db, sql: &str, args: Vec<V>) -> Result<Vec<i64>> {
    let rows = bind_args(sqlx::query(sql), args).fetch_all(&db.pool).await?;
    let mut out: Vec<i64> = rows.iter().map(|r| r.try_get::<i64, _>(0)).collect::<std::result::Result<_, _>>()?;
    out.sort_unstable();
    Ok(out)
}

/// The people an audience names for a subject, by user id.
pub async fn resolve(db: &Db, audience: Audience, subject: &Subject) -> Result<Vec<i64>> {
    match audience {
        Audience::Unit => match subject.unit_id {
            Some(u) => ids(db, UNIT_USERS, vec![V::I(Some(u))]).await,
            None => Ok(vec![]),
        },
        Audience::Supervisor => match subject.unit_id {
            Some(u) => ids(db, SUPERVISOR_USERS, vec![V::I(Some(u))]).await,
            None => Ok(vec![]),
        },
        Audience::Assigner => match subject.assigner_id {
            Some(a) => ids(db, "select id from users where id = $1 and disabled = 0", vec![V::I(Some(a))]).await,
            None => Ok(vec![]),
        },
        Audience::Approvers(perm) => match subject.assigner_id {
            Some(a) => ids(db, APPROVERS, vec![V::I(Some(a)), V::S(Some(perm.into()))]).await,
            None => Ok(vec![]),
        },
    }
}

/// One notice to store for each of some people.
pub struct NewNotice {
    pub event_id: i64,
    pub topic: String,
    pub object_type: &'static str,
    pub object_id: i64,
    pub body: String,
    pub urgent: bool,
    pub at: i64,
}

const INSERT: &str =
    "insert into notifications (user_id, event_id, topic, object_type, object_id, body, urgent, created_at) \
    values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (user_id, event_id) do nothing";

/// Stores the notice for each recipient, in one write; a recipient who has
/// it already (the event delivered again) keeps theirs.
pub async fn insert(db: &Db, notice: NewNotice, recipients: Vec<i64>) -> Result<()> {
    let rows: Vec<Vec<V>> = recipients
        .into_iter()
        .map(|user| {
            vec![
                V::I(Some(user)),
                V::I(Some(notice.event_id)),
                V::S(Some(notice.topic.clone())),
                V::S(Some(notice.object_type.into())),
                V::I(Some(notice.object_id)),
                V::S(Some(notice.body.clone())),
                V::I(Some(notice.urgent as i64)),
                V::I(Some(notice.at)),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    match db.backend {
        Backend::Sqlite => {
            db.write(move |conn| {
                for r in &rows {
                    exec_sqlite(conn, INSERT, r)?;
                }
                Ok(())
            })
            .await
        }
        Backend::Postgres => {
            let mut tx = db.pool.begin().await?;
            for r in rows {
                bind_args(sqlx::query(INSERT), r).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }
    }
}

/// A notice in someone's inbox.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Notice {
    pub id: i64,
    /// The outbox topic it tells of, e.g. `orders.dispatch`.
    pub topic: String,
    /// What it links to: `order`.
    pub object_type: String,
    pub object_id: i64,
    /// The text, from the message catalogue.
    pub body: String,
    /// A red alert (overdue, 督办, 催办).
    pub urgent: bool,
    /// Epoch milliseconds, UTC.
    pub created_at: i64,
    /// When its recipient read it; none while unread.
    pub read_at: Option<i64>,
}

fn notice_from(r: &sqlx::any::AnyRow) -> Result<Notice> {
    Ok(Notice {
        id: r.try_get("id")?,
        topic: r.try_get("topic")?,
        object_type: r.try_get("object_type")?,
        object_id: r.try_get("object_id")?,
        body: r.try_get("body")?,
        urgent: r.try_get::<i64, _>("urgent")? != 0,
        created_at: r.try_get("created_at")?,
        read_at: r.try_get("read_at")?,
    })
}

const COLS: &str = "id, topic, object_type, object_id, body, urgent, created_at, read_at";

/// A user's notices, newest first: those older than `before` (an id), the
/// unread only if asked.
pub async fn list(db: &Db, user: i64, unread_only: bool, before: Option<i64>, limit: i64) -> Result<Vec<Notice>> {
    let rows = sqlx::query(&format!(
        "select {COLS} from notifications where user_id = $1 and ($2 = 0 or read_at is null) \
         and id < $3 order by id desc limit $4"
    ))
    .bind(user)
    .bind(unread_only as i64)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(notice_from).collect()
}

/// A user's notices newer than `after` (an id), oldest first: what a
/// reconnecting live stream missed.
pub async fn since(db: &Db, user: i64, after: i64, limit: i64) -> Result<Vec<Notice>> {
    let rows =
        sqlx::query(&format!("select {COLS} from notifications where user_id = $1 and id > $2 order by id limit $3"))
            .bind(user)
            .bind(after)
            .bind(limit)
            .fetch_all(&db.pool)
            .await?;
    rows.iter().map(notice_from).collect()
}

/// A user's unread count and their newest notice's id (0 for none).
pub async fn unread(db: &Db, user: i64) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "select (select count(*) from notifications where user_id = $1 and read_at is null) as unread, \
           coalesce((select max(id) from notifications where user_id = $1), 0) as newest",
    )
    .bind(user)
    .fetch_one(&db.pool)
    .await?;
    Ok((row.try_get("unread")?, row.try_get("newest")?))
}

async fn exec(db: &Db, sql: &'static str, args: Vec<V>) -> Result<u64> {
    match db.backend {
        Backend::Sqlite => db.write(move |conn| Ok(exec_sqlite(conn, sql, &args)? as u64)).await,
        Backend::Postgres => Ok(bind_args(sqlx::query(sql), args).execute(&db.pool).await?.rows_affected()),
    }
}

/// Marks one of the user's notices read (again is no change). Another's
/// notice, or none, is not found.
pub async fn mark_read(db: &Db, user: i64, id: i64, now: i64) -> Result<Notice> {
    exec(
        db,
        "update notifications set read_at = $1 where id = $2 and user_id = $3 and read_at is null",
        vec![V::I(Some(now)), V::I(Some(id)), V::I(Some(user))],
    )
    .await?;
    let row = sqlx::query(&format!("select {COLS} from notifications where id = $1 and user_id = $2"))
        .bind(id)
        .bind(user)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    notice_from(&row)
}

/// Marks all the user's notices read; answers how many were unread.
pub async fn mark_all_read(db: &Db, user: i64, now: i64) -> Result<u64> {
    exec(
        db,
        "update notifications set read_at = $1 where user_id = $2 and read_at is null",
        vec![V::I(Some(now)), V::I(Some(user))],
    )
    .await
}
