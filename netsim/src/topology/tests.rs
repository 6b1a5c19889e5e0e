use rstest::rstest;

use super::*;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/labs");

fn parse(text: &str) -> Result<Topology, TopologyError> {
    Topology::parse(text, "lab.yaml")
}

#[rstest]
#[case::one_host("one-host.yaml")]
#[case::two_hosts("two-hosts.yaml")]
#[case::three_hosts("three-hosts.yaml")]
fn examples_parse(#[case] file: &str) {
    let path = std::path::Path::new(EXAMPLES).join(file);
    let topology = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    insta::assert_yaml_snapshot!(file, topology);
}

#[test]
fn addresses_are_allocated_lowest_free_first_around_explicit_ones() {
    let topology = parse(
        "segments:\n  lan: {subnet: 10.0.0.0/29, subnet6: 'fd00::/64'}\nhosts:\n  a: {interfaces: [{segment: lan}]}\n  b: {interfaces: [{segment: lan, address: 10.0.0.2}]}\n  c: {interfaces: [{segment: lan}]}\n",
    )
    .unwrap();
    let ips: Vec<String> = topology
        .hosts
        .iter()
        .map(|h| {
            format!(
                "{} {}",
                h.interfaces[0].address,
                h.interfaces[0].address6.unwrap()
            )
        })
        .collect();
    assert_eq!(
        ips,
        [
            "10.0.0.1/29 fd00::1/64",
            "10.0.0.2/29 fd00::2/64",
            "10.0.0.3/29 fd00::3/64"
        ]
    );
    assert_eq!(
        topology.hosts[2].interfaces[0].mac.to_string(),
        "02:d0:0a:00:00:03"
    );
}

#[test]
fn hosts_route_through_the_first_router_on_their_segments() {
    let text = std::fs::read_to_string(format!("{EXAMPLES}/three-hosts.yaml")).unwrap();
    let topology = parse(&text).unwrap();
    let routes = |h: &str| -> Vec<String> {
        topology
            .host(h)
            .unwrap()
            .routes
            .iter()
            .map(|r| format!("{} via {}", r.to, r.via))
            .collect()
    };
    assert_eq!(routes("h1"), ["0.0.0.0/0 via 10.0.1.1"]);
    assert_eq!(routes("h3"), ["0.0.0.0/0 via 10.0.2.1"]);
    assert!(routes("r1").is_empty());
}

#[test]
fn explicit_routes_override_the_automatic_default() {
    let topology = parse(
        "segments:\n  a: {subnet: 10.0.1.0/24}\nhosts:\n  r: {router: true, interfaces: [{segment: a}]}\n  h:\n    interfaces: [{segment: a}]\n    routes: [{to: default, via: 10.0.1.9}, {to: 10.9.0.0/16, via: 10.0.1.1}]\n",
    )
    .unwrap();
    let routes: Vec<String> = topology.hosts[1]
        .routes
        .iter()
        .map(|r| format!("{} via {}", r.to, r.via))
        .collect();
    assert_eq!(
        routes,
        ["0.0.0.0/0 via 10.0.1.9", "10.9.0.0/16 via 10.0.1.1"]
    );
}

/// Every malformed file gets `lab.yaml:line:column:` and a message saying what was expected.
#[rstest]
#[case::bad_indentation(
    "hosts:\n  h1:\n   - segment: a\n",
    "lab.yaml:3:4:",
    "expected mapping"
)]
#[case::unknown_field(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a}], rooter: true}\n",
    "lab.yaml:4:36:",
    "unknown field `rooter`"
)]
#[case::missing_hosts("name: x\n", "lab.yaml:1:1:", "missing field `hosts`")]
#[case::duplicate_host(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n  h1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:5:3:",
    "duplicate mapping key: h1"
)]
#[case::unknown_segment(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1:\n    interfaces:\n      - segment: b\n",
    "lab.yaml:6:18:",
    "unknown segment \"b\": expected one of [\"a\"]"
)]
#[case::bad_subnet(
    "segments:\n  a: {subnet: 10.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:2:15:",
    "not an IPv4 subnet"
)]
#[case::host_bits(
    "segments:\n  a: {subnet: 10.0.0.1/24}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:2:15:",
    "did you mean 10.0.0.0/24?"
)]
#[case::overlap(
    "segments:\n  a: {subnet: 10.0.0.0/16}\n  b: {subnet: 10.0.3.0/24}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:3:15:",
    "overlaps segment \"a\""
)]
#[case::outside_subnet(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a, address: 10.0.1.5}]}\n",
    "lab.yaml:4:43:",
    "not a host address of segment \"a\""
)]
#[case::address_in_use(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a, address: 10.0.0.5}]}\n  h2: {interfaces: [{segment: a, address: 10.0.0.5}]}\n",
    "lab.yaml:5:43:",
    "already used"
)]
#[case::wrong_prefix(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a, address: 10.0.0.5/16}]}\n",
    "lab.yaml:4:43:",
    "differs from the segment's /24"
)]
#[case::ipv6_without_subnet6(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a, address6: 'fd00::5'}]}\n",
    "lab.yaml:4:44:",
    "has no subnet6"
)]
#[case::no_interfaces(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: []}\n",
    "lab.yaml:4:20:",
    "needs at least one interface"
)]
#[case::bad_host_name(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h/1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:4:3:",
    "invalid host name \"h/1\""
)]
#[case::long_segment_name(
    "segments:\n  a-very-long-segment: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a-very-long-segment}]}\n",
    "lab.yaml:2:3:",
    "expected 1 to 15 letters"
)]
#[case::subnet_full(
    "segments:\n  a: {subnet: 10.0.0.0/30}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n  h2: {interfaces: [{segment: a}]}\n  h3: {interfaces: [{segment: a}]}\n",
    "lab.yaml:6:31:",
    "no free address left for h3/eth0"
)]
#[case::via_not_connected(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1:\n    interfaces: [{segment: a}]\n    routes: [{to: default, via: 10.9.9.9}]\n",
    "lab.yaml:6:33:",
    "not on a segment host \"h1\" is connected to"
)]
#[case::bad_mtu(
    "segments:\n  a: {subnet: 10.0.0.0/24, mtu: 20}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:2:33:",
    "expected 68 to 65535"
)]
#[case::not_a_number(
    "segments:\n  a: {subnet: 10.0.0.0/24, mtu: big}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:2:33:",
    "invalid u32"
)]
#[case::reserved_segment_name(
    "segments:\n  p0-eth0: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: p0-eth0}]}\n",
    "lab.yaml:2:3:",
    "segment name \"p0-eth0\" is reserved"
)]
#[case::route_host_bits(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1:\n    interfaces: [{segment: a}]\n    routes: [{to: 10.9.9.9/24, via: 10.0.0.9}]\n",
    "lab.yaml:6:19:",
    "did you mean 10.9.9.0/24?"
)]
#[case::via_own_address(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1:\n    interfaces: [{segment: a}]\n    routes: [{to: default, via: 10.0.0.1}]\n",
    "lab.yaml:6:33:",
    "own address"
)]
#[case::via_network_address(
    "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1:\n    interfaces: [{segment: a}]\n    routes: [{to: default, via: 10.0.0.0}]\n",
    "lab.yaml:6:33:",
    "network or broadcast address"
)]
#[case::ipv6_small_mtu(
    "segments:\n  a: {subnet: 10.0.0.0/24, subnet6: 'fd00::/64', mtu: 1000}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n",
    "lab.yaml:2:55:",
    "too small for IPv6"
)]
#[case::ipv6_subnet_full(
    "segments:\n  a: {subnet: 10.0.0.0/24, subnet6: 'fd00::/127'}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n  h2: {interfaces: [{segment: a}]}\n",
    "lab.yaml:2:37:",
    "leaves no room for hosts"
)]
#[case::ipv6_subnet_exhausted(
    "segments:\n  a: {subnet: 10.0.0.0/24, subnet6: 'fd00::/126'}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n  h2: {interfaces: [{segment: a}]}\n  h3: {interfaces: [{segment: a}]}\n  h4: {interfaces: [{segment: a}]}\n",
    "lab.yaml:7:31:",
    "no free IPv6 address left for h4/eth0"
)]
#[case::no_hosts("hosts: {}\n", "lab.yaml:1:8:", "at least one host")]
fn malformed_files_are_located(#[case] text: &str, #[case] at: &str, #[case] message: &str) {
    let error = parse(text).expect_err("the file is malformed").to_string();
    assert!(error.starts_with(at), "expected {at:?}, got:\n{error}");
    assert!(error.contains(message), "expected {message:?} in:\n{error}");
}

#[test]
fn errors_show_the_offending_line_with_a_caret() {
    let error = parse(
        "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: b}]}\n",
    )
    .unwrap_err();
    insta::assert_snapshot!(error.to_string());
}

#[test]
fn the_file_name_must_make_a_valid_lab_name_without_a_name_field() {
    let text =
        "segments:\n  a: {subnet: 10.0.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: a}]}\n";
    let error = Topology::parse(text, "dir/my.lab.yaml")
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("dir/my.lab.yaml:1:1: the file name gives the lab its name, but invalid lab name \"my.lab\""), "{error}");
    assert_eq!(
        Topology::parse(text, "dir/my-lab.yaml").unwrap().name,
        "my-lab"
    );
    assert!(check_lab_name("a b").is_err());
}
