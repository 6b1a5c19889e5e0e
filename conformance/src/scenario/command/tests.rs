use rstest::rstest;

use super::*;
use crate::scenario::words::split;

fn parse_line(line: &str) -> Result<Command, CommandError> {
    parse(&split(line).unwrap())
}

#[test]
fn run_takes_docker_flags_and_listeners() {
    let command = parse_line("docker run -d --name web --net my-net --ip 172.18.0.9 --network-alias www -p 8080:80 -p 127.0.0.1::53/udp --listen http/80 --listen udp/53 busybox sleep 99").unwrap();
    let Command::Docker {
        command: DockerCommand::Run(spec),
        listen,
    } = command
    else {
        panic!("{command:?}")
    };
    assert_eq!(
        (spec.name.as_str(), spec.network.as_deref()),
        ("web", Some("my-net"))
    );
    assert_eq!(spec.publish, ["8080:80", "127.0.0.1::53/udp"]);
    assert_eq!(spec.command, ["sleep", "99"]);
    assert_eq!(listen, [(ListenKind::Http, 80), (ListenKind::Udp, 53)]);
}

#[test]
fn drydock_steps_parse() {
    assert_eq!(
        parse_line("drydock listen ext tcp/8080").unwrap(),
        Command::Listen {
            host: "ext".into(),
            kind: ListenKind::Tcp,
            port: 8080
        }
    );
    assert_eq!(
        parse_line("drydock route ext 10.1.0.0/24 via 10.10.0.2").unwrap(),
        Command::Route {
            host: "ext".into(),
            destination: "10.1.0.0/24".parse().unwrap(),
            via: "10.10.0.2".parse().unwrap(),
        }
    );
    assert_eq!(
        parse_line("drydock kill h3").unwrap(),
        Command::Kill { host: "h3".into() }
    );
    assert!(matches!(
        parse_line("docker swarm leave -f").unwrap(),
        Command::Docker {
            command: DockerCommand::SwarmLeave { force: true },
            ..
        }
    ));
}

/// Each bad line names the word at fault and what was expected (the docker grammar's own
/// errors are tested with it, in the runtime; one shows they pass through).
#[rstest]
#[case::not_docker("podman run x", 0, "expected it to start with `docker`")]
#[case::grammar(
    "docker network create --sub 10.0.0.0/8 n",
    3,
    "unexpected argument '--sub' found"
)]
#[case::attached("docker run --name x busybox", 1, "add -d")]
#[case::unnamed("docker run -d busybox", 1, "add --name NAME")]
#[case::exec("docker exec web ls", 1, "not a scenario's")]
#[case::bad_listener(
    "docker run -d --name x --listen sctp/9 busybox",
    6,
    "expected tcp/PORT, udp/PORT or http/PORT"
)]
#[case::listen_unknown("drydock listen ext", 1, "expected `drydock listen HOST KIND/PORT`")]
#[case::drydock_unknown("drydock wait 3", 1, "drydock's own steps")]
#[case::kill_what("drydock kill", 1, "expected `drydock kill HOST`")]
#[case::swarm_join(
    "docker swarm join --token SWMTKN-1-x 10.10.0.1:2377",
    1,
    "declare the swarm instead, `swarm: {managers: [h1], workers: [h2]}`"
)]
fn bad_lines_point_at_their_word(#[case] line: &str, #[case] word: usize, #[case] message: &str) {
    let error = parse_line(line).unwrap_err();
    assert!(error.message.contains(message), "{error:?}");
    assert_eq!(error.word, word, "{error:?}");
}
