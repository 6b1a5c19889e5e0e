//! ipvlan's options (libnetwork `drivers/ipvlan`, as in Docker 20.10): `-o ipvlan_mode`
//! (`l2`, `l3`, `l3s`), with Docker's texts, and its kernel and userspace forms. Docker 20.10
//! has no `ipvlan_flag` (23.0 added it) and ignores it, as does the reference engine: its
//! endpoints reach each other directly (the kernel's `bridge` flag). The driver is
//! [`super::sublink`]'s.

use netlink_packet_route::link::IpVlanMode;

use super::DriverError;
use crate::datapath::ipvlan as userspace;

/// The driver's name.
pub(crate) const NAME: &str = "ipvlan";
/// Option: the ipvlan mode.
pub(crate) const MODE: &str = "ipvlan_mode";

/// An ipvlan mode (`-o ipvlan_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    L2,
    L3,
    L3s,
}

impl Mode {
    /// Parses `-o ipvlan_mode` as Docker does: empty is `l2`.
    pub(crate) fn parse(text: &str) -> Result<Mode, DriverError> {
        match text {
            "" | "l2" => Ok(Mode::L2),
            "l3" => Ok(Mode::L3),
            "l3s" => Ok(Mode::L3s),
            other => Err(DriverError::Refused(format!(
                "requested ipvlan mode '{other}' is not valid, 'l2' mode is the ipvlan driver default"
            ))),
        }
    }

    /// Routed (l3, l3s): no ARP, `default dev ethN`, no gateway.
    pub(crate) fn routed(self) -> bool {
        self != Mode::L2
    }

    pub(crate) fn kernel(self) -> IpVlanMode {
        match self {
            Mode::L2 => IpVlanMode::L2,
            Mode::L3 => IpVlanMode::L3,
            Mode::L3s => IpVlanMode::L3S,
        }
    }

    pub(crate) fn userspace(self) -> userspace::Mode {
        if self.routed() {
            userspace::Mode::L3
        } else {
            userspace::Mode::L2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_as_docker_does() {
        assert_eq!(Mode::parse("").unwrap(), Mode::L2);
        assert_eq!(Mode::parse("l3s").unwrap(), Mode::L3s);
        assert_eq!(
            Mode::parse("l4").unwrap_err().to_string(),
            "requested ipvlan mode 'l4' is not valid, 'l2' mode is the ipvlan driver default"
        );
    }
}
