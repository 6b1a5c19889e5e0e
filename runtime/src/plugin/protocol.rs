//! Docker's remote network driver protocol (libnetwork `drivers/remote/api`), as dockerd 20.10
//! speaks it: each call a `POST /NetworkDriver.METHOD` with a JSON body (none for
//! `Plugin.Activate` and `GetCapabilities`), each answer a JSON object, an error `{"Err": ...}`.
//! Keys are Go's field names; the types read what dockerd sends and write what it reads.

use std::collections::BTreeMap;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::driver::{IpamData, NetworkRequest};

/// The media type dockerd accepts (`Accept:`) from plugins.
pub const MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// `Plugin.Activate`'s answer: the APIs the plugin implements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Manifest {
    /// `NetworkDriver`, `IpamDriver`...
    pub implements: Vec<String>,
}

/// `NetworkDriver.GetCapabilities`' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Capabilities {
    /// `local` or `global`: where the networks' state lives.
    pub scope: String,
    /// `local` or `global` (empty: as `scope`): how far they reach.
    pub connectivity_scope: String,
}

/// One pool of a network (libnetwork `IPAMData`, as `driverapi` marshals it, through a map:
/// keys in order, none for what is not set): CIDR strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PoolData {
    /// `LocalDefault`, `GlobalDefault`...
    pub address_space: String,
    /// `--aux-address` names and addresses, with the prefix.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, String>,
    /// The gateway with the subnet's prefix, `172.18.0.1/16` (empty: none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// The subnet, `172.18.0.0/16`.
    pub pool: String,
}

/// `NetworkDriver.CreateNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateNetwork {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `com.docker.network.generic` (the `-o` options), `com.docker.network.enable_ipv6`,
    /// `com.docker.network.internal`.
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, Value>,
    /// The IPv4 pools.
    #[serde(rename = "IPv4Data", deserialize_with = "nullable")]
    pub ipv4_data: Vec<PoolData>,
    /// The IPv6 pools (none without `--ipv6`).
    #[serde(rename = "IPv6Data", deserialize_with = "nullable")]
    pub ipv6_data: Vec<PoolData>,
}

/// Option of a network: the `-o` options.
pub const GENERIC: &str = "com.docker.network.generic";
/// Option of a network: `--internal`.
pub const INTERNAL: &str = "com.docker.network.internal";
/// The option of `CreateNetwork` saying whether the network has IPv6 (always sent).
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";

impl CreateNetwork {
    /// The request a built-in driver takes: `-o` options as strings, pools parsed, IPv4 first.
    pub fn request(&self) -> Result<NetworkRequest, String> {
        let generic = self.options.get(GENERIC).and_then(Value::as_object);
        let options = (generic.into_iter().flatten())
            .map(|(k, v)| {
                let text = v.as_str().map_or_else(|| v.to_string(), String::from);
                (k.clone(), text)
            })
            .collect();
        let mut pools = Vec::new();
        for data in self.ipv4_data.iter().chain(&self.ipv6_data) {
            let subnet: IpNetwork = (data.pool.parse())
                .map_err(|e| format!("pool {:?} of network {}: {e}", data.pool, self.network_id))?;
            let gateway = match data.gateway.as_str() {
                "" => None,
                text => Some(text.parse::<IpNetwork>().map_err(|e| {
                    format!("gateway {text:?} of network {}: {e}", self.network_id)
                })?),
            };
            pools.push(IpamData { subnet, gateway });
        }
        let space = self.ipv4_data.first().map(|p| p.address_space.clone());
        Ok(NetworkRequest {
            id: self.network_id.clone(),
            options,
            pools,
            address_space: space.unwrap_or_default(),
            internal: self.options.get(INTERNAL).and_then(Value::as_bool) == Some(true),
            ipv6: self.options.get(ENABLE_IPV6).and_then(Value::as_bool) == Some(true),
        })
    }
}

/// A call naming a network only: `DeleteNetwork`, `FreeNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkRef {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

/// A call naming an endpoint: `DeleteEndpoint`, `Leave`, `EndpointOperInfo`,
/// `RevokeExternalConnectivity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointRef {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

impl EndpointRef {
    /// Endpoint `endpoint` of network `network`.
    pub fn new(network: &str, endpoint: &str) -> Self {
        EndpointRef {
            network_id: network.to_string(),
            endpoint_id: endpoint.to_string(),
        }
    }
}

/// An endpoint's interface: CIDR addresses and a MAC, empty when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointInterface {
    /// IPv4 address with its prefix.
    pub address: String,
    /// IPv6 address with its prefix.
    #[serde(rename = "AddressIPv6")]
    pub address_ipv6: String,
    /// `xx:xx:xx:xx:xx:xx`.
    pub mac_address: String,
}

/// `NetworkDriver.CreateEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateEndpoint {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// What the engine's IPAM gave it.
    #[serde(rename = "Interface", deserialize_with = "nullable")]
    pub interface: EndpointInterface,
    /// Exposed ports, port mappings, `--dns`...
    #[serde(rename = "Options", deserialize_with = "nullable")]
    pub options: BTreeMap<String, Value>,
}

/// `NetworkDriver.CreateEndpoint`'s answer: what the driver chose of the interface (the engine
/// refuses an address it had given already).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateEndpointAnswer {
    /// The interface, when the driver chose something of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

/// `NetworkDriver.Join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Join {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The sandbox's network namespace file (it may not exist yet).
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
    /// The sandbox's labels (port mappings...).
    #[serde(rename = "Options", deserialize_with = "nullable")]
    pub options: BTreeMap<String, Value>,
}

/// The link the engine moves into the sandbox, and the prefix of its name there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InterfaceName {
    /// Its name in the docker host's namespace.
    pub src_name: String,
    /// `eth`: the engine names it `ethN`.
    pub dst_prefix: String,
}

/// A route the engine adds in the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StaticRoute {
    /// CIDR.
    pub destination: String,
    /// 0: through `next_hop`; 1: connected.
    pub route_type: u8,
    /// A plain address.
    pub next_hop: String,
}

/// `NetworkDriver.Join`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JoinAnswer {
    /// The link to move, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<InterfaceName>,
    /// The IPv4 gateway, a plain address (empty: none).
    pub gateway: String,
    /// The IPv6 gateway.
    #[serde(rename = "GatewayIPv6")]
    pub gateway_ipv6: String,
    /// Routes to add.
    #[serde(deserialize_with = "nullable")]
    pub static_routes: Vec<StaticRoute>,
    /// No docker_gwbridge for this endpoint's sake.
    pub disable_gateway_service: bool,
}

/// `IpamDriver.GetCapabilities`' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamCapabilities {
    /// The engine must generate a MAC before asking for an address.
    #[serde(rename = "RequiresMACAddress")]
    pub requires_mac_address: bool,
    /// The engine replays its pools and addresses when it restarts.
    #[serde(rename = "RequiresRequestReplay")]
    pub requires_request_replay: bool,
}

/// `IpamDriver.GetDefaultAddressSpaces`' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AddressSpaces {
    /// For local networks: `LocalDefault`.
    pub local_default_address_space: String,
    /// For swarm networks: `GlobalDefault`.
    pub global_default_address_space: String,
}

/// `IpamDriver.RequestPool`: one `--subnet` (with its `--ip-range`), or any free subnet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestPool {
    /// From `GetDefaultAddressSpaces`.
    pub address_space: String,
    /// The subnet, or empty for any.
    pub pool: String,
    /// `--ip-range`, or empty.
    pub sub_pool: String,
    /// `--ipam-opt`.
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// The IPv6 round.
    #[serde(rename = "V6")]
    pub v6: bool,
}

/// `IpamDriver.RequestPool`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestPoolAnswer {
    /// The pool's id, for the calls that follow.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// Its subnet.
    pub pool: String,
    /// `com.docker.network.gateway`: the gateway with its prefix, which the engine takes
    /// unless the user gave one.
    pub data: BTreeMap<String, String>,
}

/// `IpamDriver.ReleasePool`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolRef {
    /// The pool's id.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

/// `IpamDriver.RequestAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AddressCall {
    /// The pool's id.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The address wanted (`--ip`, `--gateway`), or empty for any.
    pub address: String,
    /// `RequestAddressType: com.docker.network.gateway` for the gateway, the MAC for an IPAM
    /// that asks for it; none (`null`, as libnetwork's nil map) otherwise.
    #[serde(deserialize_with = "nullable", serialize_with = "null_if_empty")]
    pub options: BTreeMap<String, String>,
}

/// `IpamDriver.ReleaseAddress` (no options, unlike a request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReleaseAddress {
    /// The pool's id.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The address released.
    pub address: String,
}

/// `IpamDriver.RequestAddress`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AddressAnswer {
    /// The address with its subnet's prefix.
    pub address: String,
    /// Nothing.
    pub data: BTreeMap<String, String>,
}

/// `NetworkDriver.DiscoverNew` of this node, as dockerd sends it in a swarm (libnetwork
/// `DiscoveryNotification` of `discoverapi.NodeDiscovery`, 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDiscovery {
    /// 1.
    pub discovery_type: u8,
    /// The node.
    pub discovery_data: NodeDiscoveryData,
}

/// libnetwork `discoverapi.NodeDiscoveryData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDiscoveryData {
    /// Its data path address.
    pub address: String,
    /// The address its agent binds.
    pub bind_address: String,
    /// The node is the one the engine runs on.
    #[serde(rename = "Self")]
    pub is_self: bool,
}

impl NodeDiscovery {
    /// This node at `address`: dockerd gives its advertised address as both (observed on
    /// Docker 20.10).
    pub fn of_self(address: std::net::IpAddr) -> Self {
        NodeDiscovery {
            discovery_type: 1,
            discovery_data: NodeDiscoveryData {
                address: address.to_string(),
                bind_address: address.to_string(),
                is_self: true,
            },
        }
    }
}

/// The option of a `RequestAddress` for a network's gateway.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
/// Its value (libnetwork `netlabel.Gateway`), and the key of a pool's gateway in its data.
pub const GATEWAY: &str = "com.docker.network.gateway";

/// An error answer: `{"Err": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Failure {
    /// The message.
    pub err: String,
}

/// `null` read as the default (Go marshals nil maps and slices as `null`).
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An empty map written as Go writes a nil one: `null`.
fn null_if_empty<S: serde::Serializer>(
    map: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match map.is_empty() {
        true => serializer.serialize_none(),
        false => map.serialize(serializer),
    }
}

/// A request body as dockerd sends it; an empty one is the default (calls without arguments).
pub fn read<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("malformed request body: {e}"))
}

/// The field names of the answers the engine reads, as Go's structs name them.
const ANSWER_FIELDS: [&str; 27] = [
    "Implements",
    "Scope",
    "ConnectivityScope",
    "Interface",
    "Address",
    "AddressIPv6",
    "MacAddress",
    "InterfaceName",
    "SrcName",
    "DstPrefix",
    "Gateway",
    "GatewayIPv6",
    "StaticRoutes",
    "Destination",
    "RouteType",
    "NextHop",
    "DisableGatewayService",
    "RequiresMACAddress",
    "RequiresRequestReplay",
    "LocalDefaultAddressSpace",
    "GlobalDefaultAddressSpace",
    "PoolID",
    "Pool",
    "Data",
    "Err",
    "Value",
    "Options",
];

/// `value` with its object keys spelled as Go's fields are when they match one without regard
/// to case, as Go's decoder matches them (`{"scope":"local"}` is a `Scope`).
pub fn go_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, v)| {
                    let canonical = ANSWER_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&key));
                    (canonical.map_or(key, |f| f.to_string()), go_keys(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(go_keys).collect()),
        other => other,
    }
}

/// An answer read as dockerd's Go client reads it: the first JSON value of the body (what
/// follows is not read), keys matched without regard to case, unknown ones ignored; errors in
/// Go's words where the body is not JSON at all.
pub fn decode_as_go<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let Some(first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err("EOF".into());
    };
    if !matches!(
        first,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    ) {
        return Err(format!(
            "invalid character '{}' looking for beginning of value",
            char::from(*first)
        ));
    }
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) if e.is_eof() => return Err("unexpected EOF".into()),
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err("EOF".into()),
    };
    serde_json::from_value(go_keys(value)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pools and node discoveries in the bytes dockerd 20.10 sends (observed).
    #[test]
    fn pools_and_discoveries_are_written_as_dockerd_writes_them() {
        let pool = PoolData {
            address_space: "LocalDefault".into(),
            pool: "172.19.0.0/16".into(),
            gateway: "172.19.0.1/16".into(),
            ..PoolData::default()
        };
        assert_eq!(
            serde_json::to_string(&pool).unwrap(),
            r#"{"AddressSpace":"LocalDefault","Gateway":"172.19.0.1/16","Pool":"172.19.0.0/16"}"#
        );
        let discovery = NodeDiscovery::of_self("10.10.0.1".parse().unwrap());
        assert_eq!(
            serde_json::to_string(&discovery).unwrap(),
            r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"10.10.0.1","BindAddress":"10.10.0.1","Self":true}}"#
        );
    }

    /// Address calls as libnetwork's structs marshal: a request's nil options as `null`, a
    /// release without options.
    #[test]
    fn address_calls_are_written_as_go_writes_them() {
        let request = AddressCall {
            pool_id: "p".into(),
            ..AddressCall::default()
        };
        let written = serde_json::to_string(&request).unwrap();
        assert_eq!(written, r#"{"PoolID":"p","Address":"","Options":null}"#);
        let gateway = AddressCall {
            options: BTreeMap::from([(REQUEST_ADDRESS_TYPE.into(), GATEWAY.into())]),
            ..request
        };
        let written = serde_json::to_string(&gateway).unwrap();
        assert!(
            written.ends_with(r#""Options":{"RequestAddressType":"com.docker.network.gateway"}}"#)
        );
        let release = ReleaseAddress {
            pool_id: "p".into(),
            address: "10.0.0.2".into(),
        };
        let written = serde_json::to_string(&release).unwrap();
        assert_eq!(written, r#"{"PoolID":"p","Address":"10.0.0.2"}"#);
    }

    /// The body dockerd 20.10 sends for `docker network create -d NAME -o foo=bar --internal
    /// --ipv6 --subnet fd00:1::/64 net1` (libnetwork `remote.md`, `driverapi/ipamdata.go`).
    #[test]
    fn create_network_reads_as_a_driver_request() {
        let body = br#"{"NetworkID":"4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899","Options":{"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{"foo":"bar","com.docker.network.driver.mtu":1400},"com.docker.network.internal":true},"IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"172.18.0.1/16","Pool":"172.18.0.0/16"}],"IPv6Data":[{"AddressSpace":"LocalDefault","Gateway":"fd00:1::1/64","Pool":"fd00:1::/64"}]}
"#;
        let create: CreateNetwork = read(body).unwrap();
        let request = create.request().unwrap();
        assert!(request.internal);
        assert_eq!(request.options["foo"], "bar");
        assert_eq!(request.options["com.docker.network.driver.mtu"], "1400");
        assert_eq!(request.pools.len(), 2);
        assert_eq!(request.pools[0].subnet.to_string(), "172.18.0.0/16");
        assert_eq!(
            request.pools[0].gateway.unwrap().to_string(),
            "172.18.0.1/16"
        );
        assert!(request.pools[1].subnet.is_ipv6());
    }

    #[test]
    fn empty_bodies_and_nulls_read_as_nothing_given() {
        let none: Manifest = read(b"").unwrap();
        assert_eq!(none, Manifest::default());
        let create: CreateEndpoint =
            read(br#"{"NetworkID":"n","EndpointID":"e","Interface":null,"Options":null}"#).unwrap();
        assert_eq!(create.interface, EndpointInterface::default());
        let bad = read::<CreateEndpoint>(b"{garbage").unwrap_err();
        assert!(bad.starts_with("malformed request body"), "{bad}");
        let pool = CreateNetwork {
            network_id: "n".into(),
            ipv4_data: vec![PoolData {
                pool: "10.0.0/8".into(),
                ..PoolData::default()
            }],
            ..CreateNetwork::default()
        };
        assert!(pool.request().unwrap_err().contains("pool \"10.0.0/8\""));
    }

    #[test]
    fn answers_are_written_with_gos_field_names() {
        let join = JoinAnswer {
            interface_name: Some(InterfaceName {
                src_name: "dd0123456789".into(),
                dst_prefix: "eth".into(),
            }),
            gateway: "172.18.0.1".into(),
            ..JoinAnswer::default()
        };
        assert_eq!(
            serde_json::to_string(&join).unwrap(),
            r#"{"InterfaceName":{"SrcName":"dd0123456789","DstPrefix":"eth"},"Gateway":"172.18.0.1","GatewayIPv6":"","StaticRoutes":[],"DisableGatewayService":false}"#
        );
        let caps = Capabilities {
            scope: "local".into(),
            connectivity_scope: "local".into(),
        };
        assert_eq!(
            serde_json::to_string(&caps).unwrap(),
            r#"{"Scope":"local","ConnectivityScope":"local"}"#
        );
        assert_eq!(
            serde_json::to_string(&CreateEndpointAnswer::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn answers_are_read_as_gos_decoder_reads_them() {
        let caps: Capabilities =
            decode_as_go(br#"{"scope":"local","CONNECTIVITYSCOPE":"global","x":1} trailing"#)
                .unwrap();
        assert_eq!(
            (caps.scope.as_str(), caps.connectivity_scope.as_str()),
            ("local", "global")
        );
        let html = decode_as_go::<Manifest>(b"<html>").unwrap_err();
        assert_eq!(html, "invalid character '<' looking for beginning of value");
        assert_eq!(decode_as_go::<Manifest>(b"  ").unwrap_err(), "EOF");
        assert_eq!(
            decode_as_go::<Manifest>(b"{\"Impl").unwrap_err(),
            "unexpected EOF"
        );
    }
}
