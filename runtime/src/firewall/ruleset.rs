//! The `inet drydock` table as nftables JSON (the `nftables` crate's types), and the element
//! changes that network creation and removal make to its sets. Pure: nothing here runs `nft`.
//!
//! Rules never change after engine start: every Docker-managed fact is an element of a set or a
//! map. nft cannot compare two packet fields with each other (`iifname != oifname`), so "the
//! packet stays on its bridge" is a lookup of `iifname . oifname` in `same_bridge`, which holds
//! `BR . BR` for every bridge.

use std::borrow::Cow;
use std::collections::HashSet;

use ipnetwork::IpNetwork;
use nftables::batch::Batch;
use nftables::expr::{
    BinaryOperation, CT, Expression, Fib, FibFlag, FibResult, Map as MapExpr, Meta, MetaKey,
    NamedExpression, Payload, PayloadField, Prefix,
};
use nftables::schema::{
    Chain, Element, Map, NfListObject, Nftables, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{JumpTarget, Mangle, Match, NAT, NATFamily, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::NetworkRules;

/// The table's name (family `inet`).
pub(crate) const TABLE: &str = "drydock";

/// The packet mark bit by which the engine's forward chain says it accepts a packet, for the
/// `ip filter FORWARD` chain (policy drop, as dockerd's) to accept it too (`forward.rs`).
pub(crate) const ACCEPTED: u32 = 0x1000_0000;

/// Set of every bridge network's bridge (`ifname`).
pub(crate) const BRIDGES: &str = "bridges";
/// Set of `BR . BR` for every bridge (`ifname . ifname`): "in and out on the same bridge".
pub(crate) const SAME_BRIDGE: &str = "same_bridge";
/// Set of internal networks' bridges.
pub(crate) const INTERNAL: &str = "internal";
/// Set of bridges whose network has inter-container communication off.
pub(crate) const ICC_OFF: &str = "icc_off";
/// IPv4 subnets masqueraded on their way out (interval set).
pub(crate) const MASQUERADE4: &str = "masquerade4";
/// IPv6 subnets masqueraded on their way out (interval set).
pub(crate) const MASQUERADE6: &str = "masquerade6";

/// The maps that DNAT published ports: for each family, bindings to one host address (`ip`) or
/// to any (`any`), a map to the container's address and one to its port.
///
/// (One map to `ipv4_addr . inet_service` would do, but nft 1.0.6, Debian 12's, crashes on
/// `dnat ip to KEY map @M` with concatenated data when given as JSON.)
pub(crate) const PUBLISH_MAPS: [PublishMap; 8] = [
    PublishMap::new("publish_ip4_addr", true, false, Data::Addr),
    PublishMap::new("publish_ip4_port", true, false, Data::Port),
    PublishMap::new("publish_any4_addr", false, false, Data::Addr),
    PublishMap::new("publish_any4_port", false, false, Data::Port),
    PublishMap::new("publish_ip6_addr", true, true, Data::Addr),
    PublishMap::new("publish_ip6_port", true, true, Data::Port),
    PublishMap::new("publish_any6_addr", false, true, Data::Addr),
    PublishMap::new("publish_any6_port", false, true, Data::Port),
];

/// What a publish map gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Data {
    /// The container's address.
    Addr,
    /// The container's port.
    Port,
}

/// One of the [`PUBLISH_MAPS`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishMap {
    /// Map name.
    pub(crate) name: &'static str,
    /// Keyed by host address too (`ADDR . inet_proto . inet_service`), else by
    /// `inet_proto . inet_service`.
    pub(crate) by_address: bool,
    /// IPv6 (else IPv4).
    pub(crate) ipv6: bool,
    /// What it maps to.
    pub(crate) data: Data,
}

impl PublishMap {
    const fn new(name: &'static str, by_address: bool, ipv6: bool, data: Data) -> Self {
        Self {
            name,
            by_address,
            ipv6,
            data,
        }
    }

    /// The publish map for a binding's kind.
    pub(crate) fn find(by_address: bool, ipv6: bool, data: Data) -> &'static PublishMap {
        PUBLISH_MAPS
            .iter()
            .find(|m| m.by_address == by_address && m.ipv6 == ipv6 && m.data == data)
            .expect("every combination has a map")
    }

    fn addr_type(&self) -> SetType {
        if self.ipv6 {
            SetType::Ipv6Addr
        } else {
            SetType::Ipv4Addr
        }
    }

    fn key_type(&self) -> SetTypeValue<'static> {
        let mut key = Vec::new();
        if self.by_address {
            key.push(self.addr_type());
        }
        key.extend([SetType::InetProto, SetType::InetService]);
        SetTypeValue::Concatenated(key.into())
    }

    fn data_type(&self) -> SetTypeValue<'static> {
        SetTypeValue::Single(match self.data {
            Data::Addr => self.addr_type(),
            Data::Port => SetType::InetService,
        })
    }

    /// The lookup `[ADDR .] meta l4proto . th dport map @NAME`.
    fn lookup(&self) -> Expression<'static> {
        let mut key = Vec::new();
        if self.by_address {
            key.push(payload(if self.ipv6 { "ip6" } else { "ip" }, "daddr"));
        }
        key.extend([meta(MetaKey::L4proto), payload("th", "dport")]);
        Expression::Named(NamedExpression::Map(Box::new(MapExpr {
            key: Expression::Named(NamedExpression::Concat(key)),
            data: set_ref(self.name),
        })))
    }
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn set(
    name: &'static str,
    set_type: SetTypeValue<'static>,
    interval: bool,
) -> NfListObject<'static> {
    NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        set_type,
        flags: interval.then(|| HashSet::from([SetFlag::Interval])),
        ..Set::default()
    }))
}

fn ifname_set(name: &'static str) -> NfListObject<'static> {
    set(name, SetTypeValue::Single(SetType::Ifname), false)
}

fn base_chain(
    name: &'static str,
    kind: NfChainType,
    hook: NfHook,
    prio: i32,
    policy: NfChainPolicy,
) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(policy),
        ..Chain::default()
    }
}

fn rule(chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.into(),
        expr: expr.into(),
        ..Rule::default()
    })
}

pub(super) fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub(super) fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn set_ref(name: &str) -> Expression<'static> {
    Expression::String(format!("@{name}").into())
}

pub(super) fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

/// `iifname . oifname`.
fn in_out() -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![
        meta(MetaKey::Iifname),
        meta(MetaKey::Oifname),
    ]))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

/// `fib daddr type local`.
fn daddr_is_local() -> Statement<'static> {
    matches(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Daddr]),
        })),
        Operator::EQ,
        Expression::String("local".into()),
    )
}

fn jump(target: &'static str) -> Statement<'static> {
    Statement::Jump(JumpTarget {
        target: target.into(),
    })
}

fn dnat(family: NATFamily, addr: &PublishMap, port: &PublishMap) -> Statement<'static> {
    Statement::DNAT(Some(NAT {
        addr: Some(addr.lookup()),
        family: Some(family),
        port: Some(port.lookup()),
        flags: None,
    }))
}

/// The whole table, replacing any table of that name (a stale one from an earlier engine): one
/// transaction.
pub(crate) fn start() -> Nftables<'static> {
    let mut batch = Batch::new();
    // `add` then `delete`: deleting a table that does not exist would fail the transaction.
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    batch.add(NfListObject::Table(table()));
    add_sets_and_maps(&mut batch);
    add_forward(&mut batch);
    add_publish(&mut batch);
    add_nat(&mut batch);
    batch.to_nftables()
}

/// The sets and maps that hold every Docker-managed fact.
fn add_sets_and_maps(batch: &mut Batch<'static>) {
    for name in [BRIDGES, INTERNAL, ICC_OFF] {
        batch.add(ifname_set(name));
    }
    batch.add(set(
        SAME_BRIDGE,
        SetTypeValue::Concatenated([SetType::Ifname, SetType::Ifname][..].into()),
        false,
    ));
    batch.add(set(
        MASQUERADE4,
        SetTypeValue::Single(SetType::Ipv4Addr),
        true,
    ));
    batch.add(set(
        MASQUERADE6,
        SetTypeValue::Single(SetType::Ipv6Addr),
        true,
    ));
    for map in &PUBLISH_MAPS {
        batch.add(NfListObject::Map(Box::new(Map {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: map.name.into(),
            set_type: map.key_type(),
            map: map.data_type(),
            ..Map::default()
        })));
    }
}

/// forward: Docker's FORWARD chain with its isolation stages first. Its accepts mark the
/// packet [`ACCEPTED`] for the `ip filter FORWARD` chain after it, whose policy drops what no
/// one accepted there (as dockerd's does: a plugin's own accepts there count, as on Docker).
/// IPv6, which dockerd 20.10 leaves to `ip6tables` (off), is dropped here unless accepted.
fn add_forward(batch: &mut Batch<'static>) {
    use MetaKey::{Iifname, Oifname};
    use Operator::{EQ, IN, NEQ};
    let drop = || Statement::Drop(None);
    batch.add(NfListObject::Chain(base_chain(
        "forward",
        NfChainType::Filter,
        NfHook::Forward,
        FORWARD_PRIORITY,
        NfChainPolicy::Accept,
    )));
    let not_same_bridge = || matches(in_out(), NEQ, set_ref(SAME_BRIDGE));
    let forward = [
        // Internal networks: nothing leaves or enters their bridge.
        vec![
            matches(meta(Iifname), EQ, set_ref(INTERNAL)),
            not_same_bridge(),
            drop(),
        ],
        vec![
            matches(meta(Oifname), EQ, set_ref(INTERNAL)),
            not_same_bridge(),
            drop(),
        ],
        // Isolation between networks (DOCKER-ISOLATION-STAGE-1/2).
        vec![
            matches(meta(Iifname), EQ, set_ref(BRIDGES)),
            matches(meta(Oifname), EQ, set_ref(BRIDGES)),
            not_same_bridge(),
            drop(),
        ],
        vec![
            matches(
                ct("state"),
                IN,
                Expression::List(vec![
                    Expression::String("established".into()),
                    Expression::String("related".into()),
                ]),
            ),
            accept(),
        ],
        // Inter-container communication on one bridge (bridged traffic, via br_netfilter).
        vec![
            matches(in_out(), EQ, set_ref(SAME_BRIDGE)),
            matches(meta(Iifname), EQ, set_ref(ICC_OFF)),
            drop(),
        ],
        vec![matches(in_out(), EQ, set_ref(SAME_BRIDGE)), accept()],
        // Published ports: DNAT'd traffic towards a container.
        vec![
            matches(ct("status"), IN, Expression::String("dnat".into())),
            matches(meta(Oifname), EQ, set_ref(BRIDGES)),
            accept(),
        ],
        // Outbound from containers.
        vec![matches(meta(Iifname), EQ, set_ref(BRIDGES)), accept()],
        // What no rule accepted: IPv4 goes on to `ip filter FORWARD`.
        vec![
            matches(
                meta(MetaKey::Nfproto),
                EQ,
                Expression::String("ipv6".into()),
            ),
            drop(),
        ],
    ];
    for expr in forward {
        let expr = expr
            .into_iter()
            .flat_map(|statement| match statement {
                Statement::Accept(None) => vec![mark_accepted(), statement],
                statement => vec![statement],
            })
            .collect();
        batch.add(rule("forward", expr));
    }
}

/// Before `ip filter FORWARD` (priority 0), so that it sees the mark.
const FORWARD_PRIORITY: i32 = -1;

/// `accept` in the forward chain.
fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

/// `meta mark set meta mark | ACCEPTED`.
fn mark_accepted() -> Statement<'static> {
    Statement::Mangle(Mangle {
        key: meta(MetaKey::Mark),
        value: Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![
            meta(MetaKey::Mark),
            Expression::Number(ACCEPTED),
        ]))),
    })
}

/// publish: DNAT of published ports (made before the chains that jump to it).
fn add_publish(batch: &mut Batch<'static>) {
    batch.add(NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: "publish".into(),
        ..Chain::default()
    }));
    // Docker 20.10: `-A DOCKER -i BRIDGE -j RETURN`; containers reach published ports through
    // the userland proxy.
    batch.add(rule(
        "publish",
        vec![
            matches(meta(MetaKey::Iifname), Operator::EQ, set_ref(BRIDGES)),
            Statement::Return(None),
        ],
    ));
    for (family, ipv6) in [(NATFamily::IP, false), (NATFamily::IP6, true)] {
        for by_address in [true, false] {
            let addr = PublishMap::find(by_address, ipv6, Data::Addr);
            let port = PublishMap::find(by_address, ipv6, Data::Port);
            batch.add(rule("publish", vec![dnat(family, addr, port)]));
        }
    }
}

/// nat: DNAT of published ports, from outside (prerouting) and from the host (output), and
/// masquerade of what leaves the networks for the outside world (postrouting).
fn add_nat(batch: &mut Batch<'static>) {
    use Operator::{EQ, NEQ};
    batch.add(NfListObject::Chain(base_chain(
        "prerouting",
        NfChainType::NAT,
        NfHook::Prerouting,
        -100,
        NfChainPolicy::Accept,
    )));
    batch.add(rule("prerouting", vec![daddr_is_local(), jump("publish")]));
    batch.add(NfListObject::Chain(base_chain(
        "output",
        NfChainType::NAT,
        NfHook::Output,
        -100,
        NfChainPolicy::Accept,
    )));
    let loopback4 = Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String("127.0.0.0".into())),
        len: 8,
    }));
    batch.add(rule(
        "output",
        vec![
            matches(payload("ip", "daddr"), NEQ, loopback4),
            daddr_is_local(),
            jump("publish"),
        ],
    ));
    batch.add(rule(
        "output",
        vec![
            matches(
                payload("ip6", "daddr"),
                NEQ,
                Expression::String("::1".into()),
            ),
            daddr_is_local(),
            jump("publish"),
        ],
    ));
    // Masquerade what leaves the networks for the outside world.
    batch.add(NfListObject::Chain(base_chain(
        "postrouting",
        NfChainType::NAT,
        NfHook::Postrouting,
        100,
        NfChainPolicy::Accept,
    )));
    for (protocol, set) in [("ip", MASQUERADE4), ("ip6", MASQUERADE6)] {
        batch.add(rule(
            "postrouting",
            vec![
                matches(payload(protocol, "saddr"), EQ, set_ref(set)),
                matches(meta(MetaKey::Oifname), NEQ, set_ref(BRIDGES)),
                Statement::Masquerade(None),
            ],
        ));
    }
}

/// The set elements that stand for one network, by set.
fn elements(network: &NetworkRules) -> Vec<(&'static str, Vec<Expression<'static>>)> {
    let bridge = || Expression::String(Cow::Owned(network.bridge.clone()));
    let mut sets = vec![
        (BRIDGES, vec![bridge()]),
        (
            SAME_BRIDGE,
            vec![Expression::Named(NamedExpression::Concat(vec![
                bridge(),
                bridge(),
            ]))],
        ),
    ];
    if network.internal {
        sets.push((INTERNAL, vec![bridge()]));
    }
    if !network.icc {
        sets.push((ICC_OFF, vec![bridge()]));
    }
    if network.masquerade && !network.internal {
        let prefix = |subnet: &IpNetwork| {
            Expression::Named(NamedExpression::Prefix(Prefix {
                addr: Box::new(Expression::String(subnet.network().to_string().into())),
                len: u32::from(subnet.prefix()),
            }))
        };
        let (v4, v6): (Vec<&IpNetwork>, Vec<&IpNetwork>) =
            network.subnets.iter().partition(|s| s.is_ipv4());
        for (set, subnets) in [(MASQUERADE4, v4), (MASQUERADE6, v6)] {
            if !subnets.is_empty() {
                sets.push((set, subnets.into_iter().map(prefix).collect()));
            }
        }
    }
    sets
}

fn element(set: &'static str, elem: Vec<Expression<'static>>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: set.into(),
        elem: elem.into(),
    })
}

/// One transaction: removes `old`'s elements (when the bridge had rules already) and adds
/// `new`'s.
pub(crate) fn change_network(
    old: Option<&NetworkRules>,
    new: Option<&NetworkRules>,
) -> Nftables<'static> {
    let mut batch = Batch::new();
    for (set, elem) in old.map(elements).unwrap_or_default() {
        batch.delete(element(set, elem));
    }
    for (set, elem) in new.map(elements).unwrap_or_default() {
        batch.add(element(set, elem));
    }
    batch.to_nftables()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn network(internal: bool, icc: bool, masquerade: bool) -> NetworkRules {
        NetworkRules {
            bridge: "br-x".into(),
            subnets: vec![
                "172.18.0.1/16".parse().unwrap(),
                "fd00:18::/64".parse().unwrap(),
            ],
            internal,
            icc,
            masquerade,
        }
    }

    fn to_value(nftables: &Nftables<'_>) -> Value {
        serde_json::to_value(nftables).unwrap()
    }

    #[test]
    fn plain_network_adds_bridge_and_masquerades_its_subnets() {
        let value = to_value(&change_network(None, Some(&network(false, true, true))));
        assert_eq!(
            value,
            json!({"nftables": [
                {"add": {"element": {"family": "inet", "table": "drydock", "name": "bridges",
                    "elem": ["br-x"]}}},
                {"add": {"element": {"family": "inet", "table": "drydock", "name": "same_bridge",
                    "elem": [{"concat": ["br-x", "br-x"]}]}}},
                {"add": {"element": {"family": "inet", "table": "drydock", "name": "masquerade4",
                    "elem": [{"prefix": {"addr": "172.18.0.0", "len": 16}}]}}},
                {"add": {"element": {"family": "inet", "table": "drydock", "name": "masquerade6",
                    "elem": [{"prefix": {"addr": "fd00:18::", "len": 64}}]}}},
            ]})
        );
    }

    #[test]
    fn internal_network_is_never_masqueraded() {
        let value = to_value(&change_network(Some(&network(true, false, true)), None));
        let names: Vec<(&str, &str)> = value["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|cmd| {
                let (verb, object) = cmd.as_object().unwrap().iter().next().unwrap();
                (verb.as_str(), object["element"]["name"].as_str().unwrap())
            })
            .collect();
        assert_eq!(
            names,
            [
                ("delete", "bridges"),
                ("delete", "same_bridge"),
                ("delete", "internal"),
                ("delete", "icc_off"),
            ]
        );
    }

    #[test]
    fn start_replaces_the_table_then_builds_it() {
        let value = to_value(&start());
        let commands = value["nftables"].as_array().unwrap();
        assert_eq!(
            commands[0],
            json!({"add": {"table": {"family": "inet", "name": "drydock"}}})
        );
        assert_eq!(
            commands[1],
            json!({"delete": {"table": {"family": "inet", "name": "drydock"}}})
        );
        let forward = commands
            .iter()
            .find(|c| c["add"]["chain"]["name"] == "forward")
            .unwrap();
        assert_eq!(forward["add"]["chain"]["policy"], "accept");
        let marked = commands
            .iter()
            .filter(|c| c["add"]["rule"]["chain"] == "forward")
            .filter(|c| c["add"]["rule"]["expr"].to_string().contains(r#""accept""#))
            .all(|c| c["add"]["rule"]["expr"].to_string().contains(r#""mangle""#));
        assert!(marked, "every accept marks the packet");
        let publish_rules = commands
            .iter()
            .filter(|c| c["add"]["rule"]["chain"] == "publish")
            .count();
        assert_eq!(publish_rules, 5, "return for bridges, then 4 DNAT rules");
        let dnat = commands
            .iter()
            .find_map(|c| c["add"]["rule"]["expr"][0].get("dnat"))
            .unwrap();
        assert_eq!(
            dnat,
            &json!({"family": "ip",
                "addr": {"map": {"key": {"concat": [
                    {"payload": {"protocol": "ip", "field": "daddr"}},
                    {"meta": {"key": "l4proto"}},
                    {"payload": {"protocol": "th", "field": "dport"}}]},
                    "data": "@publish_ip4_addr"}},
                "port": {"map": {"key": {"concat": [
                    {"payload": {"protocol": "ip", "field": "daddr"}},
                    {"meta": {"key": "l4proto"}},
                    {"payload": {"protocol": "th", "field": "dport"}}]},
                    "data": "@publish_ip4_port"}}})
        );
    }
}
