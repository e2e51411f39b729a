//! System administration pages (系统管理): the audit log with filters,
//! paging and CSV export. Administrators only; others get the 403 page.

use crate::web::extract::page::Query;
use askama::Template;
use axum::{
    extract::State,
    http::{header, Uri},
    response::{IntoResponse, Response},
};

use crate::web::{forbidden, render, t, to_login, Msg as _, Shell};
use crate::{
    audit::{
        self, action,
        labels::Labels,
        query::{self, AuditFilter},
        Actor, Entry, Object,
    },
    kernel::{
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    web::{AppState, ClientAddr},
};

/// One option of a filter drop-down.
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    shell: Shell,
    filter: AuditFilter,
    entries: Vec<Entry>,
    labels: Labels,
    total: i64,
    page: i64,
    pages: i64,
    actions: Vec<Choice>,
    object_types: Vec<Choice>,
    error: Option<String>,
}

impl AuditPage {
    fn value<'a>(&self, v: &'a Option<String>) -> &'a str {
        v.as_deref().unwrap_or("")
    }

    /// The current filters as a query string, for paging and export links.
    fn query(&self, page: i64) -> String {
        let f = &self.filter;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &f.actor),
            ("action", &f.action),
            ("object_type", &f.object_type),
            ("object_id", &f.object_id),
            ("from", &f.from),
            ("to", &f.to),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                q.append_pair(k, v);
            }
        }
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        q.finish()
    }

    fn object_label(&self, e: &Entry) -> String {
        self.labels.object(e)
    }

    fn actor_label(&self, e: &Entry) -> String {
        self.labels.actor(e)
    }

    fn actor_node(&self, e: &Entry) -> &str {
        self.labels.actor_node(e).unwrap_or("")
    }

    fn detail(&self, e: &Entry) -> Vec<(String, String)> {
        self.labels.detail(e)
    }

    fn total_label(&self) -> String {
        t("audit.total").replace("{}", &self.total.to_string())
    }

    fn page_label(&self) -> String {
        t("audit.page").replacen("{}", &self.page.to_string(), 1).replacen("{}", &self.pages.to_string(), 1)
    }
}

fn action_choices() -> Vec<Choice> {
    let groups =
        [("session.", "audit.group.session"), ("node.", "audit.group.node"), ("member.", "audit.group.member")];
    let mut v: Vec<Choice> =
        groups.iter().map(|(value, key)| Choice { value: value.to_string(), label: t(key).to_string() }).collect();
    v.extend(action::all().iter().map(|a| Choice { value: a.to_string(), label: audit::action_label(a) }));
    v
}

fn object_type_choices() -> Vec<Choice> {
    audit::OBJECT_TYPES
        .iter()
        .map(|o| Choice { value: o.to_string(), label: t(&format!("audit.object.{o}")).to_string() })
        .collect()
}

pub async fn audit_page(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(filter): Query<AuditFilter>,
) -> Result<Response> {
    let Some(user) = user else { return Ok(to_login(&uri)) };
    if !user.can(Perm::AuditRead) {
        return Ok(forbidden());
    }
    // A bad filter (e.g. a reversed date range) shows its message above an
    // empty result instead of an error page.
    let (entries, total, page, pages, error) = match query::search(&s.db, &user, &filter).await {
        Ok(p) => {
            let pages = p.pages();
            (p.entries, p.total, p.page, pages, None)
        }
        Err(e @ Error::Invalid { .. }) => (vec![], 0, 1, 1, Some(e.message())),
        Err(e) => return Err(e),
    };
    let labels = Labels::of(&s.db, &entries).await?;
    Ok(render(&AuditPage {
        shell: Shell { user, active: "audit" },
        filter,
        entries,
        labels,
        total,
        page,
        pages,
        actions: action_choices(),
        object_types: object_type_choices(),
        error,
    }))
}

/// The filtered log as CSV. Exporting is itself recorded.
pub async fn audit_csv(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    ClientAddr(addr): ClientAddr,
    Query(filter): Query<AuditFilter>,
) -> Result<Response> {
    let Some(user) = user else { return Ok(to_login(&uri)) };
    if !user.can(Perm::AuditRead) {
        return Ok(forbidden());
    }
    let csv = query::export_csv(&s.db, &user, &filter).await?;
    let detail = serde_json::json!({"filter": uri.query().unwrap_or("")});
    audit::record(
        &s.db,
        &Actor::user(&user, addr),
        action::AUDIT_EXPORT,
        Some(Object::new("audit_log", "csv")),
        None,
        detail,
    )
    .await?;
    let name = format!("audit-{}.csv", chrono::Utc::now().with_timezone(&audit::cst()).format("%Y%m%d-%H%M%S"));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        csv,
    )
        .into_response())
}
