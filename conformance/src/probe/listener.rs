//! Listeners opened inside a namespace, so that probes have something to answer them.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use drydock_netsim::Netns;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::http;
use super::sock;

/// How long a connection may take to send its HTTP request head, and how long a closing
/// connection lingers for the client's end (so that closing never sends a reset).
const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// What a [`Listener`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenKind {
    /// TCP: every connection gets `"{banner}\n"`, then is closed.
    Tcp,
    /// UDP: every datagram is answered with the banner.
    Udp,
    /// HTTP over TCP: every request gets `200 OK`, `text/plain`, body `"{banner}\n"`.
    Http,
}

impl fmt::Display for ListenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Http => "http",
        })
    }
}

/// A server on one port of a namespace (`0.0.0.0:port`, and `[::]:port` when the namespace has
/// IPv6), serving from tasks on the tokio runtime that opened it until it is dropped.
///
/// Dropping it stops everything: TCP listening sockets are shut down at once (the port can be
/// bound again immediately), and the serving tasks are aborted, which closes every socket (UDP,
/// accepted connections) as soon as the runtime next runs them. [`Listener::close`] does the
/// same and returns only once every socket is closed: use it when the namespace must go away.
///
/// Sockets are bound with `SO_REUSEADDR` (so a port can be re-bound while the old sockets are
/// still closing); for UDP this also means that two live UDP listeners may share a port.
#[derive(Debug)]
pub struct Listener {
    kind: ListenKind,
    port: u16,
    tasks: Vec<JoinHandle<()>>,
    /// Duplicates of the TCP listening sockets, to shut them down from `drop`.
    listening: Vec<Socket>,
    /// Dropping it tells the tasks to stop.
    stop: Option<watch::Sender<()>>,
}

impl Listener {
    /// Opens a `kind` listener on `port` (0: any free port, see [`Listener::port`]) inside
    /// `netns`, answering with `banner`.
    ///
    /// Must be called inside a tokio runtime (it spawns the serving tasks there). IPv6 is
    /// skipped where the namespace has none (`EADDRNOTAVAIL`, `EAFNOSUPPORT`).
    pub fn open(netns: &Netns, kind: ListenKind, port: u16, banner: String) -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("Listener::open must be called inside a tokio runtime")
        })?;
        let (stop, stopped) = watch::channel(());
        let mut listener = Self {
            kind,
            port,
            tasks: Vec::new(),
            listening: Vec::new(),
            stop: Some(stop),
        };
        let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        let socket = bind(netns, kind, v4).map_err(|e| context(e, v4, kind))?;
        let port = match socket.local_addr()?.as_socket() {
            Some(bound) => bound.port(),
            None => port,
        };
        listener.port = port;
        let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        let socket6 = match bind(netns, kind, v6) {
            Ok(socket) => Some(socket),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
                ) =>
            {
                None
            }
            Err(e) => return Err(context(e, v6, kind)),
        };

        let banner = format!("{banner}\n");
        let response: Arc<[u8]> = match kind {
            ListenKind::Tcp | ListenKind::Udp => banner.into_bytes().into(),
            ListenKind::Http => http::ok_response(&banner).into(),
        };
        // From here on an error drops `listener`, which stops the tasks already spawned.
        for socket in [Some(socket), socket6].into_iter().flatten() {
            let stopped = stopped.clone();
            let response = Arc::clone(&response);
            let task = match kind {
                ListenKind::Tcp | ListenKind::Http => {
                    listener.listening.push(socket.try_clone()?);
                    let tcp = TcpListener::from_std(socket.into())?;
                    runtime.spawn(serve_tcp(tcp, response, kind, stopped))
                }
                ListenKind::Udp => {
                    let udp = UdpSocket::from_std(socket.into())?;
                    runtime.spawn(serve_udp(udp, response, stopped))
                }
            };
            listener.tasks.push(task);
        }
        tracing::debug!("listening on port {port}/{kind}");
        Ok(listener)
    }

    /// The port listened on (the one chosen by the kernel when opened with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What this listener serves.
    pub fn kind(&self) -> ListenKind {
        self.kind
    }

    /// Stops serving, and returns once every socket of this listener is closed.
    pub async fn close(mut self) {
        self.stop_now();
        for task in std::mem::take(&mut self.tasks) {
            // A task ends by itself once told to stop; it has no error to report.
            let _ = task.await;
        }
    }

    /// Tells the tasks to stop, and shuts the TCP listening sockets down.
    fn stop_now(&mut self) {
        self.stop = None;
        for socket in self.listening.drain(..) {
            // Stops listening at once, freeing the port, though the task still holds the socket.
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop_now();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Adds the address and kind to a bind error, keeping its kind.
fn context(error: io::Error, addr: SocketAddr, kind: ListenKind) -> io::Error {
    io::Error::new(error.kind(), format!("listen on {addr}/{kind}: {error}"))
}

/// A socket of `kind` in `netns`, bound to `addr` (and listening, for TCP).
fn bind(netns: &Netns, kind: ListenKind, addr: SocketAddr) -> io::Result<Socket> {
    let udp = kind == ListenKind::Udp;
    let ty = if udp { Type::DGRAM } else { Type::STREAM };
    let socket = sock::socket_in(netns, Domain::for_address(addr), ty, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if udp {
        // Learn each datagram's destination address, to answer from it.
        match addr {
            SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)?,
            SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?,
        }
    }
    socket.bind(&SockAddr::from(addr))?;
    if !udp {
        socket.listen(1024)?;
    }
    Ok(socket)
}

async fn serve_tcp(
    listener: TcpListener,
    response: Arc<[u8]>,
    kind: ListenKind,
    mut stop: watch::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer_tcp(stream, Arc::clone(&response), kind));
                }
                // Shut down by `Listener::drop`.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => {
                    // EMFILE and the like: wait a little rather than spin.
                    tracing::debug!("listener {kind}: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Serves one connection: reads the request head (HTTP), writes `response`, and closes
/// gracefully (waiting for the client's end so that unread data never turns into a reset).
async fn answer_tcp(stream: TcpStream, response: Arc<[u8]>, kind: ListenKind) {
    let mut buf = Vec::new();
    let served = async {
        if kind == ListenKind::Http {
            while http::head_end(&buf).is_none() {
                if sock::read_some(&stream, &mut buf, 64 * 1024).await? == 0 {
                    break;
                }
            }
        }
        sock::write_all(&stream, &response).await?;
        SockRef::from(&stream).shutdown(std::net::Shutdown::Write)?;
        buf.clear();
        while sock::read_some(&stream, &mut buf, 64 * 1024).await? > 0 {
            buf.clear();
        }
        io::Result::Ok(())
    };
    // Past the wait, the connection is simply closed.
    if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_WAIT, served).await {
        tracing::debug!("listener {kind}: connection: {e}");
    }
}

async fn serve_udp(socket: UdpSocket, response: Arc<[u8]>, mut stop: watch::Receiver<()>) {
    let fd = socket.as_raw_fd();
    let mut buf = vec![0u8; 65536];
    loop {
        let received = tokio::select! {
            _ = stop.changed() => break,
            received = socket.async_io(Interest::READABLE, || recv_with_pktinfo(fd, &mut buf)) => received,
        };
        let (peer, pktinfo) = match received {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!("listener udp: recvmsg: {e}");
                continue;
            }
        };
        let reply = socket
            .async_io(Interest::WRITABLE, || {
                send_from(fd, &response, &peer, pktinfo.as_ref())
            })
            .await;
        if let Err(e) = reply {
            tracing::debug!("listener udp: reply to {peer}: {e}");
        }
    }
}

/// The local end of a received datagram, from `IP_PKTINFO`/`IPV6_PKTINFO`.
#[derive(Clone, Copy)]
enum Pktinfo {
    V4(libc::in_pktinfo),
    V6(libc::in6_pktinfo),
}

/// Receives one datagram; returns its sender and local address.
fn recv_with_pktinfo(fd: RawFd, buf: &mut [u8]) -> io::Result<(SockaddrStorage, Option<Pktinfo>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(libc::in6_pktinfo);
    let message = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut space), MsgFlags::empty())?;
    let mut pktinfo = None;
    for cmsg in message.cmsgs()? {
        match cmsg {
            ControlMessageOwned::Ipv4PacketInfo(info) => pktinfo = Some(Pktinfo::V4(info)),
            ControlMessageOwned::Ipv6PacketInfo(info) => pktinfo = Some(Pktinfo::V6(info)),
            _ => {}
        }
    }
    let peer = message
        .address
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    Ok((peer, pktinfo))
}

/// Sends `data` to `peer` from the address the datagram being answered was sent to, so that a
/// client's connected socket accepts it even when the namespace has several addresses.
fn send_from(
    fd: RawFd,
    data: &[u8],
    peer: &SockaddrStorage,
    pktinfo: Option<&Pktinfo>,
) -> io::Result<()> {
    let iov = [IoSlice::new(data)];
    let reply4;
    let reply6;
    let cmsg = match pktinfo {
        Some(Pktinfo::V4(info)) => {
            reply4 = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: info.ipi_spec_dst,
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            Some(ControlMessage::Ipv4PacketInfo(&reply4))
        }
        Some(Pktinfo::V6(info)) => {
            reply6 = *info;
            Some(ControlMessage::Ipv6PacketInfo(&reply6))
        }
        None => None,
    };
    let sent = sendmsg(fd, &iov, cmsg.as_slice(), MsgFlags::empty(), Some(peer));
    match sent {
        // A multicast or broadcast destination cannot be a source: answer from the default.
        Err(nix::errno::Errno::EINVAL) if cmsg.is_some() => {
            sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(peer))?;
        }
        other => {
            other?;
        }
    }
    Ok(())
}
