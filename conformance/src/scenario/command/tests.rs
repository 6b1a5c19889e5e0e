use rstest::rstest;

use super::*;
use crate::scenario::words::split;

fn parse_line(line: &str) -> Result<Command, CommandError> {
    parse(&split(line).unwrap())
}

#[test]
fn network_create_takes_docker_flags() {
    let command = parse_line("docker network create -d bridge --subnet 10.1.0.0/16 --gateway 10.1.0.254 --ip-range 10.1.5.0/24 --aux-address r=10.1.0.9 --internal -o com.docker.network.bridge.enable_icc=false --label a=b net1").unwrap();
    let Command::NetworkCreate(spec) = command else {
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
fn run_takes_docker_flags_and_listeners() {
    let command = parse_line("docker run -d --name web --net my-net --ip 172.18.0.9 --network-alias www -p 8080:80 -p 127.0.0.1::53/udp --listen http/80 --listen udp/53 busybox sleep 99").unwrap();
    let Command::Run { spec, listen } = command else {
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

/// Each bad line names the word at fault and what was expected.
#[rstest]
#[case::not_docker("podman run x", 0, "expected it to start with `docker`")]
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
#[case::attached("docker run --name x busybox", 1, "add -d")]
#[case::unnamed("docker run -d busybox", 1, "add --name NAME")]
#[case::bad_listener(
    "docker run -d --name x --listen sctp/9 busybox",
    6,
    "expected tcp/PORT, udp/PORT or http/PORT"
)]
#[case::listen_unknown("drydock listen ext", 1, "expected `drydock listen HOST KIND/PORT`")]
#[case::drydock_unknown("drydock wait 3", 1, "drydock's own steps")]
fn bad_lines_point_at_their_word(#[case] line: &str, #[case] word: usize, #[case] message: &str) {
    let error = parse_line(line).unwrap_err();
    assert!(error.message.contains(message), "{error:?}");
    assert_eq!(error.word, word, "{error:?}");
}
