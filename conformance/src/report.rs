//! Reports of a conformance run: terminal text, JUnit XML, JSON and Markdown.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::run::{Outcome, Status, Verdict};

/// A report file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JUnit XML: one test case per scenario.
    Junit,
    /// The whole report as JSON.
    Json,
    /// Markdown: a table, then the failures.
    Markdown,
}

/// A finished run: which target, and every scenario's outcome.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The target, e.g. "docker 20.10.24".
    pub target: String,
    /// The run's id (labels on what the target created).
    pub run_id: String,
    /// Wall time of the whole run.
    pub seconds: f64,
    /// Outcomes, in scenario order.
    pub outcomes: Vec<Outcome>,
}

/// Passed, failed and skipped scenario counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Report {
    /// Counts of each verdict.
    pub fn totals(&self) -> Totals {
        let count =
            |f: fn(&Verdict) -> bool| self.outcomes.iter().filter(|o| f(&o.verdict)).count();
        Totals {
            passed: count(|v| *v == Verdict::Pass),
            failed: count(|v| *v == Verdict::Fail),
            skipped: count(|v| matches!(v, Verdict::Skip(_))),
        }
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Junit => self.junit(),
            Format::Json => self.json(),
            Format::Markdown => self.markdown(),
        }
    }

    /// Writes the report in `format` to `path`, its folder made if needed; `suffix` (a
    /// target's name, when a run has several) goes before the file's extension.
    pub fn write(&self, format: Format, path: &Path, suffix: Option<&str>) -> io::Result<PathBuf> {
        let path = match suffix {
            Some(suffix) => {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let extension = (path.extension())
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_default();
                path.with_file_name(format!("{stem}.{suffix}{extension}"))
            }
            None => path.to_path_buf(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(cannot("create", dir))?;
        }
        std::fs::write(&path, self.render(format)).map_err(cannot("write", &path))?;
        Ok(path)
    }

    /// Writes the captures of each failed scenario as one pcapng file in `dir`
    /// (`SCENARIO.pcapng`, one interface block per capture).
    pub fn write_pcaps(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir).map_err(cannot("create", dir))?;
        let failed =
            (self.outcomes.iter()).filter(|o| o.verdict == Verdict::Fail && !o.captures.is_empty());
        for outcome in failed {
            let stem = Path::new(&outcome.path).file_stem().unwrap_or_default();
            let path = dir.join(format!("{}.pcapng", stem.to_string_lossy()));
            let file = std::fs::File::create(&path).map_err(cannot("create", &path))?;
            let captures: Vec<(&str, &[drydock_netsim::capture::Packet])> = (outcome.captures)
                .iter()
                .map(|c| (c.label.as_str(), c.packets.as_slice()))
                .collect();
            drydock_netsim::capture::write_pcapng(io::BufWriter::new(file), &captures)?;
        }
        Ok(())
    }

    /// The end of the terminal output: every failure in full, then the totals. Each scenario's
    /// own line ([`outcome_line`]) is printed as it ends, not here again.
    pub fn terminal(&self) -> String {
        let mut out = String::new();
        for outcome in self.outcomes.iter().filter(|o| o.verdict == Verdict::Fail) {
            let _ = writeln!(out, "\n---- FAIL {} ({})", outcome.name, outcome.path);
            out.push_str(&failures(outcome));
            if let Some(dump) = &outcome.dump {
                let _ = writeln!(out, "dump:\n{}", indent(dump));
            }
        }
        let t = self.totals();
        let _ = writeln!(
            out,
            "\n{}: {} passed, {} failed, {} skipped in {:.1}s",
            self.target, t.passed, t.failed, t.skipped, self.seconds
        );
        out
    }

    /// JUnit XML: one test case per scenario.
    pub fn junit(&self) -> String {
        let t = self.totals();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"drydock conform\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.outcomes.len(),
            t.failed,
            t.skipped,
            self.seconds
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml(&self.target),
            self.outcomes.len(),
            t.failed,
            t.skipped,
            self.seconds
        );
        for o in &self.outcomes {
            let class = o.path.rsplit('/').nth(1).unwrap_or("scenarios");
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
                xml(class),
                xml(&o.name),
                xml(&o.path),
                o.seconds
            );
            match &o.verdict {
                Verdict::Pass => out.push_str("/>\n"),
                Verdict::Skip(reason) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(reason)
                    );
                }
                Verdict::Fail => {
                    let first = o.results.iter().find_map(|r| match &r.status {
                        Status::Fail { expected, observed } => Some(format!(
                            "{}: expected {expected}, observed {observed}",
                            r.line
                        )),
                        _ => None,
                    });
                    let mut body = failures(o);
                    if let Some(dump) = &o.dump {
                        body.push_str("\ndump:\n");
                        body.push_str(dump);
                    }
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml(&first.unwrap_or_default()),
                        xml(&body)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }

    /// The whole report as JSON.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            report: &'a Report,
            totals: Totals,
        }
        serde_json::to_string_pretty(&Json {
            report: self,
            totals: self.totals(),
        })
        .expect("reports serialize")
    }

    /// Markdown: a table of scenarios, then the failures with their dumps folded.
    pub fn markdown(&self) -> String {
        let t = self.totals();
        let mut out = format!(
            "# drydock conform: {}\n\n{} passed, {} failed, {} skipped in {:.1} s (run `{}`).\n\n| verdict | scenario | checks | time |\n|---|---|---|---|\n",
            self.target, t.passed, t.failed, t.skipped, self.seconds, self.run_id
        );
        for o in &self.outcomes {
            let verdict = match &o.verdict {
                Verdict::Skip(reason) => format!("skip: {reason}"),
                v => v.word().to_uppercase(),
            };
            let _ = writeln!(
                out,
                "| {} | [{}]({}) | {} | {:.1} s |",
                md(&verdict),
                md(&o.name),
                o.path,
                md(&o.checks),
                o.seconds
            );
        }
        for o in self.outcomes.iter().filter(|o| o.verdict == Verdict::Fail) {
            let _ = write!(
                out,
                "\n## FAIL: {}\n\n`{}`\n\n```text\n{}```\n",
                o.name,
                o.path,
                failures(o)
            );
            if let Some(dump) = &o.dump {
                let _ = write!(
                    out,
                    "\n<details><summary>dump</summary>\n\n```text\n{dump}\n```\n\n</details>\n"
                );
            }
        }
        out
    }
}

/// A scenario's result in one line, `PASS    0.3s  NAME  (PATH)`, and why it was skipped on the
/// next; the terminal prints it once, as the scenario ends.
pub fn outcome_line(outcome: &Outcome) -> String {
    let mut out = format!(
        "{:<4}  {:>5.1}s  {}  ({})\n",
        outcome.verdict.word().to_uppercase(),
        outcome.seconds,
        outcome.name,
        outcome.path
    );
    if let Verdict::Skip(reason) = &outcome.verdict {
        let _ = writeln!(out, "             skipped: {reason}");
    }
    out
}

/// An I/O error that says what could not be done to which file: `cannot write PATH: ...`.
fn cannot(what: &'static str, at: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let at = at.display().to_string();
    move |e| io::Error::new(e.kind(), format!("cannot {what} {at}: {e}"))
}

/// Every failed check of an outcome: where, what, expected, observed.
fn failures(outcome: &Outcome) -> String {
    let mut out = String::new();
    for result in &outcome.results {
        if let Status::Fail { expected, observed } = &result.status {
            let _ = writeln!(
                out,
                "{}: {}\n  expected: {}\n  observed: {}",
                result.at,
                result.line,
                expected,
                indent(observed).trim_start()
            );
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn xml(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            // XML 1.0 has no way to write most control characters, even as references.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => "\u{fffd}".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
