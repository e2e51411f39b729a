//! Settings edited by administrators (`settings`: one JSON value per key),
//! read where they are used and written under the write lock.

use serde::{de::DeserializeOwned, Serialize};
use sqlx::Row;

use super::{now_ms, Db};
use crate::kernel::error::Result;

/// The stored value of `key`, if any.
pub async fn get<T: DeserializeOwned>(db: &Db, key: &str) -> Result<Option<T>> {
    let row = sqlx::query("select value from settings where key = $1").bind(key).fetch_optional(&db.pool).await?;
    match row {
        Some(r) => Ok(Some(serde_json::from_str(&r.try_get::<String, _>(0)?).map_err(anyhow::Error::from)?)),
        None => Ok(None),
    }
}

/// Stores `value` under `key`, replacing what was there.
pub async fn put<T: Serialize>(db: &Db, key: &str, value: &T) -> Result<()> {
    let value = serde_json::to_string(value).map_err(anyhow::Error::from)?;
    let _w = db.write_lock().await;
    sqlx::query(
        "insert into settings (key, value, updated_at) values ($1, $2, $3) \
         on conflict (key) do update set value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}
