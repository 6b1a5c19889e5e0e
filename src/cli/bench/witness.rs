//! What node A of a swarm knows of the containers of other nodes on an overlay, read as often
//! as `bench convergence` polls: the forwarding entries of A's overlay sandbox (the VXLAN
//! device's FDB, over netlink: `bridge fdb show` without a process) and the answer of the
//! embedded DNS to a query sent from inside A's container to 127.0.0.11. Both sockets are
//! opened once, inside their namespaces, and reused for every poll.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow};
use drydock_netsim::Netns;
use drydock_netsim::netns::Netlink;
use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};

/// The embedded DNS server, as containers reach it.
const EMBEDDED_DNS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)), 53);

/// How long one query may wait for its answer (a poll without an answer tells nothing).
const ANSWER_WAIT: Duration = Duration::from_millis(100);

/// A's two views: its resolver (from inside its container) and its overlay sandbox's FDB.
pub(super) struct Witness {
    dns: tokio::net::UdpSocket,
    fdb: Netlink,
    /// The id of the next query.
    next_id: u16,
}

/// An answer of the embedded DNS to an A query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    /// The response code (0 NOERROR, 3 NXDOMAIN...).
    pub(super) rcode: u8,
    /// The addresses of its A records.
    pub(super) addresses: Vec<Ipv4Addr>,
}

impl Witness {
    /// Opens a UDP socket inside `container` towards 127.0.0.11:53 and a netlink socket inside
    /// `sandbox`. Must be called inside a tokio runtime.
    pub(super) fn open(container: &Netns, sandbox: &Netns) -> anyhow::Result<Witness> {
        let socket = container.run(|| -> std::io::Result<std::net::UdpSocket> {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
            socket.connect(EMBEDDED_DNS)?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })??;
        Ok(Witness {
            dns: tokio::net::UdpSocket::from_std(socket)?,
            fdb: sandbox
                .netlink()
                .context("netlink in the overlay sandbox")?,
            next_id: fastrand_id(),
        })
    }

    /// The MACs the sandbox's FDB sends to VTEP `vtep` (`bridge fdb show`: `MAC dev vxlan0
    /// dst VTEP self permanent`), lower-case `aa:bb:..`.
    pub(super) async fn fdb(&self, vtep: IpAddr) -> anyhow::Result<BTreeSet<String>> {
        let mut entries = self
            .fdb
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute();
        let mut macs = BTreeSet::new();
        while let Some(entry) = entries.try_next().await.map_err(|e| anyhow!("{e}"))? {
            let (mut mac, mut dst) = (None, None);
            for attribute in entry.attributes {
                match attribute {
                    NeighbourAttribute::LinkLayerAddress(bytes) => mac = Some(mac_text(&bytes)),
                    // Bridge-family entries carry their destination unparsed.
                    NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                        dst = vtep_address(&bytes);
                    }
                    _ => {}
                }
            }
            if let (Some(mac), Some(dst)) = (mac, dst)
                && dst == vtep
            {
                macs.insert(mac);
            }
        }
        Ok(macs)
    }

    /// Asks the embedded DNS for the A records of `name`; `None` when no answer came within
    /// [`ANSWER_WAIT`].
    pub(super) async fn resolve(&mut self, name: &str) -> anyhow::Result<Option<Answer>> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.dns.send(&query(id, name)).await?;
        let mut buf = [0u8; 1500];
        let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        loop {
            let received = tokio::time::timeout_at(deadline, self.dns.recv(&mut buf)).await;
            let Ok(received) = received else {
                return Ok(None);
            };
            match received {
                // Late answers to earlier queries are skipped.
                Ok(n) => match answer(&buf[..n], id) {
                    Some(answer) => return Ok(Some(answer)),
                    None => continue,
                },
                // An ICMP error from an earlier send: no answer this time.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Closes the netlink socket (the sandbox namespace is then held by nothing of ours).
    pub(super) async fn close(self) {
        self.fdb.close().await;
    }
}

/// The VTEP address in an FDB entry's `NDA_DST` (4 or 16 bytes).
fn vtep_address(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// A starting query id that differs from run to run.
fn fastrand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ std::process::id()) as u16
}

/// `02:42:0a:00:01:04`.
fn mac_text(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

/// A standard query with RD set for the A records of `name` (taken as absolute).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12 + name.len() + 6);
    bytes.extend_from_slice(&id.to_be_bytes());
    // Flags: RD; one question.
    bytes.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        bytes.push(label.len() as u8);
        bytes.extend_from_slice(label.as_bytes());
    }
    bytes.push(0);
    // QTYPE A, QCLASS IN.
    bytes.extend_from_slice(&[0, 1, 0, 1]);
    bytes
}

/// The answer in `bytes` to query `id`: its code and A records; `None` when it is not a
/// response to that query or cannot be read.
fn answer(bytes: &[u8], id: u16) -> Option<Answer> {
    if bytes.len() < 12 || u16::from_be_bytes([bytes[0], bytes[1]]) != id || bytes[2] & 0x80 == 0 {
        return None;
    }
    let rcode = bytes[3] & 0x0f;
    let count = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    let (questions, answers) = (count(4), count(6));
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(bytes, at)? + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..answers {
        at = skip_name(bytes, at)?;
        let fixed = bytes.get(at..at + 10)?;
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let length = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = bytes.get(at + 10..at + 10 + length)?;
        if kind == 1 && length == 4 {
            addresses.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + length;
    }
    Some(Answer { rcode, addresses })
}

/// The offset after the (possibly compressed) name at `at`.
fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *bytes.get(at)?;
        match length {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_asks_for_the_a_records_of_an_absolute_name() {
        assert_eq!(
            query(0x1234, "b"),
            [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, // header
                1, b'b', 0, 0, 1, 0, 1, // b. A IN
            ]
        );
    }

    #[test]
    fn an_answer_gives_its_code_and_addresses() {
        let mut response = query(7, "b");
        response[2] |= 0x80; // QR
        response[7] = 2; // two answers
        for last in [4, 9] {
            // A pointer to the question's name, A, IN, TTL 600, 4 bytes.
            response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4]);
            response.extend_from_slice(&[10, 0, 1, last]);
        }
        let expected = Answer {
            rcode: 0,
            addresses: vec![Ipv4Addr::new(10, 0, 1, 4), Ipv4Addr::new(10, 0, 1, 9)],
        };
        assert_eq!(answer(&response, 7), Some(expected));
        assert_eq!(answer(&response, 8), None, "another query's answer");
        assert_eq!(answer(&query(7, "b"), 7), None, "a query is no answer");
    }

    #[test]
    fn nxdomain_has_no_addresses() {
        let mut response = query(9, "b");
        response[2] |= 0x80;
        response[3] = 3;
        let expected = Answer {
            rcode: 3,
            addresses: Vec::new(),
        };
        assert_eq!(answer(&response, 9), Some(expected));
    }

    #[test]
    fn a_truncated_answer_is_not_read() {
        let mut response = query(7, "b");
        response[2] |= 0x80;
        response[7] = 1;
        response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0]);
        assert_eq!(answer(&response, 7), None);
    }
}
