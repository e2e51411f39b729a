//! The two migration sets build the same database: the same tables, the
//! same columns (names, types by family, nullability), the same primary keys, and
//! the same indexes (names, columns, unique, partial). A difference fails
//! here the day it is written, not the day a PostgreSQL deployment meets it.

use std::collections::{BTreeMap, BTreeSet};

use fengqiao::platform::db::Db;
use sqlx::Row;

use crate::helpers::{fresh_db, Backend};

/// Index column lists, with `<expr>` for an expression.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Index {
    table: String,
    /// The index's name; for one that backs a `unique` constraint, the
    /// columns instead: SQLite names those `sqlite_autoindex_<table>_<n>`
    /// and PostgreSQL `<table>_<column>_key`, an inherent difference.
    name: String,
    columns: Vec<String>,
    unique: bool,
    partial: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    /// table → column → (type family, not null).
    columns: BTreeMap<String, BTreeMap<String, (&'static str, bool)>>,
    primary_keys: BTreeMap<String, Vec<String>>,
    indexes: BTreeSet<Index>,
}

/// The coarse type families our migrations use: times are integers
/// (epoch milliseconds), flags are integers 0/1 on both, JSON is text.
fn family(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("timestamp") {
        "timestamp"
    } else if t.contains("bool") {
        "bool"
    } else if t.contains("int") {
        "integer"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("real") || t.contains("floa") || t.contains("doub") || t.contains("numeric") {
        "real"
    } else if t.contains("blob") || t.contains("bytea") {
        "blob"
    } else {
        "unknown"
    }
}

fn sqlite_shape(db: &Db) -> Shape {
    db.read_direct(|conn| {
        let mut shape = Shape::default();
        let tables: Vec<String> = conn
            .prepare("select name from sqlite_schema where type = 'table' and name not like 'sqlite_%'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for table in tables {
            let mut pk: Vec<(i64, String)> = vec![];
            let mut stmt = conn.prepare(&format!("pragma table_info(\"{table}\")"))?;
            let cols: Vec<(String, String, bool, i64)> = stmt
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(5)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (name, declared, not_null, pk_pos) in cols {
                if pk_pos > 0 {
                    pk.push((pk_pos, name.clone()));
                }
                // An `integer primary key` is the rowid: never null, though
                // SQLite does not mark it so.
                let not_null = not_null || pk_pos > 0;
                shape.columns.entry(table.clone()).or_default().insert(name, (family(&declared), not_null));
            }
            pk.sort();
            shape.primary_keys.insert(table.clone(), pk.into_iter().map(|(_, n)| n).collect());
            let mut stmt = conn.prepare(&format!("pragma index_list(\"{table}\")"))?;
            let list: Vec<(String, bool, String, bool)> = stmt
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (name, unique, origin, partial) in list {
                if origin == "pk" {
                    continue;
                }
                let mut stmt = conn.prepare(&format!("pragma index_info(\"{name}\")"))?;
                let columns: Vec<String> = stmt
                    .query_map([], |r| Ok(r.get::<_, Option<String>>(2)?.unwrap_or_else(|| "<expr>".into())))?
                    .collect::<rusqlite::Result<_>>()?;
                let name = if origin == "u" { format!("unique({})", columns.join(",")) } else { name };
                shape.indexes.insert(Index { table: table.clone(), name, columns, unique, partial });
            }
        }
        Ok(shape)
    })
    .expect("a SQLite database")
    .unwrap()
}

async fn pg_shape(db: &Db) -> Shape {
    let mut shape = Shape::default();
    let rows = sqlx::query(
        "select c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text from information_schema.columns c \
         join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name \
         where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for r in rows {
        let (table, column, declared, nullable): (String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        shape.columns.entry(table).or_default().insert(column, (family(&declared), nullable == "NO"));
    }
    // Every index of the schema's tables, its columns in order (0 is an
    // expression), and whether it backs a constraint.
    let rows = sqlx::query(
        "select t.relname::text, i.relname::text, x.indisunique, x.indisprimary, x.indpred is not null, \
                coalesce(con.contype::text, ''), \
                array_to_string(array(select coalesce(a.attname::text, '<expr>') \
                    from unnest(x.indkey::int2[]) with ordinality k(attnum, n) \
                    left join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum and k.attnum > 0 \
                    order by k.n), ',') \
         from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid \
         join pg_namespace ns on ns.oid = t.relnamespace \
         left join pg_constraint con on con.conindid = x.indexrelid and con.contype in ('p', 'u') \
         where ns.nspname = current_schema()",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for r in rows {
        let (table, name, unique, primary, partial, constraint, columns): (
            String,
            String,
            bool,
            bool,
            bool,
            String,
            String,
        ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6));
        let columns: Vec<String> = columns.split(',').map(String::from).collect();
        if primary {
            shape.primary_keys.insert(table, columns);
            continue;
        }
        let name = if constraint == "u" { format!("unique({})", columns.join(",")) } else { name };
        shape.indexes.insert(Index { table, name, columns, unique, partial });
    }
    for table in shape.columns.keys() {
        shape.primary_keys.entry(table.clone()).or_default();
    }
    shape
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_migration_sets_build_the_same_tables_columns_and_indexes() {
    let (sqlite, _dir) = fresh_db(Backend::Sqlite).await.unwrap();
    let Some((pg, _)) = fresh_db(Backend::Postgres).await else { return };
    let (s, p) = (sqlite_shape(&sqlite), pg_shape(&pg).await);
    assert!(s.columns.len() > 10 && !s.indexes.is_empty(), "the SQLite shape was read: {s:?}");

    let tables = |x: &Shape| x.columns.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(tables(&s), tables(&p), "tables");
    for (table, cols) in &s.columns {
        assert_eq!(Some(cols), p.columns.get(table), "columns of {table} (SQLite left, PostgreSQL right)");
    }
    assert_eq!(s.primary_keys, p.primary_keys, "primary keys");
    let only_sqlite: Vec<_> = s.indexes.difference(&p.indexes).collect();
    let only_pg: Vec<_> = p.indexes.difference(&s.indexes).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "indexes only on SQLite: {only_sqlite:#?}\nindexes only on PostgreSQL: {only_pg:#?}"
    );
}
