//! nftables over netlink (`NETLINK_NETFILTER`): the per-container paths (published ports, DNS
//! NAT) change rules without spawning a process.
//!
//! A change is one nfnetlink batch, which the kernel applies as one transaction:
//!
//! ```text
//! NFNL_MSG_BATCH_BEGIN          nfgenmsg { AF_UNSPEC, v0, res_id = NFNL_SUBSYS_NFTABLES }
//! NFT_MSG_... | NLM_F_ACK       nfgenmsg { family, v0, 0 }, attributes
//! ...
//! NFNL_MSG_BATCH_END
//! ```
//!
//! The kernel processes the batch inside `sendmsg` and answers every message that asked for an
//! acknowledgement (an `NLMSG_ERROR` whose error is 0 or `-errno`); when the commit itself fails
//! it answers the BEGIN message instead. Encoding and decoding are pure functions; [`Socket`]
//! does the I/O.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use drydock_netsim::Netns;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// Create the object (with `NEW*` messages).
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// Append the rule at the end of its chain (with `NFT_MSG_NEWRULE`).
pub(crate) const NLM_F_APPEND: u16 = 0x800;
/// In an `NLMSG_ERROR` answer: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// In an `NLMSG_ERROR` answer: the request was not copied back (`NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const AF_UNSPEC: u8 = 0;

/// `NFT_MSG_NEWTABLE`.
pub(crate) const NFT_MSG_NEWTABLE: u16 = 0;
/// `NFT_MSG_NEWCHAIN`.
pub(crate) const NFT_MSG_NEWCHAIN: u16 = 3;
/// `NFT_MSG_NEWRULE`.
pub(crate) const NFT_MSG_NEWRULE: u16 = 6;
/// `NFT_MSG_NEWSETELEM`.
pub(crate) const NFT_MSG_NEWSETELEM: u16 = 12;
/// `NFT_MSG_DELSETELEM`.
pub(crate) const NFT_MSG_DELSETELEM: u16 = 14;
/// The `inet` family.
pub(crate) const NFPROTO_INET: u8 = 1;
/// The `ip` family.
pub(crate) const NFPROTO_IPV4: u8 = 2;

/// How long to wait for the kernel's answer (it is normally there when `sendmsg` returns).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Writes netlink attributes (host byte order headers, as netlink wants them).
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// An attribute with raw payload.
    pub(crate) fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = u16::try_from(4 + payload.len()).expect("attribute fits in 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    /// A NUL-terminated string attribute.
    pub(crate) fn string(&mut self, kind: u16, value: &str) {
        let mut payload = value.as_bytes().to_vec();
        payload.push(0);
        self.attr(kind, &payload);
    }

    /// A 32-bit attribute in network byte order (nftables' convention).
    pub(crate) fn u32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    /// A nested attribute whose content `f` writes.
    pub(crate) fn nested(&mut self, kind: u16, f: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        f(self);
        let len = u16::try_from(self.buf.len() - start).expect("attribute fits in 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    fn message(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
        f: impl FnOnce(&mut Self),
    ) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, below
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.extend_from_slice(&[family, 0]); // nfgen_family, NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        f(self);
        let len = u32::try_from(self.buf.len() - start).expect("message fits in 4 GiB");
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// One nfnetlink batch: its messages are applied together or not at all.
#[derive(Debug)]
pub(crate) struct Batch {
    writer: Writer,
    first: u32,
    seq: u32,
}

impl Batch {
    /// Starts a batch whose BEGIN message has sequence number `first`.
    pub(crate) fn new(first: u32) -> Self {
        let mut writer = Writer::default();
        writer.message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            first,
            AF_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        Self {
            writer,
            first,
            seq: first,
        }
    }

    /// Adds an nftables message (`NFT_MSG_*`) asking for an acknowledgement; `flags` adds to
    /// `NLM_F_REQUEST | NLM_F_ACK`.
    pub(crate) fn push(&mut self, kind: u16, flags: u16, family: u8, f: impl FnOnce(&mut Writer)) {
        self.seq += 1;
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        self.writer.message(
            kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            self.seq,
            family,
            0,
            f,
        );
    }

    /// The messages pushed so far.
    fn count(&self) -> u32 {
        self.seq - self.first
    }

    /// Ends the batch: its bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let end = self.seq + 1;
        self.writer.message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            end,
            AF_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        self.writer.buf
    }
}

/// The kernel's answer to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Sequence number of the message answered.
    pub(crate) seq: u32,
    /// 0, or `-errno`.
    pub(crate) error: i32,
    /// The extended-ack message, if any.
    pub(crate) message: Option<String>,
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the acknowledgements and errors in what the kernel sent back.
pub(crate) fn decode_answers(mut buf: &[u8]) -> Result<Vec<Answer>, String> {
    let mut answers = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32_at(buf, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(format!(
                "netlink message of length {len} in {} bytes",
                buf.len()
            ));
        }
        let kind = u16_at(buf, 4).unwrap_or(0);
        let flags = u16_at(buf, 6).unwrap_or(0);
        let message = &buf[..len];
        if kind == NLMSG_ERROR {
            let error =
                u32_at(message, NLMSG_HDRLEN).ok_or("truncated netlink error message")? as i32;
            let request = NLMSG_HDRLEN + 4;
            let seq = u32_at(message, request + 8).ok_or("truncated netlink error message")?;
            let mut text = None;
            if flags & NLM_F_ACK_TLVS != 0 {
                let request_len = if flags & NLM_F_CAPPED != 0 {
                    NLMSG_HDRLEN
                } else {
                    u32_at(message, request).unwrap_or(0) as usize
                };
                let mut at = request + align4(request_len);
                while let (Some(attr_len), Some(attr_kind)) =
                    (u16_at(message, at), u16_at(message, at + 2))
                {
                    let attr_len = attr_len as usize;
                    if attr_len < 4 || at + attr_len > message.len() {
                        break;
                    }
                    if attr_kind & !NLA_F_NESTED == NLMSGERR_ATTR_MSG {
                        let value = &message[at + 4..at + attr_len];
                        let value = value.split(|&b| b == 0).next().unwrap_or_default();
                        text = Some(String::from_utf8_lossy(value).into_owned());
                    }
                    at += align4(attr_len);
                }
            }
            answers.push(Answer {
                seq,
                error,
                message: text,
            });
        }
        buf = &buf[align4(len).min(buf.len())..];
    }
    Ok(answers)
}

/// A batch the kernel refused.
#[derive(Debug)]
pub(crate) struct BatchError {
    /// Which pushed message failed (0-based), when the kernel said.
    pub(crate) message_index: Option<usize>,
    /// The error.
    pub(crate) error: io::Error,
    /// The kernel's extended-ack text.
    pub(crate) text: Option<String>,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(text) = &self.text {
            write!(f, " ({text})")?;
        }
        if let Some(index) = self.message_index {
            write!(f, " at message {}", index + 1)?;
        }
        Ok(())
    }
}

/// A `NETLINK_NETFILTER` socket in one network namespace.
#[derive(Debug)]
pub(crate) struct Socket {
    socket: netlink_sys::Socket,
    seq: u32,
}

impl Socket {
    /// Opens a socket in `netns`.
    pub(crate) fn open(netns: &Netns) -> io::Result<Self> {
        netns.run(Self::open_here)?
    }

    /// Opens a socket in the calling thread's namespace.
    pub(crate) fn open_here() -> io::Result<Self> {
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.set_ext_ack(true)?;
        socket.set_cap_ack(true)?;
        let timeout = libc::timeval {
            tv_sec: ANSWER_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: a valid socket, a valid timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { socket, seq: 1 })
    }

    /// Sends the batch `build` makes and waits until the kernel acknowledged every message.
    pub(crate) fn apply(&mut self, build: impl FnOnce(&mut Batch)) -> Result<(), BatchError> {
        let io_error = |error| BatchError {
            message_index: None,
            error,
            text: None,
        };
        let mut batch = Batch::new(self.seq);
        build(&mut batch);
        let (first, count) = (batch.first, batch.count());
        self.seq = self.seq.wrapping_add(count + 2);
        let bytes = batch.finish();
        let sent = self.socket.send(&bytes, 0).map_err(io_error)?;
        if sent != bytes.len() {
            return Err(io_error(io::Error::other(format!(
                "netlink send wrote {sent} of {} bytes",
                bytes.len()
            ))));
        }
        let mut acknowledged = vec![false; count as usize];
        let mut buf = vec![0u8; 64 * 1024];
        while acknowledged.iter().any(|done| !done) {
            let len = match self.socket.recv(&mut &mut buf[..], 0) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io_error(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer from the kernel within {ANSWER_TIMEOUT:?}"),
                    )));
                }
                Err(e) => return Err(io_error(e)),
            };
            let answers = decode_answers(&buf[..len]).map_err(|e| io_error(io::Error::other(e)))?;
            for answer in answers {
                let offset = answer.seq.wrapping_sub(first);
                if offset > count + 1 {
                    continue;
                }
                let index = (1..=count).contains(&offset).then(|| offset as usize - 1);
                if answer.error != 0 {
                    return Err(BatchError {
                        message_index: index,
                        error: io::Error::from_raw_os_error(-answer.error),
                        text: answer.message,
                    });
                }
                if let Some(index) = index {
                    acknowledged[index] = true;
                }
            }
        }
        Ok(())
    }
}
