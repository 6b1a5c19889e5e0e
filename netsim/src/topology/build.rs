//! Topologies built in code, for tests, benchmarks and labs made from other files: segments,
//! then the hosts plugged into each; routers (hosts that forward, plugged into several
//! segments) and static routes. They go through the validation a file does (names, addresses
//! allocated lowest-free, MACs, default routes via a router, routes); errors say "topology
//! built in code".
//!
//! ```
//! # use drydock_netsim::Topology;
//! let topology = Topology::builder("two")
//!     .segment("lan", "10.10.0.0/24".parse().unwrap())
//!     .host_at("h1", "10.10.0.10".parse().unwrap())
//!     .host("h2") // 10.10.0.1: the lowest free address
//!     .build()
//!     .unwrap();
//! assert_eq!(topology.hosts[1].interfaces[0].address.to_string(), "10.10.0.1/24");
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use serde_saphyr::{Location, Spanned};

use super::{
    Entries, File, HostFile, InterfaceFile, MAX_LAB_NAME, RouteFile, SegmentFile, Topology,
    Validator, check_name,
};

/// A topology under construction; see [`Topology::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    name: String,
    segments: Vec<SegmentSpec>,
    plugs: Vec<Plug>,
    /// Hosts that forward between their interfaces.
    routers: Vec<String>,
    /// Static routes: host, destination (`default` or a subnet), next hop.
    routes: Vec<(String, String, String)>,
    /// The first call made out of order (a host before any segment), reported by `build`.
    misuse: Option<String>,
}

#[derive(Debug, Clone)]
struct SegmentSpec {
    name: String,
    subnet: Ipv4Network,
    subnet6: Option<Ipv6Network>,
}

/// A host interface on the segment that was current when it was added.
#[derive(Debug, Clone)]
struct Plug {
    host: String,
    segment: String,
    address: Option<Ipv4Addr>,
    address6: Option<Ipv6Addr>,
}

impl Builder {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            segments: Vec::new(),
            plugs: Vec::new(),
            routers: Vec::new(),
            routes: Vec::new(),
            misuse: None,
        }
    }

    /// Adds segment `name` with IPv4 `subnet` (MTU 1500); the hosts added next plug into it.
    pub fn segment(mut self, name: &str, subnet: Ipv4Network) -> Self {
        self.segments.push(SegmentSpec {
            name: name.to_string(),
            subnet,
            subnet6: None,
        });
        self
    }

    /// Gives the current segment an IPv6 subnet too: its hosts get IPv6 addresses.
    pub fn subnet6(mut self, subnet6: Ipv6Network) -> Self {
        match self.segments.last_mut() {
            Some(segment) => segment.subnet6 = Some(subnet6),
            None => self.misused(format!("subnet6 {subnet6} comes before any segment")),
        }
        self
    }

    /// Plugs host `name` into the current segment with the lowest free address(es). A host
    /// added under several segments gets `eth0`, `eth1`... in that order.
    pub fn host(self, name: &str) -> Self {
        self.plug(name, None, None)
    }

    /// Plugs host `name` into the current segment at `address` (IPv6, if any: lowest free).
    pub fn host_at(self, name: &str, address: Ipv4Addr) -> Self {
        self.plug(name, Some(address), None)
    }

    /// Plugs host `name` into the current segment at `address` and `address6`.
    pub fn host_at6(self, name: &str, address: Ipv4Addr, address6: Ipv6Addr) -> Self {
        self.plug(name, Some(address), Some(address6))
    }

    /// Plugs router `name` into the current segment at `address`: a host that forwards
    /// between its interfaces (add it under each segment it joins). Every other host of a
    /// segment it is on gets its default route through it, unless a route says otherwise.
    pub fn router_at(mut self, name: &str, address: Ipv4Addr) -> Self {
        if !self.routers.iter().any(|r| r == name) {
            self.routers.push(name.to_string());
        }
        self.plug(name, Some(address), None)
    }

    /// A static route on host `host` (added before or after it is plugged): to `to`
    /// (`0.0.0.0/0` for the default route) via `via`, a neighbour on one of its segments.
    pub fn route(mut self, host: &str, to: IpNetwork, via: IpAddr) -> Self {
        self.routes
            .push((host.to_string(), to.to_string(), via.to_string()));
        self
    }

    /// Validates the topology as a file's would be.
    pub fn build(self) -> Result<Topology, String> {
        let error = |_: &Location, message: String| format!("topology built in code: {message}");
        if let Some(message) = self.misuse {
            return Err(error(&Location::UNKNOWN, message));
        }
        let plugged = |host: &str| self.plugs.iter().any(|p| p.host == host);
        if let Some((host, _, _)) = self.routes.iter().find(|(host, _, _)| !plugged(host)) {
            let message = format!("a route is given for host {host:?}, which is on no segment");
            return Err(error(&Location::UNKNOWN, message));
        }
        let name = check_name(&self.name, "lab", MAX_LAB_NAME)
            .map_err(|m| error(&Location::UNKNOWN, m))?;
        Validator { error: &error }.topology(name, self.file())
    }

    fn plug(mut self, host: &str, address: Option<Ipv4Addr>, address6: Option<Ipv6Addr>) -> Self {
        match self.segments.last() {
            Some(segment) => self.plugs.push(Plug {
                host: host.to_string(),
                segment: segment.name.clone(),
                address,
                address6,
            }),
            None => self.misused(format!("host {host:?} comes before any segment")),
        }
        self
    }

    fn misused(&mut self, message: String) {
        self.misuse.get_or_insert(message);
    }

    /// The file this topology would have been written as.
    fn file(&self) -> File {
        let segments = self.segments.iter().map(|s| {
            let segment = SegmentFile {
                subnet: unlocated(s.subnet.to_string()),
                subnet6: s.subnet6.map(|n| unlocated(n.to_string())),
                mtu: None,
            };
            (unlocated(s.name.clone()), segment)
        });
        let mut hosts: Vec<(Spanned<String>, HostFile)> = Vec::new();
        for plug in &self.plugs {
            let interface = unlocated(InterfaceFile {
                segment: unlocated(plug.segment.clone()),
                address: plug.address.map(|a| unlocated(a.to_string())),
                address6: plug.address6.map(|a| unlocated(a.to_string())),
            });
            match hosts.iter_mut().find(|(name, _)| name.value == plug.host) {
                Some((_, host)) => host.interfaces.value.push(interface),
                None => hosts.push((
                    unlocated(plug.host.clone()),
                    HostFile {
                        router: self.routers.contains(&plug.host),
                        interfaces: unlocated(vec![interface]),
                        routes: (self.routes.iter())
                            .filter(|(host, _, _)| *host == plug.host)
                            .map(|(_, to, via)| RouteFile {
                                to: unlocated(to.clone()),
                                via: unlocated(via.clone()),
                            })
                            .collect(),
                    },
                )),
            }
        }
        File {
            name: Some(unlocated(self.name.clone())),
            segments: Entries(segments.collect()),
            hosts: unlocated(Entries(hosts)),
        }
    }
}

/// A value with no place in any file.
fn unlocated<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

#[cfg(test)]
mod tests;
