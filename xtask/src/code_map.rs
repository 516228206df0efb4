//! The code map in ARCHITECTURE.md against the tree: every source file is named in it, and
//! every file and directory it names exists, so the map cannot drift from the code.
//!
//! The rule the map follows (ARCHITECTURE.md states it too): each top-level directory has a
//! section, `` ### `engine/` ``. A source file (`*/src/**/*.rs`, `web-ui/assets/*.js|css`,
//! `deploy/**/*.sh`) is named in its directory's section, in backticks: by its path below
//! `src/` (`store/held.rs`) or below the top directory (`assets/app.js`, `cross/build.sh`), or,
//! inside the entry of its directory (a bullet starting `` - `store/` ``), by its file name
//! (`held.rs`); a Rust file also by its module name (`held`). Files directly in `src/` may be
//! named anywhere in the section. `lib.rs` and `main.rs` are the section itself, a directory's
//! `mod.rs` its entry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One top-level directory's section: its lines, and its entries by the path they start with.
#[derive(Debug, Default)]
struct Section {
    text: String,
    entries: BTreeMap<String, String>,
}

/// The sections of the code map, by top-level directory.
fn sections(doc: &str) -> BTreeMap<String, Section> {
    let mut out: BTreeMap<String, Section> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut entry: Option<String> = None;
    for line in doc.lines() {
        if line.starts_with("## ") || line.starts_with("### ") {
            section = line
                .strip_prefix("### `")
                .and_then(|rest| rest.split_once("/`"))
                .map(|(dir, _)| dir.to_owned());
            entry = None;
            if let Some(dir) = &section {
                out.entry(dir.clone()).or_default();
            }
            continue;
        }
        let Some(s) = section.as_ref().and_then(|dir| out.get_mut(dir)) else { continue };
        s.text.push_str(line);
        s.text.push('\n');
        if let Some(rest) = line.strip_prefix("- `") {
            // An entry starts with a path (a directory or a file); other bullets are prose.
            entry = rest
                .split_once('`')
                .map(|(head, _)| head)
                .filter(|head| head.ends_with('/') || head.contains('.'))
                .map(str::to_owned);
        } else if !line.starts_with("  ") {
            // A blank line, a paragraph or anything unindented ends an entry.
            entry = None;
        }
        if let Some(e) = &entry {
            let text = s.entries.entry(e.clone()).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// Everything written in backticks.
fn quoted(text: &str) -> BTreeSet<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The source files the map must name, relative to the repository root.
fn source_files(root: &Path) -> std::io::Result<Vec<String>> {
    fn walk(
        dir: &Path,
        keep: &dyn Fn(&str) -> bool,
        out: &mut Vec<PathBuf>,
    ) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let path = e?.path();
            if path.is_dir() {
                walk(&path, keep, out)?;
            } else if path.file_name().and_then(|n| n.to_str()).is_some_and(keep) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    for e in std::fs::read_dir(root)? {
        let top = e?.path();
        let src = top.join("src");
        if src.is_dir() && top.join("Cargo.toml").is_file() {
            walk(&src, &|n| n.ends_with(".rs"), &mut found)?;
        }
    }
    let assets = root.join("web-ui/assets");
    for e in std::fs::read_dir(&assets)? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "js" || x == "css") {
            found.push(path);
        }
    }
    walk(&root.join("deploy"), &|n| n.ends_with(".sh"), &mut found)?;
    let mut rel: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    rel.sort();
    Ok(rel)
}

/// Whether the map names `file` (relative to the root) by the rule above.
fn is_named(file: &str, map: &BTreeMap<String, Section>) -> bool {
    let Some((top, rest)) = file.split_once('/') else { return false };
    let Some(section) = map.get(top) else { return false };
    let rel = rest.strip_prefix("src/").unwrap_or(rest);
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let module = name.strip_suffix(".rs");
    let in_section = quoted(&section.text);
    if in_section.contains(rel) || in_section.contains(file) {
        return true;
    }
    if dir.is_empty() {
        return matches!(name, "lib.rs" | "main.rs")
            || in_section.contains(name)
            || module.is_some_and(|m| in_section.contains(m));
    }
    let Some(entry) = section.entries.get(&format!("{dir}/")) else { return false };
    let in_entry = quoted(entry);
    name == "mod.rs" || in_entry.contains(name) || module.is_some_and(|m| in_entry.contains(m))
}

/// Whether a file called `name` is anywhere below `dir` (build output and hidden directories
/// left out).
fn has_file(dir: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.filter_map(Result::ok).any(|e| {
        let path = e.path();
        let file_name = e.file_name();
        let file_name = file_name.to_string_lossy();
        if path.is_dir() {
            file_name != "target" && !file_name.starts_with('.') && has_file(&path, name)
        } else {
            file_name == name
        }
    })
}

/// The files and directories the map names that do not exist: entries' paths, and every
/// quoted path of a source file (`*.rs`, `*.js`, `*.css`, `*.sh`). An entry's path is looked up
/// below the section's directory and its `src/`; a quoted path also below the root and the
/// entry's directory, and a bare file name anywhere below the section's directory.
fn named_but_missing(root: &Path, map: &BTreeMap<String, Section>) -> Vec<String> {
    let is_source = |p: &str| [".rs", ".js", ".css", ".sh"].iter().any(|x| p.ends_with(x));
    // Placeholders, globs and absolute paths name no one file of the repository.
    let is_concrete = |p: &str| !p.starts_with('/') && !p.contains(['*', '<', '{', ' ']);
    let mut missing = BTreeSet::new();
    for (top, section) in map {
        let bases = |entry: Option<&str>| {
            let mut b = vec![root.to_path_buf(), root.join(top), root.join(top).join("src")];
            if let Some(e) = entry {
                b.push(root.join(top).join("src").join(e));
                b.push(root.join(top).join(e));
            }
            b
        };
        let exists = |p: &str, entry: Option<&str>| {
            bases(entry).iter().any(|b| b.join(p).exists())
                || (!p.contains('/') && has_file(&root.join(top), p))
        };
        for (entry, text) in &section.entries {
            // An entry's path is exact: below the directory or its `src/`.
            let entry_exists = bases(None).iter().skip(1).any(|b| b.join(entry).exists());
            if is_concrete(entry) && !entry_exists {
                missing.insert(format!("{top}/: {entry}"));
            }
            for p in quoted(text).into_iter().filter(|p| is_source(p) && is_concrete(p)) {
                if !exists(p, Some(entry)) {
                    missing.insert(format!("{top}/ {entry}: {p}"));
                }
            }
        }
        for p in quoted(&section.text).into_iter().filter(|p| is_source(p) && is_concrete(p)) {
            // Named in an entry: checked above, against the entry's directory.
            let in_an_entry = section.entries.values().any(|t| quoted(t).contains(p));
            if !in_an_entry && !exists(p, None) {
                missing.insert(format!("{top}/: {p}"));
            }
        }
    }
    missing.into_iter().collect()
}

#[test]
fn the_code_map_names_every_source_file_and_only_files_that_exist() -> anyhow::Result<()> {
    let root = hearth_harness::root();
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    let map = sections(&doc);
    let unnamed: Vec<String> =
        source_files(&root)?.into_iter().filter(|f| !is_named(f, &map)).collect();
    let gone = named_but_missing(&root, &map);
    assert!(
        unnamed.is_empty() && gone.is_empty(),
        "ARCHITECTURE.md's code map is out of date.\nNot named in it (add a line each to its \
         directory's section):\n  {}\nNamed in it but not in the tree:\n  {}",
        unnamed.join("\n  "),
        gone.join("\n  ")
    );
    Ok(())
}
