//! Running one scenario: a lab of its own, a fresh target, the steps, then the expectations
//! with the captures running; a dump when something failed; teardown whatever happened.
//!
//! The rooms: `execution.rs` (the order of things, results, timeouts), `swarm.rs` (forming the
//! scenario's swarm before the steps), `steps.rs` (a step line becomes engine calls and
//! listeners), `observe.rs` (awaiting what the target shows for an
//! expectation: probes, inspects, files, links), `judge.rs` (whether it holds: pure),
//! `oracle.rs` (which listener must answer a connection: pure), `captures.rs`, `dump.rs` (the
//! state of hosts and containers when something failed), `inspect.rs` (reading inspect JSON).

mod captures;
mod dump;
mod execution;
mod inspect;
mod judge;
mod observe;
mod oracle;
mod plugin;
mod scene;
mod steps;
mod swarm;

pub use plugin::Running;
pub use swarm::form_swarm;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_netsim::capture::Packet;
use drydock_netsim::features::Feature;
use drydock_netsim::{KernelFeatures, Lab, Topology};
use ipnetwork::Ipv4Network;
use serde::Serialize;
use tokio::sync::watch;

use crate::probe::UpstreamDns;
use crate::scenario::{PluginRun, ROUTED_SUBNET, ROUTER, SUBNET, Scenario};
use crate::targets::Target;

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
    /// A network plugin to make the networks of `driver: any` scenarios with (started on
    /// each docker host); scenarios that are not `driver: any` are then skipped.
    pub plugin: Option<PluginRun>,
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

impl Verdict {
    /// The word reports and tables print: `pass`, `FAIL` (loud), `skip`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip(_) => "skip",
        }
    }
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
    /// The target that ran it, as it describes itself (none when it did not start).
    #[serde(skip)]
    pub target: Option<String>,
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
            target: None,
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

/// Runs one scenario on a lab of its own: the lab, an upstream DNS server on each docker host
/// (see [`UpstreamDns`]), a target of type `T` (`run_id` names and labels what it makes), the
/// checks; then teardown, whatever happened.
pub async fn run_one<T: Target>(
    scenario: &Scenario,
    options: &Options,
    run_id: &str,
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
    let upstreams = match start_upstreams(&lab, &scenario.hosts) {
        Ok(upstreams) => upstreams,
        Err(why) => return failed_to_start(scenario, started, why),
    };
    let startup = tokio::time::timeout_at(deadline, T::start(&lab, &scenario.hosts, run_id));
    // `Err(None)`: interrupted; `Err(Some(why))`: it failed to start.
    let target = tokio::select! {
        _ = cancel.cancelled() => Err(None),
        target = startup => match target {
            Ok(Ok(target)) => Ok(target),
            Ok(Err(e)) => Err(Some(format!("cannot start the target: {e}"))),
            Err(_) => Err(Some(format!(
                "the target did not start within the scenario's timeout ({} s)",
                options.timeout.as_secs()
            ))),
        },
    };
    let target = match target {
        Ok(target) => target,
        Err(why) => {
            close_all(upstreams).await;
            return match why {
                Some(why) => failed_to_start(scenario, started, why),
                None => {
                    let why = "interrupted while the engine started".into();
                    Outcome::new(scenario, Verdict::Skip(why), started)
                }
            };
        }
    };
    let skip = skip_reason(scenario, &target, options).await;
    // Kept until the target stopped: removing its networks and containers calls the plugin.
    let plugins: Vec<&PluginRun> = options.plugin.iter().chain(&scenario.plugins).collect();
    let plugin = match (plugins.is_empty(), &skip) {
        (false, None) => Some(Running::start_all(&plugins, &target, &lab, &scenario.hosts).await),
        _ => None,
    };
    let mut outcome = match (skip, &plugin) {
        (Some(reason), _) => Outcome::new(scenario, Verdict::Skip(reason), started),
        (None, Some(Err(why))) => failed_to_start(scenario, started, why.clone()),
        (None, _) => {
            let mut execution = execution::Execution::new(scenario, &target, &lab, options);
            let end = tokio::select! {
                _ = cancel.cancelled() => execution::End::Interrupted,
                ran = tokio::time::timeout_at(deadline, execution.run()) => match ran {
                    Ok(()) => execution::End::Finished,
                    Err(_) => execution::End::TimedOut,
                },
            };
            execution.finish(end, started).await
        }
    };
    outcome.target = Some(target.describe());
    target.stop().await;
    drop(plugin);
    close_all(upstreams).await;
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

/// Why `target` does not run `scenario` at all: its Docker release is out of the scenario's
/// range, it needs kernel links this kernel lacks, or the run has a network plugin and the
/// scenario is not `driver: any`.
async fn skip_reason<T: Target>(
    scenario: &Scenario,
    target: &T,
    options: &Options,
) -> Option<String> {
    if let Some(plugin) = &options.plugin
        && !scenario.any_driver
    {
        return Some(format!(
            "not driver-agnostic (no `driver: any`): not run with plugin {}",
            plugin.name
        ));
    }
    match &scenario.docker {
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
    }
}

/// The lab's upstream DNS server on each docker host.
fn start_upstreams(lab: &Lab, hosts: &[String]) -> Result<Vec<UpstreamDns>, String> {
    let mut upstreams = Vec::new();
    for host in hosts {
        let started = lab
            .host(host)
            .ok_or_else(|| std::io::Error::other("no such lab host"))
            .and_then(UpstreamDns::start);
        match started {
            Ok(upstream) => upstreams.push(upstream),
            Err(e) => {
                // Dropping the others closes them.
                return Err(format!(
                    "cannot start the upstream DNS server on {host}: {e}"
                ));
            }
        }
    }
    Ok(upstreams)
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
    for (at, line) in execution::planned(scenario) {
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

/// The lab a scenario runs on: its docker hosts, then its external hosts, on one segment
/// ([`SUBNET`]); with `routed:` hosts, those are on a second one ([`ROUTED_SUBNET`]) behind
/// router [`ROUTER`] (the last address of each), through which every host has its default
/// route.
pub fn lab_topology(scenario: &Scenario) -> Topology {
    let subnet: Ipv4Network = SUBNET.parse().expect("a subnet");
    let mut builder =
        Topology::builder(&format!("conform-{}", std::process::id())).segment("lan", subnet);
    let hosts = || scenario.hosts.iter().chain(&scenario.external);
    for host in hosts().filter(|h| !scenario.routed.contains(h)) {
        builder = builder.host(host);
    }
    if !scenario.routed.is_empty() {
        let routed: Ipv4Network = ROUTED_SUBNET.parse().expect("a subnet");
        let last = |net: Ipv4Network| Ipv4Addr::from(u32::from(net.broadcast()) - 1);
        builder = builder
            .router_at(ROUTER, last(subnet))
            .segment("lan2", routed)
            .router_at(ROUTER, last(routed));
        for host in hosts().filter(|h| scenario.routed.contains(h)) {
            builder = builder.host(host);
        }
    }
    builder.build().expect("scenario host names are validated")
}
