//! Packet filters for scenario captures: `icmp`, `udp port 53`, `tcp port 80 host 10.0.0.1`,
//! `vlan 10 icmp`, `vni 4097 icmp host 10.0.1.2` (a VXLAN frame of VNI 4097 carrying that).

use std::fmt;
use std::net::IpAddr;

use pnet_packet::Packet as _;
use pnet_packet::arp::ArpPacket;
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use pnet_packet::vlan::VlanPacket;

/// A protocol a filter can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// ARP.
    Arp,
    /// ICMP (IPv4).
    Icmp,
    /// ICMPv6.
    Icmp6,
    /// TCP over IPv4 or IPv6.
    Tcp,
    /// UDP over IPv4 or IPv6.
    Udp,
    /// IPsec ESP.
    Esp,
    /// VXLAN (UDP port 4789).
    Vxlan,
}

/// Every condition must hold: 802.1Q tag, protocol, port (either side), address (either side;
/// an ARP packet's sender or target).
/// Without `vlan`, a tagged frame is matched by what it carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// Protocol, if any.
    pub protocol: Option<Protocol>,
    /// Port on either side (TCP/UDP), if any.
    pub port: Option<u16>,
    /// Address on either side, if any.
    pub host: Option<IpAddr>,
    /// The VLAN id of the frame's 802.1Q tag, if any.
    pub vlan: Option<u16>,
    /// `vni N`: the frame is VXLAN (UDP port 4789) of this VNI, and the other conditions
    /// (protocol, port, host) hold for the frame it carries; `vlan` still reads the outer one.
    pub vni: Option<u32>,
    text: String,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Filter {
    /// Parses `[vlan N] [vni N] [PROTOCOL] [port N] [host IP]`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut filter = Filter {
            text: text.to_string(),
            ..Filter::default()
        };
        let mut words = text.split_whitespace();
        while let Some(word) = words.next() {
            match word {
                "port" => {
                    let port = words.next().and_then(|p| p.parse().ok());
                    filter.port = Some(
                        port.ok_or_else(|| format!("{text:?}: expected a number after `port`"))?,
                    );
                }
                "vlan" => {
                    let vid = words.next().and_then(|v| v.parse().ok());
                    filter.vlan =
                        Some(vid.filter(|v| (1..=4094).contains(v)).ok_or_else(|| {
                            format!("{text:?}: expected a VLAN id (1-4094) after `vlan`")
                        })?);
                }
                "vni" => {
                    let vni = words.next().and_then(|v| v.parse().ok());
                    filter.vni = Some(vni.filter(|v| *v < 1 << 24).ok_or_else(|| {
                        format!("{text:?}: expected a VXLAN id (0-16777215) after `vni`")
                    })?);
                }
                "host" => {
                    let host = words.next().and_then(|h| h.parse().ok());
                    filter.host =
                        Some(host.ok_or_else(|| {
                            format!("{text:?}: expected an IP address after `host`")
                        })?);
                }
                name => {
                    let protocol = match name {
                        "arp" => Protocol::Arp,
                        "icmp" => Protocol::Icmp,
                        "icmp6" => Protocol::Icmp6,
                        "tcp" => Protocol::Tcp,
                        "udp" => Protocol::Udp,
                        "esp" => Protocol::Esp,
                        "vxlan" => Protocol::Vxlan,
                        _ => {
                            return Err(format!(
                                "{name:?}: expected arp, icmp, icmp6, tcp, udp, esp, vxlan, `port N`, `host IP`, `vlan N` or `vni N`"
                            ));
                        }
                    };
                    if filter.protocol.replace(protocol).is_some() {
                        return Err(format!("{text:?}: one protocol at most"));
                    }
                }
            }
        }
        if filter.vni.is_some() && filter.protocol == Some(Protocol::Vxlan) {
            return Err(format!(
                "{text:?}: `vni N` already means VXLAN; a protocol after it is the inner frame's"
            ));
        }
        Ok(filter)
    }

    /// True when the Ethernet frame matches. Without `vni`, outer headers only (VXLAN's inner
    /// frame is not looked into); with `vni N`, the frame must be VXLAN of that VNI and the
    /// protocol, port and host conditions apply to the frame it carries.
    pub fn matches(&self, frame: &[u8]) -> bool {
        let Some(vni) = self.vni else {
            return self.matches_outer(frame);
        };
        let outer = Filter {
            protocol: Some(Protocol::Vxlan),
            vlan: self.vlan,
            ..Filter::default()
        };
        let inner = Filter {
            protocol: self.protocol,
            port: self.port,
            host: self.host,
            ..Filter::default()
        };
        outer.matches_outer(frame)
            && vxlan_inner(frame).is_some_and(|(id, carried)| id == vni && inner.matches(carried))
    }

    /// [`Filter::matches`] on the outer headers only.
    fn matches_outer(&self, frame: &[u8]) -> bool {
        let Some(eth) = EthernetPacket::new(frame) else {
            return false;
        };
        let (vlan, ethertype, payload) = match eth.get_ethertype() {
            EtherTypes::Vlan => match VlanPacket::new(eth.payload()) {
                Some(tag) => (
                    Some(tag.get_vlan_identifier()),
                    tag.get_ethertype(),
                    tag.payload().to_vec(),
                ),
                None => return false,
            },
            other => (None, other, eth.payload().to_vec()),
        };
        if self.vlan.is_some() && self.vlan != vlan {
            return false;
        }
        let layer3 = match ethertype {
            EtherTypes::Arp => {
                // `host` is the sender's or the target's protocol address.
                let Some(arp) = ArpPacket::new(&payload) else {
                    return false;
                };
                let addresses = [arp.get_sender_proto_addr(), arp.get_target_proto_addr()];
                return self.protocol.is_none_or(|p| p == Protocol::Arp)
                    && self.port.is_none()
                    && self
                        .host
                        .is_none_or(|h| addresses.iter().any(|a| IpAddr::V4(*a) == h));
            }
            EtherTypes::Ipv4 => Ipv4Packet::new(&payload).map(|ip| {
                let payload = ip.payload().to_vec();
                (
                    IpAddr::V4(ip.get_source()),
                    IpAddr::V4(ip.get_destination()),
                    ip.get_next_level_protocol(),
                    payload,
                )
            }),
            EtherTypes::Ipv6 => Ipv6Packet::new(&payload).map(|ip| {
                let payload = ip.payload().to_vec();
                (
                    IpAddr::V6(ip.get_source()),
                    IpAddr::V6(ip.get_destination()),
                    ip.get_next_header(),
                    payload,
                )
            }),
            _ => None,
        };
        let Some((source, destination, next, payload)) = layer3 else {
            return false;
        };
        if self.host.is_some_and(|h| h != source && h != destination) {
            return false;
        }
        let ports = ports(next, &payload);
        if self
            .port
            .is_some_and(|p| ports.is_none_or(|(s, d)| s != p && d != p))
        {
            return false;
        }
        match self.protocol {
            None => true,
            Some(Protocol::Arp) => false,
            Some(Protocol::Icmp) => next == IpNextHeaderProtocols::Icmp,
            Some(Protocol::Icmp6) => next == IpNextHeaderProtocols::Icmpv6,
            Some(Protocol::Tcp) => next == IpNextHeaderProtocols::Tcp,
            Some(Protocol::Udp) => next == IpNextHeaderProtocols::Udp,
            Some(Protocol::Esp) => next == IpNextHeaderProtocols::Esp,
            Some(Protocol::Vxlan) => {
                next == IpNextHeaderProtocols::Udp && ports.is_some_and(|(_, d)| d == 4789)
            }
        }
    }
}

/// The VNI of a VXLAN frame (UDP to port 4789, the I flag set) and the frame it carries.
fn vxlan_inner(frame: &[u8]) -> Option<(u32, &[u8])> {
    let mut at = 14;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        at += 4;
    }
    let udp = match ethertype {
        0x0800 => {
            let ip = Ipv4Packet::new(frame.get(at..)?)?;
            (ip.get_next_level_protocol() == IpNextHeaderProtocols::Udp)
                .then(|| at + usize::from(ip.get_header_length()) * 4)?
        }
        0x86dd => {
            let ip = Ipv6Packet::new(frame.get(at..)?)?;
            (ip.get_next_header() == IpNextHeaderProtocols::Udp).then_some(at + 40)?
        }
        _ => return None,
    };
    let destination = u16::from_be_bytes([*frame.get(udp + 2)?, *frame.get(udp + 3)?]);
    let vxlan = frame.get(udp + 8..udp + 16)?;
    if destination != 4789 || vxlan[0] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]);
    Some((vni, frame.get(udp + 16..)?))
}

fn ports(next: IpNextHeaderProtocol, payload: &[u8]) -> Option<(u16, u16)> {
    match next {
        IpNextHeaderProtocols::Tcp => {
            TcpPacket::new(payload).map(|t| (t.get_source(), t.get_destination()))
        }
        IpNextHeaderProtocols::Udp => {
            UdpPacket::new(payload).map(|u| (u.get_source(), u.get_destination()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_reject_with_what_was_expected() {
        let f = Filter::parse("udp port 53 host 10.0.0.1").unwrap();
        assert_eq!((f.protocol, f.port), (Some(Protocol::Udp), Some(53)));
        assert_eq!(f.host, Some("10.0.0.1".parse().unwrap()));
        assert!(
            Filter::parse("dns")
                .unwrap_err()
                .contains("expected arp, icmp")
        );
        assert_eq!(Filter::parse("vlan 10 icmp").unwrap().vlan, Some(10));
        assert!(
            Filter::parse("vlan 4095")
                .unwrap_err()
                .contains("expected a VLAN id")
        );
        assert!(
            Filter::parse("port x")
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(
            Filter::parse("tcp udp")
                .unwrap_err()
                .contains("one protocol")
        );
    }

    /// An Ethernet frame carrying IPv4 from 10.10.0.1 to 10.10.0.2, UDP 40000 > 4789, VXLAN
    /// VNI 4097, carrying `inner`.
    fn vxlan_frame(inner: &[u8]) -> Vec<u8> {
        let mut frame = vec![0xff; 6];
        frame.extend([2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 8 + 8 + inner.len()) as u16;
        let [hi, lo] = total.to_be_bytes();
        frame.extend([
            0x45, 0, hi, lo, 0, 0, 0, 0, 64, 17, 0, 0, 10, 10, 0, 1, 10, 10, 0, 2,
        ]);
        let [uhi, ulo] = (total - 20).to_be_bytes();
        frame.extend([0x9c, 0x40, 0x12, 0xb5, uhi, ulo, 0, 0]);
        frame.extend([0x08, 0, 0, 0, 0x00, 0x10, 0x01, 0]);
        frame.extend(inner);
        frame
    }

    /// An Ethernet frame carrying an ICMP echo request from 10.0.1.3 to 10.0.1.4.
    fn icmp_frame() -> Vec<u8> {
        let mut frame = vec![0x02, 0x42, 10, 0, 1, 4, 0x02, 0x42, 10, 0, 1, 3, 0x08, 0x00];
        frame.extend([
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 1, 3, 10, 0, 1, 4,
        ]);
        frame.extend([8, 0, 0, 0, 0, 0, 0, 0]);
        frame
    }

    #[test]
    fn vni_filters_read_the_vxlan_header_and_the_frame_it_carries() {
        let frame = vxlan_frame(&icmp_frame());
        let matches = |text: &str| Filter::parse(text).unwrap().matches(&frame);
        assert!(matches("vxlan"));
        assert!(matches("vxlan host 10.10.0.2 port 4789"));
        assert!(matches("vni 4097"));
        assert!(matches("vni 4097 icmp host 10.0.1.4"));
        assert!(!matches("vni 4098"));
        assert!(!matches("vni 4097 tcp"));
        assert!(
            !matches("vni 4097 host 10.10.0.2"),
            "host is the inner frame's"
        );
        assert!(!matches("icmp"), "without vni, the outer headers only");
        assert!(!Filter::parse("vni 4097").unwrap().matches(&icmp_frame()));
        // Cut short anywhere: no panic; no match before the VXLAN header ends (byte 50).
        let vni = Filter::parse("vni 4097 icmp").unwrap();
        for len in 0..frame.len() {
            let matched = vni.matches(&frame[..len]);
            assert!(!matched || len >= 50, "{len}");
        }
        assert!(
            Filter::parse("vni 16777216")
                .unwrap_err()
                .contains("expected a VXLAN id")
        );
        assert!(
            Filter::parse("vni 4097 vxlan")
                .unwrap_err()
                .contains("already means VXLAN")
        );
    }

    #[test]
    fn vlan_filters_read_the_tag_and_what_it_carries() {
        // 802.1Q tag VID 10, then an IPv4 ICMP header from 10.0.0.1 to 10.0.0.2.
        let mut frame = vec![0xff; 6];
        frame.extend([2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend([8, 0, 0, 0, 0, 0, 0, 0]);
        frame.extend(ip);
        let matches = |text: &str| Filter::parse(text).unwrap().matches(&frame);
        assert!(matches("vlan 10 icmp host 10.0.0.2"));
        assert!(matches("icmp"));
        assert!(!matches("vlan 20"));
        assert!(!matches("vlan 10 tcp"));
    }
}
