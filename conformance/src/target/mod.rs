//! Engines under test. A [`Target`] does what a scenario's docker CLI lines ask, on the docker
//! hosts of a netsim lab, and hands out container namespaces so that probes and listeners work
//! the same on every target.

pub mod docker;

use std::future::Future;
use std::net::IpAddr;

use drydock_netsim::Netns;

use crate::version::Version;
use ipnetwork::IpNetwork;

/// `docker network create` as a structure (only what scenarios use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Network name.
    pub name: String,
    /// `--driver`; `None` means the engine's default (bridge).
    pub driver: Option<String>,
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

/// `docker run -d` as a structure (only what scenarios use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// `--name`.
    pub name: String,
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
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--mac-address`.
    pub mac_address: Option<String>,
    /// `--add-host host:ip`, as written.
    pub add_hosts: Vec<String>,
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
    /// `--alias`.
    pub aliases: Vec<String>,
    /// `--link NAME[:ALIAS]`.
    pub links: Vec<String>,
}

/// An engine's refusal, as the docker CLI would print it after "Error response from daemon: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    /// The engine's message.
    pub message: String,
}

impl TargetError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Result of a target operation.
pub type TargetResult<T> = Result<T, TargetError>;

/// An engine under test, running on the docker hosts of a lab. Every method names the docker
/// host it acts on (a lab host name such as `h1`).
pub trait Target {
    /// What this is, for reports: e.g. "docker 20.10.24".
    fn describe(&self) -> String;

    /// The Docker release whose behavior the engine has, for version-tagged expectations.
    fn version(&self) -> Version;

    /// `docker network create`.
    fn create_network(
        &self,
        host: &str,
        spec: &NetworkSpec,
    ) -> impl Future<Output = TargetResult<()>>;

    /// `docker network rm NAME`.
    fn remove_network(&self, host: &str, name: &str) -> impl Future<Output = TargetResult<()>>;

    /// `docker network connect`.
    fn connect(&self, host: &str, spec: &ConnectSpec) -> impl Future<Output = TargetResult<()>>;

    /// `docker network disconnect [-f] NETWORK CONTAINER`.
    fn disconnect(
        &self,
        host: &str,
        network: &str,
        container: &str,
        force: bool,
    ) -> impl Future<Output = TargetResult<()>>;

    /// `docker run -d`: create and start; returns once the container runs.
    fn run_container(
        &self,
        host: &str,
        spec: &ContainerSpec,
    ) -> impl Future<Output = TargetResult<()>>;

    /// `docker stop NAME`.
    fn stop_container(&self, host: &str, name: &str) -> impl Future<Output = TargetResult<()>>;

    /// `docker start NAME`.
    fn start_container(&self, host: &str, name: &str) -> impl Future<Output = TargetResult<()>>;

    /// `docker rm [-f] NAME`.
    fn remove_container(
        &self,
        host: &str,
        name: &str,
        force: bool,
    ) -> impl Future<Output = TargetResult<()>>;

    /// `docker network inspect NAME`: the engine's JSON, in Docker's shape.
    fn inspect_network(
        &self,
        host: &str,
        name: &str,
    ) -> impl Future<Output = TargetResult<serde_json::Value>>;

    /// `docker inspect NAME`: the engine's JSON, in Docker's shape.
    fn inspect_container(
        &self,
        host: &str,
        name: &str,
    ) -> impl Future<Output = TargetResult<serde_json::Value>>;

    /// The network namespace of a running container (for probes, listeners and captures).
    fn container_netns(&self, host: &str, name: &str) -> impl Future<Output = TargetResult<Netns>>;

    /// The contents of a file as the container sees it (`/etc/resolv.conf`, `/etc/hosts`).
    fn container_file(
        &self,
        host: &str,
        name: &str,
        path: &str,
    ) -> impl Future<Output = TargetResult<String>>;

    /// Everything worth reading when a scenario fails on `host`: interfaces, routes, firewall
    /// rules, the engine's own log tail.
    fn dump(&self, host: &str) -> impl Future<Output = String>;
}
