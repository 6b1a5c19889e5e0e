//! Engines under test. A [`Target`] runs an engine on the docker hosts of a netsim lab, serves
//! the Engine API there (a scenario's docker CLI lines become calls on it through
//! [`drydock_runtime::api::dispatch`]), and hands out container namespaces so that probes and
//! listeners work the same on every target.

pub mod docker;
pub mod etcd;
pub mod reference;
pub mod reference_api;

use std::future::Future;
use std::net::IpAddr;

use drydock_netsim::{Lab, Netns};
use drydock_runtime::api::{ApiError, EngineApi};

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

/// A target's failure or an engine's refusal, as the docker CLI would print it after "Error
/// response from daemon: ": the Engine API's error.
pub type TargetError = ApiError;

/// Result of a target operation.
pub type TargetResult<T> = Result<T, TargetError>;

/// An engine under test, running on the docker hosts of a lab: its Engine API per docker host,
/// and what probes need that the API does not give (namespaces, files). Every method names the
/// docker host it acts on (a lab host name such as `h1`).
pub trait Target: Sized {
    /// The Engine API of one docker host.
    type Api: EngineApi;

    /// Starts the engine on each of `docker_hosts` (lab hosts of `lab`), with the lab's
    /// resolvers ([`lab_resolvers`]); `run_id` names and labels what it makes, so that
    /// leftovers can be found.
    fn start(
        lab: &Lab,
        docker_hosts: &[String],
        run_id: &str,
    ) -> impl Future<Output = TargetResult<Self>>;

    /// Stops it and removes everything it made.
    fn stop(self) -> impl Future<Output = ()>;

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

    /// The Engine API of docker host `host`.
    fn api(&self, host: &str) -> TargetResult<&Self::Api>;

    /// `docker network inspect NAME`: the engine's JSON, in Docker's shape.
    fn inspect_network(
        &self,
        host: &str,
        name: &str,
    ) -> impl Future<Output = TargetResult<serde_json::Value>> {
        async move { self.api(host)?.inspect_network(name).await }
    }

    /// `docker inspect NAME`: the engine's JSON, in Docker's shape.
    fn inspect_container(
        &self,
        host: &str,
        name: &str,
    ) -> impl Future<Output = TargetResult<serde_json::Value>> {
        async move { self.api(host)?.inspect_container(name).await }
    }

    /// The folder where the engine on `host` finds network plugins' sockets (`NAME.sock` for
    /// `docker network create -d NAME`).
    fn plugins_dir(&self, host: &str) -> TargetResult<std::path::PathBuf>;

    /// The network namespace of a running container (for probes, listeners and captures).
    fn container_netns(&self, host: &str, name: &str) -> impl Future<Output = TargetResult<Netns>>;

    /// The contents of a file as the container sees it (`/etc/resolv.conf`, `/etc/hosts`).
    fn container_file(
        &self,
        host: &str,
        name: &str,
        path: &str,
    ) -> impl Future<Output = TargetResult<String>>;

    /// Kills the engine of docker host `host` at once, as a node dies: its containers go with
    /// it, it leaves no swarm on its way out (the others find out by themselves), and it
    /// answers no call after.
    fn kill(&self, host: &str) -> impl Future<Output = TargetResult<()>>;

    /// Everything worth reading when a scenario fails on `host` that the engine alone knows:
    /// firewall rules, the engine's own log tail. (Addresses and routes are read by the
    /// runner.)
    fn dump(&self, host: &str) -> impl Future<Output = String>;
}
