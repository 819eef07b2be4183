//! Several VRRP instances on a virtual LAN (quinn-proto's `Pair` idea): every
//! advert a router sends is delivered to every other router after a small
//! latency, and the shared clock jumps to the earliest pending event (a timer
//! of a running router or a packet in flight). Runs are exact and repeatable.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use keepalived_rs::config::model::InitialState;
use keepalived_rs::vrrp::{
    Action, Auth, Instance, InstanceConfig, State, TrackStatus, VrrpRepr, VrrpVersion,
};

const ADVERT_INTERVAL: Duration = Duration::from_secs(1);
const LATENCY: Duration = Duration::from_millis(1);

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn t(ms: u64) -> Instant {
    origin() + Duration::from_millis(ms)
}

/// RFC 3768 6.1 Master_Down_Interval for a v2 router with a 1 s interval.
fn master_down_interval(priority: u8) -> Duration {
    ADVERT_INTERVAL * 3 + skew_time(priority)
}

/// RFC 3768 6.1 Skew_Time = (256 - Priority) / 256 s.
fn skew_time(priority: u8) -> Duration {
    Duration::from_nanos((256 - u64::from(priority)) * 3_906_250)
}

/// One router's configuration in a scenario.
#[derive(Clone, Copy)]
struct Spec {
    priority: u8,
    last_octet: u8,
    nopreempt: bool,
}

fn router(priority: u8, last_octet: u8) -> Spec {
    Spec {
        priority,
        last_octet,
        nopreempt: false,
    }
}

fn instance_config(spec: Spec) -> InstanceConfig {
    InstanceConfig {
        name: "VI_1".into(),
        vrid: 51,
        priority: spec.priority,
        advert_interval: ADVERT_INTERVAL,
        version: VrrpVersion::V2,
        initial_state: InitialState::Backup,
        nopreempt: spec.nopreempt,
        preempt_delay: Duration::ZERO,
        virtual_addresses: vec!["10.0.0.100".parse().unwrap()],
        accept: true,
        primary_address: IpAddr::from([10, 0, 0, spec.last_octet]),
        lower_prio_no_advert: false,
        higher_prio_send_advert: false,
        strict: false,
        down_timer_adverts: 3,
    }
}

struct Router {
    inst: Instance,
    /// Driven by the harness (a killed router is simply not driven).
    running: bool,
    /// Its adverts reach the LAN and the LAN's adverts reach it.
    link_up: bool,
    /// VIPs currently added (from AddVips / DelVips).
    holds_vips: bool,
}

struct InFlight {
    deliver_at: Instant,
    from: usize,
    src: IpAddr,
    repr: VrrpRepr,
}

struct Lan {
    routers: Vec<Router>,
    now: Instant,
    in_flight: Vec<InFlight>,
    /// Every state change: when, which router, new state.
    timeline: Vec<(Instant, usize, State)>,
    /// Adverts put on the wire: when, sender, priority.
    sent: Vec<(Instant, usize, u8)>,
    dual_master_since: Option<Instant>,
    longest_dual_master: Duration,
}

impl Lan {
    fn new(specs: &[Spec]) -> Lan {
        Lan {
            routers: specs
                .iter()
                .map(|&spec| Router {
                    inst: Instance::new(instance_config(spec)),
                    running: false,
                    link_up: true,
                    holds_vips: false,
                })
                .collect(),
            now: t(0),
            in_flight: Vec::new(),
            timeline: Vec::new(),
            sent: Vec::new(),
            dual_master_since: None,
            longest_dual_master: Duration::ZERO,
        }
    }

    /// Start every router now.
    fn start_all(&mut self) {
        for i in 0..self.routers.len() {
            self.start(i);
        }
    }

    fn start(&mut self, i: usize) {
        self.routers[i].running = true;
        self.routers[i].inst.handle_startup(self.now);
        self.flush();
    }

    /// Power off router `i`: it is no longer driven and sends nothing more.
    fn kill(&mut self, i: usize) {
        self.routers[i].running = false;
        self.routers[i].holds_vips = false;
        self.check_masters();
    }

    /// Replace router `i` by a freshly booted one with `spec`, started now.
    fn reboot(&mut self, i: usize, spec: Spec) {
        self.routers[i].inst = Instance::new(instance_config(spec));
        self.start(i);
    }

    fn shutdown(&mut self, i: usize) {
        self.routers[i].inst.handle_shutdown(self.now);
        self.flush();
        self.routers[i].running = false;
    }

    fn set_link(&mut self, i: usize, up: bool) {
        self.routers[i].link_up = up;
    }

    /// Perform every queued action of every running router.
    fn flush(&mut self) {
        for i in 0..self.routers.len() {
            if !self.routers[i].running {
                continue;
            }
            while let Some(action) = self.routers[i].inst.poll_action() {
                match action {
                    Action::SendAdvert { priority } => {
                        let router = &self.routers[i];
                        if router.link_up {
                            self.sent.push((self.now, i, priority));
                            self.in_flight.push(InFlight {
                                deliver_at: self.now + LATENCY,
                                from: i,
                                src: router.inst.config().primary_address,
                                repr: router.inst.advert_repr(priority, Auth::None),
                            });
                        }
                    }
                    Action::AddVips => self.routers[i].holds_vips = true,
                    Action::DelVips => self.routers[i].holds_vips = false,
                    Action::StateChanged { to, .. } => self.timeline.push((self.now, i, to)),
                    Action::SendGratuitous | Action::RunNotify(_) => {}
                }
            }
        }
        self.check_masters();
    }

    /// Track how long two routers hold the VIPs at once.
    fn check_masters(&mut self) {
        let masters = self.masters();
        for &i in &masters {
            let router = &self.routers[i];
            assert!(router.holds_vips, "router {i} is Master without its VIPs");
        }
        if masters.len() > 1 {
            let since = *self.dual_master_since.get_or_insert(self.now);
            self.longest_dual_master = self.longest_dual_master.max(self.now - since);
        } else {
            self.dual_master_since = None;
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let timers = self
            .routers
            .iter()
            .filter(|r| r.running)
            .filter_map(|r| r.inst.poll_timeout());
        let packets = self.in_flight.iter().map(|p| p.deliver_at);
        timers.chain(packets).min()
    }

    /// Process events until `until`, then leave the clock at `until`.
    fn run_until(&mut self, until: Instant) {
        while let Some(next) = self.next_event().filter(|&next| next <= until) {
            self.now = next;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|p| p.deliver_at <= next);
            self.in_flight = later;
            for packet in due {
                for (i, router) in self.routers.iter_mut().enumerate() {
                    if i != packet.from && router.running && router.link_up {
                        let _ = router.inst.handle_advert(next, packet.src, &packet.repr);
                    }
                }
            }
            for router in self.routers.iter_mut().filter(|r| r.running) {
                if router.inst.poll_timeout().is_some_and(|d| d <= next) {
                    router.inst.handle_timeout(next);
                }
            }
            self.flush();
        }
        self.now = until;
        self.check_masters();
    }

    fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Running routers in Master state.
    fn masters(&self) -> Vec<usize> {
        (0..self.routers.len())
            .filter(|&i| self.routers[i].running && self.routers[i].inst.state() == State::Master)
            .collect()
    }

    /// The first time after `after` router `i` entered `state`.
    fn entered(&self, i: usize, state: State, after: Instant) -> Option<Instant> {
        self.timeline
            .iter()
            .find(|&&(at, who, to)| who == i && to == state && at >= after)
            .map(|&(at, _, _)| at)
    }

    /// State changes in `[from, to]`.
    fn changes_between(&self, from: Instant, to: Instant) -> Vec<(Instant, usize, State)> {
        self.timeline
            .iter()
            .copied()
            .filter(|&(at, _, _)| at >= from && at <= to)
            .collect()
    }

    /// The last advert router `i` put on the wire at or before `at`.
    fn last_advert_of(&self, i: usize, at: Instant) -> Option<Instant> {
        self.sent
            .iter()
            .rev()
            .find(|&&(when, who, _)| who == i && when <= at)
            .map(|&(when, _, _)| when)
    }
}

#[test]
fn two_routers_elect_the_higher_priority() {
    let mut lan = Lan::new(&[router(100, 1), router(200, 2)]);
    lan.start_all();
    lan.run_until(t(30_000));
    assert_eq!(lan.masters(), vec![1]);
    // The 200 router's timer fires first (3 + 56/256 s), so there is never a second Master.
    assert_eq!(
        lan.entered(1, State::Master, t(0)),
        Some(t(0) + master_down_interval(200))
    );
    assert_eq!(lan.entered(0, State::Master, t(0)), None);
    assert_eq!(lan.longest_dual_master, Duration::ZERO);
    // The Master advertises once a second.
    let adverts = lan.sent.iter().filter(|s| s.1 == 1).count();
    assert_eq!(adverts, 27);
}

#[test]
fn three_routers_with_equal_priority_elect_the_greatest_address() {
    let mut lan = Lan::new(&[router(100, 1), router(100, 3), router(100, 2)]);
    lan.start_all();
    lan.run_until(t(30_000));
    assert_eq!(lan.masters(), vec![1]);
    // All three timers fire together; the losers yield when the adverts
    // arrive, one latency later.
    assert!(lan.longest_dual_master <= LATENCY);
    let after_convergence = lan.changes_between(t(4_000), t(30_000));
    assert_eq!(after_convergence, vec![]);
}

#[test]
fn three_routers_elect_the_highest_priority_with_staggered_starts() {
    let mut lan = Lan::new(&[router(150, 1), router(100, 2), router(200, 3)]);
    // The lowest starts first and becomes Master alone; the others preempt in turn.
    lan.start(1);
    lan.run_until(t(5_000));
    assert_eq!(lan.masters(), vec![1]);
    lan.start(0);
    lan.run_until(t(10_000));
    assert_eq!(lan.masters(), vec![0]);
    lan.start(2);
    lan.run_until(t(20_000));
    assert_eq!(lan.masters(), vec![2]);
    assert!(lan.longest_dual_master <= ADVERT_INTERVAL);
}

#[test]
fn killed_master_is_replaced_by_the_next_highest_within_master_down_interval() {
    let mut lan = Lan::new(&[router(200, 1), router(150, 2), router(100, 3)]);
    lan.start_all();
    lan.run_until(t(10_500));
    assert_eq!(lan.masters(), vec![0]);
    let kill_at = lan.now;
    lan.kill(0);
    lan.run_until(t(20_000));
    assert_eq!(lan.masters(), vec![1]);
    // The 150 router takes over exactly Master_Down_Interval after it last
    // heard the dead Master.
    let last_advert = lan.last_advert_of(0, kill_at).unwrap();
    let takeover = lan.entered(1, State::Master, kill_at).unwrap();
    assert_eq!(takeover, last_advert + LATENCY + master_down_interval(150));
    assert!(takeover - kill_at <= master_down_interval(150));
    assert_eq!(lan.entered(2, State::Master, t(0)), None);
}

#[test]
fn graceful_shutdown_hands_over_after_skew_time() {
    let mut lan = Lan::new(&[router(200, 1), router(150, 2), router(100, 3)]);
    lan.start_all();
    lan.run_until(t(10_250));
    let shutdown_at = lan.now;
    lan.shutdown(0);
    assert_eq!(lan.sent.last(), Some(&(shutdown_at, 0, 0)));
    lan.run_until(t(20_000));
    assert_eq!(lan.masters(), vec![1]);
    // RFC 5798 6.4.2: the priority 0 advert sets the Master_Down_Timer to Skew_Time.
    let takeover = lan.entered(1, State::Master, shutdown_at).unwrap();
    assert_eq!(takeover, shutdown_at + LATENCY + skew_time(150));
    // The 100 router (skew 156/256 s) hears the new Master first and stays Backup.
    assert_eq!(lan.entered(2, State::Master, t(0)), None);
}

#[test]
fn returning_higher_priority_router_preempts() {
    let mut lan = Lan::new(&[router(200, 1), router(100, 2)]);
    lan.start_all();
    lan.run_until(t(10_000));
    lan.kill(0);
    lan.run_until(t(20_000));
    assert_eq!(lan.masters(), vec![1]);
    lan.reboot(0, router(200, 1));
    lan.run_until(t(40_000));
    assert_eq!(lan.masters(), vec![0]);
    // The returning router discards the lower adverts and takes over when its
    // startup Master_Down_Timer fires; the old Master yields on its first advert.
    let takeover = lan.entered(0, State::Master, t(20_000)).unwrap();
    assert_eq!(takeover, t(20_000) + master_down_interval(200));
    let yielded = lan.entered(1, State::Backup, t(20_000)).unwrap();
    assert_eq!(yielded, takeover + LATENCY);
    assert!(lan.longest_dual_master <= LATENCY);
}

#[test]
fn returning_higher_priority_router_with_nopreempt_stays_backup() {
    let mut lan = Lan::new(&[router(200, 1), router(100, 2)]);
    lan.start_all();
    lan.run_until(t(10_000));
    lan.kill(0);
    lan.run_until(t(20_000));
    let nopreempt = Spec {
        nopreempt: true,
        ..router(200, 1)
    };
    lan.reboot(0, nopreempt);
    lan.run_until(t(60_000));
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.entered(0, State::Master, t(20_000)), None);
    // When the live Master goes away it does take over.
    lan.kill(1);
    lan.run_until(t(70_000));
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn short_link_flap_changes_nothing() {
    let mut lan = Lan::new(&[router(200, 1), router(100, 2)]);
    lan.start_all();
    lan.run_until(t(10_000));
    // The adverts at 10.21875 s and 11.21875 s are lost: the Backup hears
    // 9.21875 s then 12.21875 s, a gap shorter than its Master_Down_Interval.
    lan.set_link(0, false);
    lan.run_for(Duration::from_millis(1_500));
    lan.set_link(0, true);
    lan.run_until(t(30_000));
    assert_eq!(lan.changes_between(t(9_000), t(30_000)), vec![]);
    assert_eq!(lan.masters(), vec![0]);
}

#[test]
fn long_link_flap_fails_over_then_the_higher_priority_master_wins_back() {
    let mut lan = Lan::new(&[router(200, 1), router(100, 2)]);
    lan.start_all();
    lan.run_until(t(10_500));
    let down_at = lan.now;
    lan.set_link(0, false);
    lan.run_for(Duration::from_secs(5));
    // Partitioned: the Backup no longer hears the Master and takes over after
    // Master_Down_Interval from the last advert it heard.
    let last_heard = lan.last_advert_of(0, down_at).unwrap() + LATENCY;
    let takeover = lan.entered(1, State::Master, down_at).unwrap();
    assert_eq!(takeover, last_heard + master_down_interval(100));
    assert_eq!(lan.masters(), vec![0, 1]);
    // The link heals: the higher-priority Master's next advert demotes the other
    // within one advert interval.
    let up_at = lan.now;
    lan.set_link(0, true);
    lan.run_until(t(30_000));
    assert_eq!(lan.masters(), vec![0]);
    let yielded = lan.entered(1, State::Backup, up_at).unwrap();
    assert!(yielded - up_at <= ADVERT_INTERVAL + LATENCY);
    assert_eq!(lan.entered(0, State::Backup, down_at), None);
}

#[test]
fn tracked_fault_moves_mastership_and_recovery_takes_it_back() {
    let mut lan = Lan::new(&[router(200, 1), router(100, 2)]);
    lan.start_all();
    lan.run_until(t(10_000));
    let fault_at = lan.now;
    lan.routers[0].inst.handle_track_change(
        fault_at,
        TrackStatus {
            priority_delta: 0,
            fault: true,
        },
    );
    lan.flush();
    lan.run_until(t(20_000));
    assert_eq!(lan.masters(), vec![1]);
    // The faulted Master sent priority 0: takeover after Skew_Time.
    let takeover = lan.entered(1, State::Master, fault_at).unwrap();
    assert_eq!(takeover, fault_at + LATENCY + skew_time(100));
    let recover_at = lan.now;
    lan.routers[0]
        .inst
        .handle_track_change(recover_at, TrackStatus::default());
    lan.flush();
    lan.run_until(t(30_000));
    assert_eq!(lan.masters(), vec![0]);
    assert_eq!(
        lan.entered(0, State::Master, recover_at),
        Some(recover_at + master_down_interval(200))
    );
}

#[test]
fn weight_drop_below_a_backup_lets_it_preempt() {
    let mut lan = Lan::new(&[router(200, 1), router(150, 2)]);
    lan.start_all();
    lan.run_until(t(10_000));
    let drop_at = lan.now;
    lan.routers[0].inst.handle_track_change(
        drop_at,
        TrackStatus {
            priority_delta: -100,
            fault: false,
        },
    );
    lan.flush();
    lan.run_until(t(20_000));
    assert_eq!(lan.masters(), vec![1]);
    // The Backup discards the priority-100 adverts; its timer, last reset by
    // the priority-200 advert before the drop, runs out.
    let last_high = lan
        .sent
        .iter()
        .rev()
        .find(|&&(at, who, prio)| who == 0 && prio == 200 && at <= drop_at)
        .map(|&(at, _, _)| at)
        .unwrap();
    let takeover = lan.entered(1, State::Master, drop_at).unwrap();
    assert_eq!(takeover, last_high + LATENCY + master_down_interval(150));
    assert!(lan.longest_dual_master <= LATENCY);
}
