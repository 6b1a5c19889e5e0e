//! Packet capture on any interface of any namespace, to pcapng files and one-line summaries.
//!
//! A [`Capture`] reads an AF_PACKET socket opened inside the interface's namespace, on a
//! dedicated thread, with kernel timestamps, the direction of each frame and its 802.1Q tag (put
//! back as libpcap does). [`PcapNgSink`] writes packets of many interfaces into one pcapng file
//! (one interface block per `host/ifname`, direction in the packet flags) that tshark and
//! Wireshark read; [`summarize`] and [`Packet::summary`] give tcpdump-like lines.
//!
//! Frames appear as the kernel hands them to taps, not as they would cross a real wire: on veth
//! and lo the local stack's TCP/UDP segments show up as GSO super-frames larger than the MTU,
//! often with unfinished checksums.

mod pcapng;
mod socket;
mod summary;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use pcapng::{PcapNgSink, write_pcapng};
pub use summary::summarize;

use crate::Netns;
use socket::{LinkWatch, PacketSocket};

/// Which way a frame crossed the interface, seen from the namespace that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Received by the interface (from its peer, or looped back).
    In,
    /// Sent by the interface.
    Out,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
        })
    }
}

/// One captured frame, starting at its Ethernet header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Kernel receive time, since the UNIX epoch.
    pub timestamp: Duration,
    /// Whether the interface received or sent the frame.
    pub direction: Direction,
    /// Length of the frame as seen by the kernel; more than `data.len()` if it was cut short.
    pub original_len: u32,
    /// The frame's bytes (an 802.1Q tag the kernel had stripped is put back).
    pub data: Vec<u8>,
}

/// A running capture on one interface; it stops when [`Capture::stop`]ped or dropped.
///
/// The capture's socket holds a reference to the namespace, which stays alive until the capture
/// stops.
#[derive(Debug)]
pub struct Capture {
    label: String,
    packets: Mutex<Receiver<Packet>>,
    stop: Arc<OwnedFd>,
    interface_gone: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Capture {
    /// Starts capturing on `ifname` inside `netns`; `label` names the interface in files and
    /// summaries, e.g. "h1/eth0".
    ///
    /// Returns once the socket is bound, so traffic sent after start() returns is captured. The
    /// interface may be down: frames are captured once it comes up.
    pub fn start(netns: &Netns, ifname: &str, label: impl Into<String>) -> io::Result<Capture> {
        let label = label.into();
        let context = |e: io::Error| io::Error::new(e.kind(), format!("capture on {label}: {e}"));
        // The link watch first: the interface cannot vanish unnoticed between the two.
        let (watch, socket) = netns
            .run(|| -> io::Result<_> {
                let watch = LinkWatch::open(ifname)?;
                Ok((watch, PacketSocket::open(ifname)?))
            })
            .and_then(|opened| opened)
            .map_err(context)?;
        let stop = Arc::new(eventfd().map_err(context)?);
        let interface_gone = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("capture {label}"))
            .spawn({
                let stop = Arc::clone(&stop);
                let gone = Arc::clone(&interface_gone);
                let label = label.clone();
                move || {
                    let reader = Reader {
                        socket: &socket,
                        watch: &watch,
                        stop: &stop,
                        sender: &sender,
                        label: &label,
                    };
                    let result = reader.run();
                    if matches!(result, Ok(Ended::InterfaceGone)) {
                        gone.store(true, Ordering::SeqCst);
                    }
                    result.map(drop)
                }
            })
            .map_err(context)?;
        Ok(Capture {
            label,
            packets: Mutex::new(receiver),
            stop,
            interface_gone,
            thread: Some(thread),
        })
    }

    /// True once the interface has been deleted (its lab went down, say): no packet will come.
    pub fn interface_gone(&self) -> bool {
        self.interface_gone.load(Ordering::SeqCst)
    }

    /// Next packet, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Packet> {
        let packets = self.packets.lock().unwrap_or_else(PoisonError::into_inner);
        packets.recv_timeout(timeout).ok()
    }

    /// Stops, drains everything the socket still holds, returns every packet not yet received.
    ///
    /// Fails only if the reader hit an unexpected socket error (the interface going down or
    /// away is not one); the packets are then lost.
    pub fn stop(mut self) -> io::Result<Vec<Packet>> {
        let result = self.halt();
        let packets = self.packets.lock().unwrap_or_else(PoisonError::into_inner);
        let packets = packets.try_iter().collect();
        result.map(|()| packets)
    }

    /// Signals the reader thread and waits for it (it drains the socket before it ends).
    fn halt(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to an eventfd we own.
        let rc = unsafe { libc::write(self.stop.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        if rc < 0 {
            // The eventfd counter cannot overflow with single increments; nothing else fails.
            return Err(io::Error::last_os_error());
        }
        match thread.join() {
            Ok(result) => result
                .map_err(|e| io::Error::new(e.kind(), format!("capture on {}: {e}", self.label))),
            Err(_) => Err(io::Error::other(format!(
                "capture on {}: reader thread panicked",
                self.label
            ))),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Err(error) = self.halt() {
            tracing::warn!(%error, "capture ended with an error");
        }
    }
}

/// A non-blocking, close-on-exec eventfd used to wake and stop the reader thread.
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Why a reader ended.
enum Ended {
    Stopped,
    InterfaceGone,
}

/// The reader thread's state: forwards frames until stopped or until the interface is deleted,
/// then drains the socket.
struct Reader<'a> {
    socket: &'a PacketSocket,
    watch: &'a LinkWatch,
    stop: &'a OwnedFd,
    sender: &'a Sender<Packet>,
    label: &'a str,
}

impl Reader<'_> {
    fn run(&self) -> io::Result<Ended> {
        let mut buf = vec![0u8; socket::SNAPLEN];
        loop {
            let mut fds = [self.socket.as_fd(), self.stop.as_fd(), self.watch.as_fd()].map(|fd| {
                libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }
            });
            // SAFETY: `fds` is a live array of pollfd, as the length says.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if fds[0].revents & libc::POLLNVAL != 0 {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            if fds[0].revents != 0 {
                drain(self.socket, &mut buf, self.sender, self.label)?;
            }
            if fds[1].revents != 0 {
                drain(self.socket, &mut buf, self.sender, self.label)?;
                return Ok(Ended::Stopped);
            }
            if fds[2].revents != 0 && self.watch.interface_deleted()? {
                drain(self.socket, &mut buf, self.sender, self.label)?;
                return Ok(Ended::InterfaceGone);
            }
        }
    }
}

/// Receives every queued frame. ENETDOWN (the interface went down, or was not up when the
/// capture started) is reported once by the socket and is not fatal: the kernel resumes delivery
/// when the interface comes back up.
fn drain(
    socket: &PacketSocket,
    buf: &mut [u8],
    sender: &Sender<Packet>,
    label: &str,
) -> io::Result<()> {
    loop {
        match socket.recv(buf) {
            Ok(Some(packet)) => {
                // The receiver is gone only if the Capture is being dropped: keep draining.
                let _ = sender.send(packet);
            }
            Ok(None) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                tracing::debug!(label, "capture: interface is down");
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Packets of several captures merged in timestamp order, each with its capture's label.
///
/// The merge is stable: packets with equal timestamps keep the order of `captures`, and the
/// order within each capture.
pub fn merge<L, P>(captures: &[(L, P)]) -> Vec<(&str, &Packet)>
where
    L: AsRef<str>,
    P: AsRef<[Packet]>,
{
    let mut merged: Vec<(&str, &Packet)> = captures
        .iter()
        .flat_map(|(label, packets)| {
            let label = label.as_ref();
            packets.as_ref().iter().map(move |packet| (label, packet))
        })
        .collect();
    merged.sort_by_key(|(_, packet)| packet.timestamp);
    merged
}
