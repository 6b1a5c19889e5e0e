//! Labs held by a process: the abstract unix socket `drydock-lab/NAME` and its small protocol.
//!
//! One JSON line per request and per reply; a host's namespace travels as a file descriptor
//! (SCM_RIGHTS), with the lab's user namespace when the lab is rootless. Both ends check the
//! other's credentials (SO_PEERCRED): a lab serves only its own user, and a client trusts only a
//! lab of its own user, since anyone can bind an abstract name. Every client gets a thread and a
//! timeout, so no client can stall the lab for others.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use nix::sched::CloneFlags;
use nix::sys::socket::{UnixCredentials, getsockopt, sockopt::PeerCredentials};
use serde::{Deserialize, Serialize};

use super::{HostFiles, HostNs, LabInfo, not_up, persistent};
use crate::lab::Lab;
use crate::netns::{Netns, is_namespace};
use crate::pidns::Pidns;
use crate::userns::Userns;

const SOCKET_PREFIX: &str = "drydock-lab/";
/// How long either end waits for the other before giving up on the connection.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request or reply line accepted.
const MAX_LINE: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Describe,
    Netns { host: String },
    Down,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
enum Reply {
    Info { info: LabInfo },
    Ok,
    Host { files: HostFiles },
    Error { message: String },
}

fn socket_addr(name: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(format!("{SOCKET_PREFIX}{name}"))
}

/// A lab's claim on its name; serving it answers other processes. Dropping it withdraws the lab.
#[derive(Debug)]
pub struct Registration {
    listener: UnixListener,
    /// Claimed by the holder of a persistent lab.
    persistent: bool,
}

impl Registration {
    /// Claims the lab's name. Fails if a lab of that name is up, held or persistent.
    pub fn claim(name: &str) -> io::Result<Self> {
        if persistent::exists(name) {
            return Err(in_use(name));
        }
        Self::bind(name, false).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => in_use(name),
            _ => e,
        })
    }

    /// Claims the name of persistent lab `name` for its holder. Fails if it is not persistent
    /// or already has a holder.
    pub fn claim_persistent(name: &str) -> io::Result<Self> {
        if !persistent::exists(name) {
            return Err(not_up(name));
        }
        Self::bind(name, true).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => io::Error::new(
                e.kind(),
                format!("persistent lab {name:?} already has a holder (see `drydock lab ls`)"),
            ),
            _ => e,
        })
    }

    /// Whether this is the claim of a persistent lab's holder.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    fn bind(name: &str, persistent: bool) -> io::Result<Self> {
        let listener = UnixListener::bind_addr(&socket_addr(name)?)?;
        Ok(Self {
            listener,
            persistent,
        })
    }

    /// Answers clients, each on a thread of its own, for as long as the listener works; hands
    /// out `files` and `pidns` (where processes started in the lab's hosts go) with each host's
    /// namespace, and calls `on_down` when a client asks the lab to go down. Only clients of
    /// this user are served.
    pub fn serve(
        &self,
        lab: &Lab,
        files: &HostFiles,
        pidns: &Pidns,
        on_down: &(dyn Fn() + Sync),
    ) -> io::Result<()> {
        let info = LabInfo {
            persistent: self.persistent,
            ..LabInfo::held(lab)
        };
        let userns = if info.rootless {
            Some(Userns::current()?)
        } else {
            None
        };
        std::thread::scope(|scope| {
            for stream in self.listener.incoming() {
                let stream = stream?;
                let (info, userns) = (&info, userns.as_ref());
                scope.spawn(move || {
                    let served = serve_client(&stream, lab, info, userns, files, pidns, on_down);
                    if let Err(e) = served {
                        tracing::debug!("registry client: {e}");
                    }
                });
            }
            Ok(())
        })
    }
}

fn serve_client(
    stream: &UnixStream,
    lab: &Lab,
    info: &LabInfo,
    userns: Option<&Userns>,
    files: &HostFiles,
    pidns: &Pidns,
    on_down: &(dyn Fn() + Sync),
) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    if peer(stream)?.uid() != nix::unistd::getuid().as_raw() {
        let message = format!(
            "permission denied: lab {:?} belongs to another user",
            lab.name()
        );
        return send(stream, &Reply::Error { message }, &[]);
    }
    let mut line = String::new();
    BufReader::new(stream.take(MAX_LINE)).read_line(&mut line)?;
    let request: Request = serde_json::from_str(&line).map_err(io::Error::other)?;
    match request {
        Request::Describe => send(stream, &Reply::Info { info: info.clone() }, &[]),
        Request::Netns { host } => match lab.host(&host) {
            Some(netns) => {
                let mut fds = vec![netns.as_fd().as_raw_fd(), pidns.as_fd().as_raw_fd()];
                fds.extend(userns.map(|u| u.as_fd().as_raw_fd()));
                let files = files.clone();
                send(stream, &Reply::Host { files }, &fds)
            }
            None => {
                let message = lab.topology().unknown_host(&host);
                send(stream, &Reply::Error { message }, &[])
            }
        },
        Request::Down => {
            // Go down even if the client has gone away meanwhile.
            let sent = send(stream, &Reply::Ok, &[]);
            on_down();
            sent
        }
    }
}

fn in_use(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("a lab named {name:?} is already up (see `drydock lab ls`)"),
    )
}

fn peer(stream: &UnixStream) -> io::Result<UnixCredentials> {
    Ok(getsockopt(stream, PeerCredentials)?)
}

fn send(stream: &UnixStream, reply: &Reply, fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    let iov = [io::IoSlice::new(&line)];
    let sent = sendmsg::<()>(stream.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
    // The descriptors went with the first byte; a partial write only leaves text to finish.
    (&*stream).write_all(&line[sent..])
}

/// Names of the held labs, from the kernel's table of unix sockets (`/proc/net/unix`).
pub(super) fn names() -> io::Result<Vec<String>> {
    Ok(std::fs::read_to_string("/proc/net/unix")?
        .lines()
        .filter_map(|line| line.split_whitespace().nth(7))
        .filter_map(|path| path.strip_prefix('@')?.strip_prefix(SOCKET_PREFIX))
        .map(String::from)
        .collect())
}

pub(super) fn describe(name: &str) -> io::Result<LabInfo> {
    match exchange(name, &Request::Describe)?.0 {
        Reply::Info { info } => Ok(info),
        _ => Err(garbage(name, "a reply without a description")),
    }
}

pub(super) fn host(name: &str, host: &str) -> io::Result<HostNs> {
    let request = Request::Netns {
        host: host.to_string(),
    };
    let (reply, fds, _) = exchange(name, &request)?;
    let Reply::Host { files } = reply else {
        return Err(garbage(name, "a reply without the host's files"));
    };
    let mut fds = fds.into_iter();
    let netns = fds.next().ok_or_else(|| garbage(name, "no namespace"))?;
    check_namespace(netns.as_fd(), CloneFlags::CLONE_NEWNET, name)?;
    let pidns = fds
        .next()
        .ok_or_else(|| garbage(name, "no PID namespace"))?;
    check_namespace(pidns.as_fd(), CloneFlags::CLONE_NEWPID, name)?;
    let userns = match fds.next() {
        Some(fd) => {
            check_namespace(fd.as_fd(), CloneFlags::CLONE_NEWUSER, name)?;
            Some(Userns::from_fd(fd))
        }
        None => None,
    };
    Ok(HostNs {
        netns: Netns::from_fd(netns),
        userns,
        files,
        pidns: Some(Pidns::from_fd(pidns)),
    })
}

pub(super) fn down(name: &str) -> io::Result<()> {
    let (_, _, pid) = exchange(name, &Request::Down)?;
    // The lab is down when its holder has exited: its namespace descriptors are closed.
    if wait_for_exit(pid, TIMEOUT)? {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("lab {name:?} (pid {pid}) did not go down within {TIMEOUT:?}"),
        ))
    }
}

/// Sends one request to a held lab of this user; returns its reply, the descriptors that came
/// with it and the holder's pid.
fn exchange(name: &str, request: &Request) -> io::Result<(Reply, Vec<OwnedFd>, i32)> {
    let stream = UnixStream::connect_addr(&socket_addr(name)?).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => not_up(name),
        _ => e,
    })?;
    let holder = peer(&stream)?;
    if holder.uid() != nix::unistd::geteuid().as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "lab {name:?} is held by another user (uid {})",
                holder.uid()
            ),
        ));
    }
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let (reply, fds) = receive(&stream, name)?;
    match reply {
        Reply::Error { message } => Err(io::Error::other(message)),
        reply => Ok((reply, fds, holder.pid())),
    }
}

/// Reads one reply line and the descriptors that arrive with it.
fn receive(stream: &UnixStream, name: &str) -> io::Result<(Reply, Vec<OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut data = Vec::new();
    let mut fds = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 3]);
    while !data.ends_with(b"\n") && (data.len() as u64) < MAX_LINE {
        let mut iov = [io::IoSliceMut::new(&mut buffer)];
        let message = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        for control in message.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = control {
                // SAFETY: SCM_RIGHTS hands this process fresh descriptors that nothing else owns.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let n = message.bytes;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..n]);
    }
    let reply = serde_json::from_slice(&data).map_err(|e| garbage(name, &e.to_string()))?;
    Ok((reply, fds))
}

fn garbage(name: &str, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("lab {name:?} answered garbage: {what}"),
    )
}

/// Checks that `fd` is a namespace of the expected type.
fn check_namespace(fd: BorrowedFd<'_>, expected: CloneFlags, name: &str) -> io::Result<()> {
    if is_namespace(fd, expected) {
        Ok(())
    } else {
        Err(garbage(
            name,
            "a descriptor that is not the expected namespace",
        ))
    }
}

/// Waits until process `pid` has exited (or `timeout` passes); true when it has.
fn wait_for_exit(pid: i32, timeout: Duration) -> io::Result<bool> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        let error = io::Error::last_os_error();
        // ESRCH: it is already gone.
        return if error.raw_os_error() == Some(libc::ESRCH) {
            Ok(true)
        } else {
            Err(error)
        };
    }
    // SAFETY: pidfd_open returned a fresh descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    let mut poll = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one live pollfd, as the count says.
    let ready = unsafe { libc::poll(&mut poll, 1, millis) };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ready == 1)
}
