//! The userland proxy on the real kernel: a lab host `h1` publishes ports of a "container" (a
//! namespace behind a veth, 172.30.0.2, gateway 172.30.0.1 on h1) and another host `ext`
//! connects over the lab's segment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use drydock_netsim::link;
use drydock_netsim::{Lab, Netns};
use drydock_runtime::proxy::{Protocol, Proxy};
use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkUnspec, LinkVeth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 1);
const CONTAINER: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 2);
/// Where the container's TCP server listens (it answers `peer ADDR\n`, echoes, then `bye\n`).
const TCP_TARGET: SocketAddr = SocketAddr::new(IpAddr::V4(CONTAINER), 80);
/// Where the container's UDP server listens (it answers `ADDR ` + the datagram).
const UDP_TARGET: SocketAddr = SocketAddr::new(IpAddr::V4(CONTAINER), 53);
const LIMIT: Duration = Duration::from_secs(5);

struct Setup {
    /// Holds h1 and ext alive.
    _lab: Lab,
    h1: Netns,
    ext: Netns,
    /// h1's address on the lab segment.
    h1_lan: Ipv4Addr,
    /// Holds the container namespace alive (its servers are tasks on the test's runtime).
    _container: Netns,
}

/// A lab with h1 and ext on one segment, and a container behind h1 running the servers.
async fn setup() -> Setup {
    let topology = crate::lan(&["h1", "ext"]);
    let h1_lan = topology.host("h1").unwrap().interfaces[0].address.ip();
    let lab = Lab::build(topology)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let h1 = lab.host("h1").unwrap().clone();
    let ext = lab.host("ext").unwrap().clone();
    let container = Netns::new().unwrap();

    // The veth between h1 (veth-c, 172.30.0.1/24) and the container (eth0, 172.30.0.2/24).
    let nl = h1.netlink().unwrap();
    let peer = LinkUnspec::new_with_name("eth0")
        .setns_by_fd(container.as_fd().as_raw_fd())
        .build();
    let veth = LinkVeth::new("veth-c", "eth0")
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    nl.link().add(veth).execute().await.unwrap();
    let index = link::index(&nl, "veth-c").await.unwrap();
    let gateway = IpNetwork::new(IpAddr::V4(GATEWAY), 24).unwrap();
    link::add_address(&nl, index, gateway).await.unwrap();

    let cnl = container.netlink().unwrap();
    for name in ["lo", "eth0"] {
        cnl.link()
            .set(LinkUnspec::new_with_name(name).up().build())
            .execute()
            .await
            .unwrap();
    }
    let eth0 = link::index(&cnl, "eth0").await.unwrap();
    let address = IpNetwork::new(IpAddr::V4(CONTAINER), 24).unwrap();
    link::add_address(&cnl, eth0, address).await.unwrap();
    let default = "0.0.0.0/0".parse().unwrap();
    link::add_route(&container, default, IpAddr::V4(GATEWAY))
        .await
        .unwrap();
    link::wait_until_up(&nl, "veth-c").await.unwrap();
    link::wait_until_up(&cnl, "eth0").await.unwrap();
    nl.close().await;
    cnl.close().await;

    start_servers(&container);
    Setup {
        _lab: lab,
        h1,
        ext,
        h1_lan,
        _container: container,
    }
}

/// The container's servers, on sockets opened inside it: TCP port 80 writes `peer ADDR\n`, echoes
/// until EOF, then writes `bye\n` and closes; UDP port 53 answers `ADDR ` + the datagram.
fn start_servers(container: &Netns) {
    let (tcp, udp) = container
        .run(|| {
            let tcp = std::net::TcpListener::bind("0.0.0.0:80").unwrap();
            let udp = std::net::UdpSocket::bind("0.0.0.0:53").unwrap();
            tcp.set_nonblocking(true).unwrap();
            udp.set_nonblocking(true).unwrap();
            (tcp, udp)
        })
        .unwrap();
    let tcp = tokio::net::TcpListener::from_std(tcp).unwrap();
    let udp = UdpSocket::from_std(udp).unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, peer) = tcp.accept().await.unwrap();
            tokio::spawn(async move {
                stream
                    .write_all(format!("peer {peer}\n").as_bytes())
                    .await?;
                let mut buffer = [0; 4096];
                loop {
                    let n = stream.read(&mut buffer).await?;
                    if n == 0 {
                        break;
                    }
                    stream.write_all(&buffer[..n]).await?;
                }
                stream.write_all(b"bye\n").await?;
                std::io::Result::Ok(())
            });
        }
    });
    tokio::spawn(async move {
        let mut buffer = vec![0; 65536];
        loop {
            let (n, peer) = udp.recv_from(&mut buffer).await.unwrap();
            let mut reply = format!("{peer} ").into_bytes();
            reply.extend_from_slice(&buffer[..n]);
            udp.send_to(&reply, peer).await.unwrap();
        }
    });
}

/// A TCP connection to `to` from a socket opened inside `from`.
async fn connect(from: &Netns, to: SocketAddr) -> TcpStream {
    let socket = from
        .run(|| match to {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        })
        .unwrap()
        .unwrap();
    tokio::time::timeout(LIMIT, socket.connect(to))
        .await
        .expect("connect in time")
        .unwrap_or_else(|e| panic!("connect to {to}: {e}"))
}

/// A UDP socket bound to `address` inside `netns`.
fn udp_socket(netns: &Netns, address: SocketAddr) -> UdpSocket {
    let socket = netns
        .run(|| std::net::UdpSocket::bind(address))
        .unwrap()
        .unwrap();
    socket.set_nonblocking(true).unwrap();
    UdpSocket::from_std(socket).unwrap()
}

/// Sends `message` through `stream`, half-closes it, and reads everything the server sends
/// until it closes. Returns (the peer the server saw, what came after the `peer` line).
async fn exchange(mut stream: TcpStream, message: &str) -> (SocketAddr, String) {
    stream.write_all(message.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(LIMIT, stream.read_to_string(&mut text))
        .await
        .expect("the relay ends in time")
        .unwrap();
    let (line, rest) = text.split_once('\n').unwrap_or_else(|| panic!("{text:?}"));
    let peer = line
        .strip_prefix("peer ")
        .unwrap_or_else(|| panic!("{text:?}"));
    (peer.parse().unwrap(), rest.to_string())
}

/// Sends `datagram` from `socket` to `to` and returns the reply's sender and text.
async fn round_trip(socket: &UdpSocket, to: SocketAddr, datagram: &[u8]) -> (SocketAddr, Vec<u8>) {
    socket.send_to(datagram, to).await.unwrap();
    let mut buffer = vec![0; 65536];
    let (n, from) = tokio::time::timeout(LIMIT, socket.recv_from(&mut buffer))
        .await
        .expect("a reply in time")
        .unwrap();
    buffer.truncate(n);
    (from, buffer)
}

/// Splits a UDP reply `ADDR payload` into the peer the container saw and the payload.
fn parse_udp_reply(reply: &[u8]) -> (SocketAddr, Vec<u8>) {
    let space = reply.iter().position(|&b| b == b' ').unwrap();
    let peer = std::str::from_utf8(&reply[..space])
        .unwrap()
        .parse()
        .unwrap();
    (peer, reply[space + 1..].to_vec())
}

fn any4(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)
}

#[tokio::test]
async fn tcp_relays_from_the_host_and_from_another_machine_as_the_gateway() {
    if !crate::privileged() {
        return;
    }
    let s = setup().await;
    let proxy = Proxy::start(&s.h1, Protocol::Tcp, any4(8080), TCP_TARGET).unwrap();
    assert_eq!(proxy.local_addr(), any4(8080));

    // From h1 itself, over loopback (which DNAT never sees).
    let (peer, rest) = exchange(connect(&s.h1, localhost(8080)).await, "from h1").await;
    assert_eq!(
        peer.ip(),
        IpAddr::V4(GATEWAY),
        "the container sees the gateway"
    );
    assert_eq!(rest, "from h1bye\n");

    // From ext, to h1's address on the segment.
    let to = SocketAddr::new(s.h1_lan.into(), 8080);
    let (peer, rest) = exchange(connect(&s.ext, to).await, "from ext").await;
    assert_eq!(peer.ip(), IpAddr::V4(GATEWAY), "not ext's own address");
    assert_eq!(rest, "from extbye\n");
    proxy.stop().await;
}

#[tokio::test]
async fn tcp_half_close_reaches_the_container_and_the_reply_still_comes_back() {
    if !crate::privileged() {
        return;
    }
    let s = setup().await;
    let proxy = Proxy::start(&s.h1, Protocol::Tcp, any4(0), TCP_TARGET).unwrap();
    let port = proxy.local_addr().port();
    assert_ne!(port, 0, "local_addr reports the chosen port");
    let mut stream = connect(&s.h1, localhost(port)).await;
    stream.write_all(b"ping").await.unwrap();
    // Read the greeting and the echo before half-closing: the connection is fully open.
    let mut first = vec![0; 64];
    let mut seen = String::new();
    while !seen.ends_with("ping") {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut first))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "closed early: {seen:?}");
        seen.push_str(std::str::from_utf8(&first[..n]).unwrap());
    }
    // The server writes "bye" only once it has read EOF: our FIN crossed the proxy, and the
    // other direction still carries data.
    stream.shutdown().await.unwrap();
    let mut rest = String::new();
    tokio::time::timeout(LIMIT, stream.read_to_string(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, "bye\n");
    proxy.stop().await;
}

#[tokio::test]
async fn tcp_refused_target_closes_the_client() {
    if !crate::privileged() {
        return;
    }
    let s = setup().await;
    let nothing = SocketAddr::new(CONTAINER.into(), 81);
    let proxy = Proxy::start(&s.h1, Protocol::Tcp, any4(8080), nothing).unwrap();
    let mut stream = connect(&s.h1, localhost(8080)).await;
    let mut buffer = [0; 16];
    let read = tokio::time::timeout(LIMIT, stream.read(&mut buffer))
        .await
        .expect("the proxy closes the client");
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "EOF or reset, got {read:?}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn v6_listener_coexists_with_v4_and_relays_to_an_ipv4_target() {
    if !crate::privileged() {
        return;
    }
    let s = setup().await;
    let any6 = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 8080);
    // Docker 20.10 publishes on both families: IPV6_V6ONLY lets them share the port.
    let v4 = Proxy::start(&s.h1, Protocol::Tcp, any4(8080), TCP_TARGET).unwrap();
    let v6 = Proxy::start(&s.h1, Protocol::Tcp, any6, TCP_TARGET).unwrap();
    let udp6 = Proxy::start(&s.h1, Protocol::Udp, any6, UDP_TARGET).unwrap();

    let to = SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), 8080);
    let (peer, rest) = exchange(connect(&s.h1, to).await, "over v6").await;
    assert_eq!(peer.ip(), IpAddr::V4(GATEWAY));
    assert_eq!(rest, "over v6bye\n");

    let client = udp_socket(&s.h1, "[::1]:0".parse().unwrap());
    let (from, reply) = round_trip(&client, to, b"v6 datagram").await;
    assert_eq!(from, to, "the reply comes from the listening socket");
    let (peer, payload) = parse_udp_reply(&reply);
    assert_eq!(peer.ip(), IpAddr::V4(GATEWAY));
    assert_eq!(payload, b"v6 datagram");

    v4.stop().await;
    v6.stop().await;
    udp6.stop().await;
}

#[tokio::test]
async fn udp_relays_two_clients_at_once_each_with_its_own_flow() {
    if !crate::privileged() {
        return;
    }
    let s = setup().await;
    let proxy = Proxy::start(&s.h1, Protocol::Udp, any4(5353), UDP_TARGET).unwrap();
    let a_to = localhost(5353);
    let b_to = SocketAddr::new(s.h1_lan.into(), 5353);
    let a = udp_socket(&s.h1, localhost(0));
    let b = udp_socket(&s.ext, any4(0));

    // Interleaved, and concurrently: each client gets only its own replies.
    let ((a_from, a1), (b_from, b1)) =
        tokio::join!(round_trip(&a, a_to, b"a1"), round_trip(&b, b_to, b"b1"));
    assert_eq!(
        (a_from, b_from),
        (a_to, b_to),
        "replies come from the listener"
    );
    let (a_peer, payload) = parse_udp_reply(&a1);
    assert_eq!(payload, b"a1");
    let (b_peer, payload) = parse_udp_reply(&b1);
    assert_eq!(payload, b"b1");
    assert_eq!(a_peer.ip(), IpAddr::V4(GATEWAY));
    assert_eq!(b_peer.ip(), IpAddr::V4(GATEWAY));
    assert_ne!(a_peer.port(), b_peer.port(), "one flow socket per client");

    // The flows are kept: the same source port again, for a large datagram too.
    let big = vec![b'x'; 60_000];
    let (_, reply) = round_trip(&a, a_to, &big).await;
    assert_eq!(parse_udp_reply(&reply), (a_peer, big));
    let (_, reply) = round_trip(&b, b_to, b"b2").await;
    assert_eq!(parse_udp_reply(&reply), (b_peer, b"b2".to_vec()));
    proxy.stop().await;
}

#[tokio::test]
async fn a_taken_port_fails_with_addr_in_use() {
    if !crate::privileged() {
        return;
    }
    let s = setup().await;
    let (_tcp, _udp) =
        s.h1.run(|| {
            (
                std::net::TcpListener::bind("0.0.0.0:8081").unwrap(),
                std::net::UdpSocket::bind("0.0.0.0:5354").unwrap(),
            )
        })
        .unwrap();
    let error = Proxy::start(&s.h1, Protocol::Tcp, any4(8081), TCP_TARGET).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    assert!(error.to_string().contains("tcp 0.0.0.0:8081"), "{error}");
    let error = Proxy::start(&s.h1, Protocol::Udp, any4(5354), UDP_TARGET).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    // The same port on another address family is free (IPV6_V6ONLY).
    let any6 = SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 8081);
    Proxy::start(&s.h1, Protocol::Tcp, any6, TCP_TARGET)
        .unwrap()
        .stop()
        .await;
}

/// True when a plain socket (no SO_REUSEADDR) can bind `address` in `netns` right now.
fn can_bind(netns: &Netns, protocol: Protocol, address: SocketAddr) -> bool {
    netns
        .run(|| {
            let kind = match protocol {
                Protocol::Tcp => socket2::Type::STREAM,
                Protocol::Udp => socket2::Type::DGRAM,
            };
            let socket = socket2::Socket::new(socket2::Domain::IPV4, kind, None).unwrap();
            socket.bind(&address.into()).is_ok()
        })
        .unwrap()
}

// Multi-threaded, so that the proxy's task may be polled on another worker while it is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_is_free_right_after_stop_or_drop() {
    if !crate::privileged() {
        return;
    }
    let s = setup().await;
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let target = match protocol {
            Protocol::Tcp => TCP_TARGET,
            Protocol::Udp => UDP_TARGET,
        };
        // Dropped: checked before anything yields to the runtime.
        let proxy = Proxy::start(&s.h1, protocol, any4(8090), target).unwrap();
        assert!(!can_bind(&s.h1, protocol, any4(8090)), "{protocol} taken");
        drop(proxy);
        assert!(
            can_bind(&s.h1, protocol, any4(8090)),
            "{protocol} free after drop"
        );

        // Stopped.
        let proxy = Proxy::start(&s.h1, protocol, any4(8091), target).unwrap();
        proxy.stop().await;
        assert!(
            can_bind(&s.h1, protocol, any4(8091)),
            "{protocol} free after stop"
        );
    }

    // With a connection being relayed: stop closes it, and the port can be published again at
    // once (docker-proxy's listener has SO_REUSEADDR, like ours, so TIME_WAIT does not block).
    let proxy = Proxy::start(&s.h1, Protocol::Tcp, any4(8092), TCP_TARGET).unwrap();
    let mut stream = connect(&s.h1, localhost(8092)).await;
    let mut greeting = [0; 5];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&greeting, b"peer ");
    proxy.stop().await;
    let again = Proxy::start(&s.h1, Protocol::Tcp, any4(8092), TCP_TARGET).unwrap();
    let mut rest = Vec::new();
    // EOF (or a reset): either way the relay is over.
    let _ = tokio::time::timeout(LIMIT, stream.read_to_end(&mut rest))
        .await
        .expect("stop closed the relayed connection");
    drop(again);

    // Dropped with a relayed connection: the listener goes at once, the relay soon after.
    let proxy = Proxy::start(&s.h1, Protocol::Tcp, any4(8093), TCP_TARGET).unwrap();
    let mut stream = connect(&s.h1, localhost(8093)).await;
    tokio::time::timeout(LIMIT, stream.read_exact(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    drop(proxy);
    Proxy::start(&s.h1, Protocol::Tcp, any4(8093), TCP_TARGET).unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(LIMIT, stream.read_to_end(&mut rest))
        .await
        .expect("the dropped proxy's relay ends");
}
