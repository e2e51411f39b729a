//! From an HTTP upload to a stored attachment: read the multipart body
//! within limits, decide the type from the content, make the public copy
//! and thumbnail, then write the files durably and record the row. All
//! checks come before the first byte is written, so a refused upload
//! leaves nothing behind.

use axum::{
    extract::{FromRequest, Multipart, Request},
    http::{header, HeaderMap, StatusCode},
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::attachments::{
    content::{self, Derived, FileType, Kind},
    files::{FileStore, Variant},
    store::{self, Attachment, NewRow},
    Limits,
};
use crate::{
    kernel::{
        error::{Error, Result, ResultExt},
        principal::CurrentUser,
    },
    orders::store::OrderView,
    web::AppState,
};

/// A file as it came in.
pub struct Incoming {
    pub name: String,
    pub bytes: Vec<u8>,
    /// The form field it came in (e.g. photos before and after the work).
    pub field: String,
}

/// A multipart form: its files and its text fields.
#[derive(Default)]
pub struct Parts {
    pub files: Vec<Incoming>,
    pub fields: Vec<(String, String)>,
}

/// The most a text field of an upload form may hold.
const FIELD_BYTES: usize = 64 * 1024;

fn too_large(limit: u64) -> Error {
    Error::TooLarge { code: "attachment.too_large".into(), detail: Some(mb(limit)) }
}

fn mb(bytes: u64) -> String {
    format!("{} MB", bytes.div_ceil(1 << 20))
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: u64) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        Error::invalid("attachment.bad_form", "file")
    }
}

/// Refuses a request whose declared length is over the limit before
/// reading any of it.
pub fn check_length(headers: &HeaderMap, limits: &Limits) -> Result<()> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limits.request_bytes() => Err(too_large(limits.file_bytes())),
        _ => Ok(()),
    }
}

/// Reads a multipart body, stopping as soon as a file, a field or the
/// whole request passes its limit. Empty file inputs are skipped.
pub async fn read_multipart(mut mp: Multipart, limits: &Limits) -> Result<Parts> {
    let mut parts = Parts::default();
    let mut total: u64 = 0;
    let file_limit = limits.file_bytes();
    while let Some(mut field) = mp.next_field().await.map_err(|e| multipart_error(e, file_limit))? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let cap = if file_name.is_some() { file_limit } else { FIELD_BYTES as u64 };
        let mut buf = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, file_limit))? {
            total += chunk.len() as u64;
            if (buf.len() + chunk.len()) as u64 > cap || total > limits.request_bytes() {
                return Err(if file_name.is_some() {
                    too_large(file_limit)
                } else {
                    Error::invalid("text.too_long", &name)
                });
            }
            buf.extend_from_slice(&chunk);
        }
        match file_name {
            Some(_) if buf.is_empty() => {}
            Some(file_name) => {
                if parts.files.len() >= limits.per_request {
                    return Err(Error::invalid("attachment.too_many_files", "file"));
                }
                parts.files.push(Incoming { name: file_name, bytes: buf, field: name });
            }
            None => {
                let text = String::from_utf8(buf).map_err(|_| Error::invalid("attachment.bad_form", &name))?;
                parts.fields.push((name, text));
            }
        }
    }
    Ok(parts)
}

/// A page form that may carry files: `multipart/form-data` (with files) or
/// `application/x-www-form-urlencoded` (without), decoded into `T` the same
/// way either way.
pub struct FormWithFiles<T> {
    pub form: T,
    pub files: Vec<Incoming>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for FormWithFiles<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        let limits = &state.config.attachments;
        check_length(req.headers(), limits)?;
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        let bad_form = || Error::invalid("order.form_incomplete", "form");
        if multipart {
            let mp = Multipart::from_request(req, state).await.map_err(|_| bad_form())?;
            let parts = read_multipart(mp, limits).await?;
            let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&parts.fields).finish();
            let form = serde_html_form::from_str(&encoded).map_err(|_| bad_form())?;
            Ok(FormWithFiles { form, files: parts.files })
        } else {
            let bytes = axum::body::to_bytes(req.into_body(), FIELD_BYTES * 4)
                .await
                .map_err(|_| Error::invalid("text.too_long", "form"))?;
            let form = serde_html_form::from_bytes(&bytes).map_err(|_| bad_form())?;
            Ok(FormWithFiles { form, files: vec![] })
        }
    }
}

/// A checked file, ready to store.
pub struct Prepared {
    file_type: FileType,
    name: String,
    bytes: Vec<u8>,
    sha256: String,
    derived: Option<Derived>,
}

/// Checks one file: its type by content, its size for that type, and for
/// a photo, that it decodes; makes the copies. CPU-bound.
fn prepare(file: Incoming, limits: &Limits, images_only: bool) -> Result<Prepared> {
    let file_type = content::sniff(&file.bytes).filter(|t| !images_only || t.kind == Kind::Image).ok_or_else(|| {
        Error::UnsupportedMedia {
            code: if images_only { "attachment.photo_only" } else { "attachment.type_unsupported" }.into(),
        }
    })?;
    let limit = match file_type.kind {
        Kind::Image => limits.image_bytes,
        Kind::Document => limits.document_bytes,
    };
    if file.bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    let derived = match file_type.kind {
        Kind::Image => Some(content::derive(&file.bytes, file_type).field("file")?),
        Kind::Document => None,
    };
    Ok(Prepared {
        name: content::clean_name(&file.name, file_type),
        sha256: hex::encode(Sha256::digest(&file.bytes)),
        file_type,
        bytes: file.bytes,
        derived,
    })
}

/// Uploads whose files are being checked and decoded at once, at most.
/// Decoding is CPU-bound, so more at a time would not be faster; and a photo
/// may take up to `content::MAX_DECODE_BYTES` while it is decoded, so without
/// a bound a burst of large photos could take all the memory there is.
static CHECKING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8))
});

/// Checks every file (off the async threads) before any is stored; waits
/// its turn behind other uploads being checked.
pub async fn prepare_all(files: Vec<Incoming>, limits: &Limits, images_only: bool) -> Result<Vec<Prepared>> {
    let limits = limits.clone();
    let _turn = CHECKING.acquire().await.map_err(anyhow::Error::from)?;
    tokio::task::spawn_blocking(move || files.into_iter().map(|f| prepare(f, &limits, images_only)).collect())
        .await
        .map_err(anyhow::Error::from)?
}

/// Who is uploading.
#[derive(Clone, Copy)]
pub enum Uploader<'a> {
    Staff(&'a CurrentUser),
    /// The reporter, through the tracking code: photos only, and public.
    Resident,
}

/// Writes the files durably, then records the rows. If a row cannot be
/// recorded (the order is full), what this call stored is removed again.
/// `on_report` puts the files on the report step (a resident's always are).
pub async fn save(
    s: &AppState,
    order: &OrderView,
    uploader: Uploader<'_>,
    on_report: bool,
    prepared: Vec<Prepared>,
) -> Result<Vec<Attachment>> {
    let limits = &s.config.attachments;
    let (total, by_residents) = store::counts(&s.db, order.id).await?;
    if total + prepared.len() as i64 > limits.per_order {
        return Err(Error::invalid("attachment.too_many", "file"));
    }
    if matches!(uploader, Uploader::Resident) && by_residents + prepared.len() as i64 > limits.per_resident {
        return Err(Error::invalid("attachment.too_many", "file"));
    }
    // A resident's photos belong to their report.
    let event_id = match uploader {
        Uploader::Resident => Some(store::report_event(&s.db, order.id).await?),
        Uploader::Staff(_) if on_report => Some(store::report_event(&s.db, order.id).await?),
        Uploader::Staff(_) => None,
    };
    let files = FileStore::new(&s.config.data_dir);
    let mut saved: Vec<Attachment> = vec![];
    for p in prepared {
        let r = save_one(s, &files, order, uploader, event_id, p).await;
        match r {
            Ok(a) => saved.push(a),
            Err(e) => {
                discard(s, &saved.iter().map(|a| a.id).collect::<Vec<_>>()).await;
                return Err(e);
            }
        }
    }
    Ok(saved)
}

async fn save_one(
    s: &AppState,
    files: &FileStore,
    order: &OrderView,
    uploader: Uploader<'_>,
    event_id: Option<i64>,
    p: Prepared,
) -> Result<Attachment> {
    let Prepared { file_type, name, bytes, sha256, derived } = p;
    let size = bytes.len() as i64;
    let created = {
        let (files, sha) = (files.clone(), sha256.clone());
        let copies = derived.as_ref().map(|d| (d.public.clone(), d.thumb.clone()));
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Variant>> {
            let mut created = vec![];
            if files.write(&sha, Variant::Original, &bytes)? {
                created.push(Variant::Original);
            }
            if let Some((public, thumb)) = copies {
                if files.write(&sha, Variant::Public, &public)? {
                    created.push(Variant::Public);
                }
                if files.write(&sha, Variant::Thumb, &thumb)? {
                    created.push(Variant::Thumb);
                }
            }
            Ok(created)
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| anyhow::anyhow!("storing an attachment: {e}"))?
    };
    let (uploaded_by, uploader_name) = match uploader {
        Uploader::Staff(u) => (Some(u.id), u.display_name.clone()),
        Uploader::Resident => (None, crate::kernel::i18n::t("order.role.reporter").to_string()),
    };
    let row = NewRow {
        order_id: order.id,
        event_id,
        kind: file_type.kind.as_str(),
        mime: file_type.mime,
        size,
        sha256: &sha256,
        name: &name,
        uploaded_by,
        uploader_name: &uploader_name,
        public: matches!(uploader, Uploader::Resident) && file_type.kind == Kind::Image,
        has_thumbnail: derived.is_some(),
        width: derived.as_ref().map(|d| d.width as i64),
        height: derived.as_ref().map(|d| d.height as i64),
    };
    match store::insert(&s.db, row, s.config.attachments.per_order).await {
        Ok(a) => Ok(a),
        Err(e) => {
            for v in created {
                files.remove(&sha256, v);
            }
            Err(e)
        }
    }
}

/// Removes attachments this request created (what they came with failed),
/// and the files no other row refers to.
pub async fn discard(s: &AppState, ids: &[i64]) {
    if ids.is_empty() {
        return;
    }
    match store::discard(&s.db, ids).await {
        Ok(orphans) => {
            let files = FileStore::new(&s.config.data_dir);
            for sha in orphans {
                for v in [Variant::Original, Variant::Public, Variant::Thumb] {
                    files.remove(&sha, v);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not discard attachments"),
    }
}
