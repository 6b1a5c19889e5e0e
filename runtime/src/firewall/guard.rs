//! The parent guard of a userspace ipvlan port: a `netdev` table on the docker host whose
//! ingress chain on the parent drops the frames the port delivers to its endpoints, so that the
//! host's stack does not also take them (AF_PACKET sees a frame before the ingress hook). With
//! forwarding on, the host would otherwise route each one back out with an ICMP redirect, or
//! ARP for the endpoint's address.
//!
//! `ether daddr PARENT-MAC ether type ip ip daddr SUBNET fib daddr type != local drop`, per
//! subnet: only untagged unicast to the shared MAC, and never to the host's own addresses.

use std::borrow::Cow;
use std::collections::HashSet;

use ipnetwork::IpNetwork;
use nftables::batch::Batch;
use nftables::expr::{Expression, Fib, FibFlag, FibResult, NamedExpression, Prefix};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::ruleset::{matches, payload};

/// The guard's table: `netdev drydock-<parent>`.
pub(crate) fn table_name(parent: &str) -> String {
    format!("drydock-{parent}")
}

fn table(parent: &str) -> NfListObject<'static> {
    NfListObject::Table(Table {
        family: NfFamily::NetDev,
        name: Cow::Owned(table_name(parent)),
        handle: None,
    })
}

/// The guard of `parent` (MAC `mac`) for `subnets`, replacing any stale one: one transaction.
pub(crate) fn add(parent: &str, mac: [u8; 6], subnets: &[IpNetwork]) -> Nftables<'static> {
    let name = table_name(parent);
    let mut batch = Batch::new();
    batch.add(table(parent));
    batch.delete(table(parent));
    batch.add(table(parent));
    batch.add(NfListObject::Chain(Chain {
        family: NfFamily::NetDev,
        table: name.clone().into(),
        name: "ingress".into(),
        _type: Some(NfChainType::Filter),
        hook: Some(NfHook::Ingress),
        prio: Some(-500),
        dev: Some(parent.to_string().into()),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }));
    let mac = crate::mac::text(mac);
    for subnet in subnets {
        let family = if subnet.is_ipv4() { "ip" } else { "ip6" };
        let prefix = Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(Expression::String(subnet.network().to_string().into())),
            len: u32::from(subnet.prefix()),
        }));
        let fib = Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Daddr]),
        }));
        let expr = vec![
            matches(
                payload("ether", "daddr"),
                Operator::EQ,
                Expression::String(mac.clone().into()),
            ),
            // Untagged only: the tag of a frame for a sub-interface eth0.N reads back here.
            matches(
                payload("ether", "type"),
                Operator::EQ,
                Expression::String(family.into()),
            ),
            matches(payload(family, "daddr"), Operator::EQ, prefix),
            matches(fib, Operator::NEQ, Expression::String("local".into())),
            Statement::Drop(None),
        ];
        batch.add(NfListObject::Rule(Rule {
            family: NfFamily::NetDev,
            table: name.clone().into(),
            chain: "ingress".into(),
            expr: expr.into(),
            ..Rule::default()
        }));
    }
    batch.to_nftables()
}

/// Deletes the guard of `parent`.
pub(crate) fn remove(parent: &str) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.delete(table(parent));
    batch.to_nftables()
}
