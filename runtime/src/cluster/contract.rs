//! What every [`Store`] must do, and what the [`Cluster`] over it must then do, as async
//! checks that panic with what went wrong: run on the in-process store by this crate's tests,
//! and on etcd by the conformance crate's (which can start an etcd in a lab). Each check takes
//! [`Stores`]: two connections to one store, so that what one writes the other must see.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::memory::MemoryStore;
use super::store::{Event, Store, Watch};
use super::{Cluster, EndpointRecord, NetworkRecord};

/// Two connections to one store, and its timing.
#[derive(Debug, Clone)]
pub struct Stores {
    /// One connection.
    pub a: Arc<dyn Store>,
    /// Another (from another network namespace, for a remote store).
    pub b: Arc<dyn Store>,
    /// The time to live the checks ask leases for.
    pub ttl: Duration,
    /// How long the keys of a dropped lease may outlive it.
    pub lapse: Duration,
}

impl Stores {
    /// One in-process store, twice: a dropped lease ends at once (its delete event is there
    /// before `drop` returns; the lapse only bounds how long measuring that may take).
    pub fn in_process() -> Self {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Self {
            a: store.clone(),
            b: store,
            ttl: Duration::from_secs(1),
            lapse: Duration::from_millis(10),
        }
    }
}

/// How long an event that must come may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

async fn ok<T, E: Debug>(what: &str, result: impl Future<Output = Result<T, E>>) -> T {
    result.await.unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

/// The next event of `watch`, which must come within [`EVENT_TIMEOUT`].
pub async fn next_event(watch: &mut Watch, what: &str) -> Event {
    match tokio::time::timeout(EVENT_TIMEOUT, watch.events.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("{what}: the watch ended"),
        Err(_) => panic!("{what}: no event within {EVENT_TIMEOUT:?}"),
    }
}

fn put(key: &str, value: &str) -> Event {
    Event::Put {
        key: key.into(),
        value: value.into(),
    }
}

/// Creating races: of many `swap(key, None, ..)` at once, from both connections, exactly one
/// wins; a swap from a stale value loses, from the current one wins; of many swaps from the
/// same value at once, exactly one wins.
pub async fn swaps_create_and_replace_once(stores: &Stores) {
    let swaps = (0..8).map(|i| {
        let store = if i % 2 == 0 { &stores.a } else { &stores.b };
        store.swap("ipam/n/10.0.1.2", None, format!("c{i}").into_bytes(), None)
    });
    let won: Vec<bool> = join_all(swaps)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "creations won: {won:?}"
    );
    let winner = format!("c{}", won.iter().position(|w| *w).unwrap()).into_bytes();
    let stored = ok("get", stores.b.get("ipam/n/10.0.1.2")).await;
    assert_eq!(stored.as_ref(), Some(&winner), "the winner's value");

    let stale = Some(b"stale".to_vec());
    let swap = stores.a.swap("ipam/n/10.0.1.2", stale, b"x".to_vec(), None);
    assert!(!ok("swap from a stale value", swap).await);
    let missing = stores
        .a
        .swap("nothing/here", Some(winner.clone()), b"x".to_vec(), None);
    assert!(!ok("swap from a value on a missing key", missing).await);

    let swaps = (0..8).map(|i| {
        let store = if i % 2 == 0 { &stores.a } else { &stores.b };
        let value = format!("r{i}").into_bytes();
        store.swap("ipam/n/10.0.1.2", Some(winner.clone()), value, None)
    });
    let won: Vec<bool> = join_all(swaps)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "replacements won: {won:?}"
    );

    ok("delete", stores.b.delete("ipam/n/10.0.1.2")).await;
    ok(
        "delete of a missing key",
        stores.b.delete("ipam/n/10.0.1.2"),
    )
    .await;
    let again = stores
        .a
        .swap("ipam/n/10.0.1.2", None, b"again".to_vec(), None);
    assert!(ok("creation after a delete", again).await);
}

/// `list` gives exactly the keys under its prefix, sorted by key as bytes; `get` of a missing
/// key is `None`.
pub async fn lists_are_sorted_and_bounded_by_their_prefix(stores: &Stores) {
    let keys = [
        "ep/n1/b",
        "ep/n1/a",
        "ep/n10/x",
        "ep/n1",
        "ep/n1/B",
        "ep/n1/é",
        "ep/n1/z",
        "eq/n1/a",
        "ep/n1/a/deeper",
    ];
    for key in keys {
        ok("put", stores.a.put(key, key.as_bytes().to_vec(), None)).await;
    }
    let listed = ok("list", stores.b.list("ep/n1/")).await;
    let listed: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    let expected = [
        "ep/n1/B",
        "ep/n1/a",
        "ep/n1/a/deeper",
        "ep/n1/b",
        "ep/n1/z",
        "ep/n1/é",
    ];
    assert_eq!(listed, expected);
    let everything = ok("list of everything", stores.b.list("")).await;
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let all: Vec<&str> = everything.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(all, sorted);
    assert!(everything.iter().all(|(k, v)| k.as_bytes() == v.as_slice()));
    assert_eq!(
        ok("get of a missing key", stores.b.get("ep/n2")).await,
        None
    );
}

/// A watch gives the prefix's entries, then each change under it in order; changes elsewhere
/// do not show; dropping the watch ends it without harm.
pub async fn watches_give_the_present_then_each_change(stores: &Stores) {
    ok("put", stores.a.put("ep/n1/a", b"1".to_vec(), None)).await;
    ok("put", stores.a.put("ep/n2/x", b"9".to_vec(), None)).await;
    let mut watch = ok("watch", stores.b.watch("ep/n1/")).await;
    assert_eq!(watch.current, [("ep/n1/a".to_string(), b"1".to_vec())]);
    ok("put", stores.a.put("ep/n1/b", b"2".to_vec(), None)).await;
    ok("put", stores.a.put("ep/n2/y", b"8".to_vec(), None)).await;
    ok("put", stores.a.put("ep/n1/b", b"3".to_vec(), None)).await;
    ok("delete", stores.a.delete("ep/n1/a")).await;
    ok("delete of a missing key", stores.a.delete("ep/n1/zz")).await;
    let swap = stores.a.swap("ep/n1/c", None, b"4".to_vec(), None);
    assert!(ok("swap", swap).await);
    let expected = [
        put("ep/n1/b", "2"),
        put("ep/n1/b", "3"),
        Event::Delete {
            key: "ep/n1/a".into(),
        },
        put("ep/n1/c", "4"),
    ];
    for (i, want) in expected.into_iter().enumerate() {
        assert_eq!(next_event(&mut watch, &format!("event {i}")).await, want);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(watch.events.try_recv().is_err(), "no other event");
    drop(watch);
    ok(
        "a put after the watch ended",
        stores.a.put("ep/n1/d", b"5".to_vec(), None),
    )
    .await;
}

/// A watch started while another connection writes: every key written is either in the
/// watch's present or in its events, never in both, never in neither.
pub async fn watches_started_during_writes_miss_nothing(stores: &Stores) {
    const KEYS: usize = 200;
    let writer = async {
        for i in 0..KEYS {
            let key = format!("race/{i:03}");
            ok("put", stores.a.put(&key, b"v".to_vec(), None)).await;
            // The in-process store never yields by itself.
            tokio::task::yield_now().await;
        }
    };
    let watcher = async {
        // Let some writes land first.
        while ok("list", stores.b.list("race/")).await.len() < KEYS / 10 {
            tokio::task::yield_now().await;
        }
        ok("watch", stores.b.watch("race/")).await
    };
    let ((), mut watch) = tokio::join!(writer, watcher);
    let present: BTreeSet<String> = watch.current.iter().map(|(k, _)| k.clone()).collect();
    assert!(present.len() < KEYS, "the watch started after every write");
    let mut seen = present.clone();
    while seen.len() < KEYS {
        let what = format!("after {} of {KEYS} keys", seen.len());
        match next_event(&mut watch, &what).await {
            Event::Put { key, .. } => assert!(seen.insert(key.clone()), "{key} twice"),
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        watch.events.try_recv().is_err(),
        "no event after the last write"
    );
}

/// `revoke` takes the lease's keys at once (they are gone when it returns), with a delete
/// event each; other keys stay.
pub async fn revoked_leases_take_their_keys_at_once(stores: &Stores) {
    let lease = ok("grant", stores.a.grant(stores.ttl)).await;
    let other = ok("grant", stores.a.grant(stores.ttl)).await;
    ok(
        "put",
        stores.a.put("nodes/a", b"a".to_vec(), Some(lease.id)),
    )
    .await;
    ok(
        "put",
        stores.a.put("nodes/b", b"b".to_vec(), Some(lease.id)),
    )
    .await;
    ok(
        "put",
        stores.a.put("nodes/c", b"c".to_vec(), Some(other.id)),
    )
    .await;
    let mut watch = ok("watch", stores.b.watch("nodes/")).await;
    ok("revoke", lease.revoke()).await;
    let left = ok("list", stores.b.list("nodes/")).await;
    assert_eq!(left, [("nodes/c".to_string(), b"c".to_vec())]);
    let mut deleted = BTreeSet::new();
    for i in 0..2 {
        match next_event(&mut watch, &format!("delete {i}")).await {
            Event::Delete { key } => deleted.insert(key),
            other => panic!("unexpected {other:?}"),
        };
    }
    assert_eq!(
        deleted,
        BTreeSet::from(["nodes/a".into(), "nodes/b".into()])
    );
    drop(other);
}

/// Dropping a lease (its holder dying) takes its keys within `stores.lapse` while another
/// holder lives (over the other connection); returns how long they outlived the handle.
pub async fn dropped_leases_lapse(stores: &Stores) -> Duration {
    let alive = ok("grant", stores.b.grant(stores.ttl)).await;
    let lease = ok("grant", stores.a.grant(stores.ttl)).await;
    ok(
        "put",
        stores.a.put("dying/a", b"a".to_vec(), Some(lease.id)),
    )
    .await;
    let mut watch = ok("watch", stores.b.watch("dying/")).await;
    assert_eq!(watch.current.len(), 1);
    let dropped = Instant::now();
    drop(lease);
    let gone = match watch.events.try_recv() {
        Ok(event) => event,
        Err(_) => next_event(&mut watch, "the dropped lease's key").await,
    };
    let lapsed = dropped.elapsed();
    assert_eq!(
        gone,
        Event::Delete {
            key: "dying/a".into()
        }
    );
    assert!(
        lapsed <= stores.lapse,
        "the key outlived its lease by {lapsed:?} (at most {:?})",
        stores.lapse
    );
    ok("revoke", alive.revoke()).await;
    lapsed
}

/// A lease whose handle lives keeps its keys past several times its TTL.
pub async fn kept_leases_outlive_their_ttl(stores: &Stores) {
    let lease = ok("grant", stores.a.grant(stores.ttl)).await;
    ok(
        "put",
        stores.a.put("alive/a", b"a".to_vec(), Some(lease.id)),
    )
    .await;
    let mut watch = ok("watch", stores.b.watch("alive/")).await;
    let hold = stores.lapse * 3;
    tokio::time::sleep(hold).await;
    assert!(watch.events.try_recv().is_err(), "a change within {hold:?}");
    let stored = ok("get", stores.b.get("alive/a")).await;
    assert_eq!(stored, Some(b"a".to_vec()), "after {hold:?}");
    ok("revoke", lease.revoke()).await;
}

/// What one connection writes, the other reads and watches.
pub async fn connections_see_each_others_writes(stores: &Stores) {
    let mut watch = ok("watch", stores.b.watch("shared/")).await;
    ok("put", stores.a.put("shared/k", b"from a".to_vec(), None)).await;
    assert_eq!(
        ok("get", stores.b.get("shared/k")).await,
        Some(b"from a".to_vec())
    );
    assert_eq!(
        next_event(&mut watch, "a's put").await,
        put("shared/k", "from a")
    );
    ok("delete", stores.b.delete("shared/k")).await;
    assert_eq!(ok("get", stores.a.get("shared/k")).await, None);
    let deleted = Event::Delete {
        key: "shared/k".into(),
    };
    assert_eq!(next_event(&mut watch, "b's delete").await, deleted);
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

/// Networks take subnets and VNIs in turn, a name once; a refused network's name is free
/// again.
pub async fn networks_take_subnets_and_vnis_in_turn_and_names_once(stores: &Stores) {
    let (one, two) = (
        Cluster::new(stores.a.clone()),
        Cluster::new(stores.b.clone()),
    );
    let ingress = ok("ingress", one.create_network(network("i", "ingress"))).await;
    let first = ok("ov1", two.create_network(network("a", "ov1"))).await;
    let second = ok("ov2", one.create_network(network("b", "ov2"))).await;
    assert_eq!(
        [ingress.subnet, first.subnet, second.subnet].map(|s| s.to_string()),
        ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
    );
    assert_eq!([ingress.vni, first.vni, second.vni], [4096, 4097, 4098]);
    assert_eq!(first.gateway, ip("10.0.1.1"));
    let again = two.create_network(network("c", "ov1")).await;
    assert_eq!(again.unwrap_err(), "network with name ov1 already exists");
    let mut overlapping = network("d", "ov3");
    overlapping.subnet = "10.0.1.128/25".parse().unwrap();
    overlapping.user_subnet = true;
    let refused = one.create_network(overlapping).await;
    assert_eq!(
        refused.unwrap_err(),
        "Pool overlaps with other one on this address space"
    );
    ok(
        "ov3 after its refusal",
        two.create_network(network("e", "ov3")),
    )
    .await;
}

/// Addresses go in turn (a freed one waits its turn), a wanted one once.
pub async fn addresses_go_in_turn_and_are_not_handed_out_twice(stores: &Stores) {
    let (one, two) = (
        Cluster::new(stores.a.clone()),
        Cluster::new(stores.b.clone()),
    );
    let net = ok("ov1", one.create_network(network("a", "ov1"))).await;
    let first = ok("first", one.allocate_address(&net, None, "x")).await;
    let second = ok("second", two.allocate_address(&net, None, "x")).await;
    assert_eq!((first, second), (ip("10.0.0.2"), ip("10.0.0.3")));
    ok("release", two.release_address(&net.id, first)).await;
    let third = ok("third", one.allocate_address(&net, None, "x")).await;
    assert_eq!(
        third,
        ip("10.0.0.4"),
        "serial: a freed address waits its turn"
    );
    let wanted = two.allocate_address(&net, Some(ip("10.0.0.9")), "y").await;
    assert_eq!(wanted, Ok(ip("10.0.0.9")));
    let taken = one.allocate_address(&net, Some(ip("10.0.0.9")), "z").await;
    assert_eq!(taken.unwrap_err(), "Address already in use");
}

/// A network with a container's endpoint on it, on any node, stays; its load balancer's
/// endpoint does not keep it; once removed, its name is free.
pub async fn a_network_in_use_somewhere_stays(stores: &Stores) {
    let (one, two) = (
        Cluster::new(stores.a.clone()),
        Cluster::new(stores.b.clone()),
    );
    let lease = ok("grant", stores.b.grant(stores.ttl)).await;
    let net = ok("ov1", one.create_network(network("a", "ov1"))).await;
    let on = |load_balancer| EndpointRecord {
        id: format!("e{load_balancer}"),
        network: net.id.clone(),
        node: "n1".into(),
        vtep: ip("10.10.0.2"),
        gossip_name: "0123456789ab".into(),
        name: String::new(),
        aliases: Vec::new(),
        ip: ip("10.0.0.2"),
        mac: [0; 6],
        load_balancer,
    };
    ok("lb endpoint", two.add_endpoint(&on(true), lease.id)).await;
    ok("endpoint", two.add_endpoint(&on(false), lease.id)).await;
    assert!(
        one.remove_network(&net).await.is_err(),
        "removed while in use"
    );
    ok("remove endpoint", two.remove_endpoint(&net.id, "efalse")).await;
    ok("remove network", one.remove_network(&net)).await;
    assert_eq!(ok("network", two.network("ov1")).await, None);
    ok("ov1 again", two.create_network(network("b", "ov1"))).await;
    ok("revoke", lease.revoke()).await;
}

/// Two nodes' clusters over the two connections: networks made at once get distinct subnets
/// and VNIs, one name goes once, and addresses allocated at once on both never collide.
pub async fn clusters_allocate_once_across_connections(stores: &Stores) {
    let (one, two) = (
        Cluster::new(stores.a.clone()),
        Cluster::new(stores.b.clone()),
    );
    let made = join_all((0..6).map(|i| {
        let cluster = if i % 2 == 0 { &one } else { &two };
        cluster.create_network(network(&format!("n{i}"), &format!("ov{i}")))
    }))
    .await;
    let made: Vec<NetworkRecord> = made.into_iter().map(Result::unwrap).collect();
    let subnets: BTreeSet<String> = made.iter().map(|n| n.subnet.to_string()).collect();
    let vnis: BTreeSet<u32> = made.iter().map(|n| n.vni).collect();
    assert_eq!((subnets.len(), vnis.len()), (6, 6), "{made:?}");

    let same_name = join_all([
        one.create_network(network("x1", "twice")),
        two.create_network(network("x2", "twice")),
    ])
    .await;
    assert_eq!(
        same_name.iter().filter(|r| r.is_ok()).count(),
        1,
        "{same_name:?}"
    );

    let net = &made[0];
    let allocations = join_all((0..20).map(|i| {
        let cluster = if i % 2 == 0 { &one } else { &two };
        cluster.allocate_address(net, None, "c")
    }))
    .await;
    let addresses: BTreeSet<IpAddr> = allocations.into_iter().map(Result::unwrap).collect();
    assert_eq!(addresses.len(), 20, "an address handed out twice");
}

/// A node's endpoints, published on its lease over one connection, vanish from the other's
/// watch when the lease is dropped (the node dies), within `stores.lapse` (the other node
/// holds a lease too).
pub async fn endpoints_go_with_their_nodes_lease(stores: &Stores) {
    let (node, other) = (
        Cluster::new(stores.a.clone()),
        Cluster::new(stores.b.clone()),
    );
    let alive = ok("grant", stores.b.grant(stores.ttl)).await;
    let lease = ok("grant", stores.a.grant(stores.ttl)).await;
    let endpoint = EndpointRecord {
        id: "e1".into(),
        network: "a".into(),
        node: "n1".into(),
        vtep: ip("10.10.0.2"),
        gossip_name: "0123456789ab".into(),
        name: "web".into(),
        aliases: vec!["www".into()],
        ip: ip("10.0.1.3"),
        mac: [2, 0x42, 10, 0, 1, 3],
        load_balancer: false,
    };
    let mut watch = ok("watch", other.watch_endpoints("a")).await;
    ok("add endpoint", node.add_endpoint(&endpoint, lease.id)).await;
    let Event::Put { key, value } = next_event(&mut watch, "the endpoint").await else {
        panic!("not a put")
    };
    assert_eq!(Cluster::endpoint_of(&key, &value), Ok(endpoint.clone()));
    assert_eq!(ok("endpoints", other.endpoints("a")).await, [endpoint]);
    let dropped = Instant::now();
    drop(lease);
    let gone = next_event(&mut watch, "the endpoint's delete").await;
    assert!(matches!(gone, Event::Delete { .. }), "{gone:?}");
    assert!(dropped.elapsed() <= stores.lapse + Duration::from_millis(50));
    assert!(ok("endpoints", other.endpoints("a")).await.is_empty());
    ok("revoke", alive.revoke()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_process_store_keeps_the_contract() {
        let stores = Stores::in_process;
        swaps_create_and_replace_once(&stores()).await;
        lists_are_sorted_and_bounded_by_their_prefix(&stores()).await;
        watches_give_the_present_then_each_change(&stores()).await;
        watches_started_during_writes_miss_nothing(&stores()).await;
        revoked_leases_take_their_keys_at_once(&stores()).await;
        dropped_leases_lapse(&stores()).await;
        kept_leases_outlive_their_ttl(&stores()).await;
        connections_see_each_others_writes(&stores()).await;
        networks_take_subnets_and_vnis_in_turn_and_names_once(&stores()).await;
        addresses_go_in_turn_and_are_not_handed_out_twice(&stores()).await;
        a_network_in_use_somewhere_stays(&stores()).await;
        clusters_allocate_once_across_connections(&stores()).await;
        endpoints_go_with_their_nodes_lease(&stores()).await;
    }
}
