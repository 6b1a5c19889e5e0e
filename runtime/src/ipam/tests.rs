//! Unit tests of the IPAM. Expected values were observed on Docker Engine 20.10.24 (scenarios
//! run with `drydock conform`, or the daemon's API where the CLI refuses a request itself)
//! unless a test says otherwise.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rstest::rstest;

use super::*;

fn net(text: &str) -> IpNetwork {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// An engine after start: the default bridge holds 172.17.0.0/16, asked for explicitly.
fn engine() -> (Ipam, PoolId) {
    let mut ipam = Ipam::new();
    let bridge = ipam
        .request_pool(&PoolRequest::subnet(net("172.17.0.0/16")))
        .unwrap();
    (ipam, bridge)
}

fn auto(ipam: &mut Ipam) -> Result<IpNetwork, IpamError> {
    ipam.request_pool(&PoolRequest::auto(false))
        .map(|id| ipam.pool(id).subnet)
}

fn auto_id(ipam: &mut Ipam) -> PoolId {
    ipam.request_pool(&PoolRequest::auto(false)).unwrap()
}

fn user(ipam: &mut Ipam, subnet: &str) -> Result<PoolId, IpamError> {
    ipam.request_pool(&PoolRequest::subnet(net(subnet)))
}

fn with(
    subnet: &str,
    range: Option<&str>,
    gateway: Option<&str>,
    aux: &[(&str, &str)],
) -> PoolRequest {
    PoolRequest {
        subnet: Some(net(subnet)),
        ip_range: range.map(net),
        gateway: gateway.map(ip),
        aux_addresses: aux.iter().map(|(k, v)| (k.to_string(), ip(v))).collect(),
        v6: net(subnet).is_ipv6(),
    }
}

fn next(ipam: &mut Ipam, id: PoolId) -> IpAddr {
    ipam.request_address(id, None).unwrap()
}

// ---- predefined pools and the cursor ----

#[rstest]
#[case(0, "172.17.0.0/16")]
#[case(1, "172.18.0.0/16")]
#[case(2, "172.19.0.0/16")]
#[case(3, "172.20.0.0/16")]
#[case(6, "172.23.0.0/16")]
#[case(7, "172.24.0.0/16")]
#[case(11, "172.28.0.0/16")]
#[case(14, "172.31.0.0/16")]
#[case(15, "192.168.0.0/20")]
#[case(16, "192.168.16.0/20")]
#[case(17, "192.168.32.0/20")]
#[case(30, "192.168.240.0/20")]
fn predefined_order(#[case] index: usize, #[case] subnet: &str) {
    let ipam = Ipam::new();
    assert_eq!(ipam.predefined().count(), 31);
    assert_eq!(ipam.predefined().nth(index), Some(net(subnet)));
}

/// scenarios/bridge/default-pools.yaml; /tmp exhaust scenario: n1=172.18, n3=172.20, n4=172.21,
/// n8=172.25, n12=172.29, n14=172.31, n15=192.168.0.0/20, n30=192.168.240.0/20, n31 fails.
#[test]
fn automatic_subnets_follow_the_list_then_run_out() {
    let (mut ipam, _) = engine();
    let got: Vec<IpNetwork> = (0..30).map(|_| auto(&mut ipam).unwrap()).collect();
    let want: Vec<IpNetwork> = ipam.predefined().skip(1).collect();
    assert_eq!(got, want);
    let err = auto(&mut ipam).unwrap_err();
    assert_eq!(err, IpamError::NoDefaultPool { v6: false });
    assert_eq!(
        err.to_string(),
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    );
}

#[test]
fn gateway_is_first_host_and_first_container_second() {
    let (mut ipam, bridge) = engine();
    assert_eq!(ipam.pool(bridge).gateway, Some(ip("172.17.0.1")));
    let first = auto_id(&mut ipam);
    assert_eq!(ipam.pool(first).subnet, net("172.18.0.0/16"));
    assert_eq!(ipam.pool(first).gateway, Some(ip("172.18.0.1")));
    assert!(!ipam.pool(first).is_user_subnet());
    assert_eq!(next(&mut ipam, first), ip("172.18.0.2"));
}

/// scenarios/bridge/default-pools.yaml: after `rm second` the next network gets 172.22, not
/// the freed 172.19.
#[test]
fn cursor_skips_freed_subnets() {
    let (mut ipam, _) = engine();
    let _first = auto_id(&mut ipam);
    let second = auto_id(&mut ipam);
    let _third = auto_id(&mut ipam);
    let _fourth = auto_id(&mut ipam);
    assert_eq!(ipam.pool(second).subnet, net("172.19.0.0/16"));
    ipam.release_pool(second);
    assert_eq!(auto(&mut ipam).unwrap(), net("172.22.0.0/16"));
}

/// Observed: the cursor goes back to 0 once it passes the end — it is not taken modulo the list
/// length. With 192.168.240.0/20 pinned by the user and n1..n29 automatic (cursor at 30): rm n2;
/// x1 wraps and gets 172.19 (cursor reset to 0, modulo would make it 3); rm n1, rm n10; x2 gets
/// 172.18 (from 0; modulo would have given 172.27), x3 172.27.
#[test]
fn cursor_resets_to_zero_after_wrapping() {
    let (mut ipam, _) = engine();
    user(&mut ipam, "192.168.240.0/20").unwrap();
    let n: Vec<PoolId> = (1..=29).map(|_| auto_id(&mut ipam)).collect();
    assert_eq!(ipam.pool(n[28]).subnet, net("192.168.224.0/20"));
    ipam.release_pool(n[1]);
    assert_eq!(auto(&mut ipam).unwrap(), net("172.19.0.0/16"));
    ipam.release_pool(n[0]);
    ipam.release_pool(n[9]);
    assert_eq!(auto(&mut ipam).unwrap(), net("172.18.0.0/16"));
    assert_eq!(auto(&mut ipam).unwrap(), net("172.27.0.0/16"));
    assert!(auto(&mut ipam).is_err());
}

/// After the last subnet is handed out the cursor is 0, so a freed subnet comes back at once.
#[test]
fn freed_subnet_is_reused_after_the_list_end() {
    let (mut ipam, _) = engine();
    let n: Vec<PoolId> = (0..30).map(|_| auto_id(&mut ipam)).collect();
    ipam.release_pool(n[4]);
    assert_eq!(auto(&mut ipam).unwrap(), net("172.22.0.0/16"));
}

/// scenarios/lifecycle/overlapping-subnets.yaml and observed variants: automatic subnets skip
/// those overlapping user subnets; user subnets leave the cursor alone.
#[rstest]
#[case("172.18.0.0/16", "172.19.0.0/16")]
#[case("172.18.5.0/24", "172.19.0.0/16")]
#[case("172.18.0.0/15", "172.20.0.0/16")]
#[case("192.168.0.0/16", "172.18.0.0/16")]
#[case("10.99.0.0/24", "172.18.0.0/16")]
fn automatic_subnets_skip_user_subnets(#[case] taken: &str, #[case] got: &str) {
    let (mut ipam, _) = engine();
    let id = user(&mut ipam, taken).unwrap();
    assert!(ipam.pool(id).is_user_subnet());
    assert_eq!(auto(&mut ipam).unwrap(), net(got));
}

#[test]
fn automatic_subnets_avoiding_host_routes_move_the_cursor() {
    let (mut ipam, _) = engine();
    let id = ipam
        .request_pool_avoiding(&PoolRequest::auto(false), |n| *n == net("172.18.0.0/16"))
        .unwrap();
    assert_eq!(ipam.pool(id).subnet, net("172.19.0.0/16"));
    // The skipped subnet was released, the cursor moved past it.
    assert_eq!(auto(&mut ipam).unwrap(), net("172.20.0.0/16"));
    assert!(user(&mut ipam, "172.18.0.0/16").is_ok());
    let err = ipam
        .request_pool_avoiding(&PoolRequest::auto(false), |_| true)
        .unwrap_err();
    assert_eq!(err, IpamError::NoDefaultPool { v6: false });
    // Everything held during the failed search was released again.
    assert_eq!(ipam.pools().count(), 4);
}

/// B04 (moby TestDaemonDefaultNetworkPools): `--default-address-pool base=175.30.0.0/16,size=16
/// --default-address-pool base=175.33.0.0/16,size=24`.
#[test]
fn custom_default_address_pools() {
    let mut ipam =
        Ipam::with_default_address_pools(&[(net("175.30.0.0/16"), 16), (net("175.33.0.0/16"), 24)])
            .unwrap();
    assert_eq!(ipam.predefined().count(), 257);
    let bridge = ipam.predefined().next().unwrap();
    assert_eq!(bridge, net("175.30.0.0/16"));
    ipam.request_pool(&PoolRequest::subnet(bridge)).unwrap();
    assert_eq!(auto(&mut ipam).unwrap(), net("175.33.0.0/24"));
    assert_eq!(auto(&mut ipam).unwrap(), net("175.33.1.0/24"));
}

#[rstest]
#[case("10.0.0.0/16", 8)]
#[case("10.0.0.0/16", 0)]
#[case("10.0.0.0/16", 33)]
fn invalid_default_pool_size(#[case] base: &str, #[case] size: u8) {
    let err = Ipam::with_default_address_pools(&[(net(base), size)]).unwrap_err();
    assert_eq!(err.to_string(), format!("invalid pools size: {size}"));
}

#[test]
fn ipv6_has_no_default_pools() {
    let (mut ipam, _) = engine();
    let err = ipam.request_pool(&PoolRequest::auto(true)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"
    );
}

// ---- user subnets ----

#[rstest]
#[case("192.168.0.0/16", "192.168.128.0/17")]
#[case("192.168.0.0/16", "192.168.0.0/16")]
#[case("192.168.0.0/16", "192.0.0.0/8")]
#[case("172.17.0.0/16", "172.17.5.0/24")]
#[case("172.17.0.0/16", "172.16.0.0/12")]
#[case("10.33.0.77/24", "10.33.0.0/24")]
#[case("10.71.0.0/24", "10.71.0.0/25")]
#[case("fd00:db8:1::/64", "fd00:db8:1:0:1::/80")]
#[case("fd00:db8:1::/64", "fd00:db8:1::/64")]
fn overlapping_user_subnet_is_refused(#[case] existing: &str, #[case] new: &str) {
    let mut ipam = Ipam::new();
    user(&mut ipam, existing).unwrap();
    let before = ipam.pools().count();
    let err = user(&mut ipam, new).unwrap_err();
    assert_eq!(err, IpamError::PoolOverlap);
    assert_eq!(
        err.to_string(),
        "Pool overlaps with other one on this address space"
    );
    assert_eq!(ipam.pools().count(), before);
}

#[rstest]
#[case("192.168.0.0/16", "10.99.0.0/24")]
#[case("10.1.0.0/24", "10.1.1.0/24")]
#[case("10.1.0.0/24", "fd00::/64")]
fn disjoint_user_subnets_coexist(#[case] a: &str, #[case] b: &str) {
    let mut ipam = Ipam::new();
    user(&mut ipam, a).unwrap();
    user(&mut ipam, b).unwrap();
}

#[test]
fn subnet_is_masked_and_freed_subnet_can_be_taken_again() {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "10.33.0.77/24").unwrap();
    assert_eq!(ipam.pool(id).subnet, net("10.33.0.0/24"));
    assert_eq!(ipam.pool(id).gateway, Some(ip("10.33.0.1")));
    assert_eq!(next(&mut ipam, id), ip("10.33.0.2"));
    ipam.release_pool(id);
    assert!(ipam.get(id).is_none());
    let again = user(&mut ipam, "10.33.0.0/24").unwrap();
    assert_ne!(again, id);
    assert_eq!(next(&mut ipam, again), ip("10.33.0.2"));
}

// ---- gateway, ip-range, auxiliary addresses ----

#[rstest]
#[case::network_address(with("10.20.0.0/24", None, Some("10.20.0.0"), &[]),
    "failed to allocate gateway (10.20.0.0): Address already in use")]
#[case::broadcast(with("10.21.0.0/24", None, Some("10.21.0.255"), &[]),
    "failed to allocate gateway (10.21.0.255): Address already in use")]
#[case::slash31(with("10.25.0.0/31", None, None, &[]),
    "failed to allocate gateway (): No available addresses on this pool")]
#[case::slash32(with("10.25.0.0/32", None, None, &[]),
    "failed to allocate gateway (): No available addresses on this pool")]
#[case::outside(with("10.61.0.0/24", None, Some("10.62.0.1"), &[]),
    "failed to allocate gateway (10.62.0.1): Requested address is out of range")]
#[case::v6_outside(with("fd00:aa::/64", None, Some("fd00:bb::1"), &[]),
    "failed to allocate gateway (fd00:bb::1): Requested address is out of range")]
#[case::v6_network_address(with("fd00:db8:1::/64", None, Some("fd00:db8:1::"), &[]),
    "failed to allocate gateway (fd00:db8:1::): Address already in use")]
#[case::v6_range_reaches_last_bit(with("fd00:cc::/64", Some("fd00:cc::/64"), None, &[]),
    "failed to allocate gateway (): invalid bit range [0, 18446744073709551615]")]
#[case::aux_is_gateway(with("10.22.0.0/24", None, None, &[("a", "10.22.0.1")]),
    "failed to allocate secondary ip address (a:10.22.0.1): Address already in use")]
#[case::aux_outside(with("10.63.0.0/24", None, None, &[("k", "10.64.0.1")]),
    "auxiliary address: (k:10.64.0.1) must belong to the master pool: 10.63.0.0/24")]
#[case::range_other_version(with("10.70.0.0/24", Some("fd00::/64"), None, &[]),
    "failed to parse pool request for address space \"LocalDefault\" pool \"10.70.0.0/24\" subpool \"fd00::/64\": failed to compute range's lowest ip address: cannot compute host portion ip address because ip and mask are not compatible: (net.IP{0xfd, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0}, net.IPMask{0xff, 0xff, 0xff, 0x0})")]
fn network_create_errors(#[case] req: PoolRequest, #[case] text: &str) {
    let mut ipam = Ipam::new();
    let err = ipam.request_pool(&req).unwrap_err();
    assert_eq!(err.to_string(), text);
    // Nothing stays reserved: the same subnet does not overlap anything.
    assert_eq!(ipam.pools().count(), 0);
    let again = user(&mut ipam, &req.subnet.unwrap().to_string());
    assert_ne!(again.err(), Some(IpamError::PoolOverlap));
}

#[test]
fn settings_without_subnet_are_refused() {
    let mut ipam = Ipam::new();
    let req = PoolRequest {
        ip_range: Some(net("10.72.0.0/25")),
        ..PoolRequest::default()
    };
    let err = ipam.request_pool(&req).unwrap_err();
    assert_eq!(err.to_string(), "Invalid subnet  : invalid CIDR address: ");
}

/// scenarios/bridge/subnet-gateway-ip-range.yaml.
#[test]
fn ip_range_with_gateway_starts_at_range_start() {
    let mut ipam = Ipam::new();
    let req = with(
        "172.28.0.0/16",
        Some("172.28.5.0/24"),
        Some("172.28.5.254"),
        &[],
    );
    let id = ipam.request_pool(&req).unwrap();
    let pool = ipam.pool(id);
    assert_eq!(pool.subnet, net("172.28.0.0/16"));
    assert_eq!(pool.gateway, Some(ip("172.28.5.254")));
    assert_eq!(pool.ip_range, Some(net("172.28.5.0/24")));
    assert!(pool.range_contains(ip("172.28.5.9")));
    assert!(!pool.range_contains(ip("172.28.6.9")));
    assert_eq!(next(&mut ipam, id), ip("172.28.5.0"));
    assert_eq!(next(&mut ipam, id), ip("172.28.5.1"));
}

/// Observed (B05 "inferred gateway"): without `--gateway` the gateway is the range's first
/// address; `--ip` may pick any address of the subnet outside the range.
#[test]
fn ip_range_without_gateway() {
    let mut ipam = Ipam::new();
    let id = ipam
        .request_pool(&with("172.28.0.0/16", Some("172.28.5.0/24"), None, &[]))
        .unwrap();
    assert_eq!(ipam.pool(id).gateway, Some(ip("172.28.5.0")));
    assert_eq!(next(&mut ipam, id), ip("172.28.5.1"));
    assert_eq!(
        ipam.request_address(id, Some(ip("172.28.9.9"))).unwrap(),
        ip("172.28.9.9")
    );
    assert_eq!(next(&mut ipam, id), ip("172.28.5.2"));
}

/// Observed: gateway, then the containers, then nothing.
#[rstest]
#[case::small_range("10.31.0.0/24", "10.31.0.8/30", "10.31.0.8", &["10.31.0.9", "10.31.0.10", "10.31.0.11"])]
#[case::range_wider_than_subnet("10.30.0.0/24", "10.30.0.0/16", "10.30.0.1", &["10.30.0.2", "10.30.0.3"])]
#[case::unmasked_range("10.34.0.0/24", "10.34.0.130/25", "10.34.0.128", &["10.34.0.129"])]
#[case::range_outside_subnet("10.65.0.0/24", "10.66.0.0/25", "10.65.0.1", &["10.65.0.2"])]
#[case::gateway_in_v6_range("fd00:db8:1::/64", "fd00:db8:1::100/120", "fd00:db8:1::100", &["fd00:db8:1::101"])]
#[case::v6_range_in_wide_subnet("fd00:dd::/48", "fd00:dd:0:1::/120", "fd00:dd::1", &["fd00:dd::2"])]
fn ip_range_allocation(
    #[case] subnet: &str,
    #[case] range: &str,
    #[case] gateway: &str,
    #[case] containers: &[&str],
) {
    let mut ipam = Ipam::new();
    let id = ipam
        .request_pool(&with(subnet, Some(range), None, &[]))
        .unwrap();
    assert_eq!(ipam.pool(id).gateway, Some(ip(gateway)));
    for want in containers {
        assert_eq!(next(&mut ipam, id), ip(want));
    }
}

#[test]
fn full_ip_range_fails_though_the_subnet_has_room() {
    let mut ipam = Ipam::new();
    let id = ipam
        .request_pool(&with("10.31.0.0/24", Some("10.31.0.8/30"), None, &[]))
        .unwrap();
    for _ in 0..3 {
        next(&mut ipam, id);
    }
    assert_eq!(
        ipam.request_address(id, None),
        Err(IpamError::NoAvailableAddresses)
    );
    // A specific address outside the range still works.
    assert_eq!(
        ipam.request_address(id, Some(ip("10.31.0.100"))),
        Ok(ip("10.31.0.100"))
    );
}

#[test]
fn gateway_inside_range_is_skipped() {
    let mut ipam = Ipam::new();
    let id = ipam
        .request_pool(&with(
            "10.50.0.0/16",
            Some("10.50.0.0/24"),
            Some("10.50.0.1"),
            &[],
        ))
        .unwrap();
    assert_eq!(next(&mut ipam, id), ip("10.50.0.2"));
}

#[rstest]
#[case::two_aux(with("10.23.0.0/24", None, None, &[("a", "10.23.0.2"), ("b", "10.23.0.3")]), "10.23.0.4", "10.23.0.3")]
#[case::aux_outside_range(with("10.24.0.0/24", Some("10.24.0.128/25"), None, &[("a", "10.24.0.5")]), "10.24.0.129", "10.24.0.5")]
#[case::aux_before_gateway(with("10.22.0.0/24", None, Some("10.22.0.3"), &[("a", "10.22.0.1")]), "10.22.0.2", "10.22.0.1")]
fn aux_addresses_are_reserved(#[case] req: PoolRequest, #[case] first: &str, #[case] aux: &str) {
    let mut ipam = Ipam::new();
    let id = ipam.request_pool(&req).unwrap();
    assert_eq!(ipam.pool(id).aux_addresses, req.aux_addresses);
    assert_eq!(next(&mut ipam, id), ip(first));
    let err = ipam.request_address(id, Some(ip(aux))).unwrap_err();
    assert_eq!(err.to_string(), "Address already in use");
    // Releasing the network frees gateway and auxiliary addresses with it.
    ipam.release_address(id, ip(first));
    ipam.release_pool(id);
    let again = ipam
        .request_pool(&PoolRequest::subnet(req.subnet.unwrap()))
        .unwrap();
    assert!(!ipam.is_allocated(again, ip(aux)) || ipam.pool(again).gateway == Some(ip(aux)));
}

// ---- sub-pools sharing a subnet ----

/// Observed: a second network on the same subnet with another `--ip-range` passes the IPAM
/// (the bridge driver refuses it: "networks have overlapping IPv4"), so does one with a range
/// after a plain one; a plain one after one with a range, or the same range twice, does not.
#[rstest]
#[case(with("10.40.0.0/16", Some("10.40.1.0/24"), None, &[]), with("10.40.0.0/16", Some("10.40.2.0/24"), None, &[]), true)]
#[case(with("10.41.0.0/16", None, None, &[]), with("10.41.0.0/16", Some("10.41.2.0/24"), None, &[]), true)]
#[case(with("10.42.0.0/16", Some("10.42.2.0/24"), None, &[]), with("10.42.0.0/16", None, None, &[]), false)]
#[case(with("10.44.0.0/16", Some("10.44.1.0/24"), None, &[]), with("10.44.0.0/16", Some("10.44.1.0/24"), None, &[]), false)]
#[case(with("10.43.0.0/16", Some("10.43.1.0/24"), None, &[]), with("10.43.0.0/24", Some("10.43.0.0/25"), None, &[]), true)]
#[case(with("10.43.0.0/16", None, None, &[]), with("10.43.0.0/24", Some("10.43.0.0/25"), None, &[]), true)]
fn sub_pools_share_a_subnet(
    #[case] first: PoolRequest,
    #[case] second: PoolRequest,
    #[case] ok: bool,
) {
    let mut ipam = Ipam::new();
    ipam.request_pool(&first).unwrap();
    let result = ipam.request_pool(&second);
    if ok {
        result.unwrap();
    } else {
        assert_eq!(result.unwrap_err(), IpamError::PoolOverlap);
    }
}

#[test]
fn sub_pools_share_one_bitmap() {
    let mut ipam = Ipam::new();
    let a = ipam
        .request_pool(&with("10.40.0.0/16", Some("10.40.1.0/24"), None, &[]))
        .unwrap();
    let b = ipam
        .request_pool(&with("10.40.0.0/16", Some("10.40.2.0/24"), None, &[]))
        .unwrap();
    assert_eq!(ipam.pool(a).gateway, Some(ip("10.40.1.0")));
    assert_eq!(ipam.pool(b).gateway, Some(ip("10.40.2.0")));
    assert_eq!(
        ipam.request_address(b, Some(ip("10.40.1.1"))),
        Ok(ip("10.40.1.1"))
    );
    assert_eq!(next(&mut ipam, a), ip("10.40.1.2"));
    // The subnet stays taken while any of its pools lives.
    ipam.release_pool(a);
    assert_eq!(user(&mut ipam, "10.40.0.0/16"), Err(IpamError::PoolOverlap));
    assert!(ipam.is_allocated(b, ip("10.40.1.1")));
    ipam.release_address(b, ip("10.40.1.1"));
    ipam.release_pool(b);
    user(&mut ipam, "10.40.0.0/16").unwrap();
}

/// Observed (API): na = 10.5.0.0/16; nb = same subnet, range 10.5.1.0/24, aux x=10.5.1.0 fails
/// because nb's gateway took 10.5.1.0 — and Docker releases only nb's pool, so 10.5.1.0 stays
/// taken on na. A network failing later (the bridge's conflict) is released whole: nc's gateway
/// 10.5.2.0 is free again.
#[test]
fn failed_aux_leaves_the_gateway_taken_in_a_shared_subnet() {
    let mut ipam = Ipam::new();
    let na = user(&mut ipam, "10.5.0.0/16").unwrap();
    let err = ipam
        .request_pool(&with(
            "10.5.0.0/16",
            Some("10.5.1.0/24"),
            None,
            &[("x", "10.5.1.0")],
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to allocate secondary ip address (x:10.5.1.0): Address already in use"
    );
    assert_eq!(
        ipam.request_address(na, Some(ip("10.5.1.0"))),
        Err(IpamError::AddressInUse)
    );
    let nc = ipam
        .request_pool(&with("10.5.0.0/16", Some("10.5.2.0/24"), None, &[]))
        .unwrap();
    assert_eq!(ipam.pool(nc).gateway, Some(ip("10.5.2.0")));
    ipam.release_pool(nc);
    assert_eq!(
        ipam.request_address(na, Some(ip("10.5.2.0"))),
        Ok(ip("10.5.2.0"))
    );
}

// ---- addresses ----

/// Observed (lowest first; a container's address is freed when it stops or is removed).
#[test]
fn lowest_free_address_is_reused_first() {
    let mut ipam = Ipam::new();
    let s = user(&mut ipam, "10.27.0.0/24").unwrap();
    let ca = next(&mut ipam, s);
    let _cb = next(&mut ipam, s);
    let cc = next(&mut ipam, s);
    assert_eq!((ca, cc), (ip("10.27.0.2"), ip("10.27.0.4")));
    ipam.release_address(s, ca);
    assert_eq!(next(&mut ipam, s), ip("10.27.0.2"));
    ipam.release_address(s, cc);
    assert_eq!(next(&mut ipam, s), ip("10.27.0.4"));
    assert_eq!(next(&mut ipam, s), ip("10.27.0.5"));
}

/// scenarios/bridge/static-ip.yaml, static-ip-errors.yaml and observed variants.
#[rstest]
#[case::free("10.50.0.100", Ok("10.50.0.100"))]
#[case::network_address("10.50.0.0", Err("Address already in use"))]
#[case::broadcast("10.50.0.255", Err("Address already in use"))]
#[case::gateway("10.50.0.1", Err("Address already in use"))]
#[case::taken("10.50.0.5", Err("Address already in use"))]
#[case::outside(
    "10.99.0.5",
    Err("Invalid address 10.99.0.5: It does not belong to any of this network's subnets")
)]
#[case::other_version(
    "fd00::5",
    Err("Invalid address fd00::5: It does not belong to any of this network's subnets")
)]
#[case::mapped("::ffff:10.50.0.7", Ok("10.50.0.7"))]
fn specific_addresses(#[case] wanted: &str, #[case] result: Result<&str, &str>) {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "10.50.0.0/24").unwrap();
    ipam.request_address(id, Some(ip("10.50.0.5"))).unwrap();
    let got = ipam
        .request_address(id, Some(ip(wanted)))
        .map_err(|e| e.to_string());
    assert_eq!(got, result.map(ip).map_err(String::from));
}

#[test]
fn dynamic_addresses_skip_specific_ones() {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "10.50.0.0/24").unwrap();
    ipam.request_address(id, Some(ip("10.50.0.2"))).unwrap();
    ipam.request_address(id, Some(ip("10.50.0.4"))).unwrap();
    assert_eq!(next(&mut ipam, id), ip("10.50.0.3"));
    assert_eq!(next(&mut ipam, id), ip("10.50.0.5"));
}

/// Observed on 10.26.0.0/30: one container (.2), then a dynamic request fails (the engine says
/// "no available IPv4 addresses on this network's address pools: s (ID)") and so does `--ip` of
/// the taken address, with the IPAM's own text (fullness is checked first).
#[test]
fn full_pool() {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "10.26.0.0/30").unwrap();
    assert_eq!(ipam.pool(id).gateway, Some(ip("10.26.0.1")));
    assert_eq!(next(&mut ipam, id), ip("10.26.0.2"));
    let err = ipam.request_address(id, None).unwrap_err();
    assert_eq!(err, IpamError::NoAvailableAddresses);
    let err = ipam.request_address(id, Some(ip("10.26.0.2"))).unwrap_err();
    assert_eq!(err.to_string(), "No available addresses on this pool");
    ipam.release_address(id, ip("10.26.0.2"));
    assert_eq!(next(&mut ipam, id), ip("10.26.0.2"));
}

#[test]
fn release_is_forgiving() {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "10.50.0.0/24").unwrap();
    ipam.release_address(id, ip("10.99.0.1"));
    ipam.release_address(id, ip("10.50.0.77"));
    ipam.release_pool(id);
    ipam.release_pool(id);
    ipam.release_address(id, ip("10.50.0.2"));
    assert_eq!(
        ipam.request_address(id, None),
        Err(IpamError::UnknownPool(id))
    );
    assert!(!ipam.is_allocated(id, ip("10.50.0.1")));
}

// ---- IPv6 ----

/// scenarios/bridge/ipv6-subnet.yaml.
#[test]
fn ipv6_subnet() {
    let mut ipam = Ipam::new();
    let id = ipam
        .request_pool(&PoolRequest::subnet(net("fd00:db8:1::/64")))
        .unwrap();
    assert!(ipam.pool(id).is_v6());
    assert_eq!(ipam.pool(id).gateway, Some(ip("fd00:db8:1::1")));
    assert_eq!(next(&mut ipam, id), ip("fd00:db8:1::2"));
    assert_eq!(next(&mut ipam, id), ip("fd00:db8:1::3"));
    assert_eq!(
        ipam.request_address(id, Some(ip("fd00:db8:1::2")))
            .unwrap_err()
            .to_string(),
        "Address already in use"
    );
    assert_eq!(
        ipam.request_address(id, Some(ip("fd00:db8:2::5")))
            .unwrap_err()
            .to_string(),
        "Invalid address fd00:db8:2::5: It does not belong to any of this network's subnets"
    );
    assert!(!ipam.pool(id).contains(ip("10.0.0.1")));
}

/// Observed: IPv6 reserves only the subnet address, not the last one.
#[test]
fn tiny_ipv6_subnet() {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "fd00:dba::/126").unwrap();
    assert_eq!(ipam.pool(id).gateway, Some(ip("fd00:dba::1")));
    assert_eq!(next(&mut ipam, id), ip("fd00:dba::2"));
    assert_eq!(next(&mut ipam, id), ip("fd00:dba::3"));
    assert_eq!(
        ipam.request_address(id, None),
        Err(IpamError::NoAvailableAddresses)
    );
}

#[test]
fn ipv6_gateway_elsewhere_leaves_one_free() {
    let mut ipam = Ipam::new();
    let id = ipam
        .request_pool(&with("fd00:db8:1::/64", None, Some("fd00:db8:1::ab"), &[]))
        .unwrap();
    assert_eq!(next(&mut ipam, id), ip("fd00:db8:1::1"));
}

/// Observed: in a subnet wider than /64 only the low 64 bits of the host part count.
#[test]
fn wide_ipv6_subnet_truncates_requested_addresses() {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "fd00:db9::/48").unwrap();
    assert_eq!(ipam.pool(id).gateway, Some(ip("fd00:db9::1")));
    assert_eq!(
        ipam.request_address(id, Some(ip("fd00:db9:0:1::5"))),
        Ok(ip("fd00:db9::5"))
    );
    assert_eq!(next(&mut ipam, id), ip("fd00:db9::2"));
    assert!(ipam.is_allocated(id, ip("fd00:db9::5")));
}

/// Observed: the last address of a /64 lies past its 2^64-1-bit bitmap.
#[test]
fn last_ipv6_address_of_a_64_is_not_in_the_bitmap() {
    let mut ipam = Ipam::new();
    let id = user(&mut ipam, "fd00:dbb::/64").unwrap();
    let err = ipam
        .request_address(id, Some(ip("fd00:dbb::ffff:ffff:ffff:ffff")))
        .unwrap_err();
    assert_eq!(err.to_string(), "bit does not belong to the sequence");
}

// ---- texts ----

#[rstest]
#[case(
    IpamError::PoolOverlap,
    "Pool overlaps with other one on this address space"
)]
#[case(IpamError::NoDefaultPool { v6: false }, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
#[case(IpamError::OutOfRange, "Requested address is out of range")]
#[case(IpamError::AddressInUse, "Address already in use")]
#[case(IpamError::NoAvailableAddresses, "No available addresses on this pool")]
#[case(IpamError::NoAvailableNetworkAddresses { v6: false, network: "s".into(), id: "5fbb7efc".into() },
    "no available IPv4 addresses on this network's address pools: s (5fbb7efc)")]
#[case(IpamError::NoAvailableNetworkAddresses { v6: true, network: "v6".into(), id: "5aea".into() },
    "no available IPv6 addresses on this network's address pools: v6 (5aea)")]
#[case(IpamError::BitOutOfSequence, "bit does not belong to the sequence")]
#[case(IpamError::InvalidBitRange { start: 0, end: 9 }, "invalid bit range [0, 9]")]
#[case(IpamError::NotInSubnets { ip: ip("10.99.0.6") }, "Invalid address 10.99.0.6: It does not belong to any of this network's subnets")]
#[case(IpamError::MissingSubnet, "Invalid subnet  : invalid CIDR address: ")]
#[case(IpamError::InvalidPoolSize { size: 8 }, "invalid pools size: 8")]
#[case(
    IpamError::UnknownPool(PoolId(3)),
    "cannot find address pool for poolID:pool-3"
)]
fn error_texts(#[case] err: IpamError, #[case] text: &str) {
    assert_eq!(err.to_string(), text);
}
