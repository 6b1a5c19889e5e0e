//! `reach`: can a TCP connection be opened, or a UDP datagram be answered?

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use drydock_netsim::Netns;
use tokio::time::Instant;

use super::sock::{self, BANNER_WAIT, Failure, RESEND};

/// The payload of a UDP reach probe.
pub(crate) const UDP_PROBE: &[u8] = b"drydock-probe";

/// A transport protocol of a port (`web:80/tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// The outcome of [`reach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// TCP connected, or UDP was answered; with the first line the peer sent (TCP), or its
    /// answer (UDP), when there was one.
    Reached {
        /// The peer's first line or datagram, without its line ending.
        banner: Option<String>,
    },
    /// The peer refused: a TCP RST, or an ICMP port unreachable for UDP.
    Refused,
    /// Nothing came back before the timeout.
    Timeout,
    /// No route, an ICMP unreachable (host, network, prohibited) or a local firewall verdict.
    Unreachable {
        /// The operating system's message, e.g. "No route to host".
        reason: String,
    },
    /// The probe itself failed (socket creation, unexpected errors).
    Error(String),
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reached { banner: Some(b) } => {
                f.write_str("reached (banner: ")?;
                super::write_excerpt(f, b, 80)?;
                f.write_str(")")
            }
            Self::Reached { banner: None } => f.write_str("reached"),
            Self::Refused => f.write_str("refused"),
            Self::Timeout => f.write_str("timed out"),
            Self::Unreachable { reason } => write!(f, "unreachable: {reason}"),
            Self::Error(e) => write!(f, "error: {e}"),
        }
    }
}

impl From<Failure> for Reach {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused => Self::Refused,
            Failure::Timeout => Self::Timeout,
            Failure::Unreachable(reason) => Self::Unreachable { reason },
            Failure::Other(e) => Self::Error(e),
        }
    }
}

/// Tries to reach `to` over `proto` from inside `from`, for at most `timeout`.
///
/// TCP: connects; once connected, reads the peer's first line for up to a second (never past
/// the timeout) as the banner, then closes. UDP: sends the datagram `drydock-probe` (again every
/// second) and waits for any answer, which becomes the banner. A socket that cannot be created
/// gives [`Reach::Error`].
pub async fn reach(from: &Netns, to: SocketAddr, proto: Proto, timeout: Duration) -> Reach {
    let deadline = Instant::now() + timeout;
    match proto {
        Proto::Tcp => reach_tcp(from, to, deadline).await,
        Proto::Udp => reach_udp(from, to, deadline).await,
    }
}

async fn reach_tcp(from: &Netns, to: SocketAddr, deadline: Instant) -> Reach {
    let stream = match sock::connect_tcp(from, to, deadline).await {
        Ok(stream) => stream,
        Err(failure) => return failure.into(),
    };
    let banner_deadline = deadline.min(Instant::now() + BANNER_WAIT);
    let mut line = Vec::new();
    // Until a newline, EOF, an error, 4 KiB or the deadline: whatever came is the banner.
    while !line.contains(&b'\n') {
        match tokio::time::timeout_at(banner_deadline, sock::read_some(&stream, &mut line, 4096))
            .await
        {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
    Reach::Reached {
        banner: banner_text(&line),
    }
}

async fn reach_udp(from: &Netns, to: SocketAddr, deadline: Instant) -> Reach {
    let socket = match sock::connected_udp(from, to) {
        Ok(socket) => socket,
        Err(e) => return Failure::of(&e).into(),
    };
    let mut buf = vec![0u8; 65536];
    loop {
        if let Err(e) = socket.send(UDP_PROBE).await {
            return Failure::of(&e).into();
        }
        let wake = deadline.min(Instant::now() + RESEND);
        match tokio::time::timeout_at(wake, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                return Reach::Reached {
                    banner: banner_text(&buf[..n]),
                };
            }
            Ok(Err(e)) => return Failure::of(&e).into(),
            Err(_) if wake >= deadline => return Reach::Timeout,
            Err(_) => {}
        }
    }
}

/// The first line of `bytes` without its line ending, or `None` when it is empty.
pub(crate) fn banner_text(bytes: &[u8]) -> Option<String> {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.is_empty()).then(|| String::from_utf8_lossy(line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_is_the_first_line() {
        assert_eq!(
            banner_text(b"drydock web 80\n"),
            Some("drydock web 80".into())
        );
        assert_eq!(banner_text(b"hello\r\nmore\n"), Some("hello".into()));
        assert_eq!(banner_text(b"no newline"), Some("no newline".into()));
        assert_eq!(banner_text(b""), None);
        assert_eq!(banner_text(b"\n"), None);
    }

    #[test]
    fn outcomes_read_well() {
        let reached = Reach::Reached {
            banner: Some("drydock web 80".into()),
        };
        assert_eq!(reached.to_string(), "reached (banner: drydock web 80)");
        assert_eq!(Reach::Reached { banner: None }.to_string(), "reached");
        assert_eq!(Reach::Refused.to_string(), "refused");
        assert_eq!(Reach::Timeout.to_string(), "timed out");
        let unreachable = Reach::Unreachable {
            reason: "No route to host".into(),
        };
        assert_eq!(unreachable.to_string(), "unreachable: No route to host");
        assert_eq!(Reach::Error("boom".into()).to_string(), "error: boom");
        assert_eq!(Proto::Udp.to_string(), "udp");
    }
}
