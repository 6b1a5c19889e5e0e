//! The macvlan driver on a lab host: containers on the segment beside its plain hosts (and not
//! reachable from their own docker host), Docker's refusals, and removal of every link the
//! driver made, including the isolated parent of a network without `-o parent`.

use crate::{greeting, ip, link_names, run, serve};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use drydock_netsim::Lab;
use drydock_runtime::api::body::NetworkCreate;
use drydock_runtime::engine::Engine;
use serde_json::json;

/// Where success is expected: generous, it is never waited out.
const OK: Duration = Duration::from_secs(3);
/// Where a drop is expected: short, it is always waited out.
const DROP: Duration = Duration::from_millis(400);

const EXT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 10, 0, 2));

async fn setup() -> (Lab, Engine) {
    let (lab, mut engines) = crate::lab_with_engines(crate::lan(&["h1", "ext"]), &["h1"]).await;
    (lab, engines.pop().unwrap())
}

/// `docker network create -d macvlan --subnet SUBNET [--ip-range R] [-o K=V...] NAME`.
fn macvlan(
    name: &str,
    subnet: &str,
    range: Option<&str>,
    options: serde_json::Value,
) -> NetworkCreate {
    crate::network("macvlan", name, subnet, range, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macvlan_containers_are_on_the_segment_and_leave_nothing_behind() {
    if !crate::privileged() {
        return;
    }
    let (lab, mut engine) = setup().await;
    let host = engine.host().clone();
    let links_before = link_names(&host).await;
    engine
        .create_network(&macvlan(
            "lan",
            "10.10.0.0/24",
            Some("10.10.0.128/25"),
            json!({"parent": "eth0"}),
        ))
        .await
        .unwrap();
    run(&mut engine, "web", "lan").await;
    run(&mut engine, "client", "lan").await;
    let web_ip = ip(&engine, "web", "lan");
    assert_eq!(web_ip, "10.10.0.129".parse::<IpAddr>().unwrap());
    let inspect = engine.inspect_container("web").unwrap();
    let settings = &inspect["NetworkSettings"]["Networks"]["lan"];
    assert_eq!(settings["MacAddress"], "02:42:0a:0a:00:81");
    assert_eq!(settings["Gateway"], "10.10.0.128");
    let network = engine.inspect_network("lan").unwrap();
    assert_eq!(network["Driver"], "macvlan");
    assert_eq!(network["Options"], json!({"parent": "eth0"}));

    let web = engine.container_netns("web").unwrap();
    let client = engine.container_netns("client").unwrap();
    let ext = lab.host("ext").unwrap();
    let _servers = [serve(&web, 80, "web"), serve(ext, 9000, "ext")];
    let to_web = SocketAddr::new(web_ip, 80);
    assert_eq!(greeting(&client, to_web, OK).await.as_deref(), Some("web"));
    assert_eq!(greeting(ext, to_web, OK).await.as_deref(), Some("web"));
    assert_eq!(
        greeting(&client, SocketAddr::new(EXT, 9000), OK)
            .await
            .as_deref(),
        Some("ext")
    );
    assert_eq!(
        greeting(&host, to_web, DROP).await,
        None,
        "the docker host reached its own macvlan container"
    );
    // The macvlan links live in the containers; the docker host has none of them.
    assert_eq!(link_names(&host).await, links_before);
    assert_eq!(link_names(&web).await, ["eth0", "lo"]);

    engine.remove_container("web", true).await.unwrap();
    engine.remove_container("client", true).await.unwrap();
    assert_eq!(link_names(&web).await, ["lo"], "web's macvlan link is left");
    engine.remove_network("lan").await.unwrap();
    assert_eq!(link_names(&host).await, links_before);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_without_parent_is_isolated_and_its_parent_goes_with_it() {
    if !crate::privileged() {
        return;
    }
    let (lab, mut engine) = setup().await;
    let host = engine.host().clone();
    let links_before = link_names(&host).await;
    let id = engine
        .create_network(&macvlan("alone", "192.168.50.0/24", None, json!({})))
        .await
        .unwrap();
    // Docker's dummy parent dm-<id12>, or (a kernel without dummy links) the veth stand-in.
    let parent = format!("dm-{}", &id[..12]);
    let mut expected = links_before.clone();
    expected.push(parent.clone());
    expected.sort();
    assert_eq!(link_names(&host).await, expected);
    run(&mut engine, "one", "alone").await;
    run(&mut engine, "two", "alone").await;
    let inspect = engine.inspect_container("one").unwrap();
    // No parent is --internal: no gateway.
    assert_eq!(
        inspect["NetworkSettings"]["Networks"]["alone"]["Gateway"],
        ""
    );
    let one = engine.container_netns("one").unwrap();
    let two = engine.container_netns("two").unwrap();
    let _server = serve(&one, 80, "one");
    let to_one = SocketAddr::new(ip(&engine, "one", "alone"), 80);
    assert_eq!(greeting(&two, to_one, OK).await.as_deref(), Some("one"));
    assert_eq!(greeting(lab.host("ext").unwrap(), to_one, DROP).await, None);

    let error = engine.remove_network("alone").await.unwrap_err();
    assert!(error.0.contains("has active endpoints"), "{error}");
    engine.remove_container("one", true).await.unwrap();
    engine.remove_container("two", true).await.unwrap();
    engine.remove_network("alone").await.unwrap();
    // Its containers got no gateway from it: libnetwork gave them docker_gwbridge (made
    // then), which stays, as on Docker.
    let mut expected = links_before.clone();
    expected.push("docker_gwbridge".to_string());
    expected.sort();
    assert_eq!(link_names(&host).await, expected);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_use_dockers_texts_and_leave_nothing() {
    if !crate::privileged() {
        return;
    }
    let (_lab, mut engine) = setup().await;
    let host = engine.host().clone();
    let links_before = link_names(&host).await;
    let refused = [
        (
            json!({"parent": "eth9"}),
            "invalid subinterface vlan name eth9, example formatting is eth0.10",
        ),
        (
            json!({"parent": "eth9.10"}),
            "-o parent interface does was not found on the host: eth9",
        ),
        (
            json!({"parent": "eth0.0"}),
            "vlan id must be between 1-4094, received: 0",
        ),
        (
            json!({"parent": "lo"}),
            "loopback interface is not a valid macvlan parent link",
        ),
        (
            json!({"parent": "eth0", "macvlan_mode": "loud"}),
            "requested macvlan mode 'loud' is not valid, 'bridge' mode is the macvlan driver default",
        ),
    ];
    for (options, text) in refused {
        let error = engine
            .create_network(&macvlan("bad", "10.20.0.0/24", None, options))
            .await
            .unwrap_err();
        assert_eq!(error.0, text);
    }
    let id = engine
        .create_network(&macvlan(
            "lan",
            "10.10.0.0/24",
            None,
            json!({"parent": "eth0"}),
        ))
        .await
        .unwrap();
    let error = engine
        .create_network(&macvlan(
            "again",
            "10.30.0.0/24",
            None,
            json!({"parent": "eth0", "macvlan_mode": "passthru"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        error.0,
        format!(
            "network dm-{} is already using parent interface eth0",
            &id[..12]
        )
    );
    // 802.1Q: made and removed with the network where the kernel has 8021q, refused (saying
    // why) where it has not.
    let tagged = engine
        .create_network(&macvlan(
            "tagged",
            "10.40.0.0/24",
            None,
            json!({"parent": "eth0.10"}),
        ))
        .await;
    match tagged {
        Ok(_) => {
            assert!(link_names(&host).await.contains(&"eth0.10".to_string()));
            engine.remove_network("tagged").await.unwrap();
        }
        Err(e) => {
            assert!(
                e.0.starts_with("failed to create eth0.10 vlan link: operation not supported")
                    && e.0.contains("8021q"),
                "{e}"
            );
        }
    }
    engine.remove_network("lan").await.unwrap();
    assert_eq!(link_names(&host).await, links_before);
    // The failed networks released their subnets.
    engine
        .create_network(&macvlan(
            "reuse",
            "10.20.0.0/24",
            None,
            json!({"parent": "eth0"}),
        ))
        .await
        .unwrap();
    engine.shutdown().await;
}
