//! What an engine's embedded DNS servers know: who is on which network, and what each sandbox
//! sees. The engine rebuilds a [`Records`] after every change (run, rm, connect, disconnect) and
//! the servers read the latest one, so answers are never stale.
//!
//! Lookups follow libnetwork (Docker 20.10): names and aliases are matched without regard to
//! case, network names exactly; a network's records hold every endpoint's container name and
//! network-scoped aliases (the short id among them), and its reverse records the container
//! names only.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Everything the embedded DNS servers of one engine know.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// User-defined networks (the ones with embedded DNS), by id.
    pub networks: BTreeMap<String, NetworkRecords>,
    /// Sandboxes that run a resolver, by the id of the container that owns the sandbox.
    pub sandboxes: BTreeMap<String, SandboxView>,
}

/// The names on one network.
#[derive(Debug, Clone, Default)]
pub struct NetworkRecords {
    /// The network's name (the `name.network` form matches it exactly).
    pub name: String,
    /// Whether the network has IPv6 (`--ipv6`): without it, AAAA queries for a known name get
    /// an empty answer instead of being forwarded.
    pub ipv6: bool,
    /// Its endpoints.
    pub entries: Vec<Entry>,
}

/// One endpoint on a network.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The container's name, as given (PTR answers use it).
    pub name: String,
    /// Network-scoped aliases (`--network-alias`, `--alias`, the short id).
    pub aliases: Vec<String>,
    /// IPv4 address.
    pub ip4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ip6: Option<Ipv6Addr>,
}

/// What one sandbox's resolver sees.
#[derive(Debug, Clone, Default)]
pub struct SandboxView {
    /// The sandbox's endpoints, in Docker's order (the gateway endpoint's network first).
    pub endpoints: Vec<SandboxEndpoint>,
    /// The servers unknown names go to (at most three are tried, in order).
    pub upstreams: Vec<Upstream>,
    /// Whether the container set `ndots` itself: single-label names are then not forwarded.
    pub ndots_set: bool,
}

/// A server unknown names are forwarded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream {
    /// Its address (port 53).
    pub ip: IpAddr,
    /// Whether it is asked from the docker host's namespace (a loopback server of the host's
    /// resolv.conf, libnetwork's `HostLoopback`) rather than from the container's.
    pub from_host: bool,
}

/// One endpoint of a sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxEndpoint {
    /// The network's id.
    pub network: String,
    /// Legacy links made on this network (`--link name:alias`): alias → container name.
    pub links: BTreeMap<String, String>,
}

/// The addresses a lookup found, or why it found none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name's addresses of the asked family.
    Found(Vec<IpAddr>),
    /// The name exists, but not with an address of the asked family (IPv6 on a network
    /// without it): answered with no records instead of being forwarded.
    NoAddressOfFamily,
    /// Not a name the engine knows.
    Unknown,
}

impl NetworkRecords {
    /// libnetwork's `network.ResolveName`: the addresses of `name` on this network.
    fn resolve(&self, name: &str, v6: bool) -> Lookup {
        let matches = |e: &&Entry| {
            e.name.eq_ignore_ascii_case(name)
                || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        };
        let mut found: Vec<IpAddr> = Vec::new();
        let mut known = false;
        for entry in self.entries.iter().filter(matches) {
            known |= entry.ip4.is_some();
            let ip = if v6 {
                entry.ip6.map(IpAddr::V6)
            } else {
                entry.ip4.map(IpAddr::V4)
            };
            if let Some(ip) = ip
                && !found.contains(&ip)
            {
                found.push(ip);
            }
        }
        match (found.is_empty(), v6 && known && !self.ipv6) {
            (false, _) => Lookup::Found(found),
            (true, true) => Lookup::NoAddressOfFamily,
            (true, false) => Lookup::Unknown,
        }
    }

    /// libnetwork's `network.ResolveIP`: `container.network` for a container's address.
    fn reverse(&self, ip: IpAddr) -> Option<String> {
        self.entries
            .iter()
            .find(|e| e.ip4.map(IpAddr::V4) == Some(ip) || e.ip6.map(IpAddr::V6) == Some(ip))
            .map(|e| format!("{}.{}", e.name, self.name))
    }
}

impl Records {
    /// libnetwork's `sandbox.ResolveName`: `name` as the sandbox `sandbox` sees it.
    ///
    /// `a.b.c` is tried as `a.b.c` on every network, then `a.b` on network `c`, then `a` on
    /// network `b.c`; each try looks at legacy-link aliases first, then at names.
    pub fn resolve(&self, sandbox: &SandboxView, name: &str, v6: bool) -> Lookup {
        let name = name.strip_suffix('.').unwrap_or(name);
        let mut tries = vec![(name, None)];
        let mut rest = name;
        while let Some(dot) = rest.rfind('.') {
            tries.push((&name[..dot], Some(&name[dot + 1..])));
            rest = &rest[..dot];
        }
        for (request, network) in tries {
            for via_link in [true, false] {
                let mut no_address = false;
                for endpoint in &sandbox.endpoints {
                    let Some(records) = self.networks.get(&endpoint.network) else {
                        continue;
                    };
                    if network.is_some_and(|n| n != records.name) {
                        continue;
                    }
                    let target = match (via_link, endpoint.links.get(request)) {
                        (true, Some(target)) => target.as_str(),
                        (true, None) => continue,
                        (false, Some(_)) => continue,
                        (false, None) => request,
                    };
                    match records.resolve(target, v6) {
                        Lookup::Found(ips) => return Lookup::Found(ips),
                        Lookup::NoAddressOfFamily => no_address = true,
                        Lookup::Unknown => {}
                    }
                }
                if no_address {
                    return Lookup::NoAddressOfFamily;
                }
            }
        }
        Lookup::Unknown
    }

    /// libnetwork's `sandbox.ResolveIP`: the first of the sandbox's networks that knows `ip`.
    pub fn reverse(&self, sandbox: &SandboxView, ip: IpAddr) -> Option<String> {
        sandbox
            .endpoints
            .iter()
            .filter_map(|e| self.networks.get(&e.network))
            .find_map(|n| n.reverse(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two networks: `front` (web, api with alias `www`) and `back` (api, db); `me` is on both
    /// with a link `store` → db on back.
    fn records() -> (Records, SandboxView) {
        let entry = |name: &str, aliases: &[&str], ip: &str| Entry {
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ip4: Some(ip.parse().unwrap()),
            ip6: None,
        };
        let mut records = Records::default();
        records.networks.insert(
            "f1".into(),
            NetworkRecords {
                name: "front".into(),
                ipv6: false,
                entries: vec![
                    entry("web", &["0123456789ab"], "10.1.0.2"),
                    entry("api", &["www"], "10.1.0.3"),
                ],
            },
        );
        records.networks.insert(
            "b2".into(),
            NetworkRecords {
                name: "back".into(),
                ipv6: false,
                entries: vec![
                    entry("api", &[], "10.2.0.3"),
                    entry("db", &["www"], "10.2.0.4"),
                ],
            },
        );
        let sandbox = SandboxView {
            endpoints: vec![
                SandboxEndpoint {
                    network: "f1".into(),
                    links: BTreeMap::new(),
                },
                SandboxEndpoint {
                    network: "b2".into(),
                    links: [("store".to_string(), "db".to_string())].into(),
                },
            ],
            upstreams: Vec::new(),
            ndots_set: false,
        };
        (records, sandbox)
    }

    fn found(ips: &[&str]) -> Lookup {
        Lookup::Found(ips.iter().map(|ip| ip.parse().unwrap()).collect())
    }

    #[test]
    fn names_resolve_on_the_first_network_that_has_them() {
        let (records, sandbox) = records();
        assert_eq!(
            records.resolve(&sandbox, "web.", false),
            found(&["10.1.0.2"])
        );
        assert_eq!(
            records.resolve(&sandbox, "WEB", false),
            found(&["10.1.0.2"])
        );
        assert_eq!(
            records.resolve(&sandbox, "0123456789AB", false),
            found(&["10.1.0.2"])
        );
        assert_eq!(
            records.resolve(&sandbox, "api", false),
            found(&["10.1.0.3"])
        );
        assert_eq!(
            records.resolve(&sandbox, "www", false),
            found(&["10.1.0.3"])
        );
        assert_eq!(records.resolve(&sandbox, "nothere", false), Lookup::Unknown);
    }

    #[test]
    fn the_network_suffix_picks_the_network_and_is_case_sensitive() {
        let (records, sandbox) = records();
        assert_eq!(
            records.resolve(&sandbox, "api.back", false),
            found(&["10.2.0.3"])
        );
        assert_eq!(
            records.resolve(&sandbox, "www.back.", false),
            found(&["10.2.0.4"])
        );
        assert_eq!(
            records.resolve(&sandbox, "api.BACK", false),
            Lookup::Unknown
        );
        assert_eq!(
            records.resolve(&sandbox, "web.back", false),
            Lookup::Unknown
        );
    }

    #[test]
    fn links_are_aliases_on_their_network_only() {
        let (records, sandbox) = records();
        assert_eq!(
            records.resolve(&sandbox, "store", false),
            found(&["10.2.0.4"])
        );
        assert_eq!(
            records.resolve(&sandbox, "store.back", false),
            found(&["10.2.0.4"])
        );
        assert_eq!(
            records.resolve(&sandbox, "store.front", false),
            Lookup::Unknown
        );
    }

    #[test]
    fn a_shared_alias_answers_with_every_address() {
        let (mut records, sandbox) = records();
        records.networks.get_mut("f1").unwrap().entries[0]
            .aliases
            .push("www".into());
        assert_eq!(
            records.resolve(&sandbox, "www", false),
            found(&["10.1.0.2", "10.1.0.3"])
        );
    }

    #[test]
    fn aaaa_for_a_name_without_ipv6_is_answered_empty() {
        let (records, sandbox) = records();
        assert_eq!(
            records.resolve(&sandbox, "web", true),
            Lookup::NoAddressOfFamily
        );
        assert_eq!(records.resolve(&sandbox, "nothere", true), Lookup::Unknown);
    }

    #[test]
    fn a_sandbox_sees_only_its_networks() {
        let (records, mut sandbox) = records();
        sandbox.endpoints.remove(0);
        assert_eq!(records.resolve(&sandbox, "web", false), Lookup::Unknown);
        assert_eq!(
            records.resolve(&sandbox, "api", false),
            found(&["10.2.0.3"])
        );
    }

    #[test]
    fn reverse_gives_container_dot_network() {
        let (records, sandbox) = records();
        assert_eq!(
            records.reverse(&sandbox, "10.2.0.4".parse().unwrap()),
            Some("db.back".into())
        );
        assert_eq!(records.reverse(&sandbox, "10.9.0.4".parse().unwrap()), None);
    }
}
