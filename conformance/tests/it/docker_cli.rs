//! The real docker CLI against the reference engine's Engine API socket and against a private
//! dockerd 20.10, in the same lab: Debian's CLI (`/usr/bin/docker`, 20.10) and the one first on
//! PATH (a current one, which negotiates API 1.41 down) print the same texts and exit with the
//! same codes on both, for the workshop's everyday commands and their errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use drydock_conformance::targets::Target;
use drydock_conformance::targets::docker::DockerTarget;
use drydock_conformance::targets::reference_api::ApiReferenceTarget;
use drydock_netsim::{Lab, Topology};

/// Debian's docker CLI.
const DEBIAN_CLI: &str = "/usr/bin/docker";

/// The commands, in order (each builds on the ones before), as a workshop participant types
/// them: what succeeds and what is refused.
const COMMANDS: &[&[&str]] = &[
    &["network", "create", "app"],
    &["network", "create", "app"],
    &[
        "network",
        "create",
        "--subnet",
        "172.18.0.0/16",
        "overlapping",
    ],
    &[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "busybox",
        "sleep",
        "1000",
    ],
    &[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "busybox",
        "sleep",
        "1000",
    ],
    &[
        "run",
        "-d",
        "--name",
        "lost",
        "--network",
        "nope",
        "busybox",
        "sleep",
        "1000",
    ],
    &[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.app.IPAddress}}",
        "web",
    ],
    &["inspect", "-f", "{{.State.Running}} {{.Name}}", "web"],
    &["ps", "--format", "{{.Names}} {{.Image}} {{.Command}}"],
    &["ps", "-a", "-q", "--filter", "name=lost"],
    &[
        "run",
        "-d",
        "--name",
        "bad",
        "--link",
        "bogus:alias",
        "busybox",
        "sleep",
        "1000",
    ],
    &["port", "web"],
    &[
        "network",
        "ls",
        "--filter",
        "name=app",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ],
    &[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "app",
    ],
    &["network", "inspect", "nope"],
    &["network", "rm", "app"],
    &[
        "create",
        "--name",
        "db",
        "--network",
        "app",
        "busybox",
        "sleep",
        "1000",
    ],
    &["rename", "db", "store"],
    &["rename", "store", "web"],
    &["rename", "store", "store"],
    &["rename", "nope", "other"],
    &["rename", "store", "bad name"],
    &[
        "ps",
        "-a",
        "--filter",
        "name=store",
        "--format",
        "{{.Names}}",
    ],
    &["start", "store"],
    &["stop", "-t", "1", "store"],
    &["restart", "-t", "1", "store"],
    &["kill", "-s", "NOPE", "store"],
    &["kill", "store"],
    &["kill", "store"],
    &["network", "connect", "bridge", "web"],
    &["network", "connect", "bridge", "web"],
    &["network", "disconnect", "bridge", "web"],
    &["network", "disconnect", "bridge", "web"],
    &["rm", "nope"],
    &["rm", "web"],
    &["stop", "nope"],
    // One container per `rm`: the CLI removes several at once, in no set order.
    &["rm", "-f", "web"],
    &["rm", "lost", "nope"],
    &["rm", "store"],
    &["network", "prune", "-f"],
    &["network", "ls", "--format", "{{.Name}}"],
];

async fn lab() -> Lab {
    let topology = Topology::builder("cli")
        .segment("lan", "10.10.0.0/24".parse().unwrap())
        .host("h1")
        .host("h2")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    Lab::build(topology)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// The docker CLIs to check: Debian's, and the one first on PATH if it is another.
fn clis() -> Vec<PathBuf> {
    let mut clis = vec![PathBuf::from(DEBIAN_CLI)];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let first = std::env::split_paths(&path)
        .map(|dir| dir.join("docker"))
        .find(|p| p.is_file());
    if let Some(first) = first
        && std::fs::canonicalize(&first).ok() != std::fs::canonicalize(DEBIAN_CLI).ok()
    {
        clis.push(first);
    }
    clis
}

/// `cli ARGS` against the engine on `socket`: exit code, stdout, stderr, with ids replaced.
fn docker(cli: &Path, socket: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(cli)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("drydock-cli-test-config"),
        )
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cli.display()));
    let text = |bytes: &[u8]| normalize(&String::from_utf8_lossy(bytes));
    (
        output.status.code().unwrap_or(-1),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// Now, as `docker events --since` takes it (seconds and nanoseconds since the epoch).
fn unix_time() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// Hex ids (64 or 12 digits) as `<id>`.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        match run.len() {
            12 | 64 => out.push_str("<id>"),
            _ => out.push_str(run),
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[test]
fn ids_are_normalized_and_other_words_kept() {
    let id = "a".repeat(64);
    assert_eq!(normalize(&format!("{id}\n")), "<id>\n");
    assert_eq!(
        normalize("Error: No such network: nope"),
        "Error: No such network: nope"
    );
    assert_eq!(normalize("0123456789ab busybox"), "<id> busybox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_cli_reads_the_same_from_drydock_and_from_dockerd() {
    if !crate::privileged() {
        return;
    }
    // Each engine on a docker host of its own: both make docker0.
    let (h1, h2) = (vec!["h1".to_string()], vec!["h2".to_string()]);
    let mut differences = Vec::new();
    for (n, cli) in clis().iter().enumerate() {
        // A fresh lab per CLI: an engine leaves docker0 in its host until the lab goes.
        let lab = lab().await;
        let run_id = format!("it{}cli{n}", std::process::id());
        let reference = ApiReferenceTarget::start(&lab, &h1, &run_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let dockerd = DockerTarget::start(&lab, &h2, &run_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (ours, theirs) = (reference.socket("h1"), dockerd.socket("h2").unwrap());
        let mut created = false;
        let since = unix_time();
        for args in COMMANDS {
            // The CLI waits for the servers, which run on this runtime's other threads.
            let (a, b) = tokio::task::block_in_place(|| {
                (docker(cli, &ours, args), docker(cli, &theirs, args))
            });
            // Both engines answered for real: the network is made, the address is read.
            match args[..] {
                ["network", "create", "app"] if !created => {
                    assert_eq!((a.0, &a.1), (0, &"<id>\n".to_string()), "{a:?}");
                    created = true;
                }
                [
                    "inspect",
                    "-f",
                    "{{.NetworkSettings.Networks.app.IPAddress}}",
                    "web",
                ] => {
                    assert_eq!(a.1, "172.18.0.2\n", "{a:?}");
                }
                _ => {}
            }
            if a != b {
                differences.push(format!(
                    "{} {}\n  drydock: {a:?}\n  dockerd: {b:?}",
                    cli.display(),
                    args.join(" ")
                ));
            }
        }
        // What both engines logged meanwhile, as `docker events` shows it.
        let until = unix_time();
        let args = [
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--format",
            "{{.Type}} {{.Action}} {{json .Actor.Attributes}}",
        ];
        let (a, b) = tokio::task::block_in_place(|| {
            (docker(cli, &ours, &args), docker(cli, &theirs, &args))
        });
        assert!(a.1.contains("container rename"), "{a:?}");
        if a != b {
            differences.push(format!(
                "{} events\n  drydock: {}\n  dockerd: {}",
                cli.display(),
                a.1.replace('\n', "\n           "),
                b.1.replace('\n', "\n           ")
            ));
        }
        reference.stop().await;
        dockerd.stop().await;
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
