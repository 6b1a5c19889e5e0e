//! Property tests of the request handler, fed arbitrary bytes and generated queries against
//! generated networks: it never panics, every reply is a well-formed answer to its query that
//! fits its transport, and no answer reveals a container on a network the asker does not share.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use proptest::prelude::*;

use super::answer::{Action, Transport, answer};
use super::records::{Entry, NetworkRecords, Records, SandboxEndpoint, SandboxView};

const NETWORKS: usize = 3;
const CONTAINERS: usize = 6;
const ALIASES: [&str; 3] = ["svc", "db", "Web"];

/// Which networks each container is on, its aliases, and the asker's networks and options.
#[derive(Debug, Clone)]
struct World {
    membership: Vec<[bool; NETWORKS]>,
    aliases: Vec<Option<usize>>,
    asker: [bool; NETWORKS],
    ndots_set: bool,
}

fn address(network: usize, container: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, network as u8, 0, container as u8 + 2)
}

impl World {
    fn build(&self) -> (Records, SandboxView) {
        let mut records = Records::default();
        for n in 0..NETWORKS {
            let entries = (0..CONTAINERS)
                .filter(|&c| self.membership[c][n])
                .map(|c| Entry {
                    name: format!("c{c}"),
                    aliases: self.aliases[c]
                        .map(|a| ALIASES[a].to_string())
                        .into_iter()
                        .collect(),
                    ip4: Some(address(n, c)),
                    ip6: None,
                })
                .collect();
            records.networks.insert(
                format!("id{n}"),
                NetworkRecords {
                    name: format!("net{n}"),
                    ipv6: false,
                    entries,
                },
            );
        }
        let sandbox = SandboxView {
            endpoints: (0..NETWORKS)
                .filter(|&n| self.asker[n])
                .map(|n| SandboxEndpoint {
                    network: format!("id{n}"),
                    links: BTreeMap::new(),
                })
                .collect(),
            upstreams: Vec::new(),
            ndots_set: self.ndots_set,
        };
        (records, sandbox)
    }

    /// Addresses the asker may learn: those of containers on the networks it is on.
    fn visible(&self, ip: IpAddr) -> bool {
        (0..NETWORKS).any(|n| {
            self.asker[n]
                && (0..CONTAINERS).any(|c| self.membership[c][n] && IpAddr::V4(address(n, c)) == ip)
        })
    }
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(prop::array::uniform3(any::<bool>()), CONTAINERS),
        prop::collection::vec(prop::option::of(0..ALIASES.len()), CONTAINERS),
        prop::array::uniform3(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(|(membership, aliases, asker, ndots_set)| World {
            membership,
            aliases,
            asker,
            ndots_set,
        })
}

/// Names a client could ask: containers (any case), aliases, `name.network`, reverse names of
/// lab addresses, and arbitrary labels.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..CONTAINERS, any::<bool>()).prop_map(|(c, upper)| if upper {
            format!("C{c}.")
        } else {
            format!("c{c}.")
        }),
        (0..ALIASES.len()).prop_map(|a| format!("{}.", ALIASES[a])),
        (0..CONTAINERS, 0..NETWORKS).prop_map(|(c, n)| format!("c{c}.net{n}.")),
        (0..NETWORKS, 0..CONTAINERS + 2)
            .prop_map(|(n, c)| format!("{}.0.{n}.10.in-addr.arpa.", c + 2)),
        "[a-zA-Z0-9_*-]{1,20}(\\.[a-zA-Z0-9_*-]{1,20}){0,3}\\.",
    ]
}

fn record_type() -> impl Strategy<Value = RecordType> {
    prop::sample::select(vec![
        RecordType::A,
        RecordType::AAAA,
        RecordType::PTR,
        RecordType::MX,
        RecordType::TXT,
        RecordType::ANY,
        RecordType::SRV,
    ])
}

fn query(id: u16, name: &str, kind: RecordType, edns: Option<u16>) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    // Raw labels: clients may send names a resolver's parser would refuse (`-x`, `_srv`, `*`).
    let labels = name.trim_end_matches('.').split('.').map(str::as_bytes);
    let mut name = Name::from_labels(labels).unwrap();
    name.set_fqdn(true);
    message.add_query(Query::query(name, kind));
    if let Some(size) = edns {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        message.set_edns(edns);
    }
    message
}

/// Checks what holds of every reply: its header and question echo the query, it encodes, and
/// over UDP it fits the query's size.
fn check_reply(
    reply: &Message,
    query: &Message,
    transport: Transport,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(reply.metadata.id, query.metadata.id);
    prop_assert_eq!(reply.metadata.message_type, MessageType::Response);
    prop_assert_eq!(reply.queries.first(), query.queries.first());
    let bytes = reply
        .to_vec()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    if transport == Transport::Udp {
        let limit = query
            .edns
            .as_ref()
            .map_or(512, |e| usize::from(e.max_payload()).max(512));
        prop_assert!(bytes.len() <= limit, "{} > {limit}", bytes.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Arbitrary bytes that parse as a message never make the handler panic or reply with
    /// something that does not encode.
    #[test]
    fn arbitrary_bytes_never_panic(world in world(), bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let (records, sandbox) = world.build();
        if let Ok(message) = Message::from_vec(&bytes) {
            for transport in [Transport::Udp, Transport::Tcp] {
                if let Action::Reply(reply) = answer(&records, &sandbox, &message, transport, |_| {}) {
                    reply.to_vec().map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
        }
    }

    /// A valid query with some of its bytes flipped: still no panic.
    #[test]
    fn mutated_queries_never_panic(
        world in world(),
        name in name(),
        kind in record_type(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let (records, sandbox) = world.build();
        let mut bytes = query(7, &name, kind, Some(1232)).to_vec().unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        if let Ok(message) = Message::from_vec(&bytes) {
            let _ = answer(&records, &sandbox, &message, Transport::Udp, |_| {});
        }
    }

    /// Generated queries: well-formed replies; answers only from shared networks; no
    /// single-label address query forwarded when the container set ndots; known names always
    /// found.
    #[test]
    fn answers_respect_isolation(
        world in world(),
        id in any::<u16>(),
        name in name(),
        kind in record_type(),
        edns in prop::option::of(512u16..4096),
        tcp in any::<bool>(),
    ) {
        let (records, sandbox) = world.build();
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        let query = query(id, &name, kind, edns);
        match answer(&records, &sandbox, &query, transport, |ips| ips.reverse()) {
            Action::Reply(reply) => {
                check_reply(&reply, &query, transport)?;
                for record in &reply.answers {
                    match &record.data {
                        RData::A(a) => prop_assert!(
                            world.visible(IpAddr::V4(a.0)),
                            "{name} answered {} from a network the asker is not on", a.0
                        ),
                        RData::PTR(target) => {
                            let target = target.0.to_ascii().to_ascii_lowercase();
                            let visible = (0..NETWORKS).any(|n| {
                                world.asker[n] && target.ends_with(&format!(".net{n}."))
                            });
                            prop_assert!(visible, "{name} PTR {target}");
                        }
                        other => prop_assert!(false, "unexpected record {other:?}"),
                    }
                }
            }
            Action::Forward => {
                let address = matches!(kind, RecordType::A | RecordType::AAAA);
                let single_label = !name.trim_end_matches('.').contains('.');
                prop_assert!(
                    !(sandbox.ndots_set && address && single_label),
                    "{name} forwarded though the container set ndots"
                );
            }
            Action::Ignore => {}
        }
        // A container's own name, asked for A, on a network both share: always found.
        if let Some(c) = name.strip_prefix('c').and_then(|r| r.strip_suffix('.')).and_then(|r| r.parse::<usize>().ok())
            && kind == RecordType::A
            && (0..NETWORKS).any(|n| world.asker[n] && world.membership[c][n])
        {
            let found = matches!(
                answer(&records, &sandbox, &query, transport, |_| {}),
                Action::Reply(reply) if !reply.answers.is_empty()
            );
            prop_assert!(found, "{name} not found");
        }
    }
}
