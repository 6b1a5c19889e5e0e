//! The lab, capture and feature tests again, as `nobody` inside a user namespace: netsim works
//! without privileges wherever the kernel allows it.

use std::process::Command;

#[test]
fn lab_capture_and_feature_tests_pass_as_nobody() {
    // Becoming nobody needs root; everything after that runs without privileges.
    if !crate::privileged() {
        return;
    }
    let this_binary = std::env::current_exe().unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args(["unshare", "--user", "--map-root-user"])
        .arg(this_binary)
        .args(["lab::", "capture::", "features::", "--test-threads=2"])
        // With CI set, a test that found itself unprivileged would fail instead of skipping.
        .env("CI", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let passed: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 10,
        "expected the lab, capture and feature tests to run: {stdout}"
    );
}
