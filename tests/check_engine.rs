//! The engine on the real event loop over loopback (no root needed):
//! reload keeps the state of unchanged checkers, new real servers start as
//! configured (alpha: DOWN), removed ones stop, and a burst of due checkers
//! is spread over loop turns.
//!
//! The loop blocks signals for its signalfd, which needs a single-threaded
//! process, so each scenario runs in a forked child reporting to a file
//! (owned by a guard: a test that panics does not leave it running).

mod common;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use keepalived_rs::check::core::ServerChange;
use keepalived_rs::check::{owns_key, Engine};
use keepalived_rs::config::{load_str, Config};
use keepalived_rs::daemon::{ChildExit, Context, DumpKind, EventLoop, Service};
use mio::event::Event;
use mio::Token;
use nix::sys::wait::WaitStatus;

use common::lab::fork_guarded;

const END_KEY: u64 = 9 << 56;
const RELOAD_KEY: u64 = 8 << 56;

fn config(text: &str) -> Config {
    let loaded = load_str("test.conf", text, &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics.items);
    loaded.config
}

struct Harness {
    engine: Engine,
    t0: Instant,
    run_for: Duration,
    reload_at: Option<(Duration, Config)>,
    out: fs::File,
}

impl Harness {
    fn note(&mut self, now: Instant, what: String) {
        let _ = writeln!(self.out, "{} {what}", (now - self.t0).as_millis());
    }

    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.engine.poll_event() {
            let change = match event.change {
                ServerChange::Up { weight } => format!("UP {weight}"),
                ServerChange::Down => "DOWN".into(),
                ServerChange::Weight { weight } => format!("WEIGHT {weight}"),
            };
            self.note(now, format!("EVENT {} {change}", event.rs));
        }
    }

    fn states(&mut self, now: Instant, label: &str) {
        for s in self.engine.real_servers() {
            self.note(now, format!("{label} {} {} {}", s.rs, s.alive, s.weight));
        }
    }
}

impl Service for Harness {
    fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        self.t0 = now;
        self.engine.start(cx, now);
        cx.add_timer(now + self.run_for, END_KEY);
        if let Some((at, _)) = &self.reload_at {
            cx.add_timer(now + *at, RELOAD_KEY);
        }
    }

    fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, event: &Event, now: Instant) {
        if self.engine.owns(token) {
            self.engine.handle_io(cx, token, event, now);
        }
        self.drain(now);
    }

    fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, now: Instant) {
        if key == END_KEY {
            self.states(now, "FINAL");
            cx.request_shutdown();
        } else if key == RELOAD_KEY {
            self.states(now, "BEFORE");
            if let Some((_, new)) = self.reload_at.take() {
                self.engine.reload(&new, cx, now);
            }
            self.drain(now);
            self.states(now, "AFTER");
        } else if owns_key(key) {
            self.engine.handle_timer(cx, key, now);
        }
        self.drain(now);
    }

    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant) {
        self.engine.handle_child_exit(cx, exit, now);
        self.drain(now);
    }

    fn reload(&mut self, _cx: &mut Context<'_>, _now: Instant) {}

    fn dump(&mut self, _cx: &mut Context<'_>, _which: DumpKind, _now: Instant) {}

    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        self.engine.shutdown(cx, now)
    }
}

/// Runs the engine in a forked child; returns its report lines.
fn run_engine(
    name: &str,
    first: &str,
    reload: Option<(Duration, &str)>,
    run_for: Duration,
    during: impl FnOnce(),
) -> String {
    let path: PathBuf = std::env::temp_dir().join(format!("kars-{name}-{}", std::process::id()));
    let first = config(first);
    let reload = reload.map(|(at, text)| (at, config(text)));
    let child = fork_guarded(&format!("engine {name}"), || {
        let result = (|| -> Result<(), String> {
            let out = fs::File::create(&path).map_err(|e| e.to_string())?;
            let engine = Engine::new(&first).map_err(|e| e.to_string())?;
            let mut event_loop = EventLoop::new().map_err(|e| e.to_string())?;
            let mut harness = Harness {
                engine,
                t0: Instant::now(),
                run_for,
                reload_at: reload,
                out,
            };
            event_loop.run(&mut harness).map_err(|e| e.to_string())
        })();
        match result {
            Ok(()) => 0,
            Err(e) => {
                let _ = fs::write(format!("{}.err", path.display()), e);
                1
            }
        }
    });
    during();
    let status = child.wait_bounded(run_for + Duration::from_secs(10));
    let text = fs::read_to_string(&path).unwrap_or_default();
    let err = fs::read_to_string(format!("{}.err", path.display())).unwrap_or_default();
    let _ = fs::remove_file(&path);
    let _ = fs::remove_file(format!("{}.err", path.display()));
    assert_eq!(
        status,
        Some(WaitStatus::Exited(child.pid(), 0)),
        "{err}\n{text}"
    );
    text
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn tcp_rs(port: u16, extra: &str) -> String {
    format!(
        "real_server 127.0.0.1 {port} {{\n {extra}\n TCP_CHECK {{\n connect_timeout 1\n retry 0\n warmup 0\n }}\n }}\n"
    )
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn reload_keeps_unchanged_checkers() {
    // The listener accepts through the kernel backlog; no thread needed.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    let closed = closed_port();
    let gone = closed_port();
    let vs = |body: String| {
        format!("virtual_server 127.0.0.1 80 {{\n delay_loop 1\n protocol TCP\n{body}}}\n")
    };
    let first = vs(tcp_rs(open, "") + &tcp_rs(closed, "") + &tcp_rs(gone, ""));
    // After the reload: the same two checkers, `closed` with a new weight,
    // `gone` removed, and a new alpha server on the open port... of a new VS.
    let second = vs(tcp_rs(open, "") + &tcp_rs(closed, "weight 5"))
        + &format!(
            "virtual_server 127.0.0.1 81 {{\n delay_loop 1\n protocol TCP\n{}}}\n",
            tcp_rs(open, "alpha")
        );
    let text = run_engine(
        "reload",
        &first,
        Some((Duration::from_millis(2500), &second)),
        Duration::from_secs(5),
        || {},
    );
    let open_rs = format!("[127.0.0.1]:tcp:{open}");
    let closed_rs = format!("[127.0.0.1]:tcp:{closed}");
    let gone_rs = format!("[127.0.0.1]:tcp:{gone}");
    // Before: open up, closed and gone went down at the first probe.
    assert_eq!(
        lines_with(&text, &format!("EVENT {closed_rs} DOWN")).len(),
        1,
        "{text}"
    );
    assert_eq!(
        lines_with(&text, &format!("EVENT {gone_rs} DOWN")).len(),
        1,
        "{text}"
    );
    let before_reload = text.split(" BEFORE ").next().unwrap_or_default();
    assert!(
        lines_with(before_reload, &format!("EVENT {open_rs}")).is_empty(),
        "{text}"
    );
    // The reload kept `closed` DOWN (no reset to UP, no second DOWN) and
    // took its new weight; `gone` is gone.
    assert!(
        text.contains(&format!("AFTER {closed_rs} false 5")),
        "state kept, weight updated\n{text}"
    );
    assert!(!text.contains(&format!("AFTER {gone_rs}")), "{text}");
    assert!(!text.contains(&format!("FINAL {gone_rs}")), "{text}");
    // The new alpha server starts DOWN and comes up at its first probe.
    let after_lines = lines_with(&text, "AFTER ");
    assert!(
        after_lines
            .iter()
            .filter(|l| l.contains(&open_rs))
            .any(|l| l.ends_with("false 1")),
        "alpha: DOWN until checked\n{text}"
    );
    let up_events = lines_with(&text, &format!("EVENT {open_rs} UP"));
    assert_eq!(
        up_events.len(),
        1,
        "only the new alpha server went up\n{text}"
    );
    let up_at: u128 = up_events[0]
        .split(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("time");
    assert!((3400..=4200).contains(&up_at), "up at {up_at}\n{text}");
    assert!(
        text.contains(&format!("FINAL {closed_rs} false 5")),
        "{text}"
    );
    drop(listener);
}

#[test]
fn a_burst_of_due_checkers_is_spread_over_turns() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    // 60 real servers (different VS ports) all due at the same instant.
    let mut text = String::new();
    for vs_port in 1000..1060 {
        text.push_str(&format!(
            "virtual_server 127.0.0.1 {vs_port} {{\n delay_loop 30\n protocol TCP\n{}}}\n",
            tcp_rs(open, "alpha")
        ));
    }
    let report = run_engine("burst", &text, None, Duration::from_millis(2500), || {});
    let times: Vec<u128> = lines_with(&report, "EVENT ")
        .iter()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 60, "every server came up\n{report}");
    // At most MAX_PROBE_STARTS_PER_TURN start per turn, the rest a
    // millisecond later: the burst spans several turns, yet finishes fast.
    let first = times.iter().min().copied().unwrap_or_default();
    let last = times.iter().max().copied().unwrap_or_default();
    let mut distinct = times.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= 60usize.div_ceil(16),
        "started in too few turns: {times:?}"
    );
    assert!(last - first < 500, "{times:?}");
    drop(listener);
}

#[test]
fn file_check_follows_the_tracked_value() {
    let dir = std::env::temp_dir().join(format!("kars-tracked-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    let value = dir.join("value");
    fs::write(&value, "0\n").expect("write");
    let text = format!(
        "track_file state {{\n file {}\n weight 0\n}}\n\
virtual_server 127.0.0.1 80 {{\n delay_loop 1\n protocol TCP\n\
real_server 127.0.0.1 8080 {{\n FILE_CHECK {{\n track_file state\n warmup 0\n }}\n }}\n}}\n",
        value.display()
    );
    let t0 = Instant::now();
    let report = run_engine("file", &text, None, Duration::from_millis(4500), || {
        // Non-zero at 1.5 s (checked at 2 s), zero again at 2.5 s (3 s).
        std::thread::sleep(
            (t0 + Duration::from_millis(1500)).saturating_duration_since(Instant::now()),
        );
        let _ = fs::write(&value, "1\n");
        std::thread::sleep(
            (t0 + Duration::from_millis(2500)).saturating_duration_since(Instant::now()),
        );
        let _ = fs::write(&value, "0\n");
    });
    let _ = fs::remove_dir_all(&dir);
    let events: Vec<&str> = lines_with(&report, "EVENT ")
        .into_iter()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    assert_eq!(
        events,
        vec![
            "EVENT [127.0.0.1]:tcp:8080 DOWN",
            "EVENT [127.0.0.1]:tcp:8080 UP 1"
        ],
        "{report}"
    );
}
