//! Structured logging. Request spans carry a request id (see `http`).

use tracing_subscriber::{fmt, EnvFilter};

pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_env("FENGQIAO_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // A second init (tests start many servers in one process) is harmless.
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.compact().try_init() };
}
