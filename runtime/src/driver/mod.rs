//! Network drivers. `bridge` plugs containers into a Linux bridge of the docker host; `host`
//! shares the docker host's namespace; `null` (the `none` network) gives a namespace with only
//! `lo`. Drivers receive namespaces and never enter one themselves: netlink sockets are opened
//! inside through [`Netns`](drydock_netsim::Netns).

pub(crate) mod bridge;

use std::io;

/// Which driver a network uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Linux bridge.
    Bridge,
    /// The docker host's own namespace.
    Host,
    /// No network at all (`none`).
    Null,
}

impl Driver {
    /// The driver's name, as inspect shows it.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// A driver's failure.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The kernel refused a netlink request.
    #[error("{what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's answer.
        source: rtnetlink::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The request cannot be done, with Docker's message.
    #[error("{0}")]
    Refused(String),
}

impl DriverError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(what: &str) -> impl FnOnce(io::Error) -> DriverError + '_ {
        move |source| DriverError::Io {
            what: what.to_string(),
            source,
        }
    }
}
