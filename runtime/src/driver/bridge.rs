//! The bridge driver: a Linux bridge per network in the docker host's namespace, a veth pair per
//! endpoint with its container end (`ethN`) in the container's namespace. Netlink only: no
//! process is spawned on any path.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use drydock_netsim::Netns;
use drydock_netsim::link;
use drydock_netsim::netns::write_sysctl;
use futures::future::BoxFuture;
use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth};

use super::{
    Capabilities, Driver, DriverError, Interface, JoinInfo, NetworkInfo, NetworkRequest,
    add_address, configure_interface, netlink_error,
};

/// The driver's name.
pub(crate) const NAME: &str = "bridge";
/// Option: the Linux bridge's name (`br-<id12>` without it).
pub(crate) const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Option: the MTU of the bridge and of every endpoint.
pub(crate) const MTU: &str = "com.docker.network.driver.mtu";
const DEFAULT_MTU: u32 = 1500;

/// The bridge driver of one docker host.
#[derive(Debug)]
pub(crate) struct Bridge {
    host: Netns,
    state: Mutex<State>,
    /// Served as a plugin: endpoints' links are left without addresses (dockerd gives them).
    staging: bool,
}

/// Networks and endpoints by id.
#[derive(Debug, Default)]
struct State {
    networks: BTreeMap<String, BridgeNetwork>,
    endpoints: BTreeMap<String, BridgeEndpoint>,
}

/// A bridge network (the overlay driver's bridges, in their own namespaces, are ones too).
#[derive(Debug, Clone)]
pub(super) struct BridgeNetwork {
    /// Linux bridge name (`br-<id12>`, `docker0`, or the name option).
    pub(super) bridge: String,
    /// The bridge's addresses: each subnet's gateway with the subnet's prefix.
    pub(super) gateways: Vec<IpNetwork>,
    /// MTU of the bridge and of every endpoint.
    pub(super) mtu: u32,
}

/// An endpoint of a bridge network.
#[derive(Debug, Clone)]
pub(super) struct BridgeEndpoint {
    /// Host-side veth name (`veth` + 7 hex digits).
    pub(super) host_ifname: String,
    /// MAC address.
    pub(super) mac: [u8; 6],
    /// Addresses with their subnet prefix.
    pub(super) addresses: Vec<IpNetwork>,
}

impl BridgeEndpoint {
    /// A new endpoint for `interface`: its elected MAC, a host-side veth named as Docker names
    /// them (`veth` and 7 random hex digits).
    pub(super) fn new(interface: &Interface) -> Self {
        Self {
            host_ifname: format!("veth{:07x}", fastrand::u32(..0x1000_0000)),
            mac: elect_mac(interface),
            addresses: interface.addresses.clone(),
        }
    }
}

impl Bridge {
    /// The driver for the docker host `host`, without networks.
    pub(crate) fn new(host: Netns) -> Self {
        Self {
            host,
            state: Mutex::default(),
            staging: false,
        }
    }

    /// The driver served as a plugin in `host`: an endpoint's link joins the docker host
    /// itself, up, without addresses, for dockerd to move into the container and address.
    pub(crate) fn staging(host: Netns) -> Self {
        Self {
            staging: true,
            ..Self::new(host)
        }
    }

    /// Its state; held for no longer than a statement, never across an await.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of network `id`.
    fn network(&self, id: &str) -> Result<BridgeNetwork, DriverError> {
        self.state()
            .networks
            .get(id)
            .cloned()
            .ok_or_else(|| DriverError::Refused(format!("network {id} does not exist")))
    }

    /// A copy of endpoint `id`.
    fn endpoint(&self, id: &str) -> Result<BridgeEndpoint, DriverError> {
        self.state()
            .endpoints
            .get(id)
            .cloned()
            .ok_or_else(|| DriverError::Refused(format!("endpoint {id} does not exist")))
    }
}

impl Driver for Bridge {
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
            let network = self.configure(request)?;
            create_bridge(&self.host, &network).await?;
            let bridge = network.bridge.clone();
            self.state().networks.insert(request.id.clone(), network);
            Ok(NetworkInfo {
                bridge: Some(bridge),
                datapath: None,
            })
        })
    }

    fn delete_network<'a>(&'a self, network: &'a str) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let removed = self.state().networks.remove(network);
            match removed {
                Some(removed) => delete_bridge(&self.host, &removed).await,
                None => Ok(()),
            }
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

    fn join<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        sandbox: &'a Netns,
        ifname: &'a str,
    ) -> BoxFuture<'a, Result<JoinInfo, DriverError>> {
        Box::pin(async move {
            let network = self.network(network)?;
            let mut endpoint = self.endpoint(endpoint)?;
            if self.staging {
                endpoint.addresses.clear();
            }
            plug(&self.host, sandbox, &network, &endpoint, ifname).await?;
            let mut info = JoinInfo {
                interface: Some(ifname.to_string()),
                ..JoinInfo::default()
            };
            for gateway in &network.gateways {
                match gateway.ip() {
                    IpAddr::V4(v4) => info.gateway4 = Some(v4),
                    IpAddr::V6(v6) => info.gateway6 = Some(v6),
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
            let endpoint = self.endpoint(endpoint)?;
            unplug(&self.host, &endpoint).await
        })
    }
}

impl Bridge {
    /// The network `request` asks for, with Docker's checks of its options and bridge name.
    fn configure(&self, request: &NetworkRequest) -> Result<BridgeNetwork, DriverError> {
        super::check_ipv4_pool(request)?;
        let mtu = match request.options.get(MTU) {
            None => DEFAULT_MTU,
            Some(v) => v.parse().map_err(|_| {
                DriverError::Refused(format!("failed to parse {MTU} value: {v} (strconv.Atoi: parsing \"{v}\": invalid syntax)"))
            })?,
        };
        let bridge = request
            .options
            .get(BRIDGE_NAME)
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &request.id[..12]));
        if let Some((other, _)) = self
            .state()
            .networks
            .iter()
            .find(|(_, n)| n.bridge == bridge)
        {
            return Err(DriverError::Refused(format!(
                "cannot create network {} ({bridge}): conflicts with network {other} ({bridge}): networks have same bridge name",
                request.id
            )));
        }
        Ok(BridgeNetwork {
            bridge,
            gateways: request.pools.iter().filter_map(|p| p.gateway).collect(),
            mtu,
        })
    }
}

/// The endpoint's MAC address: the one given, else Docker 20.10's `02:42` followed by the IPv4
/// address (libnetwork `electMacAddress`).
pub(crate) fn elect_mac(interface: &Interface) -> [u8; 6] {
    interface.mac.unwrap_or_else(|| {
        let ip4 = interface.addresses.iter().find_map(|a| match a {
            IpNetwork::V4(v4) => Some(v4.ip().octets()),
            IpNetwork::V6(_) => None,
        });
        let [a, b, c, d] = ip4.unwrap_or_default();
        [0x02, 0x42, a, b, c, d]
    })
}

/// Creates the bridge with its gateway addresses, up.
pub(super) async fn create_bridge(
    host: &Netns,
    network: &BridgeNetwork,
) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let what = format!("create bridge {}", network.bridge);
    if link::index(&nl, &network.bridge).await.is_ok() {
        return Err(DriverError::Refused(format!(
            "cannot create network: a link named {} already exists on the host",
            network.bridge
        )));
    }
    nl.link()
        .add(LinkBridge::new(&network.bridge).mtu(network.mtu).build())
        .execute()
        .await
        .map_err(netlink_error(&what))?;
    let index = link::index(&nl, &network.bridge)
        .await
        .map_err(netlink_error(&what))?;
    if network.gateways.iter().any(IpNetwork::is_ipv6) {
        // The host may start interfaces without IPv6 (a lab host without an IPv6 underlay).
        let key = format!("net/ipv6/conf/{}/disable_ipv6", network.bridge);
        host.run(move || write_sysctl(&key, "0"))
            .map_err(DriverError::io("enter the docker host"))?
            .map_err(DriverError::io("enable IPv6 on the bridge"))?;
    }
    for gateway in &network.gateways {
        add_address(&nl, index, *gateway, &network.bridge).await?;
    }
    nl.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(netlink_error(&what))?;
    nl.close().await;
    Ok(())
}

/// Deletes the bridge (its ports must be gone).
async fn delete_bridge(host: &Netns, network: &BridgeNetwork) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let what = format!("delete bridge {}", network.bridge);
    if let Ok(index) = link::index(&nl, &network.bridge).await {
        nl.link()
            .del(index)
            .execute()
            .await
            .map_err(netlink_error(what))?;
    }
    nl.close().await;
    Ok(())
}

/// Plugs an endpoint: a veth pair, the host end on the bridge, the container end (`ifname`)
/// configured inside the sandbox. Returns once the pair and the bridge send.
pub(super) async fn plug(
    host: &Netns,
    sandbox: &Netns,
    network: &BridgeNetwork,
    endpoint: &BridgeEndpoint,
    ifname: &str,
) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let what = format!("veth {} for {ifname}", endpoint.host_ifname);
    let bridge = link::index(&nl, &network.bridge)
        .await
        .map_err(netlink_error(&what))?;
    let peer = LinkUnspec::new_with_name(ifname)
        .setns_by_fd(sandbox.as_fd().as_raw_fd())
        .address(endpoint.mac.to_vec())
        .mtu(network.mtu)
        .build();
    let veth = LinkVeth::new(&endpoint.host_ifname, ifname)
        .mtu(network.mtu)
        .controller(bridge)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    nl.link()
        .add(veth)
        .execute()
        .await
        .map_err(netlink_error(&what))?;
    nl.close().await;

    configure_interface(sandbox, ifname, &endpoint.addresses, &what).await?;
    // The host end came up first, without carrier: setting the container end up gave it one
    // (and the bridge too, with its first port), but the kernel activates their queues later,
    // on its linkwatch work; until then they drop what they send. The bridge's ARP reply to the
    // container's first packet was lost so, and that packet waited for ARP's retry a second
    // later: a DNS query nothing listens for got its ICMP port unreachable after a probe's
    // one-second timeout. Asking the kernel about each link does that work at once (see
    // `wait_until_up`): the endpoint sends from the moment `docker run` returns.
    all_up(host, &[&endpoint.host_ifname, &network.bridge]).await?;
    all_up(sandbox, &[ifname]).await
}

/// Waits until every link of `links` in `netns` is UP (and so sends).
async fn all_up(netns: &Netns, links: &[&str]) -> Result<(), DriverError> {
    let nl = netns.netlink().map_err(DriverError::io("open netlink"))?;
    let mut result = Ok(());
    for name in links {
        result = link::wait_until_up(&nl, name)
            .await
            .map_err(DriverError::io(&format!("{name} up")));
        if result.is_err() {
            break;
        }
    }
    nl.close().await;
    result
}

/// Unplugs an endpoint: deleting the host end deletes the pair.
pub(super) async fn unplug(host: &Netns, endpoint: &BridgeEndpoint) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    if let Ok(index) = link::index(&nl, &endpoint.host_ifname).await {
        nl.link()
            .del(index)
            .execute()
            .await
            .map_err(netlink_error(format!(
                "delete veth {}",
                endpoint.host_ifname
            )))?;
    }
    nl.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_elected_as_docker_does() {
        let interface = |addresses: &[&str], mac| Interface {
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            mac,
        };
        assert_eq!(
            elect_mac(&interface(&["172.18.0.2/16", "fd00::2/64"], None)),
            [2, 0x42, 172, 18, 0, 2]
        );
        assert_eq!(
            elect_mac(&interface(&["fd00::2/64"], None)),
            [2, 0x42, 0, 0, 0, 0]
        );
        let given = [2, 0, 0, 0, 0, 9];
        assert_eq!(
            elect_mac(&interface(&["172.18.0.2/16"], Some(given))),
            given
        );
    }
}
