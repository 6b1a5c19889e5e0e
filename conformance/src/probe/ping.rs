//! `ping`: ICMP/ICMPv6 echo over a raw socket.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use drydock_netsim::Netns;
use nix::sys::socket::SockaddrStorage;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::icmp::{self, Received};
use super::sock::{self, Failure, RESEND};

/// The outcome of [`ping`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ping {
    /// An echo reply came back from the address pinged.
    Reply,
    /// Nothing came back before the timeout.
    Timeout,
    /// An ICMP error about our request (destination unreachable, time exceeded), or no route.
    Unreachable {
        /// What was reported and by whom ("Destination Host Unreachable (from 10.0.0.1)"), or
        /// the operating system's message ("Network is unreachable").
        reason: String,
    },
    /// A don't-fragment echo request larger than the path's MTU was refused by the sender's
    /// own stack (EMSGSIZE: its interface's MTU, or one a router reported before).
    TooBig {
        /// The operating system's message ("Message too long").
        reason: String,
    },
    /// The probe itself failed (e.g. no permission for a raw socket).
    Error(String),
}

/// What an echo request carries, beyond its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Echo {
    /// Bytes of echo data, as ping's `-s` (the probe's own small payload when `None`).
    pub size: Option<u16>,
    /// Don't fragment (`-M do`): the kernel neither fragments it nor lets it leave when it is
    /// larger than the path's MTU.
    pub df: bool,
}

impl Echo {
    /// The echo data: the probe's payload, repeated or cut to `size`.
    fn payload(&self) -> Vec<u8> {
        match self.size {
            None => icmp::PAYLOAD.to_vec(),
            Some(n) => icmp::PAYLOAD
                .iter()
                .copied()
                .cycle()
                .take(n.into())
                .collect(),
        }
    }
}

impl fmt::Display for Ping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reply => f.write_str("reply"),
            Self::Timeout => f.write_str("timed out"),
            Self::Unreachable { reason } => write!(f, "unreachable: {reason}"),
            Self::TooBig { reason } => write!(f, "not sent, too big to go unfragmented: {reason}"),
            Self::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Identifiers for concurrent pings: raw ICMP sockets see every ICMP message of the namespace,
/// so each ping tells its replies apart by identifier (and sequence number, and source).
static NEXT_ID: AtomicU16 = AtomicU16::new(0);

fn next_id() -> u16 {
    // Start from the pid, so that two test processes pinging in one namespace rarely collide.
    let base = std::process::id() as u16;
    base.wrapping_add(NEXT_ID.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919))
}

/// Pings `to` from inside `from`: one echo request (again every second) until a reply, an ICMP
/// error about it, or `timeout`.
///
/// Uses a raw socket (`SOCK_RAW`, `IPPROTO_ICMP` or `IPPROTO_ICMPV6`), which needs
/// `CAP_NET_RAW` in the namespace's user namespace. A reply counts only when it comes from `to`
/// and carries our identifier and a sequence number we sent.
pub async fn ping(from: &Netns, to: IpAddr, timeout: Duration) -> Ping {
    ping_with(from, to, Echo::default(), timeout).await
}

/// [`ping`] with echo requests of a given size, fragmentation allowed or not.
pub async fn ping_with(from: &Netns, to: IpAddr, echo: Echo, timeout: Duration) -> Ping {
    let deadline = Instant::now() + timeout;
    let to = icmp::canonical(to);
    let (domain, protocol) = match to {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let socket = sock::socket_in(from, domain, Type::RAW, Some(protocol)).and_then(|socket| {
        // SAFETY: a `Socket` owns its descriptor and always returns that same one, and the
        // `AsyncFd` keeps the socket until it is dropped (no `into_inner`, no `forget`).
        unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
    });
    let socket = match socket {
        Ok(socket) => socket,
        Err(e) => return Ping::Error(format!("raw ICMP socket: {}", sock::os_message(&e))),
    };
    if echo.df
        && let Err(e) = forbid_fragments(socket.get_ref(), to.is_ipv6())
    {
        return Ping::Error(format!("don't fragment: {}", sock::os_message(&e)));
    }
    let payload = echo.payload();
    let id = next_id();
    let destination = SockAddr::from(SocketAddr::new(to, 0));
    let mut buf = vec![0u8; 65536];
    let mut seq: u16 = 0;
    loop {
        seq = seq.saturating_add(1);
        let request = match to {
            IpAddr::V4(_) => icmp::echo_request_v4(id, seq, &payload),
            IpAddr::V6(_) => icmp::echo_request_v6(id, seq, &payload),
        };
        if let Err(e) = send_to(&socket, &request, &destination).await {
            if e.raw_os_error() == Some(libc::EMSGSIZE) {
                return Ping::TooBig {
                    reason: sock::os_message(&e),
                };
            }
            return match Failure::of(&e) {
                Failure::Unreachable(reason) => Ping::Unreachable { reason },
                Failure::Timeout => Ping::Timeout,
                Failure::Refused | Failure::Other(_) => {
                    Ping::Error(format!("sendto: {}", sock::os_message(&e)))
                }
            };
        }
        let wake = deadline.min(Instant::now() + RESEND);
        loop {
            let received =
                match tokio::time::timeout_at(wake, recv(&socket, &mut buf, to.is_ipv6())).await {
                    Err(_) => break,
                    Ok(Err(e)) => {
                        return Ping::Error(format!("recvfrom: {}", sock::os_message(&e)));
                    }
                    Ok(Ok(received)) => received,
                };
            let ours = |rid: u16, rseq: u16| rid == id && (1..=seq).contains(&rseq);
            match received {
                Some(Received::Reply { from, id, seq }) if from == to && ours(id, seq) => {
                    return Ping::Reply;
                }
                Some(Received::Error {
                    to: about,
                    id,
                    seq,
                    reason,
                    ..
                }) if about == to && ours(id, seq) => return Ping::Unreachable { reason },
                _ => {}
            }
        }
        if wake >= deadline {
            return Ping::Timeout;
        }
    }
}

/// `IP_MTU_DISCOVER = IP_PMTUDISC_DO` (IPv6: `IPV6_MTU_DISCOVER`): set DF, never fragment.
fn forbid_fragments(socket: &Socket, v6: bool) -> io::Result<()> {
    let (level, name, value) = match v6 {
        false => (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        ),
        true => (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DO,
        ),
    };
    // SAFETY: setsockopt on a socket we own, with a pointer to a local int and its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

async fn send_to(socket: &AsyncFd<Socket>, packet: &[u8], to: &SockAddr) -> io::Result<()> {
    loop {
        let mut guard = socket.writable().await?;
        match guard.try_io(|s| s.get_ref().send_to(packet, to)) {
            Ok(result) => return result.map(drop),
            Err(_would_block) => continue,
        }
    }
}

/// Receives one message and reads it; `None` when it is not an echo reply or an ICMP error.
async fn recv(socket: &AsyncFd<Socket>, buf: &mut [u8], v6: bool) -> io::Result<Option<Received>> {
    let (n, source) = loop {
        let mut guard = socket.readable().await?;
        let received = guard.try_io(|s| {
            nix::sys::socket::recvfrom::<SockaddrStorage>(s.as_raw_fd(), buf)
                .map_err(io::Error::from)
        });
        match received {
            Ok(result) => break result?,
            Err(_would_block) => continue,
        }
    };
    let message = &buf[..n];
    Ok(if v6 {
        let from = source.as_ref().and_then(|s| s.as_sockaddr_in6());
        from.and_then(|from| icmp::parse_v6(from.ip(), message))
    } else {
        icmp::parse_v4(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_well() {
        assert_eq!(Ping::Reply.to_string(), "reply");
        assert_eq!(Ping::Timeout.to_string(), "timed out");
        let unreachable = Ping::Unreachable {
            reason: "Network is unreachable".into(),
        };
        assert_eq!(
            unreachable.to_string(),
            "unreachable: Network is unreachable"
        );
    }

    #[test]
    fn echo_data_has_the_size_asked_for() {
        assert_eq!(Echo::default().payload(), icmp::PAYLOAD);
        let big = Echo {
            size: Some(1422),
            df: true,
        };
        assert_eq!(big.payload().len(), 1422);
        assert_eq!(&big.payload()[..icmp::PAYLOAD.len()], icmp::PAYLOAD);
        let none = Echo {
            size: Some(0),
            df: false,
        };
        assert!(none.payload().is_empty());
        let too_big = Ping::TooBig {
            reason: "Message too long".into(),
        };
        assert_eq!(
            too_big.to_string(),
            "not sent, too big to go unfragmented: Message too long"
        );
    }

    #[test]
    fn identifiers_differ() {
        assert_ne!(next_id(), next_id());
    }
}
