//! A published port as elements of the publish maps, in the kernel's byte layout. Pure.
//!
//! nftables stores a concatenated key as its components one after the other, each padded with
//! zeros to a 4-byte register boundary; integers are in network byte order:
//!
//! ```text
//! publish_ip4_*   ipv4_addr . inet_proto . inet_service   a a a a | p 0 0 0 | P P 0 0   (12)
//! publish_ip6_*   ipv6_addr . inet_proto . inet_service   16 × a  | p 0 0 0 | P P 0 0   (24)
//! publish_any*_*  inet_proto . inet_service               p 0 0 0 | P P 0 0             (8)
//! data *_addr     ipv4_addr / ipv6_addr                   4 / 16 bytes
//! data *_port     inet_service                            P P                           (2)
//! ```
//!
//! (`p`: IPPROTO_TCP 6 or IPPROTO_UDP 17; `P P`: the port, big-endian.) This is what
//! `nft --debug=netlink add element` prints, as little-endian 32-bit words.

use std::net::IpAddr;

use super::ruleset::{Data, PublishMap};
use super::setelem::ElementChange;
use super::{Binding, Protocol};

/// A component padded to the 4-byte register boundary.
fn push_padded(key: &mut Vec<u8>, bytes: &[u8]) {
    key.extend_from_slice(bytes);
    key.resize(key.len().next_multiple_of(4), 0);
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    }
}

fn proto_number(proto: Protocol) -> u8 {
    match proto {
        Protocol::Tcp => libc::IPPROTO_TCP as u8,
        Protocol::Udp => libc::IPPROTO_UDP as u8,
    }
}

/// The key of `binding` in its publish maps: `[host address .] protocol . host port`.
pub(crate) fn key(binding: &Binding) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    if let Some(host_ip) = specific_host_ip(binding) {
        push_padded(&mut key, &ip_bytes(host_ip));
    }
    push_padded(&mut key, &[proto_number(binding.proto)]);
    push_padded(&mut key, &binding.host_port.to_be_bytes());
    key
}

/// The host address a binding is restricted to, if any (`0.0.0.0` and `::` mean any).
pub(crate) fn specific_host_ip(binding: &Binding) -> Option<IpAddr> {
    binding.host_ip.filter(|ip| !ip.is_unspecified())
}

/// The two elements (container address, container port) that publish `binding`.
///
/// The binding must be valid (see [`Binding::check`]).
pub(crate) fn publish(binding: &Binding) -> [ElementChange; 2] {
    let by_address = specific_host_ip(binding).is_some();
    let ipv6 = binding.container_ip.is_ipv6();
    let key = key(binding);
    let map = |data| PublishMap::find(by_address, ipv6, data).name;
    [
        ElementChange {
            set: map(Data::Addr),
            key: key.clone(),
            data: Some(ip_bytes(binding.container_ip)),
        },
        ElementChange {
            set: map(Data::Port),
            key,
            data: Some(binding.container_port.to_be_bytes().to_vec()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(proto: Protocol, host_ip: Option<&str>, container_ip: &str) -> Binding {
        Binding {
            proto,
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port: 8080,
            container_ip: container_ip.parse().unwrap(),
            container_port: 80,
        }
    }

    #[test]
    fn ipv4_binding_to_one_address() {
        // nft --debug=netlink add element inet drydock publish_ip4 { 10.0.0.1 . tcp . 8080 : ... }
        // prints the key as `0100000a 00000006 0000901f`.
        let [addr, port] = publish(&binding(Protocol::Tcp, Some("10.0.0.1"), "172.18.0.2"));
        assert_eq!(addr.set, "publish_ip4_addr");
        assert_eq!(addr.key, [10, 0, 0, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(addr.data.as_deref(), Some(&[172, 18, 0, 2][..]));
        assert_eq!(port.set, "publish_ip4_port");
        assert_eq!(port.key, addr.key);
        assert_eq!(port.data.as_deref(), Some(&[0, 80][..]));
    }

    #[test]
    fn unspecified_host_address_means_any() {
        for host_ip in [None, Some("0.0.0.0")] {
            let [addr, port] = publish(&binding(Protocol::Udp, host_ip, "172.18.0.2"));
            assert_eq!(
                (addr.set, port.set),
                ("publish_any4_addr", "publish_any4_port")
            );
            assert_eq!(addr.key, [17, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        }
    }

    #[test]
    fn ipv6_bindings() {
        let [addr, _] = publish(&binding(Protocol::Tcp, Some("fd00::1"), "fd01::2"));
        assert_eq!(addr.set, "publish_ip6_addr");
        let mut expected = vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        expected.extend([6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(addr.key, expected);
        assert_eq!(addr.data.unwrap().len(), 16);
        let [addr, _] = publish(&binding(Protocol::Tcp, Some("::"), "fd01::2"));
        assert_eq!(addr.set, "publish_any6_addr");
        assert_eq!(addr.key.len(), 8);
    }
}
