//! Direct SQLite connections for the hottest reads. A read through sqlx's
//! SQLite driver is two thread hand-overs (to the connection's worker and
//! back), which cost more than the read itself; these connections run the
//! statement on the calling thread instead. They are read-only, and a
//! statement here is short (one row by key), so holding a runtime thread
//! for it is cheaper than handing it over.

use std::{path::PathBuf, sync::Mutex};

use rusqlite::Connection;

use crate::kernel::error::Result;

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
        // Read-only: how commits are synced does not concern it.
        let conn = super::writer::open(&self.path, Default::default())?;
        // No memory map: whenever another connection has committed, SQLite
        // drops a reader's whole map along with its page cache, and each
        // read then pays for unmapping (a TLB shoot-down on every core) and
        // for faulting its pages back in, several times a plain `pread`.
        // The page cache stays small for the same reason: it is emptied
        // after each commit elsewhere, at a cost that grows with its size.
        conn.execute_batch("pragma query_only = on; pragma mmap_size = 0; pragma cache_size = -2048")?;
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

/// A direct row read mostly in column order: rusqlite finds a column by
/// name by comparing every name before it, so this looks first where the
/// last column read ended.
pub struct InOrder<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    next: std::cell::Cell<usize>,
}

impl<'a, 'r> InOrder<'a, 'r> {
    pub fn new(row: &'a rusqlite::Row<'r>) -> Self {
        InOrder { row, next: std::cell::Cell::new(0) }
    }
}

impl Cols for InOrder<'_, '_> {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        let stmt = self.row.as_ref();
        let count = stmt.column_count();
        let start = self.next.get();
        // From where the last read ended, onwards and round: a column a
        // few places ahead (one skipped) costs a few comparisons, not a
        // search from the first column.
        let found = (0..count)
            .map(|k| (start + k) % count.max(1))
            .find(|&i| stmt.column_name(i).is_ok_and(|n| n.eq_ignore_ascii_case(name)));
        let i = match found {
            Some(i) => i,
            None => stmt.column_index(name)?,
        };
        self.next.set(i + 1);
        Ok(self.row.get(i)?)
    }
}

/// Maps a row of either driver to a value (see `Db::fetch_optional`).
pub trait RowMap<T> {
    fn map(&self, row: &impl Cols) -> Result<T>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns read in order, skipped, out of order and twice all come back
    /// by their names; an unknown name is an error.
    #[test]
    fn a_row_is_read_by_name_in_any_order() {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("select 1 as a, 'two' as b, 3 as c, null as d, 5 as e").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let row = rows.next().unwrap().unwrap();
        let r = InOrder::new(row);
        assert_eq!(r.col::<i64>("a").unwrap(), 1);
        assert_eq!(r.col::<String>("b").unwrap(), "two");
        assert_eq!(r.col::<i64>("E").unwrap(), 5, "skipping ahead, any case");
        assert_eq!(r.col::<Option<i64>>("d").unwrap(), None, "back again");
        assert_eq!(r.col::<i64>("a").unwrap(), 1, "round to the first");
        assert_eq!(r.col::<i64>("c").unwrap(), 3);
        assert!(r.col::<i64>("missing").is_err());
    }
}
