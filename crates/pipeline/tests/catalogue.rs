//! The rule catalogue (`ecs-preflight rules`, `docs/rules.md`) lists every rule once: no
//! two rules share a code, and every rule declared in the workspace's sources is in it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use preflight_pipeline::catalogue::all_rules;

#[test]
fn no_two_rules_share_a_code() {
    let rules = all_rules();
    let mut seen = BTreeSet::new();
    let twice: Vec<&str> = rules
        .iter()
        .map(|r| r.code)
        .filter(|code| !seen.insert(*code))
        .collect();
    assert!(twice.is_empty(), "codes declared twice: {twice:?}");
}

/// Every `Rule::new("CODE", ...)` in a library's sources, test modules left out.
fn declared_codes() -> Vec<(String, PathBuf)> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        collect_rs(&entry.unwrap().path().join("src"), &mut files);
    }
    let mut out = Vec::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests declare throwaway rules after this line; none of them is real.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        // Nor are the examples in doc comments.
        let text: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for after in text.split("Rule::new(").skip(1) {
            let code = after
                .trim_start()
                .strip_prefix('"')
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{}: a rule code that is not a literal", file.display()));
            out.push((code.to_string(), file.clone()));
        }
    }
    out
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rule_declared_in_the_sources_is_in_the_catalogue() {
    let listed: BTreeSet<&str> = all_rules().iter().map(|r| r.code).collect();
    let declared = declared_codes();
    // A scan that finds nothing proves nothing: the workspace declares hundreds.
    assert!(
        declared.len() >= listed.len(),
        "only {} declarations found for {} listed rules",
        declared.len(),
        listed.len()
    );
    let missing: Vec<String> = declared
        .iter()
        .filter(|(code, _)| !listed.contains(code.as_str()))
        .map(|(code, file)| format!("{code} ({})", file.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "declared but not in the catalogue: {missing:?}"
    );
}
