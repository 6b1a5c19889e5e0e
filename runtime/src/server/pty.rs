//! A pseudo-terminal for what runs with a TTY (`docker run -t`, `docker exec -t`): the process
//! gets the terminal's side as its stdin, stdout, stderr and controlling terminal; whoever
//! serves the engine keeps the other side (the master) to carry the client's input and the
//! process's output, and to resize it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// A terminal: the master, and the side a process gets.
#[derive(Debug)]
pub struct Pty {
    /// The side the engine keeps.
    pub master: OwnedFd,
    terminal: OwnedFd,
}

impl Pty {
    /// A new terminal, of no size until resized (as runc's: `stty size` fails on it).
    pub fn open() -> io::Result<Self> {
        let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(io::Error::from)?;
        }
        Ok(Self {
            master: pty.master,
            terminal: pty.slave,
        })
    }

    /// Makes the terminal `command`'s stdin, stdout and stderr, in a session of its own (as
    /// runc does for a container with a TTY); with `controlling`, its controlling terminal too
    /// (else a process it starts takes it: a container's init, inside its PID namespace).
    pub fn give_to(&self, command: &mut Command, controlling: bool) -> io::Result<()> {
        command
            .stdin(Stdio::from(self.terminal.try_clone()?))
            .stdout(Stdio::from(self.terminal.try_clone()?))
            .stderr(Stdio::from(self.terminal.try_clone()?));
        // SAFETY: setsid(2) and ioctl(2) only; stdin is the terminal by then.
        unsafe {
            command.pre_exec(move || {
                if libc::setsid() < 0 || controlling && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }
}

/// Sets the size of the terminal whose master is `master` (`/resize?h=&w=`).
pub fn resize(master: &impl AsFd, height: u16, width: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    match unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &size) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn a_process_on_the_terminal_sees_a_tty_of_the_size_set() {
        let pty = Pty::open().unwrap();
        resize(&pty.master, 30, 100).unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "test -t 0 && stty size"]);
        pty.give_to(&mut command, true).unwrap();
        let mut child = command.spawn().unwrap();
        // The command and the pty keep copies of the terminal: without them, the master
        // reads the end once the process has gone.
        drop(command);
        let Pty { master, terminal } = pty;
        drop(terminal);
        let status = child.wait().unwrap();
        let mut output = String::new();
        // Once the process has gone, reading the master ends with EIO.
        let _ = std::fs::File::from(master).read_to_string(&mut output);
        assert!(status.success(), "{output}");
        assert_eq!(output.trim(), "30 100");
    }
}
