//! One scenario's execution: the order of things (steps, then expectations with the captures
//! running), the results, and how a timeout or an interruption ends it.

use std::collections::HashSet;
use std::time::Instant;

use drydock_netsim::Lab;

use super::oracle::Snapshot;
use super::scene::Scene;
use super::{CaptureResult, CheckResult, Options, Outcome, Status, Verdict};
use crate::scenario::Scenario;
use crate::targets::Target;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Every check ran (or was skipped after a failed step).
    Finished,
    /// The scenario's timeout hit while a check ran.
    TimedOut,
    /// The run was interrupted (a signal) while a check ran.
    Interrupted,
}

/// A scenario running on a target in its lab.
pub(super) struct Execution<'a, T: Target> {
    pub(super) scenario: &'a Scenario,
    pub(super) target: &'a T,
    pub(super) lab: &'a Lab,
    pub(super) options: &'a Options,
    /// What the steps made.
    pub(super) scene: Scene,
    /// The captures, once stopped.
    pub(super) captures: Vec<CaptureResult>,
    /// The scene as the oracle sees it once the steps have run.
    pub(super) snapshot: tokio::sync::OnceCell<Snapshot>,
    results: Vec<CheckResult>,
    /// The check running now (`at`, line), for a timeout's report.
    running: Option<(String, String)>,
}

impl<'a, T: Target> Execution<'a, T> {
    pub(super) fn new(
        scenario: &'a Scenario,
        target: &'a T,
        lab: &'a Lab,
        options: &'a Options,
    ) -> Self {
        Self {
            scenario,
            target,
            lab,
            options,
            scene: Scene::default(),
            captures: Vec::new(),
            snapshot: tokio::sync::OnceCell::new(),
            results: Vec::new(),
            running: None,
        }
    }

    /// The swarm (if the scenario has one), steps, then expectations with the captures
    /// running; stops when the swarm cannot be formed or at the first step that does not
    /// behave as written (later checks are then skipped).
    pub(super) async fn run(&mut self) {
        if let Some(swarm) = &self.scenario.swarm {
            let line = swarm.line();
            self.running = Some((swarm.at.clone(), line.clone()));
            let status = self.form_swarm(swarm).await;
            let failed = matches!(status, Status::Fail { .. });
            self.record(&swarm.at, &line, status);
            if failed {
                self.skip_the_rest("the swarm could not be formed");
                return;
            }
        }
        for (index, step) in self.scenario.steps.iter().enumerate() {
            self.running = Some((step.at.clone(), step.line.clone()));
            let status = self.step(step).await;
            let failed = matches!(status, Status::Fail { .. });
            self.record(&step.at, &step.line, status);
            if failed {
                self.skip_the_rest(&format!("step {} did not behave as written", index + 1));
                return;
            }
        }
        let running = self.start_captures().await;
        for expect in &self.scenario.expectations {
            self.running = Some((expect.at.clone(), expect.line.clone()));
            let status = self.expect(expect).await;
            self.record(&expect.at, &expect.line, status);
        }
        self.running = None;
        self.stop_captures(running);
    }

    /// Records every step, expectation and capture check not recorded yet as skipped.
    fn skip_the_rest(&mut self, reason: &str) {
        let done: HashSet<(String, String)> = (self.results.iter())
            .map(|r| (r.at.clone(), r.line.clone()))
            .collect();
        for (at, line) in planned(self.scenario) {
            if !done.contains(&(at.clone(), line.clone())) {
                let status = Status::Skip {
                    reason: reason.to_string(),
                };
                self.record(&at, &line, status);
            }
        }
    }

    pub(super) fn record(&mut self, at: &str, line: &str, status: Status) {
        self.results.push(CheckResult {
            at: at.into(),
            line: line.into(),
            status,
        });
    }

    /// Closes listeners, collects a dump when something failed, and builds the outcome. After a
    /// timeout or an interruption, the check that was running is reported as such and the
    /// checks that never ran as skipped.
    pub(super) async fn finish(mut self, end: End, started: Instant) -> Outcome {
        let cut = match end {
            End::Finished => None,
            End::TimedOut => Some(format!(
                "the scenario's timeout ({} s) hit",
                self.options.timeout.as_secs()
            )),
            End::Interrupted => Some("the run was interrupted".to_string()),
        };
        if let Some(why) = &cut {
            self.cut_short(end, why);
        }
        let failed = (self.results.iter()).any(|r| matches!(r.status, Status::Fail { .. }));
        let dump = match failed && end != End::Interrupted {
            true => Some(self.dump().await),
            false => None,
        };
        self.scene.close_all().await;
        let verdict = match (failed, end) {
            (true, _) => Verdict::Fail,
            (false, End::Interrupted) => Verdict::Skip("interrupted".into()),
            (false, _) => Verdict::Pass,
        };
        let mut outcome = Outcome::new(self.scenario, verdict, started);
        outcome.results = self.results;
        outcome.captures = self.captures;
        outcome.dump = dump;
        outcome
    }

    /// Reports the check that was running when `why` happened, and skips the rest.
    fn cut_short(&mut self, end: End, why: &str) {
        match self.running.take() {
            Some((at, line)) if end == End::TimedOut => {
                let status = Status::Fail {
                    expected: "to finish within the scenario's timeout".into(),
                    observed: format!("still running when {why}"),
                };
                self.record(&at, &line, status);
            }
            Some((at, line)) => {
                let status = Status::Skip {
                    reason: format!("{why} while it ran"),
                };
                self.record(&at, &line, status);
            }
            None if end == End::TimedOut => {
                let status = Status::Fail {
                    expected: "the scenario to end within its timeout".into(),
                    observed: format!("still running when {why}"),
                };
                self.record(&self.scenario.path.clone(), "(whole scenario)", status);
            }
            None => {}
        }
        self.skip_the_rest(&format!("not run: {why}"));
    }
}

/// Every check of a scenario, as `(at, line)` in the order they run: the swarm, steps,
/// expectations, capture checks.
pub(super) fn planned(scenario: &Scenario) -> Vec<(String, String)> {
    let swarm = (scenario.swarm.iter()).map(|s| (s.at.clone(), s.line()));
    let steps = (scenario.steps.iter()).map(|s| (s.at.clone(), s.line.clone()));
    let expectations = (scenario.expectations.iter()).map(|e| (e.at.clone(), e.line.clone()));
    let captures = scenario.captures.iter().flat_map(|c| {
        (c.checks.iter())
            .map(move |(quantifier, filter)| (c.at.clone(), c.check_line(*quantifier, filter)))
    });
    swarm
        .chain(steps)
        .chain(expectations)
        .chain(captures)
        .collect()
}
