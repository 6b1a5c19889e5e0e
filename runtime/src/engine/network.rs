//! Networks: the predefined ones, `network create`, `network rm`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::ids;
use super::model::{Network, UserSubnets};
use super::pools::Pools;
use super::{Engine, EngineError, EngineResult};
use crate::api::body::NetworkCreate;
use crate::api::filter::PREDEFINED;
use crate::driver::bridge::{self, BRIDGE_NAME, MTU};
use crate::driver::{Driver, NetworkRequest, Scope, special};
use crate::firewall::NetworkRules;
use crate::plugin::client::Client;
use crate::plugin::{IPAM_DRIVER, NETWORK_DRIVER, RemoteDriver, RemoteIpam};

/// Options of the bridge driver that the engine's firewall applies.
/// The option inspect shows with what carries a network's traffic, when its driver has a
/// choice between kernel links and a userspace datapath.
pub(crate) const DATAPATH: &str = "drydock.datapath";
const ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";
const ENABLE_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";

impl Engine {
    /// `bridge` (docker0 on 172.17.0.0/16), `host` and `none`, as a fresh dockerd has them.
    pub(super) async fn create_predefined(&mut self) -> EngineResult<()> {
        let options: BTreeMap<String, String> = [
            ("com.docker.network.bridge.default_bridge", "true"),
            (ENABLE_ICC, "true"),
            (ENABLE_MASQUERADE, "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            (BRIDGE_NAME, "docker0"),
            (MTU, "1500"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = NetworkCreate {
            name: "bridge".into(),
            driver: "bridge".into(),
            options,
            ..NetworkCreate::default()
        };
        self.add_network(&body, self.driver(bridge::NAME)?, true)
            .await?;
        for (name, driver) in [("host", special::HOST), ("none", special::NULL)] {
            let body = NetworkCreate {
                name: name.into(),
                driver: driver.into(),
                ..NetworkCreate::default()
            };
            self.add_network(&body, self.driver(driver)?, false).await?;
        }
        Ok(())
    }

    /// `docker network create`; returns the network's id.
    pub async fn create_network(&mut self, body: &NetworkCreate) -> EngineResult<String> {
        if PREDEFINED.contains(&body.name.as_str()) {
            return Err(EngineError::new(format!(
                "operation is not permitted on predefined {} network ",
                body.name
            )));
        }
        if self.networks.iter().any(|n| n.name == body.name) {
            return Err(EngineError::new(format!(
                "network with name {} already exists",
                body.name
            )));
        }
        let driver = match body.driver.as_str() {
            "" => bridge::NAME,
            name => name,
        };
        if driver == crate::driver::overlay::NAME {
            return self.create_swarm_network(body).await;
        }
        let driver = self.load_driver(driver).await?;
        if driver.capabilities().data_scope == crate::driver::Scope::Global {
            // dockerd hands a global-scope driver's networks to the swarm's managers, whose
            // swarmkit takes managed (v2) plugins only; every plugin this engine finds is v1.
            self.swarm_manager()?;
            return Err(legacy_in_swarm(driver.name(), NETWORK_DRIVER));
        }
        let id = self.add_network(body, driver, false).await?;
        self.network_event(self.networks.len() - 1, "create", &[]);
        Ok(id)
    }

    /// The driver named `name`: a built-in, or a network plugin found in the engine's plugin
    /// folders, activated and kept (as dockerd keeps a plugin it registered).
    async fn load_driver(&mut self, name: &str) -> EngineResult<Arc<dyn Driver>> {
        if let Some(driver) = self.drivers.get(name) {
            return Ok(driver.clone());
        }
        let client = self.plugin_client(name)?;
        let driver = match RemoteDriver::activate(name, client, self.host.clone()).await {
            Ok(driver) => Arc::new(driver),
            Err(e) => {
                tracing::warn!("plugin {name}: {}", e.cause());
                return Err(EngineError::new(e.to_string()));
            }
        };
        self.drivers.insert(name.to_string(), driver.clone());
        if let Some(membership) = &self.swarm {
            driver.node_discovered(membership.node.addr).await;
            if membership.node.manager {
                driver.register_with_allocator().await;
            }
        }
        Ok(driver)
    }

    /// The IPAM plugin named `name` (none for the engine's own: `default` and `null`), found in
    /// the engine's plugin folders, activated and registered, and kept (as dockerd keeps it).
    async fn load_ipam(&mut self, name: &str) -> EngineResult<Option<Arc<RemoteIpam>>> {
        if is_engine_ipam(name) {
            return Ok(None);
        }
        if let Some(ipam) = self.ipams.get(name) {
            return Ok(Some(ipam.clone()));
        }
        let client = self.plugin_client(name)?;
        let ipam = match RemoteIpam::activate(name, client).await {
            Ok(ipam) => Arc::new(ipam),
            Err(e) => {
                tracing::warn!("IPAM plugin {name}: {}", e.cause());
                return Err(EngineError::new(e.to_string()));
            }
        };
        self.ipams.insert(name.to_string(), ipam.clone());
        Ok(Some(ipam))
    }

    /// Plugin `name`'s client: the one kept since it was activated (dockerd's plugin registry
    /// activates a plugin once), else a new one of what the plugin folders give for the name.
    fn plugin_client(&mut self, name: &str) -> EngineResult<Client> {
        if let Some(client) = self.plugin_clients.get(name).filter(|c| c.activated()) {
            return Ok(client.clone());
        }
        let address =
            (self.options.plugins.find(name)).map_err(|e| EngineError::new(e.to_string()))?;
        let client = Client::new(address, self.options.plugin_patience);
        self.plugin_clients.insert(name.to_string(), client.clone());
        Ok(client)
    }

    /// What swarmkit says of a swarm network's IPAM driver `name` (`validateDriver`): the
    /// default is fine; a plugin it cannot find as an IPAM driver is an error of lookup, and
    /// one it finds is a v1 plugin, which swarm mode refuses.
    pub(super) async fn check_swarm_ipam(&mut self, name: &str) -> EngineResult<()> {
        // swarmkit knows the default IPAM only: even null is looked up as a plugin.
        if matches!(name, "" | "default") {
            return Ok(());
        }
        let found = match self.plugin_client(name) {
            Ok(client) => client.activate(IPAM_DRIVER).await.is_ok(),
            Err(_) => false,
        };
        match found {
            true => Err(legacy_in_swarm(name, IPAM_DRIVER)),
            false => Err(EngineError::new(format!(
                "rpc error: code = InvalidArgument desc = error during lookup of plugin {name}"
            ))),
        }
    }

    /// The driver named `name`, with Docker's text for one there is not.
    pub(super) fn driver(&self, name: &str) -> EngineResult<Arc<dyn Driver>> {
        (self.drivers.get(name).cloned())
            .ok_or_else(|| EngineError::new(format!("plugin \"{name}\" not found")))
    }

    /// Creates a network: the bridge options the firewall applies, IPAM pools (none for host
    /// and null), the driver's network, the firewall's sets. Undoes what it did when a later
    /// step fails.
    pub(super) async fn add_network(
        &mut self,
        body: &NetworkCreate,
        driver: Arc<dyn Driver>,
        default_bridge: bool,
    ) -> EngineResult<String> {
        let id = self.ids.id();
        // Bridge options that the engine's firewall applies to the bridge the driver makes.
        let (icc, masquerade) = if driver.name() == bridge::NAME {
            (
                bool_option(&body.options, ENABLE_ICC, true)?,
                bool_option(&body.options, ENABLE_MASQUERADE, true)? && !body.internal,
            )
        } else {
            (true, false)
        };
        // Host and null networks have no addresses: no IPAM is asked (libnetwork).
        let pools = if special::is_special(driver.name()) {
            Pools::BuiltIn(Vec::new())
        } else {
            let plugin = self.load_ipam(&body.ipam.driver).await?;
            let local = driver.capabilities().data_scope == Scope::Local;
            let bridge = driver.name() == bridge::NAME;
            self.allocate_pools(body, bridge, local, plugin).await?
        };
        let request = NetworkRequest {
            id: id.clone(),
            options: body.options.clone(),
            internal: body.internal,
            ipv6: body.enable_ipv6,
            pools: pools.ipam_data(&self.ipam),
            address_space: pools.address_space(driver.capabilities().data_scope == Scope::Local),
        };
        let info = match driver.create_network(&request).await {
            Ok(info) => info,
            Err(e) => {
                self.release_pools(&pools).await;
                return Err(EngineError::new(e.to_string()));
            }
        };
        if let Some(bridge) = &info.bridge {
            let rules = NetworkRules {
                bridge: bridge.clone(),
                subnets: request.pools.iter().map(|p| p.subnet).collect(),
                internal: body.internal,
                icc,
                masquerade,
            };
            if let Err(e) = self.firewall.add_network(&rules) {
                let _ = driver.delete_network(&id).await;
                self.release_pools(&pools).await;
                return Err(EngineError::new(format!("firewall: {e}")));
            }
        }
        let mut options = body.options.clone();
        if let Some(datapath) = info.datapath {
            options.insert(DATAPATH.to_string(), datapath);
        }
        self.networks.push(Network {
            id: id.clone(),
            name: body.name.clone(),
            driver,
            created: ids::now(),
            internal: body.internal,
            attachable: body.attachable,
            ipv6: body.enable_ipv6,
            options,
            labels: body.labels.clone(),
            pools,
            ipam: body.ipam.clone(),
            user_subnets: user_subnets(body),
            show_gateway: !default_bridge,
            bridge: info.bridge,
            default_bridge,
            swarm: None,
            node_endpoints: Vec::new(),
        });
        Ok(id)
    }

    /// `docker network rm NAME`.
    pub async fn remove_network(&mut self, name_or_id: &str) -> EngineResult<()> {
        let index = self.network_index(name_or_id)?;
        let network = &self.networks[index];
        if PREDEFINED.contains(&network.name.as_str()) {
            return Err(EngineError::new(format!(
                "{} is a pre-defined network and cannot be removed",
                network.name
            )));
        }
        let in_use = self
            .containers
            .iter()
            .any(|c| c.endpoints.contains_key(&network.id));
        if in_use {
            return Err(EngineError::new(format!(
                "error while removing network: network {} id {} has active endpoints",
                network.name, network.id
            )));
        }
        if let Some(swarm) = &network.swarm {
            let record = swarm.record.clone();
            let membership = self.swarm.as_ref().ok_or_else(|| {
                EngineError::new(format!(
                    "network {} is a swarm's, and this node left it",
                    record.name
                ))
            })?;
            (membership.cluster.remove_network(&record).await).map_err(EngineError::new)?;
            self.withdraw_endpoint(&record.id, "", None).await;
            return Ok(());
        }
        self.network_event(index, "destroy", &[]);
        let network = self.networks.remove(index);
        let mut problems = Vec::new();
        if let Some(bridge) = &network.bridge
            && let Err(e) = self.firewall.remove_network(bridge)
        {
            problems.push(format!("firewall: {e}"));
        }
        if let Err(e) = network.driver.delete_network(&network.id).await {
            problems.push(e.to_string());
        }
        self.release_pools(&network.pools).await;
        // Containers created (not running) on it keep a dangling attachment, as in Docker.
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::new(problems.join("; ")))
        }
    }
}

fn bool_option(options: &BTreeMap<String, String>, key: &str, default: bool) -> EngineResult<bool> {
    match options.get(key).map(String::as_str) {
        None => Ok(default),
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(EngineError::new(format!(
            "failed to parse {key} value: {other} (strconv.ParseBool: parsing \"{other}\": invalid syntax)"
        ))),
    }
}

/// Whether IPAM `name` is one of the engine's own, no plugin: the default (`default`, or none
/// given) or the null IPAM.
fn is_engine_ipam(name: &str) -> bool {
    matches!(name, "" | "default" | super::pools::NULL_IPAM)
}

/// Which families of a create request have a subnet the user gave.
fn user_subnets(body: &NetworkCreate) -> UserSubnets {
    let subnets: Vec<&str> = (body.ipam.config.iter())
        .filter_map(|c| c.subnet.as_deref())
        .collect();
    let v6 = |s: &&str| s.parse::<IpNetwork>().is_ok_and(|n| n.is_ipv6());
    UserSubnets {
        v4: subnets.iter().any(|s| !v6(s)),
        v6: subnets.iter().any(v6),
    }
}

/// swarmkit's refusal of a v1 plugin of type `kind` (`NetworkDriver`, `IpamDriver`).
fn legacy_in_swarm(name: &str, kind: &str) -> EngineError {
    EngineError::new(format!(
        "rpc error: code = InvalidArgument desc = legacy plugin {name} of type {kind} is not supported in swarm mode"
    ))
}
