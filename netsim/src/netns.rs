//! Network namespaces owned by file descriptors.
//!
//! This is the only module that calls `setns`/`unshare(CLONE_NEWNET)`. A [`Netns`] is an open
//! nsfs file descriptor: the namespace lives exactly as long as some descriptor (or process) holds
//! it, so dropping a lab, a panic or SIGKILL lets the kernel destroy everything in it.
//!
//! Code runs inside a namespace only on a short-lived std thread that entered it ([`Netns::run`]);
//! sockets opened there keep their namespace and can be used from anywhere, including async tasks.
//! No thread ever has to switch back, so no error path can leave a thread in the wrong namespace.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use nix::sched::{CloneFlags, setns, unshare};

use crate::userns::Userns;

/// An anonymous (or opened) network namespace, held alive by an owned file descriptor.
#[derive(Debug, Clone)]
pub struct Netns {
    fd: Arc<OwnedFd>,
}

impl Netns {
    /// Creates a new, empty network namespace (only `lo`, down) owned by the returned value.
    pub fn new() -> io::Result<Self> {
        std::thread::spawn(|| -> io::Result<Self> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            Self::open("/proc/thread-self/ns/net")
        })
        .join()
        .map_err(|_| io::Error::other("namespace creation thread panicked"))?
    }

    /// Opens the network namespace at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`, ...).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Self::from_fd(file.into()))
    }

    /// Wraps an already open namespace descriptor (for example one received over a unix socket).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd: Arc::new(fd) }
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result.
    ///
    /// Everything `f` opens (sockets, netlink, AF_PACKET, TAP) stays bound to this namespace after
    /// the thread ends. `f` must not spawn threads that outlive it expecting the namespace.
    pub fn run<F, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| -> io::Result<R> {
                setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(f())
            });
            match worker.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// An rtnetlink handle whose socket lives in this namespace.
    ///
    /// Must be called inside a tokio runtime: the connection is a task on it. The socket (which
    /// keeps the namespace alive) closes once every clone of the handle is gone and the runtime
    /// next runs the task; [`Netlink::close`] waits for that.
    pub fn netlink(&self) -> io::Result<Netlink> {
        use netlink_sys::{AsyncSocket, TokioSocket};
        let socket =
            self.run(|| netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE))??;
        // SAFETY: the descriptor was just released by `into_raw_fd`, so it is owned exactly once.
        let socket = unsafe { TokioSocket::from_raw_fd(socket.into_raw_fd()) };
        socket.socket_ref().set_ext_ack(true)?;
        let (connection, handle, _) = rtnetlink::from_socket(socket);
        Ok(Netlink {
            handle,
            connection: tokio::spawn(connection),
        })
    }

    /// A command that will run inside this namespace (entered between fork and exec).
    ///
    /// Like `ip netns exec`, the child also gets a mount namespace of its own with a fresh
    /// `/sys`, so that `/sys/class/net` shows this namespace's interfaces (best effort: where
    /// sysfs cannot be mounted, the child still runs, seeing the old `/sys`). When `userns` is
    /// given, the child joins that user namespace first: this is how a process outside a
    /// rootless lab's user namespace runs commands in its hosts.
    pub fn command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        userns: Option<&Userns>,
    ) -> Command {
        let mut command = Command::new(program);
        let net = Arc::clone(&self.fd);
        let user = userns.cloned();
        // SAFETY: the closure only makes system calls (setns, unshare, mount), which are
        // async-signal-safe, with static strings: it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if let Some(user) = &user {
                    setns(user.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(io::Error::from)?;
                }
                setns(net.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                remount_sysfs();
                Ok(())
            });
        }
        command
    }

    /// Makes the namespace outlive this process by bind-mounting it at `path`, which must not
    /// exist yet.
    pub fn persist(&self, path: &Path) -> io::Result<()> {
        use nix::mount::{MsFlags, mount};
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let source = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let result = mount(
            Some(source.as_str()),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        );
        if let Err(errno) = result {
            let _ = std::fs::remove_file(path);
            return Err(errno.into());
        }
        Ok(())
    }

    /// Removes a namespace bind mount made by [`Netns::persist`]; the namespace dies with its last
    /// other reference.
    pub fn unpersist(path: &Path) -> io::Result<()> {
        use nix::mount::{MntFlags, umount2};
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(errno) => return Err(errno.into()),
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// True when `fd` is a namespace of type `kind` (`NS_GET_NSTYPE`): a file that should be one
/// (received from another process, or a mount point under `/run/netns`) may be anything.
pub fn is_namespace(fd: BorrowedFd<'_>, kind: CloneFlags) -> bool {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor.
    let found = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    found == kind.bits()
}

/// An rtnetlink handle (it derefs to [`rtnetlink::Handle`]) and its connection task.
#[derive(Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
    connection: tokio::task::JoinHandle<()>,
}

impl Netlink {
    /// Drops the handle and waits until the connection has closed its socket, so that nothing
    /// of ours keeps the namespace alive any more.
    pub async fn close(self) {
        drop(self.handle);
        // The task ends by itself once its handles are gone; it cannot panic.
        let _ = self.connection.await;
    }
}

impl std::ops::Deref for Netlink {
    type Target = rtnetlink::Handle;
    fn deref(&self) -> &rtnetlink::Handle {
        &self.handle
    }
}

/// In a mount namespace of its own, replaces `/sys` with a sysfs of the current network
/// namespace, as `ip netns exec` does. Best effort; for a child between fork and exec.
fn remount_sysfs() {
    // SAFETY: plain system calls with static NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return;
        }
        // Keep our mounts from propagating back to the machine's mount namespace.
        let root = c"/".as_ptr();
        if libc::mount(
            std::ptr::null(),
            root,
            std::ptr::null(),
            libc::MS_SLAVE | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            return;
        }
        let sys = c"/sys".as_ptr();
        libc::umount2(sys, libc::MNT_DETACH);
        libc::mount(
            c"sysfs".as_ptr(),
            sys,
            c"sysfs".as_ptr(),
            0,
            std::ptr::null(),
        );
    }
}

/// Index of interface `name` in the calling thread's namespace (call it inside [`Netns::run`]).
pub fn ifindex(name: &str) -> io::Result<u32> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cname` is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(cname.as_ptr()) } {
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name:?}"),
        )),
        index => Ok(index),
    }
}

/// Writes a sysctl of the calling thread's namespace (call it inside [`Netns::run`]); `key` is the
/// path under `/proc/sys`, e.g. `net/ipv4/ip_forward` (slashes, since interface names hold dots).
pub fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}
