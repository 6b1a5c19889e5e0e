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
use serde_json::{Map, Value, json};

use super::spec::{ConnectSpec, ContainerSpec, NetworkSpec};

/// `POST /networks/create` body for `docker network create`; `labels` are added to the
/// network's own (a test run marks what it creates with one).
pub fn network_create(
    spec: &NetworkSpec,
    labels: &BTreeMap<String, String>,
) -> Result<Value, String> {
    let configs = ipam_configs(spec)?;
    let labels: BTreeMap<String, String> =
        spec.labels.iter().cloned().chain(labels.clone()).collect();
    let options: BTreeMap<String, String> = spec.options.iter().cloned().collect();
    Ok(json!({
        "Name": spec.name,
        "CheckDuplicate": true,
        "Driver": spec.driver.as_deref().unwrap_or("bridge"),
        "Scope": "",
        "EnableIPv6": spec.ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
        "Internal": spec.internal,
        "Attachable": spec.attachable,
        "Ingress": false,
        "ConfigOnly": false,
        "ConfigFrom": null,
        "Options": options,
        "Labels": labels,
    }))
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
fn ipam_configs(spec: &NetworkSpec) -> Result<Vec<Value>, String> {
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
        .map(|pool| {
            let mut config = Map::new();
            config.insert("Subnet".into(), pool.subnet.to_string().into());
            if let Some(range) = pool.ip_range {
                config.insert("IPRange".into(), range.to_string().into());
            }
            if let Some(gateway) = pool.gateway {
                config.insert("Gateway".into(), gateway.to_string().into());
            }
            if !pool.aux.is_empty() {
                config.insert("AuxiliaryAddresses".into(), json!(pool.aux));
            }
            Value::Object(config)
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

/// `POST /containers/create` body for `docker run -d` (the image already mapped); `labels`
/// become the container's labels.
pub fn container_create(
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
) -> Result<Value, String> {
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
    let ports = super::ports::parse(&spec.publish, &spec.expose)?;

    let mode = spec.network.as_deref().unwrap_or("default");
    let user_defined = !is_builtin_mode(mode);
    if !user_defined && !spec.aliases.is_empty() {
        return Err("network-scoped aliases are only supported for user-defined networks".into());
    }
    let mut endpoint = Map::new();
    if spec.ip.is_some() || spec.ip6.is_some() {
        let mut ipam = Map::new();
        if let Some(ip) = spec.ip {
            ipam.insert("IPv4Address".into(), ip.to_string().into());
        }
        if let Some(ip6) = spec.ip6 {
            ipam.insert("IPv6Address".into(), ip6.to_string().into());
        }
        endpoint.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    // On a user-defined network `--link` is an endpoint option (an alias); on the default
    // bridge it is a legacy link only (HostConfig.Links, below).
    if user_defined && !spec.links.is_empty() {
        endpoint.insert("Links".into(), json!(spec.links));
    }
    if !spec.aliases.is_empty() {
        endpoint.insert("Aliases".into(), json!(spec.aliases));
    }
    let mut endpoints = Map::new();
    if spec.network.is_none() {
        endpoints.insert("default".into(), Value::Object(endpoint));
    } else if !endpoint.is_empty() {
        // A single network without endpoint options is left out, like the CLI does.
        endpoints.insert(mode.into(), Value::Object(endpoint));
    }

    let exposed: Map<String, Value> = ports
        .exposed
        .keys()
        .map(|port| (port.clone(), json!({})))
        .collect();
    let bindings: Map<String, Value> = ports
        .bindings
        .into_iter()
        .map(|(port, list)| {
            let list: Vec<Value> = list
                .into_iter()
                .map(|(ip, host)| json!({"HostIp": ip, "HostPort": host}))
                .collect();
            (port, Value::Array(list))
        })
        .collect();
    let dns: Vec<String> = spec.dns.iter().map(ToString::to_string).collect();
    let mut body = json!({
        "Hostname": spec.hostname.as_deref().unwrap_or(""),
        "Domainname": "",
        "User": "",
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": null,
        "Cmd": if spec.command.is_empty() { Value::Null } else { json!(spec.command) },
        "Image": spec.image,
        "Volumes": {},
        "WorkingDir": "",
        "Entrypoint": null,
        "OnBuild": null,
        "Labels": labels,
        "HostConfig": {
            "NetworkMode": mode,
            "PortBindings": bindings,
            "PublishAllPorts": spec.publish_all,
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "Links": if spec.links.is_empty() { Value::Null } else { json!(spec.links) },
            "Dns": dns,
            "DnsOptions": [],
            "DnsSearch": [],
            "ExtraHosts": if extra_hosts.is_empty() { Value::Null } else { json!(extra_hosts) },
        },
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    if !exposed.is_empty() {
        body["ExposedPorts"] = Value::Object(exposed);
    }
    if let Some(mac) = &spec.mac_address {
        body["MacAddress"] = mac.as_str().into();
    }
    Ok(body)
}

/// `POST /networks/{id}/connect` body for `docker network connect`.
pub fn connect(spec: &ConnectSpec) -> Result<Value, String> {
    for link in &spec.links {
        validate_link(link)
            .map_err(|e| format!("invalid argument {link:?} for \"--link\" flag: {e}"))?;
    }
    let ipam = if spec.ip.is_some() || spec.ip6.is_some() {
        let mut ipam = Map::new();
        if let Some(ip) = spec.ip {
            ipam.insert("IPv4Address".into(), ip.to_string().into());
        }
        if let Some(ip6) = spec.ip6 {
            ipam.insert("IPv6Address".into(), ip6.to_string().into());
        }
        Value::Object(ipam)
    } else {
        Value::Null
    };
    let optional = |list: &[String]| {
        if list.is_empty() {
            Value::Null
        } else {
            json!(list)
        }
    };
    Ok(json!({
        "Container": spec.container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": optional(&spec.links),
            "Aliases": optional(&spec.aliases),
        },
    }))
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
    use super::*;

    fn run() -> BTreeMap<String, String> {
        [("drydock.run".to_string(), "r1".to_string())].into()
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
        let body = network_create(&spec, &run()).unwrap();
        assert_eq!(body["CheckDuplicate"], true);
        assert_eq!(body["Driver"], "bridge");
        assert_eq!(
            body["IPAM"]["Config"],
            json!([{"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.1",
                    "AuxiliaryAddresses": {"a": "10.5.0.9"}}])
        );
        assert_eq!(body["Labels"], json!({"drydock.run": "r1", "x": "y"}));
        assert_eq!(body["Options"], json!({"foo": "bar"}));
        let plain = network_create(
            &NetworkSpec {
                name: "n".into(),
                ..NetworkSpec::default()
            },
            &run(),
        )
        .unwrap();
        assert_eq!(plain["IPAM"]["Config"], json!([]));
    }

    #[test]
    fn ipam_mistakes_fail_with_the_cli_messages() {
        let check = |spec: NetworkSpec, message: &str| {
            assert_eq!(network_create(&spec, &run()).unwrap_err(), message);
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
        container_create(&spec, &run())
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
        assert_eq!(body["Labels"], json!({"drydock.run": "r1"}));

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
        let body = connect(&ConnectSpec {
            network: "pn".into(),
            container: "pd".into(),
            ip: Some(ip("10.5.1.9")),
            aliases: vec!["x2".into()],
            ..ConnectSpec::default()
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"Container": "pd", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.5.1.9"},
                   "Links": null, "Aliases": ["x2"]}})
        );
    }
}
