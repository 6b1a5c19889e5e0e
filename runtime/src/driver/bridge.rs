//! The bridge driver: a Linux bridge per network in the docker host's namespace, a veth pair per
//! endpoint with its container end (`ethN`) in the container's namespace. Netlink only: no
//! process is spawned on any path.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use drydock_netsim::Netns;
use drydock_netsim::lab::link_index;
use drydock_netsim::netns::write_sysctl;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::DriverError;

/// What the bridge driver needs to know of a network.
#[derive(Debug, Clone)]
pub(crate) struct BridgeNetwork {
    /// Linux bridge name (`br-<id12>`, `docker0`, or the name option).
    pub(crate) bridge: String,
    /// The bridge's addresses: each subnet's gateway with the subnet's prefix.
    pub(crate) gateways: Vec<IpNetwork>,
    /// MTU of the bridge and of every endpoint.
    pub(crate) mtu: u32,
}

/// What the bridge driver needs to know of an endpoint.
#[derive(Debug, Clone)]
pub(crate) struct BridgeEndpoint {
    /// Host-side veth name (`veth` + 7 hex digits).
    pub(crate) host_ifname: String,
    /// Name inside the container (`eth0`, `eth1`...).
    pub(crate) ifname: String,
    /// MAC address.
    pub(crate) mac: [u8; 6],
    /// Addresses with their subnet prefix.
    pub(crate) addresses: Vec<IpNetwork>,
    /// Default routes to install (the gateways, when this is the gateway endpoint).
    pub(crate) default_via: Vec<IpAddr>,
}

fn netlink_error(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> DriverError {
    let what = what.into();
    move |source| DriverError::Netlink { what, source }
}

/// Adds `address` to link `index` (named `ifname`, for errors); IPv6 ones skip duplicate
/// address detection, as Docker's do, so that they are usable at once.
async fn add_address(
    nl: &rtnetlink::Handle,
    index: u32,
    address: IpNetwork,
    ifname: &str,
) -> Result<(), DriverError> {
    let mut request = nl.address().add(index, address.ip(), address.prefix());
    if address.is_ipv6() {
        request
            .message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    request
        .execute()
        .await
        .map_err(netlink_error(format!("address {address} on {ifname}")))
}

/// Creates the bridge with its gateway addresses, up.
pub(crate) async fn create_network(
    host: &Netns,
    network: &BridgeNetwork,
) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let what = format!("create bridge {}", network.bridge);
    if link_index(&nl, &network.bridge).await.is_ok() {
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
    let index = link_index(&nl, &network.bridge)
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
pub(crate) async fn delete_network(
    host: &Netns,
    network: &BridgeNetwork,
) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let what = format!("delete bridge {}", network.bridge);
    if let Ok(index) = link_index(&nl, &network.bridge).await {
        nl.link()
            .del(index)
            .execute()
            .await
            .map_err(netlink_error(what))?;
    }
    nl.close().await;
    Ok(())
}

/// Plugs an endpoint: a veth pair, the host end on the bridge, the container end configured
/// inside the sandbox.
pub(crate) async fn join(
    host: &Netns,
    sandbox: &Netns,
    network: &BridgeNetwork,
    endpoint: &BridgeEndpoint,
) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let what = format!("veth {} for {}", endpoint.host_ifname, endpoint.ifname);
    let bridge = link_index(&nl, &network.bridge)
        .await
        .map_err(netlink_error(&what))?;
    let peer = LinkUnspec::new_with_name(&endpoint.ifname)
        .setns_by_fd(sandbox.as_fd().as_raw_fd())
        .address(endpoint.mac.to_vec())
        .mtu(network.mtu)
        .build();
    let veth = LinkVeth::new(&endpoint.host_ifname, &endpoint.ifname)
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

    let ipv6 = endpoint.addresses.iter().any(IpNetwork::is_ipv6);
    let ifname = endpoint.ifname.clone();
    sandbox
        .run(move || {
            // Like Docker, no IPv6 on an interface of a network without it.
            write_sysctl(
                &format!("net/ipv6/conf/{ifname}/disable_ipv6"),
                if ipv6 { "0" } else { "1" },
            )
        })
        .map_err(DriverError::io("enter the sandbox"))?
        .map_err(DriverError::io("disable_ipv6"))?;
    let inner = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let index = link_index(&inner, &endpoint.ifname)
        .await
        .map_err(netlink_error(&what))?;
    for address in &endpoint.addresses {
        add_address(&inner, index, *address, &endpoint.ifname).await?;
    }
    inner
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(netlink_error(&what))?;
    for gateway in &endpoint.default_via {
        add_default_route(&inner, *gateway).await?;
    }
    inner.close().await;
    Ok(())
}

/// Unplugs an endpoint: deleting the host end deletes the pair.
pub(crate) async fn leave(host: &Netns, endpoint: &BridgeEndpoint) -> Result<(), DriverError> {
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    if let Ok(index) = link_index(&nl, &endpoint.host_ifname).await {
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

/// Points the sandbox's default routes at `gateways` (replacing any), or removes them.
pub(crate) async fn set_default_routes(
    sandbox: &Netns,
    gateways: &[IpAddr],
) -> Result<(), DriverError> {
    let nl = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    for v6 in [false, true] {
        let message = if v6 {
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
        };
        // Deleting a default route that is not there is fine.
        let _ = nl.route().del(message).execute().await;
    }
    for gateway in gateways {
        add_default_route(&nl, *gateway).await?;
    }
    nl.close().await;
    Ok(())
}

async fn add_default_route(nl: &rtnetlink::Handle, gateway: IpAddr) -> Result<(), DriverError> {
    let message = match gateway {
        IpAddr::V4(gw) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .gateway(gw)
            .build(),
        IpAddr::V6(gw) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .gateway(gw)
            .build(),
    };
    nl.route()
        .add(message)
        .execute()
        .await
        .map_err(netlink_error(format!("default route via {gateway}")))
}
