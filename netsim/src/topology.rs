//! Lab topologies: the YAML file format, and its validation into a [`Topology`].
//!
//! ```yaml
//! name: three-hosts
//! segments:
//!   lan1: { subnet: 10.0.1.0/24 }
//!   lan2: { subnet: 10.0.2.0/24, subnet6: "fd00:2::/64" }
//! hosts:
//!   h1:
//!     interfaces: [{ segment: lan1, address: 10.0.1.10 }]
//!   r1:
//!     router: true
//!     interfaces:
//!       - { segment: lan1, address: 10.0.1.1 }
//!       - { segment: lan2, address: 10.0.2.1 }
//!   h3:
//!     interfaces: [{ segment: lan2 }]   # address allocated: lowest free in the subnet
//! ```
//!
//! A host's interfaces are `eth0`, `eth1`... in order. A non-router host gets a default route via
//! the first router on one of its segments; `routes` add or override routes. Every error names
//! `file:line:column` and what was expected. [`Topology::builder`] makes the common shapes in
//! code, through the same validation.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use crate::located::{Entries, LocatedError};

mod build;
pub use build::Builder;

/// A validated lab topology, ready to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Lab name (the file's `name`, or its file stem).
    pub name: String,
    /// L2 segments, in file order.
    pub segments: Vec<Segment>,
    /// Hosts, in file order.
    pub hosts: Vec<Host>,
}

/// An L2 segment: one switch that host interfaces plug into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Segment name; also the name of its bridge in the lab's fabric namespace.
    pub name: String,
    /// IPv4 subnet of the segment's underlay.
    pub subnet: Ipv4Network,
    /// Optional IPv6 subnet.
    pub subnet6: Option<Ipv6Network>,
    /// MTU of every interface on the segment.
    pub mtu: u32,
}

/// A simulated host: one network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Host name, unique in the lab.
    pub name: String,
    /// Forwards packets between its interfaces.
    pub router: bool,
    /// Interfaces `eth0..n`, in order.
    pub interfaces: Vec<Interface>,
    /// Routes, including the default route chosen automatically.
    pub routes: Vec<Route>,
}

/// A host interface plugged into a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name inside the host (`eth0`, `eth1`...).
    pub name: String,
    /// Index of its segment in [`Topology::segments`].
    pub segment: usize,
    /// IPv4 address with the segment's prefix length.
    pub address: Ipv4Network,
    /// IPv6 address, when the segment has an IPv6 subnet.
    pub address6: Option<Ipv6Network>,
    /// Fixed MAC address, derived from the IPv4 address (`02:d0:` + its four bytes).
    pub mac: Mac,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination (`0.0.0.0/0` or `::/0` for default routes).
    pub to: IpNetwork,
    /// Next hop, on a directly connected subnet.
    pub via: IpAddr,
}

impl Topology {
    /// Parses and validates a topology file's text; `path` is used in error messages, and its
    /// file stem names the lab when the file has no `name`.
    pub fn parse(text: &str, path: &str) -> Result<Self, TopologyError> {
        let file: File =
            serde_saphyr::from_str(text).map_err(|e| LocatedError::from_yaml(&e, text, path))?;
        let error = |at: &Location, message: String| LocatedError::at(at, message, text, path);
        let name = match &file.name {
            Some(name) => check_name(&name.value, "lab", MAX_LAB_NAME)
                .map_err(|m| error(&name.referenced, m))?,
            None => {
                let stem = std::path::Path::new(path).file_stem().unwrap_or_default();
                let stem = stem.to_string_lossy();
                check_name(&stem, "lab", MAX_LAB_NAME).map_err(|m| {
                    let message = format!(
                        "the file name gives the lab its name, but {m}; add a `name:` field"
                    );
                    LocatedError::new(1, 1, message, text, path)
                })?
            }
        };
        Validator { error: &error }.topology(name, file)
    }

    /// A builder of a topology in code (see [`Builder`]): the same validation as a file's.
    pub fn builder(name: &str) -> Builder {
        Builder::new(name)
    }

    /// Reads and parses a topology file.
    pub fn load(path: &std::path::Path) -> Result<Self, TopologyError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| LocatedError::unreadable(&shown, &e))?;
        Self::parse(&text, &shown)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The error message for a host this lab does not have.
    pub fn unknown_host(&self, host: &str) -> String {
        let known: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        format!(
            "lab {:?} has no host {host:?}; its hosts are {known:?}",
            self.name
        )
    }
}

/// Longest lab name: it becomes part of socket and namespace mount names.
const MAX_LAB_NAME: usize = 40;

/// Checks a lab name given outside a topology file (e.g. `--name`).
pub fn check_lab_name(name: &str) -> Result<(), String> {
    check_name(name, "lab", MAX_LAB_NAME).map(drop)
}

/// An error in a topology file, located at `path:line:column`.
pub type TopologyError = LocatedError;

// ---- The file as written (serde), before validation ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<Spanned<String>>,
    #[serde(default)]
    segments: Entries<SegmentFile>,
    hosts: Spanned<Entries<HostFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentFile {
    subnet: Spanned<String>,
    subnet6: Option<Spanned<String>>,
    mtu: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    #[serde(default)]
    router: bool,
    interfaces: Spanned<Vec<Spanned<InterfaceFile>>>,
    #[serde(default)]
    routes: Vec<RouteFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceFile {
    segment: Spanned<String>,
    address: Option<Spanned<String>>,
    address6: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    to: Spanned<String>,
    via: Spanned<String>,
}

// ---- Validation ----

/// Validates a [`File`] into a [`Topology`]; `error` makes an `E` of a message and the location
/// it concerns (a file's error points at the line; a builder's has none).
struct Validator<'a, E> {
    error: &'a dyn Fn(&Location, String) -> E,
}

/// Per-segment address bookkeeping while interfaces are validated.
#[derive(Default)]
struct Taken {
    v4: BTreeSet<Ipv4Addr>,
    v6: BTreeSet<Ipv6Addr>,
}

impl<E> Validator<'_, E> {
    fn topology(&self, name: String, file: File) -> Result<Topology, E> {
        let segments = self.segments(&file.segments)?;
        let file_hosts = &file.hosts.value.0;
        if file_hosts.is_empty() {
            return Err(self.err(&file.hosts, "a lab needs at least one host".into()));
        }
        // Explicit addresses first, so that allocation never hands out one written later.
        let mut taken: Vec<Taken> = segments.iter().map(|_| Taken::default()).collect();
        let mut hosts = Vec::new();
        for (key, host) in file_hosts {
            hosts.push(self.host(key, host, &segments, &mut taken)?);
        }
        for (host, (_, file_host)) in hosts.iter_mut().zip(file_hosts) {
            self.allocate(host, file_host, &segments, &mut taken)?;
        }
        for (host, (_, file_host)) in hosts.iter_mut().zip(file_hosts) {
            host.routes = self.routes(host, &file_host.routes, &segments)?;
        }
        let defaults: Vec<Vec<Route>> = hosts.iter().map(|h| default_routes(h, &hosts)).collect();
        for (host, defaults) in hosts.iter_mut().zip(defaults) {
            for route in defaults {
                if !host.routes.iter().any(|r| r.to == route.to) {
                    host.routes.push(route);
                }
            }
        }
        Ok(Topology {
            name,
            segments,
            hosts,
        })
    }

    /// Validates the segments, in order: names, subnets that do not overlap, MTUs.
    fn segments(&self, file: &Entries<SegmentFile>) -> Result<Vec<Segment>, E> {
        let mut segments: Vec<Segment> = Vec::new();
        for (key, seg) in &file.0 {
            let name = check_name(&key.value, "segment", 15).map_err(|m| self.err(key, m))?;
            if segments.iter().any(|s| s.name == name) {
                // (A file cannot say this: its parser refuses duplicate keys.)
                return Err(self.err(key, format!("segment {name:?} is defined twice")));
            }
            if is_reserved_in_fabric(&name) {
                return Err(self.err(key, format!("segment name {name:?} is reserved: it names a link of the lab's fabric (lo, or a port like p0-eth0)")));
            }
            let subnet = parse_net4(&seg.subnet.value).map_err(|m| self.err(&seg.subnet, m))?;
            if subnet.prefix() > 30 {
                return Err(self.err(
                    &seg.subnet,
                    "a segment subnet needs room for hosts: use a prefix of /30 or shorter".into(),
                ));
            }
            let subnet6 = match &seg.subnet6 {
                Some(s) => Some(parse_net6(&s.value).map_err(|m| self.err(s, m))?),
                None => None,
            };
            let mtu = self.mtu(seg.mtu.as_ref(), subnet6.is_some())?;
            if let Some(other) = segments.iter().find(|o| o.subnet.overlaps(subnet)) {
                return Err(self.err(
                    &seg.subnet,
                    format!(
                        "subnet {subnet} overlaps segment {:?} ({})",
                        other.name, other.subnet
                    ),
                ));
            }
            segments.push(Segment {
                name,
                subnet,
                subnet6,
                mtu,
            });
        }
        Ok(segments)
    }

    /// A segment's MTU: 1500 unless given; at least 1280 where the segment carries IPv6.
    fn mtu(&self, mtu: Option<&Spanned<u32>>, ipv6: bool) -> Result<u32, E> {
        let Some(m) = mtu else {
            return Ok(1500);
        };
        if !(68..=65535).contains(&m.value) {
            return Err(self.err(
                m,
                format!("MTU {} is out of range: expected 68 to 65535", m.value),
            ));
        }
        if ipv6 && m.value < 1280 {
            return Err(self.err(
                m,
                format!(
                    "MTU {} is too small for IPv6 (subnet6): expected 1280 or more",
                    m.value
                ),
            ));
        }
        Ok(m.value)
    }

    /// Validates a host and its explicit addresses (the others are allocated later).
    fn host(
        &self,
        key: &Spanned<String>,
        host: &HostFile,
        segments: &[Segment],
        taken: &mut [Taken],
    ) -> Result<Host, E> {
        let host_name = check_name(&key.value, "host", 40).map_err(|m| self.err(key, m))?;
        if host.interfaces.value.is_empty() {
            return Err(self.err(
                &host.interfaces,
                format!("host {host_name:?} needs at least one interface"),
            ));
        }
        let mut interfaces = Vec::new();
        for (index, iface) in host.interfaces.value.iter().enumerate() {
            interfaces.push(self.explicit_interface(index, &iface.value, segments, taken)?);
        }
        Ok(Host {
            name: host_name,
            router: host.router,
            interfaces,
            routes: Vec::new(),
        })
    }

    /// Gives the host's interfaces without an explicit address the lowest free one of their
    /// segment (and of its IPv6 subnet).
    fn allocate(
        &self,
        host: &mut Host,
        file: &HostFile,
        segments: &[Segment],
        taken: &mut [Taken],
    ) -> Result<(), E> {
        for (iface, file_iface) in host.interfaces.iter_mut().zip(&file.interfaces.value) {
            let seg = &segments[iface.segment];
            let used = &mut taken[iface.segment];
            let at = &file_iface.value.segment;
            if iface.address.ip().is_unspecified() {
                let ip = free_v4(seg.subnet, &used.v4).ok_or_else(|| {
                    self.err(
                        at,
                        format!(
                            "segment {:?} ({}) has no free address left for {}/{}",
                            seg.name, seg.subnet, host.name, iface.name
                        ),
                    )
                })?;
                used.v4.insert(ip);
                iface.address =
                    Ipv4Network::new(ip, seg.subnet.prefix()).expect("prefix of a valid subnet");
                iface.mac = mac_for(ip);
            }
            if let (Some(subnet6), Some(addr6)) = (seg.subnet6, &mut iface.address6)
                && addr6.ip().is_unspecified()
            {
                let ip = free_v6(subnet6, &used.v6).ok_or_else(|| {
                    self.err(
                        at,
                        format!(
                            "segment {:?} ({subnet6}) has no free IPv6 address left for {}/{}",
                            seg.name, host.name, iface.name
                        ),
                    )
                })?;
                used.v6.insert(ip);
                *addr6 = Ipv6Network::new(ip, subnet6.prefix()).expect("prefix of a valid subnet");
            }
        }
        Ok(())
    }

    /// Validates one interface; addresses left out are set to unspecified for allocation later.
    fn explicit_interface(
        &self,
        index: usize,
        file: &InterfaceFile,
        segments: &[Segment],
        taken: &mut [Taken],
    ) -> Result<Interface, E> {
        let by_name = |s: &Segment| s.name == file.segment.value;
        let segment = segments.iter().position(by_name).ok_or_else(|| {
            let known: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
            self.err(
                &file.segment,
                format!(
                    "unknown segment {:?}: expected one of {known:?}",
                    file.segment.value
                ),
            )
        })?;
        let seg = &segments[segment];
        let address = match &file.address {
            Some(a) => {
                let ip = parse_host_in(&a.value, seg.subnet.prefix(), |ip| {
                    ip.parse::<Ipv4Addr>()
                        .map_err(|_| format!("{ip:?} is not an IPv4 address"))
                })
                .map_err(|m| self.err(a, m))?;
                if !seg.subnet.contains(ip)
                    || ip == seg.subnet.network()
                    || ip == seg.subnet.broadcast()
                {
                    return Err(self.err(
                        a,
                        format!(
                            "{ip} is not a host address of segment {:?} ({})",
                            seg.name, seg.subnet
                        ),
                    ));
                }
                if !taken[segment].v4.insert(ip) {
                    return Err(
                        self.err(a, format!("{ip} is already used on segment {:?}", seg.name))
                    );
                }
                ip
            }
            None => Ipv4Addr::UNSPECIFIED,
        };
        let address6 = match (&file.address6, seg.subnet6) {
            (Some(a), None) => {
                return Err(self.err(a, format!("segment {:?} has no subnet6, so its interfaces cannot have an IPv6 address", seg.name)));
            }
            (Some(a), Some(subnet6)) => {
                let ip = parse_host_in(&a.value, subnet6.prefix(), |ip| {
                    ip.parse::<Ipv6Addr>()
                        .map_err(|_| format!("{ip:?} is not an IPv6 address"))
                })
                .map_err(|m| self.err(a, m))?;
                if !subnet6.contains(ip) || ip == subnet6.network() {
                    return Err(self.err(
                        a,
                        format!(
                            "{ip} is not a host address of segment {:?} ({subnet6})",
                            seg.name
                        ),
                    ));
                }
                if !taken[segment].v6.insert(ip) {
                    return Err(
                        self.err(a, format!("{ip} is already used on segment {:?}", seg.name))
                    );
                }
                Some(Ipv6Network::new(ip, subnet6.prefix()).expect("prefix of a valid subnet"))
            }
            (None, Some(subnet6)) => Some(
                Ipv6Network::new(Ipv6Addr::UNSPECIFIED, subnet6.prefix()).expect("valid prefix"),
            ),
            (None, None) => None,
        };
        Ok(Interface {
            name: format!("eth{index}"),
            segment,
            address: Ipv4Network::new(address, seg.subnet.prefix())
                .expect("prefix of a valid subnet"),
            address6,
            mac: mac_for(address),
        })
    }

    fn routes(
        &self,
        host: &Host,
        routes: &[RouteFile],
        segments: &[Segment],
    ) -> Result<Vec<Route>, E> {
        let mut out: Vec<Route> = Vec::new();
        for route in routes {
            let via: IpAddr = route.via.value.parse().map_err(|_| {
                self.err(
                    &route.via,
                    format!("{:?} is not an IP address", route.via.value),
                )
            })?;
            let to: IpNetwork = match route.to.value.as_str() {
                "default" if via.is_ipv4() => IpNetwork::V4(Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0")),
                "default" => IpNetwork::V6(Ipv6Network::new(Ipv6Addr::UNSPECIFIED, 0).expect("/0")),
                text => text.parse().map_err(|_| {
                    self.err(&route.to, format!("{text:?} is not a destination: expected \"default\" or a subnet like 10.0.3.0/24"))
                })?,
            };
            if to.ip() != to.network() {
                return Err(self.err(
                    &route.to,
                    format!(
                        "{to} has host bits set: did you mean {}/{}?",
                        to.network(),
                        to.prefix()
                    ),
                ));
            }
            if to.is_ipv4() != via.is_ipv4() {
                return Err(self.err(
                    &route.via,
                    format!("next hop {via} and destination {to} are of different IP versions"),
                ));
            }
            let connected = host.interfaces.iter().any(|i| match via {
                IpAddr::V4(v) => segments[i.segment].subnet.contains(v),
                IpAddr::V6(v) => segments[i.segment].subnet6.is_some_and(|s| s.contains(v)),
            });
            let unusable = host.interfaces.iter().any(|i| match via {
                IpAddr::V4(v) => {
                    v == i.address.ip()
                        || v == segments[i.segment].subnet.network()
                        || v == segments[i.segment].subnet.broadcast()
                }
                IpAddr::V6(v) => {
                    i.address6.is_some_and(|a| a.ip() == v)
                        || segments[i.segment]
                            .subnet6
                            .is_some_and(|s| s.network() == v)
                }
            });
            if unusable {
                return Err(self.err(&route.via, format!("next hop {via} is host {:?}'s own address or its subnet's network or broadcast address", host.name)));
            }
            if !connected {
                return Err(self.err(
                    &route.via,
                    format!(
                        "next hop {via} is not on a segment host {:?} is connected to",
                        host.name
                    ),
                ));
            }
            if out.iter().any(|r| r.to == to) {
                return Err(self.err(
                    &route.to,
                    format!(
                        "a route to {to} is already defined for host {:?}",
                        host.name
                    ),
                ));
            }
            out.push(Route { to, via });
        }
        Ok(out)
    }

    fn err<T>(&self, at: &Spanned<T>, message: String) -> E {
        (self.error)(&at.referenced, message)
    }
}

/// Default routes of a non-router host: via the first router on one of its segments.
fn default_routes(host: &Host, hosts: &[Host]) -> Vec<Route> {
    if host.router {
        return Vec::new();
    }
    let router_on = |segment: usize| {
        hosts
            .iter()
            .filter(|h| h.router && h.name != host.name)
            .flat_map(|h| &h.interfaces)
            .find(|i| i.segment == segment)
    };
    let mut routes = Vec::new();
    if let Some(hop) = host.interfaces.iter().find_map(|i| router_on(i.segment)) {
        routes.push(Route {
            to: IpNetwork::V4(Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).expect("/0")),
            via: IpAddr::V4(hop.address.ip()),
        });
    }
    let v6_hop = host
        .interfaces
        .iter()
        .filter(|i| i.address6.is_some())
        .find_map(|i| router_on(i.segment).and_then(|r| r.address6));
    if let Some(hop) = v6_hop {
        routes.push(Route {
            to: IpNetwork::V6(Ipv6Network::new(Ipv6Addr::UNSPECIFIED, 0).expect("/0")),
            via: IpAddr::V6(hop.ip()),
        });
    }
    routes
}

/// Names the fabric namespace already uses for other links: `lo`, and bridge ports `pN-...`.
fn is_reserved_in_fabric(name: &str) -> bool {
    let port = name
        .strip_prefix('p')
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(index, _)| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()));
    name == "lo" || port
}

/// Checks a name used for labs, hosts and segments: letters, digits, `-` and `_`, starting
/// with a letter or digit; `max` characters at most (segments become interface names).
fn check_name(value: &str, what: &str, max: usize) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= max
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!(
            "invalid {what} name {value:?}: expected 1 to {max} letters, digits, '-' or '_', starting with a letter or digit"
        ))
    }
}

fn parse_net4(text: &str) -> Result<Ipv4Network, String> {
    let net: Ipv4Network = text
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv4 subnet: expected one like 10.0.1.0/24"))?;
    if net.ip() != net.network() {
        return Err(format!(
            "{text} has host bits set: did you mean {}/{}?",
            net.network(),
            net.prefix()
        ));
    }
    Ok(net)
}

fn parse_net6(text: &str) -> Result<Ipv6Network, String> {
    let net: Ipv6Network = text
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv6 subnet: expected one like fd00:1::/64"))?;
    if net.ip() != net.network() {
        return Err(format!(
            "{text} has host bits set: did you mean {}/{}?",
            net.network(),
            net.prefix()
        ));
    }
    if net.prefix() > 126 {
        return Err(format!(
            "{text} leaves no room for hosts: use a prefix of /126 or shorter"
        ));
    }
    Ok(net)
}

/// Parses `ip` or `ip/prefix`; a prefix must equal the segment's.
fn parse_host_in<T>(
    text: &str,
    prefix: u8,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, String> {
    match text.split_once('/') {
        None => parse(text),
        Some((ip, given)) if given == prefix.to_string() => parse(ip),
        Some((_, given)) => Err(format!(
            "prefix /{given} differs from the segment's /{prefix}: write the address alone"
        )),
    }
}

fn free_v4(subnet: Ipv4Network, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(subnet.network()) + 1;
    let last = u32::from(subnet.broadcast()) - 1;
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| !used.contains(ip))
}

fn free_v6(subnet: Ipv6Network, used: &BTreeSet<Ipv6Addr>) -> Option<Ipv6Addr> {
    let first = u128::from(subnet.network()) + 1;
    let last = u128::from(subnet.broadcast());
    (first..=last)
        .map(Ipv6Addr::from)
        .find(|ip| !used.contains(ip))
}

/// `02:d0:` + the IPv4 address: locally administered, stable, and readable in captures.
fn mac_for(ip: Ipv4Addr) -> Mac {
    let [a, b, c, d] = ip.octets();
    Mac([0x02, 0xd0, a, b, c, d])
}

/// An Ethernet MAC address, written `02:d0:0a:00:01:0a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl From<Mac> for String {
    fn from(mac: Mac) -> Self {
        mac.to_string()
    }
}

impl TryFrom<String> for Mac {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{text:?} is not a MAC address"))?;
        bytes
            .try_into()
            .map(Mac)
            .map_err(|_| format!("{text:?} is not a MAC address"))
    }
}

#[cfg(test)]
mod tests;
