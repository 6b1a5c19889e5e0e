//! Processes that die with drydock, even on SIGKILL: each is spawned by a thread that lives as
//! long as the process is kept, with `PR_SET_PDEATHSIG(SIGKILL)` towards that thread (the
//! signal follows the thread that forked, not the process).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A process tied to this one; killed and reaped on drop.
#[derive(Debug)]
pub(crate) struct Tied {
    child: Child,
    /// Ends the thread that spawned it (its parent, for the death signal).
    release: Option<mpsc::Sender<()>>,
    parent: Option<JoinHandle<()>>,
}

impl Tied {
    /// Spawns `command` from a thread named `thread` that waits until the process is dropped.
    pub(crate) fn spawn(mut command: Command, thread: &str) -> io::Result<Tied> {
        killed_with_its_thread(&mut command);
        let (spawned_tx, spawned_rx) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || {
                let _ = spawned_tx.send(command.spawn());
                // Returns once the process is dropped.
                let _ = released.recv();
            })?;
        match spawned_rx.recv() {
            Ok(Ok(child)) => Ok(Tied {
                child,
                release: Some(release),
                parent: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other("the thread spawning the process died")),
        }
    }

    /// The process.
    pub(crate) fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// `command`'s process gets SIGKILL when the thread that spawns it ends (`PR_SET_PDEATHSIG`),
/// and does not start if this process already died.
pub fn killed_with_its_thread(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe and nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // drydock already died: the signal was missed.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

impl Drop for Tied {
    fn drop(&mut self) {
        // A process already gone is not an error; either way, reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.release.take());
        if let Some(parent) = self.parent.take() {
            let _ = parent.join();
        }
    }
}
