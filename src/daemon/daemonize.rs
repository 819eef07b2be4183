//! Classic double-fork detach from the terminal.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, IntoRawFd};

use nix::errno::Errno;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, fork, setsid, ForkResult};

#[derive(Debug)]
pub enum DaemonizeError {
    Fork(Errno),
    Setsid(Errno),
    Chdir(Errno),
    DevNull(io::Error),
    Redirect(Errno),
}

impl fmt::Display for DaemonizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonizeError::Fork(errno) => write!(f, "daemonize: fork failed: {errno}"),
            DaemonizeError::Setsid(errno) => write!(f, "daemonize: setsid failed: {errno}"),
            DaemonizeError::Chdir(errno) => write!(f, "daemonize: chdir(\"/\") failed: {errno}"),
            DaemonizeError::DevNull(err) => write!(f, "daemonize: cannot open /dev/null: {err}"),
            DaemonizeError::Redirect(errno) => {
                write!(f, "daemonize: cannot redirect stdio to /dev/null: {errno}")
            }
        }
    }
}

impl std::error::Error for DaemonizeError {}

/// Forks into the background: the calling process exits 0, the survivor is a
/// grandchild in a new session (so it can never reacquire a controlling
/// terminal), with cwd `/`, umask 022 and stdio on /dev/null.
///
/// Call it before any thread exists and before creating the pid file and the
/// event loop (the pid changes). Errors in the first fork are returned to
/// the caller; in later steps they are returned in the surviving process.
pub fn daemonize() -> Result<(), DaemonizeError> {
    // Whatever is buffered would otherwise be written by both processes.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    fork_and_exit_parent()?;
    setsid().map_err(DaemonizeError::Setsid)?;
    fork_and_exit_parent()?;
    chdir("/").map_err(DaemonizeError::Chdir)?;
    umask(Mode::from_bits_truncate(0o022));
    redirect_stdio_to_dev_null()
}

fn fork_and_exit_parent() -> Result<(), DaemonizeError> {
    // SAFETY: documented precondition: single-threaded caller, so the child
    // may keep running ordinary Rust code after fork.
    match unsafe { fork() } {
        // _exit: the parent must not run destructors or flush anything that
        // now also belongs to the child.
        Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(ForkResult::Child) => Ok(()),
        Err(errno) => Err(DaemonizeError::Fork(errno)),
    }
}

fn redirect_stdio_to_dev_null() -> Result<(), DaemonizeError> {
    let dev_null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(DaemonizeError::DevNull)?;
    let null_fd = dev_null.as_raw_fd();
    for target in 0..=2 {
        if null_fd == target {
            continue;
        }
        // SAFETY: dup2 onto the standard descriptors, which we own as a daemon.
        if unsafe { libc::dup2(null_fd, target) } < 0 {
            return Err(DaemonizeError::Redirect(Errno::last()));
        }
    }
    if null_fd <= 2 {
        // A closed stdio slot got /dev/null itself: keep it open and
        // inheritable instead of closing it with the File.
        let null_fd = dev_null.into_raw_fd();
        // SAFETY: clearing FD_CLOEXEC on a descriptor we own.
        unsafe { libc::fcntl(null_fd, libc::F_SETFD, 0) };
    }
    Ok(())
}
