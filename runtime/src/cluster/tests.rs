//! The cluster over the in-process store: what every store must give the same way.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;

fn block<T>(future: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(future)
}

fn network(id: &str, name: &str) -> NetworkRecord {
    NetworkRecord {
        id: id.into(),
        name: name.into(),
        driver: "overlay".into(),
        created: String::new(),
        subnet: "0.0.0.0/0".parse().unwrap(),
        ip_range: None,
        gateway: "0.0.0.0".parse().unwrap(),
        vni: 0,
        attachable: true,
        internal: false,
        ingress: false,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        user_subnet: false,
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn networks_take_subnets_and_vnis_in_turn_and_names_once() {
    let cluster = Cluster::new(Arc::new(MemoryStore::new()));
    let ingress = block(cluster.create_network(network("i", "ingress"))).unwrap();
    let first = block(cluster.create_network(network("a", "ov1"))).unwrap();
    let second = block(cluster.create_network(network("b", "ov2"))).unwrap();
    assert_eq!(
        [ingress.subnet, first.subnet, second.subnet].map(|s| s.to_string()),
        ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
    );
    assert_eq!([ingress.vni, first.vni, second.vni], [4096, 4097, 4098]);
    assert_eq!(first.gateway, ip("10.0.1.1"));
    let again = block(cluster.create_network(network("c", "ov1")));
    assert_eq!(again.unwrap_err(), "network with name ov1 already exists");
    let mut overlapping = network("d", "ov3");
    overlapping.subnet = "10.0.1.128/25".parse().unwrap();
    overlapping.user_subnet = true;
    let refused = block(cluster.create_network(overlapping));
    assert_eq!(
        refused.unwrap_err(),
        "Pool overlaps with other one on this address space"
    );
    // The refused network's name is free again.
    assert!(block(cluster.create_network(network("e", "ov3"))).is_ok());
}

#[test]
fn addresses_go_in_turn_and_are_not_handed_out_twice() {
    let cluster = Cluster::new(Arc::new(MemoryStore::new()));
    let net = block(cluster.create_network(network("a", "ov1"))).unwrap();
    let next = || block(cluster.allocate_address(&net, None, "x")).unwrap();
    let (one, two) = (next(), next());
    assert_eq!((one, two), (ip("10.0.0.2"), ip("10.0.0.3")));
    block(cluster.release_address(&net.id, one)).unwrap();
    assert_eq!(
        next(),
        ip("10.0.0.4"),
        "serial: a freed address waits its turn"
    );
    let wanted = block(cluster.allocate_address(&net, Some(ip("10.0.0.9")), "y"));
    assert_eq!(wanted, Ok(ip("10.0.0.9")));
    let taken = block(cluster.allocate_address(&net, Some(ip("10.0.0.9")), "z"));
    assert_eq!(taken.unwrap_err(), "Address already in use");
}

#[test]
fn endpoints_go_with_their_nodes_lease() {
    let cluster = Cluster::new(Arc::new(MemoryStore::new()));
    let lease = block(cluster.store().grant(Duration::from_secs(1))).unwrap();
    let endpoint = EndpointRecord {
        id: "e1".into(),
        network: "a".into(),
        node: "n1".into(),
        vtep: ip("10.10.0.2"),
        name: "web".into(),
        aliases: vec!["www".into()],
        ip: ip("10.0.1.3"),
        mac: [2, 0x42, 10, 0, 1, 3],
        load_balancer: false,
    };
    let mut watch = block(cluster.watch_endpoints("a")).unwrap();
    block(cluster.add_endpoint(&endpoint, lease.id)).unwrap();
    assert_eq!(
        block(cluster.endpoints("a")).unwrap(),
        std::slice::from_ref(&endpoint)
    );
    drop(lease);
    assert!(block(cluster.endpoints("a")).unwrap().is_empty());
    let Some(Event::Put { key, value }) = watch.events.try_recv().ok() else {
        panic!("no put")
    };
    assert_eq!(Cluster::endpoint_of(&key, &value), Ok(endpoint));
    assert!(matches!(watch.events.try_recv(), Ok(Event::Delete { .. })));
}

#[test]
fn a_network_in_use_somewhere_stays() {
    let cluster = Cluster::new(Arc::new(MemoryStore::new()));
    let lease = block(cluster.store().grant(Duration::from_secs(1))).unwrap();
    let net = block(cluster.create_network(network("a", "ov1"))).unwrap();
    let on = |load_balancer| EndpointRecord {
        id: format!("e{load_balancer}"),
        network: net.id.clone(),
        node: "n1".into(),
        vtep: ip("10.10.0.2"),
        name: String::new(),
        aliases: Vec::new(),
        ip: ip("10.0.0.2"),
        mac: [0; 6],
        load_balancer,
    };
    block(cluster.add_endpoint(&on(true), lease.id)).unwrap();
    block(cluster.add_endpoint(&on(false), lease.id)).unwrap();
    assert!(block(cluster.remove_network(&net)).is_err());
    block(cluster.remove_endpoint(&net.id, "efalse")).unwrap();
    block(cluster.remove_network(&net)).unwrap();
    assert_eq!(block(cluster.network("ov1")).unwrap(), None);
    assert!(block(cluster.create_network(network("b", "ov1"))).is_ok());
}
