//! Parent links of the macvlan and ipvlan drivers (libnetwork `drivers/{macvlan,ipvlan}`
//! `createVlanLink`, `createDummyLink`): the ones a network names and the ones its driver
//! makes, and deletes with the network.
//!
//! Made parents: `-o parent=eth0.N`, an 802.1Q sub-interface of eth0 (a kernel VLAN link, or,
//! where the kernel has no 8021q or `DRYDOCK_FORCE_ABSENT` names it, drydock's userspace one:
//! a TAP named `eth0.N` with a tag/untag thread); and, without `-o parent`, the dummy link that
//! isolates the network on the docker host. Where the kernel has no dummy links (or
//! `DRYDOCK_FORCE_ABSENT` names `dummy`), the stand-in is a veth end whose peer is in a hidden
//! namespace the driver holds: nothing else is on that wire either.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use drydock_netsim::Netns;
use drydock_netsim::features::Feature;
use drydock_netsim::link;
use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkDummy, LinkUnspec, LinkVeth, LinkVlan};

use super::{DriverError, JoinInfo, netlink_error};
use crate::datapath::vlan::VlanLink;

/// A parent link a driver made for a network, deleted with it.
#[derive(Debug)]
pub(crate) enum MadeParent {
    /// A dummy link.
    Dummy,
    /// A kernel 802.1Q sub-interface.
    Vlan,
    /// drydock's userspace 802.1Q sub-interface; the link goes with it.
    UserspaceVlan(VlanLink),
    /// A veth end standing in for a dummy link; its peer is in a hidden namespace, held here
    /// until the network goes.
    StandIn {
        /// The hidden namespace.
        _peer: Netns,
    },
}

impl MadeParent {
    /// The userspace stand-in the parent is, for the network's `drydock.datapath` option;
    /// `None` for a kernel link.
    pub(crate) fn datapath(&self) -> Option<&'static str> {
        match self {
            MadeParent::UserspaceVlan(_) => {
                Some("userspace 802.1Q parent (TAP, tag/untag over AF_PACKET)")
            }
            MadeParent::StandIn { .. } => Some("veth stand-in parent (no dummy links)"),
            MadeParent::Dummy | MadeParent::Vlan => None,
        }
    }
}

/// Makes `parent` on the docker host when it does not exist (Docker's `createNetwork`): a dummy
/// link for an isolated network, else an 802.1Q sub-interface. `None` when it existed. `driver`
/// picks its texts: macvlan's and ipvlan's differ by a word.
pub(crate) async fn make(
    host: &Netns,
    nl: &rtnetlink::Handle,
    parent: &str,
    dummy: bool,
    driver: &str,
) -> Result<Option<MadeParent>, DriverError> {
    if link::index(nl, parent).await.is_ok() {
        return Ok(None);
    }
    if dummy {
        return make_dummy(nl, parent).await.map(Some);
    }
    let Some((master, vid)) = parse_vlan(parent)? else {
        return Err(DriverError::Refused(format!(
            "invalid subinterface vlan name {parent}, example formatting is eth0.10"
        )));
    };
    let Ok(master_index) = link::index(nl, master).await else {
        // (sic: macvlan's parseVlan says "does was").
        let verb = if driver == "macvlan" {
            "does was"
        } else {
            "was"
        };
        return Err(DriverError::Refused(format!(
            "-o parent interface {verb} not found on the host: {master}"
        )));
    };
    if !(1..=4094).contains(&vid) {
        return Err(DriverError::Refused(format!(
            "vlan id must be between 1-4094, received: {vid}"
        )));
    }
    let vid = u16::try_from(vid).expect("a VLAN id in 1-4094");
    let added = if Feature::Vlan8021q.forced_absent() {
        Err(libc::EOPNOTSUPP)
    } else {
        nl.link()
            .add(LinkVlan::new(parent, master_index, vid).up().build())
            .execute()
            .await
            .map_err(|e| errno(&e))
    };
    match added {
        Ok(()) => Ok(Some(MadeParent::Vlan)),
        Err(code) if code == libc::EOPNOTSUPP => VlanLink::start(host, master, parent, vid)
            .await
            .map(|vlan| Some(MadeParent::UserspaceVlan(vlan)))
            .map_err(|e| {
                DriverError::Refused(format!(
                    "failed to create {parent} vlan link: {e} (userspace 802.1Q datapath)"
                ))
            }),
        Err(code) => Err(DriverError::Refused(format!(
            "failed to create {parent} vlan link: {}",
            go_strerror(code)
        ))),
    }
}

/// Deletes the parent `parent` a driver made.
pub(crate) async fn delete(
    host: &Netns,
    parent: &str,
    made: MadeParent,
) -> Result<(), DriverError> {
    if let MadeParent::UserspaceVlan(vlan) = made {
        // The TAP goes with its thread's descriptor.
        drop(vlan);
        return Ok(());
    }
    let nl = host
        .netlink()
        .map_err(DriverError::io("open netlink in the docker host"))?;
    let deleted = match link::index(&nl, parent).await {
        Ok(index) => nl
            .link()
            .del(index)
            .execute()
            .await
            .map_err(netlink_error(format!("delete parent {parent}"))),
        Err(_) => Ok(()),
    };
    nl.close().await;
    // A stand-in's hidden namespace goes with `made`.
    drop(made);
    deleted
}

/// A dummy link named `name`, up; where the kernel has none, a veth end standing in for it.
async fn make_dummy(nl: &rtnetlink::Handle, name: &str) -> Result<MadeParent, DriverError> {
    let added = if Feature::Dummy.forced_absent() {
        Err(libc::EOPNOTSUPP)
    } else {
        nl.link()
            .add(LinkDummy::new(name).up().build())
            .execute()
            .await
            .map_err(|e| errno(&e))
    };
    match added {
        Ok(()) => return Ok(MadeParent::Dummy),
        Err(code) if code == libc::EOPNOTSUPP => {}
        Err(code) => return Err(DriverError::Refused(go_strerror(code))),
    }
    let hidden = Netns::new().map_err(DriverError::io("create the stand-in's namespace"))?;
    let what = format!("stand-in parent {name}");
    let peer = LinkUnspec::new_with_name("eth0")
        .setns_by_fd(hidden.as_fd().as_raw_fd())
        .build();
    nl.link()
        .add(
            LinkVeth::new(name, "eth0")
                .up()
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .build(),
        )
        .execute()
        .await
        .map_err(netlink_error(&what))?;
    let inner = hidden
        .netlink()
        .map_err(DriverError::io("open netlink in the stand-in's namespace"))?;
    let up = inner
        .link()
        .set(LinkUnspec::new_with_name("eth0").up().build())
        .execute()
        .await
        .map_err(netlink_error(&what));
    inner.close().await;
    if let Err(e) = up {
        if let Ok(index) = link::index(nl, name).await {
            let _ = nl.link().del(index).execute().await;
        }
        return Err(e);
    }
    Ok(MadeParent::StandIn { _peer: hidden })
}

/// `eth0.10` as (`eth0`, 10); `None` for a name without a dot; Docker's texts for the rest.
pub(crate) fn parse_vlan(name: &str) -> Result<Option<(&str, i64)>, DriverError> {
    if !name.contains('.') {
        return Ok(None);
    }
    let parts: Vec<&str> = name.split('.').collect();
    let [master, vid] = parts[..] else {
        return Err(DriverError::Refused(format!(
            "required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received {name}"
        )));
    };
    let vid: i64 = vid.parse().map_err(|_| {
        DriverError::Refused(format!(
            "unable to parse a valid vlan id from: {vid} (ex. eth0.10 for vlan 10)"
        ))
    })?;
    Ok(Some((master, vid)))
}

/// The errno of a netlink error (EIO when it has none).
pub(crate) fn errno(error: &rtnetlink::Error) -> i32 {
    match error {
        rtnetlink::Error::NetlinkError(message) => {
            message.code.map_or(libc::EIO, |code| -code.get())
        }
        _ => libc::EIO,
    }
}

/// An errno as Go's `syscall.Errno` prints it: glibc's text, lowercase first letter
/// (`operation not supported`).
pub(crate) fn go_strerror(code: i32) -> String {
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// The join info of an endpoint on a network whose subnets have `gateways`: each address's
/// subnet's gateway (libnetwork `getSubnetforIPv4`: a network may have several), none for an
/// internal network.
pub(crate) fn gateways(
    ifname: &str,
    addresses: &[IpNetwork],
    gateways: &[IpNetwork],
    internal: bool,
) -> JoinInfo {
    let mut info = JoinInfo {
        interface: Some(ifname.to_string()),
        ..JoinInfo::default()
    };
    if internal {
        return info;
    }
    for address in addresses {
        let gateway = gateways
            .iter()
            .find(|g| g.prefix() == address.prefix() && g.network() == address.network());
        match gateway.map(IpNetwork::ip) {
            Some(IpAddr::V4(v4)) => info.gateway4 = Some(v4),
            Some(IpAddr::V6(v6)) => info.gateway6 = Some(v6),
            None => {}
        }
    }
    info
}

/// Deletes link `ifname` of the sandbox (a `kind` link, for errors), if it is there.
pub(crate) async fn delete_in(
    sandbox: &Netns,
    ifname: &str,
    kind: &str,
) -> Result<(), DriverError> {
    let inner = sandbox
        .netlink()
        .map_err(DriverError::io("open netlink in the sandbox"))?;
    let result = match link::index(&inner, ifname).await {
        Ok(index) => match inner.link().del(index).execute().await {
            // Gone meanwhile: a userspace port's TAP goes with its last descriptor.
            Err(e) if errno(&e) == libc::ENODEV => Ok(()),
            deleted => deleted.map_err(netlink_error(format!("delete {kind} {ifname}"))),
        },
        Err(_) => Ok(()),
    };
    inner.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_names_parse_as_docker_does() {
        assert_eq!(parse_vlan("eth0").unwrap(), None);
        assert_eq!(parse_vlan("eth0.10").unwrap(), Some(("eth0", 10)));
        assert_eq!(
            parse_vlan("eth0.1.2").unwrap_err().to_string(),
            "required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received eth0.1.2"
        );
        assert_eq!(
            parse_vlan("eth0.x").unwrap_err().to_string(),
            "unable to parse a valid vlan id from: x (ex. eth0.10 for vlan 10)"
        );
    }

    #[test]
    fn errnos_read_as_go_prints_them() {
        assert_eq!(go_strerror(libc::EOPNOTSUPP), "operation not supported");
        assert_eq!(go_strerror(libc::EEXIST), "file exists");
    }
}
