//! Virtual servers from configuration to desired IPVS table, keepalived's
//! live rules (alpha, inhibit_on_failure, quorum, hysteresis, sorry server,
//! ha_suspend), reload, and the manager against an in-memory kernel.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use keepalived_rs::config::{load_str, Config, LoadOptions};
use keepalived_rs::daemon::{ChildError, ChildId, ChildSpec, TimerId, TimerQueue};
use keepalived_rs::ipvs::{
    diff, Backend, Host, Manager, ManagerOptions, Notice, Op, ProtocolId, RsId, State, Table,
    Update, VsId,
};
use keepalived_rs::netlink::ipvs::*;
use keepalived_rs::netlink::Error;

fn config(text: &str) -> Config {
    let loaded = load_str(
        "test.conf",
        text,
        &LoadOptions {
            config_id: "test".into(),
            hostname: "testhost".into(),
        },
    );
    let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    loaded.config
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: IpProtocol::TCP,
        addr: ip(addr),
        port,
    }
}

fn dk(addr: &str, port: u16) -> DestKey {
    DestKey {
        addr: ip(addr),
        port,
    }
}

fn vs_tcp(addr: &str, port: u16) -> VsId {
    VsId::Address {
        addr: ip(addr),
        port,
        protocol: ProtocolId::Tcp,
    }
}

fn rs(vs: &VsId, addr: &str, port: u16) -> RsId {
    RsId {
        vs: vs.clone(),
        addr: ip(addr),
        port,
    }
}

fn notices(state: &mut State) -> Vec<String> {
    std::iter::from_fn(|| state.poll_notice())
        .map(|n| n.to_string())
        .collect()
}

fn weights(table: &Table, key: &ServiceKey) -> Vec<(String, u32)> {
    table
        .get(key)
        .map(|s| {
            s.dests
                .iter()
                .map(|(k, p)| (k.to_string(), p.weight))
                .collect()
        })
        .unwrap_or_default()
}

const DR: &str = r#"
virtual_server 10.0.0.100 80 {
    delay_loop 5
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.2 80 {
        weight 1
        TCP_CHECK { connect_timeout 2 }
    }
    real_server 10.0.0.3 80 {
        weight 2
        TCP_CHECK { connect_timeout 2 }
    }
}
"#;

#[test]
fn dr_round_robin_table() {
    let mut state = State::new(&config(DR), BTreeSet::new());
    // keepalived starts with the quorum down and announces gaining it.
    assert_eq!(
        notices(&mut state),
        vec!["Gained quorum 1+0=1 <= 3 for VS [10.0.0.100]:tcp:80"]
    );
    let table = state.desired();
    assert_eq!(table.len(), 1);
    let service = &table[&tcp("10.0.0.100", 80)];
    assert_eq!(service.params.scheduler, "rr");
    assert_eq!(service.params.flags, 0);
    assert_eq!(service.params.netmask, u32::MAX);
    assert_eq!(
        weights(&table, &tcp("10.0.0.100", 80)),
        vec![("[10.0.0.2]:80".into(), 1), ("[10.0.0.3]:80".into(), 2)]
    );
    assert!(service
        .dests
        .values()
        .all(|d| d.forward == ForwardMethod::DirectRoute));
}

#[test]
fn every_scheduler_and_forwarding_method() {
    for (algo, _) in keepalived_rs::config::model::Scheduler::ALL {
        let text = DR.replace("lb_algo rr", &format!("lb_algo {algo}"));
        let table = State::new(&config(&text), BTreeSet::new()).desired();
        assert_eq!(table[&tcp("10.0.0.100", 80)].params.scheduler, algo);
    }
    let cases = [
        ("NAT", ForwardMethod::Masquerade, Tunnel::default()),
        ("DR", ForwardMethod::DirectRoute, Tunnel::default()),
        ("TUN", ForwardMethod::Tunnel, Tunnel::default()),
        (
            "TUN type gue port 6080 csum",
            ForwardMethod::Tunnel,
            Tunnel {
                kind: IP_VS_CONN_F_TUNNEL_TYPE_GUE,
                port: 6080,
                flags: IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
            },
        ),
        (
            "TUN type gue port 5555 remcsum",
            ForwardMethod::Tunnel,
            Tunnel {
                kind: IP_VS_CONN_F_TUNNEL_TYPE_GUE,
                port: 5555,
                flags: IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
            },
        ),
        (
            "TUN type gre nocsum",
            ForwardMethod::Tunnel,
            Tunnel {
                kind: IP_VS_CONN_F_TUNNEL_TYPE_GRE,
                port: 0,
                flags: IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
            },
        ),
    ];
    for (kind, forward, tunnel) in cases {
        let text = DR.replace("lb_kind DR", &format!("lb_kind {kind}"));
        let table = State::new(&config(&text), BTreeSet::new()).desired();
        for params in table[&tcp("10.0.0.100", 80)].dests.values() {
            assert_eq!(params.forward, forward, "{kind}");
            assert_eq!(params.tunnel, tunnel, "{kind}");
        }
    }
}

#[test]
fn persistence_flags_protocols_and_ipv6() {
    let text = r#"
virtual_server 10.0.0.100 0 {
    lb_algo sh
    sh-port
    sh-fallback
    lb_kind DR
    protocol TCP
    persistence_timeout 600
    persistence_granularity 255.255.255.0
    real_server 10.0.0.2 { weight 1 }
}
virtual_server 10.0.0.100 5060 {
    lb_algo mh
    mh-port
    protocol UDP
    ops
    persistence_timeout
    persistence_engine sip
    real_server 10.0.0.2 5060 { weight 1 }
}
virtual_server 10.0.0.100 9 {
    lb_algo wlc
    sh-port
    protocol SCTP
    real_server 10.0.0.2 9 { weight 1 }
}
virtual_server 2001:db8::100 443 {
    lb_algo wrr
    protocol TCP
    real_server 2001:db8::2 443 { weight 3 }
}
"#;
    let table = State::new(&config(text), BTreeSet::new()).desired();
    let sh = &table[&tcp("10.0.0.100", 0)].params;
    assert_eq!(
        sh.flags,
        IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED_SH_PORT | IP_VS_SVC_F_SCHED_SH_FALLBACK
    );
    assert_eq!((sh.timeout, sh.netmask), (600, 0xffff_ff00));
    assert_eq!(
        weights(&table, &tcp("10.0.0.100", 0)),
        vec![("[10.0.0.2]:0".into(), 1)]
    );
    let udp = ServiceKey::Addr {
        protocol: IpProtocol::UDP,
        addr: ip("10.0.0.100"),
        port: 5060,
    };
    let mh = &table[&udp].params;
    assert_eq!(
        mh.flags,
        IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_ONEPACKET | IP_VS_SVC_F_SCHED_SH_PORT
    );
    assert_eq!(mh.timeout, 360, "keyword alone means 360 s");
    assert_eq!(mh.pe_name.as_deref(), Some("sip"));
    let sctp = ServiceKey::Addr {
        protocol: IpProtocol(132),
        addr: ip("10.0.0.100"),
        port: 9,
    };
    assert_eq!(table[&sctp].params.flags, 0, "sh-port means nothing to wlc");
    let v6 = &table[&tcp("2001:db8::100", 443)];
    assert_eq!(v6.params.netmask, 128);
    assert_eq!(
        weights(&table, &tcp("2001:db8::100", 443)),
        vec![("[2001:db8::2]:443".into(), 3)]
    );
}

#[test]
fn scheduler_flags_1_2_3_set_their_bits_whatever_the_scheduler() {
    let text = r#"
virtual_server 10.0.0.100 80 {
    lb_algo rr
    flag-1
    flag-2
    flag-3
    protocol TCP
    real_server 10.0.0.2 80 { weight 1 }
}
virtual_server 10.0.0.100 81 {
    lb_algo sh
    flag-3
    sh-port
    protocol TCP
    real_server 10.0.0.2 81 { weight 1 }
}
virtual_server 10.0.0.100 82 {
    lb_algo wlc
    flag-2
    protocol TCP
    real_server 10.0.0.2 82 { weight 1 }
}
"#;
    let loaded = config(text);
    let table = State::new(&loaded, BTreeSet::new()).desired();
    assert_eq!(
        table[&tcp("10.0.0.100", 80)].params.flags,
        IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2 | IP_VS_SVC_F_SCHED3
    );
    // sh-port is SCHED2 in the kernel: both spellings meet in one bit.
    assert_eq!(
        table[&tcp("10.0.0.100", 81)].params.flags,
        IP_VS_SVC_F_SCHED_SH_PORT | IP_VS_SVC_F_SCHED3
    );
    assert_eq!(
        table[&tcp("10.0.0.100", 82)].params.flags,
        IP_VS_SVC_F_SCHED2
    );
    // `-d` writes them back.
    let dumped = keepalived_rs::config::dump::dump(&loaded);
    let again = config(&dumped);
    assert_eq!(
        again.virtual_servers[0].flags,
        loaded.virtual_servers[0].flags
    );
    assert!(dumped.contains("flag-1"), "{dumped}");
}

/// keepalived.conf(5): `AAA.BBB.CCC.DDD-EEE.FFF.GGG.HHH eg
/// 192.168.200.250-192.168.201.10`, and the IPv6 equivalent.
#[test]
fn group_ranges_with_full_addresses_on_both_sides() {
    let text = r#"
virtual_server_group WIDE {
    192.168.200.250-192.168.201.10 80
    2001:db8::fffe-2001:db8::1:1 443
    10.0.0.7-10.0.0.7 8080
}
virtual_server group WIDE {
    lb_algo rr
    lb_kind TUN
    protocol TCP
    real_server 10.0.0.2 { weight 1 }
}
"#;
    let loaded = config(text);
    let table = State::new(&loaded, BTreeSet::new()).desired();
    let keys: Vec<String> = table.keys().map(|k| k.to_string()).collect();
    let mut expected: Vec<String> = (250..=255)
        .map(|h| format!("[192.168.200.{h}]:tcp:80"))
        .chain((0..=10).map(|h| format!("[192.168.201.{h}]:tcp:80")))
        .collect();
    expected.push("[10.0.0.7]:tcp:8080".into());
    for a in [
        "2001:db8::fffe",
        "2001:db8::ffff",
        "2001:db8::1:0",
        "2001:db8::1:1",
    ] {
        expected.push(format!("[{a}]:tcp:443"));
    }
    let (mut keys, mut expected) = (keys, expected);
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected);
    // `-d` writes the ranges back as they read.
    let again = config(&keepalived_rs::config::dump::dump(&loaded));
    assert_eq!(again.vs_groups, loaded.vs_groups);
}

/// keepalived runs any size of group entry, so a huge one loads (with a
/// warning) and the table is cut at MAX_GROUP_ENTRY_ADDRESSES per entry,
/// even for all 2^128 addresses of `::/0`.
#[test]
fn oversized_group_entries_are_cut_not_refused() {
    let text = r#"
virtual_server_group HUGE {
    10.1.0.0/16 80
    ::/0 443
}
virtual_server group HUGE {
    lb_algo rr
    lb_kind TUN
    protocol TCP
    real_server 10.0.0.2 { weight 1 }
}
"#;
    let mut state = State::new(&config(text), BTreeSet::new());
    let table = state.desired();
    let v4 = table
        .keys()
        .filter(|k| k.to_string().ends_with(":80"))
        .count();
    let v6 = table
        .keys()
        .filter(|k| k.to_string().ends_with(":443"))
        .count();
    assert_eq!((v4, v6), (4096, 4096));
    let cut: Vec<String> = notices(&mut state)
        .into_iter()
        .filter(|n| n.contains("using the first 4096"))
        .collect();
    assert_eq!(cut.len(), 2, "{cut:?}");
}

#[test]
fn fwmark_and_groups() {
    let text = r#"
virtual_server_group WEB {
    10.0.0.100 80
    10.0.0.200-202 8080
    10.0.1.0/30 443
    fwmark 7
    fwmark 8 inet6
}
virtual_server group WEB {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.2 { weight 1 }
}
virtual_server fwmark 1 {
    lb_algo rr
    lb_kind DR
    real_server 2001:db8::2 { weight 1 }
}
"#;
    let table = State::new(&config(text), BTreeSet::new()).desired();
    let keys: Vec<String> = table.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        keys,
        vec![
            "[10.0.0.100]:tcp:80",
            "[10.0.0.200]:tcp:8080",
            "[10.0.0.201]:tcp:8080",
            "[10.0.0.202]:tcp:8080",
            "[10.0.1.0]:tcp:443",
            "[10.0.1.1]:tcp:443",
            "[10.0.1.2]:tcp:443",
            "[10.0.1.3]:tcp:443",
            // Ordered by family, then mark.
            "FWM 7",
            "FWM 1",
            "FWM 8",
        ]
    );
    // Real servers without a port use each service's port (0 for fwmarks).
    assert_eq!(
        weights(&table, &tcp("10.0.0.201", 8080)),
        vec![("[10.0.0.2]:8080".into(), 1)]
    );
    let fw8 = ServiceKey::Fwmark {
        family: Family::Inet6,
        mark: 8,
    };
    assert!(table.contains_key(&fw8));
    // A fwmark service takes its family from the real servers.
    let fw1 = ServiceKey::Fwmark {
        family: Family::Inet6,
        mark: 1,
    };
    assert_eq!(table[&fw1].params.netmask, 128);
    assert_eq!(weights(&table, &fw1), vec![("[2001:db8::2]:0".into(), 1)]);
}

/// keepalived 2.2.7 corrects the ports of real servers that DR or TUN
/// forward (and warns): a fwmark service's get port 0 ("has port
/// specified, clearing"), an address service's get the service's port
/// ("ports don't match, resetting"); NAT keeps the configured port, also
/// for fwmark.
/// The table follows (tests/ipvs_vm.rs `tables_match_keepalived` compares
/// with keepalived's own table in the VM).
#[test]
fn real_server_ports_follow_keepalived() {
    let text = r#"
virtual_server fwmark 5 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 { weight 1 }
}
virtual_server fwmark 6 {
    lb_algo rr
    lb_kind NAT
    real_server 10.0.0.11 8080 { weight 1 }
    real_server 10.0.0.12 { weight 1 }
}
virtual_server 10.0.0.100 90 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 { weight 1 }
    real_server 10.0.0.12 8080 {
        weight 1
        lvs_method NAT
    }
    real_server 10.0.0.13 8080 {
        weight 1
        lvs_method TUN
    }
}
"#;
    let table = State::new(&config(text), BTreeSet::new()).desired();
    let fwmark = |mark| ServiceKey::Fwmark {
        family: Family::Inet,
        mark,
    };
    assert_eq!(
        weights(&table, &fwmark(5)),
        vec![("[10.0.0.11]:0".into(), 1)]
    );
    assert_eq!(
        weights(&table, &fwmark(6)),
        vec![("[10.0.0.11]:8080".into(), 1), ("[10.0.0.12]:0".into(), 1)]
    );
    assert_eq!(
        weights(&table, &tcp("10.0.0.100", 90)),
        vec![
            ("[10.0.0.11]:90".into(), 1),
            ("[10.0.0.12]:8080".into(), 1),
            ("[10.0.0.13]:90".into(), 1)
        ]
    );

    // In a group, each service gives DR its own port (0 for a fwmark).
    let group = r#"
virtual_server_group G {
    10.0.0.100 80
    fwmark 7
}
virtual_server group G {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 8080 { weight 1 }
    real_server 10.0.0.12 9090 {
        weight 1
        lvs_method NAT
    }
}
"#;
    let table = State::new(&config(group), BTreeSet::new()).desired();
    assert_eq!(
        weights(&table, &tcp("10.0.0.100", 80)),
        vec![("[10.0.0.11]:80".into(), 1), ("[10.0.0.12]:9090".into(), 1)]
    );
    assert_eq!(
        weights(&table, &fwmark(7)),
        vec![("[10.0.0.11]:0".into(), 1), ("[10.0.0.12]:9090".into(), 1)]
    );
}

#[test]
fn alpha_and_checker_verdicts() {
    let text = DR.replace("protocol TCP", "protocol TCP\n    alpha");
    let mut state = State::new(&config(&text), BTreeSet::new());
    let key = tcp("10.0.0.100", 80);
    assert_eq!(weights(&state.desired(), &key), vec![], "alpha: all down");
    let vs = vs_tcp("10.0.0.100", 80);
    let _ = notices(&mut state);
    assert_eq!(
        state.set_alive(&rs(&vs, "10.0.0.3", 80), true),
        Update::Changed
    );
    assert_eq!(
        state.set_alive(&rs(&vs, "10.0.0.3", 80), true),
        Update::Unchanged,
        "a repeated verdict changes nothing"
    );
    assert_eq!(
        weights(&state.desired(), &key),
        vec![("[10.0.0.3]:80".into(), 2)]
    );
    assert_eq!(
        notices(&mut state),
        vec![
            "Adding service [10.0.0.3]:tcp:80 to VS [10.0.0.100]:tcp:80",
            "Gained quorum 1+0=1 <= 2 for VS [10.0.0.100]:tcp:80",
        ]
    );
    assert_eq!(
        state.set_alive(&rs(&vs, "10.0.0.3", 80), false),
        Update::Changed
    );
    assert_eq!(
        notices(&mut state),
        vec![
            "Removing service [10.0.0.3]:tcp:80 from VS [10.0.0.100]:tcp:80",
            "Lost quorum 1-0=1 > 0 for VS [10.0.0.100]:tcp:80",
        ]
    );
    assert_eq!(
        state.set_alive(&rs(&vs, "10.9.9.9", 80), true),
        Update::Unknown
    );
}

#[test]
fn inhibit_on_failure_keeps_weight_zero() {
    let text = DR.replace("protocol TCP", "protocol TCP\n    inhibit_on_failure");
    let mut state = State::new(&config(&text), BTreeSet::new());
    let _ = notices(&mut state);
    let vs = vs_tcp("10.0.0.100", 80);
    state.set_alive(&rs(&vs, "10.0.0.2", 80), false);
    assert_eq!(
        weights(&state.desired(), &tcp("10.0.0.100", 80)),
        vec![("[10.0.0.2]:80".into(), 0), ("[10.0.0.3]:80".into(), 2)]
    );
    assert_eq!(
        notices(&mut state),
        vec!["Disabling service [10.0.0.2]:tcp:80 of VS [10.0.0.100]:tcp:80"]
    );
    state.set_alive(&rs(&vs, "10.0.0.2", 80), true);
    assert_eq!(
        notices(&mut state),
        vec!["Enabling service [10.0.0.2]:tcp:80 of VS [10.0.0.100]:tcp:80"]
    );
}

const SORRY: &str = r#"
virtual_server 10.0.0.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    hysteresis 1
    quorum_up "/bin/true up"
    quorum_down "/bin/true down"
    sorry_server 10.0.0.50 8080
    real_server 10.0.0.2 80 {
        weight 1
        TCP_CHECK { connect_timeout 2 }
    }
    real_server 10.0.0.3 80 {
        weight 2
        TCP_CHECK { connect_timeout 2 }
    }
}
"#;

#[test]
fn quorum_hysteresis_and_sorry_server() {
    let mut state = State::new(&config(SORRY), BTreeSet::new());
    let key = tcp("10.0.0.100", 80);
    let vs = vs_tcp("10.0.0.100", 80);
    let (rs2, rs3) = (rs(&vs, "10.0.0.2", 80), rs(&vs, "10.0.0.3", 80));
    // Weight 3, quorum 2, hysteresis 1: lost below 1, gained at 3.
    state.set_alive(&rs3, false);
    assert_eq!(state.quorum_up(&vs), Some(true), "1 is not below 2-1");
    let _ = notices(&mut state);
    state.set_alive(&rs2, false);
    assert_eq!(state.quorum_up(&vs), Some(false));
    assert_eq!(
        weights(&state.desired(), &key),
        vec![("[10.0.0.50]:8080".into(), 1)]
    );
    let n: Vec<Notice> = std::iter::from_fn(|| state.poll_notice()).collect();
    let text: Vec<String> = n.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        text,
        vec![
            "Removing service [10.0.0.2]:tcp:80 from VS [10.0.0.100]:tcp:80",
            "Lost quorum 2-1=1 > 0 for VS [10.0.0.100]:tcp:80",
            "Adding sorry server [10.0.0.50]:tcp:8080 to VS [10.0.0.100]:tcp:80",
            "Removing alive servers from the pool for VS [10.0.0.100]:tcp:80",
            "Executing [/bin/true down] for VS [10.0.0.100]:tcp:80 (quorum down)",
        ]
    );
    // Weight 2 is not enough to regain (needs 3); the sorry server stays.
    state.set_alive(&rs3, true);
    assert_eq!(state.quorum_up(&vs), Some(false));
    assert_eq!(notices(&mut state), Vec::<String>::new());
    state.set_alive(&rs2, true);
    assert_eq!(
        notices(&mut state),
        vec![
            "Gained quorum 2+1=3 <= 3 for VS [10.0.0.100]:tcp:80",
            "Removing sorry server [10.0.0.50]:tcp:8080 from VS [10.0.0.100]:tcp:80",
            "Adding alive servers to the pool for VS [10.0.0.100]:tcp:80",
            "Executing [/bin/true up] for VS [10.0.0.100]:tcp:80 (quorum up)",
        ]
    );
    assert_eq!(
        weights(&state.desired(), &key),
        vec![("[10.0.0.2]:80".into(), 1), ("[10.0.0.3]:80".into(), 2)]
    );
}

#[test]
fn sorry_server_inhibit_and_alpha_start() {
    let text = SORRY
        .replace(
            "sorry_server 10.0.0.50 8080",
            "sorry_server 10.0.0.50 8080\n    sorry_server_inhibit",
        )
        .replace("quorum 2\n    hysteresis 1", "alpha");
    let mut state = State::new(&config(&text), BTreeSet::new());
    let key = tcp("10.0.0.100", 80);
    // alpha: nothing alive at start, so the sorry server serves.
    assert_eq!(
        weights(&state.desired(), &key),
        vec![("[10.0.0.50]:8080".into(), 1)]
    );
    // keepalived 2.2.7 says so at start (seen in the VM).
    assert_eq!(
        notices(&mut state),
        vec![
            "Starting with quorum down 1-0=1 > 0 for VS [10.0.0.100]:tcp:80",
            "Enabling sorry server [10.0.0.50]:tcp:8080 to VS [10.0.0.100]:tcp:80",
            "Removing alive servers from the pool for VS [10.0.0.100]:tcp:80",
        ]
    );
    let vs = vs_tcp("10.0.0.100", 80);
    state.set_alive(&rs(&vs, "10.0.0.2", 80), true);
    // keepalived 2.2.7: an inhibited sorry server is disabled, not removed.
    assert_eq!(
        notices(&mut state),
        vec![
            "Gained quorum 1+0=1 <= 1 for VS [10.0.0.100]:tcp:80",
            "Disabling sorry server [10.0.0.50]:tcp:8080 from VS [10.0.0.100]:tcp:80",
            "Adding alive servers to the pool for VS [10.0.0.100]:tcp:80",
            "Executing [/bin/true up] for VS [10.0.0.100]:tcp:80 (quorum up)",
        ]
    );
    // Unused, the inhibited sorry server stays with weight 0.
    assert_eq!(
        weights(&state.desired(), &key),
        vec![("[10.0.0.2]:80".into(), 1), ("[10.0.0.50]:8080".into(), 0)]
    );
}

#[test]
fn ha_suspend_follows_the_vip() {
    let text = DR.replace("protocol TCP", "protocol TCP\n    ha_suspend");
    let mut state = State::new(&config(&text), BTreeSet::new());
    let vs = vs_tcp("10.0.0.100", 80);
    assert!(state.desired().is_empty());
    assert!(state.is_suspended(&vs));
    state.set_vip(ip("10.0.0.100"), true);
    assert_eq!(state.desired().len(), 1);
    assert!(!state.is_suspended(&vs));
    state.set_vip(ip("10.0.0.100"), false);
    assert!(state.desired().is_empty());
    let started = State::new(&config(&text), BTreeSet::from([ip("10.0.0.100")]));
    assert_eq!(started.desired().len(), 1, "VIP already here at start");
}

#[test]
fn reload_keeps_live_state_and_changes_one_weight() {
    let mut state = State::new(&config(DR), BTreeSet::new());
    let vs = vs_tcp("10.0.0.100", 80);
    state.set_alive(&rs(&vs, "10.0.0.2", 80), false);
    let before = state.desired();
    let text = DR.replacen("weight 2", "weight 5", 1);
    state.reload(&config(&text));
    assert_eq!(state.is_alive(&rs(&vs, "10.0.0.2", 80)), Some(false));
    let ops = diff(&state.desired(), &before, &BTreeSet::new());
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(
        matches!(&ops[0], Op::UpdateDest(_, d) if d.key == dk("10.0.0.3", 80) && d.params.weight == 5)
    );
}

// ===== the manager against an in-memory kernel =====

#[derive(Default)]
struct FakeKernel {
    table: Table,
    commands: Vec<u8>,
    /// errno for the next non-dump request.
    fail_next: Option<i32>,
}

struct FakeBackend(Rc<RefCell<FakeKernel>>);

impl Backend for FakeBackend {
    fn info(&mut self) -> Result<Info, Error> {
        Ok(Info {
            version: 0x010201,
            conn_tab_size: 4096,
        })
    }
    fn table(&mut self) -> Result<Table, Error> {
        Ok(self.0.borrow().table.clone())
    }
    fn execute(&mut self, request: &Request<'_>) -> Result<(), Error> {
        let mut kernel = self.0.borrow_mut();
        kernel.commands.push(request.cmd());
        if let Some(errno) = kernel.fail_next.take() {
            return Err(Error::Kernel {
                what: request.what(),
                errno,
                message: None,
            });
        }
        let op = match *request {
            Request::NewService(s) => Op::AddService(s.clone()),
            Request::SetService(s) => Op::UpdateService(s.clone()),
            Request::DelService(s) => Op::DelService(s.clone()),
            Request::NewDest(s, d) => Op::AddDest(s.clone(), d.clone()),
            Request::SetDest(s, d) => Op::UpdateDest(s.clone(), d.clone()),
            Request::DelDest(s, d) => Op::DelDest(s.clone(), d.clone()),
            Request::Flush => {
                kernel.table.clear();
                return Ok(());
            }
            _ => return Ok(()),
        };
        if op.apply_to(&mut kernel.table) {
            Ok(())
        } else {
            Err(Error::Kernel {
                what: request.what(),
                errno: libc::EEXIST,
                message: None,
            })
        }
    }
}

#[derive(Default)]
struct FakeHost {
    timers: TimerQueue<u64>,
    spawned: Vec<Vec<String>>,
}

impl Host for FakeHost {
    fn add_timer(&mut self, deadline: Instant, key: u64) -> TimerId {
        self.timers.insert(deadline, key)
    }
    fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }
    fn spawn(&mut self, spec: ChildSpec<u64>) -> Result<ChildId, ChildError> {
        self.spawned.push(spec.argv);
        Err(ChildError::EmptyCommand)
    }
}

fn manager(text: &str, options: ManagerOptions) -> (Manager, Rc<RefCell<FakeKernel>>) {
    let kernel = Rc::new(RefCell::new(FakeKernel::default()));
    let manager = Manager::with_backend(
        &config(text),
        options,
        Box::new(FakeBackend(kernel.clone())),
    );
    (manager, kernel)
}

fn foreign_service() -> (ServiceKey, keepalived_rs::ipvs::TableService) {
    (
        tcp("192.0.2.1", 22),
        keepalived_rs::ipvs::TableService {
            params: ServiceParams::new("wlc", Family::Inet),
            dests: Default::default(),
        },
    )
}

#[test]
fn manager_adopts_at_start_and_releases_at_stop() {
    let (mut m, kernel) = manager(DR, ManagerOptions::default());
    let mut host = FakeHost::default();
    let now = Instant::now();
    // The kernel already has our service with one right and one stale
    // destination, plus a service of another tool.
    let desired = State::new(&config(DR), BTreeSet::new()).desired();
    {
        let mut k = kernel.borrow_mut();
        k.table = desired.clone();
        let ours = k.table.get_mut(&tcp("10.0.0.100", 80)).unwrap();
        ours.dests.remove(&dk("10.0.0.3", 80));
        ours.dests
            .insert(dk("10.0.0.9", 80), ours.dests[&dk("10.0.0.2", 80)]);
        let (key, svc) = foreign_service();
        k.table.insert(key, svc);
    }
    m.start(&mut host, now);
    let k = kernel.borrow();
    assert_eq!(
        k.commands,
        vec![IPVS_CMD_NEW_DEST, IPVS_CMD_DEL_DEST],
        "adopted, not flushed or re-added"
    );
    assert_eq!(
        k.table[&tcp("10.0.0.100", 80)],
        desired[&tcp("10.0.0.100", 80)]
    );
    drop(k);
    assert!(m.shutdown(&mut host, now));
    let k = kernel.borrow();
    assert_eq!(k.table.len(), 1, "only the foreign service is left");
    assert!(k.table.contains_key(&foreign_service().0));
}

#[test]
fn manager_dont_release_leaves_the_table() {
    let (mut m, kernel) = manager(
        DR,
        ManagerOptions {
            release_on_stop: false,
        },
    );
    let mut host = FakeHost::default();
    m.start(&mut host, Instant::now());
    assert!(m.shutdown(&mut host, Instant::now()));
    assert_eq!(kernel.borrow().table.len(), 1);
}

#[test]
fn manager_reload_touches_only_the_changed_weight() {
    let (mut m, kernel) = manager(DR, ManagerOptions::default());
    let mut host = FakeHost::default();
    let now = Instant::now();
    m.start(&mut host, now);
    kernel.borrow_mut().commands.clear();
    m.reload(
        &mut host,
        &config(&DR.replacen("weight 2", "weight 5", 1)),
        now,
    );
    assert_eq!(kernel.borrow().commands, vec![IPVS_CMD_SET_DEST]);
    // A removed virtual server is deleted at reload.
    kernel.borrow_mut().commands.clear();
    m.reload(&mut host, &config("global_defs { router_id x }"), now);
    assert_eq!(kernel.borrow().commands, vec![IPVS_CMD_DEL_SERVICE]);
    assert!(kernel.borrow().table.is_empty());
}

#[test]
fn manager_follows_verdicts_and_recovers_from_errors() {
    let (mut m, kernel) = manager(SORRY, ManagerOptions::default());
    let mut host = FakeHost::default();
    let now = Instant::now();
    m.start(&mut host, now);
    let vs = vs_tcp("10.0.0.100", 80);
    let key = tcp("10.0.0.100", 80);
    m.set_real_server_alive(&mut host, &rs(&vs, "10.0.0.2", 80), false, now);
    m.set_real_server_alive(&mut host, &rs(&vs, "10.0.0.3", 80), false, now);
    assert_eq!(
        weights(&kernel.borrow().table, &key),
        vec![("[10.0.0.50]:8080".into(), 1)]
    );
    // quorum_up ran at start (quorum gained), quorum_down now.
    assert_eq!(
        host.spawned,
        vec![
            vec!["/bin/true".to_string(), "up".into()],
            vec!["/bin/true".to_string(), "down".into()]
        ]
    );
    // The kernel refuses a command: the manager resyncs later.
    kernel.borrow_mut().fail_next = Some(libc::ENOMEM);
    m.set_real_server_alive(&mut host, &rs(&vs, "10.0.0.2", 80), true, now);
    m.set_real_server_alive(&mut host, &rs(&vs, "10.0.0.3", 80), true, now);
    let (deadline, timer_key) = {
        let (id, key) = host
            .timers
            .pop_expired(now + std::time::Duration::from_secs(60))
            .expect("resync armed");
        (id.deadline(), key)
    };
    assert!(m.owns_key(timer_key));
    m.handle_timer(&mut host, timer_key, deadline);
    assert_eq!(
        weights(&kernel.borrow().table, &key),
        vec![("[10.0.0.2]:80".into(), 1), ("[10.0.0.3]:80".into(), 2)]
    );
}

#[test]
fn manager_ha_suspend() {
    let text = DR.replace("protocol TCP", "protocol TCP\n    ha_suspend");
    let (mut m, kernel) = manager(&text, ManagerOptions::default());
    let mut host = FakeHost::default();
    let now = Instant::now();
    m.start(&mut host, now);
    assert!(kernel.borrow().table.is_empty());
    m.set_vip_master(&mut host, ip("10.0.0.100"), true, now);
    assert_eq!(kernel.borrow().table.len(), 1);
    m.set_vip_master(&mut host, ip("10.0.0.100"), false, now);
    assert!(kernel.borrow().table.is_empty());
}

#[test]
fn manager_global_settings_and_sync_daemon() {
    let text = format!(
        r#"
global_defs {{
    lvs_flush
    lvs_timeouts tcp 900 tcpfin 120 udp 300
    lvs_sync_daemon eth0 VI_1
}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {{ 10.0.0.100 }}
}}
{DR}"#
    );
    let (mut m, kernel) = manager(&text, ManagerOptions::default());
    let mut host = FakeHost::default();
    let now = Instant::now();
    m.start(&mut host, now);
    let commands = kernel.borrow().commands.clone();
    assert_eq!(
        &commands[..3],
        &[IPVS_CMD_FLUSH, IPVS_CMD_SET_CONFIG, IPVS_CMD_NEW_DAEMON]
    );
    kernel.borrow_mut().commands.clear();
    m.set_vrrp_instance_master("VI_1", true);
    m.set_vrrp_instance_master("VI_1", true);
    m.set_vrrp_instance_master("VI_2", false);
    assert_eq!(
        kernel.borrow().commands,
        vec![IPVS_CMD_DEL_DAEMON, IPVS_CMD_NEW_DAEMON],
        "backup -> master once; other instances do not matter"
    );
    kernel.borrow_mut().commands.clear();
    assert!(m.shutdown(&mut host, now));
    let commands = kernel.borrow().commands.clone();
    assert_eq!(commands.last(), Some(&IPVS_CMD_DEL_DAEMON));
}

#[test]
fn manager_without_ipvs_retries_quietly() {
    let kernel = Rc::new(RefCell::new(FakeKernel::default()));
    let shared = kernel.clone();
    let mut attempts = 0;
    let opener: keepalived_rs::ipvs::manager::Opener = Box::new(move || {
        attempts += 1;
        if attempts < 3 {
            Err(Error::Kernel {
                what: "resolve generic netlink family",
                errno: libc::ENOENT,
                message: None,
            })
        } else {
            Ok(Box::new(FakeBackend(shared.clone())) as Box<dyn Backend>)
        }
    });
    let mut m = Manager::with_opener(&config(DR), ManagerOptions::default(), opener);
    let mut host = FakeHost::default();
    let mut now = Instant::now();
    m.start(&mut host, now);
    assert!(kernel.borrow().table.is_empty());
    // Two failed attempts, then the table is programmed.
    for _ in 0..2 {
        let (id, key) = host
            .timers
            .pop_expired(now + std::time::Duration::from_secs(60))
            .expect("retry armed");
        now = id.deadline();
        m.handle_timer(&mut host, key, now);
    }
    assert_eq!(kernel.borrow().table.len(), 1);
}

/// Checker engines repeat verdicts (at start, at reload): a verdict that
/// changes nothing sends nothing.
#[test]
fn manager_ignores_repeated_verdicts() {
    let (mut m, kernel) = manager(DR, ManagerOptions::default());
    let mut host = FakeHost::default();
    let now = Instant::now();
    m.start(&mut host, now);
    kernel.borrow_mut().commands.clear();
    let vs = vs_tcp("10.0.0.100", 80);
    for _ in 0..3 {
        m.set_real_server_alive(&mut host, &rs(&vs, "10.0.0.2", 80), true, now);
        m.set_real_server_weight(&mut host, &rs(&vs, "10.0.0.3", 80), 2, now);
    }
    assert_eq!(kernel.borrow().commands, Vec::<u8>::new());
    m.set_real_server_weight(&mut host, &rs(&vs, "10.0.0.3", 80), 4, now);
    assert_eq!(kernel.borrow().commands, vec![IPVS_CMD_SET_DEST]);
}
