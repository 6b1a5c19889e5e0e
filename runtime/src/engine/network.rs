//! Networks: the predefined ones, `network create`, `network rm`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::ids;
use super::model::Network;
use super::{Engine, EngineError, EngineResult};
use crate::api::body::NetworkCreate;
use crate::driver::Driver;
use crate::driver::bridge::{self, BridgeNetwork};
use crate::firewall::NetworkRules;
use crate::ipam::{PoolId, PoolRequest};

/// The names Docker reserves.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// Option keys of the bridge driver.
const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";
const ENABLE_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
const MTU: &str = "com.docker.network.driver.mtu";
const DEFAULT_MTU: u32 = 1500;

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
        self.add_network(&body, true).await?;
        for (name, driver) in [("host", Driver::Host), ("none", Driver::Null)] {
            let network = Network {
                id: self.ids.id(),
                name: name.into(),
                driver,
                created: ids::now(),
                internal: false,
                attachable: false,
                ipv6: false,
                options: BTreeMap::new(),
                labels: BTreeMap::new(),
                pools: Vec::new(),
                user_subnets: false,
                show_gateway: false,
                bridge: None,
                default_bridge: false,
            };
            self.networks.push(network);
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
        match body.driver.as_str() {
            "" | "bridge" => self.add_network(body, false).await,
            "host" | "null" => Err(EngineError::new(format!(
                "only one instance of \"{}\" network is allowed",
                body.driver
            ))),
            "macvlan" | "ipvlan" | "overlay" => Err(EngineError::new(format!(
                "the {} driver is not built into the reference engine yet",
                body.driver
            ))),
            other => Err(EngineError::new(format!("plugin \"{other}\" not found"))),
        }
    }

    /// Creates a bridge network: pools, the bridge, the firewall sets. Undoes what it did when
    /// a later step fails.
    async fn add_network(
        &mut self,
        body: &NetworkCreate,
        default_bridge: bool,
    ) -> EngineResult<String> {
        let id = self.ids.id();
        let mtu = match body.options.get(MTU) {
            None => DEFAULT_MTU,
            Some(v) => v.parse().map_err(|_| {
                EngineError::new(format!("failed to parse {MTU} value: {v} (strconv.Atoi: parsing \"{v}\": invalid syntax)"))
            })?,
        };
        let icc = bool_option(&body.options, ENABLE_ICC, true)?;
        let masquerade = bool_option(&body.options, ENABLE_MASQUERADE, true)? && !body.internal;
        let bridge_name = body
            .options
            .get(BRIDGE_NAME)
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if let Some(other) = self
            .networks
            .iter()
            .find(|n| n.bridge.as_ref().is_some_and(|b| b.bridge == bridge_name))
        {
            return Err(EngineError::new(format!(
                "cannot create network {id} ({bridge_name}): conflicts with network {} ({bridge_name}): networks have same bridge name",
                other.id
            )));
        }

        let pools = self.request_pools(body)?;
        let mut gateways = Vec::new();
        for pool in &pools {
            let p = self.ipam.pool(*pool);
            if let Some(gateway) = p.gateway {
                gateways.push(
                    IpNetwork::new(gateway, p.subnet.prefix()).expect("a gateway in its subnet"),
                );
            }
        }
        let bridge = BridgeNetwork {
            bridge: bridge_name.clone(),
            gateways,
            mtu,
        };
        if let Err(e) = bridge::create_network(&self.host, &bridge).await {
            self.release_pools(&pools);
            return Err(EngineError::new(e.to_string()));
        }
        let rules = NetworkRules {
            bridge: bridge_name.clone(),
            subnets: pools.iter().map(|p| self.ipam.pool(*p).subnet).collect(),
            internal: body.internal,
            icc,
            masquerade,
        };
        if let Err(e) = self.firewall.add_network(&rules) {
            let _ = bridge::delete_network(&self.host, &bridge).await;
            self.release_pools(&pools);
            return Err(EngineError::new(format!("firewall: {e}")));
        }
        self.networks.push(Network {
            id: id.clone(),
            name: body.name.clone(),
            driver: Driver::Bridge,
            created: ids::now(),
            internal: body.internal,
            attachable: body.attachable,
            ipv6: body.enable_ipv6,
            options: body.options.clone(),
            labels: body.labels.clone(),
            pools,
            user_subnets: body.ipam.config.iter().any(|c| c.subnet.is_some()),
            show_gateway: !default_bridge,
            bridge: Some(bridge),
            default_bridge,
        });
        Ok(id)
    }

    /// One IPAM pool per configured subnet (IPv6 ones only with `--ipv6`), or one automatic
    /// IPv4 pool.
    fn request_pools(&mut self, body: &NetworkCreate) -> EngineResult<Vec<PoolId>> {
        let mut requests = Vec::new();
        for config in &body.ipam.config {
            let subnet = parse_net(config.subnet.as_deref())?;
            let v6 = subnet.is_some_and(|s| s.is_ipv6());
            if v6 && !body.enable_ipv6 {
                continue;
            }
            let aux = config
                .auxiliary_addresses
                .iter()
                .flatten()
                .map(|(k, v)| Ok((k.clone(), parse_ip(v)?)))
                .collect::<EngineResult<Vec<_>>>()?;
            requests.push(PoolRequest {
                subnet,
                ip_range: parse_net(config.ip_range.as_deref())?,
                gateway: config.gateway.as_deref().map(parse_ip).transpose()?,
                aux_addresses: aux,
                v6,
            });
        }
        if requests.iter().filter(|r| !r.v6).count() > 1 {
            return Err(EngineError::new(
                "bridge driver doesn't support multiple subnets",
            ));
        }
        if !requests.iter().any(|r| !r.v6) {
            requests.insert(
                0,
                PoolRequest {
                    subnet: None,
                    ip_range: None,
                    gateway: None,
                    aux_addresses: Vec::new(),
                    v6: false,
                },
            );
        }
        let mut pools = Vec::new();
        for request in &requests {
            match self.ipam.request_pool(request) {
                Ok(pool) => pools.push(pool),
                Err(e) => {
                    self.release_pools(&pools);
                    return Err(EngineError::new(e.to_string()));
                }
            }
        }
        Ok(pools)
    }

    fn release_pools(&mut self, pools: &[PoolId]) {
        for pool in pools {
            self.ipam.release_pool(*pool);
        }
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
        let network = self.networks.remove(index);
        let mut problems = Vec::new();
        if let Some(bridge) = &network.bridge {
            if let Err(e) = self.firewall.remove_network(&bridge.bridge) {
                problems.push(format!("firewall: {e}"));
            }
            if let Err(e) = bridge::delete_network(&self.host, bridge).await {
                problems.push(e.to_string());
            }
        }
        self.release_pools(&network.pools);
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

fn parse_net(text: Option<&str>) -> EngineResult<Option<IpNetwork>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| EngineError::new(format!("invalid CIDR address: {t}")))
        })
        .transpose()
}

fn parse_ip(text: &str) -> EngineResult<IpAddr> {
    text.parse()
        .map_err(|_| EngineError::new(format!("ParseAddr(\"{text}\"): unable to parse IP")))
}
