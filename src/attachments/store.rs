//! Attachment rows: which order a file belongs to, which action carried it,
//! who uploaded it and whether the public may see its stripped copy.

use serde::Serialize;
use sqlx::{any::AnyRow, Row};
use utoipa::ToSchema;

use crate::{
    kernel::error::{Error, Result},
    platform::db::{now_ms, Db},
};

/// What staff see of an attachment.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Attachment {
    pub id: i64,
    pub order_id: i64,
    /// The timeline step (event `seq`) that carries it; none while it
    /// belongs to the order alone.
    pub event_seq: Option<i64>,
    /// `image` or `document`
    pub kind: String,
    /// The type found in the content.
    pub mime: String,
    pub size: i64,
    /// The uploaded name, cleaned; ends in the real type's extension.
    pub name: String,
    pub uploader_name: String,
    /// The resident portal shows its public copy.
    pub public: bool,
    pub has_thumbnail: bool,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub created_at: i64,
    /// The original (`?variant=public` or `thumb` for the copies).
    pub url: String,
    pub thumb_url: Option<String>,
    #[serde(skip)]
    pub sha256: String,
    #[serde(skip)]
    pub uploaded_by: Option<i64>,
}

impl Attachment {
    pub fn is_image(&self) -> bool {
        self.kind == "image"
    }

    /// `1.2 MB`, `340 KB`.
    pub fn size_label(&self) -> String {
        let s = self.size as f64;
        if s >= 1024.0 * 1024.0 {
            format!("{:.1} MB", s / 1024.0 / 1024.0)
        } else {
            format!("{} KB", (s / 1024.0).ceil() as i64)
        }
    }

    /// The public view, reached through the order's tracking code.
    pub fn public_view(&self, tracking_code: &str) -> PublicAttachment {
        let base = format!("/api/v1/portal/orders/{tracking_code}/attachments/{}", self.id);
        PublicAttachment {
            id: self.id,
            event_seq: self.event_seq,
            thumb_url: format!("{base}?variant=thumb"),
            url: base,
            width: self.width,
            height: self.height,
        }
    }
}

/// What the portal shows of a public photo: the stripped copy only.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PublicAttachment {
    pub id: i64,
    pub event_seq: Option<i64>,
    /// The re-encoded copy without EXIF, XMP or GPS.
    pub url: String,
    pub thumb_url: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
}

const COLS: &str = "a.id, a.order_id, e.seq as event_seq, a.kind, a.mime, a.size, a.sha256, a.name, a.uploaded_by, \
    a.uploader_name, a.public, a.has_thumbnail, a.width, a.height, a.created_at";
const FROM: &str = "attachments a left join order_events e on e.id = a.event_id";

fn from_row(r: &AnyRow) -> Result<Attachment> {
    let id: i64 = r.try_get("id")?;
    let has_thumbnail = r.try_get::<i64, _>("has_thumbnail")? != 0;
    Ok(Attachment {
        id,
        order_id: r.try_get("order_id")?,
        event_seq: r.try_get("event_seq")?,
        kind: r.try_get("kind")?,
        mime: r.try_get("mime")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        name: r.try_get("name")?,
        uploaded_by: r.try_get("uploaded_by")?,
        uploader_name: r.try_get("uploader_name")?,
        public: r.try_get::<i64, _>("public")? != 0,
        has_thumbnail,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        created_at: r.try_get("created_at")?,
        url: format!("/api/v1/attachments/{id}"),
        thumb_url: has_thumbnail.then(|| format!("/api/v1/attachments/{id}?variant=thumb")),
    })
}

/// An order's attachments, oldest first.
pub async fn list(db: &Db, order_id: i64) -> Result<Vec<Attachment>> {
    let rows = sqlx::query(&format!("select {COLS} from {FROM} where a.order_id = $1 order by a.id"))
        .bind(order_id)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(db: &Db, id: i64) -> Result<Attachment> {
    let row = sqlx::query(&format!("select {COLS} from {FROM} where a.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(Error::NotFound)?;
    from_row(&row)
}

pub struct NewRow<'a> {
    pub order_id: i64,
    /// The step that carries it from the start (a resident's report).
    pub event_id: Option<i64>,
    pub kind: &'static str,
    pub mime: &'static str,
    pub size: i64,
    pub sha256: &'a str,
    pub name: &'a str,
    /// None: the resident.
    pub uploaded_by: Option<i64>,
    pub uploader_name: &'a str,
    pub public: bool,
    pub has_thumbnail: bool,
    pub width: Option<i64>,
    pub height: Option<i64>,
}

/// How many attachments an order has, and how many of them residents added.
pub async fn counts(db: &Db, order_id: i64) -> Result<(i64, i64)> {
    let r = sqlx::query(
        "select count(*), coalesce(sum(case when uploaded_by is null then 1 else 0 end), 0) \
         from attachments where order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&db.pool)
    .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// Records an attachment, unless the order already holds `max` of them
/// (checked in the same statement, so a burst of uploads cannot overshoot
/// on SQLite; on PostgreSQL two racing uploads may each take the last place).
pub async fn insert(db: &Db, row: NewRow<'_>, max: i64) -> Result<Attachment> {
    let _writer = db.write_lock().await;
    let id: Option<i64> = sqlx::query(
        "insert into attachments (order_id, kind, mime, size, sha256, name, uploaded_by, uploader_name, public, \
         has_thumbnail, width, height, created_at, event_id) \
         select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15 \
         where (select count(*) from attachments where order_id = $1) < $14 returning id",
    )
    .bind(row.order_id)
    .bind(row.kind)
    .bind(row.mime)
    .bind(row.size)
    .bind(row.sha256)
    .bind(row.name)
    .bind(row.uploaded_by)
    .bind(row.uploader_name)
    .bind(row.public as i64)
    .bind(row.has_thumbnail as i64)
    .bind(row.width)
    .bind(row.height)
    .bind(now_ms())
    .bind(max)
    .bind(row.event_id)
    .fetch_optional(&db.pool)
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    drop(_writer);
    let id = id.ok_or_else(|| Error::invalid("attachment.too_many", "file"))?;
    get(db, id).await
}

/// The report step (the first event) of an order.
pub async fn report_event(db: &Db, order_id: i64) -> Result<i64> {
    Ok(sqlx::query("select id from order_events where order_id = $1 and seq = 1")
        .bind(order_id)
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?)
}

/// Checks that the ids name distinct attachments of this order that no
/// action carries yet.
pub async fn check_unlinked(db: &Db, order_id: i64, ids: &[i64]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(Error::invalid("attachment.not_linkable", "attachments"));
        }
        let ok = sqlx::query("select 1 from attachments where id = $1 and order_id = $2 and event_id is null")
            .bind(id)
            .bind(order_id)
            .fetch_optional(&db.pool)
            .await?
            .is_some();
        if !ok {
            return Err(Error::invalid("attachment.not_linkable", "attachments"));
        }
    }
    Ok(())
}

/// Ties the attachments to the event that carries them, in the action's
/// transaction; photos become public when the action's results are (反馈).
pub async fn link(tx: &mut sqlx::AnyConnection, order_id: i64, event_id: i64, ids: &[i64], public: bool) -> Result<()> {
    for id in ids {
        let done =
            sqlx::query(LINK).bind(event_id).bind(public as i64).bind(id).bind(order_id).execute(&mut *tx).await?;
        if done.rows_affected() != 1 {
            return Err(Error::invalid("attachment.not_linkable", "attachments"));
        }
    }
    Ok(())
}

/// `link` on the SQLite group-commit writer's connection.
pub fn link_sqlite(conn: &rusqlite::Connection, order_id: i64, event_id: i64, ids: &[i64], public: bool) -> Result<()> {
    let mut stmt = conn.prepare_cached(LINK)?;
    for id in ids {
        if stmt.execute([event_id, public as i64, *id, order_id])? != 1 {
            return Err(Error::invalid("attachment.not_linkable", "attachments"));
        }
    }
    Ok(())
}

const LINK: &str = "update attachments set event_id = $1, \
    public = case when $2 = 1 and kind = 'image' then 1 else public end \
    where id = $3 and order_id = $4 and event_id is null";

/// Deletes attachments that the same request just created, when what they
/// came with failed (the rest of a batch, or the action they were for).
/// Returns the hashes no row refers to any more, whose files may go.
pub async fn discard(db: &Db, ids: &[i64]) -> Result<Vec<String>> {
    let mut orphans = vec![];
    let _writer = db.write_lock().await;
    for id in ids {
        let sha: Option<String> = sqlx::query("delete from attachments where id = $1 returning sha256")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(sha) = sha {
            let left: i64 = sqlx::query("select count(*) from attachments where sha256 = $1")
                .bind(&sha)
                .fetch_one(&db.pool)
                .await?
                .try_get(0)?;
            if left == 0 {
                orphans.push(sha);
            }
        }
    }
    Ok(orphans)
}
