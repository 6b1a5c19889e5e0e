//! `drydock plugin serve`: Docker Engine itself (the docker target's private dockerd 20.10 in a
//! lab) runs a network through drydock's bridge driver served as a remote network plugin.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use drydock_conformance::probe::{self, Ping, Proto, RecordData, RecordKind, Resolution};
use drydock_conformance::targets::Target;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_netsim::{Lab, Topology, link};
use drydock_runtime::api::cli;
use drydock_runtime::api::dispatch::dispatch;

/// A child process killed when dropped (also when the test panics).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A docker line on h1 of `target`, as a scenario step runs it.
async fn docker(target: &DockerTarget, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let command = cli::parse(&words).map_err(|e| e.message)?;
    let api = target.api("h1").map_err(|e| e.message)?;
    let reply = dispatch(api, &command).await;
    reply.result().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_dockerd_runs_a_network_through_the_served_bridge_driver() {
    if !crate::privileged() {
        return;
    }
    let topology = Topology::builder("plugin")
        .segment("lan", "10.10.0.0/24".parse().unwrap())
        .host("h1")
        .build()
        .unwrap();
    let lab = Lab::build(topology).await.unwrap();
    let run_id = format!("it{}p", std::process::id());
    let target = DockerTarget::start(&lab, &["h1".to_string()], &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let h1 = lab.host("h1").unwrap().clone();

    // The plugin, in h1's network namespace, its socket where this dockerd looks for plugins.
    let socket = target
        .plugins_dir("h1")
        .unwrap()
        .join("drydock-bridge.sock");
    let mut server = h1.command(env!("CARGO_BIN_EXE_drydock"), None);
    server
        .args([
            "plugin",
            "serve",
            "--driver",
            "bridge",
            "--name",
            "drydock-bridge",
        ])
        .arg("--socket")
        .arg(&socket)
        .stdout(Stdio::piped());
    let mut server = Killed(server.spawn().unwrap());
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("serving the bridge driver"), "{first}");

    docker(
        &target,
        "docker network create -d drydock-bridge --subnet 10.77.0.0/24 pnet",
    )
    .await
    .unwrap();
    docker(&target, "docker run -d --name web --network pnet busybox")
        .await
        .unwrap();
    docker(
        &target,
        "docker run -d --name client --network pnet busybox",
    )
    .await
    .unwrap();
    let network = target.inspect_network("h1", "pnet").await.unwrap();
    assert_eq!(network["Driver"], "drydock-bridge");
    let web = target.inspect_container("h1", "web").await.unwrap();
    let web_ip: IpAddr = (web["NetworkSettings"]["Networks"]["pnet"]["IPAddress"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(web_ip.to_string(), "10.77.0.2");

    // The client reaches web through the served bridge, and dockerd's DNS names it.
    let client = target.container_netns("h1", "client").await.unwrap();
    let pinged = probe::ping(&client, web_ip, Duration::from_secs(2)).await;
    assert_eq!(pinged, Ping::Reply);
    let dns = SocketAddr::from(([127, 0, 0, 11], 53));
    let timeout = Duration::from_secs(2);
    let answer = probe::resolve(&client, dns, "web", RecordKind::A, Proto::Udp, timeout).await;
    match answer {
        Resolution::Answers(records) => {
            assert_eq!(records[0].data, RecordData::Address(web_ip), "{records:?}")
        }
        other => panic!("web did not resolve: {other}"),
    }
    // The container's link is the one the plugin made, moved and renamed by dockerd.
    let links = link::list(&client).await.unwrap();
    assert!(links.iter().any(|l| l.name == "eth0"), "{links:?}");
    let id12 = &network["Id"].as_str().unwrap()[..12];
    let bridge = format!("br-{id12}");
    let on_host = link::list(&h1).await.unwrap();
    assert!(on_host.iter().any(|l| l.name == bridge), "{on_host:?}");

    // Removing the containers and the network removes the plugin's links.
    docker(&target, "docker rm -f web client").await.unwrap();
    docker(&target, "docker network rm pnet").await.unwrap();
    let on_host = link::list(&h1).await.unwrap();
    let left: Vec<&str> = (on_host.iter())
        .map(|l| l.name.as_str())
        .filter(|n| *n == bridge || n.starts_with("dd") || n.starts_with("veth"))
        .collect();
    assert!(left.is_empty(), "left on h1: {left:?}");

    drop(server);
    target.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}
