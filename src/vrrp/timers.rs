//! The timers of one VRRP instance: an enum indexing a small table of
//! deadlines (the quinn-proto `TimerTable` idea). Nothing here reads a clock;
//! deadlines are absolute `Instant`s computed from the `now` the caller passed.

use std::time::Instant;

/// One timer of a VRRP instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// RFC 5798 6.2 Adver_Timer: fires in Master state to send an ADVERTISEMENT.
    Advert = 0,
    /// RFC 5798 6.2 Master_Down_Timer: fires in Backup state when the Master
    /// has not been heard from for Master_Down_Interval.
    MasterDown = 1,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 2] = [Timer::Advert, Timer::MasterDown];
}

/// Deadlines of every [`Timer`]; `None` means the timer is stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arm `timer` to fire at `deadline` (replacing any earlier deadline).
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        self.deadlines[timer as usize] = Some(deadline);
    }

    /// Stop `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    /// Stop every timer.
    pub fn stop_all(&mut self) {
        self.deadlines = [None; Timer::ALL.len()];
    }

    /// The deadline of `timer`, if it is running.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// Whether `timer` is running and its deadline is at or before `now`.
    pub fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|deadline| deadline <= now)
    }

    /// The earliest deadline over all running timers.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}
