//! Finding running labs from other processes, without leaving anything behind on a crash.
//!
//! A lab held by a process (`drydock lab up`) answers on an abstract unix socket named
//! `drydock-lab/NAME`. The kernel removes an abstract socket with its last holder, so a killed
//! process leaves no entry to clean up. Clients ask for a description of the lab, or for a host's
//! namespace, which arrives as a file descriptor (SCM_RIGHTS) — together with the lab's user
//! namespace when the lab is rootless — or ask the lab to shut down.
//!
//! A *persistent* lab (`lab up --persist`) has no process: its namespaces are bind mounts under
//! `/run/netns` and its description is a JSON file under [`PERSISTENT_DIR`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lab::{Lab, persisted_name};
use crate::netns::Netns;
use crate::topology::Topology;
use crate::userns::Userns;

/// Where persistent labs keep their descriptions.
pub const PERSISTENT_DIR: &str = "/run/drydock/labs";
/// Where persistent labs' namespaces are mounted (as `ip netns` expects).
pub const NETNS_DIR: &str = "/run/netns";

const SOCKET_PREFIX: &str = "drydock-lab/";

/// What a lab says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabInfo {
    /// The topology with every address and route resolved.
    pub topology: Topology,
    /// The holding process, or `None` for a persistent lab.
    pub pid: Option<u32>,
    /// Built inside a user namespace by an unprivileged user.
    pub rootless: bool,
}

/// A host's namespace, ready to enter.
#[derive(Debug)]
pub struct HostNs {
    /// The host's network namespace.
    pub netns: Netns,
    /// The user namespace owning it, to join first, for rootless labs.
    pub userns: Option<Userns>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Describe,
    Netns { host: String },
    Down,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    info: Option<LabInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn socket_addr(name: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(format!("{SOCKET_PREFIX}{name}"))
}

/// Serves a lab's registry socket; dropping it withdraws the lab from the registry.
#[derive(Debug)]
pub struct Registration {
    listener: UnixListener,
}

impl Registration {
    /// Claims the lab's name. Fails if a lab of that name is up, held or persistent.
    pub fn claim(name: &str) -> io::Result<Self> {
        let in_use = || {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("a lab named {name:?} is already up (see `drydock lab ls`)"),
            )
        };
        if Path::new(PERSISTENT_DIR)
            .join(format!("{name}.json"))
            .exists()
        {
            return Err(in_use());
        }
        match UnixListener::bind_addr(&socket_addr(name)?) {
            Ok(listener) => Ok(Self { listener }),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(in_use()),
            Err(e) => Err(e),
        }
    }

    /// Answers clients until one asks the lab to go down (then returns). Blocking: run it on a
    /// thread of its own. Only clients of the same user are served.
    pub fn serve(&self, lab: &Lab, rootless: bool) -> io::Result<()> {
        let info = LabInfo {
            topology: lab.topology().clone(),
            pid: Some(std::process::id()),
            rootless,
        };
        let userns = if rootless {
            Some(Userns::current()?)
        } else {
            None
        };
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            match serve_one(stream, lab, &info, userns.as_ref()) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => tracing::debug!("registry client: {e}"),
            }
        }
        Ok(())
    }
}

/// Serves one client; true when it asked the lab to go down.
fn serve_one(
    stream: UnixStream,
    lab: &Lab,
    info: &LabInfo,
    userns: Option<&Userns>,
) -> io::Result<bool> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)?;
    if peer.uid() != nix::unistd::getuid().as_raw() {
        let message = format!(
            "permission denied: lab {:?} belongs to another user",
            lab.name()
        );
        return reply(&stream, &Reply::error(message), &[]).map(|_| false);
    }
    let request: Request = serde_json::from_str(&line).map_err(io::Error::other)?;
    match request {
        Request::Describe => reply(
            &stream,
            &Reply {
                info: Some(info.clone()),
                error: None,
            },
            &[],
        )?,
        Request::Netns { host } => match lab.host(&host) {
            Some(netns) => {
                let mut fds = vec![netns.as_fd().as_raw_fd()];
                fds.extend(userns.map(|u| u.as_fd().as_raw_fd()));
                reply(
                    &stream,
                    &Reply {
                        info: None,
                        error: None,
                    },
                    &fds,
                )?
            }
            None => {
                let known: Vec<&str> = lab.hosts().map(|(h, _)| h.name.as_str()).collect();
                let message = format!(
                    "lab {:?} has no host {host:?}; its hosts are {known:?}",
                    lab.name()
                );
                reply(&stream, &Reply::error(message), &[])?
            }
        },
        Request::Down => {
            reply(
                &stream,
                &Reply {
                    info: None,
                    error: None,
                },
                &[],
            )?;
            return Ok(true);
        }
    }
    Ok(false)
}

impl Reply {
    fn error(message: String) -> Self {
        Self {
            info: None,
            error: Some(message),
        }
    }
}

fn reply(stream: &UnixStream, reply: &Reply, fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[io::IoSlice::new(&line)],
        cmsgs,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// A lab as found by [`list`] or [`find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Held by a running process, reached through its socket.
    Held(String),
    /// Persistent: namespaces mounted under [`NETNS_DIR`].
    Persistent(String),
}

impl Entry {
    /// The lab's name.
    pub fn name(&self) -> &str {
        match self {
            Entry::Held(name) | Entry::Persistent(name) => name,
        }
    }

    /// The lab's description.
    pub fn describe(&self) -> io::Result<LabInfo> {
        match self {
            Entry::Held(name) => {
                let (reply, _) = request(name, &Request::Describe)?;
                reply
                    .info
                    .ok_or_else(|| io::Error::other("the lab sent no description"))
            }
            Entry::Persistent(name) => read_persistent(name),
        }
    }

    /// The namespace of `host`, with the user namespace to join for rootless labs.
    pub fn host(&self, host: &str) -> io::Result<HostNs> {
        match self {
            Entry::Held(name) => {
                let (_, fds) = request(
                    name,
                    &Request::Netns {
                        host: host.to_string(),
                    },
                )?;
                let mut fds = fds.into_iter();
                let netns = fds
                    .next()
                    .ok_or_else(|| io::Error::other("the lab sent no namespace"))?;
                Ok(HostNs {
                    netns: Netns::from_fd(netns),
                    userns: fds.next().map(Userns::from_fd),
                })
            }
            Entry::Persistent(name) => {
                let info = read_persistent(name)?;
                if info.topology.host(host).is_none() {
                    let known: Vec<&str> = info
                        .topology
                        .hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect();
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("lab {name:?} has no host {host:?}; its hosts are {known:?}"),
                    ));
                }
                let netns = Netns::open(Path::new(NETNS_DIR).join(persisted_name(name, host)))?;
                Ok(HostNs {
                    netns,
                    userns: None,
                })
            }
        }
    }

    /// Removes the lab: asks its process to stop and waits for it, or unmounts a persistent one.
    pub fn down(&self) -> io::Result<()> {
        match self {
            Entry::Held(name) => {
                request(name, &Request::Down)?;
                for _ in 0..100 {
                    if UnixStream::connect_addr(&socket_addr(name)?).is_err() {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("lab {name:?} did not go down within 5 s"),
                ))
            }
            Entry::Persistent(name) => remove_persistent(name),
        }
    }
}

/// Sends one request to a held lab; returns its reply and any descriptors that came with it.
fn request(name: &str, request: &Request) -> io::Result<(Reply, Vec<OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut stream = UnixStream::connect_addr(&socket_addr(name)?).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => io::Error::new(
            io::ErrorKind::NotFound,
            format!("no lab named {name:?} is up (see `drydock lab ls`)"),
        ),
        _ => e,
    })?;
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;

    let mut data = Vec::new();
    let mut fds = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 2]);
    loop {
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
        data.extend_from_slice(&buffer[..n]);
        if n == 0 || data.ends_with(b"\n") {
            break;
        }
    }
    let reply: Reply = serde_json::from_slice(&data)
        .map_err(|e| io::Error::other(format!("lab {name:?} answered garbage: {e}")))?;
    if let Some(error) = &reply.error {
        return Err(io::Error::other(error.clone()));
    }
    Ok((reply, fds))
}

/// Every lab that is up: held ones (from `/proc/net/unix`) and persistent ones, sorted by name.
pub fn list() -> io::Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = std::fs::read_to_string("/proc/net/unix")?
        .lines()
        .filter_map(|line| line.split_whitespace().nth(7))
        .filter_map(|path| path.strip_prefix('@')?.strip_prefix(SOCKET_PREFIX))
        .map(|name| Entry::Held(name.to_string()))
        .collect();
    if let Ok(dir) = std::fs::read_dir(PERSISTENT_DIR) {
        for file in dir.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(stem) = path.file_stem()
            {
                entries.push(Entry::Persistent(stem.to_string_lossy().into_owned()));
            }
        }
    }
    entries.sort_by(|a, b| a.name().cmp(b.name()));
    entries.dedup();
    Ok(entries)
}

/// The lab named `name`.
pub fn find(name: &str) -> io::Result<Entry> {
    list()?
        .into_iter()
        .find(|e| e.name() == name)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no lab named {name:?} is up (see `drydock lab ls`)"),
            )
        })
}

/// Makes `lab` persistent: mounts its namespaces and records its description. On error nothing
/// is left. The lab stays up after this process exits, until [`Entry::down`] or `drydock gc`.
pub fn persist(lab: &Lab) -> io::Result<PathBuf> {
    std::fs::create_dir_all(PERSISTENT_DIR)?;
    let state = Path::new(PERSISTENT_DIR).join(format!("{}.json", lab.name()));
    let mounts = lab.persist(Path::new(NETNS_DIR))?;
    let info = LabInfo {
        topology: lab.topology().clone(),
        pid: None,
        rootless: false,
    };
    let written = serde_json::to_vec_pretty(&info)
        .map_err(io::Error::other)
        .and_then(|json| write_atomically(&state, &json));
    if let Err(e) = written {
        for mount in &mounts {
            let _ = Netns::unpersist(mount);
        }
        return Err(e);
    }
    Ok(state)
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("json.tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

fn read_persistent(name: &str) -> io::Result<LabInfo> {
    let path = Path::new(PERSISTENT_DIR).join(format!("{name}.json"));
    let text = std::fs::read(&path)?;
    serde_json::from_slice(&text).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

fn remove_persistent(name: &str) -> io::Result<()> {
    let mut first_error = None;
    for path in persistent_mounts(Some(name))? {
        if let Err(e) = Netns::unpersist(&path) {
            first_error.get_or_insert(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        }
    }
    match std::fs::remove_file(Path::new(PERSISTENT_DIR).join(format!("{name}.json"))) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            first_error.get_or_insert(e);
        }
        _ => {}
    }
    first_error.map_or(Ok(()), Err)
}

/// Namespace mounts of persistent labs (of lab `name`, or of every lab).
fn persistent_mounts(name: Option<&str>) -> io::Result<Vec<PathBuf>> {
    let prefix = match name {
        Some(name) => persisted_name(name, ""),
        None => "drydock-".to_string(),
    };
    let mut mounts = Vec::new();
    match std::fs::read_dir(NETNS_DIR) {
        Ok(dir) => {
            for file in dir.flatten() {
                if file.file_name().to_string_lossy().starts_with(&prefix) {
                    mounts.push(file.path());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    mounts.sort();
    Ok(mounts)
}

/// Removes every persistent lab and any drydock namespace mount or state file a crashed run
/// left; returns what was removed. Labs held by a running process are left alone (they go when
/// their process does).
pub fn gc() -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in list()? {
        if let Entry::Persistent(name) = &entry {
            remove_persistent(name)?;
            removed.push(format!("persistent lab {name}"));
        }
    }
    for path in persistent_mounts(None)? {
        Netns::unpersist(&path)?;
        removed.push(format!("namespace mount {}", path.display()));
    }
    if let Ok(dir) = std::fs::read_dir(PERSISTENT_DIR) {
        for file in dir.flatten() {
            std::fs::remove_file(file.path())?;
            removed.push(format!("state file {}", file.path().display()));
        }
    }
    Ok(removed)
}
