//! The runtime crate's integration tests: one binary, a module per area.

mod engine;
mod firewall;
mod ipvlan;
mod macvlan;
mod proxy;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use drydock_netsim::Netns;
use drydock_runtime::engine::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// True when this test may create namespaces; see [`drydock_netsim::userns::privileged_or_skip`].
pub(crate) fn privileged() -> bool {
    drydock_netsim::userns::privileged_or_skip()
}

/// `docker network create -d DRIVER --subnet SUBNET [--ip-range R] [-o K=V...] NAME`.
pub(crate) fn network(
    driver: &str,
    name: &str,
    subnet: &str,
    range: Option<&str>,
    options: serde_json::Value,
) -> drydock_runtime::api::body::NetworkCreate {
    serde_json::from_value(serde_json::json!({
        "Name": name,
        "Driver": driver,
        "Options": options,
        "IPAM": {"Driver": "default", "Config": [{"Subnet": subnet, "IPRange": range}]},
    }))
    .unwrap()
}

/// `docker run -d --name NAME --network NETWORK busybox`.
pub(crate) async fn run(engine: &mut Engine, name: &str, network: &str) {
    let body: drydock_runtime::api::body::ContainerCreate =
        serde_json::from_value(serde_json::json!({
            "Image": "busybox",
            "HostConfig": {"NetworkMode": network},
        }))
        .unwrap();
    engine.create_container(name, &body).unwrap();
    engine.start_container(name).await.unwrap();
}

/// The address of `container` on `network`, from inspect.
pub(crate) fn ip(engine: &Engine, container: &str, network: &str) -> IpAddr {
    let json = engine.inspect_container(container).unwrap();
    json["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A TCP server in `netns` on `port` that greets every client with `name`.
pub(crate) fn serve(netns: &Netns, port: u16, name: &'static str) -> tokio::task::JoinHandle<()> {
    let listener = netns
        .run(|| std::net::TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(name.as_bytes()).await;
        }
    })
}

/// The greeting of the server at `to`, connecting from `from`; `None` when nothing answered.
pub(crate) async fn greeting(from: &Netns, to: SocketAddr, wait: Duration) -> Option<String> {
    let socket = from
        .run(|| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None))
        .unwrap()
        .unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    let talk = async {
        let mut stream: TcpStream = socket.connect(to).await.ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        Some(text)
    };
    tokio::time::timeout(wait, talk).await.ok().flatten()
}

/// The names of the links of `netns`, sorted.
pub(crate) async fn link_names(netns: &Netns) -> Vec<String> {
    use futures::TryStreamExt;
    use netlink_packet_route::link::LinkAttribute;
    let nl = netns.netlink().unwrap();
    let mut names: Vec<String> = nl
        .link()
        .get()
        .execute()
        .try_filter_map(|m| async move {
            Ok(m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }))
        })
        .try_collect()
        .await
        .unwrap();
    nl.close().await;
    names.sort();
    names
}
