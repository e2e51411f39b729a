//! The work-order indicators (考核指标), defined once: each has a key, a
//! catalogue label and a formula (shown beside every figure), and is
//! computed from per-order facts that are themselves read off the event
//! log. `facts_from_events` derives the facts by replaying an order's
//! events one by one; the store derives the same facts with SQL
//! aggregates; a test holds the two equal on the demo's year of orders.

use serde::Serialize;

/// What one order contributes to the indicators.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrderFacts {
    pub order_id: i64,
    /// The node path of the order's place (for grouping by node).
    pub node_path: String,
    /// The level that concluded it (community, subdistrict, district).
    pub level: String,
    /// The unit leading it now (for departments' figures).
    pub lead_unit: Option<i64>,
    /// 立案: accepted.
    pub accepted: bool,
    /// 派遣: dispatched at least once.
    pub dispatched: bool,
    /// 签收: signed at least once.
    pub signed: bool,
    /// Signed after its signing deadline (marked overdue while awaiting signature).
    pub sign_late: bool,
    /// 办结: verified and closed.
    pub closed: bool,
    /// Marked overdue while being handled.
    pub handle_late: bool,
    /// 超期: marked overdue at any step.
    pub overdue: bool,
    /// 延期: an extension was granted.
    pub extended: bool,
    /// 返工: the verification failed and it went back to the unit.
    pub reworked: bool,
    /// 重办: reopened after the reporter was dissatisfied.
    pub redone: bool,
    /// 即报即办: reported and handled on the spot by the grid worker.
    pub on_spot: bool,
    /// The reporter's final rating, if any.
    pub rating: Option<String>,
}

/// One event as the replay reads it.
pub struct EventRow<'a> {
    pub action: &'a str,
    pub from_state: &'a str,
    pub to_state: &'a str,
    /// The action's data (JSON), for the rating of an evaluation.
    pub data: &'a str,
}

/// Facts of one order, by replaying its events in order.
pub fn facts_from_events<'a>(
    order_id: i64,
    node_path: &str,
    level: &str,
    lead_unit: Option<i64>,
    events: impl IntoIterator<Item = EventRow<'a>>,
) -> OrderFacts {
    let mut f =
        OrderFacts { order_id, node_path: node_path.into(), level: level.into(), lead_unit, ..Default::default() };
    for e in events {
        match e.action {
            "accept" => f.accepted = true,
            "handle_on_spot" => {
                f.accepted = true;
                f.closed = true;
                f.on_spot = true;
            }
            "dispatch" => f.dispatched = true,
            "sign" => f.signed = true,
            "approve_extension" => f.extended = true,
            "verify_fail" => f.reworked = true,
            "mark_overdue" => {
                f.overdue = true;
                match e.from_state {
                    "pending_sign" => f.sign_late = true,
                    "handling" => f.handle_late = true,
                    _ => {}
                }
            }
            "evaluate" => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(e.data) {
                    f.rating = v.get("rating").and_then(|r| r.as_str()).map(str::to_string);
                }
                if e.to_state == "handling" {
                    f.redone = true;
                }
            }
            // 不满意 heard on a 回访 call before the rating also reopens.
            "follow_up" if e.to_state == "handling" => f.redone = true,
            _ => {}
        }
        if e.to_state == "pending_evaluation" {
            f.closed = true;
        }
    }
    f
}

/// An indicator's definition.
pub struct Indicator {
    pub key: &'static str,
    /// A rate (shown as a percentage) or a count.
    pub rate: bool,
    /// Higher is better (for colouring and ranking).
    pub higher_is_better: bool,
}

/// Every indicator, in the order tables show them. Labels and formulas
/// are in the catalogue under `stats.<key>` and `stats.<key>.formula`.
pub const INDICATORS: &[Indicator] = &[
    Indicator { key: "received", rate: false, higher_is_better: true },
    Indicator { key: "accepted", rate: false, higher_is_better: true },
    Indicator { key: "dispatched", rate: false, higher_is_better: true },
    Indicator { key: "sign_on_time", rate: true, higher_is_better: true },
    Indicator { key: "closed", rate: false, higher_is_better: true },
    Indicator { key: "close_rate", rate: true, higher_is_better: true },
    Indicator { key: "on_time_close", rate: true, higher_is_better: true },
    Indicator { key: "overdue", rate: false, higher_is_better: false },
    Indicator { key: "extension_rate", rate: true, higher_is_better: false },
    Indicator { key: "rework_rate", rate: true, higher_is_better: false },
    Indicator { key: "redo_rate", rate: true, higher_is_better: false },
    Indicator { key: "satisfaction", rate: true, higher_is_better: true },
    Indicator { key: "local_share", rate: true, higher_is_better: true },
    Indicator { key: "on_spot_rate", rate: true, higher_is_better: true },
];

/// The counts behind the indicators of a group of orders.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub received: i64,
    pub accepted: i64,
    pub dispatched: i64,
    pub signed: i64,
    pub sign_late: i64,
    pub closed: i64,
    pub closed_late: i64,
    pub overdue: i64,
    pub extended: i64,
    pub reworked: i64,
    pub redone: i64,
    pub rated: i64,
    pub satisfied: i64,
    pub closed_locally: i64,
    pub on_spot: i64,
}

impl Tally {
    pub fn add(&mut self, f: &OrderFacts) {
        let n = |b: bool| b as i64;
        self.received += 1;
        self.accepted += n(f.accepted);
        self.dispatched += n(f.dispatched);
        self.signed += n(f.signed);
        self.sign_late += n(f.signed && f.sign_late);
        self.closed += n(f.closed);
        self.closed_late += n(f.closed && f.handle_late);
        self.overdue += n(f.overdue);
        self.extended += n(f.accepted && f.extended);
        self.reworked += n(f.closed && f.reworked);
        self.redone += n(f.closed && f.redone);
        let rated = f.rating.is_some();
        self.rated += n(rated);
        self.satisfied += n(matches!(f.rating.as_deref(), Some("satisfied") | Some("fairly_satisfied")));
        self.closed_locally += n(f.closed && f.level == "community");
        self.on_spot += n(f.on_spot);
    }

    /// The indicator's value: a count, or a rate in [0, 1] with its
    /// numerator and denominator (none when nothing is counted).
    pub fn value(&self, key: &str) -> Value {
        let rate = |num: i64, den: i64| if den == 0 { Value::NoBase } else { Value::Rate { num, den } };
        match key {
            "received" => Value::Count(self.received),
            "accepted" => Value::Count(self.accepted),
            "dispatched" => Value::Count(self.dispatched),
            "sign_on_time" => rate(self.signed - self.sign_late, self.signed),
            "closed" => Value::Count(self.closed),
            "close_rate" => rate(self.closed, self.accepted),
            "on_time_close" => rate(self.closed - self.closed_late, self.closed),
            "overdue" => Value::Count(self.overdue),
            "extension_rate" => rate(self.extended, self.accepted),
            "rework_rate" => rate(self.reworked, self.closed),
            "redo_rate" => rate(self.redone, self.closed),
            "satisfaction" => rate(self.satisfied, self.rated),
            "local_share" => rate(self.closed_locally, self.closed),
            "on_spot_rate" => rate(self.on_spot, self.closed),
            _ => Value::NoBase,
        }
    }
}

/// Which orders behind a figure: those it counts (a count, or a rate's
/// numerator) or those it is taken of (a rate's denominator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Counted,
    Base,
}

impl Part {
    pub fn parse(s: Option<&str>) -> Part {
        if s == Some("base") {
            Part::Base
        } else {
            Part::Counted
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Part::Counted => "counted",
            Part::Base => "base",
        }
    }
}

/// Whether an order is behind a figure (drill-down): the same rules as
/// `Tally::add`, one order at a time (a test holds the two together).
pub fn behind(key: &str, part: Part, f: &OrderFacts) -> bool {
    let satisfied = matches!(f.rating.as_deref(), Some("satisfied") | Some("fairly_satisfied"));
    match (key, part) {
        ("received", _) => true,
        ("accepted", _) => f.accepted,
        ("dispatched", _) => f.dispatched,
        ("sign_on_time", Part::Counted) => f.signed && !f.sign_late,
        ("sign_on_time", Part::Base) => f.signed,
        ("closed", _) => f.closed,
        ("close_rate", Part::Counted) => f.closed,
        ("close_rate", Part::Base) => f.accepted,
        ("on_time_close", Part::Counted) => f.closed && !f.handle_late,
        ("overdue", _) => f.overdue,
        ("extension_rate", Part::Counted) => f.accepted && f.extended,
        ("extension_rate", Part::Base) => f.accepted,
        ("rework_rate", Part::Counted) => f.closed && f.reworked,
        ("redo_rate", Part::Counted) => f.closed && f.redone,
        ("satisfaction", Part::Counted) => satisfied,
        ("satisfaction", Part::Base) => f.rating.is_some(),
        ("local_share", Part::Counted) => f.closed && f.level == "community",
        ("on_spot_rate", Part::Counted) => f.on_spot,
        ("on_time_close" | "rework_rate" | "redo_rate" | "local_share" | "on_spot_rate", Part::Base) => f.closed,
        _ => false,
    }
}

/// A figure as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Count(i64),
    Rate {
        num: i64,
        den: i64,
    },
    /// A rate with nothing to count (no denominator).
    NoBase,
}

impl Value {
    /// "96.4%", "1,203" or "—".
    pub fn text(&self) -> String {
        match *self {
            Value::Count(n) => n.to_string(),
            Value::Rate { num, den } => format!("{:.1}%", num as f64 * 100.0 / den as f64),
            Value::NoBase => "—".into(),
        }
    }

    /// "1,160 / 1,203" for a rate's title.
    pub fn basis(&self) -> String {
        match *self {
            Value::Rate { num, den } => format!("{num} / {den}"),
            _ => String::new(),
        }
    }

    /// For sorting: rates as fractions, counts as themselves.
    pub fn number(&self) -> Option<f64> {
        match *self {
            Value::Count(n) => Some(n as f64),
            Value::Rate { num, den } => Some(num as f64 / den as f64),
            Value::NoBase => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(action: &'a str, from: &'a str, to: &'a str, data: &'a str) -> EventRow<'a> {
        EventRow { action, from_state: from, to_state: to, data }
    }

    #[test]
    fn an_order_late_to_sign_rated_satisfied_after_a_rework() {
        let f = facts_from_events(
            7,
            "/1/2/",
            "community",
            Some(3),
            [
                ev("create", "", "pending_accept", "{}"),
                ev("accept", "pending_accept", "pending_dispatch", "{}"),
                ev("dispatch", "pending_dispatch", "pending_sign", "{}"),
                ev("mark_overdue", "pending_sign", "pending_sign", "{}"),
                ev("sign", "pending_sign", "handling", "{}"),
                ev("report_back", "handling", "pending_verify", "{}"),
                ev("verify_fail", "pending_verify", "handling", "{}"),
                ev("report_back", "handling", "pending_verify", "{}"),
                ev("verify_pass", "pending_verify", "pending_evaluation", "{}"),
                ev("evaluate", "pending_evaluation", "closed", r#"{"action":"evaluate","rating":"fairly_satisfied"}"#),
            ],
        );
        assert!(f.accepted && f.dispatched && f.signed && f.sign_late && f.closed && f.reworked && f.overdue);
        assert!(!f.handle_late && !f.redone && !f.extended);
        assert_eq!(f.rating.as_deref(), Some("fairly_satisfied"));
        let mut t = Tally::default();
        t.add(&f);
        assert_eq!(t.value("sign_on_time"), Value::Rate { num: 0, den: 1 });
        assert_eq!(t.value("satisfaction").text(), "100.0%");
        assert_eq!(t.value("local_share"), Value::Rate { num: 1, den: 1 });
    }

    proptest::proptest! {
        /// Drill-down lists exactly the orders a figure counts.
        #[test]
        fn drill_down_matches_the_figures(flags in proptest::collection::vec((0u16..1024, 0u8..4, 0u8..3), 0..40)) {
            let facts: Vec<OrderFacts> = flags
                .iter()
                .enumerate()
                .map(|(i, (b, r, l))| {
                    let bit = |n: u16| b & (1 << n) != 0;
                    OrderFacts {
                        order_id: i as i64,
                        level: ["community", "subdistrict", "district"][*l as usize].into(),
                        accepted: bit(0),
                        dispatched: bit(1),
                        signed: bit(2),
                        sign_late: bit(3),
                        closed: bit(4),
                        handle_late: bit(5),
                        overdue: bit(6),
                        extended: bit(7),
                        reworked: bit(8),
                        redone: bit(9),
                        on_spot: bit(9) && bit(4),
                        rating: [None, Some("satisfied"), Some("fairly_satisfied"), Some("dissatisfied")][*r as usize]
                            .map(str::to_string),
                        ..Default::default()
                    }
                })
                .collect();
            let mut t = Tally::default();
            facts.iter().for_each(|f| t.add(f));
            let n = |key: &str, part| facts.iter().filter(|f| behind(key, part, f)).count() as i64;
            for i in INDICATORS {
                match t.value(i.key) {
                    Value::Count(c) => proptest::prop_assert_eq!(c, n(i.key, Part::Counted), "{}", i.key),
                    Value::Rate { num, den } => {
                        proptest::prop_assert_eq!(num, n(i.key, Part::Counted), "{}", i.key);
                        proptest::prop_assert_eq!(den, n(i.key, Part::Base), "{}", i.key);
                    }
                    Value::NoBase => proptest::prop_assert_eq!(n(i.key, Part::Base), 0, "{}", i.key),
                }
            }
        }
    }

    #[test]
    fn unrated_orders_are_left_out_of_satisfaction() {
        let mut t = Tally::default();
        for rating in [Some("satisfied"), Some("dissatisfied"), None, None] {
            t.add(&OrderFacts {
                closed: true,
                accepted: true,
                rating: rating.map(str::to_string),
                ..Default::default()
            });
        }
        assert_eq!(t.value("satisfaction"), Value::Rate { num: 1, den: 2 });
        assert_eq!(t.value("close_rate").text(), "100.0%");
        assert_eq!(Tally::default().value("satisfaction").text(), "—");
    }
}
