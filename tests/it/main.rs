//! The `drydock` command, driven as users drive it: separate processes, real namespaces.

mod conform;
mod docs;
mod doctor;
mod engine;
mod lab;
mod mutants;
mod plugin;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// True when this test may create namespaces; see [`drydock_netsim::userns::privileged_or_skip`].
fn privileged() -> bool {
    drydock_netsim::userns::privileged_or_skip()
}

/// The `drydock` binary under test, optionally run as the unprivileged user `nobody`.
fn drydock(as_nobody: bool) -> Command {
    let binary = env!("CARGO_BIN_EXE_drydock");
    if as_nobody {
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            binary,
        ]);
        command
    } else {
        Command::new(binary)
    }
}

/// Path of an example topology in `scenarios/labs/`.
fn example(file: &str) -> String {
    format!("{}/scenarios/labs/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `drydock ARGS` as root, asserts that it succeeds, and returns its stdout.
fn drydock_ok(args: &[&str]) -> String {
    let output = drydock(false).args(args).output().expect("drydock runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "drydock {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Serializes tests that change or compare machine-wide state (`/run/netns`, the machine's links).
fn machine_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A `drydock lab up` process holding a lab; killed (SIGKILL) when dropped.
struct HeldLab {
    child: Child,
    name: String,
    as_nobody: bool,
}

impl HeldLab {
    /// Starts `lab up` on an example topology and waits until the lab is up.
    fn up(example: &str, name: &str, as_nobody: bool) -> Self {
        let file = crate::example(example);
        let mut child = drydock(as_nobody)
            .args(["lab", "up", &file, "--json", "--name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("drydock starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let output = child.wait_with_output().unwrap();
            panic!("lab up failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let info: serde_json::Value = serde_json::from_str(&line).expect("lab up prints JSON");
        assert_eq!(info["topology"]["name"], name);
        Self {
            child,
            name: name.to_string(),
            as_nobody,
        }
    }

    /// Runs `drydock lab ARGS...` against this lab (as the same user that holds it).
    fn lab(&self, args: &[&str]) -> std::process::Output {
        drydock(self.as_nobody)
            .arg("lab")
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs CMD in HOST; returns its exit code.
    fn exec(&self, host: &str, command: &[&str]) -> i32 {
        let mut args = vec!["exec", &self.name, host, "--"];
        args.extend(command);
        let output = self.lab(&args);
        output.status.code().unwrap_or(-1)
    }
}

impl Drop for HeldLab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lab made by `drydock lab up --persist` (as root), and the pid of its holder; taken down
/// when dropped, should a test end before it did.
struct PersistentLab {
    name: String,
    holder: i32,
}

impl PersistentLab {
    /// Runs `lab up --persist` on an example topology; returns once it has returned.
    fn up(example: &str, name: &str) -> Self {
        let file = crate::example(example);
        let line = drydock_ok(&["lab", "up", &file, "--persist", "--json", "--name", name]);
        let info: serde_json::Value = serde_json::from_str(&line).expect("lab up prints JSON");
        assert_eq!(info["topology"]["name"], name);
        assert_eq!(info["persistent"], true, "{info}");
        let holder = info["pid"].as_i64().expect("a persistent lab has a holder");
        Self {
            name: name.to_string(),
            holder: i32::try_from(holder).unwrap(),
        }
    }

    /// Asserts that nothing of the lab is left: its holder, registry socket, engines' sockets
    /// and state, hosts' files, namespace mounts, description and log.
    fn assert_gone(&self) {
        let name = &self.name;
        assert!(
            eventually(|| !running(self.holder)),
            "the holder of {name} (pid {}) still runs",
            self.holder
        );
        let engines = format!("/run/drydock/engines/{name}");
        let state = format!("/tmp/drydock-engines-{}", self.holder);
        let files = format!("/tmp/drydock-lab-{}", self.holder);
        for path in [engines, state, files] {
            assert!(!std::path::Path::new(&path).exists(), "{path} is left");
        }
        let mounts: Vec<String> = std::fs::read_dir("/run/netns")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|file| file.starts_with(&format!("drydock-{name}.")))
            .collect();
        assert_eq!(mounts, Vec::<String>::new(), "namespace mounts are left");
        for file in [format!("{name}.json"), format!("{name}.log")] {
            let path = std::path::Path::new("/run/drydock/labs").join(file);
            assert!(!path.exists(), "{} is left", path.display());
        }
        let sockets = std::fs::read_to_string("/proc/net/unix").unwrap();
        assert!(!sockets.contains(&format!("@drydock-lab/{name}\n")));
        let listed = drydock_ok(&["lab", "ls"]);
        assert!(
            !listed.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{listed}"
        );
    }
}

impl Drop for PersistentLab {
    fn drop(&mut self) {
        let _ = drydock(false).args(["lab", "down", &self.name]).output();
    }
}

/// Whether process `pid` runs (a zombie, which init has not reaped yet, does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// Waits up to 5 s for `done`.
fn eventually(done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// `ip ARGS` output: a witness of the machine's own namespace.
fn ip(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().expect("ip runs");
    String::from_utf8(output.stdout).unwrap()
}

/// Every `/proc/PID/ns/net` and `/proc/PID/fd/N` that refers to `namespace` (like `net:[4026532]`).
pub(crate) fn namespace_holders(namespace: &str) -> Vec<String> {
    let mut holders = Vec::new();
    for process in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = process.path();
        let fds = std::fs::read_dir(path.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|fd| fd.path());
        for link in fds.chain([path.join("ns/net")]) {
            if std::fs::read_link(&link).is_ok_and(|target| target.to_string_lossy() == namespace) {
                holders.push(link.display().to_string());
            }
        }
    }
    holders
}
