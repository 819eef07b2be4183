//! The checker engine run on its own event loop inside a network
//! namespace, in a forked child, recording events and log lines with their
//! time offsets: shared by the checker namespace tests.
//!
//! Needs `mod common;` in the test crate (the child is owned by a
//! `common::lab::ChildGuard`).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keepalived_rs::check::core::ServerChange;
use keepalived_rs::check::{owns_key, Engine};
use keepalived_rs::daemon::{ChildExit, Context, DumpKind, EventLoop, Service};
use mio::event::Event;
use mio::Token;

use crate::common::lab::{enter_netns, fork_guarded, ChildGuard};

/// The service the loop drives in the child: the engine plus a recorder.
struct Harness {
    engine: Engine,
    t0: Instant,
    run_for: Duration,
    out: fs::File,
}

const END_KEY: u64 = 9 << 56;

impl Harness {
    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.engine.poll_event() {
            let ms = (now - self.t0).as_millis();
            let change = match event.change {
                ServerChange::Up { weight } => format!("UP {weight}"),
                ServerChange::Down => "DOWN".into(),
                ServerChange::Weight { weight } => format!("WEIGHT {weight}"),
            };
            let _ = writeln!(self.out, "EVENT {ms} {} {change}", event.rs);
        }
    }
}

impl Service for Harness {
    fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        self.t0 = now;
        self.engine.start(cx, now);
        cx.add_timer(now + self.run_for, END_KEY);
        for status in self.engine.real_servers() {
            let _ = writeln!(self.out, "INITIAL {} {}", status.rs, status.alive);
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
            cx.request_shutdown();
        } else if owns_key(key) {
            self.engine.handle_timer(cx, key, now);
        }
        self.drain(now);
    }

    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant) {
        if owns_key(exit.owner) {
            self.engine.handle_child_exit(cx, exit, now);
        }
        self.drain(now);
    }

    fn reload(&mut self, _cx: &mut Context<'_>, _now: Instant) {}

    fn dump(&mut self, _cx: &mut Context<'_>, _which: DumpKind, _now: Instant) {}

    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        self.engine.shutdown(cx, now)
    }
}

/// Log lines go to the result file with their time offset.
struct FileLogger {
    out: Mutex<fs::File>,
    t0: Instant,
}

impl log::Log for FileLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            if let Ok(mut f) = self.out.lock() {
                let ms = self.t0.elapsed().as_millis();
                let _ = writeln!(f, "LOG {ms} {}", record.args());
            }
        }
    }
    fn flush(&self) {}
}

/// Runs the engine for `run_for` inside the namespace, in a forked child,
/// owned by the returned guard (SIGTERM, then SIGKILL, if the test ends
/// before it was reaped). Its results go to `results`, and why it failed,
/// if it did, to `results.err`.
pub fn spawn_engine(ns: &str, config_text: &str, results: &Path, run_for: Duration) -> ChildGuard {
    let config_text = config_text.to_string();
    let results = results.to_path_buf();
    fork_guarded(&format!("checker engine in {ns}"), move || {
        let code = (|| -> Result<(), String> {
            // The child has this one thread: the whole process moves.
            enter_netns(ns)?;
            let out = fs::File::create(&results).map_err(|e| e.to_string())?;
            let logger = Box::leak(Box::new(FileLogger {
                out: Mutex::new(out.try_clone().map_err(|e| e.to_string())?),
                t0: Instant::now(),
            }));
            log::set_logger(logger).map_err(|e| e.to_string())?;
            log::set_max_level(log::LevelFilter::Info);
            let loaded =
                keepalived_rs::config::load_str("test.conf", &config_text, &Default::default());
            if loaded.has_errors() {
                return Err(format!("config errors: {:?}", loaded.diagnostics.items));
            }
            let engine = Engine::new(&loaded.config).map_err(|e| e.to_string())?;
            let mut event_loop = EventLoop::new().map_err(|e| e.to_string())?;
            let mut harness = Harness {
                engine,
                t0: Instant::now(),
                run_for,
                out,
            };
            event_loop.run(&mut harness).map_err(|e| e.to_string())?;
            Ok(())
        })();
        match code {
            Ok(()) => 0,
            Err(e) => {
                let _ = fs::write(format!("{}.err", results.display()), e);
                1
            }
        }
    })
}

/// Sleeps until `offset` after `t0`.
/// Waits for the engine child (at most `run_for` + 15 s), asserts that it
/// exited 0 (else shows its error and record) and returns its record.
pub fn engine_record(child: &ChildGuard, results: &Path, run_for: Duration) -> String {
    let status = child.wait_bounded(run_for + Duration::from_secs(15));
    let text = fs::read_to_string(results).unwrap_or_default();
    let err = fs::read_to_string(format!("{}.err", results.display())).unwrap_or_default();
    assert_eq!(
        status,
        Some(nix::sys::wait::WaitStatus::Exited(child.pid(), 0)),
        "engine child failed: {err}\n{text}"
    );
    text
}

pub fn at(t0: Instant, offset: Duration) {
    if let Some(d) = (t0 + offset).checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}
