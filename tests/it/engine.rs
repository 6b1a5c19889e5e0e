//! `drydock -H LAB/HOST ...`: the docker CLI (the one on PATH) against the reference engines of a
//! held lab, through their Engine API sockets.

use std::process::Output;

use crate::{HeldLab, PersistentLab, drydock, drydock_ok, machine_lock, privileged, running};

/// `drydock -H LAB/HOST ARGS...`.
fn docker(target: &str, args: &[&str]) -> Output {
    drydock(false)
        .args(["-H", target])
        .args(args)
        .output()
        .unwrap()
}

/// Runs `drydock -H LAB/HOST ARGS...`, asserts that it succeeds, and returns its stdout.
fn docker_ok(target: &str, args: &[&str]) -> String {
    let output = docker(target, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The processes with `needle` in their command line, once there are `count` of them (a
/// container's command forks and execs after `run` returns), or as they are after 5 s.
fn processes_settled(needle: &str, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = processes_with(needle);
        if found.len() == count || std::time::Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Lines of `ps -eo args` that mention `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|line| line.contains(needle))
        .map(String::from)
        .collect()
}

#[test]
fn workshop_web_server_by_name_by_published_port_and_gone_after_rm() {
    if !privileged() {
        return;
    }
    let lab = HeldLab::up("two-hosts.yaml", "cli-engine", false);
    let h1 = "cli-engine/h1";
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "hello from web\n").unwrap();
    let root = site.path().to_str().unwrap();

    let id = docker_ok(h1, &["network", "create", "app"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    docker_ok(
        h1,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "app",
            "--network-alias",
            "www",
            "-p",
            "8080:80",
            "busybox",
            "httpd",
            "-f",
            "-v",
            "-p",
            "80",
            "-h",
            root,
        ],
    );
    docker_ok(
        h1,
        &[
            "run",
            "-d",
            "--name",
            "client",
            "--network",
            "app",
            "busybox",
            "sleep",
            "1000",
        ],
    );

    // Inside a container: Docker's resolv.conf, and the alias resolved by the embedded DNS.
    let resolv = docker_ok(h1, &["exec", "client", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    // Its hostname, the short id as in Docker, not the machine's.
    let hostname = docker_ok(h1, &["exec", "client", "hostname"]);
    let file = docker_ok(h1, &["exec", "client", "cat", "/etc/hostname"]);
    assert_eq!(hostname, file);
    assert_eq!(hostname.trim().len(), 12, "{hostname}");
    // With --uts host, the docker host's hostname (the machine's: lab hosts share its UTS
    // namespace), though /etc/hostname still says the short id, as in Docker.
    let uts = [
        "run", "-d", "--name", "uts", "--uts", "host", "busybox", "sleep", "1000",
    ];
    docker_ok(h1, &uts);
    let shared = docker_ok(h1, &["exec", "uts", "hostname"]);
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(shared.trim(), machine.trim());
    let file = docker_ok(h1, &["exec", "uts", "cat", "/etc/hostname"]);
    assert_eq!(file.trim().len(), 12, "{file}");
    // --domainname is the NIS domain name of the container's own UTS namespace.
    let nis = [
        "run",
        "-d",
        "--name",
        "nis",
        "-h",
        "foobar",
        "--domainname",
        "baz.cyphar.com",
    ];
    docker_ok(h1, &[&nis[..], &["busybox", "sleep", "1000"]].concat());
    let domain = docker_ok(h1, &["exec", "nis", "cat", "/proc/sys/kernel/domainname"]);
    assert_eq!(domain.trim(), "baz.cyphar.com");
    let host = docker_ok(h1, &["exec", "nis", "cat", "/proc/sys/kernel/hostname"]);
    assert_eq!(host.trim(), "foobar");
    let page = docker_ok(h1, &["exec", "client", "wget", "-qO-", "http://www/"]);
    assert_eq!(page, "hello from web\n");
    // httpd -v logs each request on stderr: `logs` shows it.
    let logs = docker_ok(h1, &["logs", "web"]);
    assert!(logs.contains("response:200"), "{logs}");
    // From the other lab host, through the published port on h1's address.
    let from_h2 = lab.lab(&[
        "exec",
        "cli-engine",
        "h2",
        "--",
        "wget",
        "-qO-",
        "http://10.0.1.10:8080/",
    ]);
    assert_eq!(String::from_utf8_lossy(&from_h2.stdout), "hello from web\n");

    let inspect: serde_json::Value =
        serde_json::from_str(&docker_ok(h1, &["network", "inspect", "app"])).unwrap();
    let network = &inspect[0];
    assert_eq!(network["Name"], "app");
    assert_eq!(network["Driver"], "bridge");
    assert_eq!(network["IPAM"]["Config"][0]["Subnet"], "172.18.0.0/16");
    assert_eq!(network["Containers"].as_object().unwrap().len(), 2);

    let listed = docker_ok(h1, &["network", "ls"]);
    let names: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["app", "bridge", "host", "none"], "{listed}");

    let in_use = docker(h1, &["network", "rm", "app"]);
    assert!(!in_use.status.success());
    let stderr = String::from_utf8_lossy(&in_use.stderr);
    assert!(stderr.contains("has active endpoints"), "{stderr}");

    assert_eq!(processes_settled(root, 2).len(), 2, "unshare and httpd run");
    docker_ok(h1, &["rm", "-f", "web"]);
    assert_eq!(processes_with(root), Vec::<String>::new());
    let gone = docker(
        h1,
        &["exec", "client", "wget", "-qO-", "-T", "2", "http://www/"],
    );
    assert!(!gone.status.success(), "www no longer answers");

    // SIGKILL of the lab's holder takes the containers' processes with it; its engine state
    // and its hosts' files are left for `drydock gc`.
    docker_ok(
        h1,
        &["run", "-d", "--name", "sleeper", "busybox", "sleep", "4243"],
    );
    assert_eq!(processes_settled("sleep 4243", 2).len(), 2);
    let state = format!("/tmp/drydock-engines-{}", lab.child.id());
    let files = format!("/tmp/drydock-lab-{}", lab.child.id());
    assert!(std::path::Path::new(&state).is_dir());
    assert!(std::path::Path::new(&files).is_dir());
    drop(lab);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !processes_with("sleep 4243").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(processes_with("sleep 4243"), Vec::<String>::new());
    let _machine = machine_lock(); // gc also removes other tests' persistent labs
    let gc = drydock_ok(&["gc"]);
    // Removed by this gc, or already by one of a test beside this one (`lab up` collects too).
    for dir in [&state, &files] {
        assert!(!std::path::Path::new(dir).exists(), "{dir} is left: {gc}");
    }
}

#[test]
fn an_unknown_program_exits_127_as_under_docker_and_leaves_the_container_created() {
    if !privileged() {
        return;
    }
    let lab = HeldLab::up("one-host.yaml", "cli-engine-bad", false);
    let h1 = "cli-engine-bad/h1";
    let output = docker(
        h1,
        &["run", "-d", "--name", "bad", "busybox", "no-such-program"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(127), "{stderr}");
    assert!(
        stderr.contains("exec: \"no-such-program\": executable file not found in $PATH"),
        "{stderr}"
    );
    // Docker keeps it, never started, with runc's status and error.
    let inspect: serde_json::Value =
        serde_json::from_str(&docker_ok(h1, &["inspect", "bad"])).unwrap();
    let state = &inspect[0]["State"];
    assert_eq!(state["Status"], "created", "{state}");
    assert_eq!(state["Running"], false);
    assert_eq!(state["ExitCode"], 127);
    assert!(
        state["Error"]
            .as_str()
            .unwrap()
            .contains("executable file not found"),
        "{state}"
    );
    // With --rm, it goes.
    let output = docker(
        h1,
        &[
            "run",
            "--rm",
            "--name",
            "gone",
            "busybox",
            "no-such-program",
        ],
    );
    assert_eq!(output.status.code(), Some(127));
    assert!(!docker(h1, &["inspect", "gone"]).status.success());
    // Other failures of `run` are docker/cli's 125.
    let output = docker(h1, &["run", "-d", "--network", "nonet", "busybox"]);
    assert_eq!(output.status.code(), Some(125));

    // `exec` of what does not exist is 126 under Docker 20.10 (observed: dockerd does not read
    // runc's text there), runc's error in the output stream.
    docker_ok(
        h1,
        &["run", "-d", "--name", "up", "busybox", "sleep", "4244"],
    );
    let output = docker(h1, &["exec", "up", "no-such-program"]);
    let said =
        String::from_utf8_lossy(&[&output.stdout[..], &output.stderr[..]].concat()).into_owned();
    assert_eq!(output.status.code(), Some(126), "{said}");
    assert!(
        said.contains("\"no-such-program\": executable file not found in $PATH"),
        "{said}"
    );
    // In a lab host, as a shell says it: 127 when the program does not exist, 126 when it
    // cannot be run.
    let not_runnable = tempfile::NamedTempFile::new().unwrap();
    let not_runnable = not_runnable.path().to_str().unwrap();
    assert_eq!(lab.exec("h1", &["no-such-program"]), 127);
    assert_eq!(lab.exec("h1", &[not_runnable]), 126);
}

#[test]
fn run_without_detach_prints_the_output_and_exits_with_the_command() {
    if !privileged() {
        return;
    }
    let _lab = HeldLab::up("one-host.yaml", "cli-engine-run", false);
    let h1 = "cli-engine-run/h1";
    let once = docker(h1, &["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&once.stdout), "hi\n");
    assert!(once.status.success(), "{once:?}");
    // --rm: gone once it exited.
    assert_eq!(docker_ok(h1, &["ps", "-aq"]), "");

    let three = docker(
        h1,
        &[
            "run",
            "--name",
            "three",
            "busybox",
            "sh",
            "-c",
            "echo out; exit 3",
        ],
    );
    assert_eq!(three.status.code(), Some(3), "{three:?}");
    assert_eq!(String::from_utf8_lossy(&three.stdout), "out\n");
    let state = docker_ok(
        h1,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "three",
        ],
    );
    assert_eq!(state, "exited 3\n");
    // A detached command that ends stops its container too.
    docker_ok(h1, &["run", "-d", "--name", "brief", "busybox", "true"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut status = String::new();
    while std::time::Instant::now() < deadline {
        status = docker_ok(h1, &["inspect", "-f", "{{.State.Status}}", "brief"]);
        if status == "exited\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(status, "exited\n");
}

#[test]
fn rename_moves_the_name_in_dns_and_anonymous_names_stay_out_of_it_as_in_20_10() {
    if !privileged() {
        return;
    }
    let _lab = HeldLab::up("one-host.yaml", "cli-engine-rename", false);
    let h1 = "cli-engine-rename/h1";
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    docker_ok(h1, &["network", "create", "app"]);
    let sleeper = |name: Option<&str>| {
        let mut args = vec!["run", "-d", "--network", "app"];
        if let Some(name) = name {
            args.extend(["--name", name]);
        }
        args.extend(["busybox", "sleep", "1000"]);
        docker_ok(h1, &args).trim().to_string()
    };
    sleeper(Some("web"));
    sleeper(Some("db"));
    let anonymous = sleeper(None);
    let generated = docker_ok(h1, &["inspect", "-f", "{{.Name}}", &anonymous]);
    let generated = generated.trim().trim_start_matches('/');
    let resolves = |name: &str| {
        docker(h1, &["exec", "web", "nslookup", "-type=a", name])
            .status
            .success()
    };
    // Checked against dockerd 20.10: a made-up name is not in DNS, the short id is.
    assert!(!resolves(generated), "{generated} resolves");
    assert!(resolves(&anonymous[..12]));
    assert!(resolves("db"));

    docker_ok(h1, &["rename", "db", "store"]);
    docker_ok(h1, &["rename", generated, "named"]);
    assert!(resolves("store") && resolves("named"));
    assert!(!resolves("db") && !resolves(generated));
    // Its processes follow it under its new name.
    assert_eq!(docker_ok(h1, &["exec", "store", "echo", "here"]), "here\n");
    let refused = docker(h1, &["rename", "store", "web"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is already in use by container"),
        "{stderr}"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    // What happened since the test began, as `docker events` shows it.
    let events = |filters: &[&str], format: &str| {
        let mut args = vec!["events", "--since", &since, "--until", &now];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        args.extend(["--format", format]);
        docker_ok(h1, &args)
    };
    let renames = events(
        &["event=rename"],
        "{{.Actor.Attributes.oldName}} {{.Actor.Attributes.name}}",
    );
    assert_eq!(renames, format!("/db store\n/{generated} named\n"));
    let execs = events(&["container=store", "event=exec_start"], "{{.Action}}");
    assert_eq!(execs, "exec_start: echo here\n");
}

#[test]
fn a_persistent_labs_holder_serves_the_docker_cli_until_lab_down() {
    if !privileged() {
        return;
    }
    let _machine = machine_lock(); // gc in other tests removes persistent labs
    let lab = PersistentLab::up("two-hosts.yaml", "cli-persist-engine");
    // `lab up` has returned; its holder runs on, detached: in a session of its own, its
    // output to the lab's log.
    assert!(running(lab.holder));
    let holder = nix::unistd::Pid::from_raw(lab.holder);
    assert_eq!(nix::unistd::getsid(Some(holder)).unwrap(), holder);
    let log = std::fs::read_link(format!("/proc/{}/fd/2", lab.holder)).unwrap();
    assert_eq!(
        log,
        std::path::Path::new("/run/drydock/labs/cli-persist-engine.log")
    );

    let env = drydock_ok(&["lab", "env", "cli-persist-engine", "h1"]);
    let docker_host = env.trim().strip_prefix("export DOCKER_HOST=").unwrap();
    let socket = "/run/drydock/engines/cli-persist-engine/h1.sock";
    assert_eq!(docker_host, format!("unix://{socket}"));
    let through_socket = |args: &[&str]| {
        let output = std::process::Command::new("/usr/bin/docker")
            .args(args)
            .env("DOCKER_HOST", docker_host)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "docker {args:?}: {stderr}");
        String::from_utf8(output.stdout).unwrap()
    };
    let id = through_socket(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "4245"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(
        through_socket(&["ps", "--format", "{{.Names}}"]),
        "sleeper\n"
    );
    let address = through_socket(&["exec", "sleeper", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(address.contains("inet 172.17.0.2/16"), "{address}");
    // unshare and sleep, the holder's.
    assert_eq!(processes_settled("sleep 4245", 2).len(), 2);
    // `drydock -H` reaches the same engine; h2's is another.
    assert_eq!(
        docker_ok("cli-persist-engine/h1", &["ps", "-q"]),
        format!("{}\n", &id[..12])
    );
    assert_eq!(docker_ok("cli-persist-engine/h2", &["ps", "-q"]), "");

    drydock_ok(&["lab", "down", "cli-persist-engine"]);
    assert_eq!(processes_with("sleep 4245"), Vec::<String>::new());
    assert!(!std::path::Path::new(socket).exists());
    lab.assert_gone();
}

/// `sh -c SCRIPT` on a terminal of its own (`script`), as a user at a terminal types `typed`
/// (a line every half second: a shell's line editor drops what was typed ahead), with
/// `DOCKER_HOST` naming lab host `target`'s engine: exit code and what the terminal showed.
fn at_a_terminal(target: &str, script: &str, typed: &[&str]) -> (Option<i32>, String) {
    use std::io::Write as _;
    let host = drydock_ok(&["lab", "env", target.split_once('/').unwrap().0, "h1"]);
    let host = host.trim().trim_start_matches("export DOCKER_HOST=");
    let mut terminal = std::process::Command::new("script")
        .args(["-qec", script, "/dev/null"])
        .env("DOCKER_HOST", host)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut keyboard = terminal.stdin.take().unwrap();
    for line in typed {
        std::thread::sleep(std::time::Duration::from_millis(500));
        keyboard.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    drop(keyboard);
    let output = terminal.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), shown)
}

#[test]
fn run_and_exec_with_a_terminal_or_stdin_as_docker_does() {
    if !privileged() {
        return;
    }
    let _lab = HeldLab::up("one-host.yaml", "cli-engine-tty", false);
    let h1 = "cli-engine-tty/h1";
    // -i: what is piped in reaches the command, whose end follows the input's.
    let mut cat = drydock(false)
        .args(["-H", h1, "run", "-i", "--rm", "busybox", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    cat.stdin.take().unwrap().write_all(b"piped in\n").unwrap();
    let cat = cat.wait_with_output().unwrap();
    assert!(cat.status.success(), "{cat:?}");
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "piped in\n");

    // -t: the command's stdin is a terminal, and what is typed reaches it.
    let (code, shown) = at_a_terminal(
        h1,
        "/usr/bin/docker run -it --rm busybox sh",
        &["tty", "echo typed", "exit 4"],
    );
    assert_eq!(code, Some(4), "{shown}");
    assert!(shown.contains("/dev/pts/"), "{shown:?}");
    assert!(shown.contains("\r\ntyped\r\n"), "{shown:?}");

    docker_ok(
        h1,
        &["run", "-d", "--name", "web", "busybox", "sleep", "1000"],
    );
    let (code, shown) = at_a_terminal(h1, "/usr/bin/docker exec -it web sh -c 'tty; exit 3'", &[]);
    assert_eq!(code, Some(3), "{shown}");
    assert!(shown.contains("/dev/pts/"), "{shown:?}");
    // Without -t, no terminal.
    let piped = docker(h1, &["exec", "web", "sh", "-c", "tty || true"]);
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "not a tty\n");
}

#[test]
fn stop_and_kill_signal_the_command_as_dockerd_does() {
    if !privileged() {
        return;
    }
    let _lab = HeldLab::up("one-host.yaml", "cli-engine-signals", false);
    let h1 = "cli-engine-signals/h1";
    let status = |name: &str| {
        docker_ok(
            h1,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                name,
            ],
        )
    };
    // A command that handles SIGTERM ends with its own code, within the grace period.
    let trap = "trap 'exit 7' TERM; while true; do sleep 0.1; done";
    docker_ok(
        h1,
        &["run", "-d", "--name", "polite", "busybox", "sh", "-c", trap],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    docker_ok(h1, &["stop", "polite"]);
    assert_eq!(status("polite"), "exited 7\n");
    // busybox's sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period.
    docker_ok(
        h1,
        &["run", "-d", "--name", "deaf", "busybox", "sleep", "1000"],
    );
    docker_ok(h1, &["stop", "-t", "1", "deaf"]);
    assert_eq!(status("deaf"), "exited 137\n");
    // A signal the command ignores leaves it running; SIGKILL does not.
    docker_ok(
        h1,
        &["run", "-d", "--name", "target", "busybox", "sleep", "1000"],
    );
    docker_ok(h1, &["kill", "-s", "HUP", "target"]);
    assert_eq!(status("target"), "running 0\n");
    docker_ok(h1, &["kill", "target"]);
    assert_eq!(status("target"), "exited 137\n");
}
