//! What every domain stands on: storage (connect, migrate, the SQLite
//! writer and readers), encryption and keys, the session cache, logging.
//! Imports only the kernel.

pub mod backup;
pub mod crypto;
pub mod db;
pub mod jobs;
pub mod notices;
pub mod outbox;
pub mod sessions;
pub mod telemetry;

/// The folder under the data directory that holds the attachments
/// (`attachments::files`); backups list what is in it.
pub const ATTACHMENTS_DIR: &str = "attachments";
