//! The reference engines of a lab, living in the process that holds it: each lab host's
//! engine serves Docker Engine API 1.41 on a unix socket (`drydock lab env LAB HOST`), for the
//! real docker CLI (`drydock -H LAB/HOST ...` runs it), and what runs in the containers (their
//! commands, `logs`, `exec`) is this process's.

use std::path::PathBuf;
use std::sync::Arc;

use drydock_conformance::targets::lab_resolvers;
use drydock_conformance::targets::reference::{ETCD_DIR_PREFIX, PLUGINS_DIR_PREFIX};
use drydock_conformance::targets::reference_api::DIR_PREFIX as API_DIR_PREFIX;
use drydock_netsim::Lab;
use drydock_runtime::cluster::MemoryHub;
use drydock_runtime::engine::{ControlPlane, Engine, Options};
use drydock_runtime::plugin::client::Patience;
use drydock_runtime::plugin::discovery::PluginDirs;
use drydock_runtime::server::{Listener, Processes, Served, Workload};
use tokio::sync::Mutex;

use super::lab_dns::FILES_PREFIX;
use super::workload::{Exit, Files, Workloads};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long the output of a container removed with `--rm` outlives it, for attached clients.
const ATTACHED_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Engines' state directories are `/tmp/drydock-engines-PID`, PID the holding process.
const STATE_PREFIX: &str = "drydock-engines-";

/// Removes the state directories of processes that are gone (killed before cleaning up): the
/// engines' and the hosts' files of held labs, and the etcd data and API sockets of conformance
/// runs.
pub(crate) fn gc_state() -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(std::env::temp_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some(pid) = [
            STATE_PREFIX,
            ETCD_DIR_PREFIX,
            API_DIR_PREFIX,
            FILES_PREFIX,
            PLUGINS_DIR_PREFIX,
        ]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .and_then(|rest| rest.split('-').next()) else {
            continue;
        };
        if !pid.parse().is_ok_and(running) {
            std::fs::remove_dir_all(&path)?;
            removed.push(path.display().to_string());
        }
    }
    Ok(removed)
}

/// Whether process `pid` runs: a zombie (dead, not yet reaped by its parent, or by init when
/// its parent went first) does not.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `PID (COMMAND) STATE ...`, where COMMAND may hold anything.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// Where the engines of labs serve their Engine API sockets: `/run/drydock/engines` for root,
/// else `$XDG_RUNTIME_DIR/drydock/engines` (or `/tmp/drydock-UID/engines`). Computed outside
/// a rootless lab's user namespace, where the user is root.
pub(crate) fn sockets_root() -> PathBuf {
    if drydock_netsim::userns::is_privileged() {
        return PathBuf::from("/run/drydock/engines");
    }
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("drydock-{}", nix::unistd::getuid())));
    base.join("drydock").join("engines")
}

/// The Engine API socket of lab host `host` of lab `lab`.
pub(crate) fn socket_path(root: &std::path::Path, lab: &str, host: &str) -> PathBuf {
    root.join(lab).join(format!("{host}.sock"))
}

/// Removes the socket directories of labs no process holds any more (gone, or persistent with
/// a dead holder): the user's, and, for root, those rootless labs of any user left under
/// `/tmp/drydock-UID`.
pub(crate) fn gc_sockets() -> std::io::Result<Vec<String>> {
    let mut roots = vec![sockets_root()];
    if drydock_netsim::userns::is_privileged() {
        for entry in std::fs::read_dir(std::env::temp_dir())?.flatten() {
            let name = entry.file_name();
            let uid = name.to_str().and_then(|n| n.strip_prefix("drydock-"));
            if uid.is_some_and(|u| !u.is_empty() && u.chars().all(|c| c.is_ascii_digit())) {
                roots.push(entry.path().join("drydock").join("engines"));
            }
        }
    }
    let mut removed = Vec::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !drydock_netsim::registry::find(name).is_ok_and(|lab| lab.is_held()) {
                std::fs::remove_dir_all(&path)?;
                removed.push(path.display().to_string());
            }
        }
        remove_empty_parents(&root.join("-"));
    }
    Ok(removed)
}

/// Removes the socket directory of lab `lab` under `root`, after its holder died, and the
/// folders above it when empty.
pub(crate) fn remove_sockets(root: &std::path::Path, lab: &str) -> std::io::Result<()> {
    let dir = root.join(lab);
    if dir.is_dir() {
        std::fs::remove_dir_all(&dir)?;
    }
    remove_empty_parents(&dir);
    Ok(())
}

/// Removes the folders made for the sockets above `path` (`engines`, `drydock`,
/// `drydock-UID`), as long as they are empty.
fn remove_empty_parents(path: &std::path::Path) {
    let made = |dir: &&std::path::Path| {
        dir.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "engines" || n.starts_with("drydock"))
    };
    for dir in path.ancestors().skip(1).take_while(made) {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// What runs in the containers of one lab host's engine.
struct HostProcesses(std::sync::Mutex<Workloads>);

impl HostProcesses {
    fn workloads(&self) -> std::sync::MutexGuard<'_, Workloads> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Processes for HostProcesses {
    fn created(&self, id: &str, workload: Workload) -> Result<(), String> {
        self.workloads().set_command(id, workload)
    }

    fn started(&self, engine: &Engine, id: &str) -> Result<(), String> {
        let netns = engine.container_netns(id).map_err(|e| e.0)?;
        let files = container_files(engine, id)?;
        let uts = own_uts(engine, id)?;
        self.workloads().start(id, &netns, (&files, uts.as_deref()))
    }

    fn signal(&self, id: &str, signal: i32) -> bool {
        self.workloads().signal(id, signal)
    }

    fn stopped(&self, id: &str) {
        self.workloads().stop(id);
    }

    fn removed(&self, id: &str) {
        self.workloads().remove(id);
    }

    fn logs(&self, id: &str) -> String {
        self.workloads().output(id)
    }

    fn input(&self, id: &str) -> Option<std::fs::File> {
        self.workloads().input(id)
    }

    fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), String> {
        self.workloads().resize(id, height, width)
    }

    /// The program as the machine has it (`dig`, `wget`...), in the container's namespace
    /// with its files.
    fn exec(
        &self,
        engine: &Engine,
        id: &str,
        command: &[String],
    ) -> Result<std::process::Command, String> {
        let netns = engine.container_netns(id).map_err(|e| e.0)?;
        let files = container_files(engine, id)?;
        let mut child = netns.command(&command[0], None);
        child.args(&command[1..]);
        let uts = own_uts(engine, id)?;
        super::workload::container_view(&mut child, &files, uts.as_deref())?;
        Ok(child)
    }
}

/// The engines of a held lab: each lab host's Engine API socket, its engine started on the
/// first request, until the lab goes down.
pub(crate) struct Engines {
    lab: Arc<Lab>,
    /// Where the sockets are: `ROOT/LAB/`.
    dir: PathBuf,
    /// The lab's in-process control plane, for the swarms its engines make.
    hub: Arc<MemoryHub>,
    /// Whether the first engine started (it makes the state directory).
    started_one: Mutex<bool>,
}

impl Engines {
    /// Binds an Engine API socket for every host of `lab` under `root` and serves them on the
    /// current tokio runtime; an engine starts with the first connection to its socket.
    pub(crate) fn serve(lab: Arc<Lab>, root: &std::path::Path) -> anyhow::Result<Arc<Self>> {
        let dir = root.join(lab.name());
        if dir.exists() {
            // Ours: the lab's name is claimed. A crashed holder of the same name left it.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let engines = Arc::new(Self {
            lab: lab.clone(),
            dir,
            hub: Arc::new(MemoryHub::new()),
            started_one: Mutex::new(false),
        });
        for host in &lab.topology().hosts {
            let path = socket_path(root, lab.name(), &host.name);
            let listener = tokio::net::UnixListener::bind(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let (engines, host) = (engines.clone(), host.name.clone());
            tokio::spawn(async move {
                if let Err(e) = engines.serve_host(listener, &host).await {
                    tracing::error!("{host}'s Engine API: {e}");
                }
            });
        }
        Ok(engines)
    }

    /// Removes the sockets and the engines' state directory (the engines go with the process).
    pub(crate) fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(Self::state_dir());
        remove_empty_parents(&self.dir);
    }

    /// Waits for the first connection, starts the engine of `host`, then serves it.
    async fn serve_host(
        &self,
        listener: tokio::net::UnixListener,
        host: &str,
    ) -> anyhow::Result<()> {
        let first = listener.accept().await?;
        let (engine, processes, exits) = match self.start(host).await {
            Ok(started) => started,
            Err(message) => {
                drop(first);
                anyhow::bail!("{message}");
            }
        };
        let engine = Arc::new(Mutex::new(engine));
        tokio::spawn(follow_exits(engine.clone(), processes.clone(), exits));
        let served = Served::new(engine, processes);
        let listener = FirstThen {
            first: Some(first),
            listener,
        };
        Ok(drydock_runtime::server::serve(listener, served).await?)
    }

    /// Where this process's engines write containers' files: made when the first engine
    /// starts, removed when the lab goes down (or, after a crash, by `drydock gc` and the next
    /// `lab up`).
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

    /// Starts the engine of lab host `host` (its state under [`Engines::state_dir`], made by
    /// the first engine), and what runs in its containers.
    async fn start(
        &self,
        host: &str,
    ) -> Result<(Engine, Arc<HostProcesses>, UnboundedReceiver<Exit>), String> {
        let netns = (self.lab.host(host)).ok_or_else(|| self.lab.topology().unknown_host(host))?;
        let state = {
            let mut started_one = self.started_one.lock().await;
            let state = match *started_one {
                false => Self::make_state_dir().map_err(|e| format!("engine state: {e}"))?,
                true => Self::state_dir(),
            };
            *started_one = true;
            state
        };
        let options = Options {
            dns: Vec::new(),
            host_resolvers: lab_resolvers(&self.lab, host).map_err(|e| e.to_string())?,
            state_dir: Some(state.join(host)),
            hostname: host.to_string(),
            control_plane: ControlPlane::Hub(self.hub.clone()),
            // Next to the engine's socket: `LAB/HOST.plugins/NAME.sock`.
            plugins: PluginDirs {
                sockets: socket_path(&sockets_root(), self.lab.name(), host)
                    .with_extension("plugins"),
                specs: Vec::new(),
            },
            plugin_patience: Patience::default(),
        };
        let engine = Engine::start(netns, options).await.map_err(|e| e.0)?;
        let (exited, exits) = tokio::sync::mpsc::unbounded_channel();
        let workloads = Workloads::new(state.join(host).join("logs"), exited);
        let processes = Arc::new(HostProcesses(std::sync::Mutex::new(workloads)));
        Ok((engine, processes, exits))
    }
}

/// A container whose command ends stops, as Docker's does (and goes with `--rm`).
async fn follow_exits(
    engine: Arc<Mutex<Engine>>,
    processes: Arc<HostProcesses>,
    mut exits: UnboundedReceiver<Exit>,
) {
    while let Some((name, pid, code)) = exits.recv().await {
        if !processes.workloads().is_current(&name, pid) {
            continue; // stopped or restarted since
        }
        processes.workloads().stop(&name);
        let mut stopped = engine.lock().await;
        if let Err(e) = stopped.container_exited(&name, code).await {
            tracing::warn!("{name} exited ({code}): {e}");
        }
        if stopped.inspect_container(&name).is_err() {
            // Gone with `--rm`: its output stays a moment for the clients attached to it.
            let (engine, processes) = (engine.clone(), processes.clone());
            tokio::spawn(async move {
                tokio::time::sleep(ATTACHED_GRACE).await;
                if engine.lock().await.inspect_container(&name).is_err() {
                    processes.workloads().remove(&name);
                }
            });
        }
    }
}

/// A listener that hands out one connection it already accepted, then the others.
struct FirstThen {
    first: Option<(tokio::net::UnixStream, tokio::net::unix::SocketAddr)>,
    listener: tokio::net::UnixListener,
}

impl Listener for FirstThen {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        if let Some(first) = self.first.take() {
            return first;
        }
        Listener::accept(&mut self.listener).await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

fn file_path(engine: &Engine, name: &str, field: &str) -> Result<String, String> {
    let json = engine.inspect_container(name).map_err(|e| e.0)?;
    json[field]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("{name} has no {field}"))
}

/// The NIS domain name of the UTS namespace container `name`'s processes get (empty: none),
/// or `None` when they share the docker host's (`--uts host`).
fn own_uts(engine: &Engine, name: &str) -> Result<Option<String>, String> {
    let json = engine.inspect_container(name).map_err(|e| e.0)?;
    let domainname = json["Config"]["Domainname"].as_str().unwrap_or_default();
    Ok((json["HostConfig"]["UTSMode"] != "host").then(|| domainname.to_string()))
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
