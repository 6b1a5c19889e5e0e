//! `drydock conform`: run scenarios against an engine and report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use drydock_conformance::report::Report;
use drydock_conformance::run::{self, Cancel, Options, Outcome, Verdict};
use drydock_conformance::run::{DockerBackend, ReferenceBackend};
use drydock_conformance::scenario::{self, Scenario};

#[derive(Args)]
pub(crate) struct ConformArgs {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// The engine(s) under test; two (`reference,docker`) also print where their verdicts differ.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "reference")]
    target: Vec<TargetKind>,
    /// Only scenarios whose file path or name matches this glob (e.g. 'bridge/*' or '*dns*').
    #[arg(long)]
    filter: Option<String>,
    /// Scenarios run at once (each in its own lab, with its own engine).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Reports to write: junit=FILE,json=FILE,md=FILE (with several targets, each file name
    /// gets the target's name before its extension).
    #[arg(long, value_delimiter = ',')]
    report: Vec<String>,
    /// Write the captures of failed scenarios as pcapng files into this folder.
    #[arg(long)]
    keep_pcaps: Option<PathBuf>,
    /// Longest a scenario may take, in seconds.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetKind {
    /// drydock's reference engine (in this process, on the scenario's lab).
    Reference,
    /// Docker Engine (a private dockerd per docker host, inside the scenario's lab).
    Docker,
}

impl TargetKind {
    fn name(self) -> &'static str {
        match self {
            TargetKind::Reference => "reference",
            TargetKind::Docker => "docker",
        }
    }
}

pub(crate) fn run(args: ConformArgs) -> anyhow::Result<ExitCode> {
    let reports = parse_reports(&args.report)?;
    let scenarios = load(&args.paths, args.filter.as_deref())?;
    if scenarios.is_empty() {
        bail!("no scenario matches");
    }
    let mut targets = args.target.clone();
    targets.dedup();
    if !drydock_netsim::userns::is_privileged() {
        bail!(
            "conformance runs need root: engines make bridges, firewall rules and (for docker) run dockerd"
        );
    }
    let options = Options {
        jobs: args.jobs.max(1),
        timeout: Duration::from_secs(args.timeout),
        probe_timeout: Duration::from_secs(1),
        run_id: format!("{:x}", std::process::id() as u64 ^ start_nanos()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cancel = Cancel::new();
    catch_signals(&runtime, &cancel)?;
    let mut results = Vec::new();
    for &target in &targets {
        if cancel.is_cancelled() {
            break;
        }
        let report = match target {
            TargetKind::Docker => {
                remove_leftovers();
                let backend = DockerBackend::new();
                let (outcomes, seconds) =
                    run_suite(&runtime, &backend, &scenarios, &options, target, &cancel);
                Report {
                    target: backend.describe(),
                    run_id: options.run_id.clone(),
                    seconds,
                    outcomes,
                }
            }
            TargetKind::Reference => {
                let backend = ReferenceBackend;
                let (outcomes, seconds) =
                    run_suite(&runtime, &backend, &scenarios, &options, target, &cancel);
                let target = format!(
                    "reference (Docker {} semantics)",
                    drydock_conformance::target::reference::EMULATED
                );
                Report {
                    target,
                    run_id: options.run_id.clone(),
                    seconds,
                    outcomes,
                }
            }
        };
        let suffix = (targets.len() > 1).then_some(target.name());
        write_reports(&reports, &report, suffix)?;
        if let Some(dir) = &args.keep_pcaps {
            keep_pcaps(
                &dir.join(if targets.len() > 1 { target.name() } else { "" }),
                &report,
            )?;
        }
        print!("{}", report.terminal());
        results.push((target, report));
    }
    if cancel.is_cancelled() {
        eprintln!("interrupted: the scenarios that were running were stopped and torn down");
        return Ok(ExitCode::from(130));
    }
    let failed = results.iter().any(|(_, r)| r.totals().failed > 0);
    if let [(a, first), (b, second)] = results.as_slice() {
        let (table, disagreements) = differential(&[(a.name(), first), (b.name(), second)]);
        print!("\n{table}");
        if disagreements > 0 {
            println!(
                "{disagreements} scenario(s) where {} and {} disagree",
                a.name(),
                b.name()
            );
            return Ok(ExitCode::FAILURE);
        }
        println!("{} and {} agree on every scenario", a.name(), b.name());
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the scenarios against one backend with progress; returns outcomes and wall time.
fn run_suite<B: run::Backend>(
    runtime: &tokio::runtime::Runtime,
    backend: &B,
    scenarios: &[Scenario],
    options: &Options,
    target: TargetKind,
    cancel: &Cancel,
) -> (Vec<Outcome>, f64) {
    let started = Instant::now();
    let total = scenarios.len();
    // A bar on a terminal; a line per scenario in CI logs and pipes.
    let bar = (std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()).then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} {bar:30} {pos}/{len} {elapsed} {msg}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(target.name());
        bar
    });
    let done = std::sync::atomic::AtomicUsize::new(0);
    let progress = |outcome: &Outcome| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let verdict = match outcome.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip(_) => "skip",
        };
        let line = format!("{verdict} {:.1}s {}", outcome.seconds, outcome.name);
        match &bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(line);
            }
            None => eprintln!("[{} {n}/{total}] {line}", target.name()),
        }
    };
    let outcomes = runtime.block_on(run::run(backend, scenarios, options, &progress, cancel));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    (outcomes, started.elapsed().as_secs_f64())
}

/// Writes the requested reports; `suffix` goes before each file's extension.
fn write_reports(
    reports: &[(String, PathBuf)],
    report: &Report,
    suffix: Option<&str>,
) -> anyhow::Result<()> {
    for (kind, path) in reports {
        let text = match kind.as_str() {
            "junit" => report.junit(),
            "json" => report.json(),
            _ => report.markdown(),
        };
        let path = match suffix {
            Some(suffix) => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let extension = path
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_default();
                path.with_file_name(format!("{stem}.{suffix}{extension}"))
            }
            None => path.clone(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// One table, scenario by scenario, of two targets' verdicts; and how many disagree (a skip on
/// either side is no disagreement).
fn differential(reports: &[(&str, &Report); 2]) -> (String, usize) {
    let word = |v: &Verdict| match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Skip(_) => "skip",
    };
    let mut rows = vec![vec![
        "SCENARIO".to_string(),
        reports[0].0.to_uppercase(),
        reports[1].0.to_uppercase(),
        String::new(),
    ]];
    let mut disagreements = 0;
    for (a, b) in reports[0].1.outcomes.iter().zip(&reports[1].1.outcomes) {
        let differ = matches!(
            (&a.verdict, &b.verdict),
            (Verdict::Pass, Verdict::Fail) | (Verdict::Fail, Verdict::Pass)
        );
        disagreements += usize::from(differ);
        rows.push(vec![
            a.path.clone(),
            word(&a.verdict).into(),
            word(&b.verdict).into(),
            if differ {
                "<- differ".into()
            } else {
                String::new()
            },
        ]);
    }
    (super::table::render(&rows), disagreements)
}

/// SIGINT or SIGTERM cancels the run: running scenarios stop and are torn down (daemons,
/// their directories and cgroups), the report of what ran is printed, and drydock exits with
/// 130. A second signal exits at once (the daemons still die with drydock; the next docker
/// run removes what is left).
fn catch_signals(runtime: &tokio::runtime::Runtime, cancel: &Cancel) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered before any scenario starts, so that no signal finds the default action.
    let _entered = runtime.enter();
    let mut interrupt = signal(SignalKind::interrupt()).context("catching SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("catching SIGTERM")?;
    let cancel = cancel.clone();
    runtime.spawn(async move {
        for n in 0.. {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if n > 0 {
                eprintln!("interrupted again: exiting now");
                std::process::exit(130);
            }
            eprintln!("interrupted: stopping the running scenarios and tearing them down (again to exit now)");
            cancel.cancel();
        }
    });
    Ok(())
}

/// Removes what earlier docker runs that crashed or were killed left behind (their run
/// directories and cgroups); live runs are not touched.
fn remove_leftovers() {
    match drydock_conformance::target::docker::gc_leftovers() {
        Ok(removed) if !removed.is_empty() => {
            eprintln!("removed leftovers of earlier runs: {}", removed.join(", "));
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: cannot remove the leftovers of earlier runs: {e}"),
    }
}

fn start_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

/// `junit=F,json=F,md=F` into (kind, path) pairs.
fn parse_reports(items: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((kind @ ("junit" | "json" | "md"), path)) if !path.is_empty() => {
                Ok((kind.to_string(), PathBuf::from(path)))
            }
            _ => bail!("--report {item:?}: expected junit=FILE, json=FILE or md=FILE"),
        })
        .collect()
}

/// Loads every scenario under `paths` (all parse errors at once), then applies the filter.
fn load(paths: &[PathBuf], filter: Option<&str>) -> anyhow::Result<Vec<Scenario>> {
    let default = [PathBuf::from("scenarios")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(
                scenario::find(path).with_context(|| format!("cannot read {}", path.display()))?,
            );
        } else {
            files.push(path.clone());
        }
    }
    let glob = filter
        .map(|f| globset::Glob::new(f).map(|g| g.compile_matcher()))
        .transpose()
        .context("--filter")?;
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match Scenario::load(&file) {
            Ok(s) => {
                if glob.as_ref().is_none_or(|g| {
                    g.is_match(&s.path) || g.is_match(&s.name) || matches_tail(g, &file)
                }) {
                    scenarios.push(s);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} scenario file(s) have errors:\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
    Ok(scenarios)
}

/// Globs like `bridge/*` match the end of a path.
fn matches_tail(glob: &globset::GlobMatcher, file: &Path) -> bool {
    let parts: Vec<_> = file.iter().collect();
    (0..parts.len()).any(|i| glob.is_match(parts[i..].iter().collect::<PathBuf>()))
}

fn keep_pcaps(dir: &Path, report: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for outcome in report
        .outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Fail && !o.captures.is_empty())
    {
        let stem = Path::new(&outcome.path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dir.join(format!("{stem}.pcapng"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let captures: Vec<(&str, &[drydock_netsim::capture::Packet])> = outcome
            .captures
            .iter()
            .map(|c| (c.label.as_str(), c.packets.as_slice()))
            .collect();
        drydock_netsim::capture::write_pcapng(std::io::BufWriter::new(file), &captures)?;
    }
    Ok(())
}
