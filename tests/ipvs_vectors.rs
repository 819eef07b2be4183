//! The IPVS codec against bytes ipvsadm 1.31 and Linux 6.1 really sent
//! (tests/vectors/ipvs/, captured in the test VM; see its README).
//!
//! Requests: every command kind is encoded from typed values and compared
//! byte for byte with ipvsadm's request, `nlmsg_seq` / `nlmsg_pid` masked.
//! Replies: the kernel's dumps, answers, ACKs and errors decode to the
//! values the capture set up; every truncation and byte mutation of every
//! reply decodes to an error or a value, never a panic.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use keepalived_rs::netlink::genl;
use keepalived_rs::netlink::ipvs::*;
use keepalived_rs::netlink::wire::{Message, MessageBuilder, Messages, NLM_F_ACK, NLM_F_DUMP};

/// `nlmsg_type` of the IPVS family in the capture (ctrl_getfamily.reply.hex).
const FAMILY: u16 = 0x20;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ipvs")
}

/// The netlink messages of one vector file (`#` lines are comments).
fn vector(name: &str) -> Vec<Vec<u8>> {
    let path = vectors_dir().join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

fn request_bytes(name: &str) -> Vec<u8> {
    let mut messages = vector(&format!("{name}.request.hex"));
    assert_eq!(messages.len(), 1, "{name}: one request message");
    messages.remove(0)
}

/// Zero `nlmsg_seq` and `nlmsg_pid` (bytes 8..16).
fn masked(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 16 {
        bytes[8..16].fill(0);
    }
    bytes
}

/// What the socket sends for `msg`: a dump adds NLM_F_DUMP.
fn wire(mut msg: MessageBuilder, dump: bool) -> Vec<u8> {
    if dump {
        msg.add_flags(NLM_F_DUMP);
    }
    msg.finish()
}

fn assert_request(name: &str, request: Request<'_>) {
    let ours = masked(wire(request.encode(FAMILY), request.is_dump()));
    let theirs = masked(request_bytes(name));
    assert_eq!(
        hex(&ours),
        hex(&theirs),
        "{name}: our request differs from ipvsadm's"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(protocol: IpProtocol, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        addr: ip(addr),
        port,
    }
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    key(IpProtocol::TCP, addr, port)
}

fn service(key: ServiceKey, scheduler: &str, flags: u32, timeout: u32) -> Service {
    let mut params = ServiceParams::new(scheduler, key.family());
    params.flags = flags;
    params.timeout = timeout;
    Service::new(key, params)
}

/// ipvsadm names the service of a destination command by its identity and
/// fills the rest with defaults: no scheduler, no flags, no timeout.
fn named(key: ServiceKey) -> Service {
    service(key, "", 0, 0)
}

fn dest(addr: &str, port: u16, forward: ForwardMethod, weight: u32) -> Dest {
    Dest::new(
        DestKey {
            addr: ip(addr),
            port,
        },
        DestParams {
            forward,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel::default(),
        },
    )
}

#[test]
fn resolve_family_request() {
    let mut msg = genl::get_family_request(IPVS_GENL_NAME);
    msg.add_flags(NLM_F_ACK);
    assert_eq!(
        hex(&masked(msg.finish())),
        hex(&masked(request_bytes("ctrl_getfamily")))
    );
}

#[test]
fn service_requests() {
    let persistent = {
        let mut s = service(tcp("10.0.0.101", 443), "rr", IP_VS_SVC_F_PERSISTENT, 300);
        s.params.netmask = 0xffff_ff00;
        s
    };
    let sched_flags = IP_VS_SVC_F_SCHED_SH_PORT | IP_VS_SVC_F_SCHED_SH_FALLBACK;
    let pe_sip = {
        let mut s = service(
            key(IpProtocol::UDP, "10.0.0.104", 5060),
            "rr",
            IP_VS_SVC_F_PERSISTENT,
            60,
        );
        s.params.pe_name = Some("sip".into());
        s
    };
    let cases: Vec<(&str, Service)> = vec![
        (
            "new_service_tcp4_wlc",
            service(tcp("10.0.0.100", 80), "wlc", 0, 0),
        ),
        ("new_service_persistent", persistent),
        (
            "new_service_fwmark",
            service(
                ServiceKey::Fwmark {
                    family: Family::Inet,
                    mark: 1,
                },
                "rr",
                0,
                0,
            ),
        ),
        (
            "new_service_fwmark6",
            service(
                ServiceKey::Fwmark {
                    family: Family::Inet6,
                    mark: 2,
                },
                "rr",
                0,
                0,
            ),
        ),
        (
            "new_service_tcp6",
            service(tcp("fd00::100", 80), "wlc", 0, 0),
        ),
        (
            "new_service_udp",
            service(key(IpProtocol::UDP, "10.0.0.100", 53), "rr", 0, 0),
        ),
        (
            "new_service_sctp",
            service(key(IpProtocol::SCTP, "10.0.0.100", 5060), "rr", 0, 0),
        ),
        (
            "new_service_sh_flags",
            service(tcp("10.0.0.102", 80), "sh", sched_flags, 0),
        ),
        (
            "new_service_mh_flags",
            service(tcp("10.0.0.103", 80), "mh", sched_flags, 0),
        ),
        (
            "new_service_ops",
            service(
                key(IpProtocol::UDP, "10.0.0.105", 53),
                "rr",
                IP_VS_SVC_F_ONEPACKET,
                0,
            ),
        ),
        ("new_service_pe_sip", pe_sip),
    ];
    for (name, svc) in &cases {
        assert_request(name, Request::NewService(svc));
    }
    let edited = service(tcp("10.0.0.100", 80), "rr", IP_VS_SVC_F_PERSISTENT, 120);
    assert_request("set_service", Request::SetService(&edited));
    assert_request(
        "del_service",
        Request::DelService(&named(tcp("10.0.0.103", 80))),
    );
    assert_request(
        "del_service_missing",
        Request::DelService(&named(tcp("10.9.9.9", 9))),
    );
    // ipvsadm -Ln -t: a single GET names the service with netmask 0.
    let mut get = named(tcp("10.0.0.100", 80));
    get.params.netmask = 0;
    assert_request("get_service", Request::GetService(&get));
    assert_request(
        "zero_service",
        Request::Zero(Some(&named(tcp("10.0.0.100", 80)))),
    );
    assert_request("zero_all", Request::Zero(None));
}

#[test]
fn dest_requests() {
    let web = named(tcp("10.0.0.100", 80));
    let gue = {
        let mut d = dest("10.0.0.14", 80, ForwardMethod::Tunnel, 1);
        d.params.tunnel = Tunnel {
            kind: IP_VS_CONN_F_TUNNEL_TYPE_GUE,
            port: 6080,
            flags: IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
        };
        d
    };
    let thresholds = {
        let mut d = dest("10.0.0.11", 443, ForwardMethod::DirectRoute, 1);
        d.params.u_threshold = 100;
        d.params.l_threshold = 50;
        d
    };
    let cases: Vec<(&str, Service, Dest)> = vec![
        (
            "new_dest_dr",
            web.clone(),
            dest("10.0.0.11", 80, ForwardMethod::DirectRoute, 3),
        ),
        (
            "new_dest_nat",
            web.clone(),
            dest("10.1.0.12", 8080, ForwardMethod::Masquerade, 1),
        ),
        (
            "new_dest_tun",
            web.clone(),
            dest("10.0.0.13", 80, ForwardMethod::Tunnel, 1),
        ),
        ("new_dest_tun_gue", web.clone(), gue),
        (
            "new_dest_thresholds",
            named(tcp("10.0.0.101", 443)),
            thresholds,
        ),
        (
            "new_dest_tcp6",
            named(tcp("fd00::100", 80)),
            dest("fd00::11", 80, ForwardMethod::DirectRoute, 2),
        ),
        (
            "new_dest_fwmark",
            named(ServiceKey::Fwmark {
                family: Family::Inet,
                mark: 1,
            }),
            dest("10.0.0.11", 0, ForwardMethod::DirectRoute, 1),
        ),
    ];
    for (name, svc, d) in &cases {
        assert_request(name, Request::NewDest(svc, d));
    }
    assert_request(
        "set_dest",
        Request::SetDest(&web, &dest("10.0.0.11", 80, ForwardMethod::DirectRoute, 5)),
    );
    // ipvsadm -d sends its defaults (DR, weight 1) along with the identity.
    assert_request(
        "del_dest",
        Request::DelDest(&web, &dest("10.0.0.13", 80, ForwardMethod::DirectRoute, 1)),
    );
}

#[test]
fn table_config_and_daemon_requests() {
    assert_request("get_info", Request::GetInfo);
    assert_request("flush", Request::Flush);
    assert_request("get_service_dump", Request::GetServices);
    assert_request("get_service_dump_empty", Request::GetServices);
    assert_request("get_dest_dump", Request::GetDests(&tcp("10.0.0.100", 80)));
    assert_request(
        "get_dest_dump_2",
        Request::GetDests(&key(IpProtocol::UDP, "10.0.0.100", 53)),
    );
    assert_request(
        "set_config",
        Request::SetConfig(&Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }),
    );
    assert_request("get_config", Request::GetConfig);
    let daemon = SyncDaemon {
        state: DaemonState::Master,
        interface: "eth0".into(),
        sync_id: 5,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    };
    assert_request("new_daemon", Request::NewDaemon(&daemon));
    assert_request("del_daemon", Request::DelDaemon(DaemonState::Master));
    assert_request("get_daemon", Request::GetDaemons);
}

fn replies(name: &str) -> Vec<Vec<u8>> {
    vector(&format!("{name}.reply.hex"))
}

fn message(bytes: &[u8]) -> Message<'_> {
    Messages::new(bytes)
        .next()
        .expect("one message")
        .expect("well formed")
}

#[test]
fn controller_reply() {
    let r = replies("ctrl_getfamily");
    let family = genl::parse_family(&message(&r[0]))
        .unwrap()
        .expect("NEWFAMILY");
    assert_eq!((family.name.as_str(), family.id), ("IPVS", FAMILY));
    assert_eq!(family.version, u32::from(IPVS_GENL_VERSION));
    let ack = message(&r[1]).error().expect("NLMSG_ERROR").unwrap();
    assert_eq!(ack.errno, 0);
}

#[test]
fn info_and_config_replies() {
    let info = Info::parse(&message(&replies("get_info")[0])).unwrap();
    assert_eq!(info.version_string(), "1.2.1");
    assert_eq!(info.conn_tab_size, 4096);
    let timeouts = Timeouts::parse(&message(&replies("get_config")[0])).unwrap();
    assert_eq!(
        timeouts,
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
    let r = replies("get_daemon");
    let daemon = SyncDaemon::parse(&message(&r[0])).unwrap();
    assert_eq!(
        daemon,
        SyncDaemon {
            state: DaemonState::Master,
            interface: "eth0".into(),
            sync_id: 5,
            maxlen: Some(1472),
            group: Some(ip("224.0.0.81")),
            port: Some(8848),
            ttl: Some(1),
        }
    );
}

#[test]
fn service_dump_reply() {
    let r = replies("get_service_dump");
    assert_eq!(r.len(), 3);
    let mut services: Vec<Service> = r[..2]
        .iter()
        .map(|m| Service::parse(&message(m)).unwrap())
        .collect();
    services.sort_by_key(|s| s.key);
    assert_eq!(services[0].key, tcp("10.0.0.100", 80));
    assert_eq!(services[0].params.scheduler, "rr");
    assert_eq!(services[1].key, key(IpProtocol::UDP, "10.0.0.100", 53));
    assert_eq!(services[1].params.scheduler, "wlc");
    for s in &services {
        assert_eq!(s.params.flags, IP_VS_SVC_F_HASHED, "kernel marks it hashed");
        assert_eq!((s.params.timeout, s.params.netmask), (0, u32::MAX));
        assert_eq!(s.stats, Some(Stats::default()), "no traffic flowed");
    }
    assert_eq!(message(&r[2]).kind, 3, "NLMSG_DONE");
    assert!(replies("get_service_dump_empty")
        .iter()
        .all(|m| message(m).kind == 3));
    let single = Service::parse(&message(&replies("get_service")[0])).unwrap();
    assert_eq!(single.key, tcp("10.0.0.100", 80));
}

#[test]
fn dest_dump_replies() {
    let mut tcp_dests: Vec<Dest> = replies("get_dest_dump")[..2]
        .iter()
        .map(|m| Dest::parse(&message(m), Family::Inet).unwrap())
        .collect();
    tcp_dests.sort_by_key(|d| d.key);
    let summary: Vec<(String, ForwardMethod, u32)> = tcp_dests
        .iter()
        .map(|d| (d.key.to_string(), d.params.forward, d.params.weight))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("[10.0.0.11]:80".into(), ForwardMethod::DirectRoute, 1),
            ("[10.0.0.12]:80".into(), ForwardMethod::DirectRoute, 2),
        ]
    );
    let mut udp_dests: Vec<Dest> = replies("get_dest_dump_2")[..2]
        .iter()
        .map(|m| Dest::parse(&message(m), Family::Inet).unwrap())
        .collect();
    udp_dests.sort_by_key(|d| d.key);
    let summary: Vec<(String, ForwardMethod, u32)> = udp_dests
        .iter()
        .map(|d| (d.key.to_string(), d.params.forward, d.params.weight))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("[10.1.0.11]:5353".into(), ForwardMethod::Masquerade, 1),
            ("[10.1.0.12]:5353".into(), ForwardMethod::Masquerade, 1),
        ]
    );
    for d in tcp_dests.iter().chain(&udp_dests) {
        assert_eq!(
            (d.active_conns, d.inactive_conns, d.persistent_conns),
            (0, 0, 0)
        );
        assert_eq!(d.params.tunnel, Tunnel::default());
    }
}

#[test]
fn acks_and_errors() {
    for name in [
        "new_service_tcp4_wlc",
        "new_dest_dr",
        "set_dest",
        "del_dest",
        "flush",
        "set_config",
        "new_daemon",
        "del_daemon",
    ] {
        let r = replies(name);
        let ack = message(&r[0]).error().expect("NLMSG_ERROR").unwrap();
        assert_eq!(ack.errno, 0, "{name}");
    }
    let r = replies("del_service_missing");
    let err = message(&r[0]).error().expect("NLMSG_ERROR").unwrap();
    assert_eq!(err.errno, libc::ESRCH);
}

/// Every decoder on every prefix and every single-byte mutation of every
/// reply: an error or a value, never a panic.
#[test]
fn mutated_replies_never_panic() {
    let mut names: Vec<String> = fs::read_dir(vectors_dir())
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    names.sort();
    assert!(names.len() >= 70, "{} vector files", names.len());
    let decode_all = |bytes: &[u8]| {
        for m in Messages::new(bytes).take(16).flatten() {
            let _ = m.error();
            let _ = genl::parse_family(&m);
            let _ = Service::parse(&m);
            let _ = Dest::parse(&m, Family::Inet);
            let _ = Dest::parse(&m, Family::Inet6);
            let _ = Info::parse(&m);
            let _ = Timeouts::parse(&m);
            let _ = SyncDaemon::parse(&m);
        }
    };
    for name in &names {
        for bytes in vector(name) {
            for cut in 0..bytes.len() {
                decode_all(&bytes[..cut]);
            }
            for i in 0..bytes.len() {
                for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut bad = bytes.clone();
                    bad[i] = value;
                    decode_all(&bad);
                }
            }
        }
    }
}
