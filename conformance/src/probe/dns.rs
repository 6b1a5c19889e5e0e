//! `resolve`: one DNS query, the way a container's stub resolver asks.
//!
//! Messages are built and read with hickory-proto (pure functions [`query`], [`answer`] and
//! [`reverse_name`]); the I/O is one connected UDP socket, and TCP when the UDP answer comes back
//! truncated (or when the query is asked over TCP from the start).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use drydock_netsim::Netns;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::time::Instant;

use super::Proto;
use super::sock::{self, Failure, RESEND};

/// The record type to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// The name of an address (asked for its reverse name, see [`reverse_name`]).
    Ptr,
    /// Mail exchangers.
    Mx,
}

impl RecordKind {
    fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Ptr => RecordType::PTR,
            Self::Mx => RecordType::MX,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Ptr => "PTR",
            Self::Mx => "MX",
        })
    }
}

/// What a record of the kind asked for holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordData {
    /// An address (A, AAAA).
    Address(IpAddr),
    /// A domain name, absolute, as the server wrote it (PTR, the exchange of an MX).
    Name(String),
}

impl fmt::Display for RecordData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// One record of an answer: what it holds, and its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The record's data.
    pub data: RecordData,
    /// Its time to live, in seconds.
    pub ttl: u32,
}

impl Answered {
    /// A record holding `ip`.
    pub fn address(ip: IpAddr, ttl: u32) -> Self {
        Self {
            data: RecordData::Address(ip),
            ttl,
        }
    }
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The records of the kind asked for, in the order the server gave them.
    Answers(Vec<Answered>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// NOERROR without any record of the kind asked for (the name exists, or is a CNAME only).
    NoRecords,
    /// Any other response code.
    Failure {
        /// Its mnemonic: `SERVFAIL`, `REFUSED`, `FORMERR`, ... or `RCODE12`.
        rcode: String,
    },
    /// No answer before the timeout.
    Timeout,
    /// Nothing listens at the server's address: an ICMP port unreachable (or a TCP reset).
    Refused,
    /// The probe failed: no socket, another ICMP error (no route...), a malformed answer.
    Error(String),
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Answers(records) => {
                f.write_str("answers ")?;
                let one_ttl = records.windows(2).all(|w| w[0].ttl == w[1].ttl);
                for (i, record) in records.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", record.data)?;
                    if !one_ttl {
                        write!(f, " (ttl {})", record.ttl)?;
                    }
                }
                match records.first() {
                    Some(first) if one_ttl => write!(f, " (ttl {})", first.ttl),
                    _ => Ok(()),
                }
            }
            Self::NxDomain => f.write_str("NXDOMAIN"),
            Self::NoRecords => f.write_str("no records (NOERROR)"),
            Self::Failure { rcode } => f.write_str(rcode),
            Self::Timeout => f.write_str("timed out"),
            Self::Refused => f.write_str("refused (nothing listens there)"),
            Self::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Asks `server` for the `kind` records of `name` over `proto`, from inside `from`, for at most
/// `timeout`.
///
/// One query with RD set; `name` is taken as absolute (`web` is asked as `web.`). Over UDP it is
/// sent again every second until answered, and a truncated (TC) answer is retried over TCP to
/// the same server within what is left of the timeout; over TCP it is sent once on one
/// connection. Answers not matching the query's id are ignored.
pub async fn resolve(
    from: &Netns,
    server: SocketAddr,
    name: &str,
    kind: RecordKind,
    proto: Proto,
    timeout: Duration,
) -> Resolution {
    let deadline = Instant::now() + timeout;
    let id = rand_id();
    let request = match query(id, name, kind) {
        Ok(request) => request,
        Err(e) => return Resolution::Error(e),
    };
    if proto == Proto::Tcp {
        return over_tcp(from, server, &request, id, kind, deadline, "TCP").await;
    }
    match over_udp(from, server, &request, id, kind, deadline).await {
        Some(resolution) => resolution,
        None => {
            let context = "truncated over UDP; TCP";
            over_tcp(from, server, &request, id, kind, deadline, context).await
        }
    }
}

/// The name a PTR query for `ip` asks: `4.3.2.1.in-addr.arpa.`, or 32 nibbles and `ip6.arpa.`.
pub fn reverse_name(ip: IpAddr) -> String {
    let mut name = Name::from(ip);
    name.set_fqdn(true);
    name.to_ascii()
}

/// The resolution over UDP, or `None` when the answer was truncated.
async fn over_udp(
    from: &Netns,
    server: SocketAddr,
    request: &[u8],
    id: u16,
    kind: RecordKind,
    deadline: Instant,
) -> Option<Resolution> {
    let socket = match sock::connected_udp(from, server) {
        Ok(socket) => socket,
        Err(e) => return Some(failure(&e)),
    };
    let mut buf = vec![0u8; 65536];
    loop {
        if let Err(e) = socket.send(request).await {
            return Some(failure(&e));
        }
        let wake = deadline.min(Instant::now() + RESEND);
        loop {
            match tokio::time::timeout_at(wake, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Some(failure(&e)),
                Ok(Ok(n)) => match answer(&buf[..n], id, kind) {
                    Answer::NotOurs => {}
                    Answer::Truncated => return None,
                    Answer::Done(resolution) => return Some(resolution),
                },
            }
        }
        if wake >= deadline {
            return Some(Resolution::Timeout);
        }
    }
}

/// The resolution over one TCP connection; `context` starts the message of an error.
async fn over_tcp(
    from: &Netns,
    server: SocketAddr,
    request: &[u8],
    id: u16,
    kind: RecordKind,
    deadline: Instant,
    context: &str,
) -> Resolution {
    let tcp_failure = |what: String| Resolution::Error(format!("{context}: {what}"));
    let stream = match sock::connect_tcp(from, server, deadline).await {
        Ok(stream) => stream,
        Err(Failure::Timeout) => return Resolution::Timeout,
        Err(Failure::Refused) => return Resolution::Refused,
        Err(Failure::Unreachable(e) | Failure::Other(e)) => return tcp_failure(e),
    };
    let exchange = async {
        let mut framed = Vec::with_capacity(request.len() + 2);
        framed.extend_from_slice(&u16::try_from(request.len()).unwrap_or(0).to_be_bytes());
        framed.extend_from_slice(request);
        sock::write_all(&stream, &framed).await?;
        let mut buf = Vec::new();
        loop {
            if let Some(message) = tcp_message(&buf) {
                return Ok(message.to_vec());
            }
            if sock::read_some(&stream, &mut buf, 65537).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before a whole answer",
                ));
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => Resolution::Timeout,
        Ok(Err(e)) => tcp_failure(sock::os_message(&e)),
        Ok(Ok(message)) => match answer(&message, id, kind) {
            Answer::Done(resolution) => resolution,
            Answer::Truncated => Resolution::Failure {
                rcode: "truncated".into(),
            },
            Answer::NotOurs => tcp_failure("answer for another query".into()),
        },
    }
}

fn failure(error: &std::io::Error) -> Resolution {
    match Failure::of(error) {
        Failure::Timeout => Resolution::Timeout,
        Failure::Refused => Resolution::Refused,
        Failure::Unreachable(_) | Failure::Other(_) => Resolution::Error(sock::os_message(error)),
    }
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) as u16
}

/// The first whole DNS message of a TCP stream (two-byte length prefix), if it has arrived.
pub(crate) fn tcp_message(stream: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes(stream.get(..2)?.try_into().ok()?));
    stream.get(2..2 + len)
}

/// A query for the `kind` records of `name` (taken as absolute), recursion desired.
pub(crate) fn query(id: u16, name: &str, kind: RecordKind) -> Result<Vec<u8>, String> {
    let mut qname = Name::from_ascii(name).map_err(|e| format!("invalid name {name:?}: {e}"))?;
    qname.set_fqdn(true);
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(qname, kind.record_type()));
    message
        .to_vec()
        .map_err(|e| format!("cannot encode a query for {name:?}: {e}"))
}

/// What a received message means for a query `id` for `kind` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A final answer.
    Done(Resolution),
    /// The server set TC: ask again over TCP.
    Truncated,
    /// Not an answer to this query (another id, or not a response): keep waiting.
    NotOurs,
}

/// Reads `bytes` as the answer to query `id` for `kind` records.
pub(crate) fn answer(bytes: &[u8], id: u16, kind: RecordKind) -> Answer {
    if bytes.get(..2) != Some(&id.to_be_bytes()[..]) {
        return Answer::NotOurs;
    }
    let message = match Message::from_vec(bytes) {
        Ok(message) => message,
        Err(e) => return Answer::Done(Resolution::Error(format!("malformed answer: {e}"))),
    };
    if message.metadata.message_type != MessageType::Response {
        return Answer::NotOurs;
    }
    match message.metadata.response_code {
        ResponseCode::NoError if message.metadata.truncation => Answer::Truncated,
        ResponseCode::NoError => {
            let records: Vec<Answered> = message
                .answers
                .iter()
                .filter_map(|record| {
                    let data = match (&record.data, kind) {
                        (RData::A(a), RecordKind::A) => RecordData::Address(IpAddr::V4(a.0)),
                        (RData::AAAA(aaaa), RecordKind::Aaaa) => {
                            RecordData::Address(IpAddr::V6(aaaa.0))
                        }
                        (RData::PTR(ptr), RecordKind::Ptr) => RecordData::Name(ptr.0.to_ascii()),
                        (RData::MX(mx), RecordKind::Mx) => RecordData::Name(mx.exchange.to_ascii()),
                        _ => return None,
                    };
                    Some(Answered {
                        data,
                        ttl: record.ttl,
                    })
                })
                .collect();
            Answer::Done(if records.is_empty() {
                Resolution::NoRecords
            } else {
                Resolution::Answers(records)
            })
        }
        ResponseCode::NXDomain => Answer::Done(Resolution::NxDomain),
        other => Answer::Done(Resolution::Failure {
            rcode: rcode_name(other),
        }),
    }
}

/// The mnemonic of a response code, as dig prints it.
pub(crate) fn rcode_name(code: ResponseCode) -> String {
    let name = match u16::from(code) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        n => return format!("RCODE{n}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, PTR};

    use super::*;

    fn response_to(request: &[u8], code: ResponseCode, records: Vec<RData>) -> Message {
        let request = Message::from_vec(request).unwrap();
        let mut response = Message::response(request.metadata.id, OpCode::Query);
        response.metadata.response_code = code;
        let name = request.queries[0].name().clone();
        response.add_queries(request.queries);
        for data in records {
            response.add_answer(Record::from_rdata(name.clone(), 60, data));
        }
        response
    }

    #[test]
    fn query_is_absolute_with_recursion_desired() {
        let bytes = query(0x4242, "web", RecordKind::A).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.id, 0x4242);
        assert_eq!(message.metadata.message_type, MessageType::Query);
        assert!(message.metadata.recursion_desired);
        assert_eq!(message.queries.len(), 1);
        assert_eq!(message.queries[0].name().to_string(), "web.");
        assert_eq!(message.queries[0].query_type(), RecordType::A);
        assert!(message.edns.is_none());

        let bytes = query(1, "db.example.", RecordKind::Aaaa).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.queries[0].name().to_string(), "db.example.");
        assert_eq!(message.queries[0].query_type(), RecordType::AAAA);

        assert!(query(1, "bad..name", RecordKind::A).is_err());
    }

    #[test]
    fn answers_keep_their_order_kind_and_ttl() {
        let request = query(7, "web", RecordKind::A).unwrap();
        let cname = CNAME(Name::from_ascii("real.").unwrap());
        let response = response_to(
            &request,
            ResponseCode::NoError,
            vec![
                RData::CNAME(cname),
                RData::A(A(Ipv4Addr::new(172, 18, 0, 3))),
                RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
                RData::A(A(Ipv4Addr::new(172, 18, 0, 2))),
            ],
        );
        let bytes = response.to_vec().unwrap();
        let expected = Resolution::Answers(vec![
            Answered::address("172.18.0.3".parse().unwrap(), 60),
            Answered::address("172.18.0.2".parse().unwrap(), 60),
        ]);
        assert_eq!(
            expected.to_string(),
            "answers 172.18.0.3, 172.18.0.2 (ttl 60)".to_string()
        );
        assert_eq!(answer(&bytes, 7, RecordKind::A), Answer::Done(expected));
        assert_eq!(
            answer(&bytes, 7, RecordKind::Aaaa),
            Answer::Done(Resolution::Answers(vec![Answered::address(
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                60
            )]))
        );
        // Nothing of the kind asked for: no records.
        assert_eq!(
            answer(&bytes, 7, RecordKind::Ptr),
            Answer::Done(Resolution::NoRecords)
        );
    }

    #[test]
    fn ptr_and_mx_answers_are_names() {
        let request = query(
            8,
            &reverse_name("172.18.0.2".parse().unwrap()),
            RecordKind::Ptr,
        )
        .unwrap();
        let message = Message::from_vec(&request).unwrap();
        assert_eq!(
            message.queries[0].name().to_string(),
            "2.0.18.172.in-addr.arpa."
        );
        assert_eq!(message.queries[0].query_type(), RecordType::PTR);
        let target = Name::from_ascii("web.app-net.").unwrap();
        let mut response = response_to(
            &request,
            ResponseCode::NoError,
            vec![RData::PTR(PTR(target))],
        );
        response.answers[0].ttl = 600;
        let got = answer(&response.to_vec().unwrap(), 8, RecordKind::Ptr);
        let expected = Resolution::Answers(vec![Answered {
            data: RecordData::Name("web.app-net.".into()),
            ttl: 600,
        }]);
        assert_eq!(expected.to_string(), "answers web.app-net. (ttl 600)");
        assert_eq!(got, Answer::Done(expected));

        let request = query(9, "web", RecordKind::Mx).unwrap();
        assert_eq!(
            Message::from_vec(&request).unwrap().queries[0].query_type(),
            RecordType::MX
        );
        let mx = MX::new(10, Name::from_ascii("mail.example.").unwrap());
        let mut response = response_to(&request, ResponseCode::NoError, vec![RData::MX(mx)]);
        response.add_answer(Record::from_rdata(
            Name::from_ascii("web.").unwrap(),
            30,
            RData::MX(MX::new(20, Name::from_ascii("backup.example.").unwrap())),
        ));
        let got = answer(&response.to_vec().unwrap(), 9, RecordKind::Mx);
        let Answer::Done(resolution) = got else {
            panic!("{got:?}");
        };
        assert_eq!(
            resolution.to_string(),
            "answers mail.example. (ttl 60), backup.example. (ttl 30)"
        );
    }

    #[test]
    fn reverse_names_of_both_families() {
        assert_eq!(
            reverse_name("10.1.2.3".parse().unwrap()),
            "3.2.1.10.in-addr.arpa."
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }

    #[test]
    fn response_codes_map_to_outcomes() {
        let request = query(9, "nope", RecordKind::A).unwrap();
        let bytes = |code| response_to(&request, code, vec![]).to_vec().unwrap();
        assert_eq!(
            answer(&bytes(ResponseCode::NXDomain), 9, RecordKind::A),
            Answer::Done(Resolution::NxDomain)
        );
        assert_eq!(
            answer(&bytes(ResponseCode::NoError), 9, RecordKind::A),
            Answer::Done(Resolution::NoRecords)
        );
        let servfail = answer(&bytes(ResponseCode::ServFail), 9, RecordKind::A);
        assert_eq!(
            servfail,
            Answer::Done(Resolution::Failure {
                rcode: "SERVFAIL".into()
            })
        );
        assert_eq!(
            answer(&bytes(ResponseCode::Refused), 9, RecordKind::A),
            Answer::Done(Resolution::Failure {
                rcode: "REFUSED".into()
            })
        );
    }

    #[test]
    fn truncation_other_ids_and_garbage() {
        let request = query(5, "big", RecordKind::A).unwrap();
        let mut response = response_to(&request, ResponseCode::NoError, vec![]);
        response.metadata.truncation = true;
        let bytes = response.to_vec().unwrap();
        assert_eq!(answer(&bytes, 5, RecordKind::A), Answer::Truncated);
        assert_eq!(answer(&bytes, 6, RecordKind::A), Answer::NotOurs);
        // Our own query echoed back is not an answer.
        assert_eq!(answer(&request, 5, RecordKind::A), Answer::NotOurs);
        match answer(&[0, 5, 0x81], 5, RecordKind::A) {
            Answer::Done(Resolution::Error(e)) => assert!(e.starts_with("malformed answer")),
            other => panic!("{other:?}"),
        }
        assert_eq!(answer(&[], 5, RecordKind::A), Answer::NotOurs);
    }

    #[test]
    fn tcp_framing() {
        assert_eq!(tcp_message(&[0, 2, 9, 9, 7]), Some(&[9, 9][..]));
        assert_eq!(tcp_message(&[0, 3, 9, 9]), None);
        assert_eq!(tcp_message(&[0]), None);
    }

    #[test]
    fn rcodes_and_outcomes_read_well() {
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::Unknown(12)), "RCODE12");
        assert_eq!(Resolution::NxDomain.to_string(), "NXDOMAIN");
        assert_eq!(Resolution::NoRecords.to_string(), "no records (NOERROR)");
        let failure = Resolution::Failure {
            rcode: "SERVFAIL".into(),
        };
        assert_eq!(failure.to_string(), "SERVFAIL");
        assert_eq!(Resolution::Timeout.to_string(), "timed out");
        assert_eq!(
            Resolution::Refused.to_string(),
            "refused (nothing listens there)"
        );
    }
}
