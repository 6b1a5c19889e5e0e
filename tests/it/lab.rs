//! `drydock lab up|ls|exec|capture|down` and `drydock gc`, as separate processes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::{
    HeldLab, PersistentLab, drydock, drydock_ok, eventually, example, ip, machine_lock,
    namespace_holders, privileged, running,
};

/// Starts `lab capture` and returns once it is capturing.
fn start_capture(
    lab: &HeldLab,
    host: &str,
    iface: &str,
    file: &std::path::Path,
) -> std::process::Child {
    let mut capture = drydock(lab.as_nobody)
        .args(["lab", "capture", &lab.name, host, iface, "-w"])
        .arg(file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(capture.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("capturing on"),
        "capture did not start: {line}"
    );
    capture
}

/// Interrupts a capture like Ctrl-C does and waits for it to write its file.
fn interrupt(mut capture: std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(capture.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert!(capture.wait().unwrap().success());
}

/// ICMP types tshark decodes from a pcapng file, one per packet.
fn tshark_icmp_types(file: &std::path::Path) -> Vec<String> {
    let output = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(file)
        .args([
            "-Y",
            "icmp",
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "icmp.type",
        ])
        .output()
        .expect("tshark runs");
    assert!(
        output.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Lab hosts find each other by name through the lab's DNS, and learn at once that no other
/// name exists: the machine's resolvers, which the lab cannot reach, are not asked.
fn assert_lab_dns(lab: &HeldLab) {
    let run = |command: &[&str]| {
        let mut args = vec!["exec", &lab.name, "h1", "--"];
        args.extend(command);
        let output = lab.lab(&args);
        String::from_utf8(output.stdout).unwrap()
    };
    // getent: the C library's lookup, through the resolv.conf lab exec gives.
    assert_eq!(run(&["getent", "hosts", "h3"]), "10.0.2.10       h3\n");
    let dig = ["dig", "+tries=1", "+time=3"];
    assert_eq!(
        run(&[&dig[..], &["+short", "r1"]].concat()),
        "10.0.1.1\n10.0.2.1\n"
    );
    let unknown = run(&[&dig[..], &["www.example.com"]].concat());
    assert!(unknown.contains("status: NXDOMAIN"), "{unknown}");
    // `lab shell` sees the same.
    let mut shell = drydock(lab.as_nobody)
        .args(["lab", "shell", &lab.name, "h1"])
        .env("SHELL", "sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = shell.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"getent hosts h3\n").unwrap();
    drop(stdin);
    let output = shell.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "10.0.2.10       h3\n"
    );
}

/// The README's tour: up, exec a ping across the router, capture it on the router, down.
fn tour(as_nobody: bool, name: &str) {
    let lab = HeldLab::up("three-hosts.yaml", name, as_nobody);
    let listed = String::from_utf8(lab.lab(&["ls"]).stdout).unwrap();
    assert!(listed.lines().any(|l| l.starts_with(name)), "{listed}");
    assert_lab_dns(&lab);

    let dir = tempfile::tempdir().unwrap();
    // nobody must be able to write the capture file.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let file = dir.path().join("r1.pcapng");
    let capture = start_capture(&lab, "r1", "eth0", &file);
    assert_eq!(
        lab.exec("h1", &["ping", "-c", "1", "-W", "2", "10.0.2.10"]),
        0,
        "h1 pings h3 across r1"
    );
    interrupt(capture);
    assert_eq!(
        tshark_icmp_types(&file),
        ["r1/eth0\t8", "r1/eth0\t0"],
        "echo request and reply on r1/eth0"
    );

    let down = lab.lab(&["down", name]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let listed = String::from_utf8(lab.lab(&["ls"]).stdout).unwrap();
    assert!(!listed.contains(name), "{listed}");
}

#[test]
fn up_exec_capture_down() {
    if !privileged() {
        return;
    }
    tour(false, "cli-tour");
}

#[test]
fn rootless_as_nobody() {
    // Switching to nobody needs root; what runs afterwards has no privileges at all.
    if !privileged() {
        return;
    }
    tour(true, "cli-rootless");
}

#[test]
fn exec_passes_the_exit_code_through() {
    if !privileged() {
        return;
    }
    let lab = HeldLab::up("one-host.yaml", "cli-exit", false);
    assert_eq!(lab.exec("h1", &["sh", "-c", "exit 7"]), 7);
    assert_eq!(lab.exec("h1", &["sh", "-c", "kill -9 $$"]), 128 + 9);
    let output = lab.lab(&["exec", "cli-exit", "nohost", "--", "true"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("has no host \"nohost\"; its hosts are [\"h1\"]"),
        "{stderr}"
    );
}

#[test]
fn sigkill_of_the_holder_leaves_nothing() {
    if !privileged() {
        return;
    }
    let _machine = machine_lock();
    let (netns_before, links_before) = (ip(&["netns", "list"]), ip(&["-br", "link"]));
    let mut lab = HeldLab::up("three-hosts.yaml", "cli-sigkill", false);
    assert_eq!(
        ip(&["-br", "link"]),
        links_before,
        "the lab lives in its own namespaces"
    );
    let h1 = String::from_utf8(
        lab.lab(&[
            "exec",
            "cli-sigkill",
            "h1",
            "--",
            "readlink",
            "/proc/self/ns/net",
        ])
        .stdout,
    )
    .unwrap();
    let h1 = h1.trim().to_string();
    assert!(h1.starts_with("net:["), "{h1}");
    assert!(
        !namespace_holders(&h1).is_empty(),
        "while up, the holder keeps {h1}"
    );

    lab.child.kill().unwrap(); // SIGKILL: no destructor runs
    lab.child.wait().unwrap();

    assert_eq!(
        namespace_holders(&h1),
        Vec::<String>::new(),
        "nothing keeps {h1} alive: the kernel frees it"
    );
    assert_eq!(ip(&["netns", "list"]), netns_before);
    assert_eq!(ip(&["-br", "link"]), links_before);
    let sockets = std::fs::read_to_string("/proc/net/unix").unwrap();
    assert!(
        !sockets.contains("drydock-lab/cli-sigkill"),
        "the registry entry died with its process"
    );
    let listed = String::from_utf8(lab.lab(&["ls"]).stdout).unwrap();
    assert!(!listed.contains("cli-sigkill"), "{listed}");
}

#[test]
fn exec_sees_the_hosts_own_sys() {
    if !privileged() {
        return;
    }
    let lab = HeldLab::up("one-host.yaml", "cli-sysfs", false);
    let listed = lab.lab(&["exec", "cli-sysfs", "h1", "--", "ls", "/sys/class/net"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "eth0\nlo\n");
}

#[test]
fn a_capture_ends_when_its_lab_goes_down() {
    if !privileged() {
        return;
    }
    let lab = HeldLab::up("one-host.yaml", "cli-capture-end", false);
    let dir = tempfile::tempdir().unwrap();
    let mut capture = start_capture(&lab, "h1", "eth0", &dir.path().join("h1.pcapng"));
    drydock_ok(&["lab", "down", "cli-capture-end"]);
    let status = capture.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(capture.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("h1/eth0 was deleted (is the lab down?): capture ends"),
        "{stderr}"
    );
}

#[test]
fn names_that_could_not_be_found_again_are_refused() {
    let output = drydock(false)
        .args(["lab", "up", &example("one-host.yaml"), "--name", "a b"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--name: invalid lab name \"a b\""),
        "{stderr}"
    );
}

#[test]
fn a_lab_of_another_user_is_not_trusted() {
    if !privileged() {
        return;
    }
    // Anyone can bind an abstract name: here nobody holds a lab under a name root asks for.
    let _lab = HeldLab::up("one-host.yaml", "cli-other-user", true);
    let exec = drydock(false)
        .args(["lab", "exec", "cli-other-user", "h1", "--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&exec.stderr);
    assert_eq!(exec.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lab \"cli-other-user\" is held by another user (uid 65534)"),
        "{stderr}"
    );
    let listed = drydock_ok(&["lab", "ls"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("cli-other-user") && l.contains("held by another user")),
        "{listed}"
    );
}

#[test]
fn a_silent_client_does_not_stall_the_lab() {
    if !privileged() {
        return;
    }
    let lab = HeldLab::up("one-host.yaml", "cli-silent", false);
    // Connects and sends nothing: the lab must keep answering others meanwhile.
    let silent = std::os::unix::net::UnixStream::connect_addr(
        &<std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name("drydock-lab/cli-silent").unwrap(),
    )
    .unwrap();
    assert_eq!(lab.exec("h1", &["true"]), 0);
    let listed = drydock_ok(&["lab", "ls"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("cli-silent") && l.contains("pid")),
        "{listed}"
    );
    drop(silent);
}

#[test]
fn a_name_in_use_is_refused_and_the_first_lab_is_untouched() {
    if !privileged() {
        return;
    }
    let lab = HeldLab::up("one-host.yaml", "cli-twice", false);
    let file = example("two-hosts.yaml");
    let second = drydock(false)
        .args(["lab", "up", &file, "--name", "cli-twice"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("a lab named \"cli-twice\" is already up"),
        "{stderr}"
    );
    assert_eq!(
        lab.exec("h1", &["ping", "-c", "1", "-W", "1", "10.0.0.10"]),
        0
    );
}

#[test]
fn a_malformed_topology_is_located_and_builds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "segments:\n  lan: {subnet: 10.0.0.0/24}\nhosts:\n  h1:\n    interfaces:\n      - segment: lam\n").unwrap();
    let output = drydock(false)
        .args(["lab", "up"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let located = format!(
        "{}:6:18: unknown segment \"lam\": expected one of [\"lan\"]",
        file.display()
    );
    assert!(stderr.contains(&located), "{stderr}");
    let sockets = std::fs::read_to_string("/proc/net/unix").unwrap();
    assert!(
        !sockets.contains("drydock-lab/bad"),
        "nothing was claimed or built"
    );
}

#[test]
fn persistent_labs_outlive_their_holder_until_down_or_gc() {
    if !privileged() {
        return;
    }
    let _machine = machine_lock();
    let netns_before = ip(&["netns", "list"]);
    let lab = PersistentLab::up("two-hosts.yaml", "cli-persist");

    // `lab up` has returned; the lab answers to iproute2, and to drydock through its holder.
    let namespaces = ip(&["netns", "list"]);
    for host in [
        "drydock-cli-persist.h1",
        "drydock-cli-persist.h2",
        "drydock-cli-persist._fabric",
    ] {
        assert!(namespaces.contains(host), "{namespaces}");
    }
    let ping = std::process::Command::new("ip")
        .args(["netns", "exec", "drydock-cli-persist.h1"])
        .args(["ping", "-c", "1", "-W", "1", "10.0.1.20"])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "ip netns exec reaches the persistent lab"
    );
    let exec = |command: &[&str]| {
        let mut args = vec!["lab", "exec", "cli-persist", "h2", "--"];
        args.extend(command);
        drydock(false).args(args).output().unwrap()
    };
    // lab exec: in the lab's PID namespace, with the lab's DNS, as in a held lab.
    let h1 = exec(&["dig", "+short", "+tries=1", "+time=3", "h1"]);
    assert_eq!(String::from_utf8_lossy(&h1.stdout), "10.0.1.10\n");
    let pidns = |output: std::process::Output| String::from_utf8(output.stdout).unwrap();
    let machine = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let in_lab = pidns(exec(&["readlink", "/proc/self/ns/pid"]));
    assert_ne!(in_lab.trim(), machine.to_string_lossy(), "in the lab's");
    let row = |listed: &str| -> Vec<String> {
        let line = listed.lines().find(|l| l.starts_with("cli-persist "));
        line.unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let holder = lab.holder.to_string();
    let listed = drydock_ok(&["lab", "ls"]);
    assert_eq!(
        row(&listed),
        ["cli-persist", "h1,h2", "pid", &holder, "persistent"],
        "{listed}"
    );

    // The holder dies: what it served goes, the lab stays, reached through its mounts.
    kill(lab.holder);
    assert!(eventually(|| !running(lab.holder)));
    let listed = drydock_ok(&["lab", "ls"]);
    assert_eq!(
        row(&listed),
        ["cli-persist", "h1,h2", "none", "persistent"],
        "{listed}"
    );
    let env = drydock(false)
        .args(["lab", "env", "cli-persist", "h1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&env.stderr);
    assert!(!env.status.success());
    assert!(
        stderr.contains("persistent lab cli-persist has lost its holder"),
        "{stderr}"
    );
    let ping = exec(&["ping", "-c", "1", "-W", "1", "fd00:1::10"]);
    assert!(ping.status.success(), "{ping:?}");
    drydock_ok(&["lab", "down", "cli-persist"]);
    lab.assert_gone();
    assert_eq!(ip(&["netns", "list"]), netns_before);

    // gc takes a persistent lab down with its holder.
    let lab = PersistentLab::up("two-hosts.yaml", "cli-persist-gc");
    let removed = drydock_ok(&["gc"]);
    assert!(
        removed.contains("removed persistent lab cli-persist-gc and its holder"),
        "{removed}"
    );
    lab.assert_gone();

    // A run that crashed between mounting and recording leaves mounts only: gc finds them, and
    // what its holder left.
    let lab = PersistentLab::up("two-hosts.yaml", "cli-crashed");
    kill(lab.holder);
    assert!(eventually(|| !running(lab.holder)));
    std::fs::remove_file("/run/drydock/labs/cli-crashed.json").unwrap();
    let removed = drydock_ok(&["gc"]);
    for what in [
        "removed namespace mount /run/netns/drydock-cli-crashed.h1",
        "removed state file /run/drydock/labs/cli-crashed.log",
        "removed /run/drydock/engines/cli-crashed",
    ] {
        assert!(removed.contains(what), "{removed}");
    }
    lab.assert_gone();
    assert_eq!(ip(&["netns", "list"]), netns_before);
}

#[test]
fn a_persistent_lab_whose_holder_cannot_start_leaves_nothing() {
    if !privileged() {
        return;
    }
    let _machine = machine_lock();
    let netns_before = ip(&["netns", "list"]);
    // Where its engines' sockets go, a file that the holder cannot replace.
    let obstacle = std::path::Path::new("/run/drydock/engines/cli-persist-fail");
    std::fs::create_dir_all(obstacle.parent().unwrap()).unwrap();
    std::fs::write(obstacle, "").unwrap();
    let _cleanup = Cleanup(|| {
        let _ = std::fs::remove_file(obstacle);
    });
    let file = example("two-hosts.yaml");
    let up = drydock(false)
        .args([
            "lab",
            "up",
            &file,
            "--persist",
            "--name",
            "cli-persist-fail",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(!up.status.success());
    assert!(
        stderr.contains(
            "the holder of persistent lab cli-persist-fail did not start: it ended before serving; it said: drydock: error: cannot remove /run/drydock/engines/cli-persist-fail: Not a directory"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("lab cli-persist-fail is removed"),
        "{stderr}"
    );
    assert_eq!(ip(&["netns", "list"]), netns_before);
    for file in ["cli-persist-fail.json", "cli-persist-fail.log"] {
        let path = std::path::Path::new("/run/drydock/labs").join(file);
        assert!(!path.exists(), "{} is left", path.display());
    }
    let holders = std::process::Command::new("pgrep")
        .args(["-f", "lab hold cli-persist-fail"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&holders.stdout),
        "",
        "a holder runs"
    );
    let listed = drydock_ok(&["lab", "ls"]);
    assert!(!listed.contains("cli-persist-fail"), "{listed}");
}

/// Sends SIGKILL to process `pid`.
fn kill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// Runs its closure when dropped, even when a test panics.
struct Cleanup<F: FnMut()>(F);

impl<F: FnMut()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Command lines of the processes in network namespace `namespace` (like `net:[4026532]`).
fn processes_in(namespace: &str) -> Vec<String> {
    namespace_holders(namespace)
        .iter()
        .filter_map(|link| link.strip_suffix("/ns/net"))
        .filter_map(|process| std::fs::read(format!("{process}/cmdline")).ok())
        .map(|line| String::from_utf8_lossy(&line).replace('\0', " "))
        .collect()
}

/// Starts two servers in h2 through `lab exec`, one whose client is then killed and one that
/// forks away from it, and returns h2's namespace once both run.
fn serve_from_h2(lab: &HeldLab) -> String {
    let h2 = lab.lab(&[
        "exec",
        &lab.name,
        "h2",
        "--",
        "readlink",
        "/proc/self/ns/net",
    ]);
    let h2 = String::from_utf8(h2.stdout).unwrap().trim().to_string();
    assert!(h2.starts_with("net:["), "{h2}");
    let mut client = drydock(lab.as_nobody)
        .args(["lab", "exec", &lab.name, "h2", "--"])
        .args(["busybox", "httpd", "-f", "-p", "8080"])
        .spawn()
        .unwrap();
    assert_eq!(lab.exec("h2", &["busybox", "httpd", "-p", "8081"]), 0);
    let running = |server: &str| processes_in(&h2).iter().any(|p| p.contains(server));
    assert!(eventually(
        || running("httpd -f -p 8080") && running("httpd -p 8081")
    ));
    client.kill().unwrap();
    client.wait().unwrap();
    // As with `ip netns exec`, what a client started outlives it.
    assert!(running("httpd -f -p 8080"), "{:?}", processes_in(&h2));
    h2
}

/// Kills what runs in network namespace `namespace`, should a test fail and leave it.
fn kill_processes_in(namespace: &str) {
    for link in namespace_holders(namespace) {
        let pid = link
            .strip_prefix("/proc/")
            .and_then(|l| l.strip_suffix("/ns/net"));
        if let Some(pid) = pid.and_then(|pid| pid.parse().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn what_lab_exec_started_ends_with_the_lab() {
    if !privileged() {
        return;
    }
    // `lab down`: the servers end, and nothing keeps h2's namespace (its links) alive.
    let lab = HeldLab::up("two-hosts.yaml", "cli-exec-down", false);
    let h2 = serve_from_h2(&lab);
    let _cleanup = Cleanup(|| kill_processes_in(&h2));
    drydock_ok(&["lab", "down", "cli-exec-down"]);
    assert!(
        eventually(|| namespace_holders(&h2).is_empty()),
        "after lab down, {h2} is held by {:?}",
        namespace_holders(&h2)
    );

    // SIGKILL of the holder, in a rootless lab: the same.
    let mut lab = HeldLab::up("two-hosts.yaml", "cli-exec-killed", true);
    let h2 = serve_from_h2(&lab);
    let _cleanup = Cleanup(|| kill_processes_in(&h2));
    lab.child.kill().unwrap();
    lab.child.wait().unwrap();
    assert!(
        eventually(|| namespace_holders(&h2).is_empty()),
        "after the holder's death, {h2} is held by {:?}",
        namespace_holders(&h2)
    );
}
