//! Login lockout, counted per typed name: per (name, client address) pair,
//! which locks after `lockout_threshold` failures in a row, and per name
//! over all addresses, which locks after the far higher
//! `account_lockout_threshold`. Names that are no account are counted and
//! locked exactly like real ones, so neither the answer nor its timing tells
//! whether a name exists; and one address cannot lock anyone out, since its
//! own pair locks long before the account does. The counts live in the
//! database (`login_failures`), so every server node applies them; names
//! are stored only as their SHA-256.

use sqlx::Row;

use super::SecurityPolicy;
use crate::{kernel::error::Result, platform::db::Db};

/// The row that counts a name over all addresses.
const ALL_ADDRESSES: &str = "*";

/// The key of a typed name: as the login looks it up (trimmed), hashed.
pub fn name_key(typed: &str) -> String {
    super::hash_token(typed.trim())
}

fn addr_key(addr: Option<&str>) -> &str {
    addr.unwrap_or("")
}

/// Whether logins of this name from this address wait out a lockout.
pub async fn is_locked(db: &Db, key: &str, addr: Option<&str>, now: i64) -> Result<bool> {
    let locked: i64 = sqlx::query(
        "select count(*) from login_failures where name_hash = $1 and client_addr in ($2, $3) and locked_until > $4",
    )
    .bind(key)
    .bind(addr_key(addr))
    .bind(ALL_ADDRESSES)
    .bind(now)
    .fetch_one(&db.pool)
    .await?
    .try_get(0)?;
    Ok(locked > 0)
}

/// What a failure led to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// The pair (name, this address) is locked now.
    pub pair_locked: bool,
    /// The name is locked now from every address.
    pub account_locked: bool,
}

/// Counts a failed login of `key` from `addr`, locking the pair and the
/// name when their thresholds are reached. A count starts again when no
/// failure came for the lockout period. The same statements run whether
/// or not the name is an account; for an account, the lockout is also
/// written on its user row (`username`), where administrators see and
/// lift it.
pub async fn record_failure(
    db: &Db,
    policy: &SecurityPolicy,
    key: &str,
    username: &str,
    addr: Option<&str>,
    now: i64,
) -> Result<Counted> {
    let until = now + policy.lockout_ms();
    let _w = db.write_lock().await;
    let mut counted = Counted::default();
    for (row_addr, threshold) in
        [(addr_key(addr), policy.lockout_threshold), (ALL_ADDRESSES, policy.account_lockout_threshold)]
    {
        let failures: i64 = sqlx::query(
            "insert into login_failures (name_hash, client_addr, failures, last_failed_at) values ($1, $2, 1, $3) \
             on conflict (name_hash, client_addr) do update set \
               failures = case when login_failures.last_failed_at < $4 then 1 else login_failures.failures + 1 end, \
               last_failed_at = $3 \
             returning failures",
        )
        .bind(key)
        .bind(row_addr)
        .bind(now)
        .bind(now - policy.lockout_ms())
        .fetch_one(&db.pool)
        .await?
        .try_get(0)?;
        if failures >= threshold {
            sqlx::query(
                "update login_failures set failures = 0, locked_until = $1 where name_hash = $2 and client_addr = $3",
            )
            .bind(until)
            .bind(key)
            .bind(row_addr)
            .execute(&db.pool)
            .await?;
            if row_addr == ALL_ADDRESSES {
                counted.account_locked = true;
            } else {
                counted.pair_locked = true;
            }
        }
    }
    if counted.pair_locked || counted.account_locked {
        sqlx::query(
            "update users set locked_until = case when locked_until > $1 then locked_until else $1 end \
             where username = $2",
        )
        .bind(until)
        .bind(username.trim())
        .execute(&db.pool)
        .await?;
    }
    // Counts nobody added to for a lockout period, and lockouts that
    // passed, are forgotten.
    sqlx::query("delete from login_failures where last_failed_at < $1 and (locked_until is null or locked_until < $2)")
        .bind(now - policy.lockout_ms())
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(counted)
}

/// A success ends the name's failures in a row from this address and from
/// all together (others' counts from their own addresses stay).
pub async fn clear(db: &Db, key: &str, addr: Option<&str>) -> Result<()> {
    sqlx::query("delete from login_failures where name_hash = $1 and client_addr in ($2, $3)")
        .bind(key)
        .bind(addr_key(addr))
        .bind(ALL_ADDRESSES)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// An administrator lifts an account's lockouts (from every address).
pub async fn unlock(conn: &mut sqlx::AnyConnection, username: &str) -> Result<()> {
    sqlx::query("delete from login_failures where name_hash = $1").bind(name_key(username)).execute(&mut *conn).await?;
    Ok(())
}
