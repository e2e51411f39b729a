//! The holiday calendar in the database, and the clock built from it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::kernel::clock::{Calendar, CalendarEntry, Clock, DayKind, WorkingHours};
use crate::{
    kernel::error::{Result, ResultExt},
    platform::db::Db,
};

pub async fn load_clock(db: &Db) -> Result<Clock> {
    let mut cal = Calendar::new();
    for e in entries(db, None).await? {
        if let (Ok(date), Some(kind)) = (NaiveDate::parse_from_str(&e.day, "%Y-%m-%d"), DayKind::parse(&e.kind)) {
            cal.set(CalendarEntry::new(date, kind, e.name));
        }
    }
    Ok(Clock::new(cal, WorkingHours::default()))
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Day {
    /// YYYY-MM-DD
    pub day: String,
    /// `holiday` (day off) or `workday` (调休 make-up working day)
    pub kind: String,
    pub name: String,
}

pub async fn entries(db: &Db, year: Option<i32>) -> Result<Vec<Day>> {
    let prefix = year.map(|y| format!("{y}-")).unwrap_or_default();
    let rows = sqlx::query("select day, kind, name from calendar_days where day like $1 || '%' order by day")
        .bind(prefix)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(|r| Ok(Day { day: r.try_get(0)?, kind: r.try_get(1)?, name: r.try_get(2)? })).collect()
}

/// Replaces the given days (an import or one edit) in one transaction.
pub async fn upsert(db: &Db, days: &[CalendarEntry]) -> Result<usize> {
    let mut tx = db.begin_write().await?;
    for d in days {
        let day = d.date.format("%Y-%m-%d").to_string();
        sqlx::query("delete from calendar_days where day = $1").bind(&day).execute(&mut *tx).await?;
        sqlx::query("insert into calendar_days (day, kind, name) values ($1, $2, $3)")
            .bind(&day)
            .bind(d.kind.as_str())
            .bind(&d.name)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(days.len())
}

pub async fn remove(db: &Db, day: NaiveDate) -> Result<()> {
    sqlx::query("delete from calendar_days where day = $1")
        .bind(day.format("%Y-%m-%d").to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Parses an import: the CSV of `date,kind,name` or an iCal feed.
pub fn parse_import(text: &str) -> Result<Vec<CalendarEntry>> {
    if text.trim_start().starts_with("BEGIN:VCALENDAR") {
        Calendar::from_ical(text).field("body")
    } else {
        Ok(Calendar::from_csv(text).field("body")?.entries().cloned().collect())
    }
}

/// Rebuilds the clock after a calendar change and applies it on this node.
pub async fn reload(s: &crate::web::AppState) -> Result<()> {
    s.replace_clock(load_clock(&s.db).await?);
    s.db.settings_changed().await
}
