//! The reference engine of one docker host: networks, containers, their namespaces, addresses,
//! routes, published ports and firewall, with Docker Engine 20.10's semantics and messages.
//!
//! Requests are the Engine API's bodies ([`crate::api::body`]); errors are Docker's texts, as the
//! docker CLI prints them after "Error response from daemon: ". Each operation either completes
//! or leaves nothing half-made.

mod api;
mod container;
mod dns;
mod events;
mod files;
mod ids;
mod inspect;
mod model;
mod network;
mod pools;
mod ports;
mod swarm;
mod swarm_networks;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use drydock_netsim::Netns;

use crate::dns::Dns;

use crate::driver::{self, Driver};
use crate::firewall::Firewall;
use crate::ipam::Ipam;
use crate::plugin::RemoteIpam;
use crate::plugin::client::{Client, Patience};
use crate::plugin::discovery::PluginDirs;

use self::ids::Ids;
use self::model::{Container, Network};
use self::ports::PortAllocator;

/// An engine's refusal or failure, with Docker's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl EngineError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Result of an engine operation.
pub type EngineResult<T> = Result<T, EngineError>;

pub use events::{Actor, Event, Events};
pub use swarm::ControlPlane;

/// How an engine is set up (the daemon's flags that matter to networking).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `dockerd --dns`: every container's servers unless it has `--dns` of its own.
    pub dns: Vec<IpAddr>,
    /// The nameservers of the docker host's `/etc/resolv.conf`, used where neither gives any:
    /// loopback ones are asked by the embedded DNS from the host's namespace, and left out of
    /// the resolv.conf of containers without embedded DNS.
    pub host_resolvers: Vec<IpAddr>,
    /// Where containers' files (hosts, resolv.conf, hostname) are also written, for processes
    /// that bind-mount them (`drydock -H LAB/HOST exec`); without one they stay in memory.
    pub state_dir: Option<PathBuf>,
    /// The docker host's hostname: a swarm node's name.
    pub hostname: String,
    /// Where the control plane of the swarm this engine makes or joins lives.
    pub control_plane: ControlPlane,
    /// Where network and IPAM plugins are looked for (`docker network create -d NAME`,
    /// `--ipam-driver NAME`).
    pub plugins: PluginDirs,
    /// How long plugin calls are waited for.
    pub plugin_patience: Patience,
}

/// The engine of one docker host.
#[derive(Debug)]
pub struct Engine {
    host: Netns,
    options: Options,
    /// Network drivers by name.
    drivers: BTreeMap<String, Arc<dyn Driver>>,
    /// IPAM plugins activated, by name.
    ipams: BTreeMap<String, Arc<RemoteIpam>>,
    /// Clients of the plugins asked for, by name; their activation is shared.
    plugin_clients: BTreeMap<String, Client>,
    firewall: Firewall,
    dns: Arc<Dns>,
    ipam: Ipam,
    networks: Vec<Network>,
    containers: Vec<Container>,
    ports: PortAllocator,
    ids: Ids,
    /// Its place in a swarm, once it made or joined one.
    swarm: Option<swarm::Membership>,
    /// Killed ([`Engine::kill`]): it answers no more.
    killed: bool,
    /// What it did, for `docker events`.
    events: Arc<Events>,
}

impl Engine {
    /// Starts an engine in the docker host's namespace: the firewall table, and the predefined
    /// networks `bridge` (docker0, 172.17.0.0/16), `host` and `none`. Must run inside a tokio
    /// runtime.
    pub async fn start(host: &Netns, options: Options) -> EngineResult<Engine> {
        if let Some(dir) = &options.state_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::new(format!("cannot create {}: {e}", dir.display())))?;
        }
        let firewall =
            Firewall::start(host).map_err(|e| EngineError::new(format!("firewall: {e}")))?;
        let range = ports::ephemeral_range(host);
        let mut engine = Engine {
            host: host.clone(),
            options,
            drivers: driver::builtins(host)
                .into_iter()
                .map(|d| (d.name().to_string(), d))
                .collect(),
            ipams: BTreeMap::new(),
            plugin_clients: BTreeMap::new(),
            firewall,
            dns: Dns::new(host.clone()),
            ipam: Ipam::new(),
            networks: Vec::new(),
            containers: Vec::new(),
            ports: PortAllocator::new(range),
            ids: Ids::new(),
            swarm: None,
            killed: false,
            events: Arc::default(),
        };
        engine.create_predefined().await?;
        Ok(engine)
    }

    /// The docker host's namespace.
    pub fn host(&self) -> &Netns {
        &self.host
    }

    /// The network with this name, full id or unique id prefix (Docker's lookup order).
    fn network_index(&self, name_or_id: &str) -> EngineResult<usize> {
        if let Some(i) = self.networks.iter().position(|n| n.id == name_or_id) {
            return Ok(i);
        }
        if let Some(i) = self.networks.iter().position(|n| n.name == name_or_id) {
            return Ok(i);
        }
        let prefixed: Vec<usize> = (0..self.networks.len())
            .filter(|&i| !name_or_id.is_empty() && self.networks[i].id.starts_with(name_or_id))
            .collect();
        match prefixed.as_slice() {
            [i] => Ok(*i),
            [] => Err(EngineError::new(format!("network {name_or_id} not found"))),
            many => Err(EngineError::new(format!(
                "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                many.len()
            ))),
        }
    }

    /// The container with this name (with or without `/`), full id or unique id prefix.
    fn container_index(&self, name_or_id: &str) -> EngineResult<usize> {
        let name = name_or_id.trim_start_matches('/');
        if let Some(i) = self
            .containers
            .iter()
            .position(|c| c.id == name_or_id || c.name == name)
        {
            return Ok(i);
        }
        let prefixed: Vec<usize> = (0..self.containers.len())
            .filter(|&i| !name_or_id.is_empty() && self.containers[i].id.starts_with(name_or_id))
            .collect();
        match prefixed.as_slice() {
            [i] => Ok(*i),
            _ => Err(EngineError::new(format!("No such container: {name_or_id}"))),
        }
    }

    /// The names of the containers, in creation order (`docker ps`).
    pub fn container_names(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.name.clone()).collect()
    }

    /// A fresh id, 64 hex digits (an exec instance's).
    pub fn new_id(&mut self) -> String {
        self.ids.id()
    }

    /// The names of the networks, in creation order (`docker network ls`).
    pub fn network_names(&self) -> Vec<String> {
        self.networks.iter().map(|n| n.name.clone()).collect()
    }

    /// Stops every container and removes every network it made (the engine's own teardown;
    /// dropping the namespaces would do the rest).
    pub async fn shutdown(mut self) {
        let names: Vec<String> = self.containers.iter().map(|c| c.name.clone()).collect();
        for name in names {
            let _ = self.remove_container(&name, true).await;
        }
    }
}
