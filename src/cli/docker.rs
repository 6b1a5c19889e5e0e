//! `drydock -H LAB/HOST ...`: docker command lines against the reference engine of a lab host,
//! answered by the process holding the lab.

use std::process::ExitCode;

use anyhow::{Context, bail};
use drydock_netsim::registry;
use drydock_runtime::api::cli::{self, DockerCommand};

/// Sends `args` to the engine of `target` (`LAB/HOST`) and prints the answer; `exec NAME CMD...`
/// runs CMD in the container's namespace with its resolv.conf, hosts and hostname.
pub(crate) fn run(target: Option<&str>, args: &[String]) -> anyhow::Result<ExitCode> {
    let Some(target) = target else {
        bail!(
            "`{}` talks to a lab host's engine: add -H LAB/HOST",
            args.first().map_or("", String::as_str)
        );
    };
    let (lab, host) = target
        .split_once('/')
        .context("-H: expected LAB/HOST, e.g. -H three-hosts/h1")?;
    let line: Vec<&str> = std::iter::once("docker")
        .chain(args.iter().map(String::as_str))
        .collect();
    let command = cli::parse(&line).map_err(|e| anyhow::anyhow!(e.message))?;
    let entry = registry::find(lab)?;
    let (text, netns) = match entry.call(host, args) {
        Ok(answer) => answer,
        // docker/cli's status for a failed `run`: 127 when the command does not exist.
        Err(e) if matches!(command, DockerCommand::Run(_)) => {
            eprintln!("drydock: error: {e}");
            let status = super::workload::start_failure_status(&e.to_string(), 125);
            return Ok(ExitCode::from(status));
        }
        Err(e) => return Err(e.into()),
    };
    match command {
        DockerCommand::Exec { container, command } => exec(
            &container,
            &command,
            &text,
            netns.context("the lab sent no namespace")?,
        ),
        _ => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `command` in the namespace of container `name`, with the files the lab named.
fn exec(
    name: &str,
    command: &[String],
    files: &str,
    target: registry::HostNs,
) -> anyhow::Result<ExitCode> {
    use super::workload::{container_view, program, start_failure_status};
    use std::os::unix::process::ExitStatusExt;
    let files: super::workload::Files = serde_json::from_str(files).context("the lab's answer")?;
    // A command that cannot start exits as under Docker: 127 when it does not exist, 126 when
    // it cannot be run.
    let not_started = |message: String| {
        eprintln!("drydock: error: {message}");
        Ok(ExitCode::from(start_failure_status(&message, 126)))
    };
    let argv = match program(command) {
        Ok(argv) => argv,
        Err(message) => return not_started(message),
    };
    let mut child = target.netns.command(&argv[0], target.userns.as_ref());
    child.args(&argv[1..]);
    // The container's own /etc/resolv.conf, /etc/hosts and hostname, over the machine's.
    container_view(&mut child, &files).map_err(anyhow::Error::msg)?;
    let status = match child.status() {
        Ok(status) => status,
        Err(e) => return not_started(format!("cannot run {:?} in {name}: {e}", command[0])),
    };
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
