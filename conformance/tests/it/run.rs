//! The runner: against Docker Engine (captures normalize to the same lines on every run; an
//! interrupted run leaves nothing), and against lab hosts alone (probe errors, banners,
//! captures that saw nothing, timeouts, cancellation).

use std::path::Path;
use std::time::Duration;

use drydock_conformance::probe::ListenKind;
use drydock_conformance::run::{Cancel, Options, Outcome, Status, Verdict, run_one};
use drydock_conformance::scenario::Scenario;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::{Target, TargetError, TargetResult};
use drydock_conformance::version::Version;
use drydock_netsim::{Lab, Netns};

fn fixture(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn options() -> Options {
    Options {
        jobs: 1,
        timeout: Duration::from_secs(120),
        probe_timeout: Duration::from_secs(1),
        plugin: None,
    }
}

/// A run id of this process, `n`th of its kind.
fn run_id(kind: &str, n: usize) -> String {
    format!("{kind}{}-{n}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalized_captures_are_the_same_on_every_run() {
    if !crate::privileged() {
        return;
    }
    let scenario = fixture("ping-capture.yaml");
    let first =
        run_one::<DockerTarget>(&scenario, &options(), &run_id("test", 0), &Cancel::new()).await;
    let second =
        run_one::<DockerTarget>(&scenario, &options(), &run_id("test", 1), &Cancel::new()).await;
    assert_eq!(first.verdict, Verdict::Pass, "{:#?}", first.results);
    assert_eq!(second.verdict, Verdict::Pass, "{:#?}", second.results);
    let lines = |o: &drydock_conformance::run::Outcome| -> Vec<Vec<String>> {
        o.captures.iter().map(|c| c.lines.clone()).collect()
    };
    assert_eq!(
        lines(&first),
        lines(&second),
        "two runs, two different captures"
    );
    insta::assert_yaml_snapshot!(lines(&first));
}

/// The overlay scenario whose captures show the VXLAN underlay (a swarm of three daemons, one
/// behind a router): every run summarizes to the same normalized lines, VNI and inner packets
/// included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vxlan_underlay_captures_are_the_same_on_every_run() {
    if !crate::privileged() {
        return;
    }
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/overlay/vxlan-underlay.yaml");
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut runs = Vec::new();
    for n in 0..2 {
        let outcome =
            run_one::<DockerTarget>(&scenario, &options(), &run_id("vxlan", n), &Cancel::new())
                .await;
        assert_eq!(outcome.verdict, Verdict::Pass, "{:#?}", outcome.results);
        let lines: Vec<(String, Vec<String>)> = (outcome.captures.iter())
            .map(|c| (c.on.clone(), c.lines.clone()))
            .collect();
        runs.push(lines);
    }
    assert_eq!(runs[0], runs[1], "two runs, two different captures");
    insta::assert_yaml_snapshot!(runs[0]);
}

/// A target without an engine: scenarios made of lab hosts only (`drydock listen` steps,
/// probes between hosts, captures on their interfaces) run against it, no Docker needed. It
/// starts after `DELAY` seconds (an engine's startup time), with ext's port 8080 redirected to
/// its port 80 when `REDIRECT`.
struct NoEngine<const DELAY: u64 = 0, const REDIRECT: bool = false>;

fn no_engine<T>() -> TargetResult<T> {
    Err(TargetError::new("this test's target has no engine"))
}

impl<const DELAY: u64, const REDIRECT: bool> Target for NoEngine<DELAY, REDIRECT> {
    /// Never handed out: [`Target::api`] always refuses.
    type Api = tokio::sync::Mutex<drydock_runtime::engine::Engine>;

    async fn start(lab: &Lab, _: &[String], _: &str) -> TargetResult<Self> {
        if REDIRECT {
            redirect_8080_to_80(lab);
        }
        tokio::time::sleep(Duration::from_secs(DELAY)).await;
        Ok(NoEngine)
    }
    async fn stop(self) {}
    fn describe(&self) -> String {
        "no engine".into()
    }
    fn version(&self) -> Version {
        Version(20, 10, 24)
    }
    fn api(&self, _: &str) -> TargetResult<&Self::Api> {
        no_engine()
    }
    async fn container_netns(&self, _: &str, _: &str) -> TargetResult<Netns> {
        no_engine()
    }
    async fn container_file(&self, _: &str, _: &str, _: &str) -> TargetResult<String> {
        no_engine()
    }
    async fn kill(&self, _: &str) -> TargetResult<()> {
        no_engine()
    }
    fn plugins_dir(&self, _: &str) -> TargetResult<std::path::PathBuf> {
        no_engine()
    }
    async fn dump(&self, _: &str) -> String {
        String::new()
    }
}

/// A scenario of lab hosts h1 (docker host, without engine here) and ext.
fn hosts_only(expect: &str, capture: &str) -> Scenario {
    let text = format!(
        "name: lab hosts only\nchecks: the runner itself\nsource: drydock's own test\n\
         external: [ext]\nsteps:\n  - drydock listen ext tcp/80\nexpect:\n{expect}{capture}"
    );
    Scenario::parse(&text, "hosts-only.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn status_of<'a>(outcome: &'a Outcome, line: &str) -> &'a Status {
    &outcome
        .results
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("no result for {line:?} in {:#?}", outcome.results))
        .status
}

fn is_setup_failure(status: &Status) -> bool {
    matches!(status, Status::Fail { expected, .. } if expected == "the probe to run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_cannot_run_fails_whatever_was_expected() {
    if !crate::privileged() {
        return;
    }
    // fe80::1 without a scope: connect fails with EINVAL before any packet leaves.
    let scenario = hosts_only(
        "  - h1 cannot-reach [fe80::1]:80/tcp\n  - h1 cannot-reach [fe80::1]:80/udp timeout\n  \
         - h1 reaches ext:80/tcp\n  - h1 cannot-reach ext:81/tcp refused\n",
        "",
    );
    let outcome = run_one::<NoEngine>(&scenario, &options(), "x", &Cancel::new()).await;
    assert_eq!(outcome.verdict, Verdict::Fail, "{:#?}", outcome.results);
    for line in [
        "h1 cannot-reach [fe80::1]:80/tcp",
        "h1 cannot-reach [fe80::1]:80/udp timeout",
    ] {
        let status = status_of(&outcome, line);
        assert!(is_setup_failure(status), "{line}: {status:?}");
    }
    // Addresses read as socket addresses, IPv6 in brackets.
    match status_of(&outcome, "h1 cannot-reach [fe80::1]:80/tcp") {
        Status::Fail { observed, .. } => {
            assert_eq!(observed, "[fe80::1]:80/tcp: error: Invalid argument")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*status_of(&outcome, "h1 reaches ext:80/tcp"), Status::Pass);
    assert_eq!(
        *status_of(&outcome, "h1 cannot-reach ext:81/tcp refused"),
        Status::Pass
    );
}

/// Makes ext's port 8080 lead to its port 80, for packets from outside and from ext itself.
fn redirect_8080_to_80(lab: &Lab) {
    let ext = lab.host("ext").expect("host ext");
    for rule in [
        "add table ip lab",
        "add chain ip lab pre { type nat hook prerouting priority -100 ; }",
        "add chain ip lab out { type nat hook output priority -100 ; }",
        "add rule ip lab pre tcp dport 8080 redirect to :80",
        "add rule ip lab out tcp dport 8080 redirect to :80",
    ] {
        let output = ext.command("nft", None).arg(rule).output().expect("nft");
        assert!(output.status.success(), "nft {rule}: {output:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaches_by_address_and_loopback_check_who_answered() {
    if !crate::privileged() {
        return;
    }
    let scenario = hosts_only(
        "  - h1 reaches 10.10.0.2:80/tcp\n  - h1 reaches 10.10.0.2:8080/tcp\n  \
         - ext reaches 127.0.0.1:80/tcp\n  - ext reaches 127.0.0.1:8080/tcp\n",
        "",
    );
    let mut scenario = scenario;
    let mut second = scenario.steps[0].clone();
    second.command = drydock_conformance::scenario::Command::Listen {
        host: "ext".into(),
        kind: ListenKind::Tcp,
        port: 8080,
    };
    second.line = "drydock listen ext tcp/8080".into();
    scenario.steps.push(second);
    let outcome = run_one::<NoEngine<0, true>>(&scenario, &options(), "x", &Cancel::new()).await;
    for line in [
        "h1 reaches 10.10.0.2:80/tcp",
        "ext reaches 127.0.0.1:80/tcp",
    ] {
        assert_eq!(*status_of(&outcome, line), Status::Pass, "{line}");
    }
    // Port 8080 is answered by the port-80 listener: by address as by loopback, the banner
    // tells.
    for (line, at) in [
        ("h1 reaches 10.10.0.2:8080/tcp", "10.10.0.2:8080"),
        ("ext reaches 127.0.0.1:8080/tcp", "127.0.0.1:8080"),
    ] {
        assert_eq!(
            *status_of(&outcome, line),
            Status::Fail {
                expected: "to reach the listener answering \"drydock ext 8080\"".into(),
                observed: format!("{at}/tcp: reached (banner: drydock ext 80)"),
            },
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_of_only_none_checks_must_see_something() {
    if !crate::privileged() {
        return;
    }
    let scenario = hosts_only(
        "  - h1 reaches ext:80/tcp\n",
        "capture:\n  - on: ext/eth0\n    filter: tcp\n    expect: [none: udp port 53, some: tcp port 80]\n  \
         - on: h1/lo\n    expect: [none: udp]\n  \
         - on: ext/lo\n    allow-empty: true\n    expect: [none: udp]\n",
    );
    let outcome = run_one::<NoEngine>(&scenario, &options(), "x", &Cancel::new()).await;
    assert_eq!(
        *status_of(&outcome, "capture on ext/eth0: none: udp port 53"),
        Status::Pass
    );
    assert_eq!(
        *status_of(&outcome, "capture on ext/eth0: some: tcp port 80"),
        Status::Pass
    );
    match status_of(&outcome, "capture on h1/lo") {
        Status::Fail { observed, expected } => {
            assert_eq!(observed, "no packet at all");
            assert!(expected.contains("allow-empty"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        *status_of(&outcome, "capture on ext/lo: none: udp"),
        Status::Pass
    );
    assert_eq!(outcome.verdict, Verdict::Fail);
    // The capture reports what it saw before its filter.
    let eth0 = &outcome.captures[0];
    assert!(
        eth0.seen >= eth0.lines.len() && !eth0.lines.is_empty(),
        "{eth0:?}"
    );
}

/// An address of the lab's segment that no host has: a connect there waits for ARP.
const NOBODY: &str = "10.10.0.99";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_names_the_running_check_and_skips_the_rest() {
    if !crate::privileged() {
        return;
    }
    let scenario = hosts_only(
        &format!(
            "  - h1 reaches ext:80/tcp\n  - h1 reaches {NOBODY}:80/tcp\n  - h1 reaches ext:80/udp\n"
        ),
        "capture:\n  - on: ext/eth0\n    expect: [some: tcp]\n",
    );
    let options = Options {
        timeout: Duration::from_secs(2),
        probe_timeout: Duration::from_secs(30),
        plugin: None,
        ..options()
    };
    let outcome = run_one::<NoEngine>(&scenario, &options, "x", &Cancel::new()).await;
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert_eq!(*status_of(&outcome, "h1 reaches ext:80/tcp"), Status::Pass);
    match status_of(&outcome, &format!("h1 reaches {NOBODY}:80/tcp")) {
        Status::Fail { observed, .. } => assert_eq!(
            observed,
            "still running when the scenario's timeout (2 s) hit"
        ),
        other => panic!("{other:?}"),
    }
    for line in ["h1 reaches ext:80/udp", "capture on ext/eth0: some: tcp"] {
        match status_of(&outcome, line) {
            Status::Skip { reason } => {
                assert_eq!(reason, "not run: the scenario's timeout (2 s) hit")
            }
            other => panic!("{line}: {other:?}"),
        }
    }

    // The engine's startup counts too.
    let started = std::time::Instant::now();
    let outcome = run_one::<NoEngine<60>>(&scenario, &options, "x", &Cancel::new()).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(outcome.verdict, Verdict::Fail);
    match status_of(&outcome, "(setup)") {
        Status::Fail { observed, .. } => assert_eq!(
            observed,
            "the target did not start within the scenario's timeout (2 s)"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        status_of(&outcome, "h1 reaches ext:80/tcp"),
        Status::Skip { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stops_and_skips() {
    if !crate::privileged() {
        return;
    }
    let scenario = hosts_only(
        &format!("  - h1 reaches {NOBODY}:80/tcp\n  - h1 reaches ext:80/tcp\n"),
        "",
    );
    let options = Options {
        probe_timeout: Duration::from_secs(30),
        plugin: None,
        ..options()
    };
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.cancel();
    });
    let started = std::time::Instant::now();
    let scenarios = [scenario.clone(), scenario];
    let outcomes =
        drydock_conformance::suite::run_on::<NoEngine>(&scenarios, &options, "x", &|_| {}, &cancel)
            .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(outcomes[0].verdict, Verdict::Skip("interrupted".into()));
    assert_eq!(
        *status_of(&outcomes[0], &format!("h1 reaches {NOBODY}:80/tcp")),
        Status::Skip {
            reason: "the run was interrupted while it ran".into()
        }
    );
    assert_eq!(
        *status_of(&outcomes[0], "h1 reaches ext:80/tcp"),
        Status::Skip {
            reason: "not run: the run was interrupted".into()
        }
    );
    assert_eq!(
        outcomes[1].verdict,
        Verdict::Skip("interrupted before it started".into())
    );
}

/// The cgroups `drydock/RUN...` of runs whose id starts with `run_id`, in every hierarchy.
fn cgroups_of(run_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for mount in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let parent = mount.path().join("drydock");
        for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(run_id) && entry.path().is_dir() {
                found.push(entry.path().display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_docker_run_leaves_nothing_behind() {
    if !crate::privileged() {
        return;
    }
    // Networks isolate each other by dropping: the check waits for the whole probe timeout.
    let scenario = Scenario::parse(
        "name: a long check\nchecks: cancellation\nsource: drydock's own test\nsteps:\n  \
         - docker network create n1\n  - docker network create n2\n  \
         - docker run -d --name server --network n1 --listen tcp/80 busybox\n  \
         - docker run -d --name client --network n2 busybox\nexpect:\n  \
         - client cannot-reach server:80/tcp\n",
        "long.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let options = Options {
        probe_timeout: Duration::from_secs(60),
        plugin: None,
        ..options()
    };
    let run = format!("cancel{}", std::process::id());
    // Once while the engine starts, once while the checks run.
    for (n, after) in [Duration::from_millis(300), Duration::from_secs(8)]
        .into_iter()
        .enumerate()
    {
        let cancel = Cancel::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            trigger.cancel();
        });
        let outcome =
            run_one::<DockerTarget>(&scenario, &options, &format!("{run}-{n}"), &cancel).await;
        assert!(
            matches!(&outcome.verdict, Verdict::Skip(why) if why.starts_with("interrupted")),
            "{after:?}: {:?} {:#?}",
            outcome.verdict,
            outcome.results
        );
        let dirs: Vec<String> = std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&format!("drydock-docker-{run}-")))
            .collect();
        assert_eq!(dirs, Vec::<String>::new(), "{after:?}");
        assert_eq!(cgroups_of(&run), Vec::<String>::new(), "{after:?}");
    }
}
