//! `-p`/`--publish` and `--expose` as the docker CLI parses them before calling the API.
//!
//! The rules and messages are those of the docker CLI 28 (`cli/command/container/opts.go`) and
//! the go-connections `nat` package it uses (`ParsePortSpecs`, `ParsePortRange`,
//! `SplitProtoPort`), checked against the installed CLI 28.2.2: `-p abc` → `invalid
//! containerPort: abc`, `-p 80/xyz` → `invalid proto: xyz`, `--expose 70000` → `invalid range
//! format for --expose: 70000, error: strconv.ParseUint: parsing "70000": value out of range`.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Ports as the API wants them: `ExposedPorts` keys and `PortBindings`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ports {
    /// `"80/tcp"` → nothing (the API's set is a map to `{}`).
    pub exposed: BTreeMap<String, ()>,
    /// `"80/tcp"` → bindings `(HostIp, HostPort)`, in the order given.
    pub bindings: BTreeMap<String, Vec<(String, String)>>,
}

/// Parses `-p` specs and `--expose` values, in the CLI's order (publish first).
pub fn parse(publish: &[String], expose: &[String]) -> Result<Ports, String> {
    let mut ports = Ports::default();
    for spec in publish {
        for (port, binding) in parse_port_spec(spec)? {
            ports.exposed.insert(port.clone(), ());
            ports.bindings.entry(port).or_default().push(binding);
        }
    }
    for value in expose {
        if value.contains(':') {
            return Err(format!("invalid port format for --expose: {value}"));
        }
        let (proto, port) = split_proto_port(value);
        let (start, end) = parse_port_range(port)
            .map_err(|e| format!("invalid range format for --expose: {value}, error: {e}"))?;
        for number in start..=end {
            ports.exposed.insert(format!("{number}/{proto}"), ());
        }
    }
    Ok(ports)
}

/// go-connections `splitParts`: `[ip:]host:container`, the IP may itself hold colons.
fn split_parts(raw: &str) -> (String, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.len() {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        n => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    }
}

/// go-connections `SplitProtoPort`: `80/udp` → (`udp`, `80`); no protocol means `tcp`; no
/// port means nothing at all.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let (port, proto) = raw.split_once('/').unwrap_or((raw, ""));
    match (port, proto) {
        ("", _) => ("", ""),
        (port, "") => ("tcp", port),
        (port, proto) => (proto, port),
    }
}

/// A container port (`80/tcp`) and one host binding of it: `(HostIp, HostPort)`.
type Mapping = (String, (String, String));

/// go-connections `ParsePortSpec`: one `-p` value → one mapping per container port.
fn parse_port_spec(raw: &str) -> Result<Vec<Mapping>, String> {
    let (mut ip, host_port, container_port) = split_parts(raw);
    let (proto, container_port) = split_proto_port(container_port);
    if let Some(inner) = ip.strip_prefix('[') {
        // net.SplitHostPort(ip + ":") strips the brackets of an IPv6 address.
        match inner.strip_suffix(']') {
            Some(inner) if !inner.contains(['[', ']']) => ip = inner.to_string(),
            _ => {
                return Err(format!(
                    "invalid IP address {ip}: address {ip}:: missing ']' in address"
                ));
            }
        }
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = parse_port_range(container_port)
        .map_err(|_| format!("invalid containerPort: {container_port}"))?;
    let (host_start, host_end) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && end - start != host_end - host_start && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
        ));
    }
    let proto_lower = proto.to_ascii_lowercase();
    if !matches!(proto_lower.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut mappings = Vec::new();
    for offset in 0..=(end - start) {
        let mut host = String::new();
        if !host_port.is_empty() {
            host = (u32::from(host_start) + u32::from(offset)).to_string();
        }
        // A single container port with a host range: the range is where Docker picks from.
        if start == end && host_start != host_end {
            host = format!("{host}-{host_end}");
        }
        let port = format!("{}/{proto_lower}", u32::from(start) + u32::from(offset));
        mappings.push((port, (ip.clone(), host)));
    }
    Ok(mappings)
}

/// go-connections `ParsePortRange`: `80` or `8000-8010`, with Go's error texts.
fn parse_port_range(ports: &str) -> Result<(u16, u16), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    if !ports.contains('-') {
        let port = parse_uint16(ports)?;
        return Ok((port, port));
    }
    let mut parts = ports.split('-');
    let start = parse_uint16(parts.next().unwrap_or_default())?;
    let end = parse_uint16(parts.next().unwrap_or_default())?;
    if end < start {
        return Err(format!("invalid range specified for port: {ports}"));
    }
    Ok((start, end))
}

/// Go's `strconv.ParseUint(text, 10, 16)`, with its error texts.
pub fn parse_uint16(text: &str) -> Result<u16, String> {
    let syntax = || format!("strconv.ParseUint: parsing {text:?}: invalid syntax");
    if text.is_empty() {
        return Err(syntax());
    }
    let mut value: u32 = 0;
    for byte in text.bytes() {
        if !byte.is_ascii_digit() {
            return Err(syntax());
        }
        value = value * 10 + u32::from(byte - b'0');
        if value > u32::from(u16::MAX) {
            return Err(format!(
                "strconv.ParseUint: parsing {text:?}: value out of range"
            ));
        }
    }
    Ok(value as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(specs: &[&str]) -> Result<Ports, String> {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        parse(&specs, &[])
    }

    fn bindings(spec: &str) -> Vec<(String, String, String)> {
        let ports = publish(&[spec]).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let mut out = Vec::new();
        for (port, list) in ports.bindings {
            for (ip, host) in list {
                out.push((port.clone(), ip, host));
            }
        }
        out
    }

    fn b(port: &str, ip: &str, host: &str) -> (String, String, String) {
        (port.into(), ip.into(), host.into())
    }

    #[test]
    fn publish_specs_map_like_the_cli() {
        assert_eq!(bindings("8080:80"), [b("80/tcp", "", "8080")]);
        assert_eq!(
            bindings("127.0.0.1:8080:80/udp"),
            [b("80/udp", "127.0.0.1", "8080")]
        );
        assert_eq!(bindings("80"), [b("80/tcp", "", "")]);
        assert_eq!(bindings(":80"), [b("80/tcp", "", "")]);
        assert_eq!(bindings("127.0.0.1::80"), [b("80/tcp", "127.0.0.1", "")]);
        assert_eq!(
            bindings("8000-8001:80-81"),
            [b("80/tcp", "", "8000"), b("81/tcp", "", "8001")]
        );
        assert_eq!(bindings("8000-8005:80"), [b("80/tcp", "", "8000-8005")]);
        assert_eq!(bindings("[::1]:8080:80"), [b("80/tcp", "::1", "8080")]);
        assert_eq!(bindings("::1:8080:80"), [b("80/tcp", "::1", "8080")]);
        assert_eq!(bindings("80/UDP"), [b("80/udp", "", "")]);
        assert_eq!(bindings("80/"), [b("80/tcp", "", "")]);
        // Only the first two parts of a range count, as in go-connections.
        assert_eq!(bindings("1-2-3:80"), [b("80/tcp", "", "1-2")]);
        let both = publish(&["8080:80", "127.0.0.1:9090:80"]).unwrap();
        assert_eq!(both.bindings["80/tcp"].len(), 2);
        assert_eq!(both.exposed.keys().collect::<Vec<_>>(), ["80/tcp"]);
    }

    #[test]
    fn bad_publish_specs_fail_with_the_cli_messages() {
        // Observed with docker CLI 28.2.2 (`docker create -p SPEC busybox`).
        let cases = [
            ("abc", "invalid containerPort: abc"),
            ("80:80:80", "invalid IP address: 80"),
            ("foo:80:80", "invalid IP address: foo"),
            ("[zz]:80:80", "invalid IP address: zz"),
            ("80:", "no port specified: 80:<empty>"),
            ("", "no port specified: <empty>"),
            (
                "8000:80-81",
                "invalid ranges specified for container and host Ports: 80-81 and 8000",
            ),
            ("80/xyz", "invalid proto: xyz"),
            ("1.2.3.4:80", "invalid hostPort: 1.2.3.4"),
            ("70000", "invalid containerPort: 70000"),
            ("80-70", "invalid containerPort: 80-70"),
            ("a-b:80", "invalid hostPort: a-b"),
            ("127.0.0.1:abc:80", "invalid hostPort: abc"),
        ];
        for (spec, message) in cases {
            assert_eq!(publish(&[spec]).unwrap_err(), message, "-p {spec:?}");
        }
    }

    #[test]
    fn expose_adds_ports_and_fails_with_the_cli_messages() {
        let expose = |values: &[&str]| {
            let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
            parse(&["8080:80".to_string()], &values)
        };
        let ports = expose(&["3000-3002", "53/udp", "80"]).unwrap();
        assert_eq!(
            ports.exposed.keys().collect::<Vec<_>>(),
            ["3000/tcp", "3001/tcp", "3002/tcp", "53/udp", "80/tcp"]
        );
        assert_eq!(ports.bindings.len(), 1, "--expose publishes nothing");
        let cases = [
            ("80:90", "invalid port format for --expose: 80:90"),
            (
                "abc",
                "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax",
            ),
            (
                "80-70",
                "invalid range format for --expose: 80-70, error: invalid range specified for port: 80-70",
            ),
            (
                "/tcp",
                "invalid range format for --expose: /tcp, error: empty string specified for ports",
            ),
            (
                "70000",
                "invalid range format for --expose: 70000, error: strconv.ParseUint: parsing \"70000\": value out of range",
            ),
        ];
        for (value, message) in cases {
            assert_eq!(expose(&[value]).unwrap_err(), message, "--expose {value:?}");
        }
    }

    #[test]
    fn uint16_parsing_matches_go() {
        assert_eq!(parse_uint16("65535"), Ok(65535));
        assert!(parse_uint16("+80").unwrap_err().ends_with("invalid syntax"));
        assert!(
            parse_uint16("99999x")
                .unwrap_err()
                .ends_with("value out of range")
        );
        assert!(parse_uint16("").unwrap_err().ends_with("invalid syntax"));
    }
}
