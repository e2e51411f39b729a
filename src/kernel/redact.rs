//! Masking phone and ID numbers that people type into free text (an order's
//! description, address, notes): residents write "请联系13912345678" where
//! no form field masks it. Numbers found are masked the way the structured
//! fields are (`139****5678`, `110105********0123`); the rest of the text is
//! left as written.

use std::borrow::Cow;

/// A digit as typed: ASCII or full-width (a Chinese input method gives `１３９`).
fn digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

fn ascii_digit(c: char) -> char {
    if ('０'..='９').contains(&c) {
        char::from_digit(c as u32 - '０' as u32, 10).unwrap_or(c)
    } else {
        c
    }
}

/// Which of a number's characters (by position among its digits) are
/// masked, if the digits are a phone or ID number.
fn masked_positions(d: &[char]) -> Option<std::ops::Range<usize>> {
    let all_digits = |s: &[char]| s.iter().all(char::is_ascii_digit);
    let mobile = |s: &[char]| s.len() == 11 && all_digits(s) && s[0] == '1' && ('3'..='9').contains(&s[1]);
    match d.len() {
        // 139****5678, as `MobilePhone::masked`.
        11 if mobile(d) => Some(3..7),
        // 86 139****5678
        13 if d[..2] == ['8', '6'] && mobile(&d[2..]) => Some(5..9),
        // 110105********0123, as `IdNumber::masked`.
        18 if all_digits(&d[..17]) && (d[17].is_ascii_digit() || d[17] == 'X') => Some(6..14),
        // The old 15-digit number: its birth date (characters 7–12) hidden.
        15 if all_digits(d) && d[0] != '0' => Some(6..12),
        // A landline with its area code (0351-7654321, 010 87654321): the
        // area code and the last four digits kept.
        10..=12 if d[0] == '0' && d[1] != '0' && all_digits(d) => {
            let area = if matches!(d[1], '1' | '2') { 3 } else { 4 };
            (d.len() - area >= 7).then(|| area..d.len() - 4)
        }
        _ => None,
    }
}

/// A run of digits: where its characters are in the text.
struct Group {
    /// Character indices of the digits (and a final `X`).
    at: Vec<usize>,
}

/// Masks every mainland mobile number (`1[3-9]` and 9 more digits, with or
/// without `86`), landline with area code, and 18- or 15-digit citizen ID
/// number in `text`. Digits may be split by single spaces or hyphens
/// (`138-0013-8000`) and typed full-width; the separators stay. Longer runs
/// of digits (a bank card, a code) are not phone numbers and stay as they are.
pub fn mask_numbers(text: &str) -> Cow<'_, str> {
    let chars: Vec<char> = text.chars().collect();
    if chars.iter().filter(|c| digit(**c)).count() < 10 {
        return Cow::Borrowed(text);
    }
    let mut masked = vec![false; chars.len()];
    let mut i = 0;
    while i < chars.len() {
        if !digit(chars[i]) {
            i += 1;
            continue;
        }
        // A span: groups of digits joined by single separators.
        let mut groups: Vec<Group> = vec![];
        let mut count = 0;
        loop {
            let mut g = Group { at: vec![] };
            while i < chars.len() && digit(chars[i]) {
                g.at.push(i);
                i += 1;
            }
            count += g.at.len();
            // The check character of an ID number.
            if count == 17 && i < chars.len() && matches!(chars[i], 'X' | 'x') {
                g.at.push(i);
                i += 1;
                count += 1;
            }
            groups.push(g);
            let joined = i + 1 < chars.len() && matches!(chars[i], ' ' | '-') && digit(chars[i + 1]);
            if !joined {
                break;
            }
            i += 1;
        }
        // The shortest run of whole groups from each start that is a number.
        let mut start = 0;
        while start < groups.len() {
            let mut found = None;
            let mut d: Vec<char> = vec![];
            for (end, g) in groups.iter().enumerate().skip(start) {
                d.extend(g.at.iter().map(|&k| ascii_digit(chars[k]).to_ascii_uppercase()));
                if let Some(range) = masked_positions(&d) {
                    found = Some((end, range));
                    break;
                }
                if d.len() > 18 {
                    break;
                }
            }
            match found {
                Some((end, range)) => {
                    let at: Vec<usize> = groups[start..=end].iter().flat_map(|g| g.at.iter().copied()).collect();
                    for k in range {
                        masked[at[k]] = true;
                    }
                    start = end + 1;
                }
                None => start += 1,
            }
        }
    }
    if !masked.contains(&true) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(chars.iter().zip(masked).map(|(c, m)| if m { '*' } else { *c }).collect())
}

#[cfg(test)]
mod tests {
    use super::mask_numbers;
    use crate::kernel::codes::{IdNumber, MobilePhone};
    use proptest::prelude::*;

    #[test]
    fn numbers_in_a_description_are_masked_like_the_fields() {
        let cases = [
            ("请联系13912345678刘女士", "请联系139****5678刘女士"),
            ("电话:138-0013-8000", "电话:138-****-8000"),
            ("电话 138 0013 8000,谢谢", "电话 138 **** 8000,谢谢"),
            ("+86 13912345678", "+86 139****5678"),
            ("手机１３９１２３４５６７８", "手机１３９****５６７８"),
            ("身份证11010519491231002X", "身份证110105********002X"),
            ("身份证号 11010519491231002x。", "身份证号 110105********002x。"),
            ("老证号110105491231002", "老证号110105******002"),
            ("物业0351-7654321", "物业0351-***4321"),
            ("座机010 87654321", "座机010 ****4321"),
            ("房号302 13912345678", "房号302 139****5678"),
            ("13912345678 0351-7654321", "139****5678 0351-***4321"),
        ];
        for (text, want) in cases {
            assert_eq!(mask_numbers(text), want, "{text}");
        }
    }

    #[test]
    fn other_numbers_stay() {
        for text in [
            "3号楼2单元502室,路灯一周不亮了",
            "2026年12月3日 14:30",
            "订单号6222020200112233445566",
            "编号12345678901",
            "追踪码ABCD1234EFGH",
            "",
        ] {
            assert_eq!(mask_numbers(text), text);
        }
    }

    fn mobile() -> impl Strategy<Value = String> {
        ("1[3-9][0-9]{9}").prop_map(|s| s)
    }

    proptest! {
        #[test]
        fn a_mobile_number_anywhere_in_text_shows_as_the_field_does(
            before in "[\\p{Han}，。a-z ]{0,12}", n in mobile(), after in "[\\p{Han}，。a-z ]{0,12}"
        ) {
            let text = format!("{before}{n}{after}");
            let m = MobilePhone::parse(&n).unwrap().masked();
            let out = mask_numbers(&text);
            prop_assert_eq!(out.as_ref(), format!("{before}{m}{after}"));
            prop_assert!(!out.contains(&n));
        }

        #[test]
        fn an_id_number_anywhere_in_text_shows_as_the_field_does(
            before in "[\\p{Han}，。]{0,12}", year in 1950i32..2005, month in 1u32..=12, day in 1u32..=28,
            seq in 0u16..=999, after in "[\\p{Han}，。]{0,12}"
        ) {
            let born = chrono::NaiveDate::from_ymd_opt(year, month, day).unwrap();
            let id = IdNumber::from_parts("140107", born, seq).unwrap();
            let text = format!("{before}{}{after}", id.as_str());
            let out = mask_numbers(&text);
            prop_assert_eq!(out.as_ref(), format!("{before}{}{after}", id.masked()));
        }

        #[test]
        fn masking_never_lengthens_text_nor_touches_non_digits(text in "\\PC{0,60}") {
            let out = mask_numbers(&text);
            prop_assert_eq!(out.chars().count(), text.chars().count());
            for (a, b) in text.chars().zip(out.chars()) {
                prop_assert!(a == b || (b == '*' && (a.is_ascii_digit() || ('０'..='９').contains(&a))));
            }
        }
    }
}
