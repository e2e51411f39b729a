//! HTTP API of attachments under `/api/v1/`: staff upload to an order in
//! their scope and download originals or copies; the reporter adds photos
//! and sees the public copies through the tracking code.

use crate::web::extract::{Json, Path, Query};
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::upload::{self, Uploader};
use crate::attachments::{
    files::{FileStore, Variant},
    store::{self, Attachment, PublicAttachment},
};
use crate::{
    kernel::{
        error::{Error, ErrorBody, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    orders::{machine::State as OrderState, store as orders},
    web::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    // Uploads read their body themselves, within the configured limits
    // (see `upload::read_multipart`), instead of axum's 2 MB default.
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload, list))
        .routes(routes!(portal_upload))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new().merge(uploads).routes(routes!(download)).routes(routes!(portal_download))
}

/// A multipart upload: one or more `file` fields.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// JPEG, PNG or WebP photos; PDF, DOCX or XLSX documents. The type is
    /// decided by the content, not the name.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// Add photos or documents to an order in your scope. Attach them to a
/// step by passing their ids in the action's `attachments` (处置, 反馈, 核查).
#[utoipa::path(post, path = "/api/v1/orders/{id}/attachments", tag = "attachments", params(("id" = i64, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"), security(("bearer" = [])),
    responses((status = 201, body = Vec<Attachment>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    req: Request,
) -> Result<(StatusCode, Json<Vec<Attachment>>)> {
    user.require(Perm::OrdersRead)?;
    let limits = &s.config.attachments;
    upload::check_length(req.headers(), limits)?;
    let order = orders::get(&s.db, &s.clock(), &user, id).await?;
    if order.state.is_terminal() {
        return Err(Error::conflict("attachment.order_closed"));
    }
    let parts = upload::read_multipart(multipart(req, &s).await?, limits).await?;
    if parts.files.is_empty() {
        return Err(Error::invalid("attachment.no_file", "file"));
    }
    let prepared = upload::prepare_all(parts.files, limits, false).await?;
    let saved = upload::save(&s, &order, Uploader::Staff(&user), false, prepared).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// The attachments of an order in your scope.
#[utoipa::path(get, path = "/api/v1/orders/{id}/attachments", tag = "attachments", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = Vec<Attachment>), (status = 404, body = ErrorBody)))]
async fn list(State(s): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<Vec<Attachment>>> {
    user.require(Perm::OrdersRead)?;
    let order = orders::get(&s.db, &s.clock(), &user, id).await?;
    Ok(Json(store::list(&s.db, order.id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VariantQuery {
    /// `original` (default; staff only), `public` (re-encoded without
    /// metadata) or `thumb`.
    pub variant: Option<String>,
}

fn variant(q: &VariantQuery) -> Result<Variant> {
    match q.variant.as_deref() {
        None | Some("") | Some("original") => Ok(Variant::Original),
        Some("public") => Ok(Variant::Public),
        Some("thumb") => Ok(Variant::Thumb),
        Some(_) => Err(Error::invalid("attachment.variant_unknown", "variant")),
    }
}

/// An attachment of an order in your scope: the original as uploaded, or a
/// photo's public copy or thumbnail.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments", params(("id" = i64, Path), VariantQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The file, with its real content type"), (status = 404, body = ErrorBody)))]
async fn download(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<VariantQuery>,
) -> Result<Response> {
    user.require(Perm::OrdersRead)?;
    let v = variant(&q)?;
    let a = store::get(&s.db, id).await?;
    // Out of scope answers exactly like missing.
    orders::get(&s.db, &s.clock(), &user, a.order_id).await?;
    // An original may carry where it was taken (a resident's home): its
    // reads are recorded like other reads of personal data.
    if v == Variant::Original {
        let actor = crate::audit::Actor::user(&user, user.client_addr.clone());
        let object = Some(crate::audit::Object::new("attachment", id));
        let detail = serde_json::json!({"order_id": a.order_id, "kind": a.kind});
        crate::audit::record(&s.db, &actor, crate::orders::action::ATTACHMENT_ORIGINAL, object, None, detail).await?;
    }
    // Short-lived: a cached original must not outlive the caller's scope for long.
    serve(&s, &a, v, "private, max-age=600").await
}

/// Add a photo to your own report, by its tracking code, while it awaits
/// acceptance (待受理). Photos only; they are shown on the public timeline
/// without their metadata.
#[utoipa::path(post, path = "/api/v1/portal/orders/{code}/attachments", tag = "portal", params(("code" = String, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Vec<PublicAttachment>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn portal_upload(
    State(s): State<AppState>,
    Path(code): Path<String>,
    req: Request,
) -> Result<(StatusCode, Json<Vec<PublicAttachment>>)> {
    let limits = &s.config.attachments;
    upload::check_length(req.headers(), limits)?;
    let order = orders::get_by_tracking_code(&s.db, &s.clock(), &code).await?;
    if order.state != OrderState::PendingAccept {
        return Err(Error::conflict("attachment.portal_closed"));
    }
    let parts = upload::read_multipart(multipart(req, &s).await?, limits).await?;
    if parts.files.is_empty() {
        return Err(Error::invalid("attachment.no_file", "file"));
    }
    let prepared = upload::prepare_all(parts.files, limits, true).await?;
    let saved = upload::save(&s, &order, Uploader::Resident, true, prepared).await?;
    Ok((StatusCode::CREATED, Json(saved.iter().map(|a| a.public_view(&order.tracking_code)).collect())))
}

/// A public photo of an order, by its tracking code: only ever the copy
/// without metadata (or its thumbnail), never the original.
#[utoipa::path(get, path = "/api/v1/portal/orders/{code}/attachments/{id}", tag = "portal",
    params(("code" = String, Path), ("id" = i64, Path), VariantQuery),
    responses((status = 200, description = "The public copy (JPEG or PNG)"), (status = 404, body = ErrorBody)))]
async fn portal_download(
    State(s): State<AppState>,
    Path((code, id)): Path<(String, i64)>,
    Query(q): Query<VariantQuery>,
) -> Result<Response> {
    let v = match q.variant.as_deref() {
        None | Some("") | Some("public") => Variant::Public,
        Some("thumb") => Variant::Thumb,
        Some(_) => return Err(Error::invalid("attachment.variant_unknown", "variant")),
    };
    let order = orders::get_by_tracking_code(&s.db, &s.clock(), &code).await?;
    let a = store::get(&s.db, id).await?;
    if a.order_id != order.id || !a.public || !a.has_thumbnail {
        return Err(Error::NotFound);
    }
    serve(&s, &a, v, "private, max-age=600").await
}

/// The multipart body, read only after the caller and the order were
/// checked (so a refusal never depends on what was sent).
async fn multipart(req: Request, s: &AppState) -> Result<Multipart> {
    Multipart::from_request(req, s).await.map_err(|_| Error::invalid("attachment.bad_form", "file"))
}

/// Public views of an order's public photos, for the portal.
pub async fn public_photos(s: &AppState, order_id: i64, tracking_code: &str) -> Result<Vec<PublicAttachment>> {
    Ok(store::list(&s.db, order_id)
        .await?
        .iter()
        .filter(|a| a.public && a.has_thumbnail)
        .map(|a| a.public_view(tracking_code))
        .collect())
}

async fn serve(s: &AppState, a: &Attachment, v: Variant, cache: &'static str) -> Result<Response> {
    if v != Variant::Original && !a.has_thumbnail {
        return Err(Error::NotFound);
    }
    let bytes = FileStore::new(&s.config.data_dir).read(&a.sha256, v).await.map_err(|e| {
        // A row without its file: the data directory was damaged or lost.
        anyhow::anyhow!("attachment {} file unreadable: {e}", a.id)
    })?;
    let (mime, ext) = match v {
        Variant::Original => (a.mime.as_str(), ""),
        Variant::Public if a.mime == "image/png" => ("image/png", ".png"),
        Variant::Public | Variant::Thumb => ("image/jpeg", ".jpg"),
    };
    let name = match v {
        Variant::Original => a.name.clone(),
        _ => format!("{}{ext}", a.name.rsplit_once('.').map(|(stem, _)| stem).unwrap_or(&a.name)),
    };
    let disposition = if a.is_image() { "inline" } else { "attachment" };
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>().replace('+', "%20");
    // For clients that do not read `filename*`: an ASCII name of the same type.
    let ascii = format!("attachment-{}.{}", a.id, name.rsplit_once('.').map(|(_, e)| e).unwrap_or("bin"));
    let ascii: String = ascii.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')).collect();
    let mut res = Body::from(bytes).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(mime).map_err(anyhow::Error::from)?);
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
            .map_err(anyhow::Error::from)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}
