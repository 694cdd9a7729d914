//! The layering of ARCHITECTURE.md, checked on the source: model ← config ← sim ← api ← experiment ← inference
//! ← analysis ← io ← memcheck ← cli ← app (the command line: `cli` defines the arguments, `app` runs the
//! commands). A module imports only modules before it in that order; `model`, `sim`, `api`, `experiment`,
//! `inference` and `analysis` read no environment variable and touch no file (`config` reads scenario files,
//! `io` writes outputs); `model`, `sim`, `api` and `experiment` format no CSV (`io` does). Unit tests (after a file's `#[cfg(test)]`) are left out.

use super::support::root;
use std::path::{Path, PathBuf};

const ORDER: [&str; 11] =
    ["model", "config", "sim", "api", "experiment", "inference", "analysis", "io", "memcheck", "cli", "app"];
const PURE: [&str; 6] = ["model", "sim", "api", "experiment", "inference", "analysis"];
const BANNED: [&str; 5] = ["std::env", "env::var", "std::fs", "File::create", "File::open"];
/// Modules that format no CSV: `io` formats and writes the tables.
const NO_CSV: [&str; 4] = ["model", "sim", "api", "experiment"];

/// The library source of a module (a folder or a file), without its unit tests.
fn sources(module: &str) -> Vec<(PathBuf, String)> {
    let src = root().join("src");
    let mut files = Vec::new();
    let dir = src.join(module);
    if dir.is_dir() {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
    } else {
        files.push(src.join(format!("{module}.rs")));
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            (p, code)
        })
        .collect()
}

/// What a module's code does against the layering: (line number, what) for each import of a module at or
/// after it in `ORDER` (other than itself) and, for a pure module, each file or environment access.
fn violations(module: &str, code: &str) -> Vec<(usize, String)> {
    let rank = |m: &str| ORDER.iter().position(|x| *x == m);
    let own = rank(module).expect("a module of ORDER");
    let mut found = Vec::new();
    for (i, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + 7..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if rank(&name).is_some_and(|r| r > own) {
                found.push((i + 1, format!("imports {name}")));
            }
        }
        if PURE.contains(&module) {
            found.extend(BANNED.iter().filter(|b| line.contains(*b)).map(|b| (i + 1, format!("uses {b}"))));
        }
        if NO_CSV.contains(&module) && line.contains("csv::") {
            found.push((i + 1, "formats CSV".to_string()));
        }
    }
    found
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn layers_import_only_layers_below_and_the_core_touches_no_file_or_environment() {
    let mut problems = Vec::new();
    for module in ORDER {
        for (path, code) in sources(module) {
            for (line, what) in violations(module, &code) {
                problems.push(format!("{}:{line}: {module} {what}", rel(&path)));
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_layering_check_finds_upward_imports_and_file_access() {
    assert_eq!(violations("analysis", "use crate::app::run_in_memory;"), vec![(1, "imports app".to_string())]);
    assert_eq!(
        violations("sim", "let x = 1;\nlet v = std::env::var(\"X\");"),
        vec![(2, "uses std::env".to_string()), (2, "uses env::var".to_string())]
    );
    assert!(violations("io", "use crate::sim::Trace; let f = std::fs::File::create(p);").is_empty());
    assert!(violations("model", "use crate::model::econ;").is_empty());
    assert_eq!(violations("experiment", "let w = csv::Writer::from_writer(v);"), vec![(1, "formats CSV".to_string())]);
}
