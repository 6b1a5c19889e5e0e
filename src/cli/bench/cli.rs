//! `drydock bench cli`: how long the real docker CLI takes to `docker run -d` a container on a
//! user-defined bridge network, against drydock's reference engine through its Engine API
//! socket and against a private dockerd 20.10, in one lab (each engine on a docker host of its
//! own). Each sample is one whole `docker run -d --network app busybox sleep 1000` process:
//! CLI start, version negotiation, create, start. Then `docker rm -f` of them all, untimed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use drydock_conformance::targets::Target;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::reference_api::ApiReferenceTarget;
use serde_json::json;

use super::{SETTLE, docker_gc, ms, notes, print_notes, program_version, show};

/// `drydock bench cli` options.
#[derive(Args)]
pub(crate) struct CliArgs {
    /// `docker run -d` per engine.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// The docker CLI to run (default: Debian's 20.10, /usr/bin/docker).
    #[arg(long, default_value = "/usr/bin/docker")]
    docker: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn cli(args: CliArgs) -> anyhow::Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs: at least one");
    }
    let runtime = crate::cli::runtime()?;
    let mut notes = notes();
    notes.insert("docker CLI", program_version(&args.docker));
    notes.insert(
        "sample",
        "one `docker run -d --network app busybox sleep 1000` process, start to exit".into(),
    );
    docker_gc();
    let (ours, theirs) = runtime.block_on(measure(&args))?;
    let (ours_median, theirs_median) = (median(&ours), median(&theirs));
    if args.json {
        let engine = |name: &str, samples: &[Duration]| {
            json!({"engine": name, "median_ms": ms(median(samples)),
                   "p90_ms": ms(percentile(samples, 0.9)), "runs": samples.len()})
        };
        let report = json!({
            "notes": notes,
            "engines": [engine("reference-api", &ours), engine("docker", &theirs)],
            "ratio": ms(theirs_median) / ms(ours_median).max(f64::EPSILON),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_notes(&notes);
        let row = |name: &str, samples: &[Duration]| {
            vec![
                name.to_string(),
                show(median(samples)),
                show(percentile(samples, 0.9)),
                samples.len().to_string(),
            ]
        };
        let cells = vec![
            ["ENGINE", "MEDIAN", "P90", "RUNS"]
                .map(String::from)
                .to_vec(),
            row("reference-api (drydock, Engine API socket)", &ours),
            row("docker (dockerd 20.10)", &theirs),
        ];
        print!("{}", crate::cli::table::render(&cells));
        println!(
            "docker run -d against dockerd takes {:.1}x as long as against drydock (medians)",
            ms(theirs_median) / ms(ours_median).max(f64::EPSILON)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Both engines in one lab, the same runs against each, alternating.
async fn measure(args: &CliArgs) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let lab = drydock_netsim::Lab::build(super::topology(&["h1", "h2"])?)
        .await
        .context("building the lab")?;
    let run_id = format!("bench{:x}-cli", std::process::id());
    let (h1, h2) = (vec!["h1".to_string()], vec!["h2".to_string()]);
    let reference = (ApiReferenceTarget::start(&lab, &h1, &run_id).await)
        .map_err(|e| anyhow!("reference: {e}"))?;
    let docker = match DockerTarget::start(&lab, &h2, &run_id).await {
        Ok(docker) => docker,
        Err(e) => {
            reference.stop().await;
            bail!("docker: {e}");
        }
    };
    let sockets = [
        reference.socket("h1"),
        docker.socket("h2").map_err(|e| anyhow!("{e}"))?,
    ];
    let (cli, runs) = (args.docker.clone(), args.runs);
    // The CLI processes are waited for on a thread of their own: the engines answer them here.
    let measured = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut samples = [Vec::new(), Vec::new()];
        for socket in &sockets {
            run(&cli, socket, &["network", "create", "app"])?;
        }
        for _ in 0..runs {
            for (socket, samples) in sockets.iter().zip(&mut samples) {
                let started = Instant::now();
                run(
                    &cli,
                    socket,
                    &["run", "-d", "--network", "app", "busybox", "sleep", "1000"],
                )?;
                samples.push(started.elapsed());
            }
        }
        for socket in &sockets {
            let ids = run(&cli, socket, &["ps", "-aq"])?;
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                run(&cli, socket, &[&["rm", "-f"][..], &ids].concat())?;
            }
        }
        let [ours, theirs] = samples;
        Ok((ours, theirs))
    })
    .await
    .map_err(|e| anyhow!("the CLI runs: {e}"))
    .and_then(|measured| measured);
    reference.stop().await;
    let _ = docker.shutdown().await;
    std::thread::sleep(SETTLE);
    measured
}

/// `cli ARGS` against the engine on `socket`; its stdout, or why it failed.
fn run(cli: &Path, socket: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(cli)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", cli.display()))?;
    if !output.status.success() {
        bail!(
            "docker {} against {}: {}",
            args.join(" "),
            socket.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 0.5)
}

/// The `p` quantile (nearest rank) of `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}
