//! ipvlan ports where the kernel has no ipvlan: every endpoint is a TAP in its container with
//! the parent's MAC address, and one thread per parent demultiplexes by IP address, as the
//! kernel's ipvlan rx handler does.
//!
//! - From the parent: a frame for the parent's MAC goes to the endpoint that owns its
//!   destination IP (an ARP packet's target address in l2); group frames go to every endpoint in
//!   l2 and to none in l3. Frames for no endpoint are left to the docker host's stack, whose
//!   copy of the endpoints' traffic the driver drops at the parent's netdev ingress hook.
//! - From an endpoint, in l2: group frames go out the parent and to the other endpoints;
//!   frames for the shared MAC go to the endpoint that owns the destination IP; the rest goes
//!   out the parent. In l3 the endpoint has no ARP (its link is NOARP): packets for another
//!   endpoint go straight to it, the rest is routed by the docker host's stack, through raw IP
//!   sockets there, as the kernel routes an l3 slave's packets in the parent's namespace.
//! - Endpoints of one port reach each other directly (the kernel's `bridge` flag; Docker 20.10
//!   has no `ipvlan_flag`).
//!
//! l3s is l3 here: the difference (netfilter hooks of the docker host on the slave's traffic)
//! does not arise in a userspace datapath whose l3 egress already goes through those hooks.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, PoisonError};

use drydock_netsim::Netns;
use drydock_netsim::netns::write_sysctl;
use rtnetlink::LinkUnspec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::packet::{PacketSocket, untagged_filter};
use super::pump::{Pump, Ready, Waker, poll, read_once, write_once};
use super::tap::Tap;
use super::{BATCH, BUFFER, VNET_HDR, frame};

/// How the port forwards (`-o ipvlan_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Switched: ARP and group traffic reach the endpoints.
    L2,
    /// Routed through the docker host: no ARP, no group traffic.
    L3,
}

/// One endpoint of the port.
#[derive(Debug)]
struct Member {
    endpoint: String,
    /// Its `dev_id` on the port, as the kernel numbers ipvlan slaves (from 1).
    dev_id: u16,
    addresses: Vec<IpAddr>,
    tap: Arc<Tap>,
}

/// What the thread forwards by: set by the owner, read by the thread when woken.
type Members = Arc<Mutex<Vec<Member>>>;

/// A userspace ipvlan port on a parent link of the docker host.
#[derive(Debug)]
pub(crate) struct Port {
    mac: [u8; 6],
    mtu: u32,
    mode: Mode,
    members: Members,
    pump: Pump,
}

impl Port {
    /// Starts the port of `parent` on `host`.
    pub(crate) async fn start(host: &Netns, parent: &str, mode: Mode) -> io::Result<Port> {
        let (mac, mtu) = super::link_facts(host, parent).await?;
        let socket = PacketSocket::open(host, parent, Some(untagged_filter(mac)))?;
        let router = match mode {
            Mode::L2 => None,
            Mode::L3 => Some(host.run(|| Router::open(parent))??),
        };
        let members = Members::default();
        let forwarding = Forwarding {
            mac,
            mode,
            socket,
            router,
            members: Arc::clone(&members),
        };
        let pump = Pump::spawn(&format!("dd-ipvl-{parent}"), move |waker| {
            forwarding.run(waker)
        })?;
        Ok(Port {
            mac,
            mtu,
            mode,
            members,
            pump,
        })
    }

    /// The parent's MAC address, which every endpoint has.
    pub(crate) fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Plugs endpoint `endpoint` into `sandbox` as link `ifname` (down, without addresses):
    /// a TAP with the parent's MAC and MTU, NOARP in l3. With an IPv6 address, it also gets
    /// the link-local address the kernel would give an ipvlan slave (the parent's EUI-64 with
    /// the slave's `dev_id` in place of `ff:fe`), which it returns for the caller to add: the
    /// endpoints share a MAC, so the kernel's own choice would be the same for all of them.
    pub(crate) async fn plug(
        &self,
        endpoint: &str,
        sandbox: &Netns,
        ifname: &str,
        mut addresses: Vec<IpAddr>,
    ) -> io::Result<Option<Ipv6Addr>> {
        // l3 egress goes through raw sockets, which take whole packets only.
        let tap = Tap::create(sandbox, ifname, self.mode == Mode::L2)?;
        let nl = sandbox.netlink()?;
        let mut link = LinkUnspec::new_with_name(ifname)
            .address(self.mac.to_vec())
            .mtu(self.mtu);
        if self.mode == Mode::L3 {
            link = link.arp(false);
        }
        let set = nl.link().set(link.build()).execute().await;
        nl.close().await;
        set.map_err(|e| io::Error::other(format!("set up ipvlan {ifname}: {e}")))?;
        let mut members = self.lock();
        let dev_id = (1..=0xfffd)
            .find(|id| members.iter().all(|m| m.dev_id != *id))
            .ok_or_else(|| io::Error::other("no ipvlan dev_id left on this parent"))?;
        let link_local = if addresses.iter().any(IpAddr::is_ipv6) {
            let key = format!("net/ipv6/conf/{ifname}/addr_gen_mode");
            // 1: none; the link-local comes from the caller, not from the shared MAC.
            sandbox.run(move || write_sysctl(&key, "1"))??;
            let address = link_local(self.mac, dev_id);
            addresses.push(IpAddr::V6(address));
            Some(address)
        } else {
            None
        };
        members.push(Member {
            endpoint: endpoint.to_string(),
            dev_id,
            addresses,
            tap: Arc::new(tap),
        });
        drop(members);
        self.pump.wake();
        Ok(link_local)
    }

    /// Unplugs endpoint `endpoint`: its TAP goes once the thread has let go of it.
    pub(crate) fn unplug(&self, endpoint: &str) {
        self.lock().retain(|m| m.endpoint != endpoint);
        self.pump.wake();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Raw IP sockets in the docker host's namespace: how l3 endpoints' packets get routed there.
#[derive(Debug)]
struct Router {
    v4: Socket,
    v6: Socket,
}

impl Router {
    /// Sockets bound to `parent`: the kernel routes an l3 slave's packets out of its parent
    /// (`flowi4_oif`), never out of another link of the host.
    fn open(parent: &str) -> io::Result<Router> {
        let raw = |domain| -> io::Result<Socket> {
            let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(libc::IPPROTO_RAW)))?;
            socket.bind_device(Some(parent.as_bytes()))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        };
        Ok(Router {
            v4: raw(Domain::IPV4)?,
            v6: raw(Domain::IPV6)?,
        })
    }

    /// Hands an IP packet to the host's stack, which routes it as its own; group destinations
    /// are dropped, as the kernel's l3 mode drops what does not route to a unicast address.
    fn route(&self, destination: IpAddr, packet: &[u8]) {
        let group = match destination {
            IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
            IpAddr::V6(v6) => v6.is_multicast(),
        };
        if group {
            return;
        }
        let socket = if destination.is_ipv4() {
            &self.v4
        } else {
            &self.v6
        };
        let address = SockAddr::from(SocketAddr::new(destination, 0));
        if let Err(e) = socket.send_to(packet, &address) {
            tracing::trace!("ipvlan l3: dropped a packet for {destination}: {e}");
        }
    }
}

/// The thread's side of a port.
struct Forwarding {
    mac: [u8; 6],
    mode: Mode,
    socket: PacketSocket,
    router: Option<Router>,
    members: Members,
}

/// The thread's copy of a member.
struct Plugged {
    addresses: Vec<IpAddr>,
    tap: Arc<Tap>,
    /// Its link is gone: no longer polled.
    broken: bool,
}

impl Forwarding {
    fn run(self, waker: &Waker) {
        let mut plugged = self.snapshot();
        let mut buf = vec![0u8; BUFFER];
        loop {
            // Broken TAPs (their link deleted under us) are left out until the next snapshot:
            // they would poll as errors forever.
            let live: Vec<usize> = (0..plugged.len()).filter(|&i| !plugged[i].broken).collect();
            let mut fds = vec![waker.fd().as_raw_fd(), self.socket.fd()];
            fds.extend(live.iter().map(|&i| plugged[i].tap.fd()));
            let Ok(ready) = poll(&fds) else {
                return;
            };
            if ready[0] != Ready::Idle {
                if waker.woken() {
                    return;
                }
                // Members changed: poll the new set (a dropped TAP closes here).
                plugged = self.snapshot();
                continue;
            }
            if ready[1] != Ready::Idle {
                for _ in 0..BATCH {
                    let Some(n) = read_once(self.socket.fd(), &mut buf) else {
                        break;
                    };
                    self.ingress(&plugged, &buf[..n]);
                }
            }
            for (slot, &index) in live.iter().enumerate() {
                match ready[slot + 2] {
                    Ready::Idle => {}
                    Ready::Broken => plugged[index].broken = true,
                    Ready::Readable => {
                        for _ in 0..BATCH {
                            let Some(n) = read_once(plugged[index].tap.fd(), &mut buf) else {
                                break;
                            };
                            self.egress(&plugged, index, &buf[..n]);
                        }
                    }
                }
            }
        }
    }

    fn snapshot(&self) -> Vec<Plugged> {
        let members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members
            .iter()
            .map(|m| Plugged {
                addresses: m.addresses.clone(),
                tap: Arc::clone(&m.tap),
                broken: false,
            })
            .collect()
    }

    /// A frame the parent received (virtio-net header first).
    fn ingress(&self, plugged: &[Plugged], read: &[u8]) {
        let Some(dst) = read.get(VNET_HDR..).and_then(frame::destination) else {
            return;
        };
        if frame::is_group(dst) {
            if self.mode == Mode::L2 {
                for member in plugged {
                    write_once(member.tap.fd(), read);
                }
            }
        } else if dst == self.mac
            && let Some(owner) = owner(plugged, &read[VNET_HDR..])
        {
            write_once(plugged[owner].tap.fd(), read);
        }
    }

    /// A frame endpoint `from` sent (virtio-net header first).
    fn egress(&self, plugged: &[Plugged], from: usize, read: &[u8]) {
        let frame = &read[VNET_HDR.min(read.len())..];
        let Some(dst) = frame::destination(frame) else {
            return;
        };
        let parent = self.socket.fd();
        let local = |to: usize| write_once(plugged[to].tap.fd(), read);
        match self.mode {
            Mode::L2 if frame::is_group(dst) => {
                write_once(parent, read);
                let others = (0..plugged.len()).filter(|&i| i != from);
                others.for_each(local);
            }
            Mode::L2 if dst == self.mac => {
                if let Some(to) = owner(plugged, frame).filter(|&to| to != from) {
                    local(to);
                }
            }
            Mode::L2 => write_once(parent, read),
            Mode::L3 => {
                let Some(packet) = frame::ip_packet(frame) else {
                    return;
                };
                match owner(plugged, frame) {
                    Some(to) if to != from => local(to),
                    Some(_) => {}
                    None => {
                        if let (Some(router), Some(destination)) =
                            (&self.router, frame::target_ip(frame))
                            && frame::is_plain(read)
                        {
                            router.route(destination, packet);
                        }
                    }
                }
            }
        }
    }
}

/// The link-local address the kernel gives ipvlan slave `dev_id` of a parent with MAC `mac`
/// (`addrconf_ifid_eui48`: the EUI-64 with `dev_id` where `ff:fe` would be).
fn link_local(mac: [u8; 6], dev_id: u16) -> Ipv6Addr {
    let [high, low] = dev_id.to_be_bytes();
    let mut octets = [0u8; 16];
    octets[..2].copy_from_slice(&[0xfe, 0x80]);
    octets[8..].copy_from_slice(&[
        mac[0] ^ 2,
        mac[1],
        mac[2],
        high,
        low,
        mac[3],
        mac[4],
        mac[5],
    ]);
    Ipv6Addr::from(octets)
}

/// The member that owns the IP address `frame` is for.
fn owner(plugged: &[Plugged], frame: &[u8]) -> Option<usize> {
    let ip = frame::target_ip(frame)?;
    plugged.iter().position(|p| p.addresses.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_locals_are_the_kernels_for_ipvlan_slaves() {
        let mac = [0x02, 0xd0, 0x0a, 0x0a, 0x00, 0x01];
        assert_eq!(link_local(mac, 1).to_string(), "fe80::d0:a00:10a:1");
        assert_eq!(link_local(mac, 0x0203).to_string(), "fe80::d0:a02:30a:1");
    }
}
