//! Forming a scenario's swarm before its steps, through the target's Engine API as the docker
//! CLI would: `docker swarm init --advertise-addr ADDRESS` on the first manager, `docker swarm
//! join --token TOKEN --advertise-addr ADDRESS MANAGER:2377` on the other nodes (managers first,
//! then workers, in order), each advertising its lab address; then waiting until every node
//! is ready for overlay work as Docker shows it: an active member (`GET /info`:
//! `Swarm.LocalNodeState`), with its ingress sandbox up (`GET /networks/ingress`:
//! `Containers.ingress-sbox`). Docker 20.10 sets that sandbox up about a second after `join`
//! returns, and it takes the first address of `docker_gwbridge` (172.18.0.2): a container
//! started before it would take that address instead.

use std::net::IpAddr;
use std::time::Duration;

use drydock_netsim::Lab;
use drydock_runtime::api::EngineApi;
use drydock_runtime::api::request;
use drydock_runtime::api::spec::{SwarmInitSpec, SwarmJoinSpec};

use super::Status;
use super::execution::Execution;
use crate::scenario::Swarm;
use crate::targets::Target;

/// The port swarm managers listen on (docker/cli's default `--listen-addr 0.0.0.0:2377`).
const MANAGER_PORT: u16 = 2377;

/// How long the nodes may take to become active members once they have joined.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The swarm's routing-mesh network, on every node of a swarm.
const INGRESS: &str = "ingress";

/// The sandbox each node attaches to [`INGRESS`] (and to `docker_gwbridge`).
const INGRESS_SANDBOX: &str = "ingress-sbox";

/// How often a node's state is asked while waiting.
const POLL: Duration = Duration::from_millis(100);

impl<T: Target> Execution<'_, T> {
    /// Forms `swarm`; a failure says which node could not do what, and why.
    pub(super) async fn form_swarm(&self, swarm: &Swarm) -> Status {
        match form_swarm(self.target, self.lab, swarm).await {
            Ok(()) => Status::Pass,
            Err(observed) => Status::Fail {
                expected: format!(
                    "a swarm of {}, every node active with its ingress sandbox",
                    swarm.nodes().cloned().collect::<Vec<_>>().join(", ")
                ),
                observed,
            },
        }
    }
}

/// Forms `swarm` on `target`'s docker hosts in `lab` as a scenario's swarm is formed (init on
/// the first manager, joins in order, each node advertising its lab address), and waits until
/// every node is ready for overlay work; an error says which node could not do what. For
/// swarms outside a scenario (`drydock bench`).
pub async fn form_swarm<T: Target>(target: &T, lab: &Lab, swarm: &Swarm) -> Result<(), String> {
    let manager = &swarm.managers[0];
    let manager_address = lab_address(lab, manager)?;
    let api = target.api(manager).map_err(|e| e.message)?;
    let init = request::swarm_init(&SwarmInitSpec {
        advertise_addr: Some(manager_address.to_string()),
        listen_addr: None,
    });
    api.swarm_init(&init).await.map_err(|e| {
        format!("{manager}: docker swarm init --advertise-addr {manager_address}: {e}")
    })?;
    let cluster = (api.swarm_inspect().await)
        .map_err(|e| format!("{manager}: GET /swarm (the join tokens): {e}"))?;
    let token = |role: &str| -> Result<String, String> {
        let token = cluster["JoinTokens"][role].as_str().unwrap_or_default();
        match token.is_empty() {
            true => Err(format!(
                "{manager}: GET /swarm gave no JoinTokens.{role}: {cluster}"
            )),
            false => Ok(token.to_string()),
        }
    };
    let joining = (swarm.managers[1..].iter().map(|h| (h, "Manager")))
        .chain(swarm.workers.iter().map(|h| (h, "Worker")));
    for (host, role) in joining {
        let address = lab_address(lab, host)?;
        let spec = SwarmJoinSpec {
            token: token(role)?,
            remote: format!("{manager_address}:{MANAGER_PORT}"),
            advertise_addr: Some(address.to_string()),
            listen_addr: None,
        };
        let api = target.api(host).map_err(|e| e.message)?;
        api.swarm_join(&request::swarm_join(&spec))
            .await
            .map_err(|e| {
                format!(
                    "{host}: docker swarm join --token <{}> --advertise-addr {address} {}: {e}",
                    role.to_lowercase(),
                    spec.remote
                )
            })?;
    }
    wait_active(target, swarm).await
}

/// Waits until every node's `Swarm.LocalNodeState` is `active` and its ingress sandbox is
/// attached to the `ingress` network.
async fn wait_active<T: Target>(target: &T, swarm: &Swarm) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    for host in swarm.nodes() {
        let api = target.api(host).map_err(|e| e.message)?;
        loop {
            let waiting = match node_ready(api).await {
                Ok(()) => break,
                Err(waiting) => waiting,
            };
            if started.elapsed() > ACTIVE_TIMEOUT {
                return Err(format!(
                    "{host} is not ready {} s after the nodes joined: {waiting}",
                    ACTIVE_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    tracing::debug!(
        "swarm of {} ready {:?} after the last join",
        swarm.nodes().count(),
        started.elapsed()
    );
    Ok(())
}

/// The address of lab host `host` on its (first) segment.
fn lab_address(lab: &Lab, host: &str) -> Result<IpAddr, String> {
    (lab.topology().host(host))
        .and_then(|h| h.interfaces.first())
        .map(|i| IpAddr::V4(i.address.ip()))
        .ok_or_else(|| format!("lab host {host} has no address on a segment"))
}

/// Whether a node is ready for overlay work: an active member with its ingress sandbox
/// attached; otherwise what it still lacks.
async fn node_ready(api: &impl EngineApi) -> Result<(), String> {
    let info = api
        .info()
        .await
        .map_err(|e| format!("GET /info failed: {e}"))?;
    match info["Swarm"]["LocalNodeState"].as_str() {
        Some("active") => {}
        Some(state) => return Err(format!("Swarm.LocalNodeState is {state:?}")),
        None => return Err("GET /info has no Swarm.LocalNodeState".into()),
    }
    let ingress = (api.inspect_network(INGRESS).await)
        .map_err(|e| format!("GET /networks/{INGRESS}: {e}"))?;
    match ingress["Containers"].get(INGRESS_SANDBOX) {
        Some(_) => Ok(()),
        None => Err(format!(
            "its {INGRESS} network has no {INGRESS_SANDBOX} yet"
        )),
    }
}
