//! Network-namespace labs for integration tests: nodes on one or more
//! bridged LANs (or joined directly by veth pairs, [`Lab::veth`]),
//! processes started inside them, our own code run on a thread that entered
//! a node's namespace ([`Netns::run`]), packet captures with tcpdump.
//! Everything a lab creates is removed on drop (processes killed by PID,
//! namespaces deleted), also when the test panics.
//!
//! Addresses repeat across labs (every lab's namespaces are private), so
//! node `i` on LAN `n` is always 10.77.n.(i+1)/24 and fd77:n::(i+1)/64, and
//! its interface on LAN `n` is `eth{n}`.
//!
//! Also the process hygiene every test here shares: external commands run
//! with a time limit ([`output_bounded`], [`sh`]), and every child a test
//! starts is owned by a [`ChildGuard`] that kills and reaps it by PID when
//! the test ends, panics included.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// How long one [`sh`] command (and so [`Lab::exec`]) may run.
pub const SH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a [`ChildGuard`] gives a child between SIGTERM and SIGKILL,
/// unless told otherwise.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long a SIGKILLed child may take to be reaped before we give up on it
/// (only a process stuck in the kernel takes that long).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// True when namespace tests can run. Under plain `cargo test` without root
/// they are skipped with a printed reason; in the test command
/// (KEEPALIVED_RS_FULL_TEST=1) a missing prerequisite fails the test.
/// A tool is a command name or an absolute path.
pub fn can_run(test: &str, tools: &[&str]) -> bool {
    let full = std::env::var_os("KEEPALIVED_RS_FULL_TEST").is_some();
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_owned());
    }
    for tool in ["ip"].iter().chain(tools) {
        let found = output_bounded(
            Command::new("sh").args(["-c", &format!("command -v {tool}")]),
            Duration::from_secs(10),
        )
        .status
        .success();
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

/// Run a command (for at most [`SH_TIMEOUT`]), panicking with its output
/// when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = output_bounded(Command::new(args[0]).args(&args[1..]), SH_TIMEOUT);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` every 50 ms until it holds; panics naming `what` when it
/// still does not after `timeout` (bounded in time and in rounds).
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    let rounds = timeout.as_millis() / 50 + 1;
    for _ in 0..rounds {
        if check() {
            return;
        }
        if start.elapsed() >= timeout {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// `Command::output` with a time limit: stdin is null, stdout and stderr
/// are collected (both at once, so a child filling one pipe cannot stall
/// on it). Past `limit` the child is killed by its PID and reaped, and the
/// test panics naming the command and the limit.
pub fn output_bounded(cmd: &mut Command, limit: Duration) -> Output {
    try_output_bounded(cmd, limit).unwrap_or_else(|e| panic!("{e}"))
}

/// [`output_bounded`] returning the failure instead of panicking (for
/// `Drop`, where a panic would abort).
pub fn try_output_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let mut pipes: [Option<OwnedFd>; 2] = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ];
    let mut bufs = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + limit;
    let mut status = None;
    loop {
        if status.is_none() {
            status = child.try_wait().map_err(|e| format!("{what}: wait: {e}"))?;
        }
        if let (Some(status), [None, None]) = (status, &pipes) {
            let [stdout, stderr] = bufs;
            return Ok(Output {
                status,
                stdout,
                stderr,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let pid = child.id();
            // std's Child signals this PID only while it is unreaped.
            let _ = child.kill();
            let kill_deadline = Instant::now() + KILL_WAIT;
            let mut reaped = status.is_some();
            while !reaped && Instant::now() < kill_deadline {
                reaped = matches!(child.try_wait(), Ok(Some(_)) | Err(_));
                std::thread::sleep(Duration::from_millis(1));
            }
            let state = match (status.is_some(), reaped) {
                (true, _) => "had exited, but its output was still open",
                (false, true) => "killed and reaped",
                (false, false) => "killed, but NOT reaped",
            };
            return Err(format!(
                "{what} did not finish within {limit:?} (pid {pid} {state}); stdout so far: {:?}; stderr so far: {:?}",
                String::from_utf8_lossy(&bufs[0]),
                String::from_utf8_lossy(&bufs[1]),
            ));
        }
        // Short polls: the exit of a child whose output a grandchild still
        // holds open is seen too.
        let slice = left.min(Duration::from_millis(50));
        let open: Vec<usize> = (0..2).filter(|&i| pipes[i].is_some()).collect();
        if open.is_empty() {
            std::thread::sleep(slice.min(Duration::from_millis(1)));
            continue;
        }
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = open
                .iter()
                .filter_map(|&i| pipes[i].as_ref())
                .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                .collect();
            let timeout = PollTimeout::try_from(slice).unwrap_or(PollTimeout::ZERO);
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("{what}: poll: {e}")),
            }
            fds.iter().map(|fd| fd.any().unwrap_or(false)).collect()
        };
        for (&i, ready) in open.iter().zip(ready) {
            if !ready {
                continue;
            }
            let mut chunk = [0u8; 65536];
            let Some(fd) = pipes[i].as_ref() else {
                continue;
            };
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => pipes[i] = None,
                Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => pipes[i] = None,
            }
        }
    }
}

/// Where a child stands: running, or reaped (with its status, `None` when
/// waitpid could not tell it).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Life {
    Running,
    Reaped(Option<WaitStatus>),
}

/// A child process of the test process, by PID. Clones share one record,
/// and the child is reaped only through it: a signal is sent only while
/// the child is unreaped, so it can never reach a PID the kernel has
/// reused. Dropping a handle does nothing; see [`ChildGuard`].
#[derive(Clone)]
pub struct ChildHandle {
    pid: Pid,
    life: Arc<Mutex<Life>>,
}

impl ChildHandle {
    fn new(pid: Pid) -> ChildHandle {
        ChildHandle {
            pid,
            life: Arc::new(Mutex::new(Life::Running)),
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn lock(&self) -> MutexGuard<'_, Life> {
        self.life.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `sig` unless the child was reaped.
    pub fn signal(&self, sig: Signal) {
        let life = self.lock();
        if *life == Life::Running {
            let _ = kill(self.pid, sig);
        }
    }

    /// Reaps the child if it has exited; true once it is gone.
    pub fn exited(&self) -> bool {
        let mut life = self.lock();
        if *life == Life::Running {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(status) => *life = Life::Reaped(Some(status)),
                Err(_) => *life = Life::Reaped(None),
            }
        }
        *life != Life::Running
    }

    /// How the child ended, once reaped (`None` while running, or when
    /// waitpid failed).
    pub fn status(&self) -> Option<WaitStatus> {
        match *self.lock() {
            Life::Reaped(status) => status,
            Life::Running => None,
        }
    }

    /// Waits (bounded, polling every millisecond) until the child is gone;
    /// returns the time it took, `None` past `timeout`.
    pub fn wait_exit(&self, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if self.exited() {
                return Some(start.elapsed());
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGKILL and reap (bounded); false if it is still not gone.
    pub fn kill(&self) -> bool {
        self.signal(Signal::SIGKILL);
        self.wait_exit(KILL_WAIT).is_some()
    }

    /// Unless already gone: SIGTERM, up to `grace` to exit, then SIGKILL
    /// (at once for a zero grace); reaped either way. False if the child
    /// survived even SIGKILL (it is reported on stderr).
    pub fn stop(&self, grace: Duration) -> bool {
        if self.exited() {
            return true;
        }
        if !grace.is_zero() {
            self.signal(Signal::SIGTERM);
            if self.wait_exit(grace).is_some() {
                return true;
            }
        }
        let gone = self.kill();
        if !gone {
            eprintln!("pid {} survived SIGKILL for {KILL_WAIT:?}", self.pid);
        }
        gone
    }
}

/// Owns a child of the test: when dropped (the test ended, or panicked)
/// before the child was reaped, the child gets SIGTERM, `grace` to exit,
/// then SIGKILL, and is reaped. A child that already exited is only
/// reaped.
pub struct ChildGuard {
    handle: ChildHandle,
    what: String,
    grace: Duration,
}

impl ChildGuard {
    /// `what` names the child in messages.
    pub fn new(pid: Pid, what: impl Into<String>) -> ChildGuard {
        ChildGuard {
            handle: ChildHandle::new(pid),
            what: what.into(),
            grace: STOP_GRACE,
        }
    }

    /// Takes over a spawned child. Its pipes, if any, are closed: take them
    /// first.
    pub fn from_child(child: Child, what: impl Into<String>) -> ChildGuard {
        // Dropping a std Child neither kills nor reaps it: the guard does.
        ChildGuard::new(Pid::from_raw(child.id() as i32), what)
    }

    /// Time between SIGTERM and SIGKILL on drop (zero: SIGKILL at once).
    pub fn with_grace(mut self, grace: Duration) -> ChildGuard {
        self.grace = grace;
        self
    }

    pub fn pid(&self) -> Pid {
        self.handle.pid
    }

    /// A handle sharing this child's record (it does not own the child).
    pub fn handle(&self) -> ChildHandle {
        self.handle.clone()
    }

    /// Waits at most `limit` for the child to exit by itself; past that it
    /// is SIGKILLed, reaped, and the answer is `None` (also when waitpid
    /// could not report a status).
    pub fn wait_bounded(&self, limit: Duration) -> Option<WaitStatus> {
        if self.handle.wait_exit(limit).is_some() {
            return self.handle.status();
        }
        eprintln!(
            "{} (pid {}) still running after {limit:?}: killed",
            self.what, self.handle.pid
        );
        self.handle.kill();
        None
    }

    /// SIGTERM, grace, SIGKILL, reap, as on drop, but now.
    pub fn stop(&self) -> bool {
        self.handle.stop(self.grace)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.handle.exited() {
            if std::thread::panicking() {
                eprintln!("stopping {} (pid {})", self.what, self.handle.pid);
            }
            self.handle.stop(self.grace);
        }
    }
}

/// Forks; the child runs `body` and leaves with `_exit(code)` (101 if
/// `body` panicked), never unwinding into the test (whose labs and guards
/// belong to the parent). The parent gets the child owned by a guard.
///
/// `body` runs in a copy of a multi-threaded process: it must not need
/// locks other threads may have held at the fork.
pub fn fork_guarded(what: &str, body: impl FnOnce() -> i32) -> ChildGuard {
    // SAFETY: the child runs `body` and then `_exit`s; it never returns
    // into the caller.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Parent { child } => ChildGuard::new(child, what),
        ForkResult::Child => {
            let code = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: ends the forked child without running the parent's
            // destructors.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Moves the calling thread into the named network namespace (setns(2):
/// the network namespace is per thread, the rest of the process stays).
pub fn enter_netns(name: &str) -> Result<(), String> {
    let path = format!("/run/netns/{name}");
    let file = fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: `file` is an open namespace descriptor; setns changes only the
    // calling thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns {name}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// A network namespace by name (a lab node, or its switch): commands run
/// in it, with a time limit, and our code runs on a thread that entered it.
/// Cheap to clone into such a thread; it does not own the namespace (the
/// [`Lab`] deletes it).
#[derive(Clone, Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NS ARGS` (for at most [`SH_TIMEOUT`]), which must succeed;
    /// its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// `ip -n NS ARGS` that may fail: its stdout, `None` when it failed.
    pub fn try_ip(&self, args: &[&str]) -> Option<String> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name]).args(args);
        stdout_if_success(&mut cmd)
    }

    /// `ip netns exec NS ARGS` (for at most [`SH_TIMEOUT`]), which must
    /// succeed; its stdout.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// `ip netns exec NS ARGS` that may fail: its stdout, `None` when it
    /// failed.
    pub fn try_exec(&self, args: &[&str]) -> Option<String> {
        stdout_if_success(&mut self.command(args))
    }

    /// A command that runs `args` inside the namespace, for
    /// [`output_bounded`] or spawning.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Runs `body` on a thread that entered this namespace, and returns
    /// its result (a panic in `body` goes on in the caller).
    pub fn run<T: Send + 'static>(&self, body: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(body)
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Starts `body` on a thread that entered this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        body: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let name = self.name.clone();
        std::thread::spawn(move || {
            enter_netns(&name).unwrap_or_else(|e| panic!("{e}"));
            body()
        })
    }
}

/// Runs `cmd` (for at most [`SH_TIMEOUT`]): its stdout when it succeeded.
fn stdout_if_success(cmd: &mut Command) -> Option<String> {
    let out = output_bounded(cmd, SH_TIMEOUT);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub struct Lab {
    prefix: String,
    nodes: Vec<Netns>,
    lans: usize,
    /// The namespace holding the LANs' bridges (none without LANs).
    switch: Option<Netns>,
    pub dir: PathBuf,
    /// Everything started in the lab, stopped on drop.
    procs: Vec<ChildGuard>,
    /// SIGTERM-to-SIGKILL time for processes started from now on.
    grace: Duration,
}

impl Lab {
    /// `nodes` namespaces on `lans` bridged LANs (with no LAN, only the
    /// nodes: join them with [`Lab::veth`]).
    pub fn new(tag: &str, nodes: usize, lans: usize) -> Lab {
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("krs{}-{tag}{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/{prefix}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let netns = |name: String| Netns { name };
        let mut lab = Lab {
            switch: (lans > 0).then(|| netns(format!("{prefix}-sw"))),
            nodes: (0..nodes)
                .map(|i| netns(format!("{prefix}-n{i}")))
                .collect(),
            lans,
            prefix,
            dir,
            procs: Vec::new(),
            grace: Duration::ZERO,
        };
        lab.build();
        lab
    }

    /// Processes started in the lab from now on get SIGTERM and `grace` to
    /// exit before the SIGKILL when the lab is dropped (by default they
    /// are SIGKILLed at once).
    pub fn with_stop_grace(mut self, grace: Duration) -> Lab {
        self.grace = grace;
        self
    }

    /// The lab's namespaces: the nodes, then the switch if there is one.
    fn namespaces(&self) -> impl Iterator<Item = &Netns> {
        self.nodes.iter().chain(&self.switch)
    }

    fn build(&mut self) {
        for ns in self.namespaces() {
            sh(&["ip", "netns", "add", ns.name()]);
        }
        for ns in self.namespaces() {
            ns.ip(&["link", "set", "lo", "up"]);
            // DAD would leave fresh addresses tentative (unusable) for a
            // second.
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ] {
                ns.exec(&["sysctl", "-qw", key]);
            }
        }
        let Some(sw) = &self.switch else {
            return;
        };
        for lan in 0..self.lans {
            let br = format!("br{lan}");
            sw.ip(&["link", "add", &br, "type", "bridge"]);
            // No STP delays and no multicast snooping: a lab LAN is a hub.
            sw.ip(&[
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
            sw.ip(&["link", "set", &br, "up"]);
            for (i, ns) in self.nodes.iter().enumerate() {
                let port = format!("p{lan}n{i}");
                let eth = format!("eth{lan}");
                sw.ip(&[
                    "link",
                    "add",
                    &port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &eth,
                    "netns",
                    ns.name(),
                ]);
                sw.ip(&["link", "set", &port, "master", &br, "up"]);
                ns.ip(&["addr", "add", &format!("{}/24", ip4(lan, i)), "dev", &eth]);
                ns.ip(&[
                    "addr",
                    "add",
                    &format!("{}/64", ip6(lan, i)),
                    "dev",
                    &eth,
                    "nodad",
                ]);
                ns.ip(&["link", "set", &eth, "up"]);
            }
        }
    }

    /// Joins two nodes directly (no switch) with a veth pair: `a = (node,
    /// interface, addresses)` and `b` likewise. Each end gets its addresses
    /// (`addr/len`, in order, so the first IPv4 one is the primary) and is
    /// brought up.
    pub fn veth(&self, a: (usize, &str, &[&str]), b: (usize, &str, &[&str])) {
        sh(&[
            "ip",
            "link",
            "add",
            a.1,
            "netns",
            self.ns(a.0),
            "type",
            "veth",
            "peer",
            "name",
            b.1,
            "netns",
            self.ns(b.0),
        ]);
        for (node, dev, addrs) in [a, b] {
            for cidr in addrs {
                self.add_addr(node, dev, cidr);
            }
            self.set_link(node, dev, true);
        }
    }

    /// A node's namespace, to run commands or our code in.
    pub fn node(&self, node: usize) -> &Netns {
        &self.nodes[node]
    }

    /// A node's namespace name.
    pub fn ns(&self, node: usize) -> &str {
        self.nodes[node].name()
    }

    /// Run a command inside node's namespace (for at most [`SH_TIMEOUT`])
    /// and return its stdout; panics when it fails.
    pub fn exec(&self, node: usize, args: &[&str]) -> String {
        self.nodes[node].exec(args)
    }

    /// A command that runs `args` inside node's namespace, for
    /// [`output_bounded`] or [`Lab::spawn`]-like uses.
    pub fn command(&self, node: usize, args: &[&str]) -> Command {
        self.nodes[node].command(args)
    }

    /// Add an address (`addr/len`) to a node's interface; an IPv6 one
    /// without DAD (`nodad`), like the lab's own.
    pub fn add_addr(&self, node: usize, dev: &str, cidr: &str) {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.nodes[node].ip(&args);
    }

    /// Remove an address (`addr/len`) from a node's interface.
    pub fn del_addr(&self, node: usize, dev: &str, cidr: &str) {
        self.nodes[node].ip(&["addr", "del", cidr, "dev", dev]);
    }

    /// Waits (at most 10 s) until `addr:port` accepts TCP connections from
    /// inside the node; panics if it never does.
    pub fn wait_tcp(&self, node: usize, addr: &str, port: u16) {
        let probe = format!(
            "import socket,sys\ns=socket.socket()\ns.settimeout(0.5)\nsys.exit(s.connect_ex(('{addr}',{port})))"
        );
        let start = Instant::now();
        for _ in 0..100 {
            if start.elapsed() >= Duration::from_secs(10) {
                break;
            }
            let out = output_bounded(
                &mut self.command(node, &["python3", "-c", &probe]),
                Duration::from_secs(5),
            );
            if out.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{addr}:{port} never came up in {}", self.ns(node));
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

    /// Set a node's port on the switch (its link on LAN `lan`, seen from
    /// the bridge) up/down.
    pub fn set_port(&self, lan: usize, node: usize, up: bool) {
        let sw = self.switch.as_ref().expect("a lab with LANs");
        let port = format!("p{lan}n{node}");
        sw.ip(&["link", "set", &port, if up { "up" } else { "down" }]);
    }

    pub fn set_link(&self, node: usize, dev: &str, up: bool) {
        self.nodes[node].ip(&["link", "set", dev, if up { "up" } else { "down" }]);
    }

    /// Start a process in a node; stdout+stderr go to `dir/name.log`.
    pub fn spawn(&mut self, node: usize, name: &str, args: &[&str]) -> Proc {
        let log = self.dir.join(format!("{name}.log"));
        let file = fs::File::create(&log).unwrap();
        let child = self
            .command(node, args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
        let guard =
            ChildGuard::from_child(child, format!("{name} ({}) in {}", args[0], self.ns(node)))
                .with_grace(self.grace);
        let child = guard.handle();
        self.procs.push(guard);
        Proc {
            pid: child.pid().as_raw(),
            log,
            child,
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    /// Start tcpdump on a node's interface; returns when it listens.
    pub fn capture(&mut self, node: usize, dev: &str, filter: &str) -> Capture {
        self.start_capture(node, dev, filter, None)
    }

    /// Start tcpdump on a node's interface for the first `count` frames
    /// that match (`-c`: it exits once it has them; see
    /// [`Capture::finish`]); returns when it listens.
    pub fn capture_count(&mut self, node: usize, dev: &str, filter: &str, count: usize) -> Capture {
        self.start_capture(node, dev, filter, Some(count))
    }

    fn start_capture(
        &mut self,
        node: usize,
        dev: &str,
        filter: &str,
        count: Option<usize>,
    ) -> Capture {
        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let file = self.dir.join(format!("cap{n}.pcap"));
        let mut cmd = self.command(
            node,
            &[
                "tcpdump",
                "--immediate-mode",
                "-i",
                dev,
                "-n",
                "-U",
                "-s",
                "2048",
            ],
        );
        if let Some(count) = count {
            cmd.args(["-c", &count.to_string()]);
        }
        let mut child = cmd
            .arg("-w")
            .arg(&file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        let stderr = child.stderr.take().unwrap();
        // Owned by the lab before anything can panic.
        let guard = ChildGuard::from_child(child, format!("tcpdump on {dev} in {}", self.ns(node)))
            .with_grace(self.grace);
        let child = guard.handle();
        self.procs.push(guard);
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
        Capture { child, file }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Each guard kills (by PID, unless it was reaped) and reaps.
        self.procs.clear();
        for ns in self.namespaces() {
            let _ = try_output_bounded(
                Command::new("ip").args(["netns", "del", ns.name()]),
                Duration::from_secs(30),
            );
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
    child: ChildHandle,
}

impl Proc {
    /// Sends `sig`, unless the process was reaped already.
    pub fn signal(&self, sig: Signal) {
        self.child.signal(sig);
    }

    /// SIGKILL and reap (a zombie still holds its pid file and shows in
    /// `killall -0`).
    pub fn kill(&self) {
        assert!(self.child.kill(), "pid {} survived SIGKILL", self.pid);
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
        self.child.exited()
    }

    /// Wait (bounded) for exit; returns the time it took.
    pub fn wait_exit(&self, timeout: Duration) -> Option<Duration> {
        self.child.wait_exit(timeout)
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
    child: ChildHandle,
    pub file: PathBuf,
}

impl Capture {
    /// Stop tcpdump (it flushes on SIGTERM... with -U each packet is
    /// already written) and read the frames.
    pub fn stop(self) -> Vec<Frame> {
        self.terminate();
        read_pcap(&self.file)
    }

    /// Frames so far, without stopping.
    pub fn frames(&self) -> Vec<Frame> {
        read_pcap(&self.file)
    }

    /// Waits up to `limit` for tcpdump to exit by itself (a
    /// [`Lab::capture_count`] that has its count), stops it if it has not,
    /// and returns the frames, with tcpdump's own reading of them
    /// (`tcpdump -n -e -vv -r`). The file must be whole: a pcap header and
    /// no truncated record.
    pub fn finish(self, limit: Duration) -> (Vec<Frame>, String) {
        if self.child.wait_exit(limit).is_none() {
            self.terminate();
        }
        let bytes = fs::read(&self.file).unwrap_or_else(|e| panic!("{}: {e}", self.file.display()));
        assert!(bytes.len() >= 24, "{}: pcap too short", self.file.display());
        let (frames, rest) = pcap_records(&self.file, &bytes);
        assert_eq!(rest, 0, "{}: truncated pcap record", self.file.display());
        let path = self.file.to_str().expect("UTF-8 lab path");
        let decoded = sh(&["tcpdump", "-n", "-e", "-vv", "-r", path]);
        (frames, decoded)
    }

    /// SIGTERM, and up to 5 s to exit (not gone in time: the lab kills it).
    fn terminate(&self) {
        self.child.signal(Signal::SIGTERM);
        let _ = self.child.wait_exit(Duration::from_secs(5));
    }
}

/// Read a classic pcap file (either byte order, microsecond or nanosecond
/// timestamps, Ethernet); a record still being written is left out.
pub fn read_pcap(path: &Path) -> Vec<Frame> {
    let bytes = fs::read(path).unwrap_or_default();
    if bytes.len() < 24 {
        return Vec::new();
    }
    pcap_records(path, &bytes).0
}

/// The whole records of a pcap file's bytes (at least its 24-byte header),
/// and how many bytes after them do not make a whole record.
fn pcap_records(path: &Path, bytes: &[u8]) -> (Vec<Frame>, usize) {
    let (little, nanos) = match u32::from_le_bytes(bytes[0..4].try_into().unwrap()) {
        0xa1b2c3d4 => (true, false),
        0xa1b23c4d => (true, true),
        0xd4c3b2a1 => (false, false),
        0x4d3cb2a1 => (false, true),
        _ => panic!("{}: not a pcap file", path.display()),
    };
    let word = |o: usize| {
        let b: [u8; 4] = bytes[o..o + 4].try_into().unwrap();
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(word(20), 1, "{}: link type Ethernet", path.display());
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let (sec, frac, caplen) = (word(at), word(at + 4), word(at + 8) as usize);
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
    (frames, bytes.len() - at)
}
