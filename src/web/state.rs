//! What every handler shares: the database, settings, encryption, and the
//! settings administrators edit at run time (working-day clock, policy).

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

use super::throttle::Throttle;
use crate::{
    kernel::{clock::Clock, policy::SecurityPolicy},
    platform::{crypto::Crypto, db::Db},
};

/// Runtime settings that are not the database.
#[derive(Clone, Debug)]
pub struct Config {
    /// Mark cookies `Secure` (browsers still accept them on http://localhost).
    pub cookie_secure: bool,
    /// Optional map tile URL template (e.g. 天地图); none means plain background.
    pub tile_url: Option<String>,
    pub data_dir: PathBuf,
    #[cfg(feature = "bench")]
    /// Serve `POST /bench/insert` (one plain row insert), the reference of
    /// `fengqiao bench orders`. Off except in benchmarks.
    pub bench_endpoints: bool,
    /// Sizes and counts of work-order attachments.
    pub attachments: UploadLimits,
    /// The most rows a queue export answers at once; a larger one is written
    /// by a background job that shows its progress.
    pub export_inline_rows: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cookie_secure: true,
            tile_url: None,
            data_dir: PathBuf::from("data"),
            #[cfg(feature = "bench")]
            bench_endpoints: false,
            attachments: Default::default(),
            export_inline_rows: 5000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    /// Encryption of personal data at rest (SM4-GCM, HMAC-SM3 blind indexes).
    pub crypto: Crypto,
    /// The working-day clock; replaced when administrators edit the calendar.
    clock: Arc<std::sync::RwLock<Arc<Clock>>>,
    /// The password and session policy; replaced when administrators edit it.
    policy: Arc<std::sync::RwLock<Arc<SecurityPolicy>>>,
    /// Failed logins per client address.
    pub throttle: Arc<Throttle>,
}

impl AppState {
    /// The state from what the app loaded at start (see `app::state`).
    pub fn new(db: Db, config: Config, crypto: Crypto, clock: Clock, policy: SecurityPolicy) -> AppState {
        AppState {
            db,
            config: Arc::new(config),
            crypto,
            clock: Arc::new(std::sync::RwLock::new(Arc::new(clock))),
            policy: Arc::new(std::sync::RwLock::new(Arc::new(policy))),
            throttle: Arc::new(Throttle::default()),
        }
    }

    pub fn policy(&self) -> Arc<SecurityPolicy> {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a policy on this node at once (identity stores it first).
    pub fn replace_policy(&self, policy: SecurityPolicy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
    }

    pub fn clock(&self) -> Arc<Clock> {
        self.clock.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a rebuilt clock after a calendar change.
    pub fn replace_clock(&self, clock: Clock) {
        *self.clock.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(clock);
    }
}

/// The client's address, for sessions and (later) throttling and audit.
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())))
    }
}

/// Size and count limits of work-order attachments, from the command line (see `WebArgs`).
#[derive(Clone, Debug)]
pub struct UploadLimits {
    pub image_bytes: u64,
    pub document_bytes: u64,
    /// Attachments on one order, all uploaders together.
    pub per_order: i64,
    /// Photos a resident may add to their own report.
    pub per_resident: i64,
    /// Files in one request.
    pub per_request: usize,
    /// The most one upload request may carry, files and fields together.
    pub request_bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            image_bytes: 10 << 20,
            document_bytes: 20 << 20,
            per_order: 30,
            per_resident: 6,
            per_request: 9,
            request_bytes: 60 << 20,
        }
    }
}

impl UploadLimits {
    /// The most one file may have before its type is known.
    pub fn file_bytes(&self) -> u64 {
        self.image_bytes.max(self.document_bytes)
    }

    /// The most a whole upload request may carry: never less than one
    /// file of the largest kind and its form.
    pub fn request_bytes(&self) -> u64 {
        self.request_bytes.max(self.file_bytes() + (1 << 20))
    }
}
