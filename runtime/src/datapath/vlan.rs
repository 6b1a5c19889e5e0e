//! An 802.1Q sub-interface (`eth0.10`) where the kernel has no 8021q: a TAP of that name on the
//! docker host, with its parent's MAC address and MTU, and a thread that tags every frame the
//! host sends through it and untags every frame of its VLAN the parent receives. Kernel macvlan
//! links and userspace ipvlan ports then sit on it as on a kernel VLAN link.

use std::io;
use std::os::fd::AsRawFd;

use drydock_netsim::Netns;
use rtnetlink::LinkUnspec;

use super::packet::{PacketSocket, vlan_filter};
use super::pump::{Pump, Ready, poll, read_once, write_once};
use super::tap::Tap;
use super::{BATCH, BUFFER, frame};

/// A userspace 802.1Q sub-interface; the link and its thread go when this value is dropped.
#[derive(Debug)]
pub(crate) struct VlanLink {
    _pump: Pump,
}

impl VlanLink {
    /// Makes sub-interface `name` of `parent` (on `host`) for VLAN `vid`, up.
    pub(crate) async fn start(
        host: &Netns,
        parent: &str,
        name: &str,
        vid: u16,
    ) -> io::Result<VlanLink> {
        let (mac, mtu) = super::link_facts(host, parent).await?;
        let socket = PacketSocket::open(host, parent, Some(vlan_filter(vid)))?;
        let tap = Tap::create(host, name, true)?;
        let nl = host.netlink()?;
        let set = nl
            .link()
            .set(
                LinkUnspec::new_with_name(name)
                    .address(mac.to_vec())
                    .mtu(mtu)
                    .up()
                    .build(),
            )
            .execute()
            .await;
        nl.close().await;
        set.map_err(|e| io::Error::other(format!("set up {name}: {e}")))?;
        let name = name.to_string();
        let pump = Pump::spawn(&format!("dd-vlan-{name}"), move |waker| {
            let (tap_fd, socket_fd) = (tap.fd(), socket.fd());
            let mut buf = vec![0u8; BUFFER];
            loop {
                let Ok(ready) = poll(&[waker.fd().as_raw_fd(), tap_fd, socket_fd]) else {
                    return;
                };
                if ready[0] != Ready::Idle && waker.woken() {
                    return;
                }
                if ready[1] == Ready::Broken {
                    // The sub-interface was deleted under us: nothing is left to carry.
                    tracing::warn!("userspace VLAN {name}: the link is gone; its datapath stops");
                    return;
                }
                if ready[1] == Ready::Readable {
                    // What the host sends through the sub-interface, tagged onto the parent.
                    for _ in 0..BATCH {
                        let Some(n) = read_once(tap_fd, &mut buf[4..]) else {
                            break;
                        };
                        if let Some(len) = frame::push_vlan_tag(&mut buf, n, vid) {
                            write_once(socket_fd, &buf[..len]);
                        }
                    }
                }
                if ready[2] != Ready::Idle {
                    // The parent's frames of this VLAN, untagged already by the kernel.
                    for _ in 0..BATCH {
                        let Some(n) = read_once(socket_fd, &mut buf) else {
                            break;
                        };
                        write_once(tap_fd, &buf[..n]);
                    }
                }
            }
        })?;
        Ok(VlanLink { _pump: pump })
    }
}
