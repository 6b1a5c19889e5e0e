//! One-line, tcpdump-like summaries of Ethernet frames.
//!
//! Headers are read with pnet_packet's views where their accessors are safe on any input; the
//! rest (NDP options, DNS, VXLAN payload offsets, IPv6 extension headers) is sliced by hand with
//! bounds checks, because some pnet length functions overflow on hostile lengths (for example
//! `ndp_option_payload_length` multiplies a `u8` by 8). No input makes a summary panic.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use pnet_packet::arp::ArpPacket;
use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::{TcpFlags, TcpPacket};
use pnet_packet::udp::UdpPacket;
use pnet_packet::vlan::VlanPacket;
use pnet_packet::vxlan::VxlanPacket;

use super::Packet;

/// Encapsulations (VXLAN, ICMP quotes, VLAN tags) followed before giving up.
const MAX_DEPTH: usize = 4;
const MAX_VLAN_TAGS: usize = 4;
const VXLAN_PORT: u16 = 4789;
const DNS_PORT: u16 = 53;
const ETHERNET_HEADER: usize = 14;

impl Packet {
    /// The packet as one line: UTC time of day, `label`, direction, then [`summarize`], e.g.
    /// `12:00:00.000123 h1/eth0 out 10.0.1.10 > 10.0.2.10 ICMP echo request id=7 seq=1`.
    pub fn summary(&self, label: &str) -> String {
        format!(
            "{} {label} {} {}",
            time_of_day(self.timestamp),
            self.direction,
            summarize(&self.data)
        )
    }
}

/// `HH:MM:SS.micros` (UTC) of a time since the UNIX epoch.
fn time_of_day(timestamp: Duration) -> String {
    let secs = timestamp.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        timestamp.subsec_micros()
    )
}

/// Summarizes an Ethernet frame in one line, tcpdump style.
///
/// IP packets show addresses (and ports) only, e.g. `10.0.1.10.40000 > 10.0.2.10.80 TCP [S]
/// seq=1 win=64240 len=0`; MAC addresses appear only for ARP and other non-IP frames. 802.1Q tags
/// prefix the rest (`vlan 10, ...`), VXLAN (UDP 4789) shows its inner frame after `VXLAN vni=N:`.
/// Unknown protocols and truncated headers get a fallback; no input panics.
pub fn summarize(frame: &[u8]) -> String {
    ethernet(frame, 0)
}

fn ethernet(frame: &[u8], depth: usize) -> String {
    let Some(eth) = EthernetPacket::new(frame) else {
        return format!("truncated frame ({} bytes)", frame.len());
    };
    let macs = format!("{} > {}", eth.get_source(), eth.get_destination());
    let mut ethertype = eth.get_ethertype().0;
    let mut rest = &frame[ETHERNET_HEADER..];
    let mut tags = String::new();
    for _ in 0..MAX_VLAN_TAGS {
        if !matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        let Some(vlan) = VlanPacket::new(rest) else {
            return format!("{macs} {tags}vlan [truncated]");
        };
        let _ = write!(tags, "vlan {}", vlan.get_vlan_identifier());
        let priority = vlan.get_priority_code_point().0;
        if priority != 0 {
            let _ = write!(tags, " p {priority}");
        }
        tags.push_str(", ");
        ethertype = vlan.get_ethertype().0;
        rest = &rest[4..];
    }
    match ethertype {
        0x0800 => format!("{tags}{}", ipv4(rest, depth)),
        0x86dd => format!("{tags}{}", ipv6(rest, depth)),
        0x0806 => format!("{macs} {tags}{}", arp(rest)),
        length @ 0..=0x05ff => format!("{macs} {tags}802.3 len={length}"),
        other => format!("{macs} {tags}ethertype 0x{other:04x} len={}", rest.len()),
    }
}

fn arp(p: &[u8]) -> String {
    let Some(arp) = ArpPacket::new(p) else {
        return "ARP [truncated]".to_string();
    };
    let op = arp.get_operation().0;
    let ethernet_ipv4 = arp.get_hardware_type().0 == 1
        && arp.get_protocol_type().0 == 0x0800
        && arp.get_hw_addr_len() == 6
        && arp.get_proto_addr_len() == 4;
    if !ethernet_ipv4 {
        return format!(
            "ARP op={op} htype={} ptype=0x{:04x}",
            arp.get_hardware_type().0,
            arp.get_protocol_type().0
        );
    }
    let (spa, tpa) = (arp.get_sender_proto_addr(), arp.get_target_proto_addr());
    match op {
        1 => format!("ARP who-has {tpa} tell {spa}"),
        2 => format!("ARP reply {spa} is-at {}", arp.get_sender_hw_addr()),
        op => format!("ARP op={op} {spa} > {tpa}"),
    }
}

fn ipv4(p: &[u8], depth: usize) -> String {
    let Some(ip) = Ipv4Packet::new(p) else {
        return "IPv4 [truncated]".to_string();
    };
    let (src, dst) = (
        IpAddr::V4(ip.get_source()),
        IpAddr::V4(ip.get_destination()),
    );
    if ip.get_version() != 4 {
        return format!("IPv4 bad version {}", ip.get_version());
    }
    let header = usize::from(ip.get_header_length()) * 4;
    if header < 20 {
        return format!("{src} > {dst} IPv4 bad header length {header}");
    }
    let Some(after) = p.get(header..) else {
        return format!("{src} > {dst} IPv4 [truncated]");
    };
    // A total length below the header length happens on GSO super-frames over 64 KiB (BIG TCP
    // sets it to 0): the captured bytes are then all there is to go by.
    let total = usize::from(ip.get_total_length());
    let wire_len = total.checked_sub(header).unwrap_or(after.len());
    let payload = &after[..wire_len.min(after.len())];
    let proto = ip.get_next_level_protocol().0;
    let offset = usize::from(ip.get_fragment_offset()) * 8;
    let more_fragments = ip.get_flags() & 0b001 != 0;
    let id = ip.get_identification();
    if offset > 0 {
        let more = if more_fragments { "+" } else { "" };
        return format!(
            "{src} > {dst} {} fragment id={id} off={offset}{more} len={wire_len}",
            proto_name(proto)
        );
    }
    let mut line = transport(src, dst, proto, payload, wire_len, depth);
    if more_fragments {
        let _ = write!(line, " [fragment id={id} off=0+]");
    }
    line
}

fn ipv6(p: &[u8], depth: usize) -> String {
    let Some(ip) = Ipv6Packet::new(p) else {
        return "IPv6 [truncated]".to_string();
    };
    let (src, dst) = (
        IpAddr::V6(ip.get_source()),
        IpAddr::V6(ip.get_destination()),
    );
    if ip.get_version() != 6 {
        return format!("IPv6 bad version {}", ip.get_version());
    }
    let after = &p[40..];
    // Payload length 0: a jumbogram or a BIG TCP super-frame; go by the captured bytes.
    let mut wire_len = match usize::from(ip.get_payload_length()) {
        0 => after.len(),
        len => len,
    };
    let mut rest = &after[..wire_len.min(after.len())];
    let mut next = ip.get_next_header().0;
    let mut fragment = None;
    for _ in 0..8 {
        let len = match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units, minus one.
            0 | 43 | 60 => rest.get(1).map(|&l| (usize::from(l) + 1) * 8),
            44 => Some(8),
            // AH: length in 4-octet units, minus two.
            51 => rest.get(1).map(|&l| (usize::from(l) + 2) * 4),
            _ => break,
        };
        let Some(len) = len.filter(|&len| len <= rest.len()) else {
            return format!("{src} > {dst} IPv6 [truncated]");
        };
        if next == 44 {
            let offset = usize::from(u16::from_be_bytes([rest[2], rest[3]]) & 0xfff8);
            let more = rest[3] & 1 != 0;
            let id = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
            fragment = Some((offset, more, id));
        }
        next = rest[0];
        rest = &rest[len..];
        wire_len = wire_len.saturating_sub(len);
    }
    match fragment {
        Some((offset, more, id)) if offset > 0 => {
            let more = if more { "+" } else { "" };
            format!(
                "{src} > {dst} {} fragment id={id} off={offset}{more} len={wire_len}",
                proto_name(next)
            )
        }
        Some((_, more, id)) => {
            let mut line = transport(src, dst, next, rest, wire_len, depth);
            if more {
                let _ = write!(line, " [fragment id={id} off=0+]");
            }
            line
        }
        None => transport(src, dst, next, rest, wire_len, depth),
    }
}

/// The layer-4 part; `wire_len` is the payload length the IP header announces.
fn transport(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    p: &[u8],
    wire_len: usize,
    depth: usize,
) -> String {
    match proto {
        6 => tcp(src, dst, p, wire_len),
        17 => udp(src, dst, p, wire_len, depth),
        1 => format!("{src} > {dst} {}", icmp(p, depth)),
        58 => format!("{src} > {dst} {}", icmpv6(p, depth)),
        50 => match p.get(..8) {
            Some(h) => format!(
                "{src} > {dst} ESP spi=0x{:08x} seq={}",
                be32(&h[..4]),
                be32(&h[4..])
            ),
            None => format!("{src} > {dst} ESP [truncated]"),
        },
        proto => format!("{src} > {dst} {} len={wire_len}", proto_name(proto)),
    }
}

fn proto_name(proto: u8) -> String {
    match proto {
        1 => "ICMP".into(),
        2 => "IGMP".into(),
        4 => "IPIP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        41 => "IPv6".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        58 => "ICMP6".into(),
        112 => "VRRP".into(),
        132 => "SCTP".into(),
        other => format!("ip-proto-{other}"),
    }
}

fn tcp(src: IpAddr, dst: IpAddr, p: &[u8], wire_len: usize) -> String {
    let Some(tcp) = TcpPacket::new(p) else {
        // ICMP errors quote only the first 8 bytes: the ports are still worth showing.
        return match p.get(..4) {
            Some(ports) => format!(
                "{src}.{} > {dst}.{} TCP [truncated]",
                be16(&ports[..2]),
                be16(&ports[2..])
            ),
            None => format!("{src} > {dst} TCP [truncated]"),
        };
    };
    let flags = tcp.get_flags();
    let len = wire_len.saturating_sub(usize::from(tcp.get_data_offset()) * 4);
    let mut line = format!(
        "{src}.{} > {dst}.{} TCP [{}] seq={}",
        tcp.get_source(),
        tcp.get_destination(),
        tcp_flags(flags),
        tcp.get_sequence()
    );
    if flags & TcpFlags::ACK != 0 {
        let _ = write!(line, " ack={}", tcp.get_acknowledgement());
    }
    let _ = write!(line, " win={} len={len}", tcp.get_window());
    line
}

/// tcpdump's flag letters, in its order; ACK is ".".
fn tcp_flags(flags: u8) -> String {
    const LETTERS: [(u8, char); 8] = [
        (TcpFlags::FIN, 'F'),
        (TcpFlags::SYN, 'S'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::URG, 'U'),
        (TcpFlags::ECE, 'E'),
        (TcpFlags::CWR, 'W'),
        (TcpFlags::ACK, '.'),
    ];
    let letters: String = LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|&(_, letter)| letter)
        .collect();
    if letters.is_empty() {
        "none".to_string()
    } else {
        letters
    }
}

fn udp(src: IpAddr, dst: IpAddr, p: &[u8], wire_len: usize, depth: usize) -> String {
    let Some(udp) = UdpPacket::new(p) else {
        return format!("{src} > {dst} UDP [truncated]");
    };
    let (sport, dport) = (udp.get_source(), udp.get_destination());
    let ports = format!("{src}.{sport} > {dst}.{dport}");
    // The UDP length field; 0 or nonsense (UDP GSO, hostile input) falls back to the IP length.
    let len = match usize::from(udp.get_length()) {
        len @ 8.. => len - 8,
        _ => wire_len.saturating_sub(8),
    };
    let data = &p[8..p.len().min(8 + len)];
    if dport == VXLAN_PORT
        && depth < MAX_DEPTH
        && let Some(vxlan) = VxlanPacket::new(data)
        && vxlan.get_flags() & 0x08 != 0
    {
        return format!(
            "{ports} VXLAN vni={}: {}",
            vxlan.get_vni(),
            ethernet(&data[8..], depth + 1)
        );
    }
    if (sport == DNS_PORT || dport == DNS_PORT)
        && let Some(dns) = dns(data)
    {
        return format!("{ports} {dns}");
    }
    format!("{ports} UDP len={len}")
}

fn icmp(p: &[u8], depth: usize) -> String {
    let (Some(&kind), Some(&code)) = (p.first(), p.get(1)) else {
        return "ICMP [truncated]".to_string();
    };
    let quoted = |p: &[u8]| match p.get(8..) {
        Some(inner) if !inner.is_empty() && depth < MAX_DEPTH => {
            format!(" ({})", ipv4(inner, depth + 1))
        }
        _ => String::new(),
    };
    match kind {
        0 | 8 => match p.get(4..8) {
            Some(h) => format!(
                "ICMP echo {} id={} seq={}",
                if kind == 8 { "request" } else { "reply" },
                be16(&h[..2]),
                be16(&h[2..])
            ),
            None => "ICMP echo [truncated]".to_string(),
        },
        3 => {
            let what = match code {
                0 => "net unreachable".to_string(),
                1 => "host unreachable".to_string(),
                2 => "protocol unreachable".to_string(),
                3 => "port unreachable".to_string(),
                4 => match p.get(6..8) {
                    Some(mtu) => format!("fragmentation needed mtu={}", be16(mtu)),
                    None => "fragmentation needed".to_string(),
                },
                9 | 10 | 13 => "unreachable, administratively prohibited".to_string(),
                code => format!("unreachable code={code}"),
            };
            format!("ICMP {what}{}", quoted(p))
        }
        11 => format!("ICMP time exceeded{}", quoted(p)),
        5 => format!("ICMP redirect{}", quoted(p)),
        kind => format!("ICMP type={kind} code={code}"),
    }
}

fn icmpv6(p: &[u8], depth: usize) -> String {
    let (Some(&kind), Some(&code)) = (p.first(), p.get(1)) else {
        return "ICMP6 [truncated]".to_string();
    };
    let addr_at = |offset: usize| -> Option<Ipv6Addr> {
        let bytes: [u8; 16] = p.get(offset..offset + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(bytes))
    };
    let quoted = || match p.get(8..) {
        Some(inner) if !inner.is_empty() && depth < MAX_DEPTH => {
            format!(" ({})", ipv6(inner, depth + 1))
        }
        _ => String::new(),
    };
    match kind {
        128 | 129 => match p.get(4..8) {
            Some(h) => format!(
                "ICMP6 echo {} id={} seq={}",
                if kind == 128 { "request" } else { "reply" },
                be16(&h[..2]),
                be16(&h[2..])
            ),
            None => "ICMP6 echo [truncated]".to_string(),
        },
        1 => {
            let what = match code {
                0 => "no route to destination".to_string(),
                1 => "unreachable, administratively prohibited".to_string(),
                3 => "address unreachable".to_string(),
                4 => "port unreachable".to_string(),
                code => format!("unreachable code={code}"),
            };
            format!("ICMP6 {what}{}", quoted())
        }
        2 => match p.get(4..8) {
            Some(mtu) => format!("ICMP6 packet too big mtu={}{}", be32(mtu), quoted()),
            None => "ICMP6 packet too big [truncated]".to_string(),
        },
        3 => format!("ICMP6 time exceeded{}", quoted()),
        130 => match addr_at(8) {
            Some(group) if !group.is_unspecified() => format!("ICMP6 MLD query {group}"),
            Some(_) => "ICMP6 MLD query".to_string(),
            None => "ICMP6 MLD query [truncated]".to_string(),
        },
        131 | 132 => {
            let what = if kind == 131 {
                "MLD report"
            } else {
                "MLD done"
            };
            match addr_at(8) {
                Some(group) => format!("ICMP6 {what} {group}"),
                None => format!("ICMP6 {what} [truncated]"),
            }
        }
        143 => mldv2_report(p),
        133 => "ICMP6 router solicitation".to_string(),
        134 => "ICMP6 router advertisement".to_string(),
        135 => match addr_at(8) {
            Some(target) => format!("ICMP6 neighbor solicitation who-has {target}"),
            None => "ICMP6 neighbor solicitation [truncated]".to_string(),
        },
        136 => {
            let Some(target) = addr_at(8) else {
                return "ICMP6 neighbor advertisement [truncated]".to_string();
            };
            let mut line = format!("ICMP6 neighbor advertisement {target}");
            // Option 2: target link-layer address.
            if let Some(mac) = ndp_option(p.get(24..).unwrap_or_default(), 2)
                && let Some(mac) = mac.get(..6)
            {
                let _ = write!(line, " is-at {}", mac_string(mac));
            }
            let flags = p.get(4).copied().unwrap_or_default();
            let letters: String = [(0x80, 'R'), (0x40, 'S'), (0x20, 'O')]
                .iter()
                .filter(|(bit, _)| flags & bit != 0)
                .map(|&(_, letter)| letter)
                .collect();
            if !letters.is_empty() {
                let _ = write!(line, " flags={letters}");
            }
            line
        }
        137 => "ICMP6 redirect".to_string(),
        kind => format!("ICMP6 type={kind} code={code}"),
    }
}

/// MLDv2 report: its multicast address records, e.g. `ICMP6 MLDv2 report ff02::1:ff00:1`.
fn mldv2_report(p: &[u8]) -> String {
    let Some(count) = p.get(6..8).map(be16) else {
        return "ICMP6 MLDv2 report [truncated]".to_string();
    };
    let mut groups = Vec::new();
    let mut rest = p.get(8..).unwrap_or_default();
    for _ in 0..count.min(16) {
        let Some(record) = rest.get(..20) else {
            groups.push("[truncated]".to_string());
            break;
        };
        let aux = usize::from(record[1]) * 4;
        let sources = usize::from(be16(&record[2..4])) * 16;
        let group: [u8; 16] = record[4..20].try_into().unwrap_or_default();
        groups.push(Ipv6Addr::from(group).to_string());
        rest = rest.get(20 + sources + aux..).unwrap_or_default();
    }
    if groups.is_empty() {
        return "ICMP6 MLDv2 report".to_string();
    }
    format!("ICMP6 MLDv2 report {}", groups.join(", "))
}

/// The body of the first NDP option of type `kind` in `options`.
fn ndp_option(mut options: &[u8], kind: u8) -> Option<&[u8]> {
    while let [t, len, ..] = *options {
        let len = usize::from(len) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if t == kind {
            return Some(&options[2..len]);
        }
        options = &options[len..];
    }
    None
}

/// A DNS message as `DNS [response ]id=N A? name.`, with answers and error codes of responses.
fn dns(p: &[u8]) -> Option<String> {
    let header = p.get(..12)?;
    let id = be16(&header[..2]);
    let response = header[2] & 0x80 != 0;
    let rcode = header[3] & 0x0f;
    let (questions, answers) = (be16(&header[4..6]), be16(&header[6..8]));
    let mut line = format!("DNS {}id={id}", if response { "response " } else { "" });
    let mut offset = 12;
    if questions > 0 {
        let (name, end) = dns_name(p, offset)?;
        let qtype = be16(p.get(end..end + 2)?);
        let _ = write!(line, " {}? {name}", dns_type(qtype));
        offset = end + 4;
    }
    if !response {
        return Some(line);
    }
    if rcode != 0 {
        let name = match rcode {
            1 => "FORMERR".to_string(),
            2 => "SERVFAIL".to_string(),
            3 => "NXDOMAIN".to_string(),
            4 => "NOTIMP".to_string(),
            5 => "REFUSED".to_string(),
            code => format!("rcode={code}"),
        };
        let _ = write!(line, " {name}");
    }
    // Answers only follow a single question.
    if questions != 1 {
        return Some(line);
    }
    let mut shown = Vec::new();
    for _ in 0..answers.min(16) {
        let Some((_, end)) = dns_name(p, offset) else {
            shown.push("[truncated]".to_string());
            break;
        };
        let Some(fixed) = p.get(end..end + 10) else {
            shown.push("[truncated]".to_string());
            break;
        };
        let rtype = be16(&fixed[..2]);
        let rdlen = usize::from(be16(&fixed[8..10]));
        let rdata = p.get(end + 10..end + 10 + rdlen).unwrap_or_default();
        shown.push(match (rtype, rdata.len()) {
            (1, 4) => format!(
                "A {}",
                Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])
            ),
            (28, 16) => {
                let bytes: [u8; 16] = rdata.try_into().unwrap_or_default();
                format!("AAAA {}", Ipv6Addr::from(bytes))
            }
            (5 | 12, _) => match dns_name(p, end + 10) {
                Some((name, _)) => format!("{} {name}", dns_type(rtype)),
                None => dns_type(rtype),
            },
            _ => dns_type(rtype),
        });
        offset = end + 10 + rdlen;
    }
    if !shown.is_empty() {
        let _ = write!(line, ": {}", shown.join(", "));
    }
    Some(line)
}

/// Reads a (possibly compressed) domain name at `offset`; returns it with a trailing dot and the
/// offset just past it in the message.
fn dns_name(msg: &[u8], mut offset: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(offset)?;
        match len {
            0 => {
                if name.is_empty() {
                    name.push('.');
                }
                return Some((name, end.unwrap_or(offset + 1)));
            }
            0xc0..=0xff => {
                let pointer =
                    usize::from(u16::from_be_bytes([len, *msg.get(offset + 1)?]) & 0x3fff);
                end.get_or_insert(offset + 2);
                offset = pointer;
            }
            1..=63 => {
                let label = msg.get(offset + 1..offset + 1 + usize::from(len))?;
                name.extend(label.iter().map(|&b| {
                    if b.is_ascii_graphic() {
                        char::from(b)
                    } else {
                        '?'
                    }
                }));
                name.push('.');
                offset += 1 + usize::from(len);
            }
            _ => return None,
        }
    }
    None
}

fn dns_type(rtype: u16) -> String {
    match rtype {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        41 => "OPT".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        other => format!("TYPE{other}"),
    }
}

fn mac_string(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Big-endian u16 of the first two bytes (callers pass exactly two).
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Big-endian u32 of the first four bytes (callers pass exactly four).
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests;
