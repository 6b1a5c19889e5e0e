//! The engine's side of the embedded DNS: which sandboxes run a resolver, and the records the
//! resolvers answer from, rebuilt after every change.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::model::{Sandbox, State};
use super::{Engine, EngineError, EngineResult};
use crate::dns::{Entry, NetworkRecords, Records, SandboxEndpoint, SandboxView, Upstream};

impl Engine {
    /// Whether the network has embedded DNS: user-defined networks do (bridge or macvlan), the
    /// default bridge, host and none do not.
    pub(super) fn has_embedded_dns(&self, network_id: &str) -> bool {
        self.networks
            .iter()
            .any(|n| n.id == network_id && n.is_user_defined())
    }

    /// Starts the resolver of a running container with a sandbox of its own, once it is on a
    /// network with embedded DNS (libnetwork starts it at the first such join and keeps it).
    pub(super) async fn ensure_resolver(&mut self, index: usize) -> EngineResult<()> {
        let container = &self.containers[index];
        let needed = container.resolver.is_none()
            && matches!(container.sandbox, Some(Sandbox::Own(_)))
            && container.endpoints.keys().any(|n| self.has_embedded_dns(n));
        if !needed {
            return Ok(());
        }
        let sandbox = self.sandbox_netns(index)?;
        let key = self.containers[index].id.clone();
        let resolver = self.dns.start_resolver(&key, &sandbox).await.map_err(|e| {
            EngineError::new(format!(
                "embedded DNS of {}: {e}",
                self.containers[index].name
            ))
        })?;
        self.containers[index].resolver = Some(resolver);
        Ok(())
    }

    /// Rebuilds what the resolvers know from the running containers.
    pub(super) fn refresh_dns(&self) {
        let mut records = Records::default();
        for network in self
            .networks
            .iter()
            .filter(|n| self.has_embedded_dns(&n.id))
        {
            records.networks.insert(
                network.id.clone(),
                NetworkRecords {
                    name: network.name.clone(),
                    ipv6: network.ipv6,
                    entries: Vec::new(),
                },
            );
        }
        for container in self.containers.iter().filter(|c| c.state == State::Running) {
            for (network_id, settings) in &container.attachments {
                let (Some(records), Some(endpoint)) = (
                    records.networks.get_mut(network_id),
                    container.endpoints.get(network_id),
                ) else {
                    continue;
                };
                let mut aliases = container.network_aliases(settings);
                let name = match container.anonymous {
                    true => aliases.remove(0),
                    false => container.name.clone(),
                };
                records.entries.push(Entry {
                    name,
                    aliases,
                    ip4: endpoint.ip4.and_then(|a| match a {
                        IpNetwork::V4(v4) => Some(v4.ip()),
                        IpNetwork::V6(_) => None,
                    }),
                    ip6: endpoint.ip6.and_then(|a| match a {
                        IpNetwork::V6(v6) => Some(v6.ip()),
                        IpNetwork::V4(_) => None,
                    }),
                });
            }
        }
        for (index, container) in self.containers.iter().enumerate() {
            if container.resolver.is_none() {
                continue;
            }
            let endpoints = self
                .endpoint_order(index)
                .into_iter()
                .map(|network| {
                    let links = container
                        .attachments
                        .iter()
                        .find(|(n, _)| *n == network)
                        .and_then(|(_, s)| s.links.clone())
                        .unwrap_or_default()
                        .iter()
                        .map(|link| {
                            let (name, alias) = super::model::parse_link(link);
                            (alias.to_string(), name.to_string())
                        })
                        .collect::<BTreeMap<_, _>>();
                    SandboxEndpoint { network, links }
                })
                .collect();
            records.sandboxes.insert(
                container.id.clone(),
                SandboxView {
                    endpoints,
                    upstreams: self.upstreams(index),
                    ndots_set: sets_ndots(&container.config.host_config.dns_options),
                },
            );
        }
        self.dns.update(records);
    }

    /// The servers the embedded DNS forwards a container's unknown names to (libnetwork's
    /// `extDNS`): its `--dns`, else the daemon's, else the docker host's resolv.conf. A
    /// loopback server of the host's file is asked from the docker host's namespace, unless the
    /// container has DNS settings of its own (`--dns-search`, `--dns-option`): libnetwork then
    /// builds its file first and takes every server of it as the container's own, loopback
    /// ones included (asked in the container's namespace, where nothing listens).
    fn upstreams(&self, index: usize) -> Vec<Upstream> {
        let host = &self.containers[index].config.host_config;
        let own_settings = !host.dns_search.is_empty() || !host.dns_options.is_empty();
        let (servers, host_loopback) = match self.dns_servers(index) {
            Some(given) => (given, false),
            None => (self.options.host_resolvers.clone(), !own_settings),
        };
        (servers.into_iter())
            .map(|ip| Upstream {
                ip,
                from_host: host_loopback && ip.is_loopback(),
            })
            .collect()
    }

    /// The nameservers of a container without embedded DNS: its `--dns`, else the daemon's,
    /// else the docker host's resolv.conf without its loopback servers.
    pub(super) fn nameservers(&self, index: usize) -> Vec<IpAddr> {
        self.dns_servers(index).unwrap_or_else(|| {
            self.options
                .host_resolvers
                .iter()
                .copied()
                .filter(|ip| !ip.is_loopback())
                .collect()
        })
    }

    /// `--dns` of the container, else of the daemon.
    fn dns_servers(&self, index: usize) -> Option<Vec<IpAddr>> {
        let own: Vec<IpAddr> = self.containers[index]
            .config
            .host_config
            .dns
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        [own, self.options.dns.clone()]
            .into_iter()
            .find(|servers| !servers.is_empty())
    }
}

/// Whether `--dns-option`s set ndots (`ndots:N`, N a number from 0): libnetwork then leaves the
/// container's ndots in resolv.conf, and its resolver no longer forwards single-label names
/// asked for addresses (the client retries with its search domains).
fn sets_ndots(options: &[String]) -> bool {
    let ndots = options.iter().filter(|o| o.contains("ndots"));
    ndots
        .filter_map(|o| o.split_once(':'))
        .any(|(_, n)| n.parse::<u32>().is_ok())
}
