//! Every expectation kind, holding and not, with the texts users read in a failure.

use rstest::rstest;
use serde_json::json;

use super::*;
use crate::probe::Answered;
use crate::scenario::{expect, words};

fn expectation(line: &str) -> Expectation {
    expect::parse(&words::split(line).unwrap()).unwrap()
}

/// The verdict on `line` as `(expected, observed)` when it fails.
fn verdict(line: &str, observation: Observation) -> Result<(), (String, String)> {
    judge(&expectation(line), &observation).map_err(|f| (f.expected, f.observed))
}

fn fails(expected: &str, observed: &str) -> Result<(), (String, String)> {
    Err((expected.into(), observed.into()))
}

fn reached(banner: Option<&str>, answerer: Option<&str>) -> Observation {
    Observation::Reach {
        at: "172.18.0.2:80".parse().unwrap(),
        outcome: Reach::Reached {
            banner: banner.map(String::from),
        },
        answerer: answerer.map(String::from),
    }
}

fn reach(outcome: Reach) -> Observation {
    Observation::Reach {
        at: "172.18.0.2:80".parse().unwrap(),
        outcome,
        answerer: None,
    }
}

#[rstest]
#[case::reached("c reaches web:80", reached(Some("drydock web 80"), Some("drydock web 80")), Ok(()))]
#[case::reached_unknowable("c reaches web:80", reached(None, None), Ok(()))]
#[case::wrong_listener(
    "c reaches web:80",
    reached(Some("drydock db 80"), Some("drydock web 80")),
    fails(
        "to reach the listener answering \"drydock web 80\"",
        "172.18.0.2:80/tcp: reached (banner: drydock db 80)"
    )
)]
#[case::not_reached(
    "c reaches web:80",
    reach(Reach::Refused),
    fails("reached", "172.18.0.2:80/tcp: refused")
)]
#[case::blocked("c cannot-reach web:80", reach(Reach::Timeout), Ok(()))]
#[case::open(
    "c cannot-reach web:80",
    reached(None, None),
    fails("no connection", "172.18.0.2:80/tcp: reached")
)]
#[case::refused_as_said("c cannot-reach web:80 refused", reach(Reach::Refused), Ok(()))]
#[case::refused_not_timeout(
    "c cannot-reach web:80 timeout",
    reach(Reach::Refused),
    fails("timeout", "172.18.0.2:80/tcp: refused")
)]
#[case::unreachable(
    "c cannot-reach web:80/udp unreachable",
    reach(Reach::Unreachable { reason: "No route to host".into() }),
    Ok(())
)]
#[case::probe_broken(
    "c cannot-reach web:80",
    reach(Reach::Error("socket: EPERM".into())),
    fails("the probe to run", "172.18.0.2:80/tcp: error: socket: EPERM")
)]
fn reaches(
    #[case] line: &str,
    #[case] observation: Observation,
    #[case] expected: Result<(), (String, String)>,
) {
    assert_eq!(verdict(line, observation), expected);
}

fn ping(outcome: probe::Ping) -> Observation {
    Observation::Ping {
        ip: "10.10.0.2".parse().unwrap(),
        outcome,
    }
}

#[rstest]
#[case::pings("c pings ext", ping(probe::Ping::Reply), Ok(()))]
#[case::no_reply(
    "c pings ext",
    ping(probe::Ping::Timeout),
    fails("an echo reply", "ping 10.10.0.2: timed out")
)]
#[case::isolated("c cannot-ping ext", ping(probe::Ping::Timeout), Ok(()))]
#[case::replied(
    "c cannot-ping ext",
    ping(probe::Ping::Reply),
    fails("no echo reply", "ping 10.10.0.2: reply")
)]
#[case::broken(
    "c cannot-ping ext",
    ping(probe::Ping::Error("raw socket: EPERM".into())),
    fails("the probe to run", "ping 10.10.0.2: error: raw socket: EPERM")
)]
fn pings(
    #[case] line: &str,
    #[case] observation: Observation,
    #[case] expected: Result<(), (String, String)>,
) {
    assert_eq!(verdict(line, observation), expected);
}

fn dns(outcome: Resolution, want: Option<Vec<RecordData>>) -> Observation {
    dns_wanting(outcome, want.map(Ok))
}

fn dns_wanting(outcome: Resolution, want: Option<Result<Vec<RecordData>, String>>) -> Observation {
    Observation::Dns {
        asked: "A web via 127.0.0.11:53".into(),
        outcome,
        want,
    }
}

fn answers(ips: &[&str], ttl: u32) -> Resolution {
    Resolution::Answers(
        ips.iter()
            .map(|ip| Answered {
                data: RecordData::Address(ip.parse().unwrap()),
                ttl,
            })
            .collect(),
    )
}

fn addresses(ips: &[&str]) -> Option<Vec<RecordData>> {
    Some(
        ips.iter()
            .map(|ip| RecordData::Address(ip.parse().unwrap()))
            .collect(),
    )
}

#[rstest]
#[case::resolves("c resolves web", dns(answers(&["172.18.0.2"], 600), None), Ok(()))]
#[case::in_any_order(
    "c resolves web to a,b",
    dns(answers(&["172.18.0.3", "172.18.0.2"], 600), addresses(&["172.18.0.2", "172.18.0.3"])),
    Ok(())
)]
#[case::other_answers(
    "c resolves web to a",
    dns(answers(&["172.18.0.3"], 600), addresses(&["172.18.0.2"])),
    fails("answers 172.18.0.2", "A web via 127.0.0.11:53: answers 172.18.0.3 (ttl 600)")
)]
#[case::ttl("c resolves web ttl 600", dns(answers(&["172.18.0.2"], 600), None), Ok(()))]
#[case::other_ttl(
    "c resolves web ttl 600",
    dns(answers(&["172.18.0.2"], 30), None),
    fails("answers with TTL 600", "A web via 127.0.0.11:53: answers 172.18.0.2 (ttl 30)")
)]
#[case::nxdomain(
    "c resolves web",
    dns(Resolution::NxDomain, None),
    fails("A web to resolve", "A web via 127.0.0.11:53: NXDOMAIN")
)]
#[case::broken(
    "c resolves web",
    dns(Resolution::Error("no socket".into()), None),
    fails("the probe to run", "A web via 127.0.0.11:53: error: no socket")
)]
#[case::answers_unknown(
    "c resolves web to web6",
    dns_wanting(answers(&["172.18.0.2"], 600), Some(Err("web6 has no IPv4 address".into()))),
    fails("the probe to run", "web6 has no IPv4 address")
)]
#[case::answers_unknown_but_not_resolved(
    "c resolves web to web6",
    dns_wanting(Resolution::NxDomain, Some(Err("web6 has no IPv4 address".into()))),
    fails("A web to resolve", "A web via 127.0.0.11:53: NXDOMAIN")
)]
fn resolves(
    #[case] line: &str,
    #[case] observation: Observation,
    #[case] expected: Result<(), (String, String)>,
) {
    assert_eq!(verdict(line, observation), expected);
}

#[rstest]
#[case::nxdomain_or_nodata("c does-not-resolve web", Resolution::NoRecords, Ok(()))]
#[case::nxdomain_exactly("c does-not-resolve web nxdomain", Resolution::NxDomain, Ok(()))]
#[case::nodata_not_nxdomain(
    "c does-not-resolve web nodata",
    Resolution::NxDomain,
    fails("NOERROR without records", "A web via 127.0.0.11:53: NXDOMAIN")
)]
#[case::servfail(
    "c does-not-resolve web servfail",
    Resolution::Failure { rcode: "SERVFAIL".into() },
    Ok(())
)]
#[case::refused("c does-not-resolve web refused", Resolution::Refused, Ok(()))]
#[case::timeout_not_refused(
    "c does-not-resolve web refused",
    Resolution::Timeout,
    fails("refused (nothing listening)", "A web via 127.0.0.11:53: timed out")
)]
#[case::resolved(
    "c does-not-resolve web",
    answers(&["172.18.0.2"], 600),
    fails("NXDOMAIN or an answer without records", "A web via 127.0.0.11:53: answers 172.18.0.2 (ttl 600)")
)]
fn does_not_resolve(
    #[case] line: &str,
    #[case] outcome: Resolution,
    #[case] expected: Result<(), (String, String)>,
) {
    assert_eq!(verdict(line, dns(outcome, None)), expected);
}

fn http(status: u16, body: &str, answerer: Option<&str>) -> Observation {
    Observation::Http {
        at: "10.10.0.1:8080".parse().unwrap(),
        outcome: probe::Http::Response {
            status,
            body: body.into(),
        },
        answerer: answerer.map(String::from),
    }
}

#[rstest]
#[case::ok("c gets http://h1:8080/", http(200, "drydock web 80\n", Some("drydock web 80")), Ok(()))]
#[case::ok_unknowable("c gets http://h1:8080/", http(200, "anything", None), Ok(()))]
#[case::other_listener(
    "c gets http://h1:8080/",
    http(200, "drydock db 80\n", Some("drydock web 80")),
    fails(
        "HTTP 200 from the listener answering \"drydock web 80\"",
        "GET http://10.10.0.1:8080/: HTTP 200 (body: drydock db 80)"
    )
)]
#[case::status("c gets http://h1:8080/x 404", http(404, "", None), Ok(()))]
#[case::other_status(
    "c gets http://h1:8080/",
    http(500, "", None),
    fails("HTTP 200", "GET http://10.10.0.1:8080/: HTTP 500 (body: )")
)]
fn gets(
    #[case] line: &str,
    #[case] observation: Observation,
    #[case] expected: Result<(), (String, String)>,
) {
    assert_eq!(verdict(line, observation), expected);
}

fn inspect() -> Observation {
    Observation::Inspect(json!({
        "Name": "app",
        "IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]},
        "Options": {},
        "Internal": false
    }))
}

#[rstest]
#[case::equals("network app has IPAM.Config.0.Subnet = 172.18.0.0/16", Ok(()))]
#[case::shorthand("network app subnet is 172.18.0.0/16", Ok(()))]
#[case::differs(
    "network app has Internal = true",
    fails("Internal = true", "Internal = false")
)]
#[case::matches("network app has IPAM.Config.0.Gateway ~ 172\\.18\\..*", Ok(()))]
#[case::matches_not_whole("network app has Name ~ ap", fails("Name ~ ap", "Name = app"))]
#[case::missing(
    "network app has IPAM.Config.1.Subnet = 10.0.0.0/8",
    fails(
        "IPAM.Config.1.Subnet = 10.0.0.0/8",
        "no IPAM.Config.1.Subnet in the inspect JSON"
    )
)]
#[case::lacks("network app lacks Options.com.docker.network.driver.mtu", Ok(()))]
#[case::lacks_but_has(
    "network app lacks Internal",
    fails("Internal absent", "Internal = false")
)]
#[case::lacks_misspelled(
    "network app lacks IPAMM.Config",
    fails(
        "IPAMM.Config absent, under a parent that exists",
        "the inspect JSON has no IPAMM: a misspelled path? (a `lacks` check needs the parent of what is missing)"
    )
)]
fn facts(#[case] line: &str, #[case] expected: Result<(), (String, String)>) {
    assert_eq!(verdict(line, inspect()), expected);
}

#[test]
fn container_facts_read_the_same_way() {
    let observation = Observation::Inspect(json!({"Config": {"Hostname": "web"}}));
    assert_eq!(
        verdict(
            "container web has Config.Hostname = web",
            observation.clone()
        ),
        Ok(())
    );
    assert_eq!(
        verdict("container web has Config.Hostname = db", observation),
        fails("Config.Hostname = db", "Config.Hostname = web")
    );
}

#[rstest]
#[case::contains("container web file /etc/hosts contains 'db'", "127.0.0.1 localhost\n172.18.0.3 db\n", Ok(()))]
#[case::missing(
    "container web file /etc/hosts contains 'db'",
    "127.0.0.1 localhost\n",
    fails("/etc/hosts to contain \"db\"", "127.0.0.1 localhost\n")
)]
#[case::lacks("container web file /etc/resolv.conf lacks 'ndots'", "nameserver 127.0.0.11\n", Ok(()))]
#[case::lacks_but_has(
    "container web file /etc/resolv.conf lacks 'nameserver'",
    "nameserver 127.0.0.11\n",
    fails(
        "/etc/resolv.conf not to contain \"nameserver\"",
        "nameserver 127.0.0.11\n"
    )
)]
fn files(#[case] line: &str, #[case] file: &str, #[case] expected: Result<(), (String, String)>) {
    assert_eq!(verdict(line, Observation::File(file.into())), expected);
}

fn links() -> Observation {
    Observation::Links(vec![
        ("lo".into(), 65536),
        ("eth0".into(), 1500),
        ("eth1".into(), 1450),
    ])
}

#[rstest]
#[case::are("container web interfaces are lo,eth1,eth0", Ok(()))]
#[case::are_not(
    "container web interfaces are lo,eth0",
    fails("eth0,lo", "eth0,eth1,lo")
)]
#[case::include("container web interfaces include eth1", Ok(()))]
#[case::lacks_one(
    "container web interfaces include eth2",
    fails("at least eth2", "eth0,eth1,lo")
)]
#[case::mtu("container web mtu of eth1 is 1450", Ok(()))]
#[case::other_mtu("container web mtu of eth0 is 1450", fails("MTU 1450", "MTU 1500"))]
#[case::no_such_interface(
    "container web mtu of eth9 is 1500",
    fails("an interface eth9", "none")
)]
fn interfaces(#[case] line: &str, #[case] expected: Result<(), (String, String)>) {
    assert_eq!(verdict(line, links()), expected);
}

fn listed(names: &[&str]) -> Observation {
    Observation::Names(names.iter().map(ToString::to_string).collect())
}

#[rstest]
#[case::same_set("networks are none,bridge,host", &["bridge", "host", "none"], Ok(()))]
#[case::one_more(
    "networks filtered type=custom are dev",
    &["dev", "testnet1"],
    fails("networks dev", "networks dev,testnet1")
)]
#[case::nothing("networks filtered label=x are nothing", &[], Ok(()))]
#[case::something_instead_of_nothing(
    "networks filtered label=x are nothing",
    &["dev"],
    fails("networks nothing", "networks dev")
)]
fn network_lists(
    #[case] line: &str,
    #[case] names: &[&str],
    #[case] expected: Result<(), (String, String)>,
) {
    assert_eq!(verdict(line, listed(names)), expected);
}

fn routes() -> Observation {
    Observation::Routes(vec![
        "default via 172.18.0.1 dev eth0".into(),
        "172.18.0.0/16 dev eth0".into(),
    ])
}

#[rstest]
#[case::include("container web routes include 'default via 172.18.0.1'", Ok(()))]
#[case::include_whole("container web routes include '172.18.0.0/16 dev eth0'", Ok(()))]
#[case::prefix_of_a_word(
    "container web routes include 'default via 172.18.0.10'",
    fails(
        "a route `default via 172.18.0.10`",
        "routes: default via 172.18.0.1 dev eth0; 172.18.0.0/16 dev eth0"
    )
)]
#[case::lack("container web routes lack 'default dev eth0'", Ok(()))]
#[case::lack_but_has(
    "container web routes lack 'default'",
    fails(
        "no route `default`",
        "routes: default via 172.18.0.1 dev eth0; 172.18.0.0/16 dev eth0"
    )
)]
fn route_tables(#[case] line: &str, #[case] expected: Result<(), (String, String)>) {
    assert_eq!(verdict(line, routes()), expected);
}

#[test]
fn an_observation_of_another_kind_is_drydocks_bug() {
    let (expected, observed) = verdict("c pings ext", routes()).unwrap_err();
    assert!(
        expected.starts_with("an observation for Ping"),
        "{expected}"
    );
    assert!(
        observed.ends_with("instead (a bug in drydock)"),
        "{observed}"
    );
}
