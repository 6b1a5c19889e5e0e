//! The overlay driver, as libnetwork's: per network and node, a namespace of its own (the
//! overlay sandbox) holding a bridge `br0` with the network's gateway address and a VXLAN device
//! `vxlan0` (UDP 4789, no learning, `proxy l2miss l3miss`) plugged into it; per endpoint a veth
//! pair from the bridge to the container's `ethN`. The VXLAN device is made in the docker host's
//! namespace and moved in, so that its UDP socket stays the host's: VXLAN leaves by the host's
//! routes. Remote endpoints reach it as static forwarding entries (MAC to node) and permanent
//! neighbours (IP to MAC), programmed by [`Overlay::peer_add`] from the control plane: nothing is
//! learned. Netlink only.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use drydock_netsim::features::Feature;
use drydock_netsim::{Netns, link};
use futures::future::BoxFuture;
use netlink_packet_route::neighbour::{NeighbourFlags, NeighbourMessage, NeighbourState};
use rtnetlink::{LinkUnspec, LinkVxlan};

use super::bridge::{self, BridgeEndpoint, BridgeNetwork};
use super::parent::errno;
use super::{
    Capabilities, Driver, DriverError, Interface, JoinInfo, NetworkInfo, NetworkRequest, Scope,
    netlink_error,
};

/// The driver's name.
pub(crate) const NAME: &str = "overlay";
/// Option: the network's VNI, as the control plane allocated it (and inspect shows it).
pub(crate) const VXLAN_ID_LIST: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// VXLAN's UDP port (IANA), Docker's default data path port.
pub(crate) const VXLAN_PORT: u16 = 4789;
/// What VXLAN adds to a frame over IPv4: outer IPv4, UDP and VXLAN headers and the inner
/// Ethernet header.
const VXLAN_OVERHEAD: u32 = 50;
/// The underlay's MTU libnetwork assumes.
const UNDERLAY_MTU: u32 = 1500;

/// The overlay driver of one node.
#[derive(Debug)]
pub(crate) struct Overlay {
    host: Netns,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    networks: BTreeMap<String, OverlayNetwork>,
    endpoints: BTreeMap<String, BridgeEndpoint>,
}

/// A network on this node.
#[derive(Debug, Clone)]
struct OverlayNetwork {
    /// The overlay sandbox: `br0` and `vxlan0`.
    sandbox: Netns,
    /// `br0` with the gateway address; the MTU of every interface.
    bridge: BridgeNetwork,
}

/// A remote endpoint as the VXLAN device knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Its address.
    pub(crate) ip: IpAddr,
    /// Its MAC address.
    pub(crate) mac: [u8; 6],
    /// Its node's VXLAN endpoint.
    pub(crate) vtep: IpAddr,
}

impl Overlay {
    /// The driver for the node whose docker host is `host`.
    pub(crate) fn new(host: Netns) -> Self {
        Self {
            host,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn network(&self, id: &str) -> Result<OverlayNetwork, DriverError> {
        (self.state().networks.get(id).cloned())
            .ok_or_else(|| DriverError::Refused(format!("network {id} does not exist")))
    }

    /// The overlay sandbox of network `network` on this node (its `br0` and `vxlan0`).
    pub(crate) fn sandbox(&self, network: &str) -> Option<Netns> {
        self.state()
            .networks
            .get(network)
            .map(|n| n.sandbox.clone())
    }

    /// Makes `peer` reachable through network `network`'s VXLAN device: a forwarding entry for
    /// its MAC towards its node, a permanent neighbour for its address.
    /// A network without a datapath here (the swarm's ingress) has no peers to program.
    pub(crate) async fn peer_add(&self, network: &str, peer: Peer) -> Result<(), DriverError> {
        let Ok(network) = self.network(network) else {
            return Ok(());
        };
        let sandbox = network.sandbox;
        let nl = sandbox
            .netlink()
            .map_err(DriverError::io("open netlink in the overlay sandbox"))?;
        let result = async {
            let what = || format!("peer {} on vxlan0", peer.ip);
            let vxlan = link::index(&nl, VXLAN)
                .await
                .map_err(netlink_error(what()))?;
            let (fdb, neighbour) = peer_messages(vxlan, peer);
            let mut add = nl.neighbours().add_bridge(vxlan, &peer.mac).replace();
            *add.message_mut() = fdb;
            add.execute().await.map_err(netlink_error(what()))?;
            let mut add = nl.neighbours().add(vxlan, peer.ip).replace();
            *add.message_mut() = neighbour;
            add.execute().await.map_err(netlink_error(what()))
        }
        .await;
        nl.close().await;
        result
    }

    /// Forgets `peer` (best effort: a network already gone took its entries with it).
    pub(crate) async fn peer_delete(&self, network: &str, peer: Peer) -> Result<(), DriverError> {
        let Ok(network) = self.network(network) else {
            return Ok(());
        };
        let nl = (network.sandbox.netlink())
            .map_err(DriverError::io("open netlink in the overlay sandbox"))?;
        let result = async {
            let what = || format!("peer {} on vxlan0", peer.ip);
            let vxlan = link::index(&nl, VXLAN)
                .await
                .map_err(netlink_error(what()))?;
            let (fdb, neighbour) = peer_messages(vxlan, peer);
            for message in [neighbour, fdb] {
                if let Err(e) = nl.neighbours().del(message).execute().await {
                    tracing::debug!("{}: {e}", what());
                }
            }
            Ok(())
        }
        .await;
        nl.close().await;
        result
    }
}

/// The VXLAN device's name in the overlay sandbox (libnetwork's).
const VXLAN: &str = "vxlan0";

/// The messages of `bridge fdb add MAC dev vxlan0 dst VTEP self permanent` and `ip neigh add IP
/// lladdr MAC dev vxlan0 nud permanent`.
fn peer_messages(vxlan: u32, peer: Peer) -> (NeighbourMessage, NeighbourMessage) {
    use netlink_packet_route::AddressFamily;
    use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
    let address = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
        IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
    };
    let mut fdb = NeighbourMessage::default();
    fdb.header.family = AddressFamily::Bridge;
    fdb.header.ifindex = vxlan;
    fdb.header.state = NeighbourState::Permanent;
    fdb.header.flags = NeighbourFlags::Own;
    fdb.attributes = vec![
        NeighbourAttribute::LinkLayerAddress(peer.mac.to_vec()),
        NeighbourAttribute::Destination(address(peer.vtep)),
    ];
    let mut neighbour = NeighbourMessage::default();
    neighbour.header.family = match peer.ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    neighbour.header.ifindex = vxlan;
    neighbour.header.state = NeighbourState::Permanent;
    neighbour.attributes = vec![
        NeighbourAttribute::Destination(address(peer.ip)),
        NeighbourAttribute::LinkLayerAddress(peer.mac.to_vec()),
    ];
    (fdb, neighbour)
}

/// The MTU of a network's interfaces: the underlay's (the driver option, else 1500) less
/// VXLAN's overhead.
fn mtu(request: &NetworkRequest) -> Result<u32, DriverError> {
    let underlay = match request.options.get(bridge::MTU) {
        None => UNDERLAY_MTU,
        Some(v) => v.parse().map_err(|_| {
            DriverError::Refused(format!(
                "failed to parse {} value: {v} (strconv.Atoi: parsing \"{v}\": invalid syntax)",
                bridge::MTU
            ))
        })?,
    };
    Ok(underlay.saturating_sub(VXLAN_OVERHEAD))
}

/// The VNI the control plane gave a network.
fn vni(request: &NetworkRequest) -> Result<u32, DriverError> {
    let text = request.options.get(VXLAN_ID_LIST).map(String::as_str);
    text.and_then(|t| t.split(',').next()?.parse().ok())
        .ok_or_else(|| DriverError::Refused(format!("network {} has no VNI", request.id)))
}

/// The overlay's refusal where VXLAN is absent (`why`): its userspace datapath is not built.
fn no_vxlan(why: &str) -> DriverError {
    DriverError::Refused(format!(
        "overlay networks need VXLAN and {why}; drydock's userspace VXLAN datapath is not \
         built yet (see `drydock doctor`)"
    ))
}

/// Makes the overlay sandbox of a network: `br0` with its gateway, and `vxlan0` made in the
/// docker host (its socket stays there) then moved in and plugged into `br0`.
async fn create_sandbox(
    host: &Netns,
    id: &str,
    vni: u32,
    bridge: &BridgeNetwork,
) -> Result<Netns, DriverError> {
    if Feature::Vxlan.forced_absent() {
        return Err(no_vxlan("DRYDOCK_FORCE_ABSENT names vxlan"));
    }
    let sandbox = Netns::new().map_err(DriverError::io("make the overlay sandbox"))?;
    bridge::create_bridge(&sandbox, bridge).await?;
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    // Named as libnetwork names it in the host, while it is there.
    let name = format!("vx-{vni:06x}-{}", &id[..5]);
    let what = format!("vxlan {name} (VNI {vni})");
    let vxlan = LinkVxlan::new(&name, vni)
        .port(VXLAN_PORT)
        .learning(false)
        .proxy(true)
        .l2miss(true)
        .l3miss(true)
        .udp_csum(true)
        .mtu(bridge.mtu)
        .setns_by_fd(sandbox.as_fd().as_raw_fd())
        .build();
    let added = nl
        .link()
        .add(vxlan)
        .execute()
        .await
        .map_err(netlink_error(&what));
    nl.close().await;
    match added {
        Err(DriverError::Netlink { source, .. }) if errno(&source) == libc::EOPNOTSUPP => {
            return Err(no_vxlan("this kernel makes no vxlan link"));
        }
        added => added?,
    }
    let inner = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the overlay sandbox"))?;
    let result = async {
        let index = link::index(&inner, &name)
            .await
            .map_err(netlink_error(&what))?;
        let br0 = link::index(&inner, &bridge.bridge)
            .await
            .map_err(netlink_error(&what))?;
        let set = LinkUnspec::new_with_index(index)
            .name(VXLAN.to_string())
            .controller(br0)
            .up();
        // A VXLAN device has no carrier to wait for: its state stays UNKNOWN.
        inner
            .link()
            .set(set.build())
            .execute()
            .await
            .map_err(netlink_error(&what))
    }
    .await;
    inner.close().await;
    result.map(|()| sandbox)
}

impl Driver for Overlay {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            data_scope: Scope::Global,
            connectivity_scope: Scope::Global,
        }
    }

    fn create_network<'a>(
        &'a self,
        request: &'a NetworkRequest,
    ) -> BoxFuture<'a, Result<NetworkInfo, DriverError>> {
        Box::pin(async move {
            let bridge = BridgeNetwork {
                bridge: "br0".into(),
                gateways: request.pools.iter().filter_map(|p| p.gateway).collect(),
                mtu: mtu(request)?,
            };
            let sandbox = create_sandbox(&self.host, &request.id, vni(request)?, &bridge).await?;
            let network = OverlayNetwork { sandbox, bridge };
            self.state().networks.insert(request.id.clone(), network);
            Ok(NetworkInfo::default())
        })
    }

    /// Dropping the overlay sandbox takes `br0`, `vxlan0` and every entry with it.
    fn delete_network<'a>(&'a self, network: &'a str) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            self.state().networks.remove(network);
            Ok(())
        })
    }

    fn create_endpoint<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        interface: &'a Interface,
    ) -> BoxFuture<'a, Result<Option<[u8; 6]>, DriverError>> {
        Box::pin(async move {
            self.network(network)?;
            let made = BridgeEndpoint::new(interface);
            let mac = made.mac;
            self.state().endpoints.insert(endpoint.to_string(), made);
            Ok(Some(mac))
        })
    }

    fn delete_endpoint<'a>(
        &'a self,
        _network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            self.state().endpoints.remove(endpoint);
            Ok(())
        })
    }

    /// The container's end in its sandbox, the other on `br0`; no gateway: a container on an
    /// overlay leaves through `docker_gwbridge`.
    fn join<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        sandbox: &'a Netns,
        ifname: &'a str,
    ) -> BoxFuture<'a, Result<JoinInfo, DriverError>> {
        Box::pin(async move {
            let network = self.network(network)?;
            let endpoint = (self.state().endpoints.get(endpoint).cloned()).ok_or_else(|| {
                DriverError::Refused(format!("endpoint {endpoint} does not exist"))
            })?;
            bridge::plug(
                &network.sandbox,
                sandbox,
                &network.bridge,
                &endpoint,
                ifname,
            )
            .await?;
            Ok(JoinInfo {
                interface: Some(ifname.to_string()),
                ..JoinInfo::default()
            })
        })
    }

    fn leave<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let endpoint = self.state().endpoints.get(endpoint).cloned();
            match (self.network(network), endpoint) {
                (Ok(network), Some(endpoint)) => bridge::unplug(&network.sandbox, &endpoint).await,
                // The network's sandbox went, and the pair with it.
                _ => Ok(()),
            }
        })
    }
}
