//! The engine with a network plugin that runs as its own process: the tests' Python plugin
//! (`tests/plugins/defective_driver.py` at the repository's root), in the lab host.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::body::{ContainerCreate, NetworkConnect, NetworkCreate};
use drydock_runtime::engine::{Engine, Options};
use drydock_runtime::plugin::discovery::PluginDirs;

/// The Python plugin with `defects`, listening on `socket`, started in `host`; killed when
/// dropped.
struct Plugin(Child);

impl Plugin {
    fn start(host: &Netns, socket: &Path, defects: &str) -> Plugin {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/plugins/defective_driver.py"
        );
        let child = host
            .command("python3", None)
            .arg(script)
            .arg(socket)
            .arg(defects)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the plugin never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Plugin(child)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ip route` and the links of container `name`, as its namespace has them.
fn routes_and_links(engine: &Engine, name: &str) -> String {
    let netns = engine.container_netns(name).unwrap();
    let run = |args: &[&str]| {
        let output = netns.command("ip", None).args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    format!("{}{}", run(&["route"]), run(&["-br", "link"]))
}

/// A connect that the plugin fails after the join (its `EndpointOperInfo` refused) is taken
/// back whole: the container keeps its default route and published port through the network it
/// had, and shows that network only. (dockerd 20.10 leaves the endpoint joined there: a
/// libnetwork leak that the reference engine does not copy.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_the_plugin_fails_leaves_the_container_as_it_was() {
    if !crate::privileged() {
        return;
    }
    let lab = Lab::build(crate::lan(&["h1"])).await.unwrap();
    let host = lab.host("h1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _plugin = Plugin::start(host, &dir.path().join("refuser.sock"), "oper-info-refused");
    let options = Options {
        host_resolvers: vec!["127.0.0.1".parse().unwrap()],
        plugins: PluginDirs {
            sockets: dir.path().into(),
            specs: Vec::new(),
        },
        ..Options::default()
    };
    let mut engine = Engine::start(host, options).await.unwrap();
    let bridge = crate::network("bridge", "n4", "10.44.0.0/24", None, serde_json::json!({}));
    engine.create_network(&bridge).await.unwrap();
    let body: ContainerCreate = serde_json::from_value(serde_json::json!({
        "Image": "busybox",
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"NetworkMode": "n4", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
    }))
    .unwrap();
    engine.create_container("c4", &body).unwrap();
    engine.start_container("c4").await.unwrap();
    let before = routes_and_links(&engine, "c4");
    assert!(
        before.contains("default via 10.44.0.1 dev eth0"),
        "{before}"
    );

    // n1 sorts before n4: joined, it would take the default route and the published port.
    let refuser = NetworkCreate {
        name: "n1".into(),
        driver: "refuser".into(),
        ..NetworkCreate::default()
    };
    engine.create_network(&refuser).await.unwrap();
    let connect = NetworkConnect {
        container: "c4".into(),
        ..NetworkConnect::default()
    };
    let refused = engine.connect("n1", &connect).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "Updating join info failed: remote: no info today"
    );
    assert_eq!(routes_and_links(&engine, "c4"), before);
    let inspect = engine.inspect_container("c4").unwrap();
    let networks = inspect["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(networks.keys().collect::<Vec<_>>(), ["n4"]);
    let ports = &inspect["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"];
    assert_eq!(ports, "8080", "{inspect}");
    engine.shutdown().await;
}
