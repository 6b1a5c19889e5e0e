//! The list of mutations that `ci/mutants` runs (`mutants/runtime.yaml`): it still fits the code,
//! so that a change to runtime/src that makes a mutant stale fails here, not an hour into a run.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

const LIST: &str = "mutants/runtime.yaml";

/// One mutation, as `ci/mutants` reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mutant {
    name: String,
    file: String,
    bug: String,
    from: String,
    to: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mutants() -> Vec<Mutant> {
    let text = std::fs::read_to_string(root().join(LIST)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{LIST}: {e}"))
}

#[test]
fn every_mutation_still_applies_once_to_runtime_src() {
    let mutants = mutants();
    assert!(
        mutants.len() >= 30,
        "{LIST}: {} mutants, the issue asks for 30",
        mutants.len()
    );
    let mut names = BTreeSet::new();
    for m in &mutants {
        let name = &m.name;
        assert!(names.insert(name), "{LIST}: {name} twice");
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{LIST}: `{name}` is not a kebab-case name (ci/mutants --only takes it, logs are named by it)"
        );
        assert!(
            m.file.starts_with("runtime/src/") && m.file.ends_with(".rs"),
            "{name}: {} is not a source file of runtime/src",
            m.file
        );
        assert!(!m.bug.trim().is_empty(), "{name}: say what the bug is");
        assert!(!m.from.is_empty() && m.from != m.to, "{name}: no change");
        let source = std::fs::read_to_string(root().join(&m.file))
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", m.file));
        let count = source.matches(m.from.as_str()).count();
        assert_eq!(
            count, 1,
            "{name}: `from` occurs {count} times in {} (it must occur exactly once)",
            m.file
        );
    }
}

#[test]
fn the_list_names_the_bugs_the_scenarios_missed_before() {
    // The one-line bugs every scenario missed in the first manual run (issue 13): kept in the
    // list, so that the score says whether a scenario catches them now.
    let names: BTreeSet<String> = mutants().into_iter().map(|m| m.name).collect();
    for missed in [
        "forward-admits-routed-traffic",
        "kernel-port-range-ignored",
        "ephemeral-ports-lowest-free",
        "broadcast-not-reserved",
        "udp-answers-never-truncated",
    ] {
        assert!(names.contains(missed), "{LIST} lacks {missed}");
    }
}
