//! The inbox pages: the list (`/inbox` on the console, `/m/inbox` on the
//! field app) with mark read and mark all read, opening a notice (read, then
//! on to its object), and the live stream (`/inbox/stream`, server-sent
//! events) that keeps every page's bell and the open list current.

use std::{convert::Infallible, time::Duration};

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{
        sse::{Event as SseEvent, KeepAlive, Sse},
        IntoResponse, Redirect, Response,
    },
};
use serde::Deserialize;

use super::{deliver::hub, store, store::Notice};
use crate::{
    kernel::{error::Result, principal::CurrentUser},
    platform::db::now_ms,
    web::{
        extract::page::{Path, Query},
        hx_redirect, login_or_redirect, render, to_login, AppState, Msg as _, Shell,
    },
};

/// How often a live stream looks for notices made on other servers.
pub const STREAM_POLL: Duration = Duration::from_secs(5);
/// A stream ends after this long and the browser reconnects (from its last
/// event id), so a session that ended meanwhile is noticed.
const STREAM_LIFE: Duration = Duration::from_secs(600);

/// Where a notice's object is shown: on the console or on the field app.
pub fn link(n: &Notice, field: bool) -> String {
    match (n.object_type.as_str(), field) {
        ("order", false) => format!("/orders/{}", n.object_id),
        ("order", true) => format!("/m/orders/{}", n.object_id),
        _ => if field { "/m/inbox" } else { "/inbox" }.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListFilter {
    /// `1`: only the unread ones.
    #[serde(default)]
    pub unread: Option<String>,
}

impl ListFilter {
    fn unread_only(&self) -> bool {
        self.unread.as_deref() == Some("1")
    }
}

#[derive(Template)]
#[template(path = "notify/inbox.html")]
struct InboxPage {
    shell: Shell,
    notices: Vec<Notice>,
    unread: i64,
    unread_only: bool,
}

#[derive(Template)]
#[template(path = "notify/m_inbox.html")]
struct MobileInbox {
    user: CurrentUser,
    active: &'static str,
    notices: Vec<Notice>,
    unread: i64,
    unread_only: bool,
}

pub async fn inbox(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(f): Query<ListFilter>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let notices = store::list(&s.db, user.id, f.unread_only(), None, 100).await?;
    let (unread, _) = store::unread(&s.db, user.id).await?;
    Ok(render(&InboxPage { shell: Shell { user, active: "inbox" }, notices, unread, unread_only: f.unread_only() }))
}

pub async fn mobile_inbox(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(f): Query<ListFilter>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let notices = store::list(&s.db, user.id, f.unread_only(), None, 100).await?;
    let (unread, _) = store::unread(&s.db, user.id).await?;
    Ok(render(&MobileInbox { user, active: "inbox", notices, unread, unread_only: f.unread_only() }))
}

#[derive(Debug, Default, Deserialize)]
pub struct Opening {
    /// `1`: from the field app, to the field app's page of the object.
    #[serde(default)]
    pub m: Option<String>,
}

/// Opens a notice: marks it read and goes on to its object (whose page
/// checks the caller's scope as always). Someone else's notice is not found.
pub async fn open(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Path(id): Path<i64>,
    Query(o): Query<Opening>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    let notice = match store::mark_read(&s.db, user.id, id, now_ms()).await {
        Ok(n) => n,
        Err(e) => return crate::web::page_error(e, uri).await,
    };
    let _ = hub().send(user.id);
    Ok(Redirect::to(&link(&notice, o.m.as_deref() == Some("1"))).into_response())
}

#[derive(Template)]
#[template(path = "notify/_item.html")]
struct Item {
    n: Notice,
    field: bool,
}

/// Marks a notice read; answers the item as it now reads.
pub async fn read_one(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(o): Query<Opening>,
) -> Response {
    match store::mark_read(&s.db, user.id, id, now_ms()).await {
        Ok(n) => {
            let _ = hub().send(user.id);
            render(&Item { n, field: o.m.as_deref() == Some("1") })
        }
        Err(e) => crate::web::alert(&e),
    }
}

pub async fn read_all(State(s): State<AppState>, user: CurrentUser, Query(o): Query<Opening>) -> Response {
    match store::mark_all_read(&s.db, user.id, now_ms()).await {
        Ok(_) => {
            let _ = hub().send(user.id);
            hx_redirect(if o.m.as_deref() == Some("1") { "/m/inbox" } else { "/inbox" })
        }
        Err(e) => crate::web::alert(&e),
    }
}

#[derive(Template)]
#[template(
    source = r#"<span class="bell-n{% if unread == 0 %} zero{% endif %}" data-unread="{{ unread }}">{% if unread > 99 %}99+{% else if unread > 0 %}{{ unread }}{% endif %}</span>"#,
    ext = "html"
)]
struct Bell {
    unread: i64,
}

/// What the stream has to say next.
struct Stream {
    db: crate::platform::db::Db,
    user: i64,
    /// The newest notice id sent (or the client had).
    last: i64,
    /// The unread count last sent; none before the first.
    count: Option<i64>,
    rx: tokio::sync::broadcast::Receiver<i64>,
    queue: std::collections::VecDeque<SseEvent>,
    until: tokio::time::Instant,
}

impl Stream {
    /// Queues what changed: the notices after the last one sent (oldest
    /// first) and the bell, if its count or the newest notice changed.
    async fn look(&mut self) -> Result<()> {
        let (unread, newest) = store::unread(&self.db, self.user).await?;
        if self.last > 0 && newest > self.last {
            for n in store::since(&self.db, self.user, self.last, 50).await? {
                let html = Item { n: n.clone(), field: false }.render().map_err(anyhow::Error::from)?;
                self.queue
                    .push_back(SseEvent::default().event("item").id(n.id.to_string()).data(html.replace('\n', "")));
            }
        }
        if self.count != Some(unread) || newest > self.last {
            let html = Bell { unread }.render().map_err(anyhow::Error::from)?;
            self.queue.push_back(SseEvent::default().event("bell").id(newest.max(self.last).to_string()).data(html));
        }
        self.count = Some(unread);
        self.last = newest.max(self.last);
        Ok(())
    }

    /// Waits until this user may have news: a wake-up for them on this
    /// server, or the poll interval for news from other servers.
    async fn wait(&mut self) -> bool {
        let poll = tokio::time::sleep(STREAM_POLL);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                _ = &mut poll => return true,
                _ = tokio::time::sleep_until(self.until) => return false,
                got = self.rx.recv() => match got {
                    Ok(u) if u == self.user => return true,
                    Ok(_) => {}
                    // Missed wake-ups: look anyway.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                },
            }
        }
    }
}

/// The caller's live stream: `bell` events carry the bell's new count,
/// `item` events each new notice as a list item; every event's id is the
/// newest notice id, so a browser that reconnects (`Last-Event-ID`) gets
/// the notices it missed first.
pub async fn stream(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(user) = user else {
        return if uri.path().starts_with("/inbox") {
            StatusCode::UNAUTHORIZED.into_response()
        } else {
            to_login(&uri)
        };
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0);
    let state = Stream {
        db: s.db.clone(),
        user: user.id,
        last,
        count: None,
        rx: hub().subscribe(),
        queue: Default::default(),
        until: tokio::time::Instant::now() + STREAM_LIFE,
    };
    let events = futures_util::stream::unfold((state, true), |(mut st, first)| async move {
        loop {
            if let Some(e) = st.queue.pop_front() {
                return Some((Ok::<_, Infallible>(e), (st, false)));
            }
            if !first && !st.wait().await {
                return None;
            }
            if let Err(e) = st.look().await {
                tracing::warn!(error = %e, "inbox stream failed");
                return None;
            }
            if first && st.queue.is_empty() {
                // Nothing to say yet; wait from now on.
                return Some((Ok(SseEvent::default().comment("ready")), (st, false)));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(20))).into_response()
}
