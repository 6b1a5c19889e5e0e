//! TAP devices for the datapaths: `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, non-blocking, not
//! persistent (the link goes with its descriptor). Three ioctls on `/dev/net/tun`; the link's
//! address, MTU and state are then set over netlink like any other link's.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use drydock_netsim::Netns;

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `TUNSETOFFLOAD`: `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`: the stack may hand the TAP super-frames and
/// unfinished checksums, which the datapath passes on whole.
const OFFLOADS: libc::c_ulong = 0x01 | 0x02 | 0x04;

/// A TAP device, alive while this value is.
#[derive(Debug)]
pub(crate) struct Tap {
    file: File,
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl Tap {
    /// Creates TAP `name` in `netns`; with `offload`, the stack there may send it super-frames
    /// and partial checksums (a datapath that cannot pass those on must not ask for them).
    pub(crate) fn create(netns: &Netns, name: &str, offload: bool) -> io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid link name {name:?}"),
            ));
        }
        let name = name.to_string();
        netns.run(move || Self::create_here(&name, offload))?
    }

    fn create_here(name: &str, offload: bool) -> io::Result<Tap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut request = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
            _pad: [0; 22],
        };
        request.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads a live, properly laid out ifreq.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &raw mut request) } < 0 {
            let error = io::Error::last_os_error();
            return Err(io::Error::new(
                error.kind(),
                format!("create TAP {name}: {error}"),
            ));
        }
        let offloads: libc::c_ulong = if offload { OFFLOADS } else { 0 };
        // SAFETY: TUNSETOFFLOAD takes its flags by value, as an unsigned long.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD, offloads) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tap { file })
    }

    /// Its descriptor, to poll, read and write.
    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
