//! The layer rules of docs/ARCHITECTURE.md, checked on the source: each
//! top-level module names only the modules its rule allows (through
//! `crate::` paths, the crate root's re-exports included), and the files of
//! `core` (its `mod.rs`, which holds `Core` itself, aside) name each other
//! without a circle.
//!
//! Comments and test code (`tests.rs`, `tests/`, a trailing
//! `#[cfg(test)] mod tests { .. }`) are not read: a test may build its
//! fixture from any layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each layer and the modules it may name; a module not listed here (a new
/// one) fails the test until its place is decided.
const RULES: &[(&str, &[&str])] = &[
    // Leaves.
    ("codec", &[]),
    ("topic", &[]),
    ("limits", &[]),
    ("store", &[]),
    ("rlimit", &[]),
    ("privileges", &[]),
    ("auth", &["topic"]),
    // The sans-IO broker.
    ("core", &["codec", "topic", "auth", "limits"]),
    // Protocol sides and configuration.
    ("bridge", &["codec", "topic", "auth", "limits", "core"]),
    (
        "config",
        &["codec", "topic", "auth", "limits", "core", "bridge"],
    ),
    ("stats", &["core", "bridge", "store"]),
    (
        "http",
        &[
            "codec", "topic", "auth", "limits", "store", "core", "bridge", "config", "stats",
        ],
    ),
    // The event loop: everything below, never the embedding API.
    (
        "net",
        &[
            "codec", "topic", "auth", "limits", "store", "rlimit", "core", "bridge", "config",
            "stats", "http",
        ],
    ),
    // The embedding API.
    (
        "broker",
        &[
            "codec",
            "topic",
            "auth",
            "limits",
            "store",
            "rlimit",
            "privileges",
            "core",
            "bridge",
            "config",
            "stats",
            "http",
            "net",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, test files left out.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && !name.starts_with("tests") {
            out.push(path);
        }
    }
}

/// The code of a file: comments and a trailing inline test module removed.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.starts_with("mod ") && next.ends_with('{'))
        {
            break;
        }
        let line = match line.find("//") {
            // Not inside a string literal ("http://..."): good enough for
            // this code base, whose paths are never in strings.
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first identifiers of each path that follows `prefix` in `code`,
/// `prefix::{a, b::c}` giving `a` and `b`.
fn heads(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a `{ .. }` group.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && !c.is_whitespace() => {
                        out.push(ident_at(&group[j..]).to_owned());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident_at(rest).to_owned());
        }
    }
    out.retain(|s| !s.is_empty() && s != "self");
    out
}

/// What the crate root re-exports, by name: `Limits` -> `limits`.
fn root_exports() -> BTreeMap<String, String> {
    let lib = code(&src().join("lib.rs"));
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let stmt = stmt.trim();
        let Some(path) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_start_matches("crate::");
        let module = ident_at(path).to_owned();
        for word in path.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with(|c: char| c.is_ascii_uppercase()) {
                map.insert(word.to_owned(), module.clone());
            }
        }
    }
    map
}

/// The top-level module a source file belongs to (`None`: the crate root).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        // The binary: main.rs and its logger (logger.rs, logger/).
        "lib.rs" | "main.rs" | "logger.rs" | "logger" => None,
        f => Some(f.trim_end_matches(".rs").to_owned()),
    }
}

#[test]
fn modules_name_only_the_layers_below_them() {
    let rules: BTreeMap<&str, BTreeSet<&str>> = RULES
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let exports = root_exports();
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut broken = Vec::new();
    for path in &files {
        let Some(module) = module_of(path) else {
            continue;
        };
        let Some(allowed) = rules.get(module.as_str()) else {
            broken.push(format!(
                "{}: module `{module}` has no layer rule in tests/layers.rs",
                path.display()
            ));
            continue;
        };
        for head in heads(&code(path), "crate::") {
            let named = match exports.get(&head) {
                Some(m) => m.clone(),
                None => head,
            };
            if named != module && !allowed.contains(named.as_str()) {
                broken.push(format!(
                    "{}: `{module}` names `{named}`",
                    path.strip_prefix(src()).unwrap_or(path).display()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layer rules broken (docs/ARCHITECTURE.md):\n{}",
        broken.join("\n")
    );
}

#[test]
fn core_files_name_each_other_without_a_circle() {
    let dir = src().join("core");
    let hub = code(&dir.join("mod.rs"));
    // Names `core/mod.rs` takes from its files: `super::Name` in a file
    // may mean one of them.
    let mut via_hub = BTreeMap::new();
    for stmt in hub.split(';') {
        let stmt = stmt.trim();
        let path = stmt
            .strip_prefix("pub use ")
            .or_else(|| stmt.strip_prefix("use "))
            .unwrap_or("");
        let file = ident_at(path);
        if dir.join(format!("{file}.rs")).exists() {
            for word in path.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.is_empty() && word != file {
                    via_hub.insert(word.to_owned(), file.to_owned());
                }
            }
        }
    }
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let rel = path.strip_prefix(&dir).unwrap_or(path);
        let unit = ident_at(rel.to_str().unwrap_or("")).to_owned();
        if unit == "mod" {
            continue;
        }
        let nested = rel.components().count() > 1;
        let code = code(path);
        let mut named: Vec<String> = heads(&code, "crate::core::");
        if nested {
            named.extend(heads(&code, "super::super::"));
        } else {
            named.extend(heads(&code, "super::"));
        }
        let targets = edges.entry(unit.clone()).or_default();
        for n in named {
            let target = if dir.join(format!("{n}.rs")).exists() {
                n
            } else if let Some(file) = via_hub.get(&n) {
                file.clone()
            } else {
                continue;
            };
            if target != unit {
                targets.insert(target);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| p == n).unwrap_or(0);
                let mut circle = path[from..].to_vec();
                circle.push(n.to_owned());
                return Some(circle);
            }
            _ => {}
        }
        state.insert(n.to_owned(), 1);
        path.push(n.to_owned());
        for next in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if let Some(circle) = visit(n, &edges, &mut state, &mut Vec::new()) {
            panic!(
                "files of core name each other in a circle: {}",
                circle.join(" -> ")
            );
        }
    }
}
