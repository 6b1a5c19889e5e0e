//! Shared socket plumbing: opening sockets inside a namespace, connecting with a deadline,
//! reading and writing tokio streams, and what connect errors mean.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use drydock_netsim::Netns;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

/// How long a TCP probe waits for a banner after connecting (at most: never past the deadline).
pub(crate) const BANNER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How often UDP probes (reach, DNS, ping) send their request again while waiting.
pub(crate) const RESEND: std::time::Duration = std::time::Duration::from_secs(1);

/// What a failed connect, send or receive means to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// ECONNREFUSED: a RST, or an ICMP port unreachable on a connected UDP socket.
    Refused,
    /// No route, an ICMP unreachable, or a local firewall verdict; the OS message.
    Unreachable(String),
    /// The deadline passed (or the kernel gave up: ETIMEDOUT).
    Timeout,
    /// Anything else; the OS message.
    Other(String),
}

impl Failure {
    /// Classifies an I/O error from connect/send/recv.
    pub(crate) fn of(error: &io::Error) -> Self {
        match error.raw_os_error() {
            Some(libc::ECONNREFUSED) => Self::Refused,
            Some(libc::ETIMEDOUT) => Self::Timeout,
            Some(
                libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::ENETDOWN
                | libc::EACCES
                | libc::EPERM,
            ) => Self::Unreachable(os_message(error)),
            _ => Self::Other(os_message(error)),
        }
    }
}

/// The message of an I/O error without Rust's " (os error N)" suffix: "No route to host".
pub(crate) fn os_message(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
        None => error.to_string(),
    }
}

/// The unspecified address of `addr`'s family, port 0.
pub(crate) fn any_of_family(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// Creates a non-blocking socket inside `netns` (on a thread that entered it; see `Netns::run`).
pub(crate) fn socket_in(
    netns: &Netns,
    domain: Domain,
    kind: Type,
    protocol: Option<Protocol>,
) -> io::Result<Socket> {
    let socket = netns.run(move || Socket::new(domain, kind, protocol))??;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A UDP socket in `netns`, bound to the unspecified address and connected to `to`, so that
/// ICMP errors about `to` come back as errors (ECONNREFUSED, EHOSTUNREACH) on receive.
///
/// `IP_RECVERR` makes the kernel report every ICMP error, not only the "hard" ones (port and
/// protocol unreachable): without it a host unreachable (a router's, or our own after a failed
/// ARP/ND resolution) is silently dropped and the probe would only time out.
pub(crate) fn connected_udp(netns: &Netns, to: SocketAddr) -> io::Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let socket = socket_in(netns, Domain::for_address(to), Type::DGRAM, None)?;
    match to {
        SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4RecvErr, &true)?,
        SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvErr, &true)?,
    }
    socket.bind(&SockAddr::from(any_of_family(&to)))?;
    socket.connect(&SockAddr::from(to))?;
    UdpSocket::from_std(socket.into())
}

/// Connects a TCP socket made in `netns` to `to`, giving up at `deadline`.
pub(crate) async fn connect_tcp(
    netns: &Netns,
    to: SocketAddr,
    deadline: Instant,
) -> Result<TcpStream, Failure> {
    let socket = socket_in(netns, Domain::for_address(to), Type::STREAM, None)
        .map_err(|e| Failure::Other(format!("socket: {}", os_message(&e))))?;
    let socket = TcpSocket::from_std_stream(socket.into());
    match tokio::time::timeout_at(deadline, socket.connect(to)).await {
        Err(_elapsed) => Err(Failure::Timeout),
        Ok(Err(error)) => Err(Failure::of(&error)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// Appends what is available on `stream` to `buf` (waiting until something is); `Ok(0)` at EOF.
/// Reads at most `limit` bytes in total into `buf`.
pub(crate) async fn read_some(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let room = limit.saturating_sub(buf.len()).min(chunk.len());
    if room == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {limit} bytes"),
        ));
    }
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk[..room]) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `data` to `stream`.
pub(crate) async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_like_probes_report_them() {
        let of = |code| Failure::of(&io::Error::from_raw_os_error(code));
        assert_eq!(of(libc::ECONNREFUSED), Failure::Refused);
        assert_eq!(of(libc::ETIMEDOUT), Failure::Timeout);
        assert_eq!(
            of(libc::ENETUNREACH),
            Failure::Unreachable("Network is unreachable".into())
        );
        assert_eq!(
            of(libc::EHOSTUNREACH),
            Failure::Unreachable("No route to host".into())
        );
        assert_eq!(
            of(libc::EPERM),
            Failure::Unreachable("Operation not permitted".into())
        );
        assert_eq!(
            of(libc::EADDRINUSE),
            Failure::Other("Address already in use".into())
        );
        assert_eq!(
            os_message(&io::Error::other("custom")),
            "custom".to_string()
        );
    }
}
