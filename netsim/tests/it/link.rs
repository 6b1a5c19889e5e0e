//! The link helpers on a built lab: links, addresses and routes as `ip` shows them.

use drydock_netsim::link::{self, Link};
use drydock_netsim::{Lab, Topology};
use netlink_packet_route::link::State;

async fn three_hosts() -> Lab {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/labs/three-hosts.yaml");
    let topology = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Lab::build(topology)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

#[tokio::test]
async fn links_addresses_and_routes_read_like_ip() {
    if !crate::privileged() {
        return;
    }
    let lab = three_hosts().await;
    let (h1, r1) = (lab.host("h1").unwrap(), lab.host("r1").unwrap());

    let links = link::list(r1).await.unwrap();
    let eth1 = links
        .iter()
        .find(|l| l.name == "eth1")
        .expect("r1 has eth1");
    assert_eq!(
        (eth1.mtu, eth1.mac, eth1.state),
        (1500, Some([0x02, 0xd0, 10, 0, 2, 1]), State::Up)
    );
    let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["lo", "eth0", "eth1"]);

    let shown = link::show_addresses(r1).await.unwrap();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines,
        [
            "lo               UNKNOWN        127.0.0.1/8 ::1/128",
            "eth0             UP             10.0.1.1/24",
            "eth1             UP             10.0.2.1/24",
        ],
        "{shown}"
    );

    assert_eq!(
        link::routes(h1, false).await.unwrap(),
        ["default via 10.0.1.1 dev eth0", "10.0.1.0/24 dev eth0"]
    );
    link::add_route(
        h1,
        "10.9.0.0/16".parse().unwrap(),
        "10.0.1.1".parse().unwrap(),
    )
    .await
    .unwrap();
    let shown = link::show_routes(h1).await.unwrap();
    assert!(
        shown.contains("10.9.0.0/16 via 10.0.1.1 dev eth0\n"),
        "{shown}"
    );
    let refused = link::add_route(
        h1,
        "10.9.0.0/16".parse().unwrap(),
        "fd00::1".parse().unwrap(),
    )
    .await;
    assert!(refused.is_err(), "an IPv6 next hop for an IPv4 destination");
}

#[tokio::test]
async fn find_and_wait_until_up_name_the_link() {
    if !crate::privileged() {
        return;
    }
    let lab = three_hosts().await;
    let nl = lab.host("h1").unwrap().netlink().unwrap();
    let eth0: Link = link::find(&nl, "eth0").await.unwrap();
    assert_eq!(link::index(&nl, "eth0").await.unwrap(), eth0.index);
    link::wait_until_up(&nl, "eth0").await.unwrap();
    assert!(link::find(&nl, "eth9").await.is_err());
    let missing = link::wait_until_up(&nl, "eth9").await.unwrap_err();
    assert!(missing.to_string().contains("No such device"), "{missing}");
    nl.close().await;
}
