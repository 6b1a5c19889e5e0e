//! `drydock doctor`: the feature table, and the override that forces userspace fallbacks.

use crate::{drydock, privileged};

fn doctor_json(force_absent: &str) -> Vec<serde_json::Value> {
    let output = drydock(false)
        .args(["doctor", "--json"])
        .env("DRYDOCK_FORCE_ABSENT", force_absent)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_absent_feature_names_what_drydock_uses_instead() {
    if !privileged() {
        return;
    }
    for row in doctor_json("") {
        let uses = row["drydock_uses"].as_str().unwrap();
        if row["kernel"] == true {
            assert_eq!(uses, "kernel", "{row}");
        } else {
            assert!(
                uses.starts_with("userspace: ")
                    || uses.starts_with("nothing: ")
                    || uses.starts_with("nothing yet (planned userspace: "),
                "{row}"
            );
        }
    }
}

#[test]
fn forcing_features_absent_selects_their_userspace_fallbacks() {
    if !privileged() {
        return;
    }
    let rows = doctor_json("ipvlan,8021q,esp4,vxlan");
    let uses = |feature: &str| {
        let row = rows.iter().find(|r| r["feature"] == feature).unwrap();
        row["drydock_uses"].as_str().unwrap().to_string()
    };
    assert!(uses("ipvlan").starts_with("userspace: ipvlan datapath"));
    assert!(uses("8021q").starts_with("userspace: TAP sub-interface"));
    assert!(uses("esp4").starts_with("nothing yet (planned userspace: ESP (rfc4106"));
    assert!(uses("vxlan").starts_with("nothing yet (planned userspace: VXLAN over UDP"));
    assert_eq!(uses("bridge"), "kernel");
}

#[test]
fn an_unknown_forced_feature_is_an_error() {
    let output = drydock(false)
        .arg("doctor")
        .env("DRYDOCK_FORCE_ABSENT", "ipvlan,vlan")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DRYDOCK_FORCE_ABSENT: unknown feature \"vlan\""),
        "{stderr}"
    );
}
