//! The request bodies of Docker's Engine API (1.41) that the engine accepts, as serde types:
//! what [`super::request`] builds, and what the docker CLI sends to dockerd.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `POST /networks/create`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreate {
    /// Network name.
    pub name: String,
    /// Driver name (`bridge` when empty).
    pub driver: String,
    /// `--ipv6`.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// `--subnet`, `--gateway`, ... as consolidated by the CLI.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `-o key=value`.
    pub options: BTreeMap<String, String>,
    /// `--label key=value`.
    pub labels: BTreeMap<String, String>,
}

/// `IPAM` of a network create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// IPAM driver (`default`).
    pub driver: String,
    /// One entry per subnet.
    pub config: Vec<IpamConfig>,
}

/// One subnet of a network create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--ip-range`.
    #[serde(rename = "IPRange")]
    pub ip_range: Option<String>,
    /// `--gateway`.
    pub gateway: Option<String>,
    /// `--aux-address name=ip`.
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// `POST /containers/create` (only the fields the network side reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreate {
    /// `--hostname` (empty: the container's short id).
    pub hostname: String,
    /// Image as given.
    pub image: String,
    /// Command after the image.
    pub cmd: Option<Vec<String>>,
    /// Container ports, `"80/tcp"` → `{}` (`--expose`, `-p`).
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// `--mac-address` (API 1.41 keeps it here).
    pub mac_address: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Host configuration.
    pub host_config: HostConfig,
    /// Per-network endpoint settings.
    pub networking_config: NetworkingConfig,
}

/// `HostConfig` of a container create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `default`, `bridge`, `host`, `none`, `container:NAME`, or a network name.
    pub network_mode: String,
    /// `"80/tcp"` → bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`.
    pub publish_all_ports: bool,
    /// Legacy links `name:alias`.
    pub links: Option<Vec<String>>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--add-host host:ip`.
    pub extra_hosts: Option<Vec<String>>,
}

/// One host binding of a container port.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    /// Host address (empty: all).
    pub host_ip: String,
    /// Host port (empty: ephemeral); may be a range `8000-8001`.
    pub host_port: String,
}

/// `NetworkingConfig` of a container create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// Network name → endpoint settings.
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// Endpoint settings: `--ip`, `--alias`, `--link` for one network.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// Static addresses.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpam>,
    /// Links (on user networks: aliases of other containers).
    pub links: Option<Vec<String>>,
    /// Network-scoped aliases.
    pub aliases: Option<Vec<String>>,
}

/// Static addresses of an endpoint.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct EndpointIpam {
    /// `--ip`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: Option<String>,
    /// `--ip6`.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: Option<String>,
}

/// `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnect {
    /// Container name or id.
    pub container: String,
    /// Its endpoint settings on the network.
    pub endpoint_config: EndpointSettings,
}
