//! The firewall of one engine: Docker Engine 20.10's bridge-network rules, in nftables, inside
//! the engine's host namespace.
//!
//! One table, `inet drydock`, whose rules never change after [`Firewall::start`]: everything
//! Docker manages is an element of a set or map (`ruleset.rs` has the table and the reasons).
//!
//! - Network-level changes ([`Firewall::start`], [`Firewall::add_network`],
//!   [`Firewall::remove_network`]) run `nft -j -f -` in the host namespace with a JSON ruleset,
//!   one transaction each.
//! - Per-container changes ([`Firewall::publish`], [`Firewall::unpublish`]) spawn no process:
//!   they add or delete map elements in one nfnetlink batch on a `NETLINK_NETFILTER` socket
//!   opened in the host namespace once (`crate::nfnl`; messages in `setelem.rs`, keys laid
//!   out by `keys.rs`).
//!
//! What the table does, as Docker 20.10 does with iptables:
//! - forward (policy drop, like Docker's `FORWARD DROP`): internal networks' bridges neither
//!   send nor receive anything but their own traffic; traffic between two bridges is dropped
//!   (isolation); then established/related traffic passes; traffic within a bridge (bridged,
//!   seen here through `br_netfilter`) is dropped when the network has ICC off and accepted
//!   otherwise; DNAT'd traffic towards a bridge (published ports) and anything from a bridge
//!   pass. Everything else, such as another host sending to a container's address directly, is
//!   dropped.
//! - nat: packets to a local address, from outside (prerouting) or from the host itself except
//!   to loopback (output), are DNAT'd to a published container, unless they come from a bridge
//!   (Docker's `-i BRIDGE -j RETURN`: containers use the userland proxy, [`crate::proxy`]).
//!   Masqueraded networks' subnets leaving through a non-bridge interface are masqueraded.

mod forward;
mod guard;
mod keys;
mod ruleset;
mod setelem;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};

use drydock_netsim::Netns;
use ipnetwork::IpNetwork;
use nftables::schema::Nftables;

pub use crate::proxy::Protocol;

/// Longest interface name the kernel accepts (`IFNAMSIZ` - 1).
const MAX_IFNAME: usize = 15;

/// The firewall of one engine, in its host's network namespace.
///
/// One per engine; `Send + Sync`. Dropping it leaves the table in place (Docker leaves its
/// rules when it stops); the next [`Firewall::start`] in that namespace replaces it.
#[derive(Debug)]
pub struct Firewall {
    host: Netns,
    /// The networks whose elements are in the table, by bridge.
    networks: Mutex<BTreeMap<String, NetworkRules>>,
    socket: Mutex<crate::nfnl::Socket>,
}

/// What the firewall needs to know of a bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The network's bridge (`docker0`, `br-<id>`).
    pub bridge: String,
    /// The network's subnets (IPv4 and IPv6); host bits are ignored.
    pub subnets: Vec<IpNetwork>,
    /// `--internal`: no traffic in or out of the bridge, and never masqueraded.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc` (default true): containers of the network may
    /// talk to each other.
    pub icc: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade` (default true): outbound traffic takes
    /// the host's address. Ignored for internal networks.
    pub masquerade: bool,
}

/// A published port: traffic to the host's `host_ip:host_port` goes to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding {
    /// TCP or UDP.
    pub proto: Protocol,
    /// The host address the port is bound to; `None` (or `0.0.0.0`, `::`) for any.
    pub host_ip: Option<IpAddr>,
    /// The host port (not 0).
    pub host_port: u16,
    /// The container's address; its family decides the binding's (an IPv4 `host_ip` with an
    /// IPv6 container is invalid).
    pub container_ip: IpAddr,
    /// The container's port.
    pub container_port: u16,
}

impl Binding {
    /// Checks that the binding can be expressed in the publish maps.
    fn check(&self) -> Result<(), FirewallError> {
        let invalid = |why: &str| Err(FirewallError::Invalid(format!("binding {self}: {why}")));
        if self.host_port == 0 || self.container_port == 0 {
            return invalid("port 0 cannot be published");
        }
        if let Some(host_ip) = keys::specific_host_ip(self)
            && host_ip.is_ipv4() != self.container_ip.is_ipv4()
        {
            return invalid("the host address and the container address are of different families");
        }
        Ok(())
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let any: IpAddr = if self.container_ip.is_ipv4() {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u8; 16])
        };
        let host = std::net::SocketAddr::new(self.host_ip.unwrap_or(any), self.host_port);
        let container = std::net::SocketAddr::new(self.container_ip, self.container_port);
        write!(f, "{}/{host} -> {container}", self.proto)
    }
}

/// An error of the firewall, saying what was being done.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The `nft` tool is not installed.
    #[error("nft is not installed (it comes with the nftables package); needed to {what}")]
    NftMissing {
        /// What nft was run for.
        what: String,
    },
    /// `nft` ran and refused the change.
    #[error("nft failed to {what}: {stderr}")]
    Nft {
        /// What nft was run for.
        what: String,
        /// nft's own error text.
        stderr: String,
    },
    /// A system call failed (a sysctl, entering the namespace, running nft).
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: io::Error,
    },
    /// The kernel refused a netlink request (or did not answer).
    #[error("{what}: {error}")]
    Netlink {
        /// What was being done, to which map, and what it likely means.
        what: String,
        /// The kernel's errno (with its extended message when it gave one).
        error: io::Error,
    },
    /// The request cannot be expressed (bad bridge name, mismatched families...).
    #[error("{0}")]
    Invalid(String),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is only changed after the kernel accepted a change: it stays coherent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Firewall {
    /// The table as `nft list table inet drydock` prints it (see [`dump`]).
    pub fn dump(&self) -> String {
        dump(&self.host)
    }

    /// Creates the table (replacing a stale one of ours), sets `ip_forward=1`
    /// (`net.ipv4.ip_forward` and `net.ipv6.conf.all.forwarding`) and
    /// `bridge-nf-call-iptables=1` (and `-ip6tables`) in the host namespace, and opens the
    /// netlink socket.
    pub fn start(host: &Netns) -> Result<Firewall, FirewallError> {
        host.run(sysctls).map_err(|error| FirewallError::Io {
            what: "enter the host namespace".into(),
            error,
        })??;
        let jump =
            !dockerd_forward(host)?.is_some_and(|chain| chain.contains(forward::ENGINE_CHAIN));
        // One transaction: the table, then dockerd's FORWARD chain that relies on its marks.
        let mut objects = ruleset::start().objects.into_owned();
        objects.extend(forward::engine(jump).objects.into_owned());
        let both = Nftables {
            objects: objects.into(),
        };
        let what = "create table inet drydock and dockerd's FORWARD chain";
        nft_apply(host, what, &both)?;
        let socket = crate::nfnl::Socket::open(host).map_err(|error| FirewallError::Io {
            what: "open a NETLINK_NETFILTER socket in the host namespace".into(),
            error,
        })?;
        tracing::debug!("firewall: table inet {} ready", ruleset::TABLE);
        Ok(Firewall {
            host: host.clone(),
            networks: Mutex::new(BTreeMap::new()),
            socket: Mutex::new(socket),
        })
    }

    /// Adds a network's bridge and subnets to the sets (one nft transaction). Adding the same
    /// network again does nothing; adding a bridge again with other rules replaces its rules.
    pub fn add_network(&self, network: &NetworkRules) -> Result<(), FirewallError> {
        check_bridge(&network.bridge)?;
        let mut networks = lock(&self.networks);
        let old = networks.get(&network.bridge);
        if old == Some(network) {
            return Ok(());
        }
        let what = format!("add network rules for bridge {}", network.bridge);
        nft_apply(
            &self.host,
            &what,
            &ruleset::change_network(old, Some(network)),
        )?;
        networks.insert(network.bridge.clone(), network.clone());
        Ok(())
    }

    /// Removes a network's elements from the sets (one nft transaction). Removing a bridge the
    /// firewall does not know does nothing.
    pub fn remove_network(&self, bridge: &str) -> Result<(), FirewallError> {
        let mut networks = lock(&self.networks);
        let Some(old) = networks.get(bridge) else {
            return Ok(());
        };
        let what = format!("remove network rules for bridge {bridge}");
        nft_apply(&self.host, &what, &ruleset::change_network(Some(old), None))?;
        networks.remove(bridge);
        Ok(())
    }

    /// Publishes a port: adds its elements to the publish maps over netlink (no process).
    ///
    /// Publishing the same binding again succeeds; the same host address, protocol and port
    /// towards another target fails (`EEXIST`), changing nothing.
    pub fn publish(&self, binding: &Binding) -> Result<(), FirewallError> {
        binding.check()?;
        self.change(setelem::Op::Add, binding, "publish")
    }

    /// Unpublishes a port: deletes its elements from the publish maps over netlink (no
    /// process). A binding that is not published fails with `ENOENT` (`io::ErrorKind::NotFound`).
    pub fn unpublish(&self, binding: &Binding) -> Result<(), FirewallError> {
        binding.check()?;
        self.change(setelem::Op::Delete, binding, "unpublish")
    }

    fn change(&self, op: setelem::Op, binding: &Binding, verb: &str) -> Result<(), FirewallError> {
        let changes = keys::publish(binding);
        let result =
            lock(&self.socket).apply(|batch| setelem::push(batch, ruleset::TABLE, op, &changes));
        result.map_err(|e| {
            let mut what = format!("{verb} {binding}");
            if let Some(index) = e.message_index {
                what += &format!(" in map {}", changes[index].set);
            }
            what += match (op, e.error.raw_os_error()) {
                (setelem::Op::Add, Some(libc::EEXIST | libc::EBUSY)) => {
                    " (the host port is already published towards another container)"
                }
                (setelem::Op::Delete, Some(libc::ENOENT)) => " (it is not published)",
                (_, Some(libc::ENOENT)) => " (is table inet drydock gone?)",
                _ => "",
            };
            if let Some(text) = e.text {
                what += &format!(" (the kernel says: {text})");
            }
            FirewallError::Netlink {
                what,
                error: e.error,
            }
        })
    }
}

/// Checks a bridge name as the kernel and nft would take it.
fn check_bridge(bridge: &str) -> Result<(), FirewallError> {
    if bridge.is_empty()
        || bridge.len() > MAX_IFNAME
        || bridge.contains(['/', '\0'])
        || bridge.contains(char::is_whitespace)
    {
        return Err(FirewallError::Invalid(format!(
            "bridge name {bridge:?} is not an interface name (1 to {MAX_IFNAME} bytes, no '/', \
             no whitespace)"
        )));
    }
    Ok(())
}

/// Forwarding and `br_netfilter` sysctls; runs inside the host namespace.
fn sysctls() -> Result<(), FirewallError> {
    use drydock_netsim::netns::write_sysctl;
    let io = |what: &str| {
        let what = what.to_string();
        move |error| FirewallError::Io { what, error }
    };
    write_sysctl("net/ipv4/ip_forward", "1").map_err(io("enable IPv4 forwarding"))?;
    match write_sysctl("net/ipv6/conf/all/forwarding", "1") {
        // A kernel without IPv6 has nothing to forward.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        result => result.map_err(io("enable IPv6 forwarding"))?,
    }
    // Bridged traffic must cross the inet forward hook for ICC and isolation to apply.
    for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        let path = format!("/proc/sys/net/bridge/{key}");
        match std::fs::read_to_string(&path) {
            Ok(value) if value.trim() == "1" => {}
            Ok(_) => write_sysctl(&format!("net/bridge/{key}"), "1")
                .map_err(io(&format!("set net.bridge.{key}=1")))?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(FirewallError::Io {
                    what: format!(
                        "{path} is missing: the br_netfilter module is not loaded \
                         (`modprobe br_netfilter`), without it ICC and isolation cannot apply"
                    ),
                    error,
                });
            }
            Err(error) => {
                return Err(FirewallError::Io {
                    what: format!("read {path}"),
                    error,
                });
            }
        }
    }
    Ok(())
}

/// Runs `nft -j -f -` in `host` with `ruleset` on stdin: one transaction.
/// Guards `parent` of a userspace ipvlan port: the host's stack no longer takes unicast for
/// `mac` addressed into `subnets` (but to its own addresses), which the port delivers. Spawns
/// `nft` once (network create).
pub fn guard_parent(
    host: &Netns,
    parent: &str,
    mac: [u8; 6],
    subnets: &[IpNetwork],
) -> Result<(), FirewallError> {
    let what = format!("guard parent {parent} of an ipvlan port");
    nft_apply(host, &what, &guard::add(parent, mac, subnets))
}

/// Removes the guard of `parent` (network remove).
pub fn unguard_parent(host: &Netns, parent: &str) -> Result<(), FirewallError> {
    let what = format!("remove the guard of parent {parent}");
    nft_apply(host, &what, &guard::remove(parent))
}

/// Lets the bridges of drydock's served drivers forward through dockerd's firewall, whose
/// `ip filter FORWARD` chain drops what it does not know: a chain of ours there, jumped to
/// first, accepts what enters or leaves each of `bridges` (all of them: it is rewritten whole).
/// Nothing to do where dockerd made no such chain (`--iptables=false`, or no dockerd). Spawns
/// nft (network create and rm).
pub fn open_forward(host: &Netns, bridges: &[String]) -> Result<(), FirewallError> {
    let Some(listed) = dockerd_forward(host)? else {
        return Ok(());
    };
    let jump = !listed.contains(forward::CHAIN);
    let what = format!("open dockerd's FORWARD chain to {}", bridges.join(", "));
    nft_apply(host, &what, &forward::openings(bridges, jump))
}

/// `nft list chain ip filter FORWARD` in `host`; `None` where there is no such chain.
fn dockerd_forward(host: &Netns) -> Result<Option<String>, FirewallError> {
    let listed = host
        .command("nft", None)
        .args(["list", "chain", "ip", forward::TABLE, forward::FORWARD])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| FirewallError::Io {
            what: "run nft to list dockerd's FORWARD chain".into(),
            error,
        })?;
    Ok((listed.status.success()).then(|| String::from_utf8_lossy(&listed.stdout).into_owned()))
}

fn nft_apply(host: &Netns, what: &str, ruleset: &Nftables<'_>) -> Result<(), FirewallError> {
    let json = serde_json::to_string(ruleset).expect("the nftables types serialize");
    tracing::trace!("nft -j -f - to {what}: {json}");
    let mut child = host
        .command("nft", None)
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => FirewallError::NftMissing { what: what.into() },
            _ => FirewallError::Io {
                what: format!("run nft to {what}"),
                error,
            },
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(json.as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|error| FirewallError::Io {
            what: format!("wait for nft to {what}"),
            error,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let stderr = if stderr.is_empty() {
            format!("nft exited with {}", output.status)
        } else {
            stderr
        };
        return Err(FirewallError::Nft {
            what: what.into(),
            stderr,
        });
    }
    written.map_err(|error| FirewallError::Io {
        what: format!("write the ruleset to nft to {what}"),
        error,
    })
}

/// The table of the engine in `host` as `nft list table inet drydock` prints it (for failure
/// dumps; spawns nft and waits for it: call it from a blocking thread).
pub fn dump(host: &Netns) -> String {
    let output = host
        .command("nft", None)
        .args(["list", "table", "inet", ruleset::TABLE])
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        Ok(output) => format!(
            "nft list table inet {} failed: {}",
            ruleset::TABLE,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(e) => format!("nft list table inet {}: {e}", ruleset::TABLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(host_ip: Option<&str>, container_ip: &str) -> Binding {
        Binding {
            proto: Protocol::Tcp,
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port: 8080,
            container_ip: container_ip.parse().unwrap(),
            container_port: 80,
        }
    }

    #[test]
    fn bindings_show_like_docker_port() {
        assert_eq!(
            binding(None, "172.18.0.2").to_string(),
            "tcp/0.0.0.0:8080 -> 172.18.0.2:80"
        );
        assert_eq!(
            binding(Some("fd00::1"), "fd01::2").to_string(),
            "tcp/[fd00::1]:8080 -> [fd01::2]:80"
        );
    }

    #[test]
    fn mixed_families_and_port_zero_are_invalid() {
        assert!(binding(Some("10.0.0.1"), "fd01::2").check().is_err());
        assert!(binding(Some("::"), "172.18.0.2").check().is_ok());
        let mut zero = binding(None, "172.18.0.2");
        zero.host_port = 0;
        let error = zero.check().unwrap_err().to_string();
        assert!(error.contains("port 0"), "{error}");
    }

    #[test]
    fn firewall_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Firewall>();
    }

    #[test]
    fn bridge_names_are_checked() {
        assert!(check_bridge("br-0123456789ab").is_ok());
        assert!(check_bridge("br-0123456789abc").is_err());
        assert!(check_bridge("").is_err());
        assert!(check_bridge("a b").is_err());
    }
}
