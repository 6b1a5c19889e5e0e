//! Which of moby's networking tests the scenario catalog covers: the upstream list
//! (`scenarios/upstream.txt`: a file's path, then its tests indented, each optionally followed by
//! `not covered: REASON`) against the scenarios' `source:`, as the table in `COVERAGE.md`.
//! Pure: the caller reads the files.

use std::fmt::Write as _;

/// The upstream tests, by file, in the list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Each test file and its tests.
    pub files: Vec<(String, Vec<Test>)>,
}

/// One upstream test function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    /// Its name (`TestDockerNetworkLsDefault`).
    pub name: String,
    /// Why no scenario ports it, when none is meant to.
    pub not_covered: Option<String>,
}

/// A line of the list that cannot be read: `FILE:LINE:COLUMN: what`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ListError {
    /// The list's path, as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

/// Reads the list `text` (from `file`, named in errors).
pub fn parse(text: &str, file: &str) -> Result<Upstream, ListError> {
    let mut files: Vec<(String, Vec<Test>)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let error = |column: usize, message: String| ListError {
            file: file.to_string(),
            line: number + 1,
            column,
            message,
        };
        let content = line.trim_end();
        if content.trim_start().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        if !content.starts_with(char::is_whitespace) {
            files.push((content.to_string(), Vec::new()));
            continue;
        }
        let indent = content.len() - content.trim_start().len();
        let (name, reason) = match content.trim_start().split_once("not covered:") {
            Some((name, reason)) => (name.trim(), Some(reason.trim().to_string())),
            None => (content.trim(), None),
        };
        let Some((_, tests)) = files.last_mut() else {
            return Err(error(indent + 1, "a test before any file line".into()));
        };
        let valid =
            name.starts_with("Test") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(error(
                indent + 1,
                format!("{name:?} is not a Go test's name"),
            ));
        }
        if reason.as_deref() == Some("") {
            return Err(error(
                indent + 1,
                format!("{name}: `not covered:` without a reason"),
            ));
        }
        if !seen.insert(name.to_string()) {
            return Err(error(indent + 1, format!("{name} is listed twice")));
        }
        tests.push(Test {
            name: name.to_string(),
            not_covered: reason,
        });
    }
    Ok(Upstream { files })
}

/// Whether `source` names `test` as a whole word (`TestX` is not `TestXY`).
fn names(source: &str, test: &str) -> bool {
    source.match_indices(test).any(|(at, _)| {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let before = source[..at].chars().next_back().is_none_or(|c| !word(c));
        let after = source[at + test.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c));
        before && after
    })
}

/// The coverage table, Markdown: totals, then per file each test with the scenarios that name
/// it in their `source:` (`scenarios`: path and source), its reason, or "to do".
pub fn table(upstream: &Upstream, scenarios: &[(String, String)]) -> String {
    let mut body = String::new();
    let (mut covered, mut skipped, mut todo) = (0, 0, 0);
    for (file, tests) in &upstream.files {
        let _ = write!(
            body,
            "\n## {file}\n\n| upstream test | covered by |\n|---|---|\n"
        );
        for test in tests {
            let by: Vec<String> = scenarios
                .iter()
                .filter(|(_, source)| names(source, &test.name))
                .map(|(path, _)| format!("[{path}]({path})"))
                .collect();
            let cell = match (&by[..], &test.not_covered) {
                ([], Some(reason)) => {
                    skipped += 1;
                    format!("not covered: {reason}")
                }
                ([], None) => {
                    todo += 1;
                    "to do".to_string()
                }
                (by, _) => {
                    covered += 1;
                    by.join(", ")
                }
            };
            let _ = writeln!(body, "| {} | {cell} |", test.name);
        }
    }
    let total = covered + skipped + todo;
    format!(
        "# Coverage of moby v20.10's networking tests\n\n\
         Generated by `drydock coverage --write` from `scenarios/upstream.txt` and the scenarios'\n\
         `source:`; a test checks that it is current. {total} upstream tests: {covered} covered by\n\
         scenarios, {skipped} not covered (with the reason), {todo} to do.\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const LIST: &str = "# comment\nintegration-cli/a_test.go\n  TestOne\n  TestTwo  not covered: plugins\n\nintegration/b_test.go\n  TestThree\n";

    #[test]
    fn the_list_reads_files_tests_and_reasons() {
        let upstream = parse(LIST, "upstream.txt").unwrap();
        assert_eq!(upstream.files.len(), 2);
        assert_eq!(
            upstream.files[0].1[1].not_covered.as_deref(),
            Some("plugins")
        );
        assert_eq!(upstream.files[1].1[0].name, "TestThree");
    }

    #[rstest]
    #[case("  TestOne\n", "upstream.txt:1:3: a test before any file line")]
    #[case(
        "f\n  Test-x\n",
        "upstream.txt:2:3: \"Test-x\" is not a Go test's name"
    )]
    #[case(
        "f\n    TestA not covered:\n",
        "upstream.txt:2:5: TestA: `not covered:` without a reason"
    )]
    #[case("f\n  TestA\ng\n  TestA\n", "upstream.txt:4:3: TestA is listed twice")]
    fn bad_lines_are_located(#[case] text: &str, #[case] message: &str) {
        assert_eq!(
            parse(text, "upstream.txt").unwrap_err().to_string(),
            message
        );
    }

    #[test]
    fn tests_are_covered_by_whole_names_counted_and_tabled() {
        let upstream = parse(LIST, "upstream.txt").unwrap();
        let scenarios = [
            (
                "scenarios/x.yaml".to_string(),
                "moby TestOne, TestThreeMore".to_string(),
            ),
            (
                "scenarios/y.yaml".to_string(),
                "moby TestOne (integration-cli)".to_string(),
            ),
        ];
        let table = table(&upstream, &scenarios);
        assert!(table.contains("3 upstream tests: 1 covered by\nscenarios, 1 not covered (with the reason), 1 to do."), "{table}");
        assert!(table.contains("| TestOne | [scenarios/x.yaml](scenarios/x.yaml), [scenarios/y.yaml](scenarios/y.yaml) |"));
        assert!(table.contains("| TestTwo | not covered: plugins |"));
        assert!(table.contains("| TestThree | to do |"));
    }
}
