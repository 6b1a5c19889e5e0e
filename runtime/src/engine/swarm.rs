//! Swarm mode: the node this engine is in a swarm (`swarm init`, `join`, `leave`, `info`), over
//! the control plane its options give it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde_json::{Value, json};

use super::{Engine, EngineError, EngineResult, ids};
use crate::api::body::{SwarmInit, SwarmJoin};
use crate::cluster::{Cluster, Lease, NodeRecord, Store, SwarmRecord};
use crate::driver::overlay::{self, Overlay};

/// How the engine reaches a swarm's control plane.
#[derive(Debug, Clone, Default)]
pub enum ControlPlane {
    /// None: `swarm init` and `join` are refused.
    #[default]
    None,
    /// In this process: each swarm's store found by its managers' addresses.
    Hub(Arc<crate::cluster::MemoryHub>),
    /// One store for the swarm this engine makes or joins (etcd, reached from its host).
    Store(Arc<dyn Store>),
}

/// How long a node's lease lives without keepalives through a remote store: a dead node's
/// endpoints go after this (in process, at once).
const LEASE_TTL: Duration = Duration::from_secs(1);

/// The port managers listen on.
const SWARM_PORT: u16 = 2377;

/// An engine's place in a swarm.
#[derive(Debug)]
pub(super) struct Membership {
    pub(super) cluster: Cluster,
    pub(super) swarm: SwarmRecord,
    pub(super) node: NodeRecord,
    /// The node's lease: its records go with it.
    pub(super) lease: Option<Lease>,
    /// The overlay driver (also among the engine's drivers while in the swarm).
    pub(super) overlay: Arc<Overlay>,
    /// Per swarm network on this node, the task keeping it in step with the other nodes.
    pub(super) watchers: BTreeMap<String, tokio::task::JoinHandle<()>>,
}

impl Membership {
    /// The node's lease id.
    pub(super) fn lease(&self) -> crate::cluster::LeaseId {
        self.lease.as_ref().map_or(0, |l| l.id)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        for watcher in self.watchers.values() {
            watcher.abort();
        }
    }
}

/// A node's name among the nodes gossiping about a network: 12 hex digits, as libnetwork's
/// networkdb names itself.
fn gossip_name() -> String {
    format!("{:012x}", fastrand::u64(..1 << 48))
}

/// An id as swarmkit makes them: 25 characters of `[0-9a-z]`.
pub(super) fn swarm_id() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..25)
        .map(|_| DIGITS[fastrand::usize(..DIGITS.len())] as char)
        .collect()
}

/// A join token as swarmkit writes them: `SWMTKN-1-` and 50 characters naming the swarm's CA,
/// then 25 of secret.
fn join_token(ca: &str) -> String {
    format!("SWMTKN-1-{ca}-{}", swarm_id())
}

const NOT_IN_SWARM: &str = "This node is not part of a swarm";
const ALREADY_IN_SWARM: &str = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.";

impl Engine {
    /// `docker info`, as far as networking and swarm mode go.
    pub fn info(&self) -> Value {
        let Some(membership) = &self.swarm else {
            return json!({"Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null}});
        };
        let node = &membership.node;
        json!({
            "Swarm": {
                "NodeID": node.id,
                "NodeAddr": node.addr.to_string(),
                "LocalNodeState": "active",
                "ControlAvailable": node.manager,
                "Error": "",
            },
        })
    }

    /// The address a node advertises: `--advertise-addr` (an address, or an interface whose
    /// first IPv4 address it is; a port is allowed), else the docker host's address towards
    /// `remote` (a manager it joins), else its only one (the engine's own bridges aside).
    async fn advertise_address(&self, given: &str, remote: Option<IpAddr>) -> EngineResult<IpAddr> {
        let given = given.rsplit_once(':').map_or(given, |(address, _)| address);
        if let Ok(ip) = given.parse() {
            return Ok(ip);
        }
        let links = drydock_netsim::link::list(&self.host).await;
        let addresses = drydock_netsim::link::addresses(&self.host).await;
        let (links, addresses) = links
            .and_then(|l| addresses.map(|a| (l, a)))
            .map_err(|e| EngineError::new(format!("reading the host's addresses: {e}")))?;
        let bridges: Vec<&str> = self
            .networks
            .iter()
            .filter_map(|n| n.bridge.as_deref())
            .collect();
        let candidates: Vec<(String, IpNetwork)> = (addresses.into_iter())
            .filter(|(_, a)| a.is_ipv4() && !a.ip().is_loopback())
            .filter_map(|(index, a)| {
                let link = links.iter().find(|l| l.index == index)?;
                (!bridges.contains(&link.name.as_str())).then(|| (link.name.clone(), a))
            })
            .collect();
        if !given.is_empty() {
            return (candidates.iter().find(|(name, _)| name == given))
                .map(|(_, a)| a.ip())
                .ok_or_else(|| {
                    EngineError::new("advertise address must be a non-zero IP address or network interface (with optional port number)")
                });
        }
        let towards = remote.and_then(|r| candidates.iter().find(|(_, a)| a.contains(r)));
        match (towards, candidates.as_slice()) {
            (Some((_, a)), _) | (None, [(_, a)]) => Ok(a.ip()),
            _ if remote.is_some() => Ok(candidates[0].1.ip()),
            _ => Err(EngineError::new(
                "could not choose an IP address to advertise since this system has multiple addresses on different interfaces",
            )),
        }
    }

    /// Becomes node `node` of the swarm in `cluster`: its lease, its record, the overlay
    /// driver, `docker_gwbridge`.
    async fn become_node(
        &mut self,
        cluster: Cluster,
        swarm: SwarmRecord,
        node: NodeRecord,
    ) -> EngineResult<()> {
        let lease = (cluster.store().grant(LEASE_TTL).await)
            .map_err(|e| EngineError::new(format!("control plane: {e}")))?;
        let manager_at = node.manager.then(|| format!("{}:{SWARM_PORT}", node.addr));
        cluster
            .add_node(&node, manager_at.as_deref(), lease.id)
            .await
            .map_err(EngineError::new)?;
        let overlay = Arc::new(Overlay::new(self.host.clone()));
        self.drivers
            .insert(overlay::NAME.to_string(), overlay.clone());
        let addr = node.addr;
        self.swarm = Some(Membership {
            cluster,
            swarm,
            node,
            lease: Some(lease),
            overlay,
            watchers: BTreeMap::new(),
        });
        // libnetwork's agent, once up, tells the drivers of global connectivity of the node.
        let global = (self.drivers.values())
            .filter(|d| d.capabilities().connectivity_scope == crate::driver::Scope::Global);
        for driver in global {
            driver.node_discovered(addr).await;
        }
        self.ensure_gwbridge().await
    }

    /// `docker swarm init`: a new swarm with this node as its manager, and its ingress network.
    pub async fn swarm_init(&mut self, body: &SwarmInit) -> EngineResult<String> {
        if self.swarm.is_some() {
            return Err(EngineError::new(ALREADY_IN_SWARM));
        }
        let addr = self.advertise_address(&body.advertise_addr, None).await?;
        let address = format!("{addr}:{SWARM_PORT}");
        let store: Arc<dyn Store> = match &self.options.control_plane {
            ControlPlane::None => return Err(no_control_plane()),
            ControlPlane::Hub(hub) => hub.create(&address),
            ControlPlane::Store(store) => store.clone(),
        };
        let cluster = Cluster::new(store);
        let ca: String = (0..50)
            .map(|_| char::from(b'a' + fastrand::u8(..26)))
            .collect();
        let swarm = SwarmRecord {
            id: swarm_id(),
            created: ids::now(),
            worker_token: join_token(&ca),
            manager_token: join_token(&ca),
        };
        cluster
            .create_swarm(&swarm)
            .await
            .map_err(EngineError::new)?;
        let node = NodeRecord {
            id: swarm_id(),
            hostname: self.hostname(),
            addr,
            manager: true,
            gossip_name: gossip_name(),
        };
        let id = node.id.clone();
        self.become_node(cluster, swarm, node).await?;
        self.create_ingress().await?;
        self.join_ingress().await?;
        Ok(id)
    }

    /// `docker swarm join`: this node joins the swarm a manager at `RemoteAddrs[0]` leads, as a
    /// worker or a manager as its token says.
    pub async fn swarm_join(&mut self, body: &SwarmJoin) -> EngineResult<()> {
        if self.swarm.is_some() {
            return Err(EngineError::new(ALREADY_IN_SWARM));
        }
        let remote = body.remote_addrs.first().cloned().unwrap_or_default();
        let remote = match remote.contains(':') {
            true => remote,
            false => format!("{remote}:{SWARM_PORT}"),
        };
        let remote_ip = remote.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok());
        let addr = self
            .advertise_address(&body.advertise_addr, remote_ip)
            .await?;
        let unreachable = || {
            EngineError::new(format!(
                "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing dial tcp {remote}: connect: connection refused\""
            ))
        };
        let store: Arc<dyn Store> = match &self.options.control_plane {
            ControlPlane::None => return Err(no_control_plane()),
            ControlPlane::Hub(hub) => hub.find(&remote).ok_or_else(unreachable)?,
            ControlPlane::Store(store) => store.clone(),
        };
        let cluster = Cluster::new(store.clone());
        let swarm = (cluster.swarm().await.map_err(EngineError::new)?).ok_or_else(unreachable)?;
        let manager = match body.join_token.as_str() {
            t if t == swarm.manager_token => true,
            t if t == swarm.worker_token => false,
            _ => {
                return Err(EngineError::new(
                    "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster",
                ));
            }
        };
        let node = NodeRecord {
            id: swarm_id(),
            hostname: self.hostname(),
            addr,
            manager,
            gossip_name: gossip_name(),
        };
        if let (true, ControlPlane::Hub(hub)) = (manager, &self.options.control_plane) {
            let store = hub.find(&remote).ok_or_else(unreachable)?;
            hub.add_address(&format!("{addr}:{SWARM_PORT}"), store);
        }
        self.become_node(cluster, swarm, node).await?;
        self.join_ingress().await
    }

    /// `docker swarm leave`: the node's containers leave the swarm's networks, which go from this
    /// node; its records go with its lease.
    pub async fn swarm_leave(&mut self, force: bool) -> EngineResult<()> {
        let Some(membership) = &self.swarm else {
            return Err(EngineError::new(NOT_IN_SWARM));
        };
        if membership.node.manager && !force {
            return Err(EngineError::new(
                "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. ",
            ));
        }
        self.leave_swarm_networks().await;
        if let Some(mut membership) = self.swarm.take()
            && let Some(lease) = membership.lease.take()
            && let Err(e) = lease.revoke().await
        {
            // Its records lapse with the lease all the same.
            tracing::warn!("revoking the node's lease: {e}");
        }
        self.drivers.remove(overlay::NAME);
        Ok(())
    }

    /// `GET /swarm`: managers only.
    pub fn swarm_inspect(&self) -> EngineResult<Value> {
        let Some(membership) = &self.swarm else {
            return Err(EngineError::new(NOT_IN_SWARM));
        };
        if !membership.node.manager {
            return Err(EngineError::new(
                "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
            ));
        }
        let swarm = &membership.swarm;
        Ok(json!({
            "ID": swarm.id,
            "CreatedAt": swarm.created,
            "JoinTokens": {"Worker": swarm.worker_token, "Manager": swarm.manager_token},
        }))
    }

    /// `GET /nodes` (managers only): the swarm's live nodes as `docker node ls|inspect` read
    /// them (the first manager listed stands as the leader: the control plane has no raft).
    pub async fn swarm_nodes(&self) -> EngineResult<Vec<Value>> {
        self.swarm_inspect()?;
        let Some(membership) = &self.swarm else {
            return Err(EngineError::new(NOT_IN_SWARM));
        };
        let nodes = (membership.cluster.nodes().await)
            .map_err(|e| EngineError::new(format!("control plane: {e}")))?;
        let leader = nodes.iter().find(|n| n.manager).map(|n| n.id.clone());
        Ok(nodes
            .iter()
            .map(|node| {
                let mut json = json!({
                    "ID": node.id,
                    "Spec": {
                        "Role": if node.manager { "manager" } else { "worker" },
                        "Availability": "active",
                    },
                    "Description": {
                        "Hostname": node.hostname,
                        "Engine": {"EngineVersion": "20.10.24"},
                    },
                    "Status": {"State": "ready", "Addr": node.addr.to_string()},
                });
                if node.manager {
                    json["ManagerStatus"] = json!({
                        "Leader": leader.as_deref() == Some(node.id.as_str()),
                        "Reachability": "reachable",
                        "Addr": format!("{}:{SWARM_PORT}", node.addr),
                    });
                }
                json
            })
            .collect())
    }

    /// Dies at once, as a node's daemon killed: every container goes (its namespace with it),
    /// no swarm is left on the way out (the node's lease lapses), and every call after fails
    /// as with a daemon that is not there.
    pub async fn kill(&mut self) {
        self.killed = true;
        if let Some(mut membership) = self.swarm.take() {
            // Dropped, not revoked: a dead node says goodbye to nobody.
            drop(membership.lease.take());
        }
        let names: Vec<String> = self.containers.iter().map(|c| c.name.clone()).collect();
        for name in names {
            let _ = self.remove_container(&name, true).await;
        }
    }

    /// The namespace holding swarm network `network`'s bridge and VXLAN device on this node,
    /// while the network is here (for failure dumps and tests).
    pub fn overlay_sandbox(&self, network: &str) -> Option<drydock_netsim::Netns> {
        let id = &self.networks[self.network_index(network).ok()?].id;
        self.swarm.as_ref()?.overlay.sandbox(id)
    }

    /// Whether [`Engine::kill`] killed it.
    pub fn is_dead(&self) -> bool {
        self.killed
    }

    /// The node's hostname: the docker host's (its UTS name is the machine's: the lab host's
    /// name stands for it).
    pub fn hostname(&self) -> String {
        self.options.hostname.clone()
    }
}

fn no_control_plane() -> EngineError {
    EngineError::new("swarm mode needs a control plane: this engine was started without one")
}
