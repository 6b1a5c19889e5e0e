//! `drydock coverage`: which of moby's networking tests the scenario catalog covers, as the
//! table `COVERAGE.md` keeps (`conformance::coverage`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use drydock_conformance::{coverage, suite};

#[derive(Args)]
pub(crate) struct CoverageArgs {
    /// The upstream tests, by file, with the reasons of those not ported.
    #[arg(long, default_value = "scenarios/upstream.txt")]
    list: PathBuf,
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Write the table to this file (COVERAGE.md) instead of printing it.
    #[arg(long)]
    write: Option<PathBuf>,
}

pub(crate) fn run(args: CoverageArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.list)
        .with_context(|| format!("cannot read {}", args.list.display()))?;
    let upstream = coverage::parse(&text, &args.list.display().to_string())?;
    let scenarios: Vec<(String, String)> = suite::load(&args.paths, None)?
        .into_iter()
        .map(|s| (s.path, s.source))
        .collect();
    let table = coverage::table(&upstream, &scenarios);
    match args.write {
        Some(file) => std::fs::write(&file, table)
            .with_context(|| format!("cannot write {}", file.display()))?,
        None => print!("{table}"),
    }
    Ok(ExitCode::SUCCESS)
}
