//! Swarm mode and the overlay driver: three engines in one process, sharing an in-process
//! control plane, on one segment.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::body::{NetworkCreate, SwarmInit, SwarmJoin};
use drydock_runtime::cluster::MemoryHub;
use drydock_runtime::engine::{ControlPlane, Engine, Options};
use drydock_runtime::plugin::discovery::PluginDirs;

/// h1 (manager), h2 and h3 (workers) at 10.10.0.1, .2, .3, in one swarm.
async fn swarm() -> (Lab, Vec<Engine>) {
    let hosts = ["h1", "h2", "h3"];
    let lab = Lab::build(crate::lan(&hosts)).await.unwrap();
    let hub = Arc::new(MemoryHub::new());
    let mut engines = Vec::new();
    for host in hosts {
        let options = Options {
            host_resolvers: vec!["127.0.0.1".parse().unwrap()],
            hostname: host.into(),
            control_plane: ControlPlane::Hub(hub.clone()),
            ..Options::default()
        };
        engines.push(
            Engine::start(lab.host(host).unwrap(), options)
                .await
                .unwrap(),
        );
    }
    form_swarm(&mut engines).await;
    (lab, engines)
}

/// The first engine (at 10.10.0.1) inits a swarm; the others join it as workers.
async fn form_swarm(engines: &mut [Engine]) {
    let init = SwarmInit {
        advertise_addr: "10.10.0.1".into(),
        ..SwarmInit::default()
    };
    engines[0].swarm_init(&init).await.unwrap();
    let token = engines[0].swarm_inspect().unwrap()["JoinTokens"]["Worker"]
        .as_str()
        .unwrap()
        .to_string();
    for engine in &mut engines[1..] {
        let join = SwarmJoin {
            remote_addrs: vec!["10.10.0.1:2377".into()],
            join_token: token.clone(),
            ..SwarmJoin::default()
        };
        engine.swarm_join(&join).await.unwrap();
    }
}

fn overlay(name: &str, attachable: bool) -> NetworkCreate {
    NetworkCreate {
        name: name.into(),
        driver: "overlay".into(),
        attachable,
        ..NetworkCreate::default()
    }
}

/// `cmd args...` in `netns`: its standard output, or why it failed.
fn run_in(netns: &Netns, program: &str, args: &[&str]) -> Result<String, String> {
    let output = netns
        .command(program, None)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

fn address(engine: &Engine, container: &str, network: &str) -> String {
    let json = engine.inspect_container(container).unwrap();
    json["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits (at most 5 s) until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not after 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_on_an_overlay_reach_each_other_across_hosts_and_a_dead_node_leaves_no_trace() {
    if !crate::privileged() {
        return;
    }
    let (_lab, mut engines) = swarm().await;
    engines[0]
        .create_network(&overlay("ov1", true))
        .await
        .unwrap();
    crate::run(&mut engines[0], "c1", "ov1").await;
    crate::run(&mut engines[1], "c2", "ov1").await;
    let c2 = address(&engines[1], "c2", "ov1");
    let c1_ns = engines[0].container_netns("c1").unwrap();
    run_in(&c1_ns, "ping", &["-c", "1", "-W", "2", &c2]).expect("c1 pings c2 across hosts");
    let mtu = run_in(&c1_ns, "cat", &["/sys/class/net/eth0/mtu"]).unwrap();
    assert_eq!(mtu.trim(), "1450");

    // h1's VXLAN device knows c2's MAC at h2, statically; nothing is learned.
    let sandbox = engines[0].overlay_sandbox("ov1").expect("ov1 is on h1");
    let fdb = || run_in(&sandbox, "bridge", &["fdb", "show", "dev", "vxlan0"]).unwrap();
    let mac = engines[1].inspect_container("c2").unwrap()["NetworkSettings"]["Networks"]["ov1"]
        ["MacAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = |fdb: String| {
        fdb.lines().any(|l| {
            l.starts_with(&format!("{mac} dst 10.10.0.2 ")) && l.ends_with("self permanent")
        })
    };
    assert!(entry(fdb()), "{}", fdb());
    let neighbours = || run_in(&sandbox, "ip", &["neigh", "show", "dev", "vxlan0"]).unwrap();
    assert!(
        neighbours().contains(&format!("{c2} lladdr {mac} PERMANENT")),
        "{}",
        neighbours()
    );

    // h2 dies: its endpoints leave h1's forwarding table and neighbours.
    engines[1].kill().await;
    eventually("c2 gone from h1's FDB", || !entry(fdb())).await;
    eventually("c2 gone from h1's neighbours", || {
        !neighbours().contains(&c2)
    })
    .await;
    assert!(engines[1].is_dead());
    for engine in engines {
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlays_are_a_managers_to_make_and_attachable_ones_a_workers_to_join() {
    if !crate::privileged() {
        return;
    }
    let (_lab, mut engines) = swarm().await;
    let refused = engines[1]
        .create_network(&overlay("ov1", true))
        .await
        .unwrap_err();
    assert_eq!(
        refused.0,
        "Cannot create a multi-host network from a worker node. Please create the network from a manager node."
    );
    engines[0]
        .create_network(&overlay("ov1", true))
        .await
        .unwrap();
    engines[0]
        .create_network(&overlay("closed", false))
        .await
        .unwrap();
    let body: drydock_runtime::api::body::ContainerCreate = serde_json::from_value(
        serde_json::json!({"Image": "busybox", "HostConfig": {"NetworkMode": "closed"}}),
    )
    .unwrap();
    engines[2].create_container("c3", &body).unwrap();
    let refused = engines[2].start_container("c3").await.unwrap_err();
    assert_eq!(
        refused.0,
        "Could not attach to network closed: rpc error: code = PermissionDenied desc = network closed not manually attachable"
    );
    // The network comes to a worker with its first container, and goes with its last.
    assert!(engines[2].inspect_network("ov1").is_err());
    crate::run(&mut engines[2], "c4", "ov1").await;
    let network = engines[2].inspect_network("ov1").unwrap();
    assert_eq!(network["Scope"], "swarm");
    assert_eq!(
        network["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
        "4097"
    );
    engines[2].remove_container("c4", true).await.unwrap();
    assert!(engines[2].inspect_network("ov1").is_err());
    for engine in engines {
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_swarm_an_overlay_is_refused() {
    if !crate::privileged() {
        return;
    }
    let (_lab, mut engines) = crate::lab_with_engines(crate::lan(&["h1"]), &["h1"]).await;
    let refused = engines[0]
        .create_network(&overlay("ov1", true))
        .await
        .unwrap_err();
    assert_eq!(
        refused.0,
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    );
    engines.remove(0).shutdown().await;
}

/// A network plugin on `socket` answering as a driver of `scope` that accepts every call, and
/// recording each (`METHOD BODY`).
fn recording_plugin(socket: &std::path::Path, scope: &'static str) -> Arc<Mutex<Vec<String>>> {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let kept = calls.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let kept = kept.clone();
        async move {
            let method = uri.path().trim_start_matches('/').to_string();
            kept.lock()
                .unwrap()
                .push(format!("{method} {}", body.trim()));
            match method.as_str() {
                "Plugin.Activate" => r#"{"Implements":["NetworkDriver"]}"#.to_string(),
                "NetworkDriver.GetCapabilities" => {
                    format!(r#"{{"Scope":"{scope}","ConnectivityScope":"{scope}"}}"#)
                }
                _ => "{}".to_string(),
            }
        }
    });
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    calls
}

/// What dockerd 20.10 tells network plugins of the node in a swarm (observed on Docker in the
/// Python plugin's log of its calls, `tests/plugins/defective_driver.py`): a driver registered
/// on a node of a swarm hears of the node (`DiscoverNew`), and a manager's network allocator
/// asks for its capabilities again; a driver of global connectivity registered before the
/// node joined hears of it when it joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_hear_of_their_node_in_a_swarm_as_dockerd_tells_them() {
    if !crate::privileged() {
        return;
    }
    let hosts = ["h1", "h2"];
    let lab = Lab::build(crate::lan(&hosts)).await.unwrap();
    let hub = Arc::new(MemoryHub::new());
    let dir = tempfile::tempdir().unwrap();
    let mut engines = Vec::new();
    for host in hosts {
        let sockets = dir.path().join(host);
        std::fs::create_dir(&sockets).unwrap();
        let options = Options {
            host_resolvers: vec!["127.0.0.1".parse().unwrap()],
            hostname: host.into(),
            control_plane: ControlPlane::Hub(hub.clone()),
            plugins: PluginDirs {
                sockets,
                specs: Vec::new(),
            },
            ..Options::default()
        };
        let engine = Engine::start(lab.host(host).unwrap(), options);
        engines.push(engine.await.unwrap());
    }
    let local = recording_plugin(&dir.path().join("h1/loc.sock"), "local");
    let global = recording_plugin(&dir.path().join("h2/glob.sock"), "global");
    let network = |name: &str, driver: &str| NetworkCreate {
        name: name.into(),
        driver: driver.into(),
        ..NetworkCreate::default()
    };
    // Off a swarm, the global driver is registered, and its network refused.
    let refused = engines[1].create_network(&network("g1", "glob")).await;
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("not a swarm manager")
    );
    form_swarm(&mut engines).await;
    engines[0]
        .create_network(&network("l1", "loc"))
        .await
        .unwrap();

    let heard = |at: &str| {
        format!(
            r#"NetworkDriver.DiscoverNew {{"DiscoveryType":1,"DiscoveryData":{{"Address":"{at}","BindAddress":"{at}","Self":true}}}}"#
        )
    };
    let local = local.lock().unwrap().clone();
    let methods: Vec<&str> = local.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "Plugin.Activate",
            "NetworkDriver.GetCapabilities",
            "NetworkDriver.DiscoverNew",
            "NetworkDriver.GetCapabilities",
            "NetworkDriver.CreateNetwork"
        ],
        "{local:#?}"
    );
    assert_eq!(local[2], heard("10.10.0.1"));
    let global = global.lock().unwrap().clone();
    assert_eq!(global.len(), 3, "{global:#?}");
    assert_eq!(global[2], heard("10.10.0.2"));
    for engine in engines {
        engine.shutdown().await;
    }
}
