//! What every domain stands on: storage (connect, migrate, the SQLite
//! writer and readers), encryption and keys, the session cache, logging.
//! Imports only the kernel.

pub mod crypto;
pub mod db;
pub mod jobs;
pub mod outbox;
pub mod sessions;
pub mod telemetry;
