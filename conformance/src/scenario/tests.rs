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

/// The four malformations, and more: each gets file:line:column and what was expected.
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
