//! Probe tests: every probe and listener on the wire, between two hosts of a netsim lab.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use drydock_conformance::probe::{
    Answered, Http, ListenKind, Listener, Ping, Proto, Reach, RecordKind, Resolution, UPSTREAM,
    UpstreamDns, http_get, ping, reach, resolve,
};
use drydock_netsim::netns::write_sysctl;
use drydock_netsim::{Lab, Netns, Topology};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Where success is expected: generous, it is never waited out.
const OK: Duration = Duration::from_secs(3);
/// Where a timeout is expected: short, it is always waited out.
const SHORT: Duration = Duration::from_millis(400);

/// A two-host lab: hosts `a` and `b` on one segment, with IPv4 and IPv6.
struct TwoHosts {
    lab: Lab,
    /// b's IPv4 address.
    b4: IpAddr,
    /// b's IPv6 address.
    b6: IpAddr,
}

impl TwoHosts {
    async fn build() -> Self {
        let topology = Topology::builder("probe")
            .segment("lan", "10.0.0.0/24".parse().unwrap())
            .subnet6("fd00::/64".parse().unwrap())
            .host("a")
            .host("b")
            .build()
            .expect("topology");
        let b = &topology.host("b").expect("host b").interfaces[0];
        let b4 = IpAddr::V4(b.address.ip());
        let b6 = IpAddr::V6(b.address6.expect("b has IPv6").ip());
        let lab = Lab::build(topology).await.expect("lab");
        Self { lab, b4, b6 }
    }

    fn a(&self) -> &Netns {
        self.lab.host("a").expect("host a")
    }

    fn b(&self) -> &Netns {
        self.lab.host("b").expect("host b")
    }

    /// Runs `nft` (or `ip`) with `args` in host b; panics with its stderr on failure.
    fn in_b(&self, program: &str, args: &[&str]) {
        let output = self
            .b()
            .command(program, None)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Makes host b drop every packet it receives.
    fn b_drops_everything(&self) {
        self.in_b("nft", &["add", "table", "inet", "probe"]);
        self.in_b(
            "nft",
            &["add chain inet probe input { type filter hook input priority 0 ; policy drop ; }"],
        );
    }
}

fn at(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

#[tokio::test]
async fn tcp_reach_reads_the_banner_over_v4_and_v6() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let _web = Listener::open(lab.b(), ListenKind::Tcp, 80, "drydock web 80".into()).unwrap();
    let expected = Reach::Reached {
        banner: Some("drydock web 80".into()),
    };
    for ip in [lab.b4, lab.b6] {
        let outcome = reach(lab.a(), at(ip, 80), Proto::Tcp, OK).await;
        assert_eq!(outcome, expected, "{ip}");
    }
    assert_eq!(expected.to_string(), "reached (banner: drydock web 80)");
}

#[tokio::test]
async fn tcp_closed_port_is_refused() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    assert_eq!(
        reach(lab.a(), at(lab.b4, 81), Proto::Tcp, OK).await,
        Reach::Refused
    );
    assert_eq!(
        reach(lab.a(), at(lab.b6, 81), Proto::Tcp, OK).await,
        Reach::Refused
    );
}

#[tokio::test]
async fn dropped_packets_time_out() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let _web = Listener::open(lab.b(), ListenKind::Tcp, 80, "web".into()).unwrap();
    let _dns = Listener::open(lab.b(), ListenKind::Udp, 53, "dns".into()).unwrap();
    let _http = Listener::open(lab.b(), ListenKind::Http, 8080, "http".into()).unwrap();
    lab.b_drops_everything();

    let started = tokio::time::Instant::now();
    let (tcp, udp, http, ping4, ping6) = tokio::join!(
        reach(lab.a(), at(lab.b4, 80), Proto::Tcp, SHORT),
        reach(lab.a(), at(lab.b4, 53), Proto::Udp, SHORT),
        http_get(lab.a(), at(lab.b4, 8080), "web", "/", SHORT),
        ping(lab.a(), lab.b4, SHORT),
        ping(lab.a(), lab.b6, SHORT),
    );
    assert_eq!(tcp, Reach::Timeout);
    assert_eq!(udp, Reach::Timeout);
    assert_eq!(http, Http::Timeout);
    assert_eq!(ping4, Ping::Timeout);
    assert_eq!(ping6, Ping::Timeout);
    let elapsed = started.elapsed();
    assert!(elapsed >= SHORT, "{elapsed:?}");
    assert!(elapsed < SHORT * 3, "timeouts are kept: {elapsed:?}");
    let dns = resolve(
        lab.a(),
        at(lab.b4, 53),
        "web",
        RecordKind::A,
        Proto::Udp,
        SHORT,
    )
    .await;
    assert_eq!(dns, Resolution::Timeout);
}

#[tokio::test]
async fn no_route_is_unreachable() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let nowhere = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    let unreachable = "Network is unreachable".to_string();
    assert_eq!(
        reach(lab.a(), at(nowhere, 80), Proto::Tcp, OK).await,
        Reach::Unreachable {
            reason: unreachable.clone()
        }
    );
    assert_eq!(
        reach(lab.a(), at(nowhere, 53), Proto::Udp, OK).await,
        Reach::Unreachable {
            reason: unreachable.clone()
        }
    );
    assert_eq!(
        http_get(lab.a(), at(nowhere, 80), "web", "/", OK).await,
        Http::Unreachable {
            reason: unreachable.clone()
        }
    );
    let outcome = ping(lab.a(), nowhere, OK).await;
    assert_eq!(
        outcome,
        Ping::Unreachable {
            reason: unreachable
        }
    );
    assert_eq!(outcome.to_string(), "unreachable: Network is unreachable");
    let elsewhere6: IpAddr = "fd99::1".parse().unwrap();
    assert!(matches!(
        ping(lab.a(), elsewhere6, OK).await,
        Ping::Unreachable { .. }
    ));
}

#[tokio::test]
async fn icmp_unreachable_from_a_firewall_is_reported() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    lab.in_b("nft", &["add", "table", "inet", "probe"]);
    lab.in_b(
        "nft",
        &["add chain inet probe input { type filter hook input priority 0 ; }"],
    );
    lab.in_b(
        "nft",
        &["add rule inet probe input meta l4proto { tcp, icmp } reject with icmp host-unreachable"],
    );
    let tcp = reach(lab.a(), at(lab.b4, 80), Proto::Tcp, OK).await;
    assert_eq!(
        tcp,
        Reach::Unreachable {
            reason: "No route to host".into()
        }
    );
    let outcome = ping(lab.a(), lab.b4, OK).await;
    assert_eq!(
        outcome,
        Ping::Unreachable {
            reason: format!("Destination Host Unreachable (from {})", lab.b4)
        }
    );
}

#[tokio::test]
async fn failed_neighbour_resolution_is_unreachable() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    // One ARP/ND probe, 100 ms: resolution fails fast instead of after 3 s.
    lab.a()
        .run(|| -> io::Result<()> {
            for family in ["ipv4", "ipv6"] {
                write_sysctl(&format!("net/{family}/neigh/eth0/mcast_solicit"), "1")?;
                write_sysctl(&format!("net/{family}/neigh/eth0/retrans_time_ms"), "100")?;
            }
            Ok(())
        })
        .unwrap()
        .unwrap();
    let (ghost, ghost6): (IpAddr, IpAddr) =
        ("10.0.0.77".parse().unwrap(), "fd00::77".parse().unwrap());
    let (ping4, ping6, tcp, udp, udp6, dns) = tokio::join!(
        ping(lab.a(), ghost, OK),
        ping(lab.a(), ghost6, OK),
        reach(lab.a(), at(ghost, 80), Proto::Tcp, OK),
        reach(lab.a(), at(ghost, 80), Proto::Udp, OK),
        reach(lab.a(), at(ghost6, 80), Proto::Udp, OK),
        resolve(lab.a(), at(ghost, 53), "web", RecordKind::A, Proto::Udp, OK),
    );
    // The kernel reports the failure to itself with an ICMP error from our own address.
    let a4 = lab.lab.topology().host("a").unwrap().interfaces[0]
        .address
        .ip();
    assert_eq!(
        ping4,
        Ping::Unreachable {
            reason: format!("Destination Host Unreachable (from {a4})")
        }
    );
    assert!(
        matches!(&ping6, Ping::Unreachable { reason } if reason.starts_with("Address unreachable")),
        "{ping6}"
    );
    let no_route = Reach::Unreachable {
        reason: "No route to host".into(),
    };
    assert_eq!(tcp, no_route);
    // Only with IP_RECVERR does a UDP socket hear of a host unreachable.
    assert_eq!(udp, no_route);
    assert_eq!(udp6, no_route);
    assert_eq!(dns, Resolution::Error("No route to host".into()));
}

#[tokio::test]
async fn udp_is_answered_or_refused() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let _dns = Listener::open(lab.b(), ListenKind::Udp, 53, "drydock dns 53".into()).unwrap();
    let expected = Reach::Reached {
        banner: Some("drydock dns 53".into()),
    };
    for ip in [lab.b4, lab.b6] {
        assert_eq!(
            reach(lab.a(), at(ip, 53), Proto::Udp, OK).await,
            expected,
            "{ip}"
        );
        assert_eq!(
            reach(lab.a(), at(ip, 54), Proto::Udp, OK).await,
            Reach::Refused,
            "{ip}"
        );
    }
}

#[tokio::test]
async fn udp_answers_come_from_the_address_asked() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    // A second address on b's interface: without IP_PKTINFO the answer would come from the
    // first, and a's connected socket would ignore it.
    lab.in_b("ip", &["addr", "add", "10.0.0.200/24", "dev", "eth0"]);
    lab.in_b(
        "ip",
        &["addr", "add", "fd00::200/64", "dev", "eth0", "nodad"],
    );
    let _dns = Listener::open(lab.b(), ListenKind::Udp, 53, "second".into()).unwrap();
    for ip in ["10.0.0.200", "fd00::200"] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(
            reach(lab.a(), at(ip, 53), Proto::Udp, OK).await,
            Reach::Reached {
                banner: Some("second".into())
            },
            "{ip}"
        );
    }
}

// On a multi-thread runtime, as the runner may use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_replies_over_v4_and_v6() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let (v4, v6) = tokio::join!(ping(lab.a(), lab.b4, OK), ping(lab.a(), lab.b6, OK));
    assert_eq!(v4, Ping::Reply);
    assert_eq!(v6, Ping::Reply);
    // Concurrent pings from one namespace tell their replies apart.
    let many = futures::future::join_all((0..8).map(|_| ping(lab.a(), lab.b4, OK))).await;
    assert!(many.iter().all(|p| *p == Ping::Reply), "{many:?}");
}

#[tokio::test]
async fn http_get_reads_status_and_body() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let _http = Listener::open(lab.b(), ListenKind::Http, 8080, "drydock web 8080".into()).unwrap();
    for ip in [lab.b4, lab.b6] {
        let outcome = http_get(lab.a(), at(ip, 8080), "web", "/", OK).await;
        assert_eq!(
            outcome,
            Http::Response {
                status: 200,
                body: "drydock web 8080\n".into()
            },
            "{ip}"
        );
        assert_eq!(outcome.to_string(), "HTTP 200 (body: drydock web 8080)");
    }
    assert_eq!(
        http_get(lab.a(), at(lab.b4, 8081), "web", "/", OK).await,
        Http::Refused
    );
    // A TCP banner is not HTTP.
    let _tcp = Listener::open(lab.b(), ListenKind::Tcp, 80, "drydock web 80".into()).unwrap();
    assert!(matches!(
        http_get(lab.a(), at(lab.b4, 80), "web", "/", OK).await,
        Http::Error(e) if e.contains("no HTTP response head")
    ));
}

#[tokio::test]
async fn listener_drop_frees_the_port() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    for kind in [ListenKind::Tcp, ListenKind::Http, ListenKind::Udp] {
        let first = Listener::open(lab.b(), kind, 7000, "first".into()).unwrap();
        assert_eq!(first.port(), 7000);
        let taken = Listener::open(lab.b(), kind, 7000, "taken".into());
        if kind == ListenKind::Udp {
            // UDP sockets with SO_REUSEADDR share a port (documented on `Listener`).
            drop(taken.expect("UDP listeners share a port"));
        } else {
            let error = taken.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{kind}: {error}");
        }
        drop(first);
        if kind != ListenKind::Udp {
            // Shut down at once: nothing listens any more, without yielding to the runtime.
            let to = at(lab.b4, 7000);
            let free = lab
                .a()
                .run(|| std::net::TcpStream::connect_timeout(&to, OK));
            let error = free.unwrap().expect_err("still listening after drop");
            assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused, "{kind}");
        }
        let second = Listener::open(lab.b(), kind, 7000, "second".into())
            .unwrap_or_else(|e| panic!("{kind}: re-bind right after drop: {e}"));
        let proto = if kind == ListenKind::Udp {
            Proto::Udp
        } else {
            Proto::Tcp
        };
        if kind == ListenKind::Http {
            assert_eq!(
                http_get(lab.a(), at(lab.b4, 7000), "b", "/", OK).await,
                Http::Response {
                    status: 200,
                    body: "second\n".into()
                }
            );
        } else {
            assert_eq!(
                reach(lab.a(), at(lab.b4, 7000), proto, OK).await,
                Reach::Reached {
                    banner: Some("second".into())
                },
                "{kind}"
            );
        }
        second.close().await;
        let after_close = reach(lab.a(), at(lab.b4, 7000), proto, OK).await;
        assert_eq!(after_close, Reach::Refused, "{kind}: after close");
    }
}

#[tokio::test]
async fn listener_picks_a_free_port() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let listener = Listener::open(lab.b(), ListenKind::Tcp, 0, "any".into()).unwrap();
    assert_ne!(listener.port(), 0);
    assert_eq!(listener.kind(), ListenKind::Tcp);
    for ip in [lab.b4, lab.b6] {
        assert_eq!(
            reach(lab.a(), at(ip, listener.port()), Proto::Tcp, OK).await,
            Reach::Reached {
                banner: Some("any".into())
            }
        );
    }
}

#[test]
fn listener_needs_a_runtime() {
    let here = Netns::open("/proc/self/ns/net").unwrap();
    let error = Listener::open(&here, ListenKind::Tcp, 0, "x".into()).unwrap_err();
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}

/// A tiny DNS server in b on port 53, UDP and TCP: `web` has two A records, `big` is truncated
/// over UDP (answered over TCP), `fail` gets SERVFAIL; every other name NXDOMAIN.
async fn dns_server(netns: &Netns) -> Vec<tokio::task::JoinHandle<()>> {
    let (udp, tcp) = netns
        .run(|| -> io::Result<_> {
            let udp = std::net::UdpSocket::bind("0.0.0.0:53")?;
            udp.set_nonblocking(true)?;
            let tcp = std::net::TcpListener::bind("0.0.0.0:53")?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })
        .unwrap()
        .unwrap();
    let udp = UdpSocket::from_std(udp).unwrap();
    let tcp = TcpListener::from_std(tcp).unwrap();
    let serve_udp = tokio::spawn(async move {
        let mut buf = vec![0u8; 512];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let answer = dns_answer(&buf[..n], false);
            let _ = udp.send_to(&answer, peer).await;
        }
    });
    let serve_tcp = tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            let _ = dns_over_tcp(stream).await;
        }
    });
    vec![serve_udp, serve_tcp]
}

async fn dns_over_tcp(stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        if buf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if buf.len() >= 2 + len {
                let answer = dns_answer(&buf[2..2 + len], true);
                let mut framed = u16::try_from(answer.len()).unwrap().to_be_bytes().to_vec();
                framed.extend_from_slice(&answer);
                let mut rest = &framed[..];
                while !rest.is_empty() {
                    stream.writable().await?;
                    match stream.try_write(rest) {
                        Ok(n) => rest = &rest[n..],
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(());
            }
        }
        stream.readable().await?;
        let mut chunk = [0u8; 1024];
        match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

fn dns_answer(request: &[u8], over_tcp: bool) -> Vec<u8> {
    let request = Message::from_vec(request).unwrap();
    let query = request.queries[0].clone();
    let mut response = Message::response(request.metadata.id, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.add_query(query.clone());
    let name = query.name().to_ascii();
    let a = |last: u8| {
        Record::from_rdata(
            query.name().clone(),
            60,
            RData::A(A(Ipv4Addr::new(10, 0, 0, last))),
        )
    };
    match name.as_str() {
        "web." if query.query_type() == RecordType::A => {
            response.add_answer(a(42));
            response.add_answer(a(41));
        }
        "web." => {}
        "big." if over_tcp => {
            response.add_answers((100..140).map(a));
        }
        "big." => response.metadata.truncation = true,
        "fail." => response.metadata.response_code = ResponseCode::ServFail,
        _ => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response.to_vec().unwrap()
}

// On a multi-thread runtime, as the runner may use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_reads_answers_and_response_codes() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let server = dns_server(lab.b()).await;
    let dns = at(lab.b4, 53);
    let web = resolve(lab.a(), dns, "web", RecordKind::A, Proto::Udp, OK).await;
    assert_eq!(
        web,
        Resolution::Answers(vec![
            Answered::address("10.0.0.42".parse().unwrap(), 60),
            Answered::address("10.0.0.41".parse().unwrap(), 60)
        ])
    );
    assert_eq!(web.to_string(), "answers 10.0.0.42, 10.0.0.41 (ttl 60)");
    // The same over TCP from the start.
    assert_eq!(
        resolve(lab.a(), dns, "web", RecordKind::A, Proto::Tcp, OK).await,
        web
    );
    assert_eq!(
        resolve(lab.a(), dns, "web", RecordKind::Aaaa, Proto::Udp, OK).await,
        Resolution::NoRecords
    );
    assert_eq!(
        resolve(lab.a(), dns, "db", RecordKind::A, Proto::Udp, OK).await,
        Resolution::NxDomain
    );
    assert_eq!(
        resolve(lab.a(), dns, "fail", RecordKind::A, Proto::Udp, OK).await,
        Resolution::Failure {
            rcode: "SERVFAIL".into()
        }
    );
    // Truncated over UDP: asked again over TCP.
    match resolve(lab.a(), dns, "big", RecordKind::A, Proto::Udp, OK).await {
        Resolution::Answers(records) => {
            assert_eq!(records.len(), 40);
            assert_eq!(
                records[0],
                Answered::address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), 60)
            );
        }
        other => panic!("big: {other}"),
    }
    // No server on that port: the ICMP port unreachable ends the wait at once.
    for proto in [Proto::Udp, Proto::Tcp] {
        let closed = at(lab.b4, 5353);
        let resolution = resolve(lab.a(), closed, "web", RecordKind::A, proto, OK).await;
        assert_eq!(resolution, Resolution::Refused, "{proto:?}");
    }
    for task in server {
        task.abort();
    }
}

/// A DNS query for `name` over TCP to `server` from inside `netns`; the response code.
async fn rcode_over_tcp(netns: &Netns, server: SocketAddr, name: &str) -> ResponseCode {
    let stream = netns
        .run(move || std::net::TcpStream::connect(server))
        .unwrap()
        .unwrap();
    stream.set_nonblocking(true).unwrap();
    let stream = TcpStream::from_std(stream).unwrap();
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    let mut qname = hickory_proto::rr::Name::from_ascii(name).unwrap();
    qname.set_fqdn(true);
    query.add_query(hickory_proto::op::Query::query(qname, RecordType::A));
    let bytes = query.to_vec().unwrap();
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    stream.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.unwrap();
    let answer = Message::from_vec(&answer).unwrap();
    assert_eq!(answer.metadata.id, query.metadata.id);
    answer.metadata.response_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_upstream_answers_nxdomain_on_loopback_only() {
    if !crate::privileged() {
        return;
    }
    let lab = TwoHosts::build().await;
    let upstream = UpstreamDns::start(lab.b()).unwrap();
    let local = resolve(
        lab.b(),
        UPSTREAM,
        "example.invalid",
        RecordKind::A,
        Proto::Udp,
        OK,
    )
    .await;
    assert_eq!(local, Resolution::NxDomain);
    assert_eq!(
        rcode_over_tcp(lab.b(), UPSTREAM, "web").await,
        ResponseCode::NXDomain
    );
    // Loopback only: from the other host, nothing listens on b's address.
    assert_eq!(
        resolve(
            lab.a(),
            at(lab.b4, 53),
            "web",
            RecordKind::A,
            Proto::Udp,
            OK
        )
        .await,
        Resolution::Refused
    );
    // One server per namespace: the port is taken.
    assert!(UpstreamDns::start(lab.b()).is_err());
    upstream.close().await;
    assert_eq!(
        resolve(lab.b(), UPSTREAM, "web", RecordKind::A, Proto::Udp, OK).await,
        Resolution::Refused
    );
}
