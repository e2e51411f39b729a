//! Key rotation and sealing of data that predates encryption.
//!
//! Rotation first persists a new active key (old keys stay in the ring, so
//! nothing becomes unreadable if the process stops half-way), then
//! re-encrypts every encrypted column in batches, one transaction each. An
//! update only applies if the row still holds the ciphertext that was read,
//! so a concurrent edit is never overwritten with stale data.

use sqlx::Row;

use super::{Crypto, Field};
use crate::platform::db::Db;

/// One encrypted column: where it lives and which `Field` sealed it.
pub struct EncryptedColumn {
    pub table: &'static str,
    pub column: &'static str,
    pub field: Field,
}

pub const BATCH: i64 = 500;

#[derive(Debug, Default)]
pub struct RotateReport {
    pub new_key_id: String,
    /// (table.column, rows re-encrypted)
    pub columns: Vec<(String, u64)>,
}

impl std::fmt::Display for RotateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "新密钥 {} 已启用", self.new_key_id)?;
        for (col, n) in &self.columns {
            write!(f, ";{col} 重新加密 {n} 条")?;
        }
        Ok(())
    }
}

/// Generates a new active key and re-encrypts `columns` under it: every
/// encrypted column of the schema, as the domains declare them
/// (`app::encrypted_columns`).
pub async fn rotate(db: &Db, crypto: &Crypto, columns: &[&EncryptedColumn]) -> anyhow::Result<RotateReport> {
    seal_pending(db, crypto).await?;
    let new_key_id = crypto.add_active_key()?;
    let mut report = RotateReport { new_key_id, columns: vec![] };
    for col in columns {
        let n = reencrypt_column(db, crypto, col).await?;
        report.columns.push((format!("{}.{}", col.table, col.column), n));
    }
    Ok(report)
}

/// Re-encrypts the rows of one column not yet under the active key.
pub async fn reencrypt_column(db: &Db, crypto: &Crypto, col: &EncryptedColumn) -> anyhow::Result<u64> {
    let active_prefix = format!("v1:{}:%", crypto.active_key_id());
    let select = format!(
        "select id, {c} from {t} where {c} is not null and {c} not like $1 and id > $2 order by id limit $3",
        t = col.table,
        c = col.column
    );
    let update = format!("update {t} set {c} = $1 where id = $2 and {c} = $3", t = col.table, c = col.column);
    let mut total = 0;
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(&select).bind(&active_prefix).bind(after).bind(BATCH).fetch_all(&db.pool).await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0)?;
        let mut tx = db.pool.begin().await?;
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let old: String = row.try_get(1)?;
            let plain = crypto
                .decrypt(col.field, &old)
                .map_err(|e| anyhow::anyhow!("{}.{} 第 {id} 行无法解密:{e}", col.table, col.column))?;
            let new = crypto.encrypt(col.field, &plain)?;
            total += sqlx::query(&update).bind(new).bind(id).bind(&old).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
    }
    Ok(total)
}

/// Encrypts member mobile numbers still waiting in plain text (rows from
/// before migration 0101) and clears the plain column. Idempotent; run at
/// every start.
/// Reporters' contacts stored before they were encrypted.
async fn seal_order_contacts(db: &Db, crypto: &Crypto) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let rows = sqlx::query(
            "select id, reporter_contact from orders where reporter_contact is not null \
             and reporter_contact not like 'v1:%' order by id limit $1",
        )
        .bind(BATCH)
        .fetch_all(&db.pool)
        .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let mut tx = db.pool.begin().await?;
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let plain: String = row.try_get(1)?;
            sqlx::query("update orders set reporter_contact = $1, reporter_contact_masked = $2 where id = $3")
                .bind(crypto.encrypt(Field::ORDER_CONTACT, &plain)?)
                .bind(mask_contact(&plain))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        total += rows.len() as u64;
    }
}

/// How a contact shows in lists: a mobile number as `139****1111`, anything
/// else with only its first and last two characters.
pub fn mask_contact(contact: &str) -> String {
    if let Ok(m) = crate::kernel::codes::MobilePhone::parse(contact) {
        return m.masked();
    }
    let chars: Vec<char> = contact.chars().collect();
    if chars.len() <= 4 {
        return "****".into();
    }
    format!("{}****{}", chars[0], chars[chars.len() - 2..].iter().collect::<String>())
}

pub async fn seal_pending(db: &Db, crypto: &Crypto) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let rows = sqlx::query(
            "select id, mobile_plain from node_members where mobile_plain is not null order by id limit $1",
        )
        .bind(BATCH)
        .fetch_all(&db.pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut tx = db.pool.begin().await?;
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let plain: String = row.try_get(1)?;
            let mobile = crate::kernel::codes::MobilePhone::parse(&plain)
                .map_err(|e| anyhow::anyhow!("node_members 第 {id} 行的手机号无效:{e}"))?;
            let sealed = crypto.seal_mobile(&mobile)?;
            sqlx::query("update node_members set mobile_enc = $1, mobile_idx = $2, mobile_plain = null where id = $3")
                .bind(sealed.enc)
                .bind(sealed.idx)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        total += rows.len() as u64;
    }
    total += seal_order_contacts(db, crypto).await?;
    if total > 0 {
        tracing::info!(rows = total, "sealed plain-text personal data");
        // The old plain text may linger in free pages of an SQLite file
        // and in old frames of its log.
        if db.backend == crate::platform::db::Backend::Sqlite {
            sqlx::query("vacuum").execute(&db.pool).await?;
            db.truncate_sqlite_log().await?;
        }
    }
    Ok(total)
}
