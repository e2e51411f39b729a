//! The category catalogue (事项分类与时限): each category's owning
//! department and its time limits, listed for administrators and edited
//! one category at a time.

use askama::Template;
use axum::{
    extract::{Path, Query, State},
    http::Uri,
    response::Response,
};
use axum_extra::extract::Form;
use serde::Deserialize;
use sqlx::Row;

use super::{alert, hx_redirect, pages::Shell, render, t, to_login, Msg as _};
use crate::{
    auth::{CurrentUser, Perm},
    error::{Error, Result},
    http::{AppState, ClientAddr},
    orders::{
        api::{categories, save_category, Category, CategoryInput},
        clock::TimeLimit,
    },
};

/// A department a matter can belong to: its key and name.
pub struct Department {
    pub key: String,
    pub name: String,
}

async fn departments(s: &AppState) -> Result<Vec<Department>> {
    let rows = sqlx::query(
        "select code, name from units where kind = 'department' and status = 'active' and code like 'dept:%' \
         order by code",
    )
    .fetch_all(&s.db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let code: String = r.try_get(0)?;
            Ok(Department { key: code.trim_start_matches("dept:").to_string(), name: r.try_get(1)? })
        })
        .collect()
}

/// A limit as people write it: "2 工作时", "5 工作日", "12 小时".
pub fn limit_text(l: &TimeLimit) -> String {
    let (n, unit) = limit_parts(l);
    format!("{n} {}", t(&format!("category.unit.{unit}")))
}

fn limit_parts(l: &TimeLimit) -> (u32, &'static str) {
    match *l {
        TimeLimit::WorkingDays(n) => (n, "working_days"),
        TimeLimit::WorkingHours(n) => (n, "working_hours"),
        TimeLimit::CalendarHours(n) => (n, "calendar_hours"),
    }
}

pub const UNITS: [&str; 3] = ["working_days", "working_hours", "calendar_hours"];
/// The limits of a category, as (form field prefix, label key).
pub const LIMITS: [(&str, &str); 4] = [
    ("sign", "category.sign_limit"),
    ("handle", "category.handle_limit"),
    ("urgent", "category.urgent_handle_limit"),
    ("evaluate", "category.evaluate_limit"),
];

#[derive(Template)]
#[template(path = "admin/categories.html")]
struct CategoriesPage {
    shell: Shell,
    groups: Vec<(Category, Vec<Category>)>,
    departments: Vec<Department>,
    saved: Option<String>,
}

impl CategoriesPage {
    fn owner_name(&self, c: &Category) -> String {
        match &c.owner_unit {
            None => t("category.owner_none").to_string(),
            Some(k) => self.departments.iter().find(|d| &d.key == k).map_or_else(|| k.clone(), |d| d.name.clone()),
        }
    }
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// The catalogue, grouped under its four top-level categories.
pub async fn list(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<SavedQuery>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::CalendarWrite);
    let all = categories(&s.db).await?;
    let mut groups: Vec<(Category, Vec<Category>)> = vec![];
    let (tops, subs): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.parent_code.is_none());
    for top in tops {
        let items = subs.iter().filter(|c| c.parent_code.as_deref() == Some(&top.code)).cloned().collect();
        groups.push((top, items));
    }
    let departments = departments(&s).await?;
    Ok(render(&CategoriesPage { shell: Shell { user, active: "categories" }, groups, departments, saved: q.saved }))
}

#[derive(Template)]
#[template(path = "admin/category.html")]
struct CategoryPage {
    shell: Shell,
    c: Category,
    departments: Vec<Department>,
}

impl CategoryPage {
    /// The current limit behind a form prefix, as (amount, unit).
    fn current(&self, prefix: &str) -> (u32, &'static str) {
        limit_parts(match prefix {
            "sign" => &self.c.sign_limit,
            "handle" => &self.c.handle_limit,
            "urgent" => &self.c.urgent_handle_limit,
            _ => &self.c.evaluate_limit,
        })
    }
}

/// One category's edit form.
pub async fn edit(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Path(code): Path<String>,
) -> Result<Response> {
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::CalendarWrite);
    let c = categories(&s.db).await?.into_iter().find(|c| c.code == code).ok_or(Error::NotFound)?;
    let departments = departments(&s).await?;
    Ok(render(&CategoryPage { shell: Shell { user, active: "categories" }, c, departments }))
}

#[derive(Deserialize)]
pub struct CategoryForm {
    name: String,
    owner_unit: String,
    sign_amount: String,
    sign_unit: String,
    handle_amount: String,
    handle_unit: String,
    urgent_amount: String,
    urgent_unit: String,
    evaluate_amount: String,
    evaluate_unit: String,
}

/// A limit from its two form fields; the error names the API's field.
fn form_limit(amount: &str, unit: &str, field: &'static str) -> Result<TimeLimit> {
    let n: u32 = amount.trim().parse().map_err(|_| Error::invalid("category.bad_limit", field))?;
    match unit {
        "working_days" => Ok(TimeLimit::WorkingDays(n)),
        "working_hours" => Ok(TimeLimit::WorkingHours(n)),
        "calendar_hours" => Ok(TimeLimit::CalendarHours(n)),
        _ => Err(Error::invalid("category.bad_limit", field)),
    }
}

/// htmx: saves the form through the same checks as the API.
pub async fn save(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(code): Path<String>,
    Form(f): Form<CategoryForm>,
) -> Response {
    let r = async {
        let input = CategoryInput {
            name: f.name,
            owner_unit: Some(f.owner_unit).filter(|k| !k.is_empty()),
            sign_limit: form_limit(&f.sign_amount, &f.sign_unit, "sign_limit")?,
            handle_limit: form_limit(&f.handle_amount, &f.handle_unit, "handle_limit")?,
            urgent_handle_limit: form_limit(&f.urgent_amount, &f.urgent_unit, "urgent_handle_limit")?,
            evaluate_limit: form_limit(&f.evaluate_amount, &f.evaluate_unit, "evaluate_limit")?,
        };
        save_category(&s, &user, addr, code, input).await
    }
    .await;
    match r {
        Ok(c) => hx_redirect(&format!("/admin/categories?saved={}", c.code)),
        Err(e) => alert(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_people_write_them() {
        assert_eq!(limit_text(&TimeLimit::WorkingHours(2)), "2 工作时");
        assert_eq!(limit_text(&TimeLimit::WorkingDays(7)), "7 工作日");
        assert_eq!(limit_text(&TimeLimit::CalendarHours(12)), "12 小时");
        assert!(form_limit("x", "working_days", "sign_limit").is_err());
        assert!(form_limit("3", "weeks", "sign_limit").is_err());
        assert_eq!(form_limit(" 3 ", "working_hours", "sign_limit").unwrap(), TimeLimit::WorkingHours(3));
        for (_, key) in LIMITS {
            assert_ne!(t(key), key, "{key} has a message");
        }
        for u in UNITS {
            assert_ne!(t(&format!("category.unit.{u}")), u);
        }
    }
}
