//! macvlan's options (libnetwork `drivers/macvlan`, as in Docker 20.10): `-o macvlan_mode`
//! (`bridge`, `private`, `vepa`, `passthru`), with Docker's texts. The driver is
//! [`super::sublink`]'s: each endpoint is a kernel macvlan link of the parent, with the MAC
//! address Docker elects (`02:42` + the IPv4 address), and the docker host cannot reach its own
//! containers through the parent (the kernel does not hand frames between a macvlan and its
//! parent).

use netlink_packet_route::link::MacVlanMode;

use super::DriverError;

/// The driver's name.
pub(crate) const NAME: &str = "macvlan";
/// Option: the macvlan mode.
pub(crate) const MODE: &str = "macvlan_mode";

/// A macvlan mode (`-o macvlan_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

impl Mode {
    /// Parses `-o macvlan_mode` as Docker does: empty is `bridge`.
    pub(crate) fn parse(text: &str) -> Result<Mode, DriverError> {
        match text {
            "" | "bridge" => Ok(Mode::Bridge),
            "private" => Ok(Mode::Private),
            "vepa" => Ok(Mode::Vepa),
            "passthru" => Ok(Mode::Passthru),
            other => Err(DriverError::Refused(format!(
                "requested macvlan mode '{other}' is not valid, 'bridge' mode is the macvlan driver default"
            ))),
        }
    }

    pub(crate) fn kernel(self) -> MacVlanMode {
        match self {
            Mode::Bridge => MacVlanMode::Bridge,
            Mode::Private => MacVlanMode::Private,
            Mode::Vepa => MacVlanMode::Vepa,
            Mode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_docker_does() {
        assert_eq!(Mode::parse("").unwrap(), Mode::Bridge);
        assert_eq!(Mode::parse("passthru").unwrap(), Mode::Passthru);
        assert_eq!(
            Mode::parse("foo").unwrap_err().to_string(),
            "requested macvlan mode 'foo' is not valid, 'bridge' mode is the macvlan driver default"
        );
    }
}
