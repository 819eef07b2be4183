//! Interop with the real keepalived 2.2.7 (Debian package) as the VRRP peer
//! (root, namespaces): VRRPv2 with PASS auth, VRRPv2 with AH, VRRPv3 over
//! IPv4 and IPv6. Each side fails over to the other and back, and neither
//! logs a receive error about the other's packets.

mod common;

use std::time::{Duration, Instant};

use common::lab::{can_run, ip4, Lab, Proc};
use nix::sys::signal::Signal;

const BIN: &str = env!("CARGO_BIN_EXE_keepalived");
const REAL: &str = "/usr/sbin/keepalived";

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    vip: &'static str,
    version: u8,
    advert_int: &'static str,
    auth: &'static str,
    /// Unicast to the other node with this `unicast_ttl` instead of multicast.
    unicast_ttl: Option<u8>,
}

fn conf(case: Case, node: usize, priority: u8) -> String {
    let unicast = match case.unicast_ttl {
        Some(ttl) => format!(
            "    unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}\n    unicast_ttl {ttl}\n",
            ip4(0, node),
            ip4(0, 1 - node)
        ),
        None => String::new(),
    };
    format!(
        "global_defs {{
    router_id interop
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 42
    version {}
    priority {priority}
    advert_int {}
{}
{unicast}    virtual_ipaddress {{
        {}
    }}
}}
",
        case.version, case.advert_int, case.auth, case.vip
    )
}

enum Who {
    Ours,
    Real,
}

fn start(lab: &mut Lab, node: usize, who: &Who, text: &str, run: usize) -> Proc {
    let conf = lab
        .write(&format!("n{node}-{run}.conf"), text)
        .display()
        .to_string();
    let pid = lab
        .dir
        .join(format!("n{node}-{run}.pid"))
        .display()
        .to_string();
    let vrrp_pid = lab
        .dir
        .join(format!("n{node}-{run}.vrrp.pid"))
        .display()
        .to_string();
    let name = format!("n{node}-{run}");
    match who {
        Who::Ours => lab.spawn(
            node,
            &name,
            &[BIN, "-n", "-l", "-D", "-f", &conf, "-p", &pid],
        ),
        Who::Real => lab.spawn(
            node,
            &name,
            &[
                REAL, "-n", "-l", "-D", "-P", "-f", &conf, "-p", &pid, "-r", &vrrp_pid,
            ],
        ),
    }
}

fn wait_holder(lab: &Lab, addr: &str, want: usize, timeout: Duration) {
    let start = Instant::now();
    loop {
        let holders = lab.holders("eth0", addr);
        if holders == [want] {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{addr} on {holders:?}, expected [{want}]"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines where either daemon complains about a received packet.
fn receive_errors(log: &str) -> Vec<String> {
    const PATTERNS: [&str; 10] = [
        "bogus", "invalid", "mismatch", "Invalid", "wrong", "dropped", "auth", "checksum", "ttl",
        "length",
    ];
    log.lines()
        .filter(|l| PATTERNS.iter().any(|p| l.contains(p)))
        // keepalived prints its config (including auth lines) at -D; not errors.
        .filter(|l| {
            !l.contains("Authentication") && !l.contains("auth_type") && !l.contains("Auth ")
        })
        .map(str::to_owned)
        .collect()
}

fn interop(case: Case) {
    if !can_run(case.name, &[REAL]) {
        return;
    }
    let mut lab = Lab::new("iop", 2, 1);
    let addr = case.vip.split('/').next().unwrap();
    let mut logs = Vec::new();
    // Round 1: real keepalived is the higher priority; round 2: we are.
    for (round, (high, low)) in [(Who::Real, Who::Ours), (Who::Ours, Who::Real)]
        .into_iter()
        .enumerate()
    {
        let h = start(&mut lab, 0, &high, &conf(case, 0, 150), round * 10);
        let l = start(&mut lab, 1, &low, &conf(case, 1, 100), round * 10 + 1);
        wait_holder(&lab, addr, 0, Duration::from_secs(10));
        // The higher side fails: the lower one takes over...
        h.signal(Signal::SIGTERM);
        assert!(
            h.wait_exit(Duration::from_secs(5)).is_some(),
            "SIGTERM exit"
        );
        wait_holder(&lab, addr, 1, Duration::from_secs(5));
        // ...and gives the VIP back when it returns (preemption).
        let h2 = start(&mut lab, 0, &high, &conf(case, 0, 150), round * 10 + 2);
        wait_holder(&lab, addr, 0, Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(lab.holders("eth0", addr), [0], "flapped after preemption");
        for p in [&l, &h2] {
            p.signal(Signal::SIGTERM);
            let _ = p.wait_exit(Duration::from_secs(5));
        }
        for p in [h, l, h2] {
            logs.push((p.log.clone(), p.log_text()));
        }
    }
    for (path, text) in &logs {
        let errors = receive_errors(text);
        assert!(
            errors.is_empty(),
            "{}: receive errors:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
    // Each daemon did enter MASTER in every round it was the higher priority.
    let masters = logs
        .iter()
        .filter(|(_, t)| t.contains("Entering MASTER STATE"))
        .count();
    assert!(
        masters >= 4,
        "expected MASTER transitions from both daemons"
    );
}

#[test]
fn interop_vrrpv2_pass_auth() {
    interop(Case {
        name: "interop_vrrpv2_pass_auth",
        vip: "10.77.0.100/24",
        version: 2,
        advert_int: "1",
        auth: "    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }",
        unicast_ttl: None,
    });
}

#[test]
fn interop_vrrpv2_ah_auth() {
    interop(Case {
        name: "interop_vrrpv2_ah_auth",
        vip: "10.77.0.100/24",
        version: 2,
        advert_int: "1",
        auth: "    authentication {\n        auth_type AH\n        auth_pass s3cret\n    }",
        unicast_ttl: None,
    });
}

#[test]
fn interop_vrrpv3_ipv4() {
    interop(Case {
        name: "interop_vrrpv3_ipv4",
        vip: "10.77.0.100/24",
        version: 3,
        advert_int: "0.5",
        auth: "",
        unicast_ttl: None,
    });
}

#[test]
fn interop_vrrpv3_ipv6() {
    interop(Case {
        name: "interop_vrrpv3_ipv6",
        vip: "fd77::100/64",
        version: 3,
        advert_int: "0.5",
        auth: "",
        unicast_ttl: None,
    });
}

/// keepalived treats the TTL of a unicast AH packet as mutable (it may drop
/// across routers), so a `unicast_ttl` below 255 must not break the ICV.
#[test]
fn interop_vrrpv2_ah_unicast_ttl() {
    interop(Case {
        name: "interop_vrrpv2_ah_unicast_ttl",
        vip: "10.77.0.100/24",
        version: 2,
        advert_int: "1",
        auth: "    authentication {\n        auth_type AH\n        auth_pass s3cret\n    }",
        unicast_ttl: Some(64),
    });
}

/// Unicast AH with the default TTL 255.
#[test]
fn interop_vrrpv2_ah_unicast() {
    interop(Case {
        name: "interop_vrrpv2_ah_unicast",
        vip: "10.77.0.100/24",
        version: 2,
        advert_int: "1",
        auth: "    authentication {\n        auth_type AH\n        auth_pass s3cret\n    }",
        unicast_ttl: Some(255),
    });
}
