//! The crate's layering, checked from its source so it cannot decay.
//!
//! `src/lib.rs` has a layout table: each top-level module with its layer
//! number. This test reads every `crate::…` and `super::…` path in the
//! code under `src/` (comments and string literals skipped) and fails on
//! 1. an import that runs *upward* or *sideways*: a module may use only
//!    modules of a strictly lower layer, besides its own submodules;
//! 2. a cycle anywhere below: within each folder, the sibling modules'
//!    imports must form a DAG (a module and its own submodules count as
//!    one, so `mod.rs` calling a child and the child naming an item of
//!    `super` is not a cycle).
//!
//! The failure names the file and line of each offending path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside the crate, e.g. `["engine", "collect", "poll"]`.
type Module = Vec<String>;

/// One reference from code: where it is and which module it names.
#[derive(Debug, Clone)]
struct Use {
    from: Module,
    to: Module,
    at: String,
}

#[test]
fn imports_only_run_downward_and_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers_from_lib_rs(&src.join("lib.rs"));
    let files = rust_files(&src);
    let modules: BTreeSet<Module> = files.iter().map(|(m, _)| m.clone()).collect();
    let tops: BTreeSet<&str> = modules
        .iter()
        .filter(|m| m.len() == 1)
        .map(|m| m[0].as_str())
        .collect();
    for top in &tops {
        assert!(
            layers.contains_key(*top),
            "src/lib.rs's layout table has no layer for the module `{top}`"
        );
    }
    let uses: Vec<Use> = files
        .iter()
        .flat_map(|(module, path)| uses_in(module, path, &modules))
        .collect();
    let mut problems = upward(&uses, &layers);
    problems.dedup();
    problems.extend(cycles(&uses));
    assert!(
        problems.is_empty(),
        "the layering is broken:\n{}",
        problems.join("\n")
    );
}

/// Every stderr line goes through the one writer (`util::term::eprint_line`),
/// which redacts secrets and survives a closed stderr; `eprintln!` would
/// panic on a closed terminal and print a key a server echoed. Tests are
/// free to use it.
#[test]
fn stderr_is_written_only_through_the_one_writer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = rust_files(&src).into_iter().map(|(_, p)| p).collect();
    files.push(src.join("main.rs"));
    let mut found = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.ends_with("util/term.rs") || name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // A file's own test module, at its end, may print.
        let code = text.split("mod tests {").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            if line.contains("eprintln!(") || line.contains("eprint!(") {
                found.push(format!("{}:{}: {line}", shown(&path), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "stderr written around util::term::eprint_line:\n{}",
        found.join("\n")
    );
}

/// A deliberately added back-arrow is caught: the checks are not vacuous.
#[test]
fn a_back_arrow_and_a_cycle_are_caught() {
    let layers: BTreeMap<String, u32> = [("util", 1), ("job", 2), ("engine", 6)]
        .into_iter()
        .map(|(m, l)| (m.to_owned(), l))
        .collect();
    let m = |s: &str| -> Module { s.split("::").map(str::to_owned).collect() };
    let edge = |from: &str, to: &str| Use {
        from: m(from),
        to: m(to),
        at: format!("{from}.rs:1"),
    };
    let back = [edge("util::fsx", "engine::submit")];
    let found = upward(&back, &layers);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("util::fsx.rs:1") && found[0].contains("layer 1"));
    let sideways = [
        edge("job::rules", "job::identity"),
        edge("engine::collect", "engine::submit::pool"),
    ];
    assert!(upward(&sideways, &layers).is_empty());
    let cycle = [
        edge("engine::collect::poll", "engine::submit::pool"),
        edge("engine::submit", "engine::collect::download"),
    ];
    let found = cycles(&cycle);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("collect") && found[0].contains("submit"));
    let parent_and_child = [
        edge("engine::collect", "engine::collect::poll"),
        edge("engine::collect::poll", "engine::collect"),
    ];
    assert!(cycles(&parent_and_child).is_empty());
}

/// `path` from the crate's folder, as the failure shows it.
fn shown(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `| N name | [`module`] …` rows of the layout table in `lib.rs`.
fn layers_from_lib_rs(lib: &Path) -> BTreeMap<String, u32> {
    let text = std::fs::read_to_string(lib).unwrap();
    let mut layers = BTreeMap::new();
    for line in text.lines() {
        let Some(row) = line.strip_prefix("//! | ") else {
            continue;
        };
        let mut cells = row.split(" | ");
        let (Some(layer), Some(modules)) = (cells.next(), cells.next()) else {
            continue;
        };
        let Some(number) = layer.split_whitespace().next().and_then(|n| n.parse().ok()) else {
            continue;
        };
        for name in modules.split("[`").skip(1) {
            let name = name.split('`').next().unwrap();
            layers.insert(name.to_owned(), number);
        }
    }
    assert!(
        !layers.is_empty(),
        "no layout table found in {}",
        lib.display()
    );
    layers
}

/// Every `.rs` file under `src` (but `main.rs` and `lib.rs`) with its module.
fn rust_files(src: &Path) -> Vec<(Module, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|l| l == "mod") {
                module.pop();
            }
            if module == ["main"] || module == ["lib"] {
                continue;
            }
            out.push((module, path));
        }
    }
    out.sort();
    out
}

/// The modules named by the `crate::` and `super::` paths of one file's
/// code: each path resolved to the longest prefix that is a module.
fn uses_in(module: &Module, path: &Path, modules: &BTreeSet<Module>) -> Vec<Use> {
    let text = std::fs::read_to_string(path).unwrap();
    let code = code_only(&text);
    let mut out = Vec::new();
    for (number, line) in code.lines().enumerate() {
        for start in path_starts(line) {
            let segments = path_at(&line[start..]);
            let Some(absolute) = resolve(module, &segments) else {
                continue;
            };
            for target in expand_groups(&absolute, &line[start..]) {
                let mut to = target;
                while !to.is_empty() && !modules.contains(&to) {
                    to.pop();
                }
                if to.is_empty() || to == *module {
                    continue;
                }
                out.push(Use {
                    from: module.clone(),
                    to,
                    at: format!("{}:{}", shown(path), number + 1),
                });
            }
        }
    }
    out
}

/// Byte offsets in `line` where a `crate::` or `super::` path begins.
fn path_starts(line: &str) -> Vec<usize> {
    let bytes = line.as_bytes();
    let mut starts = Vec::new();
    for keyword in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = line[from..].find(keyword) {
            let at = from + i;
            let boundary = at == 0
                || !(bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':');
            if boundary {
                starts.push(at);
            }
            from = at + keyword.len();
        }
    }
    starts
}

/// The `::`-separated identifiers at the start of `text`.
fn path_at(text: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segments.push(rest[..end].to_owned());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    segments
}

/// An absolute module path for `crate::a::b` or `super::super::a` seen in
/// `module`; `None` for anything else.
fn resolve(module: &Module, segments: &[String]) -> Option<Module> {
    let mut iter = segments.iter().peekable();
    let mut base: Module = match iter.peek().map(|s| s.as_str()) {
        Some("crate") => {
            iter.next();
            Vec::new()
        }
        Some("super") => module.clone(),
        _ => return None,
    };
    while iter.peek().is_some_and(|s| *s == "super") {
        iter.next();
        base.pop()?;
    }
    base.extend(iter.cloned());
    Some(base)
}

/// `crate::a::{b, c::d}` names `a::b` and `a::c::d`; other paths name themselves.
fn expand_groups(prefix: &Module, text: &str) -> Vec<Module> {
    let Some(open) = text.find("::{") else {
        return vec![prefix.clone()];
    };
    let before = &text[..open];
    if before.contains(|c: char| c.is_whitespace() || c == ';' || c == '(') {
        return vec![prefix.clone()];
    }
    let inner = &text[open + 3..];
    let close = inner.find('}').unwrap_or(inner.len());
    inner[..close]
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty() && *item != "self")
        .map(|item| {
            let mut m = prefix.clone();
            m.extend(path_at(item));
            m
        })
        .collect()
}

/// `text` with comments and string and char literals blanked out, lines kept.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(&other) => {
                        out.push(blank(other));
                        j += 1;
                    }
                }
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Layer rule: every use goes to a strictly lower layer, or inside its own
/// top-level module.
fn upward(uses: &[Use], layers: &BTreeMap<String, u32>) -> Vec<String> {
    let mut problems = Vec::new();
    for u in uses {
        let (from, to) = (&u.from[0], &u.to[0]);
        if from == to {
            continue;
        }
        let (Some(&lf), Some(&lt)) = (layers.get(from), layers.get(to)) else {
            continue;
        };
        if lt >= lf {
            problems.push(format!(
                "{}: `{}` (layer {lf}) uses `{}` (layer {lt}): a module may only use a lower layer",
                u.at,
                u.from.join("::"),
                u.to.join("::")
            ));
        }
    }
    problems
}

/// Sibling rule: within each folder, the imports between its children
/// (each child with its own submodules) form no cycle.
fn cycles(uses: &[Use]) -> Vec<String> {
    // Edges between siblings, grouped by parent, with one example location.
    let mut graphs: BTreeMap<Module, BTreeMap<(String, String), String>> = BTreeMap::new();
    for u in uses {
        let common = u.from.iter().zip(&u.to).take_while(|(a, b)| a == b).count();
        if common == u.from.len() || common == u.to.len() {
            continue; // a module and its own submodules
        }
        let parent = u.from[..common].to_vec();
        let key = (u.from[common].clone(), u.to[common].clone());
        graphs
            .entry(parent)
            .or_default()
            .entry(key)
            .or_insert_with(|| u.at.clone());
    }
    let mut problems = Vec::new();
    for (parent, edges) in &graphs {
        // One cycle per folder is enough to point at; fixing it shows the next.
        let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
        if let Some(path) = nodes.iter().find_map(|start| cycle_from(start, edges)) {
            let folder = if parent.is_empty() {
                "crate".to_owned()
            } else {
                parent.join("::")
            };
            problems.push(format!(
                "cycle in `{folder}`: {} (first arrow at {})",
                path.join(" → "),
                edges[&(path[0].clone(), path[1].clone())]
            ));
        }
    }
    problems
}

/// A cycle through `start` (as the list of nodes, `start` first and last).
fn cycle_from(start: &str, edges: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap().clone();
        for (a, b) in edges.keys() {
            if *a != last {
                continue;
            }
            if b == start {
                let mut cycle = path.clone();
                cycle.push(b.clone());
                return Some(cycle);
            }
            if seen.insert(b.clone()) {
                let mut next = path.clone();
                next.push(b.clone());
                stack.push(next);
            }
        }
    }
    None
}
