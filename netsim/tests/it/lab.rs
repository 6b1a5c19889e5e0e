//! Labs on the real kernel: reachability through switches and routers, macvlan on host
//! interfaces, VXLAN over a routed underlay — each proven by packets seen on the wire.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use drydock_netsim::capture::{Capture, Packet, summarize};
use drydock_netsim::link;
use drydock_netsim::{Lab, Netns, Topology};
use netlink_packet_route::link::MacVlanMode;
use rtnetlink::{LinkMacVlan, LinkUnspec, LinkVxlan};

async fn build(file: &str) -> Lab {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/labs")
        .join(file);
    let topology = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Lab::build(topology)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Runs `ping -c 1` inside `netns`; true when a reply came back.
fn ping(netns: &Netns, args: &[&str]) -> bool {
    let output = netns
        .command("ping", None)
        .args(["-c", "1", "-W", "1"])
        .args(args)
        .output()
        .expect("ping runs");
    output.status.success()
}

fn summaries(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .map(|p| format!("{} {}", p.direction, summarize(&p.data)))
        .collect()
}

/// Adds `address` to link `name` inside `netns` and sets it up.
async fn configure(netns: &Netns, name: &str, address: &str) {
    let nl = netns.netlink().unwrap();
    let index = link::index(&nl, name).await.unwrap();
    link::add_address(&nl, index, address.parse().unwrap())
        .await
        .unwrap();
    nl.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .unwrap();
}

fn machine_links() -> String {
    let output = std::process::Command::new("ip")
        .args(["-br", "link"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn hosts_on_two_segments_reach_each_other_only_through_the_router() {
    if !crate::privileged() {
        return;
    }
    let links_before = machine_links();
    let lab = build("three-hosts.yaml").await;
    assert_eq!(
        machine_links(),
        links_before,
        "a lab creates nothing in the machine's namespace"
    );
    let (h1, r1) = (lab.host("h1").unwrap(), lab.host("r1").unwrap());

    let capture = Capture::start(r1, "eth0", "r1/eth0").unwrap();
    assert!(ping(h1, &["10.0.2.10"]), "h1 pings h3 across r1");
    let seen = summaries(&capture.stop().unwrap());
    assert!(
        seen.iter()
            .any(|s| s.starts_with("in 10.0.1.10 > 10.0.2.10 ICMP echo request")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with("out 10.0.2.10 > 10.0.1.10 ICMP echo reply")),
        "{seen:#?}"
    );

    // Without the router's forwarding the segments are separate L2 domains.
    r1.run(|| drydock_netsim::netns::write_sysctl("net/ipv4/ip_forward", "0"))
        .unwrap()
        .unwrap();
    assert!(!ping(h1, &["10.0.2.10"]), "no forwarding, no path");
}

#[tokio::test]
async fn host_interfaces_serve_as_macvlan_parents() {
    if !crate::privileged() {
        return;
    }
    let lab = build("two-hosts.yaml").await;
    let (h1, h2) = (lab.host("h1").unwrap(), lab.host("h2").unwrap());
    // A "container" namespace with a macvlan child of h1's eth0, as Docker's macvlan driver makes.
    let container = Netns::new().unwrap();
    let mac = [0x02, 0x42, 10, 0, 1, 100];
    let nl = h1.netlink().unwrap();
    let parent = link::index(&nl, "eth0").await.unwrap();
    let macvlan = LinkMacVlan::new("eth0", parent, MacVlanMode::Bridge)
        .setns_by_fd(container.as_fd().as_raw_fd())
        .address(mac.to_vec())
        .build();
    nl.link().add(macvlan).execute().await.unwrap();
    configure(&container, "eth0", "10.0.1.100/24").await;

    let capture = Capture::start(h2, "eth0", "h2/eth0").unwrap();
    assert!(
        ping(&container, &["10.0.1.20"]),
        "the macvlan reaches h2 over h1's segment"
    );
    let packets = capture.stop().unwrap();
    let request = packets
        .iter()
        .find(|p| summarize(&p.data).starts_with("10.0.1.100 > 10.0.1.20 ICMP echo request"))
        .unwrap_or_else(|| panic!("{:#?}", summaries(&packets)));
    assert_eq!(
        request.data[6..12],
        mac,
        "the request leaves with the macvlan's own MAC"
    );
    // Docker documents this macvlan property: a child cannot reach its parent's host.
    assert!(
        !ping(&container, &["10.0.1.10"]),
        "macvlan child cannot reach its parent"
    );
}

#[tokio::test]
async fn vxlan_between_hosts_crosses_a_routed_underlay() {
    if !crate::privileged() {
        return;
    }
    let lab = build("three-hosts.yaml").await;
    for (host, local, remote, overlay) in [
        ("h1", "10.0.1.10", "10.0.2.10", "192.168.42.1"),
        ("h3", "10.0.2.10", "10.0.1.10", "192.168.42.3"),
    ] {
        let netns = lab.host(host).unwrap();
        let nl = netns.netlink().unwrap();
        let dev = link::index(&nl, "eth0").await.unwrap();
        let vxlan = LinkVxlan::new("vxlan42", 42)
            .dev(dev)
            .local(local.parse().unwrap())
            .remote(remote.parse().unwrap())
            .port(4789)
            .learning(false)
            .build();
        nl.link().add(vxlan).execute().await.unwrap();
        configure(netns, "vxlan42", &format!("{overlay}/24")).await;
    }
    let capture = Capture::start(lab.host("r1").unwrap(), "eth1", "r1/eth1").unwrap();
    assert!(
        ping(lab.host("h1").unwrap(), &["192.168.42.3"]),
        "the tunnel carries a ping"
    );
    let seen = summaries(&capture.stop().unwrap());
    let tunnelled = seen.iter().find(|s| {
        s.contains("VXLAN vni=42") && s.contains("192.168.42.1 > 192.168.42.3 ICMP echo request")
    });
    assert!(
        tunnelled.is_some_and(|s| s.starts_with("out 10.0.1.10.")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn ipv6_works_at_once_without_duplicate_address_detection_delay() {
    if !crate::privileged() {
        return;
    }
    let lab = build("two-hosts.yaml").await;
    assert!(ping(lab.host("h1").unwrap(), &["-6", "fd00:1::20"]));
}

#[tokio::test]
async fn segments_without_a_router_are_isolated() {
    if !crate::privileged() {
        return;
    }
    // z is on both segments: 10.1.0.2 on a, 10.2.0.2 on b.
    let topology = Topology::builder("isolated")
        .segment("a", "10.1.0.0/24".parse().unwrap())
        .host("x")
        .host("z")
        .segment("b", "10.2.0.0/24".parse().unwrap())
        .host("y")
        .host("z")
        .build()
        .unwrap();
    let lab = Lab::build(topology).await.unwrap();
    let (x, z) = (lab.host("x").unwrap(), lab.host("z").unwrap());
    let capture = Capture::start(lab.host("y").unwrap(), "eth0", "y/eth0").unwrap();
    assert!(ping(x, &["10.1.0.2"]), "same segment");
    assert!(ping(z, &["10.2.0.1"]), "z is on both segments");
    assert!(
        !ping(x, &["10.2.0.1"]),
        "x has no route to b: z is no router"
    );
    std::thread::sleep(Duration::from_millis(50));
    let seen = summaries(&capture.stop().unwrap());
    assert!(
        seen.iter().all(|s| !s.contains("10.1.0.")),
        "no frame from segment a reaches y: {seen:#?}"
    );
}

/// A bridge that snoops multicast joins the all-snoopers group (224.0.0.106) when it comes up
/// and reports it with IGMP out of every port, where any host's capture may catch it. A lab's
/// switch sends nothing of its own: it does not snoop.
#[tokio::test]
async fn segment_switches_join_no_multicast_group() {
    if !crate::privileged() {
        return;
    }
    let lab = build("two-hosts.yaml").await;
    let fabric = lab.namespaces().last().expect("the fabric");
    let igmp = fabric
        .run(|| std::fs::read_to_string("/proc/thread-self/net/igmp"))
        .unwrap()
        .unwrap();
    let lan = igmp
        .split_inclusive('\n')
        .skip_while(|line| !line.contains("lan"))
        .take_while(|line| line.contains("lan") || line.starts_with('\t'))
        .collect::<String>();
    assert!(
        lan.contains("010000E0"),
        "lan is listed with 224.0.0.1:\n{igmp}"
    );
    assert!(!lan.contains("6A0000E0"), "lan joined 224.0.0.106:\n{igmp}");
}

/// The inode of a namespace: the same namespace, through any descriptor, has the same.
fn inode(netns: &Netns) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{}", netns.as_fd().as_raw_fd()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap()
}

#[tokio::test]
async fn a_persisted_lab_opens_again_from_its_mounts() {
    // Mounting a namespace needs the machine's root, not a user namespace's (`rootless.rs`
    // runs this module again as nobody).
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let machine_root = uid_map.split_whitespace().eq(["0", "0", "4294967295"]);
    if !crate::privileged() || !machine_root {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = build("two-hosts.yaml").await;
    let mounts = lab.persist(dir.path()).unwrap();
    // Unmounted even when an assertion fails: a mount would keep the lab, and the folder.
    struct Unmount(Vec<std::path::PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            for mount in &self.0 {
                let _ = Netns::unpersist(mount);
            }
        }
    }
    let _unmount = Unmount(mounts.clone());
    let topology = lab.topology().clone();
    let built: Vec<u64> = lab.namespaces().map(inode).collect();
    drop(lab);

    let opened = Lab::open_persisted(topology.clone(), dir.path()).unwrap();
    assert_eq!(opened.namespaces().map(inode).collect::<Vec<_>>(), built);
    assert!(ping(opened.host("h1").unwrap(), &["10.0.1.20"]));
    drop(opened);

    // A mount point left without its mount is no namespace; a missing one is named.
    let h2 = dir.path().join("drydock-two-hosts.h2");
    assert!(mounts.contains(&h2), "{mounts:?}");
    Netns::unpersist(&h2).unwrap();
    std::fs::write(&h2, "").unwrap();
    let error = Lab::open_persisted(topology.clone(), dir.path()).unwrap_err();
    let expected = format!("{} is not a mounted network namespace", h2.display());
    assert_eq!(error.to_string(), expected);
    std::fs::remove_file(&h2).unwrap();
    let error = Lab::open_persisted(topology, dir.path()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().starts_with(&h2.display().to_string()));
}
