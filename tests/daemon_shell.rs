//! End-to-end checks of the daemon shell with real signals, children and
//! forks.
//!
//! Signals are process-wide and the test harness is multi-threaded (a
//! process-directed SIGHUP could hit a thread that does not block it, and
//! kill the run), so every scenario runs in a forked, single-threaded child
//! that reports back through a pipe. Hence one #[test].

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use keepalived_rs::daemon::{
    daemonize, ChildExit, ChildSpec, ChildStatus, Context, DumpKind, EventLoop, Priority, Service,
};
use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, ForkResult, Pid};

type Outcome = Result<(), String>;

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(what())
    }
}

/// Waits for `pid` with a deadline; SIGKILLs it when the deadline passes.
fn wait_bounded(pid: Pid, limit: Duration) -> Option<WaitStatus> {
    let start = Instant::now();
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
            Ok(status) => return Some(status),
            Err(_) => return None,
        }
        if start.elapsed() > limit {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `scenario` in a forked child; returns its report.
fn in_child(name: &str, limit: Duration, scenario: fn() -> Outcome) -> Outcome {
    let (read_end, write_end) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the child runs only the scenario and then _exits; the harness
    // threads hold no locks the scenario needs (glibc makes malloc fork-safe).
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read_end);
            let outcome = std::panic::catch_unwind(scenario)
                .unwrap_or_else(|_| Err("scenario panicked".to_owned()));
            let mut report = File::from(write_end);
            let code = match outcome {
                Ok(()) => 0,
                Err(message) => {
                    let _ = report.write_all(message.as_bytes());
                    1
                }
            };
            // SAFETY: leave without running the harness's exit path.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let status = wait_bounded(child, limit);
            let mut message = String::new();
            let _ = File::from(read_end).read_to_string(&mut message);
            match status {
                Some(WaitStatus::Exited(_, 0)) => Ok(()),
                other => Err(format!("{name}: {other:?}: {message}")),
            }
        }
    }
}

const TIMER_RAISE_SIGNALS: u64 = 1;
const TIMER_FINISH_SHUTDOWN: u64 = 2;
const TIMER_WATCHDOG: u64 = 3;

/// Records every callback; drives the scenario from inside the loop.
#[derive(Default)]
struct FakeService {
    log: Vec<String>,
    reader: Option<(UnixStream, Token)>,
    writer: Option<UnixStream>,
    first_token: Option<Token>,
    exits: Vec<(u64, ChildStatus)>,
    terminated: bool,
}

impl FakeService {
    fn connect_pipe(&mut self, cx: &mut Context<'_>) {
        let (reader, mut writer) = UnixStream::pair().expect("socketpair");
        reader.set_nonblocking(true).expect("nonblocking");
        let token = cx
            .register_with_priority(
                &mut SourceFd(&reader.as_raw_fd()),
                Interest::READABLE,
                Priority::High,
            )
            .expect("register");
        writer.write_all(b"x").expect("write");
        self.reader = Some((reader, token));
        self.writer = Some(writer);
    }

    fn seen(&self, entry: &str) -> bool {
        self.log.iter().any(|e| e == entry)
    }

    /// SIGTERM ourselves once everything else has been observed.
    fn terminate_when_done(&mut self) {
        let all_seen = ["reload", "dump Data", "dump Stats", "io 1", "io 2"]
            .iter()
            .all(|entry| self.seen(entry));
        if all_seen && self.exits.len() == 2 && !self.terminated {
            self.terminated = true;
            kill(getpid(), Signal::SIGTERM).expect("raise SIGTERM");
        }
    }
}

impl Service for FakeService {
    fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        self.log.push("start".into());
        self.connect_pipe(cx);
        self.first_token = self.reader.as_ref().map(|(_, token)| *token);
        cx.add_timer(now + Duration::from_millis(30), TIMER_RAISE_SIGNALS);
        cx.add_timer(now + Duration::from_secs(5), TIMER_WATCHDOG);
        let argv = |line: &str| keepalived_rs::daemon::split_command(line).expect("split");
        cx.spawn(ChildSpec::new(argv("/bin/sh -c 'exit 3'"), 42))
            .expect("spawn");
        let mut slow = ChildSpec::new(argv("sleep 10"), 43);
        slow.timeout = Some(Duration::from_millis(100));
        cx.spawn(slow).expect("spawn");
    }

    fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, _event: &Event, _now: Instant) {
        let Some((mut reader, expected)) = self.reader.take() else {
            self.log.push("io without reader".into());
            return;
        };
        if token != expected {
            self.log.push("io on unexpected token".into());
        }
        let mut buffer = [0u8; 16];
        while matches!(reader.read(&mut buffer), Ok(n) if n > 0) {}
        cx.deregister(&mut SourceFd(&reader.as_raw_fd()), token)
            .expect("deregister");
        if Some(token) == self.first_token {
            self.log.push("io 1".into());
            // Same slot again, new generation: the old token must differ.
            self.connect_pipe(cx);
            if self.reader.as_ref().map(|(_, t)| *t) == self.first_token {
                self.log.push("token reused without new generation".into());
            }
        } else {
            self.log.push("io 2".into());
        }
        self.terminate_when_done();
    }

    fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, _now: Instant) {
        self.log.push(format!("timer {key}"));
        match key {
            TIMER_RAISE_SIGNALS => kill(getpid(), Signal::SIGHUP).expect("raise SIGHUP"),
            TIMER_FINISH_SHUTDOWN => cx.shutdown_complete(),
            _ => cx.request_shutdown(),
        }
    }

    fn handle_child_exit(&mut self, _cx: &mut Context<'_>, exit: ChildExit<u64>, _now: Instant) {
        self.exits.push((exit.owner, exit.status));
        self.terminate_when_done();
    }

    fn reload(&mut self, _cx: &mut Context<'_>, _now: Instant) {
        self.log.push("reload".into());
        kill(getpid(), Signal::SIGUSR1).expect("raise SIGUSR1");
        kill(getpid(), Signal::SIGUSR2).expect("raise SIGUSR2");
    }

    fn dump(&mut self, _cx: &mut Context<'_>, which: DumpKind, _now: Instant) {
        self.log.push(format!("dump {which:?}"));
        self.terminate_when_done();
    }

    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        self.log.push("shutdown".into());
        // Finish asynchronously, as a service sending priority-0 adverts would.
        cx.add_timer(now + Duration::from_millis(50), TIMER_FINISH_SHUTDOWN);
        false
    }
}

fn full_loop() -> Outcome {
    let mut event_loop = EventLoop::new().map_err(|e| e.to_string())?;
    let mut service = FakeService::default();
    let start = Instant::now();
    event_loop.run(&mut service).map_err(|e| e.to_string())?;
    let log = &service.log;
    ensure(!service.seen("timer 3"), || {
        format!("watchdog fired: {log:?}")
    })?;
    for entry in [
        "start",
        "timer 1",
        "reload",
        "dump Data",
        "dump Stats",
        "io 1",
        "io 2",
        "shutdown",
        "timer 2",
    ] {
        ensure(service.seen(entry), || {
            format!("missing {entry:?} in {log:?}")
        })?;
    }
    ensure(log.len() == 9, || format!("unexpected callbacks: {log:?}"))?;
    let mut exits = service.exits.clone();
    exits.sort_by_key(|(owner, _)| *owner);
    let expected = vec![(42, ChildStatus::Exited(3)), (43, ChildStatus::TimedOut)];
    ensure(exits == expected, || format!("child exits {exits:?}"))?;
    ensure(start.elapsed() < Duration::from_secs(3), || {
        format!("took {:?}", start.elapsed())
    })
}

/// A service whose shutdown never completes: the grace period ends the loop,
/// and children still running are killed.
struct StuckService {
    child_pid: Option<i32>,
}

impl Service for StuckService {
    fn start(&mut self, cx: &mut Context<'_>, _now: Instant) {
        let id = cx
            .spawn(ChildSpec::new(vec!["sleep".into(), "10".into()], 1))
            .expect("spawn");
        self.child_pid = cx.child_pid(id).map(Pid::as_raw);
        cx.request_shutdown();
    }
    fn handle_io(&mut self, _: &mut Context<'_>, _: Token, _: &Event, _: Instant) {}
    fn handle_timer(&mut self, _: &mut Context<'_>, _: u64, _: Instant) {}
    fn handle_child_exit(&mut self, _: &mut Context<'_>, _: ChildExit<u64>, _: Instant) {}
    fn reload(&mut self, _: &mut Context<'_>, _: Instant) {}
    fn dump(&mut self, _: &mut Context<'_>, _: DumpKind, _: Instant) {}
    fn shutdown(&mut self, _: &mut Context<'_>, _: Instant) -> bool {
        false
    }
}

fn shutdown_grace_bounds_the_loop() -> Outcome {
    let mut event_loop = EventLoop::new().map_err(|e| e.to_string())?;
    event_loop.set_shutdown_grace(Duration::from_millis(200));
    let mut service = StuckService { child_pid: None };
    let start = Instant::now();
    event_loop.run(&mut service).map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    ensure(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        || format!("grace not honoured: {elapsed:?}"),
    )?;
    let pid = service.child_pid.ok_or("spawned child not found")?;
    // kill_all sent SIGKILL: the child must die (we reap it ourselves here).
    match wait_bounded(Pid::from_raw(pid), Duration::from_secs(5)) {
        Some(WaitStatus::Signaled(_, Signal::SIGKILL, _)) => Ok(()),
        other => Err(format!("leftover child not killed: {other:?}")),
    }
}

/// SIGINT with a service that finishes its shutdown at once.
struct QuickService;

impl Service for QuickService {
    fn start(&mut self, _: &mut Context<'_>, _: Instant) {
        kill(getpid(), Signal::SIGINT).expect("raise SIGINT");
    }
    fn handle_io(&mut self, _: &mut Context<'_>, _: Token, _: &Event, _: Instant) {}
    fn handle_timer(&mut self, _: &mut Context<'_>, _: u64, _: Instant) {}
    fn handle_child_exit(&mut self, _: &mut Context<'_>, _: ChildExit<u64>, _: Instant) {}
    fn reload(&mut self, _: &mut Context<'_>, _: Instant) {}
    fn dump(&mut self, _: &mut Context<'_>, _: DumpKind, _: Instant) {}
    fn shutdown(&mut self, _: &mut Context<'_>, _: Instant) -> bool {
        true
    }
}

fn sigint_stops_the_loop() -> Outcome {
    let mut event_loop = EventLoop::new().map_err(|e| e.to_string())?;
    let start = Instant::now();
    event_loop
        .run(&mut QuickService)
        .map_err(|e| e.to_string())?;
    ensure(start.elapsed() < Duration::from_secs(1), || {
        format!("took {:?}", start.elapsed())
    })
}

/// Named after the test process; a forked child inherits the first value.
fn report_path() -> std::path::PathBuf {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("ka-daemonize-{}", std::process::id())))
        .clone()
}

/// The surviving grandchild records what daemonize() left it with.
fn daemonized_process() -> Outcome {
    let report = report_path();
    daemonize().map_err(|e| e.to_string())?;
    let sid = nix::unistd::getsid(None).map_err(|e| e.to_string())?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let stdin = std::fs::read_link("/proc/self/fd/0").map_err(|e| e.to_string())?;
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let umask = status
        .lines()
        .find(|l| l.starts_with("Umask:"))
        .unwrap_or("Umask: ?");
    let line = format!(
        "leader={} cwd={} stdin={} {}",
        sid == getpid(),
        cwd.display(),
        stdin.display(),
        umask.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let temp = report.with_extension("tmp");
    std::fs::write(&temp, line).map_err(|e| e.to_string())?;
    std::fs::rename(&temp, &report).map_err(|e| e.to_string())
}

fn daemonize_detaches() -> Outcome {
    let report = report_path();
    let _ = std::fs::remove_file(&report);
    // The forked child is the "parent" daemonize() exits with status 0.
    in_child("daemonize", Duration::from_secs(5), daemonized_process)?;
    let start = Instant::now();
    let line = loop {
        if let Ok(line) = std::fs::read_to_string(&report) {
            break line;
        }
        ensure(start.elapsed() < Duration::from_secs(5), || {
            "no report from the daemon".into()
        })?;
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&report);
    let expected = "leader=false cwd=/ stdin=/dev/null Umask: 0022";
    ensure(line == expected, || {
        format!("daemon state {line:?}, expected {expected:?}")
    })
}

#[test]
fn daemon_shell_end_to_end() {
    let limit = Duration::from_secs(20);
    let results = [
        in_child("full loop", limit, full_loop),
        in_child("shutdown grace", limit, shutdown_grace_bounds_the_loop),
        in_child("sigint", limit, sigint_stops_the_loop),
        daemonize_detaches(),
    ];
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
