//! The docker CLI's requests as structures: what `docker network create`, `docker run` and
//! `docker network connect` ask for ([`super::cli`] reads them from a command line), before
//! they become API request bodies ([`super::request`]).

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// `docker network create` as a structure (only what scenarios use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Network name.
    pub name: String,
    /// `--driver`; `None` means the engine's default (bridge).
    pub driver: Option<String>,
    /// `--ipam-driver` (`default` when not given).
    pub ipam_driver: Option<String>,
    /// `--subnet` (one per address family at most, in scenarios).
    pub subnets: Vec<IpNetwork>,
    /// `--gateway`, in the order given (Docker pairs them with subnets by family).
    pub gateways: Vec<IpAddr>,
    /// `--ip-range`.
    pub ip_ranges: Vec<IpNetwork>,
    /// `--aux-address name=ip`.
    pub aux_addresses: Vec<(String, IpAddr)>,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `--ipv6`.
    pub ipv6: bool,
    /// `--opt key=value` (driver options, e.g. `com.docker.network.bridge.enable_icc=false`).
    pub options: Vec<(String, String)>,
    /// `--label key=value`.
    pub labels: Vec<(String, String)>,
}

/// `docker run` as a structure (only what scenarios use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// `--name` (empty: the engine names it).
    pub name: String,
    /// `-d`: start it and return, rather than attach to its output.
    pub detach: bool,
    /// Image as written; every target maps `busybox` to its own small image.
    pub image: String,
    /// Command after the image (empty: the image's default, which keeps the container running).
    pub command: Vec<String>,
    /// `--network`: a network name, `host`, `none`, `container:NAME`; `None` is the default bridge.
    pub network: Option<String>,
    /// `--ip`.
    pub ip: Option<IpAddr>,
    /// `--ip6`.
    pub ip6: Option<IpAddr>,
    /// `--link-local-ip`, as written (the engine checks them).
    pub link_local_ips: Vec<String>,
    /// `--uts`: `host`, or empty.
    pub uts: String,
    /// `--domainname`: the NIS domain name, and the domain of the hostname in /etc/hosts.
    pub domainname: String,
    /// `--network-alias` / `--alias`.
    pub aliases: Vec<String>,
    /// `--publish`/`-p`, as written (`8080:80`, `127.0.0.1:8080:80/udp`, `80`, ranges).
    pub publish: Vec<String>,
    /// `--publish-all`/`-P`.
    pub publish_all: bool,
    /// `--expose`, as written (`80`, `53/udp`, `3000-3003`).
    pub expose: Vec<String>,
    /// `--link NAME[:ALIAS]`, as written.
    pub links: Vec<String>,
    /// `--dns`.
    pub dns: Vec<IpAddr>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option` (`--dns-opt`).
    pub dns_options: Vec<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--mac-address`.
    pub mac_address: Option<String>,
    /// `--add-host host:ip`, as written.
    pub add_hosts: Vec<String>,
}

/// `docker network ls` as a structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkLsSpec {
    /// `-f KEY=VALUE`, as written.
    pub filters: Vec<String>,
    /// `-q`: the Ids only.
    pub quiet: bool,
    /// `--no-trunc`: whole Ids.
    pub no_trunc: bool,
}

/// `docker network connect` as a structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectSpec {
    /// Network name.
    pub network: String,
    /// Container name.
    pub container: String,
    /// `--ip`.
    pub ip: Option<IpAddr>,
    /// `--ip6`.
    pub ip6: Option<IpAddr>,
    /// `--link-local-ip`, as written (the engine checks them).
    pub link_local_ips: Vec<String>,
    /// `--alias`.
    pub aliases: Vec<String>,
    /// `--link NAME[:ALIAS]`.
    pub links: Vec<String>,
}

/// `docker swarm init` as a structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmInitSpec {
    /// `--advertise-addr` (an address or an interface name; empty: the daemon's choice).
    pub advertise_addr: Option<String>,
    /// `--listen-addr` (default `0.0.0.0:2377`).
    pub listen_addr: Option<String>,
}

/// `docker swarm join` as a structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmJoinSpec {
    /// `--token`.
    pub token: String,
    /// The manager to join through, `HOST[:PORT]`.
    pub remote: String,
    /// `--advertise-addr`.
    pub advertise_addr: Option<String>,
    /// `--listen-addr` (default `0.0.0.0:2377`).
    pub listen_addr: Option<String>,
}
