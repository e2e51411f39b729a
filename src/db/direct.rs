//! Direct SQLite connections for the hottest reads. A read through sqlx's
//! SQLite driver is two thread hand-overs (to the connection's worker and
//! back), which cost more than the read itself; these connections run the
//! statement on the calling thread instead. They are read-only, and a
//! statement here is short (one row by key), so holding a runtime thread
//! for it is cheaper than handing it over.

use std::{path::PathBuf, sync::Mutex};

use rusqlite::Connection;

use crate::error::Result;

/// Idle connections kept for reuse; more are opened on demand and closed
/// when the pool is full.
const MAX_IDLE: usize = 8;

pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: PathBuf) -> Readers {
        Readers { path, idle: Mutex::new(vec![]) }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = super::writer::open(&self.path)?;
        // Pages of the database file are read from the map rather than
        // copied into each connection's cache, which every commit by
        // another connection empties.
        // For the same reason the page cache stays small: emptying it after
        // each commit elsewhere costs in proportion to its size.
        conn.execute_batch("pragma query_only = on; pragma mmap_size = 1073741824; pragma cache_size = -2048")?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one).
    pub fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let taken = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let r = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        r
    }
}

/// A value both drivers decode (integers, reals, text and their options).
pub trait Col: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql {}
impl<T> Col for T where T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql {}

/// A result row of either driver, read by column name, so one mapping
/// serves rows read through the pool and through a direct connection.
pub trait Cols {
    fn col<T: Col>(&self, name: &str) -> Result<T>;
}

impl Cols for sqlx::any::AnyRow {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        Ok(self.get(name)?)
    }
}
