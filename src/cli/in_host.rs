//! Commands in a lab host, as `lab exec` and `lab shell` run them: in the host's network
//! namespace, with the lab's resolv.conf over the machine's (whose resolvers the lab cannot
//! reach), and in the lab's PID namespace, so that they and all they start end with the lab.

use std::process::{Command, ExitCode, ExitStatus};

use drydock_netsim::registry::HostNs;

/// `program` made to run in lab host `target`. A rootless lab's user namespace is joined first,
/// by this process, which must still be single-threaded: entering the lab's PID namespace
/// ([`run`]) takes its privileges.
pub(crate) fn command(target: &HostNs, program: &str) -> anyhow::Result<Command> {
    if let Some(user) = &target.userns {
        user.join()?;
    }
    let mut command = target.netns.command(program, None);
    let view = super::workload::container_view(&mut command, &target.files, Some(""));
    view.map_err(anyhow::Error::msg)?;
    Ok(command)
}

/// Runs `command` (a [`command()`]) to its end in the lab's PID namespace, where it and all it
/// starts end with the lab, even after this process.
pub(crate) fn run(target: &HostNs, command: &mut Command) -> std::io::Result<ExitStatus> {
    match &target.pidns {
        Some(pidns) => pidns.spawn(command),
        None => command.spawn(),
    }
    .and_then(|mut child| child.wait())
}

/// A child's exit status as ours (128 + the signal that killed it, as a shell reports it).
pub(crate) fn exit_code(status: ExitStatus) -> ExitCode {
    let code = drydock_runtime::server::exit_code(&status);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
