//! The reference engines of a held lab, living in the process that holds it, answering docker
//! command lines sent with `drydock -H LAB/HOST ...`: the runtime's docker grammar and
//! dispatcher, plus what runs in the containers (their commands, `logs`, `exec`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use drydock_conformance::targets::lab_resolvers;
use drydock_conformance::targets::reference::ETCD_DIR_PREFIX;
use drydock_netsim::Lab;
use drydock_netsim::registry::Answer;
use drydock_runtime::api::cli::{self, DockerCommand};
use drydock_runtime::api::dispatch::{Change, dispatch};
use drydock_runtime::cluster::MemoryHub;
use drydock_runtime::engine::{ControlPlane, Engine, Options};
use tokio::sync::Mutex;

use super::lab_dns::FILES_PREFIX;
use super::workload::{Files, Workloads, start_failure_status};

/// Engines' state directories are `/tmp/drydock-engines-PID`, PID the holding process.
const STATE_PREFIX: &str = "drydock-engines-";

/// Removes the state directories of processes that are gone (killed before cleaning up): the
/// engines' and the hosts' files of held labs, and the etcd data of conformance runs.
pub(crate) fn gc_state() -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(std::env::temp_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(pid) = [STATE_PREFIX, ETCD_DIR_PREFIX, FILES_PREFIX]
            .iter()
            .find_map(|prefix| name.strip_prefix(prefix))
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

/// A lab host's engine and what runs in its containers.
struct Host {
    engine: Mutex<Engine>,
    workloads: Workloads,
}

/// One engine per lab host, started on first use, with what runs in its containers.
pub(crate) struct Engines {
    lab: Arc<Lab>,
    hosts: Mutex<BTreeMap<String, Host>>,
    /// The lab's in-process control plane, for the swarms its engines make.
    hub: Arc<MemoryHub>,
}

impl Engines {
    pub(crate) fn new(lab: Arc<Lab>) -> Self {
        Self {
            lab,
            hosts: Mutex::new(BTreeMap::new()),
            hub: Arc::new(MemoryHub::new()),
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

    /// Runs one docker command line (without its leading `docker`) for `host`.
    pub(crate) async fn call(&self, host: &str, args: &[String]) -> Answer {
        match self.run(host, args).await {
            Ok(answer) => answer,
            Err(message) => Answer {
                text: Err(message),
                netns: None,
            },
        }
    }

    /// Starts the engine of lab host `host` (its state under [`Engines::state_dir`], made by
    /// the `first` engine).
    async fn start(&self, host: &str, first: bool) -> Result<Host, String> {
        let netns = (self.lab.host(host)).ok_or_else(|| self.lab.topology().unknown_host(host))?;
        let state = match first {
            true => Self::make_state_dir().map_err(|e| format!("engine state: {e}"))?,
            false => Self::state_dir(),
        };
        let options = Options {
            dns: Vec::new(),
            host_resolvers: lab_resolvers(&self.lab, host).map_err(|e| e.to_string())?,
            state_dir: Some(state.join(host)),
            hostname: host.to_string(),
            control_plane: ControlPlane::Hub(self.hub.clone()),
        };
        let engine = Engine::start(netns, options).await.map_err(|e| e.0)?;
        Ok(Host {
            engine: Mutex::new(engine),
            workloads: Workloads::new(state.join(host).join("logs")),
        })
    }

    async fn run(&self, host: &str, args: &[String]) -> Result<Answer, String> {
        let line: Vec<&str> = std::iter::once("docker")
            .chain(args.iter().map(String::as_str))
            .collect();
        let command = cli::parse(&line).map_err(|e| e.message)?;
        let mut hosts = self.hosts.lock().await;
        if !hosts.contains_key(host) {
            let started = self.start(host, hosts.is_empty()).await?;
            hosts.insert(host.to_string(), started);
        }
        let Host { engine, workloads } = hosts.get_mut(host).expect("just started");
        let text = |t: String| Answer {
            text: Ok(t),
            netns: None,
        };
        match &command {
            DockerCommand::Logs(name) => {
                engine
                    .lock()
                    .await
                    .inspect_container(name)
                    .map_err(|e| e.0)?;
                Ok(text(workloads.output(name)))
            }
            DockerCommand::Exec { container, .. } => {
                let engine = engine.lock().await;
                let netns = engine.container_netns(container).map_err(|e| e.0)?;
                let files = serde_json::to_string(&container_files(&engine, container)?)
                    .expect("paths serialize");
                Ok(Answer {
                    text: Ok(files),
                    netns: Some(netns),
                })
            }
            _ => {
                let reply = dispatch(&*engine, &command).await;
                let mut errors = reply.errors;
                for change in reply.changes {
                    if let Err(e) = follow_change(engine, workloads, &command, change).await {
                        errors.push(e);
                    }
                }
                match errors.is_empty() {
                    true => Ok(text(reply.stdout)),
                    false => Err(errors.join("\n")),
                }
            }
        }
    }
}

/// Keeps what runs in a container in step with what a command did to it: its command is
/// recorded when `run` creates it, runs while it runs, and goes with it.
async fn follow_change(
    engine: &Mutex<Engine>,
    workloads: &mut Workloads,
    command: &DockerCommand,
    change: Change,
) -> Result<(), String> {
    match (change, command) {
        (Change::Created(name), DockerCommand::Run(spec)) => {
            workloads.set_command(&name, spec.command.clone());
        }
        (Change::Started(name), _) => {
            let mut engine = engine.lock().await;
            let netns = engine.container_netns(&name).map_err(|e| e.0)?;
            let started = container_files(&engine, &name)
                .and_then(|files| workloads.start(&name, &netns, &files));
            if let Err(message) = started {
                // As with Docker, a container whose command cannot start stays, created, with
                // the exit status and error runc's failure gives it.
                let status = start_failure_status(&message, 128);
                let _ = engine.fail_start(&name, status.into(), &message).await;
                return Err(message);
            }
        }
        (Change::Stopped(name), _) => workloads.stop(&name),
        (Change::Removed(name), _) => workloads.remove(&name),
        (Change::Created(_), _) => {}
    }
    Ok(())
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
