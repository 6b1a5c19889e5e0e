//! `drydock -H LAB/HOST ...`: docker-shaped commands against the reference engine of a lab
//! host, answered by the process holding the lab.

use std::process::ExitCode;

use anyhow::{Context, bail};
use drydock_netsim::registry;

/// Sends `args` to the engine of `target` (`LAB/HOST`) and prints the answer; `exec NAME --
/// CMD...` runs CMD in the container's namespace with its resolv.conf and hosts.
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
    let entry = registry::find(lab)?;
    if args.first().map(String::as_str) == Some("exec") {
        return exec(&entry, host, &args[1..]);
    }
    let (text, _) = entry.call(host, args)?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn exec(entry: &registry::Entry, host: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::ExitStatusExt;
    let (name, command) = match args.iter().position(|a| a == "--") {
        Some(i) if i == 1 && i + 1 < args.len() => (&args[0], &args[i + 1..]),
        _ => bail!("expected `exec NAME -- CMD [ARGS...]`"),
    };
    let (text, target) = entry.call(host, &["exec".to_string(), name.clone()])?;
    let target = target.context("the lab sent no namespace")?;
    let files: super::workload::Files = serde_json::from_str(&text).context("the lab's answer")?;
    let mut child = target.netns.command(&command[0], target.userns.as_ref());
    child.args(&command[1..]);
    // The container's own /etc/resolv.conf, /etc/hosts and hostname, over the machine's.
    super::workload::container_view(&mut child, &files).map_err(anyhow::Error::msg)?;
    let status = child
        .status()
        .with_context(|| format!("cannot run {:?} in {name}", command[0]))?;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
