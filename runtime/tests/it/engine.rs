//! The engine on a lab host, observed from inside namespaces: containers on a user-defined
//! bridge reach each other and nothing else, published ports answer from another host, a taken
//! port fails with Docker's text and leaves nothing behind, the embedded DNS answers
//! through its NAT rules and forgets a disconnected container at once, and a started
//! container's links are up (and so send) when its start returns.

use crate::{greeting, ip, link_names, serve};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::body::{ContainerCreate, NetworkConnect, NetworkCreate};
use drydock_runtime::engine::Engine;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::json;
use tokio::net::UdpSocket;

/// Where success is expected: generous, it is never waited out.
const OK: Duration = Duration::from_secs(3);
/// Where a drop is expected: short, it is always waited out.
const DROP: Duration = Duration::from_millis(400);

const H1: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 10, 0, 1));

struct Setup {
    lab: Lab,
    engine: Engine,
}

async fn setup() -> Setup {
    let (lab, mut engines) = crate::lab_with_engines(crate::lan(&["h1", "ext"]), &["h1"]).await;
    let engine = engines.pop().unwrap();
    Setup { lab, engine }
}

fn network(name: &str, options: serde_json::Value) -> NetworkCreate {
    serde_json::from_value(json!({"Name": name, "Driver": "bridge", "Options": options})).unwrap()
}

/// `docker run -d --name NAME --network NETWORK [-p PORTS]`.
async fn run(
    engine: &mut Engine,
    name: &str,
    network: &str,
    ports: serde_json::Value,
) -> Result<(), String> {
    let body: ContainerCreate = serde_json::from_value(json!({
        "Image": "busybox",
        "HostConfig": {"NetworkMode": network, "PortBindings": ports},
    }))
    .unwrap();
    engine.create_container(name, &body).map_err(|e| e.0)?;
    engine.start_container(name).await.map_err(|e| e.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_networks_connect_their_containers_and_isolate_the_rest() {
    if !crate::privileged() {
        return;
    }
    let Setup {
        lab: _lab,
        mut engine,
    } = setup().await;
    engine
        .create_network(&network("front", json!({})))
        .await
        .unwrap();
    engine
        .create_network(&network("back", json!({})))
        .await
        .unwrap();
    engine
        .create_network(&network(
            "quiet",
            json!({"com.docker.network.bridge.enable_icc": "false"}),
        ))
        .await
        .unwrap();
    for (name, net) in [
        ("web", "front"),
        ("client", "front"),
        ("other", "back"),
        ("q1", "quiet"),
        ("q2", "quiet"),
    ] {
        run(&mut engine, name, net, json!({})).await.unwrap();
    }
    // Docker's pool order and lowest-free addresses.
    assert_eq!(
        ip(&engine, "web", "front"),
        "172.18.0.2".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        ip(&engine, "other", "back"),
        "172.19.0.2".parse::<IpAddr>().unwrap()
    );
    let web = engine.container_netns("web").unwrap();
    let q2 = engine.container_netns("q2").unwrap();
    let _servers = [serve(&web, 80, "web"), serve(&q2, 80, "q2")];
    let web_ip = SocketAddr::new(ip(&engine, "web", "front"), 80);
    let q2_ip = SocketAddr::new(ip(&engine, "q2", "quiet"), 80);
    let client = engine.container_netns("client").unwrap();
    assert_eq!(greeting(&client, web_ip, OK).await.as_deref(), Some("web"));
    let other = engine.container_netns("other").unwrap();
    assert_eq!(
        greeting(&other, web_ip, DROP).await,
        None,
        "isolation between bridge networks"
    );
    let q1 = engine.container_netns("q1").unwrap();
    assert_eq!(greeting(&q1, q2_ip, DROP).await, None, "enable_icc=false");
    // Connected to front too, `other` reaches web.
    let connect: NetworkConnect = serde_json::from_value(json!({"Container": "other"})).unwrap();
    engine.connect("front", &connect).await.unwrap();
    assert_eq!(greeting(&other, web_ip, OK).await.as_deref(), Some("web"));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_answer_from_another_host_and_a_taken_port_leaves_nothing() {
    if !crate::privileged() {
        return;
    }
    let Setup { lab, mut engine } = setup().await;
    engine
        .create_network(&network("app", json!({})))
        .await
        .unwrap();
    run(
        &mut engine,
        "web",
        "app",
        json!({"80/tcp": [{"HostPort": "8080"}]}),
    )
    .await
    .unwrap();
    let _server = serve(&engine.container_netns("web").unwrap(), 80, "web");
    let ext = lab.host("ext").unwrap();
    assert_eq!(
        greeting(ext, SocketAddr::new(H1, 8080), OK)
            .await
            .as_deref(),
        Some("web")
    );

    let links_before = link_names(engine.host()).await;
    let error = run(
        &mut engine,
        "twin",
        "app",
        json!({"80/tcp": [{"HostPort": "8080"}]}),
    )
    .await
    .unwrap_err();
    assert!(
        error.ends_with("Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{error}"
    );
    assert_eq!(
        link_names(engine.host()).await,
        links_before,
        "the failed start left links behind"
    );
    let twin = engine.inspect_container("twin").unwrap();
    assert_eq!(twin["State"]["Status"], "created");
    // The address the failed start took is free again: the next container gets it.
    run(&mut engine, "next", "app", json!({})).await.unwrap();
    assert_eq!(
        ip(&engine, "next", "app"),
        "172.18.0.3".parse::<IpAddr>().unwrap()
    );
    // And port 8080 still goes to web.
    assert_eq!(
        greeting(ext, SocketAddr::new(H1, 8080), OK)
            .await
            .as_deref(),
        Some("web")
    );
    engine.shutdown().await;
}

/// Asks the resolver at 127.0.0.11:53 from inside `netns`; `None` when it stays silent.
async fn ask(netns: &Netns, name: &str, kind: RecordType) -> Option<Message> {
    let socket = netns
        .run(|| std::net::UdpSocket::bind(("127.0.0.1", 0)))
        .unwrap()
        .unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = UdpSocket::from_std(socket).unwrap();
    let mut query = Message::new(7, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    socket
        .send_to(&query.to_vec().unwrap(), ("127.0.0.11", 53))
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let len = tokio::time::timeout(DROP * 2, socket.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(Message::from_vec(&buf[..len]).unwrap())
}

fn addresses(message: &Message) -> Vec<IpAddr> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_dns_answers_on_port_53_and_forgets_a_disconnected_container() {
    if !crate::privileged() {
        return;
    }
    let Setup {
        lab: _lab,
        mut engine,
    } = setup().await;
    engine
        .create_network(&network("app", json!({})))
        .await
        .unwrap();
    run(&mut engine, "web", "app", json!({})).await.unwrap();
    run(&mut engine, "client", "app", json!({})).await.unwrap();
    let client = engine.container_netns("client").unwrap();
    // The container keeps port 53 for itself: the resolver listens elsewhere, behind NAT.
    let _own_dns = client
        .run(|| std::net::UdpSocket::bind(("0.0.0.0", 53)))
        .unwrap()
        .unwrap();
    let answer = ask(&client, "web.", RecordType::A)
        .await
        .expect("an answer for web");
    assert_eq!(addresses(&answer), vec![ip(&engine, "web", "app")]);
    assert_eq!(answer.answers[0].ttl, 600);
    // AAAA for a name without IPv6: an empty NOERROR answer, not a forward.
    let answer = ask(&client, "web.", RecordType::AAAA)
        .await
        .expect("an answer for web AAAA");
    assert!(answer.answers.is_empty());
    engine.disconnect("app", "web", false).await.unwrap();
    // Forwarded now (to the host's 127.0.0.1, where nothing answers): silence.
    assert_eq!(ask(&client, "web.", RecordType::A).await, None);
    engine.shutdown().await;
}

/// The operational state of every link of `netns`, by name, from a dump: unlike a request for
/// one link, a dump reports the state as it is, without running the kernel's pending linkwatch
/// work for the link first.
async fn oper_states(
    netns: &Netns,
) -> std::collections::BTreeMap<String, netlink_packet_route::link::State> {
    use futures::TryStreamExt;
    use netlink_packet_route::link::{LinkAttribute, State};
    let nl = netns.netlink().unwrap();
    let states = nl
        .link()
        .get()
        .execute()
        .try_filter_map(|m| async move {
            let name = m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            });
            let state = m.attributes.iter().find_map(|a| match a {
                LinkAttribute::OperState(s) => Some(*s),
                _ => None,
            });
            Ok(name.map(|name| (name, state.unwrap_or(State::Unknown))))
        })
        .try_collect()
        .await
        .unwrap();
    nl.close().await;
    states
}

/// The host end of a veth comes up before the container end, without carrier; the container
/// end brings both carriers (and the bridge's, with its first port), but the kernel activates
/// their queues only on its linkwatch work, which runs later. Until then they drop what they
/// send: the bridge's ARP reply to the container's first packet, so that a query answered at
/// once by an ICMP port unreachable took ARP's retry, a second, and a probe timed out. Start
/// returns only once that work is done: a dump right after it shows every link UP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_container_sends_at_once_its_links_are_up_when_start_returns() {
    use netlink_packet_route::link::State;
    if !crate::privileged() {
        return;
    }
    let Setup {
        lab: _lab,
        mut engine,
    } = setup().await;
    // Each start races the kernel's work and loses now and then: fifty make a loss all but sure.
    for i in 0..50 {
        let name = format!("c{i}");
        run(&mut engine, &name, "bridge", json!({})).await.unwrap();
        let host = oper_states(engine.host()).await;
        let sandbox = oper_states(&engine.container_netns(&name).unwrap()).await;
        for (netns, states) in [("docker host", &host), (name.as_str(), &sandbox)] {
            for (link, state) in states {
                // lo has no carrier to report: UNKNOWN, always.
                if link != "lo" {
                    assert_eq!(*state, State::Up, "{link} in {netns} after starting {name}");
                }
            }
        }
    }
    engine.shutdown().await;
}
