//! Scenario steps: docker CLI lines, in the runtime's docker grammar
//! ([`drydock_runtime::api::cli`]), plus what only scenarios say: `--listen KIND/PORT` on
//! `docker run` and `docker create` (a listener drydock opens in the container), `drydock listen HOST KIND/PORT`,
//! `drydock route HOST SUBNET via IP` and `drydock kill HOST`. `docker swarm join` is not a
//! step: a swarm is declared (`swarm:`) and drydock forms it before the steps.

use clap::{Arg, ArgAction};
use drydock_runtime::api::cli::{self, CliError, DockerCommand};

use super::words::Word;
use crate::probe::ListenKind;

/// A step line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A docker CLI line; for `docker run` and `docker create`, the listeners to open in the
    /// container once it runs (`--listen`, drydock's own flag).
    Docker {
        /// The command.
        command: DockerCommand,
        /// `--listen KIND/PORT`.
        listen: Vec<(ListenKind, u16)>,
    },
    /// `drydock listen HOST KIND/PORT` (drydock's own step): a listener on a lab host, such as
    /// an external, non-containerized service.
    Listen {
        /// Lab host.
        host: String,
        /// What it answers.
        kind: ListenKind,
        /// Port.
        port: u16,
    },
    /// `drydock route HOST SUBNET via IP` (drydock's own step): a static route on a lab host,
    /// as on the external router that ipvlan l3 networks need.
    Route {
        /// Lab host.
        host: String,
        /// Where to.
        destination: ipnetwork::IpNetwork,
        /// Next hop.
        via: std::net::IpAddr,
    },
    /// `drydock kill HOST` (drydock's own step): the engine of docker host HOST dies at once
    /// with everything it runs, as a node dies; it leaves no swarm on its way out.
    Kill {
        /// Docker host.
        host: String,
    },
}

/// Why a line is not a command drydock knows, and the index of the word at fault.
pub type CommandError = CliError;

fn parse_listen(text: &str) -> Result<(ListenKind, u16), String> {
    let expected = || format!("expected tcp/PORT, udp/PORT or http/PORT, got {text:?}");
    let (kind, port) = text.split_once('/').ok_or_else(expected)?;
    let kind = match kind {
        "tcp" => ListenKind::Tcp,
        "udp" => ListenKind::Udp,
        "http" => ListenKind::Http,
        _ => return Err(expected()),
    };
    let port = port.parse().map_err(|_| expected())?;
    Ok((kind, port))
}

/// Parses the words of a step line.
pub fn parse(words: &[Word]) -> Result<Command, CommandError> {
    match words.first() {
        Some(first) if first.text == "docker" => docker(words),
        Some(first) if first.text == "drydock" => drydock(words),
        _ => Err(CommandError {
            word: 0,
            message: "a step is a docker CLI line (or drydock's own: `drydock listen|route|kill ...`): expected it to start with `docker`".into(),
        }),
    }
}

/// A docker line: the runtime's grammar with `--listen` added to `run` and `create`.
fn docker(words: &[Word]) -> Result<Command, CommandError> {
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let listen_arg = |verb: clap::Command| {
        verb.arg(
            Arg::new("listen")
                .long("listen")
                .action(ArgAction::Append)
                .value_parser(parse_listen),
        )
    };
    let grammar = (cli::grammar())
        .mut_subcommand("run", listen_arg)
        .mut_subcommand("create", listen_arg);
    let matches = grammar
        .try_get_matches_from(&texts)
        .map_err(|e| cli::error(&e, &texts))?;
    let command = cli::command(&matches)?;
    let listen = (matches.subcommand())
        .filter(|(verb, _)| matches!(*verb, "run" | "create"))
        .and_then(|(_, verb)| verb.get_many::<(ListenKind, u16)>("listen"))
        .map(|found| found.copied().collect())
        .unwrap_or_default();
    let refuse = |message: &str| {
        Err(CommandError {
            word: 1,
            message: message.into(),
        })
    };
    match &command {
        DockerCommand::Run(spec) if !spec.detach => {
            refuse("scenarios run containers detached: add -d")
        }
        DockerCommand::Run(spec) | DockerCommand::Create(spec) if spec.name.is_empty() => {
            refuse("scenarios name their containers: add --name NAME")
        }
        DockerCommand::SwarmJoin(_) => refuse(
            "a step has no join token to give: declare the swarm instead, `swarm: {managers: [h1], workers: [h2]}`, and drydock forms it before the steps",
        ),
        DockerCommand::Logs(_) | DockerCommand::Exec { .. } => refuse(
            "a container's processes are not a scenario's: check what it serves with expectations (reaches, gets, resolves)",
        ),
        _ => Ok(Command::Docker { command, listen }),
    }
}

/// drydock's own steps: `drydock listen HOST KIND/PORT`, `drydock route HOST SUBNET via IP`,
/// `drydock kill HOST`.
fn drydock(words: &[Word]) -> Result<Command, CommandError> {
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    match texts.as_slice() {
        ["drydock", "listen", host, listen] => {
            let (kind, port) =
                parse_listen(listen).map_err(|message| CommandError { word: 3, message })?;
            Ok(Command::Listen {
                host: host.to_string(),
                kind,
                port,
            })
        }
        ["drydock", "listen", ..] => Err(CommandError {
            word: 1,
            message: "expected `drydock listen HOST KIND/PORT`".into(),
        }),
        ["drydock", "route", host, destination, "via", via] => {
            let destination = destination.parse().map_err(|_| CommandError {
                word: 3,
                message: format!("{destination:?}: expected a subnet such as 10.1.0.0/24"),
            })?;
            let via = via.parse().map_err(|_| CommandError {
                word: 5,
                message: format!("{via:?}: expected an IP address"),
            })?;
            Ok(Command::Route {
                host: host.to_string(),
                destination,
                via,
            })
        }
        ["drydock", "route", ..] => Err(CommandError {
            word: 1,
            message: "expected `drydock route HOST SUBNET via IP`".into(),
        }),
        ["drydock", "kill", host] => Ok(Command::Kill {
            host: host.to_string(),
        }),
        ["drydock", "kill", ..] => Err(CommandError {
            word: 1,
            message: "expected `drydock kill HOST`".into(),
        }),
        _ => Err(CommandError {
            word: 1,
            message: "drydock's own steps: `drydock listen HOST KIND/PORT`, `drydock route HOST SUBNET via IP`, `drydock kill HOST`".into(),
        }),
    }
}

#[cfg(test)]
mod tests;
