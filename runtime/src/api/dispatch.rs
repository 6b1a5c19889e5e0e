//! Where a docker command becomes engine calls: the Engine API as a trait ([`EngineApi`]: the
//! reference engine in-process, or a daemon over its socket), and [`dispatch`], which does what
//! the docker CLI does for a [`DockerCommand`]: builds the request bodies with the CLI's checks,
//! makes the calls in the CLI's order, and reports what it would print.

use std::future::Future;

use serde_json::Value;

use super::body::{
    ContainerCreate, NetworkConnect, NetworkCreate, NetworkDisconnect, SwarmInit, SwarmJoin,
};
use super::cli::DockerCommand;
use super::filter::{self, Filters};
use super::request;

/// An engine's refusal, as the docker CLI prints it after "Error response from daemon: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The engine's message.
    pub message: String,
}

impl ApiError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Result of an Engine API call.
pub type ApiResult<T> = Result<T, ApiError>;

/// The Engine API calls drydock's commands make, one method per endpoint. Names and ids are
/// accepted wherever Docker accepts either; inspect answers are Docker's JSON. The calls are
/// `Send` futures, so that a server can answer requests on any thread.
pub trait EngineApi: Sync {
    /// `POST /networks/create`; the new network's id.
    fn create_network(
        &self,
        body: &NetworkCreate,
    ) -> impl Future<Output = ApiResult<String>> + Send;
    /// `DELETE /networks/{id}`.
    fn remove_network(&self, name: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// `POST /networks/prune?filters=`: the names of the networks removed.
    fn prune_networks(
        &self,
        filters: &Filters,
    ) -> impl Future<Output = ApiResult<Vec<String>>> + Send;
    /// `POST /networks/{id}/connect`.
    fn connect(
        &self,
        network: &str,
        body: &NetworkConnect,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// `POST /networks/{id}/disconnect`.
    fn disconnect(
        &self,
        network: &str,
        body: &NetworkDisconnect,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// `GET /networks?filters=`: the networks passing `filters` (all, when empty).
    fn list_networks(
        &self,
        filters: &Filters,
    ) -> impl Future<Output = ApiResult<Vec<Value>>> + Send;
    /// `GET /networks/{id}`.
    fn inspect_network(&self, name: &str) -> impl Future<Output = ApiResult<Value>> + Send;
    /// `POST /containers/create?name=NAME`; the new id.
    fn create_container(
        &self,
        name: &str,
        body: &ContainerCreate,
    ) -> impl Future<Output = ApiResult<String>> + Send;
    /// `POST /containers/{id}/start`.
    fn start_container(&self, name: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// `POST /containers/{id}/rename?name=NEW`.
    fn rename_container(
        &self,
        name: &str,
        new_name: &str,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// `POST /containers/{id}/stop`.
    fn stop_container(&self, name: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// `POST /containers/{id}/restart`: stopped (if it runs), then started.
    fn restart_container(&self, name: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// `DELETE /containers/{id}?force=`.
    fn remove_container(
        &self,
        name: &str,
        force: bool,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// `GET /containers/{id}/json`.
    fn inspect_container(&self, name: &str) -> impl Future<Output = ApiResult<Value>> + Send;
    /// `GET /info`: the engine, and its node's place in a swarm (`Swarm.NodeID`,
    /// `Swarm.LocalNodeState`, `Swarm.ControlAvailable`...).
    fn info(&self) -> impl Future<Output = ApiResult<Value>> + Send;
    /// `POST /swarm/init`; the new node's id.
    fn swarm_init(&self, body: &SwarmInit) -> impl Future<Output = ApiResult<String>> + Send;
    /// `POST /swarm/join`.
    fn swarm_join(&self, body: &SwarmJoin) -> impl Future<Output = ApiResult<()>> + Send;
    /// `POST /swarm/leave?force=`.
    fn swarm_leave(&self, force: bool) -> impl Future<Output = ApiResult<()>> + Send;
    /// `GET /swarm` (managers only): the cluster, its join tokens (`JoinTokens.Worker`,
    /// `JoinTokens.Manager`).
    fn swarm_inspect(&self) -> impl Future<Output = ApiResult<Value>> + Send;
}

/// A container whose state a command changed, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Created (by `create`, or `run`: it stays, created, when its start fails).
    Created(String),
    /// Started (by `run` or `start`).
    Started(String),
    /// Stopped.
    Stopped(String),
    /// Removed.
    Removed(String),
}

/// What a command did, as the docker CLI would report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// What the CLI prints on its standard output.
    pub stdout: String,
    /// Its errors, one per refused call (a command naming several objects goes on after one
    /// fails, as the CLI does).
    pub errors: Vec<String>,
    /// Containers whose state changed.
    pub changes: Vec<Change>,
}

impl Reply {
    /// Standard output when every call succeeded; else the errors, one per line.
    pub fn result(&self) -> Result<&str, String> {
        match self.errors.is_empty() {
            true => Ok(&self.stdout),
            false => Err(self.errors.join("\n")),
        }
    }

    fn failed(message: impl Into<String>) -> Self {
        Self {
            errors: vec![message.into()],
            ..Self::default()
        }
    }

    fn print(&mut self, line: &str) {
        self.stdout.push_str(line);
        self.stdout.push('\n');
    }

    /// Runs `call` on each name, printing the name when it succeeds and recording `changes`.
    async fn each<F: Future<Output = ApiResult<()>>>(
        &mut self,
        names: &[String],
        call: impl Fn(String) -> F,
        changes: &[fn(String) -> Change],
    ) {
        for name in names {
            match call(name.clone()).await {
                Ok(()) => {
                    self.print(name);
                    self.changes.extend(changes.iter().map(|c| c(name.clone())));
                }
                Err(e) => self.errors.push(e.message),
            }
        }
    }
}

/// Does what the docker CLI does for `command` against `api`. `logs` and `exec` are not the
/// engine's to answer (drydock's engines keep no processes): they come back as errors.
pub async fn dispatch(api: &impl EngineApi, command: &DockerCommand) -> Reply {
    let mut reply = Reply::default();
    match command {
        DockerCommand::NetworkCreate(spec) => {
            match request::network_create(spec) {
                Ok(body) => match api.create_network(&body).await {
                    Ok(id) => reply.print(&id),
                    Err(e) => reply.errors.push(e.message),
                },
                Err(message) => reply.errors.push(message),
            };
        }
        DockerCommand::NetworkRm(names) => {
            reply
                .each(names, |n| async move { api.remove_network(&n).await }, &[])
                .await;
        }
        DockerCommand::NetworkPrune { force, filters } => {
            return network_prune(api, *force, filters).await;
        }
        DockerCommand::NetworkConnect(spec) => {
            let done = match request::connect(spec) {
                Ok(body) => api.connect(&spec.network, &body).await,
                Err(message) => Err(ApiError::new(message)),
            };
            reply.errors.extend(done.err().map(|e| e.message));
        }
        DockerCommand::NetworkDisconnect {
            network,
            container,
            force,
        } => {
            let body = NetworkDisconnect {
                container: container.clone(),
                force: *force,
            };
            let done = api.disconnect(network, &body).await;
            reply.errors.extend(done.err().map(|e| e.message));
        }
        DockerCommand::NetworkLs(spec) => return network_ls(api, spec).await,
        DockerCommand::NetworkInspect(names) => {
            let inspect = |n: String| async move { api.inspect_network(&n).await };
            reply.inspect(names, inspect).await;
        }
        DockerCommand::Inspect(names) => {
            let inspect = |n: String| async move { api.inspect_container(&n).await };
            reply.inspect(names, inspect).await;
        }
        DockerCommand::Run(spec) => return run(api, spec).await,
        DockerCommand::Create(spec) => {
            return match create(api, spec).await {
                Ok((id, reply)) => Reply {
                    stdout: format!("{id}\n"),
                    ..reply
                },
                Err(reply) => reply,
            };
        }
        DockerCommand::Rm { containers, force } => {
            let force = *force;
            let remove = |n: String| async move { api.remove_container(&n, force).await };
            reply.each(containers, remove, &[Change::Removed]).await;
        }
        DockerCommand::Stop(names) => {
            let stop = |n: String| async move { api.stop_container(&n).await };
            reply.each(names, stop, &[Change::Stopped]).await;
        }
        DockerCommand::Rename {
            container,
            new_name,
        } => return rename(api, container, new_name).await,
        DockerCommand::Start(names) => {
            let start = |n: String| async move { api.start_container(&n).await };
            reply.each(names, start, &[Change::Started]).await;
        }
        DockerCommand::Restart(names) => {
            let restart = |n: String| async move { api.restart_container(&n).await };
            let changes = [Change::Stopped, Change::Started];
            reply.each(names, restart, &changes).await;
        }
        DockerCommand::SwarmInit(spec) => return swarm_init(api, spec).await,
        DockerCommand::SwarmJoin(spec) => match api.swarm_join(&request::swarm_join(spec)).await {
            Ok(()) => {
                let manager = api.info().await.ok().and_then(|info| {
                    info.pointer("/Swarm/ControlAvailable")
                        .and_then(Value::as_bool)
                });
                let role = if manager == Some(true) {
                    "manager"
                } else {
                    "worker"
                };
                reply.print(&format!("This node joined a swarm as a {role}."));
            }
            Err(e) => reply.errors.push(e.message),
        },
        DockerCommand::SwarmLeave { force } => match api.swarm_leave(*force).await {
            Ok(()) => reply.print("Node left the swarm."),
            Err(e) => reply.errors.push(e.message),
        },
        DockerCommand::SwarmJoinToken { manager, quiet } => {
            return join_token(api, *manager, *quiet).await;
        }
        DockerCommand::Logs(_) | DockerCommand::Exec { .. } => {
            return Reply::failed(
                "logs and exec are about a container's processes, which the engine does not keep",
            );
        }
    }
    reply
}

impl Reply {
    /// `inspect` of each name, printed as one JSON array as `docker inspect` prints it.
    async fn inspect<F: Future<Output = ApiResult<Value>>>(
        &mut self,
        names: &[String],
        inspect: impl Fn(String) -> F,
    ) {
        let mut found = Vec::new();
        for name in names {
            match inspect(name.clone()).await {
                Ok(json) => found.push(json),
                Err(e) => self.errors.push(e.message),
            }
        }
        self.stdout = pretty(&found);
    }
}

/// `docker swarm init`: the new node, and how to join it.
async fn swarm_init(api: &impl EngineApi, spec: &super::spec::SwarmInitSpec) -> Reply {
    let mut reply = Reply::default();
    match api.swarm_init(&request::swarm_init(spec)).await {
        Ok(id) => {
            reply.print(&format!(
                "Swarm initialized: current node ({id}) is now a manager.\n"
            ));
            let hint = join_token(api, false, false).await;
            reply.stdout.push_str(&hint.stdout);
            reply.errors.extend(hint.errors);
            reply.print(
                "To add a manager to this swarm, run 'docker swarm join-token manager' \
                 and follow the instructions.\n",
            );
        }
        Err(e) => reply.errors.push(e.message),
    }
    reply
}

/// `docker network ls [-f KEY=VALUE]... [-q] [--no-trunc]`.
async fn network_ls(api: &impl EngineApi, spec: &super::spec::NetworkLsSpec) -> Reply {
    let filters = match filter::parse(&spec.filters) {
        Ok(filters) => filters,
        Err(message) => return Reply::failed(message),
    };
    let mut reply = Reply::default();
    match api.list_networks(&filters).await {
        Ok(networks) if spec.quiet => reply.stdout = network_ids(networks, spec.no_trunc),
        Ok(networks) => reply.stdout = network_table(networks, spec.no_trunc),
        Err(e) => reply.errors.push(e.message),
    }
    reply
}

/// `docker network prune -f [--filter KEY=VALUE]...` (without `-f` the CLI asks first, which
/// drydock's callers cannot answer).
async fn network_prune(api: &impl EngineApi, force: bool, filters: &[String]) -> Reply {
    if !force {
        return Reply::failed(
            "docker network prune asks before it removes anything: add -f (--force)",
        );
    }
    let filters = match filter::parse(filters) {
        Ok(filters) => filters,
        Err(message) => return Reply::failed(message),
    };
    let mut reply = Reply::default();
    match api.prune_networks(&filters).await {
        Ok(names) if names.is_empty() => {}
        Ok(names) => reply.stdout = format!("Deleted Networks:\n{}\n", names.join("\n")),
        Err(e) => reply.errors.push(e.message),
    }
    reply
}

/// `docker rename OLD NEW`, with the CLI's own check before any request.
async fn rename(api: &impl EngineApi, container: &str, new_name: &str) -> Reply {
    let (old, new) = (container.trim(), new_name.trim());
    if old.is_empty() || new.is_empty() {
        return Reply::failed("Error: Neither old nor new names may be empty");
    }
    let mut reply = Reply::default();
    reply.errors.extend(
        api.rename_container(old, new)
            .await
            .err()
            .map(|e| e.message),
    );
    reply
}

/// `docker create`: the request body with the CLI's checks, then the create call; the new id
/// and a reply recording the creation, or the reply with the refusal.
async fn create(
    api: &impl EngineApi,
    spec: &super::spec::ContainerSpec,
) -> Result<(String, Reply), Reply> {
    if spec.name.is_empty() {
        return Err(Reply::failed(
            "drydock's engines make named containers only: add --name NAME",
        ));
    }
    let body = request::container_create(spec).map_err(Reply::failed)?;
    let id =
        (api.create_container(&spec.name, &body).await).map_err(|e| Reply::failed(e.message))?;
    let reply = Reply {
        changes: vec![Change::Created(spec.name.clone())],
        ..Reply::default()
    };
    Ok((id, reply))
}

/// `docker run -d`: create, then start by id; a container whose start fails stays, created.
async fn run(api: &impl EngineApi, spec: &super::spec::ContainerSpec) -> Reply {
    if !spec.detach {
        return Reply::failed("drydock's engines run containers detached only: add -d");
    }
    let (id, mut reply) = match create(api, spec).await {
        Ok(created) => created,
        Err(reply) => return reply,
    };
    match api.start_container(&id).await {
        Ok(()) => {
            reply.print(&id);
            reply.changes.push(Change::Started(spec.name.clone()));
        }
        Err(e) => reply.errors.push(e.message),
    }
    reply
}

/// `docker swarm join-token`: the token, or the command that joins with it.
async fn join_token(api: &impl EngineApi, manager: bool, quiet: bool) -> Reply {
    let swarm = match api.swarm_inspect().await {
        Ok(swarm) => swarm,
        Err(e) => return Reply::failed(e.message),
    };
    let role = if manager { "Manager" } else { "Worker" };
    let token = swarm["JoinTokens"][role]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut reply = Reply::default();
    if quiet {
        reply.print(&token);
        return reply;
    }
    let address = match api.info().await {
        Ok(info) => info["Swarm"]["NodeAddr"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        Err(e) => return Reply::failed(e.message),
    };
    let role = role.to_lowercase();
    reply.print(&format!(
        "To add a {role} to this swarm, run the following command:\n"
    ));
    reply.print(&format!(
        "    docker swarm join --token {token} {address}:2377\n"
    ));
    reply
}

/// JSON as `docker inspect` prints it: an array, indented by four spaces.
fn pretty(values: &[Value]) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    values
        .serialize(&mut serializer)
        .expect("JSON values serialize");
    format!("{}\n", String::from_utf8_lossy(&out))
}

/// A network's Id as `docker network ls` shows it: 12 characters, or whole with `--no-trunc`.
fn shown_id(network: &Value, no_trunc: bool) -> String {
    let id = network["Id"].as_str().unwrap_or_default();
    match no_trunc {
        true => id.to_string(),
        false => id.get(..12).unwrap_or(id).to_string(),
    }
}

/// Networks sorted by name, as `docker network ls` lists them.
fn by_name(mut networks: Vec<Value>) -> Vec<Value> {
    networks.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    networks
}

/// `docker network ls -q`: the Ids, one per line.
fn network_ids(networks: Vec<Value>, no_trunc: bool) -> String {
    let sorted = by_name(networks);
    sorted
        .iter()
        .map(|n| shown_id(n, no_trunc) + "\n")
        .collect()
}

/// `docker network ls`: sorted by name, in the CLI's table layout (columns at least 10 wide,
/// three spaces between them).
fn network_table(networks: Vec<Value>, no_trunc: bool) -> String {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"].map(String::from)];
    for network in &by_name(networks) {
        rows.push([
            shown_id(network, no_trunc),
            text(network, "Name"),
            text(network, "Driver"),
            text(network, "Scope"),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .fold(10, usize::max)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            match c {
                3 => out.push_str(cell),
                _ => out.push_str(&format!("{cell:<width$}", width = widths[c])),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::api::cli;

    /// An engine that records the calls it gets and refuses names starting with "bad".
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        networks: BTreeMap<String, Value>,
    }

    impl Recorder {
        fn call(&self, what: String) -> ApiResult<()> {
            let refused = what
                .split_whitespace()
                .nth(1)
                .is_some_and(|n| n.starts_with("bad"));
            self.calls.lock().unwrap().push(what.clone());
            match refused {
                true => Err(ApiError::new(format!("refused: {what}"))),
                false => Ok(()),
            }
        }
    }

    impl EngineApi for Recorder {
        async fn create_network(&self, body: &NetworkCreate) -> ApiResult<String> {
            self.call(format!("create-network {}", body.name))?;
            Ok("n1d".into())
        }
        async fn remove_network(&self, name: &str) -> ApiResult<()> {
            self.call(format!("remove-network {name}"))
        }
        async fn prune_networks(&self, filters: &Filters) -> ApiResult<Vec<String>> {
            self.call(format!("prune-networks {}", filter::to_query(filters)))?;
            Ok(vec!["n1".into()])
        }
        async fn connect(&self, network: &str, body: &NetworkConnect) -> ApiResult<()> {
            self.call(format!("connect {network} {}", body.container))
        }
        async fn disconnect(&self, network: &str, body: &NetworkDisconnect) -> ApiResult<()> {
            self.call(format!(
                "disconnect {network} {} {}",
                body.container, body.force
            ))
        }
        async fn list_networks(&self, filters: &Filters) -> ApiResult<Vec<Value>> {
            let all = self.networks.values();
            Ok(all
                .filter(|n| filter::network_matches(n, filters))
                .cloned()
                .collect())
        }
        async fn inspect_network(&self, name: &str) -> ApiResult<Value> {
            self.networks
                .get(name)
                .cloned()
                .ok_or_else(|| ApiError::new(format!("network {name} not found")))
        }
        async fn create_container(&self, name: &str, body: &ContainerCreate) -> ApiResult<String> {
            self.call(format!("create {name} {}", body.image))?;
            Ok(format!("id-{name}"))
        }
        async fn start_container(&self, name: &str) -> ApiResult<()> {
            self.call(format!("start {name}"))
        }
        async fn rename_container(&self, name: &str, new_name: &str) -> ApiResult<()> {
            self.call(format!("rename {name} {new_name}"))
        }
        async fn stop_container(&self, name: &str) -> ApiResult<()> {
            self.call(format!("stop {name}"))
        }
        async fn restart_container(&self, name: &str) -> ApiResult<()> {
            self.call(format!("restart {name}"))
        }
        async fn remove_container(&self, name: &str, force: bool) -> ApiResult<()> {
            self.call(format!("remove {name} {force}"))
        }
        async fn inspect_container(&self, name: &str) -> ApiResult<Value> {
            Err(ApiError::new(format!("No such container: {name}")))
        }
        async fn info(&self) -> ApiResult<Value> {
            Ok(json!({"Swarm": {"ControlAvailable": false, "NodeAddr": "10.10.0.1"}}))
        }
        async fn swarm_init(&self, body: &SwarmInit) -> ApiResult<String> {
            self.call(format!("swarm-init {}", body.advertise_addr))?;
            Ok("node1".into())
        }
        async fn swarm_join(&self, body: &SwarmJoin) -> ApiResult<()> {
            self.call(format!("swarm-join {}", body.remote_addrs.join(",")))
        }
        async fn swarm_leave(&self, force: bool) -> ApiResult<()> {
            self.call(format!("swarm-leave {force}"))
        }
        async fn swarm_inspect(&self) -> ApiResult<Value> {
            Ok(json!({"JoinTokens": {"Worker": "SWMTKN-1-w"}}))
        }
    }

    fn dispatch_line(api: &Recorder, line: &str) -> Reply {
        let words: Vec<&str> = line.split_whitespace().collect();
        let command = cli::parse(&words).unwrap();
        futures::executor::block_on(dispatch(api, &command))
    }

    #[test]
    fn run_creates_then_starts_by_id_and_prints_the_id() {
        let api = Recorder::default();
        let reply = dispatch_line(&api, "docker run -d --name web busybox");
        assert_eq!(
            *api.calls.lock().unwrap(),
            ["create web busybox", "start id-web"]
        );
        assert_eq!(reply.stdout, "id-web\n");
        assert_eq!(
            reply.changes,
            [Change::Created("web".into()), Change::Started("web".into())]
        );
    }

    #[test]
    fn run_checks_its_flags_before_any_call() {
        let api = Recorder::default();
        let reply = dispatch_line(&api, "docker run -d --name web --add-host nope busybox");
        assert!(api.calls.lock().unwrap().is_empty());
        assert_eq!(
            reply.result().unwrap_err(),
            r#"invalid argument "nope" for "--add-host" flag: bad format for add-host: "nope""#
        );
        let attached = dispatch_line(&api, "docker run --name web busybox");
        assert!(attached.result().unwrap_err().contains("add -d"));
    }

    #[test]
    fn commands_on_several_names_go_on_after_a_refusal() {
        let api = Recorder::default();
        let reply = dispatch_line(&api, "docker rm -f a bad b");
        assert_eq!(reply.stdout, "a\nb\n");
        assert_eq!(reply.errors, ["refused: remove bad true"]);
        assert_eq!(
            reply.changes,
            [Change::Removed("a".into()), Change::Removed("b".into())]
        );
        let stop = dispatch_line(&api, "docker stop x");
        assert_eq!(stop.changes, [Change::Stopped("x".into())]);
    }

    #[test]
    fn rename_asks_the_engine_unless_a_name_is_blank() {
        let api = Recorder::default();
        assert!(dispatch_line(&api, "docker rename a b").errors.is_empty());
        let command = DockerCommand::Rename {
            container: "a".into(),
            new_name: " ".into(),
        };
        let blank = futures::executor::block_on(dispatch(&api, &command));
        assert_eq!(
            blank.result(),
            Err("Error: Neither old nor new names may be empty".to_string())
        );
        assert_eq!(*api.calls.lock().unwrap(), ["rename a b"]);
    }

    #[test]
    fn network_commands_send_the_clis_bodies() {
        let api = Recorder::default();
        let create = dispatch_line(&api, "docker network create --subnet 10.1.0.0/16 n1");
        assert_eq!(create.result(), Ok("n1d\n"));
        let connect = dispatch_line(&api, "docker network connect --alias x n1 web");
        assert_eq!(connect.result(), Ok(""));
        dispatch_line(&api, "docker network disconnect -f n1 web");
        let refused = dispatch_line(&api, "docker network create --gateway 10.0.0.1 n2");
        assert_eq!(
            refused.result().unwrap_err(),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            *api.calls.lock().unwrap(),
            [
                "create-network n1",
                "connect n1 web",
                "disconnect n1 web true"
            ]
        );
    }

    #[test]
    fn swarm_commands_say_what_the_cli_says() {
        let api = Recorder::default();
        let init = dispatch_line(&api, "docker swarm init --advertise-addr 10.10.0.1");
        assert_eq!(
            init.result().unwrap(),
            "Swarm initialized: current node (node1) is now a manager.\n\n\
             To add a worker to this swarm, run the following command:\n\n    \
             docker swarm join --token SWMTKN-1-w 10.10.0.1:2377\n\n\
             To add a manager to this swarm, run 'docker swarm join-token manager' \
             and follow the instructions.\n\n"
        );
        let join = dispatch_line(&api, "docker swarm join --token T 10.10.0.1:2377");
        assert_eq!(join.result(), Ok("This node joined a swarm as a worker.\n"));
        let leave = dispatch_line(&api, "docker swarm leave --force");
        assert_eq!(leave.result(), Ok("Node left the swarm.\n"));
        assert_eq!(
            *api.calls.lock().unwrap(),
            [
                "swarm-init 10.10.0.1",
                "swarm-join 10.10.0.1:2377",
                "swarm-leave true"
            ]
        );
    }

    #[test]
    fn views_print_as_the_cli_does() {
        let network = |name: &str, id: &str| json!({"Name": name, "Id": id, "Driver": "bridge", "Scope": "local"});
        let api = Recorder {
            networks: [
                ("zeta".to_string(), network("zeta", "0123456789abcdef")),
                ("bridge".to_string(), network("bridge", "fedcba9876543210")),
            ]
            .into(),
            ..Recorder::default()
        };
        let ls = dispatch_line(&api, "docker network ls");
        assert_eq!(
            ls.stdout,
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             fedcba987654   bridge    bridge    local\n\
             0123456789ab   zeta      bridge    local\n"
        );
        let inspect = dispatch_line(&api, "docker network inspect zeta nope");
        assert!(
            inspect
                .stdout
                .starts_with("[\n    {\n        \"Driver\": \"bridge\"")
        );
        assert_eq!(inspect.errors, ["network nope not found"]);
        let logs = dispatch_line(&api, "docker logs web");
        assert!(logs.result().is_err());
    }
}
