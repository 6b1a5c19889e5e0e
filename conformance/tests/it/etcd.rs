//! The control plane's etcd store against a real etcd (Debian's etcd-server) on a lab host:
//! the store contract (`drydock_runtime::cluster::contract`) over two connections made from two
//! other lab hosts, the server's life, and the timings. As root, with etcd installed (under
//! `CI=true` a missing etcd fails the tests instead of skipping them).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_conformance::targets::etcd::{ETCD, EtcdServer};
use drydock_netsim::{Lab, Topology};
use drydock_runtime::cluster::EtcdStore;
use drydock_runtime::cluster::contract::{self, Stores};
use futures::future::join_all;

/// Environment variable that turns [`helper_holds_an_etcd_until_killed`] into a helper: the
/// directory to start etcd in.
const HELPER_ENV: &str = "DRYDOCK_ETCD_HELPER_DIR";
/// What the helper prints once etcd answers.
const READY: &str = "DRYDOCK-ETCD-READY";

/// True when etcd is installed; without it the test skips, but fails under CI.
fn etcd_installed() -> bool {
    if Path::new(ETCD).is_file() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{ETCD} is missing (Debian's etcd-server, which ci/setup installs); CI must not skip"
    );
    eprintln!("skipped: {ETCD} is missing (Debian's etcd-server)");
    false
}

/// h1 runs etcd; h2 and h3 are where the engines would be.
async fn lab() -> Lab {
    let topology = Topology::builder("etcd")
        .segment("lan", "10.10.0.0/24".parse().unwrap())
        .host("h1")
        .host("h2")
        .host("h3")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Lab::build(topology)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn address(lab: &Lab, host: &str) -> IpAddr {
    IpAddr::V4(
        lab.topology().host(host).unwrap().interfaces[0]
            .address
            .ip(),
    )
}

async fn start(lab: &Lab, dir: &Path) -> EtcdServer {
    let h1 = lab.host("h1").unwrap();
    EtcdServer::start(h1, address(lab, "h1"), dir)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(lab: &Lab, host: &str, etcd: SocketAddr, prefix: &str) -> EtcdStore {
    let netns = lab.host(host).unwrap();
    EtcdStore::connect(netns, &[etcd], prefix)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Connections from h2 and h3 under a prefix of their own; leases of 1 s, whose keys outlive
/// a dropped handle by six beats of another lease (100 ms each), its revocation and a
/// margin: under a second.
async fn stores(lab: &Lab, etcd: SocketAddr, name: &str) -> Stores {
    let prefix = format!("/drydock/it{}/{name}/", std::process::id());
    Stores {
        a: Arc::new(connect(lab, "h2", etcd, &prefix).await),
        b: Arc::new(connect(lab, "h3", etcd, &prefix).await),
        ttl: Duration::from_secs(1),
        lapse: Duration::from_secs(1),
    }
}

/// Pids of live processes whose command line names `dir`.
fn processes_under(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    (std::fs::read_dir("/proc").unwrap().flatten())
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&needle)
                .then_some(pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_store_keeps_the_contract_across_lab_hosts() {
    if !crate::privileged() || !etcd_installed() {
        return;
    }
    let lab = lab().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("etcd");
    let server = start(&lab, &dir).await;
    let etcd = server.endpoint();
    let s = |name: &'static str| stores(&lab, etcd, name);
    // The slow ones (leases) run alongside the others; each under a prefix of its own.
    let (swaps, lists, watches, racing, revoked, dropped, kept) = (
        s("swaps").await,
        s("lists").await,
        s("watches").await,
        s("racing").await,
        s("revoked").await,
        s("dropped").await,
        s("kept").await,
    );
    let (shared, networks, addresses, in_use, cluster, endpoints) = (
        s("shared").await,
        s("networks").await,
        s("addresses").await,
        s("in-use").await,
        s("cluster").await,
        s("endpoints").await,
    );
    let (lapsed, ..) = tokio::join!(
        contract::dropped_leases_lapse(&dropped),
        contract::swaps_create_and_replace_once(&swaps),
        contract::lists_are_sorted_and_bounded_by_their_prefix(&lists),
        contract::watches_give_the_present_then_each_change(&watches),
        contract::watches_started_during_writes_miss_nothing(&racing),
        contract::revoked_leases_take_their_keys_at_once(&revoked),
        contract::kept_leases_outlive_their_ttl(&kept),
        contract::connections_see_each_others_writes(&shared),
        contract::networks_take_subnets_and_vnis_in_turn_and_names_once(&networks),
        contract::addresses_go_in_turn_and_are_not_handed_out_twice(&addresses),
        contract::a_network_in_use_somewhere_stays(&in_use),
        contract::clusters_allocate_once_across_connections(&cluster),
        contract::endpoints_go_with_their_nodes_lease(&endpoints),
    );
    assert!(lapsed >= Duration::from_millis(300), "lapsed in {lapsed:?}");

    // The prefixes keep the runs apart: nothing of one shows under another.
    let listed = swaps.a.list("").await.unwrap();
    assert!(
        listed.iter().all(|(k, _)| k.starts_with("ipam/")),
        "{listed:?}"
    );

    drop(server);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(
        processes_under(&dir),
        Vec::<u32>::new(),
        "etcd left running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_fail_naming_the_endpoint() {
    if !crate::privileged() || !etcd_installed() {
        return;
    }
    let lab = lab().await;
    // Nothing listens on h1 yet.
    let etcd = SocketAddr::new(address(&lab, "h1"), 2379);
    let error = EtcdStore::connect(lab.host("h2").unwrap(), &[etcd], "/x/")
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("10.10.0.1:2379"), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{text}"
    );

    // A second start in the same directory is refused before anything runs.
    let temp = tempfile::tempdir().unwrap();
    let error = EtcdServer::start(lab.host("h1").unwrap(), address(&lab, "h1"), temp.path())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("File exists"), "{error}");
}

/// Sets `eth0` of `host` down or up (`ip`, a witness).
fn plug(lab: &Lab, host: &str, state: &str) {
    let netns = lab.host(host).unwrap();
    let status = (netns.command("ip", None))
        .args(["link", "set", "eth0", state])
        .status()
        .unwrap();
    assert!(status.success(), "ip link set eth0 {state} on {host}");
}

/// The control plane's traffic crosses the lab: a node cut off from it loses its lease (its
/// keys go from the others' view within the lapse), and its store works again once it is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_loses_its_lease_and_comes_back() {
    if !crate::privileged() || !etcd_installed() {
        return;
    }
    let lab = lab().await;
    let temp = tempfile::tempdir().unwrap();
    let server = start(&lab, &temp.path().join("etcd")).await;
    let stores = stores(&lab, server.endpoint(), "cut").await;
    // h3 holds a lease too: it judges h2's silence.
    let peer = stores.b.grant(stores.ttl).await.unwrap();
    let lease = stores.a.grant(stores.ttl).await.unwrap();
    stores
        .a
        .put("nodes/h2", b"h2".to_vec(), Some(lease.id))
        .await
        .unwrap();
    let mut watch = stores.b.watch("nodes/").await.unwrap();
    assert_eq!(watch.current.len(), 1);

    plug(&lab, "h2", "down");
    let cut = Instant::now();
    let gone = contract::next_event(&mut watch, "h2's key").await;
    let lapsed = cut.elapsed();
    assert!(
        matches!(gone, drydock_runtime::cluster::Event::Delete { .. }),
        "{gone:?}"
    );
    assert!(
        lapsed <= stores.lapse,
        "h2's key outlived the cut by {lapsed:?}"
    );

    plug(&lab, "h2", "up");
    let back = Instant::now();
    let again = stores.a.grant(stores.ttl).await.unwrap();
    stores
        .a
        .put("nodes/h2", b"h2".to_vec(), Some(again.id))
        .await
        .unwrap();
    let put = contract::next_event(&mut watch, "h2's key again").await;
    assert!(
        matches!(put, drydock_runtime::cluster::Event::Put { .. }),
        "{put:?}"
    );
    eprintln!(
        "cut off: key gone after {lapsed:?}; back after {:?}",
        back.elapsed()
    );
    drop((lease, again, peer));
}

/// When a node's connection to etcd breaks (here `ss -K` aborts it), the store connects again:
/// its watch resumes where it stopped, without a gap or a repeat, and its lease is kept alive
/// (its beats resume before another node, judging them, finds it silent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_leases_survive_a_broken_connection() {
    if !crate::privileged() || !etcd_installed() {
        return;
    }
    let lab = lab().await;
    let temp = tempfile::tempdir().unwrap();
    let server = start(&lab, &temp.path().join("etcd")).await;
    let stores = stores(&lab, server.endpoint(), "broken").await;
    let peer = stores.b.grant(stores.ttl).await.unwrap();
    let lease = stores.a.grant(stores.ttl).await.unwrap();
    stores
        .a
        .put("alive/h2", b"h2".to_vec(), Some(lease.id))
        .await
        .unwrap();
    let mut watch = stores.a.watch("k/").await.unwrap();
    for round in 0..3 {
        let killed = (lab.host("h2").unwrap().command("ss", None))
            .args(["-K", "dst", &server.endpoint().ip().to_string()])
            .output()
            .unwrap();
        assert!(killed.status.success(), "{killed:?}");
        for i in 0..5 {
            let key = format!("k/{round}{i}");
            stores.b.put(&key, b"v".to_vec(), None).await.unwrap();
        }
        for i in 0..5 {
            let want = drydock_runtime::cluster::Event::Put {
                key: format!("k/{round}{i}"),
                value: b"v".to_vec(),
            };
            assert_eq!(
                contract::next_event(&mut watch, "after the break").await,
                want
            );
        }
        tokio::time::sleep(stores.ttl).await;
    }
    assert!(watch.events.try_recv().is_err(), "an event twice");
    let alive = stores.b.get("alive/h2").await.unwrap();
    assert_eq!(alive, Some(b"h2".to_vec()), "the lease lapsed");
    drop((lease, peer));
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let p50 = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    format!("p50 {p50:.1?}, max {max:.1?} over {}", samples.len())
}

/// Timings, printed (`--nocapture`): connecting, a put's event at a watch on another host,
/// and how long a dropped lease's key outlives it (20 leases dropped at spread moments, each
/// while another holder's lease beats and judges it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_timings() {
    if !crate::privileged() || !etcd_installed() {
        return;
    }
    let lab = lab().await;
    let temp = tempfile::tempdir().unwrap();
    let server = start(&lab, &temp.path().join("etcd")).await;
    let etcd = server.endpoint();

    let mut connects = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        drop(connect(&lab, "h2", etcd, "/drydock/timings/").await);
        connects.push(started.elapsed());
    }

    let pair = stores(&lab, etcd, "latency").await;
    let mut watch = pair.b.watch("k/").await.unwrap();
    let mut latencies = Vec::new();
    for i in 0..100 {
        let started = Instant::now();
        pair.a.put("k/x", vec![i], None).await.unwrap();
        contract::next_event(&mut watch, "the put").await;
        latencies.push(started.elapsed());
    }

    let lab = &lab;
    let lapses = join_all((0..20u32).map(|i| async move {
        let pair = stores(lab, etcd, &format!("lapse{i}")).await;
        // Spread over a keep-alive period (a third of the TTL) and several beats.
        tokio::time::sleep(Duration::from_millis(17 * u64::from(i))).await;
        contract::dropped_leases_lapse(&pair).await
    }))
    .await;

    eprintln!("etcd connect: {}", percentiles(connects.clone()));
    eprintln!(
        "etcd watch latency (put to event, h2 to h3): {}",
        percentiles(latencies.clone())
    );
    eprintln!(
        "etcd lease lapse after drop (6 missed beats of 100 ms): {}",
        percentiles(lapses.clone())
    );
    let slowest = |v: &[Duration]| v.iter().max().copied().unwrap();
    assert!(slowest(&connects) < Duration::from_secs(1));
    assert!(slowest(&latencies) < Duration::from_secs(1));
    assert!(slowest(&lapses) < Duration::from_secs(1));
}

/// Not a test by itself: with `DRYDOCK_ETCD_HELPER_DIR=DIR` set, it starts etcd in DIR/etcd,
/// prints its pid and waits to be killed (see [`sigkill_of_the_holder_kills_etcd`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_holds_an_etcd_until_killed() {
    let Ok(dir) = std::env::var(HELPER_ENV) else {
        return;
    };
    let lab = lab().await;
    let server = start(&lab, &Path::new(&dir).join("etcd")).await;
    println!("{READY} {}", server.endpoint());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[test]
fn sigkill_of_the_holder_kills_etcd() {
    if !crate::privileged() || !etcd_installed() {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "etcd::helper_holds_an_etcd_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, temp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = helper.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(READY) {
                let _ = tx.send(());
            }
        }
    });
    let dir: PathBuf = temp.path().join("etcd");
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = helper.kill();
        let _ = helper.wait();
        panic!("the helper did not start etcd");
    }
    let etcds = processes_under(&dir);
    assert_eq!(etcds.len(), 1, "{etcds:?}");
    helper.kill().unwrap(); // SIGKILL
    helper.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_under(&dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        processes_under(&dir),
        Vec::<u32>::new(),
        "etcd outlived its holder"
    );
}
