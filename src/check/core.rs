//! The sans-IO heart of every checker: when to probe, how failures turn into
//! retries and retries into a DOWN verdict, and how the verdicts of all
//! checkers of one real server combine. No socket, no clock: `now` comes in,
//! deadlines and verdicts go out.
//!
//! keepalived's rule (check_tcp.c / check_http.c epilogs, the same for every
//! checker): a probe that fails is retried `retry` times, `delay_before_retry`
//! apart; only when the last retry fails too is the checker declared DOWN. A
//! single success declares it UP. Either way the next round starts
//! `delay_loop` later. A verdict reached by a checker's very first probe is
//! reported (and logged) even when it confirms the initial state, and that
//! first probe is not retried: keepalived 2.2.7 takes a real server that
//! fails it out at once (seen in the VM for TCP, HTTP, MISC, UDP, PING and
//! DNS checkers), except for SMTP_CHECK, which retries it.

use std::time::{Duration, Instant};

/// The timing one checker runs with (already resolved from the
/// checker / real server / virtual server / default chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    /// Upper bound of the random delay before the very first probe.
    pub warmup: Duration,
    /// Whether a failing first probe is retried (SMTP_CHECK) or is DOWN
    /// at once (every other checker).
    pub retry_first_probe: bool,
}

/// keepalived waits this long after start before the first probe
/// (BOOTSTRAP_DELAY), then adds the random warmup.
pub const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);

/// What the engine must do next for one checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not scheduled yet: see [`CheckerCore::schedule_first`].
    Unscheduled,
    /// Start a probe at this instant.
    WaitingUntil(Instant),
    /// A probe is in flight; its result goes to [`CheckerCore::handle_result`].
    Probing,
}

/// What one probe's result meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A success that keepalived reports (the checker was DOWN, or this was
    /// its first probe): log "... success." / "... succeed ...".
    ReportedUp,
    /// The last retry failed and keepalived reports it (the checker was UP,
    /// or this was its first probe, which is not retried). `retries` is how
    /// many retries preceded it; `was_up` is false when a first probe only
    /// confirms an `alpha` checker's DOWN (keepalived's HTTP_GET keeps
    /// quiet then, its other checkers log it).
    ReportedDown { retries: u32, was_up: bool },
    /// A failure with retries left: probe again after `delay_before_retry`.
    Retrying { attempt: u32 },
    /// Nothing to report (success while UP, failure while DOWN).
    Quiet,
}

/// One checker's up/down state and schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerCore {
    timing: Timing,
    up: bool,
    has_run: bool,
    /// Retries already spent in the current round.
    retries_done: u32,
    phase: Phase,
}

impl CheckerCore {
    /// A checker that starts UP (or DOWN with `alpha`) and probes first at
    /// `now + BOOTSTRAP_DELAY + warmup_offset`; the caller picks
    /// `warmup_offset` at random in `[0, timing.warmup]` (see [`warmup_offset`]).
    pub fn new(timing: Timing, alpha: bool, now: Instant, warmup_offset: Duration) -> Self {
        let mut core = CheckerCore::unscheduled(timing, alpha);
        core.schedule_first(now, warmup_offset);
        core
    }

    /// A checker in its initial state whose first probe is not scheduled
    /// yet (the engine builds checkers before its loop runs).
    pub fn unscheduled(timing: Timing, alpha: bool) -> Self {
        CheckerCore {
            timing,
            up: !alpha,
            has_run: false,
            retries_done: 0,
            phase: Phase::Unscheduled,
        }
    }

    /// Schedules the first probe at `now + BOOTSTRAP_DELAY + warmup_offset`
    /// (`warmup_offset` clamped to the warmup); only an unscheduled checker
    /// changes.
    pub fn schedule_first(&mut self, now: Instant, warmup_offset: Duration) {
        if self.phase == Phase::Unscheduled {
            self.phase =
                Phase::WaitingUntil(now + BOOTSTRAP_DELAY + warmup_offset.min(self.timing.warmup));
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn has_run(&self) -> bool {
        self.has_run
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When a probe should start, or `None` while one is in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::WaitingUntil(at) => Some(at),
            Phase::Unscheduled | Phase::Probing => None,
        }
    }

    /// True when a probe is due; the caller then starts it and calls
    /// [`CheckerCore::start_probe`].
    pub fn is_due(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::WaitingUntil(at) if at <= now)
    }

    pub fn start_probe(&mut self) {
        self.phase = Phase::Probing;
    }

    /// Pushes a due probe back (the engine's per-turn budget was spent).
    pub fn defer(&mut self, until: Instant) {
        if let Phase::WaitingUntil(at) = &mut self.phase {
            *at = (*at).max(until);
        }
    }

    /// The probe finished at `now`. Returns what to report; the state
    /// ([`CheckerCore::is_up`]) and the next probe time are updated.
    pub fn handle_result(&mut self, now: Instant, success: bool) -> Verdict {
        let first_verdict = !self.has_run;
        let out_of_retries = self.retries_done >= self.timing.retry
            || (first_verdict && !self.timing.retry_first_probe);
        let verdict = if success || out_of_retries {
            let retries = self.retries_done;
            self.retries_done = 0;
            self.phase = Phase::WaitingUntil(now + self.timing.delay_loop);
            let report = first_verdict || self.up != success;
            let was_up = self.up;
            self.up = success;
            match (report, success) {
                (true, true) => Verdict::ReportedUp,
                (true, false) => Verdict::ReportedDown { retries, was_up },
                (false, _) => Verdict::Quiet,
            }
        } else {
            self.retries_done += 1;
            self.phase = Phase::WaitingUntil(now + self.timing.delay_before_retry);
            Verdict::Retrying {
                attempt: self.retries_done,
            }
        };
        self.has_run = true;
        verdict
    }

    /// Carries the state of `old` over to a checker whose timing may have
    /// changed (reload): state and pending schedule stay, new timing applies
    /// from the next round.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self.retries_done = self.retries_done.min(timing.retry);
        self
    }
}

/// Where a checker with a list of URLs (HTTP_GET, SSL_GET) stands in it.
///
/// keepalived (check_http.c `epilog`) fetches one URL per probe: after a
/// URL passes, the next one is fetched `delay_loop` later, and the checker
/// is UP once the last URL passed. A failing URL is retried (`retry`
/// times, `delay_before_retry` apart) on that same URL, not from the first
/// one; the retry count is per URL. When the retries are spent the checker
/// goes DOWN and that URL becomes the failed URL: it alone is fetched, every
/// `max(delay_before_retry, delay_loop)`, until it passes; then every URL is
/// checked again from the first, and the checker is UP when all passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlCursor {
    count: u32,
    current: u32,
    failed: Option<u32>,
    fast_recovery: bool,
}

impl UrlCursor {
    /// A cursor over `count` URLs at the first one. With `fast_recovery`,
    /// the next URL after a pass is fetched at once (instead of
    /// `delay_loop` later) while the checker has not run yet or is DOWN
    /// with no URL failing (keepalived's `fast_recovery`).
    pub fn new(count: usize, fast_recovery: bool) -> Self {
        UrlCursor {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            current: 0,
            failed: None,
            fast_recovery,
        }
    }

    /// The URL the next probe fetches.
    pub fn current(&self) -> usize {
        self.current as usize
    }

    /// The URL that took the checker DOWN and is fetched alone until it
    /// passes.
    pub fn failed(&self) -> Option<usize> {
        self.failed.map(|f| f as usize)
    }

    pub fn count(&self) -> usize {
        self.count as usize
    }
}

impl CheckerCore {
    /// The probe of URL `urls.current()` finished at `now`: the multi-URL
    /// rule of [`UrlCursor`] on top of [`CheckerCore::handle_result`]'s
    /// verdicts. `Quiet` when the checker's state did not change (a URL
    /// passed with more to go, or a DOWN checker's URL failed again).
    pub fn handle_url_result(
        &mut self,
        now: Instant,
        urls: &mut UrlCursor,
        success: bool,
    ) -> Verdict {
        let t = self.timing;
        let slow = t.delay_before_retry.max(t.delay_loop);
        if success {
            // The failed URL passes again: check every URL from the first.
            if urls.failed.take().is_some() {
                urls.current = 0;
                self.retries_done = 0;
                let delay = if urls.fast_recovery {
                    Duration::ZERO
                } else {
                    t.delay_loop
                };
                self.phase = Phase::WaitingUntil(now + delay);
                return Verdict::Quiet;
            }
            if urls.current.saturating_add(1) < urls.count {
                urls.current += 1;
                // keepalived: retries are per URL; in the very first round a
                // later URL failing is not retried.
                self.retries_done = if self.has_run { 0 } else { t.retry };
                let delay = if urls.fast_recovery && (!self.has_run || !self.up) {
                    Duration::ZERO
                } else {
                    t.delay_loop
                };
                self.phase = Phase::WaitingUntil(now + delay);
                return Verdict::Quiet;
            }
            urls.current = 0;
            return self.handle_result(now, true);
        }
        if self.up || !self.has_run {
            let verdict = self.handle_result(now, false);
            if !matches!(verdict, Verdict::Retrying { .. }) {
                urls.failed = Some(urls.current);
                self.phase = Phase::WaitingUntil(now + slow);
            }
            return verdict;
        }
        // Already DOWN: the same URL again, no retries.
        let delay = if urls.failed.is_some() {
            slow
        } else {
            t.delay_before_retry
        };
        self.phase = Phase::WaitingUntil(now + delay);
        Verdict::Quiet
    }
}

/// Picks a warmup offset in `[0, warmup]` from a random 64-bit value.
pub fn warmup_offset(warmup: Duration, random: u64) -> Duration {
    let millis = u64::try_from(warmup.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(random % (millis + 1))
}

/// A change of a real server as a whole, for IPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerChange {
    Up { weight: u32 },
    Down,
    Weight { weight: u32 },
}

/// A real server's combined health: alive only while every checker is UP;
/// its weight is the configured one unless a `misc_dynamic` checker set one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHealth {
    configured_weight: u32,
    alive: bool,
    weight: u32,
}

impl ServerHealth {
    pub fn new(configured_weight: u32, alive: bool) -> Self {
        ServerHealth {
            configured_weight,
            alive,
            weight: configured_weight,
        }
    }

    pub fn is_alive(&self) -> bool {
        self.alive
    }

    pub fn weight(&self) -> u32 {
        self.weight
    }

    pub fn configured_weight(&self) -> u32 {
        self.configured_weight
    }

    /// Re-evaluates after a checker verdict. `all_up`: every checker of the
    /// server is UP; `dynamic_weight`: the weight a dynamic checker asked
    /// for, if any.
    pub fn evaluate(&mut self, all_up: bool, dynamic_weight: Option<u32>) -> Option<ServerChange> {
        let weight = dynamic_weight.unwrap_or(self.configured_weight);
        let change = match (self.alive, all_up) {
            (false, true) => Some(ServerChange::Up { weight }),
            (true, false) => Some(ServerChange::Down),
            (true, true) if weight != self.weight => Some(ServerChange::Weight { weight }),
            _ => None,
        };
        self.alive = all_up;
        self.weight = weight;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(retry: u32) -> Timing {
        Timing {
            delay_loop: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            retry,
            delay_before_retry: Duration::from_secs(3),
            warmup: Duration::ZERO,
            retry_first_probe: false,
        }
    }

    #[test]
    fn warmup_offset_stays_in_range() {
        let w = Duration::from_secs(5);
        for r in [0, 1, 4999, 5000, 5001, u64::MAX] {
            assert!(warmup_offset(w, r) <= w);
        }
        assert_eq!(warmup_offset(w, 5000), w);
        assert_eq!(warmup_offset(Duration::ZERO, 12345), Duration::ZERO);
    }

    #[test]
    fn first_probe_after_bootstrap_and_warmup() {
        let t0 = Instant::now();
        let mut t = timing(1);
        t.warmup = Duration::from_secs(4);
        let c = CheckerCore::new(t, false, t0, Duration::from_secs(3));
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(4)));
        // An offset beyond warmup is clamped.
        let c = CheckerCore::new(t, false, t0, Duration::from_secs(30));
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn unscheduled_until_scheduled_once() {
        let t0 = Instant::now();
        let mut c = CheckerCore::unscheduled(timing(1), true);
        assert!(!c.is_up());
        assert_eq!(c.poll_timeout(), None);
        assert!(!c.is_due(t0 + Duration::from_secs(100)));
        c.schedule_first(t0, Duration::ZERO);
        assert_eq!(c.poll_timeout(), Some(t0 + BOOTSTRAP_DELAY));
        // Once scheduled, scheduling again changes nothing.
        c.schedule_first(t0 + Duration::from_secs(5), Duration::ZERO);
        assert_eq!(c.poll_timeout(), Some(t0 + BOOTSTRAP_DELAY));
    }

    #[test]
    fn weight_changes_only_while_alive() {
        let mut s = ServerHealth::new(5, true);
        assert_eq!(s.evaluate(true, None), None);
        assert_eq!(
            s.evaluate(true, Some(3)),
            Some(ServerChange::Weight { weight: 3 })
        );
        assert_eq!(s.evaluate(false, Some(3)), Some(ServerChange::Down));
        assert_eq!(s.evaluate(false, Some(7)), None);
        assert_eq!(s.evaluate(true, None), Some(ServerChange::Up { weight: 5 }));
        assert_eq!(s.weight(), 5);
    }
}
