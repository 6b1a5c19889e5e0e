//! The runtime crate's integration tests: one binary, a module per area.

mod engine;
mod firewall;
mod ipvlan;
mod macvlan;
mod overlay;
mod plugin;
mod proxy;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use drydock_netsim::{Lab, Netns, Topology};
use drydock_runtime::engine::{Engine, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// True when this test may create namespaces; see [`drydock_netsim::userns::privileged_or_skip`].
pub(crate) fn privileged() -> bool {
    drydock_netsim::userns::privileged_or_skip()
}

/// `hosts` on one segment `lan`, 10.10.0.0/24, at 10.10.0.1, .2... in that order.
pub(crate) fn lan(hosts: &[&str]) -> Topology {
    let mut builder = Topology::builder("lab").segment("lan", "10.10.0.0/24".parse().unwrap());
    for (n, host) in (1..).zip(hosts) {
        builder = builder.host_at(host, Ipv4Addr::new(10, 10, 0, n));
    }
    builder.build().unwrap()
}

/// The lab of `topology` with an engine on each of `hosts`, in that order (upstream resolver
/// 127.0.0.1, no state directory).
pub(crate) async fn lab_with_engines(topology: Topology, hosts: &[&str]) -> (Lab, Vec<Engine>) {
    let lab = Lab::build(topology).await.unwrap();
    let mut engines = Vec::new();
    for host in hosts {
        let options = Options {
            dns: Vec::new(),
            host_resolvers: vec!["127.0.0.1".parse().unwrap()],
            state_dir: None,
            ..Options::default()
        };
        engines.push(
            Engine::start(lab.host(host).unwrap(), options)
                .await
                .unwrap(),
        );
    }
    (lab, engines)
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
    let links = drydock_netsim::link::list(netns).await.unwrap();
    let mut names: Vec<String> = links.into_iter().map(|link| link.name).collect();
    names.sort();
    names
}
