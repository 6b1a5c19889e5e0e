//! What the documents tell a new user: true of this repository, and nowhere else.

use std::path::{Path, PathBuf};

const DOCUMENTS: [&str; 4] = [
    "README.md",
    "ARCHITECTURE.md",
    "BENCHMARKS.md",
    "scenarios/README.md",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(document: &str) -> String {
    std::fs::read_to_string(root().join(document)).unwrap()
}

/// The relative paths that climb out of a document's folder (`../x/y.md`), as written.
fn climbing_paths(text: &str) -> Vec<&str> {
    text.match_indices("../")
        .filter(|(at, _)| !text[..*at].ends_with('.'))
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '`' | ')' | '"' | '\'' | ','))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn documents_point_at_nothing_outside_the_repository() {
    let root = root().canonicalize().unwrap();
    for document in DOCUMENTS {
        let folder = Path::new(document).parent().unwrap();
        for path in climbing_paths(&read(document)) {
            let target = root.join(folder).join(path.trim_end_matches('.'));
            let inside = target
                .canonicalize()
                .is_ok_and(|target| target.starts_with(&root));
            assert!(
                inside,
                "{document} points at {path}, outside the repository"
            );
        }
    }
    assert_eq!(climbing_paths("see ../shared/x.md."), ["../shared/x.md."]);
}

#[test]
fn the_readme_asks_for_the_workspaces_rust_and_its_components() {
    let manifest = read("Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("the workspace has a rust-version")
        .trim_matches('"');
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("Rust {version} or newer")),
        "README.md does not ask for Rust {version}"
    );
    for component in ["rustfmt", "clippy"] {
        assert!(readme.contains(&format!("`{component}`")), "{component}");
    }
    // The setup comes before the commands that need it.
    let setup = readme
        .find("`ci/setup`")
        .expect("the README names ci/setup");
    let main = readme.find("cargo run --release -- conform").unwrap();
    assert!(setup < main, "ci/setup is named after the main command");
}

#[test]
fn listen_is_documented_with_its_kind() {
    for document in DOCUMENTS {
        let text = read(document);
        for (at, _) in text.match_indices("--listen ") {
            let operand = text[at + "--listen ".len()..]
                .split(|c: char| c.is_whitespace() || c == '`')
                .next()
                .unwrap();
            let kind = operand.split_once('/').map(|(kind, _)| kind);
            assert!(
                matches!(kind, Some("tcp" | "udp" | "http" | "KIND")),
                "{document}: `--listen {operand}`: expected --listen tcp/PORT, udp/PORT or http/PORT"
            );
        }
    }
}

#[test]
fn the_coverage_table_is_current() {
    let output = crate::drydock(false)
        .arg("coverage")
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout) == read("COVERAGE.md"),
        "COVERAGE.md is stale: `drydock coverage --write COVERAGE.md` makes it again"
    );
}
