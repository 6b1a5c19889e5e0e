//! One scenario's execution: steps on the target, listeners in containers, captures, probes.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use drydock_netsim::capture::Capture;
use drydock_netsim::{Lab, Netns};
use futures::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;

use super::resolve::{container_addresses, lookup, missing_under, text};
use super::{CaptureResult, CheckResult, Options, Outcome, Status, Verdict};
use crate::normalize::Normalizer;
use crate::probe::{self, ListenKind, Listener, Proto, Reach, RecordData, RecordKind, Resolution};
use crate::scenario::expect::{Asked, Failure, Port, Question, Unresolved, Value, whole_match};
use crate::scenario::{
    CapturePoint, Command, Endpoint, Expect, Expectation, Quantifier, Scenario, Step,
};
use crate::target::Target;

/// A container the scenario runs: the listeners drydock keeps open in it.
struct Container {
    listen: Vec<(ListenKind, u16)>,
    listeners: Vec<Listener>,
}

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

pub(super) struct Execution<'a, T: Target> {
    scenario: &'a Scenario,
    target: &'a T,
    lab: &'a Lab,
    options: &'a Options,
    results: Vec<CheckResult>,
    /// The check running now (`at`, line), for a timeout's report.
    running: Option<(String, String)>,
    /// Containers by (docker host, name): two hosts may each run one of a name.
    containers: BTreeMap<(String, String), Container>,
    /// Listeners on lab hosts (`drydock listen`), with the host they are on.
    host_listeners: Vec<(String, Listener)>,
    captures: Vec<CaptureResult>,
}

/// Where a connection lands, as far as the scenario tells.
enum Landing {
    /// In a container's namespace: docker host, container name.
    Container(String, String),
    /// In a lab host's own namespace.
    Host(String),
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
            results: Vec::new(),
            running: None,
            containers: BTreeMap::new(),
            host_listeners: Vec::new(),
            captures: Vec::new(),
        }
    }

    /// Steps, then expectations with the captures running; stops at the first step that does
    /// not behave as written (later checks are then skipped).
    pub(super) async fn run(&mut self) {
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
        let mut running = Vec::new();
        for capture in &self.scenario.captures {
            match self.start_capture(&capture.on).await {
                Ok(started) => running.push((capture, started)),
                Err(why) => {
                    let line = format!("capture on {}", capture.on);
                    self.record(
                        &capture.at,
                        &line,
                        Status::Fail {
                            expected: "a capture".into(),
                            observed: why,
                        },
                    );
                }
            }
        }
        for expect in &self.scenario.expectations {
            self.running = Some((expect.at.clone(), expect.line.clone()));
            let status = self.expect(expect).await;
            self.record(&expect.at, &expect.line, status);
        }
        self.running = None;
        for (spec, (capture, label)) in running {
            let packets: Vec<_> = match capture.stop() {
                Ok(packets) => packets,
                Err(e) => {
                    let line = format!("capture on {}", spec.on);
                    self.record(
                        &spec.at,
                        &line,
                        Status::Fail {
                            expected: "a capture".into(),
                            observed: e.to_string(),
                        },
                    );
                    continue;
                }
            };
            let seen = packets.len();
            let kept: Vec<_> = packets
                .into_iter()
                .filter(|p| spec.filter.as_ref().is_none_or(|f| f.matches(&p.data)))
                .collect();
            let counted = match &spec.filter {
                Some(filter) => format!(
                    "{} packet(s) kept by `{filter}` of {seen} seen on the interface",
                    kept.len()
                ),
                None => format!("{seen} packet(s) seen on the interface"),
            };
            // `none:` holds on a dead interface too: a capture that only says what must not
            // pass has to see something, unless the scenario says silence is the point.
            let only_none = spec.checks.iter().all(|(q, _)| *q == Quantifier::None);
            if seen == 0 && only_none && !spec.checks.is_empty() && !spec.allow_empty {
                self.record(
                    &spec.at,
                    &format!("capture on {}", spec.on),
                    Status::Fail {
                        expected: "at least one packet on the interface: `none:` checks prove \
                                   nothing on an interface that saw no traffic (write \
                                   `allow-empty: true` if silence is what is checked)"
                            .into(),
                        observed: "no packet at all".into(),
                    },
                );
            }
            for (quantifier, filter) in &spec.checks {
                let matching = kept.iter().filter(|p| filter.matches(&p.data)).count();
                let holds = match quantifier {
                    Quantifier::None => matching == 0,
                    Quantifier::Only => matching == kept.len() && matching > 0,
                    Quantifier::Some => matching > 0,
                };
                let line = format!("capture on {}: {quantifier}: {filter}", spec.on);
                let status = if holds {
                    Status::Pass
                } else {
                    Status::Fail {
                        expected: format!("{quantifier} of the packets to match `{filter}`"),
                        observed: format!("{matching} matched; {counted}"),
                    }
                };
                self.record(&spec.at, &line, status);
            }
            let mut normalizer = Normalizer::new();
            let lines = kept
                .iter()
                .map(|p| {
                    normalizer.line(&format!(
                        "{} {}",
                        p.direction,
                        drydock_netsim::capture::summarize(&p.data)
                    ))
                })
                .collect();
            self.captures.push(CaptureResult {
                on: spec.on.to_string(),
                label,
                seen,
                lines,
                packets: kept,
            });
        }
    }

    /// Records every step, expectation and capture check not recorded yet as skipped.
    fn skip_the_rest(&mut self, reason: &str) {
        let done: HashSet<(String, String)> = self
            .results
            .iter()
            .map(|r| (r.at.clone(), r.line.clone()))
            .collect();
        for (at, line) in planned(self.scenario) {
            if !done.contains(&(at.clone(), line.clone())) {
                self.record(
                    &at,
                    &line,
                    Status::Skip {
                        reason: reason.to_string(),
                    },
                );
            }
        }
    }

    fn record(&mut self, at: &str, line: &str, status: Status) {
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
            match self.running.take() {
                Some((at, line)) if end == End::TimedOut => self.record(
                    &at,
                    &line,
                    Status::Fail {
                        expected: "to finish within the scenario's timeout".into(),
                        observed: format!("still running when {why}"),
                    },
                ),
                Some((at, line)) => self.record(
                    &at,
                    &line,
                    Status::Skip {
                        reason: format!("{why} while it ran"),
                    },
                ),
                None if end == End::TimedOut => self.record(
                    &self.scenario.path.clone(),
                    "(whole scenario)",
                    Status::Fail {
                        expected: "the scenario to end within its timeout".into(),
                        observed: format!("still running when {why}"),
                    },
                ),
                None => {}
            }
            self.skip_the_rest(&format!("not run: {why}"));
        }
        let failed = self
            .results
            .iter()
            .any(|r| matches!(r.status, Status::Fail { .. }));
        let dump = if failed && end != End::Interrupted {
            Some(self.dump().await)
        } else {
            None
        };
        // Listener sockets would keep namespaces alive: close them before teardown.
        for container in std::mem::take(&mut self.containers).into_values() {
            for listener in container.listeners {
                listener.close().await;
            }
        }
        for (_, listener) in std::mem::take(&mut self.host_listeners) {
            listener.close().await;
        }
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

    // ---- Steps ----

    async fn step(&mut self, step: &Step) -> Status {
        if let Some(range) = &step.docker
            && !range.contains(self.target.version())
        {
            return Status::Skip {
                reason: format!(
                    "runs on Docker {range}; the target is {}",
                    self.target.describe()
                ),
            };
        }
        let result = self.perform(&step.host, &step.command).await;
        match (&step.fails, result) {
            (None, Ok(())) => Status::Pass,
            (None, Err(observed)) => Status::Fail {
                expected: "success".into(),
                observed: format!("error: {observed}"),
            },
            (Some(expected), Ok(())) => Status::Fail {
                expected: format!("an error containing {expected:?}"),
                observed: "success".into(),
            },
            (Some(expected), Err(observed)) if observed.contains(expected.as_str()) => Status::Pass,
            (Some(expected), Err(observed)) => Status::Fail {
                expected: format!("an error containing {expected:?}"),
                observed: format!("error: {observed}"),
            },
        }
    }

    /// Does what a command asks; the error is the engine's message (one line per failed name).
    async fn perform(&mut self, host: &str, command: &Command) -> Result<(), String> {
        let t = self.target;
        match command {
            Command::NetworkCreate(spec) => {
                t.create_network(host, spec).await.map_err(|e| e.message)
            }
            Command::NetworkRm(names) => {
                let mut errors = Vec::new();
                for name in names {
                    if let Err(e) = t.remove_network(host, name).await {
                        errors.push(e.message);
                    }
                }
                joined(errors)
            }
            Command::NetworkConnect(spec) => t.connect(host, spec).await.map_err(|e| e.message),
            Command::NetworkDisconnect {
                network,
                container,
                force,
            } => t
                .disconnect(host, network, container, *force)
                .await
                .map_err(|e| e.message),
            Command::Run { spec, listen } => {
                // Like Docker, a container that failed to start still exists (created); a name
                // already taken on this host keeps its container.
                self.containers
                    .entry((host.to_string(), spec.name.clone()))
                    .or_insert_with(|| Container {
                        listen: listen.clone(),
                        listeners: Vec::new(),
                    });
                t.run_container(host, spec).await.map_err(|e| e.message)?;
                self.open_listeners(host, &spec.name).await
            }
            Command::Rm { containers, force } => {
                let mut errors = Vec::new();
                for name in containers {
                    match t.remove_container(host, name, *force).await {
                        Ok(()) => {
                            if let Some(c) =
                                self.containers.remove(&(host.to_string(), name.clone()))
                            {
                                for listener in c.listeners {
                                    listener.close().await;
                                }
                            }
                        }
                        Err(e) => errors.push(e.message),
                    }
                }
                joined(errors)
            }
            Command::Stop(names) => {
                let mut errors = Vec::new();
                for name in names {
                    let key = (host.to_string(), name.clone());
                    if let Some(c) = self.containers.get_mut(&key) {
                        for listener in std::mem::take(&mut c.listeners) {
                            listener.close().await;
                        }
                    }
                    if let Err(e) = t.stop_container(host, name).await {
                        errors.push(e.message);
                    }
                }
                joined(errors)
            }
            Command::Start(names) => {
                let mut errors = Vec::new();
                for name in names {
                    match t.start_container(host, name).await {
                        Ok(()) => {
                            if let Err(e) = self.open_listeners(host, name).await {
                                errors.push(e);
                            }
                        }
                        Err(e) => errors.push(e.message),
                    }
                }
                joined(errors)
            }
            Command::Listen { host, kind, port } => {
                let netns = self
                    .lab
                    .host(host)
                    .ok_or_else(|| format!("no lab host {host}"))?;
                let listener = Listener::open(netns, *kind, *port, banner(host, *port))
                    .map_err(|e| format!("listen {kind}/{port} on {host}: {e}"))?;
                self.host_listeners.push((host.clone(), listener));
                Ok(())
            }
            Command::Route {
                host,
                destination,
                via,
            } => {
                let netns = self
                    .lab
                    .host(host)
                    .ok_or_else(|| format!("no lab host {host}"))?;
                add_route(netns, *destination, *via)
                    .await
                    .map_err(|e| format!("route {destination} via {via} on {host}: {e}"))
            }
        }
    }

    async fn open_listeners(&mut self, host: &str, name: &str) -> Result<(), String> {
        let key = (host.to_string(), name.to_string());
        let Some(container) = self.containers.get(&key) else {
            return Ok(());
        };
        if container.listen.is_empty() {
            return Ok(());
        }
        let netns = self
            .target
            .container_netns(host, name)
            .await
            .map_err(|e| format!("{name}'s namespace: {e}"))?;
        let mut listeners = Vec::new();
        for &(kind, port) in &container.listen {
            let listener = Listener::open(&netns, kind, port, banner(name, port))
                .map_err(|e| format!("--listen {kind}/{port} in {name}: {e}"))?;
            listeners.push(listener);
        }
        if let Some(container) = self.containers.get_mut(&key) {
            container.listeners = listeners;
        }
        Ok(())
    }

    // ---- Expectations ----

    async fn expect(&self, expect: &Expect) -> Status {
        if let Some(range) = &expect.docker
            && !range.contains(self.target.version())
        {
            return Status::Skip {
                reason: format!(
                    "holds for Docker {range}; the target is {}",
                    self.target.describe()
                ),
            };
        }
        match self.check(&expect.expectation).await {
            Ok(()) => Status::Pass,
            Err((expected, observed)) => Status::Fail { expected, observed },
        }
    }

    /// Asks `question` from `from` through its resolver; the outcome and how it reads.
    async fn ask(
        &self,
        from: &str,
        question: &Question,
        timeout: Duration,
    ) -> Result<(Resolution, String), String> {
        let netns = self.netns(from).await?;
        let server = self.resolver(from).await?;
        let name = self.asked(from, question).await?;
        let outcome = probe::resolve(
            &netns,
            server,
            &name,
            question.kind,
            question.proto,
            timeout,
        )
        .await;
        let observed = format!("{} via {server}: {outcome}", asking(question, &name));
        Ok((outcome, observed))
    }

    /// `Err((expected, observed))` when the expectation does not hold. A probe that fails to
    /// run (its socket cannot be opened, bound or sent from) never counts as an observation:
    /// it fails the check as a setup problem, whatever the expectation.
    async fn check(&self, expectation: &Expectation) -> Result<(), (String, String)> {
        let timeout = probe_timeout(expectation, self.options.probe_timeout);
        let setup = |e: String| ("the probe to run".to_string(), e);
        match expectation {
            Expectation::Reach {
                from,
                to,
                port,
                proto,
                fails,
            } => {
                let netns = self.netns(from).await.map_err(setup)?;
                let ip = self.address(from, to).await.map_err(setup)?;
                let number = self.port(port, *proto).await.map_err(setup)?;
                let at = SocketAddr::new(ip, number);
                let outcome = probe::reach(&netns, at, *proto, timeout).await;
                let observed = format!("{at}/{proto}: {outcome}");
                match (fails, &outcome) {
                    (_, Reach::Error(_)) => Err(setup(observed)),
                    (None, Reach::Reached { banner }) => {
                        match self.answerer(from, to, port, kind_of(*proto)).await {
                            Some(want) if banner.as_deref() != Some(want.as_str()) => Err((
                                format!("to reach the listener answering {want:?}"),
                                observed,
                            )),
                            _ => Ok(()),
                        }
                    }
                    (None, _) => Err(("reached".into(), observed)),
                    (Some(_), Reach::Reached { .. }) => Err(("no connection".into(), observed)),
                    (Some(None), _) => Ok(()),
                    (Some(Some(how)), outcome) => {
                        let matched = matches!(
                            (how, outcome),
                            (Failure::Refused, Reach::Refused)
                                | (Failure::Timeout, Reach::Timeout)
                                | (Failure::Unreachable, Reach::Unreachable { .. })
                        );
                        if matched {
                            Ok(())
                        } else {
                            Err((format!("{how:?}").to_lowercase(), observed))
                        }
                    }
                }
            }
            Expectation::Ping { from, to, succeeds } => {
                let netns = self.netns(from).await.map_err(setup)?;
                let ip = self.address(from, to).await.map_err(setup)?;
                let outcome = probe::ping(&netns, ip, timeout).await;
                let observed = format!("ping {ip}: {outcome}");
                if matches!(outcome, probe::Ping::Error(_)) {
                    return Err(setup(observed));
                }
                let replied = matches!(outcome, probe::Ping::Reply);
                if replied == *succeeds {
                    Ok(())
                } else {
                    let expected = if *succeeds {
                        "an echo reply"
                    } else {
                        "no echo reply"
                    };
                    Err((expected.into(), observed))
                }
            }
            Expectation::Resolve {
                from,
                question,
                answers,
                names,
                ttl,
            } => {
                let (outcome, observed) = self.ask(from, question, timeout).await.map_err(setup)?;
                let got = match &outcome {
                    Resolution::Answers(got) => got,
                    Resolution::Error(_) => return Err(setup(observed)),
                    _ => return Err((format!("{question} to resolve"), observed)),
                };
                if let Some(ttl) = ttl
                    && got.iter().any(|record| record.ttl != *ttl)
                {
                    return Err((format!("answers with TTL {ttl}"), observed));
                }
                let mut want = Vec::new();
                if let Some(expected) = answers {
                    let v6 = question.kind == RecordKind::Aaaa;
                    for endpoint in expected {
                        let ip = self
                            .address_of(from, endpoint, Some(v6))
                            .await
                            .map_err(setup)?;
                        want.push(RecordData::Address(ip));
                    }
                } else if let Some(expected) = names {
                    want.extend(expected.iter().map(|n| RecordData::Name(absolute(n))));
                } else {
                    return Ok(());
                }
                let mut got: Vec<RecordData> = got.iter().map(|r| r.data.clone()).collect();
                got.sort();
                want.sort();
                if got == want {
                    Ok(())
                } else {
                    Err((format!("answers {}", list(&want)), observed))
                }
            }
            Expectation::NoResolve {
                from,
                question,
                how,
            } => {
                let (outcome, observed) = self.ask(from, question, timeout).await.map_err(setup)?;
                let holds = match (how, &outcome) {
                    (_, Resolution::Error(_)) => return Err(setup(observed)),
                    (Unresolved::NoAddress, Resolution::NxDomain | Resolution::NoRecords)
                    | (Unresolved::NxDomain, Resolution::NxDomain)
                    | (Unresolved::NoData, Resolution::NoRecords)
                    | (Unresolved::Timeout, Resolution::Timeout)
                    | (Unresolved::Refused, Resolution::Refused) => true,
                    (Unresolved::ServFail, Resolution::Failure { rcode }) => rcode == "SERVFAIL",
                    _ => false,
                };
                if holds {
                    Ok(())
                } else {
                    Err((how.to_string(), observed))
                }
            }
            Expectation::Http {
                from,
                to,
                port,
                path,
                status,
            } => {
                let netns = self.netns(from).await.map_err(setup)?;
                let ip = self.address(from, to).await.map_err(setup)?;
                let number = self.port(port, Proto::Tcp).await.map_err(setup)?;
                let at = SocketAddr::new(ip, number);
                let outcome = probe::http_get(&netns, at, &to.name, path, timeout).await;
                let want = self.answerer(from, to, port, ListenKind::Http).await;
                let observed = format!("GET http://{at}{path}: {outcome}");
                match (&outcome, want) {
                    (probe::Http::Response { status: got, body }, Some(want)) if got == status => {
                        if body.trim_end() == want {
                            Ok(())
                        } else {
                            Err((
                                format!("HTTP {status} from the listener answering {want:?}"),
                                observed,
                            ))
                        }
                    }
                    (probe::Http::Response { status: got, .. }, None) if got == status => Ok(()),
                    _ => Err((format!("HTTP {status}"), observed)),
                }
            }
            Expectation::Network {
                network,
                host,
                path,
                value,
            } => {
                let host = host.as_deref().unwrap_or(&self.scenario.hosts[0]);
                let json = self
                    .target
                    .inspect_network(host, network)
                    .await
                    .map_err(|e| setup(e.message))?;
                fact(&json, path, value)
            }
            Expectation::Container {
                container,
                path,
                value,
            } => {
                let json = self
                    .target
                    .inspect_container(self.host_of(container).map_err(setup)?, container)
                    .await
                    .map_err(|e| setup(e.message))?;
                fact(&json, path, value)
            }
            Expectation::File {
                container,
                path,
                text: wanted,
                contains,
            } => {
                let file = self
                    .target
                    .container_file(self.host_of(container).map_err(setup)?, container, path)
                    .await
                    .map_err(|e| setup(e.message))?;
                if file.contains(wanted.as_str()) == *contains {
                    Ok(())
                } else {
                    let expected = format!(
                        "{path} {} {wanted:?}",
                        if *contains {
                            "to contain"
                        } else {
                            "not to contain"
                        }
                    );
                    Err((expected, file))
                }
            }
            Expectation::Interfaces {
                container,
                names,
                exact,
            } => {
                let netns = self.netns(container).await.map_err(setup)?;
                let mut got: Vec<String> = links(&netns)
                    .await
                    .map_err(setup)?
                    .into_iter()
                    .map(|link| link.name)
                    .collect();
                let mut want = names.clone();
                got.sort();
                want.sort();
                let holds = if *exact {
                    got == want
                } else {
                    want.iter().all(|w| got.contains(w))
                };
                if holds {
                    Ok(())
                } else {
                    let expected = if *exact {
                        want.join(",")
                    } else {
                        format!("at least {}", want.join(","))
                    };
                    Err((expected, got.join(",")))
                }
            }
            Expectation::Mtu {
                container,
                iface,
                mtu,
            } => {
                let netns = self.netns(container).await.map_err(setup)?;
                let found = links(&netns)
                    .await
                    .map_err(setup)?
                    .into_iter()
                    .find(|link| link.name == *iface);
                match found {
                    Some(link) if link.mtu == *mtu => Ok(()),
                    Some(link) => Err((format!("MTU {mtu}"), format!("MTU {}", link.mtu))),
                    None => Err((format!("an interface {iface}"), "none".into())),
                }
            }
            Expectation::Route {
                container,
                route,
                present,
                ipv6,
            } => {
                let netns = self.netns(container).await.map_err(setup)?;
                let routes = routes(&netns, *ipv6).await.map_err(setup)?;
                let matching = routes
                    .iter()
                    .any(|r| r == route || r.starts_with(&format!("{route} ")));
                if matching == *present {
                    return Ok(());
                }
                let wanted = if *present {
                    format!("a route `{route}`")
                } else {
                    format!("no route `{route}`")
                };
                Err((wanted, format!("routes: {}", routes.join("; "))))
            }
        }
    }

    /// The container this scenario runs under `name`: its docker host and its record. An
    /// error when none runs, or when several docker hosts run one of that name.
    fn container(&self, name: &str) -> Result<(&str, &Container), String> {
        let mut found = self
            .containers
            .iter()
            .filter(|((_, n), _)| n == name)
            .map(|((host, _), c)| (host.as_str(), c));
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(one),
            (Some((a, _)), Some((b, _))) => Err(format!(
                "{name:?} runs on {a} and {b}: the check cannot tell which one it means"
            )),
            (None, _) => Err(format!("{name:?} was not run by this scenario")),
        }
    }

    fn host_of(&self, container: &str) -> Result<&str, String> {
        self.container(container).map(|(host, _)| host)
    }

    /// The namespace a probe runs in: a container's, or a lab host's.
    async fn netns(&self, name: &str) -> Result<Netns, String> {
        match self.host_of(name) {
            Ok(host) => {
                return self
                    .target
                    .container_netns(host, name)
                    .await
                    .map_err(|e| format!("{name}: {e}"));
            }
            // Run on several docker hosts: which one is not for a lab host's name to decide.
            Err(e) if self.containers.keys().any(|(_, n)| n == name) => return Err(e),
            Err(_) => {}
        }
        self.lab
            .host(name)
            .cloned()
            .ok_or_else(|| format!("{name:?} is neither a running container nor a lab host"))
    }

    /// The address of `to` as `from` would use it: on a network they share, when both are
    /// containers; `to@NET` picks the network.
    async fn address(&self, from: &str, to: &Endpoint) -> Result<IpAddr, String> {
        self.address_of(from, to, None).await
    }

    /// [`Self::address`], of one family when `v6` says which (`Some(true)`: IPv6).
    async fn address_of(
        &self,
        from: &str,
        to: &Endpoint,
        v6: Option<bool>,
    ) -> Result<IpAddr, String> {
        let family = |ip: &IpAddr| v6.is_none_or(|v6| ip.is_ipv6() == v6);
        if let Some(ip) = to.ip() {
            return Ok(ip);
        }
        if let Some(host) = self.lab.topology().host(&to.name) {
            let iface = &host.interfaces[0];
            return match v6 {
                Some(true) => iface
                    .address6
                    .map(|a| IpAddr::V6(a.ip()))
                    .ok_or_else(|| format!("{} has no IPv6 address", to.name)),
                _ => Ok(IpAddr::V4(iface.address.ip())),
            };
        }
        let host = self.host_of(&to.name).map_err(|_| {
            format!(
                "{:?} is neither a container, a lab host nor an address",
                to.name
            )
        })?;
        let inspect = self
            .target
            .inspect_container(host, &to.name)
            .await
            .map_err(|e| e.message)?;
        let mut addresses = container_addresses(&inspect);
        addresses.retain(|(_, ip)| family(ip));
        let pick = match &to.network {
            Some(network) => addresses.iter().find(|(n, _)| n == network),
            None => {
                let shared = match self.host_of(from) {
                    Ok(from_host) => {
                        let mine = self
                            .target
                            .inspect_container(from_host, from)
                            .await
                            .map_err(|e| e.message)?;
                        let mine: Vec<String> = container_addresses(&mine)
                            .into_iter()
                            .map(|(n, _)| n)
                            .collect();
                        addresses.iter().find(|(n, _)| mine.contains(n))
                    }
                    Err(_) => None,
                };
                shared.or(addresses.first())
            }
        };
        let kind = match v6 {
            Some(true) => "IPv6 address",
            Some(false) => "IPv4 address",
            None => "address",
        };
        pick.map(|(_, ip)| *ip).ok_or_else(|| match &to.network {
            Some(network) => format!("{} has no {kind} on {network}", to.name),
            None => format!("{} has no {kind}", to.name),
        })
    }

    /// The name a DNS check asks for: as written, a container's short ID (`id(C)`), or the
    /// reverse name of an address (`as PTR`).
    async fn asked(&self, from: &str, question: &Question) -> Result<String, String> {
        match &question.name {
            Asked::Name(name) => Ok(name.clone()),
            Asked::ShortId(container) => {
                let host = self
                    .host_of(container)
                    .map_err(|e| format!("id({container}): {e}"))?;
                let inspect = self
                    .target
                    .inspect_container(host, container)
                    .await
                    .map_err(|e| e.message)?;
                let id = lookup(&inspect, "Id").map(text).unwrap_or_default();
                id.get(..12)
                    .map(str::to_string)
                    .ok_or_else(|| format!("{container}'s Id is not an ID: {id:?}"))
            }
            Asked::Reverse(endpoint) => {
                let ip = self.address(from, endpoint).await?;
                Ok(probe::reverse_name(ip))
            }
        }
    }

    /// The DNS server a container's resolver uses (its resolv.conf's first nameserver).
    async fn resolver(&self, from: &str) -> Result<SocketAddr, String> {
        let host = self
            .host_of(from)
            .map_err(|_| format!("{from:?} is a lab host: only containers resolve names here"))?;
        let conf = self
            .target
            .container_file(host, from, "/etc/resolv.conf")
            .await
            .map_err(|e| e.message)?;
        conf.lines()
            .find_map(|line| {
                line.strip_prefix("nameserver")?
                    .trim()
                    .parse::<IpAddr>()
                    .ok()
            })
            .map(|ip| SocketAddr::new(ip, 53))
            .ok_or_else(|| format!("{from}'s /etc/resolv.conf names no nameserver:\n{conf}"))
    }

    /// The banner of the drydock listener that should answer a connection of `kind` to
    /// `to:port`, when the scenario makes it knowable: for `C->N`, C's listener on N; otherwise
    /// the listener on that port in the namespace the connection lands in (see
    /// [`Execution::landing`]): a container's own (or one sharing its namespace), or for a lab
    /// host its `drydock listen`, or the one container of that docker host that published the
    /// port (or listens on it with host networking).
    async fn answerer(
        &self,
        from: &str,
        to: &Endpoint,
        port: &Port,
        kind: ListenKind,
    ) -> Option<String> {
        let n = match port {
            Port::Published { container, port } => {
                let (_, c) = self.container(container).ok()?;
                return listens(c, kind, *port).then(|| banner(container, *port));
            }
            Port::Number(n) => *n,
        };
        match self.landing(from, to).await? {
            Landing::Host(host) => self.host_answerer(&host, n, kind).await,
            Landing::Container(host, name) => {
                let json = self.target.inspect_container(&host, &name).await.ok()?;
                if lookup(&json, "HostConfig.NetworkMode").map(text).as_deref() == Some("host") {
                    return self.host_answerer(&host, n, kind).await;
                }
                // Whoever listens on the port in that namespace: the container, or one that
                // shares its namespace (`--network container:NAME`).
                let here = inode(&self.target.container_netns(&host, &name).await.ok()?)?;
                let mut found = Vec::new();
                for ((h, other), c) in &self.containers {
                    if *h != host || !listens(c, kind, n) {
                        continue;
                    }
                    let Ok(netns) = self.target.container_netns(h, other).await else {
                        continue;
                    };
                    if inode(&netns) == Some(here) {
                        found.push(banner(other, n));
                    }
                }
                (found.len() == 1).then(|| found.remove(0))
            }
        }
    }

    /// The namespace a connection from `from` to `to` lands in: a container's (by name, by its
    /// address on `from`'s docker host, or `from` itself for loopback) or a lab host's (by
    /// name, by its address, or `from` itself for loopback).
    async fn landing(&self, from: &str, to: &Endpoint) -> Option<Landing> {
        let topology = self.lab.topology();
        let Some(ip) = to.ip() else {
            if topology.host(&to.name).is_some() {
                return Some(Landing::Host(to.name.clone()));
            }
            let host = self.host_of(&to.name).ok()?;
            return Some(Landing::Container(host.to_string(), to.name.clone()));
        };
        let from_host = self.host_of(from).ok();
        if ip.is_loopback() {
            return match from_host {
                Some(host) => Some(Landing::Container(host.to_string(), from.to_string())),
                None => topology.host(from).map(|h| Landing::Host(h.name.clone())),
            };
        }
        let lab_host = topology.hosts.iter().find(|h| {
            h.interfaces
                .iter()
                .any(|i| IpAddr::V4(i.address.ip()) == ip)
        });
        if let Some(h) = lab_host {
            return Some(Landing::Host(h.name.clone()));
        }
        // Container addresses mean something on their own docker host only: `from`'s.
        let host = from_host.unwrap_or(from);
        for (h, name) in self.containers.keys().filter(|(h, _)| h == host) {
            let Ok(json) = self.target.inspect_container(h, name).await else {
                continue;
            };
            if container_addresses(&json).iter().any(|(_, a)| *a == ip) {
                return Some(Landing::Container(h.clone(), name.clone()));
            }
        }
        None
    }

    /// The banner that should answer on port `n` of lab host `host`: its `drydock listen`, or
    /// the one container of that docker host that published the port or listens on it with
    /// host networking.
    async fn host_answerer(&self, host: &str, n: u16, kind: ListenKind) -> Option<String> {
        let on_host = self
            .host_listeners
            .iter()
            .any(|(h, l)| h == host && l.port() == n && l.kind() == kind);
        if on_host {
            return Some(banner(host, n));
        }
        let proto = if kind == ListenKind::Udp {
            "udp"
        } else {
            "tcp"
        };
        let mut found = Vec::new();
        for ((h, name), c) in self.containers.iter().filter(|((h, _), _)| h == host) {
            let Ok(json) = self.target.inspect_container(h, name).await else {
                continue;
            };
            if lookup(&json, "HostConfig.NetworkMode").map(text).as_deref() == Some("host") {
                if listens(c, kind, n) {
                    found.push(banner(name, n));
                }
                continue;
            }
            for &(_, p) in c.listen.iter().filter(|&&(k, _)| k == kind) {
                let bindings = lookup(&json, &format!("NetworkSettings.Ports.{p}/{proto}"))
                    .and_then(|b| b.as_array());
                if bindings.is_some_and(|b| {
                    b.iter().any(|b| {
                        b.get("HostPort").map(text).as_deref() == Some(n.to_string().as_str())
                    })
                }) {
                    found.push(banner(name, p));
                }
            }
        }
        (found.len() == 1).then(|| found.remove(0))
    }

    /// A port number: as written, or the host port published for a container's port.
    async fn port(&self, port: &Port, proto: Proto) -> Result<u16, String> {
        let (container, number) = match port {
            Port::Number(n) => return Ok(*n),
            Port::Published { container, port } => (container, port),
        };
        let json = self
            .target
            .inspect_container(self.host_of(container)?, container)
            .await
            .map_err(|e| e.message)?;
        let path = format!("NetworkSettings.Ports.{number}/{proto}.0.HostPort");
        lookup(&json, &path)
            .and_then(|v| text(v).parse().ok())
            .ok_or_else(|| {
                format!("{container} has no published port for {number}/{proto} ({path})")
            })
    }

    // ---- Captures and dumps ----

    /// Starts a capture; returns it with its label in pcap files.
    async fn start_capture(&self, point: &CapturePoint) -> Result<(Capture, String), String> {
        let (netns, iface, label) = match point {
            CapturePoint::Interface { owner, iface } => (
                self.netns(owner).await?,
                iface.clone(),
                format!("{owner}/{iface}"),
            ),
            CapturePoint::Network { host, network } => {
                let json = self
                    .target
                    .inspect_network(host, network)
                    .await
                    .map_err(|e| e.message)?;
                let bridge =
                    bridge_name(&json).ok_or_else(|| format!("network {network} has no bridge"))?;
                let netns = self
                    .lab
                    .host(host)
                    .cloned()
                    .ok_or_else(|| format!("no lab host {host}"))?;
                (netns, bridge.clone(), format!("{host}/{bridge}"))
            }
        };
        let capture = Capture::start(&netns, &iface, label.clone()).map_err(|e| e.to_string())?;
        Ok((capture, label))
    }

    async fn dump(&self) -> String {
        let mut dump = String::new();
        for host in &self.scenario.hosts {
            dump.push_str(&format!(
                "==== docker host {host}\n{}\n",
                self.target.dump(host).await
            ));
        }
        for (host, name) in self.containers.keys() {
            let title = if self.scenario.hosts.len() > 1 {
                format!("==== container {name} (on {host})\n")
            } else {
                format!("==== container {name}\n")
            };
            dump.push_str(&title);
            match self.target.container_netns(host, name).await {
                Ok(netns) => {
                    // `ip` is a process: wait for it on a blocking thread, not in this task.
                    let text = tokio::task::spawn_blocking(move || {
                        let mut text = String::new();
                        for args in [&["-br", "addr"][..], &["route"][..]] {
                            match netns.command("ip", None).args(args).output() {
                                Ok(o) => text.push_str(&String::from_utf8_lossy(&o.stdout)),
                                Err(e) => text.push_str(&format!("ip {}: {e}\n", args.join(" "))),
                            }
                        }
                        text
                    })
                    .await
                    .unwrap_or_else(|e| format!("(ip panicked: {e})\n"));
                    dump.push_str(&text);
                }
                Err(e) => dump.push_str(&format!("{name}: {e}\n")),
            }
        }
        for capture in &self.captures {
            let tail = capture.lines.len().saturating_sub(20);
            dump.push_str(&format!(
                "==== capture on {} (last {} of {} packets kept; {} seen)\n",
                capture.on,
                capture.lines.len() - tail,
                capture.lines.len(),
                capture.seen
            ));
            for line in &capture.lines[tail..] {
                dump.push_str(line);
                dump.push('\n');
            }
        }
        dump
    }
}

/// The listener kind whose answer a reach over `proto` reads (HTTP listeners say nothing until
/// asked, so a TCP reach expects a TCP listener's banner).
fn kind_of(proto: Proto) -> ListenKind {
    match proto {
        Proto::Tcp => ListenKind::Tcp,
        Proto::Udp => ListenKind::Udp,
    }
}

/// True when `c` has a listener of `kind` on `port`.
fn listens(c: &Container, kind: ListenKind, port: u16) -> bool {
    c.listen.iter().any(|&(k, p)| k == kind && p == port)
}

/// The inode of a namespace: equal inodes, same namespace.
fn inode(netns: &Netns) -> Option<u64> {
    nix::sys::stat::fstat(netns.as_fd()).ok().map(|s| s.st_ino)
}

/// Every check of a scenario, as `(at, line)` in the order they run: steps, expectations,
/// capture checks.
pub(super) fn planned(scenario: &Scenario) -> Vec<(String, String)> {
    let steps = scenario
        .steps
        .iter()
        .map(|s| (s.at.clone(), s.line.clone()));
    let expectations = scenario
        .expectations
        .iter()
        .map(|e| (e.at.clone(), e.line.clone()));
    let captures = scenario.captures.iter().flat_map(|c| {
        c.checks.iter().map(move |(quantifier, filter)| {
            (
                c.at.clone(),
                format!("capture on {}: {quantifier}: {filter}", c.on),
            )
        })
    });
    steps.chain(expectations).chain(captures).collect()
}

/// The banner drydock's listeners answer with: it proves which container answered.
fn banner(container: &str, port: u16) -> String {
    format!("drydock {container} {port}")
}

fn joined(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn list(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A domain name with its final dot.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// What a DNS check asked, for its observed line: the question, and the name sent when it is
/// not the one written (a short ID, a reverse name).
fn asking(question: &Question, sent: &str) -> String {
    match &question.name {
        Asked::Name(_) => question.to_string(),
        _ => format!("{question} ({sent})"),
    }
}

fn fact(json: &serde_json::Value, path: &str, value: &Value) -> Result<(), (String, String)> {
    let expected = format!("{path} {value}");
    let found = lookup(json, path).map(text);
    if *value == Value::Absent {
        return match (found, missing_under(json, path)) {
            (Some(found), _) => Err((expected, format!("{path} = {found}"))),
            (None, Ok(())) => Ok(()),
            (None, Err(why)) => Err((format!("{path} absent, under a parent that exists"), why)),
        };
    }
    let holds = match (value, &found) {
        (_, None) => false,
        (Value::Equals(v), Some(found)) => found == v,
        (Value::Matches(r), Some(found)) => whole_match(r).is_ok_and(|r| r.is_match(found)),
        (Value::Absent, Some(_)) => false,
    };
    match (holds, found) {
        (true, _) => Ok(()),
        (false, Some(found)) => Err((expected, format!("{path} = {found}"))),
        (false, None) => Err((expected, format!("no {path} in the inspect JSON"))),
    }
}

/// The Linux bridge of a bridge network, from its inspect JSON.
fn bridge_name(json: &serde_json::Value) -> Option<String> {
    if let Some(name) = lookup(json, "Options.com.docker.network.bridge.name") {
        return Some(text(name));
    }
    let id = lookup(json, "Id")?.as_str()?;
    Some(format!("br-{}", id.get(..12)?))
}

/// A link of a namespace, as the checks see it.
struct Link {
    index: u32,
    name: String,
    mtu: u32,
}

/// Every link of a namespace.
async fn links(netns: &Netns) -> Result<Vec<Link>, String> {
    let nl = netns.netlink().map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    let mut links = nl.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(|e| e.to_string())? {
        let name = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        let mtu = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        });
        if let (Some(name), Some(mtu)) = (name, mtu) {
            found.push(Link {
                index: link.header.index,
                name,
                mtu,
            });
        }
    }
    drop(links);
    nl.close().await;
    Ok(found)
}

/// The routes of `netns`'s main IPv4 (or IPv6) table as `ip route` starts its lines: the type
/// when not unicast, the destination, the next hops: `default via 10.10.0.1 dev eth0`,
/// `default dev eth0`, `unreachable default`, `default nexthop via 10.0.0.1 dev eth0 nexthop ...`.
async fn routes(netns: &Netns, ipv6: bool) -> Result<Vec<String>, String> {
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteType};
    let names: std::collections::BTreeMap<u32, String> = links(netns)
        .await?
        .into_iter()
        .map(|link| (link.index, link.name))
        .collect();
    let nl = netns.netlink().map_err(|e| e.to_string())?;
    let address = |a: &RouteAddress| match a {
        RouteAddress::Inet(v4) => v4.to_string(),
        RouteAddress::Inet6(v6) => v6.to_string(),
        other => format!("{other:?}"),
    };
    let hop = |attributes: &[RouteAttribute], oif: Option<u32>| {
        let mut text = String::new();
        for attribute in attributes {
            if let RouteAttribute::Gateway(a) = attribute {
                text += &format!(" via {}", address(a));
            }
        }
        let oif = oif.or_else(|| {
            attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(index) => Some(*index),
                _ => None,
            })
        });
        if let Some(index) = oif {
            let name = names
                .get(&index)
                .cloned()
                .unwrap_or_else(|| index.to_string());
            text += &format!(" dev {name}");
        }
        text
    };
    let request = if ipv6 {
        rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
    } else {
        rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
    };
    let mut lines = Vec::new();
    let mut routes = nl.route().get(request).execute();
    while let Some(route) = routes.try_next().await.map_err(|e| e.to_string())? {
        if route.header.table != 254 {
            continue;
        }
        let mut line = match route.header.kind {
            RouteType::Unicast => String::new(),
            kind => format!("{kind:?} ").to_lowercase(),
        };
        let destination = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(a) => Some(address(a)),
            _ => None,
        });
        line += &match destination {
            Some(a) => format!("{a}/{}", route.header.destination_prefix_length),
            None => "default".into(),
        };
        line += &hop(&route.attributes, None);
        for attribute in &route.attributes {
            if let RouteAttribute::MultiPath(hops) = attribute {
                for next in hops {
                    line += " nexthop";
                    line += &hop(&next.attributes, Some(next.interface_index));
                }
            }
        }
        lines.push(line);
    }
    drop(routes);
    nl.close().await;
    Ok(lines)
}

/// How long a probe of `expectation` waits for its answer. A probe that must succeed gets three
/// times `base`: on a loaded machine a first SYN-ACK or reply can be late, and only a check that
/// fails ever waits that long. A probe that must fail (or time out) waits `base`, which is what
/// every negative check costs.
fn probe_timeout(expectation: &Expectation, base: Duration) -> Duration {
    let positive = match expectation {
        Expectation::Reach { fails, .. } => fails.is_none(),
        Expectation::Ping { succeeds, .. } => *succeeds,
        Expectation::Http { .. } | Expectation::Resolve { .. } => true,
        _ => false,
    };
    if positive { base * 3 } else { base }
}

/// Adds the static route `destination via via` in a lab host's namespace.
async fn add_route(
    netns: &drydock_netsim::Netns,
    destination: ipnetwork::IpNetwork,
    via: std::net::IpAddr,
) -> Result<(), String> {
    let message = rtnetlink::RouteMessageBuilder::<std::net::IpAddr>::new()
        .destination_prefix(destination.ip(), destination.prefix())
        .and_then(|b| b.gateway(via))
        .map_err(|e| e.to_string())?
        .build();
    let nl = netns.netlink().map_err(|e| e.to_string())?;
    let added = nl.route().add(message).execute().await;
    nl.close().await;
    added.map_err(|e| e.to_string())
}
