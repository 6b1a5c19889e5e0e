//! PID namespaces for what runs in a held lab's hosts.
//!
//! This is the only module that calls `setns`/`unshare(CLONE_NEWPID)`. A [`Reaper`] makes a PID
//! namespace whose init is a child of this process, forked (no program is run), that lives
//! until the reaper's end of a pipe closes: when the reaper is dropped, or when this process
//! dies, even by SIGKILL. When the init of a PID namespace dies, the kernel kills every process
//! in it: so everything started there ends, daemons that forked away included, and with them
//! the network namespaces they kept alive. Other processes start theirs there through the
//! namespace's descriptor ([`Pidns::spawn`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, pipe2};

/// A PID namespace held by a file descriptor, to start processes in.
#[derive(Debug, Clone)]
pub struct Pidns {
    fd: Arc<OwnedFd>,
}

impl Pidns {
    /// Wraps an open PID namespace descriptor (for example one received over a unix socket).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd: Arc::new(fd) }
    }

    /// Spawns `command` with its process in this namespace, seeing the namespace's own `/proc`
    /// (mounted in a mount namespace of the child's own; where that cannot be, it sees the
    /// machine's). A short-lived thread enters the namespace before the fork, so the caller
    /// needs CAP_SYS_ADMIN over the namespace's user namespace: a process outside a rootless
    /// lab joins the lab's user namespace first.
    pub fn spawn(&self, command: &mut Command) -> io::Result<Child> {
        // SAFETY: the closure only makes system calls with static strings; it allocates nothing.
        unsafe {
            command.pre_exec(|| {
                mount_proc();
                Ok(())
            })
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(self.fd.as_fd(), CloneFlags::CLONE_NEWPID).map_err(|e| {
                        io::Error::new(
                            io::Error::from(e).kind(),
                            format!("cannot enter the lab's PID namespace: {e}"),
                        )
                    })?;
                    command.spawn()
                })
                .join()
                .map_err(|_| io::Error::other("spawning thread panicked"))?
        })
    }
}

impl AsFd for Pidns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// How long dropping a [`Reaper`] waits for its namespace to empty.
const REAPED: Duration = Duration::from_secs(2);

/// A new PID namespace and its init; everything in the namespace is killed when the reaper is
/// dropped, or when this process dies.
#[derive(Debug)]
pub struct Reaper {
    pidns: Pidns,
    /// The write end of the init's pipe: the init lives until it closes.
    lifeline: Option<OwnedFd>,
    /// Hears when the init is gone, and with it every process of its namespace.
    reaped: Receiver<()>,
}

impl Reaper {
    /// Makes the namespace and forks its init.
    pub fn start() -> io::Result<Self> {
        let (read, lifeline) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (started, forked) = std::sync::mpsc::channel();
        let (gone, reaped) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("pidns-init".into())
            .spawn(move || {
                let forked = (|| -> io::Result<_> {
                    // Only this thread's children go to the new namespace.
                    unshare(CloneFlags::CLONE_NEWPID)?;
                    // SAFETY: the child only makes async-signal-safe system calls, then exits.
                    match unsafe { fork() }? {
                        ForkResult::Child => init(read.as_raw_fd()),
                        ForkResult::Parent { child } => Ok(child),
                    }
                })();
                drop(read);
                let child = match forked {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                // The namespace can be opened once it has its init.
                let opened = File::open("/proc/thread-self/ns/pid_for_children").map(OwnedFd::from);
                let _ = started.send(opened);
                // Returns once the init is gone, and with it every process of its namespace.
                let _ = waitpid(child, None);
                let _ = gone.send(());
            })?;
        let fd = forked
            .recv()
            .map_err(|_| io::Error::other("the PID namespace's thread panicked"))?
            .map_err(|e| io::Error::new(e.kind(), format!("cannot make a PID namespace: {e}")))?;
        Ok(Self {
            pidns: Pidns::from_fd(fd),
            lifeline: Some(lifeline),
            reaped,
        })
    }

    /// The namespace, to start processes in and to hand to other processes.
    pub fn pidns(&self) -> &Pidns {
        &self.pidns
    }
}

impl Drop for Reaper {
    /// Ends the init, and returns once every process of the namespace is gone, or after two
    /// seconds: the kernel has killed them all by then, but a killed process whose parent
    /// is outside the namespace stays a zombie (holding nothing but its pid) until that parent,
    /// or the machine's init if it is dead, reaps it, and the init waits for that.
    fn drop(&mut self) {
        self.lifeline = None;
        let _ = self.reaped.recv_timeout(REAPED);
    }
}

/// The init of a reaper's namespace: keeps no descriptor but the read end of its lifeline,
/// lets the kernel reap what is left to it (SIGCHLD ignored), and exits when the lifeline's
/// other end closes.
fn init(lifeline: RawFd) -> ! {
    // SAFETY: async-signal-safe system calls only, in the child of a fork.
    unsafe {
        let all = libc::c_uint::MAX;
        let fd = lifeline as libc::c_uint;
        if fd > 0 {
            libc::syscall(libc::SYS_close_range, 0, fd - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, fd + 1, all, 0);
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        let mut byte = 0u8;
        loop {
            let n = libc::read(lifeline, (&raw mut byte).cast(), 1);
            if n >= 0 || *libc::__errno_location() != libc::EINTR {
                libc::_exit(0);
            }
        }
    }
}

/// In a mount namespace of its own, mounts a `/proc` of the current PID namespace over the
/// machine's, so that the pids a process reads there are the ones it can signal. Best effort;
/// for a child between fork and exec.
fn mount_proc() {
    // SAFETY: plain system calls with static NUL-terminated strings.
    unsafe {
        // A mount namespace of its own even when the command made none: the mount must never
        // reach the machine's.
        if libc::unshare(libc::CLONE_NEWNS) != 0
            || libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_SLAVE | libc::MS_REC,
                std::ptr::null(),
            ) != 0
        {
            return;
        }
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        );
    }
}
