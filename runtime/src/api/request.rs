//! Request bodies for API 1.41, built the way the docker CLI builds them from its flags,
//! including the CLI's own client-side checks (which fail before any request is sent).
//!
//! Sources: docker/cli `cli/command/network/create.go` (`createIPAMConfig`, `subnetMatches`),
//! `cli/command/container/opts.go` (`parse`, `parseNetworkOpts`, `applyContainerOptions`,
//! `parseNetworkAttachmentOpt`), `opts/hosts.go` (`ValidateExtraHost`), `opts/opts.go`
//! (`ValidateLink`/`ParseLink`), Go's `net.ParseMAC`; what CLI 28.2.2 sends to a 1.41 daemon was
//! captured on the wire. Where CLI 28 cannot talk to a 1.41 daemon at all (`--mac-address`:
//! "requires API version 1.44"), the body is what the 20.10 CLI sends (`Config.MacAddress`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::body::{
    ContainerCreate, EndpointIpam, EndpointSettings, HostConfig, Ipam, IpamConfig, NetworkConnect,
    NetworkCreate, NetworkingConfig, PortBinding, SwarmInit, SwarmJoin,
};
use super::spec::{ConnectSpec, ContainerSpec, NetworkSpec, SwarmInitSpec, SwarmJoinSpec};

/// `POST /networks/create` body for `docker network create`.
pub fn network_create(spec: &NetworkSpec) -> Result<NetworkCreate, String> {
    Ok(NetworkCreate {
        name: spec.name.clone(),
        check_duplicate: true,
        driver: spec.driver.clone().unwrap_or_else(|| "bridge".into()),
        enable_ipv6: spec.ipv6,
        ipam: Ipam {
            driver: spec.ipam_driver.clone().unwrap_or_else(|| "default".into()),
            options: BTreeMap::new(),
            config: ipam_configs(spec)?,
        },
        internal: spec.internal,
        attachable: spec.attachable,
        options: spec.options.iter().cloned().collect(),
        labels: spec.labels.iter().cloned().collect(),
        ..NetworkCreate::default()
    })
}

/// One `IPAM.Config` entry being consolidated.
#[derive(Debug)]
struct Pool {
    subnet: IpNetwork,
    ip_range: Option<IpNetwork>,
    gateway: Option<IpAddr>,
    aux: BTreeMap<String, String>,
}

/// docker/cli `createIPAMConfig`: pairs ranges, gateways and auxiliary addresses with the
/// subnet that contains them, with the CLI's messages.
fn ipam_configs(spec: &NetworkSpec) -> Result<Vec<IpamConfig>, String> {
    if spec.subnets.len() < spec.ip_ranges.len() || spec.subnets.len() < spec.gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut pools: Vec<Pool> = Vec::new();
    for subnet in &spec.subnets {
        if pools
            .iter()
            .any(|p| contains(subnet, p.subnet.ip()) || contains(&p.subnet, subnet.ip()))
        {
            return Err("multiple overlapping subnet configuration is not supported".into());
        }
        pools.push(Pool {
            subnet: *subnet,
            ip_range: None,
            gateway: None,
            aux: BTreeMap::new(),
        });
    }
    for range in &spec.ip_ranges {
        let mut matched = false;
        for pool in pools.iter_mut().filter(|p| contains(&p.subnet, range.ip())) {
            if let Some(existing) = pool.ip_range {
                return Err(format!(
                    "cannot configure multiple ranges ({range}, {existing}) on the same subnet ({})",
                    pool.subnet
                ));
            }
            pool.ip_range = Some(*range);
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {range}"));
        }
    }
    for gateway in &spec.gateways {
        let mut matched = false;
        for pool in pools.iter_mut().filter(|p| contains(&p.subnet, *gateway)) {
            if let Some(existing) = pool.gateway {
                return Err(format!(
                    "cannot configure multiple gateways ({gateway}, {existing}) for the same subnet ({})",
                    pool.subnet
                ));
            }
            pool.gateway = Some(*gateway);
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {gateway}"));
        }
    }
    // `--aux-address` is a map on the CLI: a repeated name keeps its last address.
    let aux: BTreeMap<&str, IpAddr> = spec
        .aux_addresses
        .iter()
        .map(|(name, ip)| (name.as_str(), *ip))
        .collect();
    for (name, address) in aux {
        let mut matched = false;
        for pool in pools.iter_mut().filter(|p| contains(&p.subnet, address)) {
            pool.aux.insert(name.to_string(), address.to_string());
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {address}"));
        }
    }
    Ok(pools
        .into_iter()
        .map(|pool| IpamConfig {
            subnet: Some(pool.subnet.to_string()),
            ip_range: pool.ip_range.map(|r| r.to_string()),
            gateway: pool.gateway.map(|g| g.to_string()),
            auxiliary_addresses: (!pool.aux.is_empty()).then_some(pool.aux),
        })
        .collect())
}

/// Go's `(*net.IPNet).Contains` on the network `net.ParseCIDR` makes of `subnet` (masked).
fn contains(subnet: &IpNetwork, ip: IpAddr) -> bool {
    match (subnet, ip) {
        (IpNetwork::V4(net), IpAddr::V4(ip)) => net.contains(ip),
        (IpNetwork::V6(net), IpAddr::V6(ip)) => net.contains(ip),
        (IpNetwork::V4(net), IpAddr::V6(ip)) => {
            ip.to_ipv4_mapped().is_some_and(|ip| net.contains(ip))
        }
        (IpNetwork::V6(_), IpAddr::V4(_)) => false,
    }
}

/// True for the network modes that are not user-defined networks (docker's
/// `NetworkMode.IsUserDefined` negated).
fn is_builtin_mode(mode: &str) -> bool {
    matches!(mode, "default" | "bridge" | "host" | "none") || mode.starts_with("container:")
}

/// `POST /containers/create` body for `docker run` (the image as written).
pub fn container_create(spec: &ContainerSpec) -> Result<ContainerCreate, String> {
    // Flag validators run while the command line is parsed, before everything else.
    for link in &spec.links {
        validate_link(link)
            .map_err(|e| format!("invalid argument {link:?} for \"--link\" flag: {e}"))?;
    }
    let mut extra_hosts = Vec::new();
    for host in &spec.add_hosts {
        let normalized = validate_extra_host(host)
            .map_err(|e| format!("invalid argument {host:?} for \"--add-host\" flag: {e}"))?;
        extra_hosts.push(normalized);
    }
    if let Some(mac) = &spec.mac_address
        && !is_mac(mac.trim())
    {
        return Err(format!("{mac} is not a valid mac address"));
    }
    if !["", "host"].contains(&spec.uts.as_str()) {
        return Err("--uts: invalid UTS mode".into());
    }
    let ports = super::ports::parse(&spec.publish, &spec.expose)?;

    let mode = spec.network.as_deref().unwrap_or("default");
    let user_defined = !is_builtin_mode(mode);
    if !user_defined && !spec.aliases.is_empty() {
        return Err("network-scoped aliases are only supported for user-defined networks".into());
    }
    let endpoint = EndpointSettings {
        ipam_config: endpoint_ipam(spec.ip, spec.ip6, &spec.link_local_ips),
        // On a user-defined network `--link` is an endpoint option (an alias); on the default
        // bridge it is a legacy link only (HostConfig.Links, below).
        links: (user_defined && !spec.links.is_empty()).then(|| spec.links.clone()),
        aliases: optional(&spec.aliases),
    };
    let mut endpoints = BTreeMap::new();
    if spec.network.is_none() {
        endpoints.insert("default".to_string(), endpoint);
    } else if !endpoint.is_empty() {
        // A single network without endpoint options is left out, like the CLI does.
        endpoints.insert(mode.to_string(), endpoint);
    }
    let port_bindings = ports
        .bindings
        .into_iter()
        .map(|(port, list)| {
            let list = list
                .into_iter()
                .map(|(host_ip, host_port)| PortBinding { host_ip, host_port })
                .collect();
            (port, list)
        })
        .collect();
    Ok(ContainerCreate {
        hostname: spec.hostname.clone().unwrap_or_default(),
        domainname: spec.domainname.clone(),
        attach_stdout: !spec.detach,
        attach_stderr: !spec.detach,
        cmd: optional(&spec.command),
        image: spec.image.clone(),
        exposed_ports: ports
            .exposed
            .into_keys()
            .map(|port| (port, serde_json::json!({})))
            .collect(),
        mac_address: spec.mac_address.clone(),
        host_config: HostConfig {
            network_mode: mode.to_string(),
            port_bindings,
            publish_all_ports: spec.publish_all,
            links: optional(&spec.links),
            dns: spec.dns.iter().map(ToString::to_string).collect(),
            dns_search: spec.dns_search.clone(),
            dns_options: spec.dns_options.clone(),
            extra_hosts: optional(&extra_hosts),
            uts_mode: spec.uts.clone(),
            ..HostConfig::default()
        },
        networking_config: NetworkingConfig {
            endpoints_config: endpoints,
        },
        ..ContainerCreate::default()
    })
}

/// `POST /networks/{id}/connect` body for `docker network connect`.
pub fn connect(spec: &ConnectSpec) -> Result<NetworkConnect, String> {
    for link in &spec.links {
        validate_link(link)
            .map_err(|e| format!("invalid argument {link:?} for \"--link\" flag: {e}"))?;
    }
    Ok(NetworkConnect {
        container: spec.container.clone(),
        endpoint_config: EndpointSettings {
            ipam_config: endpoint_ipam(spec.ip, spec.ip6, &spec.link_local_ips),
            links: optional(&spec.links),
            aliases: optional(&spec.aliases),
        },
    })
}

/// `--ip` and `--ip6` of an endpoint, when either is given.
fn endpoint_ipam(
    ip: Option<IpAddr>,
    ip6: Option<IpAddr>,
    link_local: &[String],
) -> Option<EndpointIpam> {
    (ip.is_some() || ip6.is_some() || !link_local.is_empty()).then(|| EndpointIpam {
        ipv4_address: ip.map(|ip| ip.to_string()),
        ipv6_address: ip6.map(|ip| ip.to_string()),
        link_local_ips: optional(link_local),
    })
}

/// A list the CLI sends as `null` when empty.
fn optional(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

/// The address swarm managers listen on unless told: docker/cli's `NodeAddrOption` default.
const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:2377";

/// `POST /swarm/init` body for `docker swarm init`.
pub fn swarm_init(spec: &SwarmInitSpec) -> SwarmInit {
    SwarmInit {
        listen_addr: (spec.listen_addr.clone()).unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into()),
        advertise_addr: spec.advertise_addr.clone().unwrap_or_default(),
        ..SwarmInit::default()
    }
}

/// `POST /swarm/join` body for `docker swarm join`.
pub fn swarm_join(spec: &SwarmJoinSpec) -> SwarmJoin {
    SwarmJoin {
        listen_addr: (spec.listen_addr.clone()).unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into()),
        advertise_addr: spec.advertise_addr.clone().unwrap_or_default(),
        data_path_addr: String::new(),
        remote_addrs: vec![spec.remote.clone()],
        join_token: spec.token.clone(),
    }
}

/// docker/cli `opts.ValidateLink` (`ParseLink`): `name` or `name:alias`.
fn validate_link(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty string specified for links".into());
    }
    if value.split(':').count() > 2 {
        return Err(format!("bad format for links: {value}"));
    }
    Ok(())
}

/// docker/cli `opts.ValidateExtraHost`: `host:ip`, `host=ip`, `host:[ipv6]` or
/// `host:host-gateway`; returns the `host:ip` form the API understands.
fn validate_extra_host(value: &str) -> Result<String, String> {
    let split = value.split_once('=').or_else(|| value.split_once(':'));
    let Some((name, mut address)) =
        split.filter(|(name, _)| !name.is_empty() && !name.contains(':'))
    else {
        return Err(format!("bad format for add-host: {value:?}"));
    };
    if address != "host-gateway" {
        if address.len() > 2 && address.starts_with('[') && address.ends_with(']') {
            address = &address[1..address.len() - 1];
        }
        if address.trim().parse::<IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {address:?}"));
        }
    }
    Ok(format!("{name}:{address}"))
}

/// Go's `net.ParseMAC`: 6, 8 or 20 bytes as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx.xxxx`.
fn is_mac(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 14 {
        return false;
    }
    let hex_group = |group: &[u8]| !group.is_empty() && group.iter().all(u8::is_ascii_hexdigit);
    if bytes[2] == b':' || bytes[2] == b'-' {
        let separator = bytes[2] as char;
        if !(bytes.len() + 1).is_multiple_of(3) || !matches!((bytes.len() + 1) / 3, 6 | 8 | 20) {
            return false;
        }
        text.split(separator)
            .all(|g| g.len() == 2 && hex_group(g.as_bytes()))
    } else if bytes[4] == b'.' {
        if !(bytes.len() + 1).is_multiple_of(5) || !matches!(2 * (bytes.len() + 1) / 5, 6 | 8 | 20)
        {
            return false;
        }
        text.split('.')
            .all(|g| g.len() == 4 && hex_group(g.as_bytes()))
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// A body as the daemon receives it.
    fn wire(body: impl serde::Serialize) -> Value {
        serde_json::to_value(body).expect("bodies serialize")
    }

    fn net(text: &str) -> IpNetwork {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn network_bodies_carry_ipam_and_check_duplicate() {
        let spec = NetworkSpec {
            name: "pn".into(),
            subnets: vec![net("10.5.0.0/16")],
            gateways: vec![ip("10.5.0.1")],
            ip_ranges: vec![net("10.5.1.0/24")],
            aux_addresses: vec![("a".into(), ip("10.5.0.9"))],
            internal: true,
            options: vec![("foo".into(), "bar".into())],
            labels: vec![("x".into(), "y".into())],
            ..NetworkSpec::default()
        };
        let body = wire(network_create(&spec).unwrap());
        assert_eq!(body["CheckDuplicate"], true);
        assert_eq!(body["Driver"], "bridge");
        assert_eq!(
            body["IPAM"]["Config"],
            json!([{"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.1",
                    "AuxiliaryAddresses": {"a": "10.5.0.9"}}])
        );
        assert_eq!(body["Labels"], json!({"x": "y"}));
        assert_eq!(body["Options"], json!({"foo": "bar"}));
        let plain = wire(
            network_create(&NetworkSpec {
                name: "n".into(),
                ..NetworkSpec::default()
            })
            .unwrap(),
        );
        assert_eq!(plain["IPAM"]["Config"], json!([]));
    }

    #[test]
    fn ipam_mistakes_fail_with_the_cli_messages() {
        let check = |spec: NetworkSpec, message: &str| {
            assert_eq!(network_create(&spec).unwrap_err(), message);
        };
        check(
            NetworkSpec {
                gateways: vec![ip("1.2.3.4")],
                ..NetworkSpec::default()
            },
            "every ip-range or gateway must have a corresponding subnet",
        );
        check(
            NetworkSpec {
                subnets: vec![net("10.0.0.0/8"), net("10.1.0.0/16")],
                ..NetworkSpec::default()
            },
            "multiple overlapping subnet configuration is not supported",
        );
        check(
            NetworkSpec {
                subnets: vec![net("10.0.0.0/8")],
                gateways: vec![ip("192.168.0.1")],
                ..NetworkSpec::default()
            },
            "no matching subnet for gateway 192.168.0.1",
        );
        check(
            NetworkSpec {
                subnets: vec![net("10.0.0.0/8"), net("fd00::/64")],
                ip_ranges: vec![net("10.1.0.0/16"), net("10.2.0.0/16")],
                ..NetworkSpec::default()
            },
            "cannot configure multiple ranges (10.2.0.0/16, 10.1.0.0/16) on the same subnet (10.0.0.0/8)",
        );
        check(
            NetworkSpec {
                subnets: vec![net("10.0.0.0/8")],
                ip_ranges: vec![net("11.0.0.0/16")],
                ..NetworkSpec::default()
            },
            "no matching subnet for range 11.0.0.0/16",
        );
        check(
            NetworkSpec {
                subnets: vec![net("10.0.0.0/8"), net("fd00::/64")],
                gateways: vec![ip("10.0.0.1"), ip("10.0.0.2")],
                ..NetworkSpec::default()
            },
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/8)",
        );
        check(
            NetworkSpec {
                subnets: vec![net("10.0.0.0/8")],
                aux_addresses: vec![("r".into(), ip("12.0.0.1"))],
                ..NetworkSpec::default()
            },
            "no matching subnet for aux-address 12.0.0.1",
        );
    }

    fn container(spec: ContainerSpec) -> Result<Value, String> {
        container_create(&spec).map(wire)
    }

    #[test]
    fn container_bodies_follow_the_cli() {
        let body = container(ContainerSpec {
            name: "web".into(),
            image: "busybox".into(),
            network: Some("pn".into()),
            ip: Some(ip("10.5.1.7")),
            aliases: vec!["al".into()],
            publish: vec!["8081:80".into(), "127.0.0.1::81/udp".into()],
            expose: vec!["90".into()],
            links: vec!["dd:ddd".into()],
            dns: vec![ip("1.1.1.1")],
            hostname: Some("hh".into()),
            add_hosts: vec!["foo=1.2.3.4".into()],
            command: vec!["sleep".into(), "100".into()],
            ..ContainerSpec::default()
        })
        .unwrap();
        assert_eq!(body["Hostname"], "hh");
        assert_eq!(body["Cmd"], json!(["sleep", "100"]));
        assert_eq!(
            body["ExposedPorts"],
            json!({"80/tcp": {}, "81/udp": {}, "90/tcp": {}})
        );
        let host = &body["HostConfig"];
        assert_eq!(host["NetworkMode"], "pn");
        assert_eq!(
            host["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8081"}],
                   "81/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]})
        );
        assert_eq!(host["Links"], json!(["dd:ddd"]));
        assert_eq!(host["Dns"], json!(["1.1.1.1"]));
        assert_eq!(host["ExtraHosts"], json!(["foo:1.2.3.4"]));
        assert_eq!(
            body["NetworkingConfig"]["EndpointsConfig"],
            json!({"pn": {"IPAMConfig": {"IPv4Address": "10.5.1.7"}, "Links": ["dd:ddd"], "Aliases": ["al"]}})
        );
        assert_eq!(body["Labels"], json!({}));

        let plain = container(ContainerSpec {
            name: "c".into(),
            image: "busybox".into(),
            links: vec!["web".into()],
            mac_address: Some("02:42:ac:11:00:09".into()),
            ..ContainerSpec::default()
        })
        .unwrap();
        assert_eq!(plain["HostConfig"]["NetworkMode"], "default");
        assert_eq!(plain["Cmd"], Value::Null);
        assert_eq!(plain["MacAddress"], "02:42:ac:11:00:09");
        assert_eq!(plain["HostConfig"]["Links"], json!(["web"]));
        assert_eq!(
            plain["NetworkingConfig"]["EndpointsConfig"],
            json!({"default": {}}),
            "legacy links stay out of the endpoint"
        );
        let named = container(ContainerSpec {
            name: "c".into(),
            image: "busybox".into(),
            network: Some("my-net".into()),
            ..ContainerSpec::default()
        })
        .unwrap();
        assert_eq!(named["NetworkingConfig"]["EndpointsConfig"], json!({}));
    }

    #[test]
    fn container_mistakes_fail_with_the_cli_messages() {
        let base = || ContainerSpec {
            name: "c".into(),
            image: "busybox".into(),
            ..ContainerSpec::default()
        };
        let cases = [
            (
                ContainerSpec {
                    add_hosts: vec!["foo".into()],
                    ..base()
                },
                r#"invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo""#,
            ),
            (
                ContainerSpec {
                    add_hosts: vec!["foo:bar".into()],
                    ..base()
                },
                r#"invalid argument "foo:bar" for "--add-host" flag: invalid IP address in add-host: "bar""#,
            ),
            (
                ContainerSpec {
                    links: vec!["a:b:c".into()],
                    ..base()
                },
                r#"invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c"#,
            ),
            (
                ContainerSpec {
                    mac_address: Some("zz".into()),
                    ..base()
                },
                "zz is not a valid mac address",
            ),
            (
                ContainerSpec {
                    aliases: vec!["x".into()],
                    ..base()
                },
                "network-scoped aliases are only supported for user-defined networks",
            ),
            (
                ContainerSpec {
                    publish: vec!["abc".into()],
                    ..base()
                },
                "invalid containerPort: abc",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(container(spec).unwrap_err(), message);
        }
    }

    #[test]
    fn extra_hosts_and_macs_parse_like_go() {
        assert_eq!(validate_extra_host("foo:::1").unwrap(), "foo:::1");
        assert_eq!(validate_extra_host("foo:[::1]").unwrap(), "foo:::1");
        assert_eq!(
            validate_extra_host("gw:host-gateway").unwrap(),
            "gw:host-gateway"
        );
        assert!(validate_extra_host(":1.2.3.4").is_err());
        assert!(is_mac("02:42:ac:11:00:02"));
        assert!(is_mac("02-42-AC-11-00-02"));
        assert!(is_mac("0242.ac11.0002"));
        assert!(is_mac("02:00:5e:10:00:00:00:01"));
        assert!(!is_mac("02:42:ac:11:00"));
        assert!(!is_mac("02:42:ac-11:00:02"));
    }

    #[test]
    fn connect_bodies_carry_endpoint_options() {
        let body = wire(
            connect(&ConnectSpec {
                network: "pn".into(),
                container: "pd".into(),
                ip: Some(ip("10.5.1.9")),
                aliases: vec!["x2".into()],
                ..ConnectSpec::default()
            })
            .unwrap(),
        );
        assert_eq!(
            body,
            json!({"Container": "pd", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.5.1.9"},
                   "Aliases": ["x2"]}})
        );
    }
}
