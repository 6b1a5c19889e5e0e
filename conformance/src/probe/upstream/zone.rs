//! What the lab's upstream DNS server answers: the names of a [`Zone`] (a held lab's host names)
//! with their addresses, NXDOMAIN for every other name. Pure: bytes in, bytes out.

use std::collections::BTreeMap;
use std::net::IpAddr;

use drydock_netsim::Topology;
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// How long resolvers may keep an answer: a lab's names and addresses never change.
const TTL: u32 = 60;

/// Names and their addresses; every other name does not exist. Names match without regard
/// to case or a final dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    names: BTreeMap<String, Vec<IpAddr>>,
}

impl Zone {
    /// No names at all: NXDOMAIN for everything (a conformance run's upstream).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The host names of a lab, each with the addresses of its interfaces in order (IPv4,
    /// then IPv6), so that lab hosts find each other by name.
    pub fn of_lab(topology: &Topology) -> Self {
        let names = topology
            .hosts
            .iter()
            .map(|host| {
                let v4 = host.interfaces.iter().map(|i| IpAddr::V4(i.address.ip()));
                let v6 =
                    (host.interfaces.iter()).filter_map(|i| i.address6.map(|a| IpAddr::V6(a.ip())));
                (key(&host.name), v4.chain(v6).collect())
            })
            .collect();
        Self { names }
    }

    fn lookup(&self, name: &Name) -> Option<&[IpAddr]> {
        self.names.get(&key(&name.to_ascii())).map(Vec::as_slice)
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The answer to `request`: for a standard query with one question, the name's addresses of
/// the asked family when the zone has the name (none for another type: NODATA), else NXDOMAIN;
/// authoritative, recursion available, the zone's SOA in the authority section when there is
/// no answer. NOTIMP for other opcodes, FORMERR for a query that does not parse; `None` for
/// what is not a query at all (too short for a header, or a response), which gets no answer.
pub(crate) fn answer(request: &[u8], zone: &Zone) -> Option<Vec<u8>> {
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
            let question = &query.queries[0];
            let found = zone.lookup(question.name());
            let answers: Vec<Record> = found
                .unwrap_or_default()
                .iter()
                .filter_map(|ip| match (question.query_type(), ip) {
                    (RecordType::A, IpAddr::V4(v4)) => Some(RData::A(A(*v4))),
                    (RecordType::AAAA, IpAddr::V6(v6)) => Some(RData::AAAA(AAAA(*v6))),
                    _ => None,
                })
                .map(|data| Record::from_rdata(question.name().clone(), TTL, data))
                .collect();
            response.metadata.response_code = match found {
                Some(_) => ResponseCode::NoError,
                None => ResponseCode::NXDomain,
            };
            response.metadata.authoritative = true;
            response.metadata.recursion_available = true;
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            if answers.is_empty() {
                let soa = SOA::new(
                    Name::from_ascii("lab.").ok()?,
                    Name::from_ascii("nobody.lab.").ok()?,
                    1,
                    3600,
                    600,
                    86400,
                    TTL,
                );
                response.add_authority(Record::from_rdata(Name::root(), TTL, RData::SOA(soa)));
            }
            response.add_answers(answers);
            response.add_queries(query.queries);
        }
        Ok(_) | Err(_) => {}
    }
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::MessageType;

    use super::super::super::dns::answer as read;
    use super::super::super::dns::{Answer, RecordKind, Resolution, query};
    use super::*;

    fn lab() -> Zone {
        let topology = Topology::builder("z")
            .segment("lan1", "10.0.1.0/24".parse().unwrap())
            .host("h1")
            .router_at("r1", "10.0.1.1".parse().unwrap())
            .segment("lan2", "10.0.2.0/24".parse().unwrap())
            .subnet6("fd00:2::/64".parse().unwrap())
            .router_at("r1", "10.0.2.1".parse().unwrap())
            .host("h3")
            .build()
            .unwrap();
        Zone::of_lab(&topology)
    }

    #[test]
    fn every_name_is_nxdomain_with_recursion_available_in_an_empty_zone() {
        let request = query(0x1234, "example.invalid", RecordKind::A).unwrap();
        let bytes = answer(&request, &Zone::empty()).unwrap();
        assert_eq!(
            read(&bytes, 0x1234, RecordKind::A),
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
    fn a_lab_host_name_answers_its_addresses_of_the_family_asked() {
        let zone = lab();
        let a = |name: &str| {
            let bytes = answer(&query(1, name, RecordKind::A).unwrap(), &zone).unwrap();
            Message::from_vec(&bytes).unwrap()
        };
        let r1 = a("R1.");
        assert_eq!(r1.metadata.response_code, ResponseCode::NoError);
        let data: Vec<_> = r1.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(
            data,
            [
                RData::A(A("10.0.1.1".parse().unwrap())),
                RData::A(A("10.0.2.1".parse().unwrap()))
            ]
        );
        assert!(r1.authorities.is_empty());
        assert_eq!(a("h3").answers.len(), 1);
        assert_eq!(a("h4").metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            a("h3.example").metadata.response_code,
            ResponseCode::NXDomain
        );

        // AAAA: h3 has one; h1 has none, which is NODATA, not NXDOMAIN.
        let aaaa = |name: &str| {
            let bytes = answer(&query(2, name, RecordKind::Aaaa).unwrap(), &zone).unwrap();
            Message::from_vec(&bytes).unwrap()
        };
        let h3 = aaaa("h3");
        assert_eq!(h3.answers.len(), 1);
        assert!(matches!(h3.answers[0].data, RData::AAAA(_)));
        let h1 = aaaa("h1");
        assert_eq!(
            (h1.metadata.response_code, h1.answers.len()),
            (ResponseCode::NoError, 0)
        );
        assert_eq!(h1.authorities[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn other_requests_get_an_error_or_nothing() {
        let zone = lab();
        let mut request = Message::from_vec(&query(7, "h1", RecordKind::A).unwrap()).unwrap();
        request.metadata.op_code = OpCode::Status;
        let bytes = answer(&request.to_vec().unwrap(), &zone).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(message.metadata.id, 7);

        let garbage = [0, 9, 0x01, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0xff];
        let bytes = answer(&garbage, &zone).unwrap();
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(message.metadata.id, 9);

        // A response (QR set) and a runt are never answered.
        let response = answer(&query(3, "x", RecordKind::A).unwrap(), &zone).unwrap();
        assert_eq!(answer(&response, &zone), None);
        assert_eq!(answer(&[0, 1, 0], &zone), None);
    }
}
