//! Embedded migrations, one list per backend, applied in order at start.

use super::{now_ms, Backend, Db};
use sqlx::Row;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:expr, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../../../migrations/postgres/", $name, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_core"),
    migration!(2, "0002_orders"),
    migration!(3, "0003_order_counts"),
    migration!(4, "0004_attachments"),
    migration!(101, "0101_privacy_audit"),
    migration!(102, "0102_identity"),
    migration!(103, "0103_order_contact"),
    migration!(104, "0104_order_category_scope"),
    migration!(105, "0105_active_node"),
    migration!(106, "0106_member_id_number"),
    migration!(107, "0107_orders_node_path"),
    migration!(108, "0108_dispatch_rules"),
    migration!(109, "0109_order_assists"),
    migration!(110, "0110_audit_keyed_chain"),
    migration!(114, "0114_login_failures"),
    migration!(115, "0115_outbox"),
    migration!(120, "0120_portal_evaluations"),
    migration!(140, "0140_queue_priority"),
    migration!(150, "0150_field_follow_up"),
    migration!(155, "0155_export_jobs"),
    migration!(156, "0156_assessment"),
    migration!(170, "0170_outbox_deliveries"),
    migration!(171, "0171_notifications"),
];

/// Applies pending migrations. On PostgreSQL an advisory lock keeps several
/// nodes starting at once from racing; SQLite serialises writers anyway.
pub async fn migrate(db: &Db) -> anyhow::Result<usize> {
    let mut conn = db.pool.acquire().await?;
    if db.backend == Backend::Postgres {
        sqlx::query("select pg_advisory_lock(7301945)").execute(&mut *conn).await?;
    }
    let result = apply(db.backend, &mut conn).await;
    if db.backend == Backend::Postgres {
        sqlx::query("select pg_advisory_unlock(7301945)").execute(&mut *conn).await?;
    }
    result
}

async fn apply(backend: Backend, conn: &mut sqlx::AnyConnection) -> anyhow::Result<usize> {
    sqlx::raw_sql(
        "create table if not exists fq_migrations (
            version bigint primary key,
            name text not null,
            applied_at bigint not null
        )",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<i64> = sqlx::query("select version from fq_migrations")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect();
    let mut count = 0;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| anyhow::anyhow!("migration {} failed: {e}", m.name))?;
        sqlx::query("insert into fq_migrations (version, name, applied_at) values ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(migration = m.name, "applied");
        count += 1;
    }
    Ok(count)
}
