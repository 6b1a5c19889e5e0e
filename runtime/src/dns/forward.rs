//! Forwarding to upstream servers from one network namespace.
//!
//! UDP queries share one socket per address family, created in the namespace on first use; each
//! forwarded query gets an id of its own on that socket, and the answer gets the client's id
//! back. TCP queries get a connection each, as Docker makes them.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drydock_netsim::Netns;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::{OnceCell, oneshot};
use tokio::task::JoinHandle;

/// How long one upstream gets to answer (libnetwork's `extIOTimeout`).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(4);

/// Most queries waiting on one socket at once (libnetwork's `maxConcurrent`).
const MAX_PENDING: usize = 1024;

/// Largest UDP answer read from an upstream.
const MAX_UDP: usize = 65535;

/// Forwards queries from one namespace.
#[derive(Debug)]
pub(crate) struct Forwarder {
    netns: Netns,
    v4: OnceCell<Exchange>,
    v6: OnceCell<Exchange>,
}

impl Forwarder {
    /// A forwarder whose sockets will live in `netns`.
    pub(crate) fn new(netns: Netns) -> Self {
        Self {
            netns,
            v4: OnceCell::new(),
            v6: OnceCell::new(),
        }
    }

    /// Sends `query` (a DNS message) to `server` over UDP and returns its answer.
    pub(crate) async fn udp(&self, server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
        let cell = if server.is_ipv4() { &self.v4 } else { &self.v6 };
        let exchange = cell
            .get_or_try_init(|| async { Exchange::open(&self.netns, server.is_ipv6()) })
            .await?;
        exchange.ask(server, query).await
    }

    /// Sends `query` to `server` over a new TCP connection and returns its answer.
    pub(crate) async fn tcp(&self, server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
        let domain = socket2::Domain::for_address(server);
        let socket = self.netns.run(|| {
            socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        })??;
        socket.set_nonblocking(true)?;
        let socket = TcpSocket::from_std_stream(socket.into());
        tokio::time::timeout(TIMEOUT, async {
            let mut stream = socket.connect(server).await?;
            let len = u16::try_from(query.len())
                .map_err(|_| io::Error::other("query longer than 64 KiB"))?;
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            stream.write_all(&framed).await?;
            let len = stream.read_u16().await?;
            let mut answer = vec![0; usize::from(len)];
            stream.read_exact(&mut answer).await?;
            Ok(answer)
        })
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from {server} over TCP"),
            )
        })?
    }
}

/// Queries waiting for their answer on one UDP socket, by the id they were sent with.
type Pending = Arc<Mutex<HashMap<u16, Waiter>>>;

#[derive(Debug)]
struct Waiter {
    server: SocketAddr,
    client_id: u16,
    answer: oneshot::Sender<Vec<u8>>,
}

/// One UDP socket and the queries in flight on it.
#[derive(Debug)]
struct Exchange {
    socket: Arc<UdpSocket>,
    pending: Pending,
    next_id: Mutex<u16>,
    reader: JoinHandle<()>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Exchange {
    fn open(netns: &Netns, v6: bool) -> io::Result<Self> {
        let local: SocketAddr = if v6 {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let socket = netns.run(|| std::net::UdpSocket::bind(local))??;
        socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        let pending = Pending::default();
        let reader = tokio::spawn(read_answers(socket.clone(), pending.clone()));
        Ok(Self {
            socket,
            pending,
            next_id: Mutex::new(fastrand::u16(..)),
            reader,
        })
    }

    async fn ask(&self, server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
        if query.len() < 12 {
            return Err(io::Error::other("query shorter than a DNS header"));
        }
        let client_id = u16::from_be_bytes([query[0], query[1]]);
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut pending = self.pending.lock().expect("pending queries");
            if pending.len() >= MAX_PENDING {
                return Err(io::Error::other(format!(
                    "more than {MAX_PENDING} queries in flight"
                )));
            }
            let mut next = self.next_id.lock().expect("next id");
            while pending.contains_key(&next) {
                *next = next.wrapping_add(1);
            }
            let id = *next;
            *next = next.wrapping_add(1);
            pending.insert(
                id,
                Waiter {
                    server,
                    client_id,
                    answer: tx,
                },
            );
            id
        };
        let mut message = query.to_vec();
        message[..2].copy_from_slice(&id.to_be_bytes());
        let result = async {
            self.socket.send_to(&message, server).await?;
            tokio::time::timeout(TIMEOUT, rx)
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {server}"))
                })?
                .map_err(|_| io::Error::other("forwarder closed"))
        }
        .await;
        if result.is_err() {
            self.pending.lock().expect("pending queries").remove(&id);
        }
        result
    }
}

/// Hands each answer to the query waiting for it, with the client's id put back.
async fn read_answers(socket: Arc<UdpSocket>, pending: Pending) {
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if len < 12 {
            continue;
        }
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        let waiter = {
            let mut pending = pending.lock().expect("pending queries");
            match pending.get(&id) {
                Some(w) if w.server == from => pending.remove(&id),
                _ => None,
            }
        };
        if let Some(waiter) = waiter {
            let mut answer = buf[..len].to_vec();
            answer[..2].copy_from_slice(&waiter.client_id.to_be_bytes());
            let _ = waiter.answer.send(answer);
        }
    }
}
