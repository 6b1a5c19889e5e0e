//! The embedded DNS server's request handler, as a pure function: a query, what the engine
//! knows and who asks in; a reply, or the decision to forward or to stay silent. Follows
//! libnetwork's `resolver.ServeDNS` (Docker 20.10).

use std::net::IpAddr;

use hickory_proto::op::{Message, Metadata, OpCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::records::{Lookup, Records, SandboxView};

/// TTL of every answer the engine makes (libnetwork's `respTTL`).
pub const TTL: u32 = 600;

/// Largest UDP reply when the query has no larger EDNS size.
const UDP_SIZE: usize = 512;

/// The transport a query came in on; it bounds the reply's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the query's EDNS size; longer replies are truncated (TC set).
    Udp,
    /// TCP: up to 65534 bytes.
    Tcp,
}

/// What to do with a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this reply.
    Reply(Message),
    /// Not a name of the engine's: ask the sandbox's upstream servers.
    Forward,
    /// Send nothing (Docker ignores queries without a question and malformed PTR names).
    Ignore,
}

/// Answers `query` for `sandbox`. `shuffle` reorders the addresses of a name that has several
/// (Docker shuffles them at random).
pub fn answer(
    records: &Records,
    sandbox: &SandboxView,
    query: &Message,
    transport: Transport,
    shuffle: impl FnOnce(&mut [IpAddr]),
) -> Action {
    let Some(question) = query.queries.first() else {
        return Action::Ignore;
    };
    let name = question.name();
    let text = name.to_ascii();
    let reply = match question.query_type() {
        RecordType::A | RecordType::AAAA => {
            let v6 = question.query_type() == RecordType::AAAA;
            match records.resolve(sandbox, &text, v6) {
                Lookup::Found(mut ips) => {
                    if ips.len() > 1 {
                        shuffle(&mut ips);
                    }
                    let mut reply = empty_reply(query);
                    reply.answers = ips
                        .into_iter()
                        .map(|ip| Record::from_rdata(name.clone(), TTL, rdata(ip)))
                        .collect();
                    Some(reply)
                }
                Lookup::NoAddressOfFamily => Some(empty_reply(query)),
                Lookup::Unknown => None,
            }
        }
        RecordType::MX => {
            let known = |v6| records.resolve(sandbox, &text, v6) != Lookup::Unknown;
            // A container has no MX: an empty answer lets mail clients fall back to A/AAAA.
            (known(false) || known(true)).then(|| empty_reply(query))
        }
        RecordType::PTR => {
            let Some(ip) = ptr_address(&text) else {
                return Action::Ignore;
            };
            records.reverse(sandbox, ip).and_then(|host| {
                let target = Name::from_ascii(format!("{host}.")).ok()?;
                let mut reply = empty_reply(query);
                reply.answers = vec![Record::from_rdata(
                    name.clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                )];
                Some(reply)
            })
        }
        _ => None,
    };
    let reply = match reply {
        Some(reply) => reply,
        None => {
            let address_query = matches!(question.query_type(), RecordType::A | RecordType::AAAA);
            let single_label = !text.trim_end_matches('.').contains('.');
            if sandbox.ndots_set && address_query && single_label {
                // The client will retry with its search domains.
                empty_reply(query)
            } else {
                return Action::Forward;
            }
        }
    };
    Action::Reply(fit(reply, query, transport))
}

/// libnetwork's `createRespMsg`: id, opcode, RD and CD and the first question of the query,
/// RA set, no records.
fn empty_reply(query: &Message) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&query.metadata);
    if query.metadata.op_code != OpCode::Query {
        reply.metadata.recursion_desired = false;
        reply.metadata.checking_disabled = false;
    }
    reply.metadata.recursion_available = true;
    reply.queries = query.queries.iter().take(1).cloned().collect();
    reply
}

fn rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// The address of a reverse name (`4.3.2.1.in-addr.arpa.`, or 32 nibbles `.ip6.arpa.`).
fn ptr_address(name: &str) -> Option<IpAddr> {
    if let Some(reversed) = name.strip_suffix(".in-addr.arpa.") {
        let mut octets: Vec<&str> = reversed.split('.').collect();
        octets.reverse();
        return octets.join(".").parse().ok();
    }
    let reversed = name.strip_suffix(".ip6.arpa.")?;
    let nibbles: Vec<&str> = reversed.split('.').collect();
    if nibbles.len() != 32 || nibbles.iter().any(|n| n.len() != 1) {
        return None;
    }
    let hex: String = nibbles.iter().rev().copied().collect();
    let value = u128::from_str_radix(&hex, 16).ok()?;
    Some(IpAddr::V6(value.into()))
}

/// libnetwork's `truncateResp`: drops answers from the end until the reply fits the transport
/// (UDP: 512 bytes or the query's EDNS size), setting TC on UDP.
fn fit(mut reply: Message, query: &Message, transport: Transport) -> Message {
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX) - 1,
        Transport::Udp => query
            .edns
            .as_ref()
            .map_or(0, |e| usize::from(e.max_payload()))
            .max(UDP_SIZE),
    };
    let size = |m: &Message| m.to_vec().map_or(usize::MAX, |b| b.len());
    if size(&reply) <= limit {
        return reply;
    }
    reply.metadata.truncation = transport == Transport::Udp;
    while size(&reply) > limit && reply.answers.pop().is_some() {}
    reply
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hickory_proto::op::{Edns, MessageType, Query};

    use hickory_proto::op::ResponseCode;

    use super::*;
    use crate::dns::records::{Entry, NetworkRecords, SandboxEndpoint};

    fn setup() -> (Records, SandboxView) {
        let mut records = Records::default();
        let entries = (2..=60)
            .map(|i| Entry {
                name: if i == 2 {
                    "Web".into()
                } else {
                    format!("replica{i}")
                },
                aliases: vec!["svc".into()],
                ip4: Some(format!("10.1.0.{i}").parse().unwrap()),
                ip6: None,
            })
            .collect();
        records.networks.insert(
            "n1".into(),
            NetworkRecords {
                name: "front".into(),
                ipv6: false,
                entries,
            },
        );
        let sandbox = SandboxView {
            endpoints: vec![SandboxEndpoint {
                network: "n1".into(),
                links: BTreeMap::new(),
            }],
            upstreams: Vec::new(),
            ndots_set: false,
        };
        (records, sandbox)
    }

    fn query(name: &str, kind: RecordType) -> Message {
        let mut message = Message::new(4242, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        message
    }

    /// Asks `name` over UDP, without reordering.
    fn ask(records: &Records, sandbox: &SandboxView, name: &str, kind: RecordType) -> Action {
        answer(records, sandbox, &query(name, kind), Transport::Udp, |_| {})
    }

    fn reply(action: Action) -> Message {
        match action {
            Action::Reply(m) => m,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_known_name_is_answered_with_docker_flags_and_ttl() {
        let (records, sandbox) = setup();
        let m = reply(ask(&records, &sandbox, "WEB.", RecordType::A));
        assert_eq!(m.metadata.id, 4242);
        assert!(
            m.metadata.recursion_available
                && m.metadata.recursion_desired
                && !m.metadata.authoritative
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].name.to_ascii(), "WEB.");
        assert_eq!(m.answers[0].ttl, TTL);
        assert_eq!(m.answers[0].data, RData::A(A("10.1.0.2".parse().unwrap())));
    }

    #[test]
    fn aaaa_and_mx_of_a_known_name_are_empty_answers() {
        let (records, sandbox) = setup();
        for kind in [RecordType::AAAA, RecordType::MX] {
            let m = reply(ask(&records, &sandbox, "web.", kind));
            assert_eq!(
                (m.metadata.response_code, m.answers.len()),
                (ResponseCode::NoError, 0),
                "{kind}"
            );
        }
    }

    #[test]
    fn unknown_names_and_other_types_are_forwarded() {
        let (records, sandbox) = setup();
        assert_eq!(
            ask(&records, &sandbox, "nothere.", RecordType::A),
            Action::Forward
        );
        assert_eq!(
            ask(&records, &sandbox, "web.", RecordType::TXT),
            Action::Forward
        );
    }

    #[test]
    fn ptr_answers_container_dot_network_and_ignores_bad_names() {
        let (records, sandbox) = setup();
        let m = reply(ask(
            &records,
            &sandbox,
            "2.0.1.10.in-addr.arpa.",
            RecordType::PTR,
        ));
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("Web.front.").unwrap()))
        );
        assert_eq!(
            ask(
                &records,
                &sandbox,
                "99.0.1.10.in-addr.arpa.",
                RecordType::PTR
            ),
            Action::Forward
        );
        assert_eq!(
            ask(&records, &sandbox, "web.", RecordType::PTR),
            Action::Ignore
        );
    }

    #[test]
    fn ipv6_reverse_names_parse() {
        let name = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
        assert_eq!(ptr_address(name), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ptr_address("1.2.ip6.arpa."), None);
    }

    #[test]
    fn long_udp_answers_are_truncated_unless_edns_allows_more() {
        let (records, sandbox) = setup();
        let m = reply(ask(&records, &sandbox, "svc.", RecordType::A));
        assert!(m.metadata.truncation);
        assert!(m.to_vec().unwrap().len() <= 512 && !m.answers.is_empty() && m.answers.len() < 59);
        let m = reply(answer(
            &records,
            &sandbox,
            &query("svc.", RecordType::A),
            Transport::Tcp,
            |_| {},
        ));
        assert_eq!((m.metadata.truncation, m.answers.len()), (false, 59));
        let mut big = query("svc.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        big.set_edns(edns);
        let m = reply(answer(&records, &sandbox, &big, Transport::Udp, |_| {}));
        assert_eq!((m.metadata.truncation, m.answers.len()), (false, 59));
    }

    #[test]
    fn the_shuffle_orders_several_addresses() {
        let (records, sandbox) = setup();
        let m = reply(answer(
            &records,
            &sandbox,
            &query("svc.", RecordType::A),
            Transport::Tcp,
            |ips| ips.reverse(),
        ));
        assert_eq!(m.answers[0].data, RData::A(A("10.1.0.60".parse().unwrap())));
    }
}
