//! Observing: what the target shows for an expectation, awaited before it is judged (probes
//! from inside namespaces, inspect JSON, files, links and routes), and the names and addresses
//! a check's words stand for.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use drydock_netsim::Netns;
use drydock_runtime::api::EngineApi;
use drydock_runtime::api::filter;

use super::Status;
use super::execution::Execution;
use super::inspect::{container_addresses, lookup, text};
use super::judge::{self, Observation};
use super::oracle::{ContainerFacts, Snapshot, kind_of};
use crate::probe::{self, ListenKind, Proto, RecordData, RecordKind};
use crate::scenario::expect::{Asked, Endpoint, Port, Question};
use crate::scenario::{Expect, Expectation, words};
use crate::targets::Target;

impl<T: Target> Execution<'_, T> {
    /// Checks an expectation (unless the target's Docker release is outside its range). A probe
    /// that fails to run never counts as an observation: it fails the check as a setup problem.
    /// With `within`, it is observed again (every [`RETRY_AFTER`]) until it holds or that
    /// time has passed, and the last observation is reported.
    pub(super) async fn expect(&self, expect: &Expect) -> Status {
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
        let timeout = probe_timeout(&expect.expectation, self.options.probe_timeout);
        let started = tokio::time::Instant::now();
        let mut observations = 0;
        loop {
            observations += 1;
            let judged = match self.with_path_ids(&expect.expectation).await {
                Ok(expectation) => match self.observe(&expectation, timeout).await {
                    Ok(observation) => judge::judge(&expectation, &observation),
                    Err(why) => Err(judge::setup(why)),
                },
                Err(why) => Err(judge::setup(why)),
            };
            let failed = match judged {
                Ok(()) if expect.within.is_some() => {
                    tracing::debug!(
                        "{}: `{}` held at observation {observations}, {} after the first",
                        expect.at,
                        expect.line,
                        seconds(started.elapsed())
                    );
                    return Status::Pass;
                }
                Ok(()) => return Status::Pass,
                Err(failed) => failed,
            };
            // `within`: what must hold once the cluster converged is observed again until it
            // holds or the time has passed; the last observation is the one reported.
            let Some(within) = expect.within else {
                return Status::Fail {
                    expected: failed.expected,
                    observed: failed.observed,
                };
            };
            if started.elapsed() + RETRY_AFTER < within {
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
            return Status::Fail {
                expected: format!("{} within {}", failed.expected, seconds(within)),
                observed: format!(
                    "{} (the last of {observations} observations, {} after the first)",
                    failed.observed,
                    seconds(started.elapsed())
                ),
            };
        }
    }

    /// The expectation, with each `id(C)` part of its inspect path replaced by container C's
    /// full Id (`Containers.id(web).Name`).
    async fn with_path_ids<'e>(
        &self,
        expectation: &'e Expectation,
    ) -> Result<Cow<'e, Expectation>, String> {
        let (Expectation::Network { path, .. } | Expectation::Container { path, .. }) = expectation
        else {
            return Ok(Cow::Borrowed(expectation));
        };
        if !path
            .split('.')
            .any(|part| words::id_reference(part).is_some())
        {
            return Ok(Cow::Borrowed(expectation));
        }
        let mut parts = Vec::new();
        for part in path.split('.') {
            parts.push(match words::id_reference(part) {
                Some((_, name, _)) => self.id_of(self.scene.host_of(name)?, name, false).await?,
                None => part.to_string(),
            });
        }
        let mut resolved = expectation.clone();
        if let Expectation::Network { path, .. } | Expectation::Container { path, .. } =
            &mut resolved
        {
            *path = parts.join(".");
        }
        Ok(Cow::Owned(resolved))
    }

    /// What the target shows for `expectation`; an error when the observation cannot be made.
    async fn observe(
        &self,
        expectation: &Expectation,
        timeout: Duration,
    ) -> Result<Observation, String> {
        use Expectation as E;
        Ok(match expectation {
            E::Reach {
                from,
                to,
                port,
                proto,
                fails,
            } => {
                let netns = self.netns(from).await?;
                let at = SocketAddr::new(
                    self.address(from, to, None).await?,
                    self.port(port, *proto).await?,
                );
                let outcome = probe::reach(&netns, at, *proto, timeout).await;
                // Who answered matters only when a connection must be made and was.
                let answerer = match (fails, &outcome) {
                    (None, probe::Reach::Reached { .. }) => {
                        self.snapshot()
                            .await
                            .answerer(from, to, port, kind_of(*proto))
                    }
                    _ => None,
                };
                Observation::Reach {
                    at,
                    outcome,
                    answerer,
                }
            }
            E::Ping {
                from, to, size, df, ..
            } => {
                let netns = self.netns(from).await?;
                let ip = self.address(from, to, None).await?;
                let echo = probe::Echo {
                    size: *size,
                    df: *df,
                };
                let outcome = probe::ping_with(&netns, ip, echo, timeout).await;
                Observation::Ping { ip, outcome }
            }
            E::Resolve {
                from,
                question,
                answers,
                names,
                ..
            } => {
                let mut observation = self.ask(from, question, timeout).await?;
                if let Observation::Dns { want, .. } = &mut observation {
                    *want = self
                        .records(from, question, answers, names)
                        .await
                        .transpose();
                }
                observation
            }
            E::NoResolve { from, question, .. } => self.ask(from, question, timeout).await?,
            E::Http {
                from,
                to,
                port,
                path,
                ..
            } => {
                let netns = self.netns(from).await?;
                let at = SocketAddr::new(
                    self.address(from, to, None).await?,
                    self.port(port, Proto::Tcp).await?,
                );
                let outcome = probe::http_get(&netns, at, &to.name, path, timeout).await;
                let answerer = self
                    .snapshot()
                    .await
                    .answerer(from, to, port, ListenKind::Http);
                Observation::Http {
                    at,
                    outcome,
                    answerer,
                }
            }
            E::Networks { .. } | E::Network { .. } | E::Container { .. } => {
                self.inspected(expectation).await?
            }
            E::File {
                container, path, ..
            } => {
                let host = self.scene.host_of(container)?;
                let file = self.target.container_file(host, container, path).await;
                Observation::File(file.map_err(|e| e.message)?)
            }
            E::Interfaces { container, .. } | E::Mtu { container, .. } => {
                let netns = self.netns(container).await?;
                let links = drydock_netsim::link::list(&netns).await;
                let links = links.map_err(|e| e.to_string())?;
                Observation::Links(links.into_iter().map(|l| (l.name, l.mtu)).collect())
            }
            E::Route {
                container, ipv6, ..
            } => {
                let netns = self.netns(container).await?;
                let routes = drydock_netsim::link::routes(&netns, *ipv6).await;
                Observation::Routes(routes.map_err(|e| e.to_string())?)
            }
        })
    }

    /// What the engine shows of a network, the networks it lists, or a container.
    async fn inspected(&self, expectation: &Expectation) -> Result<Observation, String> {
        use Expectation as E;
        Ok(match expectation {
            E::Networks { host, filters, .. } => {
                let host = host.as_deref().unwrap_or(&self.scenario.hosts[0]);
                Observation::Names(self.listed_networks(host, filters).await?)
            }
            E::Network { network, host, .. } => {
                let host = host.as_deref().unwrap_or(&self.scenario.hosts[0]);
                let json = self.target.inspect_network(host, network).await;
                Observation::Inspect(json.map_err(|e| e.message)?)
            }
            E::Container { container, .. } => {
                let host = self.scene.host_of(container)?;
                let json = self.target.inspect_container(host, container).await;
                Observation::Inspect(json.map_err(|e| e.message)?)
            }
            other => return Err(format!("{other:?} is not an inspection (a bug in drydock)")),
        })
    }

    /// The names of the networks `host`'s engine lists with `filters` (`KEY=VALUE`, a value
    /// `id(NET)` standing for that network's Id).
    async fn listed_networks(&self, host: &str, filters: &[String]) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        for word in filters {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            words.push(match words::id_reference(value) {
                Some((before, name, after)) => {
                    let id = self.id_of(host, name, true).await?;
                    format!("{key}={before}{id}{after}")
                }
                None => word.clone(),
            });
        }
        let filters = filter::parse(&words)?;
        let api = self.target.api(host).map_err(|e| e.message)?;
        let listed = api.list_networks(&filters).await.map_err(|e| e.message)?;
        let names = listed.iter().filter_map(|n| n["Name"].as_str());
        Ok(names.map(String::from).collect())
    }

    /// The records a `resolves ... to` check expects: the addresses of its endpoints (as `from`
    /// would use them), or its names; `None` when it names none.
    async fn records(
        &self,
        from: &str,
        question: &Question,
        answers: &Option<Vec<Endpoint>>,
        names: &Option<Vec<String>>,
    ) -> Result<Option<Vec<RecordData>>, String> {
        let Some(endpoints) = answers else {
            let names = names.as_ref();
            return Ok(names.map(|n| n.iter().map(|n| RecordData::Name(absolute(n))).collect()));
        };
        let v6 = question.kind == RecordKind::Aaaa;
        let mut want = Vec::new();
        for endpoint in endpoints {
            want.push(RecordData::Address(
                self.address(from, endpoint, Some(v6)).await?,
            ));
        }
        Ok(Some(want))
    }

    /// Asks `question` from `from` through its resolver (the records wanted are for the caller
    /// to add).
    async fn ask(
        &self,
        from: &str,
        question: &Question,
        timeout: Duration,
    ) -> Result<Observation, String> {
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
        Ok(Observation::Dns {
            asked: format!("{} via {server}", asking(question, &name)),
            outcome,
            want: None,
        })
    }

    /// The namespace a probe runs in: a container's, or a lab host's.
    pub(super) async fn netns(&self, name: &str) -> Result<Netns, String> {
        match self.scene.host_of(name) {
            Ok(host) => {
                return (self.target.container_netns(host, name).await)
                    .map_err(|e| format!("{name}: {e}"));
            }
            // Run on several docker hosts: which one is not for a lab host's name to decide.
            Err(e) if self.scene.runs(name) => return Err(e),
            Err(_) => {}
        }
        (self.lab.host(name).cloned())
            .ok_or_else(|| format!("{name:?} is neither a running container nor a lab host"))
    }

    /// The address of `to` as `from` would use it: on a network they share, when both are
    /// containers; `to@NET` picks the network; `v6` (when given) the family.
    async fn address(&self, from: &str, to: &Endpoint, v6: Option<bool>) -> Result<IpAddr, String> {
        if let Some(ip) = to.ip() {
            return Ok(ip);
        }
        if let Some(host) = self.lab.topology().host(&to.name) {
            let iface = &host.interfaces[0];
            return match v6 {
                Some(true) => (iface.address6.map(|a| IpAddr::V6(a.ip())))
                    .ok_or_else(|| format!("{} has no IPv6 address", to.name)),
                _ => Ok(IpAddr::V4(iface.address.ip())),
            };
        }
        let host = self.scene.host_of(&to.name).map_err(|_| {
            format!(
                "{:?} is neither a container, a lab host nor an address",
                to.name
            )
        })?;
        let inspect =
            (self.target.inspect_container(host, &to.name).await).map_err(|e| e.message)?;
        let mut addresses = container_addresses(&inspect);
        addresses.retain(|(_, ip)| v6.is_none_or(|v6| ip.is_ipv6() == v6));
        let pick = match &to.network {
            Some(network) => addresses.iter().find(|(n, _)| n == network),
            None => {
                let mine = match self.scene.host_of(from) {
                    Ok(from_host) => {
                        let json = self.target.inspect_container(from_host, from).await;
                        container_addresses(&json.map_err(|e| e.message)?)
                    }
                    Err(_) => Vec::new(),
                };
                let shared = addresses
                    .iter()
                    .find(|(n, _)| mine.iter().any(|(m, _)| m == n));
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

    /// A port number: as written, or the host port published for a container's port.
    async fn port(&self, port: &Port, proto: Proto) -> Result<u16, String> {
        let (container, number) = match port {
            Port::Number(n) => return Ok(*n),
            Port::Published { container, port } => (container, port),
        };
        let host = self.scene.host_of(container)?;
        let json = (self.target.inspect_container(host, container).await).map_err(|e| e.message)?;
        let path = format!("NetworkSettings.Ports.{number}/{proto}.0.HostPort");
        lookup(&json, &path)
            .and_then(|v| text(v).parse().ok())
            .ok_or_else(|| {
                format!("{container} has no published port for {number}/{proto} ({path})")
            })
    }

    /// The name a DNS check asks for: as written, a container's short ID (`id(C)`), or the
    /// reverse name of an address (`as PTR`).
    async fn asked(&self, from: &str, question: &Question) -> Result<String, String> {
        match &question.name {
            Asked::Name(name) => Ok(name.clone()),
            Asked::ShortId(container) => {
                let host =
                    (self.scene.host_of(container)).map_err(|e| format!("id({container}): {e}"))?;
                let inspect = (self.target.inspect_container(host, container).await)
                    .map_err(|e| e.message)?;
                let id = lookup(&inspect, "Id").map(text).unwrap_or_default();
                id.get(..12)
                    .map(str::to_string)
                    .ok_or_else(|| format!("{container}'s Id is not an ID: {id:?}"))
            }
            Asked::Reverse(endpoint) => {
                let ip = self.address(from, endpoint, None).await?;
                Ok(probe::reverse_name(ip))
            }
        }
    }

    /// The DNS server a container's resolver uses (its resolv.conf's first nameserver).
    async fn resolver(&self, from: &str) -> Result<SocketAddr, String> {
        let host = self
            .scene
            .host_of(from)
            .map_err(|_| format!("{from:?} is a lab host: only containers resolve names here"))?;
        let conf = (self
            .target
            .container_file(host, from, "/etc/resolv.conf")
            .await)
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

    /// The scene as the oracle sees it once the steps have run (expectations change nothing),
    /// taken at the first check that needs it.
    async fn snapshot(&self) -> &Snapshot {
        self.snapshot.get_or_init(|| self.take_snapshot()).await
    }

    /// Lab hosts and their listeners, and each container's listeners, addresses, published
    /// ports and namespace.
    async fn take_snapshot(&self) -> Snapshot {
        let hosts = (self.lab.topology().hosts.iter())
            .map(|h| {
                let addresses = h.interfaces.iter().map(|i| IpAddr::V4(i.address.ip()));
                (h.name.clone(), addresses.collect())
            })
            .collect();
        let host_listeners = (self.scene.host_listeners.iter())
            .map(|(host, l)| (host.clone(), l.kind(), l.port()))
            .collect();
        let mut containers = Vec::new();
        for ((host, name), container) in &self.scene.containers {
            let mut facts = ContainerFacts {
                host: host.clone(),
                name: name.clone(),
                listen: container.listen.clone(),
                ..ContainerFacts::default()
            };
            if let Ok(json) = self.target.inspect_container(host, name).await {
                facts.host_network =
                    lookup(&json, "HostConfig.NetworkMode").map(text).as_deref() == Some("host");
                facts.addresses = container_addresses(&json)
                    .into_iter()
                    .map(|(_, ip)| ip)
                    .collect();
                facts.published = published(&json);
            }
            if let Ok(netns) = self.target.container_netns(host, name).await {
                facts.netns = nix::sys::stat::fstat(netns.as_fd()).ok().map(|s| s.st_ino);
            }
            containers.push(facts);
        }
        Snapshot {
            hosts,
            host_listeners,
            containers,
        }
    }
}

/// A container's published ports (`NetworkSettings.Ports`): container port, the kind of
/// listener it reaches, host port.
fn published(inspect: &serde_json::Value) -> Vec<(u16, ListenKind, u16)> {
    let mut found = Vec::new();
    let Some(serde_json::Value::Object(ports)) = lookup(inspect, "NetworkSettings.Ports") else {
        return found;
    };
    for (key, bindings) in ports {
        let Some((port, proto)) = key.split_once('/') else {
            continue;
        };
        let kind = match proto {
            "udp" => ListenKind::Udp,
            "tcp" => ListenKind::Tcp,
            _ => continue,
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        for binding in bindings.as_array().into_iter().flatten() {
            if let Some(host_port) = binding.get("HostPort").and_then(|p| text(p).parse().ok()) {
                found.push((port, kind, host_port));
            }
        }
    }
    found
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

/// How long a `within` check waits between two observations.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// `10 s`, `1.5 s`, `0.25 s`.
fn seconds(duration: Duration) -> String {
    let text = format!("{:.2}", duration.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25 s");
    }
}
