//! AF_PACKET sockets on a parent link, for the datapaths: every frame the link receives (not
//! those it sends: `PACKET_IGNORE_OUTGOING`), each behind its virtio-net header
//! (`PACKET_VNET_HDR`), the link in promiscuous mode, optionally narrowed by a classic BPF
//! filter attached before the socket is bound, so that no unfiltered frame slips in.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use drydock_netsim::Netns;
use drydock_netsim::netns::ifindex;

/// `PACKET_IGNORE_OUTGOING` (linux/if_packet.h; not in every libc).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Receive and send buffer of a datapath socket.
const BUFFER_BYTES: libc::c_int = 8 << 20;

/// An AF_PACKET socket bound to one link.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a socket on link `ifname` of `netns`, non-blocking, keeping only what `filter`
    /// accepts (all frames without one).
    pub(crate) fn open(
        netns: &Netns,
        ifname: &str,
        filter: Option<Vec<libc::sock_filter>>,
    ) -> io::Result<PacketSocket> {
        let name = ifname.to_string();
        netns.run(move || Self::open_here(&name, filter.as_deref()))?
    }

    fn open_here(ifname: &str, filter: Option<&[libc::sock_filter]>) -> io::Result<PacketSocket> {
        let index = ifindex(ifname)?;
        // Protocol 0: nothing is received until bind, after the options and the filter.
        // SAFETY: socket returns a new descriptor or -1.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let socket = PacketSocket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        socket.set(libc::SOL_PACKET, libc::PACKET_VNET_HDR, &1i32)?;
        // Room for a burst of 64 KiB super-frames: the default (about 200 KiB) holds three,
        // and a full buffer drops frames, which TCP pays for in retransmissions.
        socket.set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &BUFFER_BYTES)?;
        socket.set(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &BUFFER_BYTES)?;
        socket.set(libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32)?;
        let promisc = libc::packet_mreq {
            mr_ifindex: index as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        socket.set(libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &promisc)?;
        if let Some(filter) = filter {
            let program = libc::sock_fprog {
                len: filter.len() as libc::c_ushort,
                filter: filter.as_ptr().cast_mut(),
            };
            socket.set(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &program)?;
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as libc::c_ushort;
        address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        address.sll_ifindex = index as libc::c_int;
        // SAFETY: binds to a live sockaddr_ll of the size given.
        let bound = unsafe {
            libc::bind(
                fd,
                (&raw const address).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn set<T>(&self, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: passes a live value of the size given.
        let done = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        };
        if done < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Its descriptor, to poll, read and write.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

const LD_ABS_W: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const LD_ABS_H: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
const LD_ABS_B: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The offset of ancillary field `field` (the kernel's metadata rather than frame bytes).
fn ancillary(field: i32) -> u32 {
    (libc::SKF_AD_OFF + field) as u32
}

/// A classic BPF filter keeping the frames of VLAN `vid` (an 802.1Q tag, not an 802.1ad one)
/// only. The kernel has moved the tag into the packet's metadata before AF_PACKET sees it, so
/// the filter reads the ancillary fields rather than the frame.
pub(crate) fn vlan_filter(vid: u16) -> Vec<libc::sock_filter> {
    vec![
        op(LD_ABS_W, 0, 0, ancillary(libc::SKF_AD_VLAN_TAG_PRESENT)),
        op(JEQ_K, 5, 0, 0),
        op(LD_ABS_W, 0, 0, ancillary(libc::SKF_AD_VLAN_TPID)),
        op(JEQ_K, 0, 3, 0x8100),
        op(LD_ABS_W, 0, 0, ancillary(libc::SKF_AD_VLAN_TAG)),
        op(AND_K, 0, 0, 0x0fff),
        op(JEQ_K, 1, 0, u32::from(vid)),
        op(RET_K, 0, 0, 0),
        op(RET_K, 0, 0, u32::MAX),
    ]
}

/// A classic BPF filter keeping the untagged frames for `mac` or for a group address: what a
/// link with that address receives. Tagged frames belong to the link's VLAN sub-interfaces.
pub(crate) fn untagged_filter(mac: [u8; 6]) -> Vec<libc::sock_filter> {
    let first = u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]);
    let last = u32::from(u16::from_be_bytes([mac[4], mac[5]]));
    vec![
        op(LD_ABS_W, 0, 0, ancillary(libc::SKF_AD_VLAN_TAG_PRESENT)),
        op(JEQ_K, 0, 6, 0),
        op(LD_ABS_B, 0, 0, 0),
        op(JSET_K, 5, 0, 1),
        op(LD_ABS_W, 0, 0, 0),
        op(JEQ_K, 0, 2, first),
        op(LD_ABS_H, 0, 0, 4),
        op(JEQ_K, 1, 0, last),
        op(RET_K, 0, 0, 0),
        op(RET_K, 0, 0, u32::MAX),
    ]
}
