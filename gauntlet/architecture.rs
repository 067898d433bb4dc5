//! The shape of the code, checked: no import cycle between the files of src/ (outside their
//! test modules). The graph is derived from the code itself: every `crate::…` and `super::…`
//! path a file names, resolved to the file that holds the module it reaches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module file under `root` (`a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` is the
/// crate) with its text up to its test module.
fn modules(root: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
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
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Module = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let production = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            out.insert(parts, production);
        }
    }
    out
}

/// The text without `//` comments (a path named in prose is not an import).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `module` names: each `crate::…`/`super::…` path (and each item of a
/// `use super::{a, b}` group) resolved to the longest module prefix that is a file; its own
/// ancestors are left out (a child may always name its parent's items).
fn imports(module: &Module, text: &str, known: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut out = BTreeSet::new();
    let resolve = |path: Vec<String>, out: &mut BTreeSet<Module>| {
        for k in (1..=path.len()).rev() {
            let target = path[..k].to_vec();
            if known.contains(&target) {
                let ancestor = target.len() < module.len() && module[..target.len()] == target[..];
                if &target != module && !ancestor {
                    out.insert(target);
                }
                return;
            }
        }
    };
    let code = code(text);
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == ','))
        .collect();
    for word in words {
        let (base, rest) = if let Some(rest) = word.strip_prefix("crate::") {
            (Vec::new(), rest)
        } else if word.starts_with("super::") {
            let ups = word.matches("super::").count();
            if ups > module.len() {
                continue;
            }
            (
                module[..module.len() - ups].to_vec(),
                word.trim_start_matches("super::"),
            )
        } else {
            continue;
        };
        // `a::b::{c, d}`: each item of the group, else the path itself.
        let (head, group) = match rest.split_once('{') {
            Some((head, group)) => (head, Some(group)),
            None => (rest, None),
        };
        let head: Vec<String> = head
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut path = base.clone();
        path.extend(head);
        match group {
            Some(group) => {
                for item in group.split(',') {
                    let first = item.split("::").next().unwrap_or_default().trim();
                    if !first.is_empty() {
                        let mut p = path.clone();
                        p.push(first.to_string());
                        resolve(p, &mut out);
                    }
                }
                resolve(path, &mut out);
            }
            None => resolve(path, &mut out),
        }
    }
    out
}

/// The strongly connected groups of more than one module (Tarjan), each sorted.
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        next: usize,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                group.push(w.clone());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.found.push(group);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn graph(files: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let known: BTreeSet<Module> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(m, text)| (m.clone(), imports(m, text, &known)))
        .collect()
}

fn module(path: &str) -> Module {
    path.split('/').map(str::to_string).collect()
}

/// The check can fail: a made-up tree with a cycle through `super::` and a `use` group is
/// found, and a tree whose only back-reference is to a parent is not.
#[test]
fn the_cycle_finder_finds_a_cycle_and_only_a_cycle() {
    let files: BTreeMap<Module, String> = [
        (module("cli"), "mod a; mod b; use self::a::X;".to_string()),
        (module("cli/a"), "use super::{b::Y, CliError};".to_string()),
        (module("cli/b"), "fn f() { super::a::g() }".to_string()),
        (
            module("core"),
            "// crate::cli::a is named in prose only".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let found = cycles(&graph(&files));
    assert_eq!(found, vec![vec![module("cli/a"), module("cli/b")]]);
    let mut acyclic = files.clone();
    acyclic.insert(module("cli/b"), "use super::CliError;".into());
    assert!(cycles(&graph(&acyclic)).is_empty());
}

/// Issue 28: no import cycle between the files of src/ (test modules aside).
#[test]
fn no_production_import_cycle_between_the_files_of_src() {
    let files = modules(&crate::common::repo().join("src"));
    assert!(files.len() > 50, "read {} modules", files.len());
    let edges = graph(&files);
    let found = cycles(&edges);
    let shown: Vec<String> = found
        .iter()
        .map(|group| {
            let names: Vec<String> = group.iter().map(|m| m.join("/")).collect();
            let members: BTreeSet<&Module> = group.iter().collect();
            let arrows: Vec<String> = group
                .iter()
                .flat_map(|a| {
                    edges[a]
                        .iter()
                        .filter(|b| members.contains(b))
                        .map(move |b| format!("{} -> {}", a.join("/"), b.join("/")))
                })
                .collect();
            format!("{}: {}", names.join(", "), arrows.join("; "))
        })
        .collect();
    assert!(found.is_empty(), "import cycles:\n{}", shown.join("\n"));
}
