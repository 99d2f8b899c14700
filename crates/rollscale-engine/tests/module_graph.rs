//! ARCHITECTURE.md's invariant "no module cycle" in the engine, checked on its source text.
//!
//! Each file of `src/` is a module (`runner`, `app::groups`, ...). A module depends on another
//! when its code (comments and its `#[cfg(test)]` part left out) names it by path:
//! `crate::ops::…`, `use crate::{journal::Journal, …}`, `super::groups::…`. The test fails if
//! those dependencies make a cycle, and names it. (Methods of `Engine` or `Service` written in
//! one module and called from another are not paths, so they are not seen; the check is about
//! what a module imports.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src/` by its path (`app::groups`), with its code.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read src").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for path in entries {
            let stem = path.file_stem().expect("a name").to_string_lossy().to_string();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(stem);
                walk(&path, &inner, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut name = prefix.to_vec();
                if stem != "mod" && stem != "lib" {
                    name.push(stem);
                }
                let text = std::fs::read_to_string(&path).expect("read a module");
                out.insert(name.join("::"), code_of(&text));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut out);
    out
}

/// The module's code without comments and without its tests.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The paths the code names from `crate::` and `super::` (written out of use-groups), each as
/// the words after its root: `crate::{a::B, c}` gives `crate a B` and `crate c`.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for root in ["crate", "super"] {
        let needle = format!("{root}::");
        let mut rest = code;
        while let Some(at) = rest.find(&needle) {
            let before = rest[..at].chars().last();
            rest = &rest[at + needle.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for path in expand(rest) {
                found.push((root.to_string(), path));
            }
        }
    }
    found
}

/// The paths at the start of `text` (just after `crate::`): one, or a brace group's.
fn expand(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 1;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &group[..end];
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&inner[start..]);
        return parts.into_iter().flat_map(expand).collect();
    }
    let mut words = Vec::new();
    let mut rest = text;
    loop {
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if word.is_empty() {
            break;
        }
        rest = &rest[word.len()..];
        words.push(word);
        match rest.strip_prefix("::") {
            Some(next) if next.starts_with('{') => {
                return expand(next).into_iter().map(|tail| words.iter().cloned().chain(tail).collect()).collect();
            }
            Some(next) => rest = next,
            None => break,
        }
    }
    vec![words]
}

/// Which modules each module names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut graph = BTreeMap::new();
    for (name, code) in &modules {
        let own: Vec<&str> = if name.is_empty() { Vec::new() } else { name.split("::").collect() };
        let mut uses = BTreeSet::new();
        for (root, words) in paths(code) {
            let mut full: Vec<String> = match root.as_str() {
                "crate" => Vec::new(),
                _ => own[..own.len().saturating_sub(1)].iter().map(|s| s.to_string()).collect(),
            };
            full.extend(words);
            // The longest prefix that is a module.
            let target = (1..=full.len()).rev().map(|n| full[..n].join("::")).find(|m| modules.contains_key(m));
            if let Some(target) = target.filter(|t| t != name && !name.starts_with(&format!("{t}::"))) {
                uses.insert(target);
            }
        }
        graph.insert(name.clone(), uses);
    }
    graph
}

/// A cycle of the graph, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_engine_has_no_module_cycle() {
    let graph = graph();
    assert!(graph.contains_key("runner") && graph.contains_key("ops"), "the modules are read: {:?}", graph.keys());
    if let Some(cycle) = cycle(&graph) {
        panic!("the engine's modules name each other in a cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_check_sees_a_cycle() {
    let code = "use crate::{now, runner::{Journal, X}};\nfn f() { crate::ops::g(); super::b::h(); }";
    let words: Vec<Vec<String>> = paths(code).into_iter().map(|(_, words)| words).collect();
    let expect = |w: &[&str]| words.contains(&w.iter().map(|s| s.to_string()).collect());
    assert!(expect(&["now"]) && expect(&["runner", "Journal"]) && expect(&["runner", "X"]) && expect(&["ops", "g"]));
    assert!(expect(&["b", "h"]));
    let mut graph = BTreeMap::new();
    graph.insert("ops".to_string(), BTreeSet::from(["runner".to_string()]));
    graph.insert("runner".to_string(), BTreeSet::from(["ops".to_string()]));
    assert!(cycle(&graph).is_some());
    graph.insert("runner".to_string(), BTreeSet::new());
    assert!(cycle(&graph).is_none());
}
