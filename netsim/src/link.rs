//! The small netlink helpers every crate needs: find a link, add an address or a route, wait
//! for a link to come up, and list a namespace's links, addresses and routes as `ip` shows
//! them (so that a failure dump needs no `ip` process).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoMacVlan, InfoVlan, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
    State,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::netns::Netns;

/// A link of a namespace, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MTU.
    pub mtu: u32,
    /// Ethernet address; `None` for links without one (an L3 TUN, for instance).
    pub mac: Option<[u8; 6]>,
    /// Operational state (`UP` once the kernel passes traffic on it).
    pub state: State,
    /// Its kind (`veth`, `bridge`, `macvlan`, `vxlan`...), when not a plain device.
    pub kind: Option<String>,
    /// What its kind says of it: a VLAN's id, a macvlan's or ipvlan's mode, a VXLAN's VNI.
    pub detail: Option<String>,
    /// The index of the bridge (or other controller) it is a port of.
    pub master: Option<u32>,
}

impl From<&LinkMessage> for Link {
    /// The link a message describes (the kernel always reports a name and an MTU).
    fn from(message: &LinkMessage) -> Self {
        let mut link = Link {
            index: message.header.index,
            name: String::new(),
            mtu: 0,
            mac: None,
            state: State::Unknown,
            kind: None,
            detail: None,
            master: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name.clone_from(name),
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                LinkAttribute::Address(mac) => link.mac = mac.as_slice().try_into().ok(),
                LinkAttribute::OperState(state) => link.state = *state,
                LinkAttribute::Controller(index) => link.master = Some(*index),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                            LinkInfo::Data(data) => link.detail = detail(data),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// What `ip -d link` says of a link's kind: `id 10`, `mode bridge`, `vni 4097`.
fn detail(data: &InfoData) -> Option<String> {
    match data {
        InfoData::Vlan(infos) => infos.iter().find_map(|i| match i {
            InfoVlan::Id(id) => Some(format!("id {id}")),
            _ => None,
        }),
        InfoData::MacVlan(infos) => infos.iter().find_map(|i| match i {
            InfoMacVlan::Mode(mode) => Some(format!("mode {mode:?}").to_lowercase()),
            _ => None,
        }),
        InfoData::IpVlan(infos) => infos.iter().find_map(|i| match i {
            InfoIpVlan::Mode(mode) => Some(format!("mode {mode:?}").to_lowercase()),
            _ => None,
        }),
        InfoData::Vxlan(infos) => infos.iter().find_map(|i| match i {
            InfoVxlan::Id(vni) => Some(format!("vni {vni}")),
            _ => None,
        }),
        _ => None,
    }
}

/// The link named `name` (the kernel answers ENODEV when there is none).
pub async fn find(handle: &Handle, name: &str) -> Result<Link, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    let message = links
        .try_next()
        .await?
        .ok_or(rtnetlink::Error::RequestFailed)?;
    Ok(Link::from(&message))
}

/// Index of the link named `name`.
pub async fn index(handle: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
    Ok(find(handle, name).await?.index)
}

/// Adds `address` to link `index`; an IPv6 one without duplicate address detection
/// (`nodad`), so that it is usable at once.
pub async fn add_address(
    handle: &Handle,
    index: u32,
    address: IpNetwork,
) -> Result<(), rtnetlink::Error> {
    let mut request = handle.address().add(index, address.ip(), address.prefix());
    if address.is_ipv6() {
        request
            .message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    request.execute().await
}

/// Waits (up to 5 s) until link `name` reports operational state UP.
///
/// A link whose carrier has just come on (a veth end whose peer was set up after it, a bridge
/// whose first port was just enabled) drops everything sent on it, its queue still the
/// kernel's noop qdisc, until the kernel's linkwatch work activates it: asynchronously, on a
/// workqueue, after the netlink request that set the link up has returned. Asking for the one
/// link (`RTM_GETLINK` by name, not a dump) makes the kernel (6.8 and later) run that pending
/// work at once, under RTNL (`rtnl_getlink` calls `linkwatch_sync_dev`); so there the first
/// answer already says UP and the link sends, and older kernels are polled until it does.
pub async fn wait_until_up(handle: &Handle, name: &str) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let link = find(handle, name).await.map_err(io::Error::other)?;
        if link.state == State::Up {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{name} is not up after 5 s"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Adds the static route `destination via via` to `netns`'s main table.
pub async fn add_route(netns: &Netns, destination: IpNetwork, via: IpAddr) -> io::Result<()> {
    let message = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(destination.ip(), destination.prefix())
        .and_then(|b| b.gateway(via))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
        .build();
    let nl = netns.netlink()?;
    let added = nl.route().add(message).execute().await;
    nl.close().await;
    added.map_err(io::Error::other)
}

/// Every link of `netns`, in index order.
pub async fn list(netns: &Netns) -> io::Result<Vec<Link>> {
    let nl = netns.netlink()?;
    let links: Result<Vec<LinkMessage>, _> = nl.link().get().execute().try_collect().await;
    nl.close().await;
    Ok(links
        .map_err(io::Error::other)?
        .iter()
        .map(Link::from)
        .collect())
}

/// Every address of `netns`, with the index of its link, as the kernel lists them.
pub async fn addresses(netns: &Netns) -> io::Result<Vec<(u32, IpNetwork)>> {
    let nl = netns.netlink()?;
    let messages: Result<Vec<AddressMessage>, _> = nl.address().get().execute().try_collect().await;
    nl.close().await;
    Ok(messages
        .map_err(io::Error::other)?
        .iter()
        .filter_map(address_of)
        .collect())
}

/// The address a message describes: its local address (IPv4) or address, with its prefix.
fn address_of(message: &AddressMessage) -> Option<(u32, IpNetwork)> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let ip = local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    let network = IpNetwork::new(ip, message.header.prefix_len).ok()?;
    Some((message.header.index, network))
}

/// `netns`'s links as `ip -d -br link` would: name, state, MAC, MTU, kind (with what it says of
/// the link) and the bridge it is a port of.
pub async fn show_links(netns: &Netns) -> io::Result<String> {
    Ok(detailed(&list(netns).await?))
}

/// One line per link: `eth0  UP  02:42:ac:11:00:02 mtu 1500 veth master docker0`.
fn detailed(links: &[Link]) -> String {
    let mut text = String::new();
    for link in links {
        let mut line = format!("{:<16} {:<14}", link.name, state_name(link.state));
        if let Some(mac) = link.mac {
            let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
            let _ = write!(line, " {}", mac.join(":"));
        }
        let _ = write!(line, " mtu {}", link.mtu);
        for word in [&link.kind, &link.detail].into_iter().flatten() {
            let _ = write!(line, " {word}");
        }
        if let Some(master) = link.master {
            let name = links
                .iter()
                .find(|l| l.index == master)
                .map(|l| l.name.clone());
            let _ = write!(
                line,
                " master {}",
                name.unwrap_or_else(|| master.to_string())
            );
        }
        text += &line;
        text.push('\n');
    }
    text
}

/// `netns`'s links and addresses as `ip -br addr` shows them: `eth0  UP  10.0.0.2/24 ...`.
pub async fn show_addresses(netns: &Netns) -> io::Result<String> {
    Ok(brief(&list(netns).await?, &addresses(netns).await?))
}

/// One line per link: name, operational state, addresses (columns as `ip -br addr`).
fn brief(links: &[Link], addresses: &[(u32, IpNetwork)]) -> String {
    let mut text = String::new();
    for link in links {
        let mut line = format!("{:<16} {:<14}", link.name, state_name(link.state));
        for (_, address) in addresses.iter().filter(|(i, _)| *i == link.index) {
            let _ = write!(line, " {address}");
        }
        text += line.trim_end();
        text.push('\n');
    }
    text
}

/// An operational state as `ip` writes it (`UP`, `DOWN`, `LOWERLAYERDOWN`...).
fn state_name(state: State) -> String {
    format!("{state:?}").to_uppercase()
}

/// `netns`'s IPv4 then IPv6 routes, one per line, as `ip route` and `ip -6 route` start them.
pub async fn show_routes(netns: &Netns) -> io::Result<String> {
    let mut text = String::new();
    for ipv6 in [false, true] {
        for line in routes(netns, ipv6).await? {
            text += &line;
            text.push('\n');
        }
    }
    Ok(text)
}

/// The routes of `netns`'s main IPv4 (or IPv6) table as `ip route` starts its lines: the type
/// when not unicast, the destination, the next hops: `default via 10.10.0.1 dev eth0`,
/// `default dev eth0`, `unreachable default`, `default nexthop via 10.0.0.1 dev eth0 nexthop ...`.
pub async fn routes(netns: &Netns, ipv6: bool) -> io::Result<Vec<String>> {
    let names: BTreeMap<u32, String> = list(netns)
        .await?
        .into_iter()
        .map(|link| (link.index, link.name))
        .collect();
    let request = if ipv6 {
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
    } else {
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
    };
    let nl = netns.netlink()?;
    let messages: Result<Vec<RouteMessage>, _> =
        nl.route().get(request).execute().try_collect().await;
    nl.close().await;
    Ok(messages
        .map_err(io::Error::other)?
        .iter()
        .filter(|route| route.header.table == MAIN_TABLE)
        .map(|route| route_line(route, &names))
        .collect())
}

/// The kernel's main routing table (`RT_TABLE_MAIN`), the one `ip route` shows.
const MAIN_TABLE: u8 = 254;

/// A route as `ip route` starts its line; `names` gives interface names by index.
fn route_line(route: &RouteMessage, names: &BTreeMap<u32, String>) -> String {
    let mut line = match route.header.kind {
        RouteType::Unicast => String::new(),
        kind => format!("{kind:?} ").to_lowercase(),
    };
    let destination = route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(a) => Some(route_address(a)),
        _ => None,
    });
    line += &match destination {
        Some(a) => format!("{a}/{}", route.header.destination_prefix_length),
        None => "default".into(),
    };
    line += &hop(&route.attributes, None, names);
    for attribute in &route.attributes {
        if let RouteAttribute::MultiPath(hops) = attribute {
            for next in hops {
                line += " nexthop";
                line += &hop(&next.attributes, Some(next.interface_index), names);
            }
        }
    }
    line
}

/// A next hop: ` via GATEWAY` and ` dev NAME` (from `oif`, else the attributes' output link).
fn hop(attributes: &[RouteAttribute], oif: Option<u32>, names: &BTreeMap<u32, String>) -> String {
    let mut text = String::new();
    for attribute in attributes {
        if let RouteAttribute::Gateway(a) = attribute {
            text += &format!(" via {}", route_address(a));
        }
    }
    let oif = oif.or_else(|| {
        attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(index) => Some(*index),
            _ => None,
        })
    });
    if let Some(index) = oif {
        let name = names
            .get(&index)
            .cloned()
            .unwrap_or_else(|| index.to_string());
        text += &format!(" dev {name}");
    }
    text
}

fn route_address(address: &RouteAddress) -> String {
    match address {
        RouteAddress::Inet(v4) => v4.to_string(),
        RouteAddress::Inet6(v6) => v6.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
