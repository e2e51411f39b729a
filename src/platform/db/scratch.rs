//! Throw-away databases for benchmarks and tests.

use super::{Db, DbUrl};
use crate::platform::db;

/// A fresh database for a benchmark or a test: a temporary SQLite file, or a new
/// schema in the given PostgreSQL database (dropped afterwards).
pub struct Scratch {
    pub db: Db,
    pg_schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Scratch {
    pub async fn sqlite() -> anyhow::Result<Scratch> {
        Scratch::sqlite_with(db::SqliteOptions::default()).await
    }

    pub async fn sqlite_with(options: db::SqliteOptions) -> anyhow::Result<Scratch> {
        let dir = tempfile::tempdir()?;
        let url: DbUrl = format!("sqlite://{}", dir.path().join("bench.db").display()).parse()?;
        let db = Db::connect_with(&url, options).await?;
        db::migrate(&db).await?;
        Ok(Scratch { db, pg_schema: None, _dir: Some(dir) })
    }

    pub async fn postgres(base: &str) -> anyhow::Result<Scratch> {
        let schema = format!("fq_bench_{}", &crate::platform::crypto::random_token()[..12]);
        let admin = Db::connect(&base.parse()?).await?;
        sqlx::query(&format!("create schema {schema}")).execute(&admin.pool).await?;
        admin.pool.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url: DbUrl = format!("{base}{sep}options=-c%20search_path%3D{schema}").parse()?;
        let db = Db::connect(&url).await?;
        db::migrate(&db).await?;
        Ok(Scratch { db, pg_schema: Some((base.to_string(), schema)), _dir: None })
    }

    pub async fn cleanup(self) -> anyhow::Result<()> {
        self.db.pool.close().await;
        if let Some((base, schema)) = self.pg_schema {
            let admin = Db::connect(&base.parse()?).await?;
            sqlx::query(&format!("drop schema {schema} cascade")).execute(&admin.pool).await?;
        }
        Ok(())
    }
}
