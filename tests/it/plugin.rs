//! `drydock plugin serve`: Docker Engine itself (the docker target's private dockerd 20.10 in a
//! lab) runs a network through drydock's bridge driver served as a remote network plugin.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use drydock_conformance::probe::{self, Ping, Proto, RecordData, RecordKind, Resolution};
use drydock_conformance::targets::Target;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_netsim::{Lab, Netns, Topology, link};
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

/// A lab of one host, h1.
async fn one_host_lab(name: &str) -> Lab {
    let topology = Topology::builder(name)
        .segment("lan", "10.10.0.0/24".parse().unwrap())
        .host("h1")
        .build()
        .unwrap();
    Lab::build(topology).await.unwrap()
}

/// `command` started, once it printed its first line, which must start with `ready`; killed
/// when dropped.
fn serving(mut command: Command, ready: &str) -> Killed {
    let mut server = Killed(command.stdout(Stdio::piped()).spawn().unwrap());
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with(ready), "{first}");
    server
}

/// `drydock plugin serve --driver bridge [OPTIONS] --name drydock-bridge --socket SOCKET` in
/// `host`, once it serves.
fn serve_bridge(host: &Netns, socket: &Path, options: &[&str]) -> Killed {
    let mut command = host.command(env!("CARGO_BIN_EXE_drydock"), None);
    command
        .args(["plugin", "serve", "--driver", "bridge"])
        .args(options)
        .args(["--name", "drydock-bridge", "--socket"])
        .arg(socket);
    serving(command, "serving the bridge driver")
}

/// `drydock plugin check --socket SOCKET` in `host`: whether it passed, and what it printed.
fn plugin_check(host: &Netns, socket: &Path) -> (bool, String) {
    let mut check = host.command(env!("CARGO_BIN_EXE_drydock"), None);
    let output = check
        .args(["plugin", "check", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), printed)
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
    let lab = one_host_lab("plugin").await;
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
    let server = serve_bridge(&h1, &socket, &["--ipam", "default"]);

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

    // The plugin's IPAM too: the gateway given replaces the one its pool took, containers get
    // the lowest free address or the one asked for.
    let create = "docker network create -d drydock-bridge --ipam-driver drydock-bridge \
                  --subnet 10.78.0.0/24 --gateway 10.78.0.254 pipam";
    docker(&target, create).await.unwrap();
    docker(&target, "docker run -d --name a1 --network pipam busybox")
        .await
        .unwrap();
    let a2 = "docker run -d --name a2 --network pipam --ip 10.78.0.50 busybox";
    docker(&target, a2).await.unwrap();
    let pipam = target.inspect_network("h1", "pipam").await.unwrap();
    assert_eq!(pipam["IPAM"]["Driver"], "drydock-bridge");
    assert_eq!(
        pipam["IPAM"]["Config"][0]["Gateway"], "10.78.0.254",
        "{pipam}"
    );
    let a1 = target.inspect_container("h1", "a1").await.unwrap();
    assert_eq!(
        a1["NetworkSettings"]["Networks"]["pipam"]["IPAddress"],
        "10.78.0.1"
    );
    let a1_ns = target.container_netns("h1", "a1").await.unwrap();
    let to_a2 = probe::ping(
        &a1_ns,
        "10.78.0.50".parse().unwrap(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(to_a2, Ping::Reply);

    // Removing the containers and the networks removes the plugin's links.
    docker(&target, "docker rm -f web client a1 a2")
        .await
        .unwrap();
    docker(&target, "docker network rm pnet pipam")
        .await
        .unwrap();
    let on_host = link::list(&h1).await.unwrap();
    let left: Vec<&str> = (on_host.iter())
        .map(|l| l.name.as_str())
        .filter(|n| *n == bridge || n.starts_with("dd") || n.starts_with("veth"))
        .collect();
    assert!(left.is_empty(), "left on h1: {left:?}");

    drop(server);
    target.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

/// `drydock plugin check` passes the served bridge driver, in the lab host it works in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_passes_the_served_bridge_driver() {
    if !crate::privileged() {
        return;
    }
    let lab = one_host_lab("pcheck").await;
    let h1 = lab.host("h1").unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("drydock-bridge.sock");
    let server = serve_bridge(&h1, &socket, &[]);

    let (passed, printed) = plugin_check(&h1, &socket);
    assert!(passed, "{printed}");
    assert!(printed.contains("6 of 6 checks passed"), "{printed}");
    // The checks leave nothing: no bridge or link of theirs in the plugin's namespace.
    let left: Vec<String> = (link::list(&h1).await.unwrap().into_iter())
        .map(|l| l.name)
        .filter(|n| n.starts_with("br-") || n.starts_with("dd") || n.starts_with("veth"))
        .collect();
    assert!(left.is_empty(), "left in h1: {left:?}");
    drop(server);

    // Nothing served there any more: every check fails, saying why, and so does the command.
    let (passed, printed) = plugin_check(&h1, &socket);
    assert!(!passed, "{printed}");
    assert!(printed.contains("0 of 6 checks passed"), "{printed}");
    assert!(printed.contains("FAIL  activate"), "{printed}");
}

/// `drydock plugin check` passes a plugin not written in Rust (a small Python plugin,
/// `tests/plugins/defective_driver.py`) and fails each of its defects with the message the
/// defect deserves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_fails_each_defect_of_a_python_plugin_precisely() {
    if !crate::privileged() {
        return;
    }
    let lab = one_host_lab("pdefect").await;
    let h1 = lab.host("h1").unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let plugin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/plugins/defective_driver.py"
    );
    let defects = [
        ("none", "", ""),
        (
            "garbage-manifest",
            "FAIL  activate",
            "answered no JSON object",
        ),
        ("planet-scope", "FAIL  capabilities", "Scope \"planet\""),
        (
            "address-rewritten",
            "FAIL  lifecycle",
            "driver modified interface address",
        ),
        (
            "missing-link",
            "FAIL  lifecycle",
            "is no link of the plugin's namespace",
        ),
        (
            "leaky",
            "FAIL  lifecycle",
            "still there after DeleteEndpoint",
        ),
        ("slow", "FAIL  capabilities", "no answer within 5 s"),
        (
            "accepts-anything",
            "FAIL  unknown ids",
            "never created succeeded",
        ),
    ];
    for (defect, check, message) in defects {
        let socket = dir.path().join(format!("{defect}.sock"));
        let mut python = h1.command("python3", None);
        python.arg(plugin).arg(&socket).arg(defect);
        let server = serving(python, "serving");
        let (passed, printed) = plugin_check(&h1, &socket);
        if defect == "none" {
            assert!(passed, "{printed}");
            assert!(printed.contains("6 of 6 checks passed"), "{printed}");
            continue;
        }
        assert!(!passed, "{defect} passed:\n{printed}");
        let failed: Vec<&str> = printed.lines().filter(|l| l.starts_with("FAIL")).collect();
        assert!(
            failed.len() == 1 && failed[0].starts_with(check) && failed[0].contains(message),
            "{defect}: expected only `{check}` failing with {message:?}:\n{printed}"
        );
        drop(server);
    }
}
