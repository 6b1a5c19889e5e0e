//! Swarm-scope networks on this node: made through the control plane on a manager, brought here
//! when a container attaches, kept in step with the other nodes' endpoints (VXLAN peers, DNS)
//! by a watch, and `docker_gwbridge`, the way out of containers that have only overlays.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::model::{Network, NodeEndpoint, Remote, SwarmNetwork, UserSubnets};
use super::pools::Pools;
use super::{Engine, EngineError, EngineResult, ids};
use crate::api::body::NetworkCreate;
use crate::cluster::{Cluster, EndpointRecord, Event, NetworkRecord};
use crate::dns::{Dns, Entry};
use crate::driver::overlay::{self, Overlay, Peer};
use crate::driver::{IpamData, NetworkRequest};

/// The bridge that gives containers on overlays their way out (and published ports).
pub(super) const GWBRIDGE: &str = "docker_gwbridge";
/// The swarm's routing-mesh sandbox on every node.
const INGRESS_SANDBOX: &str = "ingress-sbox";

/// An endpoint's MAC as Docker derives it from its IPv4 address.
fn mac_of(address: IpNetwork) -> [u8; 6] {
    crate::driver::bridge::elect_mac(&crate::driver::Interface {
        addresses: vec![address],
        mac: None,
    })
}

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

impl Engine {
    /// The swarm this node is in, or Docker's refusal of what needs one.
    pub(super) fn membership(&self) -> EngineResult<&super::swarm::Membership> {
        self.swarm
            .as_ref()
            .ok_or_else(|| EngineError::new(NOT_A_MANAGER))
    }

    /// This node, when it is a swarm manager; else Docker's refusal of a swarm network made
    /// here.
    pub(super) fn swarm_manager(&self) -> EngineResult<()> {
        match self.membership()?.node.manager {
            true => Ok(()),
            false => Err(EngineError::new(
                "Cannot create a multi-host network from a worker node. Please create the network from a manager node.",
            )),
        }
    }

    /// `docker network create -d overlay` (managers only): made in the control plane, then
    /// here.
    pub(super) async fn create_swarm_network(
        &mut self,
        body: &NetworkCreate,
    ) -> EngineResult<String> {
        let id = super::swarm::swarm_id();
        self.swarm_manager()?;
        self.check_swarm_ipam(&body.ipam.driver).await?;
        let config = body.ipam.config.first().cloned().unwrap_or_default();
        let parse = |text: Option<&str>| -> EngineResult<Option<IpNetwork>> {
            text.filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse()
                        .map_err(|_| EngineError::new(format!("invalid CIDR address: {t}")))
                })
                .transpose()
        };
        let subnet = parse(config.subnet.as_deref())?;
        let gateway = match (config.gateway.as_deref(), subnet) {
            (Some(g), _) if !g.is_empty() => g
                .parse()
                .map_err(|_| EngineError::new(format!("ParseAddr(\"{g}\"): unable to parse IP")))?,
            (_, Some(subnet)) => crate::cluster::ipam::first_host(subnet)
                .ok_or_else(|| EngineError::new(format!("subnet {subnet} has no host address")))?,
            _ => IpAddr::from([0, 0, 0, 0]),
        };
        let record = NetworkRecord {
            id: id.clone(),
            name: body.name.clone(),
            driver: overlay::NAME.into(),
            created: ids::now(),
            subnet: subnet.unwrap_or_else(|| IpNetwork::from(IpAddr::from([0, 0, 0, 0]))),
            ip_range: parse(config.ip_range.as_deref())?,
            gateway,
            vni: 0,
            attachable: body.attachable,
            internal: body.internal,
            ingress: body.ingress,
            options: body.options.clone(),
            labels: body.labels.clone(),
            user_subnet: subnet.is_some(),
        };
        let cluster = self.membership()?.cluster.clone();
        let record = (cluster.create_network(record).await).map_err(EngineError::new)?;
        if !record.ingress
            && let Err(e) = self.instantiate(record.clone()).await
        {
            // Nothing of a network this node could not make stays in the swarm.
            let _ = cluster.remove_network(&record).await;
            return Err(e);
        }
        Ok(id)
    }

    /// The swarm's ingress network, made with the swarm (its record: each node brings it here
    /// with [`Engine::join_ingress`]).
    pub(super) async fn create_ingress(&mut self) -> EngineResult<()> {
        let body = NetworkCreate {
            name: "ingress".into(),
            ingress: true,
            ..NetworkCreate::default()
        };
        self.create_swarm_network(&body).await.map(drop)
    }

    /// Brings swarm network `name` to this node for a container to attach: its record from the
    /// control plane (attachable ones only), its datapath, its watch. The local network's index.
    pub(super) async fn attach_swarm_network(&mut self, name: &str) -> EngineResult<usize> {
        let membership = self.membership()?;
        let record = (membership.cluster.network(name).await).map_err(EngineError::new)?;
        let Some(record) = record else {
            return Err(EngineError::new(format!("network {name} not found")));
        };
        if !record.attachable {
            return Err(EngineError::new(format!(
                "Could not attach to network {name}: rpc error: code = PermissionDenied desc = network {name} not manually attachable"
            )));
        }
        self.instantiate(record).await
    }

    /// Makes swarm network `record` a network of this node: the overlay driver's network (its
    /// sandbox, bridge and VXLAN device) and the watch that programs its peers.
    async fn instantiate(&mut self, record: NetworkRecord) -> EngineResult<usize> {
        let driver = self.driver(overlay::NAME)?;
        let mut options = record.options.clone();
        options.insert(overlay::VXLAN_ID_LIST.into(), record.vni.to_string());
        let request = NetworkRequest {
            id: record.id.clone(),
            options: options.clone(),
            pools: vec![IpamData {
                subnet: record.subnet,
                gateway: IpNetwork::new(record.gateway, record.subnet.prefix()).ok(),
            }],
            address_space: super::pools::GLOBAL_DEFAULT.into(),
            internal: record.internal,
            ipv6: false,
        };
        if !record.ingress {
            (driver.create_network(&request).await).map_err(|e| EngineError::new(e.to_string()))?;
        }
        let membership = self.swarm.as_mut().expect("instantiated in a swarm");
        let remote = Remote::default();
        let watcher = tokio::spawn(keep_in_step(
            membership.cluster.clone(),
            record.id.clone(),
            membership.node.id.clone(),
            membership.overlay.clone(),
            self.dns.clone(),
            remote.clone(),
        ));
        if let Some(old) = membership.watchers.insert(record.id.clone(), watcher) {
            old.abort();
        }
        self.networks.push(Network {
            id: record.id.clone(),
            name: record.name.clone(),
            driver,
            created: record.created.clone(),
            internal: record.internal,
            attachable: record.attachable,
            ipv6: false,
            options,
            labels: record.labels.clone(),
            pools: Pools::BuiltIn(Vec::new()),
            ipam: Default::default(),
            user_subnets: UserSubnets {
                v4: record.user_subnet,
                v6: false,
            },
            show_gateway: true,
            bridge: None,
            default_bridge: false,
            swarm: Some(SwarmNetwork { record, remote }),
            node_endpoints: Vec::new(),
        });
        Ok(self.networks.len() - 1)
    }

    /// An address on swarm network `n` for `owner`: the one wanted, or the next in turn.
    pub(super) async fn allocate_swarm_address(
        &mut self,
        n: usize,
        wanted: Option<IpAddr>,
        owner: &str,
    ) -> EngineResult<IpNetwork> {
        let record = &self.networks[n]
            .swarm
            .as_ref()
            .expect("a swarm network")
            .record;
        let cluster = &self.membership()?.cluster;
        let ip =
            (cluster.allocate_address(record, wanted, owner).await).map_err(EngineError::new)?;
        Ok(IpNetwork::new(ip, record.subnet.prefix()).expect("an address in its subnet"))
    }

    /// This node's load balancer endpoint on swarm network `n` (`lb-NAME`, named
    /// `NAME-endpoint`), made right after the first container here got its address.
    pub(super) async fn ensure_load_balancer(&mut self, n: usize) -> EngineResult<()> {
        let name = self.networks[n].name.clone();
        self.ensure_node_endpoint(n, format!("lb-{name}"), format!("{name}-endpoint"))
            .await
    }

    /// An endpoint of this node on swarm network `n` that belongs to no container, unless it
    /// has it: an address in turn, told to the other nodes.
    async fn ensure_node_endpoint(
        &mut self,
        n: usize,
        key: String,
        name: String,
    ) -> EngineResult<()> {
        if self.networks[n].node_endpoints.iter().any(|e| e.key == key) {
            return Ok(());
        }
        let address = self.allocate_swarm_address(n, None, &key).await?;
        let endpoint_id = self.ids.id();
        let mac = mac_of(address);
        self.publish_endpoint(
            n,
            &endpoint_id,
            name.clone(),
            Vec::new(),
            address.ip(),
            mac,
            true,
        )
        .await?;
        self.networks[n].node_endpoints.push(NodeEndpoint {
            key,
            name,
            endpoint_id,
            address,
            mac,
        });
        Ok(())
    }

    /// The swarm's ingress network on this node, with its `ingress-sbox` endpoint (named
    /// `ingress-endpoint`) and that sandbox's way out, `gateway_ingress-sbox` on
    /// `docker_gwbridge`: addresses only, as no service runs here to use them.
    pub(super) async fn join_ingress(&mut self) -> EngineResult<()> {
        let membership = self.membership()?;
        let record = (membership.cluster.network("ingress").await).map_err(EngineError::new)?;
        let Some(record) = record else {
            return Ok(());
        };
        let gwbridge = self.network_index(GWBRIDGE)?;
        let Pools::BuiltIn(pools) = &self.networks[gwbridge].pools else {
            return Err(EngineError::new(
                "docker_gwbridge has the built-in IPAM's pools",
            ));
        };
        let pool = pools[0];
        let ip =
            (self.ipam.request_address(pool, None)).map_err(|e| EngineError::new(e.to_string()))?;
        let address =
            IpNetwork::new(ip, self.ipam.pool(pool).subnet.prefix()).expect("in its pool");
        let endpoint = NodeEndpoint {
            key: INGRESS_SANDBOX.into(),
            name: format!("gateway_{INGRESS_SANDBOX}"),
            endpoint_id: self.ids.id(),
            address,
            mac: mac_of(address),
        };
        self.networks[gwbridge].node_endpoints.push(endpoint);
        let n = self.instantiate(record).await?;
        self.ensure_node_endpoint(n, INGRESS_SANDBOX.into(), "ingress-endpoint".into())
            .await
    }

    /// Tells the other nodes about an endpoint of swarm network `n` on this node.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn publish_endpoint(
        &self,
        n: usize,
        endpoint_id: &str,
        name: String,
        aliases: Vec<String>,
        ip: IpAddr,
        mac: [u8; 6],
        load_balancer: bool,
    ) -> EngineResult<()> {
        let membership = self.membership()?;
        let record = EndpointRecord {
            id: endpoint_id.to_string(),
            network: self.networks[n].id.clone(),
            node: membership.node.id.clone(),
            vtep: membership.node.addr,
            gossip_name: membership.node.gossip_name.clone(),
            name,
            aliases,
            ip,
            mac,
            load_balancer,
        };
        let cluster = &membership.cluster;
        (cluster.add_endpoint(&record, membership.lease()).await).map_err(EngineError::new)
    }

    /// Withdraws an endpoint of swarm network `network` and gives its address back; when it
    /// was the last container's here, the network leaves this node (its load balancer, its
    /// datapath, its watch), as in Docker.
    pub(super) async fn withdraw_endpoint(
        &mut self,
        network: &str,
        endpoint_id: &str,
        address: Option<IpAddr>,
    ) {
        let Some(membership) = &self.swarm else {
            return;
        };
        let cluster = membership.cluster.clone();
        if let Err(e) = cluster.remove_endpoint(network, endpoint_id).await {
            tracing::warn!("withdrawing endpoint {endpoint_id}: {e}");
        }
        if let Some(ip) = address
            && let Err(e) = cluster.release_address(network, ip).await
        {
            tracing::warn!("releasing {ip} on {network}: {e}");
        }
        let in_use = self
            .containers
            .iter()
            .any(|c| c.endpoints.contains_key(network));
        if !in_use {
            self.release_swarm_network(network).await;
        }
    }

    /// Takes swarm network `network` off this node: its load balancer endpoint, its datapath,
    /// its watch and its entry (the control plane keeps the network).
    async fn release_swarm_network(&mut self, network: &str) {
        let Some(index) = self
            .networks
            .iter()
            .position(|n| n.id == network && n.swarm.is_some())
        else {
            return;
        };
        let removed = self.networks.remove(index);
        if let Some(membership) = &mut self.swarm {
            if let Some(watcher) = membership.watchers.remove(network) {
                watcher.abort();
            }
            let cluster = membership.cluster.clone();
            for endpoint in &removed.node_endpoints {
                let _ = cluster
                    .remove_endpoint(network, &endpoint.endpoint_id)
                    .await;
                let _ = cluster
                    .release_address(network, endpoint.address.ip())
                    .await;
            }
        }
        self.dns.set_remote(network, Vec::new());
        if let Err(e) = removed.driver.delete_network(network).await {
            tracing::warn!("deleting overlay network {network}: {e}");
        }
    }

    /// Every container leaves the swarm's networks, which leave this node (`swarm leave`): a
    /// container keeps running, without them (nor its way out through `docker_gwbridge`).
    pub(super) async fn leave_swarm_networks(&mut self) {
        let swarm_networks: Vec<String> = (self.networks.iter())
            .filter(|n| n.swarm.is_some())
            .map(|n| n.id.clone())
            .collect();
        let gwbridge = self
            .network_index(GWBRIDGE)
            .ok()
            .map(|n| self.networks[n].id.clone());
        // By name too: a container made before its swarm network came here names it so.
        let names: Vec<String> = (self.networks.iter())
            .filter(|n| n.swarm.is_some())
            .map(|n| n.name.clone())
            .collect();
        for index in 0..self.containers.len() {
            let on_swarm = |n: &String| swarm_networks.contains(n) || names.contains(n);
            let leaving: Vec<String> = (self.containers[index].endpoints.keys())
                .filter(|n| on_swarm(n) || gwbridge.as_ref() == Some(*n))
                .cloned()
                .collect();
            for network in &leaving {
                self.remove_endpoint(index, network).await;
            }
            (self.containers[index].attachments).retain(|(n, _)| !on_swarm(n));
            if !leaving.is_empty() {
                let _ = self.route_and_publish(index).await;
            }
        }
        for network in &swarm_networks {
            self.release_swarm_network(network).await;
        }
        self.refresh_dns();
    }

    /// `docker_gwbridge`, as the daemon makes it when it joins a swarm: a bridge network of the
    /// local pools, without ICC, masqueraded.
    pub(super) async fn ensure_gwbridge(&mut self) -> EngineResult<()> {
        if self.networks.iter().any(|n| n.name == GWBRIDGE) {
            return Ok(());
        }
        let options: BTreeMap<String, String> = [
            (crate::driver::bridge::BRIDGE_NAME, GWBRIDGE),
            ("com.docker.network.bridge.enable_icc", "false"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = NetworkCreate {
            name: GWBRIDGE.into(),
            driver: "bridge".into(),
            options,
            ..NetworkCreate::default()
        };
        let driver = self.driver(crate::driver::bridge::NAME)?;
        self.add_network(&body, driver, false).await.map(drop)
    }
}

/// Keeps this node in step with the other nodes' endpoints on swarm network `network`: each is
/// a VXLAN peer (forwarding entry, neighbour) and a DNS entry here while its record lives.
async fn keep_in_step(
    cluster: Cluster,
    network: String,
    node: String,
    overlay: Arc<Overlay>,
    dns: Arc<Dns>,
    shared: Remote,
) {
    let mut watch = match cluster.watch_endpoints(&network).await {
        Ok(watch) => watch,
        Err(e) => {
            tracing::error!("watching the endpoints of {network}: {e}");
            return;
        }
    };
    let mut remote: BTreeMap<String, EndpointRecord> = BTreeMap::new();
    let changes = std::mem::take(&mut watch.current)
        .into_iter()
        .map(|(key, value)| Event::Put { key, value });
    let mut pending: Vec<Event> = changes.collect();
    loop {
        for event in pending.drain(..) {
            apply(&event, &network, &node, &overlay, &mut remote).await;
        }
        dns.set_remote(&network, dns_entries(&remote));
        shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone_from(&remote);
        match watch.events.recv().await {
            Some(event) => pending.push(event),
            None => return,
        }
        while let Ok(event) = watch.events.try_recv() {
            pending.push(event);
        }
    }
}

/// One change of the endpoints on `network` as this node sees it: another node's endpoint
/// becomes (or stops being) a VXLAN peer.
async fn apply(
    event: &Event,
    network: &str,
    node: &str,
    overlay: &Overlay,
    remote: &mut BTreeMap<String, EndpointRecord>,
) {
    let peer = |e: &EndpointRecord| Peer {
        ip: e.ip,
        mac: e.mac,
        vtep: e.vtep,
    };
    match event {
        Event::Put { key, value } => {
            let endpoint = match Cluster::endpoint_of(key, value) {
                Ok(endpoint) if endpoint.node != node => endpoint,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!("{e}");
                    return;
                }
            };
            if let Err(e) = overlay.peer_add(network, peer(&endpoint)).await {
                tracing::warn!("peer {} on {network}: {e}", endpoint.ip);
            }
            remote.insert(key.clone(), endpoint);
        }
        Event::Delete { key } => {
            if let Some(endpoint) = remote.remove(key)
                && let Err(e) = overlay.peer_delete(network, peer(&endpoint)).await
            {
                tracing::warn!("peer {} on {network}: {e}", endpoint.ip);
            }
        }
    }
}

/// The other nodes' containers on a network, as DNS entries (load balancers have no name).
fn dns_entries(remote: &BTreeMap<String, EndpointRecord>) -> Vec<Entry> {
    (remote.values())
        .filter(|e| !e.load_balancer)
        .map(|e| Entry {
            name: e.name.clone(),
            aliases: e.aliases.clone(),
            ip4: match e.ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            },
            ip6: match e.ip {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            },
        })
        .collect()
}
