//! `drydock lab ...`: build, list, enter, capture and remove labs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use drydock_netsim::capture::{Capture, Packet, PcapNgSink};
use drydock_netsim::registry::{self, LabInfo, Registration, persistent};
use drydock_netsim::topology::check_lab_name;
use drydock_netsim::{Lab, Topology, userns};

use super::{holder, in_host, table};

#[derive(Subcommand)]
pub(crate) enum LabCommand {
    /// Build a lab from a topology file and hold it until Ctrl-C or `lab down`.
    Up {
        /// Topology file (YAML).
        file: PathBuf,
        /// Lab name (default: the file's `name`, else its file stem).
        #[arg(long)]
        name: Option<String>,
        /// Keep the lab after this command exits, held by a process in the background until
        /// `lab down` (namespaces mounted in /run/netns; needs root).
        #[arg(long)]
        persist: bool,
        /// Print the lab as one line of JSON once it is up.
        #[arg(long)]
        json: bool,
    },
    /// Hold a persistent lab, opened from its mounts: serve its engines, DNS and PID namespace
    /// (`lab up --persist` starts this in the background).
    #[command(hide = true)]
    Hold {
        /// Lab name.
        name: String,
        /// A pipe to write `ready` on once everything serves.
        #[arg(long)]
        ready_fd: Option<i32>,
    },
    /// Remove a lab.
    Down {
        /// Lab name.
        name: String,
    },
    /// List the labs that are up.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a host of a lab; its exit code is passed through.
    Exec {
        /// Lab name.
        name: String,
        /// Host name.
        host: String,
        /// Command and arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print `export DOCKER_HOST=unix://...`: the Engine API socket of a host's engine, for
    /// any docker client (`eval $(drydock lab env LAB HOST)`).
    Env {
        /// Lab name.
        name: String,
        /// Host name.
        host: String,
    },
    /// Open a shell ($SHELL) inside a host of a lab, with DOCKER_HOST set to its engine.
    Shell {
        /// Lab name.
        name: String,
        /// Host name.
        host: String,
    },
    /// Capture packets on an interface of a host, to pcapng and/or as one-line summaries.
    Capture {
        /// Lab name.
        name: String,
        /// Host name.
        host: String,
        /// Interface name inside the host.
        iface: String,
        /// Write packets to this pcapng file.
        #[arg(short = 'w', long = "write")]
        file: Option<PathBuf>,
        /// Stop after this many packets.
        #[arg(long, conflicts_with = "seconds")]
        count: Option<usize>,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
        /// Print a summary line per packet (the default without -w).
        #[arg(long)]
        print: bool,
    },
}

pub(crate) fn run(command: LabCommand) -> anyhow::Result<ExitCode> {
    match command {
        LabCommand::Up {
            file,
            name,
            persist,
            json,
        } => up(&file, name, persist, json),
        LabCommand::Hold { name, ready_fd } => holder::run(&name, ready_fd),
        LabCommand::Down { name } => down(&name),
        LabCommand::Ls { json } => ls(json),
        LabCommand::Exec {
            name,
            host,
            command,
        } => exec(&name, &host, &command),
        LabCommand::Env { name, host } => super::docker::env(&name, &host),
        LabCommand::Shell { name, host } => super::docker::shell(&name, &host),
        LabCommand::Capture {
            name,
            host,
            iface,
            file,
            count,
            seconds,
            print,
        } => {
            let limit = match (count, seconds) {
                (Some(n), _) => Limit::Count(n),
                (_, Some(s)) => {
                    let deadline = Duration::try_from_secs_f64(s)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .and_then(|d| Instant::now().checked_add(d));
                    match deadline {
                        Some(deadline) => Limit::Until(deadline),
                        None => bail!("--seconds {s}: expected a positive number of seconds"),
                    }
                }
                _ => Limit::Interrupt,
            };
            capture(&name, &host, &iface, file, limit, print)
        }
    }
}

fn up(
    file: &std::path::Path,
    name: Option<String>,
    persist: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut topology = Topology::load(file)?;
    if let Some(name) = name {
        check_lab_name(&name).map_err(|m| anyhow::anyhow!("--name: {m}"))?;
        topology.name = name;
    }
    if persist && !userns::is_privileged() {
        bail!(
            "persistent labs are mounted in {} and need root; without --persist, labs work rootless",
            persistent::NETNS_DIR
        );
    }
    // Where the engines' sockets go is the user's, known before a rootless lab makes us root.
    let sockets = super::engines::sockets_root();
    super::enter_rootless_if_needed()?;
    let registration = Registration::claim(&topology.name)?;
    let runtime = super::runtime()?;
    let started = Instant::now();
    let lab = runtime.block_on(Lab::build(topology))?;
    tracing::info!("lab {} built in {:?}", lab.name(), started.elapsed());

    if !persist {
        print_up(&LabInfo::held(&lab), json)?;
        return holder::hold(lab, registration, &runtime, &sockets, None);
    }
    // The registration keeps the name until the state file claims it; then the holder, in the
    // background, claims the registry socket.
    persistent::persist(&lab)?;
    drop(registration);
    let mut info = LabInfo::persistent(&lab);
    // The mounts keep the namespaces.
    drop(lab);
    info.pid = Some(holder::start(&info.topology.name)?);
    print_up(&info, json)?;
    Ok(ExitCode::SUCCESS)
}

/// What `lab up` says once the lab is up.
fn print_up(info: &LabInfo, json: bool) -> anyhow::Result<()> {
    let name = &info.topology.name;
    if json {
        println!("{}", serde_json::to_string(info)?);
    } else {
        print!("{}", describe(info));
        let pid = info.pid.unwrap_or_default();
        match info.persistent {
            true => println!(
                "lab {name} is up and persistent, held in the background by pid {pid} (log: {}): `drydock lab down {name}` or `drydock gc` removes it",
                persistent::log_file(name).display()
            ),
            false => println!(
                "lab {name} is up (pid {pid}): Ctrl-C or `drydock lab down {name}` removes it"
            ),
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// `lab down`: the lab's holder stops; a persistent lab's mounts go too, and what its holder
/// left if it died.
fn down(name: &str) -> anyhow::Result<ExitCode> {
    let lab = registry::find(name)?;
    let orphaned = !lab.is_held();
    lab.down()?;
    if orphaned {
        use super::engines::{gc_state, remove_sockets, sockets_root};
        let left = remove_sockets(&sockets_root(), name).and_then(|()| gc_state());
        if let Err(e) = left {
            eprintln!("drydock: warning: what the dead holder of lab {name} left: {e}");
        }
    }
    println!("lab {name} is down");
    Ok(ExitCode::SUCCESS)
}

/// The lab as a table: one row per interface.
fn describe(info: &LabInfo) -> String {
    let topology = &info.topology;
    let mut rows = vec![
        [
            "HOST", "ROLE", "IFACE", "SEGMENT", "ADDRESS", "MAC", "ROUTES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for host in &topology.hosts {
        let routes: Vec<String> = host
            .routes
            .iter()
            .map(|r| {
                let to = if r.to.prefix() == 0 {
                    "default".to_string()
                } else {
                    r.to.to_string()
                };
                format!("{to} via {}", r.via)
            })
            .collect();
        for (i, iface) in host.interfaces.iter().enumerate() {
            let mut address = iface.address.to_string();
            if let Some(v6) = iface.address6 {
                address.push_str(&format!(" {v6}"));
            }
            let first = i == 0;
            rows.push(vec![
                if first {
                    host.name.clone()
                } else {
                    String::new()
                },
                if !first {
                    String::new()
                } else if host.router {
                    "router".into()
                } else {
                    "host".into()
                },
                iface.name.clone(),
                topology.segments[iface.segment].name.clone(),
                address,
                iface.mac.to_string(),
                if first {
                    routes.join(", ")
                } else {
                    String::new()
                },
            ]);
        }
    }
    table::render(&rows)
}

fn ls(json: bool) -> anyhow::Result<ExitCode> {
    let mut labs = Vec::new();
    let mut rows = vec![
        ["NAME", "HOSTS", "HELD BY", "MODE"]
            .map(String::from)
            .to_vec(),
    ];
    for entry in registry::list()? {
        match entry.describe() {
            Ok(info) => {
                let hosts: Vec<&str> = info
                    .topology
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect();
                rows.push(vec![
                    info.topology.name.clone(),
                    hosts.join(","),
                    // A persistent lab whose holder died has none.
                    info.pid.map_or("none".into(), |pid| format!("pid {pid}")),
                    match (info.persistent, info.rootless) {
                        (true, _) => "persistent",
                        (false, true) => "rootless",
                        (false, false) => "root",
                    }
                    .into(),
                ]);
                labs.push(info);
            }
            // Another user's lab, or one going down while we ask: listed, with the reason.
            Err(e) => rows.push(vec![
                entry.name().to_string(),
                "-".into(),
                "-".into(),
                e.to_string(),
            ]),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&labs)?);
    } else {
        print!("{}", table::render(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

fn exec(name: &str, host: &str, command: &[String]) -> anyhow::Result<ExitCode> {
    let target = registry::find(name)?.host(host)?;
    let mut child = in_host::command(&target, &command[0])?;
    child.args(&command[1..]);
    match in_host::run(&target, &mut child) {
        Ok(status) => Ok(in_host::exit_code(status)),
        // As a shell says it: 127 when the program does not exist, 126 when it cannot be run.
        Err(e) => {
            let message = format!("cannot run {:?} in {name}/{host}: {e}", command[0]);
            eprintln!("drydock: error: {message}");
            let code = drydock_runtime::server::failed_start::exit_code(&message, 1);
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
    }
}

/// When a capture stops.
enum Limit {
    Count(usize),
    Until(Instant),
    Interrupt,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn capture(
    name: &str,
    host: &str,
    iface: &str,
    file: Option<PathBuf>,
    limit: Limit,
    print: bool,
) -> anyhow::Result<ExitCode> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let target = registry::find(name)?.host(host)?;
    if let Some(user) = &target.userns {
        // Still single-threaded here, as joining a user namespace requires.
        user.join()?;
    }
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }

    let label = format!("{host}/{iface}");
    let capture =
        Capture::start(&target.netns, iface, &label).with_context(|| format!("lab {name}"))?;
    // The file is made only once capturing works, so a failed start leaves none behind.
    let sink = match &file {
        Some(path) => {
            let out =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut sink = PcapNgSink::new(BufWriter::new(out))?;
            let id = sink.add_interface(&label)?;
            Some((sink, id))
        }
        None => None,
    };
    let print = print || file.is_none();
    eprintln!("capturing on {name}/{label}");

    let mut recorder = Recorder {
        label: &label,
        print,
        sink,
        count: 0,
    };
    loop {
        let done = match limit {
            Limit::Count(n) => recorder.count >= n,
            Limit::Until(deadline) => Instant::now() >= deadline,
            Limit::Interrupt => false,
        };
        if done || INTERRUPTED.load(Ordering::SeqCst) {
            break;
        }
        if capture.interface_gone() {
            eprintln!("{name}/{label} was deleted (is the lab down?): capture ends");
            break;
        }
        if let Some(packet) = capture.recv_timeout(Duration::from_millis(100)) {
            recorder.record(packet)?;
        }
    }
    let rest = capture.stop()?;
    if !matches!(limit, Limit::Count(_)) {
        for packet in rest {
            recorder.record(packet)?;
        }
    }
    let count = recorder.count;
    if let Some((sink, _)) = recorder.sink {
        sink.finish()?.flush()?;
    }
    let written = file
        .map(|f| format!(", written to {}", f.display()))
        .unwrap_or_default();
    eprintln!("{count} packets captured on {name}/{label}{written}");
    Ok(ExitCode::SUCCESS)
}

/// Where captured packets go: summaries on stdout and/or a pcapng file.
struct Recorder<'a> {
    label: &'a str,
    print: bool,
    sink: Option<(PcapNgSink<BufWriter<File>>, u32)>,
    count: usize,
}

impl Recorder<'_> {
    fn record(&mut self, packet: Packet) -> anyhow::Result<()> {
        if self.print {
            println!("{}", packet.summary(self.label));
        }
        if let Some((sink, id)) = &mut self.sink {
            sink.write(*id, &packet)?;
        }
        self.count += 1;
        Ok(())
    }
}
