//! A client (or an attacker probing the API) sends requests the server
//! cannot take: JSON that does not parse, fields of the wrong type, an
//! array where an object belongs, a body too large, ids that cannot be ids,
//! routes and methods that do not exist. Every refusal is our JSON error
//! with a Chinese message (pages: our error page), never the framework's
//! plain text.

use crate::both_backends;
use reqwest::{Method, StatusCode};
use serde_json::Value;

struct Raw {
    status: StatusCode,
    content_type: String,
    allow: Option<String>,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn raw(
    app: &crate::helpers::TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Raw {
    // A connection of its own: the server may close one after refusing a
    // body (413), and a pooled one would then fail the next request.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut req = client.request(method, format!("{}{path}", app.addr)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type = header("content-type").unwrap_or_default();
    let allow = header("allow");
    let text = res.text().await.unwrap();
    Raw { status, content_type, allow, text }
}

/// An oversize body: the server answers without reading it all and closes
/// the connection, which may cut the client off before it reads the answer;
/// a client tries again.
async fn oversize(app: &crate::helpers::TestApp, method: Method, path: &str, token: Option<&str>, body: String) -> Raw {
    for _ in 0..20 {
        let mut req = app.client.request(method.clone(), format!("{}{path}", app.addr)).body(body.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let Ok(res) = req.header("content-type", "application/json").send().await else { continue };
        let status = res.status();
        let content_type =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let Ok(text) = res.text().await else { continue };
        return Raw { status, content_type, allow: None, text };
    }
    panic!("{method} {path}: no answer to an oversize body in 20 tries");
}

/// Our JSON error, with the expected status and code and a Chinese message.
fn assert_refused(r: &Raw, status: StatusCode, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert!(r.content_type.starts_with("application/json"), "{what}: {} {}", r.content_type, r.text);
    let body = r.json();
    assert_eq!(body["error"]["code"], code, "{what}: {}", r.text);
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{what}: not Chinese: {message}");
    assert!(!message.contains('.') || message.contains("application/json"), "{what}: a raw key? {message}");
}

const JSON: Option<&str> = Some("application/json");

both_backends!(malformed_json_bodies_are_refused_in_our_shape, |app| {
    let token = app.admin().await;
    let t = Some(token.as_str());
    let root = app.root_id;
    // Routes that take a JSON body, from login to work orders.
    let routes: Vec<(Method, String)> = vec![
        (Method::POST, "/api/v1/session".into()),
        (Method::POST, "/api/v1/nodes".into()),
        (Method::PATCH, format!("/api/v1/nodes/{root}")),
        (Method::POST, "/api/v1/orders".into()),
        (Method::POST, "/api/v1/users".into()),
        (Method::PUT, "/api/v1/policy".into()),
    ];
    for (method, path) in &routes {
        let what = format!("{method} {path}");
        let r = raw(&app, method.clone(), path, t, JSON, "{\"na").await;
        assert_refused(&r, StatusCode::BAD_REQUEST, "request.invalid_json", &format!("{what} cut-off JSON"));
        let r = raw(&app, method.clone(), path, t, JSON, "{,}").await;
        assert_refused(&r, StatusCode::BAD_REQUEST, "request.invalid_json", &format!("{what} stray comma"));
        for not_object in ["[null,null]", "[]", "null", "\"x\"", "7"] {
            let r = raw(&app, method.clone(), path, t, JSON, not_object).await;
            let w = format!("{what} body {not_object}");
            assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "request.body_not_object", &w);
        }
        let r = raw(&app, method.clone(), path, t, Some("text/plain"), "{}").await;
        assert_refused(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "request.json_expected", &format!("{what} text/plain"));
        let r = raw(&app, method.clone(), path, t, None, "{}").await;
        assert_refused(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "request.json_expected", &format!("{what} no type"));
        // Far over the 2 MB limit of a JSON body.
        let big = format!("{{\"name\":\"{}\"}}", "x".repeat(3 << 20));
        let r = oversize(&app, method.clone(), path, t, big).await;
        assert_refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "request.too_large", &format!("{what} 3 MB"));
    }
    // Nothing was created by any of it.
    assert_eq!(app.count("users").await, 1);
});

both_backends!(fields_of_the_wrong_type_are_named, |app| {
    let token = app.admin().await;
    let t = Some(token.as_str());
    let r = raw(&app, Method::POST, "/api/v1/session", None, JSON, r#"{"username": 42, "password": "x"}"#).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "request.invalid_value", "username a number");
    assert_eq!(r.json()["error"]["field"], "username");
    let r = raw(&app, Method::POST, "/api/v1/session", None, JSON, r#"{"username": "admin"}"#).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "request.missing_field", "password missing");
    assert_eq!(r.json()["error"]["field"], "password");
    let path = format!("/api/v1/nodes/{}", app.root_id);
    let r = raw(&app, Method::PATCH, &path, t, JSON, r#"{"version": "one"}"#).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "request.invalid_value", "version a string");
    assert_eq!(r.json()["error"]["field"], "version");
    // A query parameter of the wrong type names the parameter.
    let r = raw(&app, Method::GET, "/api/v1/orders?page=many", t, None, "").await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "request.invalid_value", "page a word");
    assert_eq!(r.json()["error"]["field"], "page");
});

both_backends!(ids_that_cannot_be_ids_answer_like_missing_objects, |app| {
    let token = app.admin().await;
    let t = Some(token.as_str());
    for path in [
        "/api/v1/nodes/abc",
        "/api/v1/nodes/99999999999999999999999",
        "/api/v1/nodes/-",
        "/api/v1/orders/1.5",
        "/api/v1/users/%F0%9F%98%80",
        "/api/v1/attachments/0x10",
        "/api/v1/nodes/abc/subtree",
    ] {
        let r = raw(&app, Method::GET, path, t, None, "").await;
        assert_refused(&r, StatusCode::NOT_FOUND, "not_found", path);
    }
    let r = raw(&app, Method::PATCH, "/api/v1/nodes/abc", t, JSON, "{}").await;
    assert_refused(&r, StatusCode::NOT_FOUND, "not_found", "PATCH a word id");
});

both_backends!(unknown_routes_and_wrong_methods_answer_json, |app| {
    let token = app.admin().await;
    let t = Some(token.as_str());
    let r = raw(&app, Method::GET, "/api/v1/no-such-thing", t, None, "").await;
    assert_refused(&r, StatusCode::NOT_FOUND, "not_found", "unknown route");
    let r = raw(&app, Method::DELETE, "/api/v1/session/nope/deeper", t, None, "").await;
    assert_refused(&r, StatusCode::NOT_FOUND, "not_found", "unknown deeper route");
    for (method, path) in
        [(Method::DELETE, "/api/v1/nodes"), (Method::PUT, "/api/v1/orders"), (Method::POST, "/api/v1/openapi.json")]
    {
        let r = raw(&app, method.clone(), path, t, None, "").await;
        assert_refused(&r, StatusCode::METHOD_NOT_ALLOWED, "request.method_not_allowed", &format!("{method} {path}"));
        assert!(r.allow.as_deref().is_some_and(|a| a.contains("GET")), "{method} {path}: Allow {:?}", r.allow);
    }
});

both_backends!(the_document_lists_every_refusal_an_operation_can_answer, |app| {
    let r = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    let paths = r.body["paths"].as_object().unwrap();
    let statuses = |path: &str, method: &str| -> Vec<String> {
        paths[path][method]["responses"].as_object().unwrap().keys().cloned().collect()
    };
    for s in ["400", "401", "403", "404", "413", "415", "422"] {
        assert!(statuses("/api/v1/nodes/{id}", "patch").contains(&s.to_string()), "PATCH /nodes/{{id}} lacks {s}");
    }
    for s in ["400", "413", "415", "422"] {
        assert!(statuses("/api/v1/session", "post").contains(&s.to_string()), "POST /session lacks {s}");
    }
    assert!(statuses("/api/v1/orders", "get").contains(&"422".to_string()), "a query can be refused");
    // Lookups under a tracking code are limited per address.
    let tracking = paths.keys().filter(|p| p.starts_with("/api/v1/portal/orders/{")).collect::<Vec<_>>();
    assert!(!tracking.is_empty());
    for p in tracking {
        for (method, op) in paths[p].as_object().unwrap() {
            assert!(op["responses"].get("429").is_some(), "{method} {p} lacks 429");
        }
    }
    let error_ref = &paths["/api/v1/nodes/{id}"]["patch"]["responses"]["400"]["content"]["application/json"]["schema"];
    assert_eq!(error_ref["$ref"], "#/components/schemas/ErrorBody");
});

both_backends!(pages_refuse_with_our_error_page, |app| {
    let token = app.admin().await;
    // A browser session: log in through the form.
    let form = [("username", crate::helpers::ADMIN), ("password", crate::helpers::PASSWORD)];
    let r = app.client.post(format!("{}/login", app.addr)).form(&form).send().await.unwrap();
    assert!(r.status().is_redirection(), "login: {}", r.status());
    let _ = token;
    let page = |r: &Raw, status: StatusCode, what: &str| {
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert!(r.content_type.starts_with("text/html"), "{what}: {}", r.content_type);
        assert!(r.text.contains("返回首页"), "{what}: not our error page: {}", r.text);
    };
    for path in ["/orders/abc", "/tree/99999999999999999999999", "/m/orders/x"] {
        let r = raw(&app, Method::GET, path, None, None, "").await;
        page(&r, StatusCode::NOT_FOUND, path);
        assert!(r.text.contains("页面不存在"), "{path}");
    }
    let r = raw(&app, Method::GET, "/no/such/page", None, None, "").await;
    page(&r, StatusCode::NOT_FOUND, "unknown page");
    let r = raw(&app, Method::GET, "/orders?page=many", None, None, "").await;
    page(&r, StatusCode::UNPROCESSABLE_ENTITY, "a query of the wrong type");
    let r = raw(&app, Method::PUT, "/login", None, None, "").await;
    page(&r, StatusCode::METHOD_NOT_ALLOWED, "PUT /login");
    let r = raw(&app, Method::POST, "/login", None, Some("text/plain"), "username=admin").await;
    page(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "login posted as text");
});

both_backends!(a_page_number_far_past_the_end_is_an_empty_page, |app| {
    // Found by the API fuzz: the offset of page 2^63-2 overflowed and the
    // server dropped the connection instead of answering.
    let token = app.admin().await;
    for path in ["/api/v1/users", "/api/v1/orders", "/api/v1/audit"] {
        let r = app.get(&format!("{path}?page=9223372036854775806"), &token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
    }
});

both_backends!(a_token_for_a_node_that_does_not_exist_is_refused_in_chinese, |app| {
    // Found by the API fuzz: the message was the raw catalogue key.
    let token = app.admin().await;
    let body =
        serde_json::json!({"name": "对接", "permissions": ["orders.read"], "node_id": 987654, "expires_in_days": 30});
    let r = app.post("/api/v1/tokens", &token, body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "tree.node_not_found");
    assert_ne!(r.body["error"]["message"], "tree.node_not_found");
});
