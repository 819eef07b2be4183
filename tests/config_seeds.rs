//! The real-world configurations from the seed posts: each parses with zero
//! errors, means what its author meant, and survives a `-d` round trip.

use keepalived_rs::config::model::*;
use keepalived_rs::config::{dump::dump, load_file, load_str, Config, LoadOptions, Loaded};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seeds")
}

fn options() -> LoadOptions {
    LoadOptions {
        config_id: "test".into(),
        hostname: "testhost".into(),
    }
}

fn load(name: &str) -> Loaded {
    let loaded = load_file(&seeds_dir().join(name), &options()).expect("seed readable");
    let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}");
    loaded
}

fn warnings(l: &Loaded) -> Vec<String> {
    l.diagnostics.warnings().map(|d| d.to_string()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn vips(i: &VrrpInstance) -> Vec<IpAddr> {
    i.virtual_ipaddress.iter().map(|a| a.addr.value).collect()
}

fn instance<'c>(c: &'c Config, name: &str) -> &'c VrrpInstance {
    c.instances
        .iter()
        .find(|i| i.name.value == name)
        .unwrap_or_else(|| panic!("no instance {name}"))
}

fn seed_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seeds_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_parses_without_errors_and_round_trips_through_dump() {
    let files = seed_files();
    assert!(files.len() >= 25, "seed configs missing: {}", files.len());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let loaded = load(&name);
        let text = dump(&loaded.config);
        let again = load_str("dump.conf", &text, &options());
        let errors: Vec<String> = again.diagnostics.errors().map(|d| d.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{name} dump re-parse: {errors:#?}\n{text}"
        );
        assert!(
            again.diagnostics.warnings().next().is_none(),
            "{name}: the dump must be warning-free: {:#?}",
            warnings(&again)
        );
        assert_eq!(
            loaded.config, again.config,
            "{name}: dump changed the model\n{text}"
        );
    }
}

#[test]
fn seed_000_tcp_check() {
    let l = load("000_tcp_check.conf");
    let c = &l.config;
    assert_eq!(c.global.router_id.value, "LVS_DEVEL");
    assert_eq!(
        c.global
            .notification_email
            .iter()
            .map(|e| e.value.as_str())
            .collect::<Vec<_>>(),
        ["acassen@test.com", "failover@test.com", "sysadmin@test.com"]
    );
    assert_eq!(
        c.global.notification_email_from.as_ref().unwrap().value,
        "Alexandre.Cassen@test.com"
    );
    let smtp = &c.global.smtp_server.as_ref().unwrap().value;
    assert_eq!((smtp.host.as_str(), smtp.port), ("192.168.200.1", 25));
    assert_eq!(c.global.smtp_connect_timeout.value, secs(30));

    let vi = instance(c, "VI_1");
    assert_eq!(vi.state.value, InitialState::Master);
    assert_eq!(vi.interface.as_ref().unwrap().value, "ens33");
    assert_eq!(vi.virtual_router_id.value, 55);
    assert_eq!(vi.priority.value, 100);
    assert_eq!(vi.advert_int.value, secs(1));
    assert_eq!(vi.version.value, 2);
    let auth = vi.authentication.as_ref().unwrap();
    assert_eq!(
        (auth.auth_type.value, auth.auth_pass.value.as_str()),
        (AuthType::Pass, "1111")
    );
    assert_eq!(vips(vi), [ip("192.168.230.100")]);
    assert_eq!(vi.virtual_ipaddress[0].prefix_len, 32);

    assert_eq!(c.virtual_servers.len(), 1);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.key,
        VsKey::Address {
            addr: keepalived_rs::config::Spanned::default_value(ip("192.168.230.100")),
            port: keepalived_rs::config::Spanned::default_value(80)
        }
    );
    assert_eq!(vs.delay_loop.value, secs(6));
    assert_eq!(vs.lb_algo.value, Scheduler::Rr);
    assert_eq!(vs.lb_kind.value, ForwardMethod::Dr);
    assert_eq!(vs.protocol.value, Protocol::Tcp);
    assert!(
        vs.persistence_timeout.is_none(),
        "persistence_timeout is commented out"
    );
    let rs: Vec<(IpAddr, u16, u32)> = vs
        .real_servers
        .iter()
        .map(|r| (r.addr.value, r.port.as_ref().unwrap().value, r.weight.value))
        .collect();
    assert_eq!(
        rs,
        [(ip("192.168.230.12"), 80, 1), (ip("192.168.230.13"), 80, 1)]
    );
    for r in &vs.real_servers {
        let ch = &r.checkers[0];
        assert_eq!(ch.kind, CheckerKind::Tcp);
        assert_eq!(ch.target.connect_port.as_ref().unwrap().value, 80);
        assert_eq!(ch.timing.connect_timeout.value, secs(3));
        // `Nb_get_retry 3`: the author meant retry 3.
        assert_eq!(ch.timing.retry.value, 3);
        assert_eq!(ch.timing.delay_before_retry.value, secs(5));
        assert_eq!(ch.timing.delay_loop.value, secs(6));
    }
    let w = warnings(&l);
    assert!(
        w.iter().any(|w| w.contains(
            ":2:1: warning: U+00A0 (non-breaking space) used as white space on 51 lines"
        )),
        "{w:#?}"
    );
    assert_eq!(
        w.iter()
            .filter(|w| w.contains("'Nb_get_retry': keywords are case-sensitive"))
            .count(),
        2,
        "{w:#?}"
    );
    assert!(
        w.iter().any(|w| w.contains("000_tcp_check.conf:42:17:")),
        "{w:#?}"
    );
}

#[test]
fn seed_000_http_get_digests() {
    let c = load("000_http_get.conf").config;
    let vs = &c.virtual_servers[0];
    let digests: Vec<String> = vs
        .real_servers
        .iter()
        .map(|r| match &r.checkers[0].kind {
            CheckerKind::Http(h) => {
                assert_eq!(h.urls[0].path.value, "/index.html");
                assert!(h.urls[0].status_code.is_empty(), "default 200-299");
                assert_eq!(h.http_protocol.value, HttpProtocol::V1_0);
                h.urls[0]
                    .digest
                    .as_ref()
                    .unwrap()
                    .value
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
            other => panic!("expected HTTP_GET, got {other:?}"),
        })
        .collect();
    assert_eq!(
        digests,
        [
            "00f6c72507d2480429e5f32dbf2de638",
            "4b0f20d78e6098eb5c2eed901f5f3b6e"
        ]
    );
    for r in &vs.real_servers {
        let t = &r.checkers[0].timing;
        assert_eq!(
            (
                t.retry.value,
                t.delay_before_retry.value,
                t.connect_timeout.value
            ),
            (3, secs(5), secs(3))
        );
    }
}

#[test]
fn seed_001_vrrp_script_and_track_script() {
    let c = load("001_nginx_dual_net_ka67_chk_nginx.conf").config;
    assert_eq!(c.vrrp_scripts.len(), 1);
    let s = &c.vrrp_scripts[0];
    assert_eq!(s.name.value, "chk_nginx");
    assert_eq!(s.script.command.value, "killall -0 nginx");
    assert_eq!(s.interval.value, secs(2));
    assert_eq!(s.timeout.value, secs(2), "timeout defaults to the interval");
    assert_eq!(s.weight.value, -10);
    assert_eq!((s.rise.value, s.fall.value), (2, 2));
    assert_eq!(
        c.global.vrrp_mcast_group4.value,
        "224.0.0.111".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(
        c.global.router_id.value, "testhost",
        "router_id defaults to the host name"
    );
    let names: Vec<&str> = c.instances.iter().map(|i| i.name.value.as_str()).collect();
    assert_eq!(
        names,
        ["External_1", "External_2", "Internal_1", "Internal_2"]
    );
    for i in &c.instances {
        assert_eq!(i.track_script.len(), 1);
        assert_eq!(i.track_script[0].name.value, "chk_nginx");
        let master = &i.notify.master.as_ref().unwrap().command.value;
        assert_eq!(
            master,
            "/usr/local/keepalived/etc/keepalived/notify.sh master"
        );
        assert!(i.notify.backup.is_some() && i.notify.fault.is_some());
    }
    let e2 = instance(&c, "External_2");
    assert_eq!(
        (
            e2.state.value,
            e2.virtual_router_id.value,
            e2.priority.value
        ),
        (InitialState::Backup, 172, 95)
    );
    assert_eq!(
        e2.authentication.as_ref().unwrap().auth_pass.value,
        "renwole1"
    );
    assert_eq!(vips(e2), [ip("10.16.8.101")]);
}

#[test]
fn seed_001_sync_groups() {
    let c = load("001_sync_dual_master_ka67.conf").config;
    assert_eq!(c.global.router_id.value, "ka67");
    let groups: Vec<(&str, Vec<&str>)> = c
        .sync_groups
        .iter()
        .map(|g| {
            (
                g.name.value.as_str(),
                g.members.iter().map(|m| m.value.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("VG_1", vec!["External_1", "Internal_1"]),
            ("VG_2", vec!["External_2", "Internal_2"])
        ]
    );
    let table: Vec<(&str, InitialState, &str, u8, u8, &str, IpAddr)> = c
        .instances
        .iter()
        .map(|i| {
            (
                i.name.value.as_str(),
                i.state.value,
                i.interface.as_ref().unwrap().value.as_str(),
                i.virtual_router_id.value,
                i.priority.value,
                i.authentication.as_ref().unwrap().auth_pass.value.as_str(),
                vips(i)[0],
            )
        })
        .collect();
    use InitialState::*;
    assert_eq!(
        table,
        [
            (
                "External_1",
                Master,
                "eth1",
                171,
                100,
                "renwole0",
                ip("10.16.8.100")
            ),
            (
                "External_2",
                Backup,
                "eth1",
                172,
                95,
                "renwole1",
                ip("10.16.8.101")
            ),
            (
                "Internal_1",
                Master,
                "eth2",
                191,
                100,
                "renwole2",
                ip("172.16.8.100")
            ),
            (
                "Internal_2",
                Backup,
                "eth2",
                192,
                95,
                "renwole3",
                ip("172.16.8.101")
            ),
        ]
    );
}

#[test]
fn seed_001_lvs_dr_full() {
    let c = load("001_lvs_dr_ka67_full.conf").config;
    assert_eq!(c.global.smtp_connect_timeout.value, secs(60));
    assert_eq!(c.virtual_servers.len(), 2);
    for (vs, vip) in c.virtual_servers.iter().zip(["10.16.8.100", "10.16.8.101"]) {
        match &vs.key {
            VsKey::Address { addr, port } => assert_eq!((addr.value, port.value), (ip(vip), 80)),
            other => panic!("{other:?}"),
        }
        assert_eq!(vs.delay_loop.value, secs(3));
        assert!(vs.sorry_server.is_none(), "sorry_server is commented out");
        let servers: Vec<IpAddr> = vs.real_servers.iter().map(|r| r.addr.value).collect();
        assert_eq!(servers, [ip("10.16.8.8"), ip("10.16.8.9")]);
        for r in &vs.real_servers {
            let ch = &r.checkers[0];
            let CheckerKind::Http(h) = &ch.kind else {
                panic!("HTTP_GET expected")
            };
            assert_eq!(h.urls[0].path.value, "/");
            assert_eq!(
                h.urls[0].status_code[0].value,
                StatusRange {
                    first: 200,
                    last: 200
                }
            );
            assert_eq!(
                (ch.timing.connect_timeout.value, ch.timing.retry.value),
                (secs(1), 3)
            );
            assert_eq!(ch.timing.delay_before_retry.value, secs(1));
        }
    }
}

#[test]
fn seed_002_nbsp_and_nb_get_retry_in_tcp_check() {
    let l = load("002_lvs_dr_tcp_check_master.conf");
    let c = &l.config;
    assert_eq!(
        c.global.smtp_connect_timeout.value,
        secs(30),
        "commented out: keepalived's default"
    );
    assert!(c.global.smtp_connect_timeout.span.is_default());
    let vi = instance(c, "VI_1");
    assert_eq!(
        vips(vi),
        [ip("61.164.122.8")],
        "trailing NBSP after the VIP is white space"
    );
    assert_eq!(
        (
            vi.virtual_router_id.value,
            vi.interface.as_ref().unwrap().value.as_str()
        ),
        (51, "eth0")
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.lb_algo.value, Scheduler::Wrr);
    assert_eq!(vs.persistence_timeout.as_ref().unwrap().value, 60);
    for r in &vs.real_servers {
        assert_eq!(r.weight.value, 3);
        let t = &r.checkers[0].timing;
        assert_eq!(
            (
                t.connect_timeout.value,
                t.retry.value,
                t.delay_before_retry.value
            ),
            (secs(10), 3, secs(3))
        );
        assert_eq!(
            r.checkers[0].target.connect_port.as_ref().unwrap().value,
            80
        );
    }
    let w = warnings(&l);
    let nb: Vec<&String> = w.iter().filter(|w| w.contains("'nb_get_retry' is deprecated; read as 'retry' (real keepalived accepts it only in HTTP_GET/SSL_GET and ignores it in TCP_CHECK)")).collect();
    assert_eq!(nb.len(), 2, "{w:#?}");
    assert!(nb[0].contains(":42:"), "{nb:?}");
}

#[test]
fn seed_003_nat_mask_and_decorations() {
    let l = load("003_annotated_lvs_dr_http_get.conf");
    let c = &l.config;
    assert_eq!(c.global.notification_email.len(), 3);
    assert_eq!(
        c.global.notification_email_from.as_ref().unwrap().value,
        "233@qq.com"
    );
    let vi = instance(c, "VI_1");
    assert_eq!(
        vips(vi),
        [
            ip("192.168.200.16"),
            ip("192.168.200.17"),
            ip("192.168.200.18")
        ]
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.persistence_timeout.as_ref().unwrap().value, 50);
    assert_eq!(vs.real_servers.len(), 2);
    for r in &vs.real_servers {
        let CheckerKind::Http(h) = &r.checkers[0].kind else {
            panic!()
        };
        assert_eq!(
            h.urls[0].status_code[0].value,
            StatusRange {
                first: 200,
                last: 200
            }
        );
        assert_eq!(r.checkers[0].timing.connect_timeout.value, secs(2));
    }
    let w = warnings(&l);
    let expected = [
        ":5:45: warning: decorative line '--------------------------------------' is not a keyword; ignored",
        ":10:45: warning: decorative line",
        ":56:5: warning: 'nat_mask' was removed in keepalived 1.2.20 and has no effect; ignored",
    ];
    for e in expected {
        assert!(w.iter().any(|w| w.contains(e)), "missing '{e}' in {w:#?}");
    }
}

#[test]
fn model_equality_sees_value_changes() {
    // Guards the round-trip test: equality ignores places, never values.
    let a = load("000_tcp_check.conf").config;
    let mut b = a.clone();
    b.instances[0].priority.value = 99;
    assert_ne!(a, b);
    let mut b = a.clone();
    b.virtual_servers[0].real_servers[0].checkers[0]
        .timing
        .retry
        .value = 1;
    assert_ne!(a, b);
}
