//! The request extractors of every handler: axum's `Json`, `Path`, `Query`
//! and `Form`, with their refusals in our own shape. API routes answer
//! `{"error":{"code","message","field"}}` with a catalogue message; pages
//! answer the error page (see `page`). Handlers import these instead of
//! axum's, so no malformed request is answered in the framework's words.
//!
//! What each refusal answers:
//! - a body that is not JSON (wrong or missing content type): 415 `request.json_expected`;
//! - a body over the size limit: 413 `request.too_large`;
//! - JSON that does not parse: 400 `request.invalid_json`;
//! - JSON of the wrong shape: 422 naming the field (`request.missing_field`,
//!   `request.unknown_field`, `request.invalid_value`), and a body that is
//!   not an object where one is expected (an array or `null`): 422
//!   `request.body_not_object`;
//! - a query parameter of the wrong type: 422 naming the parameter;
//! - a path id that cannot be one (not a number, out of range): 404
//!   `not_found`, exactly like an id that names nothing.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use crate::kernel::error::Error;

/// A JSON request body, or a JSON response (like axum's `Json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !json_content_type(req.headers()) {
            return Err(Error::UnsupportedMedia { code: "request.json_expected".into() });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| body_error(e.status()))?;
        Ok(Json(from_json(&bytes)?))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T> From<T> for Json<T> {
    fn from(inner: T) -> Self {
        Json(inner)
    }
}

fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn body_error(status: StatusCode) -> Error {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge { code: "request.too_large".into(), detail: None }
    } else {
        Error::BadRequest { code: "request.unreadable".into() }
    }
}

/// Decodes a JSON body into `T`, naming the field at fault.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // serde lets a struct be written as an array of its fields (and some
    // as `null`); a body is an object whenever the type is one.
    if expects_object::<T>() && first_byte(bytes) != Some(b'{') && first_byte(bytes).is_some() {
        return Err(Error::Invalid { code: "request.body_not_object".into(), field: None, detail: None });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let syntax = !matches!(e.inner().classify(), serde_json::error::Category::Data);
        if syntax {
            Error::BadRequest { code: "request.invalid_json".into() }
        } else {
            data_error(e.path(), &e.inner().to_string())
        }
    })?;
    de.end().map_err(|_| Error::BadRequest { code: "request.invalid_json".into() })?;
    Ok(value)
}

fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// A field-level decoding failure as a 422 naming the field.
fn data_error(path: &serde_path_to_error::Path, message: &str) -> Error {
    let at = path.to_string();
    let at = if at == "." { None } else { Some(at) };
    let join = |name: &str| Some(at.as_ref().map_or_else(|| name.to_string(), |p| format!("{p}.{name}")));
    let quoted = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('`')).and_then(|r| r.split('`').next())
    };
    let (code, field) = if let Some(name) = quoted("missing field ") {
        ("request.missing_field", join(name))
    } else if quoted("unknown field ").is_some() {
        // The path already ends at the unknown key.
        ("request.unknown_field", at)
    } else {
        ("request.invalid_value", at)
    };
    Error::Invalid { code: code.into(), field, detail: None }
}

/// Whether `T` deserializes from a map (a struct or a map type), found by
/// asking `T` which shape it wants from a deserializer that has none.
fn expects_object<T: DeserializeOwned>() -> bool {
    struct Probe;
    #[derive(Debug)]
    struct Asked(bool);
    impl std::fmt::Display for Asked {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Asked {}
    impl serde::de::Error for Asked {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Asked(false)
        }
    }
    impl<'de> serde::Deserializer<'de> for Probe {
        type Error = Asked;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Asked> {
            Err(Asked(false))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Asked> {
            Err(Asked(true))
        }
        fn deserialize_map<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Asked> {
            Err(Asked(true))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct enum identifier ignored_any
        }
    }
    matches!(T::deserialize(Probe), Err(Asked(true)))
}

/// Path parameters; one that cannot be decoded names nothing (404).
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(axum::extract::rejection::PathRejection::FailedToDeserializePathParams(_)) => Err(Error::NotFound),
            Err(e) => Err(Error::Internal(anyhow::anyhow!("path parameters: {e}"))),
        }
    }
}

/// Query parameters (decoded like axum's `Query`), naming the parameter at fault.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        from_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

pub fn from_query<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| data_error(e.path(), &e.inner().to_string()))
}

/// The same extractors for pages: a refusal is the error page (or, for an
/// htmx request, the alert the form shows in place of its result).
pub mod page {
    use super::*;

    /// A page request refused before its handler ran.
    #[derive(Debug)]
    pub struct Refusal {
        error: Error,
        htmx: bool,
    }

    impl IntoResponse for Refusal {
        fn into_response(self) -> Response {
            if self.htmx {
                crate::web::alert(&self.error)
            } else {
                crate::web::refusal_page(&self.error)
            }
        }
    }

    fn htmx(headers: &HeaderMap) -> bool {
        headers.contains_key("HX-Request")
    }

    #[derive(Debug)]
    pub struct Path<T>(pub T);

    impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
        type Rejection = Refusal;

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
            super::Path::from_request_parts(parts, state)
                .await
                .map(|super::Path(v)| Path(v))
                .map_err(|error| Refusal { error, htmx: htmx(&parts.headers) })
        }
    }

    #[derive(Debug)]
    pub struct Query<T>(pub T);

    impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
        type Rejection = Refusal;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Refusal> {
            from_query(parts.uri.query().unwrap_or(""))
                .map(Query)
                .map_err(|error| Refusal { error, htmx: htmx(&parts.headers) })
        }
    }

    /// A url-encoded form (repeated keys fill a `Vec`, like axum-extra's `Form`).
    #[derive(Debug)]
    pub struct Form<T>(pub T);

    impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
        type Rejection = Refusal;

        async fn from_request(req: Request, state: &S) -> Result<Self, Refusal> {
            let htmx = htmx(req.headers());
            let refuse = |error| Refusal { error, htmx };
            let bytes = match axum::extract::RawForm::from_request(req, state).await {
                Ok(axum::extract::RawForm(bytes)) => bytes,
                Err(axum::extract::rejection::RawFormRejection::InvalidFormContentType(_)) => {
                    return Err(refuse(Error::UnsupportedMedia { code: "request.form_expected".into() }))
                }
                Err(e) => return Err(refuse(body_error(e.status()))),
            };
            let de = serde_html_form::Deserializer::new(url::form_urlencoded::parse(&bytes));
            serde_path_to_error::deserialize(de)
                .map(Form)
                .map_err(|e| refuse(data_error(e.path(), &e.inner().to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        level: i64,
    }

    fn refused<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> (StatusCode, String, Option<String>) {
        let e = from_json::<T>(body.as_bytes()).unwrap_err();
        (e.status(), e.code().to_string(), e.field().map(str::to_string))
    }

    #[test]
    fn json_refusals_name_the_field() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(refused::<Body>("{\"name\":"), (StatusCode::BAD_REQUEST, "request.invalid_json".into(), None));
        assert_eq!(
            refused::<Body>("{\"name\":\"a\"} x"),
            (StatusCode::BAD_REQUEST, "request.invalid_json".into(), None)
        );
        assert_eq!(
            refused::<Body>("{}"),
            (StatusCode::UNPROCESSABLE_ENTITY, "request.missing_field".into(), s("name"))
        );
        assert_eq!(
            refused::<Body>("{\"name\":1}"),
            (StatusCode::UNPROCESSABLE_ENTITY, "request.invalid_value".into(), s("name"))
        );
        assert_eq!(
            refused::<Body>("{\"name\":\"a\",\"inner\":{}}"),
            (StatusCode::UNPROCESSABLE_ENTITY, "request.missing_field".into(), s("inner.level"))
        );
        assert_eq!(
            refused::<Body>("{\"name\":\"a\",\"inner\":{\"level\":99999999999999999999}}"),
            (StatusCode::UNPROCESSABLE_ENTITY, "request.invalid_value".into(), s("inner.level"))
        );
        for not_object in ["[\"a\", null]", "null", "  []", "\"a\"", "1"] {
            assert_eq!(
                refused::<Body>(not_object),
                (StatusCode::UNPROCESSABLE_ENTITY, "request.body_not_object".into(), None),
                "{not_object}"
            );
        }
    }

    #[test]
    fn non_object_bodies_are_fine_where_the_type_is_not_one() {
        assert_eq!(from_json::<Vec<i64>>(b"[1,2]").unwrap(), vec![1, 2]);
        assert!(from_json::<std::collections::HashMap<String, i64>>(b"{\"a\":1}").is_ok());
        assert!(expects_object::<std::collections::HashMap<String, i64>>());
        assert!(!expects_object::<Vec<i64>>());
        assert!(!expects_object::<serde_json::Value>());
    }

    #[test]
    fn query_refusals_name_the_parameter() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<i64>,
        }
        let e = from_query::<Q>("limit=abc").unwrap_err();
        assert_eq!(
            (e.status(), e.code(), e.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, "request.invalid_value", Some("limit"))
        );
        assert!(from_query::<Q>("").unwrap().limit.is_none());
    }
}
