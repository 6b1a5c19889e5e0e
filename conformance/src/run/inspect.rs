//! Reading inspect JSON: dotted paths, and the addresses of containers on their networks.

use std::net::IpAddr;

use serde_json::Value;

/// The value at a dotted path (`IPAM.Config.0.Subnet`); numeric parts index arrays. A map key
/// holding dots (a network named `a.b`) is matched greedily.
pub(crate) fn lookup<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    let parts: Vec<&str> = path.split('.').collect();
    lookup_parts(json, &parts)
}

fn lookup_parts<'a>(json: &'a Value, parts: &[&str]) -> Option<&'a Value> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(json);
    };
    match json {
        Value::Array(items) => lookup_parts(items.get(first.parse::<usize>().ok()?)?, rest),
        Value::Object(map) => {
            // Try the longest key first, so that `Networks.a.b.IPAddress` finds network "a.b".
            (1..=parts.len()).rev().find_map(|n| {
                let key = parts[..n].join(".");
                map.get(&key).and_then(|v| lookup_parts(v, &parts[n..]))
            })
        }
        _ => None,
    }
}

/// Why `lacks PATH` cannot hold although PATH is missing: PATH's parent must exist, so that a
/// misspelled path fails instead of trivially "lacking". The parent is the longest prefix of
/// PATH that exists; the missing rest must be one key or index of it, or several parts forming
/// one dotted key of a map that has such keys (`Options.com.docker.network.bridge.name`). A
/// parent that is `null` or empty has no children at all: anything under it is missing.
pub(crate) fn missing_under(json: &Value, path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    let (found, parent) = (0..parts.len())
        .rev()
        .find_map(|n| lookup_parts(json, &parts[..n]).map(|v| (n, v)))
        .unwrap_or((0, json));
    let rest = &parts[found..];
    let fits = match parent {
        Value::Null => true,
        Value::Object(map) => {
            map.is_empty() || rest.len() == 1 || map.keys().any(|k| k.contains('.'))
        }
        Value::Array(items) => items.is_empty() || rest.len() == 1,
        _ => false,
    };
    if fits {
        return Ok(());
    }
    let name = if found == 0 {
        "the inspect JSON".to_string()
    } else {
        parts[..found].join(".")
    };
    Err(format!(
        "{name} has no {}: a misspelled path? (a `lacks` check needs the parent of what is missing)",
        rest[0]
    ))
}

/// A JSON value as a scenario writes it: strings bare, `null` for null.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A container's addresses per network (`NetworkSettings.Networks`), sorted by network name;
/// IPv4 first, then IPv6, skipping empty ones.
pub(crate) fn container_addresses(inspect: &Value) -> Vec<(String, IpAddr)> {
    let mut found = Vec::new();
    if let Some(Value::Object(networks)) = lookup(inspect, "NetworkSettings.Networks") {
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        for name in names {
            for key in ["IPAddress", "GlobalIPv6Address"] {
                if let Some(ip) = networks[name]
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                {
                    found.push((name.clone(), ip));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_values_and_dotted_keys() {
        let json: Value = serde_json::json!({
            "IPAM": {"Config": [{"Subnet": "172.18.0.0/16"}]},
            "NetworkSettings": {"Networks": {"a.b": {"IPAddress": "172.19.0.2", "GlobalIPv6Address": ""}, "my-net": {"IPAddress": "172.18.0.2"}}},
            "Internal": false
        });
        assert_eq!(
            text(lookup(&json, "IPAM.Config.0.Subnet").unwrap()),
            "172.18.0.0/16"
        );
        assert_eq!(
            text(lookup(&json, "NetworkSettings.Networks.a.b.IPAddress").unwrap()),
            "172.19.0.2"
        );
        assert_eq!(text(lookup(&json, "Internal").unwrap()), "false");
        assert!(lookup(&json, "IPAM.Config.1.Subnet").is_none());
        // `lacks`: the parent exists (or is empty, null, or a map of dotted keys).
        assert_eq!(missing_under(&json, "IPAM.Config.0.Gateway"), Ok(()));
        assert_eq!(missing_under(&json, "IPAM.Config.1"), Ok(()));
        assert!(
            missing_under(&json, "IPAM.Confg.0.Gateway")
                .is_err_and(|e| e.starts_with("IPAM has no Confg"))
        );
        assert!(missing_under(&json, "IPAM.Config.3.Subnet").is_err());
        assert!(missing_under(&json, "Missing.x").is_err());
        let other = serde_json::json!({"Options": {"com.docker.network.bridge.name": "br0"}, "Ports": {"80/tcp": null}, "Labels": {}});
        assert_eq!(
            missing_under(&other, "Options.com.docker.network.driver.mtu"),
            Ok(())
        );
        assert_eq!(missing_under(&other, "Ports.80/tcp.0.HostPort"), Ok(()));
        assert_eq!(missing_under(&other, "Labels.a.b"), Ok(()));
        assert!(missing_under(&other, "Ports.81/tcp.0.HostPort").is_err());
        let addresses = container_addresses(&json);
        assert_eq!(
            addresses,
            [
                ("a.b".to_string(), "172.19.0.2".parse().unwrap()),
                ("my-net".to_string(), "172.18.0.2".parse().unwrap())
            ]
        );
    }
}
