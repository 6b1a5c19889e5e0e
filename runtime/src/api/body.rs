//! The request bodies of Docker's Engine API (1.41) that the engine accepts, as serde types:
//! what [`super::request`] builds from the CLI's flags, what the engine reads, and what a client
//! sends to dockerd. They serialize as the docker CLI 20.10 writes them (a few optional fields
//! left out where dockerd reads a missing field as it reads `null`), and deserialize what Go
//! clients send: missing fields and `null` maps and lists take their defaults, a command may be
//! a string or a list, unknown fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Reads `null` as the default value: Go clients send `null` for nil maps, slices and pointers.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `StrSlice`: a command given as a list, or as one string.
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        Option::<Either>::deserialize(d)?.map(|either| match either {
            Either::One(one) => vec![one],
            Either::Many(many) => many,
        }),
    )
}

/// `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreate {
    /// Network name.
    pub name: String,
    /// Refuse a name in use (the CLI always asks).
    pub check_duplicate: bool,
    /// Driver name (`bridge` when empty).
    pub driver: String,
    /// `--scope`.
    pub scope: String,
    /// `--ipv6`.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// `--subnet`, `--gateway`, ... as consolidated by the CLI.
    #[serde(rename = "IPAM", deserialize_with = "nullable")]
    pub ipam: Ipam,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `--ingress`.
    pub ingress: bool,
    /// `--config-only`.
    pub config_only: bool,
    /// `-o key=value`.
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// `--label key=value`.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

/// `IPAM` of a network create request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// IPAM driver (`default`).
    pub driver: String,
    /// `--ipam-opt`.
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// One entry per subnet.
    #[serde(deserialize_with = "nullable")]
    pub config: Vec<IpamConfig>,
}

/// One subnet of a network create request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// `--subnet`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// `--ip-range`.
    #[serde(rename = "IPRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// `--gateway`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// `--aux-address name=ip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// `POST /containers/create`: the container's configuration, its host configuration and its
/// networks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreate {
    /// `--hostname` (empty: the container's short id).
    pub hostname: String,
    /// `--domainname`.
    pub domainname: String,
    /// `--user`.
    pub user: String,
    /// Attach the container's standard input (`run` without `-d`, with `-i`).
    pub attach_stdin: bool,
    /// Attach its standard output (`run` without `-d`).
    pub attach_stdout: bool,
    /// Attach its standard error (`run` without `-d`).
    pub attach_stderr: bool,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// Close standard input after the first client detaches (`-i` without `-d`).
    pub stdin_once: bool,
    /// `--env`.
    pub env: Option<Vec<String>>,
    /// Command after the image.
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// Image as given.
    pub image: String,
    /// `--workdir`.
    pub working_dir: String,
    /// `--entrypoint`.
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    /// Container ports, `"80/tcp"` → `{}` (`--expose`, `-p`).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// `--mac-address` (API 1.41 keeps it here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Labels.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Host configuration.
    #[serde(deserialize_with = "nullable")]
    pub host_config: HostConfig,
    /// Per-network endpoint settings.
    #[serde(deserialize_with = "nullable")]
    pub networking_config: NetworkingConfig,
}

/// `HostConfig` of a container create request (what networking reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `default`, `bridge`, `host`, `none`, `container:NAME`, or a network name.
    pub network_mode: String,
    /// `"80/tcp"` → bindings.
    #[serde(deserialize_with = "nullable")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`.
    pub publish_all_ports: bool,
    /// `--restart`.
    #[serde(deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
    /// Legacy links `name:alias`.
    pub links: Option<Vec<String>>,
    /// `--dns`.
    #[serde(deserialize_with = "nullable")]
    pub dns: Vec<String>,
    /// `--dns-option`.
    #[serde(deserialize_with = "nullable")]
    pub dns_options: Vec<String>,
    /// `--dns-search`.
    #[serde(deserialize_with = "nullable")]
    pub dns_search: Vec<String>,
    /// `--add-host host:ip`.
    pub extra_hosts: Option<Vec<String>>,
    /// `--uts`: `host` shares the docker host's UTS namespace (its hostname).
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `--rm`: the container goes when it stops.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auto_remove: bool,
}

/// `--restart`: what the daemon does when the container exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// The `N` of `on-failure:N`.
    pub maximum_retry_count: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            name: "no".into(),
            maximum_retry_count: 0,
        }
    }
}

/// One host binding of a container port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    /// Host address (empty: all).
    pub host_ip: String,
    /// Host port (empty: ephemeral); may be a range `8000-8001`.
    pub host_port: String,
}

/// `NetworkingConfig` of a container create request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// Network name → endpoint settings.
    #[serde(deserialize_with = "nullable")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// Endpoint settings: `--ip`, `--alias`, `--link` for one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// Static addresses.
    #[serde(rename = "IPAMConfig", skip_serializing_if = "Option::is_none")]
    pub ipam_config: Option<EndpointIpam>,
    /// Links (on user networks: aliases of other containers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
    /// Network-scoped aliases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
}

impl EndpointSettings {
    /// True when no option is set (the CLI then leaves the endpoint out of a create request).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Static addresses of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpam {
    /// `--ip`.
    #[serde(rename = "IPv4Address", skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    /// `--ip6`.
    #[serde(rename = "IPv6Address", skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// `--link-local-ip`, as given.
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Option::is_none")]
    pub link_local_ips: Option<Vec<String>>,
}

/// `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnect {
    /// Container name or id.
    pub container: String,
    /// Its endpoint settings on the network.
    #[serde(deserialize_with = "nullable")]
    pub endpoint_config: EndpointSettings,
}

/// `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkDisconnect {
    /// Container name or id.
    pub container: String,
    /// `-f`: disconnect even when the engine cannot reach the network.
    pub force: bool,
}

/// `POST /swarm/init`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmInit {
    /// `--listen-addr`: where managers listen for each other (`0.0.0.0:2377`).
    pub listen_addr: String,
    /// `--advertise-addr`: the address other nodes reach this one at.
    pub advertise_addr: String,
    /// `--data-path-addr`: the address the overlay's VXLAN traffic leaves from.
    pub data_path_addr: String,
    /// `--data-path-port` (0: 4789).
    pub data_path_port: u32,
    /// `--default-addr-pool` (empty: 10.0.0.0/8).
    #[serde(deserialize_with = "nullable")]
    pub default_addr_pool: Vec<String>,
    /// `--default-addr-pool-mask-length` (0: 24).
    pub subnet_size: u32,
    /// `--force-new-cluster`.
    pub force_new_cluster: bool,
}

/// `POST /swarm/join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmJoin {
    /// `--listen-addr`.
    pub listen_addr: String,
    /// `--advertise-addr`.
    pub advertise_addr: String,
    /// `--data-path-addr`.
    pub data_path_addr: String,
    /// A manager to join through (`HOST:PORT`).
    #[serde(deserialize_with = "nullable")]
    pub remote_addrs: Vec<String>,
    /// `--token`: a worker's or a manager's join token.
    pub join_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_clients_nulls_and_string_commands_are_read() {
        let body: ContainerCreate = serde_json::from_value(serde_json::json!({
            "Image": "busybox",
            "Cmd": "sleep 1",
            "Labels": null,
            "ExposedPorts": null,
            "HostConfig": {"Dns": null, "PortBindings": null, "RestartPolicy": null},
            "NetworkingConfig": null,
        }))
        .unwrap();
        assert_eq!(body.cmd, Some(vec!["sleep 1".to_string()]));
        assert!(body.labels.is_empty() && body.host_config.dns.is_empty());
        assert_eq!(body.host_config.restart_policy.name, "no");
        let network: NetworkCreate = serde_json::from_value(serde_json::json!({
            "Name": "n", "IPAM": null, "Options": null, "Labels": null,
        }))
        .unwrap();
        assert_eq!(network.name, "n");
        let ipam: NetworkCreate = serde_json::from_value(serde_json::json!({
            "Name": "n", "IPAM": {"Driver": "default", "Config": null, "Options": null},
        }))
        .unwrap();
        assert!(ipam.ipam.config.is_empty());
        let connect: NetworkConnect =
            serde_json::from_value(serde_json::json!({"Container": "c", "EndpointConfig": null}))
                .unwrap();
        assert!(connect.endpoint_config.is_empty());
    }
}
