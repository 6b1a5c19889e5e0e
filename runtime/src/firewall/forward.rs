//! dockerd's `ip filter FORWARD` chain: policy drop, accepting only its own bridges' traffic
//! (traffic within a plugin's bridge is seen there too, through `br_netfilter`); a network
//! plugin that forwards opens it for its own links.
//!
//! - The engine makes that chain as dockerd does, where it runs in place of dockerd: a chain
//!   `DRYDOCK-ENGINE` there accepts what the engine's own forward chain accepted (the packets
//!   it marked [`ACCEPTED`]), so that a plugin's accepts (`iptables -I FORWARD ...`) count on
//!   the reference engine as on Docker.
//! - drydock's served drivers (`drydock plugin serve`) open it: a chain `DRYDOCK-PLUGINS`,
//!   jumped to first from `FORWARD`, accepts what enters or leaves each served bridge
//!   (`iifname BRIDGE accept`, `oifname BRIDGE accept`); it is rewritten whole whenever the
//!   served bridges change.

use std::borrow::Cow;

use nftables::batch::Batch;
use nftables::expr::{BinaryOperation, Expression, MetaKey};
use nftables::schema::{Chain, NfCmd, NfListObject, Nftables, Rule};
use nftables::stmt::{JumpTarget, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::ruleset::{ACCEPTED, matches, meta};

/// dockerd's table and chain.
pub(crate) const TABLE: &str = "filter";
/// The chain dockerd forwards through.
pub(crate) const FORWARD: &str = "FORWARD";
/// The served drivers' chain, in dockerd's table.
pub(crate) const CHAIN: &str = "DRYDOCK-PLUGINS";
/// The engine's chain there.
pub(crate) const ENGINE_CHAIN: &str = "DRYDOCK-ENGINE";

fn rule(chain: &str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::IP,
        table: Cow::Borrowed(TABLE),
        chain: Cow::Owned(chain.to_string()),
        expr: Cow::Owned(expr),
        ..Rule::default()
    })
}

/// Our chain accepting `bridges`' traffic (created, or emptied and filled again), and the jump
/// to it at the top of `FORWARD` when `jump` (it is not there yet): one transaction. As the
/// built-in bridge's networks, the served ones are isolated from each other: traffic from one
/// served bridge to another is dropped first. (Rules iptables can read, since dockerd lists
/// its table with it: no sets, no `ct` expressions.)
pub(crate) fn openings(bridges: &[String], jump: bool) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Chain(Chain {
        family: NfFamily::IP,
        table: Cow::Borrowed(TABLE),
        name: Cow::Borrowed(CHAIN),
        ..Chain::default()
    }));
    batch.add_cmd(NfCmd::Flush(nftables::schema::FlushObject::Chain(Chain {
        family: NfFamily::IP,
        table: Cow::Borrowed(TABLE),
        name: Cow::Borrowed(CHAIN),
        ..Chain::default()
    })));
    let name = |bridge: &String| Expression::String(Cow::Owned(bridge.clone()));
    for from in bridges {
        for to in bridges.iter().filter(|to| *to != from) {
            let isolate = vec![
                matches(meta(MetaKey::Iifname), Operator::EQ, name(from)),
                matches(meta(MetaKey::Oifname), Operator::EQ, name(to)),
                Statement::Drop(None),
            ];
            batch.add(rule(CHAIN, isolate));
        }
    }
    for bridge in bridges {
        for key in [MetaKey::Iifname, MetaKey::Oifname] {
            let accept = vec![
                matches(meta(key), Operator::EQ, name(bridge)),
                Statement::Accept(None),
            ];
            batch.add(rule(CHAIN, accept));
        }
    }
    if jump {
        let to_ours = Statement::Jump(JumpTarget {
            target: Cow::Borrowed(CHAIN),
        });
        batch.add_cmd(NfCmd::Insert(rule(FORWARD, vec![to_ours])));
    }
    batch.to_nftables()
}

/// dockerd's table and `FORWARD` chain (policy drop), made where they are not, and the
/// engine's chain accepting what the engine accepted, jumped to from `FORWARD` when `jump` (it
/// is not there yet): one transaction.
pub(crate) fn engine(jump: bool) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(nftables::schema::Table {
        family: NfFamily::IP,
        name: Cow::Borrowed(TABLE),
        handle: None,
    }));
    batch.add(NfListObject::Chain(Chain {
        family: NfFamily::IP,
        table: Cow::Borrowed(TABLE),
        name: Cow::Borrowed(FORWARD),
        _type: Some(NfChainType::Filter),
        hook: Some(NfHook::Forward),
        prio: Some(0),
        policy: Some(NfChainPolicy::Drop),
        ..Chain::default()
    }));
    let ours = || Chain {
        family: NfFamily::IP,
        table: Cow::Borrowed(TABLE),
        name: Cow::Borrowed(ENGINE_CHAIN),
        ..Chain::default()
    };
    batch.add(NfListObject::Chain(ours()));
    batch.add_cmd(NfCmd::Flush(nftables::schema::FlushObject::Chain(ours())));
    let marked = Expression::BinaryOperation(Box::new(BinaryOperation::AND(
        meta(MetaKey::Mark),
        Expression::Number(ACCEPTED),
    )));
    let accepted = vec![
        matches(marked, Operator::EQ, Expression::Number(ACCEPTED)),
        Statement::Accept(None),
    ];
    batch.add(rule(ENGINE_CHAIN, accepted));
    if jump {
        let to_ours = Statement::Jump(JumpTarget {
            target: Cow::Borrowed(ENGINE_CHAIN),
        });
        batch.add(rule(FORWARD, vec![to_ours]));
    }
    batch.to_nftables()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings_accept_each_bridge_both_ways_and_jump_once() {
        let json = serde_json::to_string(&openings(&["br-0123456789ab".into()], true)).unwrap();
        assert_eq!(json.matches("br-0123456789ab").count(), 2, "{json}");
        let two = ["br-a".to_string(), "br-b".to_string()];
        let between = serde_json::to_string(&openings(&two, false)).unwrap();
        assert_eq!(
            between.matches(r#""drop""#).count(),
            2,
            "each way between them: {between}"
        );
        assert!(
            between.find(r#""drop""#) < between.find(r#""accept""#),
            "drops first: {between}"
        );
        assert!(
            json.contains(r#""insert""#) && json.contains(r#""jump":{"target":"DRYDOCK-PLUGINS"}"#),
            "{json}"
        );
        let again = serde_json::to_string(&openings(&[], false)).unwrap();
        assert!(
            !again.contains("insert") && again.contains("flush"),
            "{again}"
        );
    }
}
