//! The `remote` IPAM: an IPAM plugin as libnetwork's `ipams/remote` uses one. Activation as
//! dockerd registers the plugin (`Plugin.Activate` must list `IpamDriver`; `GetCapabilities`,
//! whose failure only means no capabilities; `GetDefaultAddressSpaces`, whose failure leaves
//! the driver unregistered), then one method per `IpamDriver` call. An answer is an error when
//! its status is not 200 (the client's `IpamDriver.METHOD: ERR`) or, with a 200, when its
//! `Error` is set (`remote: ERR`: the IPAM protocol's field is `Error`, not the network
//! protocol's `Err`). What the network and endpoint make of the pools and addresses
//! (gateways, auxiliary addresses, rollbacks) is the engine's (`engine/pools.rs`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::{ActivationError, Client};
use super::protocol::{
    self, AddressAnswer, AddressCall, AddressSpaces, GATEWAY, IpamCapabilities, PoolRef,
    ReleaseAddress, RequestPool, RequestPoolAnswer,
};

/// The interface kind an IPAM plugin declares in its manifest.
pub const IPAM_DRIVER: &str = "IpamDriver";

/// An IPAM plugin, activated and registered.
#[derive(Debug)]
pub struct RemoteIpam {
    name: String,
    client: Client,
    capabilities: IpamCapabilities,
    spaces: AddressSpaces,
}

/// Why a plugin could not become an IPAM driver, in dockerd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamLoadError {
    /// `Plugin.Activate` failed or does not list `IpamDriver`.
    #[error(transparent)]
    Activation(#[from] ActivationError),
    /// `GetDefaultAddressSpaces` failed: dockerd logs why and never registers the driver.
    #[error("invalid ipam driver: \"{name}\"")]
    Unregistered {
        /// The plugin's name.
        name: String,
        /// What dockerd logs.
        cause: String,
    },
}

impl IpamLoadError {
    /// What dockerd logs about it.
    pub fn cause(&self) -> String {
        match self {
            IpamLoadError::Activation(e) => e.cause(),
            IpamLoadError::Unregistered { name, cause } => {
                format!("ipam driver \"{name}\" failed to return default address spaces: {cause}")
            }
        }
    }
}

/// A pool as a plugin gave it (`RequestPool`'s answer, read as libnetwork reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenPool {
    /// The pool's id, for the calls that follow.
    pub id: String,
    /// Its subnet, with the address the plugin wrote (Go's `types.ParseCIDR` keeps it).
    pub subnet: IpNetwork,
    /// The answer's `Data`.
    pub data: BTreeMap<String, String>,
}

impl GivenPool {
    /// The gateway the plugin chose (`Data["com.docker.network.gateway"]`, with its prefix),
    /// with libnetwork's text when it does not parse.
    pub fn gateway(&self) -> Result<Option<IpNetwork>, String> {
        let Some(text) = self.data.get(GATEWAY) else {
            return Ok(None);
        };
        parse_cidr(text).map(Some).map_err(|_| {
            format!(
                "failed to parse gateway address ({text}) returned by ipam driver: invalid CIDR address: {text}"
            )
        })
    }
}

impl RemoteIpam {
    /// Activates plugin `name` at `client`'s address and registers it as dockerd does.
    pub async fn activate(name: &str, client: Client) -> Result<Self, IpamLoadError> {
        client.activate(IPAM_DRIVER).await?;
        let capabilities = match call(&client, "GetCapabilities", None::<&()>).await {
            Ok(capabilities) => capabilities,
            Err(e) => {
                tracing::info!("remote ipam driver {name} does not support capabilities: {e}");
                IpamCapabilities::default()
            }
        };
        let spaces =
            (call(&client, "GetDefaultAddressSpaces", None::<&()>).await).map_err(|e| {
                IpamLoadError::Unregistered {
                    name: name.to_string(),
                    cause: e,
                }
            })?;
        Ok(RemoteIpam {
            name: name.to_string(),
            client,
            capabilities,
            spaces,
        })
    }

    /// The plugin's name (`IPAM.Driver` in inspect).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether endpoints need a MAC before their address is asked for (the engine then makes
    /// one and names it in the request's options).
    pub fn requires_mac_address(&self) -> bool {
        self.capabilities.requires_mac_address
    }

    /// The address space of a network's pools: the local default, or for a network of
    /// global scope the global one (libnetwork `deriveAddressSpace`).
    pub fn address_space(&self, local: bool) -> &str {
        match local {
            true => &self.spaces.local_default_address_space,
            false => &self.spaces.global_default_address_space,
        }
    }

    /// `RequestPool`: the pool given, its subnet parsed.
    pub async fn request_pool(&self, request: &RequestPool) -> Result<GivenPool, String> {
        let answer: RequestPoolAnswer = call(&self.client, "RequestPool", Some(request)).await?;
        read_pool(answer)
    }

    /// `ReleasePool`.
    pub async fn release_pool(&self, pool: &str) -> Result<(), String> {
        let body = PoolRef {
            pool_id: pool.to_string(),
        };
        call::<Value>(&self.client, "ReleasePool", Some(&body)).await?;
        Ok(())
    }

    /// `RequestAddress` in pool `pool`: `wanted`, or any; `options` as libnetwork gives them
    /// (the gateway's type, an endpoint's MAC).
    pub async fn request_address(
        &self,
        pool: &str,
        wanted: Option<IpAddr>,
        options: BTreeMap<String, String>,
    ) -> Result<IpNetwork, String> {
        let body = AddressCall {
            pool_id: pool.to_string(),
            address: wanted.map(|ip| ip.to_string()).unwrap_or_default(),
            options,
        };
        let answer: AddressAnswer = call(&self.client, "RequestAddress", Some(&body)).await?;
        read_address(&answer)
    }

    /// `ReleaseAddress`.
    pub async fn release_address(&self, pool: &str, address: IpAddr) -> Result<(), String> {
        let body = ReleaseAddress {
            pool_id: pool.to_string(),
            address: address.to_string(),
        };
        call::<Value>(&self.client, "ReleaseAddress", Some(&body)).await?;
        Ok(())
    }
}

/// `IpamDriver.METHOD`: transport failures and statuses as the client words them, a 200 whose
/// `Error` is set as `remote: ERR`.
async fn call<T: DeserializeOwned>(
    client: &Client,
    method: &str,
    body: Option<&impl Serialize>,
) -> Result<T, String> {
    let method = format!("{IPAM_DRIVER}.{method}");
    let answer: Value = (client.call(&method, body).await).map_err(|e| e.to_string())?;
    read_answer(answer)
}

/// A 200 answer: its `Error` (Go's decoder matches the field without regard to case), or the
/// answer read as `T`.
fn read_answer<T: DeserializeOwned>(answer: Value) -> Result<T, String> {
    if let Some(fields) = answer.as_object() {
        let error = (fields.get("Error")).or_else(|| {
            (fields.iter()).find_map(|(k, v)| k.eq_ignore_ascii_case("Error").then_some(v))
        });
        match error {
            Some(Value::String(error)) if !error.is_empty() => {
                return Err(format!("remote: {error}"));
            }
            Some(Value::String(_) | Value::Null) | None => {}
            Some(other) => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field Response.Error of type string",
                    go_kind(other)
                ));
            }
        }
    }
    serde_json::from_value(protocol::go_keys(answer)).map_err(|e| e.to_string())
}

/// The JSON kind Go's decoder names in its errors.
fn go_kind(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::String(_) => "string",
        Value::Null => "null",
    }
}

/// A `RequestPool` answer: its pool must parse (Go's `invalid CIDR address: X`).
fn read_pool(answer: RequestPoolAnswer) -> Result<GivenPool, String> {
    let subnet = parse_cidr(&answer.pool)?;
    Ok(GivenPool {
        id: answer.pool_id,
        subnet,
        data: answer.data,
    })
}

/// A `RequestAddress` answer: an address with its prefix (none: libnetwork's "No address
/// returned").
fn read_address(answer: &AddressAnswer) -> Result<IpNetwork, String> {
    match answer.address.as_str() {
        "" => Err("No address returned".into()),
        text => parse_cidr(text),
    }
}

/// An address with its prefix, as Go's `net.ParseCIDR` reads one (a plain address is none).
fn parse_cidr(text: &str) -> Result<IpNetwork, String> {
    let invalid = || format!("invalid CIDR address: {text}");
    let (_, prefix) = text.split_once('/').ok_or_else(invalid)?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use drydock_netsim::Netns;
    use serde_json::json;

    use super::*;
    use crate::plugin::client::{Address, Patience};
    use crate::plugin::{PluginServer, serve};

    /// drydock's plugin server (the bridge driver, with the built-in IPAM when `ipam`) on a
    /// socket in a fresh folder, in this process's namespace; a client of it.
    fn served(ipam: bool) -> (tempfile::TempDir, Client) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let host = Netns::open("/proc/self/ns/net").unwrap();
        let server: Arc<PluginServer> = PluginServer::new("bridge", ipam, host).unwrap();
        tokio::spawn(serve(listener, server));
        (dir, Client::new(Address::Unix(path), Patience::default()))
    }

    #[tokio::test]
    async fn the_served_ipam_activates_and_gives_pools_and_addresses() {
        let (_dir, client) = served(true);
        let ipam = RemoteIpam::activate("p", client).await.unwrap();
        assert_eq!(ipam.address_space(true), "LocalDefault");
        assert_eq!(ipam.address_space(false), "GlobalDefault");
        assert!(!ipam.requires_mac_address());
        let request = RequestPool {
            address_space: "LocalDefault".into(),
            pool: "10.78.0.0/24".into(),
            ..RequestPool::default()
        };
        let pool = ipam.request_pool(&request).await.unwrap();
        assert_eq!(
            pool.gateway().unwrap(),
            Some("10.78.0.1/24".parse().unwrap())
        );
        let fifty: IpAddr = "10.78.0.50".parse().unwrap();
        let wanted = Some(fifty);
        let address = ipam.request_address(&pool.id, wanted, BTreeMap::new());
        assert_eq!(address.await.unwrap().to_string(), "10.78.0.50/24");
        // The served plugin answers a refusal with 500: the client's words.
        let again = ipam
            .request_address(&pool.id, wanted, BTreeMap::new())
            .await;
        assert_eq!(
            again.unwrap_err(),
            "IpamDriver.RequestAddress: Address already in use"
        );
        ipam.release_address(&pool.id, fifty).await.unwrap();
        ipam.release_pool(&pool.id).await.unwrap();
        // Released: the same subnet is free again.
        ipam.request_pool(&request).await.unwrap();
    }

    #[tokio::test]
    async fn a_plugin_without_ipam_is_no_ipam_driver() {
        let (_dir, client) = served(false);
        let refused = RemoteIpam::activate("p", client).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "legacy plugin: Plugin does not implement the requested driver"
        );
        let gone = Client::new(
            Address::Unix("/nonexistent/p.sock".into()),
            Patience {
                connect: std::time::Duration::from_millis(1),
                answer: std::time::Duration::from_secs(1),
            },
        );
        let refused = RemoteIpam::activate("p", gone)
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.starts_with("legacy plugin: Post \""), "{refused}");
    }

    #[test]
    fn a_200_answer_with_error_is_a_remote_refusal_and_err_is_not_read() {
        let refused = read_answer::<Value>(json!({"Error": "pool exhausted"})).unwrap_err();
        assert_eq!(refused, "remote: pool exhausted");
        let lower = read_answer::<Value>(json!({"error": "no"})).unwrap_err();
        assert_eq!(lower, "remote: no");
        // `Err` is the network protocol's field: an IPAM answer carrying it succeeded.
        let answer = json!({"Err": "ignored", "PoolID": "p", "Pool": "10.0.0.0/24"});
        let pool: RequestPoolAnswer = read_answer(answer).unwrap();
        assert_eq!(pool.pool_id, "p");
        let empty: AddressSpaces =
            read_answer(json!({"Error": "", "localdefaultaddressspace": "L"})).unwrap();
        assert_eq!(empty.local_default_address_space, "L");
        let odd = read_answer::<Value>(json!({"Error": 7})).unwrap_err();
        assert_eq!(
            odd,
            "json: cannot unmarshal number into Go struct field Response.Error of type string"
        );
    }

    #[test]
    fn pools_and_addresses_are_read_as_libnetwork_reads_them() {
        let answer = RequestPoolAnswer {
            pool_id: "LocalDefault/10.78.0.0/24".into(),
            pool: "10.78.0.5/24".into(),
            data: [(GATEWAY.to_string(), "10.78.0.1/24".to_string())].into(),
        };
        let pool = read_pool(answer.clone()).unwrap();
        // The address written stays, as Go's types.ParseCIDR keeps it.
        assert_eq!(pool.subnet.to_string(), "10.78.0.5/24");
        assert_eq!(
            pool.gateway().unwrap(),
            Some("10.78.0.1/24".parse().unwrap())
        );
        let bad = RequestPoolAnswer {
            pool: "10.78.0/24".into(),
            ..answer.clone()
        };
        assert_eq!(
            read_pool(bad).unwrap_err(),
            "invalid CIDR address: 10.78.0/24"
        );
        let plain = GivenPool {
            data: [(GATEWAY.to_string(), "10.78.0.1".to_string())].into(),
            ..pool.clone()
        };
        assert_eq!(
            plain.gateway().unwrap_err(),
            "failed to parse gateway address (10.78.0.1) returned by ipam driver: invalid CIDR address: 10.78.0.1"
        );
        let none = GivenPool {
            data: BTreeMap::new(),
            ..pool
        };
        assert_eq!(none.gateway(), Ok(None));
        let address = |text: &str| {
            read_address(&AddressAnswer {
                address: text.into(),
                data: BTreeMap::new(),
            })
        };
        assert_eq!(address("10.78.0.2/24").unwrap().to_string(), "10.78.0.2/24");
        assert_eq!(address("").unwrap_err(), "No address returned");
        assert_eq!(
            address("10.78.0.2").unwrap_err(),
            "invalid CIDR address: 10.78.0.2"
        );
    }

    #[test]
    fn load_errors_read_as_dockerd_words_them() {
        let unregistered = IpamLoadError::Unregistered {
            name: "p".into(),
            cause: "remote: no spaces".into(),
        };
        assert_eq!(unregistered.to_string(), "invalid ipam driver: \"p\"");
        assert_eq!(
            unregistered.cause(),
            "ipam driver \"p\" failed to return default address spaces: remote: no spaces"
        );
        let missing = IpamLoadError::Activation(ActivationError::NotImplemented {
            implements: vec!["NetworkDriver".into()],
        });
        assert_eq!(
            missing.to_string(),
            "legacy plugin: Plugin does not implement the requested driver"
        );
    }
}
