//! The checker schedule and verdict rules in simulated time: a tiny driver
//! jumps the clock to the earliest `poll_timeout()`, answers each probe from
//! a scripted server, and records verdicts and real-server changes.

use std::time::{Duration, Instant};

use keepalived_rs::check::core::{
    CheckerCore, ServerChange, ServerHealth, Timing, UrlCursor, Verdict, BOOTSTRAP_DELAY,
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn timing(delay_loop: u64, retry: u32, delay_before_retry: u64) -> Timing {
    Timing {
        delay_loop: secs(delay_loop),
        connect_timeout: secs(2),
        retry,
        delay_before_retry: secs(delay_before_retry),
        warmup: Duration::ZERO,
        retry_first_probe: false,
    }
}

/// Healthy (true) or not at an offset from the start.
type Script = Box<dyn Fn(Duration) -> bool>;

struct Sim {
    t0: Instant,
    now: Instant,
    checkers: Vec<(CheckerCore, Script)>,
    server: ServerHealth,
    /// (offset, checker, verdict)
    verdicts: Vec<(Duration, usize, Verdict)>,
    /// (offset, change)
    changes: Vec<(Duration, ServerChange)>,
    probes: Vec<(Duration, usize)>,
}

impl Sim {
    fn new(checkers: Vec<(Timing, bool, Script)>) -> Sim {
        let t0 = Instant::now();
        let alive = checkers.iter().all(|(_, alpha, _)| !alpha);
        Sim {
            t0,
            now: t0,
            checkers: checkers
                .into_iter()
                .map(|(t, alpha, s)| (CheckerCore::new(t, alpha, t0, Duration::ZERO), s))
                .collect(),
            server: ServerHealth::new(1, alive),
            verdicts: Vec::new(),
            changes: Vec::new(),
            probes: Vec::new(),
        }
    }

    /// Runs until `end` (offset); probes complete instantly.
    fn run_until(&mut self, end: Duration) {
        for _ in 0..100_000 {
            let Some(next) = self
                .checkers
                .iter()
                .filter_map(|(c, _)| c.poll_timeout())
                .min()
            else {
                return;
            };
            if next - self.t0 > end {
                return;
            }
            self.now = next;
            let offset = self.now - self.t0;
            for i in 0..self.checkers.len() {
                if !self.checkers[i].0.is_due(self.now) {
                    continue;
                }
                self.probes.push((offset, i));
                let healthy = (self.checkers[i].1)(offset);
                let core = &mut self.checkers[i].0;
                core.start_probe();
                assert_eq!(core.poll_timeout(), None, "no schedule while probing");
                let v = core.handle_result(self.now, healthy);
                self.verdicts.push((offset, i, v));
                let all_up = self.checkers.iter().all(|(c, _)| c.is_up());
                if let Some(change) = self.server.evaluate(all_up, None) {
                    self.changes.push((offset, change));
                }
            }
        }
        panic!("simulation did not reach its end");
    }

    fn reported(&self) -> Vec<(Duration, usize, Verdict)> {
        self.verdicts
            .iter()
            .filter(|(_, _, v)| !matches!(v, Verdict::Quiet | Verdict::Retrying { .. }))
            .cloned()
            .collect()
    }
}

fn healthy_except(from: u64, to: u64) -> Script {
    Box::new(move |t| !(secs(from)..secs(to)).contains(&t))
}

#[test]
fn retries_then_down_then_back_up_within_delay_loop() {
    // delay_loop 10, retry 3, delay_before_retry 2; the server dies at 25 s
    // and returns at 60 s.
    let mut sim = Sim::new(vec![(timing(10, 3, 2), false, healthy_except(25, 60))]);
    sim.run_until(secs(100));
    let b = BOOTSTRAP_DELAY;
    // Probes at 1, 11, 21, then 31 fails, retries at 33, 35, 37 -> DOWN at 37.
    assert_eq!(
        sim.reported(),
        vec![
            (b, 0, Verdict::ReportedUp),
            (
                b + secs(36),
                0,
                Verdict::ReportedDown {
                    retries: 3,
                    was_up: true
                }
            ),
            (b + secs(62), 0, Verdict::ReportedUp),
        ]
    );
    let retries: Vec<Duration> = sim
        .verdicts
        .iter()
        .filter(|(_, _, v)| matches!(v, Verdict::Retrying { .. }))
        .map(|(t, _, _)| *t)
        .collect();
    // While down, each round retries the same way (quietly).
    assert_eq!(
        retries,
        vec![
            b + secs(30),
            b + secs(32),
            b + secs(34),
            b + secs(46),
            b + secs(48),
            b + secs(50)
        ]
    );
    assert_eq!(
        sim.changes,
        vec![
            (b + secs(36), ServerChange::Down),
            (b + secs(62), ServerChange::Up { weight: 1 })
        ]
    );
    // Down is detected within delay_loop + retry * delay_before_retry of
    // the failure, and up within delay_loop (+ retry delays) of the return.
    let down_at = b + secs(36);
    assert!(down_at - secs(25) <= secs(10 + 3 * 2));
    let up_at = b + secs(62);
    assert!(up_at - secs(60) <= secs(10 + 3 * 2));
}

#[test]
fn a_success_during_retries_keeps_it_up() {
    // Fails once at 11 s only.
    let mut sim = Sim::new(vec![(timing(10, 2, 1), false, healthy_except(11, 12))]);
    sim.run_until(secs(40));
    assert_eq!(
        sim.reported(),
        vec![(BOOTSTRAP_DELAY, 0, Verdict::ReportedUp)]
    );
    assert!(sim.changes.is_empty());
    assert!(sim
        .verdicts
        .iter()
        .any(|(t, _, v)| *t == secs(12) && *v == Verdict::Quiet));
    // After the retry succeeded, the next round is a full delay_loop later.
    assert!(sim.probes.iter().any(|(t, _)| *t == secs(22)));
}

#[test]
fn retry_zero_goes_down_at_the_first_failure() {
    let mut sim = Sim::new(vec![(timing(5, 0, 1), false, healthy_except(6, 100))]);
    sim.run_until(secs(30));
    assert_eq!(
        sim.reported(),
        vec![
            (secs(1), 0, Verdict::ReportedUp),
            (
                secs(6),
                0,
                Verdict::ReportedDown {
                    retries: 0,
                    was_up: true
                }
            )
        ]
    );
    // While down it keeps probing every delay_loop, quietly.
    let probes: Vec<Duration> = sim.probes.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        probes,
        vec![secs(1), secs(6), secs(11), secs(16), secs(21), secs(26)]
    );
}

#[test]
fn a_failing_first_probe_is_down_at_once() {
    // Down from the start: keepalived 2.2.7 takes the server out on the
    // first failure, without the retries (seen in the VM; tests/check_vm.rs
    // `first_probes_match_keepalived`), and logs "failed." with no count.
    let mut sim = Sim::new(vec![(timing(10, 3, 3), false, Box::new(|_| false))]);
    sim.run_until(secs(30));
    assert_eq!(
        sim.reported(),
        vec![(
            secs(1),
            0,
            Verdict::ReportedDown {
                retries: 0,
                was_up: true
            }
        )]
    );
    assert_eq!(sim.changes, vec![(secs(1), ServerChange::Down)]);
    // Later rounds have their retries again (quietly, while DOWN).
    let probes: Vec<Duration> = sim.probes.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        probes,
        vec![secs(1), secs(11), secs(14), secs(17), secs(20), secs(30)]
    );
}

#[test]
fn smtp_retries_its_first_probe() {
    // keepalived's SMTP_CHECK is the exception: its first probe is retried.
    let smtp = Timing {
        retry_first_probe: true,
        ..timing(10, 1, 3)
    };
    let mut sim = Sim::new(vec![(smtp, false, Box::new(|_| false))]);
    sim.run_until(secs(30));
    assert_eq!(
        sim.reported(),
        vec![(
            secs(4),
            0,
            Verdict::ReportedDown {
                retries: 1,
                was_up: true
            }
        )]
    );
    assert_eq!(sim.changes, vec![(secs(4), ServerChange::Down)]);
}

#[test]
fn alpha_starts_down_until_the_first_success() {
    let mut sim = Sim::new(vec![(timing(10, 1, 3), true, Box::new(|_| true))]);
    assert!(!sim.server.is_alive());
    assert!(!sim.checkers[0].0.is_up());
    sim.run_until(secs(30));
    assert_eq!(sim.reported(), vec![(secs(1), 0, Verdict::ReportedUp)]);
    assert_eq!(sim.changes, vec![(secs(1), ServerChange::Up { weight: 1 })]);
}

#[test]
fn alpha_failing_server_stays_down_without_a_change() {
    let mut sim = Sim::new(vec![(timing(10, 1, 3), true, Box::new(|_| false))]);
    sim.run_until(secs(30));
    // The first probe's verdict is reported (keepalived's TCP_CHECK logs
    // "failed."; its HTTP_GET keeps quiet: `was_up` tells them apart), but
    // nothing changes: the server was DOWN already.
    assert_eq!(
        sim.reported(),
        vec![(
            secs(1),
            0,
            Verdict::ReportedDown {
                retries: 0,
                was_up: false
            }
        )]
    );
    assert!(sim.changes.is_empty());
    assert!(!sim.server.is_alive());
}

#[test]
fn every_checker_must_pass() {
    // Checker 0 fails between 20 and 40 s, checker 1 between 30 and 60 s.
    let mut sim = Sim::new(vec![
        (timing(5, 0, 1), false, healthy_except(20, 40)),
        (timing(5, 0, 1), false, healthy_except(30, 60)),
    ]);
    sim.run_until(secs(80));
    assert_eq!(
        sim.changes,
        vec![
            (secs(21), ServerChange::Down),
            (secs(61), ServerChange::Up { weight: 1 })
        ],
        "down at the first failing checker, up only when the last recovers"
    );
}

#[test]
fn warmup_spreads_the_first_probe() {
    let t0 = Instant::now();
    let mut t = timing(10, 1, 1);
    t.warmup = secs(8);
    for offset in [0, 3, 8] {
        let c = CheckerCore::new(t, false, t0, secs(offset));
        assert_eq!(c.poll_timeout(), Some(t0 + BOOTSTRAP_DELAY + secs(offset)));
    }
    for random in [0u64, 1, 7_999, 8_000, u64::MAX] {
        let o = keepalived_rs::check::core::warmup_offset(t.warmup, random);
        assert!(o <= t.warmup, "{o:?}");
    }
}

#[test]
fn deferred_probes_keep_their_place() {
    let t0 = Instant::now();
    let mut c = CheckerCore::new(timing(10, 1, 1), false, t0, Duration::ZERO);
    let due = t0 + secs(1);
    assert!(c.is_due(due));
    c.defer(due + Duration::from_millis(1));
    assert!(!c.is_due(due));
    assert!(c.is_due(due + Duration::from_millis(1)));
    // Deferring to an earlier time never moves it earlier.
    c.defer(t0);
    assert_eq!(c.poll_timeout(), Some(due + Duration::from_millis(1)));
}

#[test]
fn dynamic_weight_follows_the_checker() {
    let mut s = ServerHealth::new(10, true);
    assert_eq!(
        s.evaluate(true, Some(3)),
        Some(ServerChange::Weight { weight: 3 })
    );
    assert_eq!(s.evaluate(true, Some(3)), None);
    // Exit 0 again: back to the configured weight.
    assert_eq!(
        s.evaluate(true, None),
        Some(ServerChange::Weight { weight: 10 })
    );
    assert_eq!(s.evaluate(false, None), Some(ServerChange::Down));
    assert_eq!(
        s.evaluate(true, Some(0)),
        Some(ServerChange::Up { weight: 0 })
    );
}

/// One HTTP_GET checker with several URLs in simulated time: `healthy(url,
/// offset)` answers each fetch. Returns the fetches (offset, url) and the
/// reported verdicts, offsets from the first probe.
type UrlScript<'a> = dyn Fn(usize, Duration) -> bool + 'a;

struct UrlRun {
    fetches: Vec<(Duration, usize)>,
    reported: Vec<(Duration, Verdict)>,
}

fn run_urls(t: Timing, count: usize, fast: bool, end: Duration, healthy: &UrlScript<'_>) -> UrlRun {
    let t0 = Instant::now();
    let mut core = CheckerCore::new(t, false, t0, Duration::ZERO);
    let mut urls = UrlCursor::new(count, fast);
    let first = t0 + BOOTSTRAP_DELAY;
    let mut run = UrlRun {
        fetches: Vec::new(),
        reported: Vec::new(),
    };
    for _ in 0..10_000 {
        let Some(at) = core.poll_timeout() else {
            panic!("no schedule after a result");
        };
        if at - first > end {
            return run;
        }
        let offset = at - first;
        core.start_probe();
        let url = urls.current();
        run.fetches.push((offset, url));
        let v = core.handle_url_result(at, &mut urls, healthy(url, offset));
        if !matches!(v, Verdict::Quiet | Verdict::Retrying { .. }) {
            run.reported.push((offset, v));
        }
    }
    panic!("simulation did not reach its end");
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn http_urls_resume_at_the_failed_url() {
    // What keepalived 2.2.7 did in the test VM (urls /a /b /c, delay_loop
    // 2, retry 2, delay_before_retry 1; /b removed 8.69 s after the first
    // fetch, restored at 24.74 s), as fetch offsets from busybox httpd's
    // log: a0 b2 c4 a6 b8 c10 a12 b14 b15 b16 (DOWN "failed after 2
    // retries") b18 b20 b22 b24 b26 (passes) a28 b30 c32 (UP) a34 ...
    let b_off = ms(8_690)..ms(24_740);
    let run = run_urls(timing(2, 2, 1), 3, false, secs(40), &|url, t| {
        !(url == 1 && b_off.contains(&t))
    });
    let expect: Vec<(Duration, usize)> = [
        (0, 0),
        (2, 1),
        (4, 2),
        (6, 0),
        (8, 1),
        (10, 2),
        (12, 0),
        (14, 1),
        (15, 1),
        (16, 1),
        (18, 1),
        (20, 1),
        (22, 1),
        (24, 1),
        (26, 1),
        (28, 0),
        (30, 1),
        (32, 2),
        (34, 0),
        (36, 1),
        (38, 2),
        (40, 0),
    ]
    .iter()
    .map(|&(t, u)| (secs(t), u))
    .collect();
    assert_eq!(run.fetches, expect);
    assert_eq!(
        run.reported,
        vec![
            (secs(4), Verdict::ReportedUp),
            (
                secs(16),
                Verdict::ReportedDown {
                    retries: 2,
                    was_up: true
                }
            ),
            (secs(32), Verdict::ReportedUp),
        ]
    );
}

#[test]
fn http_retry_counts_are_per_url() {
    // /a fails once at 20 s and /b once at 31 s, the retries pass: never
    // DOWN with retry 1, though two failures happen in one round.
    let run = run_urls(timing(10, 1, 1), 2, false, secs(60), &|_, t| {
        t != secs(20) && t != secs(31)
    });
    assert_eq!(run.reported, vec![(secs(10), Verdict::ReportedUp)]);
    let fetched: Vec<(u64, usize)> = run.fetches.iter().map(|(t, u)| (t.as_secs(), *u)).collect();
    assert_eq!(
        fetched,
        vec![
            (0, 0),
            (10, 1),
            (20, 0),
            (21, 0),
            (31, 1),
            (32, 1),
            (42, 0),
            (52, 1)
        ]
    );
}

#[test]
fn http_first_round_failure_after_a_pass_is_not_retried() {
    // keepalived sets retry_it = retry after a URL passes in the first
    // round: /b failing in the first round takes the checker DOWN at once.
    let run = run_urls(timing(5, 3, 1), 2, false, secs(12), &|url, _| url == 0);
    assert_eq!(
        run.reported,
        vec![(
            secs(5),
            Verdict::ReportedDown {
                retries: 3,
                was_up: true
            }
        )]
    );
    // Then /b alone, every max(delay_before_retry, delay_loop).
    assert_eq!(run.fetches, vec![(secs(0), 0), (secs(5), 1), (secs(10), 1)]);
}

#[test]
fn http_fast_recovery_fetches_the_next_url_at_once() {
    // fast_recovery: no delay_loop between the URLs of the first round, nor
    // of the round that follows the failed URL passing again.
    let run = run_urls(timing(5, 0, 1), 3, true, secs(30), &|url, t| {
        !(url == 1 && (secs(6)..secs(14)).contains(&t))
    });
    let fetched: Vec<(u64, usize)> = run.fetches.iter().map(|(t, u)| (t.as_secs(), *u)).collect();
    assert_eq!(
        fetched,
        vec![
            (0, 0),
            (0, 1),
            (0, 2),
            (5, 0),
            (10, 1),
            (15, 1),
            (15, 0),
            (15, 1),
            (15, 2),
            (20, 0),
            (25, 1),
            (30, 2)
        ]
    );
    assert_eq!(
        run.reported,
        vec![
            (secs(0), Verdict::ReportedUp),
            (
                secs(10),
                Verdict::ReportedDown {
                    retries: 0,
                    was_up: true
                }
            ),
            (secs(15), Verdict::ReportedUp),
        ]
    );
}
