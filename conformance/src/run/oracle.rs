//! The oracle: which of drydock's listeners must answer a connection, when the scenario makes it
//! knowable. Pure, over a snapshot of the scene ([`Snapshot`]): a reach that lands on the wrong
//! listener (a port published to another container, a stray DNAT) fails even though something
//! answered.

use std::net::IpAddr;

use crate::probe::ListenKind;
use crate::scenario::expect::{Endpoint, Port};

/// The banner drydock's listeners answer with: it proves which container (or lab host)
/// answered.
pub(super) fn banner(owner: &str, port: u16) -> String {
    format!("drydock {owner} {port}")
}

/// The listener kind whose answer a reach over `proto` reads (HTTP listeners say nothing until
/// asked, so a TCP reach expects a TCP listener's banner).
pub(super) fn kind_of(proto: crate::probe::Proto) -> ListenKind {
    match proto {
        crate::probe::Proto::Tcp => ListenKind::Tcp,
        crate::probe::Proto::Udp => ListenKind::Udp,
    }
}

/// What the oracle knows of the scene when a connection is made.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    /// Lab hosts and their (IPv4) addresses.
    pub(super) hosts: Vec<(String, Vec<IpAddr>)>,
    /// `drydock listen` listeners: lab host, kind, port.
    pub(super) host_listeners: Vec<(String, ListenKind, u16)>,
    /// Containers the scenario ran.
    pub(super) containers: Vec<ContainerFacts>,
}

/// A container as the oracle sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct ContainerFacts {
    /// Its docker host.
    pub(super) host: String,
    /// Its name.
    pub(super) name: String,
    /// The listeners drydock opens in it (`--listen`).
    pub(super) listen: Vec<(ListenKind, u16)>,
    /// `--network host`: it lives in its docker host's namespace.
    pub(super) host_network: bool,
    /// Its addresses, on every network.
    pub(super) addresses: Vec<IpAddr>,
    /// Published ports: container port, kind of listener it reaches (TCP or UDP), host port.
    pub(super) published: Vec<(u16, ListenKind, u16)>,
    /// Its network namespace's inode, while it runs (containers sharing one have the same).
    pub(super) netns: Option<u64>,
}

impl ContainerFacts {
    fn listens(&self, kind: ListenKind, port: u16) -> bool {
        self.listen.iter().any(|&(k, p)| k == kind && p == port)
    }
}

/// Where a connection lands, as far as the scenario tells.
#[derive(Debug, Clone, Copy)]
enum Landing<'a> {
    /// In a container's namespace.
    Container(&'a ContainerFacts),
    /// In a lab host's own namespace.
    Host(&'a str),
}

impl Snapshot {
    /// The container named `name`, when exactly one docker host runs one of that name.
    fn unique(&self, name: &str) -> Option<&ContainerFacts> {
        let mut found = self.containers.iter().filter(|c| c.name == name);
        match (found.next(), found.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    fn host(&self, name: &str) -> Option<&str> {
        self.hosts
            .iter()
            .find(|(h, _)| h == name)
            .map(|(h, _)| h.as_str())
    }

    /// The banner of the listener that must answer a connection of `kind` from `from` to
    /// `to:port`: for `C->N`, C's listener on N; otherwise the listener on that port in the
    /// namespace the connection lands in (a container's own, or one sharing its namespace; for
    /// a lab host, its `drydock listen`, or the one container of that docker host that
    /// published the port or listens on it with host networking). `None` when the scene does
    /// not tell (or several could answer).
    pub(super) fn answerer(
        &self,
        from: &str,
        to: &Endpoint,
        port: &Port,
        kind: ListenKind,
    ) -> Option<String> {
        let n = match port {
            Port::Published { container, port } => {
                let c = self.unique(container)?;
                return c.listens(kind, *port).then(|| banner(container, *port));
            }
            Port::Number(n) => *n,
        };
        match self.landing(from, to)? {
            Landing::Host(host) => self.host_answerer(host, n, kind),
            Landing::Container(c) if c.host_network => self.host_answerer(&c.host, n, kind),
            Landing::Container(c) => {
                // Whoever listens on the port in that namespace: the container, or one that
                // shares its namespace (`--network container:NAME`).
                let here = c.netns?;
                let found: Vec<String> = (self.containers.iter())
                    .filter(|o| o.host == c.host && o.listens(kind, n) && o.netns == Some(here))
                    .map(|o| banner(&o.name, n))
                    .collect();
                only_one(found)
            }
        }
    }

    /// The namespace a connection from `from` to `to` lands in: a container's (by name, by its
    /// address on `from`'s docker host, or `from` itself for loopback) or a lab host's (by
    /// name, by its address, or `from` itself for loopback).
    fn landing(&self, from: &str, to: &Endpoint) -> Option<Landing<'_>> {
        let Some(ip) = to.ip() else {
            if let Some(host) = self.host(&to.name) {
                return Some(Landing::Host(host));
            }
            return self.unique(&to.name).map(Landing::Container);
        };
        let from_container = self.unique(from);
        if ip.is_loopback() {
            return match from_container {
                Some(c) => Some(Landing::Container(c)),
                None => self.host(from).map(Landing::Host),
            };
        }
        if let Some((host, _)) = self.hosts.iter().find(|(_, a)| a.contains(&ip)) {
            return Some(Landing::Host(host));
        }
        // Container addresses mean something on their own docker host only: `from`'s.
        let docker_host = from_container.map_or(from, |c| c.host.as_str());
        (self.containers.iter())
            .find(|c| c.host == docker_host && c.addresses.contains(&ip))
            .map(Landing::Container)
    }

    /// The banner that must answer on port `n` of lab host `host`: its `drydock listen`, or
    /// the one container of that docker host that published the port or listens on it with
    /// host networking.
    fn host_answerer(&self, host: &str, n: u16, kind: ListenKind) -> Option<String> {
        let on_host =
            (self.host_listeners.iter()).any(|(h, k, p)| h == host && *p == n && *k == kind);
        if on_host {
            return Some(banner(host, n));
        }
        let mut found = Vec::new();
        for c in self.containers.iter().filter(|c| c.host == host) {
            if c.host_network {
                if c.listens(kind, n) {
                    found.push(banner(&c.name, n));
                }
                continue;
            }
            for &(port, published_kind, host_port) in &c.published {
                if published_kind == kind_published(kind) && host_port == n && c.listens(kind, port)
                {
                    found.push(banner(&c.name, port));
                }
            }
        }
        only_one(found)
    }
}

/// The protocol kind a published port carries for a listener of `kind` (HTTP is TCP).
fn kind_published(kind: ListenKind) -> ListenKind {
    match kind {
        ListenKind::Udp => ListenKind::Udp,
        ListenKind::Tcp | ListenKind::Http => ListenKind::Tcp,
    }
}

/// The one banner found (a port published on IPv4 and IPv6 is found twice), if only one.
fn only_one(mut found: Vec<String>) -> Option<String> {
    found.sort();
    found.dedup();
    (found.len() == 1).then(|| found.remove(0))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn endpoint(text: &str) -> Endpoint {
        Endpoint {
            name: text.into(),
            network: None,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// h1 runs web (tcp/80, http/8080; publishes 80 as 8080 and 8080 as 9090), its namespace
    /// shared by side (tcp/81), a host-networked agent (tcp/7000) and a client; h2 runs another
    /// web; ext listens on tcp/25.
    fn snapshot() -> Snapshot {
        let container = |host: &str, name: &str, netns: u64| ContainerFacts {
            host: host.into(),
            name: name.into(),
            netns: Some(netns),
            ..ContainerFacts::default()
        };
        Snapshot {
            hosts: vec![
                ("h1".into(), vec![ip("10.10.0.1")]),
                ("h2".into(), vec![ip("10.10.0.2")]),
                ("ext".into(), vec![ip("10.10.0.3")]),
            ],
            host_listeners: vec![("ext".into(), ListenKind::Tcp, 25)],
            containers: vec![
                ContainerFacts {
                    listen: vec![(ListenKind::Tcp, 80), (ListenKind::Http, 8080)],
                    addresses: vec![ip("172.18.0.2")],
                    published: vec![
                        (80, ListenKind::Tcp, 8080),
                        (80, ListenKind::Tcp, 8080),
                        (8080, ListenKind::Tcp, 9090),
                    ],
                    ..container("h1", "web", 1)
                },
                ContainerFacts {
                    listen: vec![(ListenKind::Tcp, 81)],
                    ..container("h1", "side", 1)
                },
                ContainerFacts {
                    listen: vec![(ListenKind::Tcp, 7000)],
                    host_network: true,
                    ..container("h1", "agent", 9)
                },
                ContainerFacts {
                    addresses: vec![ip("172.18.0.3")],
                    ..container("h1", "client", 2)
                },
                ContainerFacts {
                    listen: vec![(ListenKind::Tcp, 80)],
                    addresses: vec![ip("172.18.0.2")],
                    ..container("h2", "other", 3)
                },
            ],
        }
    }

    #[rstest]
    #[case::by_name("client", "web", 80, ListenKind::Tcp, Some("drydock web 80"))]
    #[case::by_address("client", "172.18.0.2", 80, ListenKind::Tcp, Some("drydock web 80"))]
    #[case::address_on_the_other_host(
        "other",
        "172.18.0.2",
        80,
        ListenKind::Tcp,
        Some("drydock other 80")
    )]
    #[case::shared_namespace("client", "web", 81, ListenKind::Tcp, Some("drydock side 81"))]
    #[case::loopback("web", "127.0.0.1", 81, ListenKind::Tcp, Some("drydock side 81"))]
    #[case::published_by_host_name("ext", "h1", 8080, ListenKind::Tcp, Some("drydock web 80"))]
    #[case::published_by_host_address(
        "ext",
        "10.10.0.1",
        9090,
        ListenKind::Http,
        Some("drydock web 8080")
    )]
    #[case::host_network("ext", "h1", 7000, ListenKind::Tcp, Some("drydock agent 7000"))]
    #[case::host_network_container(
        "client",
        "agent",
        7000,
        ListenKind::Tcp,
        Some("drydock agent 7000")
    )]
    #[case::host_listener("web", "ext", 25, ListenKind::Tcp, Some("drydock ext 25"))]
    #[case::nobody_listens("client", "web", 99, ListenKind::Tcp, None)]
    #[case::kind_differs("client", "web", 80, ListenKind::Udp, None)]
    #[case::unknown_address("client", "192.0.2.1", 80, ListenKind::Tcp, None)]
    fn connections_land_where_the_scene_says(
        #[case] from: &str,
        #[case] to: &str,
        #[case] port: u16,
        #[case] kind: ListenKind,
        #[case] expected: Option<&str>,
    ) {
        let answer = snapshot().answerer(from, &endpoint(to), &Port::Number(port), kind);
        assert_eq!(answer.as_deref(), expected);
    }

    #[test]
    fn published_ports_name_their_container() {
        let world = snapshot();
        let published = |container: &str, port: u16| Port::Published {
            container: container.into(),
            port,
        };
        let via = world.answerer(
            "ext",
            &endpoint("h1"),
            &published("web", 80),
            ListenKind::Tcp,
        );
        assert_eq!(via.as_deref(), Some("drydock web 80"));
        let silent = world.answerer(
            "ext",
            &endpoint("h1"),
            &published("client", 80),
            ListenKind::Tcp,
        );
        assert_eq!(silent, None);
    }

    #[test]
    fn a_name_on_two_docker_hosts_is_not_guessed() {
        let mut world = snapshot();
        world.containers.push(ContainerFacts {
            host: "h2".into(),
            name: "web".into(),
            listen: vec![(ListenKind::Tcp, 80)],
            netns: Some(4),
            ..ContainerFacts::default()
        });
        assert_eq!(
            world.answerer(
                "client",
                &endpoint("web"),
                &Port::Number(80),
                ListenKind::Tcp
            ),
            None
        );
    }

    #[test]
    fn two_containers_publishing_one_port_leave_it_open() {
        let mut world = snapshot();
        world.containers.push(ContainerFacts {
            host: "h1".into(),
            name: "twin".into(),
            listen: vec![(ListenKind::Tcp, 80)],
            published: vec![(80, ListenKind::Tcp, 8080)],
            netns: Some(5),
            ..ContainerFacts::default()
        });
        assert_eq!(
            world.answerer("ext", &endpoint("h1"), &Port::Number(8080), ListenKind::Tcp),
            None
        );
    }
}
