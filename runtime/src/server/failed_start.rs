//! A container process that could not start: the exit code dockerd gives it, read from runc's
//! error text as moby's `translateContainerdStartErr` and docker/cli's `runStartContainerErr`
//! read it.

/// 127 when the program does not exist (`exec: "x": executable file not found in $PATH`,
/// `stat x: no such file or directory`), 126 when it may not be run (`permission denied`), else
/// `otherwise`: dockerd records 128 for another failed start, the docker CLI exits 125 from a
/// failed `run`. (A failed `exec` is 126 whatever the text: Docker 20.10 does not read it.)
pub fn exit_code(message: &str, otherwise: i64) -> i64 {
    let message = message.to_lowercase();
    if ["executable file not found", "no such file or directory"]
        .iter()
        .any(|text| message.contains(text))
    {
        127
    } else if message.contains("permission denied") {
        126
    } else {
        otherwise
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn what_does_not_exist_is_127_what_may_not_run_126() {
        let missing = "exec: \"nosuchcmd\": executable file not found in $PATH";
        assert_eq!(exit_code(missing, 128), 127);
        let path = "exec: \"/no/such\": stat /no/such: no such file or directory";
        assert_eq!(exit_code(path, 126), 127);
        let denied = "cannot run \"/etc/passwd\": Permission denied (os error 13)";
        assert_eq!(exit_code(denied, 128), 126);
        assert_eq!(exit_code("network x not found", 128), 128);
        assert_eq!(exit_code("network x not found", 125), 125);
    }
}
