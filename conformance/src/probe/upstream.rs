//! The lab's upstream DNS server: NXDOMAIN for every name, on `127.0.0.1:53` of a lab host.
//!
//! Engines under test are told `--dns 127.0.0.1`, so that their DNS never forwards a query off
//! the machine. With this server listening there, a name the engine does not know gets a real
//! answer (NXDOMAIN, authoritative, recursion available) instead of silence, so that scenarios
//! can tell "the engine forwarded and the name does not exist" from "nothing answered". It needs
//! nothing but the lab host's namespace: every target gets the same upstream.
//!
//! The answer is a pure function ([`nxdomain_answer`]); the I/O is one UDP socket and one TCP
//! listener, served from tasks until [`UpstreamDns::close`] (or drop).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use drydock_netsim::Netns;
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use socket2::{Domain, SockAddr, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::dns::tcp_message;
use super::sock;

/// Where the server listens, inside the lab host's namespace.
pub const UPSTREAM: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 53);

/// How long a TCP client may take to send a whole query.
const TCP_WAIT: Duration = Duration::from_secs(5);

/// A DNS server answering NXDOMAIN for every name on `127.0.0.1:53` (UDP and TCP) of one
/// namespace, until closed or dropped.
#[derive(Debug)]
pub struct UpstreamDns {
    tasks: Vec<JoinHandle<()>>,
    /// Dropping it tells the tasks to stop.
    stop: Option<watch::Sender<()>>,
}

impl UpstreamDns {
    /// Starts the server inside `netns` (whose `lo` must be up). Must be called inside a tokio
    /// runtime; fails when the port is taken.
    pub fn start(netns: &Netns) -> io::Result<Self> {
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
            runtime.spawn(serve_udp(udp, stopped.clone())),
            runtime.spawn(serve_tcp(tcp, stopped)),
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

async fn serve_udp(socket: UdpSocket, mut stop: watch::Receiver<()>) {
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
        if let Some(answer) = nxdomain_answer(&buf[..n])
            && let Err(e) = socket.send_to(&answer, peer).await
        {
            tracing::debug!("upstream DNS: answer to {peer}: {e}");
        }
    }
}

async fn serve_tcp(listener: TcpListener, mut stop: watch::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer_tcp(stream));
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
async fn answer_tcp(stream: TcpStream) {
    let served = async {
        let mut buf = Vec::new();
        loop {
            while let Some(query) = tcp_message(&buf) {
                let used = query.len() + 2;
                if let Some(answer) = nxdomain_answer(query) {
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

/// The answer to `request`: NXDOMAIN (authoritative, recursion available, the root's SOA in
/// the authority section) for a standard query with one question, NOTIMP for other opcodes,
/// FORMERR for a query that does not parse; `None` for what is not a query at all (too short
/// for a header, or a response), which gets no answer.
pub(crate) fn nxdomain_answer(request: &[u8]) -> Option<Vec<u8>> {
    let header = request.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([header[0], header[1]]);
    let op_code = OpCode::from_u8((header[2] >> 3) & 0x0f);
    let mut response = Message::error_msg(id, op_code, ResponseCode::FormErr);
    match Message::from_vec(request) {
        Ok(query) if op_code != OpCode::Query => {
            response.metadata.response_code = ResponseCode::NotImp;
            response.add_queries(query.queries);
        }
        Ok(query) if query.queries.len() == 1 => {
            response.metadata.response_code = ResponseCode::NXDomain;
            response.metadata.authoritative = true;
            response.metadata.recursion_available = true;
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.add_queries(query.queries);
            let soa = SOA::new(
                Name::from_ascii("lab.").ok()?,
                Name::from_ascii("nobody.lab.").ok()?,
                1,
                3600,
                600,
                86400,
                60,
            );
            response.add_authority(Record::from_rdata(Name::root(), 60, RData::SOA(soa)));
        }
        Ok(_) | Err(_) => {}
    }
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::MessageType;
    use hickory_proto::rr::RecordType;

    use super::super::dns::{Answer, RecordKind, Resolution, answer, query};
    use super::*;

    #[test]
    fn every_name_is_nxdomain_with_recursion_available() {
        let request = query(0x1234, "example.invalid", RecordKind::A).unwrap();
        let bytes = nxdomain_answer(&request).unwrap();
        assert_eq!(
            answer(&bytes, 0x1234, RecordKind::A),
            Answer::Done(Resolution::NxDomain)
        );
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.message_type, MessageType::Response);
        assert!(message.metadata.authoritative);
        assert!(message.metadata.recursion_available);
        assert!(message.metadata.recursion_desired);
        assert_eq!(message.queries.len(), 1);
        assert_eq!(message.queries[0].name().to_string(), "example.invalid.");
        assert!(message.answers.is_empty());
        assert_eq!(message.authorities[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn other_requests_get_an_error_or_nothing() {
        let mut request = Message::from_vec(&query(7, "web", RecordKind::A).unwrap()).unwrap();
        request.metadata.op_code = OpCode::Status;
        let bytes = nxdomain_answer(&request.to_vec().unwrap()).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(message.metadata.id, 7);

        let garbage = [0, 9, 0x01, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0xff];
        let bytes = nxdomain_answer(&garbage).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(message.metadata.id, 9);

        // A response (QR set) and a runt are never answered.
        let response = nxdomain_answer(&query(3, "x", RecordKind::A).unwrap()).unwrap();
        assert_eq!(nxdomain_answer(&response), None);
        assert_eq!(nxdomain_answer(&[0, 1, 0]), None);
    }
}
