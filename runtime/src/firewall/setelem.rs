//! Set and map elements as nfnetlink messages: the per-container path, which spawns no
//! process. The batch, socket and acknowledgements are [`crate::nfnl`]'s; this adds the
//! element messages. Pure.
//!
//! ```text
//! NFT_MSG_NEWSETELEM | DELSETELEM      nfgenmsg { NFPROTO_INET, v0, 0 }, NLM_F_ACK
//!   NFTA_SET_ELEM_LIST_TABLE  "drydock\0"
//!   NFTA_SET_ELEM_LIST_SET    "publish_...\0"
//!   NFTA_SET_ELEM_LIST_ELEMENTS (nested)
//!     NFTA_LIST_ELEM (nested)
//!       NFTA_SET_ELEM_KEY (nested)  NFTA_DATA_VALUE  key bytes
//!       NFTA_SET_ELEM_DATA (nested) NFTA_DATA_VALUE  data bytes     (maps, on add)
//! ```
//!
//! One message per set, all in one batch: the kernel applies them together or not at all.

use crate::nfnl::{self, Batch};

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// Add or delete elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `NFT_MSG_NEWSETELEM` with `NLM_F_CREATE` (no `NLM_F_EXCL`): adding an identical element
    /// again succeeds, the same key with other data fails (`EEXIST` on Linux 6.18; some kernels
    /// say `EBUSY`).
    Add,
    /// `NFT_MSG_DELSETELEM` (by key): a missing element fails with `ENOENT`.
    Delete,
}

/// One element of one set or map, already encoded as the kernel stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElementChange {
    /// Set or map name.
    pub(crate) set: &'static str,
    /// The key, every component of a concatenation padded to 4 bytes.
    pub(crate) key: Vec<u8>,
    /// The mapped data (maps only; ignored on delete).
    pub(crate) data: Option<Vec<u8>>,
}

/// Pushes one message per change to `batch`, in order.
pub(crate) fn push(batch: &mut Batch, table: &str, op: Op, changes: &[ElementChange]) {
    let (kind, flags) = match op {
        Op::Add => (nfnl::NFT_MSG_NEWSETELEM, nfnl::NLM_F_CREATE),
        Op::Delete => (nfnl::NFT_MSG_DELSETELEM, 0),
    };
    for change in changes {
        batch.push(kind, flags, nfnl::NFPROTO_INET, |w| {
            w.string(NFTA_SET_ELEM_LIST_TABLE, table);
            w.string(NFTA_SET_ELEM_LIST_SET, change.set);
            w.nested(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                w.nested(NFTA_LIST_ELEM, |w| {
                    w.nested(NFTA_SET_ELEM_KEY, |w| w.attr(NFTA_DATA_VALUE, &change.key));
                    if let (Op::Add, Some(data)) = (op, &change.data) {
                        w.nested(NFTA_SET_ELEM_DATA, |w| w.attr(NFTA_DATA_VALUE, data));
                    }
                });
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfnl::{Answer, decode_answers};

    fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&len.to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(4 + payload.len() as u16).to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(payload);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        bytes
    }

    fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | 0x8000, &parts.concat())
    }

    fn batch(first: u32, op: Op, changes: &[ElementChange]) -> Vec<u8> {
        let mut batch = Batch::new(first);
        push(&mut batch, "drydock", op, changes);
        batch.finish()
    }

    #[test]
    fn add_batch_matches_what_nft_sends() {
        // Key 10.0.0.1 . tcp . 8080 and data 80, as `nft --debug=mnl add element` shows them.
        let key = vec![10, 0, 0, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0];
        let change = ElementChange {
            set: "publish_ip4_port",
            key: key.clone(),
            data: Some(vec![0, 80]),
        };
        let bytes = batch(7, Op::Add, &[change]);

        // BEGIN and END: AF_UNSPEC, v0, res_id NFNL_SUBSYS_NFTABLES (big-endian).
        let begin = [header(20, 0x10, 1, 7), vec![0, 0, 0, 10]].concat();
        let body = [
            vec![1, 0, 0, 0], // NFPROTO_INET, v0, res_id 0
            attr(1, b"drydock\0"),
            attr(2, b"publish_ip4_port\0"),
            nested(
                3,
                &[nested(
                    1,
                    &[nested(1, &[attr(1, &key)]), nested(2, &[attr(1, &[0, 80])])],
                )],
            ),
        ]
        .concat();
        // NFT_MSG_NEWSETELEM in subsystem 10; NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE.
        let new = [header(16 + body.len() as u32, 0x0a0c, 0x405, 8), body].concat();
        let end = [header(20, 0x11, 1, 9), vec![0, 0, 0, 10]].concat();
        assert_eq!(bytes, [begin, new, end].concat());
        // NFTA_SET_ELEM_LIST_ELEMENTS: 40 bytes (nested), as `nft --debug=mnl` shows it here.
        assert_eq!(&bytes[20 + 20 + 12 + 24..][..4], &[40, 0, 3, 0x80]);
    }

    #[test]
    fn delete_batch_carries_keys_only() {
        let change = ElementChange {
            set: "publish_any4_addr",
            key: vec![17, 0, 0, 0, 0, 53, 0, 0],
            data: Some(vec![172, 18, 0, 2]),
        };
        let bytes = batch(1, Op::Delete, &[change.clone(), change]);
        let mut messages = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let field = |at: usize| u16::from_ne_bytes([rest[at], rest[at + 1]]);
            let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
            let seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
            messages.push((field(4), field(6), seq));
            rest = &rest[len..];
        }
        assert_eq!(
            messages,
            [(0x10, 1, 1), (0x0a0e, 5, 2), (0x0a0e, 5, 3), (0x11, 1, 4)]
        );
        // No NFTA_SET_ELEM_DATA: the list element holds only the key (4 + 4 + 4 + 8).
        assert_eq!(&bytes[20 + 20 + 12 + 24..][..4], &[24, 0, 3, 0x80]);
    }

    #[test]
    fn answers_decode_acks_errors_and_extended_messages() {
        const NLMSG_ERROR: u16 = 2;
        const NLM_F_CAPPED: u16 = 0x100;
        const NLM_F_ACK_TLVS: u16 = 0x200;
        // An ack (capped: only the request header follows).
        let mut ack = header(36, NLMSG_ERROR, NLM_F_CAPPED, 5);
        ack.extend_from_slice(&0i32.to_ne_bytes());
        ack.extend_from_slice(&header(100, 0x0a0c, 0x405, 5));
        // An error with an extended-ack message (NLMSGERR_ATTR_MSG).
        let text = attr(1, b"Set element exists\0");
        let mut error = header(
            36 + text.len() as u32,
            NLMSG_ERROR,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            6,
        );
        error.extend_from_slice(&(-libc::EEXIST).to_ne_bytes());
        error.extend_from_slice(&header(100, 0x0a0c, 0x405, 6));
        error.extend_from_slice(&text);
        let answers = decode_answers(&[ack, error].concat()).unwrap();
        assert_eq!(
            answers,
            [
                Answer {
                    seq: 5,
                    error: 0,
                    message: None
                },
                Answer {
                    seq: 6,
                    error: -libc::EEXIST,
                    message: Some("Set element exists".into())
                },
            ]
        );
        // Truncated: an error message without the request header.
        let mut short = header(20, NLMSG_ERROR, 0, 5);
        short.extend_from_slice(&0i32.to_ne_bytes());
        assert!(decode_answers(&short).is_err());
    }
}
