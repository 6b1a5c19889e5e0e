//! What runs inside the containers of a held lab: the container's own command (`run -d --name
//! web busybox httpd -f -p 80`).
//!
//! The reference engine makes a container's namespace, not a process. A command given to `run`
//! is run by the process holding the lab, as Docker would run it: in the container's network
//! namespace, with its `/etc/resolv.conf`, `/etc/hosts` and hostname, as the init of a PID namespace of its
//! own (`unshare --pid --fork --kill-child`), so that stopping the container, removing it, or
//! the holder's death (even SIGKILL) ends it and everything it started.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

use drydock_netsim::Netns;
use drydock_runtime::server::Workload;
use drydock_runtime::server::pty::{self, Pty};

/// A container's `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname`: path in the container →
/// file of the engine.
pub(crate) type Files = BTreeMap<String, String>;

/// Gives the child of `command` a container's (or a lab host's) view: `files` (target → source)
/// bind-mounted over the machine's (the child must get a mount namespace of its own, as
/// [`Netns::command`] gives it), and, when `/etc/hostname` is among them and `own_uts` is the
/// NIS domain name (empty: none), a UTS namespace of its own with that hostname and domain
/// name, so that `hostname` in a container answers as in Docker (with `--uts host`, `None`,
/// it keeps the docker host's).
pub(crate) fn container_view(
    command: &mut Command,
    files: &Files,
    own_uts: Option<&str>,
) -> Result<(), String> {
    let domainname = own_uts.unwrap_or_default().as_bytes().to_vec();
    let hostname = match files.get("/etc/hostname").filter(|_| own_uts.is_some()) {
        Some(source) => {
            let text = std::fs::read_to_string(source).map_err(|e| format!("{source}: {e}"))?;
            Some(text.trim().to_string().into_bytes())
        }
        None => None,
    };
    let mounts: Vec<(CString, CString)> = files
        .iter()
        .map(|(target, source)| {
            Ok((
                CString::new(source.as_str())?,
                CString::new(target.as_str())?,
            ))
        })
        .collect::<Result<_, std::ffi::NulError>>()
        .map_err(|e| e.to_string())?;
    // SAFETY: only mount(2), unshare(2), sethostname(2) and setdomainname(2), with data
    // prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            for (source, target) in &mounts {
                if libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(name) = &hostname
                && (libc::unshare(libc::CLONE_NEWUTS) != 0
                    || libc::sethostname(name.as_ptr().cast(), name.len()) != 0
                    || (!domainname.is_empty()
                        && libc::setdomainname(domainname.as_ptr().cast(), domainname.len()) != 0))
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// `argv` ready to run from the machine's filesystem, which stands for every image: its program
/// is looked up on PATH, else taken as an applet of busybox (the image scenarios use). Unknown
/// programs fail `run` with runc's text, as Docker's would.
fn program(argv: &[String]) -> Result<Vec<String>, String> {
    let name = &argv[0];
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    if name.contains('/') {
        return match std::path::Path::new(name).is_file() {
            true => Ok(argv.to_vec()),
            false => Err(format!(
                "exec: \"{name}\": stat {name}: no such file or directory"
            )),
        };
    }
    if on_path(name) {
        return Ok(argv.to_vec());
    }
    let applets = Command::new("busybox").arg("--list").output();
    let applet = applets.is_ok_and(|out| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|line| line == name)
    });
    match applet {
        true => Ok([vec!["busybox".to_string()], argv.to_vec()].concat()),
        false => Err(format!(
            "exec: \"{name}\": executable file not found in $PATH"
        )),
    }
}

/// A container's command that ended: the container, the process, its exit code (128 + the
/// signal that killed it).
pub(crate) type Exit = (String, libc::pid_t, i64);

/// A container's command, running; killed with everything it started when dropped.
struct Process {
    pid: libc::pid_t,
    waiter: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `argv` in `netns` with `files`, its output appended to `log`, from a thread of its own that waits for it: the
    /// child's death signal (`PR_SET_PDEATHSIG`) follows the thread that spawned it, which
    /// therefore lives as long as the child.
    fn spawn(
        netns: &Netns,
        (files, own_uts): (&Files, Option<&str>),
        command: &ContainerCommand,
        log: &Path,
        exited: impl FnOnce(libc::pid_t, i64) + Send + 'static,
    ) -> Result<Self, String> {
        let argv = &command.argv;
        let mut child = netns.command("unshare", None);
        child.args(["--pid", "--fork", "--kill-child", "--mount-proc", "--"]);
        if command.terminal.is_some() {
            // The init of the container's PID namespace leads the terminal's session, as
            // runc's does: a shell there controls its jobs.
            child.args(["setsid", "--ctty", "--"]);
        }
        child.args(program(argv)?);
        command.give_stdio(&mut child, log)?;
        let mut command = child;
        container_view(&mut command, files, own_uts)?;
        drydock_conformance::tied::killed_with_its_thread(&mut command);
        let (started, pid) = mpsc::channel();
        let waiter = std::thread::spawn(move || match command.spawn() {
            Ok(mut child) => {
                // Its copies of the stdio (a terminal's side, a pipe's end) go: only the
                // process holds them.
                drop(command);
                let pid = child.id() as libc::pid_t;
                let _ = started.send(Ok(pid));
                if let Ok(status) = child.wait() {
                    exited(pid, drydock_runtime::server::exit_code(&status));
                }
            }
            Err(e) => {
                let _ = started.send(Err(e));
            }
        });
        match pid.recv() {
            Ok(Ok(pid)) => Ok(Self {
                pid,
                waiter: Some(waiter),
            }),
            Ok(Err(e)) => Err(format!("cannot start {:?}: {e}", argv.join(" "))),
            Err(_) => Err(format!("cannot start {:?}", argv.join(" "))),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: the pid is our unreaped child until the waiter returns; once it has, the pid
        // may be another process's.
        if self.waiter.as_ref().is_some_and(|w| !w.is_finished()) {
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
        }
    }
}

/// A container's command and what it reads from: nothing, a pipe clients write to (`-i`), or
/// a terminal (`-t`), which live as long as the container.
struct ContainerCommand {
    argv: Vec<String>,
    /// `-i` without `-t`: the pipe's ends; the writing end goes to the first client attached
    /// with stdin.
    pipe: Option<(OwnedFd, Option<OwnedFd>)>,
    /// `-t`: the terminal; a thread copies what it shows to the log.
    terminal: Option<Pty>,
}

impl ContainerCommand {
    /// `workload`'s command, with its pipe or its terminal (whose output goes to `log`).
    fn new(workload: Workload, log: &Path) -> Result<Self, String> {
        let pipe = match workload.open_stdin && !workload.tty {
            true => {
                let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map_err(|e| format!("stdin pipe: {e}"))?;
                Some((read, Some(write)))
            }
            false => None,
        };
        let terminal = match workload.tty {
            true => {
                let pty = Pty::open().map_err(|e| format!("terminal: {e}"))?;
                copy_to_log(&pty.master, log)?;
                Some(pty)
            }
            false => None,
        };
        Ok(Self {
            argv: workload.argv,
            pipe,
            terminal,
        })
    }

    /// Gives `child` its stdin, stdout and stderr: the terminal, or the pipe (else nothing)
    /// and the log.
    fn give_stdio(&self, child: &mut Command, log: &Path) -> Result<(), String> {
        if let Some(terminal) = &self.terminal {
            return terminal.give_to(child, false).map_err(|e| e.to_string());
        }
        let output = append(log)?;
        let errors = output.try_clone().map_err(|e| e.to_string())?;
        let input = match &self.pipe {
            Some((read, _)) => Stdio::from(read.try_clone().map_err(|e| e.to_string())?),
            None => Stdio::null(),
        };
        child.stdin(input).stdout(output).stderr(errors);
        Ok(())
    }
}

/// `log`, opened for appending (made when missing).
fn append(log: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))
}

/// Copies what the terminal of `master` shows to `log`, from a thread of its own, until no
/// process holds the terminal's side (the container is removed).
fn copy_to_log(master: &OwnedFd, log: &Path) -> Result<(), String> {
    let mut screen = std::fs::File::from(master.try_clone().map_err(|e| e.to_string())?);
    let mut output = append(log)?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = screen.read(&mut buf) {
            if output.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Everything running in one engine's containers, by container id.
pub(crate) struct Workloads {
    /// Where each container's command writes its output (`ID.log`), for `logs`.
    logs: PathBuf,
    commands: BTreeMap<String, ContainerCommand>,
    processes: BTreeMap<String, Process>,
    /// Told of every command that ends.
    exits: tokio::sync::mpsc::UnboundedSender<Exit>,
}

impl Workloads {
    /// No workloads yet; containers' output will go to files in `logs`, and `exits` hears of
    /// every command that ends.
    pub(crate) fn new(logs: PathBuf, exits: tokio::sync::mpsc::UnboundedSender<Exit>) -> Self {
        Self {
            logs,
            commands: BTreeMap::new(),
            processes: BTreeMap::new(),
            exits,
        }
    }

    /// Whether `pid` is the command running in container `name` now (not one stopped since).
    pub(crate) fn is_current(&self, name: &str, pid: libc::pid_t) -> bool {
        self.processes.get(name).is_some_and(|p| p.pid == pid)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// What container `name`'s command wrote to stdout and stderr so far (`docker logs`), over
    /// all its starts; empty when it has no command.
    pub(crate) fn output(&self, name: &str) -> String {
        std::fs::read_to_string(self.log(name)).unwrap_or_default()
    }

    /// Records `workload` as what container `name` runs (again at every start).
    pub(crate) fn set_command(&mut self, name: &str, workload: Workload) -> Result<(), String> {
        if !workload.argv.is_empty() {
            std::fs::create_dir_all(&self.logs)
                .map_err(|e| format!("{}: {e}", self.logs.display()))?;
            let command = ContainerCommand::new(workload, &self.log(name))?;
            self.commands.insert(name.to_string(), command);
        }
        Ok(())
    }

    /// Where a client attached to container `name` types: its terminal, or (once) its stdin.
    pub(crate) fn input(&mut self, name: &str) -> Option<std::fs::File> {
        let command = self.commands.get_mut(name)?;
        if let Some(terminal) = &command.terminal {
            return terminal.master.try_clone().ok().map(std::fs::File::from);
        }
        let (_, write) = command.pipe.as_mut()?;
        write.take().map(std::fs::File::from)
    }

    /// Resizes container `name`'s terminal, if it has one.
    pub(crate) fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), String> {
        match self.commands.get(name).and_then(|c| c.terminal.as_ref()) {
            Some(terminal) => {
                pty::resize(&terminal.master, height, width).map_err(|e| e.to_string())
            }
            None => Ok(()),
        }
    }

    /// Starts the command of a container that was just started, if it has one, with `files`
    /// and (unless `--uts host`) a UTS namespace of its own.
    pub(crate) fn start(
        &mut self,
        name: &str,
        netns: &Netns,
        view: (&Files, Option<&str>),
    ) -> Result<(), String> {
        if let Some(command) = self.commands.get(name) {
            std::fs::create_dir_all(&self.logs)
                .map_err(|e| format!("{}: {e}", self.logs.display()))?;
            let (exits, container) = (self.exits.clone(), name.to_string());
            let exited = move |pid, code| {
                let _ = exits.send((container, pid, code));
            };
            let process = Process::spawn(netns, view, command, &self.log(name), exited)?;
            self.processes.insert(name.to_string(), process);
        }
        Ok(())
    }

    /// Sends `signal` to the init of container `name`'s command (the child of its `unshare`);
    /// SIGKILL, and any signal before `unshare` forked, to `unshare`, which takes the child
    /// with it and dies of the signal as the child would; false when nothing runs there.
    pub(crate) fn signal(&self, name: &str, signal: i32) -> bool {
        let Some(process) = self.processes.get(name) else {
            return false;
        };
        let children = format!("/proc/{0}/task/{0}/children", process.pid);
        let init = std::fs::read_to_string(children)
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<libc::pid_t>().ok())
            .filter(|_| signal != libc::SIGKILL)
            .unwrap_or(process.pid);
        // SAFETY: kill(2) of our child or of its child, which the waiter has not reaped.
        unsafe { libc::kill(init, signal) == 0 }
    }

    /// Ends everything running in container `name`.
    pub(crate) fn stop(&mut self, name: &str) {
        self.processes.remove(name);
    }

    /// Ends everything of container `name` and forgets its command.
    pub(crate) fn remove(&mut self, name: &str) {
        self.stop(name);
        self.commands.remove(name);
        let _ = std::fs::remove_file(self.log(name));
    }
}

#[cfg(test)]
mod tests {
    use drydock_runtime::server::failed_start::exit_code;

    use super::*;

    #[test]
    fn a_program_that_does_not_exist_fails_with_runcs_text_and_127() {
        let missing = program(&["no-such-program".to_string()]).unwrap_err();
        assert_eq!(
            missing,
            "exec: \"no-such-program\": executable file not found in $PATH"
        );
        assert_eq!(exit_code(&missing, 128), 127);
        let path = program(&["/no/such".to_string()]).unwrap_err();
        assert_eq!(
            path,
            "exec: \"/no/such\": stat /no/such: no such file or directory"
        );
        assert_eq!(exit_code(&path, 128), 127);
    }
}
