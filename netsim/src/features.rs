//! What the kernel can do, probed once in a throwaway namespace.
//!
//! Each link kind is created for real; an error such as EOPNOTSUPP means "absent". The variable
//! `DRYDOCK_FORCE_ABSENT=ipvlan,8021q,esp4` marks features absent even where the kernel has them,
//! so that the userspace stand-ins (chosen by their users, e.g. the runtime) can be tested on any
//! machine.

use std::fmt;
use std::io;

use netlink_packet_route::link::MacVlanMode;
use rtnetlink::{
    Handle, LinkBridge, LinkDummy, LinkIpVlan, LinkMacVlan, LinkVeth, LinkVlan, LinkVxlan,
};

use crate::link;
use crate::netns::Netns;

/// Environment variable listing features to treat as absent (comma-separated names).
pub const FORCE_ABSENT_VAR: &str = "DRYDOCK_FORCE_ABSENT";

/// A kernel feature drydock depends on or works around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// veth pairs: every cable in a lab.
    Veth,
    /// Linux bridges: segments and bridge networks.
    Bridge,
    /// macvlan links on a parent interface.
    Macvlan,
    /// ipvlan links on a parent interface.
    Ipvlan,
    /// VXLAN tunnels.
    Vxlan,
    /// 802.1Q VLAN sub-interfaces.
    Vlan8021q,
    /// dummy links.
    Dummy,
    /// TUN/TAP devices.
    Tun,
    /// nftables (through the `nft` tool).
    Nftables,
    /// IPsec ESP with AES-GCM (rfc4106, 8-byte ICV) in the kernel's xfrm framework.
    EspGcm,
}

impl Feature {
    /// Every feature, in the order `doctor` prints them.
    pub const ALL: [Feature; 10] = [
        Feature::Veth,
        Feature::Bridge,
        Feature::Macvlan,
        Feature::Ipvlan,
        Feature::Vxlan,
        Feature::Vlan8021q,
        Feature::Dummy,
        Feature::Tun,
        Feature::Nftables,
        Feature::EspGcm,
    ];

    /// Short name, as accepted by `DRYDOCK_FORCE_ABSENT`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Veth => "veth",
            Feature::Bridge => "bridge",
            Feature::Macvlan => "macvlan",
            Feature::Ipvlan => "ipvlan",
            Feature::Vxlan => "vxlan",
            Feature::Vlan8021q => "8021q",
            Feature::Dummy => "dummy",
            Feature::Tun => "tun",
            Feature::Nftables => "nftables",
            Feature::EspGcm => "esp4",
        }
    }

    /// Whether `DRYDOCK_FORCE_ABSENT` names this feature (an unreadable value names none;
    /// [`KernelFeatures::probe`] reports it).
    pub fn forced_absent(self) -> bool {
        forced_absent(std::env::var(FORCE_ABSENT_VAR).ok().as_deref())
            .is_ok_and(|forced| forced.contains(&self))
    }

    /// The feature named `name` (as [`Feature::name`] gives it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The probe's finding for one feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The feature.
    pub feature: Feature,
    /// `Ok` when the kernel has it; otherwise why not (the errno the probe met).
    pub kernel: Result<(), String>,
    /// Forced absent by `DRYDOCK_FORCE_ABSENT`.
    pub forced_absent: bool,
}

impl Status {
    /// True when drydock uses the kernel's implementation.
    pub fn uses_kernel(&self) -> bool {
        self.kernel.is_ok() && !self.forced_absent
    }
}

/// The probed features of this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFeatures {
    statuses: Vec<Status>,
}

impl KernelFeatures {
    /// Probes every feature in a throwaway namespace and applies `DRYDOCK_FORCE_ABSENT`.
    ///
    /// Must run inside a tokio runtime. Fails only when no namespace can be made at all, or when
    /// `DRYDOCK_FORCE_ABSENT` names an unknown feature.
    pub async fn probe() -> io::Result<Self> {
        let forced = forced_absent(std::env::var(FORCE_ABSENT_VAR).ok().as_deref())?;
        let netns = Netns::new()?;
        let nl = netns.netlink()?;
        let mut statuses = Vec::new();
        for feature in Feature::ALL {
            let kernel = probe_one(feature, &netns, &nl).await;
            statuses.push(Status {
                feature,
                kernel,
                forced_absent: forced.contains(&feature),
            });
        }
        nl.close().await;
        Ok(Self { statuses })
    }

    /// Every feature's status, in [`Feature::ALL`] order.
    pub fn statuses(&self) -> &[Status] {
        &self.statuses
    }
}

fn forced_absent(value: Option<&str>) -> io::Result<Vec<Feature>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            Feature::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Feature::ALL.iter().map(|f| f.name()).collect();
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{FORCE_ABSENT_VAR}: unknown feature {name:?}; expected some of {}",
                        known.join(",")
                    ),
                )
            })
        })
        .collect()
}

async fn probe_one(feature: Feature, netns: &Netns, nl: &Handle) -> Result<(), String> {
    // Links that need a parent use this veth end (created once, on first need).
    const PARENT: &str = "probe-parent";
    let parent = || async {
        if let Ok(index) = link::index(nl, PARENT).await {
            return Ok(index);
        }
        nl.link()
            .add(LinkVeth::new(PARENT, "probe-peer").build())
            .execute()
            .await?;
        link::index(nl, PARENT).await
    };
    let result = match feature {
        Feature::Veth => {
            nl.link()
                .add(LinkVeth::new("probe-veth", "probe-veth-p").build())
                .execute()
                .await
        }
        Feature::Bridge => {
            nl.link()
                .add(LinkBridge::new("probe-br").build())
                .execute()
                .await
        }
        Feature::Dummy => {
            nl.link()
                .add(LinkDummy::new("probe-dummy").build())
                .execute()
                .await
        }
        Feature::Vxlan => {
            let link = LinkVxlan::new("probe-vxlan", 42)
                .port(4789)
                .learning(false)
                .build();
            nl.link().add(link).execute().await
        }
        Feature::Macvlan => match parent().await {
            Ok(p) => {
                nl.link()
                    .add(LinkMacVlan::new("probe-mv", p, MacVlanMode::Bridge).build())
                    .execute()
                    .await
            }
            Err(e) => Err(e),
        },
        Feature::Ipvlan => match parent().await {
            Ok(p) => {
                let link =
                    LinkIpVlan::new("probe-ipvl", p, netlink_packet_route::link::IpVlanMode::L2)
                        .build();
                nl.link().add(link).execute().await
            }
            Err(e) => Err(e),
        },
        Feature::Vlan8021q => match parent().await {
            Ok(p) => {
                nl.link()
                    .add(LinkVlan::new("probe-vlan", p, 10).build())
                    .execute()
                    .await
            }
            Err(e) => Err(e),
        },
        Feature::Tun => {
            return netns
                .run(probe_tap)
                .map_err(|e| e.to_string())
                .and_then(|r| r);
        }
        Feature::Nftables => return probe_nft(netns),
        Feature::EspGcm => {
            return netns
                .run(probe_esp_gcm)
                .map_err(|e| e.to_string())
                .and_then(|r| r);
        }
    };
    result.map_err(|e| describe_netlink_error(&e))
}

/// Creates a TAP device (in the calling thread's namespace).
fn probe_tap() -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("/dev/net/tun: {e}"))?;
    // struct ifreq: 16 bytes of name, then the flags (short) in the union.
    let mut ifreq = [0u8; 40];
    ifreq[..10].copy_from_slice(b"probe-tap\0");
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `ifreq` is large enough to hold.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, ifreq.as_mut_ptr()) };
    if rc < 0 {
        return Err(format!("TUNSETIFF: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// Creates an nftables table with the `nft` tool inside the namespace.
fn probe_nft(netns: &Netns) -> Result<(), String> {
    let output = netns
        .command("nft", None)
        .args(["add", "table", "inet", "drydock_probe"])
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => "the nft tool is not installed".to_string(),
            _ => format!("cannot run nft: {e}"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Installs an ESP transport-mode SA with rfc4106(gcm(aes)) and Docker's 8-byte ICV through
/// NETLINK_XFRM (in the calling thread's namespace).
fn probe_esp_gcm() -> Result<(), String> {
    use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
    use netlink_packet_xfrm::state::ModifyMessage;
    use netlink_packet_xfrm::{
        AlgAead, LifetimeConfig, UserSaInfo, XFRM_INF, XfrmAttrs, XfrmMessage,
    };

    let mut info = UserSaInfo::default();
    info.id.daddr.addr[..4].copy_from_slice(&[127, 0, 0, 2]);
    info.saddr.addr[..4].copy_from_slice(&[127, 0, 0, 1]);
    info.id.spi = 0x1000u32.to_be();
    info.id.proto = libc::IPPROTO_ESP as u8;
    info.family = libc::AF_INET as u16;
    info.mode = 0; // transport
    info.lifetime_cfg = LifetimeConfig {
        soft_byte_limit: XFRM_INF,
        hard_byte_limit: XFRM_INF,
        soft_packet_limit: XFRM_INF,
        hard_packet_limit: XFRM_INF,
        ..Default::default()
    };
    let mut alg_name = [0u8; 64];
    alg_name[..17].copy_from_slice(b"rfc4106(gcm(aes))");
    let aead = AlgAead {
        alg_name,
        alg_key_len: 160, // bits: a 128-bit key followed by the 32-bit salt
        alg_icv_len: 64,  // bits: Docker's 8-byte ICV
        alg_key: vec![0x42; 20],
    };
    let request = XfrmMessage::AddSa(ModifyMessage {
        user_sa_info: info,
        nlas: vec![XfrmAttrs::EncryptionAlgAead(aead)],
    });
    let mut message = NetlinkMessage::from(request);
    message.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    message.finalize();
    let mut buffer = vec![0; message.buffer_len()];
    message.serialize(&mut buffer);

    let socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_XFRM)
        .map_err(|e| format!("NETLINK_XFRM socket: {e}"))?;
    socket
        .send(&buffer, 0)
        .map_err(|e| format!("xfrm send: {e}"))?;
    let (reply, _) = socket
        .recv_from_full()
        .map_err(|e| format!("xfrm receive: {e}"))?;
    let reply = NetlinkMessage::<XfrmMessage>::deserialize(&reply)
        .map_err(|e| format!("xfrm reply: {e}"))?;
    match reply.payload {
        NetlinkPayload::Error(error) => match error.code.map(|c| -c.get()) {
            None => Ok(()),
            Some(libc::ENOSYS) => Err(format!(
                "{}: no rfc4106(gcm(aes)) AEAD",
                describe_errno(libc::ENOSYS)
            )),
            Some(libc::EPROTONOSUPPORT) => Err(format!(
                "{}: no esp4",
                describe_errno(libc::EPROTONOSUPPORT)
            )),
            Some(errno) => Err(describe_errno(errno)),
        },
        other => Err(format!("unexpected xfrm reply {other:?}")),
    }
}

fn describe_netlink_error(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => match message.code {
            Some(code) => describe_errno(-code.get()),
            None => error.to_string(),
        },
        other => other.to_string(),
    }
}

fn describe_errno(errno: i32) -> String {
    let message = io::Error::from_raw_os_error(errno).to_string();
    let message = message.split(" (os error").next().unwrap_or_default();
    format!("{:?}: {message}", nix::errno::Errno::from_raw(errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_absent_parses_names_and_rejects_unknown_ones() {
        assert_eq!(
            forced_absent(Some("ipvlan, 8021q,esp4")).unwrap(),
            [Feature::Ipvlan, Feature::Vlan8021q, Feature::EspGcm]
        );
        assert!(forced_absent(None).unwrap().is_empty());
        let error = forced_absent(Some("ipvlan,vlan")).unwrap_err().to_string();
        assert!(error.contains("unknown feature \"vlan\""), "{error}");
    }
}
