//! The notifications as an outbox subscriber (`notify`): each event of a
//! declared topic becomes a notice in the inbox of every person its
//! audiences resolve to. Delivery is at least once; the (user, event) key
//! makes a repeated delivery change nothing. Live streams on this server
//! are woken at once; those on other servers see the notice at their next
//! look (`pages::STREAM_POLL`).

use std::{sync::OnceLock, time::Duration};

use tokio::sync::broadcast;

use super::{rules, store};
use crate::{
    kernel::error::Result,
    platform::{
        db::Db,
        jobs::Backoff,
        notices,
        outbox::{Consumer, Event, Handler, Settings},
    },
};

/// The subscriber's name on its delivery rows.
pub const SUBSCRIBER: &str = "notify";

/// Wakes this server's live streams: the ids of users with a new notice.
pub fn hub() -> &'static broadcast::Sender<i64> {
    static HUB: OnceLock<broadcast::Sender<i64>> = OnceLock::new();
    HUB.get_or_init(|| broadcast::channel(1024).0)
}

/// Turns events into notices.
pub struct Deliver {
    pub db: Db,
}

impl Handler for Deliver {
    async fn handle(&self, event: &Event) -> Result<()> {
        let Some((kind, read)) = notices::of(&event.topic) else { return Ok(()) };
        let Some(subject) = read(&self.db, &event.payload).await? else { return Ok(()) };
        let mut resolved = vec![];
        for audience in kind.audience {
            resolved.extend(store::resolve(&self.db, *audience, &subject).await?);
        }
        let recipients = rules::recipients(resolved, event.payload["actor_id"].as_i64());
        let notice = store::NewNotice {
            event_id: event.id,
            topic: event.topic.clone(),
            object_type: subject.object_type,
            object_id: subject.object_id,
            body: rules::render(&kind, &subject),
            urgent: kind.urgent,
            at: event.created_at,
        };
        store::insert(&self.db, notice, recipients.clone()).await?;
        for user in recipients {
            // No stream listening is no error.
            let _ = hub().send(user);
        }
        Ok(())
    }
}

/// The subscriber as a job: every event of the topics the domains declared.
pub fn consumer(db: Db, every: Duration) -> Consumer<Deliver> {
    let settings = Settings {
        topic_prefix: String::new(),
        every,
        retry: Backoff { first: Duration::from_secs(5), max: Duration::from_secs(600) },
        subscriber: Some(SUBSCRIBER),
        ..Settings::default()
    };
    Consumer::new(db.clone(), "notify", Deliver { db }, settings)
}
