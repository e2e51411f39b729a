//! The message catalogue. All user-facing text lives in `locales/zh-CN.txt`
//! (`key = text`, one per line); code and templates refer to keys only, so
//! another language is one more file.

use std::{
    collections::{HashMap, HashSet},
    sync::{LazyLock, Mutex},
};

static ZH_CN: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| parse(include_str!("../../locales/zh-CN.txt")));

fn parse(src: &'static str) -> HashMap<&'static str, &'static str> {
    src.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

static MISSING: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);

/// The text for `key`. An unknown key answers itself so the gap is visible
/// on screen (keys come from code, never from input, so this set stays small).
pub fn t(key: &str) -> &'static str {
    if let Some(v) = ZH_CN.get(key) {
        return v;
    }
    let mut missing = MISSING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = missing.get(key) {
        return k;
    }
    tracing::warn!(key, "message catalogue has no entry");
    let k: &'static str = Box::leak(key.to_string().into_boxed_str());
    missing.insert(k);
    k
}

/// Every key in the catalogue, for tests that check coverage.
pub fn keys() -> impl Iterator<Item = &'static str> {
    ZH_CN.keys().copied()
}

pub fn has(key: &str) -> bool {
    ZH_CN.contains_key(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalogue_has_no_duplicate_keys() {
        let src = include_str!("../../locales/zh-CN.txt");
        let mut seen = std::collections::HashSet::new();
        for line in src.lines().map(str::trim) {
            if let Some((k, _)) = line.split_once('=') {
                if !line.starts_with('#') {
                    assert!(seen.insert(k.trim()), "duplicate catalogue key {k}");
                }
            }
        }
    }

    /// Chinese text takes full-width punctuation: an ASCII , ; : ? ! right
    /// after a Chinese character is a typo for its full-width form.
    #[test]
    fn chinese_text_uses_full_width_punctuation() {
        let src = include_str!("../../locales/zh-CN.txt");
        let is_han = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c);
        for line in src.lines().filter(|l| !l.starts_with('#')) {
            let chars: Vec<char> = line.chars().collect();
            for pair in chars.windows(2) {
                assert!(!(is_han(pair[0]) && ",;:?!".contains(pair[1])), "ASCII punctuation after Chinese in: {line}");
            }
        }
    }
}

#[cfg(test)]
mod coverage {
    /// Every error code the domain types can produce has catalogue text.
    #[test]
    fn domain_error_codes_have_messages() {
        for code in crate::kernel::codes::CodeError::ALL_CODES
            .iter()
            .chain(crate::kernel::geo::polygon::PolygonError::ALL_CODES)
        {
            assert!(super::has(code), "catalogue lacks {code}");
        }
    }
}

#[cfg(test)]
mod order_coverage {
    use crate::orders::machine::{ActionKind, ActorRole, EvalReason, Level, MachineError, Rating, State};

    /// Every label and error code of the work-order machine has catalogue text.
    #[test]
    fn order_labels_and_codes_have_messages() {
        let keys = State::ALL
            .iter()
            .map(|s| s.label_key())
            .chain(ActionKind::ALL.iter().map(|a| a.label_key()))
            .chain(ActorRole::ALL.iter().map(|a| a.label_key()))
            .chain(Level::ALL.iter().map(|a| a.label_key()))
            .chain(Rating::ALL.iter().map(|a| a.label_key()))
            .chain(EvalReason::ALL.iter().map(|a| a.label_key()))
            .chain(MachineError::CODES.iter().copied());
        for key in keys {
            assert!(super::has(key), "catalogue lacks {key}");
        }
    }
}

#[cfg(test)]
mod template_coverage {
    /// Every `t("…")` written in a template has catalogue text.
    #[test]
    fn template_keys_have_messages() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "html") {
                    out.push(p);
                }
            }
        }
        let mut files = vec![];
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"), &mut files);
        assert!(files.len() > 20);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for part in text.split("t(\"").skip(1) {
                let key = part.split('"').next().unwrap();
                assert!(super::has(key), "{} uses {key}, which the catalogue lacks", f.display());
            }
        }
    }
}

#[cfg(test)]
mod source_code_coverage {
    /// A literal that looks like a catalogue code: `area.name`, lower case.
    fn is_code(lit: &str) -> bool {
        lit.contains('.')
            && !lit.starts_with('.')
            && !lit.ends_with('.')
            && lit.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    }

    /// The string literals of `text`, in order.
    fn literals(text: &str) -> Vec<&str> {
        text.split('"').skip(1).step_by(2).collect()
    }

    /// The error codes written in one source file: the first literal of
    /// `invalid(…)`, `invalid_detail(…)` and `conflict(…)`, the literals
    /// of `on_unique(…)` and of a `code: …` on its line, and those of
    /// `fn code(&self)` bodies (the domain errors' codes).
    fn codes_in(src: &str) -> Vec<String> {
        let mut out = vec![];
        let after = |marker: &str| src.match_indices(marker).map(|(i, _)| &src[i + marker.len()..]).collect::<Vec<_>>();
        for marker in ["invalid(", "invalid_detail(", "conflict("] {
            for rest in after(marker) {
                if let Some(first) = literals(rest.split(';').next().unwrap_or("")).first() {
                    if rest.trim_start().starts_with('"') && is_code(first) {
                        out.push(first.to_string());
                    }
                }
            }
        }
        for (marker, end) in [("on_unique(", ")"), ("code: ", "\n"), ("fn code(&self)", "\n    }\n")] {
            for rest in after(marker) {
                let segment = rest.split(end).next().unwrap_or("");
                out.extend(literals(segment).into_iter().filter(|l| is_code(l)).map(str::to_string));
            }
        }
        out
    }

    #[test]
    fn the_scanner_finds_codes_where_errors_are_made() {
        let src = r#"Error::invalid("a.b", "attrs.field"); Error::conflict("c.d"); on_unique(e, "e.f")
            Error::Invalid { code: "g.h".into() }
            fn code(&self) -> &'static str {
                match self { X => "i.j", Y => "k.l" }
            }
            let not = format!("{x}.y");"#;
        assert_eq!(codes_in(src), ["a.b", "c.d", "e.f", "g.h", "i.j", "k.l"]);
    }

    /// Every error code used anywhere in `src/` has catalogue text, so no
    /// raw key such as `tree.node_not_found` ever reaches a screen.
    #[test]
    fn error_codes_used_in_the_source_have_messages() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("i18n.rs") {
                    out.push(p);
                }
            }
        }
        let mut files = vec![];
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut seen = 0;
        let mut missing = vec![];
        for f in files {
            for code in codes_in(&std::fs::read_to_string(&f).unwrap()) {
                seen += 1;
                if !super::has(&code) {
                    missing.push(format!("{code} ({})", f.display()));
                }
            }
        }
        assert!(seen > 100, "the scan found only {seen} codes");
        assert!(missing.is_empty(), "error codes without catalogue text:\n{}", missing.join("\n"));
    }
}
