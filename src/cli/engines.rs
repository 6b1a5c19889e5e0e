//! The reference engines of a held lab, living in the process that holds it, answering
//! docker-shaped commands sent with `drydock -H LAB/HOST ...`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use drydock_conformance::probe::Listener;
use drydock_conformance::scenario::Command;
use drydock_conformance::scenario::command;
use drydock_conformance::scenario::words::Word;
use drydock_conformance::target::lab_resolvers;
use drydock_netsim::Lab;
use drydock_netsim::registry::Answer;
use drydock_runtime::api::body::{ContainerCreate, NetworkConnect, NetworkCreate};
use drydock_runtime::api::request;
use drydock_runtime::engine::{Engine, Options};
use tokio::sync::Mutex;

use super::table;
use super::workload::{Files, Workloads};

/// Engines' state directories are `/tmp/drydock-engines-PID`, PID the holding process.
const STATE_PREFIX: &str = "drydock-engines-";

/// Removes the state directories of lab processes that are gone (killed before cleaning up).
pub(crate) fn gc_state() -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(std::env::temp_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(pid) = name
            .strip_prefix(STATE_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            std::fs::remove_dir_all(&path)?;
            removed.push(path.display().to_string());
        }
    }
    Ok(removed)
}

/// One engine per lab host, started on first use, with what runs in its containers.
pub(crate) struct Engines {
    lab: Arc<Lab>,
    engines: Mutex<BTreeMap<String, (Engine, Workloads)>>,
}

impl Engines {
    pub(crate) fn new(lab: Arc<Lab>) -> Self {
        Self {
            lab,
            engines: Mutex::new(BTreeMap::new()),
        }
    }

    /// Where this process's engines write containers' files: made when the first engine
    /// starts, removed by `lab down` (or, after a crash, by `drydock gc` and the next `lab up`).
    pub(crate) fn state_dir() -> PathBuf {
        std::env::temp_dir().join(format!("{STATE_PREFIX}{}", std::process::id()))
    }

    /// Makes [`Engines::state_dir`]; one left by a dead process of the same pid is replaced.
    fn make_state_dir() -> std::io::Result<PathBuf> {
        let dir = Self::state_dir();
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match std::fs::symlink_metadata(&dir)?.is_dir() {
                    true => std::fs::remove_dir_all(&dir)?,
                    false => std::fs::remove_file(&dir)?,
                }
                std::fs::create_dir(&dir)?;
            }
            other => other?,
        }
        Ok(dir)
    }

    /// Runs one command for `host`.
    pub(crate) async fn call(&self, host: &str, args: &[String]) -> Answer {
        match self.run(host, args).await {
            Ok(answer) => answer,
            Err(message) => Answer {
                text: Err(message),
                netns: None,
            },
        }
    }

    async fn run(&self, host: &str, args: &[String]) -> Result<Answer, String> {
        let netns = self
            .lab
            .host(host)
            .ok_or_else(|| self.lab.topology().unknown_host(host))?;
        let mut engines = self.engines.lock().await;
        if !engines.contains_key(host) {
            let state = match engines.is_empty() {
                true => Self::make_state_dir().map_err(|e| format!("engine state: {e}"))?,
                false => Self::state_dir(),
            };
            let options = Options {
                dns: Vec::new(),
                host_resolvers: lab_resolvers(&self.lab, host).map_err(|e| e.to_string())?,
                state_dir: Some(state.join(host)),
            };
            let engine = Engine::start(netns, options).await.map_err(|e| e.0)?;
            let workloads = Workloads::new(state.join(host).join("logs"));
            engines.insert(host.to_string(), (engine, workloads));
        }
        let (engine, workloads) = engines.get_mut(host).expect("just started");
        let text = |t: String| {
            Ok(Answer {
                text: Ok(t),
                netns: None,
            })
        };
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["network", "ls"] => text(network_ls(engine)),
            ["network", "inspect", names @ ..] => {
                let all: Result<Vec<_>, _> =
                    names.iter().map(|n| engine.inspect_network(n)).collect();
                text(pretty(all.map_err(|e| e.0)?))
            }
            ["inspect", names @ ..] => {
                let all: Result<Vec<_>, _> =
                    names.iter().map(|n| engine.inspect_container(n)).collect();
                text(pretty(all.map_err(|e| e.0)?))
            }
            ["logs", name] => {
                engine.inspect_container(name).map_err(|e| e.0)?;
                text(workloads.output(name))
            }
            ["exec", name] => {
                let netns = engine.container_netns(name).map_err(|e| e.0)?;
                let files = serde_json::to_string(&container_files(engine, name)?)
                    .expect("paths serialize");
                Ok(Answer {
                    text: Ok(files),
                    netns: Some(netns),
                })
            }
            _ => {
                let words: Vec<Word> = std::iter::once("docker")
                    .chain(words.iter().copied())
                    .map(|w| Word {
                        text: w.to_string(),
                        offset: 0,
                    })
                    .collect();
                let command = command::parse(&words).map_err(|e| e.message)?;
                text(docker(engine, workloads, command).await?)
            }
        }
    }
}

fn pretty(values: Vec<serde_json::Value>) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&values).expect("JSON values serialize")
    )
}

fn file_path(engine: &Engine, name: &str, field: &str) -> Result<String, String> {
    let json = engine.inspect_container(name).map_err(|e| e.0)?;
    json[field]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("{name} has no {field}"))
}

/// The files a process of container `name` sees as its `/etc/resolv.conf`, `/etc/hosts` and
/// `/etc/hostname`.
fn container_files(engine: &Engine, name: &str) -> Result<Files, String> {
    Ok(Files::from([
        (
            "/etc/hostname".to_string(),
            file_path(engine, name, "HostnamePath")?,
        ),
        (
            "/etc/resolv.conf".to_string(),
            file_path(engine, name, "ResolvConfPath")?,
        ),
        (
            "/etc/hosts".to_string(),
            file_path(engine, name, "HostsPath")?,
        ),
    ]))
}

/// Starts container `name` and what runs in it.
async fn start(engine: &mut Engine, workloads: &mut Workloads, name: &str) -> Result<(), String> {
    engine.start_container(name).await.map_err(|e| e.0)?;
    let netns = engine.container_netns(name).map_err(|e| e.0)?;
    let started = container_files(engine, name).and_then(|f| workloads.start(name, &netns, &f));
    if let Err(message) = started {
        let _ = engine.stop_container(name).await;
        return Err(message);
    }
    Ok(())
}

/// `docker network ls`, sorted by name as docker/cli does.
fn network_ls(engine: &Engine) -> String {
    let mut rows = vec![
        ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
            .map(String::from)
            .to_vec(),
    ];
    // docker/cli sorts networks by name.
    let mut names = engine.network_names();
    names.sort();
    for name in names {
        if let Ok(json) = engine.inspect_network(&name) {
            let id = json["Id"].as_str().unwrap_or_default();
            rows.push(vec![
                id.get(..12).unwrap_or(id).to_string(),
                name,
                json["Driver"].as_str().unwrap_or_default().to_string(),
                json["Scope"].as_str().unwrap_or_default().to_string(),
            ]);
        }
    }
    table::render(&rows)
}

/// The docker commands scenarios also use, with the output docker prints.
async fn docker(
    engine: &mut Engine,
    workloads: &mut Workloads,
    command: Command,
) -> Result<String, String> {
    let body = |v: Result<serde_json::Value, String>| v;
    match command {
        Command::NetworkCreate(spec) => {
            let request: NetworkCreate =
                serde_json::from_value(body(request::network_create(&spec, &BTreeMap::new()))?)
                    .map_err(|e| e.to_string())?;
            Ok(format!(
                "{}\n",
                engine.create_network(&request).await.map_err(|e| e.0)?
            ))
        }
        Command::NetworkRm(names) => {
            let mut out = String::new();
            for name in names {
                engine.remove_network(&name).await.map_err(|e| e.0)?;
                out.push_str(&format!("{name}\n"));
            }
            Ok(out)
        }
        Command::NetworkConnect(spec) => {
            let request: NetworkConnect = serde_json::from_value(body(request::connect(&spec))?)
                .map_err(|e| e.to_string())?;
            engine
                .connect(&spec.network, &request)
                .await
                .map_err(|e| e.0)?;
            Ok(String::new())
        }
        Command::NetworkDisconnect {
            network,
            container,
            force,
        } => {
            engine
                .disconnect(&network, &container, force)
                .await
                .map_err(|e| e.0)?;
            Ok(String::new())
        }
        Command::Run { spec, listen } => {
            let request: ContainerCreate =
                serde_json::from_value(body(request::container_create(&spec, &BTreeMap::new()))?)
                    .map_err(|e| e.to_string())?;
            let id = engine
                .create_container(&spec.name, &request)
                .map_err(|e| e.0)?;
            workloads.set_command(&spec.name, spec.command.clone());
            let started = start(engine, workloads, &spec.name).await.and_then(|()| {
                let netns = engine.container_netns(&spec.name).map_err(|e| e.0)?;
                for (kind, port) in listen {
                    let banner = format!("drydock {} {port}", spec.name);
                    let listener =
                        Listener::open(&netns, kind, port, banner).map_err(|e| e.to_string())?;
                    workloads.listen(&spec.name, listener);
                }
                Ok(())
            });
            if let Err(message) = started {
                // As with Docker, a container whose start failed stays, created and stopped.
                workloads.stop(&spec.name);
                let _ = engine.stop_container(&spec.name).await;
                return Err(message);
            }
            Ok(format!("{id}\n"))
        }
        Command::Rm { containers, force } => {
            let mut out = String::new();
            for name in containers {
                engine
                    .remove_container(&name, force)
                    .await
                    .map_err(|e| e.0)?;
                workloads.remove(&name);
                out.push_str(&format!("{name}\n"));
            }
            Ok(out)
        }
        Command::Stop(names) => {
            for name in &names {
                engine.stop_container(name).await.map_err(|e| e.0)?;
                workloads.stop(name);
            }
            Ok(names.join("\n") + "\n")
        }
        Command::Start(names) => {
            for name in &names {
                start(engine, workloads, name).await?;
            }
            Ok(names.join("\n") + "\n")
        }
        Command::Listen { .. } => Err(
            "`drydock listen` is a scenario step; here use `run --listen` in a container".into(),
        ),
        Command::Route { .. } => {
            Err("`drydock route` is a scenario step; here use `ip route` in the lab host".into())
        }
    }
}
