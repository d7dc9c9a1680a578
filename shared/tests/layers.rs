//! The layers of `recon-shared` (docs/architecture.md) as a test: every `crate::` path in a
//! module of the library names a module of the same layer or one below, and the modules of
//! one layer do not import each other in a circle. A move that breaks the direction fails here
//! with the file, the line and the two layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use recon_shared::{Error, Result};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Layers, lowest first. A top-level module (a file or a folder of `src/`) belongs to one.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "domain",
        &[
            "error",
            "fault",
            "ids",
            "money",
            "records",
            "rules",
            "calendar",
            "breaks",
            "analytics",
            "report",
            "manifest",
            "pii",
            "keys",
            "index_item",
            "config_files",
            "reject",
            "percent",
            "config",
            "exact_json",
            "metrics",
            "allocator",
        ],
    ),
    ("formats", &["formats", "source", "columnar"]),
    ("ports", &["ports"]),
    ("tasks", &["ingest", "reconcile", "stream", "close"]),
    (
        "adapters",
        &["aws", "local", "local_index", "select", "lambda", "entry"],
    ),
];

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, mods))| mods.contains(&module))
        .map(|(i, (name, _))| (i, *name))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            rust_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs`).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(SRC).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs");
    (name != "lib").then(|| name.to_string())
}

/// The top-level modules a line names through `crate::`, and through `use crate::{a, b}`.
fn imports(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first segment of each top-level item of the group.
            let (mut depth, mut item) = (0usize, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(item.trim().split("::").next().unwrap_or("").to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(item.trim().split("::").next().unwrap_or("").to_string());
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out.retain(|m| !m.is_empty() && m.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
    out
}

#[test]
fn imports_go_down_the_layers_and_never_in_a_circle() -> Result<()> {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files)?;
    files.sort();
    // Modules compiled for tests only (`#[cfg(test)] mod x;`) may reach anywhere.
    let mut test_only = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() == "#[cfg(test)]"
                && let Some(decl) = lines.next()
                && let Some(name) = decl
                    .trim()
                    .strip_prefix("mod ")
                    .and_then(|d| d.strip_suffix(';'))
            {
                test_only.insert(format!("{name}.rs"));
            }
        }
    }
    let mut upward = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| test_only.contains(&n)) {
            continue;
        }
        let Some((from, from_name)) = layer_of(&module) else {
            upward.push(format!(
                "{}: module `{module}` is in no layer (add it to LAYERS and to docs/architecture.md)",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        // Unit tests at the end of a file may reach anywhere.
        let body = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in body.lines().enumerate() {
            for m in imports(line) {
                if m == module {
                    continue;
                }
                let Some((to, to_name)) = layer_of(&m) else {
                    continue; // a macro or an item of lib.rs
                };
                if to > from {
                    upward.push(format!(
                        "{}:{}: `{module}` ({from_name}) imports `{m}` ({to_name}), a layer above",
                        file.display(),
                        n + 1
                    ));
                }
                graph.entry(module.clone()).or_default().insert(m);
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layers:\n{}",
        upward.join("\n")
    );

    // No circles: a depth-first search over the module graph.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        circles: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            circles.push(format!("{} -> {m}", path[i..].join(" -> ")));
            return;
        }
        if !done.insert(m.to_string()) {
            return;
        }
        path.push(m.to_string());
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "modules importing each other in a circle:\n{}",
        circles.join("\n")
    );
    Ok(())
}

#[test]
fn the_import_reader_sees_paths_and_groups() {
    assert_eq!(imports("use crate::money::Currency;"), ["money"]);
    assert_eq!(
        imports("use crate::{ids::{BankId, SourceId}, records::Transaction, Error};"),
        ["ids", "records"]
    );
    assert_eq!(
        imports("let x = crate::keys::fx(d); // crate::aws"),
        ["keys"]
    );
}
