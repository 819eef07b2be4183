//! Signals as readable events: the daemon's signals are blocked and read from
//! a non-blocking signalfd registered with mio, so no code runs in signal
//! handler context.
//!
//! The signal mask is per thread and a process-directed signal is delivered to
//! any thread that does not block it, so create the `SignalFd` in the main
//! thread before any other thread exists (the daemon never starts threads).

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd as NixSignalFd};

/// The signals the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonSignal {
    /// SIGHUP: reload the configuration.
    Hup,
    /// SIGTERM: orderly shutdown.
    Term,
    /// SIGINT: orderly shutdown.
    Int,
    /// SIGUSR1: dump data.
    Usr1,
    /// SIGUSR2: dump statistics.
    Usr2,
    /// SIGCHLD: a child changed state; reap it.
    Child,
}

const HANDLED: [(Signal, DaemonSignal); 6] = [
    (Signal::SIGHUP, DaemonSignal::Hup),
    (Signal::SIGTERM, DaemonSignal::Term),
    (Signal::SIGINT, DaemonSignal::Int),
    (Signal::SIGUSR1, DaemonSignal::Usr1),
    (Signal::SIGUSR2, DaemonSignal::Usr2),
    (Signal::SIGCHLD, DaemonSignal::Child),
];

impl DaemonSignal {
    fn from_raw(signo: i32) -> Option<Self> {
        HANDLED
            .iter()
            .find(|(signal, _)| *signal as i32 == signo)
            .map(|(_, daemon_signal)| *daemon_signal)
    }
}

#[derive(Debug)]
pub enum SignalError {
    /// sigprocmask failed while blocking the daemon's signals.
    Block(Errno),
    /// SIGCHLD's disposition could not be reset to default.
    ChildDisposition(Errno),
    /// signalfd(2) could not be created.
    Create(Errno),
    /// Reading the signalfd failed.
    Read(Errno),
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::Block(errno) => write!(f, "cannot block daemon signals: {errno}"),
            SignalError::ChildDisposition(errno) => {
                write!(f, "cannot reset SIGCHLD disposition: {errno}")
            }
            SignalError::Create(errno) => write!(f, "cannot create signalfd: {errno}"),
            SignalError::Read(errno) => write!(f, "cannot read signalfd: {errno}"),
        }
    }
}

impl std::error::Error for SignalError {}

/// Blocks the daemon's signals and delivers them through a signalfd.
///
/// The signals stay blocked after drop: unblocking would deliver any pending
/// SIGTERM/SIGHUP with its default action (termination).
#[derive(Debug)]
pub struct SignalFd {
    fd: NixSignalFd,
}

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for (signal, _) in HANDLED {
        set.add(signal);
    }
    set
}

impl SignalFd {
    pub fn new() -> Result<Self, SignalError> {
        let set = handled_set();
        // An inherited SIG_IGN for SIGCHLD would make the kernel auto-reap
        // our scripts and hide their exit codes.
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        unsafe { nix::sys::signal::signal(Signal::SIGCHLD, nix::sys::signal::SigHandler::SigDfl) }
            .map_err(SignalError::ChildDisposition)?;
        // Block first so nothing is lost between creating the fd and reading it.
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(SignalError::Block)?;
        let fd = NixSignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(SignalError::Create)?;
        Ok(SignalFd { fd })
    }

    /// Returns the next pending signal, or `None` once the fd is drained.
    /// mio is edge-triggered: call until `None` after each readiness event.
    pub fn read(&mut self) -> Result<Option<DaemonSignal>, SignalError> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => {
                    let signo = i32::try_from(info.ssi_signo).unwrap_or(-1);
                    if let Some(signal) = DaemonSignal::from_raw(signo) {
                        return Ok(Some(signal));
                    }
                    // Not in our mask: cannot happen, skip rather than fail.
                }
                Ok(None) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(SignalError::Read(errno)),
            }
        }
    }
}

impl Source for SignalFd {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

/// Puts the calling process back to the signal state a fresh program
/// expects: empty mask, default dispositions (Rust's runtime ignores SIGPIPE,
/// and an ignored disposition survives exec).
///
/// Meant for a forked child right before exec: it calls only
/// async-signal-safe functions (sigemptyset, sigprocmask, sigaction) and does
/// not allocate. Errors are ignored because there is nobody to report them to.
pub fn reset_signals_for_exec() {
    // SAFETY: plain libc calls on stack-local, fully initialised structs.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        // Realtime signals too: an ignored one may come from our own parent.
        // 128 covers MIPS (_NSIG 128); invalid numbers just fail with EINVAL.
        for signo in 1..128 {
            if signo != libc::SIGKILL && signo != libc::SIGSTOP {
                libc::sigaction(signo, &action, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_handled_signals() {
        assert_eq!(
            DaemonSignal::from_raw(libc::SIGHUP),
            Some(DaemonSignal::Hup)
        );
        assert_eq!(
            DaemonSignal::from_raw(libc::SIGCHLD),
            Some(DaemonSignal::Child)
        );
        assert_eq!(DaemonSignal::from_raw(libc::SIGPIPE), None);
    }

    #[test]
    fn reads_a_thread_directed_signal() {
        // The test harness is multi-threaded: direct the signal at this very
        // thread, which blocks it, so no other thread can take it.
        let mut signals = SignalFd::new().expect("signalfd");
        assert_eq!(signals.read().expect("empty read"), None);
        // SAFETY: pthread_kill on our own live thread.
        let rc = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2) };
        assert_eq!(rc, 0);
        assert_eq!(signals.read().expect("read"), Some(DaemonSignal::Usr2));
        assert_eq!(signals.read().expect("drained"), None);
    }
}
