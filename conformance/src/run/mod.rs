//! Running scenarios: each in a lab of its own, against a fresh target, in parallel up to a limit.

mod docker;
mod exec;
mod reference;
mod resolve;

pub use docker::DockerBackend;
pub use reference::ReferenceBackend;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_netsim::capture::Packet;
use drydock_netsim::features::Feature;
use drydock_netsim::{KernelFeatures, Lab, Topology};
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::probe::UpstreamDns;
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
    /// Longest a scenario may take, from building its lab to its last check (the engine's
    /// startup included; teardown always runs, after).
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
    /// How many packets the interface saw, before the capture's filter.
    pub seen: usize,
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

/// Tells a run to stop: scenarios not started yet are skipped, running ones stop at once (their
/// current check is reported as interrupted, the rest as skipped) and are torn down. Clones
/// share one state.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<watch::Sender<bool>>);

impl Default for Cancel {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Cancel {
    /// A run that has not been told to stop.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the run to stop.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// True once [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once [`Cancel::cancel`] is called.
    pub async fn cancelled(&self) {
        let mut receiver = self.0.subscribe();
        // The sender lives in `self`: waiting cannot fail.
        let _ = receiver.wait_for(|&stop| stop).await;
    }
}

/// Runs every scenario (up to `options.jobs` at once) and returns their outcomes in the order
/// given; `progress` is told about each as it ends. Once `cancel` is triggered, running
/// scenarios stop and are torn down, and the others are skipped.
pub async fn run<B: Backend>(
    backend: &B,
    scenarios: &[Scenario],
    options: &Options,
    progress: &(dyn Fn(&Outcome) + Sync),
    cancel: &Cancel,
) -> Vec<Outcome> {
    futures::stream::iter(scenarios)
        .map(|scenario| async move {
            let outcome = run_one(backend, scenario, options, cancel).await;
            progress(&outcome);
            outcome
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await
}

/// Runs one scenario on a lab of its own: the lab, an upstream DNS server on each docker host
/// (see [`UpstreamDns`]), the target, the checks; then teardown, whatever happened.
pub async fn run_one<B: Backend>(
    backend: &B,
    scenario: &Scenario,
    options: &Options,
    cancel: &Cancel,
) -> Outcome {
    let started = Instant::now();
    if cancel.is_cancelled() {
        return Outcome::new(
            scenario,
            Verdict::Skip("interrupted before it started".into()),
            started,
        );
    }
    let deadline = tokio::time::Instant::now() + options.timeout;
    let lab = match Lab::build(lab_topology(scenario)).await {
        Ok(lab) => lab,
        Err(e) => return failed_to_start(scenario, started, format!("cannot build the lab: {e}")),
    };
    let mut upstreams = Vec::new();
    for host in &scenario.hosts {
        let started_dns = lab
            .host(host)
            .ok_or_else(|| std::io::Error::other("no such lab host"))
            .and_then(UpstreamDns::start);
        match started_dns {
            Ok(upstream) => upstreams.push(upstream),
            Err(e) => {
                let why = format!("cannot start the upstream DNS server on {host}: {e}");
                return failed_to_start(scenario, started, why);
            }
        }
    }
    let startup = tokio::time::timeout_at(
        deadline,
        backend.start(&lab, &scenario.hosts, &options.run_id),
    );
    let target = tokio::select! {
        _ = cancel.cancelled() => {
            close_all(upstreams).await;
            return Outcome::new(scenario, Verdict::Skip("interrupted while the engine started".into()), started);
        }
        target = startup => match target {
            Ok(Ok(target)) => target,
            Ok(Err(e)) => {
                close_all(upstreams).await;
                return failed_to_start(scenario, started, format!("cannot start the target: {e}"));
            }
            Err(_) => {
                close_all(upstreams).await;
                let why = format!(
                    "the target did not start within the scenario's timeout ({} s)",
                    options.timeout.as_secs()
                );
                return failed_to_start(scenario, started, why);
            }
        },
    };
    let skip = match &scenario.docker {
        Some(range) if !range.contains(target.version()) => Some(format!(
            "{} is outside this scenario's Docker range {range}",
            target.describe()
        )),
        _ if target.kernel_links_only() => {
            missing_kernel_feature(&scenario.kernel)
                .await
                .map(|missing| {
                    format!(
                        "{} needs the kernel's {missing} links, which this kernel lacks",
                        target.describe()
                    )
                })
        }
        _ => None,
    };
    if let Some(reason) = skip {
        backend.stop(target).await;
        close_all(upstreams).await;
        return Outcome::new(scenario, Verdict::Skip(reason), started);
    }
    let mut execution = exec::Execution::new(scenario, &target, &lab, options);
    let end = tokio::select! {
        _ = cancel.cancelled() => exec::End::Interrupted,
        ran = tokio::time::timeout_at(deadline, execution.run()) => match ran {
            Ok(()) => exec::End::Finished,
            Err(_) => exec::End::TimedOut,
        },
    };
    let mut outcome = execution.finish(end, started).await;
    backend.stop(target).await;
    close_all(upstreams).await;
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

/// The first of `needed` this kernel lacks (probed once per process; `DRYDOCK_FORCE_ABSENT`
/// does not count: Docker Engine uses the kernel whatever drydock is told).
async fn missing_kernel_feature(needed: &[Feature]) -> Option<Feature> {
    static PROBED: tokio::sync::OnceCell<Option<KernelFeatures>> =
        tokio::sync::OnceCell::const_new();
    if needed.is_empty() {
        return None;
    }
    let probed = PROBED
        .get_or_init(|| async { KernelFeatures::probe().await.ok() })
        .await;
    needed.iter().copied().find(|feature| {
        probed.as_ref().is_some_and(|features| {
            features
                .statuses()
                .iter()
                .any(|s| s.feature == *feature && s.kernel.is_err())
        })
    })
}

async fn close_all(upstreams: Vec<UpstreamDns>) {
    for upstream in upstreams {
        upstream.close().await;
    }
}

/// A scenario whose lab or target could not start: that failure, and every check skipped.
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
    for (at, line) in exec::planned(scenario) {
        outcome.results.push(CheckResult {
            at,
            line,
            status: Status::Skip {
                reason: "not run: the setup failed".into(),
            },
        });
    }
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
