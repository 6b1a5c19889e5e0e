use super::*;

fn outcome(path: &str, verdict: Verdict) -> Outcome {
    Outcome {
        path: path.into(),
        name: path.into(),
        checks: String::new(),
        source: String::new(),
        verdict,
        seconds: 0.0,
        results: Vec::new(),
        captures: Vec::new(),
        dump: None,
        target: None,
    }
}

fn report(verdicts: Vec<Verdict>) -> Report {
    Report {
        target: String::new(),
        run_id: "r".into(),
        seconds: 0.0,
        outcomes: (verdicts.into_iter().enumerate())
            .map(|(i, v)| outcome(&format!("s{i}.yaml"), v))
            .collect(),
    }
}

#[test]
fn skips_are_counted_apart_and_named() {
    let kernel = "docker 20.10.24 needs the kernel's ipvlan links, which this kernel lacks";
    let reference = report(vec![Verdict::Pass, Verdict::Pass, Verdict::Fail]);
    let docker = report(vec![
        Verdict::Pass,
        Verdict::Skip(kernel.into()),
        Verdict::Fail,
    ]);
    let comparison = Comparison::new(("reference", &reference), ("docker", &docker));
    assert_eq!(comparison.compared(), 2);
    assert!(comparison.disagreements().is_empty());
    assert_eq!(
        comparison.summary(),
        format!(
            "reference and docker agree on all 2 scenario(s) both ran\n\
             not compared: 1 scenario(s) skipped by one side or both:\n  \
             s1.yaml: skipped by docker: {kernel}\n"
        )
    );
    assert_eq!(
        comparison.rows()[2],
        ["s1.yaml", "pass", "skip", ""].map(String::from)
    );
}

#[test]
fn a_pass_against_a_failure_is_a_disagreement() {
    let reference = report(vec![Verdict::Pass, Verdict::Fail]);
    let docker = report(vec![Verdict::Fail, Verdict::Fail]);
    let comparison = Comparison::new(("reference", &reference), ("docker", &docker));
    let disagreements: Vec<&str> = (comparison.disagreements().iter())
        .map(|o| o.path.as_str())
        .collect();
    assert_eq!(disagreements, ["s0.yaml"]);
    assert_eq!(
        comparison.summary(),
        "reference and docker disagree on 1 of the 2 scenario(s) both ran\n"
    );
    assert_eq!(comparison.rows()[1][3], "<- differ");
}

#[test]
fn filters_match_paths_their_ends_and_names() {
    let all = load(&[PathBuf::from("../scenarios")], None).unwrap();
    let bridge = load(&[PathBuf::from("../scenarios")], Some("bridge/*")).unwrap();
    assert!(!bridge.is_empty() && bridge.len() < all.len());
    assert!(bridge.iter().all(|s| s.path.contains("/bridge/")));
    let by_name = load(
        &[PathBuf::from("../scenarios")],
        Some("*isolate a container*"),
    )
    .unwrap();
    assert_eq!(by_name.len(), 1, "{by_name:?}");
    assert!(matches!(
        load(&[PathBuf::from("../scenarios")], Some("[")),
        Err(LoadError::Filter(_))
    ));
}

#[test]
fn every_broken_file_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "name: a\n").unwrap();
    std::fs::write(dir.path().join("b.yaml"), "nonsense: [\n").unwrap();
    let error = load(&[dir.path().to_path_buf()], None).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("2 scenario file(s) have errors:"),
        "{text}"
    );
    assert!(
        text.contains("a.yaml:1:1") && text.contains("b.yaml"),
        "{text}"
    );
}
