//! How long labs of 10, 50 and 200 hosts take to come up and to go down, beside the raw
//! iproute2 floor (the same star built with `ip`). Needs root.
//!
//! `cargo bench -p drydock-netsim --bench scale` prints a Markdown table for BENCHMARKS.md.
//!
//! "down" is measured to the end of the kernel's own teardown, not to the return of a call: an
//! observer namespace assigns an id (RTM_NEWNSID) to every namespace of the lab and counts the
//! RTM_DELNSID notifications the kernel sends once each namespace is really destroyed.

use std::os::fd::{AsFd, AsRawFd};
use std::process::Command;
use std::time::{Duration, Instant};

use drydock_netsim::{Lab, Netns, Topology};
use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};

const SIZES: [usize; 3] = [10, 50, 200];
const RUNS: usize = 5;

/// `hosts` plain hosts on one switch.
fn star(hosts: usize) -> Topology {
    let mut builder = Topology::builder("bench").segment("lan", "10.0.0.0/16".parse().unwrap());
    for i in 0..hosts {
        builder = builder.host(&format!("h{i}"));
    }
    builder.build().unwrap()
}

/// Observes namespace destruction from a namespace of its own (see the module comment).
struct TeardownWatch {
    requests: netlink_sys::Socket,
    events: netlink_sys::Socket,
    observer: Netns,
}

impl TeardownWatch {
    fn new() -> Self {
        const RTNLGRP_NSID: u32 = 28;
        const RTNLGRP_LINK: u32 = 1;
        let observer = Netns::new().unwrap();
        let (requests, events) = observer
            .run(|| {
                let requests =
                    netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).unwrap();
                let mut events =
                    netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).unwrap();
                events.bind_auto().unwrap();
                events.add_membership(RTNLGRP_NSID).unwrap();
                events.add_membership(RTNLGRP_LINK).unwrap();
                (requests, events)
            })
            .unwrap();
        Self {
            requests,
            events,
            observer,
        }
    }

    /// Plugs a veth from the observer into `netns`. The kernel deletes the observer's end when
    /// it unregisters the devices of `netns`: the heavy part of its teardown is then done.
    fn tether(&self, netns: &impl AsFd) {
        let path = format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            netns.as_fd().as_raw_fd()
        );
        let status = self
            .observer
            .command("ip", None)
            .args([
                "link", "add", "tether", "type", "veth", "peer", "name", "tether", "netns", &path,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "ip link add tether failed");
    }

    /// Gives `netns` an id in the observer, so that its destruction is announced there.
    fn watch(&self, netns: &impl AsFd) {
        let mut nsid = NsidMessage::default();
        nsid.attributes = vec![
            NsidAttribute::Fd(netns.as_fd().as_raw_fd() as u32),
            NsidAttribute::Id(-1),
        ];
        let mut message = NetlinkMessage::from(RouteNetlinkMessage::NewNsId(nsid));
        message.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        message.finalize();
        let mut buffer = vec![0; message.buffer_len()];
        message.serialize(&mut buffer);
        self.requests.send(&buffer, 0).unwrap();
        let (reply, _) = self.requests.recv_from_full().unwrap();
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
            .unwrap()
            .payload
        {
            NetlinkPayload::Error(e) if e.code.is_none() => {}
            other => panic!("RTM_NEWNSID: {other:?}"),
        }
    }

    fn next_event(&self) -> Vec<RouteNetlinkMessage> {
        let (data, _) = self.events.recv_from_full().unwrap();
        let mut messages = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).unwrap();
            let length = (message.header.length as usize)
                .next_multiple_of(4)
                .min(rest.len());
            if let NetlinkPayload::InnerMessage(inner) = message.payload {
                messages.push(inner);
            }
            rest = &rest[length..];
        }
        messages
    }

    /// Waits until `count` watched namespaces have been released (RTM_DELNSID: the kernel
    /// unhashes a namespace when its teardown starts) and the tether is gone. Returns the time
    /// each took from `start`.
    fn wait(&self, count: usize, start: Instant) -> (Duration, Duration) {
        let (mut released, mut devices_gone) = (None, None);
        let mut destroyed = 0;
        while released.is_none() || devices_gone.is_none() {
            for message in self.next_event() {
                match message {
                    RouteNetlinkMessage::DelNsId(_) => {
                        destroyed += 1;
                        if destroyed == count {
                            released = Some(start.elapsed());
                        }
                    }
                    RouteNetlinkMessage::DelLink(_) => devices_gone = Some(start.elapsed()),
                    _ => {}
                }
            }
        }
        (released.unwrap(), devices_gone.unwrap())
    }
}

/// The iproute2 floor: the same star built with `ip`, batched as far as `ip -batch` allows
/// (one process for every `netns add`, one for the switch and cables, one per host for its
/// addresses), in namespaces named `drydock-floor-*` (which `drydock gc` removes if we crash).
fn floor_up(hosts: usize) {
    let mut adds = String::from("netns add drydock-floor-fabric\n");
    let mut fabric = String::from("link add br0 type bridge\nlink set br0 up\n");
    for i in 0..hosts {
        adds.push_str(&format!("netns add drydock-floor-h{i}\n"));
        fabric.push_str(&format!(
            "link add p{i} type veth peer name eth0 netns drydock-floor-h{i}\n"
        ));
        fabric.push_str(&format!("link set p{i} master br0 up\n"));
    }
    ip_batch(None, &adds);
    ip_batch(Some("drydock-floor-fabric"), &fabric);
    for i in 0..hosts {
        let host = format!(
            "addr add 10.0.{}.{}/16 dev eth0\nlink set eth0 up\nlink set lo up\n",
            i / 250,
            i % 250 + 1
        );
        ip_batch(Some(&format!("drydock-floor-h{i}")), &host);
    }
}

fn floor_namespaces(hosts: usize) -> Vec<String> {
    std::iter::once("fabric".to_string())
        .chain((0..hosts).map(|i| format!("h{i}")))
        .map(|n| format!("/run/netns/drydock-floor-{n}"))
        .collect()
}

fn floor_down(hosts: usize) {
    let deletes: String = floor_namespaces(hosts)
        .iter()
        .map(|path| format!("netns del {}\n", path.trim_start_matches("/run/netns/")))
        .collect();
    ip_batch(None, &deletes);
}

fn ip_batch(netns: Option<&str>, commands: &str) {
    use std::io::Write;
    let mut ip = Command::new("ip");
    if let Some(netns) = netns {
        ip.args(["-n", netns]);
    }
    let mut child = ip
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "ip -batch failed on:\n{commands}"
    );
}

/// Watches the floor's namespaces (the descriptors are closed at once: ids hold no reference).
fn watch_floor(watch: &TeardownWatch, hosts: usize) {
    let paths = floor_namespaces(hosts);
    for path in &paths {
        watch.watch(&Netns::open(path).unwrap());
    }
    // `ip netns del` goes in file order: the last host goes last.
    watch.tether(&Netns::open(paths.last().unwrap()).unwrap());
}

/// What one round measures.
struct Round {
    up: Duration,
    released: Duration,
    devices_gone: Duration,
}

fn drydock_round(
    runtime: &tokio::runtime::Runtime,
    watch: &TeardownWatch,
    topology: &Topology,
) -> Round {
    let start = Instant::now();
    let lab = runtime.block_on(Lab::build(topology.clone())).unwrap();
    let up = start.elapsed();
    let namespaces = lab.namespaces().count();
    lab.namespaces().for_each(|ns| watch.watch(ns));
    // The fabric is dropped last: its devices go last.
    watch.tether(lab.namespaces().last().unwrap());
    let start = Instant::now();
    drop(lab);
    let (released, devices_gone) = watch.wait(namespaces, start);
    Round {
        up,
        released,
        devices_gone,
    }
}

fn floor_round(watch: &TeardownWatch, hosts: usize) -> Round {
    let start = Instant::now();
    floor_up(hosts);
    let up = start.elapsed();
    watch_floor(watch, hosts);
    let start = Instant::now();
    floor_down(hosts);
    let (released, devices_gone) = watch.wait(hosts + 1, start);
    Round {
        up,
        released,
        devices_gone,
    }
}

/// "median (min–max)" in milliseconds.
fn spread(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.0} ({:.0}–{:.0})",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    )
}

fn main() {
    if !drydock_netsim::userns::is_privileged() {
        eprintln!("skipped: the scale benchmark needs root");
        return;
    }
    // `cargo bench` passes --bench; a filter or --list means another bench target was meant.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let watch = TeardownWatch::new();
    println!(
        "| hosts | drydock up | drydock down: released / devices gone | iproute2 up | iproute2 down: released / devices gone |"
    );
    println!("|---|---|---|---|---|");
    for hosts in SIZES {
        let topology = star(hosts);
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(drydock_round(&runtime, &watch, &topology));
            floor.push(floor_round(&watch, hosts));
        }
        let column = |rounds: &[Round], pick: fn(&Round) -> Duration| {
            spread(rounds.iter().map(pick).collect())
        };
        println!(
            "| {hosts} | {} | {} / {} | {} | {} / {} |",
            column(&ours, |r| r.up),
            column(&ours, |r| r.released),
            column(&ours, |r| r.devices_gone),
            column(&floor, |r| r.up),
            column(&floor, |r| r.released),
            column(&floor, |r| r.devices_gone),
        );
    }
    println!("\nms, median (min–max) of {RUNS} runs.");
}
