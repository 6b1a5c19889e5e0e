//! The macvlan driver (libnetwork `drivers/macvlan`, as in Docker 20.10): a network sits on a
//! parent link of the docker host (`-o parent=eth0`); each endpoint is a macvlan link of that
//! parent, made straight into the container's namespace as its `ethN`, with the MAC address
//! Docker elects (`02:42` + the IPv4 address). There is no Linux bridge, so the engine's bridge
//! firewall has nothing to filter, and the docker host cannot reach its own containers through
//! the parent (the kernel does not hand frames between a macvlan and its parent).
//!
//! Parents the driver makes, and deletes with the network: `-o parent=eth0.N` (an 802.1Q
//! sub-interface of eth0, as Docker; where the kernel has no 8021q the network is refused, since
//! drydock's userspace VLAN datapath is not built yet), and, without `-o parent`, the dummy link
//! `dm-<id12>` that isolates the network on the docker host. Where the kernel has no dummy links
//! (or `DRYDOCK_FORCE_ABSENT` names `dummy`), the stand-in is a veth end named `dm-<id12>` whose
//! peer is in a hidden namespace the driver holds: nothing else is on that wire either.
//!
//! Netlink only; no process is spawned on any path.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use drydock_netsim::Netns;
use drydock_netsim::features::FORCE_ABSENT_VAR;
use drydock_netsim::lab::link_index;
use drydock_netsim::netns::Netlink;
use futures::future::BoxFuture;
use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoVeth, MacVlanMode};
use rtnetlink::{LinkDummy, LinkMacVlan, LinkUnspec, LinkVeth, LinkVlan};

use super::bridge::elect_mac;
use super::{
    Capabilities, Driver, DriverError, Interface, JoinInfo, NetworkInfo, NetworkRequest,
    configure_interface, netlink_error,
};

/// The driver's name.
pub(crate) const NAME: &str = "macvlan";
/// Option: the parent link on the docker host.
pub(crate) const PARENT: &str = "parent";
/// Option: the macvlan mode.
pub(crate) const MODE: &str = "macvlan_mode";
/// Prefix of the dummy parent of a network without `-o parent`.
const DUMMY_PREFIX: &str = "dm-";

/// A macvlan mode (`-o macvlan_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

impl Mode {
    /// Parses `-o macvlan_mode` as Docker does: empty is `bridge`.
    pub(crate) fn parse(text: &str) -> Result<Mode, DriverError> {
        match text {
            "" | "bridge" => Ok(Mode::Bridge),
            "private" => Ok(Mode::Private),
            "vepa" => Ok(Mode::Vepa),
            "passthru" => Ok(Mode::Passthru),
            other => Err(DriverError::Refused(format!(
                "requested macvlan mode '{other}' is not valid, 'bridge' mode is the macvlan driver default"
            ))),
        }
    }

    fn kernel(self) -> MacVlanMode {
        match self {
            Mode::Bridge => MacVlanMode::Bridge,
            Mode::Private => MacVlanMode::Private,
            Mode::Vepa => MacVlanMode::Vepa,
            Mode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// A parent link the driver made for a network, deleted with it.
#[derive(Debug)]
enum MadeParent {
    /// A dummy link.
    Dummy,
    /// An 802.1Q sub-interface.
    Vlan,
    /// A veth end standing in for a dummy link; its peer is in a hidden namespace, held here
    /// until the network goes.
    StandIn {
        /// The hidden namespace.
        _peer: Netns,
    },
}

/// A macvlan network.
#[derive(Debug)]
struct MacvlanNetwork {
    /// The parent link's name.
    parent: String,
    mode: Mode,
    /// No gateway for its endpoints (`--internal`, or no `-o parent`).
    internal: bool,
    /// Each subnet's gateway with the subnet's prefix.
    gateways: Vec<IpNetwork>,
    /// The parent, when the driver made it.
    made: Option<MadeParent>,
}

/// An endpoint of a macvlan network.
#[derive(Debug, Clone)]
struct MacvlanEndpoint {
    mac: [u8; 6],
    addresses: Vec<IpNetwork>,
    /// The sandbox and the interface's name there, while joined.
    joined: Option<(Netns, String)>,
}

/// Networks and endpoints by id.
#[derive(Debug, Default)]
struct State {
    networks: BTreeMap<String, MacvlanNetwork>,
    endpoints: BTreeMap<String, MacvlanEndpoint>,
}

/// The macvlan driver of one docker host.
#[derive(Debug)]
pub(crate) struct Macvlan {
    host: Netns,
    state: Mutex<State>,
}

impl Macvlan {
    /// The driver for the docker host `host`, without networks.
    pub(crate) fn new(host: Netns) -> Self {
        Self {
            host,
            state: Mutex::default(),
        }
    }

    /// Its state; held for no longer than a statement, never across an await.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn netlink(&self) -> Result<Netlink, DriverError> {
        self.host
            .netlink()
            .map_err(DriverError::io("open netlink in the docker host"))
    }

    /// Makes the parent `parent` of network `id` when it does not exist (Docker's
    /// `createNetwork`): a dummy link for an isolated network, else an 802.1Q sub-interface.
    async fn make_parent(
        &self,
        nl: &rtnetlink::Handle,
        parent: &str,
        dummy: bool,
    ) -> Result<Option<MadeParent>, DriverError> {
        if link_index(nl, parent).await.is_ok() {
            return Ok(None);
        }
        if dummy {
            return make_dummy(nl, parent).await.map(Some);
        }
        let Some((master, vid)) = parse_vlan(parent)? else {
            return Err(DriverError::Refused(format!(
                "invalid subinterface vlan name {parent}, example formatting is eth0.10"
            )));
        };
        let Ok(master_index) = link_index(nl, master).await else {
            return Err(DriverError::Refused(format!(
                "-o parent interface does was not found on the host: {master}"
            )));
        };
        if !(1..=4094).contains(&vid) {
            return Err(DriverError::Refused(format!(
                "vlan id must be between 1-4094, received: {vid}"
            )));
        }
        let vid = u16::try_from(vid).expect("a VLAN id in 1-4094");
        let added = if forced_absent("8021q") {
            Err(libc::EOPNOTSUPP)
        } else {
            nl.link()
                .add(LinkVlan::new(parent, master_index, vid).up().build())
                .execute()
                .await
                .map_err(|e| errno(&e))
        };
        match added {
            Ok(()) => Ok(Some(MadeParent::Vlan)),
            Err(code) if code == libc::EOPNOTSUPP => Err(DriverError::Refused(format!(
                "failed to create {parent} vlan link: {} (this kernel has no 802.1Q support \
                 (8021q), and drydock's userspace VLAN datapath is not built yet)",
                go_strerror(code)
            ))),
            Err(code) => Err(DriverError::Refused(format!(
                "failed to create {parent} vlan link: {}",
                go_strerror(code)
            ))),
        }
    }
}

impl Driver for Macvlan {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }

    fn create_network<'a>(
        &'a self,
        request: &'a NetworkRequest,
    ) -> BoxFuture<'a, Result<NetworkInfo, DriverError>> {
        Box::pin(async move {
            let mode = Mode::parse(request.options.get(MODE).map_or("", String::as_str))?;
            let mut parent = request.options.get(PARENT).cloned().unwrap_or_default();
            if parent == "lo" {
                return Err(DriverError::Refused(
                    "loopback interface is not a valid macvlan parent link".into(),
                ));
            }
            let mut internal = request.internal;
            let own = format!("{DUMMY_PREFIX}{}", &request.id[..12]);
            if parent.is_empty() {
                // No parent and --internal are the same: an isolated network.
                parent = own;
                internal = true;
            }
            if let Some((other, _)) = self
                .state()
                .networks
                .iter()
                .find(|(_, n)| n.parent == parent)
            {
                return Err(DriverError::Refused(format!(
                    "network {DUMMY_PREFIX}{} is already using parent interface {parent}",
                    &other[..12]
                )));
            }
            let nl = self.netlink()?;
            let made = self.make_parent(&nl, &parent, internal).await;
            nl.close().await;
            let network = MacvlanNetwork {
                parent,
                mode,
                internal,
                gateways: request.pools.iter().filter_map(|p| p.gateway).collect(),
                made: made?,
            };
            self.state().networks.insert(request.id.clone(), network);
            Ok(NetworkInfo::default())
        })
    }

    fn delete_network<'a>(&'a self, network: &'a str) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let removed = self.state().networks.remove(network);
            let Some(MacvlanNetwork {
                parent,
                made: Some(made),
                ..
            }) = removed
            else {
                return Ok(());
            };
            let nl = self.netlink()?;
            let deleted = match link_index(&nl, &parent).await {
                Ok(index) => nl
                    .link()
                    .del(index)
                    .execute()
                    .await
                    .map_err(netlink_error(format!("delete parent {parent}"))),
                Err(_) => Ok(()),
            };
            nl.close().await;
            // A stand-in's hidden namespace goes with `made`.
            drop(made);
            deleted
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
            if !interface.addresses.iter().any(IpNetwork::is_ipv4) {
                return Err(DriverError::Refused(
                    "create endpoint was not passed an IP address".into(),
                ));
            }
            let mac = elect_mac(interface);
            self.state().endpoints.insert(
                endpoint.to_string(),
                MacvlanEndpoint {
                    mac,
                    addresses: interface.addresses.clone(),
                    joined: None,
                },
            );
            Ok(Some(mac))
        })
    }

    fn delete_endpoint<'a>(
        &'a self,
        _network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let removed = self.state().endpoints.remove(endpoint);
            if let Some((sandbox, ifname)) = removed.and_then(|e| e.joined) {
                delete_in(&sandbox, &ifname).await?;
            }
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
            let (parent, mode, internal, gateways) = {
                let state = self.state();
                let n = state.networks.get(network).ok_or_else(|| {
                    DriverError::Refused(format!("network id {network} not found"))
                })?;
                (n.parent.clone(), n.mode, n.internal, n.gateways.clone())
            };
            let ep = self
                .state()
                .endpoints
                .get(endpoint)
                .cloned()
                .ok_or_else(|| {
                    DriverError::Refused(format!("could not find endpoint with id {endpoint}"))
                })?;
            plug(&self.host, sandbox, &parent, mode, &ep, ifname).await?;
            if let Some(e) = self.state().endpoints.get_mut(endpoint) {
                e.joined = Some((sandbox.clone(), ifname.to_string()));
            }
            let mut info = JoinInfo {
                interface: Some(ifname.to_string()),
                ..JoinInfo::default()
            };
            if !internal {
                // The gateway of the subnet the endpoint's address is in (libnetwork
                // `getSubnetforIPv4`): a macvlan network may have several.
                for address in &ep.addresses {
                    let gateway = gateways.iter().find(|g| {
                        g.prefix() == address.prefix() && g.network() == address.network()
                    });
                    match gateway.map(IpNetwork::ip) {
                        Some(IpAddr::V4(v4)) => info.gateway4 = Some(v4),
                        Some(IpAddr::V6(v6)) => info.gateway6 = Some(v6),
                        None => {}
                    }
                }
            }
            Ok(info)
        })
    }

    fn leave<'a>(
        &'a self,
        _network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let joined = self
                .state()
                .endpoints
                .get_mut(endpoint)
                .and_then(|e| e.joined.take());
            match joined {
                Some((sandbox, ifname)) => delete_in(&sandbox, &ifname).await,
                None => Ok(()),
            }
        })
    }
}

/// Whether `DRYDOCK_FORCE_ABSENT` names `feature`.
fn forced_absent(feature: &str) -> bool {
    std::env::var(FORCE_ABSENT_VAR).is_ok_and(|v| v.split(',').any(|name| name.trim() == feature))
}

/// A dummy link named `name`, up; where the kernel has none, a veth end standing in for it.
async fn make_dummy(nl: &rtnetlink::Handle, name: &str) -> Result<MadeParent, DriverError> {
    let added = if forced_absent("dummy") {
        Err(libc::EOPNOTSUPP)
    } else {
        nl.link()
            .add(LinkDummy::new(name).up().build())
            .execute()
            .await
            .map_err(|e| errno(&e))
    };
    match added {
        Ok(()) => return Ok(MadeParent::Dummy),
        Err(code) if code == libc::EOPNOTSUPP => {}
        Err(code) => return Err(DriverError::Refused(go_strerror(code))),
    }
    let hidden = Netns::new().map_err(DriverError::io("create the stand-in's namespace"))?;
    let what = format!("stand-in parent {name}");
    let peer = LinkUnspec::new_with_name("eth0")
        .setns_by_fd(hidden.as_fd().as_raw_fd())
        .build();
    nl.link()
        .add(
            LinkVeth::new(name, "eth0")
                .up()
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .build(),
        )
        .execute()
        .await
        .map_err(netlink_error(&what))?;
    let inner = hidden
        .netlink()
        .map_err(DriverError::io("open netlink in the stand-in's namespace"))?;
    let up = inner
        .link()
        .set(LinkUnspec::new_with_name("eth0").up().build())
        .execute()
        .await
        .map_err(netlink_error(&what));
    inner.close().await;
    if let Err(e) = up {
        if let Ok(index) = link_index(nl, name).await {
            let _ = nl.link().del(index).execute().await;
        }
        return Err(e);
    }
    Ok(MadeParent::StandIn { _peer: hidden })
}

/// `eth0.10` as (`eth0`, 10); `None` for a name without a dot; Docker's texts for the rest.
fn parse_vlan(name: &str) -> Result<Option<(&str, i64)>, DriverError> {
    if !name.contains('.') {
        return Ok(None);
    }
    let parts: Vec<&str> = name.split('.').collect();
    let [master, vid] = parts[..] else {
        return Err(DriverError::Refused(format!(
            "required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received {name}"
        )));
    };
    let vid: i64 = vid.parse().map_err(|_| {
        DriverError::Refused(format!(
            "unable to parse a valid vlan id from: {vid} (ex. eth0.10 for vlan 10)"
        ))
    })?;
    Ok(Some((master, vid)))
}

/// The errno of a netlink error (EIO when it has none).
fn errno(error: &rtnetlink::Error) -> i32 {
    match error {
        rtnetlink::Error::NetlinkError(message) => {
            message.code.map_or(libc::EIO, |code| -code.get())
        }
        _ => libc::EIO,
    }
}

/// An errno as Go's `syscall.Errno` prints it: glibc's text, lowercase first letter
/// (`operation not supported`).
fn go_strerror(code: i32) -> String {
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// Plugs an endpoint: a macvlan link of `parent`, made in the sandbox as `ifname`, with its MAC
/// address and addresses, up.
async fn plug(
    host: &Netns,
    sandbox: &Netns,
    parent: &str,
    mode: Mode,
    endpoint: &MacvlanEndpoint,
    ifname: &str,
) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let Ok(parent_index) = link_index(&nl, parent).await else {
        nl.close().await;
        return Err(DriverError::Refused(format!(
            "the requested parent interface {parent} was not found on the Docker host"
        )));
    };
    let link = LinkMacVlan::new(ifname, parent_index, mode.kernel())
        .setns_by_fd(sandbox.as_fd().as_raw_fd())
        .address(endpoint.mac.to_vec())
        .build();
    let added = nl.link().add(link).execute().await;
    nl.close().await;
    added.map_err(|e| {
        DriverError::Refused(format!(
            "failed to create the macvlan port: {}",
            go_strerror(errno(&e))
        ))
    })?;
    let configured = configure_interface(
        sandbox,
        ifname,
        &endpoint.addresses,
        &format!("macvlan {ifname}"),
    )
    .await;
    if configured.is_err() {
        let _ = delete_in(sandbox, ifname).await;
    }
    configured
}

/// Deletes link `ifname` of the sandbox, if it is there.
async fn delete_in(sandbox: &Netns, ifname: &str) -> Result<(), DriverError> {
    let inner = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let result = match link_index(&inner, ifname).await {
        Ok(index) => inner
            .link()
            .del(index)
            .execute()
            .await
            .map_err(netlink_error(format!("delete macvlan {ifname}"))),
        Err(_) => Ok(()),
    };
    inner.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_docker_does() {
        assert_eq!(Mode::parse("").unwrap(), Mode::Bridge);
        assert_eq!(Mode::parse("passthru").unwrap(), Mode::Passthru);
        assert_eq!(
            Mode::parse("foo").unwrap_err().to_string(),
            "requested macvlan mode 'foo' is not valid, 'bridge' mode is the macvlan driver default"
        );
    }

    #[test]
    fn vlan_names_parse_as_docker_does() {
        assert_eq!(parse_vlan("eth0").unwrap(), None);
        assert_eq!(parse_vlan("eth0.10").unwrap(), Some(("eth0", 10)));
        assert_eq!(
            parse_vlan("eth0.1.2").unwrap_err().to_string(),
            "required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received eth0.1.2"
        );
        assert_eq!(
            parse_vlan("eth0.x").unwrap_err().to_string(),
            "unable to parse a valid vlan id from: x (ex. eth0.10 for vlan 10)"
        );
    }

    #[test]
    fn errnos_read_as_go_prints_them() {
        assert_eq!(go_strerror(libc::EOPNOTSUPP), "operation not supported");
        assert_eq!(go_strerror(libc::EEXIST), "file exists");
    }
}
