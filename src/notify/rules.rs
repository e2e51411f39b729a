//! Pure rules of the notifications: a notice's words from its catalogue
//! template and its subject, and who gets it once the audiences are
//! resolved (each person once, the actor never).

use crate::{
    kernel::{clock::CHINA_STANDARD_TIME, i18n::t},
    platform::notices::{Kind, Subject},
};

/// The deadline as people read it (`12月4日 17:00`), or the catalogue's
/// words for none.
pub fn deadline_text(at: Option<i64>) -> String {
    match at.and_then(|ms| chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, ms).single()) {
        Some(t) => t.with_timezone(&CHINA_STANDARD_TIME).format("%-m月%-d日 %H:%M").to_string(),
        None => t("notify.no_deadline").to_string(),
    }
}

/// The notice's text: its catalogue template with the subject's tracking
/// code, category, place and deadline. Nothing else of the subject can
/// reach the text, so it carries no one's name, contact or ID number.
pub fn render(kind: &Kind, subject: &Subject) -> String {
    t(kind.message)
        .replace("{code}", &subject.code)
        .replace("{category}", &subject.category)
        .replace("{place}", &subject.place)
        .replace("{deadline}", &deadline_text(subject.deadline_at))
}

/// The recipients: every resolved person once, in the order found, less the
/// one who took the step (no one is told of their own action).
pub fn recipients(resolved: impl IntoIterator<Item = i64>, actor: Option<i64>) -> Vec<i64> {
    let mut out: Vec<i64> = vec![];
    for id in resolved {
        if Some(id) != actor && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::notices::Audience;

    fn subject() -> Subject {
        Subject {
            object_type: "order",
            object_id: 7,
            code: "AB12CD34EF56".into(),
            category: "路灯不亮".into(),
            place: "黑龙潭社区".into(),
            // 2026-12-04 09:00 UTC = 17:00 Beijing.
            deadline_at: Some(1_796_374_800_000),
            unit_id: Some(3),
            assigner_id: Some(9),
        }
    }

    #[test]
    fn a_notice_names_code_category_place_and_deadline() {
        let kind = Kind {
            topic: "orders.dispatch",
            message: "notify.msg.orders.dispatch",
            audience: &[Audience::Unit],
            urgent: false,
        };
        let text = render(&kind, &subject());
        for part in ["AB12CD34EF56", "路灯不亮", "黑龙潭社区", "12月4日 17:00"] {
            assert!(text.contains(part), "{part} in {text}");
        }
        assert!(!text.contains('{'), "every placeholder filled: {text}");
    }

    #[test]
    fn each_recipient_once_and_never_the_actor() {
        assert_eq!(recipients([4, 5, 4, 6, 5], Some(6)), vec![4, 5]);
        assert_eq!(recipients([], None), Vec::<i64>::new());
    }
}
