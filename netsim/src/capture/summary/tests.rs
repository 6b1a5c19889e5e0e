//! Summaries of hand-built frames, and robustness against arbitrary bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_packet::arp::{ArpHardwareType, ArpOperation, MutableArpPacket};
use pnet_packet::ethernet::{EtherType, MutableEthernetPacket};
use pnet_packet::icmp::{IcmpCode, IcmpType, MutableIcmpPacket};
use pnet_packet::ip::IpNextHeaderProtocol;
use pnet_packet::ipv4::MutableIpv4Packet;
use pnet_packet::ipv6::MutableIpv6Packet;
use pnet_packet::tcp::{MutableTcpPacket, TcpFlags};
use pnet_packet::udp::MutableUdpPacket;
use pnet_packet::vlan::{ClassOfService, MutableVlanPacket};
use pnet_packet::vxlan::MutableVxlanPacket;
use rstest::rstest;

use super::*;
use crate::capture::Direction;

const MAC1: &str = "02:d0:0a:00:01:0a";
const MAC2: &str = "02:d0:0a:00:01:01";
const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";
const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 10);

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    eth_between(MAC1, MAC2, ethertype, payload)
}

fn eth_between(src: &str, dst: &str, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + payload.len()];
    let mut frame = MutableEthernetPacket::new(&mut buf).unwrap();
    frame.set_source(src.parse().unwrap());
    frame.set_destination(dst.parse().unwrap());
    frame.set_ethertype(EtherType(ethertype));
    frame.set_payload(payload);
    buf
}

fn ip4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + payload.len()];
    let mut ip = MutableIpv4Packet::new(&mut buf).unwrap();
    ip.set_version(4);
    ip.set_header_length(5);
    ip.set_total_length((20 + payload.len()) as u16);
    ip.set_identification(0x1234);
    ip.set_ttl(64);
    ip.set_next_level_protocol(IpNextHeaderProtocol(proto));
    ip.set_source(src);
    ip.set_destination(dst);
    ip.set_payload(payload);
    buf
}

fn ip6(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 40 + payload.len()];
    let mut ip = MutableIpv6Packet::new(&mut buf).unwrap();
    ip.set_version(6);
    ip.set_payload_length(payload.len() as u16);
    ip.set_next_header(IpNextHeaderProtocol(next));
    ip.set_hop_limit(255);
    ip.set_source(src.parse().unwrap());
    ip.set_destination(dst.parse().unwrap());
    ip.set_payload(payload);
    buf
}

fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32, data: usize) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + data];
    let mut tcp = MutableTcpPacket::new(&mut buf).unwrap();
    tcp.set_source(sport);
    tcp.set_destination(dport);
    tcp.set_sequence(seq);
    tcp.set_acknowledgement(ack);
    tcp.set_data_offset(5);
    tcp.set_flags(flags);
    tcp.set_window(64240);
    buf
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + payload.len()];
    let mut udp = MutableUdpPacket::new(&mut buf).unwrap();
    udp.set_source(sport);
    udp.set_destination(dport);
    udp.set_length((8 + payload.len()) as u16);
    udp.set_payload(payload);
    buf
}

fn icmp(kind: u8, code: u8, rest_of_header: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + payload.len()];
    let mut icmp = MutableIcmpPacket::new(&mut buf).unwrap();
    icmp.set_icmp_type(IcmpType(kind));
    icmp.set_icmp_code(IcmpCode(code));
    buf[4..8].copy_from_slice(&rest_of_header);
    buf[8..].copy_from_slice(payload);
    buf
}

fn echo(kind: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut header = [0u8; 4];
    header[..2].copy_from_slice(&id.to_be_bytes());
    header[2..].copy_from_slice(&seq.to_be_bytes());
    icmp(kind, 0, header, &[0xab; 16])
}

/// ICMPv6 message: type, code, 4 bytes of header, body (checksum left 0).
fn icmp6(kind: u8, code: u8, header: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut buf = vec![kind, code, 0, 0];
    buf.extend(header);
    buf.extend(body);
    buf
}

fn v6(addr: &str) -> [u8; 16] {
    addr.parse::<Ipv6Addr>().unwrap().octets()
}

fn arp(op: u16, sha: &str, spa: Ipv4Addr, tha: &str, tpa: Ipv4Addr) -> Vec<u8> {
    let mut buf = vec![0u8; 28];
    let mut arp = MutableArpPacket::new(&mut buf).unwrap();
    arp.set_hardware_type(ArpHardwareType(1));
    arp.set_protocol_type(EtherType(0x0800));
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperation(op));
    arp.set_sender_hw_addr(sha.parse().unwrap());
    arp.set_sender_proto_addr(spa);
    arp.set_target_hw_addr(tha.parse().unwrap());
    arp.set_target_proto_addr(tpa);
    buf
}

fn vlan(id: u16, priority: u8, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 4 + payload.len()];
    let mut vlan = MutableVlanPacket::new(&mut buf).unwrap();
    vlan.set_vlan_identifier(id);
    vlan.set_priority_code_point(ClassOfService(priority));
    vlan.set_ethertype(EtherType(ethertype));
    vlan.set_payload(payload);
    buf
}

fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + inner.len()];
    let mut vxlan = MutableVxlanPacket::new(&mut buf).unwrap();
    vxlan.set_flags(0x08);
    vxlan.set_vni(vni);
    vxlan.set_payload(inner);
    buf
}

fn esp(spi: u32, seq: u32) -> Vec<u8> {
    let mut buf = spi.to_be_bytes().to_vec();
    buf.extend(seq.to_be_bytes());
    buf.extend([0x5a; 24]);
    buf
}

fn dns_query(id: u16, name: &[&str], qtype: u16) -> Vec<u8> {
    let mut msg = id.to_be_bytes().to_vec();
    msg.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name {
        msg.push(label.len() as u8);
        msg.extend(label.as_bytes());
    }
    msg.push(0);
    msg.extend(qtype.to_be_bytes());
    msg.extend([0, 1]);
    msg
}

fn dns_answer_a(id: u16, name: &[&str], addrs: &[Ipv4Addr]) -> Vec<u8> {
    let mut msg = dns_query(id, name, 1);
    msg[2] = 0x81;
    msg[3] = 0x80;
    msg[7] = addrs.len() as u8;
    for addr in addrs {
        msg.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 2, 88, 0, 4]);
        msg.extend(addr.octets());
    }
    msg
}

fn ipv4_frame(proto: u8, payload: &[u8]) -> Vec<u8> {
    eth(0x0800, &ip4(IP1, IP2, proto, payload))
}

fn ipv6_frame(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
    eth(0x86dd, &ip6(src, dst, next, payload))
}

fn fragment(offset_units: u16, more: bool) -> Vec<u8> {
    let mut frame = ipv4_frame(17, &udp(5000, 6000, &[0; 32]));
    let flags_offset = offset_units | if more { 0x2000 } else { 0 };
    frame[14 + 6..14 + 8].copy_from_slice(&flags_offset.to_be_bytes());
    frame
}

fn mldv2_report() -> Vec<u8> {
    let mut body = Vec::new();
    for group in ["ff02::1:ff00:1", "ff05::2"] {
        body.extend([4, 0, 0, 0]); // CHANGE_TO_EXCLUDE, no aux data, no sources
        body.extend(v6(group));
    }
    // Hop-by-hop header (router alert) in front, as the kernel sends it.
    let mut payload = vec![58, 0, 5, 2, 0, 0, 1, 0];
    payload.extend(icmp6(143, 0, [0, 0, 0, 2], &body));
    ipv6_frame("fe80::1", "ff02::16", 0, &payload)
}

fn neighbor_advertisement() -> Vec<u8> {
    let mut body = v6("fe80::2").to_vec();
    body.extend([2, 1, 0x02, 0xd0, 0x0a, 0x00, 0x01, 0x01]); // target link-layer address
    ipv6_frame(
        "fe80::2",
        "fe80::1",
        58,
        &icmp6(136, 0, [0x60, 0, 0, 0], &body),
    )
}

fn port_unreachable() -> Vec<u8> {
    let quoted = ip4(IP1, IP2, 17, &udp(40000, 53, &[0; 20]));
    eth(
        0x0800,
        &ip4(IP2, IP1, 1, &icmp(3, 3, [0; 4], &quoted[..28])),
    )
}

#[rstest]
#[case::arp_request(
    eth_between(MAC1, BROADCAST, 0x0806, &arp(1, MAC1, IP1, "00:00:00:00:00:00", Ipv4Addr::new(10, 0, 1, 1))),
    "02:d0:0a:00:01:0a > ff:ff:ff:ff:ff:ff ARP who-has 10.0.1.1 tell 10.0.1.10"
)]
#[case::arp_reply(
    eth_between(MAC2, MAC1, 0x0806, &arp(2, MAC2, Ipv4Addr::new(10, 0, 1, 1), MAC1, IP1)),
    "02:d0:0a:00:01:01 > 02:d0:0a:00:01:0a ARP reply 10.0.1.1 is-at 02:d0:0a:00:01:01"
)]
#[case::echo_request(ipv4_frame(1, &echo(8, 7, 1)), "10.0.1.10 > 10.0.2.10 ICMP echo request id=7 seq=1")]
#[case::echo_reply(ipv4_frame(1, &echo(0, 7, 1)), "10.0.1.10 > 10.0.2.10 ICMP echo reply id=7 seq=1")]
#[case::port_unreachable(
    port_unreachable(),
    "10.0.2.10 > 10.0.1.10 ICMP port unreachable (10.0.1.10.40000 > 10.0.2.10.53 UDP len=20)"
)]
#[case::frag_needed(
    ipv4_frame(1, &icmp(3, 4, [0, 0, 0x05, 0xaa], &[])),
    "10.0.1.10 > 10.0.2.10 ICMP fragmentation needed mtu=1450"
)]
#[case::icmp_other(ipv4_frame(1, &icmp(13, 0, [0; 4], &[])), "10.0.1.10 > 10.0.2.10 ICMP type=13 code=0")]
#[case::syn(
    ipv4_frame(6, &tcp(40000, 80, TcpFlags::SYN, 1000, 0, 0)),
    "10.0.1.10.40000 > 10.0.2.10.80 TCP [S] seq=1000 win=64240 len=0"
)]
#[case::syn_ack(
    ipv4_frame(6, &tcp(80, 40000, TcpFlags::SYN | TcpFlags::ACK, 5000, 1001, 0)),
    "10.0.1.10.80 > 10.0.2.10.40000 TCP [S.] seq=5000 ack=1001 win=64240 len=0"
)]
#[case::ack(
    ipv4_frame(6, &tcp(40000, 80, TcpFlags::ACK, 1001, 5001, 0)),
    "10.0.1.10.40000 > 10.0.2.10.80 TCP [.] seq=1001 ack=5001 win=64240 len=0"
)]
#[case::push(
    ipv4_frame(6, &tcp(40000, 80, TcpFlags::PSH | TcpFlags::ACK, 1001, 5001, 100)),
    "10.0.1.10.40000 > 10.0.2.10.80 TCP [P.] seq=1001 ack=5001 win=64240 len=100"
)]
#[case::fin(
    ipv4_frame(6, &tcp(40000, 80, TcpFlags::FIN | TcpFlags::ACK, 1101, 5001, 0)),
    "10.0.1.10.40000 > 10.0.2.10.80 TCP [F.] seq=1101 ack=5001 win=64240 len=0"
)]
#[case::rst(
    ipv4_frame(6, &tcp(80, 40000, TcpFlags::RST, 0, 0, 0)),
    "10.0.1.10.80 > 10.0.2.10.40000 TCP [R] seq=0 win=64240 len=0"
)]
#[case::no_flags(
    ipv4_frame(6, &tcp(1, 2, 0, 0, 0, 0)),
    "10.0.1.10.1 > 10.0.2.10.2 TCP [none] seq=0 win=64240 len=0"
)]
#[case::udp(ipv4_frame(17, &udp(5000, 6000, &[1; 42])), "10.0.1.10.5000 > 10.0.2.10.6000 UDP len=42")]
#[case::dns_query(
    ipv4_frame(17, &udp(40000, 53, &dns_query(0x1234, &["web", "net1"], 1))),
    "10.0.1.10.40000 > 10.0.2.10.53 DNS id=4660 A? web.net1."
)]
#[case::dns_answer(
    ipv4_frame(17, &udp(53, 40000, &dns_answer_a(0x1234, &["web"], &[IP1, IP2]))),
    "10.0.1.10.53 > 10.0.2.10.40000 DNS response id=4660 A? web.: A 10.0.1.10, A 10.0.2.10"
)]
#[case::dns_nxdomain(
    ipv4_frame(17, &udp(53, 40000, &{ let mut m = dns_query(9, &["nope"], 28); m[2] = 0x81; m[3] = 0x83; m })),
    "10.0.1.10.53 > 10.0.2.10.40000 DNS response id=9 AAAA? nope. NXDOMAIN"
)]
#[case::esp(ipv4_frame(50, &esp(0xdeadbeef, 7)), "10.0.1.10 > 10.0.2.10 ESP spi=0xdeadbeef seq=7")]
#[case::gre(ipv4_frame(47, &[0; 12]), "10.0.1.10 > 10.0.2.10 GRE len=12")]
#[case::unknown_proto(ipv4_frame(253, &[0; 3]), "10.0.1.10 > 10.0.2.10 ip-proto-253 len=3")]
#[case::first_fragment(
    fragment(0, true),
    "10.0.1.10.5000 > 10.0.2.10.6000 UDP len=32 [fragment id=4660 off=0+]"
)]
#[case::later_fragment(
    fragment(185, false),
    "10.0.1.10 > 10.0.2.10 UDP fragment id=4660 off=1480 len=40"
)]
#[case::vlan(
    eth(0x8100, &vlan(10, 0, 0x0800, &ip4(IP1, IP2, 1, &echo(8, 7, 1)))),
    "vlan 10, 10.0.1.10 > 10.0.2.10 ICMP echo request id=7 seq=1"
)]
#[case::vlan_arp(
    eth_between(MAC1, BROADCAST, 0x8100, &vlan(20, 5, 0x0806, &arp(1, MAC1, IP1, "00:00:00:00:00:00", IP2))),
    "02:d0:0a:00:01:0a > ff:ff:ff:ff:ff:ff vlan 20 p 5, ARP who-has 10.0.2.10 tell 10.0.1.10"
)]
#[case::vxlan(
    eth(0x0800, &ip4(
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(192, 168, 0, 2),
        17,
        &udp(51234, 4789, &vxlan(42, &ipv4_frame(1, &echo(8, 7, 1)))),
    )),
    "192.168.0.1.51234 > 192.168.0.2.4789 VXLAN vni=42: 10.0.1.10 > 10.0.2.10 ICMP echo request id=7 seq=1"
)]
#[case::vxlan_arp(
    eth(0x0800, &ip4(
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(192, 168, 0, 2),
        17,
        &udp(51234, 4789, &vxlan(4097, &eth_between(MAC1, BROADCAST, 0x0806, &arp(1, MAC1, IP1, "00:00:00:00:00:00", IP2)))),
    )),
    "192.168.0.1.51234 > 192.168.0.2.4789 VXLAN vni=4097: 02:d0:0a:00:01:0a > ff:ff:ff:ff:ff:ff ARP who-has 10.0.2.10 tell 10.0.1.10"
)]
#[case::ipv6_echo(
    ipv6_frame("fd00::1", "fd00::2", 58, &icmp6(128, 0, [0, 7, 0, 1], &[0; 8])),
    "fd00::1 > fd00::2 ICMP6 echo request id=7 seq=1"
)]
#[case::ipv6_echo_reply(
    ipv6_frame("fd00::2", "fd00::1", 58, &icmp6(129, 0, [0, 7, 0, 1], &[0; 8])),
    "fd00::2 > fd00::1 ICMP6 echo reply id=7 seq=1"
)]
#[case::neighbor_solicitation(
    ipv6_frame("fe80::1", "ff02::1:ff00:2", 58, &icmp6(135, 0, [0; 4], &v6("fe80::2"))),
    "fe80::1 > ff02::1:ff00:2 ICMP6 neighbor solicitation who-has fe80::2"
)]
#[case::neighbor_advertisement(
    neighbor_advertisement(),
    "fe80::2 > fe80::1 ICMP6 neighbor advertisement fe80::2 is-at 02:d0:0a:00:01:01 flags=SO"
)]
#[case::router_solicitation(
    ipv6_frame("fe80::1", "ff02::2", 58, &icmp6(133, 0, [0; 4], &[])),
    "fe80::1 > ff02::2 ICMP6 router solicitation"
)]
#[case::mldv2_report(
    mldv2_report(),
    "fe80::1 > ff02::16 ICMP6 MLDv2 report ff02::1:ff00:1, ff05::2"
)]
#[case::mldv1_report(
    ipv6_frame("fe80::1", "ff02::1:3", 58, &icmp6(131, 0, [0; 4], &v6("ff02::1:3"))),
    "fe80::1 > ff02::1:3 ICMP6 MLD report ff02::1:3"
)]
#[case::ipv6_tcp(
    ipv6_frame("fd00::1", "fd00::2", 6, &tcp(40000, 80, TcpFlags::SYN, 1, 0, 0)),
    "fd00::1.40000 > fd00::2.80 TCP [S] seq=1 win=64240 len=0"
)]
#[case::ipv6_udp(
    ipv6_frame("fd00::1", "fd00::2", 17, &udp(5353, 5353, &[0; 10])),
    "fd00::1.5353 > fd00::2.5353 UDP len=10"
)]
#[case::unknown_ethertype(eth(0x88cc, &[0; 30]), "02:d0:0a:00:01:0a > 02:d0:0a:00:01:01 ethertype 0x88cc len=30")]
#[case::llc(eth(38, &[0x42; 38]), "02:d0:0a:00:01:0a > 02:d0:0a:00:01:01 802.3 len=38")]
#[case::runt(vec![0xff; 9], "truncated frame (9 bytes)")]
#[case::truncated_ip(eth(0x0800, &[0x45, 0, 0]), "IPv4 [truncated]")]
#[case::truncated_tcp(
    { let mut f = ipv4_frame(6, &tcp(40000, 80, 0, 0, 0, 0)); f.truncate(14 + 20 + 6); f },
    "10.0.1.10.40000 > 10.0.2.10.80 TCP [truncated]"
)]
#[case::truncated_arp(eth(0x0806, &[0, 1, 8, 0]), "02:d0:0a:00:01:0a > 02:d0:0a:00:01:01 ARP [truncated]")]
#[case::truncated_vlan(eth(0x8100, &[0, 10]), "02:d0:0a:00:01:0a > 02:d0:0a:00:01:01 vlan [truncated]")]
fn summaries(#[case] frame: Vec<u8>, #[case] expected: &str) {
    assert_eq!(summarize(&frame), expected);
}

#[test]
fn packet_summary_has_time_label_and_direction() {
    let packet = Packet {
        // 2023-11-14 22:13:20.000123456 UTC
        timestamp: Duration::new(1_700_000_000, 123_456),
        direction: Direction::Out,
        original_len: 0,
        data: ipv4_frame(1, &echo(8, 7, 1)),
    };
    assert_eq!(
        packet.summary("h1/eth0"),
        "22:13:20.000123 h1/eth0 out 10.0.1.10 > 10.0.2.10 ICMP echo request id=7 seq=1"
    );
}

/// Every frame the table above builds, for the robustness tests.
fn sample_frames() -> Vec<Vec<u8>> {
    vec![
        eth_between(MAC1, BROADCAST, 0x0806, &arp(1, MAC1, IP1, MAC2, IP2)),
        ipv4_frame(1, &echo(8, 7, 1)),
        port_unreachable(),
        ipv4_frame(6, &tcp(40000, 80, TcpFlags::SYN, 1000, 0, 10)),
        ipv4_frame(17, &udp(53, 40000, &dns_answer_a(1, &["web"], &[IP1, IP2]))),
        ipv4_frame(50, &esp(1, 2)),
        fragment(0, true),
        eth(
            0x8100,
            &vlan(
                10,
                0,
                0x86dd,
                &ip6("fd00::1", "fd00::2", 17, &udp(1, 2, &[])),
            ),
        ),
        eth(
            0x0800,
            &ip4(IP1, IP2, 17, &udp(1, 4789, &vxlan(42, &port_unreachable()))),
        ),
        mldv2_report(),
        neighbor_advertisement(),
    ]
}

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncated_frames_never_panic() {
    for frame in sample_frames() {
        for len in 0..=frame.len() {
            let _ = summarize(&frame[..len]);
        }
    }
}

#[test]
fn corrupted_frames_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let samples = sample_frames();
    for _ in 0..20_000 {
        let mut frame = samples[rng.below(samples.len())].clone();
        for _ in 0..=rng.below(8) {
            let at = rng.below(frame.len());
            frame[at] = rng.next() as u8;
        }
        let _ = summarize(&frame);
        frame.truncate(rng.below(frame.len() + 1));
        let _ = summarize(&frame);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let len = rng.below(160);
        let mut frame: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Steer a share of inputs past the Ethernet layer.
        if len >= 14 {
            let ethertype: [u8; 2] = match rng.below(5) {
                0 => [0x08, 0x00],
                1 => [0x86, 0xdd],
                2 => [0x81, 0x00],
                3 => [0x08, 0x06],
                _ => [frame[12], frame[13]],
            };
            frame[12..14].copy_from_slice(&ethertype);
        }
        let _ = summarize(&frame);
    }
}
