//! Network-namespace labs for integration tests: nodes on one or more
//! bridged LANs, processes started inside them, packet captures with
//! tcpdump. Everything a lab creates is removed on drop (processes killed by
//! PID, namespaces deleted), also when the test panics.
//!
//! Addresses repeat across labs (every lab's namespaces are private), so
//! node `i` on LAN `n` is always 10.77.n.(i+1)/24 and fd77:n::(i+1)/64, and
//! its interface on LAN `n` is `eth{n}`.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// True when namespace tests can run. Under plain `cargo test` without root
/// they are skipped with a printed reason; in the test command
/// (KEEPALIVED_RS_FULL_TEST=1) a missing prerequisite fails the test.
pub fn can_run(test: &str, tools: &[&str]) -> bool {
    let full = std::env::var_os("KEEPALIVED_RS_FULL_TEST").is_some();
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_owned());
    }
    for tool in ["ip"].iter().chain(tools) {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let reason = format!("{test}: needs {}", missing.join(", "));
    if full {
        panic!("{reason} (KEEPALIVED_RS_FULL_TEST=1: prerequisites are required)");
    }
    // Written to the process's stderr, not eprintln!: libtest captures that
    // for passing tests, which would hide the skip.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {reason}; run tests/run.sh as root for the full suite"
    );
    false
}

static LAB_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn ip4(lan: usize, node: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, lan as u8, node as u8 + 1)
}

pub fn ip6(lan: usize, node: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd77, lan as u16, 0, 0, 0, 0, 0, node as u16 + 1)
}

/// Run a command, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct Lab {
    prefix: String,
    nodes: Vec<String>,
    lans: usize,
    switch: String,
    pub dir: PathBuf,
    procs: Vec<Child>,
}

impl Lab {
    /// `nodes` namespaces on `lans` bridged LANs.
    pub fn new(tag: &str, nodes: usize, lans: usize) -> Lab {
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("krs{}-{tag}{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/{prefix}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            switch: format!("{prefix}-sw"),
            nodes: (0..nodes).map(|i| format!("{prefix}-n{i}")).collect(),
            lans,
            prefix,
            dir,
            procs: Vec::new(),
        };
        lab.build();
        lab
    }

    fn build(&mut self) {
        let sw = self.switch.clone();
        sh(&["ip", "netns", "add", &sw]);
        for ns in &self.nodes {
            sh(&["ip", "netns", "add", ns]);
        }
        for ns in self.nodes.iter().chain([&sw]) {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ] {
                sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", key]);
            }
        }
        for lan in 0..self.lans {
            let br = format!("br{lan}");
            sh(&["ip", "-n", &sw, "link", "add", &br, "type", "bridge"]);
            // No STP delays and no multicast snooping: a lab LAN is a hub.
            sh(&[
                "ip",
                "-n",
                &sw,
                "link",
                "set",
                &br,
                "type",
                "bridge",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ]);
            sh(&["ip", "-n", &sw, "link", "set", &br, "up"]);
            for (i, ns) in self.nodes.iter().enumerate() {
                let port = format!("p{lan}n{i}");
                let eth = format!("eth{lan}");
                sh(&[
                    "ip", "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", &eth,
                    "netns", ns,
                ]);
                sh(&["ip", "-n", &sw, "link", "set", &port, "master", &br, "up"]);
                sh(&[
                    "ip",
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{}/24", ip4(lan, i)),
                    "dev",
                    &eth,
                ]);
                sh(&[
                    "ip",
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{}/64", ip6(lan, i)),
                    "dev",
                    &eth,
                    "nodad",
                ]);
                sh(&["ip", "-n", ns, "link", "set", &eth, "up"]);
            }
        }
    }

    pub fn ns(&self, node: usize) -> &str {
        &self.nodes[node]
    }

    /// Run a command inside node's namespace and return its stdout.
    pub fn exec(&self, node: usize, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", self.ns(node)];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// `ip -o addr show dev IF` addresses (without prefix) of a node.
    pub fn addrs(&self, node: usize, dev: &str) -> Vec<String> {
        self.exec(node, &["ip", "-o", "addr", "show", "dev", dev])
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet" || *w == "inet6")?;
                Some(words.next()?.split('/').next()?.to_owned())
            })
            .collect()
    }

    pub fn has_addr(&self, node: usize, dev: &str, addr: &str) -> bool {
        self.addrs(node, dev).iter().any(|a| a == addr)
    }

    /// Nodes that hold `addr` on `dev`.
    pub fn holders(&self, dev: &str, addr: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.has_addr(i, dev, addr))
            .collect()
    }

    /// Set a link of a node (or, with `on_switch`, its switch port) up/down.
    pub fn set_port(&self, lan: usize, node: usize, up: bool) {
        let port = format!("p{lan}n{node}");
        sh(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            if up { "up" } else { "down" },
        ]);
    }

    pub fn set_link(&self, node: usize, dev: &str, up: bool) {
        sh(&[
            "ip",
            "-n",
            self.ns(node),
            "link",
            "set",
            dev,
            if up { "up" } else { "down" },
        ]);
    }

    /// Start a process in a node; stdout+stderr go to `dir/name.log`.
    pub fn spawn(&mut self, node: usize, name: &str, args: &[&str]) -> Proc {
        let log = self.dir.join(format!("{name}.log"));
        let file = fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns(node)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
        let pid = child.id() as i32;
        self.procs.push(child);
        Proc { pid, log }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    /// Start tcpdump on a node's interface; returns when it listens.
    pub fn capture(&mut self, node: usize, dev: &str, filter: &str) -> Capture {
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let file = self.dir.join(format!("cap{n}.pcap"));
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                self.ns(node),
                "tcpdump",
                "--immediate-mode",
                "-i",
                dev,
                "-n",
                "-U",
                "-s",
                "2048",
                "-w",
            ])
            .arg(&file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(_) => continue,
                Err(_) => panic!("tcpdump did not start on {dev}"),
            }
        }
        let pid = child.id() as i32;
        self.procs.push(child);
        Capture { pid, file }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.procs {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
        }
        for ns in self.nodes.iter().chain([&self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab files kept in {}", self.dir.display());
        }
        let _ = &self.prefix;
    }
}

/// A process started in a lab node (killed with the lab).
pub struct Proc {
    pub pid: i32,
    pub log: PathBuf,
}

impl Proc {
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig);
    }

    /// SIGKILL and reap (a zombie still holds its pid file and shows in
    /// `killall -0`).
    pub fn kill(&self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        assert!(
            self.wait_exit(Duration::from_secs(5)).is_some(),
            "pid {} survived SIGKILL",
            self.pid
        );
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (bounded) until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether the process has exited (reaps it if so).
    pub fn exited(&self) -> bool {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        match waitpid(
            nix::unistd::Pid::from_raw(self.pid),
            Some(WaitPidFlag::WNOHANG),
        ) {
            Ok(WaitStatus::StillAlive) => false,
            Ok(_) => true,
            Err(_) => true,
        }
    }

    /// Wait (bounded) for exit; returns the time it took.
    pub fn wait_exit(&self, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.exited() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }
}

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Capture timestamp, seconds since the epoch.
    pub ts: f64,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.data[12], self.data[13]])
    }
    /// Bytes after the Ethernet header.
    pub fn payload(&self) -> &[u8] {
        &self.data[14..]
    }
    pub fn src_mac(&self) -> [u8; 6] {
        self.data[6..12].try_into().unwrap()
    }
    /// IPv4 VRRP advert: (source, vrid, priority).
    pub fn vrrp4(&self) -> Option<(Ipv4Addr, u8, u8)> {
        let p = self.payload();
        if self.ethertype() != 0x0800 || p.len() < 28 || p[9] != 112 {
            return None;
        }
        let ihl = usize::from(p[0] & 0xf) * 4;
        let v = p.get(ihl..ihl + 8)?;
        Some((Ipv4Addr::new(p[12], p[13], p[14], p[15]), v[1], v[2]))
    }
    /// IPv6 VRRP advert: (source, vrid, priority).
    pub fn vrrp6(&self) -> Option<(Ipv6Addr, u8, u8)> {
        let p = self.payload();
        if self.ethertype() != 0x86dd || p.len() < 48 || p[6] != 112 {
            return None;
        }
        let src: [u8; 16] = p[8..24].try_into().ok()?;
        Some((Ipv6Addr::from(src), p[41], p[42]))
    }
    /// Gratuitous ARP for `ip` (sender = target = ip).
    pub fn is_garp_for(&self, ip: Ipv4Addr) -> bool {
        let p = self.payload();
        self.ethertype() == 0x0806
            && p.len() >= 28
            && p[14..18] == ip.octets()
            && p[24..28] == ip.octets()
    }
    /// Unsolicited neighbour advertisement for `target`.
    pub fn is_na_for(&self, target: Ipv6Addr) -> bool {
        let p = self.payload();
        self.ethertype() == 0x86dd
            && p.len() >= 64
            && p[6] == 58
            && p[40] == 136
            && p[48..64] == target.octets()
    }
}

pub struct Capture {
    pid: i32,
    pub file: PathBuf,
}

impl Capture {
    /// Stop tcpdump (it flushes on SIGTERM... with -U each packet is
    /// already written) and read the frames.
    pub fn stop(self) -> Vec<Frame> {
        let pid = nix::unistd::Pid::from_raw(self.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && nix::sys::signal::kill(pid, None).is_ok() {
            let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            std::thread::sleep(Duration::from_millis(10));
        }
        read_pcap(&self.file)
    }

    /// Frames so far, without stopping.
    pub fn frames(&self) -> Vec<Frame> {
        read_pcap(&self.file)
    }
}

/// Read a classic pcap file (microsecond or nanosecond timestamps).
pub fn read_pcap(path: &Path) -> Vec<Frame> {
    let mut bytes = Vec::new();
    if fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .is_err()
        || bytes.len() < 24
    {
        return Vec::new();
    }
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let nanos = match magic {
        0xa1b2c3d4 => false,
        0xa1b23c4d => true,
        _ => panic!("{}: not a little-endian pcap file", path.display()),
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let word = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        let (sec, frac, caplen) = (word(0), word(4), word(8) as usize);
        let end = at + 16 + caplen;
        if end > bytes.len() {
            break;
        }
        let ts = f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        frames.push(Frame {
            ts,
            data: bytes[at + 16..end].to_vec(),
        });
        at = end;
    }
    frames
}
