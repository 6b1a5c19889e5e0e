//! The NAT rules that make a sandbox's resolver answer on 127.0.0.11:53 while it listens on
//! ports of its own, so the container keeps port 53 for itself. Docker 20.10 puts the same
//! rules in iptables' `DOCKER_OUTPUT` and `DOCKER_POSTROUTING` chains of the container's
//! namespace; here they are one nftables table, made in one nfnetlink batch (no process):
//!
//! ```text
//! table ip drydock-dns {
//!   chain output { type nat hook output priority -100; policy accept;
//!     ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:UDP_PORT
//!     ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:TCP_PORT }
//!   chain postrouting { type nat hook postrouting priority 100; policy accept;
//!     ip saddr 127.0.0.11 udp sport UDP_PORT snat to :53
//!     ip saddr 127.0.0.11 tcp sport TCP_PORT snat to :53 }
//! }
//! ```

use std::io;

use crate::nfnl::{self, Batch, Writer};

use super::RESOLVER_IP;

/// The table's name.
pub(crate) const TABLE: &str = "drydock-dns";

const NF_INET_POST_ROUTING: u32 = 4;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_ACCEPT: u32 = 1;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CMP_EQ: u32 = 0;
const NFT_NAT_SNAT: u32 = 0;
const NFT_NAT_DNAT: u32 = 1;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
const NFPROTO_IPV4: u32 = 2;

/// One nftables expression, as the rules above need them.
#[derive(Debug, Clone, Copy)]
enum Expr {
    /// Loads `len` bytes at `offset` of a header into register 1.
    Payload { base: u32, offset: u32, len: u32 },
    /// Loads the layer 4 protocol into register 1.
    L4Proto,
    /// Register 1 must equal these bytes.
    Equals(&'static [u8]),
    /// Register 1 must equal this port.
    EqualsPort(u16),
    /// Puts bytes in a register.
    Immediate(u32, [u8; 4], usize),
    /// NAT with the address in register 1 (when `address`) and the port in `port_reg`.
    Nat {
        kind: u32,
        address: bool,
        port_reg: u32,
    },
}

/// Installs the rules in the calling thread's network namespace (run it inside the sandbox).
pub(crate) fn redirect(udp_port: u16, tcp_port: u16) -> io::Result<()> {
    let mut socket = nfnl::Socket::open_here()?;
    socket
        .apply(|batch| build(batch, udp_port, tcp_port))
        .map_err(|e| io::Error::new(e.error.kind(), format!("DNS NAT rules: {e}")))
}

const IP: [u8; 4] = RESOLVER_IP.octets();
const UDP: &[u8] = &[17];
const TCP: &[u8] = &[6];

fn build(batch: &mut Batch, udp_port: u16, tcp_port: u16) {
    batch.push(
        nfnl::NFT_MSG_NEWTABLE,
        nfnl::NLM_F_CREATE,
        nfnl::NFPROTO_IPV4,
        |w| w.string(NFTA_TABLE_NAME, TABLE),
    );
    chain(batch, "output", NF_INET_LOCAL_OUT, -100);
    chain(batch, "postrouting", NF_INET_POST_ROUTING, 100);
    let port53 = {
        let mut bytes = [0; 4];
        bytes[..2].copy_from_slice(&53u16.to_be_bytes());
        bytes
    };
    for (proto, port) in [(UDP, udp_port), (TCP, tcp_port)] {
        let mut to = [0; 4];
        to[..2].copy_from_slice(&port.to_be_bytes());
        // Queries to 127.0.0.11:53 go to the resolver's own port...
        let dnat = [
            Expr::Immediate(NFT_REG_1, IP, 4),
            Expr::Immediate(NFT_REG_2, to, 2),
            Expr::Nat {
                kind: NFT_NAT_DNAT,
                address: true,
                port_reg: NFT_REG_2,
            },
        ];
        rule(
            batch,
            "output",
            &[&matching(16, proto, 2, 53)[..], &dnat].concat(),
        );
        // ...and its answers leave from port 53.
        let snat = [
            Expr::Immediate(NFT_REG_1, port53, 2),
            Expr::Nat {
                kind: NFT_NAT_SNAT,
                address: false,
                port_reg: NFT_REG_1,
            },
        ];
        rule(
            batch,
            "postrouting",
            &[&matching(12, proto, 0, port)[..], &snat].concat(),
        );
    }
}

/// Matches packets whose IPv4 address at `ip_offset` (16: destination, 12: source) is the
/// resolver's, of protocol `proto`, with `port` at `port_offset` of the transport header
/// (2: destination, 0: source).
fn matching(ip_offset: u32, proto: &'static [u8], port_offset: u32, port: u16) -> [Expr; 6] {
    [
        Expr::Payload {
            base: NFT_PAYLOAD_NETWORK_HEADER,
            offset: ip_offset,
            len: 4,
        },
        Expr::Equals(&IP),
        Expr::L4Proto,
        Expr::Equals(proto),
        Expr::Payload {
            base: NFT_PAYLOAD_TRANSPORT_HEADER,
            offset: port_offset,
            len: 2,
        },
        Expr::EqualsPort(port),
    ]
}

fn chain(batch: &mut Batch, name: &str, hook: u32, priority: i32) {
    batch.push(
        nfnl::NFT_MSG_NEWCHAIN,
        nfnl::NLM_F_CREATE,
        nfnl::NFPROTO_IPV4,
        |w| {
            w.string(NFTA_CHAIN_TABLE, TABLE);
            w.string(NFTA_CHAIN_NAME, name);
            w.nested(NFTA_CHAIN_HOOK, |w| {
                w.u32(NFTA_HOOK_HOOKNUM, hook);
                w.u32(NFTA_HOOK_PRIORITY, priority as u32);
            });
            w.u32(NFTA_CHAIN_POLICY, NF_ACCEPT);
            w.string(NFTA_CHAIN_TYPE, "nat");
        },
    );
}

fn rule(batch: &mut Batch, chain: &str, exprs: &[Expr]) {
    batch.push(
        nfnl::NFT_MSG_NEWRULE,
        nfnl::NLM_F_CREATE | nfnl::NLM_F_APPEND,
        nfnl::NFPROTO_IPV4,
        |w| {
            w.string(NFTA_RULE_TABLE, TABLE);
            w.string(NFTA_RULE_CHAIN, chain);
            w.nested(NFTA_RULE_EXPRESSIONS, |w| {
                for expr in exprs {
                    w.nested(NFTA_LIST_ELEM, |w| expression(w, *expr));
                }
            });
        },
    );
}

/// Encodes one expression (attribute numbers from `linux/netfilter/nf_tables.h`).
fn expression(w: &mut Writer, expr: Expr) {
    let name = match expr {
        Expr::Payload { .. } => "payload",
        Expr::L4Proto => "meta",
        Expr::Equals(_) | Expr::EqualsPort(_) => "cmp",
        Expr::Immediate(..) => "immediate",
        Expr::Nat { .. } => "nat",
    };
    w.string(NFTA_EXPR_NAME, name);
    w.nested(NFTA_EXPR_DATA, |w| match expr {
        Expr::Payload { base, offset, len } => {
            w.u32(1, NFT_REG_1); // NFTA_PAYLOAD_DREG
            w.u32(2, base); // NFTA_PAYLOAD_BASE
            w.u32(3, offset); // NFTA_PAYLOAD_OFFSET
            w.u32(4, len); // NFTA_PAYLOAD_LEN
        }
        Expr::L4Proto => {
            w.u32(1, NFT_REG_1); // NFTA_META_DREG
            w.u32(2, NFT_META_L4PROTO); // NFTA_META_KEY
        }
        Expr::Equals(bytes) => compare(w, bytes),
        Expr::EqualsPort(port) => compare(w, &port.to_be_bytes()),
        Expr::Immediate(register, bytes, len) => {
            w.u32(1, register); // NFTA_IMMEDIATE_DREG
            w.nested(2, |w| w.attr(NFTA_DATA_VALUE, &bytes[..len])); // NFTA_IMMEDIATE_DATA
        }
        Expr::Nat {
            kind,
            address,
            port_reg,
        } => {
            w.u32(1, kind); // NFTA_NAT_TYPE
            w.u32(2, NFPROTO_IPV4); // NFTA_NAT_FAMILY
            if address {
                w.u32(3, NFT_REG_1); // NFTA_NAT_REG_ADDR_MIN
            }
            w.u32(5, port_reg); // NFTA_NAT_REG_PROTO_MIN
            w.u32(7, NF_NAT_RANGE_PROTO_SPECIFIED); // NFTA_NAT_FLAGS
        }
    });
}

fn compare(w: &mut Writer, bytes: &[u8]) {
    w.u32(1, NFT_REG_1); // NFTA_CMP_SREG
    w.u32(2, NFT_CMP_EQ); // NFTA_CMP_OP
    w.nested(3, |w| w.attr(NFTA_DATA_VALUE, bytes)); // NFTA_CMP_DATA
}
