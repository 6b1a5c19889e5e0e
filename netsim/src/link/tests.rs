use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::RouteNextHop;

use super::*;

fn names() -> BTreeMap<u32, String> {
    BTreeMap::from([
        (1, "lo".to_string()),
        (2, "eth0".to_string()),
        (3, "eth1".to_string()),
    ])
}

fn v4(text: &str) -> RouteAddress {
    RouteAddress::Inet(text.parse::<Ipv4Addr>().unwrap())
}

fn route(
    kind: RouteType,
    destination: Option<(RouteAddress, u8)>,
    attributes: Vec<RouteAttribute>,
) -> RouteMessage {
    let mut route = RouteMessage::default();
    route.header.address_family = AddressFamily::Inet;
    route.header.table = MAIN_TABLE;
    route.header.kind = kind;
    if let Some((address, prefix)) = destination {
        route.header.destination_prefix_length = prefix;
        route.attributes.push(RouteAttribute::Destination(address));
    }
    route.attributes.extend(attributes);
    route
}

#[test]
fn routes_are_written_as_ip_route_starts_its_lines() {
    let cases = [
        (
            route(
                RouteType::Unicast,
                None,
                vec![
                    RouteAttribute::Gateway(v4("10.10.0.1")),
                    RouteAttribute::Oif(2),
                ],
            ),
            "default via 10.10.0.1 dev eth0",
        ),
        (
            route(RouteType::Unicast, None, vec![RouteAttribute::Oif(3)]),
            "default dev eth1",
        ),
        (
            route(RouteType::Unreachable, None, vec![]),
            "unreachable default",
        ),
        (
            route(
                RouteType::Unicast,
                Some((v4("172.18.0.0"), 16)),
                vec![RouteAttribute::Oif(2)],
            ),
            "172.18.0.0/16 dev eth0",
        ),
        (
            route(RouteType::BlackHole, Some((v4("10.9.0.0"), 16)), vec![]),
            "blackhole 10.9.0.0/16",
        ),
        (
            route(RouteType::Unicast, None, vec![RouteAttribute::Oif(9)]),
            "default dev 9",
        ),
    ];
    for (route, line) in cases {
        assert_eq!(route_line(&route, &names()), line);
    }
}

#[test]
fn multipath_routes_list_each_nexthop() {
    let hop = |gateway: &str, index| {
        let mut hop = RouteNextHop::default();
        hop.interface_index = index;
        hop.attributes = vec![RouteAttribute::Gateway(v4(gateway))];
        hop
    };
    let route = route(
        RouteType::Unicast,
        None,
        vec![RouteAttribute::MultiPath(vec![
            hop("10.0.0.1", 2),
            hop("10.0.1.1", 3),
        ])],
    );
    assert_eq!(
        route_line(&route, &names()),
        "default nexthop via 10.0.0.1 dev eth0 nexthop via 10.0.1.1 dev eth1"
    );
}

#[test]
fn ipv6_routes_show_their_prefix() {
    let mut route = route(
        RouteType::Unicast,
        Some((
            RouteAddress::Inet6("fd00:10::".parse::<Ipv6Addr>().unwrap()),
            64,
        )),
        vec![RouteAttribute::Oif(2)],
    );
    route.header.address_family = AddressFamily::Inet6;
    assert_eq!(route_line(&route, &names()), "fd00:10::/64 dev eth0");
}

#[test]
fn links_and_addresses_read_like_ip_brief_addr() {
    let link = |index, name: &str, state| Link {
        index,
        name: name.into(),
        mtu: 1500,
        mac: None,
        state,
        kind: None,
        detail: None,
        master: None,
    };
    let links = [
        link(1, "lo", State::Unknown),
        link(2, "eth0", State::Up),
        link(3, "eth1", State::LowerLayerDown),
    ];
    let addresses = [
        (1, "127.0.0.1/8".parse().unwrap()),
        (2, "10.0.0.2/24".parse().unwrap()),
        (1, "::1/128".parse().unwrap()),
        (2, "fe80::1/64".parse().unwrap()),
    ];
    assert_eq!(
        brief(&links, &addresses),
        "lo               UNKNOWN        127.0.0.1/8 ::1/128\n\
         eth0             UP             10.0.0.2/24 fe80::1/64\n\
         eth1             LOWERLAYERDOWN\n"
    );
}

#[test]
fn a_link_message_gives_name_mtu_mac_state_kind_and_master() {
    use netlink_packet_route::link::{InfoData, InfoKind, InfoVlan, LinkInfo};
    let mut message = LinkMessage::default();
    message.header.index = 7;
    message.attributes = vec![
        LinkAttribute::IfName("eth0.10".into()),
        LinkAttribute::Mtu(1450),
        LinkAttribute::Address(vec![2, 0xd0, 10, 0, 0, 2]),
        LinkAttribute::OperState(State::Up),
        LinkAttribute::Controller(3),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(10)])),
        ]),
    ];
    let link = Link::from(&message);
    assert_eq!(
        link,
        Link {
            index: 7,
            name: "eth0.10".into(),
            mtu: 1450,
            mac: Some([2, 0xd0, 10, 0, 0, 2]),
            state: State::Up,
            kind: Some("vlan".into()),
            detail: Some("id 10".into()),
            master: Some(3),
        }
    );
    let bridge = Link {
        index: 3,
        name: "br0".into(),
        mac: None,
        kind: Some("bridge".into()),
        detail: None,
        master: None,
        ..link.clone()
    };
    assert_eq!(
        detailed(&[link, bridge]),
        "eth0.10          UP             02:d0:0a:00:00:02 mtu 1450 vlan id 10 master br0\n\
         br0              UP             mtu 1450 bridge\n"
    );
}

#[test]
fn an_address_is_its_local_address_where_the_kernel_gives_one() {
    let mut message = AddressMessage::default();
    message.header.index = 2;
    message.header.prefix_len = 32;
    message.attributes = vec![
        AddressAttribute::Address("10.0.0.9".parse().unwrap()),
        AddressAttribute::Local("10.0.0.1".parse().unwrap()),
    ];
    assert_eq!(
        address_of(&message),
        Some((2, "10.0.0.1/32".parse().unwrap()))
    );
}
