//! VRRP daemons in network namespaces on a bridged LAN (root): election,
//! failover on SIGKILL with gratuitous ARP on the wire, graceful handover on
//! SIGTERM, preemption and nopreempt, a failing vrrp_script, a sync group
//! over two LANs, unicast peers, IPv6, stale VIPs after SIGKILL and a flood
//! of bad adverts. Witnesses: `ip addr` in each namespace and tcpdump.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::lab::{can_run, ip4, Frame, Lab, Proc};
use nix::sys::signal::Signal;

const BIN: &str = env!("CARGO_BIN_EXE_keepalived");
const VIP: &str = "10.77.0.100";
const VIP2: &str = "10.77.1.100";

struct Node<'a> {
    priority: u8,
    state: &'a str,
    extra: &'a str,
}

fn node(priority: u8) -> Node<'static> {
    Node {
        priority,
        state: "BACKUP",
        extra: "",
    }
}

fn instance_conf(n: &Node, vrid: u8, dev: &str, vip: &str, name: &str) -> String {
    format!(
        "vrrp_instance {name} {{
    state {}
    interface {dev}
    virtual_router_id {vrid}
    priority {}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass 1111
    }}
    virtual_ipaddress {{
        {vip}/24
    }}
{}
}}
",
        n.state, n.priority, n.extra
    )
}

fn conf(n: &Node) -> String {
    format!(
        "global_defs {{\n    router_id lab\n}}\n{}",
        instance_conf(n, 51, "eth0", VIP, "VI_1")
    )
}

fn start(lab: &mut Lab, i: usize, text: &str) -> Proc {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let conf = lab.write(&format!("ka{i}-{run}.conf"), text);
    let pid = lab.dir.join(format!("ka{i}.pid"));
    let (conf, pid) = (conf.display().to_string(), pid.display().to_string());
    lab.spawn(
        i,
        &format!("ka{i}-{run}"),
        &[BIN, "-n", "-l", "-D", "-f", &conf, "-p", &pid],
    )
}

/// Wait (bounded) until exactly the nodes in `want` hold `addr` on `dev`.
fn wait_holders(lab: &Lab, dev: &str, addr: &str, want: &[usize], timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let holders = lab.holders(dev, addr);
        if holders == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{addr} on {holders:?}, expected {want:?} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait (bounded) until `node` holds `addr` (a SIGKILLed router cannot
/// remove its own copy, so the old holder is not checked).
fn wait_gains(lab: &Lab, node: usize, dev: &str, addr: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    while !lab.has_addr(node, dev, addr) {
        assert!(
            start.elapsed() < timeout,
            "{addr} not on node {node} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn adverts_from(frames: &[Frame], src: Ipv4Addr) -> Vec<(f64, u8)> {
    frames
        .iter()
        .filter_map(|f| {
            f.vrrp4()
                .filter(|(s, _, _)| *s == src)
                .map(|(_, _, p)| (f.ts, p))
        })
        .collect()
}

#[test]
fn two_routers_elect_fail_over_on_sigkill_with_garp() {
    if !can_run(
        "two_routers_elect_fail_over_on_sigkill_with_garp",
        &["tcpdump"],
    ) {
        return;
    }
    let mut lab = Lab::new("kill", 3, 1);
    let cap = lab.capture(2, "eth0", "vrrp or arp");
    let a = start(&mut lab, 0, &conf(&node(150)));
    let _b = start(&mut lab, 1, &conf(&node(100)));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    assert!(a.wait_log("(VI_1) Entering MASTER STATE", Duration::from_secs(1)));
    // Stable: still exactly one holder two advert intervals later.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders("eth0", VIP), [0]);

    a.kill();
    let took = wait_gains(&lab, 1, "eth0", VIP, Duration::from_secs(8));
    assert!(took < Duration::from_secs(6), "failover took {took:?}");
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.stop();
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let b_adverts = adverts_from(&frames, ip4(0, 1));
    assert!(!b_adverts.is_empty(), "no advert from the new master");
    let first_b = b_adverts[0].0;
    let garps: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.is_garp_for(vip) && f.ts >= first_b - 0.01)
        .collect();
    assert!(
        !garps.is_empty(),
        "no gratuitous ARP for {VIP} from the new master"
    );
    // The new master's adverts carry its priority.
    assert!(b_adverts.iter().all(|(_, p)| *p == 100));
}

#[test]
fn sigterm_hands_over_after_skew_time_and_removes_the_vip() {
    if !can_run(
        "sigterm_hands_over_after_skew_time_and_removes_the_vip",
        &["tcpdump"],
    ) {
        return;
    }
    let mut lab = Lab::new("term", 3, 1);
    let a = start(&mut lab, 0, &conf(&node(150)));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    let _b = start(&mut lab, 1, &conf(&node(100)));
    std::thread::sleep(Duration::from_millis(1500));
    let cap = lab.capture(2, "eth0", "vrrp");
    a.signal(Signal::SIGTERM);
    let exit = a
        .wait_exit(Duration::from_secs(5))
        .expect("master exits on SIGTERM");
    assert!(
        !lab.has_addr(0, "eth0", VIP),
        "VIP left behind after SIGTERM"
    );
    wait_holders(&lab, "eth0", VIP, &[1], Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(200));
    let frames = cap.stop();
    let a_adverts = adverts_from(&frames, ip4(0, 0));
    let stop = a_adverts
        .iter()
        .find(|(_, p)| *p == 0)
        .expect("priority-0 advert on SIGTERM")
        .0;
    let first_b = adverts_from(&frames, ip4(0, 1))
        .iter()
        .find(|(ts, _)| *ts > stop)
        .expect("advert from the new master")
        .0;
    // RFC 3768 6.1: Skew_Time = (256 - 100) / 256 s = 609 ms.
    let handover = first_b - stop;
    assert!(
        (0.55..0.9).contains(&handover),
        "handover {handover:.3} s, Skew_Time 0.609 s"
    );
    eprintln!("SIGTERM to exit {exit:?}, handover {handover:.4} s");
}

#[test]
fn preemption_and_nopreempt() {
    if !can_run("preemption_and_nopreempt", &[]) {
        return;
    }
    let mut lab = Lab::new("pre", 2, 1);
    let b = start(&mut lab, 1, &conf(&node(100)));
    wait_holders(&lab, "eth0", VIP, &[1], Duration::from_secs(6));
    // A higher priority router preempts.
    let a = start(&mut lab, 0, &conf(&node(150)));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(6));
    assert!(b.wait_log("(VI_1) Entering BACKUP STATE", Duration::from_secs(1)));
    a.kill();
    wait_gains(&lab, 1, "eth0", VIP, Duration::from_secs(6));
    // The same router with nopreempt stays Backup (and drops the VIP the
    // killed run left behind).
    let quiet = Node {
        priority: 150,
        state: "BACKUP",
        extra: "    nopreempt",
    };
    let a2 = start(&mut lab, 0, &conf(&quiet));
    assert!(a2.wait_log("(VI_1) Entering BACKUP STATE", Duration::from_secs(3)));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(lab.holders("eth0", VIP), [1], "nopreempt router took over");
}

#[test]
fn failing_vrrp_script_lowers_priority_and_moves_the_vip() {
    if !can_run(
        "failing_vrrp_script_lowers_priority_and_moves_the_vip",
        &["killall"],
    ) {
        return;
    }
    let mut lab = Lab::new("scr", 2, 1);
    // The seeds' pattern: `killall -0 nginx` against a process we control.
    let fake_nginx = lab.dir.join("nginx");
    std::fs::copy("/bin/sleep", &fake_nginx).unwrap();
    let fake_nginx = fake_nginx.display().to_string();
    let nginx = lab.spawn(0, "nginx", &[&fake_nginx, "1000"]);
    let script = "vrrp_script chk_nginx {
    script \"killall -0 nginx\"
    interval 1
    weight -60
    fall 1
    rise 1
}
";
    let tracked = Node {
        priority: 150,
        state: "MASTER",
        extra: "    track_script {\n        chk_nginx\n    }",
    };
    let a = start(&mut lab, 0, &format!("{script}{}", conf(&tracked)));
    let _b = start(&mut lab, 1, &format!("{script}{}", conf(&node(100))));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(6));
    // Reaped too: killall would still see a zombie.
    nginx.kill();
    // 150 - 60 = 90 < 100: the backup preempts.
    wait_holders(&lab, "eth0", VIP, &[1], Duration::from_secs(8));
    assert!(
        a.wait_log("VRRP_Script(chk_nginx) failed", Duration::from_secs(1)),
        "{}",
        a.log_text()
    );
    // nginx back: 150 again, node 0 preempts.
    let _nginx = lab.spawn(0, "nginx2", &[&fake_nginx, "1000"]);
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    assert!(a.wait_log("VRRP_Script(chk_nginx) succeeded", Duration::from_secs(1)));
}

#[test]
fn sync_group_moves_both_vips_together() {
    if !can_run("sync_group_moves_both_vips_together", &[]) {
        return;
    }
    let mut lab = Lab::new("sync", 2, 2);
    let group = "vrrp_sync_group VG_1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n";
    let text = |prio: u8| {
        let n = node(prio);
        format!(
            "{group}{}{}",
            instance_conf(&n, 51, "eth0", VIP, "VI_1"),
            instance_conf(&n, 52, "eth1", VIP2, "VI_2")
        )
    };
    let a = start(&mut lab, 0, &text(150));
    let _b = start(&mut lab, 1, &text(100));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    wait_holders(&lab, "eth1", VIP2, &[0], Duration::from_secs(2));
    // Only the inside link of the master fails: both VIPs move.
    lab.set_link(0, "eth1", false);
    wait_holders(&lab, "eth0", VIP, &[1], Duration::from_secs(6));
    wait_holders(&lab, "eth1", VIP2, &[1], Duration::from_secs(1));
    assert!(
        a.wait_log("(VI_1) Entering FAULT STATE", Duration::from_secs(1)),
        "{}",
        a.log_text()
    );
    lab.set_link(0, "eth1", true);
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    wait_holders(&lab, "eth1", VIP2, &[0], Duration::from_secs(2));
}

#[test]
fn unicast_peers_without_multicast() {
    if !can_run("unicast_peers_without_multicast", &["tcpdump"]) {
        return;
    }
    let mut lab = Lab::new("uni", 2, 1);
    // Captured at the peer: the bridge learns MACs, so an observer would
    // not see unicast after the first frames.
    let cap = lab.capture(1, "eth0", "vrrp");
    let unicast = |me: usize, peer: usize| {
        format!(
            "    unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}",
            ip4(0, me),
            ip4(0, peer)
        )
    };
    let (ea, eb) = (unicast(0, 1), unicast(1, 0));
    let a = start(
        &mut lab,
        0,
        &conf(&Node {
            priority: 150,
            state: "BACKUP",
            extra: &ea,
        }),
    );
    let _b = start(
        &mut lab,
        1,
        &conf(&Node {
            priority: 100,
            state: "BACKUP",
            extra: &eb,
        }),
    );
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    a.kill();
    wait_gains(&lab, 1, "eth0", VIP, Duration::from_secs(6));
    let frames = cap.stop();
    // Adverts both ways (the peer's own after the failover), none of them
    // to the multicast group.
    let vrrp: Vec<&Frame> = frames.iter().filter(|f| f.vrrp4().is_some()).collect();
    assert!(
        vrrp.iter().any(|f| f.vrrp4().unwrap().0 == ip4(0, 0)),
        "no unicast advert from node 0"
    );
    assert!(
        vrrp.iter().any(|f| f.vrrp4().unwrap().0 == ip4(0, 1)),
        "no unicast advert from node 1"
    );
    for f in vrrp {
        let dst = Ipv4Addr::new(
            f.payload()[16],
            f.payload()[17],
            f.payload()[18],
            f.payload()[19],
        );
        assert!(
            !dst.is_multicast(),
            "multicast advert to {dst} with unicast_peer"
        );
    }
}

#[test]
fn ipv6_vip_fails_over_with_unsolicited_na() {
    if !can_run("ipv6_vip_fails_over_with_unsolicited_na", &["tcpdump"]) {
        return;
    }
    let mut lab = Lab::new("six", 3, 1);
    let cap = lab.capture(2, "eth0", "icmp6 or ip6 proto 112");
    let vip6 = "fd77:0::100";
    let text = |prio: u8| {
        format!(
            "vrrp_instance VI_6 {{
    state BACKUP
    interface eth0
    virtual_router_id 61
    version 3
    priority {prio}
    advert_int 0.5
    virtual_ipaddress {{
        {vip6}/64
    }}
}}
"
        )
    };
    let a = start(&mut lab, 0, &text(150));
    let _b = start(&mut lab, 1, &text(100));
    wait_holders(&lab, "eth0", "fd77::100", &[0], Duration::from_secs(6));
    a.kill();
    wait_gains(&lab, 1, "eth0", "fd77::100", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.stop();
    let target = "fd77::100".parse().unwrap();
    assert!(
        frames.iter().any(|f| f.is_na_for(target)),
        "no unsolicited NA for {vip6}"
    );
    // RFC 5798 5.1.2.1: IPv6 adverts come from the link-local address.
    let from_b: Vec<_> = frames
        .iter()
        .filter_map(|f| f.vrrp6())
        .filter(|(s, _, p)| s.segments()[0] == 0xfe80 && *p == 100)
        .collect();
    assert!(
        !from_b.is_empty(),
        "no VRRPv3 IPv6 advert from the new master"
    );
}

#[test]
fn restart_after_sigkill_removes_stale_vips_before_electing() {
    if !can_run(
        "restart_after_sigkill_removes_stale_vips_before_electing",
        &[],
    ) {
        return;
    }
    let mut lab = Lab::new("stale", 2, 1);
    let a = start(&mut lab, 0, &conf(&node(100)));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(6));
    a.kill();
    assert!(lab.has_addr(0, "eth0", VIP), "SIGKILL cannot clean up");
    // Another router is master now; the restarted one must drop the stale VIP.
    let _b = start(&mut lab, 1, &conf(&node(200)));
    wait_holders(&lab, "eth0", VIP, &[0, 1], Duration::from_secs(6));
    let a2 = start(&mut lab, 0, &conf(&node(100)));
    wait_holders(&lab, "eth0", VIP, &[1], Duration::from_secs(3));
    assert!(a2.wait_log("(VI_1) Entering BACKUP STATE", Duration::from_secs(2)));
}

/// Garbage, wrong TTL, wrong auth and truncated adverts flooded at a master:
/// dropped and counted, the master's adverts stay on schedule, its VIP stays.
#[test]
fn bad_advert_flood_does_not_disturb_the_master() {
    if !can_run(
        "bad_advert_flood_does_not_disturb_the_master",
        &["tcpdump", "python3"],
    ) {
        return;
    }
    let mut lab = Lab::new("flood", 3, 1);
    let a = start(&mut lab, 0, &conf(&node(150)));
    let _b = start(&mut lab, 1, &conf(&node(100)));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    let cap = lab.capture(1, "eth0", "vrrp");
    // 4 kinds x 500 packets over ~4 s from node 2 (bounded).
    let injector = lab.write("inject.py", INJECTOR);
    let injector = injector.display().to_string();
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let inj = lab.spawn(
        2,
        "inject",
        &[python, &injector, "224.0.0.18", &ip4(0, 2).to_string()],
    );
    assert!(
        inj.wait_exit(Duration::from_secs(20)).is_some(),
        "injector hung"
    );
    assert!(
        inj.log_text().contains("sent 2000"),
        "injector: {}",
        inj.log_text()
    );
    std::thread::sleep(Duration::from_millis(1200));
    let frames = cap.stop();
    assert_eq!(lab.holders("eth0", VIP), [0], "VIP moved during the flood");
    let times: Vec<f64> = adverts_from(&frames, ip4(0, 0))
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert!(times.len() >= 4, "too few adverts: {times:?}");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (0.9..1.1).contains(&gap),
            "advert spacing {gap:.3} s during the flood: {times:?}"
        );
    }
    // Drops are counted and logged, rate-limited (not one line per packet).
    let log = a.log_text();
    let drop_lines = log
        .lines()
        .filter(|l| l.contains("dropped") || l.contains("bad advert"))
        .count();
    assert!(drop_lines >= 1, "no drop logged:\n{log}");
    assert!(drop_lines < 50, "{drop_lines} drop lines: not rate-limited");
}

/// Sends VRID 51 adverts that fail one receive rule each.
const INJECTOR: &str = r#"
import socket, struct, sys, time
dst = sys.argv[1]
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def vrrp(prio, auth=b'1111\0\0\0\0'):
    body = struct.pack('!BBBBBBH', 0x21, 51, prio, 1, 1, 1, 0) + socket.inet_aton('10.77.0.100') + auth
    return body[:6] + struct.pack('!H', csum(body)) + body[8:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[2]))
bad_ttl = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
bad_ttl.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 64)
bad_ttl.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[2]))
sent = 0
for i in range(500):
    s.sendto(vrrp(254, b'wrongpw\0'), (dst, 0)); sent += 1       # auth failure
    bad_ttl.sendto(vrrp(254), (dst, 0)); sent += 1               # TTL 64
    s.sendto(vrrp(254)[:10], (dst, 0)); sent += 1                # truncated
    g = bytearray(vrrp(254)); g[6] ^= 0xff
    s.sendto(bytes(g), (dst, 0)); sent += 1                      # bad checksum
    time.sleep(0.008)
print('sent', sent)
"#;

/// notify_master / notify_backup / the generic `notify` script run with
/// keepalived's arguments, and use_vmac puts the VIP on a macvlan with the
/// RFC 5798 virtual MAC that adverts and GARPs come from.
#[test]
fn notify_scripts_and_vmac() {
    if !can_run("notify_scripts_and_vmac", &["tcpdump"]) {
        return;
    }
    let mut lab = Lab::new("notify", 3, 1);
    let out = lab.dir.join("notify.out");
    let script = lab.write(
        "notify.sh",
        &format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = script.display();
    let extra = format!(
        "    use_vmac\n    notify_master \"{s} master-specific\"\n    notify_backup \"{s} backup-specific\"\n    notify \"{s}\""
    );
    let cap = lab.capture(2, "eth0", "vrrp or arp");
    let a = start(
        &mut lab,
        0,
        &conf(&Node {
            priority: 150,
            state: "BACKUP",
            extra: &extra,
        }),
    );
    let start_wait = Instant::now();
    let on_vmac = || {
        let out = std::process::Command::new("ip")
            .args(["-n", lab.ns(0), "-o", "addr", "show", "dev", "vrrp.51"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/"))
    };
    while !on_vmac() {
        assert!(
            start_wait.elapsed() < Duration::from_secs(8),
            "VIP not on vrrp.51: {}",
            a.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let link = lab.exec(0, &["ip", "-d", "link", "show", "vrrp.51"]);
    assert!(link.contains("00:00:5e:00:01:33"), "{link}");
    assert!(link.contains("macvlan mode private"), "{link}");
    std::thread::sleep(Duration::from_millis(1500));
    a.signal(Signal::SIGTERM);
    assert!(a.wait_exit(Duration::from_secs(5)).is_some());
    let frames = cap.stop();
    let vmac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];
    assert!(
        frames
            .iter()
            .any(|f| f.vrrp4().is_some() && f.src_mac() == vmac),
        "no advert from the VMAC"
    );
    assert!(
        frames
            .iter()
            .any(|f| f.is_garp_for(VIP.parse().unwrap()) && f.src_mac() == vmac),
        "no GARP from the VMAC"
    );
    assert!(
        lab.exec(0, &["ip", "-o", "link"]).find("vrrp.51").is_none(),
        "VMAC left behind"
    );
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "backup-specific",
        "INSTANCE VI_1 BACKUP 150",
        "master-specific",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 STOP",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "no notify line {want:?} in {lines:?}"
        );
    }
}

#[test]
fn three_routers_elect_the_highest_and_fail_over_to_the_next() {
    if !can_run(
        "three_routers_elect_the_highest_and_fail_over_to_the_next",
        &[],
    ) {
        return;
    }
    let mut lab = Lab::new("three", 3, 1);
    let _a = start(&mut lab, 0, &conf(&node(100)));
    let b = start(&mut lab, 1, &conf(&node(200)));
    let _c = start(&mut lab, 2, &conf(&node(150)));
    wait_holders(&lab, "eth0", VIP, &[1], Duration::from_secs(8));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders("eth0", VIP), [1], "exactly one master");
    b.kill();
    wait_gains(&lab, 2, "eth0", VIP, Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !lab.has_addr(0, "eth0", VIP),
        "the lowest priority router took the VIP too"
    );
}

/// Inodes of the IPv4 VRRP (protocol 112) raw sockets process `pid` holds,
/// from its namespace's /proc/net/raw and its fd table.
fn vrrp_socket_inodes(pid: i32) -> std::collections::BTreeSet<u64> {
    let held: std::collections::BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let raw = std::fs::read_to_string(format!("/proc/{pid}/net/raw")).unwrap();
    raw.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            // Raw sockets show their protocol as the port: 0x70 = 112.
            if !local.ends_with(":0070") {
                return None;
            }
            cols.get(9)?.parse().ok()
        })
        .filter(|inode| held.contains(inode))
        .collect()
}

/// SIGHUP with VRRP changes, as keepalived reloads: the Master stays Master
/// (its adverts go on without a gap, with the new priority), VIPs it no
/// longer has leave the interface, new ones arrive, a new instance starts
/// and a removed one sends priority 0 and releases its VIP. The Backup never
/// takes over. The VRRP socket is kept, not reopened.
#[test]
fn sighup_applies_vrrp_changes_and_keeps_the_master() {
    if !can_run(
        "sighup_applies_vrrp_changes_and_keeps_the_master",
        &["tcpdump"],
    ) {
        return;
    }
    const VIP3: &str = "10.77.0.103";
    const VIP4: &str = "10.77.0.104";
    let mut lab = Lab::new("hup", 2, 1);
    let a_conf = |priority: u8, vip: &str, second: bool| -> String {
        let mut text = format!(
            "global_defs {{\n    router_id lab\n}}\n{}",
            instance_conf(&node(priority), 51, "eth0", vip, "VI_1")
        );
        if second {
            text.push_str(&instance_conf(&node(priority), 52, "eth0", VIP2, "VI_2"));
        }
        text
    };
    let path = lab.write("hup-a.conf", &a_conf(150, VIP, false));
    let pid = lab.dir.join("hup-a.pid");
    let (path_s, pid_s) = (path.display().to_string(), pid.display().to_string());
    let a = lab.spawn(
        0,
        "hup-a",
        &[BIN, "-n", "-l", "-D", "-f", &path_s, "-p", &pid_s],
    );
    let b = start(&mut lab, 1, &conf(&node(100)));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    let cap = lab.capture(1, "eth0", "vrrp");
    std::thread::sleep(Duration::from_millis(1500));
    let sockets = vrrp_socket_inodes(a.pid);
    assert_eq!(sockets.len(), 1, "one VRRP socket on eth0: {sockets:?}");

    // One VIP replaced by two others, a lower priority, a new instance.
    let two_vips = format!("{VIP3}/24\n        {VIP4}");
    lab.write("hup-a.conf", &a_conf(140, &two_vips, true));
    a.signal(Signal::SIGHUP);
    assert!(a.wait_log("Reload finished", Duration::from_secs(3)));
    wait_holders(&lab, "eth0", VIP3, &[0], Duration::from_secs(2));
    wait_holders(&lab, "eth0", VIP4, &[0], Duration::from_secs(2));
    wait_holders(&lab, "eth0", VIP, &[], Duration::from_secs(2));
    // VI_2 has no peer: Master after its Master_Down_Interval.
    wait_holders(&lab, "eth0", VIP2, &[0], Duration::from_secs(6));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(vrrp_socket_inodes(a.pid), sockets, "socket reopened");

    // VI_2 removed again.
    lab.write("hup-a.conf", &a_conf(140, &two_vips, false));
    a.signal(Signal::SIGHUP);
    assert!(a.wait_log(
        "(VI_2) removed from the configuration",
        Duration::from_secs(3)
    ));
    wait_holders(&lab, "eth0", VIP2, &[], Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(1500));
    let frames = cap.stop();

    let log_a = a.log_text();
    assert_eq!(
        log_a.matches("(VI_1) Entering MASTER STATE").count(),
        1,
        "VI_1 must not re-enter MASTER on reload:\n{log_a}"
    );
    // Only the startup one.
    assert_eq!(
        log_a.matches("(VI_1) Entering BACKUP STATE").count(),
        1,
        "{log_a}"
    );
    let log_b = b.log_text();
    assert!(!log_b.contains("Entering MASTER STATE"), "{log_b}");
    // The Backup reports (without dropping) the other address list.
    assert!(
        log_b.contains("carries other addresses than ours"),
        "{log_b}"
    );

    let vi1: Vec<(f64, u8)> = frames
        .iter()
        // Each advert with its own frame's time (other frames are skipped).
        .filter_map(|f| f.vrrp4().map(|advert| (advert, f.ts)))
        .filter(|((s, vrid, _), _)| *s == ip4(0, 0) && *vrid == 51)
        .map(|((_, _, p), ts)| (ts, p))
        .collect();
    assert!(vi1.len() >= 5, "{vi1:?}");
    assert!(vi1.iter().all(|(_, p)| *p == 150 || *p == 140), "{vi1:?}");
    assert_eq!(vi1.first().map(|a| a.1), Some(150));
    assert_eq!(vi1.last().map(|a| a.1), Some(140));
    for pair in vi1.windows(2) {
        assert!(pair[1].0 - pair[0].0 < 1.2, "advert gap in {vi1:?}");
    }
    let vi2_stop = frames
        .iter()
        .filter_map(|f| f.vrrp4())
        .any(|(s, vrid, p)| s == ip4(0, 0) && vrid == 52 && p == 0);
    assert!(vi2_stop, "no priority 0 advert for the removed VI_2");
}

/// `vrrp_strict` (hence no_accept): the Master holds the VIP but drops
/// traffic to it (nftables table `inet keepalived`, read back with `nft`);
/// a Backup with `accept` that takes over answers it; SIGTERM removes the
/// table.
#[test]
fn strict_mode_master_drops_traffic_to_its_vip() {
    if !can_run(
        "strict_mode_master_drops_traffic_to_its_vip",
        &["nft", "ping"],
    ) {
        return;
    }
    let mut lab = Lab::new("strict", 3, 1);
    let plain = |priority: u8, global: &str, extra: &str| {
        format!(
            "global_defs {{\n    router_id lab\n{global}\n}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {VIP}/24
    }}
{extra}
}}
"
        )
    };
    let a = start(&mut lab, 0, &plain(150, "    vrrp_strict", ""));
    let b = start(&mut lab, 1, &plain(100, "", "    accept"));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    let pings = |lab: &Lab, addr: &str| -> bool {
        let out = lab.exec(
            2,
            &[
                "sh",
                "-c",
                &format!("ping -c1 -W1 {addr} >/dev/null && echo yes || echo no"),
            ],
        );
        out.trim() == "yes"
    };
    let listing = lab.exec(0, &["nft", "list", "table", "inet", "keepalived"]);
    assert!(listing.contains(VIP), "{listing}");
    assert!(listing.contains("ip daddr @vips drop"), "{listing}");
    assert!(
        !pings(&lab, VIP),
        "the strict Master answered a ping to its VIP"
    );
    assert!(
        pings(&lab, &ip4(0, 0).to_string()),
        "its own address must answer"
    );

    a.signal(Signal::SIGTERM);
    assert!(a.wait_exit(Duration::from_secs(5)).is_some());
    wait_holders(&lab, "eth0", VIP, &[1], Duration::from_secs(5));
    // Neighbours learn the new holder from its gratuitous ARP.
    let answered = (0..5).any(|_| pings(&lab, VIP));
    assert!(answered, "the accept-mode Master must answer");
    let tables = lab.exec(0, &["nft", "list", "tables"]);
    assert!(!tables.contains("keepalived"), "{tables}");
    drop(b);
}

/// SIGHUP that switches a Master from `no_accept` to `accept` while another
/// instance keeps `no_accept` (so the nftables table stays): the first
/// Master's VIP leaves the drop set and answers; the other's stays
/// filtered. Switching back filters it again. Neither re-enters MASTER.
#[test]
fn sighup_from_no_accept_to_accept_unfilters_the_vip() {
    if !can_run(
        "sighup_from_no_accept_to_accept_unfilters_the_vip",
        &["nft", "ping"],
    ) {
        return;
    }
    const KEPT: &str = "10.77.0.102";
    let mut lab = Lab::new("acc", 2, 1);
    let text = |first: &str| -> String {
        let mut n = node(150);
        n.extra = first;
        let mut kept = node(150);
        kept.extra = "    no_accept";
        format!(
            "global_defs {{\n    router_id lab\n}}\n{}{}",
            instance_conf(&n, 51, "eth0", VIP, "VI_1"),
            instance_conf(&kept, 52, "eth0", KEPT, "VI_2")
        )
    };
    let path = lab.write("acc.conf", &text("    no_accept"));
    let pid = lab.dir.join("acc.pid");
    let (path_s, pid_s) = (path.display().to_string(), pid.display().to_string());
    let a = lab.spawn(
        0,
        "acc",
        &[BIN, "-n", "-l", "-D", "-f", &path_s, "-p", &pid_s],
    );
    // No peer: both become Master after their Master_Down_Interval.
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    wait_holders(&lab, "eth0", KEPT, &[0], Duration::from_secs(8));
    let pings = |addr: &str| -> bool {
        let out = lab.exec(
            1,
            &[
                "sh",
                "-c",
                &format!("ping -c1 -W1 {addr} >/dev/null && echo yes || echo no"),
            ],
        );
        out.trim() == "yes"
    };
    let drop_set = || lab.exec(0, &["nft", "list", "set", "inet", "keepalived", "vips"]);
    let listing = drop_set();
    assert!(listing.contains(VIP) && listing.contains(KEPT), "{listing}");
    assert!(!pings(VIP), "a no_accept Master answered");

    lab.write("acc.conf", &text("    accept"));
    a.signal(Signal::SIGHUP);
    assert!(a.wait_log("Reload finished", Duration::from_secs(3)));
    let listing = drop_set();
    assert!(
        !listing.contains(VIP),
        "still filtered after accept:\n{listing}"
    );
    assert!(listing.contains(KEPT), "{listing}");
    assert!(pings(VIP), "the accept Master must answer");
    assert!(!pings(KEPT), "the no_accept Master answered");

    lab.write("acc.conf", &text("    no_accept"));
    a.signal(Signal::SIGHUP);
    let start = Instant::now();
    while a.log_text().matches("Reload finished").count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(3), "second reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    let listing = drop_set();
    assert!(listing.contains(VIP) && listing.contains(KEPT), "{listing}");
    assert!(!pings(VIP), "filtered again after no_accept");
    let log = a.log_text();
    for name in ["VI_1", "VI_2"] {
        assert_eq!(
            log.matches(&format!("({name}) Entering MASTER STATE"))
                .count(),
            1,
            "{log}"
        );
    }
}

/// track_file is watched with inotify, as in keepalived: the Master's
/// priority changes (seen as an immediate advert on the wire) right after
/// the file is written, not at the next poll; a file replaced by rename is
/// seen too. The Master stays Master throughout (150 - 20 > 100).
#[test]
fn track_file_change_is_seen_at_once() {
    if !can_run("track_file_change_is_seen_at_once", &["tcpdump"]) {
        return;
    }
    let mut lab = Lab::new("tfile", 2, 1);
    let state = lab.dir.join("maint");
    std::fs::write(&state, "0\n").unwrap();
    let mut n = node(150);
    n.extra = "    track_file {\n        maint weight -20\n    }";
    let text = format!(
        "track_file maint {{\n    file {}\n}}\n{}",
        state.display(),
        conf(&n)
    );
    let _a = start(&mut lab, 0, &text);
    let _b = start(&mut lab, 1, &conf(&node(100)));
    wait_holders(&lab, "eth0", VIP, &[0], Duration::from_secs(8));
    let cap = lab.capture(1, "eth0", "vrrp");
    std::thread::sleep(Duration::from_millis(700));
    let epoch = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let written = epoch(std::time::SystemTime::now());
    std::fs::write(&state, "1\n").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // Back to 0 by rename (the usual atomic replace).
    let tmp = lab.dir.join("maint.new");
    std::fs::write(&tmp, "0\n").unwrap();
    let renamed = epoch(std::time::SystemTime::now());
    std::fs::rename(&tmp, &state).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(lab.holders("eth0", VIP), [0]);
    let frames = cap.stop();
    let from_a = adverts_from(&frames, ip4(0, 0));
    let first = |prio: u8, after: f64| {
        from_a
            .iter()
            .find(|(ts, p)| *p == prio && *ts >= after)
            .map(|(ts, _)| ts - after)
    };
    let lowered = first(130, written).expect("an advert with priority 130");
    let restored = first(150, renamed).expect("an advert with priority 150");
    assert!(
        lowered < 0.3,
        "priority 130 advert {lowered:.3} s after the write"
    );
    assert!(
        restored < 0.3,
        "priority 150 advert {restored:.3} s after the rename"
    );
}
