//! `drydock conform` against Docker Engine, as a user runs it.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{drydock, ip, machine_lock, namespace_holders, privileged};

fn fixture(name: &str) -> String {
    format!(
        "{}/conformance/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The docker target's folders of run `run_id` still on the machine.
fn docker_run_dirs(run_id: &str) -> Vec<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("drydock-docker-{run_id}-")))
        .collect()
}

#[test]
fn a_wrong_expectation_reads_as_expected_vs_observed_with_a_dump() {
    if !privileged() {
        return;
    }
    // Persistent labs of the tests beside this one mount namespaces in /run/netns meanwhile.
    let _machine = machine_lock();
    let netns_before = ip(&["netns", "list"]);
    let reports = tempfile::tempdir().unwrap();
    let junit = reports.path().join("junit.xml");
    let markdown = reports.path().join("report.md");
    let json = reports.path().join("report.json");
    let output = drydock(false)
        .args(["conform", &fixture("wrong-expectation.yaml"), "--report"])
        .arg(format!(
            "junit={},md={},json={}",
            junit.display(),
            markdown.display(),
            json.display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "wrong-expectation.yaml:9: container web ip on my-net is 172.18.0.99",
        "  expected: NetworkSettings.Networks.my-net.IPAddress = 172.18.0.99",
        "  observed: NetworkSettings.Networks.my-net.IPAddress = 172.18.0.2",
        "wrong-expectation.yaml:10: lonely reaches web:80/tcp",
        "  expected: reached",
        "  observed: 172.18.0.2:80/tcp: timed out",
        "==== docker host h1",
        "==== container web",
        ": 0 passed, 1 failed, 0 skipped",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The result is printed once, as the scenario ends; no progress line repeats it.
    let results: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("wrong-expectation.yaml)") && !l.starts_with("----"))
        .collect();
    assert_eq!(results.len(), 1, "{stdout}");
    assert!(
        results[0].starts_with("[reference 1/1] FAIL ")
            && results[0].contains("s  a deliberately wrong expectation  ("),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("wrong expectation"), "{stderr}");
    let junit = std::fs::read_to_string(junit).unwrap();
    assert!(
        junit.contains("<failure message=\"container web ip on my-net is 172.18.0.99: expected"),
        "{junit}"
    );
    let markdown = std::fs::read_to_string(markdown).unwrap();
    assert!(
        markdown.contains("## FAIL: a deliberately wrong expectation"),
        "{markdown}"
    );

    // Nothing of the run is left: no daemon folder (with its data root), no namespace.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let run_id = json["run_id"].as_str().unwrap();
    assert_eq!(json["totals"]["failed"], 1);
    assert_eq!(docker_run_dirs(run_id), Vec::<String>::new());
    assert_eq!(ip(&["netns", "list"]), netns_before);
}

#[test]
fn a_malformed_scenario_is_located_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: x\nchecks: y\nsource: z\nsteps:\n  - docker run -d --name web --netwrk n busybox\n",
    )
    .unwrap();
    let output = drydock(false).arg("conform").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let located = format!(
        "{}:5:30: unexpected argument '--netwrk' found",
        file.display()
    );
    assert!(stderr.contains(&located), "{stderr}");
}

/// Network namespaces `pid` holds open as file descriptors (like `net:[4026532]`).
fn namespaces_held_by(pid: u32) -> BTreeSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("net:["))
        .collect()
}

/// What a run could leave on the machine: its namespaces and links, named namespaces,
/// drydock's folders in /tmp, and the machine's own nftables tables.
fn machine_state() -> (String, String, BTreeSet<String>, String) {
    let tmp = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("drydock-"))
        .collect();
    let nft = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft runs");
    (
        ip(&["netns", "list"]),
        ip(&["-br", "link"]),
        tmp,
        String::from_utf8(nft.stdout).unwrap(),
    )
}

/// Starts the reference suite, sends `signal` once it holds a lab mid-scenario, and asserts
/// that nothing of the run is left. Returns how the run ended.
fn interrupt_reference_run(signal: Signal) -> ExitStatus {
    let _machine = machine_lock();
    let before = machine_state();
    let scenarios = format!("{}/scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut child = drydock(false)
        .args([
            "conform",
            "--target",
            "reference",
            "--jobs",
            "2",
            &scenarios,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held = BTreeSet::new();
    while held.len() < 2 {
        assert!(Instant::now() < deadline, "the run never built a lab");
        std::thread::sleep(Duration::from_millis(20));
        held.extend(namespaces_held_by(child.id()));
    }
    // Well into a scenario: containers made, resolvers and probes running.
    std::thread::sleep(Duration::from_millis(700));
    held.extend(namespaces_held_by(child.id()));

    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();

    for namespace in &held {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !namespace_holders(namespace).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            namespace_holders(namespace),
            Vec::<String>::new(),
            "nothing keeps {namespace} of the {signal} run alive"
        );
    }
    let after = machine_state();
    assert_eq!(
        (&after.0, &after.1, &after.3),
        (&before.0, &before.1, &before.3)
    );
    // Labs of tests running beside this one have engine and host folders of their own;
    // anything else new in /tmp is the run's.
    let left: Vec<_> = after
        .2
        .difference(&before.2)
        .filter(|name| !lab_of_another_process(name, child.id()))
        .collect();
    assert_eq!(left, Vec::<&String>::new(), "left in /tmp");
    status
}

/// True for `drydock-engines-PID` and `drydock-lab-PID` of a process other than `run` (a lab
/// of another test).
fn lab_of_another_process(name: &str, run: u32) -> bool {
    ["drydock-engines-", "drydock-lab-"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| pid != run)
}

#[test]
fn sigkill_mid_scenario_leaves_nothing() {
    if !privileged() {
        return;
    }
    let status = interrupt_reference_run(Signal::SIGKILL);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
}

#[test]
fn ctrl_c_mid_scenario_cancels_and_leaves_nothing() {
    if !privileged() {
        return;
    }
    let status = interrupt_reference_run(Signal::SIGINT);
    assert_eq!(status.code(), Some(130), "{status}");
}
