//! Assessment (考核): a weighted score of a node's rates and its grade.
//! The weights and the grade tiers are the district's to set (the standard
//! leaves them open); the defaults follow the 区域 assessment of 数字城管
//! (结案率 and 按期结案率 weigh most) with 满意率 added as 12345 practice
//! asks, and the A–E tiers of the standards' reference.

use serde::{Deserialize, Serialize};

use super::indicators::{Tally, Value, INDICATORS};
use crate::{
    kernel::error::{Error, Result},
    platform::db::{settings, Db},
};

const KEY: &str = "stats.assessment";

/// The weights (points out of 100) of the rates that make the score, and
/// the grades from best to worst with the lowest score each needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheme {
    pub weights: Vec<(String, i64)>,
    pub grades: Vec<(String, i64)>,
}

impl Default for Scheme {
    fn default() -> Self {
        let w = |k: &str, n| (k.to_string(), n);
        Scheme {
            weights: vec![
                w("close_rate", 30),
                w("on_time_close", 30),
                w("satisfaction", 20),
                w("sign_on_time", 10),
                w("rework_rate", 10),
            ],
            grades: vec![w("A", 90), w("B", 75), w("C", 60), w("D", 40), w("E", 0)],
        }
    }
}

/// A score and its grade.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessed {
    /// 0–100, one decimal.
    pub score: f64,
    pub grade: String,
}

impl Assessed {
    /// "95.0".
    pub fn score_text(&self) -> String {
        format!("{:.1}", self.score)
    }
}

impl Scheme {
    /// The scheme in force (the default until an administrator saves one).
    pub async fn load(db: &Db) -> Result<Scheme> {
        Ok(settings::get(db, KEY).await.ok().flatten().unwrap_or_default())
    }

    /// Checks and stores a scheme.
    pub async fn save(&self, db: &Db) -> Result<()> {
        self.validate()?;
        settings::put(db, KEY, self).await
    }

    /// Weights are whole points on rates and add up to 100; grades have
    /// names and strictly falling thresholds ending at 0.
    pub fn validate(&self) -> Result<()> {
        let mut seen = vec![];
        for (key, w) in &self.weights {
            let rate = INDICATORS.iter().any(|i| i.key == key && i.rate);
            if !rate || seen.contains(&key) {
                return Err(Error::invalid("assessment.weight_unknown", "weights"));
            }
            if !(0..=100).contains(w) {
                return Err(Error::invalid("assessment.weight_range", "weights"));
            }
            seen.push(key);
        }
        if self.weights.iter().map(|(_, w)| w).sum::<i64>() != 100 {
            return Err(Error::invalid("assessment.weights_sum", "weights"));
        }
        if self.grades.len() < 2 || self.grades.len() > 6 {
            return Err(Error::invalid("assessment.grades_count", "grades"));
        }
        let names_ok = self.grades.iter().all(|(n, _)| !n.trim().is_empty() && n.chars().count() <= 8);
        let falling = self.grades.windows(2).all(|p| p[0].1 > p[1].1);
        let bounded = self.grades.iter().all(|(_, t)| (0..=100).contains(t));
        if !names_ok || !falling || !bounded || self.grades.last().map(|g| g.1) != Some(0) {
            return Err(Error::invalid("assessment.grades_order", "grades"));
        }
        Ok(())
    }

    /// The weighted score of a tally: each weighted rate counts as its value
    /// (or one minus it, where lower is better); a rate with nothing to
    /// count leaves the score to the others, reweighted. None when no
    /// weighted rate has a base.
    pub fn assess(&self, tally: &Tally) -> Option<Assessed> {
        let (mut sum, mut weight) = (0.0, 0);
        for (key, w) in &self.weights {
            let Some(ind) = INDICATORS.iter().find(|i| i.key == key) else { continue };
            if let Value::Rate { num, den } = tally.value(key) {
                let v = num as f64 / den as f64;
                sum += *w as f64 * if ind.higher_is_better { v } else { 1.0 - v };
                weight += w;
            }
        }
        if weight == 0 {
            return None;
        }
        let score = (sum * 100.0 / weight as f64 * 10.0).round() / 10.0;
        let grade = self
            .grades
            .iter()
            .find(|(_, least)| score >= *least as f64)
            .or(self.grades.last())
            .map(|g| g.0.clone())
            .unwrap_or_default();
        Some(Assessed { score, grade })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_weighs_rates_and_turns_lower_is_better_around() {
        let s = Scheme::default();
        s.validate().unwrap();
        let t = Tally {
            received: 10,
            accepted: 10,
            signed: 10,
            sign_late: 1,
            closed: 8,
            closed_late: 2,
            reworked: 2,
            rated: 4,
            satisfied: 3,
            ..Default::default()
        };
        // 30×0.8 + 30×0.75 + 20×0.75 + 10×0.9 + 10×(1−0.25) = 78
        assert_eq!(s.assess(&t), Some(Assessed { score: 78.0, grade: "B".into() }));
        // Nothing rated: satisfaction drops out, the rest is reweighted (63 / 80).
        let unrated = Tally { rated: 0, satisfied: 0, ..t.clone() };
        assert_eq!(s.assess(&unrated).unwrap().score, 78.8);
        assert_eq!(s.assess(&Tally::default()), None);
    }

    #[test]
    fn a_scheme_must_add_up_and_fall() {
        let mut s = Scheme::default();
        s.weights[0].1 = 31;
        assert!(s.validate().is_err(), "101 points");
        let mut s = Scheme::default();
        s.weights[0].0 = "received".into();
        assert!(s.validate().is_err(), "a count is not a rate");
        let mut s = Scheme::default();
        s.grades[1].1 = 95;
        assert!(s.validate().is_err(), "thresholds must fall");
        let mut s = Scheme::default();
        s.grades.last_mut().unwrap().1 = 10;
        assert!(s.validate().is_err(), "the last grade takes everything left");
    }
}
