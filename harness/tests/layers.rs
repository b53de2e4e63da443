//! The shape of the code: the library's modules and the arrows between them.
//!
//! An arrow A → B means that module A names an item of module B: every `crate::…` and
//! `super::…` path in A's code (in `use` lines and anywhere else, `#[cfg(test)]` code left out),
//! resolved to the longest module it names. A module using its own ancestors (a `mod.rs` that
//! declares it) is not an arrow. The layers are the table "Layers" in docs/architecture.md: every
//! module of the library is in exactly one of them, and no arrow runs from a lower layer to a
//! higher one. Within a layer arrows may run either way, but no module graph — the library's or
//! the pipeline's — has a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// A crate's modules: path (`platform::local::faults`, "" for the root) → its source without
/// test code.
fn modules(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            parts.pop();
        }
        if f.file_name().is_some_and(|n| n == "main.rs") {
            continue; // the binary: it uses the library by its crate name
        }
        out.insert(parts.join("::"), without_test_code(&std::fs::read_to_string(&f).unwrap()));
    }
    // Modules declared `#[cfg(test)] mod x;` are test code too.
    let test_only: Vec<String> = out
        .iter()
        .flat_map(|(m, text)| test_module_declarations(text).into_iter().map(move |name| join(m, &name)))
        .collect();
    out.retain(|m, _| !test_only.iter().any(|t| m == t || m.starts_with(&format!("{t}::"))));
    out
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}::{child}")
    }
}

/// Names of `#[cfg(test)] mod name;` declarations.
fn test_module_declarations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        rest = &rest[i + "#[cfg(test)]".len()..];
        let decl = rest.trim_start();
        let decl = decl.strip_prefix("pub ").unwrap_or(decl);
        if let Some(d) = decl.strip_prefix("mod ") {
            let name: String = d.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if d[name.len()..].trim_start().starts_with(';') {
                out.push(name);
            }
        }
    }
    out
}

/// The source with comments, string literals and every `#[cfg(test)]` item (its braces matched)
/// removed.
fn without_test_code(text: &str) -> String {
    let code = strip_comments_and_strings(text);
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // Up to the item's end: a `;` before any `{`, or the `{` block's matching `}`.
        let semi = rest.find(';');
        let brace = rest.find('{');
        match (semi, brace) {
            (Some(s), Some(b)) if s < b => rest = &rest[s + 1..],
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = rest.len();
                for (j, c) in rest[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &rest[end..];
            }
            (Some(s), None) => rest = &rest[s + 1..],
            (None, None) => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Blanks out comments, string and char literals (raw strings included), keeping the rest.
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i] == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
            let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            i = text[start..].find(&close).map_or(b.len(), |e| start + e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3;
            out.push_str("' '");
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            let end = text[i + 2..].find('\'').map_or(b.len(), |e| i + 2 + e + 1);
            i = end;
            out.push_str("' '");
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Every `crate::…` and `super::…` path in `code`, brace groups of `use` expanded, as the list of
/// segments after `crate`/relative to the module.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let starts = (code[i..].starts_with("crate::") || code[i..].starts_with("super::")) && (i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == b':'));
        if !starts {
            i += 1;
            continue;
        }
        let (path, len) = read_path(&code[i..]);
        out.extend(path);
        i += len.max(1);
    }
    out
}

/// Reads one path at the start of `s` (with `{…}` groups, nested), returning every full path it
/// stands for and the bytes it took.
fn read_path(s: &str) -> (Vec<String>, usize) {
    let mut i = 0;
    let b = s.as_bytes();
    let mut prefix = String::new();
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        prefix.push_str(&s[start..i]);
        if s[i..].starts_with("::") {
            i += 2;
            if s[i..].starts_with('{') {
                // A group: split at top-level commas.
                let mut depth = 0;
                let mut end = i;
                for (j, c) in s[i..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i + j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let inner = &s[i + 1..end];
                let mut out = Vec::new();
                let mut depth = 0;
                let mut last = 0;
                let mut parts = Vec::new();
                for (j, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            parts.push(&inner[last..j]);
                            last = j + 1;
                        }
                        _ => {}
                    }
                }
                parts.push(&inner[last..]);
                for part in parts {
                    let part = part.trim();
                    if part.is_empty() || part == "self" || part == "*" {
                        out.push(prefix.clone());
                        continue;
                    }
                    let (sub, _) = read_path(part);
                    out.extend(sub.into_iter().map(|p| format!("{prefix}::{p}")));
                }
                return (out, end + 1);
            }
            prefix.push_str("::");
            continue;
        }
        return (vec![prefix.trim_end_matches("::").to_string()], i);
    }
}

/// The module a path in module `from` names: the longest prefix that is a module.
fn resolve(from: &str, path: &str, modules: &BTreeMap<String, String>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if from.is_empty() { vec![] } else { from.split("::").collect() };
    match segs.first() {
        Some(&"crate") => {
            base.clear();
            segs.remove(0);
        }
        Some(&"super") => {
            while segs.first() == Some(&"super") {
                base.pop();
                segs.remove(0);
            }
        }
        _ => return None,
    }
    (0..=segs.len()).rev().map(|n| base.iter().chain(&segs[..n]).copied().collect::<Vec<_>>().join("::")).find(|m| modules.contains_key(m))
}

/// Arrows between modules, ancestors left out.
fn arrows(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in modules {
        for p in paths(code) {
            if let Some(to) = resolve(m, &p, modules) {
                let ancestor = to.is_empty() || m.starts_with(&format!("{to}::"));
                if to != *m && !ancestor {
                    out.entry(m.clone()).or_default().insert(to);
                }
            }
        }
    }
    out
}

/// The cycles of the graph (its strongly connected components of more than one module).
fn cycles(arrows: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm (recursive: the graphs are a few hundred modules deep at most).
    struct T<'a> {
        arrows: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        let arrows = t.arrows;
        if let Some(ws) = arrows.get(v) {
            for w in ws {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let l = t.low[w].min(t.low[v]);
                    t.low.insert(v, l);
                } else if t.on.contains(w) {
                    let l = t.index[w].min(t.low[v]);
                    t.low.insert(v, l);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T { arrows, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    let nodes: BTreeSet<&str> = arrows.iter().flat_map(|(a, bs)| std::iter::once(a.as_str()).chain(bs.iter().map(String::as_str))).collect();
    for v in nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// One row of the "Layers" table: layer number, name, module patterns.
type Layer = (u32, String, Vec<String>);

/// The "Layers" table of docs/architecture.md.
fn layers() -> Vec<Layer> {
    let doc = std::fs::read_to_string(workspace().join("docs/architecture.md")).unwrap();
    let table = doc.split("\n### Layers\n").nth(1).expect("docs/architecture.md has a ### Layers section");
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let (n, name) = cells.get(1)?.split_once(' ')?;
            let n: u32 = n.parse().ok()?;
            let modules = cells.get(2)?.split('`').skip(1).step_by(2).map(str::to_string).collect();
            Some((n, name.to_string(), modules))
        })
        .collect()
}

/// The layer of `module`: the entry naming it, else the nearest `…::*` entry above it.
fn layer_of<'a>(module: &str, layers: &'a [Layer]) -> Option<&'a Layer> {
    if let Some(l) = layers.iter().find(|(_, _, ms)| ms.iter().any(|m| m == module)) {
        return Some(l);
    }
    let mut best: Option<(&Layer, usize)> = None;
    for l in layers {
        for m in &l.2 {
            if let Some(prefix) = m.strip_suffix("::*") {
                if (module == prefix || module.starts_with(&format!("{prefix}::"))) && best.is_none_or(|(_, len)| prefix.len() > len) {
                    best = Some((l, prefix.len()));
                }
            }
        }
    }
    best.map(|(l, _)| l)
}

fn problems(modules: &BTreeMap<String, String>, layers: &[Layer]) -> Vec<String> {
    let arrows = arrows(modules);
    let mut out: Vec<String> = cycles(&arrows).into_iter().map(|c| format!("a cycle: {}", c.join(", "))).collect();
    for m in modules.keys().filter(|m| !m.is_empty()) {
        if layer_of(m, layers).is_none() {
            out.push(format!("module {m} is in no layer of docs/architecture.md"));
        }
    }
    for (_, _, ms) in layers {
        for m in ms {
            let m = m.strip_suffix("::*").unwrap_or(m);
            if !modules.contains_key(m) {
                out.push(format!("docs/architecture.md names module {m}, which does not exist"));
            }
        }
    }
    for (from, tos) in &arrows {
        for to in tos {
            if let (Some(a), Some(b)) = (layer_of(from, layers), layer_of(to, layers)) {
                if a.0 < b.0 {
                    out.push(format!("{from} (layer {} {}) uses {to} (layer {} {}): the arrow runs up", a.0, a.1, b.0, b.1));
                }
            }
        }
    }
    out
}

#[test]
fn the_library_is_layered_and_has_no_cycle() {
    let modules = modules(&workspace().join("harness/src"));
    assert!(modules.len() > 50, "{} modules found", modules.len());
    let layers = layers();
    assert!(layers.len() >= 8, "the Layers table: {layers:?}");
    let problems = problems(&modules, &layers);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_pipeline_has_no_cycle() {
    let modules = modules(&workspace().join("pipeline/src"));
    assert!(modules.len() > 8, "{} modules found", modules.len());
    let cycles = cycles(&arrows(&modules));
    assert!(cycles.is_empty(), "{cycles:?}");
}

#[test]
fn an_arrow_up_a_cycle_and_an_unplaced_module_are_found_in_any_kind_of_path() {
    let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), without_test_code(v))).collect::<BTreeMap<_, _>>();
    let layers = vec![
        (1, "data".to_string(), vec!["a".to_string()]),
        (2, "plan".to_string(), vec!["b".to_string(), "p::*".to_string()]),
    ];
    // a uses b in an expression, not a `use` line: an arrow up. b uses a through a group.
    let modules = m(&[
        ("", ""),
        ("a", "fn f() { crate::b::g(); } // crate::c::x in a comment\nconst S: &str = \"crate::c::y\";"),
        ("b", "use crate::{a::X, p::q::{self, Y}};\n#[cfg(test)]\nmod tests { use crate::c::Z; }"),
        ("p", ""),
        ("p::q", "use super::super::a::X;"),
        ("c", ""),
    ]);
    let found = problems(&modules, &layers);
    assert!(found.iter().any(|p| p == "a (layer 1 data) uses b (layer 2 plan): the arrow runs up"), "{found:#?}");
    assert!(found.iter().any(|p| p == "a cycle: a, b, p::q"), "{found:#?}");
    assert!(found.iter().any(|p| p == "module c is in no layer of docs/architecture.md"), "{found:#?}");
    assert_eq!(found.len(), 3, "comments, strings and test code make no arrow: {found:#?}");
    let arrows = arrows(&modules);
    assert_eq!(arrows["b"], ["a", "p::q"].iter().map(|s| s.to_string()).collect());
    assert_eq!(arrows["p::q"], ["a"].iter().map(|s| s.to_string()).collect());
}
