//! The `remote` driver: a network plugin behind the [`Driver`] trait, as libnetwork's
//! `drivers/remote` and its sandbox use one. The plugin makes the links, in the docker host's
//! namespace; the engine moves the link `Join` names into the container, renames it, gives it
//! the endpoint's MAC and addresses, and adds the routes the plugin asks for. A refusal reads
//! as dockerd's (`remote: ERR` for a 200 with `Err`, `NetworkDriver.METHOD: ERR` otherwise);
//! what dockerd only logs (a failed `Leave`, `DeleteEndpoint` or `DeleteNetwork`) is logged.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Mutex, MutexGuard};

use drydock_netsim::{Netns, link};
use futures::future::BoxFuture;
use ipnetwork::IpNetwork;
use rtnetlink::{LinkUnspec, RouteMessageBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::client::{ActivationError, CallError, Client};
use super::protocol::{
    self, CreateEndpoint, CreateEndpointAnswer, EndpointInterface, EndpointRef, JoinAnswer,
    NetworkRef, PoolData,
};
use crate::driver::{
    Capabilities, Driver, DriverError, Interface, JoinInfo, NetworkInfo, NetworkRequest, Scope,
    configure_interface, netlink_error,
};
use crate::mac;

/// The interface kind a network plugin declares in its manifest.
pub const NETWORK_DRIVER: &str = "NetworkDriver";

/// A network plugin, activated.
#[derive(Debug)]
pub struct RemoteDriver {
    name: String,
    client: Client,
    capabilities: Capabilities,
    host: Netns,
    endpoints: Mutex<BTreeMap<String, RemoteEndpoint>>,
}

/// What the engine keeps of an endpoint between calls.
#[derive(Debug, Clone, Default)]
struct RemoteEndpoint {
    addresses: Vec<IpNetwork>,
    mac: Option<[u8; 6]>,
    /// Where its link went on `Join`: the sandbox, the link's name there, its name before.
    joined: Option<(Netns, String, String)>,
}

/// Why a plugin could not become a driver, in dockerd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// `Plugin.Activate` failed or does not list `NetworkDriver`.
    #[error(transparent)]
    Activation(#[from] ActivationError),
    /// `GetCapabilities` failed or declared a scope dockerd does not know (dockerd logs why
    /// and never registers the driver).
    #[error("could not resolve driver {name} in registry")]
    Unregistered {
        /// The plugin's name.
        name: String,
        /// What dockerd logs.
        cause: String,
    },
}

impl LoadError {
    /// What the engine logs about it.
    pub fn cause(&self) -> String {
        match self {
            LoadError::Activation(e) => e.cause(),
            LoadError::Unregistered { cause, .. } => cause.clone(),
        }
    }
}

impl RemoteDriver {
    /// Activates plugin `name` at `client`'s address and registers it as dockerd does:
    /// `Plugin.Activate` must list `NetworkDriver`, then `GetCapabilities` gives the scopes.
    pub async fn activate(name: &str, client: Client, host: Netns) -> Result<Self, LoadError> {
        client.activate(NETWORK_DRIVER).await?;
        let unregistered = |cause: String| LoadError::Unregistered {
            name: name.to_string(),
            cause,
        };
        let answer: protocol::Capabilities = (call(&client, "GetCapabilities", None::<&()>).await)
            .map_err(|e| unregistered(e.to_string()))?;
        let scope = |text: &str| match text {
            "local" => Ok(Scope::Local),
            "global" => Ok(Scope::Global),
            other => Err(unregistered(format!(
                "invalid capability: expecting 'local' or 'global', got {other}"
            ))),
        };
        let data_scope = scope(&answer.scope)?;
        let connectivity_scope = match answer.connectivity_scope.as_str() {
            "" => data_scope,
            "local" => Scope::Local,
            "global" => Scope::Global,
            // dockerd's text names Scope here too.
            _ => {
                return Err(unregistered(format!(
                    "invalid capability: expecting 'local' or 'global', got {}",
                    answer.scope
                )));
            }
        };
        Ok(RemoteDriver {
            name: name.to_string(),
            client,
            capabilities: Capabilities {
                data_scope,
                connectivity_scope,
            },
            host,
            endpoints: Mutex::default(),
        })
    }

    /// What a swarm manager's network allocator does when a plugin is activated there (it
    /// keeps a registry of drivers of its own, as swarmkit does): asks for the capabilities
    /// once more; a failure is only logged.
    pub async fn register_with_allocator(&self) {
        if let Err(e) = call::<Value>(&self.client, "GetCapabilities", None::<&()>).await {
            tracing::warn!(
                "driver {}: the swarm's allocator could not register it: {e}",
                self.name
            );
        }
    }

    fn endpoints(&self) -> MutexGuard<'_, BTreeMap<String, RemoteEndpoint>> {
        self.endpoints.lock().expect("remote driver state lock")
    }

    /// `NetworkDriver.METHOD` with `body`, its answer read as `T`; an answer's `Err` fails it.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        body: &impl Serialize,
    ) -> Result<T, DriverError> {
        (call(&self.client, method, Some(body)).await)
            .map_err(|e| DriverError::Refused(e.to_string()))
    }

    /// A call whose failure dockerd only logs.
    async fn call_logged(&self, method: &str, body: &impl Serialize) {
        if let Err(e) = self.call::<Value>(method, body).await {
            tracing::warn!("driver {} {method}: {e}", self.name);
        }
    }
}

/// `NetworkDriver.METHOD`: transport failures and statuses as the client words them, a 200
/// whose `Err` is set as `remote: ERR`.
async fn call<T: DeserializeOwned>(
    client: &Client,
    method: &str,
    body: Option<&impl Serialize>,
) -> Result<T, CallError> {
    let method = format!("{NETWORK_DRIVER}.{method}");
    let answer = protocol::go_keys(client.call(&method, body).await?);
    if let Some(err) = answer.get("Err").and_then(Value::as_str)
        && !err.is_empty()
    {
        return Err(CallError::Remote(err.to_string()));
    }
    serde_json::from_value(answer).map_err(|e| CallError::Malformed(e.to_string()))
}

impl Driver for RemoteDriver {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn create_network<'a>(
        &'a self,
        request: &'a NetworkRequest,
    ) -> BoxFuture<'a, Result<NetworkInfo, DriverError>> {
        Box::pin(async move {
            let pools = |v6: bool| -> Vec<PoolData> {
                (request.pools.iter())
                    .filter(|p| p.subnet.is_ipv6() == v6)
                    .map(|p| PoolData {
                        address_space: request.address_space.clone(),
                        pool: p.subnet.to_string(),
                        gateway: p.gateway.map(|g| g.to_string()).unwrap_or_default(),
                        aux_addresses: BTreeMap::new(),
                    })
                    .collect()
            };
            let mut options = BTreeMap::new();
            options.insert(protocol::ENABLE_IPV6.to_string(), json!(request.ipv6));
            options.insert(protocol::GENERIC.to_string(), json!(request.options));
            if request.internal {
                options.insert(protocol::INTERNAL.to_string(), json!(true));
            }
            let body = protocol::CreateNetwork {
                network_id: request.id.clone(),
                options,
                ipv4_data: pools(false),
                ipv6_data: pools(true),
            };
            self.call::<Value>("CreateNetwork", &body).await?;
            Ok(NetworkInfo::default())
        })
    }

    fn delete_network<'a>(&'a self, network: &'a str) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let body = NetworkRef {
                network_id: network.to_string(),
            };
            self.call_logged("DeleteNetwork", &body).await;
            Ok(())
        })
    }

    fn create_endpoint<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        interface: &'a Interface,
    ) -> BoxFuture<'a, Result<Option<[u8; 6]>, DriverError>> {
        Box::pin(async move {
            let v4 = interface.addresses.iter().find(|a| a.is_ipv4());
            let v6 = interface.addresses.iter().find(|a| a.is_ipv6());
            let text = |a: Option<&IpNetwork>| a.map(ToString::to_string).unwrap_or_default();
            let body = CreateEndpoint {
                network_id: network.to_string(),
                endpoint_id: endpoint.to_string(),
                interface: EndpointInterface {
                    address: text(v4),
                    address_ipv6: text(v6),
                    mac_address: interface.mac.map(mac::text).unwrap_or_default(),
                },
                options: BTreeMap::new(),
            };
            let answer: CreateEndpointAnswer = self.call("CreateEndpoint", &body).await?;
            let mut made = RemoteEndpoint {
                addresses: interface.addresses.clone(),
                mac: interface.mac,
                joined: None,
            };
            if let Some(given) = answer.interface
                && let Err(e) = take_answer(&given, &mut made)
            {
                let refs = EndpointRef::new(network, endpoint);
                let rolled = match self.call::<Value>("DeleteEndpoint", &refs).await {
                    Ok(_) => "rolled back".to_string(),
                    Err(e) => format!("failed to roll back: {e}"),
                };
                return Err(DriverError::Refused(format!("{e}; {rolled}")));
            }
            let mac = made.mac;
            self.endpoints().insert(endpoint.to_string(), made);
            Ok(mac)
        })
    }

    fn delete_endpoint<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let body = EndpointRef::new(network, endpoint);
            self.call_logged("DeleteEndpoint", &body).await;
            self.endpoints().remove(endpoint);
            Ok(())
        })
    }

    fn join<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
        sandbox: &'a Netns,
        ifname: &'a str,
    ) -> BoxFuture<'a, Result<JoinInfo, DriverError>> {
        Box::pin(async move {
            let known = self.endpoints().get(endpoint).cloned().unwrap_or_default();
            let body = protocol::Join {
                network_id: network.to_string(),
                endpoint_id: endpoint.to_string(),
                sandbox_key: sandbox_key(sandbox),
                options: BTreeMap::new(),
            };
            let answer: JoinAnswer = self.call("Join", &body).await?;
            let joined = Joined::read(&answer).map_err(DriverError::Refused)?;
            let refs = EndpointRef::new(network, endpoint);
            let mut info = JoinInfo {
                interface: None,
                gateway4: joined.gateway4,
                gateway6: joined.gateway6,
                disable_gateway_service: answer.disable_gateway_service,
            };
            let Some((source, prefix)) = &joined.interface else {
                return Ok(info);
            };
            let name = match prefix.as_str() {
                "eth" | "" => ifname.to_string(),
                prefix => next_name(sandbox, prefix).await?,
            };
            let placed = self
                .place(sandbox, source, &name, &known, &joined.routes)
                .await;
            if let Err(e) = placed {
                // libnetwork's sandbox gives the link back, then the driver is told to leave.
                let _ = give_back(sandbox, &name, source, &self.host).await;
                self.call_logged("Leave", &refs).await;
                return Err(e);
            }
            if let Some(e) = self.endpoints().get_mut(endpoint) {
                e.joined = Some((sandbox.clone(), name.clone(), source.clone()));
            }
            info.interface = Some(name);
            Ok(info)
        })
    }

    fn leave<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let body = EndpointRef::new(network, endpoint);
            self.call_logged("Leave", &body).await;
            let joined = (self.endpoints().get_mut(endpoint)).and_then(|e| e.joined.take());
            if let Some((sandbox, name, source)) = joined
                && let Err(e) = give_back(&sandbox, &name, &source, &self.host).await
            {
                tracing::warn!("driver {}: giving {name} back as {source}: {e}", self.name);
            }
            Ok(())
        })
    }

    fn node_discovered<'a>(&'a self, address: IpAddr) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let body = protocol::NodeDiscovery::of_self(address);
            self.call_logged("DiscoverNew", &body).await;
        })
    }

    fn endpoint_oper_info<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        // What the plugin answers is not shown: dockerd reads port maps of its own types
        // there, which JSON never decodes to. Only its failure counts (even a 404).
        Box::pin(async move {
            let body = EndpointRef::new(network, endpoint);
            self.call::<Value>("EndpointOperInfo", &body)
                .await
                .map(drop)
        })
    }

    fn program_external_connectivity<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let body = json!({"NetworkID": network, "EndpointID": endpoint, "Options": {}});
            self.optional("ProgramExternalConnectivity", &body).await
        })
    }

    fn revoke_external_connectivity<'a>(
        &'a self,
        network: &'a str,
        endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            let body = EndpointRef::new(network, endpoint);
            self.optional("RevokeExternalConnectivity", &body).await
        })
    }
}

impl RemoteDriver {
    /// A method plugins need not serve: a 404 is success.
    async fn optional(&self, method: &str, body: &impl Serialize) -> Result<(), DriverError> {
        match call::<Value>(&self.client, method, Some(body)).await {
            Err(e) if e.is_not_found() => Ok(()),
            answer => answer
                .map(drop)
                .map_err(|e| DriverError::Refused(e.to_string())),
        }
    }

    /// Moves the plugin's link `source` from the docker host into `sandbox` as `name`, with
    /// the endpoint's MAC and addresses, up, then the plugin's static routes.
    async fn place(
        &self,
        sandbox: &Netns,
        source: &str,
        name: &str,
        endpoint: &RemoteEndpoint,
        routes: &[Route],
    ) -> Result<(), DriverError> {
        let nl = self
            .host
            .netlink()
            .map_err(DriverError::io("open netlink in the docker host"))?;
        let moved = async {
            let index = link::index(&nl, source).await.map_err(|_| {
                DriverError::Refused(format!(
                    "failed to add interface {source} to sandbox: failed to get link by name \"{source}\": Link not found"
                ))
            })?;
            let mut message = LinkUnspec::new_with_index(index)
                .setns_by_fd(sandbox.as_fd().as_raw_fd())
                .name(name.to_string());
            if let Some(mac) = endpoint.mac {
                message = message.address(mac.to_vec());
            }
            (nl.link().set(message.build()).execute().await).map_err(|e| {
                DriverError::Refused(format!(
                    "failed to add interface {source} to sandbox: {e}"
                ))
            })
        }
        .await;
        nl.close().await;
        moved?;
        let what = format!("{source} as {name}");
        configure_interface(sandbox, name, &endpoint.addresses, &what).await?;
        add_routes(sandbox, name, routes).await
    }
}

/// A `Join` answer, read and checked before anything moves.
#[derive(Debug, Default)]
struct Joined {
    /// `SrcName` and `DstPrefix`, when the plugin gives a link.
    interface: Option<(String, String)>,
    gateway4: Option<std::net::Ipv4Addr>,
    gateway6: Option<std::net::Ipv6Addr>,
    routes: Vec<Route>,
}

/// A static route the plugin asks for (libnetwork `types.StaticRoute`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    destination: IpNetwork,
    /// `RouteType` 0: through `next_hop`; 1: on the link.
    next_hop: Option<IpAddr>,
}

impl Joined {
    /// The answer's fields, with libnetwork's texts for the ones that do not parse.
    fn read(answer: &JoinAnswer) -> Result<Joined, String> {
        let mut joined = Joined::default();
        if let Some(names) = &answer.interface_name
            && !names.src_name.is_empty()
        {
            joined.interface = Some((names.src_name.clone(), names.dst_prefix.clone()));
        }
        if !answer.gateway.is_empty() {
            let parsed = answer.gateway.parse::<IpAddr>();
            match parsed {
                Ok(IpAddr::V4(gateway)) => joined.gateway4 = Some(gateway),
                _ => return Err(format!("unable to parse Gateway \"{}\"", answer.gateway)),
            }
        }
        if !answer.gateway_ipv6.is_empty() {
            match answer.gateway_ipv6.parse::<IpAddr>() {
                Ok(IpAddr::V6(gateway)) => joined.gateway6 = Some(gateway),
                _ => {
                    return Err(format!(
                        "unable to parse GatewayIPv6 \"{}\"",
                        answer.gateway_ipv6
                    ));
                }
            }
        }
        for route in &answer.static_routes {
            let destination = (route.destination.parse::<IpNetwork>())
                .map_err(|_| format!("invalid CIDR address: {}", route.destination))?;
            let next_hop = match route.next_hop.as_str() {
                "" => None,
                text => Some(
                    text.parse::<IpAddr>()
                        .map_err(|_| format!("failed to parse nexthop IP {text}"))?,
                ),
            };
            let next_hop = if route.route_type == 1 {
                None
            } else {
                next_hop
            };
            joined.routes.push(Route {
                destination,
                next_hop,
            });
        }
        Ok(joined)
    }
}

/// Takes what a `CreateEndpoint` answer gives: a MAC or address only where the engine gave
/// none (libnetwork refuses to change one it gave).
fn take_answer(given: &EndpointInterface, endpoint: &mut RemoteEndpoint) -> Result<(), String> {
    if !given.mac_address.is_empty() {
        let new = mac::parse(&given.mac_address)
            .ok_or_else(|| format!("address {}: invalid MAC address", given.mac_address))?;
        if let Some(old) = endpoint.mac {
            return Err(format!(
                "driver modified interface MAC address: endpoint interface MAC address present ({}). Cannot be modified with {}.",
                mac::text(old),
                mac::text(new)
            ));
        }
        endpoint.mac = Some(new);
    }
    for text in [&given.address, &given.address_ipv6] {
        if text.is_empty() {
            continue;
        }
        let new: IpNetwork = (text.parse()).map_err(|_| format!("invalid CIDR address: {text}"))?;
        let family = |a: &&IpNetwork| a.is_ipv4() == new.is_ipv4();
        if let Some(old) = endpoint.addresses.iter().find(family) {
            return Err(format!(
                "driver modified interface address: endpoint interface IP present ({old}). Cannot be modified with ({new})."
            ));
        }
        endpoint.addresses.push(new);
    }
    Ok(())
}

/// The path a plugin may open to enter the sandbox (dockerd gives its bind mount,
/// `/var/run/docker/netns/ID`): the engine's own descriptor of it, through `/proc`.
fn sandbox_key(sandbox: &Netns) -> String {
    format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        sandbox.as_fd().as_raw_fd()
    )
}

/// `PREFIX` and the first number no link of the sandbox has after it (libnetwork numbers
/// each prefix's interfaces from 0).
async fn next_name(sandbox: &Netns, prefix: &str) -> Result<String, DriverError> {
    let links = (link::list(sandbox).await).map_err(DriverError::io("list the sandbox's links"))?;
    let taken = |n: usize| links.iter().any(|l| l.name == format!("{prefix}{n}"));
    let free = (0..).find(|n| !taken(*n)).expect("a free number");
    Ok(format!("{prefix}{free}"))
}

/// Moves link `name` out of `sandbox` back to the docker host as `source` (libnetwork's
/// sandbox does so on leave; the plugin deletes it on `DeleteEndpoint`).
async fn give_back(
    sandbox: &Netns,
    name: &str,
    source: &str,
    host: &Netns,
) -> Result<(), DriverError> {
    let nl = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let result = async {
        let Ok(index) = link::index(&nl, name).await else {
            return Ok(());
        };
        let message = LinkUnspec::new_with_index(index)
            .down()
            .setns_by_fd(host.as_fd().as_raw_fd())
            .name(source.to_string())
            .build();
        (nl.link().set(message).execute().await).map_err(netlink_error(format!("give back {name}")))
    }
    .await;
    nl.close().await;
    result
}

/// Adds the plugin's static routes in the sandbox, on link `name`.
async fn add_routes(sandbox: &Netns, name: &str, routes: &[Route]) -> Result<(), DriverError> {
    if routes.is_empty() {
        return Ok(());
    }
    let nl = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let result = async {
        let index = (link::index(&nl, name).await).map_err(netlink_error(name))?;
        for route in routes {
            let d = route.destination;
            let builder = RouteMessageBuilder::<IpAddr>::new()
                .destination_prefix(d.ip(), d.prefix())
                .map_err(|e| DriverError::Refused(format!("route to {d}: {e}")))?
                .output_interface(index);
            let builder = match route.next_hop {
                Some(via) => builder
                    .gateway(via)
                    .map_err(|e| DriverError::Refused(format!("route to {d}: {e}")))?,
                None => builder,
            };
            (nl.route().add(builder.build()).execute().await)
                .map_err(netlink_error(format!("static route to {d}")))?;
        }
        Ok(())
    }
    .await;
    nl.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::protocol::{InterfaceName, StaticRoute};

    #[test]
    fn a_join_answer_is_read_with_libnetworks_texts() {
        let answer = JoinAnswer {
            interface_name: Some(InterfaceName {
                src_name: "veth1".into(),
                dst_prefix: "eth".into(),
            }),
            gateway: "10.0.0.1".into(),
            static_routes: vec![
                StaticRoute {
                    destination: "10.9.0.0/16".into(),
                    route_type: 0,
                    next_hop: "10.0.0.254".into(),
                },
                StaticRoute {
                    destination: "10.8.0.0/16".into(),
                    route_type: 1,
                    next_hop: String::new(),
                },
            ],
            ..JoinAnswer::default()
        };
        let joined = Joined::read(&answer).unwrap();
        assert_eq!(joined.interface, Some(("veth1".into(), "eth".into())));
        assert_eq!(joined.gateway4, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            joined.routes[0].next_hop,
            Some("10.0.0.254".parse().unwrap())
        );
        assert_eq!(joined.routes[1].next_hop, None);
        let bad = JoinAnswer {
            gateway: "ten".into(),
            ..JoinAnswer::default()
        };
        assert_eq!(
            Joined::read(&bad).unwrap_err(),
            "unable to parse Gateway \"ten\""
        );
        let bad_route = JoinAnswer {
            static_routes: vec![StaticRoute {
                destination: "10.9/99".into(),
                ..StaticRoute::default()
            }],
            ..JoinAnswer::default()
        };
        assert_eq!(
            Joined::read(&bad_route).unwrap_err(),
            "invalid CIDR address: 10.9/99"
        );
    }

    #[test]
    fn an_endpoint_answer_may_fill_in_but_never_change() {
        let mut endpoint = RemoteEndpoint {
            addresses: vec!["10.0.0.2/24".parse().unwrap()],
            ..RemoteEndpoint::default()
        };
        let given = EndpointInterface {
            mac_address: "02:42:0a:00:00:09".into(),
            address_ipv6: "fd00::9/64".into(),
            ..EndpointInterface::default()
        };
        take_answer(&given, &mut endpoint).unwrap();
        assert_eq!(endpoint.mac, mac::parse("02:42:0a:00:00:09"));
        assert_eq!(endpoint.addresses.len(), 2);
        let rewritten = EndpointInterface {
            address: "10.250.250.99/24".into(),
            ..EndpointInterface::default()
        };
        assert_eq!(
            take_answer(&rewritten, &mut endpoint).unwrap_err(),
            "driver modified interface address: endpoint interface IP present (10.0.0.2/24). Cannot be modified with (10.250.250.99/24)."
        );
        let again = take_answer(&given, &mut endpoint).unwrap_err();
        assert!(
            again.starts_with("driver modified interface MAC address"),
            "{again}"
        );
    }
}
