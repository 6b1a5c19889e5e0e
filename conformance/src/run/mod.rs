//! Running scenarios: each in a lab of its own, against a fresh target, in parallel up to a limit.

mod docker;
mod exec;
mod resolve;

pub use docker::DockerBackend;

use std::future::Future;
use std::time::{Duration, Instant};

use drydock_netsim::capture::Packet;
use drydock_netsim::{Lab, Topology};
use futures::StreamExt;
use serde::Serialize;

use crate::scenario::Scenario;
use crate::target::{Target, TargetResult};

/// Starts and stops targets: one per scenario, on the scenario's lab.
pub trait Backend {
    /// The target it starts.
    type Target: Target;

    /// Starts the engine on each docker host of `lab`.
    fn start(
        &self,
        lab: &Lab,
        hosts: &[String],
        run_id: &str,
    ) -> impl Future<Output = TargetResult<Self::Target>>;

    /// Stops it and removes everything it made.
    fn stop(&self, target: Self::Target) -> impl Future<Output = ()>;
}

/// How scenarios run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenarios at once.
    pub jobs: usize,
    /// Longest a scenario may take, from lab to teardown.
    pub timeout: Duration,
    /// How long a probe waits for an answer.
    pub probe_timeout: Duration,
    /// Labels what targets create, so leftovers can be found.
    pub run_id: String,
}

/// A scenario's verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "verdict", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    /// Every step and expectation held.
    Pass,
    /// Something did not hold (see the results).
    Fail,
    /// Not run, and why (e.g. the target's Docker version is outside the scenario's range).
    Skip(String),
}

/// The result of one step, expectation or capture check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckResult {
    /// `file:line`.
    pub at: String,
    /// The line as written.
    pub line: String,
    /// What happened.
    pub status: Status,
}

/// What happened to a check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Status {
    /// It held.
    Pass,
    /// It did not: what was expected, what was observed.
    Fail {
        /// Expected.
        expected: String,
        /// Observed.
        observed: String,
    },
    /// Not checked, and why.
    Skip {
        /// Why.
        reason: String,
    },
}

/// What a capture saw.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureResult {
    /// Where (`h1/eth0`, `web/eth0`, `h1/network:my-net`).
    pub on: String,
    /// The interface label in pcap files (`h1/br-1a2b3c4d5e6f`).
    pub label: String,
    /// Normalized one-line summaries of the packets kept.
    pub lines: Vec<String>,
    /// The packets kept, for pcap files.
    #[serde(skip)]
    pub packets: Vec<Packet>,
}

/// Everything about one scenario's run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Scenario file.
    pub path: String,
    /// Scenario title.
    pub name: String,
    /// What it checks.
    pub checks: String,
    /// Where the behavior is documented.
    pub source: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Wall time.
    pub seconds: f64,
    /// Every step, expectation and capture check, in order.
    pub results: Vec<CheckResult>,
    /// The captures.
    pub captures: Vec<CaptureResult>,
    /// State of the hosts and containers when it failed.
    pub dump: Option<String>,
}

impl Outcome {
    fn new(scenario: &Scenario, verdict: Verdict, started: Instant) -> Self {
        Self {
            path: scenario.path.clone(),
            name: scenario.name.clone(),
            checks: scenario.checks.clone(),
            source: scenario.source.clone(),
            verdict,
            seconds: started.elapsed().as_secs_f64(),
            results: Vec::new(),
            captures: Vec::new(),
            dump: None,
        }
    }
}

/// Runs every scenario (up to `options.jobs` at once) and returns their outcomes in the order
/// given; `progress` is told about each as it ends.
pub async fn run<B: Backend>(
    backend: &B,
    scenarios: &[Scenario],
    options: &Options,
    progress: &(dyn Fn(&Outcome) + Sync),
) -> Vec<Outcome> {
    futures::stream::iter(scenarios)
        .map(|scenario| async move {
            let outcome = run_one(backend, scenario, options).await;
            progress(&outcome);
            outcome
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await
}

/// Runs one scenario on a lab of its own.
pub async fn run_one<B: Backend>(backend: &B, scenario: &Scenario, options: &Options) -> Outcome {
    let started = Instant::now();
    let lab = match Lab::build(lab_topology(scenario)).await {
        Ok(lab) => lab,
        Err(e) => return failed_to_start(scenario, started, format!("cannot build the lab: {e}")),
    };
    let target = match backend.start(&lab, &scenario.hosts, &options.run_id).await {
        Ok(target) => target,
        Err(e) => {
            return failed_to_start(scenario, started, format!("cannot start the target: {e}"));
        }
    };
    if let Some(range) = &scenario.docker
        && !range.contains(target.version())
    {
        let reason = format!(
            "{} is outside this scenario's Docker range {range}",
            target.describe()
        );
        backend.stop(target).await;
        return Outcome::new(scenario, Verdict::Skip(reason), started);
    }
    let mut execution = exec::Execution::new(scenario, &target, &lab, options);
    let finished = tokio::time::timeout(options.timeout, execution.run())
        .await
        .is_ok();
    let mut outcome = execution.finish(finished, started).await;
    backend.stop(target).await;
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

fn failed_to_start(scenario: &Scenario, started: Instant, why: String) -> Outcome {
    let mut outcome = Outcome::new(scenario, Verdict::Fail, started);
    outcome.results.push(CheckResult {
        at: scenario.path.clone(),
        line: "(setup)".into(),
        status: Status::Fail {
            expected: "a lab and a running target".into(),
            observed: why,
        },
    });
    outcome
}

/// The lab a scenario runs on: its docker hosts, then its external hosts, on one segment.
pub fn lab_topology(scenario: &Scenario) -> Topology {
    let mut yaml = String::from("segments:\n  lan: {subnet: 10.10.0.0/24}\nhosts:\n");
    for host in scenario.hosts.iter().chain(&scenario.external) {
        yaml.push_str(&format!("  {host}: {{interfaces: [{{segment: lan}}]}}\n"));
    }
    let mut topology =
        Topology::parse(&yaml, "scenario-lab.yaml").expect("scenario host names are validated");
    topology.name = format!("conform-{}", std::process::id());
    topology
}
