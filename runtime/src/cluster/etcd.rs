//! The store over etcd's v3 API: for engines in separate processes. Every key lives under the
//! store's prefix (several labs can share one etcd). The client reaches etcd from a docker
//! host's network namespace, so that the control plane's traffic crosses the lab: a node
//! killed or cut off loses it, and its leases lapse.
//!
//! The TCP connections are opened by [`Dialer`], tonic's connector: the socket is made on a
//! short-lived thread inside the namespace ([`Netns::run`]) and connected from tokio. tonic
//! reconnects through it when a connection breaks; a watch then resumes from the revision after
//! the last event it passed on, and a lease's keep-alive stream is opened again.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use drydock_netsim::Netns;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
    WatchOptions, WatchStream,
};
use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Endpoint, Uri};

use super::silence::{BEAT, BEATS, SILENT_BEATS, Silence, beat_key, lease_of};
use super::store::{Entries, Event, Lease, LeaseId, Store, Watch};

/// How long a TCP connection to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a request may wait for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on a connection with open streams, to notice a peer gone silent. etcd refuses
/// pings more frequent than every 5 s (`--grpc-keepalive-min-time`).
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// The longest pause between two attempts to reopen a watch or a keep-alive stream.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// A store in etcd, reached from a network namespace.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// Prepended to every key.
    prefix: String,
    /// The endpoints, for messages: `10.10.0.1:2379, ...`.
    endpoints: Arc<str>,
    /// Where the watches' and leases' tasks run.
    runtime: Handle,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` from `netns` (tried in turn at every
    /// connection), keeping keys under `prefix` (e.g. `/drydock/LAB/`). Returns once etcd has
    /// answered a read. Must be called inside a tokio runtime, where the client's tasks run.
    pub async fn connect(
        netns: &Netns,
        endpoints: &[SocketAddr],
        prefix: &str,
    ) -> io::Result<EtcdStore> {
        let names = (endpoints.iter().map(SocketAddr::to_string))
            .collect::<Vec<_>>()
            .join(", ");
        if endpoints.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "etcd: no endpoint given",
            ));
        }
        let dialer = Dialer {
            netns: netns.clone(),
            endpoints: endpoints.into(),
        };
        // The authority is only a name: the dialer decides where connections go.
        let endpoint = Endpoint::from_static("http://etcd")
            .http2_keep_alive_interval(PING_INTERVAL)
            .keep_alive_timeout(PING_INTERVAL);
        let failed = |e: &(dyn StdError + 'static)| {
            io::Error::new(kind(e), format!("etcd at {names}: {}", chain(e)))
        };
        // The dialer bounds each TCP connection; this bounds the HTTP/2 handshake after it.
        let limit = CONNECT_TIMEOUT * endpoints.len() as u32 + REQUEST_TIMEOUT;
        let connecting = endpoint.connect_with_connector(dialer);
        let channel = match tokio::time::timeout(limit, connecting).await {
            Ok(channel) => channel.map_err(|e| failed(&e))?,
            Err(_) => {
                let text = format!(
                    "etcd at {names}: no connection within {} s",
                    limit.as_secs()
                );
                return Err(io::Error::new(io::ErrorKind::TimedOut, text));
            }
        };
        let client = Client::from_channel(etcd_client::Channel::Tonic(channel), None)
            .await
            .map_err(|e| failed(&e))?;
        let store = Self {
            client,
            prefix: prefix.to_string(),
            endpoints: names.into(),
            runtime: Handle::current(),
        };
        let probe = GetOptions::new().with_prefix().with_count_only();
        let mut kv = store.client.kv_client();
        store.call("read", "", kv.get(prefix, Some(probe))).await?;
        Ok(store)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Awaits a request for at most [`REQUEST_TIMEOUT`]; errors say what was asked of which
    /// etcd about which key.
    async fn call<T>(
        &self,
        what: &str,
        key: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> io::Result<T> {
        let context = |kind, text: String| {
            io::Error::new(
                kind,
                format!(
                    "etcd at {}: {what} {}{key}: {text}",
                    self.endpoints, self.prefix
                ),
            )
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(context(kind(&e), chain(&e))),
            Err(_) => Err(context(
                io::ErrorKind::TimedOut,
                format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
            )),
        }
    }

    /// The entries of `kvs`, keys without the store's prefix.
    fn entries(&self, kvs: &[KeyValue]) -> io::Result<Entries> {
        (kvs.iter())
            .map(|kv| Ok((self.key_of(kv.key())?, kv.value().to_vec())))
            .collect()
    }

    fn key_of(&self, full: &[u8]) -> io::Result<String> {
        (std::str::from_utf8(full).ok())
            .and_then(|k| k.strip_prefix(&self.prefix))
            .map(str::to_string)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "etcd at {}: key {:?} outside {}",
                        self.endpoints,
                        String::from_utf8_lossy(full),
                        self.prefix
                    ),
                )
            })
    }
}

impl Store for EtcdStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let mut kv = self.client.kv_client();
            let answer = self.call("get", key, kv.get(self.full(key), None)).await?;
            Ok(answer.kvs().first().map(|kv| kv.value().to_vec()))
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<Entries>> {
        Box::pin(async move {
            let mut kv = self.client.kv_client();
            let options = GetOptions::new().with_prefix();
            let request = kv.get(self.full(prefix), Some(options));
            let answer = self.call("list", prefix, request).await?;
            // etcd returns a range sorted by key, as bytes: the order of `String`s.
            self.entries(answer.kvs())
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let mut kv = self.client.kv_client();
            let options = lease.map(|id| PutOptions::new().with_lease(id));
            self.call("put", key, kv.put(self.full(key), value, options))
                .await?;
            Ok(())
        })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, io::Result<bool>> {
        Box::pin(async move {
            let full = self.full(key);
            let compare = match expected {
                // A key that does not exist has create revision 0.
                None => Compare::create_revision(full.clone(), CompareOp::Equal, 0),
                Some(expected) => Compare::value(full.clone(), CompareOp::Equal, expected),
            };
            let options = lease.map(|id| PutOptions::new().with_lease(id));
            let txn = Txn::new()
                .when([compare])
                .and_then([TxnOp::put(full, value, options)]);
            let mut kv = self.client.kv_client();
            let answer = self.call("swap", key, kv.txn(txn)).await?;
            Ok(answer.succeeded())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let mut kv = self.client.kv_client();
            self.call("delete", key, kv.delete(self.full(key), None))
                .await?;
            Ok(())
        })
    }

    /// etcd counts in whole seconds: `ttl` is rounded up, and etcd raises it to its minimum
    /// (1.5 election timeouts, rounded up). The keep-alive goes every third of the TTL granted.
    /// The lease also beats, and judges the others' beats ([`super::silence`]): a dropped
    /// lease is revoked by the holders of the others well within a second, etcd's own expiry
    /// is the backstop when there is no other.
    fn grant(&self, ttl: Duration) -> BoxFuture<'_, io::Result<Lease>> {
        Box::pin(async move {
            let seconds = (ttl.as_secs_f64().ceil() as i64).max(1);
            let mut leases = self.client.lease_client();
            let granted = self.call("grant", "", leases.grant(seconds, None)).await?;
            let id = granted.id();
            let granted_ttl = Duration::from_secs(granted.ttl().max(1) as u64);
            let streams = self.call("keep alive", "", leases.keep_alive(id)).await?;
            let beats = self.watch(BEATS).await?;
            let beating = beats.current.iter().filter_map(|(key, _)| lease_of(key));
            let silence = Silence::new(id, beating);
            self.put(&beat_key(id), Vec::new(), Some(id)).await?;
            let (stop, stopped) = oneshot::channel();
            let keeper = KeepAlive {
                store: self.clone(),
                id,
                interval: granted_ttl / 3,
                silence,
            };
            self.runtime.spawn(keeper.run(streams, beats, stopped));
            let store = self.clone();
            Ok(Lease::new(id, move |revoke| {
                drop(stop);
                if !revoke {
                    return Box::pin(futures::future::ready(Ok(())));
                }
                Box::pin(async move {
                    let mut leases = store.client.lease_client();
                    let what = format!("revoke lease {id:x} of");
                    store.call(&what, "", leases.revoke(id)).await?;
                    Ok(())
                })
            }))
        })
    }

    /// Reads the prefix at a revision R, then watches from R + 1: no event is missed or seen
    /// twice, even when a write races the start.
    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<Watch>> {
        Box::pin(async move {
            let full = self.full(prefix);
            let mut kv = self.client.kv_client();
            let options = GetOptions::new().with_prefix();
            let answer = self
                .call("list", prefix, kv.get(full, Some(options)))
                .await?;
            let current = self.entries(answer.kvs())?;
            let revision = answer.header().map_or(0, |h| h.revision()) + 1;
            let stream = self.open_watch(prefix, revision).await?;
            let (sender, events) = mpsc::unbounded_channel();
            let forward = Forward {
                store: self.clone(),
                prefix: prefix.to_string(),
                revision,
                sender,
            };
            self.runtime.spawn(forward.run(stream));
            Ok(Watch { current, events })
        })
    }
}

impl EtcdStore {
    async fn open_watch(&self, prefix: &str, revision: i64) -> io::Result<WatchStream> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision);
        let mut watches = self.client.watch_client();
        let what = format!("watch from revision {revision}");
        let request = watches.watch(self.full(prefix), Some(options));
        self.call(&what, prefix, request).await
    }
}

/// A watch's task: passes etcd's events on, reopening the watch where it stopped when the
/// connection breaks; ends when the [`Watch`] is dropped, or when etcd has compacted the
/// events it would need (the receiver then sees the channel close).
struct Forward {
    store: EtcdStore,
    prefix: String,
    /// The first revision not passed on yet.
    revision: i64,
    sender: mpsc::UnboundedSender<Event>,
}

impl Forward {
    async fn run(mut self, mut stream: WatchStream) {
        loop {
            let message = tokio::select! {
                () = self.sender.closed() => return,
                message = stream.message() => message,
            };
            match message {
                Ok(Some(answer)) if answer.canceled() => {
                    tracing::error!(
                        "etcd at {}: watch of {}{} canceled at revision {} (compacted to {}): {}",
                        self.store.endpoints,
                        self.store.prefix,
                        self.prefix,
                        self.revision,
                        answer.compact_revision(),
                        answer.cancel_reason()
                    );
                    return;
                }
                Ok(Some(answer)) => {
                    for event in answer.events() {
                        if !self.pass_on(event) {
                            return;
                        }
                    }
                }
                Ok(None) | Err(_) => match self.reopen().await {
                    Some(reopened) => stream = reopened,
                    None => return,
                },
            }
        }
    }

    /// Sends one event on; false when it cannot be (the watch was dropped).
    fn pass_on(&mut self, event: &etcd_client::Event) -> bool {
        let Some(kv) = event.kv() else { return true };
        self.revision = self.revision.max(kv.mod_revision() + 1);
        let key = match self.store.key_of(kv.key()) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!("{e}");
                return true;
            }
        };
        let event = match event.event_type() {
            EventType::Put => Event::Put {
                key,
                value: kv.value().to_vec(),
            },
            EventType::Delete => Event::Delete { key },
        };
        self.sender.send(event).is_ok()
    }

    /// The watch opened again from the first revision not passed on; `None` once the
    /// watch was dropped.
    async fn reopen(&self) -> Option<WatchStream> {
        let mut pause = Duration::from_millis(50);
        loop {
            tokio::select! {
                () = self.sender.closed() => return None,
                () = tokio::time::sleep(pause) => {}
            }
            match self.store.open_watch(&self.prefix, self.revision).await {
                Ok(stream) => return Some(stream),
                Err(e) => tracing::debug!("{e}; trying again"),
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    }
}

/// A lease's task until the [`Lease`] is dropped or revoked: a keep-alive every `interval`, a
/// beat every [`BEAT`], and the revocation of the leases gone silent.
struct KeepAlive {
    store: EtcdStore,
    id: LeaseId,
    interval: Duration,
    silence: Silence,
}

type KeepAliveStreams = (etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream);

impl KeepAlive {
    async fn run(
        mut self,
        mut streams: KeepAliveStreams,
        beats: Watch,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat = tokio::time::interval(BEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // `None` once etcd ended the watch (compacted): the lease still beats for the others.
        let mut beats = Some(beats.events);
        loop {
            let (keeper, answers) = &mut streams;
            let next_beat = async {
                match &mut beats {
                    Some(events) => events.recv().await,
                    None => std::future::pending().await,
                }
            };
            let broken = tokio::select! {
                _ = &mut stopped => return,
                _ = ticks.tick() => keeper.keep_alive().await.is_err(),
                _ = beat.tick() => {
                    self.beat();
                    false
                }
                event = next_beat => {
                    match event {
                        Some(event) => self.judge(event),
                        None => beats = None,
                    }
                    false
                }
                answer = answers.message() => match answer {
                    Ok(Some(answer)) if answer.ttl() <= 0 => {
                        tracing::warn!(
                            "etcd at {}: lease {:x} expired: its keys are gone",
                            self.store.endpoints,
                            self.id
                        );
                        return;
                    }
                    Ok(Some(_)) => false,
                    Ok(None) | Err(_) => true,
                },
            };
            if broken {
                match self.reopen(&mut stopped).await {
                    Some(reopened) => streams = reopened,
                    None => return,
                }
            }
        }
    }

    /// Writes this lease's beat, without waiting for it: a slow write must not hold the
    /// keep-alive back.
    fn beat(&self) {
        let (store, id) = (self.store.clone(), self.id);
        self.runtime().spawn(async move {
            if let Err(e) = store.put(&beat_key(id), Vec::new(), Some(id)).await {
                tracing::debug!("lease {id:x} could not beat: {e}");
            }
        });
    }

    /// Counts a beat, or forgets an ended lease; revokes the leases gone silent.
    fn judge(&mut self, event: Event) {
        let silent = match event {
            Event::Put { key, .. } => lease_of(&key).map(|id| self.silence.beat(id)),
            Event::Delete { key } => {
                if let Some(id) = lease_of(&key) {
                    self.silence.ended(id);
                }
                None
            }
        };
        for id in silent.unwrap_or_default() {
            let store = self.store.clone();
            tracing::info!(
                "etcd at {}: lease {id:x} missed {SILENT_BEATS} beats of lease {:x}: revoking it",
                store.endpoints,
                self.id
            );
            self.runtime().spawn(async move {
                let mut leases = store.client.lease_client();
                let what = format!("revoke silent lease {id:x} of");
                if let Err(e) = store.call(&what, "", leases.revoke(id)).await {
                    tracing::debug!("{e}");
                }
            });
        }
    }

    fn runtime(&self) -> &Handle {
        &self.store.runtime
    }

    /// The keep-alive stream opened again; `None` once the lease was dropped.
    async fn reopen(&self, stopped: &mut oneshot::Receiver<()>) -> Option<KeepAliveStreams> {
        let mut pause = Duration::from_millis(50);
        loop {
            let mut leases = self.store.client.lease_client();
            tokio::select! {
                _ = &mut *stopped => return None,
                opened = self.store.call("keep alive", "", leases.keep_alive(self.id)) => {
                    match opened {
                        Ok(streams) => return Some(streams),
                        Err(e) => tracing::debug!("lease {:x}: {e}; trying again", self.id),
                    }
                }
            }
            tokio::select! {
                _ = &mut *stopped => return None,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    }
}

/// tonic's connector: TCP connections to the first endpoint that answers, from a namespace.
#[derive(Clone)]
struct Dialer {
    netns: Netns,
    endpoints: Arc<[SocketAddr]>,
}

impl Dialer {
    async fn dial(self) -> io::Result<TokioIo<TcpStream>> {
        let mut failures = Vec::new();
        for &address in self.endpoints.iter() {
            match self.dial_one(address).await {
                Ok(stream) => return Ok(TokioIo::new(stream)),
                Err(e) => failures.push((e.kind(), format!("{address}: {e}"))),
            }
        }
        let kind = failures.last().map_or(io::ErrorKind::Other, |(k, _)| *k);
        let texts: Vec<String> = failures.into_iter().map(|(_, text)| text).collect();
        Err(io::Error::new(kind, texts.join("; ")))
    }

    async fn dial_one(&self, address: SocketAddr) -> io::Result<TcpStream> {
        use socket2::{Domain, Protocol, Socket, Type};
        let netns = self.netns.clone();
        let opened = tokio::task::spawn_blocking(move || {
            netns.run(|| {
                Socket::new(
                    Domain::for_address(address),
                    Type::STREAM,
                    Some(Protocol::TCP),
                )
            })
        });
        let socket = (opened.await).map_err(io::Error::other)???;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(address)).await {
            Ok(connected) => connected,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
            )),
        }
    }
}

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<TokioIo<TcpStream>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        Box::pin(self.clone().dial())
    }
}

/// An error and its causes, `: `-separated (tonic's own texts say little: "transport error").
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The kind of the first I/O error among `error`'s causes (a refused connection, a timeout),
/// else `Other`.
fn kind(error: &(dyn StdError + 'static)) -> io::ErrorKind {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return io.kind();
        }
        source = cause.source();
    }
    io::ErrorKind::Other
}
