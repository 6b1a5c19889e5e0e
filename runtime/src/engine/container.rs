//! Containers: create, start (namespace, endpoints, routes, ports, files), stop, remove,
//! connect and disconnect.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use drydock_netsim::Netns;
use ipnetwork::IpNetwork;
use rtnetlink::RouteMessageBuilder;

use super::files::{self, LinkEntry};
use super::ids;
use super::model::{Container, Endpoint, Sandbox, State, parse_link};
use super::{Engine, EngineError, EngineResult};
use crate::api::body::{ContainerCreate, EndpointSettings, NetworkConnect};
use crate::driver::{Interface, special};

/// Docker's time for what has not happened (Go's zero `time.Time`).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The images a reference engine has: the same tiny one every target maps `busybox` to.
const IMAGES: [&str; 2] = ["busybox", "busybox:latest"];

impl Engine {
    /// `docker create` (the first half of `docker run -d`); returns the container's id. Without
    /// a name (empty) it gets one made up, as dockerd does, and is anonymous: its name is not
    /// in DNS.
    pub fn create_container(&mut self, name: &str, body: &ContainerCreate) -> EngineResult<String> {
        validate_net_mode(body).map_err(EngineError::new)?;
        let name = name.trim_start_matches('/');
        let anonymous = name.is_empty();
        let name = match anonymous {
            true => crate::api::names::generate(|n| self.containers.iter().any(|c| c.name == n)),
            false => name.to_string(),
        };
        self.check_new_name(&name)?;
        let name = name.as_str();
        if !IMAGES.contains(&body.image.as_str()) {
            return Err(EngineError::new(format!(
                "image {} is not available: scenarios run busybox (no registry is reachable)",
                body.image
            )));
        }
        let mode = match body.host_config.network_mode.as_str() {
            "" => "default",
            mode => mode,
        };
        let user_defined = !matches!(mode, "default" | "bridge" | "host" | "none")
            && !mode.starts_with("container:");
        let mut config = body.clone();
        if !user_defined && let Some(links) = &body.host_config.links {
            match self.check_legacy_links(links) {
                Ok(registered) => config.host_config.links = Some(registered),
                Err(e) => {
                    self.destroyed_in_create(name, body);
                    return Err(e);
                }
            }
        }
        let attachments = self.attachments(mode, body)?;
        // dockerd names another container's network by that container's id, so that the
        // sharing survives a rename; one not found (yet) is left as given: its start says so.
        if let Some(shared) = mode.strip_prefix("container:")
            && let Ok(other) = self.container_index(shared)
        {
            config.host_config.network_mode = format!("container:{}", self.containers[other].id);
        }
        if !matches!(mode, "default" | "bridge" | "host" | "none")
            && !mode.starts_with("container:")
        {
            // On a user-defined network, links are the endpoint's aliases, not legacy links.
            config.host_config.links = None;
        }
        let id = self.ids.id();
        let dir = self.options.state_dir.as_ref().map(|state| state.join(&id));
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::new(format!("cannot create {}: {e}", dir.display())))?;
        }
        // Without -h: the docker host's name on its network (dockerd's), else the short id.
        let hostname = match (body.hostname.is_empty(), mode) {
            (false, _) => body.hostname.clone(),
            (true, "host") if !self.options.hostname.is_empty() => self.options.hostname.clone(),
            (true, _) => id[..12].to_string(),
        };
        self.containers.push(Container {
            id: id.clone(),
            name: name.to_string(),
            created: ids::now(),
            config,
            hostname,
            state: State::Created,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            attachments,
            endpoints: BTreeMap::new(),
            sandbox: None,
            sandbox_id: String::new(),
            published: Vec::new(),
            gateway_network: None,
            resolver: None,
            files: BTreeMap::new(),
            dir,
            anonymous,
            next_eth: 0,
        });
        self.container_event(self.containers.len() - 1, "create", &[]);
        Ok(id)
    }

    /// dockerd's `registerLinks`: each legacy link names a container (followed through
    /// `--network container:` to the one whose network it is) that is not on the host's
    /// network. The links, each naming that container, as dockerd registers them.
    fn check_legacy_links(&self, links: &[String]) -> EngineResult<Vec<String>> {
        let mut registered = Vec::new();
        for link in links {
            let (name, alias) = parse_link(link);
            let mut target = self.container_index(name).map_err(|e| {
                EngineError::new(format!("could not get container for {name}: {e}"))
            })?;
            while let Some(shared) = self.containers[target].mode().strip_prefix("container:") {
                target = self.container_index(shared).map_err(|e| {
                    EngineError::new(format!("Could not get container for {shared}: {e}"))
                })?;
            }
            if self.containers[target].mode() == "host" {
                return Err(EngineError::new(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
                ));
            }
            registered.push(format!("{}:{alias}", self.containers[target].name));
        }
        Ok(registered)
    }

    /// Docker's checks of a name a container is to take: its characters, and that no other
    /// container has it.
    fn check_new_name(&self, name: &str) -> EngineResult<()> {
        let valid = name.len() >= 2
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(EngineError::new(format!(
                "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if let Some(other) = self.containers.iter().find(|c| c.name == name) {
            return Err(EngineError::new(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        Ok(())
    }

    /// `docker rename`: the container takes `new_name`, also in DNS (no longer anonymous).
    pub fn rename_container(&mut self, name_or_id: &str, new_name: &str) -> EngineResult<()> {
        if name_or_id.is_empty() || new_name.is_empty() {
            return Err(EngineError::new("Neither old nor new names may be empty"));
        }
        let index = self.container_index(name_or_id)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if self.containers[index].name == new_name {
            return Err(EngineError::new(
                "Renaming a container with the same name as its current name",
            ));
        }
        // dockerd checks the name with its `/`, and says so.
        self.check_new_name(new_name).map_err(|e| {
            let text =
                e.0.replace(&format!("({new_name})"), &format!("(/{new_name})"));
            EngineError::new(format!("Error when allocating new name: {text}"))
        })?;
        let container = &mut self.containers[index];
        let old = std::mem::replace(&mut container.name, new_name.to_string());
        container.anonymous = false;
        if container.state == State::Running {
            self.refresh_dns();
        }
        self.container_event(index, "rename", &[("oldName", &format!("/{old}"))]);
        Ok(())
    }

    /// The networks a new container joins, with Docker's checks of static addresses.
    fn attachments(
        &self,
        mode: &str,
        body: &ContainerCreate,
    ) -> EngineResult<Vec<(String, EndpointSettings)>> {
        let network = match mode {
            "default" | "bridge" => "bridge",
            "host" | "none" => mode,
            m if m.starts_with("container:") => return Ok(Vec::new()),
            m => m,
        };
        let endpoints = &body.networking_config.endpoints_config;
        let settings = endpoints
            .get(mode)
            .or_else(|| endpoints.get(network))
            .or_else(|| endpoints.get("default"))
            .cloned()
            .unwrap_or_default();
        self.check_static_ip(network, &settings)?;
        // 20.10 creates a container on a network that does not exist (yet); starting it fails.
        let key = self
            .network_index(network)
            .map_or_else(|_| network.to_string(), |i| self.networks[i].id.clone());
        Ok(vec![(key, settings)])
    }

    /// Docker's `--ip`/`--ip6` rules: user-defined networks only, with a subnet of that family
    /// the user gave.
    fn check_static_ip(&self, network: &str, settings: &EndpointSettings) -> EngineResult<()> {
        let given = |a: &Option<String>| a.as_deref().is_some_and(|a| !a.is_empty());
        let (wants4, wants6) = (settings.ipam_config.as_ref()).map_or((false, false), |c| {
            (given(&c.ipv4_address), given(&c.ipv6_address))
        });
        if !wants4 && !wants6 {
            return Ok(());
        }
        if matches!(network, "bridge" | "host" | "none" | "default") {
            return Err(EngineError::new(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if let Ok(i) = self.network_index(network)
            && let subnets = self.networks[i].user_subnets
            && ((wants4 && !subnets.v4) || (wants6 && !subnets.v6))
        {
            return Err(EngineError::new(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        Ok(())
    }

    /// `docker start`: a namespace, its endpoints, routes, published ports and files.
    pub async fn start_container(&mut self, name_or_id: &str) -> EngineResult<()> {
        let index = self.container_index(name_or_id)?;
        if self.containers[index].state == State::Running {
            return Ok(());
        }
        let mode = self.containers[index].mode().to_string();
        let sandbox = match mode.as_str() {
            "host" => Sandbox::Host,
            m if m.starts_with("container:") => {
                let other = self.container_index(&m["container:".len()..])?;
                if other == index {
                    return Err(EngineError::new("cannot join own network"));
                }
                if self.containers[other].state != State::Running {
                    return Err(EngineError::new(format!(
                        "cannot join network of a non running container: {}",
                        self.containers[other].id
                    )));
                }
                // It takes the other's hostname, as dockerd does at start.
                self.containers[index].hostname = self.containers[other].hostname.clone();
                Sandbox::Shared(self.containers[other].id.clone())
            }
            _ => Sandbox::Own(new_sandbox().await?),
        };
        self.containers[index].sandbox = Some(sandbox);
        self.containers[index].sandbox_id = self.ids.id();
        self.containers[index].next_eth = 0;
        let attachments = self.containers[index].attachments.clone();
        for (network, settings) in &attachments {
            if let Err(e) = self.join(index, network, settings).await {
                self.teardown(index).await;
                return Err(e);
            }
            self.connected_event(index, network);
        }
        if let Err(e) = self.refresh_gwbridge(index).await {
            self.teardown(index).await;
            return Err(e);
        }
        if let Err(e) = self.route_and_publish(index).await {
            self.teardown(index).await;
            return Err(e);
        }
        let joined: Vec<String> = self.containers[index].endpoints.keys().cloned().collect();
        for network in joined {
            if let Err(e) = self.ask_join_info(index, &network).await {
                self.teardown(index).await;
                return Err(e);
            }
        }
        if let Err(e) = self.ensure_resolver(index).await {
            self.teardown(index).await;
            return Err(e);
        }
        let container = &mut self.containers[index];
        container.state = State::Running;
        container.started_at = super::ids::now();
        (container.exit_code, container.error) = (0, String::new());
        self.refresh_dns();
        self.write_files(index)?;
        // Running containers with a legacy link to it learn its (new) address, as dockerd
        // updates its linking containers' hosts files on start.
        let linkers: Vec<usize> = (0..self.containers.len())
            .filter(|&i| i != index && self.containers[i].state == State::Running)
            .filter(|&i| self.links_to(i, index))
            .collect();
        for linker in linkers {
            self.write_files(linker)?;
        }
        self.container_event(index, "start", &[]);
        Ok(())
    }

    /// Whether container `index` has a legacy link to container `target`.
    fn links_to(&self, index: usize, target: usize) -> bool {
        let links = self.containers[index]
            .config
            .host_config
            .links
            .iter()
            .flatten();
        links
            .map(|link| parse_link(link).0)
            .any(|name| name == self.containers[target].name)
    }

    /// Logs container `index`'s connection to `network` (a name or id).
    fn connected_event(&self, index: usize, network: &str) {
        if let Ok(n) = self.network_index(network) {
            let id = &self.containers[index].id;
            self.network_event(n, "connect", &[("container", id)]);
        }
    }

    /// Gives the container an endpoint on `network` (an id, or a name that had no network yet):
    /// addresses from IPAM (none on host and null), then the driver's endpoint, joined to the
    /// sandbox.
    async fn join(
        &mut self,
        index: usize,
        network: &str,
        settings: &EndpointSettings,
    ) -> EngineResult<()> {
        let n = self.network_to_join(network).await?;
        let network_id = self.networks[n].id.clone();
        let driver = self.networks[n].driver.clone();
        let sandbox = self.sandbox_netns(index)?;
        let mut interface = Interface::default();
        let pools = self.networks[n].pools.clone();
        let mut allocated: Vec<IpNetwork> = Vec::new();
        let swarm = self.networks[n].swarm.is_some();
        if let Some(swarm) = &self.networks[n].swarm
            && !swarm.record.attachable
        {
            let name = &self.networks[n].name;
            return Err(EngineError::new(format!(
                "Could not attach to network {name}: rpc error: code = PermissionDenied desc = network {name} not manually attachable"
            )));
        }
        let link_local = link_local_addresses(settings)?;
        if swarm {
            // The container's address, then (the first time here) the node's load balancer's.
            interface.mac = self.mac_option(index, n)?;
            let owner = self.containers[index].id.clone();
            let wanted = wanted_ip(settings, false)?;
            let address = self.allocate_swarm_address(n, wanted, &owner).await?;
            interface.addresses = vec![address];
            self.ensure_load_balancer(n).await?;
            self.pin_address(index, network, address);
        } else if !self.networks[n].has_special_driver() {
            interface.mac = self.mac_option(index, n)?;
            let wanted = [wanted_ip(settings, false)?, wanted_ip(settings, true)?];
            allocated = (self.assign_addresses(n, wanted, &mut interface.mac)).await?;
            interface.addresses.extend(allocated.iter().copied());
        }
        let id = self.ids.id();
        let ifname = format!("eth{}", self.containers[index].next_eth);
        let plugged = async {
            // libnetwork's `CreateEndpoint` wraps its driver's refusal so.
            let mac = driver
                .create_endpoint(&network_id, &id, &interface)
                .await
                .map_err(|e| {
                    format!(
                        "failed to create endpoint {} on network {}: {e}",
                        self.containers[index].name, self.networks[n].name
                    )
                })?;
            let joined = match driver.join(&network_id, &id, &sandbox, &ifname).await {
                Ok(info) => info,
                Err(e) => {
                    let _ = driver.delete_endpoint(&network_id, &id).await;
                    return Err(e.to_string());
                }
            };
            if let Some(name) = &joined.interface
                && let Err(e) = crate::driver::add_link_local(&sandbox, name, &link_local).await
            {
                let _ = driver.leave(&network_id, &id).await;
                let _ = driver.delete_endpoint(&network_id, &id).await;
                return Err(e.to_string());
            }
            Ok((mac, joined))
        }
        .await;
        let (mac, info) = match plugged {
            Ok(plugged) => plugged,
            Err(e) => {
                self.release_addresses(&pools, &allocated).await;
                if let (true, Some(address)) = (swarm, interface.addresses.first()) {
                    self.withdraw_endpoint(&network_id, "", Some(address.ip()))
                        .await;
                }
                return Err(EngineError::new(e));
            }
        };
        // libnetwork counts a sandbox's interfaces up and never reuses a number.
        self.containers[index].next_eth += usize::from(info.interface.is_some());
        self.containers[index].endpoints.insert(
            network_id.clone(),
            Endpoint {
                id,
                network: network_id.clone(),
                ip4: interface.addresses.iter().copied().find(IpNetwork::is_ipv4),
                ip6: interface.addresses.iter().copied().find(IpNetwork::is_ipv6),
                mac,
                gateway4: info.gateway4.map(IpAddr::V4),
                gateway6: info.gateway6.map(IpAddr::V6),
                disable_gateway_service: info.disable_gateway_service,
                shown_as: None,
            },
        );
        if swarm {
            let container = &self.containers[index];
            let endpoint = &container.endpoints[&network_id];
            let ip = endpoint.ip4.expect("a swarm endpoint's address").ip();
            let (endpoint_id, mac) = (endpoint.id.clone(), endpoint.mac.unwrap_or_default());
            let aliases = container.network_aliases(settings);
            let name = container.name.clone();
            self.publish_endpoint(n, &endpoint_id, name, aliases, ip, mac, false)
                .await?;
        }
        Ok(())
    }

    /// The local network a container joins: `network` here, or the swarm's, which comes to a
    /// node when a container there attaches to it.
    async fn network_to_join(&mut self, network: &str) -> EngineResult<usize> {
        match self.network_index(network) {
            Ok(n) => Ok(n),
            Err(_) if self.swarm.is_some() => self.attach_swarm_network(network).await,
            Err(e) => Err(e),
        }
    }

    /// Records a swarm network's address in the container's endpoint settings, where Docker
    /// shows it (`IPAMConfig.IPv4Address`): the manager allocated it for the attachment.
    fn pin_address(&mut self, index: usize, network: &str, address: IpNetwork) {
        let attachments = &mut self.containers[index].attachments;
        if let Some((_, settings)) = attachments.iter_mut().find(|(n, _)| n == network) {
            let ipam = settings.ipam_config.get_or_insert_with(Default::default);
            ipam.ipv4_address = Some(address.ip().to_string());
        }
    }

    /// `--mac-address`, when given, for network `n` if it is the one the container runs on:
    /// dockerd gives it to the network its network mode names (by name), or to the default
    /// bridge when the mode is the default; networks connected later get generated ones.
    fn mac_option(&self, index: usize, n: usize) -> EngineResult<Option<[u8; 6]>> {
        let container = &self.containers[index];
        let network = &self.networks[n];
        let named = match container.mode() {
            "default" => network.default_bridge,
            mode => mode == network.name,
        };
        match &container.config.mac_address {
            Some(mac) if named && !mac.is_empty() => Ok(Some(parse_mac(mac)?)),
            _ => Ok(None),
        }
    }

    /// Keeps a running container's way out as libnetwork's sandbox does after each join and
    /// leave: when its networks give it none ([`Self::needs_default_gateway`]), an endpoint on
    /// `docker_gwbridge` (made then if it is not there), named `gateway_ID12`, that the
    /// container's own inspect does not show; when one of them gives one again, that endpoint
    /// goes.
    async fn refresh_gwbridge(&mut self, index: usize) -> EngineResult<()> {
        match (
            self.needs_default_gateway(index),
            self.gwbridge_joined(index),
        ) {
            (true, None) => {}
            (false, Some(id)) => {
                self.remove_endpoint(index, &id).await;
                return Ok(());
            }
            _ => return Ok(()),
        }
        self.ensure_gwbridge().await?;
        let gwbridge = self.network_index(super::swarm_networks::GWBRIDGE)?;
        let id = self.networks[gwbridge].id.clone();
        self.join(index, &id, &EndpointSettings::default()).await?;
        let shown_as = format!("gateway_{}", &self.containers[index].id[..12]);
        if let Some(endpoint) = self.containers[index].endpoints.get_mut(&id) {
            endpoint.shown_as = Some(shown_as);
        }
        Ok(())
    }

    /// The id of `docker_gwbridge` when container `index` has an endpoint there.
    fn gwbridge_joined(&self, index: usize) -> Option<String> {
        let endpoints = &self.containers[index].endpoints;
        (self.networks.iter())
            .find(|n| n.name == super::swarm_networks::GWBRIDGE)
            .map(|n| n.id.clone())
            .filter(|id| endpoints.contains_key(id))
    }

    /// dockerd's `updateJoinInfo` after container `index` joined `network`: the endpoint's
    /// driver is asked for its operational info, or docker_gwbridge's when the container has
    /// an endpoint there (libnetwork's `DriverInfo`). A refusal fails the join with dockerd's
    /// words.
    async fn ask_join_info(&self, index: usize, network: &str) -> EngineResult<()> {
        if self.gwbridge_joined(index).is_some() {
            return Ok(());
        }
        let endpoints = &self.containers[index].endpoints;
        let (Some(endpoint), Some(n)) = (
            endpoints.get(network),
            self.networks.iter().find(|n| n.id == network),
        ) else {
            return Ok(());
        };
        (n.driver.endpoint_oper_info(network, &endpoint.id).await)
            .map_err(|e| EngineError::new(format!("Updating join info failed: {e}")))
    }

    /// Whether the container needs `docker_gwbridge` (libnetwork's `needDefaultGW`): one of its
    /// endpoints is on a network that is neither internal nor host or null, and does not
    /// decline the gateway service, and none of those gives an IPv4 gateway.
    fn needs_default_gateway(&self, index: usize) -> bool {
        let mut needed = false;
        for (id, endpoint) in &self.containers[index].endpoints {
            let Some(network) = self.networks.iter().find(|n| n.id == *id) else {
                continue;
            };
            let counts = network.name != super::swarm_networks::GWBRIDGE
                && !network.has_special_driver()
                && !network.internal
                && !endpoint.disable_gateway_service;
            if counts && endpoint.gateway4.is_some() {
                return false;
            }
            needed |= counts;
        }
        needed
    }

    /// The network whose endpoint gives the container its default route: the first endpoint
    /// that provides a gateway, non-internal networks first, then by name (Docker's endpoint
    /// order).
    fn gateway_endpoint(&self, index: usize) -> Option<String> {
        let endpoints = &self.containers[index].endpoints;
        self.endpoint_order(index)
            .into_iter()
            .find(|n| endpoints[n].provides_gateway())
    }

    /// The networks of a running container's endpoints in libnetwork's order (`epHeap.Less`):
    /// internal networks last; among the others, an endpoint with both an IPv4 and an IPv6
    /// gateway first; then by network name. The gateway endpoint is the first that can be one,
    /// and the embedded DNS looks names up in this order.
    pub(super) fn endpoint_order(&self, index: usize) -> Vec<String> {
        let container = &self.containers[index];
        let mut networks: Vec<&super::model::Network> = container
            .endpoints
            .keys()
            .filter_map(|id| self.networks.iter().find(|n| n.id == *id))
            .collect();
        networks.sort_by_key(|n| {
            let endpoint = &container.endpoints[&n.id];
            let dual_stack = endpoint.gateway4.is_some() && endpoint.gateway6.is_some();
            (n.internal, !dual_stack, n.name.clone())
        });
        networks.into_iter().map(|n| n.id.clone()).collect()
    }

    /// Sets the default route through the gateway endpoint and publishes ports there, when the
    /// gateway endpoint is a new one (ports stay as they are otherwise, as in Docker).
    pub(super) async fn route_and_publish(&mut self, index: usize) -> EngineResult<()> {
        let gateway_network = self.gateway_endpoint(index);
        if gateway_network == self.containers[index].gateway_network {
            return Ok(());
        }
        self.revoke_external(index).await;
        self.containers[index].gateway_network = gateway_network.clone();
        let sandbox = self.sandbox_netns(index)?;
        let Some(gateway_network) = gateway_network else {
            return set_default_routes(&sandbox, &[]).await;
        };
        let endpoint = &self.containers[index].endpoints[&gateway_network];
        let gateways: Vec<IpAddr> = endpoint
            .gateway4
            .into_iter()
            .chain(endpoint.gateway6)
            .collect();
        let target = endpoint
            .ip4
            .map(|a| a.ip())
            .or(endpoint.ip6.map(|a| a.ip()));
        let endpoint_id = endpoint.id.clone();
        set_default_routes(&sandbox, &gateways).await?;
        let Some(network) = self.networks.iter().find(|n| n.id == gateway_network) else {
            return Ok(());
        };
        if network.internal {
            return Ok(());
        }
        // Published ports are the bridge driver's (libnetwork's portmapper): macvlan ignores
        // `-p`, as Docker does, with only a warning in its log.
        let publishes = network.is_bridge();
        // Where ports published without a host address bind (the bridge's option).
        let default_ip = network
            .options
            .get("com.docker.network.bridge.host_binding_ipv4")
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let driver = network.driver.clone();
        if let Err(e) = driver
            .program_external_connectivity(&gateway_network, &endpoint_id)
            .await
        {
            return Err(EngineError::new(format!(
                "driver failed programming external connectivity on endpoint {} ({endpoint_id}): {e}",
                self.containers[index].name
            )));
        }
        if let Some(target) = target.filter(|_| publishes) {
            self.publish(index, target, &endpoint_id, default_ip)?;
        }
        Ok(())
    }

    /// Withdraws the container's published ports and revokes the external connectivity of
    /// its gateway endpoint, if that is still there (best effort).
    async fn revoke_external(&mut self, index: usize) {
        self.withdraw_all(index);
        let container = &self.containers[index];
        let Some(network_id) = container.gateway_network.clone() else {
            return;
        };
        let (Some(endpoint), Some(network)) = (
            container.endpoints.get(&network_id),
            self.networks.iter().find(|n| n.id == network_id),
        ) else {
            return;
        };
        if network.internal {
            return;
        }
        let (endpoint_id, driver) = (endpoint.id.clone(), network.driver.clone());
        if let Err(e) = driver
            .revoke_external_connectivity(&network_id, &endpoint_id)
            .await
        {
            tracing::warn!("revoking external connectivity of {endpoint_id}: {e}");
        }
    }

    /// Removes the container's endpoints, ports and namespace (best effort).
    async fn teardown(&mut self, index: usize) {
        self.revoke_external(index).await;
        self.containers[index].gateway_network = None;
        let endpoints = std::mem::take(&mut self.containers[index].endpoints);
        let left: Vec<String> = endpoints.keys().cloned().collect();
        for endpoint in endpoints.into_values() {
            self.release_endpoint(endpoint).await;
        }
        self.containers[index].resolver = None;
        self.containers[index].sandbox = None;
        // As dockerd, once the sandbox is gone: one event per network of the container's own
        // (not docker_gwbridge's, which libnetwork joins by itself).
        let container = self.containers[index].id.clone();
        for (network, _) in &self.containers[index].attachments {
            if let Ok(n) = self.network_index(network)
                && left.contains(&self.networks[n].id)
            {
                self.network_event(n, "disconnect", &[("container", &container)]);
            }
        }
    }

    /// Removes the container's endpoint on `network`, revoking its external connectivity
    /// first when it is the gateway endpoint (best effort).
    pub(super) async fn remove_endpoint(&mut self, index: usize, network: &str) {
        if self.containers[index].gateway_network.as_deref() == Some(network) {
            self.revoke_external(index).await;
        }
        if let Some(endpoint) = self.containers[index].endpoints.remove(network) {
            self.release_endpoint(endpoint).await;
        }
    }

    /// Takes an endpoint out of its sandbox, deletes it and releases its addresses (best
    /// effort).
    async fn release_endpoint(&mut self, endpoint: Endpoint) {
        let Some(n) = self.networks.iter().find(|n| n.id == endpoint.network) else {
            return;
        };
        let (driver, pools, swarm) = (n.driver.clone(), n.pools.clone(), n.swarm.is_some());
        if let Err(e) = driver.leave(&endpoint.network, &endpoint.id).await {
            tracing::warn!("leaving {}: {e}", endpoint.id);
        }
        if let Err(e) = driver
            .delete_endpoint(&endpoint.network, &endpoint.id)
            .await
        {
            tracing::warn!("deleting {}: {e}", endpoint.id);
        }
        if swarm {
            let address = endpoint.ip4.map(|a| a.ip());
            self.withdraw_endpoint(&endpoint.network, &endpoint.id, address)
                .await;
            return;
        }
        let addresses: Vec<IpNetwork> = endpoint.ip4.into_iter().chain(endpoint.ip6).collect();
        self.release_addresses(&pools, &addresses).await;
    }

    /// `docker stop`: the namespace goes, with its endpoints and published ports.
    pub async fn stop_container(&mut self, name_or_id: &str) -> EngineResult<()> {
        let index = self.container_index(name_or_id)?;
        if self.containers[index].state != State::Running {
            return Ok(());
        }
        // dockerd's events for a PID 1 without a TERM handler (busybox's): TERM, ignored,
        // then KILL after the grace period. The engine's containers end at once, on KILL.
        self.container_event(index, "kill", &[("signal", "15")]);
        self.container_event(index, "kill", &[("signal", "9")]);
        let id = self.containers[index].id.clone();
        self.exited(index, 137).await?;
        if let Ok(index) = self.container_index(&id) {
            self.container_event(index, "stop", &[]);
        }
        Ok(())
    }

    /// `docker kill -s SIGNAL` (a number): the container ends at once, with the exit code of a
    /// process that signal killed.
    pub async fn kill_container(&mut self, name_or_id: &str, signal: i32) -> EngineResult<()> {
        let index = self.container_index(name_or_id)?;
        if self.containers[index].state != State::Running {
            let id = &self.containers[index].id;
            return Err(EngineError::new(format!(
                "Cannot kill container: {name_or_id}: Container {id} is not running"
            )));
        }
        self.container_event(index, "kill", &[("signal", &signal.to_string())]);
        self.exited(index, 128 + i64::from(signal)).await
    }

    /// Logs `action` on container `name_or_id` with `attributes`: what only the holder of its
    /// processes sees (`attach`, `exec_start: ...`, `restart`).
    pub fn log_container_event(
        &self,
        name_or_id: &str,
        action: &str,
        attributes: &[(&str, &str)],
    ) -> EngineResult<()> {
        let index = self.container_index(name_or_id)?;
        self.container_event(index, action, attributes);
        Ok(())
    }

    /// Container `name_or_id`'s command exited with `code` (whoever runs it says so): the
    /// container stops as Docker's does when its process ends, and goes if it was made with
    /// `--rm`. Nothing when it was not running.
    pub async fn container_exited(&mut self, name_or_id: &str, code: i64) -> EngineResult<()> {
        let index = self.container_index(name_or_id)?;
        if self.containers[index].state != State::Running {
            return Ok(());
        }
        self.exited(index, code).await
    }

    /// Stops running container `index` with exit code `code`; removes it when it has
    /// `AutoRemove`.
    async fn exited(&mut self, index: usize, code: i64) -> EngineResult<()> {
        self.container_event(index, "die", &[("exitCode", &code.to_string())]);
        self.teardown(index).await;
        let container = &mut self.containers[index];
        container.state = State::Exited;
        container.exit_code = code;
        container.finished_at = super::ids::now();
        self.after_stop(index).await
    }

    /// Container `name_or_id`, just started, could not start its command: `exit_code` 127 when
    /// the program does not exist, 126 when it may not be run, `error` runc's text. As Docker
    /// leaves it, it does not run, has both in inspect's `State`, and is `created` if it never
    /// ran before (`exited` else, its StartedAt then the failed start's); gone with `--rm`.
    pub async fn fail_start(
        &mut self,
        name_or_id: &str,
        exit_code: i64,
        error: &str,
    ) -> EngineResult<()> {
        let index = self.container_index(name_or_id)?;
        if self.containers[index].state == State::Running {
            self.teardown(index).await;
        }
        let container = &mut self.containers[index];
        let ran_before = container.finished_at != ZERO_TIME;
        container.state = if ran_before {
            State::Exited
        } else {
            container.started_at = ZERO_TIME.into();
            State::Created
        };
        (container.exit_code, container.error) = (exit_code, error.to_string());
        self.after_stop(index).await
    }

    /// What follows container `index`'s stop: DNS without it, and its removal when it has
    /// `AutoRemove`.
    async fn after_stop(&mut self, index: usize) -> EngineResult<()> {
        self.refresh_dns();
        if container_auto_removes(&self.containers[index]) {
            let name = self.containers[index].name.clone();
            return self.remove_container(&name, true).await;
        }
        Ok(())
    }

    /// `docker rm [-f]`.
    pub async fn remove_container(&mut self, name_or_id: &str, force: bool) -> EngineResult<()> {
        let index = self.container_index(name_or_id)?;
        if self.containers[index].state == State::Running {
            if !force {
                return Err(EngineError::new(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    self.containers[index].id
                )));
            }
            self.container_event(index, "kill", &[("signal", "9")]);
            self.container_event(index, "die", &[("exitCode", "137")]);
            self.teardown(index).await;
        }
        self.container_event(index, "destroy", &[]);
        let container = self.containers.remove(index);
        self.refresh_dns();
        if let Some(dir) = &container.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }

    /// `docker network connect`.
    pub async fn connect(&mut self, network: &str, body: &NetworkConnect) -> EngineResult<()> {
        let index = self.container_index(&body.container)?;
        let n = self.network_to_join(network).await?;
        let (net_name, net_id, driver) = (
            self.networks[n].name.clone(),
            self.networks[n].id.clone(),
            self.networks[n].driver.name().to_string(),
        );
        // dockerd validates the endpoint's settings (validateNetworkingConfig) before it
        // looks for conflicts between the container's networks.
        self.check_static_ip(&net_name, &body.endpoint_config)?;
        let aliases = body.endpoint_config.aliases.as_ref();
        if matches!(net_name.as_str(), "bridge" | "host" | "none")
            && aliases.is_some_and(|a| !a.is_empty())
        {
            return Err(EngineError::new(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        let mode = self.containers[index].mode().to_string();
        if mode == "host" || driver == special::HOST {
            if mode == "host" && driver != special::HOST {
                return Err(EngineError::new(
                    "container sharing network namespace with another container or host cannot be connected to any other network",
                ));
            }
            return Err(EngineError::new(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        if mode.starts_with("container:") {
            return Err(EngineError::new(
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if mode == "none" || driver == special::NULL {
            return Err(EngineError::new(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode",
            ));
        }
        let attached = self.containers[index]
            .attachments
            .iter()
            .any(|(k, _)| *k == net_id || *k == net_name);
        if attached {
            return Err(EngineError::new(format!(
                "endpoint with name {} already exists in network {net_name}",
                self.containers[index].name
            )));
        }
        if self.containers[index].state == State::Running {
            self.join(index, &net_id, &body.endpoint_config).await?;
            let plugged = match self.refresh_gwbridge(index).await {
                Ok(()) => self.route_and_publish(index).await,
                Err(e) => Err(e),
            };
            let plugged = match plugged {
                Ok(()) => self.ask_join_info(index, &net_id).await,
                Err(e) => Err(e),
            };
            let plugged = match plugged {
                Ok(()) => self.ensure_resolver(index).await,
                Err(e) => Err(e),
            };
            if let Err(e) = plugged {
                // Taken back as a disconnect would.
                if let Err(again) = self.leave_network(index, &net_id).await {
                    tracing::warn!("rolling back a connect: {again}");
                }
                return Err(e);
            }
        }
        self.containers[index]
            .attachments
            .push((net_id.clone(), body.endpoint_config.clone()));
        if self.containers[index].state == State::Running {
            self.refresh_dns();
            self.write_files(index)?;
            self.connected_event(index, &net_id);
        }
        Ok(())
    }

    /// Takes running container `index` off network `network`: its endpoint, then its way out
    /// (docker_gwbridge, default route, published ports) as its other networks give it.
    async fn leave_network(&mut self, index: usize, network: &str) -> EngineResult<()> {
        self.remove_endpoint(index, network).await;
        self.refresh_gwbridge(index).await?;
        self.route_and_publish(index).await
    }

    /// `docker network disconnect [-f]`.
    pub async fn disconnect(
        &mut self,
        network: &str,
        container: &str,
        force: bool,
    ) -> EngineResult<()> {
        let index = self.container_index(container)?;
        let (net_id, net_name, host) = match self.network_index(network) {
            Ok(n) => (
                self.networks[n].id.clone(),
                self.networks[n].name.clone(),
                self.networks[n].driver.name() == special::HOST,
            ),
            // `-f` also cleans up attachments to networks that are gone.
            Err(_) if force => (network.to_string(), network.to_string(), false),
            Err(e) => return Err(e),
        };
        if host {
            return Err(EngineError::new(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        let running = self.containers[index].state == State::Running;
        let position = self.containers[index]
            .attachments
            .iter()
            .position(|(k, _)| *k == net_id || *k == net_name);
        let Some(position) = position else {
            let id = &self.containers[index].id;
            let the = if running { "" } else { "the " };
            return Err(EngineError::new(format!(
                "container {id} is not connected to {the}network {net_name}"
            )));
        };
        self.containers[index].attachments.remove(position);
        if running {
            self.leave_network(index, &net_id).await?;
            self.refresh_dns();
            self.write_files(index)?;
        }
        if let Ok(n) = self.network_index(&net_id) {
            // dockerd 20.10 logs a running container's disconnection twice: once as it leaves
            // the network, once as the request ends.
            let container = &self.containers[index].id;
            for _ in 0..1 + usize::from(running) {
                self.network_event(n, "disconnect", &[("container", container)]);
            }
        }
        Ok(())
    }

    /// The namespace of a container's sandbox (the host's for `--network host`).
    pub(super) fn sandbox_netns(&self, index: usize) -> EngineResult<Netns> {
        match &self.containers[index].sandbox {
            Some(Sandbox::Own(netns)) => Ok(netns.clone()),
            Some(Sandbox::Host) => Ok(self.host.clone()),
            Some(Sandbox::Shared(other)) => {
                let other = self.container_index(other)?;
                self.sandbox_netns(other)
            }
            None => Err(EngineError::new(format!(
                "container {} is not running",
                self.containers[index].id
            ))),
        }
    }

    /// The network namespace of a running container.
    pub fn container_netns(&self, name_or_id: &str) -> EngineResult<Netns> {
        let index = self.container_index(name_or_id)?;
        self.sandbox_netns(index)
    }

    /// A file as the container sees it: `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`.
    pub fn container_file(&self, name_or_id: &str, path: &str) -> EngineResult<String> {
        let index = self.container_index(name_or_id)?;
        let container = &self.containers[index];
        container.files.get(path).cloned().ok_or_else(|| {
            if files::PATHS.contains(&path) {
                EngineError::new(format!("{path}: {} has not run yet", container.name))
            } else {
                EngineError::new(format!(
                    "{path}: only {} can be read",
                    files::PATHS.join(", ")
                ))
            }
        })
    }

    /// Writes the container's hosts, resolv.conf and hostname; a container sharing another's
    /// namespace gets that one's (dockerd gives it the same files), and so do the containers
    /// sharing its own.
    fn write_files(&mut self, index: usize) -> EngineResult<()> {
        let owner = match &self.containers[index].sandbox {
            Some(Sandbox::Shared(id)) => self.containers.iter().find(|c| c.id == *id),
            _ => None,
        };
        let contents = match owner {
            Some(owner) => files::PATHS.map(|p| owner.files.get(p).cloned().unwrap_or_default()),
            None => self.own_files(index),
        };
        let container = &mut self.containers[index];
        for (path, text) in files::PATHS.into_iter().zip(contents) {
            if let Some(dir) = &container.dir {
                let file = dir.join(files::file_name(path));
                std::fs::write(&file, &text)
                    .map_err(|e| EngineError::new(format!("{}: {e}", file.display())))?;
            }
            container.files.insert(path, text);
        }
        let id = container.id.clone();
        let sharers: Vec<usize> = (0..self.containers.len())
            .filter(
                |&i| matches!(&self.containers[i].sandbox, Some(Sandbox::Shared(o)) if *o == id),
            )
            .collect();
        for sharer in sharers {
            self.write_files(sharer)?;
        }
        Ok(())
    }

    /// The contents of a container's own hosts, resolv.conf and hostname.
    fn own_files(&self, index: usize) -> [String; 3] {
        let container = &self.containers[index];
        let own: Vec<IpAddr> = container
            .endpoints
            .values()
            .flat_map(|e| e.ip4.iter().chain(e.ip6.iter()).map(|a| a.ip()))
            .collect();
        let extra: Vec<(String, IpAddr)> = container
            .config
            .host_config
            .extra_hosts
            .iter()
            .flatten()
            .filter_map(|h| {
                h.rsplit_once(':')
                    .and_then(|(n, ip)| Some((n.to_string(), ip.parse().ok()?)))
            })
            .collect();
        let links = self.link_entries(index);
        let user_network = container.endpoints.values().any(|e| {
            self.networks
                .iter()
                .any(|n| n.id == e.network && n.is_user_defined())
        });
        let servers = self.nameservers(index);
        [
            files::hosts(&own, &fqdn(container), &extra, &links),
            files::resolv_conf(
                user_network,
                &servers,
                &container.config.host_config.dns_search,
                &container.config.host_config.dns_options,
            ),
            format!("{}\n", container.hostname),
        ]
    }

    /// Legacy links of a container on the default bridge, as /etc/hosts entries.
    fn link_entries(&self, index: usize) -> Vec<LinkEntry> {
        let container = &self.containers[index];
        let Some(bridge) = self.networks.iter().find(|n| n.default_bridge) else {
            return Vec::new();
        };
        if !container.endpoints.contains_key(&bridge.id) {
            return Vec::new();
        }
        let mut entries = Vec::new();
        for link in container.config.host_config.links.iter().flatten() {
            let (name, alias) = parse_link(link);
            let Some(target) = self.containers.iter().find(|c| c.name == name) else {
                continue;
            };
            if let Some(ip) = target.endpoints.get(&bridge.id).and_then(|e| e.ip4) {
                entries.push(LinkEntry {
                    ip: ip.ip(),
                    alias: alias.to_string(),
                    short_id: target.id[..12].to_string(),
                    name: target.name.clone(),
                });
            }
        }
        entries
    }
}

/// A fresh namespace with `lo` up.
async fn new_sandbox() -> EngineResult<Netns> {
    let netns = Netns::new()
        .map_err(|e| EngineError::new(format!("cannot create a network namespace: {e}")))?;
    let nl = netns
        .netlink()
        .map_err(|e| EngineError::new(format!("netlink: {e}")))?;
    nl.link()
        .set(rtnetlink::LinkUnspec::new_with_name("lo").up().build())
        .execute()
        .await
        .map_err(|e| EngineError::new(format!("set lo up: {e}")))?;
    nl.close().await;
    Ok(netns)
}

/// Points the sandbox's default routes at `gateways` (replacing any), or removes them.
async fn set_default_routes(sandbox: &Netns, gateways: &[IpAddr]) -> EngineResult<()> {
    let nl = sandbox
        .netlink()
        .map_err(|e| EngineError::new(format!("open netlink in the sandbox: {e}")))?;
    for v6 in [false, true] {
        let message = if v6 {
            RouteMessageBuilder::<Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new().build()
        };
        // Deleting a default route that is not there is fine.
        let _ = nl.route().del(message).execute().await;
    }
    for gateway in gateways {
        let message = match *gateway {
            IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).build(),
        };
        nl.route()
            .add(message)
            .execute()
            .await
            .map_err(|e| EngineError::new(format!("default route via {gateway}: {e}")))?;
    }
    nl.close().await;
    Ok(())
}

/// The address `--ip` (IPv4) or `--ip6` asks for, if any.
fn wanted_ip(settings: &EndpointSettings, v6: bool) -> EngineResult<Option<IpAddr>> {
    let text = settings.ipam_config.as_ref().and_then(|c| {
        if v6 {
            c.ipv6_address.clone()
        } else {
            c.ipv4_address.clone()
        }
    });
    match text.filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| EngineError::new(format!("invalid IP address: {t}"))),
        None => Ok(None),
    }
}

/// The container's name in /etc/hosts: its hostname, with `--domainname` when given
/// (libnetwork's `updateHostsFile`).
fn fqdn(container: &Container) -> String {
    match container.config.domainname.as_str() {
        "" => container.hostname.clone(),
        domain => format!("{}.{domain}", container.hostname),
    }
}

/// An endpoint's `--link-local-ip` addresses, with the prefix libnetwork gives them (/16, and
/// /64 for IPv6), refused with dockerd's and libnetwork's texts when one is no address or not
/// link-local.
fn link_local_addresses(settings: &EndpointSettings) -> EngineResult<Vec<IpNetwork>> {
    let texts = (settings.ipam_config.as_ref())
        .and_then(|c| c.link_local_ips.clone())
        .unwrap_or_default();
    let mut addresses = Vec::new();
    for text in texts.iter().filter(|t| !t.is_empty()) {
        let ip: IpAddr = text.parse().map_err(|_| {
            EngineError::new(format!(
                "Invalid link-local IP address: [{}]",
                texts.join(" ")
            ))
        })?;
        let (link_local, prefix) = match ip {
            IpAddr::V4(v4) => (v4.is_link_local(), 16),
            IpAddr::V6(v6) => (v6.is_unicast_link_local(), 64),
        };
        if !link_local {
            return Err(EngineError::new(format!(
                "invalid link local IP address: {ip}"
            )));
        }
        addresses.push(IpNetwork::new(ip, prefix).expect("a prefix within the family's"));
    }
    Ok(addresses)
}

fn parse_mac(text: &str) -> EngineResult<[u8; 6]> {
    crate::mac::parse(text)
        .ok_or_else(|| EngineError::new(format!("{text} is not a valid mac address")))
}

/// Whether a container goes when it stops (`docker run --rm`).
/// dockerd's checks of a create's network mode against its other options, made as it decodes
/// the request (runconfig's `validateNetMode`), before anything else.
fn validate_net_mode(body: &ContainerCreate) -> Result<(), &'static str> {
    let host = &body.host_config;
    let mode = host.network_mode.as_str();
    let container = mode.starts_with("container:");
    let links = host.links.as_ref().is_some_and(|l| !l.is_empty());
    let mac = body.mac_address.as_ref().is_some_and(|m| !m.is_empty());
    let conflicts = [
        (
            mode == "container" || mode == "container:",
            "Invalid network mode: invalid container format container:<name|id>",
        ),
        (
            container && !body.hostname.is_empty(),
            "conflicting options: hostname and the network mode",
        ),
        (
            container && links,
            "conflicting options: container type network can't be used with links. This would result in undefined behavior",
        ),
        (
            container && !host.dns.is_empty(),
            "conflicting options: dns and the network mode",
        ),
        (
            container && host.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()),
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            (container || mode == "host") && mac,
            "conflicting options: mac-address and the network mode",
        ),
        (
            container && (!host.port_bindings.is_empty() || host.publish_all_ports),
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            container && !body.exposed_ports.is_empty(),
            "conflicting options: port exposing and the container type network mode",
        ),
        (
            host.uts_mode == "host" && !body.hostname.is_empty(),
            "conflicting options: hostname and the UTS mode",
        ),
        (
            mode == "host" && links,
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        ),
    ];
    match conflicts.iter().find(|(conflict, _)| *conflict) {
        Some((_, message)) => Err(message),
        None => Ok(()),
    }
}

fn container_auto_removes(container: &super::model::Container) -> bool {
    container.config.host_config.auto_remove
}
