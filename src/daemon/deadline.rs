//! A timerfd that wakes the poll at the next deadline.
//!
//! An epoll timeout is not precise: Linux adds a slack of 0.1% of the
//! timeout for ordinary processes (`select_estimate_accuracy`), so a VRRP
//! Backup waiting 3.609 s for its Master_Down_Interval would wake about
//! 3.6 ms late. A timerfd armed at an absolute CLOCK_MONOTONIC time fires
//! within the process timer slack (50 us by default) instead.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

#[derive(Debug)]
pub struct DeadlineFd {
    fd: OwnedFd,
    armed: Option<Instant>,
}

fn monotonic_now() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

impl DeadlineFd {
    pub fn new() -> io::Result<DeadlineFd> {
        // SAFETY: plain timerfd_create; the fd is owned right after.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        Ok(DeadlineFd {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
            armed: None,
        })
    }

    /// Fire at `deadline` (`None`: disarm). `Instant` is CLOCK_MONOTONIC on
    /// Linux; the absolute time is derived from one paired clock reading.
    // time_t and c_long are i64 here but narrower on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    pub fn arm(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        if self.armed == deadline {
            return Ok(());
        }
        let value = match deadline {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            Some(deadline) => {
                let now = Instant::now();
                let mono = monotonic_now();
                let ahead = deadline.saturating_duration_since(now);
                let mut sec = i64::from(mono.tv_sec) + ahead.as_secs() as i64;
                let mut nsec = i64::from(mono.tv_nsec) + i64::from(ahead.subsec_nanos());
                if nsec >= 1_000_000_000 {
                    sec += 1;
                    nsec -= 1_000_000_000;
                }
                // An all-zero value would disarm: a due deadline fires at 1 ns.
                if sec == 0 && nsec == 0 {
                    nsec = 1;
                }
                libc::timespec {
                    tv_sec: sec as _,
                    tv_nsec: nsec as _,
                }
            }
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: fd is open; spec is valid; no old value requested.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            self.armed = None;
            return Err(io::Error::last_os_error());
        }
        self.armed = deadline;
        Ok(())
    }

    /// Clear a pending expiry after a wakeup.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: buf is writable for 8 bytes; EAGAIN when nothing expired.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 8 {
            self.armed = None;
        }
    }
}

impl AsRawFd for DeadlineFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_at_the_deadline_not_later() {
        let mut fd = DeadlineFd::new().unwrap();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(200);
        fd.arm(Some(deadline)).unwrap();
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 2000) };
        let woke = Instant::now();
        assert_eq!(n, 1);
        assert!(woke >= deadline, "woke {:?} early", deadline - woke);
        // Generous bound for loaded CI machines; the point is "not 0.1% + 1 ms".
        assert!(
            woke - deadline < Duration::from_millis(20),
            "woke {:?} late",
            woke - deadline
        );
        fd.drain();
        fd.arm(None).unwrap();
    }
}
