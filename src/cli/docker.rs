//! The docker CLI against a lab host: `drydock -H LAB/HOST ...` runs the `docker` found on PATH
//! with `DOCKER_HOST` set to the host's Engine API socket (served by the process holding the
//! lab, persistent or not); `drydock lab env LAB HOST` prints that setting, `drydock lab shell
//! LAB HOST` opens a shell in the host with it.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use drydock_netsim::registry::{self, persistent};

use super::engines::{socket_path, sockets_root};
use super::in_host;

/// `unix://PATH` of the Engine API socket of `host` in lab `lab`, once both are known to be up.
pub(crate) fn docker_host(lab: &str, host: &str) -> anyhow::Result<String> {
    let entry = registry::find(lab)?;
    if !entry.is_held() {
        bail!(
            "persistent lab {lab} has lost its holder, and its engines with it (why: {}); `drydock lab down {lab}` removes the lab",
            persistent::log_file(lab).display()
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
    Ok(in_host::exit_code(status))
}

/// The lab host and the docker CLI's arguments of a command line that starts with `-H
/// LAB/HOST` (or `--host LAB/HOST`, `--host=LAB/HOST`, `-HLAB/HOST`): everything after it is
/// the docker CLI's, `--help` included.
pub(crate) fn shortcut(args: &[String]) -> Option<(&str, &[String])> {
    let first = args.first()?.as_str();
    match first {
        "-H" | "--host" => Some((args.get(1)?.as_str(), &args[2..])),
        _ => {
            let host = (first.strip_prefix("--host="))
                .or_else(|| first.strip_prefix("-H").filter(|h| !h.is_empty()))?;
            Some((host, &args[1..]))
        }
    }
}

/// `drydock lab env LAB HOST`.
pub(crate) fn env(lab: &str, host: &str) -> anyhow::Result<ExitCode> {
    println!("export DOCKER_HOST={}", docker_host(lab, host)?);
    Ok(ExitCode::SUCCESS)
}

/// `drydock lab shell LAB HOST`: `$SHELL` (else `sh`) inside the host as `lab exec` runs a
/// command there, `DOCKER_HOST` set.
pub(crate) fn shell(lab: &str, host: &str) -> anyhow::Result<ExitCode> {
    let docker_host = docker_host(lab, host)?;
    let target = registry::find(lab)?.host(host)?;
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "sh".into());
    let mut command = in_host::command(&target, &shell)?;
    command.env("DOCKER_HOST", docker_host);
    let status = in_host::run(&target, &mut command)
        .with_context(|| format!("cannot run {shell} in {lab}/{host}"))?;
    Ok(in_host::exit_code(status))
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

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(&["-H", "l/h", "--help"], Some(("l/h", &["--help"][..])))]
    #[case(&["--host", "l/h", "ps", "-a"], Some(("l/h", &["ps", "-a"][..])))]
    #[case(&["--host=l/h"], Some(("l/h", &[][..])))]
    #[case(&["-Hl/h", "ps"], Some(("l/h", &["ps"][..])))]
    #[case(&["-H"], None)]
    #[case(&["lab", "ls"], None)]
    #[case(&["-v", "-H", "l/h", "ps"], None)]
    fn a_command_line_starting_with_h_is_the_docker_clis(
        #[case] args: &[&str],
        #[case] expected: Option<(&str, &[&str])>,
    ) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let found = shortcut(&args)
            .map(|(host, rest)| (host, rest.iter().map(String::as_str).collect::<Vec<_>>()));
        assert_eq!(found, expected.map(|(h, r)| (h, r.to_vec())));
    }
}
