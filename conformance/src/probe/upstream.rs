//! The lab's upstream DNS server, on `127.0.0.1:53` of a lab host: the names of a [`Zone`] with
//! their addresses, NXDOMAIN for every other name.
//!
//! Engines under test are told `--dns 127.0.0.1`, so that their DNS never forwards a query off
//! the machine. With this server listening there, a name the engine does not know gets a real
//! answer (NXDOMAIN, authoritative, recursion available) instead of silence, so that scenarios
//! can tell "the engine forwarded and the name does not exist" from "nothing answered"; a
//! conformance run's zone is empty. A held lab (`drydock lab up`) serves its host names from
//! it, so that its hosts find each other by name and nothing else. It needs nothing but the lab
//! host's namespace: every target gets the same upstream.
//!
//! The answer is a pure function (`upstream/zone.rs`); the I/O is one UDP socket and one TCP
//! listener, served from tasks until [`UpstreamDns::close`] (or drop).

mod zone;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use drydock_netsim::Netns;
use socket2::{Domain, SockAddr, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::dns::tcp_message;
use super::sock;
pub use zone::Zone;

/// Where the server listens, inside the lab host's namespace.
pub const UPSTREAM: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 53);

/// How long a TCP client may take to send a whole query.
const TCP_WAIT: Duration = Duration::from_secs(5);

/// A DNS server on `127.0.0.1:53` (UDP and TCP) of one namespace, answering the names of its
/// [`Zone`] and NXDOMAIN for every other, until closed or dropped.
#[derive(Debug)]
pub struct UpstreamDns {
    tasks: Vec<JoinHandle<()>>,
    /// Dropping it tells the tasks to stop.
    stop: Option<watch::Sender<()>>,
}

impl UpstreamDns {
    /// Starts a server that knows no name inside `netns` (whose `lo` must be up). Must be
    /// called inside a tokio runtime; fails when the port is taken.
    pub fn start(netns: &Netns) -> io::Result<Self> {
        Self::serve(netns, Arc::new(Zone::empty()))
    }

    /// Starts a server answering the names of `zone` inside `netns`, as [`UpstreamDns::start`].
    pub fn serve(netns: &Netns, zone: Arc<Zone>) -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| io::Error::other("UpstreamDns::start needs a tokio runtime"))?;
        let context = |e: io::Error, what: &str| {
            io::Error::new(e.kind(), format!("DNS server on {UPSTREAM}/{what}: {e}"))
        };
        let udp = sock::socket_in(netns, Domain::IPV4, Type::DGRAM, None)
            .and_then(|s| s.bind(&SockAddr::from(UPSTREAM)).map(|()| s))
            .map_err(|e| context(e, "udp"))?;
        let tcp = sock::socket_in(netns, Domain::IPV4, Type::STREAM, None)
            .and_then(|s| {
                s.set_reuse_address(true)?;
                s.bind(&SockAddr::from(UPSTREAM))?;
                s.listen(64)?;
                Ok(s)
            })
            .map_err(|e| context(e, "tcp"))?;
        let udp = UdpSocket::from_std(udp.into())?;
        let tcp = TcpListener::from_std(tcp.into())?;
        let (stop, stopped) = watch::channel(());
        let tasks = vec![
            runtime.spawn(serve_udp(udp, zone.clone(), stopped.clone())),
            runtime.spawn(serve_tcp(tcp, zone, stopped)),
        ];
        Ok(Self {
            tasks,
            stop: Some(stop),
        })
    }

    /// Stops serving, and returns once its sockets are closed.
    pub async fn close(mut self) {
        self.stop = None;
        for task in std::mem::take(&mut self.tasks) {
            // A task ends by itself once told to stop; it has no error to report.
            let _ = task.await;
        }
    }
}

impl Drop for UpstreamDns {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve_udp(socket: UdpSocket, zone: Arc<Zone>, mut stop: watch::Receiver<()>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = tokio::select! {
            _ = stop.changed() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!("upstream DNS: udp: {e}");
                    continue;
                }
            },
        };
        if let Some(answer) = zone::answer(&buf[..n], &zone)
            && let Err(e) = socket.send_to(&answer, peer).await
        {
            tracing::debug!("upstream DNS: answer to {peer}: {e}");
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Zone>, mut stop: watch::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer_tcp(stream, zone.clone()));
                }
                Err(e) => {
                    tracing::debug!("upstream DNS: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Answers every query of one connection (two-byte length prefixes) until the client closes.
async fn answer_tcp(stream: TcpStream, zone: Arc<Zone>) {
    let served = async {
        let mut buf = Vec::new();
        loop {
            while let Some(query) = tcp_message(&buf) {
                let used = query.len() + 2;
                if let Some(answer) = zone::answer(query, &zone) {
                    let mut framed = u16::try_from(answer.len())
                        .unwrap_or(u16::MAX)
                        .to_be_bytes()
                        .to_vec();
                    framed.extend_from_slice(&answer);
                    sock::write_all(&stream, &framed).await?;
                }
                buf.drain(..used);
            }
            if tokio::time::timeout(TCP_WAIT, sock::read_some(&stream, &mut buf, 65537))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??
                == 0
            {
                return io::Result::Ok(());
            }
        }
    };
    if let Err(e) = served.await {
        tracing::debug!("upstream DNS: tcp: {e}");
    }
}
