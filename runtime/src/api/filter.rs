//! `--filter KEY=VALUE` of `docker network ls`: the filters as the Engine API carries them, and
//! which inspected networks pass them, as dockerd decides.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Filters by key, each with the values any of which passes (`type=custom` and
/// `type=builtin` together pass both).
pub type Filters = BTreeMap<String, Vec<String>>;

/// The networks every engine has, whose names Docker reserves.
pub(crate) const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// The filters `network ls` accepts, as dockerd names them.
pub const NETWORK_FILTERS: [&str; 7] =
    ["name", "id", "driver", "label", "scope", "type", "dangling"];

/// The filters `network prune` accepts.
pub const PRUNE_FILTERS: [&str; 3] = ["label", "label!", "until"];

/// `KEY=VALUE` words (`-f name=app -f type=custom`) as filters; the docker CLI's text for a
/// word without `=`.
pub fn parse(words: &[String]) -> Result<Filters, String> {
    let mut filters = Filters::new();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| "bad format of filter (expected name=value)".to_string())?;
        let key = key.trim().to_lowercase();
        filters
            .entry(key)
            .or_default()
            .push(value.trim().to_string());
    }
    Ok(filters)
}

/// Refuses a filter whose key is not among `keys`, with dockerd's text.
pub fn known(filters: &Filters, keys: &[&str]) -> Result<(), String> {
    match filters.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(key) => Err(format!("Invalid filter '{key}'")),
        None => Ok(()),
    }
}

/// The `filters` query parameter's JSON, in the shape the docker CLI sends:
/// `{"type":{"custom":true}}`.
pub fn to_query(filters: &Filters) -> String {
    let map: Map<String, Value> = (filters.iter())
        .map(|(key, values)| {
            let set: Map<String, Value> = (values.iter())
                .map(|v| (v.clone(), Value::Bool(true)))
                .collect();
            (key.clone(), Value::Object(set))
        })
        .collect();
    Value::Object(map).to_string()
}

/// Whether an inspected network passes every filter: any value of a key passes it, except
/// `label`, whose values must all hold (moby's `MatchKVList`). `name` is a substring, `id` a
/// prefix, `type` is `builtin` or `custom`, `label` is `KEY` or `KEY=VALUE`, `dangling` means
/// no container and not predefined.
pub fn network_matches(network: &Value, filters: &Filters) -> bool {
    let text = |field: &str| network[field].as_str().unwrap_or_default();
    let labels = network["Labels"].as_object();
    let predefined = PREDEFINED.contains(&text("Name"));
    filters.iter().all(|(key, values)| {
        if key == "label" {
            return labels_match(labels, values);
        }
        values.iter().any(|wanted| match key.as_str() {
            "name" => text("Name").contains(wanted.as_str()),
            "id" => text("Id").starts_with(wanted.as_str()),
            "driver" => text("Driver") == wanted,
            "scope" => text("Scope") == wanted,
            "type" => match wanted.as_str() {
                "builtin" => predefined,
                "custom" => !predefined,
                _ => false,
            },
            "dangling" => {
                let unused = network["Containers"]
                    .as_object()
                    .is_none_or(|c| c.is_empty());
                (wanted == "true" || wanted == "1") == (unused && !predefined)
            }
            _ => false,
        })
    })
}

/// moby's `MatchKVList`: the labels pass every `KEY` or `KEY=VALUE` given.
fn labels_match(labels: Option<&Map<String, Value>>, wanted: &[String]) -> bool {
    wanted.iter().all(|w| label_matches(labels, w))
}

/// Whether an unused, local, custom network may go in a `network prune` with `filters`, as
/// moby's `NetworksPrune` decides: every `label` holds, no `label!` does, and it was made
/// before `until` (the cutoff in Docker's timestamp format, which orders as text).
pub fn prune_matches(network: &Value, filters: &Filters, until: Option<&str>) -> bool {
    let labels = network["Labels"].as_object();
    let created = network["Created"].as_str().unwrap_or_default();
    let unlabelled = (filters.get("label!")).is_none_or(|not| !labels_match(labels, not));
    (filters.get("label")).is_none_or(|all| labels_match(labels, all))
        && unlabelled
        && until.is_none_or(|cutoff| created < cutoff)
}

/// `until` of a prune, in seconds since the epoch, `now` being that too: a Go duration
/// (`24h`, `1h30m`, `10s`, `500ms`) counts back from now; a number is a Unix time,
/// `SECONDS[.FRACTION]`.
pub fn until_seconds(text: &str, now: f64) -> Result<f64, String> {
    let bad = || format!("invalid until {text:?}: expected a duration (24h, 90m) or a Unix time");
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds);
    }
    let mut rest = text;
    let mut back = 0.0;
    while !rest.is_empty() {
        let digits = (rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))).ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = (rest.find(|c: char| c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        back += number * scale;
        rest = &rest[unit..];
    }
    Ok(now - back)
}

/// Whether `labels` pass a `label` filter: `KEY` (present) or `KEY=VALUE`.
pub fn label_matches(labels: Option<&Map<String, Value>>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((k, v)) => labels.and_then(|l| l.get(k)).and_then(|x| x.as_str()) == Some(v),
        None => labels.is_some_and(|l| l.contains_key(wanted)),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn network(name: &str, driver: &str, labels: Value) -> Value {
        json!({"Name": name, "Id": format!("{name}-0123"), "Driver": driver, "Scope": "local",
               "Labels": labels, "Containers": {}})
    }

    #[rstest]
    #[case(&["name=dge"], &["bridge"])]
    #[case(&["id=dev-0"], &["dev"])]
    #[case(&["type=builtin"], &["bridge", "host", "none"])]
    #[case(&["type=custom"], &["dev", "testnet1"])]
    #[case(&["type=custom", "type=builtin"], &["bridge", "dev", "host", "none", "testnet1"])]
    #[case(&["label=foo"], &["testnet1"])]
    #[case(&["label=foo=bar"], &["testnet1"])]
    #[case(&["label=foo=baz"], &[])]
    #[case(&["label=foo", "label=nonexistent"], &[])]
    #[case(&["driver=bridge"], &["bridge", "dev", "testnet1"])]
    #[case(&["driver=bridge", "type=custom"], &["dev", "testnet1"])]
    #[case(&["dangling=true"], &["dev", "testnet1"])]
    fn networks_pass_filters_as_in_dockers_ls_filter_test(
        #[case] words: &[&str],
        #[case] expected: &[&str],
    ) {
        let networks = [
            network("bridge", "bridge", json!({})),
            network("host", "host", json!({})),
            network("none", "null", json!({})),
            network("dev", "bridge", json!({})),
            network("testnet1", "bridge", json!({"foo": "bar"})),
        ];
        let words: Vec<String> = words.iter().map(ToString::to_string).collect();
        let filters = parse(&words).unwrap();
        let mut passed: Vec<&str> = (networks.iter())
            .filter(|n| network_matches(n, &filters))
            .map(|n| n["Name"].as_str().unwrap())
            .collect();
        passed.sort();
        assert_eq!(passed, expected);
    }

    #[test]
    fn prune_takes_every_label_and_what_came_before_until() {
        let network =
            json!({"Labels": {"a": "1", "b": "2"}, "Created": "2026-12-06T10:00:00.000000000Z"});
        let f = |words: &[&str]| {
            parse(&words.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap()
        };
        assert!(prune_matches(&network, &f(&["label=a", "label=b=2"]), None));
        assert!(!prune_matches(&network, &f(&["label=a", "label=c"]), None));
        assert!(!prune_matches(&network, &f(&["label!=a"]), None));
        assert!(prune_matches(&network, &f(&["label!=c"]), None));
        let (after, before) = ("2026-12-06T11:00:00.0Z", "2026-12-06T09:00:00.0Z");
        assert!(prune_matches(&network, &Filters::new(), Some(after)));
        assert!(!prune_matches(&network, &Filters::new(), Some(before)));
        assert_eq!(until_seconds("1h30m", 10_000.0), Ok(4_600.0));
        assert_eq!(until_seconds("1700000000.5", 0.0), Ok(1_700_000_000.5));
        assert!(until_seconds("yesterday", 0.0).is_err());
        assert!(until_seconds("10parsecs", 0.0).is_err());
    }

    #[test]
    fn filters_travel_as_the_cli_sends_them() {
        let filters = parse(&["type=custom".into(), "type=builtin".into()]).unwrap();
        assert_eq!(
            to_query(&filters),
            r#"{"type":{"builtin":true,"custom":true}}"#
        );
        assert_eq!(
            parse(&["nokey".into()]).unwrap_err(),
            "bad format of filter (expected name=value)"
        );
    }
}
