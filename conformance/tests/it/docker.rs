//! Docker target tests: a real private dockerd per lab host (Debian's docker.io 20.10), as
//! root. One target is shared by many assertions (a daemon takes about 1.5 s to start).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drydock_conformance::targets::Target;
use drydock_conformance::targets::docker::{DockerTarget, gc_leftovers};
use drydock_runtime::api::cli::DockerCommand;
use drydock_runtime::api::spec::{ConnectSpec, ContainerSpec, NetworkSpec};

use crate::call;
use drydock_netsim::{Lab, Topology};

/// Environment variable that turns [`helper_holds_a_target_until_killed`] into a helper.
const HELPER_ENV: &str = "DRYDOCK_DOCKER_HELPER_RUN";
/// What the helper prints once its target is up.
const READY: &str = "DRYDOCK-DOCKER-READY";

async fn lab() -> Lab {
    let topology = Topology::builder("docker")
        .segment("lan", "10.10.0.0/24".parse().unwrap())
        .host("h1")
        .host("h2")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Lab::build(topology)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn h1() -> Vec<String> {
    vec!["h1".to_string()]
}

fn run_spec(name: &str, network: Option<&str>) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        detach: true,
        image: "busybox".into(),
        network: network.map(str::to_string),
        ..ContainerSpec::default()
    }
}

fn machine_links() -> String {
    let output = Command::new("ip").args(["-br", "link"]).output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

/// Pids of live processes whose command line names a path under `dir`.
fn processes_under(dir: &Path) -> Vec<u32> {
    let needle = format!("{}/", dir.display());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(&needle)
        {
            pids.push(pid);
        }
    }
    pids
}

/// The dockerd of a run with one docker host.
fn dockerd_of(run_dir: &Path) -> u32 {
    match dockerds_of(run_dir)[..] {
        [pid] => pid,
        ref pids => panic!("dockerds running from {}: {pids:?}", run_dir.display()),
    }
}

/// The dockerds running from `run_dir`, as this process sees them.
fn dockerds_of(run_dir: &Path) -> Vec<u32> {
    processes_under(run_dir)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "dockerd")
        })
        .collect()
}

/// `pid` and all its descendants, with their command names.
fn family(pid: u32) -> BTreeSet<(u32, String)> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').unwrap() + 1..close].to_string();
        let ppid: u32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        parents.push((child, ppid, comm));
    }
    let mut members = BTreeSet::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, ppid, comm) in &parents {
            if *ppid == parent && members.insert((*child, comm.clone())) {
                frontier.push(*child);
            }
        }
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    members.insert((pid, comm.trim().to_string()));
    members
}

/// The members of `family` still alive (same pid, same command name).
fn survivors(family: &BTreeSet<(u32, String)>) -> Vec<(u32, String)> {
    family
        .iter()
        .filter(|(pid, comm)| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .cloned()
        .collect()
}

/// Cgroup directories named `drydock/RUN` in any hierarchy.
fn run_cgroups(run_id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("drydock").join(run_id))
                .chain([Path::new("/sys/fs/cgroup/drydock").join(run_id)])
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

fn mounts_mentioning(mountinfo: &str, dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_to_string(mountinfo)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// Runs `ip ARGS` inside `netns`.
fn ip(netns: &drydock_netsim::Netns, args: &[&str]) -> String {
    let output = netns.command("ip", None).args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_dockerd_behaves_like_docker_and_leaves_nothing() {
    if !crate::privileged() {
        return;
    }
    let links_before = machine_links();
    let lab = lab().await;
    let run_id = format!("it{}a", std::process::id());
    let target = DockerTarget::start(&lab, &h1(), &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let run_dir = target.run_dir().to_path_buf();
    assert!(
        target.describe().starts_with("docker "),
        "{}",
        target.describe()
    );
    assert!(target.version() >= drydock_conformance::version::Version(20, 10, 0));

    // The default bridge, as a fresh daemon has it.
    let bridge = target.inspect_network("h1", "bridge").await.unwrap();
    assert_eq!(bridge["Driver"], "bridge");
    assert_eq!(bridge["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16");

    // A user network takes the next pool; its gateway is .1.
    let my_net = NetworkSpec {
        name: "my-net".into(),
        ..NetworkSpec::default()
    };
    call(&target, "h1", DockerCommand::NetworkCreate(my_net.clone()))
        .await
        .unwrap();
    let net = target.inspect_network("h1", "my-net").await.unwrap();
    assert_eq!(
        net["IPAM"]["Config"][0]["Subnet"], "172.18.0.0/16",
        "{net:#}"
    );
    assert_eq!(net["IPAM"]["Config"][0]["Gateway"], "172.18.0.1");
    assert_eq!(net["Labels"]["drydock.run"], run_id.as_str());
    assert_eq!(
        call(&target, "h1", DockerCommand::NetworkCreate(my_net.clone()))
            .await
            .unwrap_err(),
        "network with name my-net already exists"
    );
    let no_subnet = NetworkSpec {
        name: "gw-only".into(),
        gateways: vec!["10.1.0.1".parse().unwrap()],
        ..NetworkSpec::default()
    };
    assert_eq!(
        call(
            &target,
            "h1",
            DockerCommand::NetworkCreate(no_subnet.clone())
        )
        .await
        .unwrap_err(),
        "every ip-range or gateway must have a corresponding subnet"
    );

    // Containers on it get .2 and .3, in order.
    for name in ["c1", "c2"] {
        call(
            &target,
            "h1",
            DockerCommand::Run(Box::new(run_spec(name, Some("my-net")))),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, address) in [("c1", "172.18.0.2"), ("c2", "172.18.0.3")] {
        let info = target.inspect_container("h1", name).await.unwrap();
        assert_eq!(info["State"]["Status"], "running");
        assert_eq!(
            info["NetworkSettings"]["Networks"]["my-net"]["IPAddress"],
            address
        );
        assert_eq!(info["Config"]["Labels"]["drydock.run"], run_id.as_str());
    }

    // The container's namespace, seen from here, has that address on eth0.
    let c1 = target.container_netns("h1", "c1").await.unwrap();
    let addresses = ip(&c1, &["-4", "-o", "addr", "show", "eth0"]);
    assert!(addresses.contains("inet 172.18.0.2/16"), "{addresses}");
    let hosts = target
        .container_file("h1", "c1", "/etc/hosts")
        .await
        .unwrap();
    assert!(hosts.contains("172.18.0.2\t"), "{hosts}");
    let resolv = target
        .container_file("h1", "c1", "/etc/resolv.conf")
        .await
        .unwrap();
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    assert!(
        target
            .container_file("h1", "c1", "/etc/passwd")
            .await
            .is_err()
    );

    // A port can be published once; the second container stays created.
    let web = |name: &str| ContainerSpec {
        publish: vec!["8080:80".into()],
        ..run_spec(name, None)
    };
    call(
        &target,
        "h1",
        DockerCommand::Run(Box::new(web("web1").clone())),
    )
    .await
    .unwrap();
    let refused = call(
        &target,
        "h1",
        DockerCommand::Run(Box::new(web("web2").clone())),
    )
    .await
    .unwrap_err();
    assert!(
        refused.starts_with("driver failed programming external connectivity on endpoint web2 (")
            && refused.ends_with("): Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{refused}"
    );
    let web2 = target.inspect_container("h1", "web2").await.unwrap();
    assert_eq!(web2["State"]["Status"], "created");
    assert!(target.container_netns("h1", "web2").await.is_err());

    // Refusals before and at the daemon.
    let in_use = call(
        &target,
        "h1",
        DockerCommand::NetworkRm(vec!["my-net".into()]),
    )
    .await
    .unwrap_err();
    let id = net["Id"].as_str().unwrap();
    assert_eq!(
        in_use,
        format!("error while removing network: network my-net id {id} has active endpoints")
    );
    let nginx = ContainerSpec {
        image: "nginx".into(),
        ..run_spec("n1", None)
    };
    assert_eq!(
        call(&target, "h1", DockerCommand::Run(Box::new(nginx.clone())))
            .await
            .unwrap_err(),
        "image nginx is not available: scenarios run busybox (no registry is reachable)"
    );
    let bad_port = ContainerSpec {
        publish: vec!["abc".into()],
        ..run_spec("p1", None)
    };
    assert_eq!(
        call(
            &target,
            "h1",
            DockerCommand::Run(Box::new(bad_port.clone()))
        )
        .await
        .unwrap_err(),
        "invalid containerPort: abc"
    );
    assert!(
        target.inspect_container("h1", "p1").await.is_err(),
        "nothing was created"
    );

    // docker stop does not wait 10 s for busybox's sleep to ignore SIGTERM.
    let stopping = Instant::now();
    call(&target, "h1", DockerCommand::Stop(vec!["c2".into()]))
        .await
        .unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    let c2 = target.inspect_container("h1", "c2").await.unwrap();
    assert_eq!(c2["State"]["Status"], "exited");
    call(
        &target,
        "h1",
        DockerCommand::Rm {
            containers: vec!["c2".into()],
            force: false,
        },
    )
    .await
    .unwrap();

    let dump = target.dump("h1").await;
    assert!(dump.contains("br-") && dump.contains("-A DOCKER"), "{dump}");
    assert!(dump.contains("dockerd log"), "{dump}");

    // Everything the daemon runs, and the mounts it made (only it sees them).
    let dockerd = dockerd_of(&run_dir);
    let family = family(dockerd);
    let names: Vec<&str> = family.iter().map(|(_, comm)| comm.as_str()).collect();
    for expected in [
        "dockerd",
        "containerd",
        "containerd-shim",
        "sleep",
        "docker-proxy",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "{expected} in {names:?}"
        );
    }
    assert!(!mounts_mentioning(&format!("/proc/{dockerd}/mountinfo"), &run_dir).is_empty());
    assert!(mounts_mentioning("/proc/self/mountinfo", &run_dir).is_empty());
    assert!(
        !run_cgroups(&run_id).is_empty(),
        "containers' cgroups are under drydock/RUN"
    );

    drop(c1);
    target.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        survivors(&family),
        [],
        "every process of the daemon is gone"
    );
    assert!(processes_under(&run_dir).is_empty());
    assert!(!run_dir.exists(), "{} is removed", run_dir.display());
    assert_eq!(
        mounts_mentioning("/proc/self/mountinfo", &run_dir),
        Vec::<String>::new()
    );
    assert_eq!(run_cgroups(&run_id), Vec::<PathBuf>::new());
    assert_eq!(
        machine_links(),
        links_before,
        "nothing in the machine's namespace"
    );
}

/// Inode of a network namespace (to tell namespaces apart).
fn netns_inode(netns: &drydock_netsim::Netns) -> u64 {
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", netns.as_fd().as_raw_fd()))
        .unwrap()
        .ino()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_options_and_network_modes_reach_the_daemon() {
    if !crate::privileged() {
        return;
    }
    let lab = lab().await;
    let run_id = format!("it{}b", std::process::id());
    let target = DockerTarget::start(&lab, &h1(), &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The default bridge with the options scenarios use.
    let lonely = ContainerSpec {
        publish: vec!["127.0.0.1::81/udp".into()],
        publish_all: true,
        expose: vec!["80".into()],
        dns: vec!["9.9.9.9".parse().unwrap()],
        hostname: Some("hh".into()),
        mac_address: Some("02:42:ac:11:00:99".into()),
        add_hosts: vec!["foo:1.2.3.4".into()],
        ..run_spec("lonely", None)
    };
    call(&target, "h1", DockerCommand::Run(Box::new(lonely.clone())))
        .await
        .unwrap();
    let info = target.inspect_container("h1", "lonely").await.unwrap();
    let settings = &info["NetworkSettings"];
    assert_eq!(
        settings["IPAddress"], "172.17.0.2",
        "API 1.41 still has the top-level fields"
    );
    assert_eq!(settings["MacAddress"], "02:42:ac:11:00:99");
    assert!(
        !settings["Ports"]["80/tcp"][0]["HostPort"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(settings["Ports"]["81/udp"][0]["HostIp"], "127.0.0.1");
    assert_eq!(info["Config"]["Hostname"], "hh");
    let hosts = target
        .container_file("h1", "lonely", "/etc/hosts")
        .await
        .unwrap();
    assert!(hosts.contains("1.2.3.4\tfoo"), "{hosts}");
    let resolv = target
        .container_file("h1", "lonely", "/etc/resolv.conf")
        .await
        .unwrap();
    assert!(resolv.contains("nameserver 9.9.9.9"), "{resolv}");
    let hostname = target
        .container_file("h1", "lonely", "/etc/hostname")
        .await
        .unwrap();
    assert_eq!(hostname, "hh\n");

    // A legacy link on the default bridge writes the alias into /etc/hosts.
    let linked = ContainerSpec {
        links: vec!["lonely:lo".into()],
        ..run_spec("linked", None)
    };
    call(&target, "h1", DockerCommand::Run(Box::new(linked.clone())))
        .await
        .unwrap();
    let hosts = target
        .container_file("h1", "linked", "/etc/hosts")
        .await
        .unwrap();
    assert!(hosts.contains("172.17.0.2\tlo hh lonely"), "{hosts}");

    // --ip is for user-defined networks only: Docker creates the container, then refuses to
    // start it.
    let fixed = ContainerSpec {
        ip: Some("172.17.0.50".parse().unwrap()),
        ..run_spec("fixed", None)
    };
    assert_eq!(
        call(&target, "h1", DockerCommand::Run(Box::new(fixed.clone())))
            .await
            .unwrap_err(),
        "user specified IP address is supported on user defined networks only"
    );

    // host, none, container:NAME.
    call(
        &target,
        "h1",
        DockerCommand::Run(Box::new(run_spec("on-host", Some("host")))),
    )
    .await
    .unwrap();
    let on_host = target.container_netns("h1", "on-host").await.unwrap();
    assert_eq!(netns_inode(&on_host), netns_inode(lab.host("h1").unwrap()));
    call(
        &target,
        "h1",
        DockerCommand::Run(Box::new(run_spec("alone", Some("none")))),
    )
    .await
    .unwrap();
    let alone = ip(
        &target.container_netns("h1", "alone").await.unwrap(),
        &["-o", "link"],
    );
    assert_eq!(alone.lines().count(), 1, "only lo: {alone}");
    call(
        &target,
        "h1",
        DockerCommand::Run(Box::new(run_spec("sidecar", Some("container:lonely")))),
    )
    .await
    .unwrap();
    assert_eq!(
        netns_inode(&target.container_netns("h1", "sidecar").await.unwrap()),
        netns_inode(&target.container_netns("h1", "lonely").await.unwrap())
    );

    // A network with a subnet; a fixed address and an alias; connect and disconnect.
    let pinned = NetworkSpec {
        name: "pinned".into(),
        subnets: vec!["10.99.0.0/24".parse().unwrap()],
        ..NetworkSpec::default()
    };
    call(&target, "h1", DockerCommand::NetworkCreate(pinned.clone()))
        .await
        .unwrap();
    let member = ContainerSpec {
        ip: Some("10.99.0.50".parse().unwrap()),
        aliases: vec!["db".into()],
        ..run_spec("member", Some("pinned"))
    };
    call(&target, "h1", DockerCommand::Run(Box::new(member.clone())))
        .await
        .unwrap();
    let info = target.inspect_container("h1", "member").await.unwrap();
    let endpoint = &info["NetworkSettings"]["Networks"]["pinned"];
    assert_eq!(endpoint["IPAddress"], "10.99.0.50");
    assert!(
        endpoint["Aliases"]
            .as_array()
            .unwrap()
            .contains(&"db".into()),
        "{endpoint}"
    );
    let connect = ConnectSpec {
        network: "pinned".into(),
        container: "lonely".into(),
        ip: Some("10.99.0.60".parse().unwrap()),
        ..Default::default()
    };
    call(
        &target,
        "h1",
        DockerCommand::NetworkConnect(connect.clone()),
    )
    .await
    .unwrap();
    let lonely_ns = target.container_netns("h1", "lonely").await.unwrap();
    assert!(ip(&lonely_ns, &["-4", "-o", "addr"]).contains("inet 10.99.0.60/24"));
    let disconnect = || DockerCommand::NetworkDisconnect {
        network: "pinned".into(),
        container: "lonely".into(),
        force: false,
    };
    call(&target, "h1", disconnect()).await.unwrap();
    assert!(!ip(&lonely_ns, &["-4", "-o", "addr"]).contains("10.99.0.60"));
    assert_eq!(
        call(&target, "h1", disconnect()).await.unwrap_err(),
        format!(
            "container {} is not connected to network pinned",
            info_id(&target, "lonely").await
        )
    );

    // stop and start again.
    call(&target, "h1", DockerCommand::Stop(vec!["member".into()]))
        .await
        .unwrap();
    call(&target, "h1", DockerCommand::Start(vec!["member".into()]))
        .await
        .unwrap();
    let info = target.inspect_container("h1", "member").await.unwrap();
    assert_eq!(info["State"]["Status"], "running");
    call(
        &target,
        "h1",
        DockerCommand::Rm {
            containers: vec!["member".into()],
            force: true,
        },
    )
    .await
    .unwrap();
    call(
        &target,
        "h1",
        DockerCommand::NetworkRm(vec!["pinned".into()]),
    )
    .await
    .unwrap();
    assert!(target.inspect_network("h1", "pinned").await.is_err());
    target.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

async fn info_id(target: &DockerTarget, name: &str) -> String {
    let info = target.inspect_container("h1", name).await.unwrap();
    info["Id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn start_refuses_unknown_hosts_and_bad_run_ids() {
    if !crate::privileged() {
        return;
    }
    let lab = lab().await;
    let error = DockerTarget::start(&lab, &["h9".to_string()], "it-unknown")
        .await
        .unwrap_err();
    assert!(error.message.contains("no host \"h9\""), "{error}");
    let error = DockerTarget::start(&lab, &h1(), "a/b").await.unwrap_err();
    assert!(error.message.contains("run id"), "{error}");
    assert!(!Path::new("/tmp/drydock-docker-it-unknown").exists());
}

/// Not a test by itself: with `DRYDOCK_DOCKER_HELPER_RUN=RUN` set, it starts a target on h1 and
/// h2 with a container on each, says so on stdout and waits to be killed (see [`sigkill_of_the_owner_leaves_no_daemon_behind`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_holds_a_target_until_killed() {
    let Ok(run_id) = std::env::var(HELPER_ENV) else {
        return;
    };
    let lab = lab().await;
    let hosts = ["h1".to_string(), "h2".to_string()];
    let target = DockerTarget::start(&lab, &hosts, &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for host in &hosts {
        call(
            &target,
            host,
            DockerCommand::Run(Box::new(run_spec("held", None))),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    println!("{READY} {}", target.run_dir().display());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[test]
fn sigkill_of_the_owner_leaves_no_daemon_behind() {
    if !crate::privileged() {
        return;
    }
    let run_id = format!("it{}k", std::process::id());
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "docker::helper_holds_a_target_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, &run_id)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = helper.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints "test NAME ... " without a newline before the test runs.
            if let Some(at) = line.find(READY) {
                let _ = tx.send(PathBuf::from(line[at + READY.len()..].trim()));
            }
        }
    });
    let Ok(run_dir) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = helper.kill();
        let _ = helper.wait();
        panic!("the helper did not start its target");
    };
    // Two hosts, two daemons (started in parallel), each with its container.
    let dockerds = dockerds_of(&run_dir);
    assert_eq!(dockerds.len(), 2, "{dockerds:?}");
    let family: BTreeSet<(u32, String)> = dockerds.into_iter().flat_map(family).collect();
    let sleeps = family.iter().filter(|(_, comm)| comm == "sleep").count();
    assert_eq!(sleeps, 2, "{family:?}");

    helper.kill().unwrap(); // SIGKILL
    helper.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !survivors(&family).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(survivors(&family), [], "the daemon died with its owner");
    assert!(processes_under(&run_dir).is_empty());
    assert!(mounts_mentioning("/proc/self/mountinfo", &run_dir).is_empty());

    // What a SIGKILL cannot clean, gc does: the directory and the containers' cgroups.
    assert!(run_dir.exists());
    let removed = gc_leftovers().unwrap();
    assert!(
        removed.contains(&run_dir.display().to_string()),
        "{removed:?}"
    );
    assert!(!run_dir.exists());
    assert_eq!(run_cgroups(&run_id), Vec::<PathBuf>::new());
}

/// `Target::kill`: one host's daemon dies with its containers at once while the other goes on;
/// later calls to the dead host say so; teardown still removes everything. Each daemon is
/// named after its lab host (its own UTS namespace) and has an engine ID of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_host_dies_alone_and_says_so() {
    use drydock_runtime::api::EngineApi;
    if !crate::privileged() {
        return;
    }
    let lab = lab().await;
    let hosts = ["h1".to_string(), "h2".to_string()];
    let run_id = format!("it{}d", std::process::id());
    let target = DockerTarget::start(&lab, &hosts, &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ids = BTreeSet::new();
    for host in &hosts {
        let info = target.api(host).unwrap().info().await.unwrap();
        assert_eq!(info["Name"], host.as_str(), "the daemon's hostname");
        ids.insert(info["ID"].as_str().unwrap().to_string());
        call(
            &target,
            host,
            DockerCommand::Run(Box::new(run_spec("c1", None))),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(ids.len(), 2, "two engine IDs: {ids:?}");
    let run_dir = target.run_dir().to_path_buf();
    let dockerds = dockerds_of(&run_dir);
    assert_eq!(dockerds.len(), 2);
    let h1_dockerd = dockerds
        .iter()
        .copied()
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&format!("{}/h1/", run_dir.display()))
        })
        .unwrap();
    let h1_family = family(h1_dockerd);
    assert!(
        h1_family.iter().any(|(_, comm)| comm == "sleep"),
        "{h1_family:?}"
    );

    target.kill("h1").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(survivors(&h1_family), [], "everything h1 ran died at once");
    let error = target.inspect_container("h1", "c1").await.unwrap_err();
    assert!(error.message.contains("was killed"), "{error}");
    let error = target.kill("h1").await.unwrap_err();
    assert!(error.message.contains("was killed"), "{error}");
    let info = target.inspect_container("h2", "c1").await.unwrap();
    assert_eq!(info["State"]["Status"], "running", "h2 goes on");
    assert!(target.dump("h1").await.contains("dockerd log"));

    target.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!run_dir.exists());
    assert!(processes_under(&run_dir).is_empty());
    assert_eq!(run_cgroups(&run_id), Vec::<PathBuf>::new());
}
