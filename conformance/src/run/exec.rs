//! One scenario's execution: steps on the target, listeners in containers, captures, probes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use drydock_netsim::capture::Capture;
use drydock_netsim::{Lab, Netns};
use futures::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;

use super::resolve::{container_addresses, lookup, text};
use super::{CaptureResult, CheckResult, Options, Outcome, Status, Verdict};
use crate::normalize::Normalizer;
use crate::probe::{self, ListenKind, Listener, Proto, Reach, RecordKind, Resolution};
use crate::scenario::expect::{Failure, Port, Value};
use crate::scenario::{
    CapturePoint, Command, Endpoint, Expect, Expectation, Quantifier, Scenario, Step,
};
use crate::target::Target;

/// A container the scenario runs: where, and the listeners drydock keeps open in it.
struct Container {
    host: String,
    listen: Vec<(ListenKind, u16)>,
    listeners: Vec<Listener>,
}

pub(super) struct Execution<'a, T: Target> {
    scenario: &'a Scenario,
    target: &'a T,
    lab: &'a Lab,
    options: &'a Options,
    results: Vec<CheckResult>,
    containers: HashMap<String, Container>,
    /// Listeners on lab hosts (`drydock listen`), with the host they are on.
    host_listeners: Vec<(String, Listener)>,
    captures: Vec<CaptureResult>,
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
            containers: HashMap::new(),
            host_listeners: Vec::new(),
            captures: Vec::new(),
        }
    }

    /// Steps, then expectations with the captures running; stops at the first step that does
    /// not behave as written (later checks are then skipped).
    pub(super) async fn run(&mut self) {
        for (index, step) in self.scenario.steps.iter().enumerate() {
            let status = self.step(step).await;
            let failed = matches!(status, Status::Fail { .. });
            self.record(&step.at, &step.line, status);
            if failed {
                let reason = format!("step {} did not behave as written", index + 1);
                for later in &self.scenario.steps[index + 1..] {
                    self.record(
                        &later.at,
                        &later.line,
                        Status::Skip {
                            reason: reason.clone(),
                        },
                    );
                }
                for expect in &self.scenario.expectations {
                    self.record(
                        &expect.at,
                        &expect.line,
                        Status::Skip {
                            reason: reason.clone(),
                        },
                    );
                }
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
            let status = self.expect(expect).await;
            self.record(&expect.at, &expect.line, status);
        }
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
            let kept: Vec<_> = packets
                .into_iter()
                .filter(|p| spec.filter.as_ref().is_none_or(|f| f.matches(&p.data)))
                .collect();
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
                        expected: format!("{quantifier} of the packets to match {filter:?}"),
                        observed: format!("{matching} of {} packets matched", kept.len()),
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
                lines,
                packets: kept,
            });
        }
    }

    fn record(&mut self, at: &str, line: &str, status: Status) {
        self.results.push(CheckResult {
            at: at.into(),
            line: line.into(),
            status,
        });
    }

    /// Closes listeners, collects a dump when something failed, and builds the outcome.
    pub(super) async fn finish(mut self, finished: bool, started: Instant) -> Outcome {
        if !finished {
            let observed = format!("still running after {:?}", self.options.timeout);
            self.record(
                &self.scenario.path.clone(),
                "(whole scenario)",
                Status::Fail {
                    expected: "the scenario to end".into(),
                    observed,
                },
            );
        }
        let failed = self
            .results
            .iter()
            .any(|r| matches!(r.status, Status::Fail { .. }));
        let dump = if failed {
            Some(self.dump().await)
        } else {
            None
        };
        // Listener sockets would keep namespaces alive: close them before teardown.
        self.containers.clear();
        self.host_listeners.clear();
        let mut outcome = Outcome::new(
            self.scenario,
            if failed { Verdict::Fail } else { Verdict::Pass },
            started,
        );
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
                // already taken keeps its container.
                self.containers
                    .entry(spec.name.clone())
                    .or_insert_with(|| Container {
                        host: host.into(),
                        listen: listen.clone(),
                        listeners: Vec::new(),
                    });
                t.run_container(host, spec).await.map_err(|e| e.message)?;
                self.open_listeners(&spec.name).await
            }
            Command::Rm { containers, force } => {
                let mut errors = Vec::new();
                for name in containers {
                    match t.remove_container(host, name, *force).await {
                        Ok(()) => {
                            self.containers.remove(name);
                        }
                        Err(e) => errors.push(e.message),
                    }
                }
                joined(errors)
            }
            Command::Stop(names) => {
                let mut errors = Vec::new();
                for name in names {
                    if let Some(c) = self.containers.get_mut(name) {
                        c.listeners.clear();
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
                            if let Err(e) = self.open_listeners(name).await {
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
        }
    }

    async fn open_listeners(&mut self, name: &str) -> Result<(), String> {
        let Some(container) = self.containers.get(name) else {
            return Ok(());
        };
        if container.listen.is_empty() {
            return Ok(());
        }
        let netns = self
            .target
            .container_netns(&container.host, name)
            .await
            .map_err(|e| format!("{name}'s namespace: {e}"))?;
        let mut listeners = Vec::new();
        for &(kind, port) in &container.listen {
            let listener = Listener::open(&netns, kind, port, banner(name, port))
                .map_err(|e| format!("--listen {kind}/{port} in {name}: {e}"))?;
            listeners.push(listener);
        }
        if let Some(container) = self.containers.get_mut(name) {
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

    /// `Err((expected, observed))` when the expectation does not hold.
    async fn check(&self, expectation: &Expectation) -> Result<(), (String, String)> {
        let timeout = self.options.probe_timeout;
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
                let outcome =
                    probe::reach(&netns, SocketAddr::new(ip, number), *proto, timeout).await;
                let observed = format!("{ip}:{number}/{proto}: {outcome}");
                match (fails, &outcome) {
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
                let replied = matches!(outcome, probe::Ping::Reply);
                if replied == *succeeds {
                    Ok(())
                } else {
                    let expected = if *succeeds {
                        "an echo reply"
                    } else {
                        "no echo reply"
                    };
                    Err((expected.into(), format!("ping {ip}: {outcome}")))
                }
            }
            Expectation::Resolve {
                from,
                name,
                answers,
                succeeds,
            } => {
                let netns = self.netns(from).await.map_err(setup)?;
                let server = self.resolver(from).await.map_err(setup)?;
                let kind = if answers
                    .as_ref()
                    .is_some_and(|a| a.iter().all(|e| e.ip().is_some_and(|ip| ip.is_ipv6())))
                {
                    RecordKind::Aaaa
                } else {
                    RecordKind::A
                };
                let outcome = probe::resolve(&netns, server, name, kind, timeout).await;
                let observed = format!("{name} via {server}: {outcome}");
                match (&outcome, succeeds) {
                    (Resolution::Answers(got), true) => match answers {
                        None => Ok(()),
                        Some(expected) => {
                            let mut want = Vec::new();
                            for endpoint in expected {
                                want.push(self.address(from, endpoint).await.map_err(setup)?);
                            }
                            let (mut got, mut want) = (got.clone(), want);
                            got.sort();
                            want.sort();
                            if got == want {
                                Ok(())
                            } else {
                                Err((format!("answers {}", list(&want)), observed))
                            }
                        }
                    },
                    (_, true) => Err((format!("{name} to resolve"), observed)),
                    (Resolution::Answers(_), false) => {
                        Err((format!("{name} not to resolve"), observed))
                    }
                    (_, false) => Ok(()),
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
                let outcome =
                    probe::http_get(&netns, SocketAddr::new(ip, number), &to.name, path, timeout)
                        .await;
                let want = self.answerer(from, to, port, ListenKind::Http).await;
                let observed = format!("GET http://{ip}:{number}{path}: {outcome}");
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
                    .map(|(name, _)| name)
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
                    .find(|(name, _)| name == iface);
                match found {
                    Some((_, got)) if got == *mtu => Ok(()),
                    Some((_, got)) => Err((format!("MTU {mtu}"), format!("MTU {got}"))),
                    None => Err((format!("an interface {iface}"), "none".into())),
                }
            }
        }
    }

    fn host_of(&self, container: &str) -> Result<&str, String> {
        self.containers
            .get(container)
            .map(|c| c.host.as_str())
            .ok_or_else(|| format!("{container:?} was not run by this scenario"))
    }

    /// The namespace a probe runs in: a container's, or a lab host's.
    async fn netns(&self, name: &str) -> Result<Netns, String> {
        if let Some(container) = self.containers.get(name) {
            return self
                .target
                .container_netns(&container.host, name)
                .await
                .map_err(|e| format!("{name}: {e}"));
        }
        self.lab
            .host(name)
            .cloned()
            .ok_or_else(|| format!("{name:?} is neither a running container nor a lab host"))
    }

    /// The address of `to` as `from` would use it: on a network they share, when both are
    /// containers; `to@NET` picks the network.
    async fn address(&self, from: &str, to: &Endpoint) -> Result<IpAddr, String> {
        if let Some(ip) = to.ip() {
            return Ok(ip);
        }
        if let Some(host) = self.lab.topology().host(&to.name) {
            return Ok(IpAddr::V4(host.interfaces[0].address.ip()));
        }
        let Some(container) = self.containers.get(&to.name) else {
            return Err(format!(
                "{:?} is neither a container, a lab host nor an address",
                to.name
            ));
        };
        let inspect = self
            .target
            .inspect_container(&container.host, &to.name)
            .await
            .map_err(|e| e.message)?;
        let addresses = container_addresses(&inspect);
        let pick = match &to.network {
            Some(network) => addresses.iter().find(|(n, _)| n == network),
            None => {
                let shared = match self.containers.get(from) {
                    Some(c) => {
                        let mine = self
                            .target
                            .inspect_container(&c.host, from)
                            .await
                            .map_err(|e| e.message)?;
                        let mine: Vec<String> = container_addresses(&mine)
                            .into_iter()
                            .map(|(n, _)| n)
                            .collect();
                        addresses.iter().find(|(n, _)| mine.contains(n))
                    }
                    None => None,
                };
                shared.or(addresses.first())
            }
        };
        pick.map(|(_, ip)| *ip).ok_or_else(|| match &to.network {
            Some(network) => format!("{} has no address on {network}", to.name),
            None => format!("{} has no address", to.name),
        })
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
    /// `to:port`, when the scenario makes it knowable: the container's own listener, a lab
    /// host's `drydock listen`, or the one container of that docker host that published the
    /// port (or listens on it with host networking).
    async fn answerer(
        &self,
        from: &str,
        to: &Endpoint,
        port: &Port,
        kind: ListenKind,
    ) -> Option<String> {
        let listens = |c: &Container, p: u16| c.listen.iter().any(|&(k, q)| k == kind && q == p);
        let n = match port {
            Port::Published { container, port } => {
                let c = self.containers.get(container)?;
                return listens(c, *port).then(|| banner(container, *port));
            }
            Port::Number(n) => *n,
        };
        if let Some(c) = self.containers.get(&to.name) {
            return listens(c, n).then(|| banner(&to.name, n));
        }
        // The lab host behind the endpoint: by name, by address, or loopback from a host.
        let topology = self.lab.topology();
        let host = match to.ip() {
            None => topology.host(&to.name).map(|h| h.name.clone()),
            Some(ip) if ip.is_loopback() => topology.host(from).map(|h| h.name.clone()),
            Some(ip) => topology
                .hosts
                .iter()
                .find(|h| {
                    h.interfaces
                        .iter()
                        .any(|i| IpAddr::V4(i.address.ip()) == ip)
                })
                .map(|h| h.name.clone()),
        }?;
        let on_host = self
            .host_listeners
            .iter()
            .any(|(h, l)| *h == host && l.port() == n && l.kind() == kind);
        if on_host {
            return Some(banner(&host, n));
        }
        let proto = if kind == ListenKind::Udp {
            "udp"
        } else {
            "tcp"
        };
        let mut found = Vec::new();
        for (name, c) in self.containers.iter().filter(|(_, c)| c.host == host) {
            let Ok(json) = self.target.inspect_container(&c.host, name).await else {
                continue;
            };
            if lookup(&json, "HostConfig.NetworkMode").map(text).as_deref() == Some("host") {
                if listens(c, n) {
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
        let mut names: Vec<&String> = self.containers.keys().collect();
        names.sort();
        for name in names {
            dump.push_str(&format!("==== container {name}\n"));
            match self.netns(name).await {
                Ok(netns) => {
                    for args in [&["-br", "addr"][..], &["route"][..]] {
                        let output = netns.command("ip", None).args(args).output();
                        match output {
                            Ok(o) => dump.push_str(&String::from_utf8_lossy(&o.stdout)),
                            Err(e) => dump.push_str(&format!("ip {}: {e}\n", args.join(" "))),
                        }
                    }
                }
                Err(e) => dump.push_str(&format!("{e}\n")),
            }
        }
        for capture in &self.captures {
            let tail = capture.lines.len().saturating_sub(20);
            dump.push_str(&format!(
                "==== capture on {} (last {} packets)\n",
                capture.on,
                capture.lines.len() - tail
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

fn list(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn fact(json: &serde_json::Value, path: &str, value: &Value) -> Result<(), (String, String)> {
    let expected = format!("{path} {value}");
    let found = lookup(json, path).map(text);
    let holds = match (value, &found) {
        (Value::Absent, found) => found.is_none(),
        (_, None) => false,
        (Value::Equals(v), Some(found)) => found == v,
        (Value::Matches(r), Some(found)) => regex::Regex::new(r).is_ok_and(|r| r.is_match(found)),
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

/// Every link of a namespace: name and MTU.
async fn links(netns: &Netns) -> Result<Vec<(String, u32)>, String> {
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
            found.push((name, mtu));
        }
    }
    drop(links);
    nl.close().await;
    Ok(found)
}
