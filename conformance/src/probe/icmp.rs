//! ICMP and ICMPv6 echo, as pure functions over bytes (built and read with pnet_packet).
//!
//! What a raw socket hands over differs by family: an `IPPROTO_ICMP` socket receives the whole
//! IPv4 datagram (header included), an `IPPROTO_ICMPV6` socket only the ICMPv6 message, the
//! source address coming from `recvfrom`. For ICMPv6 the kernel computes (and checks) the
//! checksum itself (RFC 3542 §3.1: it needs the source address, chosen only when routing), so
//! [`echo_request_v6`] leaves it zero; ICMPv4 checksums are ours to compute and to check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::Packet;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{IcmpPacket, IcmpTypes};
use pnet_packet::icmpv6::Icmpv6Types;
use pnet_packet::icmpv6::echo_request::MutableEchoRequestPacket as MutableEchoRequestV6Packet;
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;

/// The payload of our echo requests.
pub(crate) const PAYLOAD: &[u8] = b"drydock ping probe";

/// An ICMP message we care about, read from a raw socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received {
    /// An echo reply from `from`.
    Reply { from: IpAddr, id: u16, seq: u16 },
    /// An error (destination unreachable, time exceeded) sent by `from` about an echo request of
    /// ours to `to`.
    Error {
        from: IpAddr,
        to: IpAddr,
        id: u16,
        seq: u16,
        reason: String,
    },
}

/// An ICMPv4 echo request with its checksum.
pub(crate) fn echo_request_v4(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + payload.len()];
    let mut packet = MutableEchoRequestPacket::new(&mut buf).expect("buffer holds the header");
    packet.set_icmp_type(IcmpTypes::EchoRequest);
    packet.set_identifier(id);
    packet.set_sequence_number(seq);
    packet.set_payload(payload);
    let checksum =
        pnet_packet::icmp::checksum(&IcmpPacket::new(packet.packet()).expect("same buffer"));
    packet.set_checksum(checksum);
    buf
}

/// An ICMPv6 echo request; its checksum is left zero for the kernel to fill in.
pub(crate) fn echo_request_v6(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + payload.len()];
    let mut packet = MutableEchoRequestV6Packet::new(&mut buf).expect("buffer holds the header");
    packet.set_icmpv6_type(Icmpv6Types::EchoRequest);
    packet.set_identifier(id);
    packet.set_sequence_number(seq);
    packet.set_payload(payload);
    buf
}

/// The ICMPv6 checksum the kernel gives `echo_request_v6`'s packet.
#[cfg(test)]
fn checksum_v6(message: &[u8], source: Ipv6Addr, destination: Ipv6Addr) -> u16 {
    pnet_packet::icmpv6::Icmpv6Packet::new(message)
        .map(|p| pnet_packet::icmpv6::checksum(&p, &source, &destination))
        .unwrap_or_default()
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// Reads an IPv4 datagram (header included) received on a raw ICMP socket.
///
/// Returns `None` for anything that is not a well-formed echo reply or an error quoting one of
/// our echo requests (a wrong checksum included).
pub(crate) fn parse_v4(datagram: &[u8]) -> Option<Received> {
    let ip = Ipv4Packet::new(datagram)?;
    if ip.get_version() != 4 || ip.get_next_level_protocol() != IpNextHeaderProtocols::Icmp {
        return None;
    }
    let from = IpAddr::V4(ip.get_source());
    let icmp = datagram.get(usize::from(ip.get_header_length()) * 4..)?;
    let packet = IcmpPacket::new(icmp)?;
    if icmp.len() < 8 || pnet_packet::icmp::checksum(&packet) != packet.get_checksum() {
        return None;
    }
    let (kind, code) = (icmp[0], icmp[1]);
    match kind {
        0 if code == 0 => Some(Received::Reply {
            from,
            id: be16(icmp, 4)?,
            seq: be16(icmp, 6)?,
        }),
        3 | 11 => {
            // The offending datagram follows: its IP header, then our echo request's header.
            let quoted = &icmp[8..];
            let inner = Ipv4Packet::new(quoted)?;
            if inner.get_next_level_protocol() != IpNextHeaderProtocols::Icmp {
                return None;
            }
            let echo = quoted.get(usize::from(inner.get_header_length()) * 4..)?;
            if *echo.first()? != IcmpTypes::EchoRequest.0 {
                return None;
            }
            Some(Received::Error {
                from,
                to: IpAddr::V4(inner.get_destination()),
                id: be16(echo, 4)?,
                seq: be16(echo, 6)?,
                reason: format!("{} (from {from})", reason_v4(kind, code)),
            })
        }
        _ => None,
    }
}

/// Reads an ICMPv6 message received on a raw ICMPv6 socket from `from`.
///
/// The kernel has already checked its checksum. Returns `None` for anything that is not an echo
/// reply or an error quoting one of our echo requests.
pub(crate) fn parse_v6(from: Ipv6Addr, icmp: &[u8]) -> Option<Received> {
    if icmp.len() < 8 {
        return None;
    }
    let from = IpAddr::V6(from);
    let (kind, code) = (icmp[0], icmp[1]);
    match kind {
        129 if code == 0 => Some(Received::Reply {
            from,
            id: be16(icmp, 4)?,
            seq: be16(icmp, 6)?,
        }),
        1 | 3 => {
            let quoted = &icmp[8..];
            let inner = Ipv6Packet::new(quoted)?;
            // Our requests carry no extension headers.
            if inner.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
                return None;
            }
            let echo = quoted.get(40..)?;
            if *echo.first()? != Icmpv6Types::EchoRequest.0 {
                return None;
            }
            Some(Received::Error {
                from,
                to: IpAddr::V6(inner.get_destination()),
                id: be16(echo, 4)?,
                seq: be16(echo, 6)?,
                reason: format!("{} (from {from})", reason_v6(kind, code)),
            })
        }
        _ => None,
    }
}

/// What an ICMPv4 error type and code mean, in ping's words.
fn reason_v4(kind: u8, code: u8) -> String {
    let text = match (kind, code) {
        (3, 0) => "Destination Net Unreachable",
        (3, 1) => "Destination Host Unreachable",
        (3, 2) => "Destination Protocol Unreachable",
        (3, 3) => "Destination Port Unreachable",
        (3, 4) => "Frag needed",
        (3, 5) => "Source Route Failed",
        (3, 6) => "Destination Net Unknown",
        (3, 7) => "Destination Host Unknown",
        (3, 8) => "Source Host Isolated",
        (3, 9) => "Destination Net Prohibited",
        (3, 10) => "Destination Host Prohibited",
        (3, 11) => "Destination Net Unreachable for Type of Service",
        (3, 12) => "Destination Host Unreachable for Type of Service",
        (3, 13) => "Packet filtered",
        (3, 14) => "Precedence Violation",
        (3, 15) => "Precedence Cutoff",
        (11, 0) => "Time to live exceeded",
        (11, 1) => "Frag reassembly time exceeded",
        (3, _) => return format!("Destination Unreachable, Bad Code: {code}"),
        _ => return format!("ICMP type {kind} code {code}"),
    };
    text.to_owned()
}

/// What an ICMPv6 error type and code mean, in ping's words.
fn reason_v6(kind: u8, code: u8) -> String {
    let text = match (kind, code) {
        (1, 0) => "No route",
        (1, 1) => "Administratively prohibited",
        (1, 2) => "Beyond scope of source address",
        (1, 3) => "Address unreachable",
        (1, 4) => "Port unreachable",
        (1, 5) => "Source address failed ingress/egress policy",
        (1, 6) => "Reject route to destination",
        (3, 0) => "Hop limit exceeded in transit",
        (3, 1) => "Fragment reassembly time exceeded",
        (1, _) => return format!("Destination unreachable, code {code}"),
        _ => return format!("ICMPv6 type {kind} code {code}"),
    };
    text.to_owned()
}

/// The IPv4 address of an IPv6-mapped one, or the address itself (replies come from the
/// unmapped form).
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(addr, |v4: Ipv4Addr| IpAddr::V4(v4)),
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal IPv4 header (20 bytes, protocol ICMP) with a correct header checksum.
    fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0];
        h[2..4].copy_from_slice(&u16::try_from(20 + payload_len).unwrap().to_be_bytes());
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        let sum = pnet_packet::util::checksum(&h, 5);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h
    }

    /// Sets the ICMPv4 checksum of `icmp` in place.
    fn fix_checksum(icmp: &mut [u8]) {
        icmp[2..4].fill(0);
        let sum = pnet_packet::util::checksum(icmp, 1);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    }

    #[test]
    fn v4_request_has_a_valid_checksum() {
        let request = echo_request_v4(0x1234, 7, PAYLOAD);
        assert_eq!(&request[..2], &[8, 0]);
        assert_eq!(&request[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&request[8..], PAYLOAD);
        // The one's complement sum over a message with a right checksum is 0xffff: folding
        // it with the checksum field included gives zero.
        assert_eq!(pnet_packet::util::checksum(&request, 99), 0);
        // A known vector: type 8, id 1, seq 1, no payload: 0xffff - 0x0802 = 0xf7fd.
        assert_eq!(&echo_request_v4(1, 1, b"")[2..4], &[0xf7, 0xfd]);
    }

    #[test]
    fn v6_request_leaves_the_checksum_to_the_kernel() {
        let request = echo_request_v6(0xbeef, 1, PAYLOAD);
        assert_eq!(&request[..4], &[128, 0, 0, 0]);
        assert_eq!(&request[4..8], &[0xbe, 0xef, 0, 1]);
        let (a, b) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        assert_ne!(checksum_v6(&request, a, b), 0);
    }

    #[test]
    fn v4_reply_is_read_with_its_source() {
        let mut reply = echo_request_v4(42, 3, PAYLOAD);
        reply[0] = 0;
        fix_checksum(&mut reply);
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let mut datagram = ipv4_header(src, Ipv4Addr::new(10, 0, 0, 1), reply.len());
        datagram.extend_from_slice(&reply);
        assert_eq!(
            parse_v4(&datagram),
            Some(Received::Reply {
                from: src.into(),
                id: 42,
                seq: 3
            })
        );
        // A corrupted checksum is ignored.
        let last = datagram.len() - 1;
        datagram[last] ^= 0xff;
        assert_eq!(parse_v4(&datagram), None);
    }

    #[test]
    fn v4_requests_and_other_messages_are_ignored() {
        let request = echo_request_v4(42, 3, PAYLOAD);
        let mut datagram = ipv4_header(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 1),
            request.len(),
        );
        datagram.extend_from_slice(&request);
        assert_eq!(parse_v4(&datagram), None);
        assert_eq!(parse_v4(&datagram[..10]), None);
        assert_eq!(parse_v4(b""), None);
    }

    #[test]
    fn v4_unreachable_quotes_our_request() {
        let (me, target, router) = (
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 9, 9, 9),
            Ipv4Addr::new(10, 0, 0, 254),
        );
        let request = echo_request_v4(77, 2, PAYLOAD);
        let mut quoted = ipv4_header(me, target, request.len());
        quoted.extend_from_slice(&request[..8]);
        let mut icmp = vec![3, 1, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted);
        fix_checksum(&mut icmp);
        let mut datagram = ipv4_header(router, me, icmp.len());
        datagram.extend_from_slice(&icmp);
        assert_eq!(
            parse_v4(&datagram),
            Some(Received::Error {
                from: router.into(),
                to: target.into(),
                id: 77,
                seq: 2,
                reason: "Destination Host Unreachable (from 10.0.0.254)".into(),
            })
        );
    }

    #[test]
    fn v6_reply_and_errors() {
        let mut reply = echo_request_v6(9, 1, PAYLOAD);
        reply[0] = 129;
        let from: Ipv6Addr = "fd00::2".parse().unwrap();
        assert_eq!(
            parse_v6(from, &reply),
            Some(Received::Reply {
                from: from.into(),
                id: 9,
                seq: 1
            })
        );

        let target: Ipv6Addr = "fd99::1".parse().unwrap();
        let request = echo_request_v6(9, 4, PAYLOAD);
        let mut icmp = vec![1, 0, 0, 0, 0, 0, 0, 0];
        // IPv6 header: version 6, payload length, next header 58, hop limit 64, src, dst.
        icmp.extend_from_slice(&[0x60, 0, 0, 0]);
        icmp.extend_from_slice(&u16::try_from(request.len()).unwrap().to_be_bytes());
        icmp.extend_from_slice(&[58, 64]);
        icmp.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        icmp.extend_from_slice(&target.octets());
        icmp.extend_from_slice(&request);
        assert_eq!(
            parse_v6(from, &icmp),
            Some(Received::Error {
                from: from.into(),
                to: target.into(),
                id: 9,
                seq: 4,
                reason: "No route (from fd00::2)".into(),
            })
        );
        // Neighbour discovery and our own requests are not for us.
        assert_eq!(parse_v6(from, &[135, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(parse_v6(from, &request), None);
    }

    #[test]
    fn reasons_read_like_ping() {
        assert_eq!(reason_v4(11, 0), "Time to live exceeded");
        assert_eq!(reason_v4(3, 13), "Packet filtered");
        assert_eq!(reason_v4(3, 99), "Destination Unreachable, Bad Code: 99");
        assert_eq!(reason_v6(1, 3), "Address unreachable");
        assert_eq!(reason_v6(3, 0), "Hop limit exceeded in transit");
    }

    #[test]
    fn mapped_addresses_are_unmapped() {
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        assert_eq!(canonical(mapped), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        let v6: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
