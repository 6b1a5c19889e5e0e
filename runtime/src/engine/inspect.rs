//! `docker inspect` and `docker network inspect` in Docker 20.10's JSON shape.

use ipnetwork::IpNetwork;
use serde_json::{Map, Value, json};

use super::model::{Container, Endpoint, Network, State};
use super::ports::ports_json;
use super::{Engine, EngineResult};

fn mac_text(mac: Option<[u8; 6]>) -> String {
    mac.map(crate::mac::text).unwrap_or_default()
}

impl Engine {
    /// `docker network inspect NAME`.
    pub fn inspect_network(&self, name_or_id: &str) -> EngineResult<Value> {
        let network = &self.networks[self.network_index(name_or_id)?];
        if let Some(swarm) = &network.swarm {
            return Ok(self.inspect_swarm_network(network, swarm));
        }
        let mut containers = node_endpoints(network);
        for container in &self.containers {
            if let Some(endpoint) = container.endpoints.get(&network.id)
                && !network.has_special_driver()
            {
                containers.insert(
                    container.id.clone(),
                    json!({
                        "Name": endpoint.shown_as.as_ref().unwrap_or(&container.name),
                        "EndpointID": endpoint.id,
                        "MacAddress": mac_text(endpoint.mac),
                        "IPv4Address": endpoint.ip4.map(|a| a.to_string()).unwrap_or_default(),
                        "IPv6Address": endpoint.ip6.map(|a| a.to_string()).unwrap_or_default(),
                    }),
                );
            }
        }
        let ipam_options = match network.is_user_defined() {
            true => json!(network.ipam.options),
            false => Value::Null,
        };
        let config = self.ipam_config(network);
        Ok(json!({
            "Name": network.name,
            "Id": network.id,
            "Created": network.created,
            "Scope": network.driver.capabilities().data_scope.name(),
            "Driver": network.driver.name(),
            "EnableIPv6": network.ipv6,
            "IPAM": {"Driver": network.pools.driver_name(), "Options": ipam_options, "Config": config},
            "Internal": network.internal,
            "Attachable": network.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": network.options,
            "Labels": network.labels,
        }))
    }

    /// `IPAM.Config` as dockerd's `buildIpamResources` writes it, whatever the IPAM: each
    /// family's configured subnets as the user gave them (with the range, gateway and
    /// auxiliary addresses given, and only those), else that family's pools with their
    /// gateways (none for the default bridge, an IPv6 one with its prefix, as dockerd writes
    /// them).
    fn ipam_config(&self, network: &Network) -> Vec<Value> {
        let given = |v6: bool| -> Vec<Value> {
            (network.ipam.config.iter())
                .filter(|c| {
                    let subnet = c.subnet.as_deref().unwrap_or_default().parse::<IpNetwork>();
                    subnet.is_ok_and(|s| s.is_ipv6() == v6)
                })
                .map(|c| {
                    let mut entry = Map::new();
                    let texts = [
                        ("Subnet", &c.subnet),
                        ("IPRange", &c.ip_range),
                        ("Gateway", &c.gateway),
                    ];
                    for (key, text) in texts {
                        if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
                            entry.insert(key.into(), text.into());
                        }
                    }
                    if let Some(aux) = (c.auxiliary_addresses.as_ref()).filter(|a| !a.is_empty()) {
                        entry.insert("AuxiliaryAddresses".into(), json!(aux));
                    }
                    Value::Object(entry)
                })
                .collect()
        };
        let pools = network.pools.ipam_data(&self.ipam);
        let allocated = |v6: bool| -> Vec<Value> {
            (pools.iter().filter(|p| p.subnet.is_ipv6() == v6))
                .map(|p| {
                    let mut entry = Map::new();
                    entry.insert("Subnet".into(), p.subnet.to_string().into());
                    let gateway = match (p.gateway, v6) {
                        (_, false) if !network.show_gateway => None,
                        (Some(gateway), false) => Some(gateway.ip().to_string()),
                        (Some(gateway), true) => Some(gateway.to_string()),
                        (None, false) => None,
                        (None, true) => Some("<nil>".into()),
                    };
                    if let Some(gateway) = gateway {
                        entry.insert("Gateway".into(), gateway.into());
                    }
                    Value::Object(entry)
                })
                .collect()
        };
        let mut config = given(false);
        if config.is_empty() {
            config = allocated(false);
        }
        match given(true) {
            v6 if v6.is_empty() => config.extend(allocated(true)),
            v6 => config.extend(v6),
        }
        config
    }

    /// A swarm network as a node sees it: scope `swarm`, its subnet and gateway from the control
    /// plane, its local containers and this node's load balancer (`lb-NAME`), and the nodes
    /// that have it (`Peers`).
    fn inspect_swarm_network(
        &self,
        network: &super::model::Network,
        swarm: &super::model::SwarmNetwork,
    ) -> Value {
        let record = &swarm.record;
        let mut containers = Map::new();
        for container in &self.containers {
            if let Some(endpoint) = container.endpoints.get(&network.id) {
                containers.insert(
                    container.id.clone(),
                    json!({
                        "Name": container.name,
                        "EndpointID": endpoint.id,
                        "MacAddress": mac_text(endpoint.mac),
                        "IPv4Address": endpoint.ip4.map(|a| a.to_string()).unwrap_or_default(),
                        "IPv6Address": "",
                    }),
                );
            }
        }
        containers.extend(node_endpoints(network));
        let mut config = Map::new();
        config.insert("Subnet".into(), record.subnet.to_string().into());
        if let Some(range) = record.ip_range {
            config.insert("IPRange".into(), range.to_string().into());
        }
        config.insert("Gateway".into(), record.gateway.to_string().into());
        let mut inspect = json!({
            "Name": network.name,
            "Id": network.id,
            "Created": network.created,
            "Scope": "swarm",
            "Driver": network.driver.name(),
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": null, "Config": [config]},
            "Internal": network.internal,
            "Attachable": network.attachable,
            "Ingress": record.ingress,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": if containers.is_empty() { Value::Null } else { Value::Object(containers) },
            "Options": network.options,
            "Labels": network.labels,
        });
        if let Some(peers) = self.peers(network, swarm) {
            inspect["Peers"] = peers;
        }
        inspect
    }

    /// The nodes that have a swarm network (an endpoint on it), by their gossip name and
    /// address: this one, and those of the other endpoints; none (no `Peers` key) while no
    /// node has it.
    fn peers(
        &self,
        network: &super::model::Network,
        swarm: &super::model::SwarmNetwork,
    ) -> Option<Value> {
        let mut peers = std::collections::BTreeMap::new();
        if let Some(membership) = &self.swarm
            && !network.node_endpoints.is_empty()
        {
            peers.insert(membership.node.gossip_name.clone(), membership.node.addr);
        }
        let remote = (swarm.remote.lock()).unwrap_or_else(std::sync::PoisonError::into_inner);
        for endpoint in remote.values() {
            peers.insert(endpoint.gossip_name.clone(), endpoint.vtep);
        }
        (!peers.is_empty()).then(|| {
            let peers = peers
                .into_iter()
                .map(|(name, ip)| json!({"Name": name, "IP": ip.to_string()}));
            Value::Array(peers.collect())
        })
    }

    /// `docker inspect NAME` (the parts that concern networking, in Docker's shape).
    pub fn inspect_container(&self, name_or_id: &str) -> EngineResult<Value> {
        let c = &self.containers[self.container_index(name_or_id)?];
        let running = c.state == State::Running;
        let cfg = &c.config;
        let exposed: Map<String, Value> = cfg
            .exposed_ports
            .keys()
            .map(|k| (k.clone(), json!({})))
            .collect();
        let path = |file: &str| {
            c.dir
                .as_ref()
                .map(|d| d.join(file).display().to_string())
                .unwrap_or_default()
        };
        Ok(json!({
            "Id": c.id,
            "Created": c.created,
            "Path": cfg.cmd.as_ref().and_then(|cmd| cmd.first().cloned()).unwrap_or_else(|| "sleep".into()),
            "Args": cfg.cmd.as_ref().map_or_else(|| vec!["1000000000".to_string()], |cmd| cmd.iter().skip(1).cloned().collect()),
            "State": {
                "Status": c.state.name(),
                "Running": running,
                "Paused": false,
                "Restarting": false,
                "OOMKilled": false,
                "Dead": false,
                "Pid": 0,
                "ExitCode": c.exit_code,
                "Error": c.error,
                "StartedAt": c.started_at,
                "FinishedAt": c.finished_at,
            },
            "Image": cfg.image,
            "ResolvConfPath": path("resolv.conf"),
            "HostnamePath": path("hostname"),
            "HostsPath": path("hosts"),
            "Name": format!("/{}", c.name),
            // Restarts by a restart policy, which the engine has none of (`docker restart`
            // does not count).
            "RestartCount": 0,
            "HostConfig": host_config_json(c),
            "Config": {
                "Hostname": c.hostname,
                "Domainname": cfg.domainname,
                "AttachStdin": cfg.attach_stdin,
                "AttachStdout": cfg.attach_stdout,
                "AttachStderr": cfg.attach_stderr,
                "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
                "Tty": cfg.tty,
                "OpenStdin": cfg.open_stdin,
                "StdinOnce": cfg.stdin_once,
                "Cmd": cfg.cmd,
                "Entrypoint": cfg.entrypoint,
                "Image": cfg.image,
                "Labels": cfg.labels,
                "MacAddress": cfg.mac_address,
            },
            "NetworkSettings": self.network_settings(c),
        }))
    }

    /// A container's `NetworkSettings`: an entry per network, and at the top level the
    /// default bridge's endpoint fields (empty when it is not on the default bridge).
    fn network_settings(&self, c: &Container) -> Value {
        let running = c.state == State::Running;
        let mut networks = Map::new();
        let mut top = json!({"EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": ""});
        for (key, settings) in &c.attachments {
            let network = self
                .networks
                .iter()
                .find(|n| n.id == *key || n.name == *key);
            let name = network.map_or(key.clone(), |n| n.name.clone());
            let endpoint = network.and_then(|n| c.endpoints.get(&n.id));
            let mut entry = endpoint_json(
                c,
                endpoint,
                settings,
                network.is_some_and(|n| n.is_user_defined()),
            );
            // A swarm network is the container's only once it attached (and got its address).
            if let Some(n) = network.filter(|n| n.swarm.is_none() || endpoint.is_some()) {
                entry["NetworkID"] = n.id.clone().into();
                if n.default_bridge && endpoint.is_some() {
                    for field in [
                        "EndpointID",
                        "Gateway",
                        "IPAddress",
                        "IPPrefixLen",
                        "MacAddress",
                        "GlobalIPv6Address",
                        "GlobalIPv6PrefixLen",
                        "IPv6Gateway",
                    ] {
                        top[field] = entry[field].clone();
                    }
                }
            }
            networks.insert(name, entry);
        }
        let can_publish = c.gateway_network.as_ref().is_some_and(|g| {
            // Port information comes from the gateway endpoint's driver: only bridge's has
            // any (macvlan ignores `-p` and `--expose`).
            self.networks
                .iter()
                .any(|n| n.id == *g && !n.internal && n.is_bridge())
        });
        let mut settings = json!({
            "Bridge": "",
            "SandboxID": if running { c.sandbox_id.clone() } else { String::new() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_json(c, can_publish),
            "SandboxKey": if running { format!("/var/run/docker/netns/{}", &c.sandbox_id[..12.min(c.sandbox_id.len())]) } else { String::new() },
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "Networks": networks,
        });
        if let (Some(settings), Some(top)) = (settings.as_object_mut(), top.as_object()) {
            settings.extend(top.clone());
        }
        settings
    }
}

/// A container's `HostConfig` (its networking fields).
fn host_config_json(c: &Container) -> Value {
    let host = &c.config.host_config;
    let bindings: Map<String, Value> = host
        .port_bindings
        .iter()
        .map(|(k, list)| {
            let list: Vec<Value> = list
                .iter()
                .map(|b| json!({"HostIp": b.host_ip, "HostPort": b.host_port}))
                .collect();
            (k.clone(), Value::Array(list))
        })
        .collect();
    json!({
        "NetworkMode": c.mode(),
        "PortBindings": bindings,
        "PublishAllPorts": host.publish_all_ports,
        "Links": host.links.as_ref().map(|links| links.iter().map(|l| legacy_link(l, &c.name)).collect::<Vec<_>>()),
        "Dns": host.dns,
        "ExtraHosts": host.extra_hosts,
        "AutoRemove": host.auto_remove,
        "UTSMode": host.uts_mode,
    })
}

/// One entry of `NetworkSettings.Networks`.
fn endpoint_json(
    c: &Container,
    endpoint: Option<&Endpoint>,
    settings: &crate::api::body::EndpointSettings,
    user_network: bool,
) -> Value {
    let aliases = if user_network && endpoint.is_some() {
        c.network_aliases(settings)
    } else {
        settings.aliases.clone().unwrap_or_default()
    };
    let ipam = settings.ipam_config.as_ref().map(|i| {
        let mut m = Map::new();
        if let Some(v4) = i.ipv4_address.as_ref().filter(|a| !a.is_empty()) {
            m.insert("IPv4Address".into(), v4.clone().into());
        }
        if let Some(v6) = i.ipv6_address.as_ref().filter(|a| !a.is_empty()) {
            m.insert("IPv6Address".into(), v6.clone().into());
        }
        if let Some(list) = i.link_local_ips.as_ref().filter(|l| !l.is_empty()) {
            m.insert("LinkLocalIPs".into(), json!(list));
        }
        Value::Object(m)
    });
    json!({
        "IPAMConfig": ipam,
        "Links": settings.links,
        "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
        "NetworkID": "",
        "EndpointID": endpoint.map(|e| e.id.clone()).unwrap_or_default(),
        "Gateway": endpoint.and_then(|e| e.gateway4).map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": endpoint.and_then(|e| e.ip4).map(|a| a.ip().to_string()).unwrap_or_default(),
        "IPPrefixLen": endpoint.and_then(|e| e.ip4).map_or(0, |a| a.prefix()),
        "IPv6Gateway": endpoint.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": endpoint.and_then(|e| e.ip6).map(|a| a.ip().to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": endpoint.and_then(|e| e.ip6).map_or(0, |a| a.prefix()),
        "MacAddress": endpoint.map(|e| mac_text(e.mac)).unwrap_or_default(),
        "DriverOpts": null,
    })
}

/// A network's endpoints of no container, as network inspect's `Containers` has them.
fn node_endpoints(network: &super::model::Network) -> Map<String, Value> {
    (network.node_endpoints.iter())
        .map(|e| {
            let entry = json!({
                "Name": e.name,
                "EndpointID": e.endpoint_id,
                "MacAddress": mac_text(Some(e.mac)),
                "IPv4Address": e.address.to_string(),
                "IPv6Address": "",
            });
            (e.key.clone(), entry)
        })
        .collect()
}

/// `HostConfig.Links` as Docker shows them: `/target:/container/alias`.
fn legacy_link(link: &str, container: &str) -> String {
    let (name, alias) = super::model::parse_link(link);
    format!("/{name}:/{container}/{alias}")
}
