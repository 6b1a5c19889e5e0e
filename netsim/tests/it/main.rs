//! netsim's integration tests: one binary, a module per area (link time matters on 2 cores).

mod capture;
mod features;
mod lab;
mod link;
mod rootless;

/// True when this test may create namespaces; see [`drydock_netsim::userns::privileged_or_skip`].
pub(crate) fn privileged() -> bool {
    drydock_netsim::userns::privileged_or_skip()
}
