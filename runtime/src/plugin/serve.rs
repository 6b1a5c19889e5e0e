//! The plugin server: `POST /Plugin.Activate` and `/NetworkDriver.*` over a unix socket (axum),
//! each call done by a built-in driver in the docker host's namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use drydock_netsim::Netns;
use ipnetwork::IpNetwork;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::protocol::{
    AddressAnswer, AddressCall, AddressSpaces, Capabilities, CreateEndpoint, CreateEndpointAnswer,
    CreateNetwork, EndpointInterface, EndpointRef, Failure, GATEWAY, InterfaceName,
    IpamCapabilities, Join, JoinAnswer, MEDIA_TYPE, Manifest, NetworkRef, PoolRef,
    REQUEST_ADDRESS_TYPE, ReleaseAddress, RequestPool, RequestPoolAnswer, StaticRoute, read,
};
use crate::driver::sublink::{Kind, Sublink};
use crate::driver::{Driver, Interface, bridge};
use crate::ipam::{Ipam, PoolId, PoolRequest};
use crate::{firewall, mac};

/// The drivers `drydock plugin serve` serves.
pub const SERVED: [&str; 3] = ["bridge", "macvlan", "ipvlan"];

/// A built-in driver served as a plugin (and the built-in IPAM, when asked), and what dockerd
/// made with them.
#[derive(Debug)]
pub struct PluginServer {
    driver: Arc<dyn Driver>,
    /// Whether its endpoints get a MAC of their own (not ipvlan's: they share the parent's).
    elects_mac: bool,
    host: Netns,
    state: Mutex<Made>,
    /// The built-in IPAM, when served.
    ipam: Option<Mutex<ServedIpam>>,
}

/// The built-in IPAM, and its pools by the id given to dockerd.
type ServedIpam = (Ipam, BTreeMap<String, PoolId>);

/// Networks and endpoints made through the server (calls may come twice: dockerd retries on a
/// broken connection).
#[derive(Debug, Default)]
struct Made {
    /// Network id → its bridge on the docker host, if it has one.
    networks: BTreeMap<String, Option<String>>,
    /// Endpoint id → what the server keeps of it.
    endpoints: BTreeMap<String, ServedEndpoint>,
}

/// An endpoint made through the server.
#[derive(Debug, Clone, Copy, Default)]
struct ServedEndpoint {
    /// It joined: its link exists.
    joined: bool,
    /// It has an IPv6 address.
    ipv6: bool,
}

impl PluginServer {
    /// Built-in driver `driver` serving networks in `host`, the docker host's namespace; with
    /// `ipam`, the built-in IPAM too (Docker 20.10's default pools), under the same name.
    pub fn new(driver: &str, ipam: bool, host: Netns) -> Result<Arc<Self>, String> {
        let (driver, elects_mac): (Arc<dyn Driver>, bool) = match driver {
            "bridge" => (Arc::new(bridge::Bridge::staging(host.clone())), true),
            "macvlan" => (
                Arc::new(Sublink::staging(Kind::Macvlan, host.clone())),
                true,
            ),
            // Its endpoints share their parent's MAC.
            "ipvlan" => (
                Arc::new(Sublink::staging(Kind::Ipvlan, host.clone())),
                false,
            ),
            "overlay" => {
                return Err("the overlay driver is not served: its networks are swarm networks, and dockerd 20.10 takes no v1 (socket) plugin in a swarm".into());
            }
            other => {
                return Err(format!(
                    "the {other} driver is not served: served are {}",
                    SERVED.join(", ")
                ));
            }
        };
        Ok(Arc::new(Self {
            elects_mac,
            driver,
            host,
            state: Mutex::new(Made::default()),
            ipam: ipam.then(|| Mutex::new((Ipam::new(), BTreeMap::new()))),
        }))
    }

    /// The APIs served.
    fn manifest(&self) -> Manifest {
        let mut implements = vec!["NetworkDriver".to_string()];
        implements.extend(self.ipam.is_some().then(|| "IpamDriver".to_string()));
        Manifest { implements }
    }

    fn ipam(&self) -> Result<std::sync::MutexGuard<'_, ServedIpam>, String> {
        let ipam = self
            .ipam
            .as_ref()
            .ok_or("this plugin serves no IPAM (--ipam default)")?;
        Ok(ipam.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A pool of the built-in IPAM; its gateway (the lowest free address) in the data.
    async fn request_pool(&self, call: RequestPool) -> Result<RequestPoolAnswer, String> {
        let parse = |text: &str| match text {
            "" => Ok(None),
            text => text
                .parse::<IpNetwork>()
                .map(Some)
                .map_err(|e| format!("{text:?}: {e}")),
        };
        let request = PoolRequest {
            subnet: parse(&call.pool)?,
            ip_range: parse(&call.sub_pool)?,
            v6: call.v6,
            ..PoolRequest::default()
        };
        let mut guard = self.ipam()?;
        let (ipam, pools) = &mut *guard;
        let id = ipam.request_pool(&request).map_err(|e| e.to_string())?;
        let pool = ipam.pool(id);
        let key = format!("{}/{id}", call.address_space);
        let mut data = BTreeMap::new();
        if let Some(gateway) = pool.gateway {
            let with_prefix =
                IpNetwork::new(gateway, pool.subnet.prefix()).map_err(|e| e.to_string())?;
            data.insert(GATEWAY.to_string(), with_prefix.to_string());
        }
        let answer = RequestPoolAnswer {
            pool_id: key.clone(),
            pool: pool.subnet.to_string(),
            data,
        };
        pools.insert(key, id);
        Ok(answer)
    }

    async fn release_pool(&self, call: PoolRef) -> Result<serde_json::Value, String> {
        let mut guard = self.ipam()?;
        let (ipam, pools) = &mut *guard;
        if let Some(id) = pools.remove(&call.pool_id) {
            ipam.release_pool(id);
        }
        Ok(json!({}))
    }

    /// An address of a pool: the one wanted, or the lowest free. The gateway the user gave
    /// (`--gateway`) replaces the one the pool took.
    async fn request_address(&self, call: AddressCall) -> Result<AddressAnswer, String> {
        let mut guard = self.ipam()?;
        let (ipam, pools) = &mut *guard;
        let id = *pools
            .get(&call.pool_id)
            .ok_or_else(|| format!("no pool {}", call.pool_id))?;
        let wanted = match call.address.as_str() {
            "" => None,
            text => Some(
                text.parse::<IpAddr>()
                    .map_err(|e| format!("{text:?}: {e}"))?,
            ),
        };
        let gateway = call.options.get(REQUEST_ADDRESS_TYPE).map(String::as_str) == Some(GATEWAY);
        let pool = ipam.pool(id).clone();
        let address = match (gateway, wanted, pool.gateway) {
            (true, None, Some(current)) => current,
            (true, Some(wanted), Some(current)) if wanted == current => current,
            (true, wanted, current) => {
                if let Some(current) = current {
                    ipam.release_address(id, current);
                }
                ipam.request_address(id, wanted)
                    .map_err(|e| e.to_string())?
            }
            (false, wanted, _) => ipam
                .request_address(id, wanted)
                .map_err(|e| e.to_string())?,
        };
        let with_prefix =
            IpNetwork::new(address, pool.subnet.prefix()).map_err(|e| e.to_string())?;
        Ok(AddressAnswer {
            address: with_prefix.to_string(),
            data: BTreeMap::new(),
        })
    }

    async fn release_address(&self, call: ReleaseAddress) -> Result<serde_json::Value, String> {
        let mut guard = self.ipam()?;
        let (ipam, pools) = &mut *guard;
        if let (Some(id), Ok(ip)) = (pools.get(&call.pool_id), call.address.parse::<IpAddr>()) {
            ipam.release_address(*id, ip);
        }
        Ok(json!({}))
    }

    fn made(&self) -> std::sync::MutexGuard<'_, Made> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn create_network(&self, call: CreateNetwork) -> Result<serde_json::Value, String> {
        if self.made().networks.contains_key(&call.network_id) {
            return Ok(json!({}));
        }
        let request = call.request()?;
        let info = (self.driver.create_network(&request).await).map_err(|e| e.to_string())?;
        self.made()
            .networks
            .insert(call.network_id.clone(), info.bridge);
        if let Err(e) = self.open_forward().await {
            let _ = self.driver.delete_network(&call.network_id).await;
            self.made().networks.remove(&call.network_id);
            return Err(e);
        }
        Ok(json!({}))
    }

    async fn delete_network(&self, call: NetworkRef) -> Result<serde_json::Value, String> {
        (self.driver.delete_network(&call.network_id).await).map_err(|e| e.to_string())?;
        self.made().networks.remove(&call.network_id);
        self.open_forward().await?;
        Ok(json!({}))
    }

    /// dockerd's firewall opened to the bridges served now (and to no other).
    async fn open_forward(&self) -> Result<(), String> {
        let bridges: Vec<String> = self.made().networks.values().flatten().cloned().collect();
        let host = self.host.clone();
        let opened = tokio::task::spawn_blocking(move || firewall::open_forward(&host, &bridges));
        match opened.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(format!("opening dockerd's firewall: {e}")),
        }
    }

    /// The endpoint, with the MAC its driver elects from the engine's address (given to the
    /// engine when it had none); an ipvlan endpoint has the parent's, which dockerd never
    /// sets.
    async fn create_endpoint(&self, call: CreateEndpoint) -> Result<CreateEndpointAnswer, String> {
        if self.made().endpoints.contains_key(&call.endpoint_id) {
            return Ok(CreateEndpointAnswer::default());
        }
        let given = &call.interface;
        let mut addresses = Vec::new();
        for text in [&given.address, &given.address_ipv6] {
            if !text.is_empty() {
                let address: IpNetwork =
                    (text.parse()).map_err(|e| format!("address {text:?}: {e}"))?;
                addresses.push(address);
            }
        }
        let mac = match given.mac_address.as_str() {
            "" => None,
            text => Some(mac::parse(text).ok_or_else(|| format!("{text} is not a MAC address"))?),
        };
        let elected = (self.elects_mac).then(|| {
            bridge::elect_mac(&Interface {
                addresses: addresses.clone(),
                mac,
            })
        });
        let ipv6 = addresses.iter().any(IpNetwork::is_ipv6);
        // The driver stages the link: no address here, dockerd gives them once it moved it.
        let interface = Interface {
            addresses,
            mac: elected.or(mac),
        };
        let made = self
            .driver
            .create_endpoint(&call.network_id, &call.endpoint_id, &interface);
        made.await.map_err(|e| e.to_string())?;
        let served = ServedEndpoint {
            joined: false,
            ipv6,
        };
        self.made().endpoints.insert(call.endpoint_id, served);
        let chosen = elected
            .filter(|_| mac.is_none())
            .map(|elected| EndpointInterface {
                mac_address: mac::text(elected),
                ..EndpointInterface::default()
            });
        Ok(CreateEndpointAnswer { interface: chosen })
    }

    /// The endpoint's link, in the docker host's namespace, for dockerd to move. An endpoint
    /// that declines the gateway service (routed ipvlan) gets connected default routes
    /// instead, as libnetwork's ipvlan asks for them: IPv4 always, IPv6 with an address.
    async fn join(&self, call: Join) -> Result<JoinAnswer, String> {
        let name = link_name(&call.endpoint_id);
        let joined = self
            .driver
            .join(&call.network_id, &call.endpoint_id, &self.host, &name);
        let info = joined.await.map_err(|e| e.to_string())?;
        let ipv6 = {
            let mut made = self.made();
            let served = made.endpoints.entry(call.endpoint_id).or_default();
            served.joined = true;
            served.ipv6
        };
        let connected = |destination: &str| StaticRoute {
            destination: destination.into(),
            route_type: 1,
            next_hop: String::new(),
        };
        let static_routes = match (info.disable_gateway_service, ipv6) {
            (false, _) => Vec::new(),
            (true, false) => vec![connected("0.0.0.0/0")],
            (true, true) => vec![connected("0.0.0.0/0"), connected("::/0")],
        };
        Ok(JoinAnswer {
            static_routes,
            disable_gateway_service: info.disable_gateway_service,
            interface_name: Some(InterfaceName {
                src_name: name,
                dst_prefix: "eth".into(),
            }),
            gateway: info.gateway4.map(|g| g.to_string()).unwrap_or_default(),
            gateway_ipv6: info.gateway6.map(|g| g.to_string()).unwrap_or_default(),
        })
    }

    /// Removes the endpoint's link (dockerd moved it back out of the container after `Leave`).
    async fn delete_endpoint(&self, call: EndpointRef) -> Result<serde_json::Value, String> {
        let served = self.made().endpoints.get(&call.endpoint_id).copied();
        if served.is_some_and(|s| s.joined) {
            let left = self.driver.leave(&call.network_id, &call.endpoint_id);
            left.await.map_err(|e| e.to_string())?;
        }
        let deleted = self
            .driver
            .delete_endpoint(&call.network_id, &call.endpoint_id);
        deleted.await.map_err(|e| e.to_string())?;
        self.made().endpoints.remove(&call.endpoint_id);
        Ok(json!({}))
    }
}

/// The name of an endpoint's link in the docker host's namespace, until dockerd moves it.
fn link_name(endpoint: &str) -> String {
    let digits: String = endpoint
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect();
    format!("dd{digits}")
}

/// An answer: 200 and the JSON object, or 500 and `{"Err": ...}` (dockerd shows
/// `NetworkDriver.METHOD: message`).
fn answer<T: Serialize>(result: Result<T, String>) -> Response {
    let (status, body) = match result {
        Ok(value) => (StatusCode::OK, serde_json::to_vec(&value)),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::to_vec(&Failure { err }),
        ),
    };
    let body = body.unwrap_or_else(|_| b"{}".to_vec());
    (status, [(header::CONTENT_TYPE, MEDIA_TYPE)], body).into_response()
}

/// A call's body read as `T`, then `call` made with it.
async fn handle<T, R, F>(body: &Bytes, call: impl FnOnce(T) -> F) -> Response
where
    T: DeserializeOwned + Default,
    R: Serialize,
    F: Future<Output = Result<R, String>>,
{
    match read::<T>(body) {
        Ok(request) => answer(call(request).await),
        Err(e) => answer::<()>(Err(e)),
    }
}

/// The server's routes.
fn router(server: Arc<PluginServer>) -> Router {
    type S = State<Arc<PluginServer>>;
    // A route whose body is read as the argument of the server's method of that name.
    macro_rules! call {
        ($method:ident) => {
            post(|State(s): S, b: Bytes| async move {
                handle(&b, |c| async move { s.$method(c).await }).await
            })
        };
    }
    let ok = || async { answer(Ok(json!({}))) };
    Router::new()
        .route(
            "/Plugin.Activate",
            post(|State(s): S| async move { answer(Ok(s.manifest())) }),
        )
        .route(
            "/NetworkDriver.GetCapabilities",
            post(|| async {
                answer(Ok(Capabilities {
                    scope: "local".into(),
                    connectivity_scope: "local".into(),
                }))
            }),
        )
        .route("/NetworkDriver.CreateNetwork", call!(create_network))
        .route("/NetworkDriver.DeleteNetwork", call!(delete_network))
        .route("/NetworkDriver.CreateEndpoint", call!(create_endpoint))
        .route("/NetworkDriver.DeleteEndpoint", call!(delete_endpoint))
        .route("/NetworkDriver.Join", call!(join))
        .route(
            "/NetworkDriver.EndpointOperInfo",
            post(|| async { answer(Ok(json!({"Value": {}}))) }),
        )
        .route(
            "/NetworkDriver.AllocateNetwork",
            post(|| async { answer(Ok(json!({"Options": {}}))) }),
        )
        .route(
            "/IpamDriver.GetCapabilities",
            post(|| async { answer(Ok(IpamCapabilities::default())) }),
        )
        .route(
            "/IpamDriver.GetDefaultAddressSpaces",
            post(|| async {
                answer(Ok(AddressSpaces {
                    local_default_address_space: "LocalDefault".into(),
                    global_default_address_space: "GlobalDefault".into(),
                }))
            }),
        )
        .route("/IpamDriver.RequestPool", call!(request_pool))
        .route("/IpamDriver.ReleasePool", call!(release_pool))
        .route("/IpamDriver.RequestAddress", call!(request_address))
        .route("/IpamDriver.ReleaseAddress", call!(release_address))
        // What the engine undoes itself (Leave: it moves the link back; DeleteEndpoint removes
        // it), and what a local bridge has nothing to do for.
        .route("/NetworkDriver.Leave", post(ok))
        .route("/NetworkDriver.FreeNetwork", post(ok))
        .route("/NetworkDriver.DiscoverNew", post(ok))
        .route("/NetworkDriver.DiscoverDelete", post(ok))
        .route("/NetworkDriver.ProgramExternalConnectivity", post(ok))
        .route("/NetworkDriver.RevokeExternalConnectivity", post(ok))
        .with_state(server)
}

/// Serves `server` on `listener` until the task is dropped or aborted.
pub async fn serve(
    listener: tokio::net::UnixListener,
    server: Arc<PluginServer>,
) -> std::io::Result<()> {
    axum::serve(listener, router(server)).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    /// A server of the bridge driver and the IPAM in this process's namespace (the calls made
    /// here never reach the kernel).
    fn server() -> Arc<PluginServer> {
        let host = Netns::open("/proc/self/ns/net").unwrap();
        PluginServer::new("bridge", true, host).unwrap()
    }

    /// One call to `server`: its status and JSON answer.
    async fn call_to(server: &Arc<PluginServer>, path: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::post(path)
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router(Arc::clone(server)).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// One call to a fresh [`server`].
    async fn call(path: &str, body: &str) -> (StatusCode, Value) {
        call_to(&server(), path, body).await
    }

    #[tokio::test]
    async fn dockerd_gets_the_manifest_capabilities_and_errors_it_reads() {
        let (status, manifest) = call("/Plugin.Activate", "").await;
        let implements = json!({"Implements": ["NetworkDriver", "IpamDriver"]});
        assert_eq!((status, manifest), (StatusCode::OK, implements));
        let (_, caps) = call("/NetworkDriver.GetCapabilities", "").await;
        assert_eq!(
            caps,
            json!({"Scope": "local", "ConnectivityScope": "local"})
        );
        let (status, garbage) = call("/NetworkDriver.CreateNetwork", "{garbage").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let err = garbage["Err"].as_str().unwrap();
        assert!(err.starts_with("malformed request body"), "{garbage}");
        let unknown =
            r#"{"NetworkID":"nope","EndpointID":"e1","Interface":{"Address":"10.0.0.2/24"}}"#;
        let (status, refused) = call("/NetworkDriver.CreateEndpoint", unknown).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            refused["Err"].as_str().unwrap().contains("nope"),
            "{refused}"
        );
        let leave = r#"{"NetworkID":"n","EndpointID":"e"}"#;
        let (status, left) = call("/NetworkDriver.Leave", leave).await;
        assert_eq!((status, left), (StatusCode::OK, json!({})));
        let (status, _) = call("/NetworkDriver.Nonsense", "{}").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_ipam_gives_pools_gateways_and_addresses_as_dockerd_asks() {
        let server = server();
        let pool = json!({"AddressSpace": "LocalDefault", "Pool": "10.78.0.0/24", "SubPool": "",
            "Options": {}, "V6": false});
        let (status, pool) = call_to(&server, "/IpamDriver.RequestPool", &pool.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{pool}");
        assert_eq!(pool["Pool"], "10.78.0.0/24");
        assert_eq!(pool["Data"]["com.docker.network.gateway"], "10.78.0.1/24");
        let id = pool["PoolID"].as_str().unwrap().to_string();
        let address = |body: Value| {
            let server = Arc::clone(&server);
            async move { call_to(&server, "/IpamDriver.RequestAddress", &body.to_string()).await }
        };
        // The user's --gateway replaces the pool's; the next address is then the lowest free.
        let gateway = address(json!({"PoolID": id, "Address": "10.78.0.254",
            "Options": {"RequestAddressType": "com.docker.network.gateway"}}));
        assert_eq!(gateway.await.1["Address"], "10.78.0.254/24");
        let any = json!({"PoolID": id, "Address": "", "Options": null});
        assert_eq!(address(any.clone()).await.1["Address"], "10.78.0.1/24");
        let (status, taken) = address(json!({"PoolID": id, "Address": "10.78.0.1"})).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{taken}");
        let release = json!({"PoolID": id, "Address": "10.78.0.1"}).to_string();
        call_to(&server, "/IpamDriver.ReleaseAddress", &release).await;
        assert_eq!(address(any).await.1["Address"], "10.78.0.1/24");
        let release = json!({"PoolID": id}).to_string();
        let (status, _) = call_to(&server, "/IpamDriver.ReleasePool", &release).await;
        assert_eq!(status, StatusCode::OK);
        let (status, gone) = address(json!({"PoolID": id})).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{gone}");
    }

    #[test]
    fn only_served_drivers_are_served_and_links_are_named_from_the_endpoint() {
        let host = Netns::open("/proc/self/ns/net").unwrap();
        let refused = PluginServer::new("overlay", false, host.clone()).unwrap_err();
        assert!(
            refused.contains("no v1 (socket) plugin in a swarm"),
            "{refused}"
        );
        let refused = PluginServer::new("host", false, host).unwrap_err();
        assert!(
            refused.contains("served are bridge, macvlan, ipvlan"),
            "{refused}"
        );
        assert_eq!(link_name("0123456789abcdef"), "dd0123456789");
    }
}
