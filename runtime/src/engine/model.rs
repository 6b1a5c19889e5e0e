//! What an engine knows: networks, containers, endpoints.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use drydock_netsim::Netns;
use ipnetwork::IpNetwork;

use super::pools::Pools;
use crate::api::body::{ContainerCreate, EndpointSettings, Ipam};
use crate::driver::{Driver, bridge, special};
use crate::proxy::Proxy;

/// A network.
#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) created: String,
    pub(crate) internal: bool,
    pub(crate) attachable: bool,
    pub(crate) ipv6: bool,
    /// Options as given (`-o`), plus the defaults Docker reports for the default bridge.
    pub(crate) options: BTreeMap<String, String>,
    pub(crate) labels: BTreeMap<String, String>,
    /// Its address pools, and the IPAM they come from.
    pub(crate) pools: Pools,
    /// The IPAM section of its create request as given (`--ipam-opt`, the configured
    /// subnets): inspect shows it.
    pub(crate) ipam: Ipam,
    /// Which families' subnets the user gave (a static `--ip` or `--ip6` needs its own).
    pub(crate) user_subnets: UserSubnets,
    /// Inspect shows no gateway for the default bridge (as 20.10 does on a fresh daemon).
    pub(crate) show_gateway: bool,
    /// The Linux bridge carrying it, as its driver made it: the firewall filters that.
    pub(crate) bridge: Option<String>,
    /// The default bridge (`docker0`): legacy links, no embedded DNS.
    pub(crate) default_bridge: bool,
    /// A swarm-scope network: its record in the control plane, and this node's part of it.
    pub(crate) swarm: Option<SwarmNetwork>,
    /// Endpoints of no container on it, as inspect shows them: a node's load balancer
    /// (`lb-NAME`) on a swarm network, the swarm's `ingress-sbox` on ingress and on
    /// `docker_gwbridge`.
    pub(crate) node_endpoints: Vec<NodeEndpoint>,
}

/// Which address families of a network have a subnet the user gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UserSubnets {
    /// An IPv4 subnet was given.
    pub(crate) v4: bool,
    /// An IPv6 subnet was given.
    pub(crate) v6: bool,
}

/// This node's part of a swarm-scope network.
#[derive(Debug)]
pub(crate) struct SwarmNetwork {
    /// The network as the control plane has it (subnet, gateway, VNI).
    pub(crate) record: crate::cluster::NetworkRecord,
    /// The other nodes' endpoints on it, as the watch keeping this node in step knows them.
    pub(crate) remote: Remote,
}

/// Other nodes' endpoints on a swarm network, by key, shared by its watch and the engine.
pub(crate) type Remote =
    std::sync::Arc<std::sync::Mutex<BTreeMap<String, crate::cluster::EndpointRecord>>>;

/// An endpoint of no container: its key and name in network inspect (`lb-ov1` named
/// `ov1-endpoint`), its id, address and MAC.
#[derive(Debug, Clone)]
pub(crate) struct NodeEndpoint {
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) endpoint_id: String,
    pub(crate) address: IpNetwork,
    pub(crate) mac: [u8; 6],
}

impl Network {
    /// Whether its driver is `bridge`, whose options (ICC, masquerade) and published ports the
    /// engine applies.
    pub(crate) fn is_bridge(&self) -> bool {
        self.driver.name() == bridge::NAME
    }

    /// Whether it is a user-defined network in Docker's sense: neither the default bridge nor
    /// one of `host` and `none`. Such networks have the embedded DNS, and containers on them
    /// get their short id and hostname as aliases.
    pub(crate) fn is_user_defined(&self) -> bool {
        !self.default_bridge && !self.has_special_driver()
    }

    /// Whether its driver is `host` or `null`, whose networks and endpoints get no addresses
    /// (libnetwork `hasSpecialDriver`).
    pub(crate) fn has_special_driver(&self) -> bool {
        special::is_special(self.driver.name())
    }
}

/// An endpoint: a container's attachment to a network while it runs.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) id: String,
    pub(crate) network: String,
    pub(crate) ip4: Option<IpNetwork>,
    pub(crate) ip6: Option<IpNetwork>,
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) gateway4: Option<IpAddr>,
    pub(crate) gateway6: Option<IpAddr>,
    /// Its driver keeps it from being the sandbox's gateway endpoint.
    pub(crate) disable_gateway_service: bool,
    /// The name network inspect shows for it when not its container's (`gateway_ID12` on
    /// `docker_gwbridge`, an endpoint the container's own inspect does not show).
    pub(crate) shown_as: Option<String>,
}

impl Endpoint {
    /// Whether it may give its sandbox the default route and the published ports: it has a
    /// gateway, and its driver allows it (libnetwork `getGatewayEndpoint`).
    pub(crate) fn provides_gateway(&self) -> bool {
        !self.disable_gateway_service && (self.gateway4.is_some() || self.gateway6.is_some())
    }
}

/// A container's network namespace.
#[derive(Debug)]
pub(crate) enum Sandbox {
    /// Its own namespace.
    Own(Netns),
    /// `--network host`: the docker host's namespace.
    Host,
    /// `--network container:X`: X's namespace (X's id).
    Shared(String),
}

/// A published port while the container runs.
#[derive(Debug)]
pub(crate) struct Published {
    /// `"80/tcp"`.
    pub(crate) port: String,
    /// Host address as inspect shows it (`0.0.0.0`, `::`, or the given one).
    pub(crate) host_ip: String,
    /// Host port.
    pub(crate) host_port: u16,
    /// The userland proxy serving it.
    pub(crate) proxy: Option<Proxy>,
    /// The firewall binding made for it (IPv4 bindings).
    pub(crate) binding: Option<crate::firewall::Binding>,
}

/// Whether a container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Created,
    Running,
    Exited,
}

impl State {
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Exited => "exited",
        }
    }
}

/// A container.
#[derive(Debug)]
pub(crate) struct Container {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created: String,
    pub(crate) config: ContainerCreate,
    pub(crate) hostname: String,
    pub(crate) state: State,
    /// Its command's exit code, once exited (137 when stopped: SIGKILL after the grace; 127 or
    /// 126 when it could not start); 0 while it runs.
    pub(crate) exit_code: i64,
    /// Why its last start failed (runc's text), as inspect's `State.Error`; empty once it runs.
    pub(crate) error: String,
    /// When it last started and last stopped (Docker's zero time before).
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    /// Networks it is attached to, in order, with their endpoint settings: kept across stops.
    pub(crate) attachments: Vec<(String, EndpointSettings)>,
    /// Endpoints by network id while it runs.
    pub(crate) endpoints: BTreeMap<String, Endpoint>,
    pub(crate) sandbox: Option<Sandbox>,
    pub(crate) sandbox_id: String,
    pub(crate) published: Vec<Published>,
    /// The network whose endpoint holds the default route and the published ports.
    pub(crate) gateway_network: Option<String>,
    /// Its embedded DNS server, once it has been on a user-defined network while running.
    pub(crate) resolver: Option<crate::dns::Resolver>,
    /// Its `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, by path, once it ran.
    pub(crate) files: BTreeMap<&'static str, String>,
    /// Where those files are also written, when the engine has a state directory.
    pub(crate) dir: Option<std::path::PathBuf>,
    /// Created without a name (dockerd made one up) and not renamed since: its name is not in
    /// DNS, its first alias answers for it (libnetwork's anonymous endpoint).
    pub(crate) anonymous: bool,
    /// The number of its sandbox's next `ethN` (counted from 0 at each start, never reused
    /// within one, as libnetwork's).
    pub(crate) next_eth: usize,
}

impl Container {
    /// The first 12 characters of the id.
    pub(crate) fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// Its aliases on a user-defined network it runs on: the given ones, then (as 20.10 adds
    /// them) the short id, and the hostname when one was given.
    pub(crate) fn network_aliases(&self, settings: &EndpointSettings) -> Vec<String> {
        let mut aliases = settings.aliases.clone().unwrap_or_default();
        aliases.push(self.short_id().to_string());
        if self.hostname != self.short_id() {
            aliases.push(self.hostname.clone());
        }
        aliases
    }

    /// The network mode as given (`default` when empty).
    pub(crate) fn mode(&self) -> &str {
        match self.config.host_config.network_mode.as_str() {
            "" => "default",
            mode => mode,
        }
    }
}

/// A legacy link's target and alias: `web:db`, `/web:/client/db` (as inspect shows it) or
/// `web` alone (the alias is the name).
pub(crate) fn parse_link(link: &str) -> (&str, &str) {
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    (name.trim_start_matches('/'), alias)
}
