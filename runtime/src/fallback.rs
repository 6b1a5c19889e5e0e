//! What drydock uses where the kernel lacks a feature (netsim probes which ones it has):
//! `drydock doctor` prints it beside each feature's status.

use drydock_netsim::features::Feature;

/// What drydock uses when a feature is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// A userspace datapath with the same behavior.
    Userspace(&'static str),
    /// A userspace datapath designed but not built yet: what needs the feature is unavailable.
    Planned(&'static str),
    /// Nothing can stand in; the text says what becomes unavailable.
    None(&'static str),
}

impl Fallback {
    /// What drydock does when the kernel lacks `feature`.
    pub fn of(feature: Feature) -> Fallback {
        match feature {
            Feature::Veth => Fallback::None("labs cannot be built"),
            Feature::Bridge => Fallback::None("segments and bridge networks cannot be built"),
            Feature::Macvlan => Fallback::None("macvlan networks are unavailable"),
            Feature::Ipvlan => {
                Fallback::Userspace("ipvlan datapath: AF_PACKET demux by IP, parent's MAC shared")
            }
            Feature::Vxlan => Fallback::Planned("VXLAN over UDP sockets (with the overlay driver)"),
            Feature::Vlan8021q => {
                Fallback::Userspace("TAP sub-interface eth0.N with 802.1Q tag/untag over AF_PACKET")
            }
            Feature::Dummy => {
                Fallback::Userspace("a veth end whose peer stays in a hidden namespace")
            }
            Feature::Tun => Fallback::None("userspace datapaths that need TAP are unavailable"),
            Feature::Nftables => {
                Fallback::None("firewall rules (isolation, NAT, published ports) are unavailable")
            }
            Feature::EspGcm => Fallback::Planned(
                "ESP (rfc4106 AES-GCM, 8-byte ICV) over a raw IP socket (with the overlay driver)",
            ),
        }
    }
}
