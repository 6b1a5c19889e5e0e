//! The thread of a datapath: a `poll(2)` loop over its descriptors and an eventfd through which
//! its owner wakes it (to stop, or to take a new configuration), stopped and joined on drop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// How a pump's owner reaches its thread.
#[derive(Debug)]
pub(crate) struct Waker {
    event: OwnedFd,
    stop: AtomicBool,
}

impl Waker {
    fn new() -> io::Result<Self> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` was just created and is owned by nothing else.
            event: unsafe { OwnedFd::from_raw_fd(fd) },
            stop: AtomicBool::new(false),
        })
    }

    /// Wakes the thread: its poll returns with the eventfd readable.
    pub(crate) fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to an eventfd we own. It cannot fail but by
        // overflow, which still leaves the eventfd readable.
        unsafe { libc::write(self.event.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// The descriptor to poll; call [`Waker::woken`] when it is readable.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.event.as_fd()
    }

    /// Clears the wake-up; true when the thread must stop.
    pub(crate) fn woken(&self) -> bool {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; EAGAIN (not woken) is fine.
        unsafe {
            libc::read(
                self.event.as_raw_fd(),
                count.as_mut_ptr().cast(),
                count.len(),
            )
        };
        self.stop.load(Ordering::Acquire)
    }
}

/// A running datapath thread.
#[derive(Debug)]
pub(crate) struct Pump {
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Pump {
    /// Starts thread `name` (shown in `/proc/PID/task/*/comm`, 15 bytes at most) running `body`
    /// until the waker says stop.
    pub(crate) fn spawn(
        name: &str,
        body: impl FnOnce(&Waker) + Send + 'static,
    ) -> io::Result<Pump> {
        let waker = Arc::new(Waker::new()?);
        let inner = Arc::clone(&waker);
        let thread = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || body(&inner))?;
        Ok(Pump {
            waker,
            thread: Some(thread),
        })
    }

    /// Wakes the thread to take a new configuration.
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.waker.stop.store(true, Ordering::Release);
        self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What `poll(2)` found on a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Nothing to read.
    Idle,
    /// Something to read (or an error a read will report and clear).
    Readable,
    /// An error and nothing to read, for good: a TAP whose link is gone polls so forever.
    Broken,
}

/// Waits until one of `fds` is readable or broken; returns what each is.
pub(crate) fn poll(fds: &[RawFd]) -> io::Result<Vec<Ready>> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `polled` is a live array of `polled.len()` pollfds.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
        if n >= 0 {
            return Ok(polled
                .iter()
                .map(|p| match p.revents {
                    0 => Ready::Idle,
                    r if r & libc::POLLIN != 0 => Ready::Readable,
                    _ => Ready::Broken,
                })
                .collect());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Reads once from a non-blocking descriptor into `buf`; `None` when nothing is waiting (or the
/// descriptor failed: a datapath drops what it cannot read, as a NIC does).
pub(crate) fn read_once(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: reads at most `buf.len()` bytes into a live buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

/// Writes one frame to a TAP or AF_PACKET descriptor; a failure drops the frame, as a full NIC
/// queue would.
pub(crate) fn write_once(fd: RawFd, frame: &[u8]) {
    // SAFETY: writes `frame.len()` bytes from a live buffer.
    let n = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
    if n < 0 {
        tracing::trace!(
            "datapath: dropped a {}-byte frame: {}",
            frame.len(),
            io::Error::last_os_error()
        );
    }
}
