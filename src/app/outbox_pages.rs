//! The console page of events whose delivery was given up on
//! (投递失败事件): what they were, how often they were tried, the last
//! error, and a button that sends one again. Holders of `outbox.manage`
//! only.

use askama::Template;
use axum::{
    extract::State,
    http::Uri,
    response::{IntoResponse, Response},
};

use super::outbox_api::retry_audited;
use crate::{
    kernel::{error::Result, perm::Perm, principal::CurrentUser},
    platform::outbox::{self, DeadLetter},
    web::extract::page::Query,
    web::{alert, extract::page::Path, forbidden, hx_redirect, render, t, to_login, AppState, Msg as _, Shell},
};

/// One dead event as an administrator reads it.
pub struct Row {
    pub id: i64,
    /// Whose delivery it was: the subscriber's name, if not the webhook's.
    pub subscriber: Option<String>,
    /// The same in words (外部接口, 站内通知 …).
    pub channel: &'static str,
    /// What happened, in words: 工单事件 and its tracking code.
    pub what: String,
    pub created_at: i64,
    pub attempts: i64,
    pub finished_at: Option<i64>,
    pub last_error: String,
}

impl From<DeadLetter> for Row {
    fn from(d: DeadLetter) -> Row {
        let what = match (d.topic.split('.').next(), d.payload["tracking_code"].as_str()) {
            (Some("orders"), Some(code)) => format!("{}{code}", t("outbox.order_event")),
            _ => t("outbox.other_event").to_string(),
        };
        let channel = match d.subscriber.as_deref() {
            None => t("outbox.channel.webhook"),
            Some(name) => {
                let key = format!("outbox.channel.{name}");
                if crate::kernel::i18n::has(&key) {
                    t(&key)
                } else {
                    t("outbox.channel.other")
                }
            }
        };
        Row {
            id: d.id,
            subscriber: d.subscriber,
            channel,
            what,
            created_at: d.created_at,
            attempts: d.attempts,
            finished_at: d.finished_at,
            last_error: d.last_error.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/outbox.html")]
struct OutboxPage {
    shell: Shell,
    rows: Vec<Row>,
}

pub async fn page(State(s): State<AppState>, user: Option<CurrentUser>, uri: Uri) -> Result<Response> {
    let Some(user) = user else { return Ok(to_login(&uri)) };
    if !user.can(Perm::OutboxManage) {
        return Ok(forbidden());
    }
    let rows = outbox::dead_letters(&s.db, 200).await?.into_iter().map(Row::from).collect();
    Ok(render(&OutboxPage { shell: Shell { user, active: "outbox" }, rows }))
}

pub async fn retry(
    State(s): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<super::outbox_api::RetryQuery>,
) -> Response {
    if !user.can(Perm::OutboxManage) {
        return forbidden().into_response();
    }
    match retry_audited(&s, &user, id, q.subscriber).await {
        Ok(()) => hx_redirect("/admin/outbox"),
        Err(e) => alert(&e),
    }
}
