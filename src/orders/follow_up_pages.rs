//! 回访 (follow-up calls) in the console: the list of closed orders whose
//! reporter is still to be called, and showing a reporter's full contact
//! with a stated reason (audited) on the pages that offer a call.

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{
    extract::State,
    http::Uri,
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use crate::web::{login_or_redirect, render, to_login, Msg as _, Shell};
use crate::{
    kernel::{error::Result, principal::CurrentUser},
    orders::{
        api::may_see_contact,
        store::{self, OrderView},
    },
    web::{AppState, ClientAddr},
};

use super::pages::askama_escape;

#[derive(Template)]
#[template(path = "orders/follow_ups.html")]
struct FollowUpsPage {
    shell: Shell,
    orders: Vec<OrderView>,
    total: i64,
    page: i64,
    pages: i64,
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    pub page: Option<i64>,
}

/// 回访: orders of the person's area closed in the last 30 days whose
/// reporter left a contact and was not reached yet, the longest waiting first.
pub async fn list(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    if !may_see_contact(&user) {
        return Ok(crate::web::forbidden());
    }
    let page = store::awaiting_follow_up(&s.db, &s.clock(), &user, q.page.unwrap_or(1), 20).await?;
    let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
    let orders = page.orders.into_iter().map(|o| o.for_reader(&user)).collect();
    Ok(render(&FollowUpsPage {
        shell: Shell { user, active: "follow_ups" },
        orders,
        total: page.total,
        page: page.page,
        pages,
    }))
}

/// The resident's own rating (评单) as shown: 满意, 基本满意, 不满意.
pub fn rating_label(rating: &str) -> &'static str {
    crate::kernel::i18n::t(&format!("order.rating.{rating}"))
}

#[derive(Deserialize, Default)]
pub struct ContactForm {
    #[serde(default)]
    pub reason: String,
}

/// Shows the reporter's full contact in place of the masked one, with a
/// button that calls it: only for those who may, only with a reason, and
/// recorded in the audit log before the number leaves (as the API does).
pub async fn reveal_contact(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<ContactForm>,
) -> Response {
    let r = super::api::reveal_contact(&s, &user, addr, id, &f.reason).await;
    match r {
        // The number and its call button take the place of the whole line
        // (the masked number and the reason form); errors show in the form.
        Ok(shown) => {
            let html = match shown {
                Some(contact) => {
                    let dial: String =
                        contact.chars().filter(|ch| ch.is_ascii_digit() || *ch == '+' || *ch == '-').collect();
                    format!(
                        "<span class=\"contact-full\"><b>{}</b> <a class=\"button primary call\" href=\"tel:{}\">{}</a></span>",
                        askama_escape(&contact),
                        askama_escape(&dial),
                        crate::web::t("follow_up.call")
                    )
                }
                None => format!("<span class=\"muted\">{}</span>", crate::web::t("follow_up.no_contact")),
            };
            let target = format!("#contact-line-{id}");
            ([("HX-Retarget", target.as_str()), ("HX-Reswap", "outerHTML")], Html(html)).into_response()
        }
        Err(e) => {
            if e.status().is_server_error() {
                tracing::error!(error = %e, "contact reveal failed");
            }
            Html(format!("<p class=\"alert\" role=\"alert\">{}</p>", askama_escape(&e.message()))).into_response()
        }
    }
}
