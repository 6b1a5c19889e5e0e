//! The conformance crate's integration tests: one binary, a module per area.

mod dig;
mod docker;
mod probe;
mod run;
mod scenario;

/// True when this test may create namespaces; see [`drydock_netsim::userns::privileged_or_skip`].
pub(crate) fn privileged() -> bool {
    drydock_netsim::userns::privileged_or_skip()
}
