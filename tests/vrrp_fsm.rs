//! One VRRP instance driven in simulated time: every RFC 5798 / RFC 3768
//! state machine rule, with exact timer values. No sockets, no clock reads:
//! `t(ms)` is an offset from a fixed origin.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use keepalived_rs::config::model::InitialState;
use keepalived_rs::config::{load_str, LoadOptions};
use keepalived_rs::vrrp::instance::{NotifyEvent as Notify, Reason, State as S};
use keepalived_rs::vrrp::{
    Action, Auth, Discard, Instance, InstanceConfig, TrackStatus, VrrpRepr, VrrpVersion,
};

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Simulated time: `ms` milliseconds after the origin.
fn t(ms: u64) -> Instant {
    origin() + Duration::from_millis(ms)
}

/// Simulated time with nanosecond precision.
fn t_ns(ns: u64) -> Instant {
    origin() + Duration::from_nanos(ns)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const LOCAL: &str = "10.0.0.2";

fn config(version: VrrpVersion, priority: u8, interval: Duration) -> InstanceConfig {
    InstanceConfig {
        name: "VI_1".into(),
        vrid: 51,
        priority,
        advert_interval: interval,
        version,
        initial_state: InitialState::Backup,
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        virtual_addresses: vec![ip("10.0.0.100")],
        accept: true,
        primary_address: ip(LOCAL),
        lower_prio_no_advert: false,
        higher_prio_send_advert: false,
        strict: false,
        down_timer_adverts: 3,
    }
}

fn v2(priority: u8) -> InstanceConfig {
    config(VrrpVersion::V2, priority, Duration::from_secs(1))
}

fn v3(priority: u8, centis: u64) -> InstanceConfig {
    config(
        VrrpVersion::V3,
        priority,
        Duration::from_millis(centis * 10),
    )
}

fn advert(version: VrrpVersion, priority: u8, centis: u16) -> VrrpRepr {
    VrrpRepr {
        version,
        vrid: 51,
        priority,
        max_advert_int: centis,
        addresses: vec![ip("10.0.0.100")],
        auth: Auth::None,
    }
}

fn drain(inst: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| inst.poll_action()).collect()
}

/// Receive an advert at `$ms` from `$src` with `$prio`, in the instance's
/// version and interval; evaluates to the handle_advert result.
macro_rules! rx {
    ($inst:expr, $ms:expr, $src:expr, $prio:expr) => {{
        let cfg = $inst.config();
        let centis = (cfg.advert_interval.as_millis() / 10) as u16;
        let repr = advert(cfg.version, $prio, centis);
        $inst.handle_advert(t($ms), ip($src), &repr)
    }};
}

/// Assert exactly these actions are queued, in order.
macro_rules! expect_actions {
    ($inst:expr, [$($action:expr),* $(,)?]) => {
        assert_eq!(drain(&mut $inst), vec![$($action),*]);
    };
}

/// Run a timeout at the given instant and expect nothing.
macro_rules! quiet {
    ($inst:expr, $at:expr) => {
        $inst.handle_timeout($at);
        assert_eq!(drain(&mut $inst), vec![]);
    };
}

fn changed(from: S, to: S, reason: Reason) -> Action {
    Action::StateChanged { from, to, reason }
}

fn advert_action(priority: u8) -> Action {
    Action::SendAdvert { priority }
}

fn become_master_actions(from: S, reason: Reason, priority: u8) -> Vec<Action> {
    vec![
        changed(from, S::Master, reason),
        advert_action(priority),
        Action::AddVips,
        Action::SendGratuitous,
        Action::RunNotify(Notify::Master),
    ]
}

fn started_backup(cfg: InstanceConfig) -> Instance {
    let mut inst = Instance::new(cfg);
    inst.handle_startup(t(0));
    expect_actions!(
        inst,
        [
            changed(S::Initialize, S::Backup, Reason::Startup),
            Action::RunNotify(Notify::Backup)
        ]
    );
    inst
}

/// A Master at t=0 (configured `state MASTER`).
fn started_master(mut cfg: InstanceConfig) -> Instance {
    cfg.initial_state = InitialState::Master;
    let priority = cfg.priority;
    let mut inst = Instance::new(cfg);
    inst.handle_startup(t(0));
    assert_eq!(
        drain(&mut inst),
        become_master_actions(S::Initialize, Reason::ConfiguredMaster, priority)
    );
    inst
}

#[test]
fn v2_backup_becomes_master_after_exactly_master_down_interval() {
    let mut inst = started_backup(v2(100));
    // RFC 3768 6.1: 3 * 1 s + (256 - 100) / 256 s = 3.609375 s.
    let down = t_ns(3_609_375_000);
    assert_eq!(
        inst.master_down_interval(),
        Duration::from_nanos(3_609_375_000)
    );
    assert_eq!(inst.poll_timeout(), Some(down));
    quiet!(inst, down - Duration::from_nanos(1));
    assert_eq!(inst.state(), S::Backup);
    inst.handle_timeout(down);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(S::Backup, Reason::MasterDown, 100)
    );
    assert_eq!(inst.poll_timeout(), Some(down + Duration::from_secs(1)));
}

#[test]
fn v3_backup_becomes_master_after_exactly_master_down_interval() {
    let mut inst = started_backup(v3(100, 10));
    // RFC 5798 6.1: Skew_Time = ((256 - 100) * 10 cs) / 256 = 6.09375 cs;
    // Master_Down_Interval = 3 * 10 cs + 6.09375 cs = 0.3609375 s (keepalived:
    // the 0.361 s bound of the issue).
    let down = t_ns(360_937_500);
    assert_eq!(inst.skew_time(), Duration::from_nanos(60_937_500));
    assert_eq!(
        inst.master_down_interval(),
        Duration::from_nanos(360_937_500)
    );
    assert_eq!(inst.poll_timeout(), Some(down));
    quiet!(inst, down - Duration::from_nanos(1));
    inst.handle_timeout(down);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(S::Backup, Reason::MasterDown, 100)
    );
    assert_eq!(inst.poll_timeout(), Some(down + Duration::from_millis(100)));
}

/// keepalived `down_timer_adverts N`: Master_Down_Interval is N advert
/// intervals plus Skew_Time instead of the RFCs' 3.
#[test]
fn down_timer_adverts_sets_how_many_intervals_a_backup_waits() {
    for (adverts, down_ns) in [(1u8, 1_609_375_000u64), (10, 10_609_375_000)] {
        let mut cfg = v2(100);
        cfg.down_timer_adverts = adverts;
        let mut inst = started_backup(cfg);
        let down = t_ns(down_ns);
        assert_eq!(inst.master_down_interval(), Duration::from_nanos(down_ns));
        assert_eq!(inst.poll_timeout(), Some(down), "{adverts}");
        quiet!(inst, down - Duration::from_nanos(1));
        assert_eq!(inst.state(), S::Backup);
        inst.handle_timeout(down);
        assert_eq!(
            drain(&mut inst),
            become_master_actions(S::Backup, Reason::MasterDown, 100)
        );
    }

    // A Master's advert re-arms the timer for N intervals from its arrival.
    let mut cfg = v2(100);
    cfg.down_timer_adverts = 5;
    let mut inst = started_backup(cfg);
    rx!(inst, 500, "10.0.0.9", 200).unwrap();
    assert_eq!(drain(&mut inst), vec![]);
    let down = t_ns(500_000_000 + 5_609_375_000);
    assert_eq!(inst.poll_timeout(), Some(down));
    quiet!(inst, down - Duration::from_nanos(1));
    inst.handle_timeout(down);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(S::Backup, Reason::MasterDown, 100)
    );

    // VRRPv3, 10 cs: 2 * 100 ms + 60.9375 ms.
    let mut cfg = v3(100, 10);
    cfg.down_timer_adverts = 2;
    let inst = started_backup(cfg);
    assert_eq!(inst.poll_timeout(), Some(t_ns(260_937_500)));
}

#[test]
fn address_owner_starts_master_at_once_and_advertises_every_interval() {
    let mut inst = Instance::new(v2(255));
    inst.handle_startup(t(0));
    assert_eq!(
        drain(&mut inst),
        become_master_actions(S::Initialize, Reason::AddressOwner, 255)
    );
    for second in 1..=5 {
        assert_eq!(inst.poll_timeout(), Some(t(second * 1000)));
        quiet!(inst, t(second * 1000 - 1));
        inst.handle_timeout(t(second * 1000));
        expect_actions!(inst, [advert_action(255)]);
    }
}

#[test]
fn spurious_timeouts_do_nothing() {
    let mut inst = started_backup(v2(100));
    let deadline = inst.poll_timeout();
    quiet!(inst, t(0));
    quiet!(inst, t(1000));
    quiet!(inst, t(3609));
    assert_eq!(inst.poll_timeout(), deadline);
    // Before startup and after shutdown there is no timer at all.
    let mut idle = Instance::new(v2(100));
    assert_eq!(idle.poll_timeout(), None);
    quiet!(idle, t(10_000));
    assert_eq!(idle.state(), S::Initialize);
}

#[test]
fn higher_priority_advert_demotes_master() {
    let mut inst = started_master(v2(100));
    assert_eq!(rx!(inst, 500, "10.0.0.9", 150), Ok(()));
    expect_actions!(
        inst,
        [
            Action::DelVips,
            changed(S::Master, S::Backup, Reason::HigherPriority),
            Action::RunNotify(Notify::Backup)
        ]
    );
    // Master_Down_Timer at 0.5 s + 3.609375 s; the Adver_Timer is cancelled.
    assert_eq!(inst.poll_timeout(), Some(t_ns(4_109_375_000)));
    assert_eq!(inst.last_master(), Some((150, ip("10.0.0.9"))));
}

#[test]
fn higher_prio_send_advert_sends_one_advert_before_yielding() {
    let mut cfg = v2(100);
    cfg.higher_prio_send_advert = true;
    let mut inst = started_master(cfg);
    assert_eq!(rx!(inst, 500, "10.0.0.9", 150), Ok(()));
    assert_eq!(drain(&mut inst)[0], advert_action(100));
    assert_eq!(inst.state(), S::Backup);
}

#[test]
fn equal_priority_is_won_by_the_greater_primary_address() {
    // From a smaller address: we stay Master and answer at once (keepalived default).
    let mut inst = started_master(v2(100));
    assert_eq!(rx!(inst, 500, "10.0.0.1", 100), Ok(()));
    expect_actions!(inst, [advert_action(100)]);
    assert_eq!(inst.state(), S::Master);
    assert_eq!(inst.poll_timeout(), Some(t(1500)));
    // From a greater address: we yield.
    assert_eq!(rx!(inst, 700, "10.0.0.3", 100), Ok(()));
    expect_actions!(
        inst,
        [
            Action::DelVips,
            changed(S::Master, S::Backup, Reason::EqualPriorityGreaterAddress),
            Action::RunNotify(Notify::Backup)
        ]
    );
}

#[test]
fn lower_priority_advert_is_discarded_silently_with_lower_prio_no_advert() {
    let mut cfg = v2(100);
    cfg.lower_prio_no_advert = true;
    let mut inst = started_master(cfg);
    assert_eq!(rx!(inst, 500, "10.0.0.9", 50), Ok(()));
    expect_actions!(inst, []);
    assert_eq!(inst.poll_timeout(), Some(t(1000)));
}

#[test]
fn priority_zero_advert_lets_backup_take_over_after_skew_time() {
    let mut inst = started_backup(v2(100));
    assert_eq!(rx!(inst, 1000, "10.0.0.9", 200), Ok(()));
    assert_eq!(rx!(inst, 2000, "10.0.0.9", 0), Ok(()));
    // RFC 5798 6.4.2: Master_Down_Timer = Skew_Time = 156/256 s.
    let takeover = t_ns(2_609_375_000);
    assert_eq!(inst.poll_timeout(), Some(takeover));
    quiet!(inst, takeover - Duration::from_nanos(1));
    inst.handle_timeout(takeover);
    assert_eq!(
        drain(&mut inst),
        become_master_actions(S::Backup, Reason::MasterDown, 100)
    );
}

#[test]
fn master_answers_priority_zero_advert_with_an_advert() {
    let mut inst = started_master(v2(100));
    assert_eq!(rx!(inst, 400, "10.0.0.9", 0), Ok(()));
    expect_actions!(inst, [advert_action(100)]);
    assert_eq!(inst.poll_timeout(), Some(t(1400)));
}

#[test]
fn shutdown_of_master_sends_priority_zero_and_removes_vips() {
    let mut inst = started_master(v2(100));
    inst.handle_shutdown(t(2500));
    expect_actions!(
        inst,
        [
            advert_action(0),
            Action::DelVips,
            changed(S::Master, S::Initialize, Reason::Shutdown),
            Action::RunNotify(Notify::Stop)
        ]
    );
    assert_eq!(inst.poll_timeout(), None);
    // A second shutdown and adverts after it do nothing.
    inst.handle_shutdown(t(2600));
    expect_actions!(inst, []);
    assert_eq!(
        rx!(inst, 2700, "10.0.0.9", 50),
        Err(Discard::NotParticipating)
    );
    // It can start again (`state MASTER` configured: straight to Master).
    inst.handle_startup(t(3000));
    assert_eq!(inst.state(), S::Master);
}

#[test]
fn shutdown_of_backup_cancels_the_master_down_timer() {
    let mut inst = started_backup(v2(100));
    inst.handle_shutdown(t(1000));
    expect_actions!(
        inst,
        [
            changed(S::Backup, S::Initialize, Reason::Shutdown),
            Action::RunNotify(Notify::Stop)
        ]
    );
    assert_eq!(inst.poll_timeout(), None);
}

#[test]
fn backup_preempts_a_lower_priority_master_when_the_timer_runs_out() {
    let mut inst = started_backup(v2(150));
    // A priority-100 Master advertises every second; its adverts are discarded
    // (RFC 5798 6.4.2) so the startup Master_Down_Timer fires: 3 + 106/256 s.
    for k in 0..3 {
        assert_eq!(rx!(inst, 500 + k * 1000, "10.0.0.9", 100), Ok(()));
    }
    assert_eq!(inst.poll_timeout(), Some(t_ns(3_414_062_500)));
    inst.handle_timeout(t_ns(3_414_062_500));
    assert_eq!(inst.state(), S::Master);
}

#[test]
fn nopreempt_never_takes_over_from_a_live_master() {
    let mut cfg = v2(150);
    cfg.nopreempt = true;
    let mut inst = started_backup(cfg);
    for k in 0..20 {
        let now = 500 + k * 1000;
        assert_eq!(rx!(inst, now, "10.0.0.9", 100), Ok(()));
        quiet!(inst, t(now + 999));
    }
    assert_eq!(inst.state(), S::Backup);
    // The Master dies after its advert at 19.5 s: takeover at 19.5 s + 3 + 106/256 s.
    assert_eq!(inst.poll_timeout(), Some(t_ns(22_914_062_500)));
    inst.handle_timeout(t_ns(22_914_062_500));
    assert_eq!(inst.state(), S::Master);
}

#[test]
fn preempt_delay_holds_the_first_takeover() {
    let mut cfg = v2(150);
    cfg.preempt_delay = Duration::from_secs(5);
    let mut inst = started_backup(cfg);
    let mut now = 500;
    while inst.state() == S::Backup {
        // The lower-priority Master advertises at 0.5, 1.5, ... s.
        if inst
            .poll_timeout()
            .is_some_and(|deadline| deadline <= t(now))
        {
            let deadline = inst.poll_timeout().unwrap();
            inst.handle_timeout(deadline);
            break;
        }
        assert_eq!(rx!(inst, now, "10.0.0.9", 100), Ok(()));
        now += 1000;
    }
    // Adverts before 5 s reset the timer (the last at 4.5 s); later ones are
    // discarded, so the timer runs out at 4.5 s + 3 + 106/256 s.
    assert_eq!(inst.state(), S::Master);
    let actions = drain(&mut inst);
    assert_eq!(
        actions[..1],
        [changed(S::Backup, S::Master, Reason::MasterDown)]
    );
    assert_eq!(
        inst.poll_timeout(),
        Some(t_ns(7_914_062_500) + Duration::from_secs(1))
    );
}

#[test]
fn higher_priority_master_keeps_backup_in_backup() {
    let mut inst = started_backup(v2(100));
    for k in 0..10 {
        assert_eq!(rx!(inst, k * 1000, "10.0.0.9", 200), Ok(()));
        assert_eq!(
            inst.poll_timeout(),
            Some(t(k * 1000) + Duration::from_nanos(3_609_375_000))
        );
    }
    assert_eq!(inst.state(), S::Backup);
    expect_actions!(inst, []);
}

#[test]
fn track_fault_goes_to_fault_and_recovery_back_to_backup() {
    let mut inst = started_master(v2(100));
    let fault = TrackStatus {
        priority_delta: 0,
        fault: true,
    };
    inst.handle_track_change(t(1200), fault);
    expect_actions!(
        inst,
        [
            advert_action(0),
            Action::DelVips,
            changed(S::Master, S::Fault, Reason::TrackFault),
            Action::RunNotify(Notify::Fault)
        ]
    );
    assert_eq!(inst.poll_timeout(), None);
    assert_eq!(
        rx!(inst, 1300, "10.0.0.9", 50),
        Err(Discard::NotParticipating)
    );
    quiet!(inst, t(5000));
    inst.handle_track_change(t(6000), TrackStatus::default());
    expect_actions!(
        inst,
        [
            changed(S::Fault, S::Backup, Reason::TrackRecovered),
            Action::RunNotify(Notify::Backup)
        ]
    );
    assert_eq!(
        inst.poll_timeout(),
        Some(t(6000) + Duration::from_nanos(3_609_375_000))
    );
}

#[test]
fn fault_before_startup_starts_in_fault() {
    let mut inst = Instance::new(v2(100));
    inst.handle_track_change(
        t(0),
        TrackStatus {
            priority_delta: 0,
            fault: true,
        },
    );
    expect_actions!(inst, []);
    inst.handle_startup(t(0));
    expect_actions!(
        inst,
        [
            changed(S::Initialize, S::Fault, Reason::TrackFault),
            Action::RunNotify(Notify::Fault)
        ]
    );
    assert_eq!(inst.poll_timeout(), None);
}

#[test]
fn track_weights_change_the_effective_priority() {
    let mut inst = started_master(v2(100));
    let delta = |priority_delta| TrackStatus {
        priority_delta,
        fault: false,
    };
    inst.handle_track_change(t(300), delta(-60));
    // The Master tells the Backups at once and re-arms the Adver_Timer.
    expect_actions!(inst, [advert_action(40)]);
    assert_eq!(inst.poll_timeout(), Some(t(1300)));
    inst.handle_track_change(t(400), delta(-500));
    expect_actions!(inst, [advert_action(1)]);
    inst.handle_track_change(t(500), delta(500));
    expect_actions!(inst, [advert_action(254)]);
    inst.handle_track_change(t(600), delta(500));
    expect_actions!(inst, []);

    // The owner's priority is not changed by weights.
    let mut owner = Instance::new(v2(255));
    owner.handle_track_change(t(0), delta(-50));
    assert_eq!(owner.effective_priority(), 255);
}

#[test]
fn backup_skew_follows_the_effective_priority() {
    let mut inst = started_backup(v2(100));
    inst.handle_track_change(
        t(0),
        TrackStatus {
            priority_delta: 100,
            fault: false,
        },
    );
    expect_actions!(inst, []);
    // Priority 200: Skew_Time = 56/256 s, applied at the next timer reset.
    assert_eq!(rx!(inst, 1000, "10.0.0.9", 250), Ok(()));
    assert_eq!(
        inst.poll_timeout(),
        Some(t(1000) + Duration::from_nanos(3_218_750_000))
    );
}

#[test]
fn v3_backup_learns_master_adver_interval() {
    let mut inst = started_backup(v3(100, 10));
    // The Master advertises every 100 cs.
    assert_eq!(
        inst.handle_advert(t(50), ip("10.0.0.9"), &advert(VrrpVersion::V3, 200, 100)),
        Ok(())
    );
    assert_eq!(inst.master_adver_interval(), Duration::from_secs(1));
    // Skew_Time = (156 * 100 cs) / 256 = 60.9375 cs; Master_Down_Interval = 360.9375 cs.
    let down = t(50) + Duration::from_nanos(3_609_375_000);
    assert_eq!(inst.poll_timeout(), Some(down));
    // After taking over, it advertises with its own interval.
    inst.handle_timeout(down);
    drain(&mut inst);
    assert_eq!(inst.poll_timeout(), Some(down + Duration::from_millis(100)));
    assert_eq!(inst.advert_repr(100, Auth::None).max_advert_int, 10);
}

#[test]
fn mismatched_adverts_are_discarded() {
    let mut inst = started_backup(v2(100));
    let deadline = inst.poll_timeout();
    let mut wrong_vrid = advert(VrrpVersion::V2, 200, 100);
    wrong_vrid.vrid = 52;
    let src = ip("10.0.0.9");
    assert_eq!(
        inst.handle_advert(t(1), src, &wrong_vrid),
        Err(Discard::VridMismatch)
    );
    assert_eq!(
        inst.handle_advert(t(1), src, &advert(VrrpVersion::V3, 200, 100)),
        Err(Discard::VersionMismatch)
    );
    // RFC 3768 7.1: a v2 advert with another interval is discarded.
    assert_eq!(
        inst.handle_advert(t(1), src, &advert(VrrpVersion::V2, 200, 200)),
        Err(Discard::AdvertIntervalMismatch)
    );
    assert_eq!(inst.poll_timeout(), deadline);
    expect_actions!(inst, []);
}

#[test]
fn advert_repr_carries_the_configuration() {
    let inst = Instance::new(v2(100));
    let repr = inst.advert_repr(0, Auth::Pass(*b"secret\0\0"));
    assert_eq!(repr.version, VrrpVersion::V2);
    assert_eq!(repr.vrid, 51);
    assert_eq!(repr.priority, 0);
    assert_eq!(repr.max_advert_int, 100);
    assert_eq!(repr.addresses, vec![ip("10.0.0.100")]);
    assert_eq!(repr.auth, Auth::Pass(*b"secret\0\0"));
    // v3 never carries authentication.
    let v3 = Instance::new(v3(100, 25));
    assert_eq!(v3.advert_repr(100, Auth::Ah).auth, Auth::None);
    assert_eq!(v3.advert_repr(100, Auth::None).max_advert_int, 25);
}

#[test]
fn config_from_model() {
    let text = "
vrrp_instance VI_7 {
    state MASTER
    interface eth0
    virtual_router_id 7
    priority 120
    advert_int 2
    nopreempt
    preempt_delay 10
    virtual_ipaddress {
        192.168.1.10/24
        192.168.1.11
    }
}
vrrp_instance VI_8 {
    interface eth0
    virtual_router_id 8
    version 3
    advert_int 0.25
    virtual_ipaddress {
        192.168.2.10
    }
}
";
    let options = LoadOptions {
        config_id: "test".into(),
        hostname: "testhost".into(),
    };
    let loaded = load_str("fsm.conf", text, &options);
    let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let primary = ip("192.168.1.2");
    let c7 = InstanceConfig::from_model(&loaded.config.instances[0], primary);
    assert_eq!(c7.name, "VI_7");
    assert_eq!(c7.vrid, 7);
    assert_eq!(c7.priority, 120);
    assert_eq!(c7.version, VrrpVersion::V2);
    assert_eq!(c7.advert_interval, Duration::from_secs(2));
    assert_eq!(c7.initial_state, InitialState::Master);
    assert!(c7.nopreempt);
    assert_eq!(c7.preempt_delay, Duration::from_secs(10));
    assert_eq!(
        c7.virtual_addresses,
        vec![ip("192.168.1.10"), ip("192.168.1.11")]
    );
    assert_eq!(c7.primary_address, primary);
    let c8 = InstanceConfig::from_model(&loaded.config.instances[1], primary);
    assert_eq!(c8.version, VrrpVersion::V3);
    assert_eq!(c8.advert_interval, Duration::from_millis(250));
    assert_eq!(c8.initial_state, InitialState::Backup);
    assert_eq!(
        (c7.down_timer_adverts, c8.down_timer_adverts),
        (3, 3),
        "the RFCs' 3"
    );
}

#[test]
fn down_timer_adverts_from_global_defs_and_the_instance() {
    let text = "
global_defs {
    vrrp_down_timer_adverts 5
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.168.1.10
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 2
    down_timer_adverts 1
    virtual_ipaddress {
        192.168.1.20
    }
}
";
    let options = LoadOptions {
        config_id: "test".into(),
        hostname: "testhost".into(),
    };
    let loaded = load_str("fsm.conf", text, &options);
    assert!(
        loaded.diagnostics.items.is_empty(),
        "{:#?}",
        loaded.diagnostics.items
    );
    let adverts: Vec<u8> = loaded
        .config
        .instances
        .iter()
        .map(|i| InstanceConfig::from_model(i, ip(LOCAL)).down_timer_adverts)
        .collect();
    assert_eq!(adverts, [5, 1]);
    // `-d` writes both back.
    let dumped = keepalived_rs::config::dump::dump(&loaded.config);
    let again = load_str("d.conf", &dumped, &options);
    assert_eq!(again.config.instances, loaded.config.instances, "{dumped}");
    assert_eq!(
        again.config.global.vrrp_down_timer_adverts.value,
        loaded.config.global.vrrp_down_timer_adverts.value
    );

    // keepalived: 1..100.
    for (line, found) in [
        ("vrrp_down_timer_adverts 0", "0"),
        ("vrrp_down_timer_adverts 101", "101"),
    ] {
        let bad = load_str(
            "b.conf",
            &format!("global_defs {{\n {line}\n}}\n"),
            &options,
        );
        let errors: Vec<String> = bad.diagnostics.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            errors,
            [format!("b.conf:2:26: error: 'vrrp_down_timer_adverts': expected an integer 1..100, found '{found}'")]
        );
    }
}

#[test]
fn preempt_delay_runs_again_after_a_fault() {
    let mut cfg = v2(150);
    cfg.preempt_delay = Duration::from_secs(5);
    let mut inst = started_backup(cfg);
    let fault = TrackStatus {
        priority_delta: 0,
        fault: true,
    };
    // Long after the startup delay: fault at 20 s, recovered at 30 s.
    inst.handle_track_change(t(20_000), fault);
    inst.handle_track_change(t(30_000), TrackStatus::default());
    drain(&mut inst);
    assert_eq!(inst.state(), S::Backup);
    // A lower-priority Master within 5 s of the recovery resets the timer
    // (held); after that its adverts are discarded and we preempt.
    assert_eq!(rx!(inst, 34_500, "10.0.0.9", 100), Ok(()));
    assert_eq!(
        inst.poll_timeout(),
        Some(t(34_500) + Duration::from_nanos(3_414_062_500))
    );
    assert_eq!(rx!(inst, 35_500, "10.0.0.9", 100), Ok(()));
    // Not reset by the advert at 35.5 s.
    assert_eq!(
        inst.poll_timeout(),
        Some(t(34_500) + Duration::from_nanos(3_414_062_500))
    );
}

fn advert_with(priority: u8, addresses: &[&str]) -> VrrpRepr {
    VrrpRepr {
        addresses: addresses.iter().map(|a| ip(a)).collect(),
        ..advert(VrrpVersion::V2, priority, 100)
    }
}

#[test]
fn strict_mode_drops_adverts_with_other_addresses_unless_from_the_owner() {
    let mut cfg = v2(100);
    cfg.strict = true;
    cfg.virtual_addresses = vec![ip("10.0.0.100"), ip("10.0.0.101")];
    let mut inst = started_backup(cfg);
    // Same set in another order: accepted, the timer is reset.
    let reordered = advert_with(200, &["10.0.0.101", "10.0.0.100"]);
    assert_eq!(
        inst.handle_advert(t(100), ip("10.0.0.9"), &reordered),
        Ok(())
    );
    let reset = Some(t(100) + Duration::from_nanos(3_609_375_000));
    assert_eq!(inst.poll_timeout(), reset);
    // A missing address, an extra one, another one: dropped, timer untouched.
    for list in [
        &["10.0.0.100"][..],
        &["10.0.0.100", "10.0.0.101", "10.0.0.102"],
        &["10.0.0.100", "10.0.0.199"],
    ] {
        let a = advert_with(200, list);
        assert_eq!(
            inst.handle_advert(t(200), ip("10.0.0.9"), &a),
            Err(Discard::AddressListMismatch),
            "{list:?}"
        );
        assert_eq!(inst.poll_timeout(), reset);
        assert!(!inst.address_list_matches(&a));
    }
    // The address owner and a priority 0 advert are processed whatever they carry.
    let owner = advert_with(255, &["10.0.0.1"]);
    assert_eq!(inst.handle_advert(t(300), ip("10.0.0.9"), &owner), Ok(()));
    assert_eq!(
        inst.poll_timeout(),
        Some(t(300) + Duration::from_nanos(3_609_375_000))
    );
    let stop = advert_with(0, &[]);
    assert_eq!(inst.handle_advert(t(400), ip("10.0.0.9"), &stop), Ok(()));
    assert_eq!(
        inst.poll_timeout(),
        Some(t(400) + Duration::from_nanos(609_375_000))
    );
}

#[test]
fn without_strict_mode_adverts_with_other_addresses_are_processed() {
    let mut inst = started_backup(v2(100));
    let other = advert_with(200, &["10.0.0.199"]);
    assert!(!inst.address_list_matches(&other));
    assert_eq!(inst.handle_advert(t(100), ip("10.0.0.9"), &other), Ok(()));
    assert_eq!(
        inst.poll_timeout(),
        Some(t(100) + Duration::from_nanos(3_609_375_000))
    );
}

#[test]
fn resume_after_reload_keeps_the_state_without_reporting_a_change() {
    // A Master keeps advertising at once and (re)installs its addresses.
    let mut master = Instance::new(v2(100));
    master.handle_resume(t(0), S::Master);
    assert_eq!(master.state(), S::Master);
    expect_actions!(
        master,
        [advert_action(100), Action::AddVips, Action::SendGratuitous]
    );
    assert_eq!(master.poll_timeout(), Some(t(1000)));
    // A Backup waits a whole Master_Down_Interval.
    let mut backup = Instance::new(v2(100));
    backup.handle_resume(t(0), S::Backup);
    assert_eq!(backup.state(), S::Backup);
    expect_actions!(backup, []);
    assert_eq!(
        backup.poll_timeout(),
        Some(t(0) + Duration::from_nanos(3_609_375_000))
    );
    // A tracker fault wins over the previous state.
    let mut faulty = Instance::new(v2(100));
    faulty.handle_track_change(
        t(0),
        TrackStatus {
            priority_delta: 0,
            fault: true,
        },
    );
    faulty.handle_resume(t(0), S::Master);
    assert_eq!(faulty.state(), S::Fault);
    // Out of Fault: a normal startup.
    let mut was_faulty = Instance::new(v2(100));
    was_faulty.handle_resume(t(0), S::Fault);
    expect_actions!(
        was_faulty,
        [
            changed(S::Initialize, S::Backup, Reason::Startup),
            Action::RunNotify(Notify::Backup)
        ]
    );
}
