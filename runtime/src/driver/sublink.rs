//! The macvlan and ipvlan drivers (libnetwork `drivers/{macvlan,ipvlan}`, as in Docker 20.10):
//! a network sits on a parent link of the docker host (`-o parent=eth0`, one network per parent
//! and driver); each endpoint is a sub-link of that parent, made straight into the container's
//! namespace as its `ethN`. There is no Linux bridge, so the engine's bridge firewall has
//! nothing to filter.
//!
//! Datapaths: macvlan endpoints are kernel macvlan links. ipvlan endpoints are kernel ipvlan
//! links where the kernel has them; otherwise (or when `DRYDOCK_FORCE_ABSENT` names `ipvlan`)
//! they are ports of drydock's userspace ipvlan ([`crate::datapath::ipvlan`]), whose parent the
//! firewall guards. Parents the drivers make (`eth0.N`, the isolated parent without
//! `-o parent`) are [`super::parent`]'s. A userspace datapath shows as the network's
//! `drydock.datapath` option; without that option, a network's links are the kernel's, as
//! Docker's.
//!
//! Netlink only on the attach path; `nft` runs once when a userspace ipvlan network is created
//! and once when it is removed.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use drydock_netsim::Netns;
use drydock_netsim::features::Feature;
use drydock_netsim::link;
use futures::future::BoxFuture;
use ipnetwork::IpNetwork;
use netlink_packet_route::link::LinkMessage;
use rtnetlink::{LinkIpVlan, LinkMacVlan, RouteMessageBuilder};

use super::bridge::elect_mac;
use super::parent::{self, MadeParent, errno, go_strerror};
use super::{
    Capabilities, Driver, DriverError, Interface, JoinInfo, NetworkInfo, NetworkRequest,
    configure_interface, ipvlan, macvlan, netlink_error,
};
use crate::datapath::ipvlan::Port;
use crate::firewall;

/// Option: the parent link on the docker host.
pub(crate) const PARENT: &str = "parent";

/// Which driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Macvlan,
    Ipvlan,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Macvlan => macvlan::NAME,
            Kind::Ipvlan => ipvlan::NAME,
        }
    }

    /// Prefix of the isolated parent of a network without `-o parent`.
    fn dummy_prefix(self) -> &'static str {
        match self {
            Kind::Macvlan => "dm-",
            Kind::Ipvlan => "di-",
        }
    }
}

/// How a network's endpoints are made.
#[derive(Debug, Clone)]
enum Links {
    Macvlan(macvlan::Mode),
    KernelIpvlan(ipvlan::Mode),
    UserspaceIpvlan(ipvlan::Mode, Arc<Port>),
}

impl Links {
    /// Routed ipvlan (l3, l3s).
    fn routed(&self) -> bool {
        match self {
            Links::Macvlan(_) => false,
            Links::KernelIpvlan(mode) | Links::UserspaceIpvlan(mode, _) => mode.routed(),
        }
    }

    /// The userspace datapath its endpoints use, if any.
    fn userspace(&self) -> Option<&'static str> {
        match self {
            Links::Macvlan(_) | Links::KernelIpvlan(..) => None,
            Links::UserspaceIpvlan(..) => Some(
                "userspace ipvlan (TAP endpoints sharing the parent MAC, AF_PACKET demux by IP)",
            ),
        }
    }
}

/// A network.
#[derive(Debug)]
struct Network {
    /// The parent link's name.
    parent: String,
    /// No gateway for its endpoints (`--internal`, or no `-o parent`).
    internal: bool,
    /// Each subnet's gateway with the subnet's prefix.
    gateways: Vec<IpNetwork>,
    links: Links,
    /// The parent, when the driver made it.
    made: Option<MadeParent>,
}

/// An endpoint.
#[derive(Debug, Clone)]
struct Endpoint {
    /// Its MAC address (macvlan); ipvlan endpoints have the parent's.
    mac: Option<[u8; 6]>,
    addresses: Vec<IpNetwork>,
    /// The sandbox and the interface's name there, while joined.
    joined: Option<(Netns, String)>,
}

/// Networks and endpoints by id.
#[derive(Debug, Default)]
struct State {
    networks: BTreeMap<String, Network>,
    endpoints: BTreeMap<String, Endpoint>,
}

/// The macvlan or ipvlan driver of one docker host.
#[derive(Debug)]
pub(crate) struct Sublink {
    kind: Kind,
    host: Netns,
    state: Mutex<State>,
    /// Served as a plugin: endpoints' links are left without addresses (dockerd gives them).
    staging: bool,
}

impl Sublink {
    /// The driver `kind` for the docker host `host`, without networks.
    pub(crate) fn new(kind: Kind, host: Netns) -> Self {
        Self {
            kind,
            host,
            state: Mutex::default(),
            staging: false,
        }
    }

    /// The driver served as a plugin in `host`: an endpoint's link is made in the docker host
    /// itself, up, without addresses or routes, for dockerd to move into the container.
    pub(crate) fn staging(kind: Kind, host: Netns) -> Self {
        Self {
            staging: true,
            ..Self::new(kind, host)
        }
    }

    /// Its state; held for no longer than a statement, never across an await.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn netlink(&self) -> Result<drydock_netsim::netns::Netlink, DriverError> {
        self.host
            .netlink()
            .map_err(DriverError::io("open netlink in the docker host"))
    }

    /// The options of a network, checked before anything is made.
    fn parse(&self, request: &NetworkRequest) -> Result<Links, DriverError> {
        let option = |key: &str| request.options.get(key).map_or("", String::as_str);
        Ok(match self.kind {
            Kind::Macvlan => Links::Macvlan(macvlan::Mode::parse(option(macvlan::MODE))?),
            Kind::Ipvlan => Links::KernelIpvlan(ipvlan::Mode::parse(option(ipvlan::MODE))?),
        })
    }

    /// The datapath of an ipvlan network on `parent`: kernel links where the kernel has them,
    /// else a userspace port, its parent guarded.
    async fn ipvlan_links(
        &self,
        nl: &rtnetlink::Handle,
        parent: &str,
        mode: ipvlan::Mode,
        subnets: &[IpNetwork],
    ) -> Result<Links, DriverError> {
        if !Feature::Ipvlan.forced_absent() && kernel_has_ipvlan(nl, parent).await {
            return Ok(Links::KernelIpvlan(mode));
        }
        let port = Port::start(&self.host, parent, mode.userspace())
            .await
            .map_err(DriverError::io("start the userspace ipvlan port"))?;
        firewall::guard_parent(&self.host, parent, port.mac(), subnets)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        Ok(Links::UserspaceIpvlan(mode, Arc::new(port)))
    }
}

impl Driver for Sublink {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }

    fn create_network<'a>(
        &'a self,
        request: &'a NetworkRequest,
    ) -> BoxFuture<'a, Result<NetworkInfo, DriverError>> {
        Box::pin(async move {
            super::check_ipv4_pool(request)?;
            let mut links = self.parse(request)?;
            let mut parent = request.options.get(PARENT).cloned().unwrap_or_default();
            if parent == "lo" {
                return Err(DriverError::Refused(format!(
                    "loopback interface is not a valid {} parent link",
                    self.kind.name()
                )));
            }
            let mut internal = request.internal;
            let prefix = self.kind.dummy_prefix();
            if parent.is_empty() {
                // No parent and --internal are the same: an isolated network.
                parent = format!("{prefix}{}", &request.id[..12]);
                internal = true;
            }
            if let Some((other, _)) = self
                .state()
                .networks
                .iter()
                .find(|(_, n)| n.parent == parent)
            {
                return Err(DriverError::Refused(format!(
                    "network {prefix}{} is already using parent interface {parent}",
                    &other[..12]
                )));
            }
            let nl = self.netlink()?;
            let made = parent::make(&self.host, &nl, &parent, internal, self.kind.name()).await;
            let made = match made {
                Ok(made) => made,
                Err(e) => {
                    nl.close().await;
                    return Err(e);
                }
            };
            if let Links::KernelIpvlan(mode) = links {
                let subnets: Vec<IpNetwork> = request.pools.iter().map(|p| p.subnet).collect();
                let chosen = self.ipvlan_links(&nl, &parent, mode, &subnets).await;
                match chosen {
                    Ok(chosen) => links = chosen,
                    Err(e) => {
                        nl.close().await;
                        // Nothing half-made stays: the port (if any) is gone, so is the parent.
                        if let Some(made) = made {
                            let _ = parent::delete(&self.host, &parent, made).await;
                        }
                        return Err(e);
                    }
                }
            }
            nl.close().await;
            // Shown only where drydock's own datapath stands in for the kernel's links.
            let userspace: Vec<&str> = [
                links.userspace(),
                made.as_ref().and_then(MadeParent::datapath),
            ]
            .into_iter()
            .flatten()
            .collect();
            let datapath = (!userspace.is_empty()).then(|| userspace.join("; "));
            let network = Network {
                parent,
                internal,
                gateways: request.pools.iter().filter_map(|p| p.gateway).collect(),
                links,
                made,
            };
            self.state().networks.insert(request.id.clone(), network);
            Ok(NetworkInfo {
                datapath,
                ..NetworkInfo::default()
            })
        })
    }

    fn delete_network<'a>(&'a self, network: &'a str) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let Some(removed) = self.state().networks.remove(network) else {
                return Ok(());
            };
            let mut result = Ok(());
            if let Links::UserspaceIpvlan(_, port) = removed.links {
                // The port's thread stops and its descriptors close here.
                drop(port);
                result = firewall::unguard_parent(&self.host, &removed.parent)
                    .map_err(|e| DriverError::Refused(e.to_string()));
            }
            if let Some(made) = removed.made {
                parent::delete(&self.host, &removed.parent, made).await?;
            }
            result
        })
    }

    fn create_endpoint<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        interface: &'a Interface,
    ) -> BoxFuture<'a, Result<Option<[u8; 6]>, DriverError>> {
        Box::pin(async move {
            if !self.state().networks.contains_key(network) {
                return Err(DriverError::Refused(format!(
                    "network id {network} not found"
                )));
            }
            let mac = match self.kind {
                Kind::Macvlan => Some(elect_mac(interface)),
                Kind::Ipvlan if interface.mac.is_some() => {
                    return Err(DriverError::Refused(
                        "ipvlan interfaces do not support custom mac address assignment".into(),
                    ));
                }
                Kind::Ipvlan => None,
            };
            if !interface.addresses.iter().any(IpNetwork::is_ipv4) {
                return Err(DriverError::Refused(
                    "create endpoint was not passed an IP address".into(),
                ));
            }
            self.state().endpoints.insert(
                endpoint.to_string(),
                Endpoint {
                    mac,
                    addresses: interface.addresses.clone(),
                    joined: None,
                },
            );
            Ok(mac)
        })
    }

    fn delete_endpoint<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            self.leave(network, endpoint).await?;
            self.state().endpoints.remove(endpoint);
            Ok(())
        })
    }

    fn join<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        sandbox: &'a Netns,
        ifname: &'a str,
    ) -> BoxFuture<'a, Result<JoinInfo, DriverError>> {
        Box::pin(async move {
            let (parent, internal, gateways, links) = {
                let state = self.state();
                let n = state.networks.get(network).ok_or_else(|| {
                    DriverError::Refused(format!("network id {network} not found"))
                })?;
                (
                    n.parent.clone(),
                    n.internal,
                    n.gateways.clone(),
                    n.links.clone(),
                )
            };
            let ep = self
                .state()
                .endpoints
                .get(endpoint)
                .cloned()
                .ok_or_else(|| {
                    DriverError::Refused(format!("could not find endpoint with id {endpoint}"))
                })?;
            let kind = self.kind.name();
            let mut addresses = ep.addresses.clone();
            match &links {
                Links::Macvlan(mode) => {
                    let mac = ep.mac.unwrap_or_default();
                    self.add_in_sandbox(&parent, |index| {
                        LinkMacVlan::new(ifname, index, mode.kernel())
                            .setns_by_fd(sandbox.as_fd().as_raw_fd())
                            .address(mac.to_vec())
                            .build()
                    })
                    .await?;
                }
                Links::KernelIpvlan(mode) => {
                    self.add_in_sandbox(&parent, |index| {
                        LinkIpVlan::new(ifname, index, mode.kernel())
                            .setns_by_fd(sandbox.as_fd().as_raw_fd())
                            .build()
                    })
                    .await?;
                }
                Links::UserspaceIpvlan(_, port) => {
                    let ips = ep.addresses.iter().map(IpNetwork::ip).collect();
                    let link_local = port.plug(endpoint, sandbox, ifname, ips).await;
                    let link_local = link_local.map_err(|e| {
                        DriverError::Refused(format!("failed to create the {kind} port: {e}"))
                    })?;
                    if let Some(address) = link_local {
                        let network = IpNetwork::new(address.into(), 64).expect("a /64 prefix");
                        addresses.push(network);
                    }
                }
            }
            if let Some(e) = self.state().endpoints.get_mut(endpoint) {
                e.joined = Some((sandbox.clone(), ifname.to_string()));
            }
            let what = format!("{kind} {ifname}");
            if self.staging {
                addresses.clear();
            }
            let mut configured = configure_interface(sandbox, ifname, &addresses, &what).await;
            if configured.is_ok() && links.routed() && !internal && !self.staging {
                configured = connected_default_routes(sandbox, ifname, &ep.addresses).await;
            }
            if let Err(e) = configured {
                let _ = self.leave(network, endpoint).await;
                return Err(e);
            }
            if links.routed() {
                // Routed ipvlan: `default dev ethN`, and no gateway (libnetwork
                // `DisableGatewayService`); on an internal network neither.
                return Ok(JoinInfo {
                    interface: Some(ifname.to_string()),
                    disable_gateway_service: !internal,
                    ..JoinInfo::default()
                });
            }
            Ok(parent::gateways(ifname, &ep.addresses, &gateways, internal))
        })
    }

    fn leave<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let joined = self
                .state()
                .endpoints
                .get_mut(endpoint)
                .and_then(|e| e.joined.take());
            let links = self.state().networks.get(network).map(|n| n.links.clone());
            if let Some(Links::UserspaceIpvlan(_, port)) = links {
                port.unplug(endpoint);
            }
            match joined {
                Some((sandbox, ifname)) => {
                    parent::delete_in(&sandbox, &ifname, self.kind.name()).await
                }
                None => Ok(()),
            }
        })
    }
}

impl Sublink {
    /// Adds the kernel sub-link `build(parent's index)` (made in the sandbox), with Docker's
    /// text when the kernel refuses it.
    async fn add_in_sandbox(
        &self,
        parent: &str,
        build: impl FnOnce(u32) -> LinkMessage,
    ) -> Result<(), DriverError> {
        let nl = self.netlink()?;
        let Ok(parent_index) = link::index(&nl, parent).await else {
            nl.close().await;
            return Err(DriverError::Refused(format!(
                "the requested parent interface {parent} was not found on the Docker host"
            )));
        };
        let added = nl.link().add(build(parent_index)).execute().await;
        nl.close().await;
        added.map_err(|e| {
            DriverError::Refused(format!(
                "failed to create the {} port: {}",
                self.kind.name(),
                go_strerror(errno(&e))
            ))
        })
    }
}

/// Whether the kernel makes ipvlan links on `parent`: one is made and deleted at once.
async fn kernel_has_ipvlan(nl: &rtnetlink::Handle, parent: &str) -> bool {
    let Ok(index) = link::index(nl, parent).await else {
        return false;
    };
    let probe = format!("ddprobe{:08x}", fastrand::u32(..));
    let added = nl
        .link()
        .add(LinkIpVlan::new(&probe, index, ipvlan::Mode::L2.kernel()).build())
        .execute()
        .await;
    if let Err(e) = added {
        return errno(&e) != libc::EOPNOTSUPP;
    }
    if let Ok(made) = link::index(nl, &probe).await {
        let _ = nl.link().del(made).execute().await;
    }
    true
}

/// `default dev IFNAME` for each family the endpoint has an address of (ipvlan l3: the
/// container routes everything through its link, which has no ARP).
async fn connected_default_routes(
    sandbox: &Netns,
    ifname: &str,
    addresses: &[IpNetwork],
) -> Result<(), DriverError> {
    let nl = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let result = async {
        let index = link::index(&nl, ifname)
            .await
            .map_err(netlink_error(format!("ipvlan {ifname}")))?;
        let mut routes = Vec::new();
        if addresses.iter().any(IpNetwork::is_ipv4) {
            routes.push(
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .output_interface(index)
                    .build(),
            );
        }
        if addresses.iter().any(IpNetwork::is_ipv6) {
            routes.push(
                RouteMessageBuilder::<Ipv6Addr>::new()
                    .output_interface(index)
                    .build(),
            );
        }
        for route in routes {
            nl.route()
                .add(route)
                .execute()
                .await
                .map_err(netlink_error(format!("default dev {ifname}")))?;
        }
        Ok(())
    }
    .await;
    nl.close().await;
    result
}
