//! The one API error type. Every handler returns `Result<T>`; the error
//! renders as `{"error":{"code","message","field"}}` with a Chinese message
//! from the catalogue and a stable code for programs. Internal errors are
//! logged with detail and answered without it.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::kernel::i18n::t;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request that cannot be read at all (e.g. JSON that does not parse).
    #[error("bad request: {code}")]
    BadRequest { code: String },
    /// Input that failed validation; `code` is a catalogue key.
    #[error("invalid input: {code}")]
    Invalid { code: String, field: Option<String>, detail: Option<String> },
    #[error("authentication required")]
    Unauthorized,
    #[error("login failed")]
    LoginFailed,
    #[error("forbidden")]
    Forbidden,
    /// Too many failed logins: the account waits out the lockout.
    #[error("account locked")]
    Locked,
    /// Too many failed logins from one client address.
    #[error("throttled")]
    Throttled,
    /// The account must set a new password before anything else.
    #[error("password change required")]
    PasswordChangeRequired,
    /// Pages only: send the browser elsewhere (e.g. to change its password).
    #[error("redirect to {0}")]
    Redirect(String),
    /// Also what out-of-scope objects answer, so scope does not leak.
    #[error("not found")]
    NotFound,
    /// A route that exists, asked with a method it does not answer (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {code}")]
    Conflict { code: String, detail: Option<String> },
    /// A body or file over its size limit (413).
    #[error("too large: {code}")]
    TooLarge { code: String, detail: Option<String> },
    /// Content that is not of an accepted type, whatever its name says (415).
    #[error("unsupported media type: {code}")]
    UnsupportedMedia { code: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite writer's direct connection (see `db::writer`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(code: impl Into<String>, field: impl Into<String>) -> Self {
        Error::Invalid { code: code.into(), field: Some(field.into()), detail: None }
    }

    pub fn invalid_detail(code: impl Into<String>, field: &str, detail: impl Into<String>) -> Self {
        Error::Invalid { code: code.into(), field: Some(field.to_string()), detail: Some(detail.into()) }
    }

    pub fn conflict(code: impl Into<String>) -> Self {
        Error::Conflict { code: code.into(), detail: None }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized | Error::LoginFailed => StatusCode::UNAUTHORIZED,
            Error::Forbidden | Error::PasswordChangeRequired => StatusCode::FORBIDDEN,
            Error::Locked => StatusCode::LOCKED,
            Error::Throttled => StatusCode::TOO_MANY_REQUESTS,
            Error::Redirect(_) => StatusCode::SEE_OTHER,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMedia { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Database(_) | Error::Sqlite(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Error::Invalid { code, .. }
            | Error::BadRequest { code }
            | Error::Conflict { code, .. }
            | Error::TooLarge { code, .. }
            | Error::UnsupportedMedia { code } => code,
            Error::Unauthorized => "auth.required",
            Error::LoginFailed => "auth.login_failed",
            Error::Forbidden | Error::Redirect(_) => "auth.forbidden",
            Error::Locked => "auth.locked",
            Error::Throttled => "auth.throttled",
            Error::PasswordChangeRequired => "auth.password_change_required",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed => "request.method_not_allowed",
            Error::Database(_) | Error::Sqlite(_) | Error::Internal(_) => "internal",
        }
    }

    /// The person-facing message: the catalogue text, plus detail if any.
    pub fn message(&self) -> String {
        let base = t(self.code());
        match self {
            Error::Invalid { detail: Some(d), .. }
            | Error::Conflict { detail: Some(d), .. }
            | Error::TooLarge { detail: Some(d), .. } => {
                format!("{base}（{d}）")
            }
            _ => base.to_string(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `region_code.parent_mismatch`.
    pub code: String,
    /// A message a person can act on (zh-CN).
    pub message: String,
    /// The input field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Redirect(to) = &self {
            // htmx follows HX-Redirect; a plain request follows the 303.
            let hx = [("HX-Redirect", to.clone())];
            return (hx, axum::response::Redirect::to(to)).into_response();
        }
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.message(),
                field: self.field().map(str::to_string),
            },
        };
        (self.status(), Json(body)).into_response()
    }
}

/// Domain errors that carry a catalogue code convert into `Invalid`.
pub trait CodedError: std::fmt::Display {
    fn code(&self) -> &'static str;
}

pub trait ResultExt<T> {
    /// Attaches the input field to a validation error.
    fn field(self, field: &str) -> Result<T>;
}

impl<T, E: CodedError> ResultExt<T> for std::result::Result<T, E> {
    fn field(self, field: &str) -> Result<T> {
        self.map_err(|e| Error::Invalid { code: e.code().to_string(), field: Some(field.to_string()), detail: None })
    }
}

/// Turns a unique-constraint violation into a 409 with the given code.
pub fn on_unique(e: sqlx::Error, code: &str) -> Error {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return Error::conflict(code);
        }
    }
    Error::Database(e)
}
