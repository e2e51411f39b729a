use crate::both_backends;
use reqwest::{Method, StatusCode};

both_backends!(healthz_names_the_backend, |app| {
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let expected = match app.backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    assert_eq!(r.body["backend"], expected);
    assert!(r.headers.get("x-request-id").is_some(), "every response carries a request id");
});

both_backends!(openapi_documents_every_api_route, |app| {
    let r = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    // The router and the document are built from the same route list; this
    // guards the list itself.
    for p in [
        "/healthz",
        "/api/v1/session",
        "/api/v1/me",
        "/api/v1/nodes",
        "/api/v1/nodes/{id}",
        "/api/v1/nodes/{id}/move",
        "/api/v1/nodes/{id}/retire",
        "/api/v1/nodes/{id}/subtree",
        "/api/v1/nodes/{id}/geojson",
        "/api/v1/nodes/{id}/members",
        "/api/v1/members/{id}",
        "/api/v1/grids/locate",
        "/api/v1/overlays",
        "/api/v1/overlays/{id}",
        "/api/v1/code-tables",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
        }
    }
});

both_backends!(unknown_api_routes_answer_json_404, |app| {
    let r = app.call(Method::GET, "/api/v1/nope", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("不存在"));
});

#[tokio::test]
async fn a_mistyped_database_url_is_a_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no/such/dir/x.db");
    let url: fengqiao::platform::db::DbUrl = format!("sqlite://{}", missing_dir.display()).parse().unwrap();
    let err = fengqiao::platform::db::Db::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("不存在"), "{err}");
    assert!(!missing_dir.exists());
    let err = "postgress://localhost/test".parse::<fengqiao::platform::db::DbUrl>().unwrap_err().to_string();
    assert!(err.contains("无法识别"), "{err}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error() {
    let url: fengqiao::platform::db::DbUrl = "postgres://nobody:secret@127.0.0.1:1/none".parse().unwrap();
    let err = fengqiao::platform::db::Db::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("无法连接 PostgreSQL"), "{err}");
    assert!(!err.contains("secret"), "the password must not appear in errors: {err}");
}
