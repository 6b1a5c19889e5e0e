//! Rootless operation: user namespaces and privilege checks.
//!
//! An unprivileged user gets the capabilities a lab needs by entering a new user namespace in
//! which it is root. The kernel only allows that while the process has a single thread, so the
//! CLI does it first thing in `main`, before any runtime or worker thread starts.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::sched::{CloneFlags, setns, unshare};
use nix::unistd::{getegid, geteuid};

/// Capability numbers from `linux/capability.h`.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// True when the process holds CAP_NET_ADMIN and CAP_SYS_ADMIN in its current user namespace,
/// i.e. it can create namespaces and links without entering a user namespace first.
pub fn is_privileged() -> bool {
    effective_caps()
        .is_ok_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0 && caps & (1 << CAP_SYS_ADMIN) != 0)
}

fn effective_caps() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status")?;
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .ok_or_else(|| io::Error::other("no CapEff line in /proc/thread-self/status"))?;
    u64::from_str_radix(hex.trim(), 16).map_err(io::Error::other)
}

/// Enters a new user namespace in which the caller's uid and gid map to root.
///
/// Must be called while the process is single-threaded (the kernel refuses otherwise).
pub fn enter_new() -> io::Result<()> {
    let (uid, gid) = (geteuid(), getegid());
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("cannot create a user namespace for rootless operation: {e}"),
        )
    })?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// A user namespace held by an owned file descriptor, such as a rootless lab's.
#[derive(Debug, Clone)]
pub struct Userns {
    fd: Arc<OwnedFd>,
}

impl Userns {
    /// The user namespace of the calling process (`/proc/self/ns/user`).
    pub fn current() -> io::Result<Self> {
        Ok(Self::from_fd(File::open("/proc/self/ns/user")?.into()))
    }

    /// Wraps an open user namespace descriptor (for example one received over a unix socket).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd: Arc::new(fd) }
    }

    /// Makes the calling process join this namespace. Must be called while the process is
    /// single-threaded (the kernel refuses otherwise).
    pub fn join(&self) -> io::Result<()> {
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("cannot join the lab's user namespace: {e}"),
            )
        })
    }
}

impl AsFd for Userns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// True when the calling process is in the machine's initial user namespace.
pub fn in_initial() -> io::Result<bool> {
    // The initial namespace maps the full uid range: "0 0 4294967295".
    let map = std::fs::read_to_string("/proc/self/uid_map")?;
    Ok(map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// For test harnesses: true when the process may create namespaces and links. Without the
/// privileges it returns false (the caller skips) on a developer machine, but panics when `CI` is
/// set, where every test must run rather than silently pass.
pub fn privileged_or_skip() -> bool {
    if is_privileged() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "this test needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root); CI must not skip it"
    );
    eprintln!("skipped: needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)");
    false
}
