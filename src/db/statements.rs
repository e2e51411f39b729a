//! A few statements that always run together. On SQLite they go as one
//! multi-statement call, which costs one trip to the connection's worker
//! thread instead of one per statement (SQLite numbers `$n` across the
//! whole text, so the placeholders are renumbered). PostgreSQL's extended
//! protocol takes one statement per call, so there they run one by one.

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

    /// Runs `first` (an update) and, only if it changed a row, these
    /// inserts; answers whether it did. On SQLite that is two calls inside
    /// the caller's transaction; on PostgreSQL one statement, the inserts
    /// as data-modifying CTEs that read the update's row, so it is atomic
    /// without a transaction of its own (one round trip instead of five).
    pub async fn execute_if(self, first: &str, first_args: Vec<V>, conn: &mut AnyConnection) -> sqlx::Result<bool> {
        if conn.backend_name() == "SQLite" {
            if bind(sqlx::query(first), first_args).execute(&mut *conn).await?.rows_affected() == 0 {
                return Ok(false);
            }
            self.execute(conn).await?;
            return Ok(true);
        }
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
        let won: i64 = bind(sqlx::query(&sql), all).fetch_one(conn).await?.try_get(0)?;
        Ok(won > 0)
    }

    /// Runs them in order; returns the rows affected by all of them.
    pub async fn execute(self, conn: &mut AnyConnection) -> sqlx::Result<u64> {
        if conn.backend_name() != "SQLite" {
            let mut n = 0;
            for (sql, args) in self.parts {
                n += bind(sqlx::query(&sql), args).execute(&mut *conn).await?.rows_affected();
            }
            return Ok(n);
        }
        let mut sql = String::new();
        let mut all = vec![];
        for (part, args) in self.parts {
            if !sql.is_empty() {
                sql.push_str("; ");
            }
            sql.push_str(&renumber(&part, all.len()));
            all.extend(args);
        }
        Ok(bind(sqlx::query(&sql), all).execute(conn).await?.rows_affected())
    }
}

type Query<'a> = sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments<'a>>;

fn bind(mut q: Query<'_>, args: Vec<V>) -> Query<'_> {
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
