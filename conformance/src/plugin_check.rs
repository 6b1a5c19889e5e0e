//! `drydock plugin check`, its protocol part: a network plugin judged by the calls dockerd 20.10
//! makes and what it does with the answers (`drydock_runtime::plugin::protocol`; libnetwork's
//! `drivers/remote`, vendored in moby v20.10). Each check is a short exchange on the
//! plugin's socket (`drydock_runtime::plugin::client`, the engine's own plugin transport), from
//! the network namespace the plugin works in (its links are looked for
//! there); a failed check says what was sent, what came back, and why that breaks dockerd.

use std::fmt;
use std::path::Path;

use drydock_netsim::{Lab, Netns, Topology, link};
use serde_json::{Value, json};

use drydock_runtime::plugin::client::{Address, CallError, Client, Patience};

use crate::scenario::PluginRun;
use crate::targets::reference::PLUGINS_DIR_PREFIX;

/// How long a call may take. dockerd waits for a v1 plugin's answer forever, holding its
/// locks (and the docker CLI) meanwhile: an answer this late is a plugin that hangs Docker.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The check's name.
    pub check: &'static str,
    /// `None`: it passed; else why it failed.
    pub failure: Option<String>,
    /// The calls made and their answers, one line each.
    pub exchange: Vec<String>,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            None => write!(f, "PASS  {}", self.check),
            Some(why) => {
                writeln!(f, "FAIL  {}: {why}", self.check)?;
                for line in &self.exchange {
                    writeln!(f, "      {line}")?;
                }
                Ok(())
            }
        }
    }
}

/// Ids of the network and endpoint the checks make (64 hex digits, as dockerd's).
const NETWORK: &str = "d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d701";
const ENDPOINT: &str = "e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e701";

/// The calls of one check, recorded.
struct Session<'a> {
    client: &'a Client,
    exchange: Vec<String>,
}

impl Session<'_> {
    /// `POST /METHOD` with `body`: the answer's status and JSON (`Null` when not JSON).
    async fn call(&mut self, method: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let text = body.map(Value::to_string).unwrap_or_default();
        let (status, reply) =
            (self.client.post(method, text.clone()).await).map_err(|e| call_error(method, &e))?;
        let answer = String::from_utf8_lossy(&reply).trim().to_string();
        self.exchange
            .push(format!("{method} {text} -> {status} {answer}"));
        Ok((
            status,
            serde_json::from_slice(&reply).unwrap_or(Value::Null),
        ))
    }

    /// A call that must succeed as dockerd reads success: 200, JSON, no `Err`.
    async fn ok(&mut self, method: &str, body: Option<&Value>) -> Result<Value, String> {
        let (status, answer) = self.call(method, body).await?;
        if status != 200 {
            return Err(format!(
                "{method} answered {status}: dockerd fails the operation"
            ));
        }
        if !answer.is_object() {
            return Err(format!(
                "{method} answered no JSON object: dockerd reads EOF or garbage"
            ));
        }
        match answer["Err"].as_str() {
            Some(err) if !err.is_empty() => {
                Err(format!("{method} answered an error: remote: {err}"))
            }
            _ => Ok(answer),
        }
    }
}

/// A call that got no answer, said of a plugin.
fn call_error(method: &str, error: &CallError) -> String {
    match error {
        CallError::Timeout { after, .. } => {
            format!("POST /{method}: no answer within {} s", after.as_secs())
        }
        other => other.to_string(),
    }
}

fn create_network(id: &str, octet: u8) -> Value {
    json!({"NetworkID": id, "Options": {"com.docker.network.enable_ipv6": false,
        "com.docker.network.generic": {}},
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": format!("10.250.{octet}.0/24"),
            "Gateway": format!("10.250.{octet}.1/24")}], "IPv6Data": []})
}

fn endpoint(network: &str, endpoint: &str) -> Value {
    json!({"NetworkID": network, "EndpointID": endpoint})
}

/// Plugin `plugin` started in the one host of a lab of its own, and [`check`] run on it there.
pub async fn check_in_lab(plugin: &PluginRun) -> Result<Vec<Verdict>, String> {
    let pid = std::process::id();
    let topology = Topology::builder(&format!("pcheck-{pid}"))
        .segment("lan", "10.10.0.0/24".parse().expect("a subnet"))
        .host("h1")
        .build()
        .map_err(|e| e.to_string())?;
    let lab = Lab::build(topology)
        .await
        .map_err(|e| format!("cannot build the lab: {e}"))?;
    let host = lab.host("h1").expect("the lab's host");
    let dir = std::env::temp_dir().join(format!("{PLUGINS_DIR_PREFIX}{pid}-check"));
    let verdicts = match plugin.start_in(host, &dir).await {
        Ok(running) => {
            let verdicts = check(&plugin.socket(&dir), host).await;
            drop(running);
            Ok(verdicts)
        }
        Err(why) => Err(why),
    };
    let _ = std::fs::remove_dir_all(&dir);
    verdicts
}

/// Runs every check against the plugin listening on `socket`, which works in `netns`.
pub async fn check(socket: &Path, netns: &Netns) -> Vec<Verdict> {
    // One connection attempt (a plugin that is not there fails at once), 5 s per answer.
    let patience = Patience {
        connect: std::time::Duration::ZERO,
        answer: CALL_TIMEOUT,
    };
    let client = Client::new(Address::Unix(socket.to_path_buf()), patience);
    let mut verdicts = Vec::new();
    macro_rules! run {
        ($name:literal, $check:expr) => {{
            let mut session = Session {
                client: &client,
                exchange: Vec::new(),
            };
            let failure = $check(&mut session).await.err();
            verdicts.push(Verdict {
                check: $name,
                failure,
                exchange: session.exchange,
            });
        }};
    }
    run!("activate: implements NetworkDriver", activate);
    run!("capabilities: a local or global scope", capabilities);
    run!(
        "lifecycle: network, endpoint, join, info, leave, delete",
        |s| { lifecycle(s, netns) }
    );
    run!(
        "idempotence: the same create twice (dockerd retries)",
        idempotence
    );
    run!(
        "unknown ids: an endpoint of no network is refused",
        unknown_ids
    );
    run!("concurrency: four networks created at once", concurrency);
    verdicts
}

async fn activate(s: &mut Session<'_>) -> Result<(), String> {
    let manifest = s.ok("Plugin.Activate", None).await?;
    let implements = manifest["Implements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match implements.iter().any(|i| i == "NetworkDriver") {
        true => Ok(()),
        false => Err("Implements lacks NetworkDriver: dockerd says the plugin does not implement the requested driver".into()),
    }
}

async fn capabilities(s: &mut Session<'_>) -> Result<(), String> {
    let caps = s.ok("NetworkDriver.GetCapabilities", None).await?;
    let scope = caps["Scope"].as_str().unwrap_or_default();
    let connectivity = caps["ConnectivityScope"].as_str().unwrap_or_default();
    match (scope, connectivity) {
        ("local" | "global", "" | "local" | "global") => Ok(()),
        _ => Err(format!(
            "Scope {scope:?}, ConnectivityScope {connectivity:?}: dockerd wants local or global, and never registers the driver"
        )),
    }
}

async fn idempotence(s: &mut Session<'_>) -> Result<(), String> {
    let body = create_network(NETWORK, 251);
    s.ok("NetworkDriver.CreateNetwork", Some(&body)).await?;
    let again = s.ok("NetworkDriver.CreateNetwork", Some(&body)).await;
    let gone = json!({"NetworkID": NETWORK});
    let _ = s.call("NetworkDriver.DeleteNetwork", Some(&gone)).await;
    again.map(drop)
}

async fn unknown_ids(s: &mut Session<'_>) -> Result<(), String> {
    let body = json!({"NetworkID": "0".repeat(64), "EndpointID": ENDPOINT,
        "Interface": {"Address": "10.250.9.2/24", "AddressIPv6": "", "MacAddress": ""}});
    let (status, answer) = s.call("NetworkDriver.CreateEndpoint", Some(&body)).await?;
    let refused = status != 200 || answer["Err"].as_str().is_some_and(|e| !e.is_empty());
    match refused {
        true => Ok(()),
        false => Err("CreateEndpoint on a network never created succeeded".into()),
    }
}

async fn concurrency(s: &mut Session<'_>) -> Result<(), String> {
    // Ids that differ from their first digits, as random ones do (bridges are named after them).
    let ids: Vec<String> = (0..4).map(|i| format!("c{i}{}", &NETWORK[2..])).collect();
    let client = s.client;
    let calls = ids.iter().enumerate().map(|(i, id)| {
        let body = create_network(id, 240 + i as u8).to_string();
        client.post("NetworkDriver.CreateNetwork", body)
    });
    let replies = futures::future::join_all(calls).await;
    let mut failures = Vec::new();
    for (id, reply) in ids.iter().zip(replies) {
        match reply {
            Ok((200, _)) => {}
            Ok((status, body)) => failures.push(format!(
                "{}..: {status} {}",
                &id[..12],
                String::from_utf8_lossy(&body).trim()
            )),
            Err(e) => {
                let why = call_error("NetworkDriver.CreateNetwork", &e);
                failures.push(format!("{}..: {why}", &id[..12]));
            }
        }
    }
    for id in &ids {
        let _ = s
            .call(
                "NetworkDriver.DeleteNetwork",
                Some(&json!({"NetworkID": id})),
            )
            .await;
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "concurrent creates failed: {}",
            failures.join("; ")
        )),
    }
}

/// A network and an endpoint as `docker run` makes them (with the info dockerd asks for after
/// the join), then taken down as `docker rm` does.
async fn lifecycle(s: &mut Session<'_>, netns: &Netns) -> Result<(), String> {
    s.ok(
        "NetworkDriver.CreateNetwork",
        Some(&create_network(NETWORK, 250)),
    )
    .await?;
    let created = json!({"NetworkID": NETWORK, "EndpointID": ENDPOINT, "Options": {},
        "Interface": {"Address": "10.250.250.2/24", "AddressIPv6": "", "MacAddress": ""}});
    let answer = s.ok("NetworkDriver.CreateEndpoint", Some(&created)).await?;
    let changed = &answer["Interface"];
    for key in ["Address", "AddressIPv6"] {
        if changed[key].as_str().is_some_and(|a| !a.is_empty()) {
            return Err(format!(
                "CreateEndpoint answered an {key} though the engine gave one: dockerd rolls back with \"driver modified interface address\""
            ));
        }
    }
    let join =
        json!({"NetworkID": NETWORK, "EndpointID": ENDPOINT, "SandboxKey": "", "Options": {}});
    let joined = s.ok("NetworkDriver.Join", Some(&join)).await?;
    let src = joined["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if src.is_empty()
        || joined["InterfaceName"]["DstPrefix"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    {
        return Err("Join answered no InterfaceName (SrcName and DstPrefix): the container would get no interface".into());
    }
    let gateway = joined["Gateway"].as_str().unwrap_or_default();
    if !gateway.is_empty() && gateway.parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "Join's Gateway {gateway:?} is no plain address: dockerd fails with \"unable to parse Gateway\""
        ));
    }
    let links = |netns: &Netns| {
        let netns = netns.clone();
        async move {
            link::list(&netns)
                .await
                .map(|l| l.into_iter().map(|l| l.name).collect::<Vec<_>>())
        }
    };
    let present = links(netns)
        .await
        .map_err(|e| format!("listing links: {e}"))?;
    if !present.contains(&src) {
        return Err(format!(
            "Join's SrcName {src} is no link of the plugin's namespace: dockerd fails with \"failed to get link by name\""
        ));
    }
    let asked = endpoint(NETWORK, ENDPOINT);
    if let Err(why) = s.ok("NetworkDriver.EndpointOperInfo", Some(&asked)).await {
        // Taken down still, so that the checks after this one find the plugin clean.
        for (method, body) in [
            ("NetworkDriver.Leave", asked.clone()),
            ("NetworkDriver.DeleteEndpoint", asked.clone()),
            ("NetworkDriver.DeleteNetwork", json!({"NetworkID": NETWORK})),
        ] {
            let _ = s.call(method, Some(&body)).await;
        }
        return Err(format!(
            "{why} (dockerd asks after every join and fails the container's start with \"Updating join info failed\")"
        ));
    }
    s.ok("NetworkDriver.Leave", Some(&endpoint(NETWORK, ENDPOINT)))
        .await?;
    s.ok(
        "NetworkDriver.DeleteEndpoint",
        Some(&endpoint(NETWORK, ENDPOINT)),
    )
    .await?;
    let after = links(netns)
        .await
        .map_err(|e| format!("listing links: {e}"))?;
    if after.contains(&src) {
        return Err(format!(
            "{src} is still there after DeleteEndpoint: the plugin leaks a link per container"
        ));
    }
    s.ok(
        "NetworkDriver.DeleteNetwork",
        Some(&json!({"NetworkID": NETWORK})),
    )
    .await?;
    Ok(())
}
