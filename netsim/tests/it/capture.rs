//! Packet capture against the real kernel: AF_PACKET in a namespace, pcapng read back by tshark.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drydock_netsim::capture::{Capture, Direction, Packet, PcapNgSink, summarize};
use drydock_netsim::netns::ifindex;
use drydock_netsim::{Netns, link};
use rtnetlink::{LinkUnspec, LinkVeth};

/// Index of `lo` in every namespace.
const LO: u32 = 1;
const A1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const A2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

async fn set_up(netns: &Netns, index: u32) {
    netns
        .netlink()
        .unwrap()
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .unwrap();
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn ping(netns: &Netns, count: &str) {
    let output = netns
        .command("ping", None)
        .args(["-n", "-c", count, "-i", "0.2", "-W", "2", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ping failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `direction summary` lines of ICMP packets, with the ICMP id (chosen by the kernel) removed.
fn icmp_lines(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .map(|p| format!("{} {}", p.direction, summarize(&p.data)))
        .filter(|line| line.contains("ICMP"))
        .map(|line| {
            line.split(' ')
                .filter(|word| !word.starts_with("id="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::test]
async fn ping_on_lo_is_captured_with_directions_and_sane_timestamps() {
    if !crate::privileged() {
        return;
    }
    let netns = Netns::new().unwrap();
    set_up(&netns, LO).await;
    let before = now();
    let capture = Capture::start(&netns, "lo", "h1/lo").unwrap();
    ping(&netns, "2");
    let packets = capture.stop().unwrap();
    let after = now();

    // On lo every frame is seen twice: leaving (out) and coming back (in).
    let request = "127.0.0.1 > 127.0.0.1 ICMP echo request";
    let reply = "127.0.0.1 > 127.0.0.1 ICMP echo reply";
    let mut expected = Vec::new();
    for seq in 1..=2 {
        for (direction, what) in [
            ("out", request),
            ("in", request),
            ("out", reply),
            ("in", reply),
        ] {
            expected.push(format!("{direction} {what} seq={seq}"));
        }
    }
    assert_eq!(icmp_lines(&packets), expected);

    for packet in &packets {
        // 14 Ethernet + 20 IPv4 + 8 ICMP + 56 bytes of ping data, nothing cut.
        assert_eq!(packet.data.len(), 98, "{packet:?}");
        assert_eq!(packet.original_len, 98);
        assert!(
            packet.timestamp >= before - Duration::from_secs(2)
                && packet.timestamp <= after + Duration::from_secs(2),
            "timestamp {:?} not within {before:?}..{after:?}",
            packet.timestamp
        );
    }
    assert!(
        packets.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
        "timestamps decrease: {:?}",
        packets.iter().map(|p| p.timestamp).collect::<Vec<_>>()
    );
    // ping waits 0.2 s between requests, which the kernel timestamps must show.
    let requests: Vec<_> = packets
        .iter()
        .filter(|p| p.direction == Direction::Out && summarize(&p.data).contains("request"))
        .collect();
    let gap = requests[1].timestamp - requests[0].timestamp;
    assert!(
        gap >= Duration::from_millis(150) && gap < Duration::from_secs(2),
        "{gap:?}"
    );
    let line = packets[0].summary("h1/lo");
    assert!(
        line.contains(" h1/lo out 127.0.0.1 > 127.0.0.1 ICMP echo request id="),
        "{line}"
    );
}

#[tokio::test]
async fn pcapng_file_is_read_by_tshark_with_interface_names_and_directions() {
    if !crate::privileged() {
        return;
    }
    let netns = Netns::new().unwrap();
    set_up(&netns, LO).await;
    let capture = Capture::start(&netns, "lo", "h1/lo").unwrap();
    ping(&netns, "1");
    let packets = capture.stop().unwrap();
    assert_eq!(icmp_lines(&packets).len(), 4, "{packets:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.pcapng");
    let mut sink = PcapNgSink::new(std::fs::File::create(&path).unwrap()).unwrap();
    let other = sink.add_interface("h0/unused").unwrap();
    let lo = sink.add_interface("h1/lo").unwrap();
    assert_eq!((other, lo), (0, 1));
    for packet in &packets {
        sink.write(lo, packet).unwrap();
    }
    sink.finish().unwrap().sync_all().unwrap();

    let output = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-T", "fields", "-E", "separator=,"])
        .args(["-e", "frame.interface_name", "-e", "icmp.type"])
        .args(["-e", "frame.packet_flags_direction", "-e", "frame.p2p_dir"])
        .args(["-e", "frame.time_epoch"])
        .env("HOME", dir.path()) // tshark wants a writable profile directory
        .output()
        .expect("tshark is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Wireshark 4.0: pcapng epb_flags direction is frame.packet_flags_direction (1 inbound, 2
    // outbound, shown in hex) and also sets frame.p2p_dir (0 sent, 1 received).
    let fields: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(',').collect()).collect();
    let got: Vec<String> = fields.iter().map(|f| f[..4].join(",")).collect();
    assert_eq!(
        got,
        [
            "h1/lo,8,0x00000002,0",
            "h1/lo,8,0x00000001,1",
            "h1/lo,0,0x00000002,0",
            "h1/lo,0,0x00000001,1",
        ],
        "tshark output:\n{stdout}"
    );
    // Nanosecond timestamps survive (if_tsresol=9): tshark's epoch time matches ours.
    for (packet, f) in packets.iter().zip(&fields) {
        let expected = format!(
            "{}.{:09}",
            packet.timestamp.as_secs(),
            packet.timestamp.subsec_nanos()
        );
        assert_eq!(f[4], expected);
    }
}

#[tokio::test]
async fn capture_started_on_a_down_interface_sees_traffic_once_it_is_up() {
    if !crate::privileged() {
        return;
    }
    let netns = Netns::new().unwrap();
    let capture = Capture::start(&netns, "lo", "h1/lo").unwrap();
    set_up(&netns, LO).await;
    ping(&netns, "1");
    let packets = capture.stop().unwrap();
    assert_eq!(
        icmp_lines(&packets),
        [
            "out 127.0.0.1 > 127.0.0.1 ICMP echo request seq=1",
            "in 127.0.0.1 > 127.0.0.1 ICMP echo request seq=1",
            "out 127.0.0.1 > 127.0.0.1 ICMP echo reply seq=1",
            "in 127.0.0.1 > 127.0.0.1 ICMP echo reply seq=1",
        ]
    );
}

#[tokio::test]
async fn recv_timeout_streams_packets_and_stop_returns_the_rest() {
    if !crate::privileged() {
        return;
    }
    let netns = Netns::new().unwrap();
    set_up(&netns, LO).await;
    let capture = Capture::start(&netns, "lo", "h1/lo").unwrap();
    assert_eq!(capture.recv_timeout(Duration::from_millis(50)), None);
    ping(&netns, "1");
    let first = capture
        .recv_timeout(Duration::from_secs(5))
        .expect("a packet");
    assert_eq!(first.direction, Direction::Out);
    let rest = capture.stop().unwrap();
    let mut all = vec![first];
    all.extend(rest);
    assert_eq!(icmp_lines(&all).len(), 4);
}

#[test]
fn unknown_interface_is_an_error_naming_the_label() {
    if !crate::privileged() {
        return;
    }
    let netns = Netns::new().unwrap();
    let error = Capture::start(&netns, "nope0", "h1/nope0").unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("h1/nope0"), "{error}");
}

#[test]
fn dropping_a_capture_ends_its_thread() {
    if !crate::privileged() {
        return;
    }
    let netns = Netns::new().unwrap();
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim() == "capture dropme")
            .count()
    };
    let wait_for = |count: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while threads() != count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        threads()
    };
    let capture = Capture::start(&netns, "lo", "dropme").unwrap();
    // The thread names itself once it runs.
    assert_eq!(wait_for(1), 1);
    drop(capture);
    // Drop joins the thread; the kernel may take a moment to remove its task entry.
    assert_eq!(wait_for(0), 0);
}

/// Two namespaces joined by a veth pair: h1 `eth0` 10.0.0.1/24, h2 `peer` 10.0.0.2/24, both up.
async fn veth_pair() -> (Netns, Netns) {
    let (h1, h2) = (Netns::new().unwrap(), Netns::new().unwrap());
    let handle1 = h1.netlink().unwrap();
    handle1
        .link()
        .add(LinkVeth::new("eth0", "peer").build())
        .execute()
        .await
        .unwrap();
    let peer = h1.run(|| ifindex("peer")).unwrap().unwrap();
    handle1
        .link()
        .set(
            LinkUnspec::new_with_index(peer)
                .setns_by_fd(h2.as_fd().as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .unwrap();
    for (netns, ifname, addr) in [(&h1, "eth0", A1), (&h2, "peer", A2)] {
        let index = netns.run(|| ifindex(ifname)).unwrap().unwrap();
        let handle = netns.netlink().unwrap();
        let address = ipnetwork::Ipv4Network::new(addr, 24).unwrap();
        link::add_address(&handle, index, address.into())
            .await
            .unwrap();
        set_up(netns, index).await;
    }

    (h1, h2)
}

/// veth hands AF_PACKET the local stack's TCP segments unsegmented (GSO): frames far larger than
/// the MTU. They must arrive whole, with their true length.
#[tokio::test]
async fn gso_super_frames_on_veth_are_captured_whole() {
    if !crate::privileged() {
        return;
    }
    let (h1, h2) = veth_pair().await;
    let capture = Capture::start(&h1, "eth0", "h1/eth0").unwrap();
    let listener = h2.run(|| TcpListener::bind((A2, 5000))).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        received.len()
    });
    let mut client = h1.run(|| TcpStream::connect((A2, 5000))).unwrap().unwrap();
    let sent = 4 << 20;
    client.write_all(&vec![0x42; sent]).unwrap();
    drop(client);
    assert_eq!(server.join().unwrap(), sent);
    let packets = capture.stop().unwrap();

    let largest = packets.iter().map(|p| p.original_len).max().unwrap();
    eprintln!(
        "{} frames, largest {largest} bytes; first lines:",
        packets.len()
    );
    for packet in packets.iter().take(8) {
        eprintln!("  {}", packet.summary("h1/eth0"));
    }
    assert!(
        packets
            .iter()
            .all(|p| p.data.len() == p.original_len as usize),
        "some frames were cut short"
    );
    assert!(
        largest > 1514,
        "no GSO super-frame seen (largest {largest})"
    );
    let syn = packets
        .iter()
        .map(|p| summarize(&p.data))
        .find(|line| line.contains("TCP [S]"))
        .expect("the SYN was captured");
    assert!(syn.starts_with("10.0.0.1."), "{syn}");
    assert!(syn.contains(" > 10.0.0.2.5000 TCP [S] seq="), "{syn}");
}

/// Sends `frame` as is on `ifname` of the calling thread's namespace.
fn send_raw(ifname: &str, frame: &[u8]) -> std::io::Result<()> {
    let index = ifindex(ifname)?;
    // SAFETY: plain syscalls on a descriptor owned here, with live buffers of the stated sizes.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = index as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        let sent = libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The receiving kernel moves an 802.1Q tag out of the frame (skb_vlan_untag, even without the
/// 8021q module) and reports it in PACKET_AUXDATA; the capture must put it back.
#[tokio::test]
async fn vlan_tags_stripped_by_the_kernel_are_put_back() {
    if !crate::privileged() {
        return;
    }
    let (h1, h2) = veth_pair().await;
    let on_h1 = Capture::start(&h1, "eth0", "h1/eth0").unwrap();
    let on_h2 = Capture::start(&h2, "peer", "h2/peer").unwrap();
    let mut frame = vec![0xff; 6];
    frame.extend([0x02, 0, 0, 0, 0, 1]);
    frame.extend([0x81, 0x00, 0x60, 0x0a]); // 802.1Q, priority 3, VLAN 10
    frame.extend([0x88, 0xb5]); // local experimental ethertype
    frame.extend(b"drydock vlan test, padded to the minimum frame size");
    let tagged = |p: &Packet| p.data.ends_with(b"minimum frame size");
    // The veth carrier may come up a moment after the links are set up: send until it arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let received = 'received: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the tagged frame never reached h2"
        );
        h1.run(|| send_raw("eth0", &frame)).unwrap().unwrap();
        while let Some(packet) = on_h2.recv_timeout(Duration::from_millis(200)) {
            if tagged(&packet) {
                break 'received packet;
            }
        }
    };
    on_h2.stop().unwrap();
    let sent = on_h1
        .stop()
        .unwrap()
        .into_iter()
        .find(tagged)
        .expect("h1 captured the frame it sent");
    assert_eq!(sent.direction, Direction::Out);
    assert_eq!(received.direction, Direction::In);
    assert_eq!(sent.data, frame);
    assert_eq!(received.data, frame);
    assert_eq!(received.original_len as usize, frame.len());
    assert_eq!(
        summarize(&received.data),
        "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff vlan 10 p 3, ethertype 0x88b5 len=51"
    );
}
