//! `--filter KEY=VALUE` of `docker network ls`: the filters as the Engine API carries them, and
//! which inspected networks pass them, as dockerd decides.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Filters by key, each with the values any of which passes (`type=custom` and
/// `type=builtin` together pass both).
pub type Filters = BTreeMap<String, Vec<String>>;

/// The networks every engine has.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// The filters `network ls` accepts, as dockerd names them.
pub const NETWORK_FILTERS: [&str; 7] =
    ["name", "id", "driver", "label", "scope", "type", "dangling"];

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

/// Whether an inspected network passes every filter (each: any of its values). `name` is a
/// substring, `id` a prefix, `type` is `builtin` or `custom`, `label` is `KEY` or `KEY=VALUE`,
/// `dangling` means no container and not predefined.
pub fn network_matches(network: &Value, filters: &Filters) -> bool {
    let text = |field: &str| network[field].as_str().unwrap_or_default();
    let labels = network["Labels"].as_object();
    let predefined = PREDEFINED.contains(&text("Name"));
    filters.iter().all(|(key, values)| {
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
            "label" => label_matches(labels, wanted),
            _ => false,
        })
    })
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
