//! Serving: a resolver per sandbox on 127.0.0.11 (UDP and TCP on ports of its own, reached on
//! port 53 through NAT rules in the sandbox), answering from the engine's latest [`Records`]
//! and forwarding the rest as libnetwork does.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use drydock_netsim::Netns;
use hickory_proto::op::{Message, ResponseCode};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::RESOLVER_IP;
use super::answer::{Action, Transport, answer};
use super::forward::Forwarder;
use super::nat;
use super::records::{Entry, Records, Upstream};

/// Upstream servers tried per query (libnetwork's `maxExtDNS`).
const MAX_UPSTREAMS: usize = 3;

/// How long an idle TCP client connection stays open.
const TCP_IDLE: Duration = Duration::from_secs(8);

/// The embedded DNS of one engine: the records its resolvers answer from (the engine's own,
/// merged with other nodes' endpoints on swarm networks), and the forwarder for upstreams on the
/// docker host's loopback.
#[derive(Debug)]
pub struct Dns {
    records: RwLock<Arc<Records>>,
    sources: Mutex<Sources>,
    host: Forwarder,
}

/// What the merged records are made of.
#[derive(Debug, Default)]
struct Sources {
    /// The engine's own.
    local: Records,
    /// Other nodes' endpoints, by swarm network id.
    remote: BTreeMap<String, Vec<Entry>>,
}

impl Sources {
    /// The records the resolvers answer from: the engine's, plus other nodes' endpoints on the
    /// networks this node has.
    fn merged(&self) -> Records {
        let mut records = self.local.clone();
        for (network, entries) in &self.remote {
            if let Some(records) = records.networks.get_mut(network) {
                records.entries.extend(entries.iter().cloned());
            }
        }
        records
    }
}

impl Dns {
    /// The DNS of the engine whose docker host is `host`.
    pub fn new(host: Netns) -> Arc<Self> {
        Arc::new(Self {
            records: RwLock::new(Arc::new(Records::default())),
            sources: Mutex::default(),
            host: Forwarder::new(host),
        })
    }

    /// Replaces what the engine knows; queries from now on see it.
    pub fn update(&self, records: Records) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        sources.local = records;
        *self.records.write().expect("DNS records") = Arc::new(sources.merged());
    }

    /// Replaces what other nodes have on swarm network `network` (nothing: forgets them).
    pub fn set_remote(&self, network: &str, entries: Vec<Entry>) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.is_empty() {
            true => sources.remote.remove(network),
            false => sources.remote.insert(network.to_string(), entries),
        };
        *self.records.write().expect("DNS records") = Arc::new(sources.merged());
    }

    fn records(&self) -> Arc<Records> {
        self.records.read().expect("DNS records").clone()
    }

    /// Starts the resolver of the sandbox owned by container `key`, in `sandbox`: its sockets,
    /// then the NAT rules that send port 53 to them.
    pub async fn start_resolver(
        self: &Arc<Self>,
        key: &str,
        sandbox: &Netns,
    ) -> io::Result<Resolver> {
        let (udp, tcp) = sandbox.run(|| -> io::Result<_> {
            let udp = std::net::UdpSocket::bind((RESOLVER_IP, 0))?;
            let tcp = std::net::TcpListener::bind((RESOLVER_IP, 0))?;
            udp.set_nonblocking(true)?;
            tcp.set_nonblocking(true)?;
            nat::redirect(udp.local_addr()?.port(), tcp.local_addr()?.port())?;
            Ok((udp, tcp))
        })??;
        let served = Arc::new(Served {
            dns: self.clone(),
            key: key.to_string(),
            forwarder: Forwarder::new(sandbox.clone()),
        });
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let tasks = vec![
            tokio::spawn(serve_udp(served.clone(), udp)),
            tokio::spawn(serve_tcp(served, tcp)),
        ];
        Ok(Resolver { tasks })
    }
}

/// A running resolver; dropping it stops it (its sockets go with the sandbox).
#[derive(Debug)]
pub struct Resolver {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What a resolver's tasks share.
#[derive(Debug)]
struct Served {
    dns: Arc<Dns>,
    /// The container that owns the sandbox (its view in the records).
    key: String,
    /// For upstreams reached from inside the sandbox.
    forwarder: Forwarder,
}

/// What a resolver does with one query.
enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Ask these upstreams.
    Forward(Vec<Upstream>),
    /// Send nothing.
    Silent,
}

impl Served {
    /// Answers from the records, without waiting on anything.
    fn decide(&self, query: &[u8], transport: Transport) -> Decision {
        // Like libnetwork (miekg/dns), messages that do not parse get no answer.
        let Ok(message) = Message::from_vec(query) else {
            return Decision::Silent;
        };
        let records = self.dns.records();
        let Some(view) = records.sandboxes.get(&self.key) else {
            return Decision::Silent;
        };
        match answer(&records, view, &message, transport, |ips| {
            fastrand::shuffle(ips)
        }) {
            Action::Reply(reply) => reply.to_vec().map_or(Decision::Silent, Decision::Reply),
            Action::Ignore => Decision::Silent,
            Action::Forward => {
                Decision::Forward(view.upstreams.iter().take(MAX_UPSTREAMS).copied().collect())
            }
        }
    }

    /// libnetwork's forwarding loop: the first upstream that answers with success or an
    /// authoritative NXDOMAIN wins; otherwise the last answer received (if any) is passed on.
    async fn forward(
        &self,
        upstreams: &[Upstream],
        query: &[u8],
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let mut last = None;
        for upstream in upstreams {
            let server = SocketAddr::new(upstream.ip, 53);
            let forwarder = if upstream.from_host {
                &self.dns.host
            } else {
                &self.forwarder
            };
            let answer = match transport {
                Transport::Udp => forwarder.udp(server, query).await,
                Transport::Tcp => forwarder.tcp(server, query).await,
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::debug!("forwarding to {server}: {e}");
                    last = None;
                    continue;
                }
            };
            let Ok(parsed) = Message::from_vec(&answer) else {
                last = None;
                continue;
            };
            let done = match parsed.metadata.response_code {
                ResponseCode::NoError => true,
                ResponseCode::NXDomain => parsed.metadata.authoritative,
                _ => false,
            };
            last = Some(answer);
            if done {
                break;
            }
        }
        last
    }
}

/// Datagrams read (and replies sent) per system call.
const BATCH: usize = 32;

/// Largest query read; DNS queries are far smaller (longer ones are cut and fail to parse).
const QUERY_SIZE: usize = 4096;

/// Serves UDP queries in batches: one `recvmmsg` takes every query waiting (up to [`BATCH`]),
/// one `sendmmsg` sends the replies made from the records; forwarded ones are answered later by
/// a task each. Under load this halves the system calls per query, which is where a resolver's
/// time goes (the kernel's UDP, loopback and NAT paths).
async fn serve_udp(served: Arc<Served>, socket: Arc<UdpSocket>) {
    let mut buffers = vec![[0u8; QUERY_SIZE]; BATCH];
    loop {
        if socket.readable().await.is_err() {
            continue;
        }
        let queries = socket.try_io(Interest::READABLE, || {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                buffers.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            // Made per call: the headers hold raw pointers, which may not cross an await.
            let mut received = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
            let fd = socket.as_raw_fd();
            let messages = recvmmsg(
                fd,
                &mut received,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            Ok(messages
                .filter_map(|m| Some((m.bytes, m.address?)))
                .collect::<Vec<_>>())
        });
        let Ok(queries) = queries else {
            continue;
        };
        let mut replies: Vec<(Vec<u8>, SockaddrIn)> = Vec::with_capacity(queries.len());
        for (i, (len, peer)) in queries.into_iter().enumerate() {
            let query = &buffers[i][..len];
            match served.decide(query, Transport::Udp) {
                Decision::Reply(reply) => replies.push((reply, peer)),
                Decision::Silent => {}
                Decision::Forward(upstreams) => {
                    let query = query.to_vec();
                    let (served, socket) = (served.clone(), socket.clone());
                    let peer = SocketAddr::V4(peer.into());
                    tokio::spawn(async move {
                        let reply = served.forward(&upstreams, &query, Transport::Udp).await;
                        if let Some(reply) = reply {
                            let _ = socket.send_to(&reply, peer).await;
                        }
                    });
                }
            }
        }
        if replies.is_empty() {
            continue;
        }
        let sent = socket
            .try_io(Interest::WRITABLE, || {
                let slices: Vec<[IoSlice<'_>; 1]> =
                    replies.iter().map(|(r, _)| [IoSlice::new(r)]).collect();
                let peers: Vec<Option<SockaddrIn>> =
                    replies.iter().map(|(_, p)| Some(*p)).collect();
                let mut sending = MultiHeaders::<SockaddrIn>::preallocate(replies.len(), None);
                let fd = socket.as_raw_fd();
                let no_cmsgs: [ControlMessage<'_>; 0] = [];
                sendmmsg(
                    fd,
                    &mut sending,
                    slices.iter(),
                    &peers,
                    no_cmsgs,
                    MsgFlags::MSG_DONTWAIT,
                )
                .map(|done| done.count())
                .map_err(io::Error::from)
            })
            .unwrap_or(0);
        // What the socket did not take at once (a full buffer) is sent one by one.
        for (reply, peer) in replies.iter().skip(sent) {
            let _ = socket.send_to(reply, SocketAddr::V4((*peer).into())).await;
        }
    }
}

async fn serve_tcp(served: Arc<Served>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_connection(served.clone(), stream));
    }
}

/// Answers the length-prefixed queries of one TCP connection until it goes idle or closes.
async fn serve_connection(served: Arc<Served>, mut stream: TcpStream) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        let mut query = vec![0; usize::from(len)];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let reply = match served.decide(&query, Transport::Tcp) {
            Decision::Reply(reply) => reply,
            Decision::Silent => continue,
            Decision::Forward(upstreams) => {
                match served.forward(&upstreams, &query, Transport::Tcp).await {
                    Some(reply) => reply,
                    None => continue,
                }
            }
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
