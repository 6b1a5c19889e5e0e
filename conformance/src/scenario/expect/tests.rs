use rstest::rstest;

use super::*;
use crate::scenario::words::split;

fn parse_line(line: &str) -> Result<Expectation, ExpectError> {
    parse(&split(line).unwrap())
}

fn question(name: Asked, kind: RecordKind, proto: Proto) -> Question {
    Question { name, kind, proto }
}

fn named(name: &str) -> Asked {
    Asked::Name(name.into())
}

fn endpoint(name: &str, network: Option<&str>) -> Endpoint {
    Endpoint {
        name: name.into(),
        network: network.map(String::from),
    }
}

#[rstest]
#[case("db reaches web:80/tcp", Expectation::Reach { from: "db".into(), to: endpoint("web", None), port: Port::Number(80), proto: Proto::Tcp, fails: None })]
#[case("db cannot-reach web@net2:53/udp refused", Expectation::Reach { from: "db".into(), to: endpoint("web", Some("net2")), port: Port::Number(53), proto: Proto::Udp, fails: Some(Some(Failure::Refused)) })]
#[case("h1 cannot-reach [fd00::2]:80", Expectation::Reach { from: "h1".into(), to: endpoint("fd00::2", None), port: Port::Number(80), proto: Proto::Tcp, fails: Some(None) })]
#[case("a pings b", Expectation::Ping { from: "a".into(), to: endpoint("b", None), succeeds: true, size: None, df: false })]
#[case("a pings b size 1422 df", Expectation::Ping { from: "a".into(), to: endpoint("b", None), succeeds: true, size: Some(1422), df: true })]
#[case("a cannot-ping b@ov1 df size 1423", Expectation::Ping { from: "a".into(), to: endpoint("b", Some("ov1")), succeeds: false, size: Some(1423), df: true })]
#[case("a resolves web to 172.18.0.2,db", Expectation::Resolve { from: "a".into(), question: Question::a("web"), answers: Some(vec![endpoint("172.18.0.2", None), endpoint("db", None)]), names: None, ttl: None })]
#[case("a resolves web", Expectation::Resolve { from: "a".into(), question: Question::a("web"), answers: None, names: None, ttl: None })]
#[case("a resolves web to fd00::2", Expectation::Resolve { from: "a".into(), question: question(named("web"), RecordKind::Aaaa, Proto::Udp), answers: Some(vec![endpoint("fd00::2", None)]), names: None, ttl: None })]
#[case("a resolves web to web@v6 as AAAA", Expectation::Resolve { from: "a".into(), question: question(named("web"), RecordKind::Aaaa, Proto::Udp), answers: Some(vec![endpoint("web", Some("v6"))]), names: None, ttl: None })]
#[case("a resolves WEB to web ttl 600 as a over tcp", Expectation::Resolve { from: "a".into(), question: question(named("WEB"), RecordKind::A, Proto::Tcp), answers: Some(vec![endpoint("web", None)]), names: None, ttl: Some(600) })]
#[case("a resolves web ttl 600", Expectation::Resolve { from: "a".into(), question: Question::a("web"), answers: None, names: None, ttl: Some(600) })]
#[case("a resolves web over udp", Expectation::Resolve { from: "a".into(), question: Question::a("web"), answers: None, names: None, ttl: None })]
#[case("a resolves id(web) to web", Expectation::Resolve { from: "a".into(), question: question(Asked::ShortId("web".into()), RecordKind::A, Proto::Udp), answers: Some(vec![endpoint("web", None)]), names: None, ttl: None })]
#[case("a resolves web@net to web.net,Web.net. as PTR", Expectation::Resolve { from: "a".into(), question: question(Asked::Reverse(endpoint("web", Some("net"))), RecordKind::Ptr, Proto::Udp), answers: None, names: Some(vec!["web.net".into(), "Web.net.".into()]), ttl: None })]
#[case("a resolves 172.18.0.2 as PTR over tcp", Expectation::Resolve { from: "a".into(), question: question(Asked::Reverse(endpoint("172.18.0.2", None)), RecordKind::Ptr, Proto::Tcp), answers: None, names: None, ttl: None })]
#[case("a does-not-resolve web", Expectation::NoResolve { from: "a".into(), question: Question::a("web"), how: Unresolved::NoAddress })]
#[case("a does-not-resolve web nxdomain", Expectation::NoResolve { from: "a".into(), question: Question::a("web"), how: Unresolved::NxDomain })]
#[case("a does-not-resolve web timeout", Expectation::NoResolve { from: "a".into(), question: Question::a("web"), how: Unresolved::Timeout })]
#[case("a does-not-resolve web refused", Expectation::NoResolve { from: "a".into(), question: Question::a("web"), how: Unresolved::Refused })]
#[case("a does-not-resolve web servfail", Expectation::NoResolve { from: "a".into(), question: Question::a("web"), how: Unresolved::ServFail })]
#[case("a does-not-resolve web as MX over tcp nodata", Expectation::NoResolve { from: "a".into(), question: question(named("web"), RecordKind::Mx, Proto::Tcp), how: Unresolved::NoData })]
#[case("a resolves web as AAAA over tcp ttl 600 to web@v6", Expectation::Resolve { from: "a".into(), question: question(named("web"), RecordKind::Aaaa, Proto::Tcp), answers: Some(vec![endpoint("web", Some("v6"))]), names: None, ttl: Some(600) })]
#[case("a does-not-resolve web nodata as MX", Expectation::NoResolve { from: "a".into(), question: question(named("web"), RecordKind::Mx, Proto::Udp), how: Unresolved::NoData })]
#[case("a does-not-resolve web as aaaa over tcp", Expectation::NoResolve { from: "a".into(), question: question(named("web"), RecordKind::Aaaa, Proto::Tcp), how: Unresolved::NoAddress })]
#[case("a does-not-resolve 10.9.0.1 nxdomain as PTR", Expectation::NoResolve { from: "a".into(), question: question(Asked::Reverse(endpoint("10.9.0.1", None)), RecordKind::Ptr, Proto::Udp), how: Unresolved::NxDomain })]
#[case("a does-not-resolve id(db) over tcp", Expectation::NoResolve { from: "a".into(), question: question(Asked::ShortId("db".into()), RecordKind::A, Proto::Tcp), how: Unresolved::NoAddress })]
#[case("ext gets http://h1:8080/x 404", Expectation::Http { from: "ext".into(), to: endpoint("h1", None), port: Port::Number(8080), path: "/x".into(), status: 404 })]
#[case("network my-net subnet is 172.18.0.0/16", Expectation::Network { network: "my-net".into(), host: None, path: "IPAM.Config.0.Subnet".into(), value: Value::Equals("172.18.0.0/16".into()) })]
#[case("network n on h2 has Options.x = y", Expectation::Network { network: "n".into(), host: Some("h2".into()), path: "Options.x".into(), value: Value::Equals("y".into()) })]
#[case("container web ip on my-net is 172.18.0.2", Expectation::Container { container: "web".into(), path: "NetworkSettings.Networks.my-net.IPAddress".into(), value: Value::Equals("172.18.0.2".into()) })]
#[case("container web file /etc/resolv.conf contains 'nameserver 127.0.0.11'", Expectation::File { container: "web".into(), path: "/etc/resolv.conf".into(), text: "nameserver 127.0.0.11".into(), contains: true })]
#[case("container web interfaces are lo,eth0", Expectation::Interfaces { container: "web".into(), names: vec!["lo".into(), "eth0".into()], exact: true })]
#[case("container web interfaces include eth1", Expectation::Interfaces { container: "web".into(), names: vec!["eth1".into()], exact: false })]
#[case("networks are bridge,host", Expectation::Networks { host: None, filters: vec![], names: vec!["bridge".into(), "host".into()] })]
#[case("networks on h2 filtered type=custom,label=a=b are nothing", Expectation::Networks { host: Some("h2".into()), filters: vec!["type=custom".into(), "label=a=b".into()], names: vec![] })]
#[case("network n lacks Options.x", Expectation::Network { network: "n".into(), host: None, path: "Options.x".into(), value: Value::Absent })]
#[case("container web mtu of eth0 is 1450", Expectation::Mtu { container: "web".into(), iface: "eth0".into(), mtu: 1450 })]
#[case("container web routes include 'default dev eth0'", Expectation::Route { container: "web".into(), route: "default dev eth0".into(), present: true, ipv6: false })]
#[case("container web routes6 lack 'default via fd00::1'", Expectation::Route { container: "web".into(), route: "default via fd00::1".into(), present: false, ipv6: true })]
#[case("ext reaches h1:web->80/udp", Expectation::Reach { from: "ext".into(), to: endpoint("h1", None), port: Port::Published { container: "web".into(), port: 80 }, proto: Proto::Udp, fails: None })]
#[case("container web has NetworkSettings.Ports.80/tcp.0.HostPort ~ ^[0-9]{5}$", Expectation::Container { container: "web".into(), path: "NetworkSettings.Ports.80/tcp.0.HostPort".into(), value: Value::Matches("^[0-9]{5}$".into()) })]
fn lines_parse(#[case] line: &str, #[case] expected: Expectation) {
    assert_eq!(parse_line(line).unwrap(), expected);
}

#[rstest]
#[case("db connects web:80", 1, "is not a verb here")]
#[case("db reaches web", 2, "expected TARGET:PORT[/tcp|/udp]")]
#[case("db reaches web:80/sctp", 2, "expected TARGET:PORT")]
#[case(
    "db cannot-reach web:80 dropped",
    3,
    "expected refused, timeout or unreachable"
)]
#[case("db reaches web:80 now", 3, "unexpected \"now\" at the end")]
#[case("db", 1, "the line ends too early")]
#[case("network n colour is blue", 2, "\"colour\" is not a known field")]
#[case("networks filtered typecustom are x", 2, "a filter is KEY=VALUE")]
#[case("networks list x", 1, "expected `networks")]
#[case("container c mtu of eth0 is big", 6, "expected an MTU number")]
#[case("container c has X ~ (", 5, "not a regular expression")]
#[case("a reaches h1:->80", 2, "expected TARGET:PORT")]
#[case(
    "a does-not-resolve web notfound",
    3,
    "\"notfound\": expected nxdomain, nodata, servfail, timeout, refused, `as A|AAAA|PTR|MX`, `over udp|tcp` or nothing"
)]
#[case(
    "a does-not-resolve web nxdomain now",
    4,
    "\"now\": expected nxdomain, nodata"
)]
#[case(
    "a does-not-resolve web nxdomain timeout",
    4,
    "\"timeout\": a second outcome, where one is allowed"
)]
#[case("a does-not-resolve web to web", 3, "\"to\": expected nxdomain")]
#[case(
    "a does-not-resolve web as TXT",
    4,
    "\"TXT\": expected A, AAAA, PTR or MX"
)]
#[case("a does-not-resolve web as", 4, "the line ends too early")]
#[case("a does-not-resolve web over sctp", 4, "\"sctp\": expected udp or tcp")]
#[case(
    "a does-not-resolve web over tcp as MX over udp",
    7,
    "\"over\": a second `over`, where one is allowed"
)]
#[case("a resolves web to", 4, "the line ends too early")]
#[case("a resolves web ttl soon", 4, "\"soon\" is not a TTL in seconds")]
#[case("a resolves web ttl -1", 4, "is not a TTL in seconds")]
#[case(
    "a resolves web as mx over tcp nxdomain",
    7,
    "\"nxdomain\": expected `to ANSWER[,ANSWER...]`, `ttl N`, `as A|AAAA|PTR|MX`, `over udp|tcp` or nothing"
)]
#[case("a resolves web to web to db", 5, "a second `to`")]
#[case("a resolves web to web at once", 5, "\"at\": expected")]
#[case("a resolves web@n to db@n as PTR", 4, "PTR answers are domain names")]
#[case("a resolves web as MX to a,,b", 6, "MX answers are domain names")]
#[case("a resolves id(web to web", 2, "expected id(CONTAINER)")]
#[case("a resolves id() to web", 2, "expected id(CONTAINER)")]
#[case("a does-not-resolve id(web) as PTR", 2, "not id(CONTAINER)")]
#[case("a pings b size", 4, "expected the echo data's size")]
#[case("a pings b size 70000", 4, "expected a size in bytes, 0 to 65507")]
#[case("a pings b df df", 4, "a second `df`")]
#[case("a pings b size 1 size 2", 5, "a second `size`")]
#[case(
    "a pings b loudly",
    3,
    "\"loudly\": expected `size N`, `df` or nothing"
)]
fn bad_lines_point_at_their_word(#[case] line: &str, #[case] word: usize, #[case] message: &str) {
    let error = parse_line(line).unwrap_err();
    assert!(error.message.contains(message), "{error:?}");
    assert_eq!(error.word, word, "{error:?}");
}

#[test]
fn regexes_match_whole_values() {
    let www = whole_match("www").unwrap();
    assert!(www.is_match("www"));
    assert!(!www.is_match("www2"));
    assert!(!www.is_match(r#"["www","frontend"]"#));
    let either = whole_match("a|b").unwrap();
    assert!(either.is_match("b"));
    assert!(!either.is_match("ab"));
    assert!(whole_match("(").is_err());
}

fn within_of(line: &str) -> Result<(usize, Option<std::time::Duration>), ExpectError> {
    within(&split(line).unwrap())
}

#[rstest]
#[case("a resolves b within 10s", 3, Some(10_000))]
#[case("a does-not-resolve b nxdomain within 1.5s", 4, Some(1_500))]
#[case("a pings b within 250ms", 3, Some(250))]
#[case("a pings b", 3, None)]
fn within_splits_off_the_end(
    #[case] line: &str,
    #[case] words: usize,
    #[case] millis: Option<u64>,
) {
    match within_of(line) {
        Ok((n, duration)) => {
            assert_eq!(n, words, "{line}");
            assert_eq!(duration, millis.map(std::time::Duration::from_millis));
        }
        Err(e) => assert_eq!(millis, None, "{line}: {e:?}"),
    }
}

#[rstest]
#[case("a pings b within", 4, "expected how long after `within`")]
#[case(
    "a pings b within soon",
    4,
    "\"soon\": expected a duration such as 10s"
)]
#[case("a pings b within 10", 4, "expected a duration")]
#[case("a pings b within 0s", 4, "expected more than 0 and at most 300 s")]
#[case("a pings b within 301s", 4, "at most 300 s")]
#[case("a pings b within -1s", 4, "expected a duration")]
fn bad_within_clauses_point_at_their_word(
    #[case] line: &str,
    #[case] word: usize,
    #[case] message: &str,
) {
    let error = within_of(line).unwrap_err();
    assert!(error.message.contains(message), "{error:?}");
    assert_eq!(error.word, word, "{error:?}");
}

#[test]
fn a_within_clause_leaves_the_expectation_to_the_grammar() {
    let words = split("c1 does-not-resolve c3 within 30s").unwrap();
    let (n, duration) = within(&words).unwrap();
    assert_eq!(duration, Some(std::time::Duration::from_secs(30)));
    assert_eq!(
        parse(&words[..n]).unwrap(),
        Expectation::NoResolve {
            from: "c1".into(),
            question: Question::a("c3"),
            how: Unresolved::NoAddress
        }
    );
}
