//! Docker Engine as a target.
//!
//! The docker target never touches the machine's own Docker or network namespace. For each
//! docker host of a scenario's lab it starts a private dockerd inside that host's network
//! namespace, in PID and mount namespaces of its own (`daemon.rs`): killing drydock, even with
//! SIGKILL, kills dockerd, containerd, the shims and every container, and leaves no mount.
//! Each daemon gets the machine's static busybox as its only image (`image.rs`) and is driven
//! over its API socket, pinned to API 1.41 (`http.rs`), as an Engine API (`client.rs`) fed the
//! request bodies the docker CLI would send (`drydock_runtime::api::dispatch`), including the
//! CLI's own client-side checks.
//!
//! A run's files live in `/tmp/drydock-docker-RUN/` (short: unix socket paths are limited to
//! 108 bytes, and containerd puts its sockets under the exec root): `owner.pid`, and one
//! directory per host with the daemon's data root, exec root, socket and log. After a crash,
//! [`gc_leftovers`] removes what dead runs left (directories and empty cgroups).

mod cgroup;
mod client;
mod daemon;
mod http;
mod image;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drydock_netsim::{Lab, Netns};
use serde_json::Value;

pub use self::client::Client;
use self::daemon::Daemon;
use crate::targets::{Target, TargetError, TargetResult};
use crate::version::Version;

/// The label that marks everything a run creates.
const RUN_LABEL: &str = "drydock.run";

/// Directory under which runs keep their files.
const RUN_ROOT: &str = "/tmp";

/// Name prefix of a run's directory in `/tmp`.
pub const RUN_DIR_PREFIX: &str = "drydock-docker-";

/// How long a daemon may take to answer its API after start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest unix socket path the daemons need: containerd's ttrpc socket.
const LONGEST_SOCKET: &str = "exec/containerd/containerd.sock.ttrpc";

/// Docker Engine on the docker hosts of a lab: one private dockerd per host.
///
/// Dropping it kills the daemons and removes their files (synchronously, best effort: it
/// blocks the dropping thread for the fraction of a second this takes);
/// [`DockerTarget::shutdown`] does the same on a blocking thread and reports what could not be
/// done.
#[derive(Debug)]
pub struct DockerTarget {
    run_id: String,
    run_dir: PathBuf,
    daemons: Vec<Daemon>,
    /// The Engine API of each daemon, by docker host.
    clients: BTreeMap<String, Client>,
    server_version: String,
    version: Version,
    torn_down: bool,
}

impl DockerTarget {
    /// Starts a private dockerd on each of `docker_hosts` (lab host names), in parallel, and
    /// imports the busybox image into each. `run_id` names the run's directory
    /// (`/tmp/drydock-docker-RUN_ID`) and labels (`drydock.run=RUN_ID`) what the run creates:
    /// 1 to 32 characters among `A-Za-z0-9_-`, not in use by a live run.
    pub async fn start(
        lab: &Lab,
        docker_hosts: &[String],
        run_id: &str,
    ) -> Result<DockerTarget, TargetError> {
        if run_id.is_empty()
            || run_id.len() > 32
            || !run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(TargetError::new(format!(
                "run id {run_id:?}: expected 1 to 32 characters among A-Za-z0-9_-"
            )));
        }
        if docker_hosts.is_empty() {
            return Err(TargetError::new(
                "the docker target needs at least one docker host",
            ));
        }
        let run_dir = Path::new(RUN_ROOT).join(format!("{RUN_DIR_PREFIX}{run_id}"));
        let mut hosts: Vec<(&str, Netns, Vec<IpAddr>)> = Vec::new();
        for host in docker_hosts {
            let netns = lab.host(host).ok_or_else(|| {
                TargetError::new(format!("no host {host:?} in lab {}", lab.name()))
            })?;
            let resolvers = super::lab_resolvers(lab, host)?;
            // The name becomes a directory name.
            if matches!(host.as_str(), "." | "..")
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(TargetError::new(format!(
                    "docker host {host:?}: expected a name made of A-Za-z0-9_.-"
                )));
            }
            if hosts.iter().any(|(h, _, _)| h == host) {
                return Err(TargetError::new(format!(
                    "docker host {host} is listed twice"
                )));
            }
            let socket = run_dir.join(host).join(LONGEST_SOCKET);
            if socket.as_os_str().len() >= 108 {
                return Err(TargetError::new(format!(
                    "{}: longer than a unix socket path may be (shorten the run id or host name)",
                    socket.display()
                )));
            }
            hosts.push((host, netns.clone(), resolvers));
        }
        daemon::check_prerequisites().map_err(TargetError::new)?;
        let rootfs = image::rootfs()?;

        std::fs::create_dir(&run_dir).map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::AlreadyExists {
                " (another run with this id, or one that crashed: `drydock gc` removes the latter)"
            } else {
                ""
            };
            TargetError::new(format!("{}: {e}{hint}", run_dir.display()))
        })?;
        // From here on, dropping `target` cleans up whatever was made.
        let mut target = DockerTarget {
            run_id: run_id.to_string(),
            run_dir,
            daemons: Vec::new(),
            clients: BTreeMap::new(),
            server_version: String::new(),
            version: Version(0, 0, 0),
            torn_down: false,
        };
        std::fs::write(target.run_dir.join("owner.pid"), owner_record()).map_err(|e| {
            TargetError::new(format!("{}/owner.pid: {e}", target.run_dir.display()))
        })?;
        for (host, netns, resolvers) in &hosts {
            let cgroup = format!("drydock/{run_id}/{host}");
            let daemon = Daemon::spawn(host, netns, resolvers, target.run_dir.join(host), cgroup)
                .await
                .map_err(TargetError::new)?;
            target.daemons.push(daemon);
        }
        let rootfs = &rootfs;
        futures::future::try_join_all(target.daemons.iter_mut().map(|daemon| async move {
            daemon.wait_ready(READY_TIMEOUT).await?;
            image::import(&daemon.api, rootfs)
                .await
                .map_err(|e| format!("host {}: importing the busybox image: {e}", daemon.host))
        }))
        .await
        .map_err(TargetError::new)?;
        let version = target.daemons[0]
            .api
            .call_json("GET", "/version", None)
            .await?;
        let text = version.get("Version").and_then(Value::as_str);
        target.version = text.and_then(Version::parse).ok_or_else(|| {
            TargetError::new(format!(
                "GET /version answered no release number drydock can read (Version: {}): \
                 version-tagged scenarios could not be selected",
                text.map_or("missing".into(), |v| format!("{v:?}"))
            ))
        })?;
        target.server_version = text.unwrap_or_default().to_string();
        let labels = target.run_labels();
        target.clients = (target.daemons.iter())
            .map(|d| (d.host.clone(), Client::new(d.api.clone(), labels.clone())))
            .collect();
        tracing::debug!(
            "docker target {run_id}: {} daemons of Docker {} ready",
            target.daemons.len(),
            target.server_version
        );
        Ok(target)
    }

    /// The run id given to [`DockerTarget::start`].
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's directory (`/tmp/drydock-docker-RUN_ID`).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The API socket of the daemon on `host` (for `docker -H unix://...` while debugging).
    pub fn socket(&self, host: &str) -> TargetResult<PathBuf> {
        Ok(self.daemon(host)?.dir.join("docker.sock"))
    }

    /// The labels this run puts on what it creates.
    fn run_labels(&self) -> BTreeMap<String, String> {
        [(RUN_LABEL.to_string(), self.run_id.clone())].into()
    }

    /// Kills every daemon (and with it every container), waits until they are gone, removes
    /// their cgroups and the run's directory. Every step is tried; the error lists the ones
    /// that failed.
    pub async fn shutdown(mut self) -> Result<(), TargetError> {
        let problems = tokio::task::spawn_blocking(move || self.teardown())
            .await
            .map_err(|e| TargetError::new(format!("docker target teardown panicked: {e}")))?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TargetError::new(problems.join("; ")))
        }
    }

    /// Synchronous teardown; idempotent.
    fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return Vec::new();
        }
        self.torn_down = true;
        // Kill all first, so that the daemons die in parallel.
        for daemon in &mut self.daemons {
            daemon.kill();
        }
        let mut problems = Vec::new();
        for daemon in &mut self.daemons {
            problems.extend(daemon.reap());
        }
        if let Err(e) = cgroup::remove_cgroups(&format!("drydock/{}", self.run_id)) {
            problems.push(e);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.run_dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            problems.push(format!("removing {}: {e}", self.run_dir.display()));
        }
        problems
    }

    /// The daemon of `host`, unless it was killed ([`Target::kill`]).
    fn daemon(&self, host: &str) -> TargetResult<&Daemon> {
        let daemon = self.daemon_even_killed(host)?;
        match daemon.is_killed() {
            true => Err(killed(host)),
            false => Ok(daemon),
        }
    }

    /// The daemon of `host`, dead or alive.
    fn daemon_even_killed(&self, host: &str) -> TargetResult<&Daemon> {
        self.daemons
            .iter()
            .find(|d| d.host == host)
            .ok_or_else(|| TargetError::new(format!("{host} is not a docker host of this run")))
    }

    /// `GET /containers/NAME/json` on `host`.
    async fn container_json(&self, host: &str, name: &str) -> TargetResult<Value> {
        use drydock_runtime::api::EngineApi;
        self.api(host)?.inspect_container(name).await
    }
}

impl Drop for DockerTarget {
    fn drop(&mut self) {
        for problem in self.teardown() {
            tracing::warn!("docker target {}: {problem}", self.run_id);
        }
    }
}

impl Target for DockerTarget {
    type Api = Client;

    async fn start(lab: &Lab, docker_hosts: &[String], run_id: &str) -> TargetResult<Self> {
        DockerTarget::start(lab, docker_hosts, run_id).await
    }

    async fn stop(self) {
        if let Err(e) = self.shutdown().await {
            tracing::warn!("docker target teardown: {e}");
        }
    }

    fn describe(&self) -> String {
        format!("docker {}", self.server_version)
    }

    fn version(&self) -> Version {
        self.version
    }

    fn kernel_links_only(&self) -> bool {
        true
    }

    fn api(&self, host: &str) -> TargetResult<&Client> {
        self.daemon(host)?;
        self.clients
            .get(host)
            .ok_or_else(|| TargetError::new(format!("{host} is not a docker host of this run")))
    }

    /// What the daemon sees as `/run/docker/plugins` (a folder of its own, bind-mounted).
    fn plugins_dir(&self, host: &str) -> TargetResult<PathBuf> {
        Ok(self.daemon(host)?.dir.join("plugins"))
    }

    async fn container_netns(&self, host: &str, name: &str) -> TargetResult<Netns> {
        let daemon = self.daemon(host)?;
        let mut info = self.container_json(host, name).await?;
        // `--network container:OTHER` has no sandbox of its own: it lives in OTHER's.
        for _ in 0..8 {
            let mode = info["HostConfig"]["NetworkMode"].as_str().unwrap_or("");
            let Some(other) = mode.strip_prefix("container:") else {
                break;
            };
            let other = other.to_string();
            info = self.container_json(host, &other).await?;
        }
        let running = info["State"]["Running"].as_bool().unwrap_or(false);
        let key = info["NetworkSettings"]["SandboxKey"].as_str().unwrap_or("");
        if !running || key.is_empty() {
            return Err(TargetError::new(format!(
                "container {name} has no network namespace: it is not running"
            )));
        }
        let pid = daemon
            .dockerd_pid()
            .ok_or_else(|| TargetError::new(format!("host {host}: dockerd's pid is unknown")))?;
        // The namespace is bind-mounted at SandboxKey in dockerd's own mount namespace.
        let path = format!("/proc/{pid}/root{key}");
        Netns::open(&path)
            .map_err(|e| TargetError::new(format!("network namespace of container {name}: {e}")))
    }

    async fn container_file(&self, host: &str, name: &str, path: &str) -> TargetResult<String> {
        let field = match path {
            "/etc/resolv.conf" => "ResolvConfPath",
            "/etc/hosts" => "HostsPath",
            "/etc/hostname" => "HostnamePath",
            _ => {
                return Err(TargetError::new(format!(
                    "{path}: the docker target reads only /etc/resolv.conf, /etc/hosts and /etc/hostname"
                )));
            }
        };
        let info = self.container_json(host, name).await?;
        let file = info[field].as_str().unwrap_or("");
        if file.is_empty() {
            return Err(TargetError::new(format!(
                "container {name} has no {path} of Docker's making (not started yet?)"
            )));
        }
        // A small file on the machine's own file system (under the data root).
        std::fs::read_to_string(file)
            .map_err(|e| TargetError::new(format!("{path} of container {name} ({file}): {e}")))
    }

    async fn kill(&self, host: &str) -> TargetResult<()> {
        self.daemon(host)?.die().await.map_err(TargetError::new)
    }

    async fn dump(&self, host: &str) -> String {
        let daemon = match self.daemon_even_killed(host) {
            Ok(daemon) => daemon,
            Err(e) => return e.message,
        };
        // Docker's firewall is iptables: only its own tool prints it (a failure dump may run
        // a process; addresses and routes are read by the runner over netlink).
        let netns = daemon.netns.clone();
        let rules = tokio::task::spawn_blocking(move || {
            match netns.command("iptables-save", None).output() {
                Ok(output) => format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
                Err(e) => format!("(iptables-save: {e})\n"),
            }
        })
        .await
        .unwrap_or_else(|e| format!("(iptables-save panicked: {e})\n"));
        let commands = format!("== {host}: iptables-save\n{rules}");
        format!(
            "{commands}== {host}: dockerd log (last 30 lines)\n{}\n",
            daemon.log_tail(30)
        )
    }
}

/// The error of every call to a docker host whose daemon was killed.
fn killed(host: &str) -> TargetError {
    TargetError::new(format!(
        "the engine of {host} was killed (`drydock kill {host}`): it answers no call"
    ))
}

/// `owner.pid`: our pid and start time (clock ticks after boot), so that a recycled pid is not
/// mistaken for the owner.
fn owner_record() -> String {
    let pid = std::process::id();
    match start_time(pid) {
        Some(start) => format!("{pid} {start}\n"),
        None => format!("{pid}\n"),
    }
}

/// Field 22 of `/proc/PID/stat`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// True when the process recorded in `owner.pid` still runs.
fn owner_alive(run_dir: &Path) -> bool {
    let Ok(record) = std::fs::read_to_string(run_dir.join("owner.pid")) else {
        // A run writes owner.pid right after making its directory: give a young one time.
        let young = std::fs::metadata(run_dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < Duration::from_secs(60));
        return young;
    };
    let mut fields = record.split_whitespace();
    let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    match (
        start_time(pid),
        fields.next().and_then(|s| s.parse::<u64>().ok()),
    ) {
        (None, _) => false,
        (Some(now), Some(recorded)) => now == recorded,
        (Some(_), None) => true,
    }
}

/// Removes what dead runs left behind: the directories `/tmp/drydock-docker-RUN` whose owner
/// process is gone, the cgroups `drydock/RUN` of every hierarchy (theirs, and any whose run
/// directory no longer exists), and any process still running from such a directory (normally
/// none: the daemons die with their owner); then the shared `drydock` cgroup parent, if empty
/// and no run is left at all. Live runs (of this process or others) are not touched. Returns
/// what it removed: directories, and `cgroup drydock/RUN` for cgroups without a directory.
pub fn gc_leftovers() -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(RUN_ROOT)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(run_id) = name.strip_prefix(RUN_DIR_PREFIX) else {
            continue;
        };
        let dir = entry.path();
        if !entry.file_type()?.is_dir() || owner_alive(&dir) {
            continue;
        }
        kill_processes_under(&dir);
        if let Err(e) = cgroup::remove_cgroups(&format!("drydock/{run_id}")) {
            tracing::warn!("gc: {e}");
        }
        std::fs::remove_dir_all(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        removed.push(dir.display().to_string());
    }
    // Cgroups of runs whose directory is gone (a run makes its directory before any cgroup).
    let mut orphans = BTreeSet::new();
    for mount in cgroup::cgroup_mounts() {
        let Ok(entries) = std::fs::read_dir(mount.join("drydock")) else {
            continue;
        };
        for entry in entries.flatten() {
            let run_id = entry.file_name().to_string_lossy().into_owned();
            let dir = Path::new(RUN_ROOT).join(format!("{RUN_DIR_PREFIX}{run_id}"));
            if entry.path().is_dir() && !dir.exists() {
                orphans.insert(run_id);
            }
        }
    }
    for run_id in orphans {
        let relative = format!("drydock/{run_id}");
        cgroup::remove_cgroups(&relative).map_err(io::Error::other)?;
        removed.push(format!("cgroup {relative}"));
    }
    // The shared parent, once no run (live or dead) has a directory: a run makes its
    // directory before any cgroup, and teardown never removes the parent.
    if !any_run_dir()? {
        for mount in cgroup::cgroup_mounts() {
            let parent = mount.join("drydock");
            // Only when empty: rmdir fails on a cgroup with children.
            if parent.is_dir() && std::fs::remove_dir(&parent).is_ok() {
                tracing::debug!("gc: removed {}", parent.display());
            }
        }
    }
    Ok(removed)
}

/// True when some run (live or not) has its directory in `/tmp`.
fn any_run_dir() -> io::Result<bool> {
    for entry in std::fs::read_dir(RUN_ROOT)? {
        if entry?
            .file_name()
            .to_string_lossy()
            .starts_with(RUN_DIR_PREFIX)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// SIGKILLs every process whose command line names a path under `dir`.
fn kill_processes_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let needle = format!("{}/", dir.display());
    let me = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let names_dir = cmdline
            .split(|b| *b == 0)
            .any(|arg| String::from_utf8_lossy(arg).contains(&needle));
        if names_dir {
            tracing::warn!("gc: killing leftover process {pid} of {}", dir.display());
            // SAFETY: kill with a pid read from /proc and a constant signal.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}
