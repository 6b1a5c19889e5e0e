//! A small AF_PACKET reader over libc: kernel timestamps, direction and VLAN tags.
//!
//! `pnet_datalink` is not used: it discards the `sockaddr_ll` (so no direction), asks for no
//! timestamps and does not enable `PACKET_AUXDATA` (so VLAN tags stripped by the kernel are lost).

use std::io;
use std::mem::{size_of, size_of_val};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Direction, Packet};

/// Bytes kept of each frame. veth and lo hand AF_PACKET GSO super-frames (up to 64 KiB, more
/// with BIG TCP), so this is tcpdump's default snap length rather than an MTU.
pub(crate) const SNAPLEN: usize = 262_144;

/// Receive buffer asked for: enough for bursts of super-frames while the reader thread sleeps.
const RCVBUF: libc::c_int = 8 << 20;

/// The 802.1Q TPID used when the kernel does not report one.
const ETH_P_8021Q: u16 = 0x8100;

/// An AF_PACKET socket bound to one interface of the namespace it was opened in.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a non-blocking socket that receives every frame in and out of `ifname`.
    ///
    /// The socket belongs to the calling thread's network namespace: call this inside
    /// [`Netns::run`](crate::Netns::run).
    pub(crate) fn open(ifname: &str) -> io::Result<Self> {
        let ifindex = crate::netns::ifindex(ifname)?;
        let ifindex = libc::c_int::try_from(ifindex).map_err(io::Error::other)?;
        // Protocol 0: the socket receives nothing until bind() names a protocol and an interface,
        // so no frame of another interface can be queued in between.
        // SAFETY: plain syscall with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let socket = Self { fd };
        socket.set_int(libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
        socket.set_int(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        // SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN over the initial user namespace,
        // which a rootless lab lacks; SO_RCVBUF is then capped by net.core.rmem_max.
        if socket
            .set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF)
            .is_err()
        {
            let _ = socket.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
        }
        socket.bind(ifindex)?;
        Ok(socket)
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        // SAFETY: `value` outlives the call and the length matches its type.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn bind(&self, ifindex: libc::c_int) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` outlives the call and the length matches its type.
        let rc = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one frame into `buf` (which should hold [`SNAPLEN`] bytes); `Ok(None)` when no
    /// frame is queued.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Packet>> {
        // SAFETY: sockaddr_ll and msghdr are plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // u64 elements keep the buffer aligned for cmsghdr. Room for SCM_TIMESTAMPNS (32 bytes)
        // and PACKET_AUXDATA (40 bytes) with margin.
        let mut control = [0u64; 32];
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&raw mut addr).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // MSG_TRUNC: the return value is the frame's full length even when `buf` is shorter.
        // SAFETY: every pointer in `msg` refers to a live local or to `buf`, with its true length.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &raw mut msg,
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(err),
            };
        }
        let wire_len = n as usize;
        let mut timestamp = None;
        let mut aux = None;
        // SAFETY: `msg` was filled by recvmsg; the CMSG macros stay within msg_controllen, and
        // each payload is read unaligned with the type the kernel documents for it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            while !cmsg.is_null() {
                let header = &*cmsg;
                let data = libc::CMSG_DATA(cmsg);
                match (header.cmsg_level, header.cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                        let ts = data.cast::<libc::timespec>().read_unaligned();
                        timestamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                    }
                    (libc::SOL_PACKET, libc::PACKET_AUXDATA) => {
                        aux = Some(data.cast::<libc::tpacket_auxdata>().read_unaligned());
                    }
                    _ => {}
                }
                cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
            }
        }
        let timestamp = timestamp.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
        });
        let mut data = buf[..wire_len.min(buf.len())].to_vec();
        let mut original_len = u32::try_from(wire_len).unwrap_or(u32::MAX);
        if let Some(aux) = aux
            && reinsert_vlan_tag(&mut data, aux.tp_status, aux.tp_vlan_tci, aux.tp_vlan_tpid)
        {
            original_len = original_len.saturating_add(4);
        }
        let direction = if addr.sll_pkttype == libc::PACKET_OUTGOING {
            Direction::Out
        } else {
            Direction::In
        };
        Ok(Some(Packet {
            timestamp,
            direction,
            original_len,
            data,
        }))
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A netlink socket that learns when one interface is deleted (RTM_DELLINK), so that a capture
/// on it can end instead of waiting forever.
#[derive(Debug)]
pub(crate) struct LinkWatch {
    socket: netlink_sys::Socket,
    ifindex: u32,
}

impl LinkWatch {
    /// Watches `ifname` of the calling thread's namespace (call it inside [`Netns::run`]).
    ///
    /// [`Netns::run`]: crate::Netns::run
    pub(crate) fn open(ifname: &str) -> io::Result<Self> {
        const RTMGRP_LINK: u32 = 1;
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        socket.bind(&netlink_sys::SocketAddr::new(0, RTMGRP_LINK))?;
        socket.set_non_blocking(true)?;
        let ifindex = crate::netns::ifindex(ifname)?;
        Ok(Self { socket, ifindex })
    }

    /// Reads the pending link notifications; true when one says the interface was deleted.
    pub(crate) fn interface_deleted(&self) -> io::Result<bool> {
        use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
        use netlink_packet_route::RouteNetlinkMessage;
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            match self.socket.recv(&mut buf, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                // Notifications were lost (a burst of link changes): keep watching for the next.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(false),
                Err(e) => return Err(e),
            }
            let mut rest = &buf[..];
            while !rest.is_empty() {
                let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest) else {
                    break;
                };
                let length = message.header.length as usize;
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) =
                    message.payload
                    && link.header.index == self.ifindex
                {
                    return Ok(true);
                }
                // Messages in a datagram are aligned to 4 bytes.
                let next = length.next_multiple_of(4);
                if length == 0 || next > rest.len() {
                    break;
                }
                rest = &rest[next..];
            }
        }
    }
}

impl AsFd for LinkWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the socket's descriptor lives as long as `self`.
        unsafe { BorrowedFd::borrow_raw(self.socket.as_raw_fd()) }
    }
}

/// Puts back the 802.1Q tag the kernel moved out of an Ethernet frame into `PACKET_AUXDATA`,
/// as libpcap does: when the TCI is non-zero or `TP_STATUS_VLAN_VALID` is set, a 4-byte tag
/// (TPID, then TCI) is inserted after the two MAC addresses. The TPID is the reported one when
/// `TP_STATUS_VLAN_TPID_VALID` is set, else 0x8100. Returns whether a tag was inserted.
pub(crate) fn reinsert_vlan_tag(frame: &mut Vec<u8>, status: u32, tci: u16, tpid: u16) -> bool {
    if tci == 0 && status & libc::TP_STATUS_VLAN_VALID == 0 {
        return false;
    }
    if frame.len() < 12 {
        return false;
    }
    let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
        tpid
    } else {
        ETH_P_8021Q
    };
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    frame.splice(12..12, tag);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Vec<u8> {
        let mut frame = vec![0xff; 6]; // destination
        frame.extend([0x02, 0, 0, 0, 0, 1]); // source
        frame.extend([0x08, 0x00]); // IPv4
        frame.extend([0x45, 0, 0, 20]);
        frame
    }

    #[test]
    fn untagged_frames_are_left_alone() {
        let mut f = frame();
        assert!(!reinsert_vlan_tag(&mut f, 0, 0, 0));
        assert_eq!(f, frame());
    }

    #[test]
    fn tag_goes_after_the_macs_with_the_default_tpid() {
        let mut f = frame();
        // VLAN 10, priority 3: TCI = 3 << 13 | 10.
        assert!(reinsert_vlan_tag(
            &mut f,
            libc::TP_STATUS_VLAN_VALID,
            0x600a,
            0
        ));
        assert_eq!(f.len(), frame().len() + 4);
        assert_eq!(&f[..12], &frame()[..12]);
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x60, 0x0a]);
        assert_eq!(&f[16..], &frame()[12..]);
    }

    #[test]
    fn vlan_zero_counts_when_flagged_valid() {
        let mut f = frame();
        assert!(reinsert_vlan_tag(&mut f, libc::TP_STATUS_VLAN_VALID, 0, 0));
        assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn reported_tpid_is_used_when_valid() {
        let mut f = frame();
        let status = libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
        assert!(reinsert_vlan_tag(&mut f, status, 20, 0x88a8));
        assert_eq!(&f[12..16], &[0x88, 0xa8, 0x00, 0x14]);
    }

    #[test]
    fn runt_frames_are_not_tagged() {
        let mut f = vec![1, 2, 3];
        assert!(!reinsert_vlan_tag(
            &mut f,
            libc::TP_STATUS_VLAN_VALID,
            10,
            0
        ));
        assert_eq!(f, vec![1, 2, 3]);
    }
}
