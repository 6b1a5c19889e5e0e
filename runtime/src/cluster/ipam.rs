//! Swarm-scope addresses, as swarmkit's allocator hands them out (libnetwork's IPAM with serial
//! allocation): subnets of 10.0.0.0/8 in /24s, in turn; in a subnet, the address after the last
//! one handed out, wrapping around, never the network or broadcast address. Pure: the store
//! keeps what is taken.

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::{IpNetwork, Ipv4Network};

/// The pool swarm networks take their subnets from, and the size of each.
pub const DEFAULT_POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 0, 0, 0), 8);
/// The prefix length of a subnet taken from [`DEFAULT_POOL`].
pub const SUBNET_SIZE: u8 = 24;

/// The `index`th /24 of the default pool: 10.0.0.0/24, 10.0.1.0/24...
pub fn default_subnet(index: u32) -> Option<IpNetwork> {
    let (base, prefix) = DEFAULT_POOL;
    let count = 1u32 << (SUBNET_SIZE - prefix);
    (index < count).then(|| {
        let address = u32::from(base) + (index << (32 - SUBNET_SIZE));
        IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(address), SUBNET_SIZE).expect("a /24"))
    })
}

/// The addresses of `subnet` an endpoint may get, in the order of `range` (or the whole
/// subnet): every host address (IPv4: neither the network nor the broadcast address).
pub fn host_addresses(subnet: IpNetwork, range: Option<IpNetwork>) -> Vec<IpAddr> {
    let span = range.unwrap_or(subnet);
    span.iter()
        .filter(|ip| subnet.contains(*ip))
        .filter(|ip| match subnet {
            IpNetwork::V4(v4) => {
                let ip = match ip {
                    IpAddr::V4(ip) => *ip,
                    IpAddr::V6(_) => return false,
                };
                ip != v4.network() && ip != v4.broadcast()
            }
            IpNetwork::V6(v6) => *ip != IpAddr::V6(v6.network()),
        })
        .collect()
}

/// The first host address of `subnet`: a network's gateway unless given.
pub fn first_host(subnet: IpNetwork) -> Option<IpAddr> {
    host_addresses(subnet, None).into_iter().next()
}

/// The address serial allocation hands out next: the first free one after `last` (the last one
/// handed out; from the start when none), wrapping around; `None` when all are taken.
pub fn next_address(
    candidates: &[IpAddr],
    taken: impl Fn(&IpAddr) -> bool,
    last: Option<IpAddr>,
) -> Option<IpAddr> {
    let start = last
        .and_then(|last| candidates.iter().position(|ip| *ip == last))
        .map_or(0, |i| i + 1);
    let (after, before) = candidates.split_at(start.min(candidates.len()));
    before.iter().chain(after).copied().find(|ip| !taken(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn subnets_are_the_default_pools_slash_24s_in_turn() {
        assert_eq!(default_subnet(0), Some("10.0.0.0/24".parse().unwrap()));
        assert_eq!(default_subnet(1), Some("10.0.1.0/24".parse().unwrap()));
        assert_eq!(default_subnet(256), Some("10.1.0.0/24".parse().unwrap()));
        assert_eq!(
            default_subnet(65535),
            Some("10.255.255.0/24".parse().unwrap())
        );
        assert_eq!(default_subnet(65536), None);
    }

    #[test]
    fn host_addresses_leave_out_the_network_and_broadcast() {
        let subnet: IpNetwork = "10.0.1.0/29".parse().unwrap();
        let hosts = host_addresses(subnet, None);
        assert_eq!(hosts.first(), Some(&ip("10.0.1.1")));
        assert_eq!(hosts.last(), Some(&ip("10.0.1.6")));
        assert_eq!(hosts.len(), 6);
        let ranged = host_addresses(subnet, Some("10.0.1.4/30".parse().unwrap()));
        assert_eq!(ranged, [ip("10.0.1.4"), ip("10.0.1.5"), ip("10.0.1.6")]);
        assert_eq!(first_host(subnet), Some(ip("10.0.1.1")));
    }

    #[test]
    fn serial_allocation_goes_on_after_the_last_and_wraps() {
        let subnet: IpNetwork = "10.0.1.0/29".parse().unwrap();
        let hosts = host_addresses(subnet, None);
        let taken = [ip("10.0.1.1"), ip("10.0.1.2")];
        let next = |last| next_address(&hosts, |a| taken.contains(a), last);
        assert_eq!(next(None), Some(ip("10.0.1.3")));
        // A freed address is not handed out again before the others.
        assert_eq!(next(Some(ip("10.0.1.4"))), Some(ip("10.0.1.5")));
        assert_eq!(next(Some(ip("10.0.1.6"))), Some(ip("10.0.1.3")));
        let all = next_address(&hosts, |_| true, None);
        assert_eq!(all, None);
    }
}
