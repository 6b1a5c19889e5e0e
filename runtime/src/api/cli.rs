//! The docker CLI's grammar, for the subset of commands drydock's engines serve: a command line
//! becomes a [`DockerCommand`], whose specs [`super::request`] turns into request bodies and
//! [`super::dispatch`] into engine calls.
//!
//! [`grammar`] is clap's command, so that a front end can add words of its own (the scenario
//! runner adds `run --listen`) and read them beside [`command`]'s result.

use std::net::IpAddr;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use ipnetwork::IpNetwork;

use super::spec::{
    ConnectSpec, ContainerSpec, NetworkLsSpec, NetworkSpec, SwarmInitSpec, SwarmJoinSpec,
};

/// A docker CLI command line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerCommand {
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
    /// `docker network prune [-f] [--filter KEY=VALUE]...`.
    NetworkPrune {
        /// `-f`: no question asked.
        force: bool,
        /// `--filter KEY=VALUE`, as written.
        filters: Vec<String>,
    },
    /// `docker network ls [-f KEY=VALUE]... [-q] [--no-trunc]`.
    NetworkLs(NetworkLsSpec),
    /// `docker network inspect NAME...`.
    NetworkInspect(Vec<String>),
    /// `docker run`.
    Run(Box<ContainerSpec>),
    /// `docker create`: the container, made and not started (its spec's `detach` is false).
    Create(Box<ContainerSpec>),
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
    /// `docker restart NAME...`.
    Restart(Vec<String>),
    /// `docker rename OLD NEW`.
    Rename {
        /// The container's name or id.
        container: String,
        /// Its new name.
        new_name: String,
    },
    /// `docker inspect NAME...`.
    Inspect(Vec<String>),
    /// `docker logs NAME`.
    Logs(String),
    /// `docker exec NAME CMD [ARG...]` (`--` before CMD is allowed).
    Exec {
        /// Container name.
        container: String,
        /// The command and its arguments.
        command: Vec<String>,
    },
    /// `docker swarm init`.
    SwarmInit(SwarmInitSpec),
    /// `docker swarm join --token TOKEN HOST:PORT`.
    SwarmJoin(SwarmJoinSpec),
    /// `docker swarm leave [-f]`.
    SwarmLeave {
        /// `-f`: leave even as the last manager.
        force: bool,
    },
    /// `docker swarm join-token [-q] worker|manager`.
    SwarmJoinToken {
        /// `manager` (else `worker`).
        manager: bool,
        /// `-q`: the token alone.
        quiet: bool,
    },
}

/// Why a command line is not a command drydock knows, and the index of the argument at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Index of the offending argument (0: the whole line, whose first argument is `docker`).
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
    command: Verb,
}

#[derive(Subcommand)]
enum Verb {
    #[command(subcommand)]
    Network(NetworkVerb),
    Run(Box<RunArgs>),
    Create(Box<ContainerArgs>),
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
    Restart {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    Rename {
        container: String,
        new_name: String,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    Logs {
        container: String,
    },
    Exec {
        container: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    #[command(subcommand)]
    Swarm(SwarmVerb),
}

#[derive(Subcommand)]
enum SwarmVerb {
    Init {
        #[arg(long = "advertise-addr")]
        advertise_addr: Option<String>,
        #[arg(long = "listen-addr")]
        listen_addr: Option<String>,
    },
    Join {
        #[arg(long, required = true)]
        token: String,
        #[arg(long = "advertise-addr")]
        advertise_addr: Option<String>,
        #[arg(long = "listen-addr")]
        listen_addr: Option<String>,
        remote: String,
    },
    Leave {
        #[arg(short, long)]
        force: bool,
    },
    JoinToken {
        #[arg(short, long)]
        quiet: bool,
        #[arg(value_parser = ["worker", "manager"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum NetworkVerb {
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
    Prune {
        #[arg(short, long)]
        force: bool,
        #[arg(long)]
        filter: Vec<String>,
    },
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        filter: Vec<String>,
        #[arg(short, long)]
        quiet: bool,
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Args)]
struct CreateArgs {
    #[arg(short, long)]
    driver: Option<String>,
    #[arg(long = "ipam-driver")]
    ipam_driver: Option<String>,
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
    #[arg(long = "link-local-ip")]
    link_local_ip: Vec<String>,
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
    #[command(flatten)]
    container: ContainerArgs,
}

/// What `docker run` and `docker create` share: the container's configuration.
#[derive(Args)]
struct ContainerArgs {
    #[arg(long)]
    name: Option<String>,
    #[arg(long, alias = "net")]
    network: Option<String>,
    #[arg(long)]
    ip: Option<IpAddr>,
    #[arg(long)]
    ip6: Option<IpAddr>,
    #[arg(long = "link-local-ip")]
    link_local_ip: Vec<String>,
    #[arg(long, default_value = "")]
    uts: String,
    #[arg(long, default_value = "")]
    domainname: String,
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
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    #[arg(long = "dns-option", alias = "dns-opt")]
    dns_option: Vec<String>,
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    #[arg(long = "add-host")]
    add_host: Vec<String>,
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

/// The grammar as a clap command (its first argument is `docker`), for front ends that add
/// words of their own before parsing; [`command`] reads what it matched.
pub fn grammar() -> clap::Command {
    Docker::command()
}

/// The command `matches` (from [`grammar`], or a grammar extended from it) holds.
pub fn command(matches: &ArgMatches) -> Result<DockerCommand, CliError> {
    let parsed = Docker::from_arg_matches(matches).map_err(|e| CliError {
        word: 0,
        message: first_line(&e),
    })?;
    Ok(match parsed.command {
        Verb::Network(verb) => network(verb),
        Verb::Run(a) => DockerCommand::Run(Box::new(container(a.container, a.detach))),
        Verb::Create(a) => DockerCommand::Create(Box::new(container(*a, false))),
        Verb::Rm { force, containers } => DockerCommand::Rm { containers, force },
        Verb::Stop { containers } => DockerCommand::Stop(containers),
        Verb::Start { containers } => DockerCommand::Start(containers),
        Verb::Restart { containers } => DockerCommand::Restart(containers),
        Verb::Rename {
            container,
            new_name,
        } => DockerCommand::Rename {
            container,
            new_name,
        },
        Verb::Inspect { names } => DockerCommand::Inspect(names),
        Verb::Logs { container } => DockerCommand::Logs(container),
        Verb::Exec { container, command } => DockerCommand::Exec { container, command },
        Verb::Swarm(verb) => swarm(verb),
    })
}

/// Parses a command line whose first argument is `docker`.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<DockerCommand, CliError> {
    let texts: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let matches = grammar()
        .try_get_matches_from(&texts)
        .map_err(|e| error(&e, &texts))?;
    command(&matches)
}

fn network(verb: NetworkVerb) -> DockerCommand {
    match verb {
        NetworkVerb::Create(a) => DockerCommand::NetworkCreate(NetworkSpec {
            name: a.name,
            driver: a.driver,
            ipam_driver: a.ipam_driver,
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
        NetworkVerb::Rm { names } => DockerCommand::NetworkRm(names),
        NetworkVerb::Connect(a) => DockerCommand::NetworkConnect(ConnectSpec {
            network: a.network,
            container: a.container,
            ip: a.ip,
            ip6: a.ip6,
            link_local_ips: a.link_local_ip,
            aliases: a.alias,
            links: a.link,
        }),
        NetworkVerb::Disconnect {
            force,
            network,
            container,
        } => DockerCommand::NetworkDisconnect {
            network,
            container,
            force,
        },
        NetworkVerb::Prune { force, filter } => DockerCommand::NetworkPrune {
            force,
            filters: filter,
        },
        NetworkVerb::Ls {
            filter,
            quiet,
            no_trunc,
        } => DockerCommand::NetworkLs(NetworkLsSpec {
            filters: filter,
            quiet,
            no_trunc,
        }),
        NetworkVerb::Inspect { names } => DockerCommand::NetworkInspect(names),
    }
}

fn swarm(verb: SwarmVerb) -> DockerCommand {
    match verb {
        SwarmVerb::Init {
            advertise_addr,
            listen_addr,
        } => DockerCommand::SwarmInit(SwarmInitSpec {
            advertise_addr,
            listen_addr,
        }),
        SwarmVerb::Join {
            token,
            advertise_addr,
            listen_addr,
            remote,
        } => DockerCommand::SwarmJoin(SwarmJoinSpec {
            token,
            remote,
            advertise_addr,
            listen_addr,
        }),
        SwarmVerb::Leave { force } => DockerCommand::SwarmLeave { force },
        SwarmVerb::JoinToken { quiet, role } => DockerCommand::SwarmJoinToken {
            manager: role == "manager",
            quiet,
        },
    }
}

fn container(a: ContainerArgs, detach: bool) -> ContainerSpec {
    ContainerSpec {
        name: a.name.unwrap_or_default(),
        detach,
        image: a.image,
        command: a.command,
        network: a.network,
        ip: a.ip,
        ip6: a.ip6,
        link_local_ips: a.link_local_ip,
        uts: a.uts,
        domainname: a.domainname,
        aliases: a.network_alias,
        publish: a.publish,
        publish_all: a.publish_all,
        expose: a.expose,
        links: a.link,
        dns: a.dns,
        dns_search: a.dns_search,
        dns_options: a.dns_option,
        hostname: a.hostname,
        mac_address: a.mac_address,
        add_hosts: a.add_host,
    }
}

fn first_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid command")
        .trim_start_matches("error: ")
        .to_string()
}

/// clap's error about `args` as a message and the argument it is about (with clap's tip, if it
/// has one).
pub fn error<S: AsRef<str>>(error: &clap::Error, args: &[S]) -> CliError {
    use clap::error::{ContextKind, ContextValue};
    let mut message = first_line(error);
    let rendered = error.render().to_string();
    if let Some(tip) = rendered
        .lines()
        .find(|l| l.trim_start().starts_with("tip:"))
    {
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
            args.iter()
                .map(AsRef::as_ref)
                .position(|w| w == c || w == flag || w.starts_with(&format!("{flag}=")))
        })
        .unwrap_or(0);
    CliError { word, message }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn parse_line(line: &str) -> Result<DockerCommand, CliError> {
        parse(&line.split_whitespace().collect::<Vec<_>>())
    }

    #[test]
    fn network_create_takes_docker_flags() {
        let command = parse_line("docker network create -d bridge --subnet 10.1.0.0/16 --gateway 10.1.0.254 --ip-range 10.1.5.0/24 --aux-address r=10.1.0.9 --internal -o com.docker.network.bridge.enable_icc=false --label a=b net1").unwrap();
        let DockerCommand::NetworkCreate(spec) = command else {
            panic!("{command:?}")
        };
        assert_eq!(spec.name, "net1");
        assert_eq!(spec.driver.as_deref(), Some("bridge"));
        assert_eq!(spec.subnets, ["10.1.0.0/16".parse().unwrap()]);
        assert_eq!(spec.gateways, ["10.1.0.254".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            spec.aux_addresses,
            [("r".to_string(), "10.1.0.9".parse().unwrap())]
        );
        assert!(spec.internal);
        assert_eq!(
            spec.options,
            [(
                "com.docker.network.bridge.enable_icc".to_string(),
                "false".to_string()
            )]
        );
    }

    #[test]
    fn run_takes_docker_flags_and_its_command() {
        let command = parse_line("docker run -d --name web --net my-net --ip 172.18.0.9 --network-alias www -p 8080:80 -p 127.0.0.1::53/udp busybox sleep -n 99").unwrap();
        let DockerCommand::Run(spec) = command else {
            panic!("{command:?}")
        };
        assert_eq!(
            (spec.name.as_str(), spec.network.as_deref(), spec.detach),
            ("web", Some("my-net"), true)
        );
        assert_eq!(spec.publish, ["8080:80", "127.0.0.1::53/udp"]);
        assert_eq!(spec.command, ["sleep", "-n", "99"]);
    }

    #[test]
    fn create_takes_runs_flags_but_not_detach() {
        let command =
            parse_line("docker create --name test --network n1 -p 80 busybox top").unwrap();
        let DockerCommand::Create(spec) = command else {
            panic!("{command:?}")
        };
        assert_eq!(
            (spec.name.as_str(), spec.network.as_deref(), spec.detach),
            ("test", Some("n1"), false)
        );
        assert_eq!(
            (spec.publish.as_slice(), spec.command.as_slice()),
            (&["80".to_string()][..], &["top".to_string()][..])
        );
        let error = parse_line("docker create -d --name test busybox").unwrap_err();
        assert_eq!(error.word, 2, "{error:?}");
    }

    #[rstest]
    #[case::plain("docker exec web ls -l /", &["ls", "-l", "/"])]
    #[case::separated("docker exec web -- ls -l /", &["ls", "-l", "/"])]
    fn exec_takes_the_rest_as_its_command(#[case] line: &str, #[case] expected: &[&str]) {
        let command = parse_line(line).unwrap();
        assert_eq!(
            command,
            DockerCommand::Exec {
                container: "web".into(),
                command: expected.iter().map(ToString::to_string).collect(),
            }
        );
    }

    #[rstest]
    #[case(
        "docker network ls",
        DockerCommand::NetworkLs(NetworkLsSpec::default())
    )]
    #[case(
        "docker network ls -f type=custom --filter name=app -q",
        DockerCommand::NetworkLs(NetworkLsSpec { filters: vec!["type=custom".into(), "name=app".into()], quiet: true, no_trunc: false })
    )]
    #[case(
        "docker network prune -f --filter label=a --filter until=1h",
        DockerCommand::NetworkPrune { force: true, filters: vec!["label=a".into(), "until=1h".into()] }
    )]
    #[case("docker network inspect a b", DockerCommand::NetworkInspect(vec!["a".into(), "b".into()]))]
    #[case("docker inspect web", DockerCommand::Inspect(vec!["web".into()]))]
    #[case("docker logs web", DockerCommand::Logs("web".into()))]
    #[case("docker rm -f a b", DockerCommand::Rm { containers: vec!["a".into(), "b".into()], force: true })]
    #[case("docker rename a b", DockerCommand::Rename { container: "a".into(), new_name: "b".into() })]
    #[case("docker restart a b", DockerCommand::Restart(vec!["a".into(), "b".into()]))]
    #[case("docker swarm leave -f", DockerCommand::SwarmLeave { force: true })]
    #[case(
        "docker swarm init --advertise-addr 10.10.0.1",
        DockerCommand::SwarmInit(SwarmInitSpec { advertise_addr: Some("10.10.0.1".into()), listen_addr: None })
    )]
    #[case(
        "docker swarm join --token SWMTKN-1-x 10.10.0.1:2377",
        DockerCommand::SwarmJoin(SwarmJoinSpec { token: "SWMTKN-1-x".into(), remote: "10.10.0.1:2377".into(), ..SwarmJoinSpec::default() })
    )]
    fn views_and_removals_parse(#[case] line: &str, #[case] expected: DockerCommand) {
        assert_eq!(parse_line(line).unwrap(), expected);
    }

    /// Each bad line names the argument at fault and what was expected.
    #[rstest]
    #[case::unknown_subcommand("docker netwrk ls", 1, "unrecognized subcommand 'netwrk'")]
    #[case::unknown_flag(
        "docker network create --sub 10.0.0.0/8 n",
        3,
        "unexpected argument '--sub' found"
    )]
    #[case::bad_value(
        "docker network create --subnet 10.0.0/8 n",
        4,
        "invalid value '10.0.0/8' for '--subnet"
    )]
    #[case::missing_name(
        "docker network create",
        0,
        "the following required arguments were not provided"
    )]
    fn bad_lines_point_at_their_argument(
        #[case] line: &str,
        #[case] word: usize,
        #[case] message: &str,
    ) {
        let error = parse_line(line).unwrap_err();
        assert!(error.message.contains(message), "{error:?}");
        assert_eq!(error.word, word, "{error:?}");
    }
}
