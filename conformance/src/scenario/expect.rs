//! Expectations: what must hold once a scenario's steps have run, one line each.
//!
//! ```text
//! A reaches B:PORT[/tcp|/udp]                     A cannot-reach B:PORT[/proto] [refused|timeout|unreachable]
//! A pings B [size N] [df]                        A cannot-ping B [size N] [df]
//! A resolves NAME [to X[,X...]] [ttl N] [as A|AAAA|PTR|MX] [over udp|tcp]   (clauses in any order)
//! A does-not-resolve NAME [nxdomain|nodata|servfail|timeout|refused] [as TYPE] [over udp|tcp]
//! A gets http://B:PORT[/PATH] [STATUS]
//! network NET [on HOST] has PATH = VALUE          (also: NET subnet|gateway|driver|scope|internal|ipv6 is VALUE)
//! networks [on HOST] [filtered KEY=VALUE,...] are NAME,...|nothing   (`docker network ls -f`)
//! container C has PATH = VALUE                    (also: C ip|ip6|mac|gateway on NET is VALUE)
//! ... has PATH ~ REGEX                            (the whole value matches a regular expression)
//! ... lacks PATH                                  (PATH's parent exists, PATH itself does not)
//! container C file PATH contains|lacks TEXT       container C interfaces are|include NAME[,NAME...]
//! container C mtu of IFACE is N                  container C routes|routes6 include|lack ROUTE
//! ```
//! Any of them may end with `within DURATION` (`10s`, `500ms`): what must hold once a
//! cluster has converged is observed again and again until it holds or the time has passed
//! (the last observation is reported).
//!
//! `size N` makes a ping carry N bytes of echo data (ping's `-s N`: an IPv4 packet of N + 28
//! bytes); `df` forbids fragmenting it (ping's `-M do`): a packet too big for the path is
//! refused by the sender's interface ("Message too long") or by a router ("fragmentation
//! needed"), and the ping fails.
//!
//! `ROUTE` is a route of the container's main IPv4 (`routes`) or IPv6 (`routes6`) table as
//! `ip route` starts its line, quoted: `'default dev eth0'`, `'default via 10.10.0.1'`,
//! `'10.10.0.0/24 dev eth0'`, `'unreachable default'`.
//! `A` is a container or a lab host; `B` a container (`web`, or `web@NET` to pick its address on
//! network NET), a lab host (its underlay address), or an IP address. `PORT` is a number, or
//! `C->N`: the host port Docker published for container C's port N (`ext reaches h1:web->80`). `PATH` is a dotted path into
//! the engine's inspect JSON (Docker's shape), e.g. `IPAM.Config.0.Subnet`. A `~` regex is
//! anchored: it must match the whole value (`www` matches `www` only; write `.*www.*` for "contains").
//!
//! `does-not-resolve` needs an answer from the DNS server by default: NXDOMAIN, or NOERROR without
//! records. `nxdomain` asks for NXDOMAIN exactly, `nodata` for NOERROR without records,
//! `servfail` for SERVFAIL, `timeout` for no answer at all, `refused` for nothing listening at
//! the server's address (an ICMP port unreachable).
//!
//! A DNS check asks for A records over UDP unless it says `as AAAA|PTR|MX` or `over tcp` (and
//! for AAAA when every `to` answer is an IPv6 address). `NAME` is a name, or `id(C)`: container
//! C's short ID (the first 12 characters of its `Id`). With `as PTR`, `NAME` is an address or a
//! container (`web`, `web@NET`), asked for by its reverse name, and the `to` answers of PTR and
//! MX are domain names (`web.app-net`; the final dot is optional). `ttl N`: every answer's TTL.

use std::net::IpAddr;

use crate::probe::{Proto, RecordKind};

/// Something a probe reaches: a container, a lab host, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A container or lab host name, or an IP address as written.
    pub name: String,
    /// `web@NET`: the container's address on network NET.
    pub network: Option<String>,
}

impl Endpoint {
    fn parse(text: &str) -> Self {
        match text.split_once('@') {
            Some((name, network)) => Endpoint {
                name: name.to_string(),
                network: Some(network.to_string()),
            },
            None => Endpoint {
                name: text.to_string(),
                network: None,
            },
        }
    }

    /// The address itself, when the endpoint is written as one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.name.parse().ok()
    }
}

/// A destination port: a number, or the host port Docker published for a container's port
/// (written `web->80`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Port {
    /// This port.
    Number(u16),
    /// The host port published for `container`'s port `port` (same protocol).
    Published {
        /// Container name.
        container: String,
        /// Container port.
        port: u16,
    },
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Published { container, port } => write!(f, "{container}->{port}"),
        }
    }
}

/// How a reach is expected to fail, when a scenario says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connection refused (RST, or ICMP port unreachable for UDP).
    Refused,
    /// No answer at all: dropped.
    Timeout,
    /// No route, or an ICMP unreachable.
    Unreachable,
}

/// How a name is expected not to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// An answer without records: NXDOMAIN, or NOERROR with no records (the default).
    NoAddress,
    /// NXDOMAIN exactly (`nxdomain`).
    NxDomain,
    /// NOERROR without records of the type asked for (`nodata`).
    NoData,
    /// SERVFAIL (`servfail`).
    ServFail,
    /// No answer before the probe's timeout (`timeout`).
    Timeout,
    /// Nothing listens at the server's address: ICMP port unreachable (`refused`).
    Refused,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unresolved::NoAddress => "NXDOMAIN or an answer without records",
            Unresolved::NxDomain => "NXDOMAIN",
            Unresolved::NoData => "NOERROR without records",
            Unresolved::ServFail => "SERVFAIL",
            Unresolved::Timeout => "no answer (timeout)",
            Unresolved::Refused => "refused (nothing listening)",
        })
    }
}

/// What a DNS check asks the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked for.
    pub name: Asked,
    /// The record type asked for (`as TYPE`; A unless said, or AAAA for IPv6 `to` answers).
    pub kind: RecordKind,
    /// UDP, or TCP from the start (`over tcp`).
    pub proto: Proto,
}

impl Question {
    /// A question for the A records of `name` over UDP, the default.
    pub fn a(name: &str) -> Self {
        Self {
            name: Asked::Name(name.into()),
            kind: RecordKind::A,
            proto: Proto::Udp,
        }
    }
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        if self.proto == Proto::Tcp {
            f.write_str(" over tcp")?;
        }
        Ok(())
    }
}

/// The name a DNS check asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// This name, as written.
    Name(String),
    /// `id(C)`: container C's short ID (the first 12 characters of its `Id`).
    ShortId(String),
    /// With `as PTR`: the reverse name of this address, or of a container's address.
    Reverse(Endpoint),
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Asked::Name(name) => f.write_str(name),
            Asked::ShortId(container) => write!(f, "id({container})"),
            Asked::Reverse(Endpoint { name, network }) => match network {
                Some(network) => write!(f, "{name}@{network}"),
                None => f.write_str(name),
            },
        }
    }
}

/// One expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// `A reaches B:PORT/proto` (`fails: None`), or `A cannot-reach ...` (`fails: Some(..)`;
    /// the inner `None` accepts any failure).
    Reach {
        /// Where the probe runs.
        from: String,
        /// What it connects to.
        to: Endpoint,
        /// Destination port.
        port: Port,
        /// TCP or UDP.
        proto: Proto,
        /// Expected failure, if it must fail.
        fails: Option<Option<Failure>>,
    },
    /// `A pings B [size N] [df]` / `A cannot-ping B [size N] [df]`.
    Ping {
        /// Where the ping runs.
        from: String,
        /// What it pings.
        to: Endpoint,
        /// True for `pings`.
        succeeds: bool,
        /// `size N`: the echo data's size in bytes, as ping's `-s` (the IPv4 packet is N + 28
        /// bytes); the probe's own small payload when not given.
        size: Option<u16>,
        /// `df`: don't fragment, as ping's `-M do`: a packet larger than the path's MTU is
        /// not sent (the sender's own interface refuses it, or a router answers
        /// "fragmentation needed").
        df: bool,
    },
    /// `A resolves NAME [to X,...] [ttl N] [as TYPE] [over udp|tcp]`.
    Resolve {
        /// Where the query is asked (through that namespace's resolver).
        from: String,
        /// What is asked.
        question: Question,
        /// The exact addresses expected (A, AAAA), when given.
        answers: Option<Vec<Endpoint>>,
        /// The exact names expected (PTR, MX), when given.
        names: Option<Vec<String>>,
        /// The TTL every answer must have, when given.
        ttl: Option<u32>,
    },
    /// `A does-not-resolve NAME [nxdomain|nodata|servfail|timeout|refused] [as TYPE] [over udp|tcp]`.
    NoResolve {
        /// Where the query is asked (through that namespace's resolver).
        from: String,
        /// What is asked.
        question: Question,
        /// What must come back instead of records.
        how: Unresolved,
    },
    /// `A gets http://B:PORT/PATH [STATUS]`.
    Http {
        /// Where the request is made.
        from: String,
        /// The server.
        to: Endpoint,
        /// Its port.
        port: Port,
        /// The path requested.
        path: String,
        /// Expected status (200 unless given).
        status: u16,
    },
    /// `network NET [on HOST] has PATH = VALUE`.
    Network {
        /// Network name.
        network: String,
        /// Docker host, when not the first.
        host: Option<String>,
        /// Dotted path into the network's inspect JSON.
        path: String,
        /// Expected value.
        value: Value,
    },
    /// `networks [on HOST] [filtered KEY=VALUE,...] are NAME,...|nothing`: what `docker network
    /// ls` lists (with its `-f KEY=VALUE` filters), as a set.
    Networks {
        /// Docker host, when not the first.
        host: Option<String>,
        /// `KEY=VALUE` filters, as `-f` takes them (a value may be `id(NET)`).
        filters: Vec<String>,
        /// The networks listed, in any order.
        names: Vec<String>,
    },
    /// `container C has PATH = VALUE`.
    Container {
        /// Container name.
        container: String,
        /// Dotted path into the container's inspect JSON.
        path: String,
        /// Expected value.
        value: Value,
    },
    /// `container C file PATH contains|lacks TEXT`.
    File {
        /// Container name.
        container: String,
        /// File as the container sees it.
        path: String,
        /// Text that must (or must not) appear.
        text: String,
        /// True for `contains`.
        contains: bool,
    },
    /// `container C interfaces are NAME,...` (exactly these, in any order) or
    /// `... include NAME,...` (at least these).
    Interfaces {
        /// Container name.
        container: String,
        /// Interface names.
        names: Vec<String>,
        /// True for `are`, false for `include`.
        exact: bool,
    },
    /// `container C mtu of IFACE is N`.
    Mtu {
        /// Container name.
        container: String,
        /// Interface name.
        iface: String,
        /// Expected MTU.
        mtu: u32,
    },
    /// `container C routes include ROUTE` or `... lack ROUTE` (`routes6` for IPv6).
    Route {
        /// Container name.
        container: String,
        /// The route as `ip route` starts its line: `default dev eth0`.
        route: String,
        /// True for `include`.
        present: bool,
        /// The IPv6 table (`routes6`), else the IPv4 one.
        ipv6: bool,
    },
}

/// What an inspect value must be: equal to a text (`= VALUE`), match a regex as a whole
/// (`~ REGEX`, anchored at both ends), or be missing under a parent that exists (`lacks PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Equal to this text.
    Equals(String),
    /// Matching this regular expression, as a whole.
    Matches(String),
    /// Not there, though its parent is.
    Absent,
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Equals(v) => write!(f, "= {v}"),
            Value::Matches(r) => write!(f, "~ {r}"),
            Value::Absent => f.write_str("absent"),
        }
    }
}

/// The regex of a `~ REGEX` check, anchored so that it must match the whole value.
pub fn whole_match(regex: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{regex})$"))
}

/// Why an expectation line is not understood, and the index of the word at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectError {
    /// Index of the offending word (the line's length for "something is missing at the end").
    pub word: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

mod parse;

pub use parse::{WITHIN_MAX, parse, within};

#[cfg(test)]
mod tests;
