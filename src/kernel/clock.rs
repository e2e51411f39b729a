//! Business clock for work-order time limits (办理时限).
//!
//! Time limits on work orders are set in 工作日 (working days), 工作时 (working hours) or plain
//! calendar hours (see standards.md §4.2 and §5). This module turns a dispatch instant plus a
//! limit into a due instant, measures working time between instants, raises yellow/red
//! warnings and stretches a due time over a 挂账 (shelved) pause.
//!
//! It is pure: no I/O, no global state, and no reference to the rest of the crate. All instants
//! going in and out are `DateTime<Utc>`; "business time" is the local time of the clock's fixed
//! offset (UTC+8 by default — China has had no DST since 1991, so a `FixedOffset` is exact and
//! avoids a time-zone database dependency).
//!
//! Working days follow China's official arrangement: Monday–Friday work, Saturday and Sunday
//! off, overridden per date by the State Council's yearly notice (`holiday` = day off, including
//! weekend days inside a break; `workday` = 调休 make-up working weekend day). Years without any
//! override fall back to the plain weekday rule; callers should flag them with
//! [`Calendar::has_data_for`] / [`Clock::years_without_data`] so an administrator adds the
//! arrangement (published each November/December).
//!
//! Functions returning instants never panic: results beyond chrono's representable range
//! saturate to `DateTime::<Utc>::MAX_UTC` / `MIN_UTC`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

/// The official arrangement for 2024–2026, copied from `shared/data/`.
const BUILTIN_CSV: &str = include_str!("../../data/cn-calendar-2024-2026.csv");

/// China Standard Time, UTC+08:00 all year.
pub const CHINA_STANDARD_TIME: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// Default share of the limit after which an order turns yellow.
pub const DEFAULT_YELLOW_THRESHOLD: f64 = 0.8;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A working-days due time falls at this business time of the last working day.
const END_OF_DAY: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(t) => t,
    None => panic!("23:59:59 is a valid time"),
};

/// Refuse iCal events longer than this: a holiday break is at most a couple of weeks, and the
/// cap keeps a hostile feed from making us materialise millions of entries.
const MAX_ICAL_EVENT_DAYS: i64 = 366;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Errors from parsing calendars and configuring the clock. [`ClockError::code`] is stable and
/// meant for i18n lookup; the `Display` text is English, for logs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockError {
    /// Malformed calendar CSV: missing/wrong header, wrong field count, bad quoting, empty name.
    #[error("calendar CSV line {line}: {reason}")]
    BadCsv { line: usize, reason: String },
    /// A date that is not a valid `YYYY-MM-DD`.
    #[error("calendar CSV line {line}: invalid date {value:?} (expected YYYY-MM-DD)")]
    BadDate { line: usize, value: String },
    /// A kind other than `holiday` / `workday`.
    #[error("calendar CSV line {line}: invalid kind {value:?} (expected holiday or workday)")]
    BadKind { line: usize, value: String },
    /// The same date appears twice in one CSV.
    #[error("calendar CSV line {line}: date {date} is listed more than once")]
    DuplicateDate { line: usize, date: NaiveDate },
    /// Malformed or unsupported iCalendar input.
    #[error("iCalendar line {line}: {reason}")]
    BadIcal { line: usize, reason: String },
    /// Invalid working-hours configuration.
    #[error("invalid working hours: {reason}")]
    BadHours { reason: String },
    /// Warning threshold not a fraction in `[0, 1]`.
    #[error("invalid warning threshold {value}: expected a fraction between 0 and 1")]
    BadThreshold { value: f64 },
}

impl ClockError {
    /// Stable machine-readable code, e.g. `"calendar.bad_csv"`.
    pub fn code(&self) -> &'static str {
        match self {
            ClockError::BadCsv { .. } => "calendar.bad_csv",
            ClockError::BadDate { .. } => "calendar.bad_date",
            ClockError::BadKind { .. } => "calendar.bad_kind",
            ClockError::DuplicateDate { .. } => "calendar.duplicate_date",
            ClockError::BadIcal { .. } => "calendar.bad_ical",
            ClockError::BadHours { .. } => "clock.bad_hours",
            ClockError::BadThreshold { .. } => "clock.bad_threshold",
        }
    }

    /// 1-based line of the input the error refers to, where there is one (for "第 N 行" messages).
    pub fn line(&self) -> Option<usize> {
        match self {
            ClockError::BadCsv { line, .. }
            | ClockError::BadDate { line, .. }
            | ClockError::BadKind { line, .. }
            | ClockError::DuplicateDate { line, .. }
            | ClockError::BadIcal { line, .. } => Some(*line),
            ClockError::BadHours { .. } | ClockError::BadThreshold { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------------------

/// What an override says about a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A day off (法定节假日, including the weekend days inside a break).
    Holiday,
    /// A working day, normally a 调休 make-up weekend day.
    Workday,
}

impl DayKind {
    /// The CSV spelling: `"holiday"` or `"workday"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }

    /// Parses the CSV spelling (ASCII case-insensitive).
    pub fn parse(s: &str) -> Option<DayKind> {
        if s.eq_ignore_ascii_case("holiday") {
            Some(DayKind::Holiday)
        } else if s.eq_ignore_ascii_case("workday") {
            Some(DayKind::Workday)
        } else {
            None
        }
    }
}

/// One dated override of the plain weekday rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalendarEntry {
    pub date: NaiveDate,
    pub kind: DayKind,
    /// Festival name, e.g. `"National Day"` or `"国庆节"`.
    pub name: String,
}

impl CalendarEntry {
    pub fn new(date: NaiveDate, kind: DayKind, name: impl Into<String>) -> Self {
        CalendarEntry { date, kind, name: name.into() }
    }
}

/// The plain rule (Mon–Fri working) plus dated overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    entries: BTreeMap<NaiveDate, CalendarEntry>,
}

impl Calendar {
    /// A calendar with no overrides: the plain weekday rule everywhere.
    pub fn new() -> Self {
        Calendar::default()
    }

    /// The official 2024–2026 arrangement shipped with the binary.
    pub fn builtin() -> Self {
        // The file is embedded at compile time and covered by a unit test, so failure here is a
        // build defect, not a runtime condition.
        Calendar::from_csv(BUILTIN_CSV).expect("embedded calendar CSV is valid")
    }

    /// Parses the `date,kind,name` CSV (see `data/README.md`).
    ///
    /// Accepts a UTF-8 BOM, CRLF line ends, blank lines, spaces around fields and RFC 4180
    /// double-quoted fields (a quoted field may not span lines). Rejects a missing header, a
    /// row without exactly three fields, an empty name and a date listed twice.
    pub fn from_csv(text: &str) -> Result<Calendar, ClockError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut header_seen = false;
        let mut entries = BTreeMap::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let fields =
                split_csv_line(raw).map_err(|reason| ClockError::BadCsv { line, reason: reason.to_string() })?;
            if !header_seen {
                let names: Vec<String> = fields.iter().map(|f| f.trim().to_ascii_lowercase()).collect();
                if names != ["date", "kind", "name"] {
                    return Err(ClockError::BadCsv {
                        line,
                        reason: format!("expected header `date,kind,name`, found {raw:?}"),
                    });
                }
                header_seen = true;
                continue;
            }
            if fields.len() != 3 {
                return Err(ClockError::BadCsv { line, reason: format!("expected 3 fields, found {}", fields.len()) });
            }
            let date_text = fields[0].trim();
            let date =
                parse_iso_date(date_text).ok_or_else(|| ClockError::BadDate { line, value: date_text.to_string() })?;
            let kind_text = fields[1].trim();
            let kind =
                DayKind::parse(kind_text).ok_or_else(|| ClockError::BadKind { line, value: kind_text.to_string() })?;
            let name = fields[2].trim();
            if name.is_empty() {
                return Err(ClockError::BadCsv { line, reason: "empty name".to_string() });
            }
            if entries.contains_key(&date) {
                return Err(ClockError::DuplicateDate { line, date });
            }
            entries.insert(date, CalendarEntry::new(date, kind, name));
        }
        if !header_seen {
            return Err(ClockError::BadCsv {
                line: 1,
                reason: "empty input: missing header `date,kind,name`".to_string(),
            });
        }
        Ok(Calendar { entries })
    }

    /// Serialises to the CSV format [`Calendar::from_csv`] reads, sorted by date.
    ///
    /// Names are normalised so the output always parses back: line breaks become spaces,
    /// surrounding whitespace is trimmed, and an empty name becomes `-`. Dates must lie in
    /// years 0–9999 to round-trip.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("date,kind,name\n");
        for entry in self.entries.values() {
            let name = entry.name.replace(['\r', '\n'], " ");
            let name = match name.trim() {
                "" => "-",
                trimmed => trimmed,
            };
            out.push_str(&entry.date.format("%Y-%m-%d").to_string());
            out.push(',');
            out.push_str(entry.kind.as_str());
            out.push(',');
            if name.contains([',', '"']) {
                out.push('"');
                out.push_str(&name.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(name);
            }
            out.push('\n');
        }
        out
    }

    /// Reads an iCalendar (.ics) holiday feed into entries, one per day, sorted by date.
    ///
    /// Each `VEVENT` needs an all-day `DTSTART` (`DTSTART;VALUE=DATE:20251001` or a bare
    /// 8-digit date) and a `SUMMARY`; the end is `DTEND` (exclusive, as RFC 5545 says), or
    /// `DURATION:PnD`/`PnW`, or one day when both are absent. A summary containing `班`
    /// (`补班`, `上班`, `班`) marks make-up working days; anything else is a holiday.
    /// `STATUS:CANCELLED` events are skipped; components nested in events (`VALARM`) and
    /// non-event components (`VTIMEZONE`) are ignored. Timed events, inverted or over-long
    /// ranges, and a date marked both holiday and workday are errors. The entries are not
    /// applied to any calendar; use [`Calendar::set`] or `extend`.
    pub fn from_ical(text: &str) -> Result<Vec<CalendarEntry>, ClockError> {
        parse_ical(text)
    }

    /// Adds or replaces the override for `entry.date`, returning the previous one.
    pub fn set(&mut self, entry: CalendarEntry) -> Option<CalendarEntry> {
        self.entries.insert(entry.date, entry)
    }

    /// Removes the override for `date`, returning it; the date reverts to the weekday rule.
    pub fn remove(&mut self, date: NaiveDate) -> Option<CalendarEntry> {
        self.entries.remove(&date)
    }

    /// Removes every override dated in `year` (to replace a year's arrangement); returns how
    /// many were removed.
    pub fn remove_year(&mut self, year: i32) -> usize {
        let dates: Vec<NaiveDate> = self.year_entries(year).map(|e| e.date).collect();
        for date in &dates {
            self.entries.remove(date);
        }
        dates.len()
    }

    /// The override for `date`, if any.
    pub fn get(&self, date: NaiveDate) -> Option<&CalendarEntry> {
        self.entries.get(&date)
    }

    /// All overrides, sorted by date.
    pub fn entries(&self) -> impl Iterator<Item = &CalendarEntry> + '_ {
        self.entries.values()
    }

    /// The overrides dated in `year`, sorted by date.
    pub fn year_entries(&self, year: i32) -> impl Iterator<Item = &CalendarEntry> + '_ {
        let range = NaiveDate::from_ymd_opt(year, 1, 1).zip(NaiveDate::from_ymd_opt(year, 12, 31));
        range.into_iter().flat_map(move |(first, last)| self.entries.range(first..=last).map(|(_, e)| e))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `date` is a working day: its override if there is one, else Monday–Friday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.entries.get(&date) {
            Some(entry) => entry.kind == DayKind::Workday,
            None => is_plain_weekday(date),
        }
    }

    /// Years with at least one override.
    pub fn covered_years(&self) -> BTreeSet<i32> {
        self.entries.keys().map(|d| d.year()).collect()
    }

    /// Whether any override is dated in `year`. Every real year has holidays, so a year
    /// without one means its arrangement has not been entered and the weekday rule is a guess.
    pub fn has_data_for(&self, year: i32) -> bool {
        self.year_entries(year).next().is_some()
    }

    /// The largest `k` such that `[first, first + 7k)` holds no override, i.e. where the
    /// weekday rule alone applies and every 7 consecutive days hold exactly 5 working days.
    /// `u64::MAX` when no override follows. Lets long spans be crossed week by week.
    fn free_weeks_from(&self, first: NaiveDate) -> u64 {
        match self.entries.range(first..).next() {
            None => u64::MAX,
            Some((next, _)) => ((*next - first).num_days() / 7).unsigned_abs(),
        }
    }
}

impl Extend<CalendarEntry> for Calendar {
    /// Applies entries in order; later ones replace earlier overrides of the same date.
    fn extend<I: IntoIterator<Item = CalendarEntry>>(&mut self, iter: I) {
        for entry in iter {
            self.set(entry);
        }
    }
}

impl FromIterator<CalendarEntry> for Calendar {
    fn from_iter<I: IntoIterator<Item = CalendarEntry>>(iter: I) -> Self {
        let mut calendar = Calendar::new();
        calendar.extend(iter);
        calendar
    }
}

fn is_plain_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Strict `YYYY-MM-DD` (chrono's `%m` would also take `2025-1-1`).
fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::from_ymd_opt(s[0..4].parse().ok()?, s[5..7].parse().ok()?, s[8..10].parse().ok()?)
}

/// Splits one CSV record (RFC 4180 quoting, no embedded line breaks).
fn split_csv_line(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    loop {
        // Leading spaces before an opening quote are tolerated (fields are trimmed anyway).
        while chars.peek() == Some(&' ') {
            chars.next();
            field.push(' ');
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            field.clear();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field"),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some(_) => return Err("unexpected character after closing quote"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(std::mem::take(&mut field));
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// iCalendar import
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct EventDraft {
    line: usize,
    dtstart: Option<(usize, Option<String>, String)>,
    dtend: Option<(usize, Option<String>, String)>,
    duration: Option<(usize, String)>,
    summary: Option<String>,
    cancelled: bool,
}

fn ical_err(line: usize, reason: impl Into<String>) -> ClockError {
    ClockError::BadIcal { line, reason: reason.into() }
}

fn parse_ical(text: &str) -> Result<Vec<CalendarEntry>, ClockError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    // RFC 5545 §3.1: a line starting with a space or tab continues the previous one.
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = raw.strip_prefix(|c| c == ' ' || c == '\t') {
            match logical.last_mut() {
                Some((_, prev)) => prev.push_str(rest),
                None if rest.trim().is_empty() => {}
                None => return Err(ical_err(idx + 1, "continuation line without a line before")),
            }
            continue;
        }
        if raw.trim().is_empty() {
            continue;
        }
        logical.push((idx + 1, raw.to_string()));
    }

    let mut stack: Vec<String> = Vec::new();
    let mut saw_calendar = false;
    let mut event: Option<EventDraft> = None;
    let mut days: BTreeMap<NaiveDate, CalendarEntry> = BTreeMap::new();
    let mut last_line = 1;

    for (line, content) in &logical {
        let line = *line;
        last_line = line;
        let ContentLine { name, params, value } =
            split_content_line(content).ok_or_else(|| ical_err(line, format!("malformed content line {content:?}")))?;
        match name.as_str() {
            "BEGIN" => {
                let component = value.trim().to_ascii_uppercase();
                if stack.is_empty() && component != "VCALENDAR" {
                    return Err(ical_err(line, "expected BEGIN:VCALENDAR"));
                }
                if component == "VCALENDAR" {
                    if !stack.is_empty() {
                        return Err(ical_err(line, "nested VCALENDAR"));
                    }
                    saw_calendar = true;
                }
                if component == "VEVENT" {
                    if stack.last().map(String::as_str) != Some("VCALENDAR") {
                        return Err(ical_err(line, "VEVENT outside VCALENDAR"));
                    }
                    event = Some(EventDraft { line, ..EventDraft::default() });
                }
                stack.push(component);
            }
            "END" => {
                let component = value.trim().to_ascii_uppercase();
                match stack.pop() {
                    Some(open) if open == component => {}
                    Some(open) => return Err(ical_err(line, format!("END:{component} does not close BEGIN:{open}"))),
                    None => return Err(ical_err(line, format!("END:{component} without BEGIN"))),
                }
                if component == "VEVENT" {
                    if let Some(draft) = event.take() {
                        finish_event(draft, &mut days)?;
                    }
                }
            }
            _ if stack.is_empty() => {
                return Err(ical_err(line, "content outside BEGIN:VCALENDAR/END:VCALENDAR"));
            }
            // Only properties directly inside a VEVENT matter; VALARM's, VTIMEZONE's are skipped.
            _ if stack.last().map(String::as_str) == Some("VEVENT") => {
                let Some(draft) = event.as_mut() else {
                    continue;
                };
                let value_param = params.iter().find(|(k, _)| k == "VALUE").map(|(_, v)| v.clone());
                match name.as_str() {
                    "DTSTART" => {
                        if draft.dtstart.is_some() {
                            return Err(ical_err(line, "VEVENT has two DTSTART"));
                        }
                        draft.dtstart = Some((line, value_param, value.to_string()));
                    }
                    "DTEND" => {
                        if draft.dtend.is_some() {
                            return Err(ical_err(line, "VEVENT has two DTEND"));
                        }
                        draft.dtend = Some((line, value_param, value.to_string()));
                    }
                    "DURATION" => draft.duration = Some((line, value.to_string())),
                    "SUMMARY" => draft.summary = Some(unescape_ical_text(value)),
                    "STATUS" => draft.cancelled = value.trim().eq_ignore_ascii_case("CANCELLED"),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !saw_calendar {
        return Err(ical_err(1, "no BEGIN:VCALENDAR found"));
    }
    if let Some(open) = stack.last() {
        return Err(ical_err(last_line, format!("BEGIN:{open} is never closed")));
    }
    Ok(days.into_values().collect())
}

fn finish_event(draft: EventDraft, days: &mut BTreeMap<NaiveDate, CalendarEntry>) -> Result<(), ClockError> {
    if draft.cancelled {
        return Ok(());
    }
    let (start_line, start_param, start_value) =
        draft.dtstart.ok_or_else(|| ical_err(draft.line, "VEVENT without DTSTART"))?;
    let start = parse_ical_date(start_line, start_param.as_deref(), &start_value)?;
    let end = match (draft.dtend, draft.duration) {
        (Some((line, param, value)), _) => parse_ical_date(line, param.as_deref(), &value)?,
        (None, Some((line, value))) => {
            let n = parse_ical_day_duration(&value)
                .ok_or_else(|| ical_err(line, format!("unsupported DURATION {value:?} (expected PnD or PnW)")))?;
            start.checked_add_days(Days::new(n)).ok_or_else(|| ical_err(line, "DURATION out of range"))?
        }
        // RFC 5545 §3.6.1: an all-day event without an end lasts one day.
        (None, None) => start.succ_opt().ok_or_else(|| ical_err(start_line, "DTSTART out of range"))?,
    };
    let span = (end - start).num_days();
    if span <= 0 {
        return Err(ical_err(draft.line, "event ends before it starts (DTEND is exclusive)"));
    }
    if span > MAX_ICAL_EVENT_DAYS {
        return Err(ical_err(draft.line, format!("event spans {span} days (more than {MAX_ICAL_EVENT_DAYS})")));
    }
    let summary = draft.summary.ok_or_else(|| ical_err(draft.line, "VEVENT without SUMMARY"))?;
    let name = summary.trim().to_string();
    let kind = if name.contains('班') { DayKind::Workday } else { DayKind::Holiday };
    let mut date = start;
    while date < end {
        match days.get(&date) {
            // Feeds often overlap same-kind events (e.g. 中秋节 inside 国庆节); keep the first name.
            Some(existing) if existing.kind == kind => {}
            Some(existing) => {
                return Err(ical_err(
                    draft.line,
                    format!(
                        "{date} is both {} ({}) and {} ({name})",
                        existing.kind.as_str(),
                        existing.name,
                        kind.as_str()
                    ),
                ))
            }
            None => {
                days.insert(date, CalendarEntry::new(date, kind, name.clone()));
            }
        }
        date = match date.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    Ok(())
}

/// One unfolded iCalendar content line, `NAME;PARAM=V;...:VALUE`.
struct ContentLine<'a> {
    /// Upper-cased property name.
    name: String,
    /// Upper-cased parameter names with unquoted values.
    params: Vec<(String, String)>,
    /// Raw (still escaped) value.
    value: &'a str,
}

/// Splits a content line at the first colon outside double quotes (parameter values such as
/// `ALTREP="http://…"` may contain colons and semicolons).
fn split_content_line(line: &str) -> Option<ContentLine<'_>> {
    let mut in_quotes = false;
    let mut colon = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon?;
    let head = &line[..colon];
    let value = &line[colon + 1..];
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    for (i, c) in head.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => {
                parts.push(&head[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&head[start..]);
    let name = parts[0].trim().to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let params = parts[1..]
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_uppercase(), v.trim().trim_matches('"').to_string()),
            None => (p.trim().to_ascii_uppercase(), String::new()),
        })
        .collect();
    Some(ContentLine { name, params, value })
}

fn parse_ical_date(line: usize, value_param: Option<&str>, value: &str) -> Result<NaiveDate, ClockError> {
    let value = value.trim();
    if let Some(param) = value_param {
        if !param.eq_ignore_ascii_case("DATE") {
            return Err(ical_err(line, format!("only all-day events are supported (VALUE={param})")));
        }
    }
    if value.contains(['T', 't']) {
        return Err(ical_err(line, format!("only all-day events are supported (got date-time {value:?})")));
    }
    let b = value.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return Err(ical_err(line, format!("invalid date {value:?} (expected YYYYMMDD)")));
    }
    let date = value[0..4]
        .parse()
        .ok()
        .zip(value[4..6].parse().ok())
        .zip(value[6..8].parse().ok())
        .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d));
    date.ok_or_else(|| ical_err(line, format!("invalid date {value:?}")))
}

/// `PnD` or `PnW` (optionally `+`-signed) as a number of days.
fn parse_ical_day_duration(value: &str) -> Option<u64> {
    let v = value.trim();
    let v = v.strip_prefix('+').unwrap_or(v);
    let v = v.strip_prefix(['P', 'p'])?;
    let (digits, per_unit) = if let Some(d) = v.strip_suffix(['D', 'd']) {
        (d, 1)
    } else if let Some(w) = v.strip_suffix(['W', 'w']) {
        (w, 7)
    } else {
        return None;
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(per_unit)
}

/// Undoes RFC 5545 TEXT escaping; line breaks become spaces since names are single-line.
fn unescape_ical_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other @ (',' | ';' | '\\')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Working hours
// ---------------------------------------------------------------------------------------------

/// The daily working intervals `[start, end)` in business time, sorted and disjoint.
/// Default: 08:30–12:00 and 13:30–17:30 (7.5 h).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkingHours {
    intervals: Vec<(NaiveTime, NaiveTime)>,
}

impl Default for WorkingHours {
    fn default() -> Self {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("valid default working time");
        WorkingHours { intervals: vec![(t(8, 30), t(12, 0)), (t(13, 30), t(17, 30))] }
    }
}

impl WorkingHours {
    /// Validates and sorts the intervals: at least one, each `start < end` within one day,
    /// whole seconds, not overlapping (touching is fine).
    pub fn new(mut intervals: Vec<(NaiveTime, NaiveTime)>) -> Result<Self, ClockError> {
        let bad = |reason: String| ClockError::BadHours { reason };
        if intervals.is_empty() {
            return Err(bad("at least one interval is required".to_string()));
        }
        for &(start, end) in &intervals {
            // Whole seconds keep `Display`/`parse` lossless and rule out leap-second times.
            if start.nanosecond() != 0 || end.nanosecond() != 0 {
                return Err(bad(format!("{start}-{end}: times must be whole seconds")));
            }
            if start >= end {
                return Err(bad(format!("{start}-{end}: start must be before end")));
            }
        }
        intervals.sort();
        for pair in intervals.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(bad(format!("{}-{} overlaps {}-{}", pair[0].0, pair[0].1, pair[1].0, pair[1].1)));
            }
        }
        Ok(WorkingHours { intervals })
    }

    /// Parses `"08:30-12:00,13:30-17:30"` (times `HH:MM` or `HH:MM:SS`), the `Display` form.
    pub fn parse(spec: &str) -> Result<Self, ClockError> {
        let bad = |reason: String| ClockError::BadHours { reason };
        let time = |s: &str| {
            let s = s.trim();
            NaiveTime::parse_from_str(s, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
                .map_err(|_| bad(format!("invalid time {s:?} (expected HH:MM)")))
        };
        let mut intervals = Vec::new();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (start, end) = part
                .split_once('-')
                .ok_or_else(|| bad(format!("invalid interval {:?} (expected HH:MM-HH:MM)", part.trim())))?;
            intervals.push((time(start)?, time(end)?));
        }
        WorkingHours::new(intervals)
    }

    pub fn intervals(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.intervals
    }

    /// Working time in one full working day.
    pub fn daily(&self) -> TimeDelta {
        self.intervals.iter().map(|&(s, e)| e - s).sum()
    }

    /// Whether the time of day falls inside an interval (`[start, end)`).
    pub fn contains(&self, t: NaiveTime) -> bool {
        self.intervals.iter().any(|&(s, e)| s <= t && t < e)
    }
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |t: NaiveTime| {
            if t.second() == 0 {
                t.format("%H:%M").to_string()
            } else {
                t.format("%H:%M:%S").to_string()
            }
        };
        for (i, &(s, e)) in self.intervals.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}-{}", hm(s), hm(e))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Limits and warnings
// ---------------------------------------------------------------------------------------------

/// The unit a time limit is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    WorkingDays,
    WorkingHours,
    CalendarHours,
}

/// A configured time limit (per event class and step, standards.md §4.2).
///
/// Serialises as `{"unit":"working_days","amount":3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "unit", content = "amount", rename_all = "snake_case")]
pub enum TimeLimit {
    /// N 工作日: due 23:59:59 business time of the N-th working day after the start day.
    WorkingDays(u32),
    /// N 工作时, in whole **hours** (matching how limits are written, e.g. "2 个工作时");
    /// only time inside working hours on working days counts. For finer limits call
    /// [`Clock::due_after_working_hours`] with any `TimeDelta`.
    WorkingHours(u32),
    /// N wall-clock hours (7×24 lines such as an urgent 12345 item).
    CalendarHours(u32),
}

impl TimeLimit {
    pub fn kind(&self) -> LimitKind {
        match self {
            TimeLimit::WorkingDays(_) => LimitKind::WorkingDays,
            TimeLimit::WorkingHours(_) => LimitKind::WorkingHours,
            TimeLimit::CalendarHours(_) => LimitKind::CalendarHours,
        }
    }

    /// The due instant for an order whose clock starts at `start`.
    pub fn due(&self, clock: &Clock, start: DateTime<Utc>) -> DateTime<Utc> {
        match *self {
            TimeLimit::WorkingDays(n) => clock.due_after_working_days(start, n),
            TimeLimit::WorkingHours(h) => clock.due_after_working_hours(start, TimeDelta::hours(i64::from(h))),
            TimeLimit::CalendarHours(h) => saturating_add(start, TimeDelta::hours(i64::from(h))),
        }
    }
}

/// Traffic-light state of an open order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warning {
    /// Less than the threshold share of the limit has been used.
    Normal,
    /// 预警: at least the threshold share used, not yet overdue.
    Yellow,
    /// 超时: now is past the due instant.
    Red,
}

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// Calendar + working hours + business offset + warning threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    calendar: Calendar,
    hours: WorkingHours,
    offset: FixedOffset,
    yellow_threshold: f64,
}

impl Default for Clock {
    /// [`Clock::builtin`].
    fn default() -> Self {
        Clock::builtin()
    }
}

impl Clock {
    /// A clock in China Standard Time with a yellow threshold of 0.8.
    pub fn new(calendar: Calendar, hours: WorkingHours) -> Self {
        Clock { calendar, hours, offset: CHINA_STANDARD_TIME, yellow_threshold: DEFAULT_YELLOW_THRESHOLD }
    }

    /// The built-in 2024–2026 calendar with default working hours.
    pub fn builtin() -> Self {
        Clock::new(Calendar::builtin(), WorkingHours::default())
    }

    /// Uses another business offset (tests, or a deployment outside China).
    pub fn with_offset(mut self, offset: FixedOffset) -> Self {
        self.offset = offset;
        self
    }

    /// Sets the share of the limit after which [`Clock::warning`] says Yellow; must be in
    /// `[0, 1]` (0 = yellow from the start, 1 = yellow only exactly at the due instant).
    pub fn with_yellow_threshold(mut self, fraction: f64) -> Result<Self, ClockError> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(ClockError::BadThreshold { value: fraction });
        }
        self.yellow_threshold = fraction;
        Ok(self)
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// For administrators adding a year's arrangement or a local adjustment.
    pub fn calendar_mut(&mut self) -> &mut Calendar {
        &mut self.calendar
    }

    pub fn hours(&self) -> &WorkingHours {
        &self.hours
    }

    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    pub fn yellow_threshold(&self) -> f64 {
        self.yellow_threshold
    }

    /// Business-time wall clock of an instant.
    pub fn to_business(&self, t: DateTime<Utc>) -> NaiveDateTime {
        // `DateTime::naive_local` panics within hours of chrono's range limits; saturate instead.
        let offset = TimeDelta::seconds(i64::from(self.offset.local_minus_utc()));
        t.naive_utc().checked_add_signed(offset).unwrap_or(if offset > TimeDelta::zero() {
            NaiveDateTime::MAX
        } else {
            NaiveDateTime::MIN
        })
    }

    /// The instant of a business-time wall clock (saturating at chrono's range limits).
    pub fn from_business(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let offset = TimeDelta::seconds(i64::from(self.offset.local_minus_utc()));
        match local.checked_sub_signed(offset) {
            Some(utc) => utc.and_utc(),
            None if offset > TimeDelta::zero() => DateTime::<Utc>::MIN_UTC,
            None => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// Business date of an instant.
    pub fn business_date(&self, t: DateTime<Utc>) -> NaiveDate {
        self.to_business(t).date()
    }

    /// Whether `t` is inside working hours on a working day.
    pub fn is_working_time(&self, t: DateTime<Utc>) -> bool {
        let local = self.to_business(t);
        self.calendar.is_working_day(local.date()) && self.hours.contains(local.time())
    }

    /// Years touched by `[a, b]` (business dates) that have no calendar data, so the weekday
    /// fallback was used; callers show a "节假日数据缺失" flag for them.
    pub fn years_without_data(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Vec<i32> {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        let (first, last) = (self.business_date(a).year(), self.business_date(b).year());
        (first..=last).filter(|&y| !self.calendar.has_data_for(y)).collect()
    }

    /// Due instant for an N-working-day limit: the start's business day does not count; due
    /// at 23:59:59 business time of the N-th working day after it. `n = 0` gives 23:59:59 of
    /// the start day itself (even if that is not a working day).
    pub fn due_after_working_days(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        match self.nth_working_day_after(self.business_date(start), n) {
            Some(day) => self.from_business(day.and_time(END_OF_DAY)),
            None => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// The earliest instant by which `duration` of working time has elapsed since `start`.
    ///
    /// Only time inside working hours on working days counts; a start outside working hours
    /// effectively begins at the next working interval. When the time runs out exactly at the
    /// end of an interval, the due is that end (12:00, not 13:30). A zero or negative duration
    /// returns `start` unchanged.
    pub fn due_after_working_hours(&self, start: DateTime<Utc>, duration: TimeDelta) -> DateTime<Utc> {
        let mut remaining = to_nanos(duration);
        if remaining <= 0 {
            return start;
        }
        let local = self.to_business(start);
        let mut date = local.date();
        if let Some(t) = self.consume_day(date, local.time(), &mut remaining) {
            return self.from_business(date.and_time(t));
        }
        let week = to_nanos(self.hours.daily()) * 5;
        loop {
            date = match date.succ_opt() {
                Some(d) => d,
                None => return DateTime::<Utc>::MAX_UTC,
            };
            // Cross override-free stretches a week at a time, always leaving some time to
            // place on a real day so the result stays the *earliest* such instant.
            let wanted = u64::try_from((remaining - 1) / week).unwrap_or(u64::MAX);
            let weeks = wanted.min(self.calendar.free_weeks_from(date));
            if weeks > 0 {
                date = match date.checked_add_days(Days::new(weeks.saturating_mul(7))) {
                    Some(d) => d,
                    None => return DateTime::<Utc>::MAX_UTC,
                };
                remaining -= week * i128::from(weeks);
            }
            if let Some(t) = self.consume_day(date, NaiveTime::MIN, &mut remaining) {
                return self.from_business(date.and_time(t));
            }
        }
    }

    /// Working time in `[a, b)`; negative when `b < a` (so it is additive:
    /// `between(a, b) + between(b, c) == between(a, c)`).
    pub fn working_time_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> TimeDelta {
        if b < a {
            return -self.working_time_between(b, a);
        }
        from_nanos(self.working_nanos(a, b))
    }

    /// Working days in `(business_date(a), business_date(b)]`, negative when `b` is on an
    /// earlier day. Consistent with the due rule:
    /// `working_days_between(s, due_after_working_days(s, n)) == n`.
    pub fn working_days_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        let (da, db) = (self.business_date(a), self.business_date(b));
        if db < da {
            -self.count_working_days(db, da)
        } else {
            self.count_working_days(da, db)
        }
    }

    /// Traffic light for an order started at `start`, due at `due`, looked at `now`.
    ///
    /// Red when `now > due`. Otherwise Yellow once the used share of the span `start→due`
    /// reaches the threshold. The share is measured in **working time** for working-hours and
    /// working-days limits (nights, weekends and holidays do not use up a working limit, so a
    /// 3-working-day order dispatched before National Day does not turn yellow during the
    /// break) and in wall time for calendar-hours limits. If the span holds no working time
    /// (e.g. `WorkingDays(0)` dispatched after 17:30) wall time is used instead. Time spent in
    /// a 挂账 pause still counts as used unless the caller passes a start shifted by the pause.
    pub fn warning(&self, start: DateTime<Utc>, due: DateTime<Utc>, now: DateTime<Utc>, kind: LimitKind) -> Warning {
        if now > due {
            return Warning::Red;
        }
        if now < start {
            return Warning::Normal;
        }
        let wall = |from: DateTime<Utc>, to: DateTime<Utc>| to_nanos(to - from);
        let (mut used, mut total) = match kind {
            LimitKind::CalendarHours => (wall(start, now), wall(start, due)),
            LimitKind::WorkingDays | LimitKind::WorkingHours => {
                (self.working_nanos(start, now), self.working_nanos(start, due))
            }
        };
        if total <= 0 {
            (used, total) = (wall(start, now), wall(start, due));
        }
        // Compare in integer parts-per-million so 80% of 10 h is exactly 8 h.
        let ppm = (self.yellow_threshold * 1_000_000.0).round() as i128;
        if used * 1_000_000 >= total * ppm {
            Warning::Yellow
        } else {
            Warning::Normal
        }
    }

    /// Moves `due` to make up for a 挂账 pause from `paused_from` to `resumed_at`.
    ///
    /// - Working hours: by the working time inside the pause (counted on from `due`).
    /// - Working days: by the working days in `(pause day, resume day]`, the same rule as the
    ///   start day not counting; the result is 23:59:59 of the shifted working day. A pause
    ///   that starts and ends on the same day moves nothing.
    /// - Calendar hours: by the wall-clock length of the pause.
    ///
    /// An empty or inverted pause returns `due` unchanged.
    pub fn extend_for_pause(
        &self,
        due: DateTime<Utc>,
        paused_from: DateTime<Utc>,
        resumed_at: DateTime<Utc>,
        limit_kind: LimitKind,
    ) -> DateTime<Utc> {
        if resumed_at <= paused_from {
            return due;
        }
        match limit_kind {
            LimitKind::WorkingHours => {
                let paused = self.working_time_between(paused_from, resumed_at);
                self.due_after_working_hours(due, paused)
            }
            LimitKind::WorkingDays => {
                // resumed_at > paused_from, so the count is never negative.
                match u32::try_from(self.working_days_between(paused_from, resumed_at)) {
                    Ok(0) => due,
                    Ok(n) => self.due_after_working_days(due, n),
                    Err(_) => DateTime::<Utc>::MAX_UTC,
                }
            }
            LimitKind::CalendarHours => saturating_add(due, resumed_at - paused_from),
        }
    }

    // -- internals ------------------------------------------------------------------------

    /// Working time (ns) of `date` in `[from, to)` (`to = None`: to the end of the day).
    fn overlap_nanos(&self, date: NaiveDate, from: NaiveTime, to: Option<NaiveTime>) -> i128 {
        if !self.calendar.is_working_day(date) {
            return 0;
        }
        self.hours
            .intervals()
            .iter()
            .map(|&(s, e)| {
                let lo = s.max(from);
                let hi = to.map_or(e, |t| e.min(t));
                if hi > lo {
                    to_nanos(hi - lo)
                } else {
                    0
                }
            })
            .sum()
    }

    /// Spends `remaining` on `date` from `from` on; returns the time of day it runs out, or
    /// `None` (with `remaining` reduced) if the day is not enough.
    fn consume_day(&self, date: NaiveDate, from: NaiveTime, remaining: &mut i128) -> Option<NaiveTime> {
        if !self.calendar.is_working_day(date) {
            return None;
        }
        for &(s, e) in self.hours.intervals() {
            if from >= e {
                continue;
            }
            let begin = s.max(from);
            let available = to_nanos(e - begin);
            if *remaining <= available {
                return Some(begin + from_nanos(*remaining));
            }
            *remaining -= available;
        }
        None
    }

    /// Working time in `[a, b)` in nanoseconds, for `a <= b`.
    fn working_nanos(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i128 {
        if b <= a {
            return 0;
        }
        let (la, lb) = (self.to_business(a), self.to_business(b));
        let (da, db) = (la.date(), lb.date());
        if da == db {
            return self.overlap_nanos(da, la.time(), Some(lb.time()));
        }
        let full_day = to_nanos(self.hours.daily());
        let mut total = self.overlap_nanos(da, la.time(), None);
        let mut date = match da.succ_opt() {
            Some(d) => d,
            None => return total,
        };
        while date < db {
            let days_left = (db - date).num_days().unsigned_abs();
            let weeks = (days_left / 7).min(self.calendar.free_weeks_from(date));
            if weeks > 0 {
                total += full_day * 5 * i128::from(weeks);
                // date + 7·weeks <= db, so this cannot leave the representable range.
                date = date + Days::new(weeks * 7);
                continue;
            }
            if self.calendar.is_working_day(date) {
                total += full_day;
            }
            date = match date.succ_opt() {
                Some(d) => d,
                None => return total,
            };
        }
        total + self.overlap_nanos(db, NaiveTime::MIN, Some(lb.time()))
    }

    /// Working days in `(from, to]`, for `from <= to`.
    fn count_working_days(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        let mut count: i64 = 0;
        let mut date = from;
        while date < to {
            let days_left = (to - date).num_days().unsigned_abs();
            let free = date.succ_opt().map_or(0, |next| self.calendar.free_weeks_from(next));
            let weeks = (days_left / 7).min(free);
            if weeks > 0 {
                // The window (date, date + 7·weeks] has exactly 5 weekdays per week.
                count += 5 * i64::try_from(weeks).unwrap_or(i64::MAX / 5);
                date = date + Days::new(weeks * 7);
                continue;
            }
            date = match date.succ_opt() {
                Some(d) => d,
                None => break,
            };
            if self.calendar.is_working_day(date) {
                count += 1;
            }
        }
        count
    }

    /// The `n`-th working day after `date` (`n = 0`: `date`); `None` past chrono's range.
    fn nth_working_day_after(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut remaining = u64::from(n);
        let mut day = date;
        while remaining > 0 {
            let next = day.succ_opt()?;
            // Leave at least one working day to find on a real day.
            let weeks = ((remaining - 1) / 5).min(self.calendar.free_weeks_from(next));
            if weeks > 0 {
                day = day.checked_add_days(Days::new(weeks * 7))?;
                remaining -= weeks * 5;
                continue;
            }
            day = next;
            if self.calendar.is_working_day(day) {
                remaining -= 1;
            }
        }
        Some(day)
    }
}

fn to_nanos(d: TimeDelta) -> i128 {
    // num_seconds truncates toward zero and subsec_nanos carries the sign, so this is exact.
    i128::from(d.num_seconds()) * NANOS_PER_SEC + i128::from(d.subsec_nanos())
}

fn from_nanos(n: i128) -> TimeDelta {
    let secs = n.div_euclid(NANOS_PER_SEC);
    let nanos = n.rem_euclid(NANOS_PER_SEC);
    i64::try_from(secs).ok().and_then(|s| TimeDelta::new(s, u32::try_from(nanos).unwrap_or(0))).unwrap_or(if n < 0 {
        TimeDelta::MIN
    } else {
        TimeDelta::MAX
    })
}

fn saturating_add(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < TimeDelta::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// An instant given in Beijing time.
    fn bj(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        date(y, m, d)
            .and_hms_opt(h, mi, s)
            .unwrap()
            .and_local_timezone(CHINA_STANDARD_TIME)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hm(h: i64, m: i64) -> TimeDelta {
        TimeDelta::hours(h) + TimeDelta::minutes(m)
    }

    fn clock() -> Clock {
        Clock::builtin()
    }

    // -- calendar: CSV ------------------------------------------------------------------------

    #[test]
    fn builtin_calendar_matches_csv() {
        let cal = Calendar::builtin();
        let rows = BUILTIN_CSV.lines().skip(1).filter(|l| !l.is_empty()).count();
        assert_eq!(cal.len(), rows);
        assert_eq!(cal.covered_years(), BTreeSet::from([2024, 2025, 2026]));
        assert!(cal.has_data_for(2025));
        assert!(!cal.has_data_for(2023));
        assert!(!cal.has_data_for(2027));
        assert_eq!(
            cal.get(date(2025, 10, 6)),
            Some(&CalendarEntry::new(date(2025, 10, 6), DayKind::Holiday, "Mid-autumn Festival"))
        );
    }

    #[test]
    fn national_day_2025_days() {
        let cal = Calendar::builtin();
        assert!(cal.is_working_day(date(2025, 9, 26)), "Fri");
        assert!(!cal.is_working_day(date(2025, 9, 27)), "Sat");
        assert!(cal.is_working_day(date(2025, 9, 28)), "Sun make-up day");
        assert!(cal.is_working_day(date(2025, 9, 30)), "Tue");
        for d in 1..=8 {
            assert!(!cal.is_working_day(date(2025, 10, d)), "Oct {d} is off");
        }
        assert!(cal.is_working_day(date(2025, 10, 9)));
        assert!(cal.is_working_day(date(2025, 10, 10)));
        assert!(cal.is_working_day(date(2025, 10, 11)), "Sat make-up day");
        assert!(!cal.is_working_day(date(2025, 10, 12)), "plain Sunday");
    }

    #[test]
    fn spring_festival_2026_days() {
        let cal = Calendar::builtin();
        assert_eq!(date(2026, 2, 14).weekday(), Weekday::Sat);
        assert!(cal.is_working_day(date(2026, 2, 14)));
        for d in 15..=23 {
            assert!(!cal.is_working_day(date(2026, 2, d)), "Feb {d} is off");
        }
        assert!(cal.is_working_day(date(2026, 2, 24)));
        assert_eq!(date(2026, 2, 28).weekday(), Weekday::Sat);
        assert!(cal.is_working_day(date(2026, 2, 28)));
        assert!(!cal.is_working_day(date(2026, 3, 1)));
    }

    #[test]
    fn year_without_data_falls_back_to_weekdays() {
        let cal = Calendar::builtin();
        assert!(!cal.has_data_for(2027));
        // 1 Jan 2027 is a Friday: really a holiday, but with no data it is a plain weekday.
        assert!(cal.is_working_day(date(2027, 1, 1)));
        assert!(!cal.is_working_day(date(2027, 1, 2)));
        assert!(!cal.is_working_day(date(2027, 1, 3)));
        assert!(cal.is_working_day(date(2027, 1, 4)));
        // Extreme years never panic.
        assert!(!cal.has_data_for(i32::MAX));
        assert!(!cal.has_data_for(i32::MIN));
        assert_eq!(cal.year_entries(i32::MAX).count(), 0);
    }

    #[test]
    fn set_remove_and_years() {
        let mut cal = Calendar::builtin();
        let ny = CalendarEntry::new(date(2027, 1, 1), DayKind::Holiday, "元旦");
        assert_eq!(cal.set(ny.clone()), None);
        assert!(cal.has_data_for(2027));
        assert!(cal.covered_years().contains(&2027));
        assert!(!cal.is_working_day(date(2027, 1, 1)));
        assert_eq!(cal.remove(date(2027, 1, 1)), Some(ny));
        assert!(!cal.has_data_for(2027));
        assert!(cal.is_working_day(date(2027, 1, 1)));
        assert_eq!(cal.remove(date(2027, 1, 1)), None);

        // Overriding an existing date returns the old entry.
        let old = cal.set(CalendarEntry::new(date(2025, 10, 8), DayKind::Workday, "局部调整"));
        assert_eq!(old.map(|e| e.kind), Some(DayKind::Holiday));
        assert!(cal.is_working_day(date(2025, 10, 8)));

        let n2024 = cal.year_entries(2024).count();
        assert_eq!(cal.remove_year(2024), n2024);
        assert!(!cal.has_data_for(2024));
        assert_eq!(cal.covered_years(), BTreeSet::from([2025, 2026]));
    }

    #[test]
    fn csv_accepts_bom_crlf_blank_lines_spaces_and_quotes() {
        let text = "\u{feff}date, kind ,name\r\n\r\n2025-10-01,holiday,National Day\r\n \
                    2025-10-11 , WORKDAY ,\"国庆节, 补班\"\r\n2025-10-02,holiday,\"Say \"\"hi\"\"\"\r\n";
        let cal = Calendar::from_csv(text).unwrap();
        assert_eq!(cal.len(), 3);
        assert_eq!(cal.get(date(2025, 10, 11)).unwrap().name, "国庆节, 补班");
        assert_eq!(cal.get(date(2025, 10, 11)).unwrap().kind, DayKind::Workday);
        assert_eq!(cal.get(date(2025, 10, 2)).unwrap().name, "Say \"hi\"");
        // Header only: an empty calendar.
        assert!(Calendar::from_csv("date,kind,name\n").unwrap().is_empty());
    }

    #[test]
    fn csv_errors_have_codes_and_lines() {
        let cases: &[(&str, &str, usize)] = &[
            ("", "calendar.bad_csv", 1),
            ("\n\n", "calendar.bad_csv", 1),
            ("day,kind,name\n", "calendar.bad_csv", 1),
            ("date,kind\n", "calendar.bad_csv", 1),
            ("date,kind,name\n2025-10-01,holiday\n", "calendar.bad_csv", 2),
            ("date,kind,name\n2025-10-01,holiday,a,b\n", "calendar.bad_csv", 2),
            ("date,kind,name\n2025-10-01,holiday,\n", "calendar.bad_csv", 2),
            ("date,kind,name\n2025-10-01,holiday,\"open\n", "calendar.bad_csv", 2),
            ("date,kind,name\n2025-10-01,holiday,\"a\"b\n", "calendar.bad_csv", 2),
            ("date,kind,name\n2025-02-30,holiday,x\n", "calendar.bad_date", 2),
            ("date,kind,name\n2025/10/01,holiday,x\n", "calendar.bad_date", 2),
            ("date,kind,name\n2025-1-1,holiday,x\n", "calendar.bad_date", 2),
            ("date,kind,name\n,holiday,x\n", "calendar.bad_date", 2),
            ("date,kind,name\n2025-10-01,off,x\n", "calendar.bad_kind", 2),
            ("date,kind,name\n2025-10-01,,x\n", "calendar.bad_kind", 2),
            ("date,kind,name\n2025-10-01,holiday,x\n\n2025-10-01,workday,y\n", "calendar.duplicate_date", 4),
        ];
        for (text, code, line) in cases {
            let err = Calendar::from_csv(text).unwrap_err();
            assert_eq!(err.code(), *code, "{text:?}: {err}");
            assert_eq!(err.line(), Some(*line), "{text:?}: {err}");
        }
    }

    #[test]
    fn csv_round_trips_builtin() {
        let cal = Calendar::builtin();
        assert_eq!(Calendar::from_csv(&cal.to_csv()).unwrap(), cal);
        assert_eq!(cal.to_csv(), BUILTIN_CSV, "same format as the shipped file");
    }

    #[test]
    fn to_csv_normalises_unparseable_names() {
        let cal: Calendar = [
            CalendarEntry::new(date(2027, 1, 1), DayKind::Holiday, " 元旦\n假期 "),
            CalendarEntry::new(date(2027, 1, 2), DayKind::Holiday, "  "),
        ]
        .into_iter()
        .collect();
        let back = Calendar::from_csv(&cal.to_csv()).unwrap();
        assert_eq!(back.get(date(2027, 1, 1)).unwrap().name, "元旦 假期");
        assert_eq!(back.get(date(2027, 1, 2)).unwrap().name, "-");
    }

    // -- calendar: iCal -----------------------------------------------------------------------

    const SAMPLE_ICS: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Test//CN Holidays//ZH\r\n\
X-WR-CALNAME:中国节假日\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Asia/Shanghai\r\n\
BEGIN:STANDARD\r\n\
DTSTART:19700101T000000\r\n\
TZOFFSETFROM:+0800\r\n\
TZOFFSETTO:+0800\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
UID:nd-2025\r\n\
DTSTART;VALUE=DATE:20251001\r\n\
DTEND;VALUE=DATE:20251009\r\n\
SUMMARY;LANGUAGE=zh-CN:国庆节\\, 中秋节 休\r\n\
BEGIN:VALARM\r\n\
TRIGGER:-PT15M\r\n\
ACTION:DISPLAY\r\n\
DESCRIPTION:上班提醒\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20251006\r\n\
SUMMARY:中秋节\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20250928\r\n\
SUMMARY:国庆节补班\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART;VALUE=DATE:20251011\r\n\
DTEND;VALUE=DATE:20251012\r\n\
SUMMARY:国庆节\r\n\
\x20上班\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTART:20260215\r\n\
DURATION:P9D\r\n\
SUMMARY:春节\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
STATUS:CANCELLED\r\n\
DTSTART;VALUE=DATE:20250505\r\n\
SUMMARY:取消的\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn ical_feed_becomes_entries() {
        let entries = Calendar::from_ical(SAMPLE_ICS).unwrap();
        assert_eq!(entries.len(), 1 + 8 + 1 + 9);
        assert!(entries.windows(2).all(|w| w[0].date < w[1].date), "sorted, no duplicates");

        let by_date: BTreeMap<NaiveDate, &CalendarEntry> = entries.iter().map(|e| (e.date, e)).collect();
        assert_eq!(by_date[&date(2025, 9, 28)].kind, DayKind::Workday);
        assert_eq!(by_date[&date(2025, 9, 28)].name, "国庆节补班");
        for d in 1..=8 {
            let e = by_date[&date(2025, 10, d)];
            assert_eq!(e.kind, DayKind::Holiday);
            // Overlapping same-kind events keep the first name; the escape is undone.
            assert_eq!(e.name, "国庆节, 中秋节 休");
        }
        assert!(!by_date.contains_key(&date(2025, 10, 9)), "DTEND is exclusive");
        assert_eq!(by_date[&date(2025, 10, 11)].kind, DayKind::Workday);
        assert_eq!(by_date[&date(2025, 10, 11)].name, "国庆节上班", "unfolded");
        assert!(!by_date.contains_key(&date(2025, 10, 12)));
        assert!(by_date.contains_key(&date(2026, 2, 15)) && by_date.contains_key(&date(2026, 2, 23)));
        assert!(!by_date.contains_key(&date(2026, 2, 24)), "P9D");
        assert!(!by_date.contains_key(&date(2025, 5, 5)), "cancelled");

        // Applied to an empty calendar it reproduces the National Day working-day answer.
        let cal: Calendar = entries.into_iter().collect();
        let clock = Clock::new(cal, WorkingHours::default());
        assert_eq!(clock.due_after_working_days(bj(2025, 9, 30, 10, 0, 0), 3), bj(2025, 10, 11, 23, 59, 59));
    }

    #[test]
    fn ical_summary_with_ban_is_workday() {
        for summary in ["班", "补班", "上班", "春节 (班)"] {
            let ics = format!(
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260214\nSUMMARY:{summary}\nEND:VEVENT\nEND:VCALENDAR\n"
            );
            let entries = Calendar::from_ical(&ics).unwrap();
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].kind, DayKind::Workday, "{summary}");
        }
        let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260214\nDURATION:P1W\nSUMMARY:休\nEND:VEVENT\nEND:VCALENDAR";
        let entries = Calendar::from_ical(ics).unwrap();
        assert_eq!(entries.len(), 7);
        assert!(entries.iter().all(|e| e.kind == DayKind::Holiday));
        // An empty calendar is fine.
        assert!(Calendar::from_ical("BEGIN:VCALENDAR\nEND:VCALENDAR\n").unwrap().is_empty());
    }

    #[test]
    fn ical_errors() {
        let wrap = |body: &str| format!("BEGIN:VCALENDAR\n{body}END:VCALENDAR\n");
        let cases: Vec<(String, usize)> = vec![
            (String::new(), 1),
            ("just text\n".to_string(), 1),
            ("BEGIN:VEVENT\nEND:VEVENT\n".to_string(), 1),
            (" leading continuation\nBEGIN:VCALENDAR\nEND:VCALENDAR\n".to_string(), 1),
            ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20251001\nSUMMARY:x\n".to_string(), 4),
            (wrap("BEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\n"), 2),
            (wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20251001\nEND:VEVENT\n"), 2),
            (wrap("BEGIN:VEVENT\nDTSTART:20251001T000000\nSUMMARY:x\nEND:VEVENT\n"), 3),
            (wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE-TIME:20251001\nSUMMARY:x\nEND:VEVENT\n"), 3),
            (wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20250230\nSUMMARY:x\nEND:VEVENT\n"), 3),
            (wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:2025101\nSUMMARY:x\nEND:VEVENT\n"), 3),
            (
                wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20251008\nDTEND;VALUE=DATE:20251001\nSUMMARY:x\nEND:VEVENT\n"),
                2,
            ),
            (
                wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20251001\nDTEND;VALUE=DATE:20251001\nSUMMARY:x\nEND:VEVENT\n"),
                2,
            ),
            (
                wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20200101\nDTEND;VALUE=DATE:20300101\nSUMMARY:x\nEND:VEVENT\n"),
                2,
            ),
            (wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20251001\nDURATION:PT8H\nSUMMARY:x\nEND:VEVENT\n"), 4),
            (
                wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20251001\nSUMMARY:休\nEND:VEVENT\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20251001\nSUMMARY:班\nEND:VEVENT\n"),
                6,
            ),
            (wrap("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20251001\nDTSTART;VALUE=DATE:20251002\nEND:VEVENT\n"), 4),
            (wrap("BEGIN:VEVENT\nEND:VTODO\n"), 3),
            (wrap("END:VEVENT\n"), 2),
            (wrap("no colon here\n"), 2),
            (wrap("BEGIN:VCALENDAR\nEND:VCALENDAR\n"), 2),
            ("BEGIN:VCALENDAR\nEND:VCALENDAR\nSUMMARY:after\n".to_string(), 3),
        ];
        for (text, line) in cases {
            let err = Calendar::from_ical(&text).unwrap_err();
            assert_eq!(err.code(), "calendar.bad_ical", "{text:?}");
            assert_eq!(err.line(), Some(line), "{text:?}: {err}");
        }
    }

    #[test]
    fn ical_content_line_parsing() {
        let ContentLine { name, params, value } =
            split_content_line("summary;ALTREP=\"http://x/a:b;c\";language=zh:a:b").unwrap();
        assert_eq!(name, "SUMMARY");
        assert_eq!(
            params,
            vec![("ALTREP".to_string(), "http://x/a:b;c".to_string()), ("LANGUAGE".to_string(), "zh".to_string())]
        );
        assert_eq!(value, "a:b");
        assert_eq!(unescape_ical_text(r"a\,b\;c\\d\ne\x\"), "a,b;c\\d e\\x\\");
        assert_eq!(parse_ical_day_duration("P2W"), Some(14));
        assert_eq!(parse_ical_day_duration("+P3D"), Some(3));
        assert_eq!(parse_ical_day_duration("-P3D"), None);
        assert_eq!(parse_ical_day_duration("PD"), None);
        assert_eq!(parse_ical_day_duration("P99999999999999999999D"), None);
    }

    // -- working hours --------------------------------------------------------------------------

    #[test]
    fn working_hours_config() {
        let default = WorkingHours::default();
        assert_eq!(default.daily(), hm(7, 30));
        assert_eq!(default.to_string(), "08:30-12:00,13:30-17:30");
        assert_eq!(WorkingHours::parse("08:30-12:00,13:30-17:30").unwrap(), default);
        assert_eq!(WorkingHours::parse(" 13:30 - 17:30 , 08:30-12:00 ").unwrap(), default);
        let odd = WorkingHours::parse("09:00:30-12:00,12:00-17:00").unwrap();
        assert_eq!(odd.to_string(), "09:00:30-12:00,12:00-17:00");
        assert_eq!(WorkingHours::parse(&odd.to_string()).unwrap(), odd);
        assert!(default.contains(NaiveTime::from_hms_opt(8, 30, 0).unwrap()));
        assert!(!default.contains(NaiveTime::from_hms_opt(12, 0, 0).unwrap()));

        for bad in ["", ",", "08:30", "08:30-25:00", "12:00-08:30", "09:00-09:00", "08:00-12:00,11:00-13:00", "8h-9h"] {
            let err = WorkingHours::parse(bad).unwrap_err();
            assert_eq!(err.code(), "clock.bad_hours", "{bad:?}");
            assert_eq!(err.line(), None);
        }
        let t = NaiveTime::from_hms_nano_opt(9, 0, 0, 5).unwrap();
        let err = WorkingHours::new(vec![(t, NaiveTime::from_hms_opt(10, 0, 0).unwrap())]);
        assert_eq!(err.unwrap_err().code(), "clock.bad_hours");
    }

    #[test]
    fn threshold_validation() {
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            let err = clock().with_yellow_threshold(bad).unwrap_err();
            assert_eq!(err.code(), "clock.bad_threshold");
        }
        assert_eq!(clock().with_yellow_threshold(0.5).unwrap().yellow_threshold(), 0.5);
        assert_eq!(clock().yellow_threshold(), DEFAULT_YELLOW_THRESHOLD);
    }

    #[test]
    fn error_codes_are_stable() {
        let errors = [
            (ClockError::BadCsv { line: 1, reason: String::new() }, "calendar.bad_csv"),
            (ClockError::BadDate { line: 1, value: String::new() }, "calendar.bad_date"),
            (ClockError::BadKind { line: 1, value: String::new() }, "calendar.bad_kind"),
            (ClockError::DuplicateDate { line: 1, date: date(2025, 1, 1) }, "calendar.duplicate_date"),
            (ClockError::BadIcal { line: 1, reason: String::new() }, "calendar.bad_ical"),
            (ClockError::BadHours { reason: String::new() }, "clock.bad_hours"),
            (ClockError::BadThreshold { value: 2.0 }, "clock.bad_threshold"),
        ];
        for (err, code) in errors {
            assert_eq!(err.code(), code);
            assert!(!err.to_string().is_empty());
        }
    }

    // -- due after working days -----------------------------------------------------------------

    #[test]
    fn national_day_2025_three_working_days() {
        let c = clock();
        // 30 Sep does not count; 1–8 Oct off; 9 Oct = 1, 10 Oct = 2, Sat 11 Oct make-up = 3.
        let due = c.due_after_working_days(bj(2025, 9, 30, 10, 0, 0), 3);
        assert_eq!(due, bj(2025, 10, 11, 23, 59, 59));
        assert_eq!(due.to_rfc3339(), "2025-10-11T15:59:59+00:00");
        assert_eq!(c.due_after_working_days(bj(2025, 9, 30, 10, 0, 0), 1), bj(2025, 10, 9, 23, 59, 59));
        assert_eq!(c.due_after_working_days(bj(2025, 9, 30, 10, 0, 0), 4), bj(2025, 10, 13, 23, 59, 59));
        // Dispatched during the break: the next working days are 9, 10, 11 Oct.
        assert_eq!(c.due_after_working_days(bj(2025, 10, 3, 9, 0, 0), 3), bj(2025, 10, 11, 23, 59, 59));
    }

    #[test]
    fn saturday_before_national_day_make_up_sunday() {
        let c = clock();
        assert_eq!(c.due_after_working_days(bj(2025, 9, 27, 15, 0, 0), 1), bj(2025, 9, 28, 23, 59, 59));
        assert_eq!(c.due_after_working_days(bj(2025, 9, 27, 15, 0, 0), 2), bj(2025, 9, 29, 23, 59, 59));
    }

    #[test]
    fn business_day_is_taken_in_beijing_time() {
        let c = clock();
        // 2025-09-29T17:00Z is 30 Sep 01:00 in Beijing: the start day is 30 Sep, not 29 Sep.
        let start = DateTime::parse_from_rfc3339("2025-09-29T17:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(c.business_date(start), date(2025, 9, 30));
        assert_eq!(c.due_after_working_days(start, 3), bj(2025, 10, 11, 23, 59, 59));
        // A different business offset moves the day boundary.
        let utc_clock = clock().with_offset(FixedOffset::east_opt(0).unwrap());
        assert_eq!(utc_clock.business_date(start), date(2025, 9, 29));
        assert_eq!(utc_clock.due_after_working_days(start, 1), date(2025, 9, 30).and_time(END_OF_DAY).and_utc());
    }

    #[test]
    fn zero_working_days_is_end_of_same_day() {
        let c = clock();
        assert_eq!(c.due_after_working_days(bj(2025, 9, 30, 10, 0, 0), 0), bj(2025, 9, 30, 23, 59, 59));
        // Even on a day off.
        assert_eq!(c.due_after_working_days(bj(2025, 10, 1, 10, 0, 0), 0), bj(2025, 10, 1, 23, 59, 59));
    }

    #[test]
    fn spring_festival_2026_working_days() {
        let c = clock();
        // Fri 13 Feb → Sat 14 Feb make-up day.
        assert_eq!(c.due_after_working_days(bj(2026, 2, 13, 9, 0, 0), 1), bj(2026, 2, 14, 23, 59, 59));
        assert_eq!(c.due_after_working_days(bj(2026, 2, 13, 9, 0, 0), 2), bj(2026, 2, 24, 23, 59, 59));
        // From the make-up Saturday itself: 15–23 Feb off, so Tue 24 Feb.
        assert_eq!(c.due_after_working_days(bj(2026, 2, 14, 9, 0, 0), 1), bj(2026, 2, 24, 23, 59, 59));
        // 24, 25, 26, 27 Feb, then Sat 28 Feb make-up day.
        assert_eq!(c.due_after_working_days(bj(2026, 2, 14, 9, 0, 0), 5), bj(2026, 2, 28, 23, 59, 59));
        assert_eq!(c.due_after_working_days(bj(2026, 2, 14, 9, 0, 0), 6), bj(2026, 3, 2, 23, 59, 59));
    }

    #[test]
    fn new_year_2025_and_2027_fallback() {
        let c = clock();
        // 1 Jan 2025 is a holiday.
        assert_eq!(c.due_after_working_days(bj(2024, 12, 31, 16, 0, 0), 1), bj(2025, 1, 2, 23, 59, 59));
        // 2027 has no data: Fri 1 Jan 2027 counts as a weekday.
        assert_eq!(c.due_after_working_days(bj(2026, 12, 31, 16, 0, 0), 1), bj(2027, 1, 1, 23, 59, 59));
        assert_eq!(c.due_after_working_days(bj(2026, 12, 31, 16, 0, 0), 2), bj(2027, 1, 4, 23, 59, 59));
        assert_eq!(c.years_without_data(bj(2026, 12, 31, 16, 0, 0), bj(2027, 1, 4, 23, 59, 59)), vec![2027]);
        assert!(c.years_without_data(bj(2025, 9, 30, 0, 0, 0), bj(2026, 3, 1, 0, 0, 0)).is_empty());
        // Long limits across the gap after 2026 still count plain weekdays: 2027-01-01 (Fri)
        // + 260 working days = 52 weeks later, Fri 31 Dec 2027.
        assert_eq!(c.due_after_working_days(bj(2026, 12, 31, 16, 0, 0), 261), bj(2027, 12, 31, 23, 59, 59));
    }

    #[test]
    fn working_days_between_counts_like_the_due_rule() {
        let c = clock();
        let start = bj(2025, 9, 30, 10, 0, 0);
        assert_eq!(c.working_days_between(start, bj(2025, 10, 11, 23, 59, 59)), 3);
        assert_eq!(c.working_days_between(bj(2025, 10, 11, 23, 59, 59), start), -3);
        assert_eq!(c.working_days_between(start, bj(2025, 9, 30, 23, 0, 0)), 0);
        assert_eq!(c.working_days_between(start, bj(2025, 10, 8, 23, 0, 0)), 0);
        // A whole year, checked against a day-by-day count of the calendar.
        let expected =
            (1..=365).filter(|&o| c.calendar().is_working_day(NaiveDate::from_yo_opt(2025, o).unwrap())).count() as i64;
        assert_eq!(c.working_days_between(bj(2024, 12, 31, 12, 0, 0), bj(2025, 12, 31, 12, 0, 0)), expected);
    }

    // -- due after working hours ----------------------------------------------------------------

    #[test]
    fn working_hours_across_lunch() {
        let c = clock();
        // Mon 22 Sep 2025 11:00 + 2 h: 11:00–12:00, then 13:30–14:30.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 11, 0, 0), hm(2, 0)), bj(2025, 9, 22, 14, 30, 0));
        // Exactly to the end of the morning: due 12:00, not 13:30.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 11, 0, 0), hm(1, 0)), bj(2025, 9, 22, 12, 0, 0));
        // Starting during lunch: counting begins 13:30.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 12, 30, 0), hm(0, 30)), bj(2025, 9, 22, 14, 0, 0));
        // A full day from 08:30 ends at 17:30.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 8, 30, 0), hm(7, 30)), bj(2025, 9, 22, 17, 30, 0));
    }

    #[test]
    fn working_hours_across_weekend() {
        let c = clock();
        // Fri 19 Sep 16:30 + 2 h: 1 h on Friday, 1 h on Monday from 08:30.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 19, 16, 30, 0), hm(2, 0)), bj(2025, 9, 22, 9, 30, 0));
        // Sat 27 Sep 10:00 + 1 h: Sunday 28 Sep is a make-up working day.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 27, 10, 0, 0), hm(1, 0)), bj(2025, 9, 28, 9, 30, 0));
    }

    #[test]
    fn working_hours_across_holiday() {
        let c = clock();
        // Tue 30 Sep 16:00 + 3 h: 1.5 h on 30 Sep, 1–8 Oct off, 1.5 h on Thu 9 Oct.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 30, 16, 0, 0), hm(3, 0)), bj(2025, 10, 9, 10, 0, 0));
        // Spring Festival 2026: Sat 14 Feb (make-up) 17:00 + 1 h → Tue 24 Feb 09:00.
        assert_eq!(c.due_after_working_hours(bj(2026, 2, 14, 17, 0, 0), hm(1, 0)), bj(2026, 2, 24, 9, 0, 0));
    }

    #[test]
    fn working_hours_start_outside_hours() {
        let c = clock();
        // Before 08:30.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 7, 0, 0), hm(1, 0)), bj(2025, 9, 22, 9, 30, 0));
        // After 17:30: next morning.
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 18, 0, 0), hm(1, 0)), bj(2025, 9, 23, 9, 30, 0));
        // Exactly 17:30 is outside ([start, end) intervals).
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 17, 30, 0), hm(0, 15)), bj(2025, 9, 23, 8, 45, 0));
        // Zero or negative durations return the start.
        let s = bj(2025, 9, 22, 18, 0, 0);
        assert_eq!(c.due_after_working_hours(s, TimeDelta::zero()), s);
        assert_eq!(c.due_after_working_hours(s, hm(-1, 0)), s);
    }

    #[test]
    fn working_hours_in_year_without_data() {
        let c = clock();
        // Fri 1 Jan 2027: no data, so a plain working Friday.
        assert_eq!(c.due_after_working_hours(bj(2027, 1, 1, 9, 0, 0), hm(1, 0)), bj(2027, 1, 1, 10, 0, 0));
        // Two weeks of work (75 h) from Mon 4 Jan 2027 08:30 ends Fri 15 Jan 17:30.
        assert_eq!(c.due_after_working_hours(bj(2027, 1, 4, 8, 30, 0), hm(75, 0)), bj(2027, 1, 15, 17, 30, 0));
        // The same from a weekend: the two weeks are crossed in one skip and must still end
        // at Friday's close, not at Monday 08:30 when the budget is exactly used up.
        assert_eq!(c.due_after_working_hours(bj(2027, 1, 2, 10, 0, 0), hm(75, 0)), bj(2027, 1, 15, 17, 30, 0));
    }

    #[test]
    fn custom_working_hours() {
        let hours = WorkingHours::parse("09:00-17:00").unwrap();
        let c = Clock::new(Calendar::builtin(), hours);
        assert_eq!(c.due_after_working_hours(bj(2025, 9, 22, 16, 0, 0), hm(2, 0)), bj(2025, 9, 23, 10, 0, 0));
        assert_eq!(c.working_time_between(bj(2025, 9, 22, 0, 0, 0), bj(2025, 9, 23, 0, 0, 0)), hm(8, 0));
    }

    #[test]
    fn working_time_between_examples() {
        let c = clock();
        assert_eq!(c.working_time_between(bj(2025, 9, 22, 11, 0, 0), bj(2025, 9, 22, 14, 0, 0)), hm(1, 30));
        assert_eq!(c.working_time_between(bj(2025, 9, 22, 14, 0, 0), bj(2025, 9, 22, 11, 0, 0)), hm(-1, -30));
        assert_eq!(c.working_time_between(bj(2025, 9, 22, 12, 10, 0), bj(2025, 9, 22, 13, 0, 0)), TimeDelta::zero());
        assert_eq!(c.working_time_between(bj(2025, 9, 19, 17, 0, 0), bj(2025, 9, 22, 9, 0, 0)), hm(1, 0));
        // 30 Sep 08:30 → 9 Oct 08:30: only 30 Sep counts.
        assert_eq!(c.working_time_between(bj(2025, 9, 30, 8, 30, 0), bj(2025, 10, 9, 8, 30, 0)), hm(7, 30));
        // A whole plain week.
        assert_eq!(c.working_time_between(bj(2025, 9, 15, 0, 0, 0), bj(2025, 9, 22, 0, 0, 0)), hm(37, 30));
        // The 2025 total equals working days × 7.5 h.
        let days = c.working_days_between(bj(2024, 12, 31, 12, 0, 0), bj(2025, 12, 31, 12, 0, 0));
        assert_eq!(c.working_time_between(bj(2025, 1, 1, 0, 0, 0), bj(2026, 1, 1, 0, 0, 0)), hm(7, 30) * days as i32);
    }

    // -- time limits, warnings, pauses ----------------------------------------------------------

    #[test]
    fn time_limit_due() {
        let c = clock();
        let start = bj(2025, 9, 30, 10, 0, 0);
        assert_eq!(TimeLimit::WorkingDays(3).due(&c, start), bj(2025, 10, 11, 23, 59, 59));
        // 2 h on 30 Sep (10–12), 4 h (13:30–17:30), then 2 h on 9 Oct.
        assert_eq!(TimeLimit::WorkingHours(8).due(&c, start), bj(2025, 10, 9, 10, 30, 0));
        assert_eq!(TimeLimit::CalendarHours(24).due(&c, start), bj(2025, 10, 1, 10, 0, 0));
        assert_eq!(TimeLimit::WorkingDays(3).kind(), LimitKind::WorkingDays);
        assert_eq!(TimeLimit::WorkingHours(3).kind(), LimitKind::WorkingHours);
        assert_eq!(TimeLimit::CalendarHours(3).kind(), LimitKind::CalendarHours);
    }

    #[test]
    fn working_hours_warning_uses_working_time() {
        let c = clock();
        // Mon 22 Sep 08:30 + 10 working hours → Tue 23 Sep 11:00; 80 % = 8 h → Tue 09:00.
        let start = bj(2025, 9, 22, 8, 30, 0);
        let due = TimeLimit::WorkingHours(10).due(&c, start);
        assert_eq!(due, bj(2025, 9, 23, 11, 0, 0));
        let w = |now| c.warning(start, due, now, LimitKind::WorkingHours);
        assert_eq!(w(bj(2025, 9, 22, 8, 0, 0)), Warning::Normal, "before start");
        // Overnight is 75 % of wall time... but only 7.5 h of work.
        assert_eq!(w(bj(2025, 9, 23, 8, 0, 0)), Warning::Normal);
        assert_eq!(w(bj(2025, 9, 23, 8, 59, 59)), Warning::Normal);
        assert_eq!(w(bj(2025, 9, 23, 9, 0, 0)), Warning::Yellow);
        assert_eq!(w(due), Warning::Yellow, "at the due instant: not yet overdue");
        assert_eq!(w(due + TimeDelta::seconds(1)), Warning::Red);
    }

    #[test]
    fn working_days_warning_ignores_holidays() {
        let c = clock();
        let start = bj(2025, 9, 30, 10, 0, 0);
        let due = TimeLimit::WorkingDays(3).due(&c, start);
        // Working time start→due: 6 h on 30 Sep + 3 × 7.5 h = 28.5 h; 80 % = 22 h 48 min,
        // reached on 11 Oct at 08:30 + 1 h 48 min = 10:18.
        let w = |now| c.warning(start, due, now, LimitKind::WorkingDays);
        assert_eq!(w(bj(2025, 10, 5, 12, 0, 0)), Warning::Normal, "during the break");
        assert_eq!(w(bj(2025, 10, 10, 17, 30, 0)), Warning::Normal);
        assert_eq!(w(bj(2025, 10, 11, 10, 17, 59)), Warning::Normal);
        assert_eq!(w(bj(2025, 10, 11, 10, 18, 0)), Warning::Yellow);
        assert_eq!(w(bj(2025, 10, 11, 23, 59, 59)), Warning::Yellow);
        assert_eq!(w(bj(2025, 10, 12, 0, 0, 0)), Warning::Red);
    }

    #[test]
    fn calendar_hours_warning_and_threshold() {
        let c = clock();
        let start = bj(2025, 10, 1, 0, 0, 0);
        let due = TimeLimit::CalendarHours(10).due(&c, start);
        let w = |c: &Clock, now| c.warning(start, due, now, LimitKind::CalendarHours);
        assert_eq!(w(&c, bj(2025, 10, 1, 7, 59, 59)), Warning::Normal);
        assert_eq!(w(&c, bj(2025, 10, 1, 8, 0, 0)), Warning::Yellow);
        assert_eq!(w(&c, bj(2025, 10, 1, 10, 0, 1)), Warning::Red);
        let half = clock().with_yellow_threshold(0.5).unwrap();
        assert_eq!(w(&half, bj(2025, 10, 1, 4, 59, 59)), Warning::Normal);
        assert_eq!(w(&half, bj(2025, 10, 1, 5, 0, 0)), Warning::Yellow);
        let zero = clock().with_yellow_threshold(0.0).unwrap();
        assert_eq!(w(&zero, start), Warning::Yellow);
    }

    #[test]
    fn warning_without_working_time_falls_back_to_wall_time() {
        let c = clock();
        // Same-day limit dispatched after hours: no working time until 23:59:59.
        let start = bj(2025, 9, 22, 18, 0, 0);
        let due = c.due_after_working_days(start, 0);
        assert_eq!(c.working_time_between(start, due), TimeDelta::zero());
        let w = |now| c.warning(start, due, now, LimitKind::WorkingDays);
        assert_eq!(w(bj(2025, 9, 22, 22, 0, 0)), Warning::Normal);
        assert_eq!(w(bj(2025, 9, 22, 23, 0, 0)), Warning::Yellow);
        assert_eq!(w(bj(2025, 9, 23, 0, 0, 0)), Warning::Red);
        // Zero-length span.
        assert_eq!(c.warning(start, start, start, LimitKind::CalendarHours), Warning::Yellow);
    }

    #[test]
    fn pause_extends_working_hours_limit() {
        let c = clock();
        let due = bj(2025, 9, 23, 11, 0, 0);
        // Paused Mon 10:00–14:00: 2 h + 0.5 h of working time.
        let extended =
            c.extend_for_pause(due, bj(2025, 9, 22, 10, 0, 0), bj(2025, 9, 22, 14, 0, 0), LimitKind::WorkingHours);
        assert_eq!(extended, bj(2025, 9, 23, 15, 0, 0));
        // A pause entirely outside working hours moves nothing.
        let night =
            c.extend_for_pause(due, bj(2025, 9, 22, 18, 0, 0), bj(2025, 9, 23, 8, 0, 0), LimitKind::WorkingHours);
        assert_eq!(night, due);
        // Paused over National Day: only 30 Sep afternoon counts (13:30–17:30 = 4 h).
        let due = bj(2025, 10, 9, 10, 0, 0);
        let extended =
            c.extend_for_pause(due, bj(2025, 9, 30, 13, 0, 0), bj(2025, 10, 9, 8, 0, 0), LimitKind::WorkingHours);
        assert_eq!(extended, bj(2025, 10, 9, 15, 30, 0));
    }

    #[test]
    fn pause_extends_working_days_limit() {
        let c = clock();
        let due = bj(2025, 10, 11, 23, 59, 59);
        // Paused 29 Sep → 9 Oct: working days in (29 Sep, 9 Oct] are 30 Sep and 9 Oct.
        let extended =
            c.extend_for_pause(due, bj(2025, 9, 29, 10, 0, 0), bj(2025, 10, 9, 15, 0, 0), LimitKind::WorkingDays);
        assert_eq!(extended, bj(2025, 10, 14, 23, 59, 59));
        // Same-day pause: nothing.
        let same = c.extend_for_pause(due, bj(2025, 10, 9, 9, 0, 0), bj(2025, 10, 9, 17, 0, 0), LimitKind::WorkingDays);
        assert_eq!(same, due);
        // Pause entirely inside the holiday: nothing.
        let hol = c.extend_for_pause(due, bj(2025, 10, 2, 9, 0, 0), bj(2025, 10, 6, 17, 0, 0), LimitKind::WorkingDays);
        assert_eq!(hol, due);
    }

    #[test]
    fn pause_extends_calendar_limit_and_ignores_empty_pauses() {
        let c = clock();
        let due = bj(2025, 10, 1, 10, 0, 0);
        let p = bj(2025, 10, 1, 2, 0, 0);
        assert_eq!(c.extend_for_pause(due, p, p + hm(3, 0), LimitKind::CalendarHours), due + hm(3, 0));
        for kind in [LimitKind::WorkingDays, LimitKind::WorkingHours, LimitKind::CalendarHours] {
            assert_eq!(c.extend_for_pause(due, p, p, kind), due);
            assert_eq!(c.extend_for_pause(due, p, p - hm(3, 0), kind), due);
        }
    }

    #[test]
    fn serde_shapes() {
        // serde_json is not a dependency of this module; just make sure the derives exist.
        fn assert_serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        assert_serde::<TimeLimit>();
        assert_serde::<LimitKind>();
        assert_serde::<Warning>();
        assert_serde::<CalendarEntry>();
        assert_serde::<DayKind>();
        assert_eq!(DayKind::parse("HOLIDAY"), Some(DayKind::Holiday));
        assert_eq!(DayKind::Workday.as_str(), "workday");
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let c = clock();
        let (min, max) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
        assert_eq!(c.due_after_working_days(max, u32::MAX), max);
        assert_eq!(c.due_after_working_days(min, u32::MAX), max);
        assert_eq!(c.due_after_working_days(bj(2025, 1, 1, 0, 0, 0), u32::MAX), max);
        assert_eq!(c.due_after_working_hours(bj(2025, 1, 1, 0, 0, 0), TimeDelta::MAX), max);
        assert_eq!(c.due_after_working_hours(max, TimeDelta::hours(1)), max);
        assert_eq!(TimeLimit::CalendarHours(u32::MAX).due(&c, max), max);
        assert!(c.working_time_between(min, max) > TimeDelta::zero());
        assert!(c.working_time_between(max, min) < TimeDelta::zero());
        assert!(c.working_days_between(min, max) > 0);
        assert_eq!(c.warning(min, max, max, LimitKind::WorkingHours), Warning::Yellow);
        let _ = c.extend_for_pause(max, min, max, LimitKind::WorkingDays);
        let _ = c.extend_for_pause(max, min, max, LimitKind::WorkingHours);
        let _ = c.extend_for_pause(max, min, max, LimitKind::CalendarHours);
        let _ = c.years_without_data(bj(2020, 1, 1, 0, 0, 0), bj(2030, 1, 1, 0, 0, 0));
        assert!(c.is_working_time(bj(2025, 9, 22, 9, 0, 0)));
        assert!(!c.is_working_time(min));
    }

    // -- property tests -------------------------------------------------------------------------

    /// Day-by-day reference for the week-skipping fast paths.
    fn ref_working_days(c: &Clock, from: NaiveDate, to: NaiveDate) -> i64 {
        from.iter_days().skip(1).take_while(|d| *d <= to).filter(|d| c.calendar().is_working_day(*d)).count() as i64
    }

    fn ref_working_time(c: &Clock, a: DateTime<Utc>, b: DateTime<Utc>) -> TimeDelta {
        let (la, lb) = (c.to_business(a), c.to_business(b));
        let nanos: i128 = la
            .date()
            .iter_days()
            .take_while(|d| *d <= lb.date())
            .map(|d| {
                let from = if d == la.date() { la.time() } else { NaiveTime::MIN };
                let to = (d == lb.date()).then_some(lb.time());
                c.overlap_nanos(d, from, to)
            })
            .sum();
        from_nanos(nanos)
    }

    /// Instants between 2023 and 2030 with arbitrary nanoseconds.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (1_672_531_200i64..1_893_456_000i64, 0u32..1_000_000_000)
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
    }

    /// The built-in calendar plus random overrides in 2027–2029, so the fast paths meet gaps
    /// of every size between overrides.
    fn calendar_strategy() -> impl Strategy<Value = Calendar> {
        proptest::collection::vec((0u64..1095, any::<bool>()), 0..40).prop_map(|extra| {
            let mut cal = Calendar::builtin();
            for (offset, work) in extra {
                let d = date(2027, 1, 1) + Days::new(offset);
                let kind = if work { DayKind::Workday } else { DayKind::Holiday };
                cal.set(CalendarEntry::new(d, kind, "random"));
            }
            cal
        })
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9节班,\"'][A-Za-z0-9 节班,\"']{0,12}[A-Za-z0-9节班,\"']"
    }

    proptest! {
        // Failures are not persisted: a regressions file would be written next to this source
        // file inside the main repo. Re-run with the printed seed instead.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn prop_due_after_working_days_monotonic(start in instant(), a in 0u32..600, b in 0u32..600) {
            let c = clock();
            let (lo, hi) = (a.min(b), a.max(b));
            let (d_lo, d_hi) = (c.due_after_working_days(start, lo), c.due_after_working_days(start, hi));
            prop_assert!(d_lo <= d_hi);
            if lo < hi {
                prop_assert!(d_lo < d_hi);
            }
        }

        #[test]
        fn prop_due_after_working_days_lands_on_working_day_end(
            cal in calendar_strategy(), start in instant(), n in 1u32..800,
        ) {
            let c = Clock::new(cal, WorkingHours::default());
            let due = c.due_after_working_days(start, n);
            let local = c.to_business(due);
            prop_assert_eq!(local.time(), END_OF_DAY);
            prop_assert!(c.calendar().is_working_day(local.date()));
            prop_assert!(local.date() > c.business_date(start));
            prop_assert_eq!(c.working_days_between(start, due), i64::from(n));
            prop_assert_eq!(c.working_days_between(start, due), ref_working_days(&c, c.business_date(start), local.date()));
        }

        #[test]
        fn prop_working_time_round_trips(start in instant(), minutes in 0i64..(60 * 24 * 120)) {
            let c = clock();
            let d = TimeDelta::minutes(minutes);
            let due = c.due_after_working_hours(start, d);
            prop_assert!(due >= start);
            prop_assert_eq!(c.working_time_between(start, due), d);
            if minutes > 0 {
                // Earliest such instant: one second earlier is not enough.
                prop_assert!(c.working_time_between(start, due - TimeDelta::seconds(1)) < d);
            }
        }

        #[test]
        fn prop_whole_days_of_working_time_end_at_close(
            cal in calendar_strategy(), day in 0u64..2900, k in 1i32..400,
        ) {
            // Budgets that are whole days, started at midnight, are the case where the
            // week-skipping could land exactly on zero remaining.
            let c = Clock::new(cal, WorkingHours::default());
            let start = c.from_business(date(2023, 1, 1).and_time(NaiveTime::MIN) + Days::new(day));
            let d = c.hours().daily() * k;
            let due = c.due_after_working_hours(start, d);
            prop_assert_eq!(c.to_business(due).time(), NaiveTime::from_hms_opt(17, 30, 0).unwrap());
            prop_assert_eq!(c.working_time_between(start, due), d);
            prop_assert!(c.working_time_between(start, due - TimeDelta::seconds(1)) < d);
        }

        #[test]
        fn prop_working_time_round_trips_random_calendar(
            cal in calendar_strategy(), start in instant(), secs in 0i64..(3600 * 7 * 800),
        ) {
            let c = Clock::new(cal, WorkingHours::default());
            let d = TimeDelta::seconds(secs);
            let due = c.due_after_working_hours(start, d);
            prop_assert_eq!(c.working_time_between(start, due), d);
            prop_assert_eq!(c.working_time_between(start, due), ref_working_time(&c, start, due));
        }

        #[test]
        fn prop_working_time_matches_reference_and_is_additive(
            cal in calendar_strategy(), a in instant(), b in instant(), m in instant(),
        ) {
            let c = Clock::new(cal, WorkingHours::default());
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert_eq!(c.working_time_between(lo, hi), ref_working_time(&c, lo, hi));
            prop_assert_eq!(c.working_time_between(a, b), -c.working_time_between(b, a));
            prop_assert_eq!(c.working_time_between(a, m) + c.working_time_between(m, b), c.working_time_between(a, b));
            let (da, db) = (c.business_date(lo), c.business_date(hi));
            prop_assert_eq!(c.working_days_between(lo, hi), ref_working_days(&c, da, db));
        }

        #[test]
        fn prop_working_hours_pause_moves_by_paused_working_time(
            start in instant(), limit in 1u32..200, p in instant(), len in 0i64..(3600 * 24 * 20),
        ) {
            let c = clock();
            let due = TimeLimit::WorkingHours(limit).due(&c, start);
            let r = p + TimeDelta::seconds(len);
            let extended = c.extend_for_pause(due, p, r, LimitKind::WorkingHours);
            prop_assert!(extended >= due);
            prop_assert_eq!(c.working_time_between(due, extended), c.working_time_between(p, r));
        }

        #[test]
        fn prop_working_days_pause_moves_by_paused_working_days(
            start in instant(), n in 1u32..100, p in instant(), len in 0i64..(3600 * 24 * 40),
        ) {
            let c = clock();
            let due = c.due_after_working_days(start, n);
            let r = p + TimeDelta::seconds(len);
            let extended = c.extend_for_pause(due, p, r, LimitKind::WorkingDays);
            prop_assert_eq!(c.working_days_between(due, extended), c.working_days_between(p, r));
        }

        #[test]
        fn prop_warning_is_ordered_in_time(
            start in instant(), limit in 0u32..100, t1 in instant(), t2 in instant(), kind_i in 0usize..3,
        ) {
            let c = clock();
            let limit = [TimeLimit::WorkingDays(limit), TimeLimit::WorkingHours(limit), TimeLimit::CalendarHours(limit)][kind_i];
            let due = limit.due(&c, start);
            let (early, late) = (t1.min(t2), t1.max(t2));
            let (w1, w2) = (c.warning(start, due, early, limit.kind()), c.warning(start, due, late, limit.kind()));
            prop_assert!(w1 <= w2, "{:?} at {} then {:?} at {}", w1, early, w2, late);
            prop_assert_eq!(c.warning(start, due, late, limit.kind()) == Warning::Red, late > due);
        }

        #[test]
        fn prop_csv_round_trips(rows in proptest::collection::btree_map(0u64..20_000, (any::<bool>(), name_strategy()), 0..50)) {
            let cal: Calendar = rows
                .into_iter()
                .map(|(offset, (work, name))| {
                    let kind = if work { DayKind::Workday } else { DayKind::Holiday };
                    CalendarEntry::new(date(2000, 1, 1) + Days::new(offset), kind, name)
                })
                .collect();
            prop_assert_eq!(Calendar::from_csv(&cal.to_csv()).unwrap(), cal);
        }

        #[test]
        fn prop_parsers_never_panic(text in "\\PC{0,300}", lines in proptest::collection::vec("[A-Z;=:0-9\"\\\\ ,-]{0,30}", 0..20)) {
            let _ = Calendar::from_csv(&text);
            let _ = Calendar::from_ical(&text);
            let _ = WorkingHours::parse(&text);
            let joined = format!("BEGIN:VCALENDAR\n{}\nEND:VCALENDAR", lines.join("\n"));
            let _ = Calendar::from_ical(&joined);
            let _ = Calendar::from_csv(&format!("date,kind,name\n{}", lines.join("\n")));
        }
    }
}
