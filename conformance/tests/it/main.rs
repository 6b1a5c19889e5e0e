//! The conformance crate's integration tests: one binary, a module per area.

mod dig;
mod docker;
mod docker_cli;
mod etcd;
mod probe;
mod run;
mod scenario;

/// True when this test may create namespaces; see [`drydock_netsim::userns::privileged_or_skip`].
pub(crate) fn privileged() -> bool {
    drydock_netsim::userns::privileged_or_skip()
}

/// A docker command on `host` of `target`, through the runtime's dispatcher, as a scenario
/// step runs it; the engine's messages, one per line, when it fails.
pub(crate) async fn call(
    target: &impl drydock_conformance::targets::Target,
    host: &str,
    command: drydock_runtime::api::cli::DockerCommand,
) -> Result<(), String> {
    let api = target.api(host).map_err(|e| e.message)?;
    let reply = drydock_runtime::api::dispatch::dispatch(api, &command).await;
    reply.result().map(drop)
}
