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
use drydock_conformance::targets::reference::ReferenceTarget;
use drydock_netsim::{Lab, Netns, Topology, link};
use drydock_runtime::api::cli;
use drydock_runtime::api::dispatch::dispatch;
use serde_json::{Value, json};

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

/// `drydock plugin serve --driver bridge --ipam default --name drydock-ipam --socket SOCKET`
/// in `host`, once it serves: the built-in IPAM as an IPAM plugin.
fn serve_ipam(host: &Netns, socket: &Path) -> Killed {
    let mut command = host.command(env!("CARGO_BIN_EXE_drydock"), None);
    command
        .args(["plugin", "serve", "--driver", "bridge", "--ipam", "default"])
        .args(["--name", "drydock-ipam", "--socket"])
        .arg(socket);
    serving(command, "serving the bridge driver")
}

/// A docker line on h1 of `target`, as a scenario step runs it.
async fn docker<T: Target>(target: &T, line: &str) -> Result<String, String> {
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

/// The steps of the remote IPAM comparison on h1 of `target`, the IPAM plugin `drydock-ipam`
/// serving in `plugins`: networks of the built-in bridge and macvlan drivers whose addresses
/// come from the plugin (and one of the built-in IPAM, for its inspect), containers with and
/// without `--ip`, an address refused, a network connected and disconnected; then everything
/// removed, and the pools found released (the same subnet made again). What matters of it, to
/// compare.
async fn remote_ipam_steps<T: Target>(target: &T) -> Value {
    let ok = |line: &'static str| async move {
        (docker(target, line).await)
            .unwrap_or_else(|e| panic!("{}: {line}: {e}", target.describe()))
    };
    ok(
        "docker network create -d bridge --ipam-driver drydock-ipam --ipv6 \
        --subnet 10.78.0.0/24 --gateway 10.78.0.254 --subnet fd00:78::/64 pnet",
    )
    .await;
    ok("docker network create --ipam-driver drydock-ipam pauto").await;
    ok("docker network create --subnet 10.91.0.0/24 --ip-range 10.91.0.128/25 plain").await;
    ok(
        "docker network create -d macvlan --ipam-driver drydock-ipam --subnet 10.10.0.0/24 \
        --ip-range 10.10.0.192/27 --gateway 10.10.0.1 -o parent=eth0 pmac",
    )
    .await;
    ok("docker run -d --name c1 --network pnet busybox").await;
    ok("docker run -d --name c2 --network pnet --ip 10.78.0.50 busybox").await;
    ok("docker run -d --name c5 --network pmac busybox").await;
    let taken = docker(
        target,
        "docker run -d --name c3 --network pnet --ip 10.78.0.50 busybox",
    );
    let taken = taken.await.expect_err("a taken address");
    let refused = |line: &'static str| async move { (docker(target, line).await).expect_err(line) };
    let no_ipam = refused("docker network create --ipam-driver drydock-bridge nipam").await;
    let missing = refused("docker network create --ipam-driver nosuch nipam").await;
    let no_v6 = refused("docker network create --ipam-driver drydock-ipam --ipv6 nipam").await;
    ok("docker network connect pauto c1").await;
    let c1_ns = target.container_netns("h1", "c1").await.unwrap();
    let pinged = probe::ping(
        &c1_ns,
        "10.78.0.50".parse().unwrap(),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(pinged, Ping::Reply, "{}", target.describe());

    let refusals = [taken, no_ipam, missing, no_v6];
    let mut seen = json!({"refused": refusals, "networks": {}, "containers": {}});
    for name in ["pnet", "pauto", "pmac", "plain"] {
        let network = target.inspect_network("h1", name).await.unwrap();
        seen["networks"][name] = json!({"IPAM": network["IPAM"], "Driver": network["Driver"]});
    }
    let fields = [
        "IPAddress",
        "IPPrefixLen",
        "Gateway",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "IPv6Gateway",
    ];
    for (container, network) in [
        ("c1", "pnet"),
        ("c1", "pauto"),
        ("c2", "pnet"),
        ("c5", "pmac"),
    ] {
        let inspected = target.inspect_container("h1", container).await.unwrap();
        let settings = &inspected["NetworkSettings"]["Networks"][network];
        let kept: serde_json::Map<String, Value> = (fields.iter())
            .map(|f| (f.to_string(), settings[f].clone()))
            .collect();
        seen["containers"][format!("{container} on {network}")] = Value::Object(kept);
    }

    ok("docker network disconnect pauto c1").await;
    ok("docker rm -f c1 c2 c3 c5").await;
    ok("docker network rm pnet pauto pmac plain").await;
    // Every pool went back: the same subnet again, its gateway the plugin's (.1), the first
    // container the next address.
    ok("docker network create -d bridge --ipam-driver drydock-ipam --subnet 10.78.0.0/24 pnet")
        .await;
    ok("docker run -d --name c4 --network pnet busybox").await;
    let c4 = target.inspect_container("h1", "c4").await.unwrap();
    seen["again"] = c4["NetworkSettings"]["Networks"]["pnet"]["IPAddress"].clone();
    ok("docker rm -f c4").await;
    ok("docker network rm pnet").await;
    seen
}

/// A network whose addresses come from an IPAM plugin (drydock's built-in IPAM served as one)
/// has the same pools, gateways and container addresses on the reference engine as on Docker
/// Engine 20.10 (a private dockerd in a lab), and gives its pools back when removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_engine_uses_an_ipam_plugin_as_dockerd_does() {
    if !crate::privileged() {
        return;
    }
    let run_id = format!("it{}i", std::process::id());
    let hosts = ["h1".to_string()];

    let lab = one_host_lab("pipamref").await;
    let h1 = lab.host("h1").unwrap().clone();
    let reference = ReferenceTarget::<false>::start(&lab, &hosts, &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plugins = reference.plugins_dir("h1").unwrap();
    std::fs::create_dir_all(&plugins).unwrap();
    let server = serve_ipam(&h1, &plugins.join("drydock-ipam.sock"));
    let no_ipam = serve_bridge(&h1, &plugins.join("drydock-bridge.sock"), &[]);
    let on_reference = remote_ipam_steps(&reference).await;
    drop((server, no_ipam));
    reference.stop().await;
    drop(lab);

    let lab = one_host_lab("pipamdkr").await;
    let h1 = lab.host("h1").unwrap().clone();
    let docker = DockerTarget::start(&lab, &hosts, &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plugins = docker.plugins_dir("h1").unwrap();
    let server = serve_ipam(&h1, &plugins.join("drydock-ipam.sock"));
    let no_ipam = serve_bridge(&h1, &plugins.join("drydock-bridge.sock"), &[]);
    let on_docker = remote_ipam_steps(&docker).await;
    drop((server, no_ipam));
    docker.shutdown().await.unwrap_or_else(|e| panic!("{e}"));

    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    assert_eq!(
        pretty(&on_reference),
        pretty(&on_docker),
        "reference (left) and Docker (right) differ"
    );
    // What both did, as expected of dockerd.
    let pnet = &on_docker["networks"]["pnet"]["IPAM"];
    assert_eq!(pnet["Driver"], "drydock-ipam", "{on_docker}");
    assert_eq!(
        on_docker["containers"]["c1 on pnet"]["IPAddress"],
        "10.78.0.1"
    );
    assert_eq!(
        on_docker["containers"]["c1 on pnet"]["Gateway"],
        "10.78.0.254"
    );
    assert_eq!(
        on_docker["containers"]["c2 on pnet"]["IPAddress"],
        "10.78.0.50"
    );
    assert_eq!(on_docker["again"], "10.78.0.2");
    // A subnet given without a gateway: inspect shows none, whatever the IPAM.
    let plain = &on_docker["networks"]["plain"]["IPAM"]["Config"][0];
    assert_eq!(plain.get("Gateway"), None, "{plain}");
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
        (
            "oper-info-refused",
            "FAIL  lifecycle",
            "remote: no info today (dockerd asks after every join",
        ),
        (
            "no-oper-info",
            "FAIL  lifecycle",
            "EndpointOperInfo answered 404",
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
