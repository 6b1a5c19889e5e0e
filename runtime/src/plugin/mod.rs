//! Docker's remote network driver and IPAM plugins (libnetwork's `remote` driver and IPAM
//! protocols): the engine's clients of them ([`RemoteDriver`], [`RemoteIpam`]), and drydock's
//! built-in drivers served as plugins, so that a real dockerd runs its networks through them
//! (`drydock plugin serve`). The protocol's bodies are in [`protocol`].
//!
//! A served driver works in the docker host's network namespace (the server's own): dockerd
//! moves each endpoint's link into the container itself. So where the engine asks a driver to
//! put the endpoint in the container's namespace, the server asks it to put it in the docker
//! host's, under a name of its own (`dd` and the endpoint id's first 10 digits), without
//! addresses (the drivers are made staging: dockerd gives them once it moved the link), and
//! answers `Join` with that name.
//! dockerd's firewall drops forwarded traffic it does not know: the server opens it to its
//! bridges (`firewall::open_forward`).

pub mod client;
pub mod discovery;
pub mod protocol;
mod remote;
mod remote_ipam;
mod serve;

pub use remote::{LoadError, NETWORK_DRIVER, RemoteDriver};
pub use remote_ipam::{GivenPool, IPAM_DRIVER, IpamLoadError, RemoteIpam};

/// Driver names dockerd never asks a plugin for (its built-ins come first).
const BUILTIN_DRIVERS: [&str; 6] = ["bridge", "host", "null", "overlay", "macvlan", "ipvlan"];

/// Whether `name` is a plugin name dockerd would look up: not a built-in driver's, and fit for
/// a file name; else why not.
pub fn check_name(name: &str) -> Result<(), String> {
    if BUILTIN_DRIVERS.contains(&name) {
        return Err(format!(
            "{name:?} is a built-in driver's name: dockerd never asks a plugin for it; pick another, such as drydock-{name}"
        ));
    }
    let fit = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if name.is_empty() || !name.chars().all(fit) {
        return Err(format!(
            "{name:?} is not a plugin name: letters, digits, '.', '_' and '-' only"
        ));
    }
    Ok(())
}
pub use serve::{PluginServer, SERVED, serve};
