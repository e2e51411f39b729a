//! The layout of ARCHITECTURE.md, checked on the sources: every top-level
//! module imports only modules of layers below it (and a domain only the
//! domains before it), so there is no import circle between top-level
//! modules. Unit-test modules (`#[cfg(test)] mod …`) are left out: tests may
//! reach across layers.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The top-level modules of `src/`, bottom to top. A module may import the
/// modules before it in this list, never one after it.
const LAYERS: &[&str] = &[
    "kernel",      // pure types and rules
    "platform",    // storage, encryption, sessions, logging
    "web",         // what every handler shares
    "audit",       // the domains, in the order they may use each other
    "auth",        // (identity)
    "tree",        // (the grid)
    "attachments", //
    "orders",      //
    "stats",       // (statistics and assessment, over the others)
    "notify",      // (notifications, learnt from the outbox)
    "demo",        // the generated demo district
    "app",         // the composition root
    "tools",       // the benchmarks, which drive the whole app
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text without comments, string and char literals, and unit-test
/// modules.
fn code_of(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if text[i..].starts_with("r#\"") || text[i..].starts_with("r\"") {
            let hashes = if b[i + 1] == b'#' { "\"#" } else { "\"" };
            let start = i + text[i..].find('"').unwrap() + 1;
            i = text[start..].find(hashes).map_or(b.len(), |e| start + e + hashes.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('x', '\n'); a lifetime ('a) has no closing quote.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    strip_test_modules(&out)
}

/// Removes `#[cfg(test)] mod name { … }` blocks.
fn strip_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let is_mod =
            trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ") || trimmed.starts_with("pub(crate) mod ");
        let open = trimmed.find(['{', ';']);
        if is_mod && open.is_some_and(|o| trimmed.as_bytes()[o] == b'{') {
            out.push_str(&rest[..at]);
            let body = &trimmed[open.unwrap()..];
            let mut depth = 0;
            let mut end = body.len();
            for (k, ch) in body.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &body[end..];
        } else {
            out.push_str(&rest[..at + "#[cfg(test)]".len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The top-level modules a piece of code names through `crate::`, with
/// grouped imports (`use crate::{a::x, b}`) read at their first level.
fn crate_roots(code: &str) -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `some_crate::`
        }
        let tail = rest.trim_start();
        if let Some(group) = tail.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        roots.insert(ident(&group[k..]));
                        item_start = false;
                    }
                    c if !c.is_whitespace() => item_start = false,
                    _ => {}
                }
            }
        } else {
            let name = ident(tail);
            if !name.is_empty() {
                roots.insert(name);
            }
        }
    }
    roots
}

/// For each top-level module, the other top-level modules it imports and
/// one file where it does.
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        let entry = graph.entry(top.clone()).or_default();
        for root in crate_roots(&code) {
            if root != top && root != "self" && root != "super" {
                entry.entry(root).or_insert_with(|| rel.clone());
            }
        }
    }
    graph
}

#[test]
fn every_top_level_module_has_a_layer() {
    let graph = imports();
    let unknown: Vec<_> = graph.keys().filter(|m| !LAYERS.contains(&m.as_str())).collect();
    assert!(unknown.is_empty(), "top-level modules without a layer in tests/layers.rs: {unknown:?}");
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = vec![];
    for (from, tos) in imports() {
        let Some(r) = rank(&from) else { continue };
        for (to, file) in tos {
            match rank(&to) {
                Some(t) if t < r => {}
                Some(_) => wrong.push(format!("{file}: `{from}` imports `{to}`, which is not below it")),
                None => wrong.push(format!("{file}: `{from}` imports `{to}`, which has no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers of ARCHITECTURE.md:\n{}", wrong.join("\n"));
}

#[test]
fn there_is_no_import_circle() {
    // Independent of the layer list: a circle is a failure even between
    // modules someone forgot to rank.
    let graph = imports();
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(1) => {
                let start = path.iter().position(|p| p == m).unwrap();
                let mut circle = path[start..].to_vec();
                circle.push(m.to_string());
                return Some(circle);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for to in graph.get(m).into_iter().flat_map(|t| t.keys()) {
            if let Some(c) = visit(to, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if let Some(circle) = visit(m, &graph, &mut state, &mut vec![]) {
            panic!("import circle between top-level modules: {}", circle.join(" → "));
        }
    }
}

#[test]
fn the_reader_sees_grouped_imports_and_skips_tests_and_text() {
    let code = code_of(
        "use crate::{a::x, b::{y, z}, c};\n// crate::commented\nlet s = \"crate::quoted\";\n\
         fn f() { crate::d::g(); other_crate::e(); }\n#[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let roots: Vec<_> = crate_roots(&code).into_iter().collect();
    assert_eq!(roots, ["a", "b", "c", "d"]);
}
