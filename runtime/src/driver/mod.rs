//! Network drivers behind the [`Driver`] trait, libnetwork's driver API (`driverapi.Driver`):
//! `bridge` plugs containers into a Linux bridge of the docker host; `macvlan` and `ipvlan`
//! (one driver, `sublink.rs`) give each a sub-link of a parent interface of the docker host (a
//! kernel link, or a port of the userspace ipvlan datapath); `host` shares the docker host's
//! namespace; `null` (the `none` network) gives a namespace with only `lo`.
//!
//! The engine keeps what is engine-level (IPAM, firewall, published ports, DNS, files, Docker's
//! texts) and calls a driver for the datapath only: links, addresses, routes. Drivers receive
//! namespaces and never enter one themselves: netlink sockets are opened inside through
//! [`Netns`].

pub(crate) mod bridge;
pub(crate) mod ipvlan;
pub(crate) mod macvlan;
pub(crate) mod overlay;
pub(crate) mod parent;
pub(crate) mod special;
pub(crate) mod sublink;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use drydock_netsim::Netns;
use drydock_netsim::link;
use drydock_netsim::netns::write_sysctl;
use futures::future::BoxFuture;
use ipnetwork::IpNetwork;
use rtnetlink::LinkUnspec;

/// A network driver, as libnetwork's `driverapi.Driver`. Networks and endpoints are named by
/// the engine's ids; a driver keeps whatever it needs of them between calls.
///
/// Object-safe, so that an engine holds drivers as `Arc<dyn Driver>` by name, as it will find
/// remote plugins by name at run time. Its methods return [`BoxFuture`]s (from `futures`, which
/// the runtime already uses) rather than going through `async-trait`: the boxing is the same,
/// without a proc macro to build, and the borrows each future holds are written out.
pub trait Driver: std::fmt::Debug + Send + Sync {
    /// Its name: `docker network create -d NAME`, `Driver` in inspect (libnetwork `Type`).
    fn name(&self) -> &str;

    /// What it declares of itself when it registers.
    fn capabilities(&self) -> Capabilities;

    /// Creates the network's datapath.
    fn create_network<'a>(
        &'a self,
        request: &'a NetworkRequest,
    ) -> BoxFuture<'a, Result<NetworkInfo, DriverError>>;

    /// Deletes network `network` (its endpoints are gone).
    fn delete_network<'a>(&'a self, network: &'a str) -> BoxFuture<'a, Result<(), DriverError>>;

    /// Creates endpoint `endpoint` of `network` with the engine's addresses; returns the MAC
    /// address of its interface (the one given, or the driver's choice), `None` without one.
    fn create_endpoint<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        interface: &'a Interface,
    ) -> BoxFuture<'a, Result<Option<[u8; 6]>, DriverError>>;

    /// Deletes an endpoint (after it left its sandbox).
    fn delete_endpoint<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>>;

    /// Puts the endpoint in `sandbox`: its interface, if it has one, named `ifname` there
    /// (the sandbox's next `ethN`), with its addresses, up.
    fn join<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        sandbox: &'a Netns,
        ifname: &'a str,
    ) -> BoxFuture<'a, Result<JoinInfo, DriverError>>;

    /// Takes the endpoint out of its sandbox.
    fn leave<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>>;

    /// Told of this node in a swarm, at `address` (libnetwork's `DiscoverNew` of
    /// `NodeDiscovery` about itself): when the driver registers on a node of a swarm, and when
    /// the node joins one while a driver of global connectivity is registered. A failure is
    /// only logged, as dockerd does. Nothing for the built-ins (overlay learns its peers from
    /// the control plane).
    fn node_discovered<'a>(&'a self, _address: IpAddr) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Asked after a container joined the endpoint, as dockerd asks for the port map a
    /// container shows (libnetwork `EndpointOperInfo`); a refusal fails the join. Nothing to
    /// ask of the built-ins (their port maps are the engine's).
    fn endpoint_oper_info<'a>(
        &'a self,
        _network: &'a str,
        _endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async { Ok(()) })
    }

    /// Called when the endpoint becomes its sandbox's gateway endpoint on a non-internal
    /// network, before the engine publishes the container's ports through it. Nothing to do
    /// for the built-ins (published ports are the engine's: its userland proxy and firewall;
    /// macvlan has none, Docker only logs that it ignores `-p`); remote plugins are told.
    fn program_external_connectivity<'a>(
        &'a self,
        _network: &'a str,
        _endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async { Ok(()) })
    }

    /// Called when the endpoint stops being its sandbox's gateway endpoint, after the engine
    /// withdrew the container's published ports. Nothing to do for the built-ins.
    fn revoke_external_connectivity<'a>(
        &'a self,
        _network: &'a str,
        _endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async { Ok(()) })
    }
}

/// libnetwork's built-in drivers' first check of a new network: an IPv4 pool, and not the null
/// IPAM's `0.0.0.0/0`.
pub(crate) fn check_ipv4_pool(request: &NetworkRequest) -> Result<(), DriverError> {
    match request.pools.iter().find(|p| p.subnet.is_ipv4()) {
        Some(pool) if pool.subnet.prefix() > 0 => Ok(()),
        _ => Err(DriverError::Refused("ipv4 pool is empty".into())),
    }
}

/// The built-in drivers of an engine on the docker host `host`.
pub(crate) fn builtins(host: &Netns) -> Vec<Arc<dyn Driver>> {
    vec![
        Arc::new(bridge::Bridge::new(host.clone())),
        Arc::new(sublink::Sublink::new(sublink::Kind::Macvlan, host.clone())),
        Arc::new(sublink::Sublink::new(sublink::Kind::Ipvlan, host.clone())),
        Arc::new(special::Special::host()),
        Arc::new(special::Special::null()),
    ]
}

/// How far a driver's state or connectivity reaches (libnetwork's `local` and `global`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One docker host.
    Local,
    /// Several docker hosts, through a cluster store.
    Global,
}

impl Scope {
    /// As inspect shows it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

/// What a driver declares of itself (libnetwork `driverapi.Capability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Where its networks' state lives; `Scope` in network inspect.
    pub data_scope: Scope,
    /// How far its networks reach.
    pub connectivity_scope: Scope,
}

impl Capabilities {
    /// One docker host for both.
    pub const LOCAL: Capabilities = Capabilities {
        data_scope: Scope::Local,
        connectivity_scope: Scope::Local,
    };
}

/// A network to create (libnetwork `CreateNetwork`'s arguments).
#[derive(Debug, Clone)]
pub struct NetworkRequest {
    /// The network's id.
    pub id: String,
    /// Its options (`-o`), as given.
    pub options: std::collections::BTreeMap<String, String>,
    /// Its IPAM pools, IPv4 first; none for host and null.
    pub pools: Vec<IpamData>,
    /// The address space of those pools as their IPAM names it (`LocalDefault`, `null`...),
    /// which a remote driver is told.
    pub address_space: String,
    /// `--internal` (libnetwork passes it to drivers as `netlabel.Internal`).
    pub internal: bool,
    /// `--ipv6` (`netlabel.EnableIPv6`).
    pub ipv6: bool,
}

/// One IPAM pool of a network (libnetwork `IPAMData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpamData {
    /// The subnet.
    pub subnet: IpNetwork,
    /// The gateway address, with the subnet's prefix.
    pub gateway: Option<IpNetwork>,
}

/// What a driver made of a network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The Linux bridge on the docker host that carries the network, which the engine's
    /// firewall filters (isolation, ICC, masquerade, published ports).
    pub bridge: Option<String>,
    /// What carries its traffic, when the driver has a choice (kernel links or a userspace
    /// datapath); the engine shows it as the network's `drydock.datapath` option.
    pub datapath: Option<String>,
}

/// An endpoint's interface as the engine asks for it (libnetwork `InterfaceInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// Addresses from the engine's IPAM, with their subnet's prefix, IPv4 first.
    pub addresses: Vec<IpNetwork>,
    /// `--mac-address`, when given.
    pub mac: Option<[u8; 6]>,
}

/// What a join gives the engine (libnetwork `JoinInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinInfo {
    /// The interface the driver put in the sandbox (by its name there), if any.
    pub interface: Option<String>,
    /// The IPv4 gateway the sandbox's default route may go through.
    pub gateway4: Option<Ipv4Addr>,
    /// The IPv6 gateway the sandbox's default route may go through.
    pub gateway6: Option<Ipv6Addr>,
    /// The endpoint must not be the sandbox's gateway endpoint (no default route, no published
    /// ports through it) even with gateways (libnetwork `DisableGatewayService`).
    pub disable_gateway_service: bool,
}

/// A driver's failure.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The kernel refused a netlink request.
    #[error("{what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        source: rtnetlink::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The request cannot be done, with Docker's message.
    #[error("{0}")]
    Refused(String),
}

impl DriverError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(what: &str) -> impl FnOnce(io::Error) -> DriverError + '_ {
        move |source| DriverError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// Wraps a netlink error with what was being done.
pub(crate) fn netlink_error(
    what: impl Into<String>,
) -> impl FnOnce(rtnetlink::Error) -> DriverError {
    let what = what.into();
    move |source| DriverError::Netlink { what, source }
}

/// Adds `address` to link `index` (named `ifname`, for errors); IPv6 ones skip duplicate
/// address detection, as Docker's do, so that they are usable at once.
pub(crate) async fn add_address(
    nl: &rtnetlink::Handle,
    index: u32,
    address: IpNetwork,
    ifname: &str,
) -> Result<(), DriverError> {
    link::add_address(nl, index, address)
        .await
        .map_err(netlink_error(format!("address {address} on {ifname}")))
}

/// Adds an endpoint's link-local addresses (`--link-local-ip`) to its interface `ifname` in the
/// sandbox, as libnetwork's sandbox does whatever the driver.
pub(crate) async fn add_link_local(
    sandbox: &Netns,
    ifname: &str,
    addresses: &[IpNetwork],
) -> Result<(), DriverError> {
    let inner = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let result = async {
        let index = (link::index(&inner, ifname).await).map_err(netlink_error(ifname))?;
        for address in addresses {
            add_address(&inner, index, *address, ifname).await?;
        }
        Ok(())
    }
    .await;
    inner.close().await;
    result
}

/// Configures an endpoint's interface `ifname` inside the sandbox: IPv6 off unless it has an
/// IPv6 address (like Docker), its addresses, up. `what` names the interface in errors.
pub(crate) async fn configure_interface(
    sandbox: &Netns,
    ifname: &str,
    addresses: &[IpNetwork],
    what: &str,
) -> Result<(), DriverError> {
    let ipv6 = addresses.iter().any(IpNetwork::is_ipv6);
    let key = format!("net/ipv6/conf/{ifname}/disable_ipv6");
    sandbox
        .run(move || write_sysctl(&key, if ipv6 { "0" } else { "1" }))
        .map_err(DriverError::io("enter the sandbox"))?
        .map_err(DriverError::io("disable_ipv6"))?;
    let inner = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let result = async {
        let index = link::index(&inner, ifname)
            .await
            .map_err(netlink_error(what))?;
        for address in addresses {
            add_address(&inner, index, *address, ifname).await?;
        }
        inner
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(netlink_error(what))
    }
    .await;
    inner.close().await;
    result
}
