//! Building a [`Lab`] from a [`Topology`]: namespaces, switches, cables, addresses and routes.
//!
//! Every segment is a bridge in the lab's hidden *fabric* namespace. Every host interface is a
//! veth pair: `ethN` in the host, its peer (a bridge port) in the fabric. Nothing is created in
//! the machine's own namespace; dropping the [`Lab`] (or killing its process) frees everything.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoVeth};
use nix::sched::CloneFlags;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};

use crate::link;
use crate::netns::{Netlink, Netns, is_namespace, write_sysctl};
use crate::topology::{Host, Topology};

/// A running lab: one network namespace per host plus the fabric that joins them.
#[derive(Debug)]
pub struct Lab {
    topology: Topology,
    fabric: Netns,
    hosts: Vec<Netns>,
}

/// An error while building a lab, naming the object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A system call failed.
    #[error("{what}")]
    Io {
        /// The object and step, e.g. "host h1: create namespace".
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a netlink request.
    #[error("{what}")]
    Netlink {
        /// The object and step.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
}

/// Attaches "what was being done" to I/O and netlink errors.
trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, LabError>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, LabError> {
        self.map_err(|source| LabError::Io {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for Result<T, rtnetlink::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, LabError> {
        self.map_err(|source| LabError::Netlink {
            what: what(),
            source,
        })
    }
}

impl Lab {
    /// Builds the lab. Must run inside a tokio runtime (netlink connections are tasks on it).
    ///
    /// On error nothing is left behind: the namespaces made so far are dropped with their links.
    pub async fn build(topology: Topology) -> Result<Self, LabError> {
        let fabric = Netns::new().context(|| "fabric: create namespace".into())?;
        fabric
            .run(|| -> io::Result<()> {
                // Switches only forward frames: no IPv6 autoconfiguration noise from their ports.
                write_sysctl("net/ipv6/conf/all/disable_ipv6", "1")?;
                write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")
            })
            .and_then(|r| r)
            .context(|| "fabric: disable IPv6".into())?;
        let fabric_nl = fabric.netlink().context(|| "fabric: open netlink".into())?;
        let mut bridges = Vec::new();
        for segment in &topology.segments {
            let what = || format!("segment {}: create bridge", segment.name);
            // A switch that snoops multicast joins 224.0.0.106 and sends IGMP reports of its own
            // out of every port (into every capture): a segment is a plain switch, and floods.
            let bridge = LinkBridge::new(&segment.name)
                .mtu(segment.mtu)
                .mcast_snooping(false)
                .up()
                .build();
            fabric_nl.link().add(bridge).execute().await.context(what)?;
            bridges.push(link::index(&fabric_nl, &segment.name).await.context(what)?);
        }

        tracing::debug!(
            "lab {}: fabric with {} segments",
            topology.name,
            bridges.len()
        );
        let mut hosts = Vec::new();
        let mut handles = Vec::new();
        for (index, host) in topology.hosts.iter().enumerate() {
            let netns = Netns::new().context(|| format!("host {}: create namespace", host.name))?;
            handles.push(build_host(&topology, host, index, &netns, &fabric_nl, &bridges).await?);
            hosts.push(netns);
            tracing::debug!("lab {}: host {} configured", topology.name, host.name);
        }
        // Until the kernel reports a link up it drops what is sent on it: wait, so that the
        // first packet a user sends is not lost.
        for ((index, host), nl) in topology.hosts.iter().enumerate().zip(&handles) {
            for iface in &host.interfaces {
                let what = || format!("host {}: {} carrier", host.name, iface.name);
                link::wait_until_up(nl, &iface.name).await.context(what)?;
                link::wait_until_up(&fabric_nl, &port_name(index, &iface.name))
                    .await
                    .context(what)?;
            }
        }
        tracing::debug!("lab {}: every link is up", topology.name);
        for (host, netns) in topology.hosts.iter().zip(&hosts) {
            for iface in &host.interfaces {
                if let Some(address6) = iface.address6 {
                    let what = || {
                        format!(
                            "host {}: {} IPv6 neighbour discovery",
                            host.name, iface.name
                        )
                    };
                    wait_until_solicitable(netns, &iface.name, address6.ip())
                        .await
                        .context(what)?;
                }
            }
        }
        // Close our netlink sockets now: they would keep the namespaces alive after a drop.
        for nl in handles {
            nl.close().await;
        }
        fabric_nl.close().await;
        Ok(Self {
            topology,
            fabric,
            hosts,
        })
    }

    /// The topology this lab was built from (with every address and route resolved).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.topology.name
    }

    /// The namespace of host `name`.
    pub fn host(&self, name: &str) -> Option<&Netns> {
        let index = self.topology.hosts.iter().position(|h| h.name == name)?;
        Some(&self.hosts[index])
    }

    /// Every host with its namespace, in topology order.
    pub fn hosts(&self) -> impl Iterator<Item = (&Host, &Netns)> {
        self.topology.hosts.iter().zip(&self.hosts)
    }

    /// Every namespace of the lab: the hosts', then the hidden fabric's.
    pub fn namespaces(&self) -> impl Iterator<Item = &Netns> {
        self.hosts.iter().chain([&self.fabric])
    }

    /// Bind-mounts every namespace of the lab under `dir` (normally `/run/netns`) as
    /// `drydock-LAB.HOST` and `drydock-LAB._fabric`, so that it outlives this process and
    /// `ip netns exec` can enter it. Returns the mount paths; on error none are left.
    pub fn persist(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut made: Vec<PathBuf> = Vec::new();
        let namespaces = self
            .hosts()
            .map(|(h, ns)| (h.name.as_str(), ns))
            .chain([(FABRIC, &self.fabric)]);
        for (name, netns) in namespaces {
            let path = dir.join(persisted_name(self.name(), name));
            if let Err(e) = netns.persist(&path) {
                for path in &made {
                    let _ = Netns::unpersist(path.as_path());
                }
                let hint = match e.kind() {
                    io::ErrorKind::AlreadyExists => {
                        " (left by a crashed run? `drydock gc` removes it)"
                    }
                    _ => "",
                };
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}{hint}", path.display()),
                ));
            }
            made.push(path);
        }
        Ok(made)
    }

    /// Opens the lab that [`Lab::persist`] mounted under `dir` (`topology` is the one it was
    /// built from): the same namespaces, held by this process too from now on, as the one that
    /// built it held them. Fails, naming the path, when a mount is missing or is no network
    /// namespace.
    pub fn open_persisted(topology: Topology, dir: &Path) -> io::Result<Self> {
        let open = |name: &str| {
            let path = dir.join(persisted_name(&topology.name, name));
            let netns = Netns::open(&path)?;
            match is_namespace(netns.as_fd(), CloneFlags::CLONE_NEWNET) {
                true => Ok(netns),
                false => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a mounted network namespace", path.display()),
                )),
            }
        };
        let hosts = (topology.hosts.iter())
            .map(|host| open(&host.name))
            .collect::<io::Result<_>>()?;
        let fabric = open(FABRIC)?;
        Ok(Self {
            topology,
            fabric,
            hosts,
        })
    }
}

/// Name of the fabric namespace among a persisted lab's mounts.
pub const FABRIC: &str = "_fabric";

/// File name of a persisted lab namespace: `drydock-LAB.HOST`.
pub fn persisted_name(lab: &str, host: &str) -> String {
    format!("drydock-{lab}.{host}")
}

/// Name of the fabric-side (bridge port) end of a host interface: its host's position and name.
fn port_name(host_index: usize, ifname: &str) -> String {
    format!("p{host_index}-{ifname}")
}

/// Builds one host in `netns`; returns its netlink handle.
async fn build_host(
    topology: &Topology,
    host: &Host,
    index: usize,
    netns: &Netns,
    fabric_nl: &Handle,
    bridges: &[u32],
) -> Result<Netlink, LabError> {
    let name = &host.name;
    let ipv6 = host.interfaces.iter().any(|i| i.address6.is_some());
    netns
        .run(|| -> io::Result<()> {
            if !ipv6 {
                // Interfaces made from now on start without IPv6; lo keeps ::1.
                write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")?;
            }
            if host.router {
                write_sysctl("net/ipv4/ip_forward", "1")?;
                write_sysctl("net/ipv6/conf/all/forwarding", "1")?;
            }
            Ok(())
        })
        .and_then(|r| r)
        .context(|| format!("host {name}: sysctls"))?;
    let nl = netns
        .netlink()
        .context(|| format!("host {name}: open netlink"))?;
    nl.link()
        .set(LinkUnspec::new_with_name("lo").up().build())
        .execute()
        .await
        .context(|| format!("host {name}: set lo up"))?;

    for iface in &host.interfaces {
        let segment = &topology.segments[iface.segment];
        let what = || format!("host {name}: {} on segment {}", iface.name, segment.name);
        let port = port_name(index, &iface.name);
        let peer = LinkUnspec::new_with_name(&iface.name)
            .setns_by_fd(netns.as_fd().as_raw_fd())
            .address(iface.mac.0.to_vec())
            .mtu(segment.mtu)
            .build();
        let veth = LinkVeth::new(&port, &iface.name)
            .mtu(segment.mtu)
            .controller(bridges[iface.segment])
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        fabric_nl.link().add(veth).execute().await.context(what)?;

        // (Setting the peer up in the creating request fails with ENOTCONN on 6.18: do it here.)
        let ifindex = link::index(&nl, &iface.name).await.context(what)?;
        nl.link()
            .set(LinkUnspec::new_with_index(ifindex).up().build())
            .execute()
            .await
            .context(what)?;
        // Addresses are unique by construction: skip duplicate address detection's delay.
        let addresses =
            std::iter::once(IpNetwork::V4(iface.address)).chain(iface.address6.map(IpNetwork::V6));
        for address in addresses {
            link::add_address(&nl, ifindex, address)
                .await
                .context(|| format!("host {name}: address {address} on {}", iface.name))?;
        }
    }

    for route in &host.routes {
        link::add_route(netns, route.to, route.via)
            .await
            .context(|| format!("host {name}: route to {} via {}", route.to, route.via))?;
    }
    Ok(nl)
}

/// Waits (up to 5 s) until `ifname` of `netns` listens on the solicited-node multicast group of
/// `address`. The kernel joins it from a work queue after the address is added, even without
/// duplicate address detection; until then it drops neighbour solicitations for the address,
/// and a first packet to it waits a second for the retry.
async fn wait_until_solicitable(netns: &Netns, ifname: &str, address: Ipv6Addr) -> io::Result<()> {
    let group = hex(&solicited_node(address).octets());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let groups = netns.run(|| std::fs::read_to_string("/proc/thread-self/net/igmp6"))??;
        // Lines: index, interface, group (32 hex digits), users, flags, timer.
        let joined = groups.lines().any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            fields.next() == Some(ifname) && fields.next() == Some(group.as_str())
        });
        if joined {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{ifname} has not joined {} after 5 s",
                    solicited_node(address)
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// The solicited-node multicast address of `address` (RFC 4291): `ff02::1:ff` + its last 24 bits.
fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let [.., a, b, c] = address.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, a, b, c])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solicited_node_group_is_written_as_proc_net_igmp6_does() {
        let group = solicited_node("fd00:1::12:3456".parse().unwrap());
        assert_eq!(group, "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
        assert_eq!(hex(&group.octets()), "ff0200000000000000000001ff123456");
    }
}
