//! The process that holds a lab: it serves each lab host's engine on its Engine API socket
//! (`engines.rs`), the lab's DNS (`lab_dns.rs`), the lab's PID namespace and the lab's registry
//! socket, until `lab down` or a signal.
//!
//! `lab up` holds its lab itself, in the foreground, and the lab goes with it. `lab up
//! --persist` mounts the lab, then starts its holder in the background: this binary again
//! (`drydock lab hold LAB`, hidden), in a session of its own, its output to the lab's log,
//! which opens the lab from its mounts; `lab up` returns once the holder serves, and removes
//! the lab when it cannot. The mounts outlive the holder: when it dies, what it served goes
//! (the engines' containers, which live in its memory; the DNS; what runs in the lab's PID
//! namespace), and the lab's namespaces stay until `lab down` or `gc`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use drydock_netsim::Lab;
use drydock_netsim::pidns::Reaper;
use drydock_netsim::registry::{self, Registration, persistent};

use super::engines::{Engines, gc_sockets, gc_state, remove_sockets, sockets_root};
use super::lab_dns::LabDns;

/// What a holder writes on the pipe of `--ready-fd` once it serves.
const READY: &[u8] = b"ready\n";

/// How long `lab up --persist` waits for its holder to serve.
const HOLDER_START: Duration = Duration::from_secs(30);

/// Serves the lab's registry socket, its hosts' Engine API sockets and DNS, and its PID
/// namespace until a signal or `lab down`; then the lab goes with us, unless it is persistent.
/// Once everything serves, says so on `ready` (and closes it).
pub(crate) fn hold(
    lab: Lab,
    registration: Registration,
    runtime: &tokio::runtime::Runtime,
    sockets: &Path,
    ready: Option<File>,
) -> anyhow::Result<ExitCode> {
    let (down_tx, mut down_rx) = tokio::sync::mpsc::unbounded_channel();
    let lab = Arc::new(lab);
    let served = Arc::clone(&lab);
    if let Err(e) = gc_state().and_then(|_| gc_sockets()) {
        tracing::warn!("cannot remove engine state of dead labs: {e}");
    }
    // Each host's engine serves the Engine API on a socket; their tasks run on this runtime,
    // driven below.
    let (engines, dns) = {
        let _entered = runtime.enter();
        let engines = Engines::serve(Arc::clone(&lab), sockets)?;
        (engines, LabDns::start(&lab)?)
    };
    let files = dns.files();
    // Where `lab exec` starts its processes: they end with the holder, even on SIGKILL.
    let reaper = Reaper::start().context("the lab's PID namespace")?;
    let pidns = reaper.pidns().clone();
    let persistent = registration.is_persistent();
    std::thread::spawn(move || {
        let on_down = move || {
            let _ = down_tx.send(());
        };
        if let Err(e) = registration.serve(&served, &files, &pidns, &on_down) {
            tracing::error!("registry socket: {e}");
        }
    });
    if let Some(mut ready) = ready {
        eprintln!(
            "holding lab {} (pid {}): its engines on {}",
            lab.name(),
            std::process::id(),
            sockets.join(lab.name()).display()
        );
        ready.write_all(READY).context("--ready-fd")?;
    }
    let asked_down = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        anyhow::Ok(tokio::select! {
            _ = tokio::signal::ctrl_c() => false,
            _ = terminate.recv() => false,
            _ = hangup.recv() => false,
            _ = down_rx.recv() => true,
        })
    })?;
    // Every process started in the lab's hosts is killed; this waits for them (2 s at most).
    drop(reaper);
    // Exiting closes every namespace descriptor: the kernel removes the lab, unless mounts
    // keep it.
    engines.remove_files();
    drop(dns);
    match (persistent, asked_down) {
        (true, false) => eprintln!(
            "the holder of lab {0} ends: its engines and DNS go, its namespaces stay (`drydock lab down {0}` removes them)",
            lab.name()
        ),
        _ => eprintln!("lab {} is down", lab.name()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `drydock lab hold LAB [--ready-fd N]`: holds persistent lab `name`, opened from its mounts,
/// as [`hold`]; says so on the pipe `lab up --persist` gave.
pub(crate) fn run(name: &str, ready_fd: Option<RawFd>) -> anyhow::Result<ExitCode> {
    let ready = ready_fd.map(adopt).transpose()?;
    let registration = Registration::claim_persistent(name)?;
    let lab = persistent::open(name).with_context(|| format!("persistent lab {name}"))?;
    let runtime = super::runtime()?;
    hold(lab, registration, &runtime, &sockets_root(), ready)
}

/// Takes the pipe of `--ready-fd`, which the holder's children must not inherit.
fn adopt(fd: RawFd) -> anyhow::Result<File> {
    if fd <= 2 {
        bail!("--ready-fd {fd}: expected a pipe's descriptor, not standard input or output");
    }
    // SAFETY: fcntl only sets the descriptor's flags, and fails when it is not open.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        let error = std::io::Error::last_os_error();
        bail!("--ready-fd {fd}: {error}");
    }
    // SAFETY: the descriptor is open (above) and was made for this process by its parent;
    // nothing else here uses it.
    let file = unsafe { File::from_raw_fd(fd) };
    if !std::os::unix::fs::FileTypeExt::is_fifo(&file.metadata()?.file_type()) {
        // Not ours to close.
        let _ = std::os::fd::IntoRawFd::into_raw_fd(file);
        bail!("--ready-fd {fd}: not a pipe");
    }
    Ok(file)
}

/// Starts the holder of persistent lab `name`, just persisted, in the background, and returns
/// its pid once it serves. When it cannot, nothing is left (holder, mounts, description, log),
/// and the error says why, with what the holder logged.
pub(crate) fn start(name: &str) -> anyhow::Result<u32> {
    let (pipe, mut child) = match spawn(name) {
        Ok(spawned) => spawned,
        Err(e) => return Err(abandon(name, None, e)),
    };
    match wait_ready(pipe) {
        Ok(()) => Ok(child.id()),
        Err(e) => Err(abandon(name, Some(&mut child), e)),
    }
}

/// After persistent lab `name`'s holder failed to start: kills it, removes the lab and what the
/// holder left, and returns the error, with what the holder logged.
fn abandon(name: &str, child: Option<&mut Child>, error: anyhow::Error) -> anyhow::Error {
    if let Some(child) = child {
        // A holder that fails closes the pipe on its way out: it may still be saying why.
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let logged = std::fs::read_to_string(persistent::log_file(name)).unwrap_or_default();
    let mut message = format!("the holder of persistent lab {name} did not start: {error:#}");
    if !logged.trim().is_empty() {
        message.push_str(&format!("; it said: {}", logged.trim()));
    }
    let removed = registry::find(name).and_then(|lab| lab.down());
    // The sockets and files of the holder, dead now.
    let collected = remove_sockets(&sockets_root(), name).and_then(|()| gc_state());
    match (removed, collected) {
        (Ok(_), Ok(_)) => message.push_str(&format!("; lab {name} is removed")),
        (Err(e), _) | (_, Err(e)) => {
            message.push_str(&format!("; removing lab {name} failed too: {e}"))
        }
    }
    anyhow::anyhow!("{message}")
}

/// Starts `drydock lab hold NAME --ready-fd N` in a session of its own, its output to the lab's
/// log; returns our end of its ready pipe, and the child.
fn spawn(name: &str) -> anyhow::Result<(File, Child)> {
    let log = persistent::log_file(name);
    let output = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let (ours, theirs) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let fd = theirs.as_raw_fd();
    let binary = std::env::current_exe().context("this program's path")?;
    let mut command = Command::new(&binary);
    command
        .args(["lab", "hold", name, "--ready-fd", &fd.to_string()])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output);
    // SAFETY: setsid and fcntl only, which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // Away from our terminal and its signals; the pipe stays open across exec.
            if libc::setsid() < 0 || libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    // Only the holder has the write end now: its death is our end of file.
    drop(theirs);
    Ok((File::from(ours), child))
}

/// Waits until the holder says it serves, dies, or [`HOLDER_START`] passes.
fn wait_ready(mut pipe: File) -> anyhow::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + HOLDER_START;
    let mut said = Vec::new();
    while !said.ends_with(b"\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => bail!("it did not serve within {HOLDER_START:?}"),
            Err(nix::errno::Errno::EINTR) => continue,
            other => other?,
        };
        let mut buffer = [0; 64];
        match pipe.read(&mut buffer)? {
            0 => break,
            n => said.extend_from_slice(&buffer[..n]),
        }
    }
    match said == READY {
        true => Ok(()),
        false => bail!("it ended before serving"),
    }
}
