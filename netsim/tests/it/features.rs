//! The feature probe agrees with an independent witness: iproute2 and nft in a fresh namespace.

use drydock_netsim::KernelFeatures;
use drydock_netsim::features::Feature;

/// Runs `script` with sh in a new network namespace; true when it succeeds.
fn witness(script: &str) -> bool {
    std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", script])
        .output()
        .expect("unshare runs")
        .status
        .success()
}

fn witness_script(feature: Feature) -> &'static str {
    match feature {
        Feature::Veth => "ip link add va type veth peer name vb",
        Feature::Bridge => "ip link add wbr type bridge",
        Feature::Macvlan => {
            "ip link add p type veth peer name q && ip link add wm link p type macvlan mode bridge"
        }
        Feature::Ipvlan => {
            "ip link add p type veth peer name q && ip link add wi link p type ipvlan mode l2"
        }
        Feature::Vxlan => "ip link add wvx type vxlan id 42 dstport 4789",
        Feature::Vlan8021q => {
            "ip link add p type veth peer name q && ip link add link p name p.10 type vlan id 10"
        }
        Feature::Dummy => "ip link add wd type dummy",
        Feature::Tun => "ip tuntap add dev wt mode tap",
        Feature::Nftables => "nft add table inet witness",
        Feature::EspGcm => {
            "ip xfrm state add src 127.0.0.1 dst 127.0.0.2 proto esp spi 0x1000 mode transport \
             aead 'rfc4106(gcm(aes))' 0x4242424242424242424242424242424242424242 64"
        }
    }
}

#[tokio::test]
async fn probe_matches_iproute2_and_nft() {
    if !crate::privileged() {
        return;
    }
    let features = KernelFeatures::probe().await.unwrap();
    for status in features.statuses() {
        let expected = witness(witness_script(status.feature));
        assert_eq!(
            status.kernel.is_ok(),
            expected,
            "{}: probe says {:?}, the witness {}",
            status.feature,
            status.kernel,
            if expected { "succeeded" } else { "failed" }
        );
    }
}
