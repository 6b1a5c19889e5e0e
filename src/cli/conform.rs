//! `drydock conform`: run scenarios against an engine and report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use drydock_conformance::report::Format;
use drydock_conformance::run::{Cancel, Options, Outcome};
use drydock_conformance::suite;

#[derive(Args)]
pub(crate) struct ConformArgs {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// The engine(s) under test; two (`reference,docker`) also print where their verdicts differ.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "reference")]
    target: Vec<suite::TargetKind>,
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
    /// Keep the captures of failed scenarios: DIR/SCENARIO.pcapng for each failed scenario that
    /// captured packets (DIR/TARGET/ with several targets).
    #[arg(long)]
    keep_pcaps: Option<PathBuf>,
    /// Longest a scenario may take, in seconds.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
}

pub(crate) fn run(args: ConformArgs) -> anyhow::Result<ExitCode> {
    let scenarios = suite::load(&args.paths, args.filter.as_deref())?;
    let options = Options {
        jobs: args.jobs.max(1),
        timeout: Duration::from_secs(args.timeout),
        probe_timeout: Duration::from_secs(1),
        plugin: None,
    };
    let suite = Suite {
        scenarios,
        targets: args.target,
        options,
        reports: parse_reports(&args.report)?,
        keep_pcaps: args.keep_pcaps,
    };
    suite.run()
}

/// Scenarios to run on targets, and what to keep of the run.
pub(crate) struct Suite {
    pub(crate) scenarios: Vec<drydock_conformance::scenario::Scenario>,
    pub(crate) targets: Vec<suite::TargetKind>,
    pub(crate) options: Options,
    /// Reports to write, by format.
    pub(crate) reports: Vec<(Format, PathBuf)>,
    /// Where the captures of failed scenarios go.
    pub(crate) keep_pcaps: Option<PathBuf>,
}

impl Suite {
    /// Runs the scenarios on each target in turn, prints and writes the reports and the
    /// comparisons: success when every scenario passed (or was skipped) and targets agree.
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        let Suite {
            scenarios,
            mut targets,
            options,
            reports,
            keep_pcaps,
        } = self;
        if scenarios.is_empty() {
            bail!("no scenario matches");
        }
        targets.dedup();
        if !drydock_netsim::userns::is_privileged() {
            bail!(
                "conformance runs need root: engines make bridges, firewall rules and (for docker) run dockerd"
            );
        }
        run_suite(
            &scenarios,
            &targets,
            &options,
            &reports,
            keep_pcaps.as_deref(),
        )
    }
}

fn run_suite(
    scenarios: &[drydock_conformance::scenario::Scenario],
    targets: &[suite::TargetKind],
    options: &Options,
    reports: &[(Format, PathBuf)],
    keep_pcaps: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let run_id = format!("{:x}", std::process::id() as u64 ^ start_nanos());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cancel = Cancel::new();
    catch_signals(&runtime, &cancel)?;
    let mut results = Vec::new();
    for &kind in targets {
        if cancel.is_cancelled() {
            break;
        }
        if kind == suite::TargetKind::Docker {
            remove_leftovers();
        }
        let progress = Progress::new(kind, scenarios.len());
        let ended = |outcome: &Outcome| progress.ended(outcome);
        let run = suite::run(kind, scenarios, options, &run_id, &ended, &cancel);
        let report = runtime.block_on(run);
        progress.finish();
        let suffix = (targets.len() > 1).then_some(kind.name());
        for (format, path) in reports {
            report.write(*format, path, suffix)?;
        }
        if let Some(dir) = keep_pcaps {
            let dir = dir.join(suffix.unwrap_or_default());
            report
                .write_pcaps(&dir)
                .with_context(|| format!("keeping pcaps in {}", dir.display()))?;
        }
        print!("{}", report.terminal());
        results.push((kind, report));
    }
    if cancel.is_cancelled() {
        eprintln!("interrupted: the scenarios that were running were stopped and torn down");
        return Ok(ExitCode::from(130));
    }
    let failed = results.iter().any(|(_, r)| r.totals().failed > 0);
    // Every pair of targets compared: one table each.
    let mut disagreed = false;
    for (i, (a, first)) in results.iter().enumerate() {
        for (b, second) in &results[i + 1..] {
            let comparison = suite::Comparison::new((a.name(), first), (b.name(), second));
            print!(
                "\n{}{}",
                super::table::render(&comparison.rows()),
                comparison.summary()
            );
            disagreed |= !comparison.disagreements().is_empty();
        }
    }
    if disagreed {
        return Ok(ExitCode::FAILURE);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Progress of one target's run: each scenario's result printed once, on stdout, as it ends
/// ([`result_line`]); on a terminal (outside CI), a bar on stderr counts them beneath.
struct Progress {
    kind: suite::TargetKind,
    total: usize,
    done: std::sync::atomic::AtomicUsize,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(kind: suite::TargetKind, total: usize) -> Self {
        let bar =
            (std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()).then(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix} {bar:30} {pos}/{len} {elapsed}",
                    )
                    .expect("a valid template"),
                );
                bar.set_prefix(kind.name());
                bar
            });
        Self {
            kind,
            total,
            done: Default::default(),
            bar,
        }
    }

    fn ended(&self, outcome: &Outcome) {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let line = result_line(self.kind.name(), n, self.total, outcome);
        match &self.bar {
            // The bar steps aside while the line goes above it.
            Some(bar) => {
                bar.suspend(|| print!("{line}"));
                bar.inc(1);
            }
            None => print!("{line}"),
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The line printed when the `n`th of `total` scenarios on `target` ends:
/// `[reference 3/11] PASS    0.3s  NAME  (PATH)`.
fn result_line(target: &str, n: usize, total: usize, outcome: &Outcome) -> String {
    format!(
        "[{target} {n}/{total}] {}",
        drydock_conformance::report::outcome_line(outcome)
    )
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
    match drydock_conformance::targets::docker::gc_leftovers() {
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

/// `junit=F,json=F,md=F` into (format, path) pairs.
pub(crate) fn parse_reports(items: &[String]) -> anyhow::Result<Vec<(Format, PathBuf)>> {
    items
        .iter()
        .map(|item| {
            let format = match item.split_once('=') {
                Some((_, "")) | None => None,
                Some(("junit", _)) => Some(Format::Junit),
                Some(("json", _)) => Some(Format::Json),
                Some(("md", _)) => Some(Format::Markdown),
                Some(_) => None,
            };
            let (Some(format), Some((_, path))) = (format, item.split_once('=')) else {
                bail!("--report {item:?}: expected junit=FILE, json=FILE or md=FILE");
            };
            Ok((format, PathBuf::from(path)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use drydock_conformance::run::Verdict;

    use super::*;

    fn outcome(verdict: Verdict) -> Outcome {
        Outcome {
            path: "scenarios/bridge/dns.yaml".into(),
            name: "names resolve".into(),
            checks: String::new(),
            source: String::new(),
            verdict,
            seconds: 0.34,
            results: Vec::new(),
            captures: Vec::new(),
            dump: None,
            target: None,
        }
    }

    #[test]
    fn a_result_is_one_line_with_its_place_in_the_run() {
        assert_eq!(
            result_line("reference", 3, 11, &outcome(Verdict::Pass)),
            "[reference 3/11] PASS    0.3s  names resolve  (scenarios/bridge/dns.yaml)\n"
        );
        let skipped = result_line("docker", 1, 2, &outcome(Verdict::Skip("no ipvlan".into())));
        assert_eq!(
            skipped,
            "[docker 1/2] SKIP    0.3s  names resolve  (scenarios/bridge/dns.yaml)\n             skipped: no ipvlan\n"
        );
    }
}
