//! `drydock conform` against Docker Engine, as a user runs it.

use crate::{drydock, ip, privileged};

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
