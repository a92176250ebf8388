#![cfg(not(target_arch = "wasm32"))]
//! `docs/architecture.md` matches the code: every `use crate::X` (and `crate::X::` path)
//! in a module of `src/` names a module that the document's `deps` block allows it to
//! import, and the allowed graph has no cycle.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = fs::read_to_string("docs/architecture.md").expect("docs/architecture.md");
    let block = doc
        .split("```deps\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```deps block in docs/architecture.md");
    let mut map = BTreeMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (m, deps) = line.split_once(':').expect("`module: dep, dep` lines");
        let deps = deps
            .split(',')
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .collect();
        map.insert(m.trim().to_string(), deps);
    }
    map
}

/// The top-level module a file under `src/` belongs to (`src/model/params.rs` → `model`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix("src").unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Modules named by `crate::X` paths in the code of `text` (comment lines, doc links
/// included, are prose: a doc may point up to the module that uses this one).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_crate_import_is_an_allowed_dependency() {
    let allowed = allowed();
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut bad = Vec::new();
    let mut seen_modules = BTreeSet::new();
    for f in &files {
        let m = module_of(f);
        if ["lib", "main", "cli"].contains(&m.as_str()) {
            continue; // the crate root and the binary sit on top of everything
        }
        seen_modules.insert(m.clone());
        let deps = allowed.get(&m).unwrap_or_else(|| {
            panic!(
                "module {m} ({}) is not in docs/architecture.md",
                f.display()
            )
        });
        for r in crate_refs(&fs::read_to_string(f).unwrap()) {
            if r != m && !deps.contains(&r) {
                bad.push(format!("{}: {m} uses crate::{r}", f.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports the architecture does not allow:\n{}",
        bad.join("\n")
    );
    let documented: BTreeSet<String> = allowed.keys().cloned().collect();
    assert_eq!(
        documented, seen_modules,
        "docs/architecture.md lists exactly the modules of src/"
    );
}

#[test]
fn the_allowed_graph_has_no_cycle() {
    let allowed = allowed();
    // Kahn's algorithm: repeatedly remove modules whose dependencies are all removed.
    let mut left: BTreeMap<&String, &BTreeSet<String>> = allowed.iter().collect();
    while !left.is_empty() {
        let ready: Vec<&String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| *m)
            .collect();
        assert!(
            !ready.is_empty(),
            "dependency cycle among {:?}",
            left.keys()
        );
        for m in ready {
            left.remove(m);
        }
    }
}

#[test]
fn the_checker_sees_a_forbidden_import() {
    // format may not import model; a path in code counts, a doc comment does not.
    let refs = crate_refs("use crate::model::Model;\n/// see [`crate::recommend::Recommender`]");
    assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["model"]);
    assert!(!allowed()["format"].contains("model"));
}
