//! A conformance run: scenario files loaded and filtered, run on one or more targets (each
//! scenario in a lab of its own, up to `jobs` at once), a report per target, and the comparison
//! of two targets' verdicts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;

use crate::report::Report;
use crate::run::{self, Cancel, Options, Outcome, Verdict};
use crate::scenario::{self, Scenario};
use crate::targets::Target;
use crate::targets::docker::DockerTarget;
use crate::targets::reference::{EtcdReferenceTarget, ReferenceTarget};
use crate::targets::reference_api::ApiReferenceTarget;

/// The engines a suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// drydock's reference engine, in this process, on each scenario's lab.
    Reference,
    /// The reference engine with its swarms' control plane in an etcd inside the lab, reached
    /// by each engine from its docker host, as engines in separate processes would.
    ReferenceEtcd,
    /// The reference engine driven over its own Engine API socket, through the client that
    /// drives dockerd.
    ReferenceApi,
    /// Docker Engine: a private dockerd per docker host, inside each scenario's lab.
    Docker,
}

impl TargetKind {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Reference => "reference",
            TargetKind::ReferenceEtcd => "reference-etcd",
            TargetKind::ReferenceApi => "reference-api",
            TargetKind::Docker => "docker",
        }
    }
}

/// Why scenarios could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A folder could not be read.
    #[error("cannot read {path}: {error}")]
    Unreadable {
        /// The folder.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The filter is not a glob.
    #[error("--filter: {0}")]
    Filter(#[from] globset::Error),
    /// Some files have errors: all of them, each `file:line:column`.
    #[error("{} scenario file(s) have errors:\n{}", .0.len(), .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Loads every scenario under `paths` (files, or folders searched for `*.yaml`; `scenarios/`
/// when none is given), reporting every file's errors at once, and keeps those whose path or
/// name matches `filter` (a glob; `bridge/*` matches the end of a path).
pub fn load(paths: &[PathBuf], filter: Option<&str>) -> Result<Vec<Scenario>, LoadError> {
    let default = [PathBuf::from("scenarios")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(scenario::find(path).map_err(|error| LoadError::Unreadable {
                path: path.display().to_string(),
                error,
            })?);
        } else {
            files.push(path.clone());
        }
    }
    let glob = filter
        .map(|f| globset::Glob::new(f).map(|g| g.compile_matcher()))
        .transpose()?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match Scenario::load(&file) {
            Ok(s) => {
                let kept = glob.as_ref().is_none_or(|g| {
                    g.is_match(&s.path) || g.is_match(&s.name) || matches_tail(g, &file)
                });
                if kept {
                    scenarios.push(s);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    match errors.is_empty() {
        true => Ok(scenarios),
        false => Err(LoadError::Invalid(errors)),
    }
}

/// Globs like `bridge/*` match the end of a path.
fn matches_tail(glob: &globset::GlobMatcher, file: &Path) -> bool {
    let parts: Vec<_> = file.iter().collect();
    (0..parts.len()).any(|i| glob.is_match(parts[i..].iter().collect::<PathBuf>()))
}

/// Runs `scenarios` on a target of kind `kind` and reports. `run_id` names and labels what
/// the targets make (`RUN-N` for the Nth scenario); `progress` hears of each scenario as it
/// ends. Once `cancel` is triggered, running scenarios stop and are torn down, the others are
/// skipped.
pub async fn run(
    kind: TargetKind,
    scenarios: &[Scenario],
    options: &Options,
    run_id: &str,
    progress: &(dyn Fn(&Outcome) + Sync),
    cancel: &Cancel,
) -> Report {
    let started = Instant::now();
    let outcomes = match kind {
        TargetKind::Reference => {
            run_on::<ReferenceTarget>(scenarios, options, run_id, progress, cancel).await
        }
        TargetKind::ReferenceEtcd => {
            run_on::<EtcdReferenceTarget>(scenarios, options, run_id, progress, cancel).await
        }
        TargetKind::ReferenceApi => {
            run_on::<ApiReferenceTarget>(scenarios, options, run_id, progress, cancel).await
        }
        TargetKind::Docker => {
            run_on::<DockerTarget>(scenarios, options, run_id, progress, cancel).await
        }
    };
    let target =
        (outcomes.iter().find_map(|o| o.target.clone())).unwrap_or_else(|| kind.name().to_string());
    Report {
        target,
        run_id: run_id.to_string(),
        seconds: started.elapsed().as_secs_f64(),
        outcomes,
    }
}

/// Runs `scenarios` on targets of type `T`, up to `options.jobs` at once, and returns their
/// outcomes in the order given (see [`run()`]).
pub async fn run_on<T: Target>(
    scenarios: &[Scenario],
    options: &Options,
    run_id: &str,
    progress: &(dyn Fn(&Outcome) + Sync),
    cancel: &Cancel,
) -> Vec<Outcome> {
    futures::stream::iter(scenarios.iter().enumerate())
        .map(|(index, scenario)| async move {
            let run_id = format!("{run_id}-{index}");
            let outcome = run::run_one::<T>(scenario, options, &run_id, cancel).await;
            progress(&outcome);
            outcome
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await
}

/// Two targets' verdicts, scenario by scenario.
#[derive(Debug)]
pub struct Comparison<'a> {
    names: [&'a str; 2],
    reports: [&'a Report; 2],
}

impl<'a> Comparison<'a> {
    /// Compares the reports of the same scenarios on two targets named `a` and `b`.
    pub fn new(a: (&'a str, &'a Report), b: (&'a str, &'a Report)) -> Self {
        Self {
            names: [a.0, b.0],
            reports: [a.1, b.1],
        }
    }

    fn pairs(&self) -> impl Iterator<Item = (&'a Outcome, &'a Outcome)> {
        (self.reports[0].outcomes.iter()).zip(&self.reports[1].outcomes)
    }

    /// Scenarios both targets ran (neither skipped them).
    pub fn compared(&self) -> usize {
        let ran = |o: &Outcome| !matches!(o.verdict, Verdict::Skip(_));
        self.pairs().filter(|(a, b)| ran(a) && ran(b)).count()
    }

    /// The scenarios where one target passed and the other failed.
    pub fn disagreements(&self) -> Vec<&'a Outcome> {
        self.pairs()
            .filter(|(a, b)| differ(&a.verdict, &b.verdict))
            .map(|(a, _)| a)
            .collect()
    }

    /// The scenarios a target skipped, with the target's name and its reason.
    pub fn skipped(&self) -> Vec<(&'a str, &'a Outcome, &'a str)> {
        let mut found = Vec::new();
        for (side, report) in self.reports.iter().enumerate() {
            for outcome in &report.outcomes {
                if let Verdict::Skip(reason) = &outcome.verdict {
                    found.push((self.names[side], outcome, reason.as_str()));
                }
            }
        }
        found
    }

    /// The table: a header, then per scenario its path, both verdicts, and a mark where they
    /// differ.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let mut rows = vec![vec![
            "SCENARIO".to_string(),
            self.names[0].to_uppercase(),
            self.names[1].to_uppercase(),
            String::new(),
        ]];
        for (a, b) in self.pairs() {
            let mark = if differ(&a.verdict, &b.verdict) {
                "<- differ"
            } else {
                ""
            };
            rows.push(vec![
                a.path.clone(),
                a.verdict.word().into(),
                b.verdict.word().into(),
                mark.into(),
            ]);
        }
        rows
    }

    /// What the table means, in a few lines: how many scenarios were compared, where the
    /// targets disagree, and which scenarios were not compared because a target skipped them
    /// (a skip is never an agreement).
    pub fn summary(&self) -> String {
        let [a, b] = self.names;
        let compared = self.compared();
        let disagreements = self.disagreements();
        let mut out = match disagreements.len() {
            0 => format!("{a} and {b} agree on all {compared} scenario(s) both ran\n"),
            n => format!("{a} and {b} disagree on {n} of the {compared} scenario(s) both ran\n"),
        };
        let skipped = self.skipped();
        if !skipped.is_empty() {
            let not_compared = self.reports[0].outcomes.len() - compared;
            out.push_str(&format!(
                "not compared: {not_compared} scenario(s) skipped by one side or both:\n"
            ));
            for (side, outcome, reason) in skipped {
                out.push_str(&format!(
                    "  {}: skipped by {side}: {reason}\n",
                    outcome.path
                ));
            }
        }
        out
    }
}

/// True when one verdict is a pass and the other a failure.
fn differ(a: &Verdict, b: &Verdict) -> bool {
    matches!(
        (a, b),
        (Verdict::Pass, Verdict::Fail) | (Verdict::Fail, Verdict::Pass)
    )
}

#[cfg(test)]
mod tests;
