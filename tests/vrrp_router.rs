//! The multi-instance VRRP core in simulated time: sync groups, tracked
//! interfaces, vrrp_script rise/fall and track_file values, driven from real
//! configuration text through `config::load_str`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use keepalived_rs::config::{self, LoadOptions};
use keepalived_rs::vrrp::{Action, NotifyEvent, Router, RouterAction, State, VrrpRepr};

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn t(ms: u64) -> Instant {
    origin() + Duration::from_millis(ms)
}

fn router(text: &str) -> Router {
    let loaded = config::load_str("test.conf", text, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    Router::new(&loaded.config, |_| IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
}

fn drain(r: &mut Router) -> Vec<RouterAction> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn states(r: &Router) -> Vec<State> {
    r.instances().map(|i| i.state()).collect()
}

/// Run timers until `until`, returning every action.
fn run_until(r: &mut Router, until: Instant) -> Vec<RouterAction> {
    let mut actions = drain(r);
    for _ in 0..10_000 {
        match r.poll_timeout() {
            Some(deadline) if deadline <= until => {
                r.handle_timeout(deadline);
                actions.extend(drain(r));
            }
            _ => break,
        }
    }
    actions
}

fn advert(vrid: u8, priority: u8) -> VrrpRepr {
    VrrpRepr {
        version: keepalived_rs::vrrp::VrrpVersion::V2,
        vrid,
        priority,
        max_advert_int: 100,
        addresses: vec![],
        auth: keepalived_rs::vrrp::Auth::None,
    }
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// The seeds' two-network director: VI_1 on the outside, VI_2 on the inside.
const SYNC_GROUP: &str = r#"
vrrp_sync_group VG_1 {
    group {
        VI_1
        VI_2
    }
    notify_master "/bin/true master"
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress { 192.168.1.100 }
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth1
    virtual_router_id 52
    priority 100
    advert_int 1
    virtual_ipaddress { 10.1.1.100 }
}
"#;

#[test]
fn sync_group_members_become_master_together() {
    let mut r = router(SYNC_GROUP);
    r.handle_startup(t(0));
    assert_eq!(states(&r), [State::Backup, State::Backup]);
    // Keep VI_2 alive from a peer master, let VI_1's master go silent:
    // VI_1 takes over and VI_2 must follow at the same instant.
    let mut now = 0;
    while now < 3000 {
        now += 1000;
        r.handle_advert(t(now), 1, PEER, &advert(52, 150)).unwrap();
        let _ = run_until(&mut r, t(now));
    }
    let actions = run_until(&mut r, t(4000));
    assert_eq!(states(&r), [State::Master, State::Master]);
    let adds: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            RouterAction::Instance {
                index,
                action: Action::AddVips,
            } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(adds, [0, 1]);
    assert!(actions.contains(&RouterAction::GroupNotify {
        group: 0,
        event: NotifyEvent::Master
    }));

    // A higher-priority advert on VI_2 sends the whole group back to Backup.
    r.handle_advert(t(4100), 1, PEER, &advert(52, 200)).unwrap();
    let actions = drain(&mut r);
    assert_eq!(states(&r), [State::Backup, State::Backup]);
    assert!(actions.contains(&RouterAction::Instance {
        index: 0,
        action: Action::DelVips
    }));
    assert!(actions.contains(&RouterAction::GroupNotify {
        group: 0,
        event: NotifyEvent::Backup
    }));
}

#[test]
fn link_down_in_one_member_faults_the_whole_group() {
    let mut r = router(SYNC_GROUP);
    r.handle_startup(t(0));
    let _ = run_until(&mut r, t(5000));
    assert_eq!(states(&r), [State::Master, State::Master]);
    r.handle_link(t(5000), "eth1", false);
    let actions = drain(&mut r);
    assert_eq!(states(&r), [State::Fault, State::Fault]);
    // Both members release their VIPs with a priority-0 advert first.
    for index in [0, 1] {
        assert!(actions.contains(&RouterAction::Instance {
            index,
            action: Action::SendAdvert { priority: 0 }
        }));
        assert!(actions.contains(&RouterAction::Instance {
            index,
            action: Action::DelVips
        }));
    }
    r.handle_link(t(6000), "eth1", true);
    assert_eq!(states(&r), [State::Backup, State::Backup]);
}

const SCRIPTED: &str = r#"
vrrp_script chk_nginx {
    script "killall -0 nginx"
    interval 2
    weight -20
    fall 2
    rise 3
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    track_script { chk_nginx }
    track_interface { eth2 weight 7 }
    virtual_ipaddress { 192.168.1.100 }
}
"#;

#[test]
fn script_weight_applies_after_fall_failures_and_clears_after_rise_successes() {
    let mut r = router(SCRIPTED);
    r.handle_startup(t(0));
    let actions = drain(&mut r);
    assert!(actions.contains(&RouterAction::RunScript { script: 0 }));
    // track_interface eth2 weight 7 counts while the link is up.
    assert_eq!(r.instance(0).effective_priority(), 107);
    // Next run 2 s after the previous start, only once the previous ended.
    r.handle_script_exit(t(100), 0, false);
    assert_eq!(
        r.instance(0).effective_priority(),
        107,
        "one failure < fall 2"
    );
    let actions = run_until(&mut r, t(2000));
    assert!(actions.contains(&RouterAction::RunScript { script: 0 }));
    r.handle_script_exit(t(2100), 0, false);
    assert!(drain(&mut r).contains(&RouterAction::ScriptChanged {
        script: 0,
        ok: false
    }));
    assert_eq!(r.instance(0).effective_priority(), 87);
    for i in 0..3 {
        let start = 4000 + i * 2000;
        let _ = run_until(&mut r, t(start));
        r.handle_script_exit(t(start + 50), 0, true);
        let expected = if i < 2 { 87 } else { 107 };
        assert_eq!(
            r.instance(0).effective_priority(),
            expected,
            "after {} successes",
            i + 1
        );
    }
    r.handle_link(t(11_000), "eth2", false);
    assert_eq!(r.instance(0).effective_priority(), 100);
}

#[test]
fn own_interface_down_is_a_fault_and_weight_zero_script_too() {
    let text = SCRIPTED
        .replace("weight -20", "weight 0")
        .replace("fall 2", "fall 1");
    let mut r = router(&text);
    r.handle_startup(t(0));
    assert_eq!(states(&r), [State::Master]);
    r.handle_script_exit(t(10), 0, false);
    assert_eq!(states(&r), [State::Fault]);
    let mut r = router(SCRIPTED);
    r.handle_startup(t(0));
    r.handle_link(t(5), "eth0", false);
    assert_eq!(states(&r), [State::Fault]);
    r.handle_link(t(6), "eth0", true);
    assert_eq!(states(&r), [State::Backup]);
}

#[test]
fn track_file_value_times_weight() {
    let text = r#"
track_file maint {
    file "/run/maint"
    weight -10
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    track_file { maint }
    virtual_ipaddress { 192.168.1.100 }
}
"#;
    let mut r = router(text);
    r.handle_file_value(t(0), "maint", 0);
    r.handle_startup(t(0));
    assert_eq!(r.instance(0).effective_priority(), 100);
    r.handle_file_value(t(1), "maint", 3);
    assert_eq!(r.instance(0).effective_priority(), 70);
    r.handle_file_value(t(2), "maint", 30);
    assert_eq!(states(&r), [State::Fault], "value x weight <= -254 faults");
}

#[test]
fn shutdown_sends_priority_zero_from_master() {
    let mut r = router(SCRIPTED);
    r.handle_startup(t(0));
    drain(&mut r);
    r.handle_shutdown(t(500));
    let actions = drain(&mut r);
    assert_eq!(
        &actions[..2],
        &[
            RouterAction::Instance {
                index: 0,
                action: Action::SendAdvert { priority: 0 }
            },
            RouterAction::Instance {
                index: 0,
                action: Action::DelVips
            },
        ]
    );
    assert_eq!(r.poll_timeout(), None, "no timer after shutdown");
}

/// Reload: one Master of a sync group leaves the configuration. It stops as
/// at SIGTERM (priority 0, VIPs released, Stop notify); the other member
/// keeps running.
#[test]
fn shutdown_instance_stops_only_that_instance() {
    let mut r = router(SYNC_GROUP);
    r.handle_startup(t(0));
    run_until(&mut r, t(5_000));
    assert_eq!(states(&r), [State::Master, State::Master]);
    r.shutdown_instance(t(5_100), 1);
    let actions = drain(&mut r);
    let of_second: Vec<&Action> = actions
        .iter()
        .filter_map(|a| match a {
            RouterAction::Instance { index: 1, action } => Some(action),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            of_second.as_slice(),
            [
                Action::SendAdvert { priority: 0 },
                Action::DelVips,
                Action::StateChanged {
                    from: State::Master,
                    to: State::Initialize,
                    ..
                },
                ..,
                Action::RunNotify(NotifyEvent::Stop),
            ]
        ),
        "{of_second:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, RouterAction::Instance { index: 0, .. })),
        "the other member is untouched: {actions:?}"
    );
    assert_eq!(states(&r), [State::Master, State::Initialize]);
    // An index past the end is ignored.
    r.shutdown_instance(t(5_200), 7);
    assert!(drain(&mut r).is_empty());
}
