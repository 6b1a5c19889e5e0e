//! The runtime crate's integration tests: one binary, a module per area.

mod engine;
mod firewall;
mod macvlan;
mod proxy;

/// True when this test may create namespaces; see [`drydock_netsim::userns::privileged_or_skip`].
pub(crate) fn privileged() -> bool {
    drydock_netsim::userns::privileged_or_skip()
}
