//! Scenario steps are docker CLI lines. This is the subset scenarios use, parsed with clap into
//! the typed requests every [`Target`](crate::target::Target) understands.

use std::net::IpAddr;

use clap::{Args, Parser, Subcommand};
use ipnetwork::IpNetwork;

use super::words::Word;
use crate::probe::ListenKind;
use crate::target::{ConnectSpec, ContainerSpec, NetworkSpec};

/// A docker CLI line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `docker network create`.
    NetworkCreate(NetworkSpec),
    /// `docker network rm NAME...`.
    NetworkRm(Vec<String>),
    /// `docker network connect`.
    NetworkConnect(ConnectSpec),
    /// `docker network disconnect [-f] NETWORK CONTAINER`.
    NetworkDisconnect {
        /// Network name.
        network: String,
        /// Container name.
        container: String,
        /// `-f`.
        force: bool,
    },
    /// `docker run -d ...`, with the listeners drydock opens inside the container once it runs.
    Run {
        /// The container.
        spec: ContainerSpec,
        /// `--listen KIND/PORT` (drydock's own flag).
        listen: Vec<(ListenKind, u16)>,
    },
    /// `docker rm [-f] NAME...`.
    Rm {
        /// Container names.
        containers: Vec<String>,
        /// `-f`.
        force: bool,
    },
    /// `docker stop NAME...`.
    Stop(Vec<String>),
    /// `docker start NAME...`.
    Start(Vec<String>),
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
}

/// Why a line is not a command drydock knows, and the index of the word at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// Index of the offending word in the line (0: the whole line).
    pub word: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

#[derive(Parser)]
#[command(
    name = "docker",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
struct Docker {
    #[command(subcommand)]
    command: DockerCommand,
}

#[derive(Subcommand)]
enum DockerCommand {
    #[command(subcommand)]
    Network(NetworkCommand),
    Run(Box<RunArgs>),
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    Stop {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    Create(CreateArgs),
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    Connect(ConnectArgs),
    Disconnect {
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(Args)]
struct CreateArgs {
    #[arg(short, long)]
    driver: Option<String>,
    #[arg(long)]
    subnet: Vec<IpNetwork>,
    #[arg(long)]
    gateway: Vec<IpAddr>,
    #[arg(long = "ip-range")]
    ip_range: Vec<IpNetwork>,
    #[arg(long = "aux-address", value_parser = parse_aux)]
    aux_address: Vec<(String, IpAddr)>,
    #[arg(long)]
    internal: bool,
    #[arg(long)]
    attachable: bool,
    #[arg(long)]
    ipv6: bool,
    #[arg(short, long = "opt", value_parser = parse_pair)]
    opt: Vec<(String, String)>,
    #[arg(long, value_parser = parse_pair)]
    label: Vec<(String, String)>,
    name: String,
}

#[derive(Args)]
struct ConnectArgs {
    #[arg(long)]
    ip: Option<IpAddr>,
    #[arg(long)]
    ip6: Option<IpAddr>,
    #[arg(long)]
    alias: Vec<String>,
    #[arg(long)]
    link: Vec<String>,
    network: String,
    container: String,
}

#[derive(Args)]
struct RunArgs {
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    name: Option<String>,
    #[arg(long, alias = "net")]
    network: Option<String>,
    #[arg(long)]
    ip: Option<IpAddr>,
    #[arg(long)]
    ip6: Option<IpAddr>,
    #[arg(long = "network-alias", alias = "net-alias")]
    network_alias: Vec<String>,
    #[arg(short, long)]
    publish: Vec<String>,
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    #[arg(long)]
    expose: Vec<String>,
    #[arg(long)]
    link: Vec<String>,
    #[arg(long)]
    dns: Vec<IpAddr>,
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// drydock's own: a listener opened inside the container (`tcp/80`, `udp/53`, `http/8080`).
    #[arg(long, value_parser = parse_listen)]
    listen: Vec<(ListenKind, u16)>,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

fn parse_aux(text: &str) -> Result<(String, IpAddr), String> {
    let (name, ip) = parse_pair(text)?;
    let ip = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok((name, ip))
}

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
        Some(first) if first.text == "docker" => {}
        Some(first) if first.text == "drydock" => return drydock(words),
        _ => {
            return Err(CommandError {
                word: 0,
                message: "a step is a docker CLI line (or `drydock listen HOST KIND/PORT`): expected it to start with `docker`".into(),
            });
        }
    }
    let args = words.iter().map(|w| w.text.as_str());
    let parsed = Docker::try_parse_from(args).map_err(|e| clap_error(&e, words))?;
    Ok(match parsed.command {
        DockerCommand::Network(NetworkCommand::Create(a)) => Command::NetworkCreate(NetworkSpec {
            name: a.name,
            driver: a.driver,
            subnets: a.subnet,
            gateways: a.gateway,
            ip_ranges: a.ip_range,
            aux_addresses: a.aux_address,
            internal: a.internal,
            attachable: a.attachable,
            ipv6: a.ipv6,
            options: a.opt,
            labels: a.label,
        }),
        DockerCommand::Network(NetworkCommand::Rm { names }) => Command::NetworkRm(names),
        DockerCommand::Network(NetworkCommand::Connect(a)) => {
            Command::NetworkConnect(ConnectSpec {
                network: a.network,
                container: a.container,
                ip: a.ip,
                ip6: a.ip6,
                aliases: a.alias,
                links: a.link,
            })
        }
        DockerCommand::Network(NetworkCommand::Disconnect {
            force,
            network,
            container,
        }) => Command::NetworkDisconnect {
            network,
            container,
            force,
        },
        DockerCommand::Run(a) => run(*a)?,
        DockerCommand::Rm { force, containers } => Command::Rm { containers, force },
        DockerCommand::Stop { containers } => Command::Stop(containers),
        DockerCommand::Start { containers } => Command::Start(containers),
    })
}

/// drydock's own steps: `drydock listen HOST KIND/PORT`, `drydock route HOST SUBNET via IP`.
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
        _ => Err(CommandError {
            word: 1,
            message: "drydock's own steps: `drydock listen HOST KIND/PORT`, `drydock route HOST SUBNET via IP`".into(),
        }),
    }
}

fn run(a: RunArgs) -> Result<Command, CommandError> {
    if !a.detach {
        return Err(CommandError {
            word: 1,
            message: "scenarios run containers detached: add -d".into(),
        });
    }
    let Some(name) = a.name else {
        return Err(CommandError {
            word: 1,
            message: "scenarios name their containers: add --name NAME".into(),
        });
    };
    Ok(Command::Run {
        spec: ContainerSpec {
            name,
            image: a.image,
            command: a.command,
            network: a.network,
            ip: a.ip,
            ip6: a.ip6,
            aliases: a.network_alias,
            publish: a.publish,
            publish_all: a.publish_all,
            expose: a.expose,
            links: a.link,
            dns: a.dns,
            hostname: a.hostname,
            mac_address: a.mac_address,
            add_hosts: a.add_host,
        },
        listen: a.listen,
    })
}

/// Turns clap's error into a message and the word it is about.
fn clap_error(error: &clap::Error, words: &[Word]) -> CommandError {
    use clap::error::{ContextKind, ContextValue};
    let rendered = error.render().to_string();
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let mut message = lines
        .next()
        .unwrap_or("invalid command")
        .trim_start_matches("error: ")
        .to_string();
    if let Some(tip) = lines.find(|l| l.trim_start().starts_with("tip:")) {
        message.push_str(&format!(" ({})", tip.trim()));
    }
    let culprit = [
        ContextKind::InvalidValue,
        ContextKind::InvalidArg,
        ContextKind::InvalidSubcommand,
    ]
    .into_iter()
    .find_map(|kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    });
    let word = culprit
        .and_then(|c| {
            let flag = c.split([' ', '=']).next().unwrap_or(&c).to_string();
            words.iter().position(|w| {
                w.text == c || w.text == flag || w.text.starts_with(&format!("{flag}="))
            })
        })
        .unwrap_or(0);
    CommandError { word, message }
}

#[cfg(test)]
mod tests;
