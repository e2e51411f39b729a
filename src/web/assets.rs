//! Static files compiled into the binary, so one file is the whole product.

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};

macro_rules! assets {
    ($($path:literal => $mime:literal),* $(,)?) => {
        const ASSETS: &[(&str, &str, &[u8])] = &[
            $(($path, $mime, include_bytes!(concat!("../../static/", $path)))),*
        ];
    };
}

assets! {
    "vendor/htmx/htmx.min.js" => "text/javascript",
    "vendor/htmx-ext-sse/sse.min.js" => "text/javascript",
    "vendor/leaflet/leaflet.js" => "text/javascript",
    "vendor/leaflet/leaflet.css" => "text/css",
    "vendor/leaflet/images/marker-icon.png" => "image/png",
    "vendor/leaflet/images/marker-icon-2x.png" => "image/png",
    "vendor/leaflet/images/marker-shadow.png" => "image/png",
    "vendor/leaflet/images/layers.png" => "image/png",
    "vendor/leaflet/images/layers-2x.png" => "image/png",
    "vendor/leaflet-geoman/leaflet-geoman.min.js" => "text/javascript",
    "vendor/leaflet-geoman/leaflet-geoman.css" => "text/css",
    "css/app.css" => "text/css",
    "favicon.svg" => "image/svg+xml",
    "js/app.js" => "text/javascript",
    "js/map.js" => "text/javascript",
    "js/locate.js" => "text/javascript",
    "js/photos.js" => "text/javascript",
    "js/portal.js" => "text/javascript",
    "js/units.js" => "text/javascript",
    "js/field.js" => "text/javascript",
    "js/tree.js" => "text/javascript",
}

pub async fn serve(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, mime, body)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=3600")], *body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
