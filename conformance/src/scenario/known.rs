//! What a scenario's hosts and steps make, as far as the file tells: the names its
//! expectations and captures may use, checked when it loads.

use std::collections::{BTreeMap, BTreeSet};

use super::expect::{Asked, Endpoint, Expectation, Port};

/// The networks every docker host has from the start.
pub(super) const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// The networks a docker host gets in a swarm: the routing mesh's overlay and the bridge its
/// overlay sandboxes reach the outside through (which any host gets once a container's
/// networks give it no gateway).
pub(super) const SWARM_NETWORKS: [&str; 2] = ["ingress", GWBRIDGE];

/// The bridge network a container's way out goes through when its networks give no gateway.
const GWBRIDGE: &str = "docker_gwbridge";

/// What a scenario's hosts and steps make, as far as the file tells: the names expectations and
/// captures may use.
pub(super) struct Known {
    /// Docker hosts, in order (the first is the default for `network N`).
    pub(super) docker_hosts: Vec<String>,
    /// The docker hosts in the scenario's swarm.
    pub(super) swarm: BTreeSet<String>,
    /// Docker and external hosts (and the router, when some are routed).
    pub(super) lab_hosts: BTreeSet<String>,
    /// Containers made by `docker run --name` steps, and the docker hosts they run on.
    pub(super) containers: BTreeMap<String, BTreeSet<String>>,
    /// Networks per docker host: predefined, or made by `docker network create` steps.
    pub(super) networks: BTreeMap<String, BTreeSet<String>>,
}

impl Known {
    /// Docker host `host` is in a swarm (declared, or from a `docker swarm init` step): its
    /// swarm networks may be named.
    pub(super) fn join_swarm(&mut self, host: &str) {
        let networks = self.networks.entry(host.to_string()).or_default();
        networks.extend(SWARM_NETWORKS.iter().map(|n| n.to_string()));
    }

    /// The docker host of container `name`; an error when no step runs it or when steps run it
    /// on several hosts (then nothing tells which one a check means).
    pub(super) fn container(&self, name: &str) -> Result<&str, String> {
        match self
            .containers
            .get(name)
            .map(|hosts| hosts.iter().collect::<Vec<_>>())
        {
            Some(hosts) if hosts.len() == 1 => Ok(hosts[0]),
            Some(hosts) => Err(format!(
                "{name:?} runs on {} docker hosts ({}): a check cannot tell which one it means",
                hosts.len(),
                hosts
                    .iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Err(format!(
                "{name:?} is not a container this scenario runs (`docker run --name {name}`)"
            )),
        }
    }

    /// `name` is a container (on one host) or a lab host.
    pub(super) fn subject(&self, name: &str) -> Result<(), String> {
        if self.lab_hosts.contains(name) {
            return Ok(());
        }
        self.container(name).map(drop).map_err(|e| {
            if self.containers.contains_key(name) {
                e
            } else {
                format!("{name:?} is neither a container this scenario runs nor one of its hosts")
            }
        })
    }

    /// Network `name` exists on `host` (the first docker host when `None`).
    pub(super) fn network(&self, host: Option<&str>, name: &str) -> Result<(), String> {
        let host = host.unwrap_or(&self.docker_hosts[0]);
        let Some(networks) = self.networks.get(host) else {
            return Err(format!(
                "{host:?} is not a docker host of this scenario: expected one of {:?}",
                self.docker_hosts
            ));
        };
        // docker_gwbridge comes wherever a container's networks give it no gateway.
        if networks.contains(name) || name == GWBRIDGE {
            Ok(())
        } else {
            Err(format!(
                "no network {name:?} on {host}: expected a predefined one (bridge, host, none) or one a `docker network create` step makes there"
            ))
        }
    }

    /// What an endpoint names: an address, a lab host, or a container (and the network picked
    /// with `@NET`, on the container's host).
    pub(super) fn endpoint(&self, endpoint: &Endpoint) -> Result<(), String> {
        if endpoint.ip().is_some() {
            return Ok(());
        }
        if self.lab_hosts.contains(&endpoint.name) {
            return match &endpoint.network {
                Some(network) => Err(format!(
                    "{}@{network}: `@NETWORK` picks a container's address; {} is a host",
                    endpoint.name, endpoint.name
                )),
                None => Ok(()),
            };
        }
        if !self.containers.contains_key(&endpoint.name) {
            return Err(format!(
                "{:?} is neither a container this scenario runs, one of its hosts, nor an IP address",
                endpoint.name
            ));
        }
        let host = self.container(&endpoint.name)?;
        match &endpoint.network {
            Some(network) => self.network(Some(host), network),
            None => Ok(()),
        }
    }

    /// The containers a DNS question names: `id(C)`, or the address of `as PTR`.
    pub(super) fn asked(&self, asked: &Asked) -> Result<(), String> {
        match asked {
            Asked::Name(_) => Ok(()),
            Asked::ShortId(container) => self.container(container).map(drop),
            Asked::Reverse(endpoint) => self.endpoint(endpoint),
        }
    }

    /// A published port's container.
    pub(super) fn port(&self, port: &Port) -> Result<(), String> {
        match port {
            Port::Published { container, .. } => self.container(container).map(drop),
            Port::Number(_) => Ok(()),
        }
    }

    /// Each `id(C)` part of an inspect path names a container (on one host).
    fn path_ids(&self, path: &str) -> Result<(), String> {
        let ids = path.split('.').filter_map(super::words::id_reference);
        for (_, name, _) in ids {
            self.container(name)?;
        }
        Ok(())
    }

    /// Checks the names an expectation uses; the error carries the index of the word at fault.
    pub(super) fn check(&self, expectation: &Expectation) -> Result<(), (usize, String)> {
        let at = |word: usize| move |message: String| (word, message);
        match expectation {
            Expectation::Reach { from, to, port, .. }
            | Expectation::Http { from, to, port, .. } => {
                self.subject(from).map_err(at(0))?;
                self.endpoint(to).map_err(at(2))?;
                self.port(port).map_err(at(2))
            }
            Expectation::Ping { from, to, .. } => {
                self.subject(from).map_err(at(0))?;
                self.endpoint(to).map_err(at(2))
            }
            Expectation::Resolve {
                from,
                question,
                answers,
                ..
            } => {
                self.subject(from).map_err(at(0))?;
                self.asked(&question.name).map_err(at(2))?;
                for answer in answers.iter().flatten() {
                    self.endpoint(answer).map_err(at(4))?;
                }
                Ok(())
            }
            Expectation::NoResolve { from, question, .. } => {
                self.subject(from).map_err(at(0))?;
                self.asked(&question.name).map_err(at(2))
            }
            Expectation::Network {
                network,
                host,
                path,
                ..
            } => {
                if let Some(host) = host
                    && !self.docker_hosts.contains(host)
                {
                    return Err((
                        3,
                        format!(
                            "{host:?} is not a docker host of this scenario: expected one of {:?}",
                            self.docker_hosts
                        ),
                    ));
                }
                self.network(host.as_deref(), network).map_err(at(1))?;
                let path_word = if host.is_some() { 5 } else { 3 };
                self.path_ids(path).map_err(at(path_word))
            }
            Expectation::Networks {
                host,
                filters,
                names,
            } => {
                let host = host.as_deref();
                let hosts_word = if host.is_some() { 2 } else { 0 };
                if let Some(h) = host
                    && !self.docker_hosts.iter().any(|d| d == h)
                {
                    return Err((
                        hosts_word,
                        format!(
                            "{h:?} is not a docker host of this scenario: expected one of {:?}",
                            self.docker_hosts
                        ),
                    ));
                }
                let filters_word = hosts_word + 2;
                for value in filters
                    .iter()
                    .filter_map(|f| f.split_once('=').map(|(_, v)| v))
                {
                    if let Some((_, name, _)) = super::words::id_reference(value) {
                        self.network(host, name).map_err(at(filters_word))?;
                    }
                }
                let names_word = if filters.is_empty() {
                    filters_word
                } else {
                    filters_word + 2
                };
                for name in names {
                    self.network(host, name).map_err(at(names_word))?;
                }
                Ok(())
            }
            Expectation::Container {
                container, path, ..
            } => {
                self.container(container).map_err(at(1))?;
                self.path_ids(path).map_err(at(3))
            }
            Expectation::File { container, .. }
            | Expectation::Interfaces { container, .. }
            | Expectation::Mtu { container, .. }
            | Expectation::Route { container, .. } => {
                self.container(container).map(drop).map_err(at(1))
            }
        }
    }
}
