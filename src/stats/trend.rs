//! Trends: an indicator of a node month by month over a year, drawn as a
//! small SVG chart on the server (no script, nothing to load).

use chrono::{Datelike, NaiveDate};

use super::{
    indicators::{Tally, Value, INDICATORS},
    store, window, Period,
};
use crate::{kernel::error::Result, platform::db::Db, tree::Node};

/// One month's figures.
pub struct Month {
    pub start: NaiveDate,
    pub tally: Tally,
}

/// The twelve months ending with the one that holds `last`.
pub async fn months(db: &Db, node: &Node, last: NaiveDate) -> Result<Vec<Month>> {
    let mut out = vec![];
    let (mut start, _) = Period::Month.bounds(last);
    for _ in 0..11 {
        start = Period::Month.bounds(start.pred_opt().unwrap_or(start)).0;
    }
    for _ in 0..12 {
        let (from, to) = Period::Month.bounds(start);
        let mut tally = Tally::default();
        store::facts(db, &window(node, from, to)).await?.iter().for_each(|f| tally.add(f));
        out.push(Month { start: from, tally });
        start = to;
    }
    Ok(out)
}

/// An SVG line chart of one indicator over the months: rates on a 0–100 %
/// scale, counts from zero to their maximum; a month without a base is a
/// gap in the line. Only numbers and month labels go into the markup.
pub fn chart(months: &[Month], key: &str, label: &str) -> String {
    let rate = INDICATORS.iter().find(|i| i.key == key).is_some_and(|i| i.rate);
    let values: Vec<Option<f64>> = months
        .iter()
        .map(|m| match m.tally.value(key) {
            Value::Count(n) => Some(n as f64),
            Value::Rate { num, den } => Some(num as f64 * 100.0 / den as f64),
            Value::NoBase => None,
        })
        .collect();
    let top = if rate { 100.0 } else { values.iter().flatten().cloned().fold(0.0, f64::max).max(1.0) };
    let (w, h, left, bottom, top_pad) = (560.0, 160.0, 40.0, 24.0, 12.0);
    let step = (w - left - 10.0) / (months.len().max(2) - 1) as f64;
    let x = |i: usize| left + step * i as f64;
    let y = |v: f64| top_pad + (h - bottom - top_pad) * (1.0 - v / top);
    let mut svg = format!(
        "<svg class=\"trend\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{label}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let text = if rate { format!("{v:.0}%") } else { format!("{v:.0}") };
        svg += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{text}</text>",
            w - 10.0,
            left - 4.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    let mut path = String::new();
    let mut pen_down = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                path += &format!("{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(i), y(*v));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    svg += &format!("<path d=\"{}\" class=\"line\"/>", path.trim());
    for (i, (m, v)) in months.iter().zip(&values).enumerate() {
        if let Some(v) = v {
            let shown = if rate { format!("{v:.1}%") } else { format!("{v:.0}") };
            svg += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" class=\"dot\"><title>{}年{}月 {shown}</title></circle>",
                x(i),
                y(*v),
                m.start.year(),
                m.start.month()
            );
        }
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}月</text>",
            x(i),
            h - 6.0,
            m.start.month()
        );
    }
    svg + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_without_a_base_breaks_the_line() {
        let day = |m| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
        let with = |rated, satisfied| Tally { rated, satisfied, ..Default::default() };
        let months = vec![
            Month { start: day(1), tally: with(4, 3) },
            Month { start: day(2), tally: with(0, 0) },
            Month { start: day(3), tally: with(2, 2) },
        ];
        let svg = chart(&months, "satisfaction", "满意率");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches('M').count(), 2, "two pieces of line: {svg}");
        assert!(svg.contains("2026年1月 75.0%") && svg.contains(">100%</text>"));
    }
}
