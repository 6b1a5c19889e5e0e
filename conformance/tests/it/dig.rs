//! `dig @127.0.0.11` inside a container gets the same answers from drydock's embedded DNS as
//! from Docker Engine's, for the same setup: header flags and status, question, answers with
//! their TTLs, EDNS — everything but the query id and timings.

use drydock_conformance::probe::UpstreamDns;
use drydock_conformance::targets::Target;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::reference::ReferenceTarget;
use drydock_runtime::api::cli::DockerCommand;
use drydock_runtime::api::spec::{ContainerSpec, NetworkSpec};

use crate::call;
use drydock_netsim::{Lab, Topology};

/// The questions asked, as dig arguments.
const QUERIES: &[&str] = &[
    "web",
    "WEB",
    "www",
    "web.app",
    "-x 172.18.0.2",
    "web AAAA",
    "web MX",
    "+tcp web",
    "db",
    "nosuchname",
];

async fn one_host_lab() -> Lab {
    let topology = Topology::builder("dig")
        .segment("lan", "10.10.0.0/24".parse().unwrap())
        .host("h1")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Lab::build(topology)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn container(name: &str, network: &str, aliases: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        detach: true,
        image: "busybox".into(),
        network: Some(network.into()),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ..ContainerSpec::default()
    }
}

/// dig's output without what differs from one query or machine to the next (id, time,
/// server line, dig's version).
fn normalize(output: &str) -> String {
    output
        .lines()
        .filter(|line| !line.starts_with(";; Query time") && !line.starts_with(";; WHEN"))
        .filter(|line| !line.starts_with(";; SERVER") && !line.starts_with(";; MSG SIZE"))
        .filter(|line| !line.starts_with("; <<>> DiG"))
        .map(|line| match line.find(", id: ") {
            Some(at) => format!("{}, id: ID", &line[..at]),
            None => line.to_string(),
        })
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sets up `app` (web with alias www, client) and `back` (db) on h1, then asks every query
/// from client.
async fn ask_all(target: &impl Target) -> Vec<String> {
    for network in ["app", "back"] {
        let spec = NetworkSpec {
            name: network.into(),
            ..NetworkSpec::default()
        };
        call(target, "h1", DockerCommand::NetworkCreate(spec.clone()))
            .await
            .unwrap();
    }
    for spec in [
        container("web", "app", &["www"]),
        container("client", "app", &[]),
        container("db", "back", &[]),
    ] {
        call(target, "h1", DockerCommand::Run(Box::new(spec.clone())))
            .await
            .unwrap();
    }
    let client = target.container_netns("h1", "client").await.unwrap();
    let mut answers = Vec::new();
    for query in QUERIES {
        let output = client
            .command("dig", None)
            .args(["@127.0.0.11", "+tries=1", "+timeout=3"])
            .args(query.split(' '))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        answers.push(format!("$ dig {query}\n{}", normalize(&text)));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_in_a_container_gets_dockers_answers() {
    if !crate::privileged() {
        return;
    }
    let hosts = vec!["h1".to_string()];

    let lab = one_host_lab().await;
    let upstream = UpstreamDns::start(lab.host("h1").unwrap()).unwrap();
    let reference = <ReferenceTarget>::start(&lab, &hosts, "dig").await.unwrap();
    let ours = ask_all(&reference).await;
    reference.stop().await;
    upstream.close().await;
    drop(lab);

    let lab = one_host_lab().await;
    let upstream = UpstreamDns::start(lab.host("h1").unwrap()).unwrap();
    let run_id = format!("it{}dig", std::process::id());
    let docker = DockerTarget::start(&lab, &hosts, &run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dockers = ask_all(&docker).await;
    docker.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    upstream.close().await;

    for (ours, dockers) in ours.iter().zip(&dockers) {
        assert_eq!(ours, dockers, "reference vs docker");
    }
    insta::assert_snapshot!(ours.join("\n\n"));
}
