//! Deadline timers. Deadlines live in the orders table; a job on every
//! node polls for expired ones and reports them to the state machine as the
//! system. The action carries the version it read, so when two nodes see
//! the same deadline only one update succeeds: each fires exactly once.

use std::time::Duration;

use sqlx::Row;

use super::{
    machine::Action,
    store::{self, ActRequest, Actor},
};
use crate::{kernel::error::Error, platform::db::now_ms, web::AppState};

/// What to do once a deadline has passed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules {
    /// Escalate an order to the next level when its handling deadline passes.
    pub escalate_overdue: bool,
}

/// Fires every expired deadline once; returns how many actions it took.
pub async fn tick(state: &AppState, rules: Rules) -> Result<usize, Error> {
    let now = now_ms();
    let rows = sqlx::query(
        "select id, state, version from orders where deadline_at is not null and deadline_at <= $1 \
         and paused_at is null and overdue = 0 and state in ('pending_sign','handling','pending_evaluation') \
         order by deadline_at limit 200",
    )
    .bind(now)
    .fetch_all(&state.db.pool)
    .await?;
    let clock = state.clock();
    let mut fired = 0;
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let st: String = row.try_get("state")?;
        let version: i64 = row.try_get("version")?;
        let order = match store::get_unscoped(&state.db, &clock, id).await {
            Ok(o) if o.version == version => o,
            _ => continue,
        };
        let action = if st == "pending_evaluation" { Action::Archive } else { Action::MarkOverdue };
        match store::act(&state.db, &clock, Actor::System, &order, &ActRequest { version, action }).await {
            Ok(after) => {
                fired += 1;
                if rules.escalate_overdue && st == "handling" {
                    let req = ActRequest {
                        version: after.version,
                        action: Action::Escalate {
                            reason: crate::kernel::i18n::t("order.auto_escalate_reason").into(),
                        },
                    };
                    if store::act(&state.db, &clock, Actor::System, &after, &req).await.is_ok() {
                        fired += 1;
                    }
                }
            }
            // Another node fired it first, or someone acted meanwhile.
            Err(Error::Conflict { .. }) => {}
            Err(e) => tracing::warn!(order = id, error = %e, "deadline action failed"),
        }
    }
    Ok(fired)
}

/// The deadline timers as a job: each step fires the deadlines expired
/// by then.
pub struct Deadlines {
    pub state: AppState,
    pub rules: Rules,
    pub every: Duration,
}

impl crate::platform::jobs::Job for Deadlines {
    fn name(&self) -> &'static str {
        "deadlines"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn run_once(&self) -> Result<crate::platform::jobs::Outcome, Error> {
        use crate::platform::jobs::Outcome;
        match tick(&self.state, self.rules).await? {
            0 => Ok(Outcome::Idle),
            n => {
                tracing::info!(actions = n, "deadlines fired");
                Ok(Outcome::Worked)
            }
        }
    }
}
