//! The userspace datapaths on this kernel (no ipvlan, no 8021q), seen on the wire: ipvlan
//! endpoints share their parent's MAC, frames of VLAN parents carry their VLAN's tag, and
//! removing the networks removes every sub-interface, thread, socket and TAP the driver made.
//! Captures are summarized with MACs named after the interfaces that own them and snapshotted.

use crate::{greeting, ip, link_names, network, run, serve};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use drydock_netsim::capture::{Capture, Packet};
use drydock_netsim::{Lab, Netns};
use drydock_runtime::engine::Engine;
use serde_json::json;

const OK: Duration = Duration::from_secs(3);

/// Threads and descriptors are counted per process: the tests of this module take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn setup() -> (Lab, Engine, Engine) {
    let (lab, mut engines) =
        crate::lab_with_engines(crate::lan(&["h1", "h2", "ext"]), &["h1", "h2"]).await;
    let h2 = engines.pop().unwrap();
    let h1 = engines.pop().unwrap();
    (lab, h1, h2)
}

/// The MAC address of `ifname` in `netns`, as `ip link` prints it.
fn mac_of(netns: &Netns, ifname: &str) -> String {
    let path = format!("/sys/class/net/{ifname}/address");
    let output = netns
        .command("cat", None)
        .arg(path)
        .output()
        .expect("cat runs");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn mac_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One line per distinct frame shape: source and destination MACs by owner, then the frame's
/// summary up to its transport protocol: ports, flags, sequence numbers and ids change from
/// run to run.
fn shapes(packets: &[Packet], owners: &[(String, &str)]) -> BTreeSet<String> {
    let owner = |mac: String| {
        owners
            .iter()
            .find(|(m, _)| *m == mac)
            .map_or(mac.clone(), |(_, name)| (*name).to_string())
    };
    packets
        .iter()
        .map(|p| {
            let summary = drydock_netsim::capture::summarize(&p.data);
            let mut summary: Vec<&str> = summary.split_whitespace().collect();
            if let Some(at) = summary
                .iter()
                .position(|w| matches!(*w, "TCP" | "UDP" | "ICMP"))
            {
                summary.truncate(at + 1);
            }
            let summary = summary
                .iter()
                .map(|w| match w.rsplit_once('.') {
                    // 10.10.0.3.43512 -> 10.10.0.3
                    Some((addr, port))
                        if addr.parse::<IpAddr>().is_ok() && port.parse::<u16>().is_ok() =>
                    {
                        addr.to_string()
                    }
                    _ => (*w).to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ");
            let (src, dst) = (mac_text(&p.data[6..12]), mac_text(&p.data[..6]));
            format!("{} > {}: {summary}", owner(src), owner(dst))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipvlan_endpoints_share_the_parent_mac_on_the_wire() {
    if !crate::privileged() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (lab, mut h1, _h2) = setup().await;
    h1.create_network(&network(
        "ipvlan",
        "lan",
        "10.10.0.0/24",
        Some("10.10.0.128/25"),
        json!({"parent": "eth0"}),
    ))
    .await
    .unwrap();
    let inspect = h1.inspect_network("lan").unwrap();
    assert!(
        inspect["Options"]["drydock.datapath"]
            .as_str()
            .is_some_and(|d| d.starts_with("userspace ipvlan")),
        "{inspect}"
    );
    run(&mut h1, "one", "lan").await;
    run(&mut h1, "two", "lan").await;
    let ext = lab.host("ext").unwrap();
    let (one, two) = (
        h1.container_netns("one").unwrap(),
        h1.container_netns("two").unwrap(),
    );
    assert_eq!(mac_of(&one, "eth0"), mac_of(h1.host(), "eth0"));
    let _servers = [serve(ext, 9000, "ext"), serve(&two, 80, "two")];
    let capture = Capture::start(ext, "eth0", "ext/eth0").unwrap();
    let to_ext = SocketAddr::new("10.10.0.3".parse().unwrap(), 9000);
    for from in [&one, &two] {
        assert_eq!(greeting(from, to_ext, OK).await.as_deref(), Some("ext"));
    }
    let to_two = SocketAddr::new(ip(&h1, "two", "lan"), 80);
    assert_eq!(greeting(ext, to_two, OK).await.as_deref(), Some("two"));
    // Between endpoints of one port, nothing reaches the wire.
    assert_eq!(greeting(&one, to_two, OK).await.as_deref(), Some("two"));
    let packets = capture.stop().unwrap();
    let owners = [
        (mac_of(h1.host(), "eth0"), "h1/eth0"),
        (mac_of(ext, "eth0"), "ext/eth0"),
        ("ff:ff:ff:ff:ff:ff".to_string(), "broadcast"),
    ];
    let shapes = shapes(&packets, &owners);
    assert!(
        shapes.iter().all(|s| !s.contains("02:42")),
        "an endpoint used a MAC of its own: {shapes:#?}"
    );
    insta::assert_yaml_snapshot!(shapes);
    h1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlan_parents_tag_their_frames_with_their_vid() {
    if !crate::privileged() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (lab, mut h1, mut h2) = setup().await;
    for (engine, range) in [(&mut h1, "64/26"), (&mut h2, "128/26")] {
        let create = |driver, name, subnet: &str, parent| {
            let range = format!("{}.{range}", subnet.rsplit_once('.').unwrap().0);
            network(
                driver,
                name,
                subnet,
                Some(&range),
                json!({"parent": parent}),
            )
        };
        engine
            .create_network(&create("macvlan", "v10", "192.168.10.0/24", "eth0.10"))
            .await
            .unwrap();
        engine
            .create_network(&create("ipvlan", "v20", "192.168.20.0/24", "eth0.20"))
            .await
            .unwrap();
    }
    for (engine, suffix) in [(&mut h1, "1"), (&mut h2, "2")] {
        run(engine, &format!("mac{suffix}"), "v10").await;
        run(engine, &format!("ipv{suffix}"), "v20").await;
    }
    let (mac2, ipv2) = (
        h2.container_netns("mac2").unwrap(),
        h2.container_netns("ipv2").unwrap(),
    );
    let _servers = [serve(&mac2, 80, "mac2"), serve(&ipv2, 80, "ipv2")];
    let capture = Capture::start(lab.host("h2").unwrap(), "eth0", "h2/eth0").unwrap();
    let mac1 = h1.container_netns("mac1").unwrap();
    let ipv1 = h1.container_netns("ipv1").unwrap();
    let to_mac2 = SocketAddr::new(ip(&h2, "mac2", "v10"), 80);
    let to_ipv2 = SocketAddr::new(ip(&h2, "ipv2", "v20"), 80);
    assert_eq!(greeting(&mac1, to_mac2, OK).await.as_deref(), Some("mac2"));
    assert_eq!(greeting(&ipv1, to_ipv2, OK).await.as_deref(), Some("ipv2"));
    let packets = capture.stop().unwrap();
    let owners = [
        (mac_of(h1.host(), "eth0"), "h1/eth0"),
        (mac_of(h2.host(), "eth0"), "h2/eth0"),
        (mac_of(&mac1, "eth0"), "mac1/eth0"),
        (mac_of(&mac2, "eth0"), "mac2/eth0"),
        ("ff:ff:ff:ff:ff:ff".to_string(), "broadcast"),
    ];
    let shapes = shapes(&packets, &owners);
    for shape in &shapes {
        let vid = if shape.contains("192.168.10.") {
            "vlan 10,"
        } else {
            "vlan 20,"
        };
        assert!(shape.contains(vid), "{shape} lacks its tag");
    }
    insta::assert_yaml_snapshot!(shapes);
    h1.shutdown().await;
    h2.shutdown().await;
}

/// The names of this process's datapath threads (`dd-...`).
fn datapath_threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|comm| comm.trim().to_string())
        .filter(|comm| comm.starts_with("dd-"))
        .collect();
    names.sort();
    names
}

/// This process's descriptors of `/dev/net/tun` (one per TAP) and eventfds.
fn datapath_fds() -> (usize, usize) {
    let targets: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .collect();
    let count = |what: &str| targets.iter().filter(|t| t.contains(what)).count();
    (count("/dev/net/tun"), count("[eventfd]"))
}

/// Lines of `/proc/net/packet` in `netns` (one per AF_PACKET socket there).
fn packet_sockets(netns: &Netns) -> usize {
    netns
        .run(|| std::fs::read_to_string("/proc/thread-self/net/packet"))
        .unwrap()
        .unwrap()
        .lines()
        .count()
        - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_networks_removes_every_link_thread_and_socket() {
    if !crate::privileged() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (_lab, mut h1, _h2) = setup().await;
    let host = h1.host().clone();
    let before = (
        link_names(&host).await,
        datapath_threads(),
        datapath_fds(),
        packet_sockets(&host),
    );
    for (name, driver, subnet, options) in [
        ("l2", "ipvlan", "10.10.0.0/24", json!({"parent": "eth0"})),
        (
            "tagged",
            "ipvlan",
            "192.168.20.0/24",
            json!({"parent": "eth0.20", "ipvlan_mode": "l3"}),
        ),
        (
            "v10",
            "macvlan",
            "192.168.10.0/24",
            json!({"parent": "eth0.10"}),
        ),
    ] {
        let range = (name == "l2").then_some("10.10.0.128/25");
        h1.create_network(&network(driver, name, subnet, range, options))
            .await
            .unwrap();
        run(&mut h1, &format!("{name}-c"), name).await;
    }
    assert_eq!(
        datapath_threads(),
        [
            "dd-ipvl-eth0",
            "dd-ipvl-eth0.20",
            "dd-vlan-eth0.10",
            "dd-vlan-eth0.20"
        ]
    );
    let nft = host
        .command("nft", None)
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8(nft.stdout).unwrap();
    assert!(tables.contains("table netdev drydock-eth0\n"), "{tables}");
    assert!(
        tables.contains("table netdev drydock-eth0.20\n"),
        "{tables}"
    );

    for name in ["l2", "tagged", "v10"] {
        h1.remove_container(&format!("{name}-c"), true)
            .await
            .unwrap();
        h1.remove_network(name).await.unwrap();
    }
    let after = (
        link_names(&host).await,
        datapath_threads(),
        datapath_fds(),
        packet_sockets(&host),
    );
    assert_eq!(after, before);
    let nft = host
        .command("nft", None)
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8(nft.stdout).unwrap();
    assert!(!tables.contains("netdev"), "{tables}");
    h1.shutdown().await;
}
