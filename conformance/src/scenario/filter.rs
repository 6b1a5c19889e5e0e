//! Packet filters for scenario captures: `icmp`, `udp port 53`, `tcp port 80 host 10.0.0.1`,
//! `vlan 10 icmp`.

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
    text: String,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Filter {
    /// Parses `[vlan N] [PROTOCOL] [port N] [host IP]`; the error says what was expected.
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
                                "{name:?}: expected arp, icmp, icmp6, tcp, udp, esp, vxlan, `port N`, `host IP` or `vlan N`"
                            ));
                        }
                    };
                    if filter.protocol.replace(protocol).is_some() {
                        return Err(format!("{text:?}: one protocol at most"));
                    }
                }
            }
        }
        Ok(filter)
    }

    /// True when the Ethernet frame matches (outer headers only: VXLAN's inner frame is not
    /// looked into).
    pub fn matches(&self, frame: &[u8]) -> bool {
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
