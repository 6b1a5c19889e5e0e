//! Packet filters for scenario captures: `icmp`, `udp port 53`, `tcp port 80 host 10.0.0.1`.

use std::fmt;
use std::net::IpAddr;

use pnet_packet::Packet as _;
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;

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

/// Every condition must hold: protocol, port (either side), address (either side).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// Protocol, if any.
    pub protocol: Option<Protocol>,
    /// Port on either side (TCP/UDP), if any.
    pub port: Option<u16>,
    /// Address on either side, if any.
    pub host: Option<IpAddr>,
    text: String,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Filter {
    /// Parses `[PROTOCOL] [port N] [host IP]`; the error says what was expected.
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
                                "{name:?}: expected arp, icmp, icmp6, tcp, udp, esp, vxlan, `port N` or `host IP`"
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
        let layer3 = match eth.get_ethertype() {
            EtherTypes::Arp => {
                return self.protocol == Some(Protocol::Arp)
                    && self.port.is_none()
                    && self.host.is_none();
            }
            EtherTypes::Ipv4 => Ipv4Packet::new(eth.payload()).map(|ip| {
                let payload = ip.payload().to_vec();
                (
                    IpAddr::V4(ip.get_source()),
                    IpAddr::V4(ip.get_destination()),
                    ip.get_next_level_protocol(),
                    payload,
                )
            }),
            EtherTypes::Ipv6 => Ipv6Packet::new(eth.payload()).map(|ip| {
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
}
