//! Failover benchmark (root, namespaces; run by tests/bench/ci_vrrp_failover.sh):
//! this daemon and real keepalived 2.2.7 on the same three-namespace LAN and
//! configs, VRRPv2 advert_int 1 and VRRPv3 advert_int 0.1, priority 100 on
//! both routers. A capture in an observer namespace times, per run, the gap
//! from the old master's last advert (SIGKILL) or its priority-0 advert
//! (SIGTERM) to the new master's first advert and first gratuitous ARP.
//! Prints medians of RUNS runs beside the RFC bound, plus RSS, process count
//! and SIGTERM-to-exit time. Figures only, no timing assertions.
//!
//! The daemon under test is $KEEPALIVED_RS_BIN (default: the musl release
//! build), so RSS is the shipped binary's.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::lab::{ip4, Frame, Lab, Proc};
use nix::sys::signal::Signal;

const REAL: &str = "/usr/sbin/keepalived";
const RUNS: usize = 5;
const VIP: &str = "10.77.0.100";

fn ours() -> String {
    std::env::var("KEEPALIVED_RS_BIN").unwrap_or_else(|_| {
        let musl = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/x86_64-unknown-linux-musl/release/keepalived"
        );
        if std::path::Path::new(musl).exists() {
            musl.to_owned()
        } else {
            env!("CARGO_BIN_EXE_keepalived").to_owned()
        }
    })
}

#[derive(Clone, Copy)]
struct Case {
    label: &'static str,
    version: u8,
    advert_int: f64,
}

impl Case {
    /// RFC 3768 / RFC 5798 Master_Down_Interval and Skew_Time at priority 100.
    fn skew(&self) -> f64 {
        156.0 / 256.0
            * if self.version == 3 {
                self.advert_int
            } else {
                1.0
            }
    }
    fn master_down(&self) -> f64 {
        3.0 * self.advert_int + self.skew()
    }
}

fn conf(case: Case) -> String {
    format!(
        "global_defs {{\n    router_id bench\n}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 77\n    version {}\n    priority 100\n    advert_int {}\n    authentication {{\n        auth_type PASS\n        auth_pass bench\n    }}\n    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n",
        case.version, case.advert_int
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Daemon {
    Ours,
    Real,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Ours => "keepalived-rs",
            Daemon::Real => "keepalived 2.2.7",
        }
    }
}

fn start(lab: &mut Lab, node: usize, daemon: Daemon, text: &str, run: usize) -> Proc {
    let conf = lab
        .write(&format!("b{node}-{run}.conf"), text)
        .display()
        .to_string();
    let pid = lab
        .dir
        .join(format!("b{node}-{run}.pid"))
        .display()
        .to_string();
    let vpid = lab
        .dir
        .join(format!("b{node}-{run}.vpid"))
        .display()
        .to_string();
    let name = format!("b{node}-{run}");
    match daemon {
        Daemon::Ours => {
            let bin = ours();
            lab.spawn(node, &name, &[&bin, "-n", "-l", "-f", &conf, "-p", &pid])
        }
        Daemon::Real => lab.spawn(
            node,
            &name,
            &[REAL, "-n", "-l", "-P", "-f", &conf, "-p", &pid, "-r", &vpid],
        ),
    }
}

fn holder(lab: &Lab) -> Option<usize> {
    let h = lab.holders("eth0", VIP);
    (h.len() == 1).then(|| h[0])
}

fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Process tree of `pid` (itself and descendants) from /proc.
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() && all.len() < 64 {
        let p = all[i];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|s| s.parse::<i32>().ok());
            if ppid == Some(p) && !all.contains(&child) {
                all.push(child);
            }
        }
        i += 1;
    }
    all
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Figures {
    hard_advert: Vec<f64>,
    hard_garp: Vec<f64>,
    soft_advert: Vec<f64>,
    exit_ms: Vec<f64>,
    rss_kib: u64,
    processes: usize,
}

fn adverts(frames: &[Frame], src: Ipv4Addr) -> Vec<(f64, u8)> {
    frames
        .iter()
        .filter_map(|f| {
            f.vrrp4()
                .filter(|(s, _, _)| *s == src)
                .map(|(_, _, p)| (f.ts, p))
        })
        .collect()
}

fn measure(daemon: Daemon, case: Case) -> Figures {
    let mut lab = Lab::new("bench", 3, 1);
    let text = conf(case);
    let mut procs: [Option<Proc>; 2] = [Some(start(&mut lab, 0, daemon, &text, 0)), None];
    let mut figures = Figures {
        hard_advert: vec![],
        hard_garp: vec![],
        soft_advert: vec![],
        exit_ms: vec![],
        rss_kib: 0,
        processes: 0,
    };
    let master = wait_for(Duration::from_secs(10), || holder(&lab)).expect("first master");
    assert_eq!(master, 0);
    procs[1] = Some(start(&mut lab, 1, daemon, &text, 1));
    std::thread::sleep(Duration::from_secs(2));
    let pids = tree(procs[0].as_ref().unwrap().pid);
    figures.processes = pids.len();
    figures.rss_kib = pids.iter().map(|p| rss_kib(*p)).sum();
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let mut run = 2;
    let mut master = 0;
    for graceful in [false, true] {
        for _ in 0..RUNS {
            let old = master;
            let new = 1 - old;
            let cap = lab.capture(2, "eth0", "vrrp or arp");
            // At least one advert of the old master before the kill.
            std::thread::sleep(Duration::from_secs_f64(case.advert_int + 0.2));
            let victim = procs[old].take().unwrap();
            // A crash takes every process of the daemon (keepalived runs a
            // parent and a VRRP child).
            let victims = tree(victim.pid);
            if graceful {
                victim.signal(Signal::SIGTERM);
            } else {
                for pid in &victims {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGKILL);
                }
            }
            if let Some(took) = victim.wait_exit(Duration::from_secs(10)) {
                if graceful {
                    figures.exit_ms.push(took.as_secs_f64() * 1e3);
                }
            }
            wait_for(Duration::from_secs(10), || {
                lab.has_addr(new, "eth0", VIP).then_some(())
            })
            .expect("failover");
            master = new;
            if !graceful {
                // A SIGKILLed router cannot remove its VIP: clear it as a
                // reboot would, so both daemons restart from the same state.
                let _ = std::process::Command::new("ip")
                    .args([
                        "-n",
                        lab.ns(old),
                        "addr",
                        "del",
                        &format!("{VIP}/24"),
                        "dev",
                        "eth0",
                    ])
                    .output();
            }
            std::thread::sleep(Duration::from_millis(200));
            let frames = cap.stop();
            let old_adverts = adverts(&frames, ip4(0, old));
            let new_adverts = adverts(&frames, ip4(0, new));
            let reference = if graceful {
                old_adverts.iter().find(|(_, p)| *p == 0).map(|a| a.0)
            } else {
                old_adverts.last().map(|a| a.0)
            };
            if let Some(t0) = reference {
                if let Some(first) = new_adverts.iter().find(|(t, p)| *t > t0 && *p > 0) {
                    let gap = first.0 - t0;
                    if graceful {
                        figures.soft_advert.push(gap);
                    } else {
                        figures.hard_advert.push(gap);
                        let mac = frames
                            .iter()
                            .find(|f| f.vrrp4().is_some_and(|(s, _, _)| s == ip4(0, new)))
                            .map(|f| f.src_mac());
                        if let Some(garp) = frames
                            .iter()
                            .find(|f| f.ts > t0 && f.is_garp_for(vip) && Some(f.src_mac()) == mac)
                        {
                            figures.hard_garp.push(garp.ts - t0);
                        }
                    }
                }
            }
            procs[old] = Some(start(&mut lab, old, daemon, &text, run));
            run += 1;
            // Let the restarted router settle as Backup.
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
    figures
}

#[test]
#[ignore = "benchmark: run by tests/bench/ci_vrrp_failover.sh"]
fn bench_vrrp_failover() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the failover benchmark needs root"
    );
    let cases = [
        Case {
            label: "v2 adv 1 s",
            version: 2,
            advert_int: 1.0,
        },
        Case {
            label: "v3 adv 0.1 s",
            version: 3,
            advert_int: 0.1,
        },
    ];
    println!("binary under test: {}", ours());
    println!(
        "{:<18} {:<13} {:>14} {:>12} {:>14} {:>10} {:>10} {:>11} {:>9} {:>5}",
        "daemon",
        "case",
        "SIGKILL->advert",
        "->GARP",
        "MDI (RFC)",
        "SIGTERM->",
        "Skew_Time",
        "TERM->exit",
        "RSS KiB",
        "procs"
    );
    for case in cases {
        for daemon in [Daemon::Ours, Daemon::Real] {
            let f = measure(daemon, case);
            println!(
                "{:<18} {:<13} {:>12.4} s {:>10.4} s {:>12.4} s {:>8.4} s {:>8.4} s {:>8.1} ms {:>9} {:>5}   (n={}/{}/{})",
                daemon.name(),
                case.label,
                median(f.hard_advert.clone()),
                median(f.hard_garp.clone()),
                case.master_down(),
                median(f.soft_advert.clone()),
                case.skew(),
                median(f.exit_ms.clone()),
                f.rss_kib,
                f.processes,
                f.hard_advert.len(),
                f.hard_garp.len(),
                f.soft_advert.len(),
            );
        }
    }
}
