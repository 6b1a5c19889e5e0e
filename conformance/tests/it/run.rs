//! The runner against Docker Engine: captures normalize to the same lines on every run.

use std::path::Path;
use std::time::Duration;

use drydock_conformance::run::{DockerBackend, Options, Verdict, run_one};
use drydock_conformance::scenario::Scenario;

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
        run_id: format!("test{}", std::process::id()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalized_captures_are_the_same_on_every_run() {
    if !crate::privileged() {
        return;
    }
    let scenario = fixture("ping-capture.yaml");
    let backend = DockerBackend::new();
    let first = run_one(&backend, &scenario, &options()).await;
    let second = run_one(&backend, &scenario, &options()).await;
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
