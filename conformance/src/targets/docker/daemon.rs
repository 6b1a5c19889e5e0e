//! One private dockerd inside a lab host's network namespace.
//!
//! `unshare --pid --fork --kill-child --mount-proc dockerd ...` runs in the host's namespace
//! (entered by [`Netns::command`], which also gives it a mount namespace of its own with a fresh
//! `/sys`). dockerd is the init of a new PID namespace, so its death takes containerd, the shims,
//! docker-proxy and every container with it; the mount namespace it lives in dies with it, and
//! with it every mount dockerd made (overlays, netns bind mounts). The chain holds under SIGKILL:
//! the unshare process has `PR_SET_PDEATHSIG(SIGKILL)` towards the thread that spawned it (a
//! std thread that lives as long as the daemon), and `--kill-child` does the same for dockerd.
//!
//! Before exec, the child also gets:
//! - the machine's cgroup mounts under the fresh `/sys` (a clone made with `open_tree` before
//!   the fork, moved into place with `move_mount`): dockerd and runc need them;
//! - an empty tmpfs on `/run/containerd`, so that dockerd never finds (and uses) the machine's
//!   own containerd there, and so that the shims' sockets (`/run/containerd/s/...`) vanish
//!   with the daemon;
//! - an empty tmpfs on `/etc/docker`, so that the machine's Docker configuration cannot change
//!   the daemon and the daemon's `key.json` (its engine ID) is its own and does not land on the
//!   machine; and one on `/run/docker`, where dockerd keeps plugin sockets and libnetwork's
//!   external-key socket outside its exec root. (Where a folder is missing, it is created
//!   empty: the only trace a run leaves on the machine's disk.) The daemon's own `plugins`
//!   folder is bind-mounted on `/run/docker/plugins` there: a plugin socket made in it (`drydock
//!   plugin serve --socket`) is this daemon's, under its plain name, and no other daemon's.
//! - a UTS namespace of its own whose hostname is the lab host's name: a swarm node is named
//!   after its hostname (`docker node ls`, `Description.Hostname`), and two nodes named alike
//!   cannot be told apart.
//! - a `/etc/resolv.conf` of the lab's (bind-mounted over the machine's), the way a host with
//!   a local resolver has one: `nameserver 127.0.0.1`, the lab's upstream DNS server in the
//!   host's namespace (see `probe::UpstreamDns`), then the host's own lab address, where nothing
//!   listens. Docker 20.10 forwards the embedded DNS's unknown names to a loopback server of
//!   the host's resolv.conf from the host's namespace (`--dns 127.0.0.1` would mean the
//!   container's own loopback instead), so they get the upstream's NXDOMAIN; containers on the
//!   default bridge get the file without its loopback line (nothing listens there: refused).
//!   No query can leave the lab, and the machine's own resolver settings never reach a
//!   container.
//!
//! Containers' cgroups are made under `/drydock/RUN/HOST` (`--cgroup-parent`) and removed at
//! teardown (or by `gc_leftovers` after a crash): the kernel keeps empty cgroups of dead
//! processes. The shared `/drydock` parent stays: runs in parallel make their cgroups under it
//! at any moment, so only `gc_leftovers` removes it, when no run is left.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drydock_netsim::Netns;

use super::cgroup::{cgroup_mounts, remove_cgroups};
use super::http::Api;

/// `open_tree` flag: clone the tree instead of opening it.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount` flag: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// How long a killed daemon may take to go away with everything it ran.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A private dockerd on one docker host.
#[derive(Debug)]
pub(super) struct Daemon {
    /// The lab host it runs on.
    pub(super) host: String,
    /// Its directory: data root, exec root, socket, log.
    pub(super) dir: PathBuf,
    /// The host's network namespace.
    pub(super) netns: Netns,
    /// Its API.
    pub(super) api: Api,
    /// Containers' cgroup parent, relative to each cgroup mount (`drydock/RUN/HOST`).
    cgroup: String,
    /// The unshare process (our child).
    unshare: Process,
    /// dockerd, once found.
    dockerd: Option<Process>,
    /// How the unshare process ended, once it has.
    exit: Arc<Mutex<Option<String>>>,
    /// The thread that spawned the unshare process and waits for it.
    supervisor: Option<JoinHandle<()>>,
    /// Set once [`Daemon::die`] killed it while the run goes on.
    killed: AtomicBool,
}

/// A process held by a pidfd, so that signals never reach a recycled pid.
#[derive(Debug)]
struct Process {
    pid: i32,
    pidfd: OwnedFd,
}

impl Process {
    fn open(pid: i32) -> io::Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the descriptor was just returned by the kernel and is owned by nobody else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        Ok(Self { pid, pidfd })
    }

    /// SIGKILL; a process already gone is not an error.
    fn kill(&self) {
        // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo, no flags.
        let result = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if result != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!("killing pid {}: {error}", self.pid);
            }
        }
    }

    /// True once the process has exited (waiting at most `timeout`).
    fn wait_exit(&self, timeout: Duration) -> bool {
        let mut poll = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut poll, 1, millis) > 0 }
    }
}

impl Daemon {
    /// Starts dockerd on `host` with its files under `dir` (created here); returns once the
    /// unshare process runs. [`Daemon::wait_ready`] then waits for the API.
    ///
    /// `resolvers` are the nameservers of the daemon's resolv.conf ([`super::super::lab_resolvers`]).
    pub(super) async fn spawn(
        host: &str,
        netns: &Netns,
        resolvers: &[IpAddr],
        dir: PathBuf,
        cgroup: String,
    ) -> Result<Self, String> {
        let context = |what: &str, e: io::Error| format!("host {host}: {what}: {e}");
        std::fs::create_dir(&dir).map_err(|e| context(&format!("{}", dir.display()), e))?;
        // An empty configuration: the machine's /etc/docker/daemon.json must not change
        // Docker's defaults, which are the spec.
        std::fs::write(dir.join("daemon.json"), "{}\n").map_err(|e| context("daemon.json", e))?;
        let resolv_conf = dir.join("resolv.conf");
        std::fs::write(&resolv_conf, resolv_conf_text(resolvers))
            .map_err(|e| context("resolv.conf", e))?;
        let plugins = dir.join("plugins");
        std::fs::create_dir(&plugins).map_err(|e| context("plugins", e))?;
        let log = File::create(dir.join("dockerd.log")).map_err(|e| context("dockerd.log", e))?;
        let log2 = log.try_clone().map_err(|e| context("dockerd.log", e))?;
        let socket = dir.join("docker.sock");

        let mut command = netns.command("unshare", None);
        command
            .args(["--pid", "--fork", "--kill-child", "--mount-proc", "dockerd"])
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["--log-level", "warn"])
            .arg("--cgroup-parent")
            .arg(format!("/{cgroup}"))
            // A group of its own: a terminal's Ctrl-C goes to drydock, which tears the daemon
            // down, and not straight to dockerd.
            .process_group(0)
            .env_clear()
            .env("PATH", search_path())
            .env("HOME", "/root")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);

        let exit = Arc::new(Mutex::new(None));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let exit_in_thread = Arc::clone(&exit);
        let hostname = host.to_string();
        let supervisor = std::thread::Builder::new()
            .name(format!("dockerd-{host}"))
            .spawn(move || {
                let files = (resolv_conf.as_path(), plugins.as_path());
                supervise(command, &hostname, files, started_tx, exit_in_thread)
            })
            .map_err(|e| context("supervisor thread", e))?;
        let unshare = match started_rx.await {
            Ok(Ok(process)) => process,
            Ok(Err(e)) => {
                let _ = supervisor.join();
                return Err(context(
                    "starting unshare/dockerd (private mount namespace, cgroup mounts, /run/containerd)",
                    e,
                ));
            }
            Err(_) => return Err(format!("host {host}: the dockerd supervisor thread died")),
        };
        tracing::debug!(
            "host {host}: unshare/dockerd started as pid {}",
            unshare.pid
        );
        Ok(Self {
            host: host.to_string(),
            api: Api::new(&socket),
            dir,
            netns: netns.clone(),
            cgroup,
            unshare,
            dockerd: None,
            exit,
            supervisor: Some(supervisor),
            killed: AtomicBool::new(false),
        })
    }

    /// Waits until the API answers `/_ping`; fails with the log's tail if dockerd exits first
    /// or `timeout` passes.
    pub(super) async fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        let socket = self.dir.join("docker.sock");
        loop {
            if let Some(exit) = self.exited() {
                return Err(format!(
                    "host {}: dockerd exited ({exit}) before answering; {}",
                    self.host,
                    self.log_excerpt()
                ));
            }
            if socket.exists() {
                let ping = self.api.request("GET", "/_ping", None);
                if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(2), ping).await
                    && reply.status == 200
                {
                    break;
                }
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "host {}: dockerd did not answer within {} s; {}",
                    self.host,
                    timeout.as_secs(),
                    self.log_excerpt()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dockerd = self
            .find_dockerd()
            .map_err(|e| format!("host {}: finding dockerd's pid: {e}", self.host))?;
        tracing::debug!(
            "host {}: dockerd (pid {}) ready after {:?}",
            self.host,
            dockerd.pid,
            started.elapsed()
        );
        self.dockerd = Some(dockerd);
        Ok(())
    }

    /// dockerd's pid as this process sees it (for `/proc/PID/root`).
    pub(super) fn dockerd_pid(&self) -> Option<i32> {
        self.dockerd.as_ref().map(|d| d.pid)
    }

    /// How the unshare process ended, if it has.
    fn exited(&self) -> Option<String> {
        self.exit.lock().map(|e| e.clone()).unwrap_or(None)
    }

    /// dockerd: the only child of the unshare process.
    fn find_dockerd(&self) -> io::Result<Process> {
        let pid = self.unshare.pid;
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
        let child = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unshare has no child"))?;
        let process = Process::open(child)?;
        let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
        if comm.trim() != "dockerd" {
            return Err(io::Error::other(format!(
                "the child of unshare is {:?}, not dockerd",
                comm.trim()
            )));
        }
        Ok(process)
    }

    /// The last `lines` lines of dockerd's log.
    pub(super) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn log_excerpt(&self) -> String {
        format!(
            "the end of {}:\n{}",
            self.dir.join("dockerd.log").display(),
            self.log_tail(30)
        )
    }

    /// Kills dockerd, the init of its PID namespace, which takes every process of the namespace
    /// with it. Without a known dockerd, kills the unshare process (whose death kills dockerd).
    pub(super) fn kill(&mut self) {
        if self.dockerd.is_none() {
            self.dockerd = self.find_dockerd().ok();
        }
        match &self.dockerd {
            Some(dockerd) => dockerd.kill(),
            None => self.unshare.kill(),
        }
    }

    /// Kills the daemon while the run goes on, as a node dies: SIGKILL to dockerd, the init
    /// of its PID namespace, which takes containerd, the shims and every container with it
    /// (their namespaces and mounts go with its mount namespace). Returns once the unshare
    /// process has exited, that is once every process of the PID namespace is gone, and the
    /// kernel has removed its VXLAN devices; its files stay for the dump and teardown.
    pub(super) async fn die(&self) -> Result<(), String> {
        self.killed.store(true, Ordering::SeqCst);
        match &self.dockerd {
            Some(dockerd) => dockerd.kill(),
            None => self.unshare.kill(),
        }
        let started = Instant::now();
        while self.exited().is_none() {
            if started.elapsed() > STOP_TIMEOUT {
                return Err(format!(
                    "host {}: dockerd was killed but its PID namespace still runs {} s later",
                    self.host,
                    STOP_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The kernel destroys the namespaces the daemon made (overlay sandboxes, containers)
        // asynchronously, after their last user is gone: until then a VXLAN device of theirs
        // still holds the VXLAN port in the host's namespace and its containers still answer
        // on the overlay. A dead node answers nothing: wait until the port is free.
        while vxlan_port_taken(&self.netns).await? {
            if started.elapsed() > STOP_TIMEOUT {
                return Err(format!(
                    "host {}: dockerd was killed but its VXLAN devices still hold UDP port {VXLAN_PORT} {} s later",
                    self.host,
                    STOP_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::debug!(
            "host {}: dockerd and everything it ran gone {:?} after SIGKILL",
            self.host,
            started.elapsed()
        );
        Ok(())
    }

    /// True once [`Daemon::die`] was called.
    pub(super) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// After [`Daemon::kill`]: waits until everything is gone, removes the containers' cgroups
    /// and the daemon's directory. Returns what could not be done.
    pub(super) fn reap(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        // unshare exits once it has reaped dockerd, which the kernel lets happen only after
        // every other process of the PID namespace is gone.
        if let Some(supervisor) = self.supervisor.take() {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while !supervisor.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !supervisor.is_finished() {
                problems.push(format!(
                    "host {}: unshare (pid {}) still runs {} s after dockerd was killed; killing it",
                    self.host,
                    self.unshare.pid,
                    STOP_TIMEOUT.as_secs()
                ));
                self.unshare.kill();
            }
            let _ = supervisor.join();
        }
        if let Some(dockerd) = &self.dockerd
            && !dockerd.wait_exit(Duration::from_secs(5))
        {
            problems.push(format!(
                "host {}: dockerd (pid {}) still runs",
                self.host, dockerd.pid
            ));
        }
        if let Err(e) = remove_cgroups(&self.cgroup) {
            problems.push(format!("host {}: {e}", self.host));
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            problems.push(format!(
                "host {}: removing {}: {e}",
                self.host,
                self.dir.display()
            ));
        }
        problems
    }
}

/// The port of Docker's VXLAN devices (the default `--data-path-port`).
const VXLAN_PORT: u16 = 4789;

/// True while a socket (a VXLAN device's, in the kernel) holds UDP port [`VXLAN_PORT`] in
/// `netns`: binding it fails with EADDRINUSE.
async fn vxlan_port_taken(netns: &Netns) -> Result<bool, String> {
    let netns = netns.clone();
    let bound = tokio::task::spawn_blocking(move || {
        netns.run(|| std::net::UdpSocket::bind(("0.0.0.0", VXLAN_PORT)).map(drop))
    })
    .await
    .map_err(|e| format!("checking UDP port {VXLAN_PORT}: {e}"))?
    .map_err(|e| format!("entering the host's namespace: {e}"))?;
    match bound {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(true),
        Err(e) => Err(format!("binding UDP port {VXLAN_PORT}: {e}")),
    }
}

/// The supervisor thread: spawns the unshare process (so that its parent-death signal is tied
/// to this thread), reports it, waits for it and records how it ended.
fn supervise(
    mut command: Command,
    host: &str,
    (resolv_conf, plugins): (&Path, &Path),
    started: tokio::sync::oneshot::Sender<io::Result<Process>>,
    exit: Arc<Mutex<Option<String>>>,
) {
    let spawned = (|| -> io::Result<(Child, Process)> {
        let isolation = Isolation::prepare(resolv_conf, plugins, host)?;
        isolation.install(&mut command);
        let mut child = command.spawn()?;
        drop(isolation);
        match Process::open(child.id() as i32) {
            Ok(process) => Ok((child, process)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    })();
    let (mut child, process) = match spawned {
        Ok(spawned) => spawned,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    if started.send(Ok(process)).is_err() {
        // Nobody waits for this daemon any more.
        let _ = child.kill();
    }
    let status = match child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("wait failed: {e}"),
    };
    if let Ok(mut exit) = exit.lock() {
        *exit = Some(status);
    }
}

/// What the child needs before exec, prepared in the parent (the child may not allocate).
struct Isolation {
    /// A detached clone of the machine's `/sys/fs/cgroup` tree, if it has one.
    cgroups: Option<OwnedFd>,
    /// Inode of the parent's mount namespace: the child must not be in it.
    parent_mnt_ns: u64,
    /// Our pid: the child's parent.
    parent: libc::pid_t,
    /// The daemon's resolv.conf, and the file it is mounted over (`/etc/resolv.conf`, its
    /// symbolic links resolved).
    resolv_conf: (CString, CString),
    /// The daemon's hostname: the lab host's name.
    hostname: CString,
    /// The daemon's plugins folder, mounted on `/run/docker/plugins`.
    plugins: CString,
}

impl Isolation {
    fn prepare(resolv_conf: &Path, plugins: &Path, hostname: &str) -> io::Result<Self> {
        let c_path = |path: &Path| {
            CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::other(format!("{}: a NUL in the path", path.display())))
        };
        let machine = std::fs::canonicalize("/etc/resolv.conf").map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("/etc/resolv.conf (the daemon's is mounted over it): {e}"),
            )
        })?;
        let resolv_conf = (c_path(resolv_conf)?, c_path(&machine)?);
        let parent_mnt_ns = std::fs::metadata("/proc/self/ns/mnt")?.ino();
        let cgroups = if cgroup_mounts().is_empty() {
            None
        } else {
            Some(clone_tree(c"/sys/fs/cgroup").map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("open_tree(/sys/fs/cgroup) (Linux 5.2 or later is needed): {e}"),
                )
            })?)
        };
        let hostname = CString::new(hostname)
            .map_err(|_| io::Error::other(format!("{hostname:?}: a NUL in the host name")))?;
        Ok(Self {
            cgroups,
            parent_mnt_ns,
            parent: std::process::id() as libc::pid_t,
            resolv_conf,
            hostname,
            plugins: c_path(plugins)?,
        })
    }

    /// Adds the pre-exec step (after [`Netns::command`]'s, which made the mount namespace).
    fn install(&self, command: &mut Command) {
        let tree = self.cgroups.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        let (parent_mnt_ns, parent) = (self.parent_mnt_ns, self.parent);
        // Cloned here, in the parent: the child only reads them.
        let (source, target) = self.resolv_conf.clone();
        let hostname = self.hostname.clone();
        let plugins = self.plugins.clone();
        // SAFETY: `isolate` only makes system calls with values captured by copy, strings
        // made before the fork and static strings; it allocates nothing, as is required
        // between fork and exec.
        unsafe {
            command.pre_exec(move || {
                isolate(
                    tree,
                    parent_mnt_ns,
                    parent,
                    (&source, &target),
                    &hostname,
                    &plugins,
                )
            });
        }
    }
}

/// The child's side of [`Isolation`]. Async-signal-safe: system calls only. `resolv_conf` is
/// (the daemon's file, the machine's `/etc/resolv.conf` it is bind-mounted over); `hostname`
/// the lab host's name, given to a UTS namespace of the daemon's own; `plugins` the daemon's
/// plugins folder.
fn isolate(
    tree: RawFd,
    parent_mnt_ns: u64,
    parent: libc::pid_t,
    resolv_conf: (&CString, &CString),
    hostname: &CString,
    plugins: &CString,
) -> io::Result<()> {
    let fail = || Err(io::Error::last_os_error());
    // SAFETY: plain system calls with NUL-terminated strings made before the fork or static,
    // and a local stat buffer.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return fail();
        }
        if libc::getppid() != parent {
            // The spawning thread is already gone: its death signal was missed.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let mut stat: libc::stat = std::mem::zeroed();
        if libc::stat(c"/proc/self/ns/mnt".as_ptr(), &mut stat) != 0 {
            return fail();
        }
        if stat.st_ino == parent_mnt_ns {
            // Netns::command could not make a private mount namespace: mount nothing.
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        // Nothing mounted below may propagate back to the machine.
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_SLAVE | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            return fail();
        }
        if tree >= 0
            && libc::syscall(
                libc::SYS_move_mount,
                tree,
                c"".as_ptr(),
                libc::AT_FDCWD,
                c"/sys/fs/cgroup".as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ) != 0
        {
            return fail();
        }
        if libc::unshare(libc::CLONE_NEWUTS) != 0 {
            return fail();
        }
        let name = hostname.as_bytes();
        if libc::sethostname(name.as_ptr().cast(), name.len()) != 0 {
            return fail();
        }
        for dir in [c"/run/containerd", c"/etc/docker", c"/run/docker"] {
            libc::mkdir(dir.as_ptr(), 0o711);
            if libc::mount(
                c"tmpfs".as_ptr(),
                dir.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=711".as_ptr().cast(),
            ) != 0
            {
                return fail();
            }
        }
        libc::mkdir(c"/run/docker/plugins".as_ptr(), 0o755);
        if libc::mount(
            plugins.as_ptr(),
            c"/run/docker/plugins".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ) != 0
        {
            return fail();
        }
        if libc::mount(
            resolv_conf.0.as_ptr(),
            resolv_conf.1.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ) != 0
        {
            return fail();
        }
    }
    Ok(())
}

/// The daemon's `/etc/resolv.conf`, listing `resolvers`.
fn resolv_conf_text(resolvers: &[IpAddr]) -> String {
    let mut text =
        String::from("# drydock lab host (see drydock_conformance::targets::lab_resolvers)\n");
    for resolver in resolvers {
        text.push_str(&format!("nameserver {resolver}\n"));
    }
    text
}

/// A detached, recursive clone of the mount tree at `path`.
fn clone_tree(path: &std::ffi::CStr) -> io::Result<OwnedFd> {
    let flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: open_tree with a valid NUL-terminated path; returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `PATH` for dockerd: ours, plus the sbin directories where dockerd, containerd, runc,
/// docker-proxy and iptables live.
fn search_path() -> String {
    let mut path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !path.split(':').any(|p| p == dir) {
            path.push(':');
            path.push_str(dir);
        }
    }
    path
}

/// Checks, before anything is started, that this process may do what the daemons need and
/// that their programs are installed.
pub(super) fn check_prerequisites() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("the docker target needs root (it runs dockerd inside the lab's hosts)".into());
    }
    let path = search_path();
    let missing: Vec<&str> = ["unshare", "dockerd", "containerd", "runc", "iptables"]
        .into_iter()
        .filter(|program| {
            !path
                .split(':')
                .any(|dir| Path::new(dir).join(program).is_file())
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} not found in {path}: the docker target needs Debian's docker.io and util-linux",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_path_has_the_sbin_directories() {
        let path = search_path();
        for dir in ["/usr/sbin", "/sbin"] {
            assert!(path.split(':').any(|p| p == dir), "{path}");
        }
    }
}
