//! Docker's userland proxy (`docker-proxy`), as tasks in the engine's process.
//!
//! With `userland-proxy` on (the default), Docker Engine 20.10 runs one `docker-proxy` per
//! published port and address family. It listens on `HostIp:HostPort` in the host's network
//! namespace and relays every TCP connection, or UDP flow, to the container's `IP:port`. The
//! firewall DNATs traffic from other machines directly; the proxy serves what DNAT does not:
//! connections from the host itself to `127.0.0.1` (loopback is never DNAT'd) and from containers
//! on any bridge (20.10 skips DNAT for traffic arriving from its bridges). The connection towards
//! the container is made from the host's namespace, so the container sees the bridge's gateway
//! as the peer. The listening socket also reserves the port: publishing fails if it is taken.
//!
//! Behavior follows moby 20.10 `cmd/docker-proxy` (`tcp_proxy.go`, `udp_proxy.go`, Go's `net`):
//! - TCP: the listener has `SO_REUSEADDR`, IPv6 listeners `IPV6_V6ONLY` (Go's `tcp6`), so
//!   `0.0.0.0:P` and `[::]:P` coexist and a `[::]` listener relays to an IPv4 target. Accepted
//!   connections get `TCP_NODELAY` and 15 s keepalives (Go's defaults), backend connections
//!   `TCP_NODELAY`. Each direction is copied until EOF (or an error), then the destination's write
//!   side is shut down (half-close) and the source's read side; both sockets close once both
//!   directions are done. If the target refuses, the client connection is closed.
//! - UDP: one connected socket towards the target per client address; replies go back to that
//!   client from the listening socket. A flow expires when no reply came for
//!   [`UDP_FLOW_TIMEOUT`] (Docker resets its deadline on replies only; "connection refused" from
//!   an earlier datagram is ignored without resetting it). Datagrams up to 64 KiB.
//!
//! Every socket is created inside the host's namespace through [`Netns::run`] and then used from
//! tokio tasks. The listening socket is owned by the [`Proxy`] alone (tasks hold a weak
//! reference, upgraded only while polling), so that dropping the proxy closes it at once.
//!
//! One deliberate difference: docker-proxy stops (and exits) on any accept or receive error;
//! here an error such as `EMFILE` is logged and retried after [`ERROR_BACKOFF`], the port staying
//! reserved.

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::Duration;

use drydock_netsim::Netns;
use socket2::{Domain, SockRef, Socket, TcpKeepalive, Type};
use tokio::io::{AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// How long a UDP flow lives without a reply from the target (docker-proxy's
/// `UDPConnTrackTimeout`).
pub const UDP_FLOW_TIMEOUT: Duration = Duration::from_secs(90);

/// Size of UDP receive buffers: the largest datagram relayed whole (64 KiB).
pub const UDP_BUFFER_SIZE: usize = 65535;

/// Keepalive idle time and interval set on accepted connections (Go's `net` default).
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// Pause after an unexpected error on the listening socket before trying again.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// The transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP: connections are accepted and relayed.
    Tcp,
    /// UDP: datagrams are relayed per client address.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One published binding (protocol, host address and port → target): relays until stopped or
/// dropped.
///
/// Dropping it closes the listening socket before `drop` returns and tells its task to abort
/// every relay (done the next time the runtime runs); [`Proxy::stop`] also waits for that.
#[derive(Debug)]
pub struct Proxy {
    protocol: Protocol,
    local_addr: SocketAddr,
    target: SocketAddr,
    /// The only strong reference to the listening socket.
    listener: Option<Listener>,
    /// Dropped to tell the task to stop.
    quit: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The listening socket of a [`Proxy`].
#[derive(Debug)]
enum Listener {
    Tcp(Arc<TcpListener>),
    Udp(Arc<UdpSocket>),
}

impl Proxy {
    /// Binds `listen` inside `host` and relays to `target` (must be called inside a tokio
    /// runtime: the relay is a task on it).
    ///
    /// Fails at once if the address is taken ([`io::ErrorKind::AddrInUse`]), like docker-proxy;
    /// the error names the protocol and address.
    pub fn start(
        host: &Netns,
        protocol: Protocol,
        listen: SocketAddr,
        target: SocketAddr,
    ) -> io::Result<Proxy> {
        let socket = host
            .run(|| bind(protocol, listen))?
            .map_err(|e| io::Error::new(e.kind(), format!("listen {protocol} {listen}: {e}")))?;
        let (quit, quit_rx) = oneshot::channel();
        let host = host.clone();
        let (listener, local_addr, task) = match protocol {
            Protocol::Tcp => {
                let listener = Arc::new(TcpListener::from_std(socket.into())?);
                let local_addr = listener.local_addr()?;
                let weak = Arc::downgrade(&listener);
                let task = tokio::spawn(serve_tcp(weak, host, target, quit_rx));
                (Listener::Tcp(listener), local_addr, task)
            }
            Protocol::Udp => {
                let listener = Arc::new(UdpSocket::from_std(socket.into())?);
                let local_addr = listener.local_addr()?;
                let weak = Arc::downgrade(&listener);
                let task = tokio::spawn(serve_udp(weak, host, target, quit_rx));
                (Listener::Udp(listener), local_addr, task)
            }
        };
        tracing::debug!("proxy {protocol} {local_addr} -> {target}: started");
        Ok(Proxy {
            protocol,
            local_addr,
            target,
            listener: Some(listener),
            quit: Some(quit),
            task: Some(task),
        })
    }

    /// The bound address (with the port the kernel chose when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The protocol relayed.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The address relayed to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Stops: closes the listening socket at once (the port is free from the first poll of this
    /// future on), then aborts every relay and waits until their sockets are closed.
    pub async fn stop(mut self) {
        self.close();
        if let Some(task) = self.task.take() {
            // The task never panics on its own; a runtime shutting down cancels it: either way
            // it is over.
            let _ = task.await;
        }
    }

    /// Closes the listening socket and tells the task to stop; idempotent.
    fn close(&mut self) {
        match self.listener.take() {
            Some(Listener::Tcp(listener)) => close_now(listener),
            Some(Listener::Udp(listener)) => close_now(listener),
            None => return,
        }
        self.quit.take();
        tracing::debug!(
            "proxy {} {} -> {}: stopped",
            self.protocol,
            self.local_addr,
            self.target
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.close();
    }
}

/// Drops the last strong reference to a listening socket, which closes it. A task may hold a
/// second one for the duration of a poll on another worker thread: wait for that poll to end.
fn close_now<T>(listener: Arc<T>) {
    let weak = Arc::downgrade(&listener);
    drop(listener);
    while weak.strong_count() > 0 {
        std::thread::yield_now();
    }
}

/// Creates the listening socket (call inside the host's namespace).
fn bind(protocol: Protocol, listen: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(listen);
    let socket = match protocol {
        Protocol::Tcp => Socket::new(domain, Type::STREAM, Some(socket2::Protocol::TCP))?,
        Protocol::Udp => Socket::new(domain, Type::DGRAM, Some(socket2::Protocol::UDP))?,
    };
    if listen.is_ipv6() {
        // Go's "tcp6"/"udp6": a [::] listener leaves IPv4 to the 0.0.0.0 one.
        socket.set_only_v6(true)?;
    }
    if protocol == Protocol::Tcp {
        // Go sets it on every TCP listener: a port with connections in TIME_WAIT can be reused.
        socket.set_reuse_address(true)?;
    }
    socket.bind(&listen.into())?;
    if protocol == Protocol::Tcp {
        // The kernel caps the backlog at the namespace's net.core.somaxconn, which Go uses.
        socket.listen(libc::c_int::MAX)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Runs `f` inside `host` on a blocking thread (never on a runtime worker, never in a task).
async fn in_namespace<T, F>(host: &Netns, f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let host = host.clone();
    tokio::task::spawn_blocking(move || host.run(f))
        .await
        .map_err(io::Error::other)??
}

/// The error for "the proxy was stopped".
fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "proxy stopped")
}

// ---------------------------------------------------------------------------------------------
// TCP

/// Accepts connections and relays each until `quit` fires (or its sender is dropped).
async fn serve_tcp(
    listener: Weak<TcpListener>,
    host: Netns,
    target: SocketAddr,
    mut quit: oneshot::Receiver<()>,
) {
    let mut relays = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut quit => break,
            Some(_) = relays.join_next(), if !relays.is_empty() => continue,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok((client, peer)) => {
                relays.spawn(relay_tcp(client, peer, host.clone(), target));
            }
            Err(_) if listener.strong_count() == 0 => break,
            Err(e) => {
                tracing::warn!("proxy tcp -> {target}: accept: {e}");
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    relays.shutdown().await;
}

/// Accepts a connection; the listener is borrowed only while polled.
async fn accept(listener: &Weak<TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    poll_fn(|cx| match listener.upgrade() {
        Some(listener) => listener.poll_accept(cx),
        None => Poll::Ready(Err(stopped())),
    })
    .await
}

/// Connects to `target` from the host's namespace and relays both ways; if that fails, closes
/// the client connection.
async fn relay_tcp(client: TcpStream, peer: SocketAddr, host: Netns, target: SocketAddr) {
    let keepalive = TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE)
        .with_interval(TCP_KEEPALIVE);
    let _ = client.set_nodelay(true);
    let _ = SockRef::from(&client).set_tcp_keepalive(&keepalive);
    let backend = match connect(&host, target).await {
        Ok(backend) => backend,
        Err(e) => {
            // docker-proxy: "Can't forward traffic to backend tcp/...", then closes the client.
            tracing::debug!("proxy tcp {peer} -> {target}: can't forward traffic: {e}");
            return;
        }
    };
    drop(host);
    relay(client, backend).await;
}

/// A TCP connection to `target` whose socket lives in `host`.
async fn connect(host: &Netns, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = in_namespace(host, move || {
        Socket::new(
            Domain::for_address(target),
            Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
    })
    .await?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    TcpSocket::from_std_stream(socket.into())
        .connect(target)
        .await
}

/// Copies both ways with half-close; both connections close when both directions are done.
async fn relay(mut client: TcpStream, mut backend: TcpStream) {
    let (mut client_read, mut client_write) = client.split();
    let (mut backend_read, mut backend_write) = backend.split();
    tokio::join!(
        pipe(&mut client_read, &mut backend_write),
        pipe(&mut backend_read, &mut client_write),
    );
}

/// Copies until EOF or an error, then shuts down `to`'s write side and `from`'s read side.
async fn pipe(from: &mut ReadHalf<'_>, to: &mut WriteHalf<'_>) {
    let _ = tokio::io::copy(from, to).await;
    let _ = to.shutdown().await;
    let _ = SockRef::from(from.as_ref()).shutdown(Shutdown::Read);
}

// ---------------------------------------------------------------------------------------------
// UDP

/// The open flows of a UDP proxy: client address → socket connected to the target.
type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>;

/// Relays datagrams per client until `quit` fires (or its sender is dropped).
async fn serve_udp(
    listener: Weak<UdpSocket>,
    host: Netns,
    target: SocketAddr,
    mut quit: oneshot::Receiver<()>,
) {
    let flows: Flows = Arc::default();
    let mut replies = JoinSet::new();
    let mut buffer = vec![0; UDP_BUFFER_SIZE];
    loop {
        let received = tokio::select! {
            biased;
            _ = &mut quit => break,
            Some(_) = replies.join_next(), if !replies.is_empty() => continue,
            received = recv_from(&listener, &mut buffer) => received,
        };
        let (len, client) = match received {
            Ok(received) => received,
            Err(_) if listener.strong_count() == 0 => break,
            Err(e) => {
                tracing::warn!("proxy udp -> {target}: receive: {e}");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        let existing = flows.lock().expect("flows lock").get(&client).cloned();
        let flow = match existing {
            Some(flow) => flow,
            None => match udp_flow(&host, target).await {
                Ok(flow) => {
                    let flow = Arc::new(flow);
                    flows
                        .lock()
                        .expect("flows lock")
                        .insert(client, Arc::clone(&flow));
                    replies.spawn(udp_replies(
                        Arc::clone(&flow),
                        listener.clone(),
                        client,
                        Arc::clone(&flows),
                    ));
                    flow
                }
                Err(e) => {
                    tracing::debug!("proxy udp {client} -> {target}: can't proxy a datagram: {e}");
                    continue;
                }
            },
        };
        if let Err(e) = flow.send(&buffer[..len]).await {
            // A refused earlier datagram shows up here (ICMP port unreachable): dropped, as
            // docker-proxy does; the flow stays.
            tracing::debug!("proxy udp {client} -> {target}: can't proxy a datagram: {e}");
        }
    }
    replies.shutdown().await;
}

/// Receives a datagram on the listening socket, borrowed only while polled.
async fn recv_from(
    listener: &Weak<UdpSocket>,
    buffer: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    let mut buffer = ReadBuf::new(buffer);
    let from = poll_fn(|cx| match listener.upgrade() {
        Some(listener) => listener.poll_recv_from(cx, &mut buffer),
        None => Poll::Ready(Err(stopped())),
    })
    .await?;
    Ok((buffer.filled().len(), from))
}

/// Sends a datagram from the listening socket, borrowed only while polled.
async fn send_to(listener: &Weak<UdpSocket>, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
    poll_fn(|cx| match listener.upgrade() {
        Some(listener) => listener.poll_send_to(cx, datagram, to),
        None => Poll::Ready(Err(stopped())),
    })
    .await
}

/// A UDP socket in `host` connected to `target`.
async fn udp_flow(host: &Netns, target: SocketAddr) -> io::Result<UdpSocket> {
    let socket = in_namespace(host, move || {
        let socket = Socket::new(
            Domain::for_address(target),
            Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        socket.connect(&target.into())?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    })
    .await?;
    UdpSocket::from_std(socket.into())
}

/// Sends the target's replies on `flow` back to `client` from the listening socket, until no
/// reply came for [`UDP_FLOW_TIMEOUT`]; then forgets the flow.
async fn udp_replies(
    flow: Arc<UdpSocket>,
    listener: Weak<UdpSocket>,
    client: SocketAddr,
    flows: Flows,
) {
    let mut buffer = vec![0; UDP_BUFFER_SIZE];
    let mut deadline = Instant::now() + UDP_FLOW_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, flow.recv(&mut buffer)).await {
            Err(_elapsed) => break,
            // Nothing listens on the target (the ICMP error of an earlier datagram): keep
            // waiting, without extending the deadline.
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Ok(Err(e)) => {
                tracing::debug!("proxy udp {client}: receive from target: {e}");
                break;
            }
            Ok(Ok(len)) => {
                if let Err(e) = send_to(&listener, &buffer[..len], client).await {
                    tracing::debug!("proxy udp {client}: reply: {e}");
                    break;
                }
                deadline = Instant::now() + UDP_FLOW_TIMEOUT;
            }
        }
    }
    let mut flows = flows.lock().expect("flows lock");
    if flows.get(&client).is_some_and(|f| Arc::ptr_eq(f, &flow)) {
        flows.remove(&client);
    }
}
