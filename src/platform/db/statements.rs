//! A few statements that always run together. On PostgreSQL a guarded
//! group (an update and the inserts that follow it only if it changed a
//! row) goes as one statement of data-modifying CTEs: one round trip. On
//! SQLite they run on the group-commit writer's direct connection, where a
//! statement is a function call (prepared once, cached).

use sqlx::{AnyConnection, Row};

/// A value bound to a statement.
#[derive(Clone, Debug)]
pub enum V {
    I(Option<i64>),
    F(Option<f64>),
    S(Option<String>),
}

pub struct Statements {
    parts: Vec<(String, Vec<V>)>,
}

impl Statements {
    pub fn new(sql: &str, args: Vec<V>) -> Statements {
        Statements { parts: vec![(sql.to_string(), args)] }
    }

    pub fn push(&mut self, sql: &str, args: Vec<V>) {
        self.parts.push((sql.to_string(), args));
    }

    /// PostgreSQL: runs `first` (an update) and, only if it changed a row,
    /// these inserts; answers whether it did. One statement, the inserts
    /// as data-modifying CTEs that read the update's row, so it is atomic
    /// without a transaction of its own (one round trip instead of five).
    pub async fn execute_if(self, first: &str, first_args: Vec<V>, conn: &mut AnyConnection) -> sqlx::Result<bool> {
        let mut sql = format!("with u as ({first} returning 1 as won)");
        let mut all = first_args;
        for (i, (part, args)) in self.parts.into_iter().enumerate() {
            let part = renumber(&part, all.len());
            // `insert into t (…) values (…) [on conflict …]` becomes
            // `insert into t (…) select v.* from (values (…)) v, u [on conflict …]`.
            let (head, rest) =
                part.split_once(" values ").ok_or(sqlx::Error::Protocol("insert without values".into()))?;
            let (values, conflict) = match rest.split_once(" on conflict ") {
                Some((v, c)) => (v, format!(" on conflict {c}")),
                None => (rest, String::new()),
            };
            sql += &format!(", s{i} as ({head} select v.* from (values {values}) v, u{conflict})");
            all.extend(args);
        }
        sql += " select count(*) from u";
        let won: i64 = bind_args(sqlx::query(&sql), all).fetch_one(conn).await?.try_get(0)?;
        Ok(won > 0)
    }

    /// PostgreSQL: runs them in order; returns the rows affected by all of them.
    pub async fn execute(self, conn: &mut AnyConnection) -> sqlx::Result<u64> {
        let mut n = 0;
        for (sql, args) in self.parts {
            n += bind_args(sqlx::query(&sql), args).execute(&mut *conn).await?.rows_affected();
        }
        Ok(n)
    }

    /// SQLite: `execute_if` on the writer's connection.
    pub fn execute_if_sqlite(
        &self,
        first: &str,
        first_args: &[V],
        conn: &rusqlite::Connection,
    ) -> rusqlite::Result<bool> {
        if exec_sqlite(conn, first, first_args)? == 0 {
            return Ok(false);
        }
        self.execute_sqlite(conn)?;
        Ok(true)
    }

    /// SQLite: `execute` on the writer's connection.
    pub fn execute_sqlite(&self, conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
        let mut n = 0;
        for (sql, args) in &self.parts {
            n += exec_sqlite(conn, sql, args)?;
        }
        Ok(n)
    }
}

impl rusqlite::ToSql for V {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            V::I(x) => x.to_sql(),
            V::F(x) => x.to_sql(),
            V::S(x) => x.to_sql(),
        }
    }
}

/// Binds our `$n` placeholders by number. SQLite treats `$n` as a named
/// parameter and numbers parameters by first appearance, so a statement
/// that repeats `$n` or uses them out of order still binds right.
pub fn bind_sqlite(stmt: &mut rusqlite::Statement<'_>, args: &[V]) -> rusqlite::Result<()> {
    for i in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(i).unwrap_or("?");
        let n: usize = name
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_string()))?;
        let v = args.get(n.wrapping_sub(1)).ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        stmt.raw_bind_parameter(i, v)?;
    }
    Ok(())
}

/// Runs one statement on a direct SQLite connection; answers the rows changed.
pub fn exec_sqlite(conn: &rusqlite::Connection, sql: &str, args: &[V]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind_sqlite(&mut stmt, args)?;
    stmt.raw_execute()
}

pub type Query<'a> = sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments<'a>>;

/// Binds values to a query in order.
pub fn bind_args(mut q: Query<'_>, args: Vec<V>) -> Query<'_> {
    for v in args {
        q = match v {
            V::I(x) => q.bind(x),
            V::F(x) => q.bind(x),
            V::S(x) => q.bind(x),
        };
    }
    q
}

/// `$1` → `$(1 + offset)`. Our SQL has no `$` inside string literals.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = 0usize;
        let mut digits = false;
        while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
            n = n * 10 + d.to_digit(10).unwrap_or(0) as usize;
            digits = true;
            chars.next();
        }
        if digits {
            out.push_str(&(n + offset).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn placeholders_are_shifted() {
        assert_eq!(renumber("values ($1, $2, $10)", 0), "values ($1, $2, $10)");
        assert_eq!(renumber("values ($1, $2, $10)", 11), "values ($12, $13, $21)");
        assert_eq!(renumber("n = $3 and $3 = $3", 2), "n = $5 and $5 = $5");
    }
}
