//! Netlink readers of a namespace's links and routes (to be replaced by netsim's link module).

use drydock_netsim::Netns;
use futures::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;

/// A link of a namespace, as the checks see it.
pub(super) struct Link {
    pub(super) index: u32,
    pub(super) name: String,
    pub(super) mtu: u32,
}

/// Every link of a namespace.
pub(super) async fn links(netns: &Netns) -> Result<Vec<Link>, String> {
    let nl = netns.netlink().map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    let mut links = nl.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(|e| e.to_string())? {
        let name = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        });
        let mtu = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        });
        if let (Some(name), Some(mtu)) = (name, mtu) {
            found.push(Link {
                index: link.header.index,
                name,
                mtu,
            });
        }
    }
    drop(links);
    nl.close().await;
    Ok(found)
}

/// The routes of `netns`'s main IPv4 (or IPv6) table as `ip route` starts its lines: the type
/// when not unicast, the destination, the next hops: `default via 10.10.0.1 dev eth0`,
/// `default dev eth0`, `unreachable default`, `default nexthop via 10.0.0.1 dev eth0 nexthop ...`.
pub(super) async fn routes(netns: &Netns, ipv6: bool) -> Result<Vec<String>, String> {
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteType};
    let names: std::collections::BTreeMap<u32, String> = links(netns)
        .await?
        .into_iter()
        .map(|link| (link.index, link.name))
        .collect();
    let nl = netns.netlink().map_err(|e| e.to_string())?;
    let address = |a: &RouteAddress| match a {
        RouteAddress::Inet(v4) => v4.to_string(),
        RouteAddress::Inet6(v6) => v6.to_string(),
        other => format!("{other:?}"),
    };
    let hop = |attributes: &[RouteAttribute], oif: Option<u32>| {
        let mut text = String::new();
        for attribute in attributes {
            if let RouteAttribute::Gateway(a) = attribute {
                text += &format!(" via {}", address(a));
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
    };
    let request = if ipv6 {
        rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
    } else {
        rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
    };
    let mut lines = Vec::new();
    let mut routes = nl.route().get(request).execute();
    while let Some(route) = routes.try_next().await.map_err(|e| e.to_string())? {
        if route.header.table != 254 {
            continue;
        }
        let mut line = match route.header.kind {
            RouteType::Unicast => String::new(),
            kind => format!("{kind:?} ").to_lowercase(),
        };
        let destination = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(a) => Some(address(a)),
            _ => None,
        });
        line += &match destination {
            Some(a) => format!("{a}/{}", route.header.destination_prefix_length),
            None => "default".into(),
        };
        line += &hop(&route.attributes, None);
        for attribute in &route.attributes {
            if let RouteAttribute::MultiPath(hops) = attribute {
                for next in hops {
                    line += " nexthop";
                    line += &hop(&next.attributes, Some(next.interface_index));
                }
            }
        }
        lines.push(line);
    }
    drop(routes);
    nl.close().await;
    Ok(lines)
}

/// Adds the static route `destination via via` in a lab host's namespace.
pub(super) async fn add_route(
    netns: &drydock_netsim::Netns,
    destination: ipnetwork::IpNetwork,
    via: std::net::IpAddr,
) -> Result<(), String> {
    let message = rtnetlink::RouteMessageBuilder::<std::net::IpAddr>::new()
        .destination_prefix(destination.ip(), destination.prefix())
        .and_then(|b| b.gateway(via))
        .map_err(|e| e.to_string())?
        .build();
    let nl = netns.netlink().map_err(|e| e.to_string())?;
    let added = nl.route().add(message).execute().await;
    nl.close().await;
    added.map_err(|e| e.to_string())
}
