//! Userspace datapaths for link kinds this kernel may lack (ARCHITECTURE invariant 3): an
//! 802.1Q sub-interface ([`vlan`]) and ipvlan ports ([`ipvlan`]). Each is one thread per link or
//! parent, moving frames between TAP devices and an AF_PACKET socket on the parent with their
//! virtio-net headers, so that TSO/GSO super-frames and partial checksums cross whole: one
//! system call per 64 KiB rather than per 1.5 KiB frame.
//!
//! Everything a datapath opens (thread, sockets, TAPs, eventfd) belongs to its handle and goes
//! when the handle is dropped: the thread is stopped and joined, its descriptors closed, and the
//! TAP devices, which are not persistent, vanish with their last descriptor.

pub(crate) mod frame;
pub(crate) mod ipvlan;
pub(crate) mod packet;
pub(crate) mod pump;
pub(crate) mod tap;
pub(crate) mod vlan;

/// Size of every frame buffer: a 64 KiB GSO super-frame, its virtio-net header and a VLAN tag.
pub(crate) const BUFFER: usize = 128 * 1024;

/// Length of `struct virtio_net_hdr`, which TAP (`IFF_VNET_HDR`) and AF_PACKET
/// (`PACKET_VNET_HDR`) put before each frame.
pub(crate) const VNET_HDR: usize = 10;

/// Frames a datapath moves from one descriptor before it looks at the others again.
pub(crate) const BATCH: usize = 64;

/// The MAC address and MTU of link `name` of `netns`.
pub(crate) async fn link_facts(
    netns: &drydock_netsim::Netns,
    name: &str,
) -> std::io::Result<([u8; 6], u32)> {
    let nl = netns.netlink()?;
    let found = drydock_netsim::link::find(&nl, name).await;
    nl.close().await;
    let link = found.map_err(|e| std::io::Error::other(format!("link {name}: {e}")))?;
    let mac = link
        .mac
        .ok_or_else(|| std::io::Error::other(format!("link {name} has no Ethernet address")))?;
    Ok((mac, link.mtu))
}
