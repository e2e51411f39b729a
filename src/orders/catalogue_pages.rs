//! The category catalogue (事项分类与时限): each category's owning
//! department and its time limits, listed for administrators and edited
//! one category at a time.

use crate::web::extract::page::{Form, Path, Query};
use askama::Template;
use axum::{extract::State, http::Uri, response::Response};
use serde::Deserialize;
use sqlx::Row;

use crate::web::{alert, hx_redirect, login_or_redirect, render, require_page, t, to_login, Msg as _, Shell};
use crate::{
    kernel::{
        clock::TimeLimit,
        error::{Error, Result},
        perm::Perm,
        principal::CurrentUser,
    },
    orders::api::{categories, save_category, Category, CategoryInput},
    web::{AppState, ClientAddr},
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

/// The catalogue under its top-level categories, in catalogue order.
pub fn grouped(all: Vec<Category>) -> Vec<(Category, Vec<Category>)> {
    let (tops, subs): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.parent_code.is_none());
    tops.into_iter()
        .map(|top| {
            let items = subs.iter().filter(|c| c.parent_code.as_deref() == Some(&top.code)).cloned().collect();
            (top, items)
        })
        .collect()
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
    let groups = grouped(categories(&s.db).await?);
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
    /// 即报即办 (`none`, `normal`, `any`).
    #[serde(default)]
    on_spot: Option<String>,
    owner_unit: String,
    sign_amount: String,
    sign_unit: String,
    handle_amount: String,
    handle_unit: String,
    urgent_amount: String,
    urgent_unit: String,
    evaluate_amount: String,
    evaluate_unit: String,
    /// The checkbox: present when ticked.
    resident_facing: Option<String>,
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
            resident_facing: Some(f.resident_facing.is_some()),
            on_spot: f.on_spot,
        };
        save_category(&s, &user, addr, code, input).await
    }
    .await;
    match r {
        Ok(c) => hx_redirect(&format!("/admin/categories?saved={}", c.code)),
        Err(e) => alert(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// The working-day calendar (节假日与调休)
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/calendar.html")]
struct CalendarPage {
    shell: Shell,
    year: i32,
    years: Vec<i32>,
    covered: bool,
    days: Vec<crate::orders::calendar::Day>,
    saved: bool,
}

impl CalendarPage {
    fn weekday(&self, day: &str) -> &'static str {
        use chrono::Datelike;
        match chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
            Ok(d) => t(&format!("calendar.weekday.{}", d.weekday().number_from_monday())),
            Err(_) => "",
        }
    }
}

#[derive(Deserialize)]
pub struct CalendarQuery {
    year: Option<i32>,
    saved: Option<String>,
}

/// One year's holidays and make-up working days, with forms to add a day or import a file.
pub async fn calendar_page(
    State(s): State<AppState>,
    user: Option<CurrentUser>,
    uri: Uri,
    Query(q): Query<CalendarQuery>,
) -> Result<Response> {
    use chrono::Datelike;
    let user = login_or_redirect!(user, uri);
    require_page!(user, Perm::CalendarWrite);
    let this_year = chrono::Utc::now().with_timezone(&crate::kernel::clock::CHINA_STANDARD_TIME).year();
    let covered_years: std::collections::BTreeSet<i32> = s.clock().calendar().covered_years().into_iter().collect();
    let year = q.year.filter(|y| (2000..=2100).contains(y)).unwrap_or(this_year);
    let mut years: std::collections::BTreeSet<i32> = covered_years.clone();
    years.extend([this_year, this_year + 1, year]);
    let days = crate::orders::calendar::entries(&s.db, Some(year)).await?;
    Ok(render(&CalendarPage {
        shell: Shell { user, active: "calendar" },
        year,
        years: years.into_iter().collect(),
        covered: covered_years.contains(&year),
        days,
        saved: q.saved.is_some(),
    }))
}

#[derive(Deserialize)]
pub struct DayForm {
    day: String,
    kind: String,
    name: String,
}

fn year_of(day: &str) -> String {
    day.get(..4).filter(|y| y.bytes().all(|b| b.is_ascii_digit())).unwrap_or("").to_string()
}

/// htmx: sets one day.
pub async fn calendar_set(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<DayForm>,
) -> Response {
    let input = crate::orders::api::DayInput { kind: f.kind, name: f.name };
    match crate::orders::api::set_calendar_day(&s, &user, addr, f.day.trim(), &input).await {
        Ok(()) => hx_redirect(&format!("/admin/calendar?year={}&saved=1", year_of(f.day.trim()))),
        Err(e) => alert(&e),
    }
}

/// htmx: removes one day's override.
pub async fn calendar_remove(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Path(day): Path<String>,
) -> Response {
    match crate::orders::api::remove_calendar_day(&s, &user, addr, &day).await {
        Ok(()) => hx_redirect(&format!("/admin/calendar?year={}&saved=1", year_of(&day))),
        Err(e) => alert(&e),
    }
}

#[derive(Deserialize)]
pub struct ImportForm {
    text: String,
}

/// htmx: imports pasted CSV or iCal text.
pub async fn calendar_import(
    State(s): State<AppState>,
    user: CurrentUser,
    ClientAddr(addr): ClientAddr,
    Form(f): Form<ImportForm>,
) -> Response {
    match crate::orders::api::import_calendar_text(&s, &user, addr, &f.text).await {
        Ok(_) => hx_redirect("/admin/calendar?saved=1"),
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
        for n in 1..=7 {
            assert!(t(&format!("calendar.weekday.{n}")).starts_with('周'));
        }
        assert_eq!(year_of("2027-10-01"), "2027");
        assert_eq!(year_of("x"), "");
    }
}
