//! The control plane of swarm mode: what every node of a swarm shares, in a [`Store`] every
//! engine of the swarm reaches: the swarm and its join tokens, its nodes (each alive while its
//! lease is), swarm-scope networks with their subnets and VNIs, the addresses handed out on
//! them, and the endpoints on them (each on its node's lease, so that a dead node's endpoints
//! go with it). Engines watch the endpoints of the networks they have and program their node:
//! VXLAN forwarding entries, neighbours, DNS records.
//!
//! Keys: `swarm`, `nodes/ID`, `managers/ADDR:PORT`, `networks/ID`, `names/NAME`,
//! `subnets/CIDR`, `vnis/VNI`, `ipam/NETWORK/IP`, `ipam/NETWORK/last`, `endpoints/NETWORK/ID`.

#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod etcd;
pub mod ipam;
pub mod memory;
pub mod silence;
pub mod store;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use etcd::EtcdStore;
pub use memory::{MemoryHub, MemoryStore};
pub use store::{Event, Lease, LeaseId, Store, Watch};

/// The first VNI a swarm hands out (the ingress network's); user networks get the next ones.
pub const FIRST_VNI: u32 = 4096;

/// A swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmRecord {
    /// Its id (25 characters, as swarmkit's).
    pub id: String,
    /// When it was made (Docker's timestamp format).
    pub created: String,
    /// The token workers join with.
    pub worker_token: String,
    /// The token managers join with.
    pub manager_token: String,
}

/// A node of the swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its id (25 characters).
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// The address it advertises: where the others reach it, and its VXLAN endpoint.
    pub addr: IpAddr,
    /// A manager (else a worker).
    pub manager: bool,
    /// Its name among the nodes that gossip about a network (12 hex digits): `Peers` in
    /// network inspect.
    pub gossip_name: String,
}

/// A swarm-scope network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Its id.
    pub id: String,
    /// Its name, unique in the swarm.
    pub name: String,
    /// Its driver (`overlay`).
    pub driver: String,
    /// When it was made.
    pub created: String,
    /// Its subnet.
    pub subnet: IpNetwork,
    /// `--ip-range`.
    pub ip_range: Option<IpNetwork>,
    /// Its gateway (the subnet's first host unless given).
    pub gateway: IpAddr,
    /// Its VXLAN id.
    pub vni: u32,
    /// Whether containers may join it with `docker run --network`.
    pub attachable: bool,
    /// `--internal`.
    pub internal: bool,
    /// The swarm's routing-mesh network.
    pub ingress: bool,
    /// `-o`, as given.
    pub options: BTreeMap<String, String>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// Whether the subnet was given (`--subnet`).
    pub user_subnet: bool,
}

/// An endpoint on a swarm-scope network: where its address lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// Its id.
    pub id: String,
    /// Its network's id.
    pub network: String,
    /// The node it is on.
    pub node: String,
    /// That node's VXLAN endpoint address.
    pub vtep: IpAddr,
    /// That node's gossip name.
    pub gossip_name: String,
    /// The name it answers to in DNS: its container's, or `NET-endpoint` for a node's load
    /// balancer.
    pub name: String,
    /// Its container's aliases on the network.
    pub aliases: Vec<String>,
    /// Its address.
    pub ip: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// The node's load balancer endpoint (`lb-NET`), not a container's.
    pub load_balancer: bool,
}

/// What went wrong: Docker's text for a refusal, or the store's failure.
pub type ClusterResult<T> = Result<T, String>;

/// A swarm's shared state, over its store.
#[derive(Debug, Clone)]
pub struct Cluster {
    store: Arc<dyn Store>,
}

fn encode(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> ClusterResult<T> {
    serde_json::from_slice(bytes).map_err(|e| format!("control plane: {key}: {e}"))
}

fn store_error(e: std::io::Error) -> String {
    format!("control plane: {e}")
}

impl Cluster {
    /// The cluster kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> ClusterResult<Option<T>> {
        match self.store.get(key).await.map_err(store_error)? {
            Some(bytes) => decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn read_all<T: DeserializeOwned>(&self, prefix: &str) -> ClusterResult<Vec<T>> {
        let listed = self.store.list(prefix).await.map_err(store_error)?;
        listed.iter().map(|(k, v)| decode(k, v)).collect()
    }

    /// Writes `value` at `key` unless something is there; true when it did.
    async fn claim(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> ClusterResult<bool> {
        self.store
            .swap(key, None, value, lease)
            .await
            .map_err(store_error)
    }

    /// The swarm, once made.
    pub async fn swarm(&self) -> ClusterResult<Option<SwarmRecord>> {
        self.read("swarm").await
    }

    /// Makes the swarm (its record) unless there is one.
    pub async fn create_swarm(&self, swarm: &SwarmRecord) -> ClusterResult<()> {
        match self.claim("swarm", encode(swarm), None).await? {
            true => Ok(()),
            false => Err("This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.".into()),
        }
    }

    /// Registers `node` for as long as `lease` lives; a manager also at its listen address.
    pub async fn add_node(
        &self,
        node: &NodeRecord,
        manager_at: Option<&str>,
        lease: LeaseId,
    ) -> ClusterResult<()> {
        let key = format!("nodes/{}", node.id);
        (self.store.put(&key, encode(node), Some(lease)).await).map_err(store_error)?;
        if let Some(address) = manager_at {
            let key = format!("managers/{address}");
            (self
                .store
                .put(&key, node.id.clone().into_bytes(), Some(lease))
                .await)
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// The nodes alive now.
    pub async fn nodes(&self) -> ClusterResult<Vec<NodeRecord>> {
        self.read_all("nodes/").await
    }

    /// The swarm-scope networks.
    pub async fn networks(&self) -> ClusterResult<Vec<NetworkRecord>> {
        self.read_all("networks/").await
    }

    /// The network with this name, full id or unique id prefix.
    pub async fn network(&self, name_or_id: &str) -> ClusterResult<Option<NetworkRecord>> {
        let networks = self.networks().await?;
        if let Some(n) = networks
            .iter()
            .find(|n| n.id == name_or_id || n.name == name_or_id)
        {
            return Ok(Some(n.clone()));
        }
        let mut prefixed = networks
            .into_iter()
            .filter(|n| n.id.starts_with(name_or_id));
        match (prefixed.next(), prefixed.next()) {
            (Some(one), None) if !name_or_id.is_empty() => Ok(Some(one)),
            _ => Ok(None),
        }
    }

    /// Makes a swarm-scope network: its name (unique), its subnet (the given one, or the next
    /// free /24 of 10.0.0.0/8), its VNI (the next free one from [`FIRST_VNI`]), its gateway.
    /// Undoes its claims when a later one fails.
    pub async fn create_network(&self, mut network: NetworkRecord) -> ClusterResult<NetworkRecord> {
        let name_key = format!("names/{}", network.name);
        if !self
            .claim(&name_key, network.id.clone().into_bytes(), None)
            .await?
        {
            return Err(format!("network with name {} already exists", network.name));
        }
        let made = self.allocate_network(&mut network).await;
        if let Err(e) = made {
            let _ = self.store.delete(&name_key).await;
            return Err(e);
        }
        let key = format!("networks/{}", network.id);
        (self.store.put(&key, encode(&network), None).await).map_err(store_error)?;
        Ok(network)
    }

    /// The subnet and VNI of a network being made (its `subnet` when user given).
    async fn allocate_network(&self, network: &mut NetworkRecord) -> ClusterResult<()> {
        let id = network.id.clone().into_bytes();
        if network.user_subnet {
            let taken = self.read_all_keys("subnets/").await?;
            let overlaps = taken
                .iter()
                .filter_map(|k| k.parse::<IpNetwork>().ok())
                .any(|s| {
                    s.contains(network.subnet.network()) || network.subnet.contains(s.network())
                });
            if overlaps
                || !self
                    .claim(&format!("subnets/{}", network.subnet), id.clone(), None)
                    .await?
            {
                return Err("Pool overlaps with other one on this address space".into());
            }
        } else {
            let mut index = 0;
            network.subnet = loop {
                let subnet = ipam::default_subnet(index)
                    .ok_or("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")?;
                if self
                    .claim(&format!("subnets/{subnet}"), id.clone(), None)
                    .await?
                {
                    break subnet;
                }
                index += 1;
            };
            network.gateway = ipam::first_host(network.subnet).expect("a /24 has hosts");
        }
        let mut vni = FIRST_VNI;
        while !self.claim(&format!("vnis/{vni}"), id.clone(), None).await? {
            vni += 1;
        }
        network.vni = vni;
        self.claim(
            &format!("ipam/{}/{}", network.id, network.gateway),
            b"gateway".to_vec(),
            None,
        )
        .await?;
        Ok(())
    }

    async fn read_all_keys(&self, prefix: &str) -> ClusterResult<Vec<String>> {
        let listed = self.store.list(prefix).await.map_err(store_error)?;
        Ok(listed
            .into_iter()
            .map(|(k, _)| k[prefix.len()..].to_string())
            .collect())
    }

    /// Removes a swarm-scope network, unless an endpoint is on it somewhere.
    pub async fn remove_network(&self, network: &NetworkRecord) -> ClusterResult<()> {
        if !self
            .endpoints(&network.id)
            .await?
            .iter()
            .all(|e| e.load_balancer)
        {
            return Err(format!(
                "rpc error: code = FailedPrecondition desc = network {} is in use by task",
                network.id
            ));
        }
        for prefix in [
            format!("ipam/{}/", network.id),
            format!("endpoints/{}/", network.id),
        ] {
            for key in self.read_all_keys(&prefix).await? {
                let _ = self.store.delete(&format!("{prefix}{key}")).await;
            }
        }
        for key in [
            format!("networks/{}", network.id),
            format!("names/{}", network.name),
            format!("subnets/{}", network.subnet),
            format!("vnis/{}", network.vni),
        ] {
            self.store.delete(&key).await.map_err(store_error)?;
        }
        Ok(())
    }

    /// An address of `network` for `owner`: `wanted`, or the next one in turn.
    pub async fn allocate_address(
        &self,
        network: &NetworkRecord,
        wanted: Option<IpAddr>,
        owner: &str,
    ) -> ClusterResult<IpAddr> {
        let prefix = format!("ipam/{}/", network.id);
        if let Some(ip) = wanted {
            if !network.subnet.contains(ip) {
                return Err(format!(
                    "no available IPv4 addresses on this network's address pools: {} ({})",
                    network.name, network.id
                ));
            }
            return match self
                .claim(&format!("{prefix}{ip}"), owner.as_bytes().to_vec(), None)
                .await?
            {
                true => Ok(ip),
                false => Err("Address already in use".to_string()),
            };
        }
        let candidates = ipam::host_addresses(network.subnet, network.ip_range);
        loop {
            let last_key = format!("{prefix}last");
            let last_bytes = self.store.get(&last_key).await.map_err(store_error)?;
            let last = last_bytes
                .as_deref()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|t| t.parse().ok());
            let taken: Vec<IpAddr> = (self.read_all_keys(&prefix).await?.into_iter())
                .filter_map(|k| k.parse().ok())
                .collect();
            let ip =
                ipam::next_address(&candidates, |a| taken.contains(a), last).ok_or_else(|| {
                    format!(
                        "no available IPv4 addresses on this network's address pools: {} ({})",
                        network.name, network.id
                    )
                })?;
            if self
                .claim(&format!("{prefix}{ip}"), owner.as_bytes().to_vec(), None)
                .await?
            {
                // Whoever moves the cursor last wins: a lost race only means a later start.
                let _ = self
                    .store
                    .put(&last_key, ip.to_string().into_bytes(), None)
                    .await;
                return Ok(ip);
            }
        }
    }

    /// Gives an address of `network` back.
    pub async fn release_address(&self, network: &str, ip: IpAddr) -> ClusterResult<()> {
        (self.store.delete(&format!("ipam/{network}/{ip}")).await).map_err(store_error)
    }

    /// Publishes an endpoint for as long as `lease` (its node's) lives.
    pub async fn add_endpoint(
        &self,
        endpoint: &EndpointRecord,
        lease: LeaseId,
    ) -> ClusterResult<()> {
        let key = format!("endpoints/{}/{}", endpoint.network, endpoint.id);
        (self.store.put(&key, encode(endpoint), Some(lease)).await).map_err(store_error)
    }

    /// Withdraws an endpoint.
    pub async fn remove_endpoint(&self, network: &str, endpoint: &str) -> ClusterResult<()> {
        (self
            .store
            .delete(&format!("endpoints/{network}/{endpoint}"))
            .await)
            .map_err(store_error)
    }

    /// The endpoints on `network`, on every node.
    pub async fn endpoints(&self, network: &str) -> ClusterResult<Vec<EndpointRecord>> {
        self.read_all(&format!("endpoints/{network}/")).await
    }

    /// Watches the endpoints on `network`.
    pub async fn watch_endpoints(&self, network: &str) -> ClusterResult<Watch> {
        (self.store.watch(&format!("endpoints/{network}/")).await).map_err(store_error)
    }

    /// Decodes an endpoint of a watch.
    pub fn endpoint_of(key: &str, value: &[u8]) -> ClusterResult<EndpointRecord> {
        decode(key, value)
    }
}
