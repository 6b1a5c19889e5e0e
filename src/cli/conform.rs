//! `drydock conform`: run scenarios against an engine and report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use drydock_conformance::report::Report;
use drydock_conformance::run::DockerBackend;
use drydock_conformance::run::{self, Options, Outcome, Verdict};
use drydock_conformance::scenario::{self, Scenario};

#[derive(Args)]
pub(crate) struct ConformArgs {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// The engine under test.
    #[arg(long, value_enum, default_value_t = TargetKind::Docker)]
    target: TargetKind,
    /// Only scenarios whose file path or name matches this glob (e.g. 'bridge/*' or '*dns*').
    #[arg(long)]
    filter: Option<String>,
    /// Scenarios run at once (each in its own lab, with its own engine).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Reports to write: junit=FILE,json=FILE,md=FILE.
    #[arg(long, value_delimiter = ',')]
    report: Vec<String>,
    /// Write the captures of failed scenarios as pcapng files into this folder.
    #[arg(long)]
    keep_pcaps: Option<PathBuf>,
    /// Longest a scenario may take, in seconds.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetKind {
    /// Docker Engine (a private dockerd per docker host, inside the scenario's lab).
    Docker,
    /// drydock's own engine (not built yet: issue 4).
    Reference,
}

pub(crate) fn run(args: ConformArgs) -> anyhow::Result<ExitCode> {
    let reports = parse_reports(&args.report)?;
    let scenarios = load(&args.paths, args.filter.as_deref())?;
    if scenarios.is_empty() {
        bail!("no scenario matches");
    }
    match args.target {
        TargetKind::Reference => {
            bail!("the reference engine is not built yet (issue 4): use --target docker")
        }
        TargetKind::Docker if !drydock_netsim::userns::is_privileged() => {
            bail!("the docker target runs dockerd, which needs root")
        }
        TargetKind::Docker => {}
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
    let started = Instant::now();
    let total = scenarios.len();
    // A bar on a terminal; a line per scenario in CI logs and pipes.
    let bar = (std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()).then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
                .expect("a valid template"),
        );
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
            None => eprintln!("[{n}/{total}] {line}"),
        }
    };
    let backend = DockerBackend::new();
    let outcomes = runtime.block_on(run::run(&backend, &scenarios, &options, &progress));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = Report {
        target: backend.describe(),
        run_id: options.run_id.clone(),
        seconds: started.elapsed().as_secs_f64(),
        outcomes,
    };
    for (kind, path) in &reports {
        let text = match kind.as_str() {
            "junit" => report.junit(),
            "json" => report.json(),
            _ => report.markdown(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(dir) = &args.keep_pcaps {
        keep_pcaps(dir, &report)?;
    }
    print!("{}", report.terminal());
    Ok(if report.totals().failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
