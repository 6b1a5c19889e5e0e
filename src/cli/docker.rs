//! The docker CLI against a lab host: `drydock -H LAB/HOST ...` runs the `docker` found on PATH
//! with `DOCKER_HOST` set to the host's Engine API socket (served by the process holding the
//! lab); `drydock lab env LAB HOST` prints that setting, `drydock lab shell LAB HOST` opens a
//! shell in the host with it.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use drydock_netsim::registry::{self, Entry};

use super::engines::{socket_path, sockets_root};

/// `unix://PATH` of the Engine API socket of `host` in lab `lab`, once both are known to be up.
pub(crate) fn docker_host(lab: &str, host: &str) -> anyhow::Result<String> {
    let entry = registry::find(lab)?;
    if let Entry::Persistent(_) = entry {
        bail!(
            "lab {lab} is persistent: engines run in the process holding a lab (`drydock lab up` without --persist)"
        );
    }
    let info = entry.describe()?;
    if !info.topology.hosts.iter().any(|h| h.name == host) {
        bail!("{}", info.topology.unknown_host(host));
    }
    let path = socket_path(&sockets_root(), lab, host);
    Ok(format!("unix://{}", path.display()))
}

/// `drydock -H LAB/HOST ARGS...`: `docker ARGS...` against that host; its exit code.
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
    let docker_host = docker_host(lab, host)?;
    let Some(docker) = on_path("docker") else {
        bail!(
            "`drydock -H` runs the docker CLI and none is on PATH: `apt-get install docker.io` gives Debian's (20.10); any Docker client works with `eval $(drydock lab env {lab} {host})`"
        );
    };
    let status = Command::new(&docker)
        .args(args)
        .env("DOCKER_HOST", docker_host)
        .status()
        .with_context(|| format!("cannot run {}", docker.display()))?;
    Ok(exit_code(status))
}

/// `drydock lab env LAB HOST`.
pub(crate) fn env(lab: &str, host: &str) -> anyhow::Result<ExitCode> {
    println!("export DOCKER_HOST={}", docker_host(lab, host)?);
    Ok(ExitCode::SUCCESS)
}

/// `drydock lab shell LAB HOST`: `$SHELL` (else `sh`) inside the host, `DOCKER_HOST` set.
pub(crate) fn shell(lab: &str, host: &str) -> anyhow::Result<ExitCode> {
    let docker_host = docker_host(lab, host)?;
    let target = registry::find(lab)?.host(host)?;
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "sh".into());
    let status = (target.netns.command(&shell, target.userns.as_ref()))
        .env("DOCKER_HOST", docker_host)
        .status()
        .with_context(|| format!("cannot run {shell} in {lab}/{host}"))?;
    Ok(exit_code(status))
}

/// The first executable `name` in `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A child's exit status as ours (128 + the signal that killed it, as a shell reports it).
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
