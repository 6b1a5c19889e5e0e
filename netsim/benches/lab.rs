//! The cost of namespaces, small labs and captures. Needs root.
//!
//! `cargo bench -p drydock-netsim --bench lab` (scaling to 200 hosts: the `scale` bench).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use drydock_netsim::capture::Capture;
use drydock_netsim::{Lab, Netns, Topology};

fn example(file: &str) -> Topology {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/labs")
        .join(file);
    Topology::load(&path).unwrap()
}

fn benches(c: &mut Criterion) {
    if !drydock_netsim::userns::is_privileged() {
        eprintln!("skipped: the lab benchmarks need root");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    c.bench_function("netns/new", |b| b.iter(|| Netns::new().unwrap()));

    let mut group = c.benchmark_group("lab/build");
    for file in ["one-host.yaml", "three-hosts.yaml"] {
        let topology = example(file);
        // Build and drop: dropping frees the namespaces; the kernel finishes teardown in the background.
        group.bench_function(file, |b| {
            b.to_async(&runtime).iter(|| Lab::build(topology.clone()))
        });
    }
    group.finish();

    let lab = runtime
        .block_on(Lab::build(example("three-hosts.yaml")))
        .unwrap();
    let r1 = lab.host("r1").unwrap();
    c.bench_function("capture/start+stop", |b| {
        b.iter(|| {
            Capture::start(r1, "eth0", "r1/eth0")
                .unwrap()
                .stop()
                .unwrap()
        })
    });
}

criterion_group! {
    name = lab;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(lab);
