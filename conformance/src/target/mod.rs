//! Engines under test. A [`Target`] does what a scenario's docker CLI lines ask, on the docker
//! hosts of a netsim lab, and hands out container namespaces so that probes and listeners work
//! the same on every target.

pub mod docker;
pub mod reference;

use std::future::Future;
use std::net::IpAddr;

use drydock_netsim::{Lab, Netns};
pub use drydock_runtime::api::spec::{ConnectSpec, ContainerSpec, NetworkSpec};

use crate::probe::UPSTREAM;
use crate::version::Version;

/// The nameservers of a docker host's `/etc/resolv.conf`, the same for every target: the lab's
/// upstream DNS server on the host's loopback (NXDOMAIN for every name), then the host's own lab
/// address, where nothing listens. A host with a local resolver looks like that; no query can
/// leave the lab.
pub fn lab_resolvers(lab: &Lab, host: &str) -> TargetResult<Vec<IpAddr>> {
    let address = lab
        .topology()
        .host(host)
        .and_then(|h| h.interfaces.first())
        .map(|i| IpAddr::V4(i.address.ip()))
        .ok_or_else(|| TargetError::new(format!("lab host {host} has no address on a segment")))?;
    Ok(vec![UPSTREAM.ip(), address])
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

    /// Whether it makes its links with the kernel only (Docker Engine), so that scenarios
    /// needing a link kind this kernel lacks (`kernel:`) cannot run on it. The reference engine
    /// has userspace datapaths for those.
    fn kernel_links_only(&self) -> bool {
        false
    }

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
