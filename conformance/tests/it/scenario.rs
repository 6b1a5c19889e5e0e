//! Scenario files that name what they do not make, or cannot be read, are refused at load time
//! with `file:line:column` (or the OS error), before any lab or engine starts.

use std::path::Path;

use drydock_conformance::scenario::{LoadError, Scenario};
use rstest::rstest;

const BASE: &str = "\
name: names used by checks must exist
checks: every name a check uses is made by the scenario
source: drydock's own test
hosts: [h1, h2]
external: [ext]
steps:
  - docker network create app-net
  - docker run -d --name web --network app-net --listen tcp/80 busybox
  - run: docker run -d --name db busybox
    on: h2
expect:
  - ext reaches h1:web->80/tcp
capture:
  - on: h1/network:app-net
    expect: [some: tcp port 80]
";

/// Writes `text` as a scenario file and loads it; returns the error's text.
fn load_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, text).unwrap();
    let error = Scenario::load(&path).expect_err("a load error").to_string();
    // Messages name the file as given; strip the temporary directory.
    error.replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn the_base_scenario_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, BASE).unwrap();
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.expectations.len(), 1);
}

#[rstest]
#[case::unknown_target(
    "  - ext reaches h1:web->80/tcp",
    "  - web reaches wbe:80/tcp",
    "s.yaml:12:17:",
    "\"wbe\" is neither a container this scenario runs, one of its hosts, nor an IP address"
)]
#[case::unknown_network_of_target(
    "  - ext reaches h1:web->80/tcp",
    "  - ext reaches web@other-net:80/tcp",
    "s.yaml:12:17:",
    "no network \"other-net\" on h1"
)]
#[case::host_with_network(
    "  - ext reaches h1:web->80/tcp",
    "  - web reaches ext@app-net:80/tcp",
    "s.yaml:12:17:",
    "ext is a host"
)]
#[case::unknown_published_container(
    "  - ext reaches h1:web->80/tcp",
    "  - ext reaches h1:wbe->80/tcp",
    "s.yaml:12:17:",
    "\"wbe\" is not a container this scenario runs"
)]
#[case::unknown_answer(
    "  - ext reaches h1:web->80/tcp",
    "  - web resolves web to web,dbb",
    "s.yaml:12:25:",
    "\"dbb\" is neither a container"
)]
#[case::network_on_unknown_host(
    "  - ext reaches h1:web->80/tcp",
    "  - network app-net on h3 subnet is 172.18.0.0/16",
    "s.yaml:12:24:",
    "\"h3\" is not a docker host of this scenario"
)]
#[case::network_on_external_host(
    "  - ext reaches h1:web->80/tcp",
    "  - network app-net on ext subnet is 172.18.0.0/16",
    "s.yaml:12:24:",
    "\"ext\" is not a docker host of this scenario"
)]
#[case::network_not_made_there(
    "  - ext reaches h1:web->80/tcp",
    "  - network app-net on h2 subnet is 172.18.0.0/16",
    "s.yaml:12:13:",
    "no network \"app-net\" on h2"
)]
#[case::network_never_made(
    "  - ext reaches h1:web->80/tcp",
    "  - network app-nte driver is bridge",
    "s.yaml:12:13:",
    "no network \"app-nte\" on h1"
)]
#[case::unknown_container_fact(
    "  - ext reaches h1:web->80/tcp",
    "  - container wbe has Id ~ .*",
    "s.yaml:12:15:",
    "\"wbe\" is not a container this scenario runs"
)]
#[case::unknown_subject(
    "  - ext reaches h1:web->80/tcp",
    "  - wbe pings web",
    "s.yaml:12:5:",
    "\"wbe\" is neither a container this scenario runs nor one of its hosts"
)]
#[case::capture_on_unknown_network(
    "h1/network:app-net",
    "h1/network:app-nte",
    "s.yaml:14:9:",
    "no network \"app-nte\" on h1"
)]
#[case::capture_on_unknown_container(
    "h1/network:app-net",
    "wbe/eth0",
    "s.yaml:14:9:",
    "\"wbe\" is neither a container"
)]
#[case::allow_empty_with_some(
    "    expect: [some: tcp port 80]",
    "    allow-empty: true\n    expect: [some: tcp port 80]",
    "s.yaml:14:5:",
    "`allow-empty` is only for captures whose checks are all `none:`"
)]
#[case::bad_unresolved_mode(
    "  - ext reaches h1:web->80/tcp",
    "  - web does-not-resolve db notfound",
    "s.yaml:12:29:",
    "expected nxdomain, nodata, servfail, timeout, refused"
)]
fn names_a_check_uses_must_be_made_by_the_scenario(
    #[case] from: &str,
    #[case] to: &str,
    #[case] at: &str,
    #[case] message: &str,
) {
    assert!(BASE.contains(from), "{from}");
    let error = load_error(&BASE.replace(from, to));
    assert!(error.starts_with(at), "expected {at}, got:\n{error}");
    assert!(error.contains(message), "expected {message:?} in:\n{error}");
}

#[test]
fn a_container_run_on_two_hosts_is_ambiguous_in_checks() {
    let text = BASE.replace(
        "    on: h2\n",
        "    on: h2\n  - run: docker run -d --name web busybox\n    on: h2\n",
    );
    let error = load_error(&text);
    assert!(error.starts_with("s.yaml:14:17:"), "{error}");
    assert!(
        error.contains(
            "\"web\" runs on 2 docker hosts (h1, h2): a check cannot tell which one it means"
        ),
        "{error}"
    );
    // Steps may still use the name on each host.
    let without_checks = text[..text.find("expect:").unwrap()].to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, without_checks).unwrap();
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn an_unreadable_file_says_why_without_a_position() {
    let error = Scenario::load(Path::new("/nonexistent/scenario.yaml")).unwrap_err();
    assert!(matches!(error, LoadError::Unreadable { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "/nonexistent/scenario.yaml: cannot read: No such file or directory (os error 2)"
    );
}
