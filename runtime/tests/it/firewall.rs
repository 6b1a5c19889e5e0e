//! Firewall tests: Docker 20.10's bridge-network rules proven on the wire.
//!
//! Each test builds a lab with a docker-like host `h1` (10.10.0.1, fd00:10::1) and an external
//! host `ext` (10.10.0.2, fd00:10::2) on one segment. In h1 it makes bridges and "containers"
//! (namespaces joined to a bridge by a veth pair, with an address and a default route via the
//! bridge), starts the [`Firewall`], and connects from namespace to namespace. Every listener
//! answers with the peer address it saw, so tests also prove what NAT did.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use drydock_netsim::link;
use drydock_netsim::netns::Netlink;
use drydock_netsim::{Lab, Netns, Topology};
use drydock_runtime::firewall::{Binding, Firewall, FirewallError, NetworkRules, Protocol};
use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where success is expected: generous, it is never waited out.
const OK: Duration = Duration::from_secs(3);
/// Where a drop is expected: short, it is always waited out.
const DROP: Duration = Duration::from_millis(300);

/// h1's and ext's addresses on the lab's segment.
const H1_V4: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
const EXT_V4: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 2);
const H1_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1);
const EXT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 2);
const H1: IpAddr = IpAddr::V4(H1_V4);
const EXT: IpAddr = IpAddr::V4(EXT_V4);
const H1_6: IpAddr = IpAddr::V6(H1_V6);
const EXT_6: IpAddr = IpAddr::V6(EXT_V6);

/// What a connection attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Connected; the listener saw this peer address.
    Reached(IpAddr),
    /// Actively refused (RST): the packet reached a host with nothing listening.
    Refused,
    /// No answer: the packet was dropped.
    TimedOut,
}

/// The lab, h1's firewall and netlink handle.
struct World {
    lab: Lab,
    firewall: Firewall,
    h1_nl: Netlink,
}

/// A network made in h1: its bridge (gateway addresses on it) and firewall rules.
struct Network {
    rules: NetworkRules,
}

impl World {
    async fn new() -> Self {
        let topology = Topology::builder("fw")
            .segment("lan", "10.10.0.0/24".parse().unwrap())
            .subnet6("fd00:10::/64".parse().unwrap())
            .host_at6("h1", H1_V4, H1_V6)
            .host_at6("ext", EXT_V4, EXT_V6)
            .build()
            .expect("topology");
        let lab = Lab::build(topology).await.expect("lab");
        let h1 = lab.host("h1").expect("h1");
        let firewall = Firewall::start(h1).expect("firewall starts");
        let h1_nl = h1.netlink().expect("h1 netlink");
        Self {
            lab,
            firewall,
            h1_nl,
        }
    }

    fn h1(&self) -> &Netns {
        self.lab.host("h1").expect("h1")
    }

    fn ext(&self) -> &Netns {
        self.lab.host("ext").expect("ext")
    }

    /// Makes bridge `bridge` with the first address of each subnet, and adds its rules.
    async fn network(
        &self,
        bridge: &str,
        subnets: &[&str],
        configure: impl FnOnce(&mut NetworkRules),
    ) -> Network {
        let subnets: Vec<IpNetwork> = subnets.iter().map(|s| s.parse().expect("subnet")).collect();
        let nl = &self.h1_nl;
        nl.link()
            .add(LinkBridge::new(bridge).up().build())
            .execute()
            .await
            .expect("bridge");
        let index = link::index(nl, bridge).await.expect("bridge index");
        for subnet in &subnets {
            add_address(nl, index, subnet, 1).await;
        }
        let mut rules = NetworkRules {
            bridge: bridge.into(),
            subnets,
            internal: false,
            icc: true,
            masquerade: true,
        };
        configure(&mut rules);
        self.firewall.add_network(&rules).expect("add network");
        Network { rules }
    }

    /// A container on `network` with host number `n` in each of its subnets, listening on
    /// TCP port 80 (every address).
    async fn container(&self, network: &Network, n: u32) -> Netns {
        let netns = Netns::new().expect("container namespace");
        let nl = &self.h1_nl;
        let bridge = link::index(nl, &network.rules.bridge)
            .await
            .expect("bridge index");
        let host_end = format!("v{}-{n}", network.rules.bridge);
        let peer = LinkUnspec::new_with_name("eth0")
            .setns_by_fd(netns.as_fd().as_raw_fd())
            .build();
        let veth = LinkVeth::new(&host_end, "eth0")
            .controller(bridge)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        nl.link().add(veth).execute().await.expect("veth");

        let cnl = netns.netlink().expect("container netlink");
        for name in ["lo", "eth0"] {
            cnl.link()
                .set(LinkUnspec::new_with_name(name).up().build())
                .execute()
                .await
                .expect("link up");
        }
        let eth0 = link::index(&cnl, "eth0").await.expect("eth0");
        for subnet in &network.rules.subnets {
            add_address(&cnl, eth0, subnet, n).await;
            let default = if subnet.is_ipv4() {
                "0.0.0.0/0"
            } else {
                "::/0"
            };
            link::add_route(&netns, default.parse().unwrap(), nth(subnet, 1))
                .await
                .expect("default route");
        }
        // Until the kernel reports both ends up it drops what is sent on them (a drop
        // expected by a test must not come from there).
        let ends = [
            (&cnl, "eth0"),
            (nl, host_end.as_str()),
            (nl, network.rules.bridge.as_str()),
        ];
        for (handle, name) in ends {
            link::wait_until_up(handle, name).await.expect("link up");
        }
        cnl.close().await;
        listen(&netns, 80);
        netns
    }

    /// Gives ext a route to `subnet` via h1, as a neighbour that tries to reach containers.
    async fn ext_routes_via_h1(&self, subnet: &str) {
        let subnet: IpNetwork = subnet.parse().expect("subnet");
        link::add_route(self.ext(), subnet, H1)
            .await
            .expect("route on ext");
    }

    /// Runs nft in h1 (a witness) and returns its stdout.
    fn nft(&self, args: &[&str]) -> String {
        let output = self
            .h1()
            .command("nft", None)
            .args(args)
            .output()
            .expect("nft runs");
        assert!(
            output.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// The elements of a set or map, as `nft -j list` gives them.
    fn elements(&self, kind: &str, name: &str) -> Value {
        let text = self.nft(&["-j", "list", kind, "inet", "drydock", name]);
        let value: Value = serde_json::from_str(&text).expect("nft JSON");
        let object = value["nftables"]
            .as_array()
            .expect("array")
            .iter()
            .find_map(|o| o.get(kind))
            .unwrap_or_else(|| panic!("no {kind} in {text}"))
            .clone();
        object.get("elem").cloned().unwrap_or(json!([]))
    }

    /// Asserts `outcome` and, on failure, shows the table.
    fn check(&self, what: &str, outcome: Outcome, expected: Outcome) {
        assert_eq!(outcome, expected, "{what}\n{}", self.firewall.dump());
    }
}

/// The `n`th address of `subnet`.
fn nth(subnet: &IpNetwork, n: u32) -> IpAddr {
    match subnet {
        IpNetwork::V4(net) => IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) + n)),
        IpNetwork::V6(net) => IpAddr::V6(Ipv6Addr::from(u128::from(net.network()) + u128::from(n))),
    }
}

/// Adds the `n`th address of `subnet` (with its prefix) to link `index`.
async fn add_address(nl: &rtnetlink::Handle, index: u32, subnet: &IpNetwork, n: u32) {
    let address = IpNetwork::new(nth(subnet, n), subnet.prefix()).expect("address");
    link::add_address(nl, index, address)
        .await
        .expect("address");
}

/// Listens on TCP `port` (every IPv4 and IPv6 address) in `netns`; answers every connection
/// with the peer address it sees, then closes it.
fn listen(netns: &Netns, port: u16) {
    let std = netns
        .run(|| -> io::Result<std::net::TcpListener> {
            let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?;
            socket.set_only_v6(false)?;
            socket.set_reuse_address(true)?;
            socket.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into())?;
            socket.listen(16)?;
            socket.set_nonblocking(true)?;
            Ok(socket.into())
        })
        .expect("enter namespace")
        .expect("listen");
    let listener = tokio::net::TcpListener::from_std(std).expect("tokio listener");
    tokio::spawn(async move {
        while let Ok((mut stream, peer)) = listener.accept().await {
            let peer = peer.ip().to_canonical().to_string();
            let _ = stream.write_all(peer.as_bytes()).await;
        }
    });
}

/// Answers every UDP datagram to `port` in `netns` with the peer address it sees.
fn udp_listen(netns: &Netns, port: u16) {
    let std = netns
        .run(|| -> io::Result<std::net::UdpSocket> {
            let socket =
                std::net::UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .expect("enter namespace")
        .expect("udp listen");
    let socket = tokio::net::UdpSocket::from_std(std).expect("tokio socket");
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((_, peer)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(peer.ip().to_string().as_bytes(), peer).await;
        }
    });
}

/// Sends a datagram from `netns` to `to` and waits `patience` for the answer (from `to` only).
async fn udp_exchange(netns: &Netns, to: SocketAddr, patience: Duration) -> Outcome {
    let std = netns
        .run(|| -> io::Result<std::net::UdpSocket> {
            let socket =
                std::net::UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0))?;
            socket.connect(to)?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .expect("enter namespace")
        .expect("udp socket");
    let socket = tokio::net::UdpSocket::from_std(std).expect("tokio socket");
    socket.send(b"who am I?").await.expect("send");
    let mut buf = [0u8; 64];
    match tokio::time::timeout(patience, socket.recv(&mut buf)).await {
        Err(_) => Outcome::TimedOut,
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Outcome::Refused,
        Ok(Err(e)) => panic!("udp exchange with {to}: {e}"),
        Ok(Ok(len)) => {
            let text = String::from_utf8_lossy(&buf[..len]);
            Outcome::Reached(
                text.parse()
                    .unwrap_or_else(|_| panic!("peer address, got {text:?}")),
            )
        }
    }
}

/// Connects from `netns` to `to`; waits `patience` for the connection.
async fn connect(netns: &Netns, to: SocketAddr, patience: Duration) -> Outcome {
    let std = netns
        .run(|| -> io::Result<std::net::TcpStream> {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(to),
                socket2::Type::STREAM,
                None,
            )?;
            socket.set_nonblocking(true)?;
            Ok(socket.into())
        })
        .expect("enter namespace")
        .expect("socket");
    let socket = tokio::net::TcpSocket::from_std_stream(std);
    let mut stream = match tokio::time::timeout(patience, socket.connect(to)).await {
        Err(_) => return Outcome::TimedOut,
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => return Outcome::Refused,
        Ok(Err(e)) => panic!("connect to {to}: {e}"),
        Ok(Ok(stream)) => stream,
    };
    let mut text = String::new();
    tokio::time::timeout(OK, stream.read_to_string(&mut text))
        .await
        .expect("the listener answers")
        .expect("read");
    Outcome::Reached(
        text.parse()
            .unwrap_or_else(|_| panic!("peer address, got {text:?}")),
    )
}

fn at(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("address"), port)
}

fn tcp(host_ip: Option<&str>, host_port: u16, container_ip: &str, container_port: u16) -> Binding {
    Binding {
        proto: Protocol::Tcp,
        host_ip: host_ip.map(|ip| ip.parse().expect("host address")),
        host_port,
        container_ip: container_ip.parse().expect("container address"),
        container_port,
    }
}

#[tokio::test]
async fn start_installs_the_table_and_replaces_a_stale_one() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    world.network("br-a", &["172.18.0.0/16"], |_| {}).await;
    world
        .firewall
        .publish(&tcp(None, 8080, "172.18.0.2", 80))
        .expect("publish");
    let listing = world.nft(&["list", "table", "inet", "drydock"]);
    // What the engine's chain does not accept, dockerd's FORWARD chain (made by the engine)
    // drops; there, the engine's chain accepts what the engine's forward chain marked.
    assert!(
        listing.contains("meta mark set meta mark | 0x10000000 accept"),
        "{listing}"
    );
    let dockerd = world.nft(&["list", "table", "ip", "filter"]);
    assert!(
        dockerd.contains("policy drop") && dockerd.contains("jump DRYDOCK-ENGINE"),
        "{dockerd}"
    );
    assert!(
        dockerd.contains("meta mark & 0x10000000 == 0x10000000 accept"),
        "{dockerd}"
    );
    assert_eq!(world.elements("set", "bridges"), json!(["br-a"]));
    assert_eq!(world.firewall.dump(), listing);

    // A new engine in the same namespace starts from an empty table.
    let again = Firewall::start(world.h1()).expect("second start");
    assert_eq!(world.elements("set", "bridges"), json!([]));
    let jumps = world.nft(&["list", "chain", "ip", "filter", "FORWARD"]);
    assert_eq!(
        jumps.matches("jump DRYDOCK-ENGINE").count(),
        1,
        "once: {jumps}"
    );
    assert_eq!(world.elements("map", "publish_any4_addr"), json!([]));
    assert_eq!(
        again.dump(),
        world.nft(&["list", "table", "inet", "drydock"])
    );

    let sysctls = world
        .h1()
        .run(|| {
            [
                "net/ipv4/ip_forward",
                "net/ipv6/conf/all/forwarding",
                "net/bridge/bridge-nf-call-iptables",
                "net/bridge/bridge-nf-call-ip6tables",
            ]
            .map(|key| {
                std::fs::read_to_string(format!("/proc/sys/{key}"))
                    .expect(key)
                    .trim()
                    .to_string()
            })
        })
        .expect("enter h1");
    assert_eq!(sysctls, ["1", "1", "1", "1"]);
}

#[tokio::test]
async fn published_port_reaches_the_container_with_the_client_address() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let a = world.network("br-a", &["172.18.0.0/16"], |_| {}).await;
    let c1 = world.container(&a, 2).await;
    let ext = world.ext();

    world.check(
        "nothing published yet: h1 refuses",
        connect(ext, at("10.10.0.1", 8080), OK).await,
        Outcome::Refused,
    );
    let any = tcp(None, 8080, "172.18.0.2", 80);
    world.firewall.publish(&any).expect("publish");
    world.check(
        "ext reaches the container through h1:8080, keeping its own address",
        connect(ext, at("10.10.0.1", 8080), OK).await,
        Outcome::Reached(EXT),
    );
    world.check(
        "h1 itself reaches it through its own address (nat output)",
        connect(world.h1(), at("10.10.0.1", 8080), OK).await,
        Outcome::Reached(H1),
    );
    world.check(
        "loopback is not DNAT'd (the userland proxy's job)",
        connect(world.h1(), at("127.0.0.1", 8080), OK).await,
        Outcome::Refused,
    );
    world.check(
        "a container is not DNAT'd either (Docker 20.10: -i BRIDGE -j RETURN)",
        connect(&c1, at("10.10.0.1", 8080), OK).await,
        Outcome::Refused,
    );

    // A binding to one host address: only that address forwards.
    let h1_eth0 = link::index(&world.h1_nl, "eth0").await.expect("eth0");
    link::add_address(&world.h1_nl, h1_eth0, "10.10.0.11/24".parse().unwrap())
        .await
        .expect("address");
    let one = tcp(Some("10.10.0.1"), 8081, "172.18.0.2", 80);
    world
        .firewall
        .publish(&one)
        .expect("publish to one address");
    world.check(
        "the bound address forwards",
        connect(ext, at("10.10.0.1", 8081), OK).await,
        Outcome::Reached(EXT),
    );
    world.check(
        "another address of h1 does not",
        connect(ext, at("10.10.0.11", 8081), OK).await,
        Outcome::Refused,
    );
    world.check(
        "while the any-address binding answers on every address",
        connect(ext, at("10.10.0.11", 8080), OK).await,
        Outcome::Reached(EXT),
    );

    world.firewall.unpublish(&any).expect("unpublish");
    world.check(
        "unpublished: h1 refuses again",
        connect(ext, at("10.10.0.1", 8080), OK).await,
        Outcome::Refused,
    );
    world.check(
        "the other binding stays",
        connect(ext, at("10.10.0.1", 8081), OK).await,
        Outcome::Reached(EXT),
    );
    let error = world
        .firewall
        .unpublish(&any)
        .expect_err("not published any more");
    match &error {
        FirewallError::Netlink { error: errno, .. } => {
            assert_eq!(errno.kind(), io::ErrorKind::NotFound)
        }
        other => panic!("expected a netlink error, got {other}"),
    }
    assert!(
        error
            .to_string()
            .contains("tcp/0.0.0.0:8080 -> 172.18.0.2:80"),
        "{error}"
    );

    // UDP takes the same path, keyed by protocol.
    udp_listen(&c1, 53);
    let dns = Binding {
        proto: Protocol::Udp,
        ..tcp(None, 5353, "172.18.0.2", 53)
    };
    world.firewall.publish(&dns).expect("publish udp");
    world.check(
        "ext reaches the container over UDP through h1:5353",
        udp_exchange(ext, at("10.10.0.1", 5353), OK).await,
        Outcome::Reached(EXT),
    );
    world.check(
        "TCP on that port is not published",
        connect(ext, at("10.10.0.1", 5353), OK).await,
        Outcome::Refused,
    );
}

#[tokio::test]
async fn networks_are_isolated_from_each_other() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let a = world.network("br-a", &["172.18.0.0/16"], |_| {}).await;
    let b = world.network("br-b", &["172.19.0.0/16"], |_| {}).await;
    let a2 = world.container(&a, 2).await;
    let _a3 = world.container(&a, 3).await;
    let b2 = world.container(&b, 2).await;
    world.check(
        "containers of one network talk (ICC on)",
        connect(&a2, at("172.18.0.3", 80), OK).await,
        Outcome::Reached("172.18.0.2".parse().unwrap()),
    );
    world.check(
        "a to b is dropped",
        connect(&a2, at("172.19.0.2", 80), DROP).await,
        Outcome::TimedOut,
    );
    world.check(
        "b to a is dropped",
        connect(&b2, at("172.18.0.2", 80), DROP).await,
        Outcome::TimedOut,
    );
    world.check(
        "b still reaches the outside",
        {
            listen(world.ext(), 80);
            connect(&b2, at("10.10.0.2", 80), OK).await
        },
        Outcome::Reached(H1),
    );
}

#[tokio::test]
async fn icc_off_drops_traffic_within_the_network() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let quiet = world
        .network("br-quiet", &["172.20.0.0/16"], |n| n.icc = false)
        .await;
    let c2 = world.container(&quiet, 2).await;
    let _c3 = world.container(&quiet, 3).await;
    listen(world.ext(), 80);
    world.check(
        "ICC off: same-bridge traffic is dropped",
        connect(&c2, at("172.20.0.3", 80), DROP).await,
        Outcome::TimedOut,
    );
    world.check(
        "outbound traffic still passes, masqueraded",
        connect(&c2, at("10.10.0.2", 80), OK).await,
        Outcome::Reached(H1),
    );
    world.check(
        "the host reaches its containers",
        connect(world.h1(), at("172.20.0.3", 80), OK).await,
        Outcome::Reached("172.20.0.1".parse().unwrap()),
    );

    // Turning ICC on replaces the network's elements in one transaction.
    let mut rules = quiet.rules.clone();
    rules.icc = true;
    world.firewall.add_network(&rules).expect("replace rules");
    world.check(
        "ICC on: same-bridge traffic passes",
        connect(&c2, at("172.20.0.3", 80), OK).await,
        Outcome::Reached("172.20.0.2".parse().unwrap()),
    );
}

#[tokio::test]
async fn internal_network_is_closed_both_ways() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let internal = world
        .network("br-int", &["172.21.0.0/16"], |n| n.internal = true)
        .await;
    let i2 = world.container(&internal, 2).await;
    let _i3 = world.container(&internal, 3).await;
    listen(world.ext(), 80);
    world.ext_routes_via_h1("172.21.0.0/16").await;
    world.check(
        "containers of an internal network talk",
        connect(&i2, at("172.21.0.3", 80), OK).await,
        Outcome::Reached("172.21.0.2".parse().unwrap()),
    );
    world.check(
        "an internal container cannot reach ext",
        connect(&i2, at("10.10.0.2", 80), DROP).await,
        Outcome::TimedOut,
    );
    world.check(
        "ext cannot reach an internal container",
        connect(world.ext(), at("172.21.0.2", 80), DROP).await,
        Outcome::TimedOut,
    );
    assert_eq!(
        world.elements("set", "masquerade4"),
        json!([]),
        "internal: no masquerade"
    );
}

#[tokio::test]
async fn masquerade_hides_containers_behind_the_host_unless_disabled() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let a = world.network("br-a", &["172.18.0.0/16"], |_| {}).await;
    let plain = world
        .network("br-plain", &["172.22.0.0/16"], |n| n.masquerade = false)
        .await;
    let a2 = world.container(&a, 2).await;
    let p2 = world.container(&plain, 2).await;
    listen(world.ext(), 80);
    world.ext_routes_via_h1("172.22.0.0/16").await;
    world.check(
        "ext sees h1's address",
        connect(&a2, at("10.10.0.2", 80), OK).await,
        Outcome::Reached(H1),
    );
    world.check(
        "without masquerade, ext sees the container's address",
        connect(&p2, at("10.10.0.2", 80), OK).await,
        Outcome::Reached("172.22.0.2".parse().unwrap()),
    );
}

#[tokio::test]
async fn outside_hosts_cannot_reach_container_addresses_directly() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let a = world.network("br-a", &["172.18.0.0/16"], |_| {}).await;
    let _a2 = world.container(&a, 2).await;
    world.ext_routes_via_h1("172.18.0.0/16").await;
    world.check(
        "ext, routing via h1, is dropped",
        connect(world.ext(), at("172.18.0.2", 80), DROP).await,
        Outcome::TimedOut,
    );
    world.check(
        "while h1 itself reaches the container",
        connect(world.h1(), at("172.18.0.2", 80), OK).await,
        Outcome::Reached("172.18.0.1".parse().unwrap()),
    );
}

#[tokio::test]
async fn ipv6_within_a_network_published_and_masqueraded() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let six = world
        .network("br-six", &["172.23.0.0/16", "fd00:23::/64"], |_| {})
        .await;
    let c2 = world.container(&six, 2).await;
    let _c3 = world.container(&six, 3).await;
    world.check(
        "containers talk over IPv6",
        connect(&c2, at("fd00:23::3", 80), OK).await,
        Outcome::Reached("fd00:23::2".parse().unwrap()),
    );
    world
        .firewall
        .publish(&tcp(None, 8086, "fd00:23::2", 80))
        .expect("publish IPv6");
    world.check(
        "ext reaches the published port over IPv6",
        connect(world.ext(), at("fd00:10::1", 8086), OK).await,
        Outcome::Reached(EXT_6),
    );
    listen(world.ext(), 80);
    world.check(
        "IPv6 to the outside is masqueraded",
        connect(&c2, at("fd00:10::2", 80), OK).await,
        Outcome::Reached(H1_6),
    );
}

#[tokio::test]
async fn set_elements_round_trip_through_nft() {
    if !crate::privileged() {
        return;
    }
    let world = World::new().await;
    let fw = &world.firewall;
    let udp = Binding {
        proto: Protocol::Udp,
        ..tcp(None, 53, "172.18.0.3", 5353)
    };
    let bindings = [
        tcp(Some("10.10.0.1"), 8080, "172.18.0.2", 80),
        tcp(None, 8443, "172.18.0.2", 443),
        udp,
        tcp(Some("fd00:10::1"), 8080, "fd00:18::2", 80),
        tcp(Some("::"), 9000, "fd00:18::3", 9001),
    ];
    for binding in &bindings {
        fw.publish(binding).expect("publish");
    }
    // Publishing the same binding again is fine; another container on that port is not.
    fw.publish(&bindings[0]).expect("publish again");
    let error = fw
        .publish(&tcp(Some("10.10.0.1"), 8080, "172.18.0.9", 80))
        .expect_err("conflict");
    assert!(error.to_string().contains("already published"), "{error}");

    let pair = |key: Value, data: Value| json!([key, data]);
    let cat = |parts: Value| json!({"concat": parts});
    assert_eq!(
        world.elements("map", "publish_ip4_addr"),
        json!([pair(
            cat(json!(["10.10.0.1", "tcp", 8080])),
            json!("172.18.0.2")
        )])
    );
    assert_eq!(
        world.elements("map", "publish_ip4_port"),
        json!([pair(cat(json!(["10.10.0.1", "tcp", 8080])), json!(80))])
    );
    let mut any4 = world.elements("map", "publish_any4_addr");
    any4.as_array_mut().unwrap().sort_by_key(|e| e.to_string());
    assert_eq!(
        any4,
        json!([
            pair(cat(json!(["tcp", 8443])), json!("172.18.0.2")),
            pair(cat(json!(["udp", 53])), json!("172.18.0.3")),
        ])
    );
    let mut any4_port = world.elements("map", "publish_any4_port");
    any4_port
        .as_array_mut()
        .unwrap()
        .sort_by_key(|e| e.to_string());
    assert_eq!(
        any4_port,
        json!([
            pair(cat(json!(["tcp", 8443])), json!(443)),
            pair(cat(json!(["udp", 53])), json!(5353))
        ])
    );
    assert_eq!(
        world.elements("map", "publish_ip6_addr"),
        json!([pair(
            cat(json!(["fd00:10::1", "tcp", 8080])),
            json!("fd00:18::2")
        )])
    );
    assert_eq!(
        world.elements("map", "publish_any6_port"),
        json!([pair(cat(json!(["tcp", 9000])), json!(9001))])
    );

    for binding in &bindings {
        fw.unpublish(binding).expect("unpublish");
    }
    for map in [
        "publish_ip4_addr",
        "publish_ip4_port",
        "publish_any4_addr",
        "publish_any4_port",
        "publish_ip6_addr",
        "publish_ip6_port",
        "publish_any6_addr",
        "publish_any6_port",
    ] {
        assert_eq!(
            world.elements("map", map),
            json!([]),
            "{map} is empty again"
        );
    }

    // Network elements, through nft, and removed again.
    let rules = NetworkRules {
        bridge: "br-x".into(),
        subnets: vec![
            "172.18.0.0/16".parse().unwrap(),
            "fd00:18::/64".parse().unwrap(),
        ],
        internal: false,
        icc: false,
        masquerade: true,
    };
    fw.add_network(&rules).expect("add network");
    assert_eq!(world.elements("set", "bridges"), json!(["br-x"]));
    assert_eq!(
        world.elements("set", "same_bridge"),
        json!([{"concat": ["br-x", "br-x"]}])
    );
    assert_eq!(world.elements("set", "icc_off"), json!(["br-x"]));
    assert_eq!(
        world.elements("set", "masquerade4"),
        json!([{"prefix": {"addr": "172.18.0.0", "len": 16}}])
    );
    assert_eq!(
        world.elements("set", "masquerade6"),
        json!([{"prefix": {"addr": "fd00:18::", "len": 64}}])
    );
    fw.remove_network("br-x").expect("remove network");
    fw.remove_network("br-x")
        .expect("removing twice is a no-op");
    for set in [
        "bridges",
        "same_bridge",
        "icc_off",
        "masquerade4",
        "masquerade6",
    ] {
        assert_eq!(
            world.elements("set", set),
            json!([]),
            "{set} is empty again"
        );
    }

    // Errors say what was done and what the kernel or nft said.
    world.nft(&["delete", "table", "inet", "drydock"]);
    let error = fw.publish(&bindings[0]).expect_err("no table").to_string();
    assert!(
        error.starts_with("publish tcp/10.10.0.1:8080 -> 172.18.0.2:80")
            && error.contains("table inet drydock gone")
            && error.contains("No such file or directory"),
        "{error}"
    );
    let error = fw.add_network(&rules).expect_err("no table").to_string();
    assert!(
        error.starts_with("nft failed to add network rules for bridge br-x: ")
            && error.contains("No such file or directory"),
        "{error}"
    );
}
