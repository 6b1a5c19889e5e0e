use super::*;

fn net4(text: &str) -> Ipv4Network {
    text.parse().unwrap()
}

fn ip4(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

/// A built topology equals the one its YAML twin parses to.
#[test]
fn built_topologies_equal_their_files() {
    let cases = [
        (
            Topology::builder("lab")
                .segment("lan", net4("10.10.0.0/24"))
                .host_at("h1", ip4("10.10.0.5"))
                .host("h2")
                .host("h3")
                .build(),
            "segments:\n  lan: {subnet: 10.10.0.0/24}\nhosts:\n  h1: {interfaces: [{segment: lan, address: 10.10.0.5}]}\n  h2: {interfaces: [{segment: lan}]}\n  h3: {interfaces: [{segment: lan}]}\n",
        ),
        (
            Topology::builder("lab")
                .segment("lan", net4("10.0.0.0/29"))
                .subnet6("fd00::/64".parse().unwrap())
                .host("a")
                .host_at6("b", ip4("10.0.0.2"), "fd00::9".parse().unwrap())
                .build(),
            "segments:\n  lan: {subnet: 10.0.0.0/29, subnet6: 'fd00::/64'}\nhosts:\n  a: {interfaces: [{segment: lan}]}\n  b: {interfaces: [{segment: lan, address: 10.0.0.2, address6: 'fd00::9'}]}\n",
        ),
        (
            Topology::builder("lab")
                .segment("a", net4("10.1.0.0/24"))
                .host("x")
                .host("z")
                .segment("b", net4("10.2.0.0/24"))
                .host("y")
                .host("z")
                .build(),
            "segments:\n  a: {subnet: 10.1.0.0/24}\n  b: {subnet: 10.2.0.0/24}\nhosts:\n  x: {interfaces: [{segment: a}]}\n  z: {interfaces: [{segment: a}, {segment: b}]}\n  y: {interfaces: [{segment: b}]}\n",
        ),
        (
            Topology::builder("lab")
                .segment("lan", net4("10.10.0.0/24"))
                .host("h1")
                .router_at("r1", ip4("10.10.0.254"))
                .segment("far", net4("10.10.1.0/24"))
                .router_at("r1", ip4("10.10.1.254"))
                .host("h3")
                .route(
                    "h1",
                    "10.10.1.0/24".parse().unwrap(),
                    "10.10.0.254".parse().unwrap(),
                )
                .build(),
            "segments:\n  lan: {subnet: 10.10.0.0/24}\n  far: {subnet: 10.10.1.0/24}\nhosts:\n  h1: {interfaces: [{segment: lan}], routes: [{to: 10.10.1.0/24, via: 10.10.0.254}]}\n  r1: {router: true, interfaces: [{segment: lan, address: 10.10.0.254}, {segment: far, address: 10.10.1.254}]}\n  h3: {interfaces: [{segment: far}]}\n",
        ),
    ];
    for (built, yaml) in cases {
        assert_eq!(built.unwrap(), Topology::parse(yaml, "lab.yaml").unwrap());
    }
}

/// Behind a router, hosts get their default route through it (and keep the routes given).
#[test]
fn routers_give_default_routes() {
    let topology = Topology::builder("lab")
        .segment("lan", net4("10.10.0.0/24"))
        .host("h1")
        .router_at("r1", ip4("10.10.0.254"))
        .segment("far", net4("10.10.1.0/24"))
        .router_at("r1", ip4("10.10.1.254"))
        .host("h3")
        .build()
        .unwrap();
    let routes = |host: &str| -> Vec<String> {
        (topology.host(host).unwrap().routes.iter())
            .map(|r| format!("{} via {}", r.to, r.via))
            .collect()
    };
    assert_eq!(routes("h1"), ["0.0.0.0/0 via 10.10.0.254"]);
    assert_eq!(routes("h3"), ["0.0.0.0/0 via 10.10.1.254"]);
    assert_eq!(routes("r1"), Vec::<String>::new());
    assert!(topology.host("r1").unwrap().router);
    assert_eq!(
        topology.host("h3").unwrap().interfaces[0]
            .address
            .to_string(),
        "10.10.1.1/24"
    );
    let error = Topology::builder("lab")
        .segment("lan", net4("10.10.0.0/24"))
        .host("h1")
        .route(
            "h9",
            "10.1.0.0/24".parse().unwrap(),
            "10.10.0.1".parse().unwrap(),
        )
        .build()
        .unwrap_err();
    assert!(
        error.contains("host \"h9\", which is on no segment"),
        "{error}"
    );
}

#[test]
fn errors_name_the_code_not_a_file() {
    let lan = || Topology::builder("lab").segment("lan", net4("10.0.0.0/24"));
    let cases = [
        (
            lan().host_at("h1", ip4("10.0.1.1")).build(),
            "topology built in code: 10.0.1.1 is not a host address of segment \"lan\" (10.0.0.0/24)",
        ),
        (
            lan()
                .host_at("h1", ip4("10.0.0.1"))
                .host_at("h2", ip4("10.0.0.1"))
                .build(),
            "topology built in code: 10.0.0.1 is already used on segment \"lan\"",
        ),
        (
            lan().segment("lan", net4("10.9.0.0/24")).host("h1").build(),
            "topology built in code: segment \"lan\" is defined twice",
        ),
        (
            lan().build(),
            "topology built in code: a lab needs at least one host",
        ),
        (
            Topology::builder("lab")
                .host("h1")
                .segment("lan", net4("10.0.0.0/24"))
                .build(),
            "topology built in code: host \"h1\" comes before any segment",
        ),
        (
            lan()
                .host_at6("h1", ip4("10.0.0.1"), "fd00::1".parse().unwrap())
                .build(),
            "topology built in code: segment \"lan\" has no subnet6, so its interfaces cannot have an IPv6 address",
        ),
    ];
    for (built, message) in cases {
        assert_eq!(built.unwrap_err(), message);
    }
    let error = Topology::builder("a lab")
        .segment("lan", net4("10.0.0.0/24"))
        .host("h")
        .build();
    assert!(
        error
            .unwrap_err()
            .starts_with("topology built in code: invalid lab name \"a lab\""),
    );
}
