use rstest::rstest;

use super::*;

const GOOD: &str = "\
name: names resolve on user networks
checks: containers on a user-defined network resolve each other
source: https://docs.docker.com/engine/network/drivers/bridge/
external: [ext]
steps:
  - docker network create my-net
  - docker run -d --name web --network my-net --listen tcp/80 busybox
  - run: docker network create my-net
    fails: already exists
expect:
  - web resolves web
  - expect: ext cannot-reach web:80 timeout
    docker: \">=20.10 <30\"
capture:
  - on: h1/network:my-net
    filter: tcp
    expect: [none: udp port 53]
";

#[test]
fn a_scenario_parses_into_steps_expectations_and_captures() {
    let s = Scenario::parse(GOOD, "s.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.hosts.as_slice(), s.external.as_slice()),
        (&["h1".to_string()][..], &["ext".to_string()][..])
    );
    assert_eq!(s.steps.len(), 3);
    assert_eq!(s.steps[2].fails.as_deref(), Some("already exists"));
    assert_eq!(s.steps[1].at, "s.yaml:7");
    assert_eq!(s.expectations.len(), 2);
    assert_eq!(
        s.expectations[1].docker.as_ref().unwrap().to_string(),
        ">=20.10 <30"
    );
    assert_eq!(
        s.captures[0].on,
        CapturePoint::Network {
            host: "h1".into(),
            network: "my-net".into()
        }
    );
    assert_eq!(s.captures[0].checks[0].0, Quantifier::None);
}

/// The issue's four malformations, and more: each gets file:line:column and what was expected.
#[rstest]
#[case::bad_indentation(GOOD.replace("  - docker network create my-net\n", " - docker network create my-net\n"), "s.yaml:8:8:", "mapping values are not allowed in this context")]
#[case::unknown_step(GOOD.replace("docker network create my-net\n  - docker run", "docker netwrk create my-net\n  - docker run"), "s.yaml:6:12:", "unrecognized subcommand 'netwrk'")]
#[case::unknown_flag(GOOD.replace("--listen tcp/80", "--lissen tcp/80"), "s.yaml:7:47:", "unexpected argument '--lissen' found (tip: a similar argument exists: '--listen')")]
#[case::missing_field(GOOD.replace("checks: containers on a user-defined network resolve each other\n", ""), "s.yaml:1:1:", "missing field `checks`: what the scenario checks")]
#[case::unknown_key(GOOD.replace("    fails: already exists", "    fail: already exists"), "s.yaml:9:5:", "unknown field `fail`")]
#[case::unknown_verb(GOOD.replace("web resolves web", "web knows web"), "s.yaml:11:9:", "\"knows\" is not a verb here")]
#[case::unknown_subject(GOOD.replace("web resolves web", "wbe resolves web"), "s.yaml:11:5:", "\"wbe\" is neither a container")]
#[case::unknown_short_id(GOOD.replace("web resolves web", "web resolves id(wbe)"), "s.yaml:11:18:", "wbe")]
#[case::unknown_ptr_container(GOOD.replace("web resolves web", "web resolves wbe as PTR"), "s.yaml:11:18:", "\"wbe\" is neither a container")]
#[case::quoted_line(GOOD.replace("  - web resolves web", "  - \"web resolves\""), "s.yaml:11:19:", "the line ends too early")]
#[case::bad_range(GOOD.replace(">=20.10 <30", "20.10+"), "s.yaml:13:13:", "not a version bound")]
#[case::bad_capture_point(GOOD.replace("h1/network:my-net", "h9/network:my-net"), "s.yaml:15:9:", "not a docker host")]
#[case::bad_filter(GOOD.replace("filter: tcp", "filter: dns"), "s.yaml:16:13:", "expected arp, icmp")]
#[case::step_on_unknown_host(GOOD.replace("    fails: already exists", "    fails: already exists\n    on: h7"), "s.yaml:10:9:", "not a docker host")]
fn malformed_scenarios_are_located(#[case] text: String, #[case] at: &str, #[case] message: &str) {
    let error = Scenario::parse(&text, "s.yaml")
        .expect_err("malformed")
        .to_string();
    assert!(error.starts_with(at), "expected {at}, got:\n{error}");
    assert!(error.contains(message), "expected {message:?} in:\n{error}");
}

const SWARM: &str = "\
name: overlay across hosts
checks: containers on an overlay reach each other across hosts
source: observed on Docker Engine 20.10
hosts: [h1, h2, h3]
external: [ext]
swarm: {managers: [h1], workers: [h2, h3]}
routed: [h3]
steps:
  - docker network create -d overlay --attachable ov1
  - run: docker run -d --name c3 --network ov1 busybox
    on: h3
  - drydock kill h3
expect:
  - network ov1 on h2 has Scope = swarm
  - ext does-not-resolve c3 within 10s
capture:
  - on: r1/eth1
    filter: vxlan
    expect: [some: vxlan]
";

#[test]
fn a_swarm_scenario_parses_with_its_nodes_router_and_waits() {
    let s = Scenario::parse(SWARM, "s.yaml").unwrap_or_else(|e| panic!("{e}"));
    let swarm = s.swarm.as_ref().unwrap();
    assert_eq!(
        (swarm.managers.as_slice(), swarm.workers.as_slice()),
        (
            &["h1".to_string()][..],
            &["h2".to_string(), "h3".to_string()][..]
        )
    );
    assert_eq!(swarm.at, "s.yaml:6");
    assert_eq!(swarm.line(), "swarm: managers h1; workers h2, h3");
    assert_eq!(s.routed, ["h3"]);
    assert_eq!(s.steps[2].command, Command::Kill { host: "h3".into() });
    assert_eq!(s.expectations[0].within, None);
    assert_eq!(
        s.expectations[1].within,
        Some(std::time::Duration::from_secs(10))
    );
    assert_eq!(s.expectations[1].line, "ext does-not-resolve c3 within 10s");
}

/// The swarm, the routed hosts, `drydock kill` and `within` are checked at load time.
#[rstest]
#[case::swarm_unknown_host(SWARM.replace("workers: [h2, h3]", "workers: [h2, h4]"), "s.yaml:6:39:", "\"h4\" is not a docker host of this scenario")]
#[case::swarm_external_host(SWARM.replace("workers: [h2, h3]", "workers: [h2, ext]"), "s.yaml:6:39:", "\"ext\" is not a docker host")]
#[case::swarm_twice(SWARM.replace("workers: [h2, h3]", "workers: [h2, h1]"), "s.yaml:6:39:", "\"h1\" is listed twice in the swarm")]
#[case::swarm_no_manager(SWARM.replace("managers: [h1], ", ""), "s.yaml:6:8:", "a swarm needs a manager")]
#[case::swarm_unknown_key(SWARM.replace("workers:", "worker:"), "s.yaml:6:25:", "unknown field `worker`")]
#[case::routed_unknown(SWARM.replace("routed: [h3]", "routed: [h9]"), "s.yaml:7:10:", "\"h9\" is not a host of this scenario")]
#[case::routed_twice(SWARM.replace("routed: [h3]", "routed: [h3, h3]"), "s.yaml:7:14:", "listed twice")]
#[case::router_name_taken(SWARM.replace("external: [ext]", "external: [r1]").replace("ext does-not", "r1 does-not"), "s.yaml:5:12:", "\"r1\" is the router")]
#[case::kill_unknown(SWARM.replace("drydock kill h3", "drydock kill ext"), "s.yaml:12:5:", "\"ext\" is not a docker host")]
#[case::join_step(SWARM.replace("drydock kill h3", "docker swarm join --token T 10.10.0.1:2377"), "s.yaml:12:12:", "declare the swarm instead")]
#[case::bad_within(SWARM.replace("within 10s", "within 10"), "s.yaml:15:36:", "expected a duration")]
#[case::within_then_grammar(SWARM.replace("does-not-resolve c3 within", "does-not-resolve c3 now within"), "s.yaml:15:29:", "\"now\"")]
#[case::overlay_unknown_off_swarm(SWARM.replace("swarm: {managers: [h1], workers: [h2, h3]}", "swarm: {managers: [h1], workers: [h3]}"), "s.yaml:14:13:", "no network \"ov1\" on h2")]
#[case::router_unknown_without_routed(SWARM.replace("routed: [h3]\n", ""), "s.yaml:16:9:", "\"r1\" is neither")]
fn swarm_scenario_errors_are_located(
    #[case] text: String,
    #[case] at: &str,
    #[case] message: &str,
) {
    let error = Scenario::parse(&text, "s.yaml")
        .expect_err("malformed")
        .to_string();
    assert!(error.starts_with(at), "expected {at}, got:\n{error}");
    assert!(error.contains(message), "expected {message:?} in:\n{error}");
}

const PLUGGED: &str = "\
name: a plugin's network
checks: containers on a plugin's network
source: observed on Docker Engine 20.10
driver: any
plugins:
  - name: pyplug
    run: python3 tests/plugins/defective_driver.py {socket} none
steps:
  - docker network create -d pyplug n1
";

#[test]
fn plugins_and_any_driver_parse() {
    let s = Scenario::parse(PLUGGED, "s.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert!(s.any_driver);
    assert_eq!(s.plugins[0].name, "pyplug");
    assert_eq!(s.plugins[0].command[0], "python3");
    assert_eq!(s.plugins[0].command[2], SOCKET_WORD);
    let plain = Scenario::parse(GOOD, "s.yaml").unwrap();
    assert!(!plain.any_driver && plain.plugins.is_empty());
}

#[test]
fn a_plugin_command_splits_as_a_shell_splits_words() {
    let run = r#"my\ plugin --name "a b" '{socket}' -v"#;
    let plugin = PluginRun::parse("p", run).unwrap();
    assert_eq!(
        plugin.command,
        ["my plugin", "--name", "a b", SOCKET_WORD, "-v"]
    );
}

#[rstest]
#[case::driver_not_any(PLUGGED.replace("driver: any", "driver: bridge"), "s.yaml:4:9:", "expected `any`")]
#[case::builtin_name(PLUGGED.replace("name: pyplug", "name: macvlan"), "s.yaml:6:11:", "built-in driver's name")]
#[case::odd_name(PLUGGED.replace("name: pyplug", "name: a/b"), "s.yaml:6:11:", "not a plugin name")]
#[case::no_socket(PLUGGED.replace(" {socket}", ""), "s.yaml:7:10:", "never says where to listen")]
#[case::open_quote(PLUGGED.replace(" none", " 'none"), "s.yaml:7:10:", "a quote it never closes")]
#[case::unknown_key(PLUGGED.replace("    run:", "    cmd:"), "s.yaml:7:5:", "unknown field `cmd`")]
fn plugin_errors_are_located(#[case] text: String, #[case] at: &str, #[case] message: &str) {
    let error = Scenario::parse(&text, "s.yaml")
        .expect_err("malformed")
        .to_string();
    assert!(error.starts_with(at), "expected {at}, got:\n{error}");
    assert!(error.contains(message), "expected {message:?} in:\n{error}");
}
