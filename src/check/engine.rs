//! The checker engine: every checker of a configuration on the daemon's
//! event loop. The schedule and verdict rules live in [`super::core`] and
//! the protocols in the dialog modules; this file owns sockets, timers,
//! children and the per-turn budget, and turns verdicts into
//! [`CheckEvent`]s for IPVS.
//!
//! Each checker has at most one wake-up (its next probe, or the deadline
//! of the probe in flight) and at most one socket or child. Wake-ups are
//! filed in the engine's [`Calendar`] by tick of its [`Grid`], and one
//! loop timer serves the earliest tick; only a deadline that falls before
//! the next tick takes a loop timer of its own. Keys carry
//! [`CHECK_KEY_TAG`] in the top byte, then a 24-bit slot generation and a
//! 32-bit slot index, so a late timer or child exit never reaches a checker
//! that reused a slot.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::os::fd::AsRawFd;

use super::calendar::{ceil_tick, floor_tick, nanos, Calendar, Entry, Grid};
use super::core::{
    warmup_offset, CheckerCore, ServerChange, ServerHealth, Timing, UrlCursor, Verdict,
};
use super::dialog::{
    DatagramDialog, Outcome, Payload, ProbeError, ProbeSuccess, Step, StreamDialog,
};
use super::dns::DnsQuery;
use super::file::{FileRule, MAX_FILE_BYTES};
use super::http::{build_request, host_for_addr, Expect, ResponseReader};
use super::net::{icmp_connect, tcp_connect, udp_connect, ConnectOptions};
use super::ping::EchoRequest;
use super::smtp::{SmtpDialog, SmtpError, DEFAULT_HELO as SMTP_DEFAULT_HELO};
use super::tls::TlsClient;
use super::udp::UdpExchange;
use super::{RsId, VsId, CHECK_KEY_TAG};
use crate::config::model::{
    Checker, CheckerKind, Config, HttpCheck, HttpProtocol, RealServer, Script, VirtualServer,
};
use crate::daemon::{
    split_command, ChildExit, ChildId, ChildSpec, Context, RunAs, TimerId, TokenSlab,
};

/// Probes started per loop turn; the rest wait a millisecond, so a
/// thousand checkers due together never make one long turn.
pub const MAX_PROBE_STARTS_PER_TURN: usize = 16;
const DEFER: Duration = Duration::from_millis(1);
/// Reads (of [`READ_CHUNK`] bytes) per readiness event before yielding.
const READS_PER_EVENT: usize = 8;
const READ_CHUNK: usize = 16 * 1024;
/// Datagrams examined per readiness event before yielding.
const DATAGRAMS_PER_EVENT: usize = 16;
/// Receive size for datagram probes: the largest UDP payload.
const MAX_DATAGRAM: usize = 65536;
/// A stream probe may make progress slowly, but never for longer than this
/// many connect_timeouts in total (connect, send, head, body).
const HARD_DEADLINE_FACTOR: u64 = 4;
/// notify_up / notify_down scripts are killed after this long.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// Slot index reserved for notify script children.
const NOTIFY_INDEX: u32 = u32::MAX;
/// Slot index of the calendar's loop timer.
const CALENDAR_INDEX: u32 = u32::MAX - 1;

/// A real server changed as a whole: feed it to IPVS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    pub rs: RsId,
    pub change: ServerChange,
    /// `inhibit_on_failure`: on Down set weight 0 instead of removing.
    pub inhibit_on_failure: bool,
}

/// A real server's current health, for building the desired IPVS state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsStatus {
    pub rs: RsId,
    pub alive: bool,
    pub weight: u32,
}

#[derive(Debug)]
pub enum EngineError {
    /// Two real servers of one virtual server have the same address and port.
    DuplicateRealServer(RsId),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::DuplicateRealServer(rs) => {
                write!(f, "real server {rs} is defined twice in VS {}", rs.vs)
            }
        }
    }
}

impl std::error::Error for EngineError {}

/// What a checker does each round, resolved from the configuration.
#[derive(Debug, Clone)]
enum Plan {
    Tcp(ConnectOptions),
    Http {
        opts: ConnectOptions,
        /// Each URL's request and expectations, built once and shared by
        /// every probe.
        urls: Vec<(Rc<[u8]>, Rc<Expect>)>,
        /// SSL_GET: the same requests over TLS.
        /// Boxed: only SSL_GET checkers have one, and it would add 40 bytes
        /// to every checker's slot.
        tls: Option<Box<super::tls::TlsTarget>>,
    },
    Smtp {
        opts: ConnectOptions,
        helo: String,
    },
    Udp {
        opts: ConnectOptions,
        /// Boxed: the largest variant otherwise, for a rare checker.
        exchange: Box<UdpExchange>,
    },
    Dns {
        opts: ConnectOptions,
        name: String,
        qtype: crate::config::model::DnsType,
    },
    Ping(ConnectOptions),
    Misc {
        argv: Vec<String>,
        run_as: Option<RunAs>,
        timeout: Duration,
        dynamic: bool,
    },
    File {
        path: String,
        rule: FileRule,
    },
    /// Cannot run here (SSL_GET without TLS, no port to connect to, ...);
    /// the real server's other checkers decide.
    Disabled,
}

#[derive(Debug)]
struct StreamProbe {
    stream: std::net::TcpStream,
    token: Token,
    dialog: StreamDialog,
    connected: bool,
    outbox: Payload,
    sent: usize,
    /// Nanoseconds on the engine's [`Grid`], like every probe deadline.
    deadline: u64,
    hard_deadline: u64,
}

#[derive(Debug)]
struct DatagramProbe {
    socket: std::net::UdpSocket,
    token: Token,
    dialog: DatagramDialog,
    deadline: u64,
}

/// A probe's socket, opened and not registered yet.
enum Opened {
    Stream(io::Result<std::net::TcpStream>, StreamDialog),
    Datagram(Box<DatagramProbe>),
}

fn registration_failed(e: crate::daemon::LoopError) -> Outcome {
    Err(ProbeError::Socket(io::Error::other(e.to_string())))
}

/// A probe in flight. Stream probes (every TCP_CHECK and HTTP_GET round)
/// live in the engine's [`Slab`], so starting one allocates nothing; the
/// rarer datagram probes are boxed. Either way an idle checker keeps no
/// probe state.
#[derive(Debug)]
enum Probe {
    Stream(u32),
    Datagram(Box<DatagramProbe>),
    Child(ChildId),
}

/// Values stored in place and named by index; freed places are reused.
#[derive(Debug)]
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, item: T) -> u32 {
        if let Some(index) = self.free.pop() {
            if let Some(place) = self.items.get_mut(index as usize) {
                *place = Some(item);
                return index;
            }
        }
        self.items.push(Some(item));
        // One place per checker at most: far below 2^32.
        u32::try_from(self.items.len() - 1).unwrap_or(u32::MAX)
    }

    fn get(&self, index: u32) -> Option<&T> {
        self.items.get(index as usize)?.as_ref()
    }

    fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.items.get_mut(index as usize)?.as_mut()
    }

    /// Drops the value where it lies (moving it out would copy it).
    fn discard(&mut self, index: u32) {
        if let Some(place) = self.items.get_mut(index as usize) {
            if place.is_some() {
                *place = None;
                self.free.push(index);
            }
        }
    }
}

/// Which checker a slot runs: what its log lines and the dump call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Http,
    Ssl,
    Misc,
    Smtp,
    Dns,
    Udp,
    Ping,
    File,
}

impl Kind {
    fn of(kind: &CheckerKind) -> Self {
        match kind {
            CheckerKind::Tcp => Kind::Tcp,
            CheckerKind::Http(_) => Kind::Http,
            CheckerKind::Ssl(_) => Kind::Ssl,
            CheckerKind::Misc(_) => Kind::Misc,
            CheckerKind::Smtp(_) => Kind::Smtp,
            CheckerKind::Dns(_) => Kind::Dns,
            CheckerKind::Udp(_) => Kind::Udp,
            CheckerKind::Ping => Kind::Ping,
            CheckerKind::File(_) => Kind::File,
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            Kind::Tcp => "TCP_CHECK",
            Kind::Http => "HTTP_GET",
            Kind::Ssl => "SSL_GET",
            Kind::Misc => "MISC_CHECK",
            Kind::Smtp => "SMTP_CHECK",
            Kind::Dns => "DNS_CHECK",
            Kind::Udp => "UDP_CHECK",
            Kind::Ping => "PING_CHECK",
            Kind::File => "FILE_CHECK",
        }
    }
}

/// One checker's run. Kept small (a few hundred bytes): the engine may run
/// thousands, and keeps no copy of their configuration, only its hash.
#[derive(Debug)]
struct CheckerRun {
    server: usize,
    kind: Kind,
    log_all_failures: bool,
    /// Hash of the checker's configuration ([`fingerprint`]): a reload keeps
    /// the state of a checker whose configuration did not change.
    fingerprint: u64,
    plan: Plan,
    core: CheckerCore,
    /// Which URL an HTTP_GET / SSL_GET checker fetches next.
    urls: UrlCursor,
    /// Weight the last success of a dynamic checker asked for.
    dynamic_weight: Option<u32>,
    probe: Option<Probe>,
    wake: Wake,
}

/// Where a checker's next wake-up is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    None,
    /// In the calendar, under this tick.
    Tick(u64),
    /// A loop timer of its own (in `Engine::precise`): a deadline before
    /// the next tick.
    Precise,
}

/// Where [`Engine::rearm`] wants a checker's wake-up.
#[derive(Debug, Clone, Copy)]
enum Want {
    Nothing,
    Tick(u64),
    /// Nanoseconds on the grid.
    At(u64),
}

/// The instant of the current callback, and the same on the engine's
/// [`Grid`], worked out once and only if needed (a TCP probe's completion
/// needs none).
#[derive(Debug)]
struct Now {
    at: Instant,
    grid: Grid,
    nanos: Cell<Option<u64>>,
}

impl Now {
    #[inline]
    fn nanos(&self) -> u64 {
        match self.nanos.get() {
            Some(nanos) => nanos,
            None => {
                let nanos = self.grid.nanos(self.at);
                self.nanos.set(Some(nanos));
                nanos
            }
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    run: Option<CheckerRun>,
}

#[derive(Debug)]
struct Server {
    id: RsId,
    health: ServerHealth,
    checkers: Vec<usize>,
    notify_up: Option<Box<Script>>,
    notify_down: Option<Box<Script>>,
    inhibit_on_failure: bool,
    omega: bool,
}

/// All checkers of one configuration; see the module docs.
#[derive(Debug)]
pub struct Engine {
    servers: Vec<Server>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Which checker each probe socket belongs to.
    tokens: TokenSlab<u32>,
    streams: Slab<StreamProbe>,
    /// Receive buffer shared by all probes (one runs at a time), so a
    /// read event allocates and zeroes nothing.
    scratch: Vec<u8>,
    events: VecDeque<CheckEvent>,
    rng: u64,
    turn: Option<Instant>,
    /// The wake-up grid, from the instant of start.
    grid: Grid,
    /// Checkers' wake-ups by grid tick.
    calendar: Calendar,
    /// The loop timers of checkers in [`Wake::Precise`], by slot.
    precise: HashMap<usize, TimerId>,
    /// The loop timer of the calendar's earliest tick, and that tick.
    calendar_timer: Option<(TimerId, u64)>,
    /// While due buckets are worked through, the loop timer waits for the end.
    in_calendar_pass: bool,
    /// The bucket being worked through (kept for its capacity).
    due: Vec<Entry>,

    starts_this_turn: usize,
    script_user: Option<RunAs>,
    log_all_failures: bool,
    pending_notifies: usize,
    started: bool,
    /// After [`Engine::shutdown`]: `start` does nothing any more.
    stopped: bool,
}

fn encode_key(index: u32, generation: u32) -> u64 {
    CHECK_KEY_TAG << 56 | (u64::from(generation) & 0xff_ffff) << 32 | u64::from(index)
}

fn decode_key(key: u64) -> Option<(u32, u32)> {
    (key >> 56 == CHECK_KEY_TAG).then_some((key as u32, ((key >> 32) & 0xff_ffff) as u32))
}

/// xorshift64*: plenty for spreading warmups and probe ids.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn random_seed() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
    let seed = u64::from_ne_bytes(buf);
    if n == 8 && seed != 0 {
        seed
    } else {
        0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id())
    }
}

fn resolve_run_as(who: &crate::config::model::RunAs) -> Option<RunAs> {
    match RunAs::from_names(&who.user, who.group.as_deref()) {
        Ok(r) => Some(r),
        Err(e) => {
            error!(
                "script user {}: {e}; running the script as this process's user",
                who.user
            );
            None
        }
    }
}

impl Engine {
    /// Prepares the checkers of `config`; nothing runs before [`Engine::start`].
    pub fn new(config: &Config) -> Result<Self, EngineError> {
        let mut seen = std::collections::HashSet::new();
        for vs in &config.virtual_servers {
            for rs in &vs.real_servers {
                let id = RsId::from_config(vs, rs);
                if !seen.insert(id.clone()) {
                    return Err(EngineError::DuplicateRealServer(id));
                }
            }
        }
        let script_user = config
            .global
            .script_user
            .as_ref()
            .and_then(|u| resolve_run_as(&u.value));
        // Built here, scheduled by `start`: the engine keeps no copy of the
        // configuration (the daemon holds one already).
        let mut engine = Engine {
            servers: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            tokens: TokenSlab::default(),
            streams: Slab::default(),
            scratch: Vec::new(),
            events: VecDeque::new(),
            rng: random_seed(),
            turn: None,
            grid: Grid::new(Instant::now()),
            calendar: Calendar::default(),
            precise: HashMap::new(),
            calendar_timer: None,
            in_calendar_pass: false,
            due: Vec::new(),

            starts_this_turn: 0,
            script_user,
            log_all_failures: config.global.checker_log_all_failures.value,
            pending_notifies: 0,
            started: false,
            stopped: false,
        };
        engine.build(config, false);
        Ok(engine)
    }

    /// Schedules every checker (first probes after keepalived's bootstrap
    /// delay plus a random warmup).
    pub fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        if self.started || self.stopped {
            return;
        }
        self.grid = Grid::new(now);
        self.started = true;
        let now = &self.now(now);
        self.schedule(cx, now);
    }

    /// Applies a new configuration: checkers whose configuration (and real
    /// server) did not change keep their state, schedule and probe in flight.
    pub fn reload(&mut self, new: &Config, cx: &mut Context<'_>, now: Instant) {
        let script_user = new
            .global
            .script_user
            .as_ref()
            .and_then(|u| resolve_run_as(&u.value));
        self.script_user = script_user;
        self.log_all_failures = new.global.checker_log_all_failures.value;
        if self.started {
            for index in self.build(new, true) {
                self.release_slot(cx, index);
            }
            let now = &self.now(now);
            self.schedule(cx, now);
        } else {
            // Nothing is armed or in flight yet: build afresh.
            self.servers.clear();
            self.slots.clear();
            self.free.clear();
            self.build(new, false);
        }
    }

    /// True when `token` is one of the checkers' sockets.
    pub fn owns(&self, token: Token) -> bool {
        self.tokens.contains(token)
    }

    /// The next change of a real server, if any; call until `None` after
    /// every callback.
    pub fn poll_event(&mut self) -> Option<CheckEvent> {
        self.events.pop_front()
    }

    /// Current health of every real server (the initial state before any
    /// check: UP unless alpha).
    pub fn real_servers(&self) -> Vec<RsStatus> {
        self.servers
            .iter()
            .map(|s| RsStatus {
                rs: s.id.clone(),
                alive: s.health.is_alive(),
                weight: s.health.weight(),
            })
            .collect()
    }

    /// Health of one real server.
    pub fn real_server(&self, rs: &RsId) -> Option<RsStatus> {
        self.servers.iter().find(|s| &s.id == rs).map(|s| RsStatus {
            rs: s.id.clone(),
            alive: s.health.is_alive(),
            weight: s.health.weight(),
        })
    }

    /// A text summary for the SIGUSR1 dump.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for s in &self.servers {
            out.push_str(&format!(
                " Real server {} in VS {}: {}, weight {}\n",
                s.id,
                s.id.vs,
                if s.health.is_alive() { "UP" } else { "DOWN" },
                s.health.weight()
            ));
            for &i in &s.checkers {
                if let Some(run) = self.slots.get(i).and_then(|slot| slot.run.as_ref()) {
                    out.push_str(&format!(
                        "   {}: {}{}\n",
                        run.kind.keyword(),
                        if run.core.is_up() { "UP" } else { "DOWN" },
                        if matches!(run.plan, Plan::Disabled) {
                            " (disabled)"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
        out
    }

    /// Stops every probe. With `omega`, notify_down runs for each live real
    /// server. Returns true when nothing is left running; otherwise the
    /// notify children are still running, see [`Engine::is_shut_down`].
    pub fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let _ = now;
        for index in 0..self.slots.len() {
            self.drop_probe(cx, index);
            if let Some(run) = self.slots[index].run.as_mut() {
                run.wake = Wake::None;
            }
        }
        for (_, t) in self.precise.drain() {
            cx.cancel_timer(t);
        }
        self.calendar.clear();
        if let Some((t, _)) = self.calendar_timer.take() {
            cx.cancel_timer(t);
        }
        for s in 0..self.servers.len() {
            let server = &self.servers[s];
            if server.omega && server.health.is_alive() {
                if let Some(script) = server.notify_down.as_deref().cloned() {
                    self.run_notify(cx, s, &script);
                }
            }
        }
        self.started = false;
        self.stopped = true;
        self.pending_notifies == 0
    }

    /// After [`Engine::shutdown`]: true once the omega notify scripts exited.
    pub fn is_shut_down(&self) -> bool {
        !self.started && self.pending_notifies == 0
    }

    // ===== scheduling =====

    fn alloc_slot(&mut self) -> usize {
        if let Some(i) = self.free.pop() {
            return i;
        }
        self.slots.push(Slot::default());
        self.slots.len() - 1
    }

    fn release_slot(&mut self, cx: &mut Context<'_>, index: usize) {
        self.drop_probe(cx, index);
        if let Some(slot) = self.slots.get_mut(index) {
            // A calendar entry of the old run is stale by the generation.
            slot.run = None;
            if let Some(t) = self.precise.remove(&index) {
                cx.cancel_timer(t);
            }
            slot.generation = slot.generation.wrapping_add(1) & 0xff_ffff;
            self.free.push(index);
        }
    }

    fn key_of(&self, index: usize) -> u64 {
        let generation = self.slots.get(index).map_or(0, |s| s.generation);
        encode_key(index as u32, generation)
    }

    fn run_of(&mut self, key: u64) -> Option<usize> {
        let (index, generation) = decode_key(key)?;
        let slot = self.slots.get(index as usize)?;
        (slot.generation == generation && slot.run.is_some()).then_some(index as usize)
    }

    /// Files the checker's single wake-up: the next round on the grid (the
    /// first tick at or after it), or the probe's deadline. A deadline is
    /// filed at the last tick before it, where the checker looks again and,
    /// if the probe still runs, takes a precise timer for the rest; most
    /// probes end long before, and their entry is then just stale.
    fn rearm(&mut self, cx: &mut Context<'_>, index: usize, now: &Now) {
        // Never the tick in progress: what is filed now waits for a later pass.
        let next_tick = || floor_tick(now.nanos()) + 1;
        let Some(run) = self.slots.get(index).and_then(|s| s.run.as_ref()) else {
            return;
        };
        let deadline = |at: u64| match floor_tick(at) {
            tick if tick >= next_tick() => Want::Tick(tick),
            _ => Want::At(at),
        };
        let want = match &run.probe {
            Some(Probe::Stream(i)) => self
                .streams
                .get(*i)
                .map_or(Want::Nothing, |p| deadline(p.deadline.min(p.hard_deadline))),
            Some(Probe::Datagram(p)) => deadline(p.deadline),
            // The child runner enforces misc_timeout.
            Some(Probe::Child(_)) => Want::Nothing,
            None if matches!(run.plan, Plan::Disabled) => Want::Nothing,
            // A round in the future is on a later tick than now's.
            None => match run.core.poll_timeout() {
                Some(at) if at > now.at => Want::Tick(ceil_tick(self.grid.nanos(at))),
                Some(_) => Want::Tick(next_tick()),
                None => Want::Nothing,
            },
        };
        match want {
            Want::Tick(tick) => self.file(cx, index, tick),
            Want::At(at) => self.wake_precisely(cx, index, at),
            Want::Nothing => self.set_wake(cx, index, Wake::None),
        }
    }

    /// Files checker `index` under `tick`, its one wake-up from now on.
    fn file(&mut self, cx: &mut Context<'_>, index: usize, tick: u64) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let generation = slot.generation;
        let Some(run) = slot.run.as_mut() else {
            return;
        };
        let previous = std::mem::replace(&mut run.wake, Wake::Tick(tick));
        if matches!(previous, Wake::Tick(filed) if filed == tick) {
            return;
        }
        self.calendar.file(
            tick,
            Entry {
                index: index as u32,
                generation,
            },
        );
        if matches!(previous, Wake::Precise) {
            self.drop_precise(cx, index);
        }
        // The loop timer is at the earliest tick outside a pass: only an
        // earlier one moves it.
        if !self.in_calendar_pass && self.calendar_timer.map_or(true, |(_, armed)| tick < armed) {
            self.arm_calendar(cx, tick);
        }
    }

    /// A deadline before the next tick: a loop timer of the checker's own.
    #[cold]
    fn wake_precisely(&mut self, cx: &mut Context<'_>, index: usize, at: u64) {
        self.set_wake(cx, index, Wake::Precise);
        let key = self.key_of(index);
        let timer = cx.add_timer(self.grid.instant(at), key);
        self.precise.insert(index, timer);
    }

    /// Sets a wake-up that needs no calendar entry; a previous precise
    /// timer is cancelled.
    fn set_wake(&mut self, cx: &mut Context<'_>, index: usize, wake: Wake) {
        let Some(run) = self.slots.get_mut(index).and_then(|s| s.run.as_mut()) else {
            return;
        };
        if std::mem::replace(&mut run.wake, wake) == Wake::Precise {
            self.drop_precise(cx, index);
        }
    }

    #[cold]
    fn drop_precise(&mut self, cx: &mut Context<'_>, index: usize) {
        if let Some(t) = self.precise.remove(&index) {
            cx.cancel_timer(t);
        }
    }

    /// `now` on the grid.
    fn now(&self, now: Instant) -> Now {
        Now {
            at: now,
            grid: self.grid,
            nanos: Cell::new(None),
        }
    }

    /// Moves the calendar's loop timer to `tick`.
    #[cold]
    fn arm_calendar(&mut self, cx: &mut Context<'_>, tick: u64) {
        if let Some((t, _)) = self.calendar_timer.take() {
            cx.cancel_timer(t);
        }
        let t = cx.add_timer(self.grid.tick_instant(tick), encode_key(CALENDAR_INDEX, 0));
        self.calendar_timer = Some((t, tick));
    }

    /// The calendar's loop timer: wakes every checker filed at a tick that
    /// has come.
    fn run_calendar(&mut self, cx: &mut Context<'_>, now: &Now) {
        self.calendar_timer = None;
        let last = floor_tick(now.nanos());
        self.in_calendar_pass = true;
        let mut bucket = std::mem::take(&mut self.due);
        while let Some(tick) = self.calendar.take_due(last, &mut bucket) {
            for Entry { index, generation } in bucket.drain(..) {
                let Some(run) = self
                    .slots
                    .get_mut(index as usize)
                    .filter(|slot| slot.generation == generation)
                    .and_then(|slot| slot.run.as_mut())
                else {
                    continue;
                };
                // Filed again elsewhere since: a stale entry.
                if run.wake != Wake::Tick(tick) {
                    continue;
                }
                run.wake = Wake::None;
                self.wake_checker(cx, index as usize, now);
            }
        }
        self.due = bucket;
        self.in_calendar_pass = false;
        if let Some(first) = self.calendar.first_tick() {
            self.arm_calendar(cx, first);
        }
    }

    /// Builds servers and checkers for `config`; new checkers wait for
    /// [`Engine::schedule`]. With `keep`, checkers that match one already
    /// running (same real server, same configuration) keep their state.
    /// Returns the slots of the checkers that stop (to release).
    fn build(&mut self, config: &Config, keep: bool) -> Vec<usize> {
        // Old checkers by (real server, configuration), in order.
        let mut old: HashMap<RsId, Vec<usize>> = HashMap::new();
        let mut old_health: HashMap<RsId, ServerHealth> = HashMap::new();
        if keep {
            for server in std::mem::take(&mut self.servers) {
                old.insert(server.id.clone(), server.checkers);
                old_health.insert(server.id, server.health);
            }
        }
        // Room for every server and checker at once: the vectors are the
        // engine's bulk, so no doubling slack.
        let real_servers: usize = config
            .virtual_servers
            .iter()
            .map(|vs| vs.real_servers.len())
            .sum();
        let checker_count: usize = config
            .virtual_servers
            .iter()
            .flat_map(|vs| &vs.real_servers)
            .map(|rs| rs.checkers.len())
            .sum();
        self.slots
            .reserve_exact(checker_count.saturating_sub(self.free.len()));
        let mut reused = vec![false; self.slots.len()];
        let mut servers = Vec::with_capacity(real_servers);
        // Read the SSL block's files only when an SSL_GET checker needs them.
        let tls = config
            .virtual_servers
            .iter()
            .flat_map(|vs| &vs.real_servers)
            .flat_map(|rs| &rs.checkers)
            .any(|c| matches!(c.kind, CheckerKind::Ssl(_)))
            .then(|| TlsClient::new(config.ssl.as_ref()));
        for vs in &config.virtual_servers {
            let vs_id = VsId::from_config(vs);
            for rs in &vs.real_servers {
                let id = RsId::new(&vs_id, rs);
                let mut checkers = Vec::with_capacity(rs.checkers.len());
                for checker in &rs.checkers {
                    let plan = self.plan(config, tls.as_ref(), vs, rs, checker, &id);
                    let print = fingerprint(checker);
                    let timing = Timing {
                        delay_loop: checker.timing.delay_loop.value,
                        connect_timeout: checker.timing.connect_timeout.value,
                        retry: checker.timing.retry.value,
                        delay_before_retry: checker.timing.delay_before_retry.value,
                        warmup: checker.timing.warmup.value,
                        retry_first_probe: matches!(checker.kind, CheckerKind::Smtp(_)),
                    };
                    let matched = old.get(&id).and_then(|candidates| {
                        candidates.iter().copied().find(|&i| {
                            !reused.get(i).copied().unwrap_or(true)
                                && self.slots[i]
                                    .run
                                    .as_ref()
                                    .is_some_and(|r| r.fingerprint == print)
                        })
                    });
                    let index = match matched {
                        Some(i) => {
                            reused[i] = true;
                            if let Some(run) = self.slots[i].run.as_mut() {
                                run.server = servers.len();
                                run.plan = plan;
                                run.core = run.core.clone().with_timing(timing);
                            }
                            i
                        }
                        None => {
                            let alpha = checker.alpha.as_ref().map_or(rs.alpha.value, |a| a.value);
                            let i = self.alloc_slot();
                            self.slots[i].run = Some(CheckerRun {
                                server: servers.len(),
                                kind: Kind::of(&checker.kind),
                                log_all_failures: checker.log_all_failures.value,
                                fingerprint: print,
                                plan,
                                core: CheckerCore::unscheduled(timing, alpha),
                                urls: url_cursor(checker),
                                dynamic_weight: None,
                                probe: None,
                                wake: Wake::None,
                            });
                            if reused.len() <= i {
                                reused.resize(i + 1, false);
                            }
                            reused[i] = true;
                            i
                        }
                    };
                    checkers.push(index);
                }
                let all_up = checkers.iter().all(|&i| self.checker_counts_up(i));
                let health = match old_health.remove(&id) {
                    Some(previous) => {
                        // Keep the live state; take the new configured weight.
                        let mut health = ServerHealth::new(rs.weight.value, previous.is_alive());
                        health.evaluate(all_up, self.dynamic_weight_of(&checkers));
                        if let Some(change) = change_between(&previous, &health) {
                            self.events.push_back(CheckEvent {
                                rs: id.clone(),
                                change,
                                inhibit_on_failure: rs.inhibit_on_failure.value,
                            });
                        }
                        health
                    }
                    None => ServerHealth::new(rs.weight.value, all_up),
                };
                if !keep || !old.contains_key(&id) {
                    // keepalived's line is per checker (an SMTP_CHECK with
                    // host blocks logs several), none for a server without.
                    for _ in &checkers {
                        debug!("Activating healthchecker for service {id} for VS {}", id.vs);
                    }
                }
                servers.push(Server {
                    id,
                    health,
                    checkers,
                    notify_up: rs.notify_up.clone(),
                    notify_down: rs.notify_down.clone(),
                    inhibit_on_failure: rs.inhibit_on_failure.value,
                    omega: vs.omega.value,
                });
            }
        }
        self.servers = servers;
        // Checkers of removed or changed configuration stop.
        (0..self.slots.len())
            .filter(|&i| self.slots[i].run.is_some() && !reused.get(i).copied().unwrap_or(false))
            .collect()
    }

    /// Schedules the first probe of every checker not scheduled yet and
    /// arms every checker's timer.
    fn schedule(&mut self, cx: &mut Context<'_>, now: &Now) {
        for i in 0..self.slots.len() {
            let Some(warmup) = self.slots[i]
                .run
                .as_ref()
                .map(|run| run.core.timing().warmup)
            else {
                continue;
            };
            let offset = warmup_offset(warmup, next_random(&mut self.rng));
            if let Some(run) = self.slots[i].run.as_mut() {
                run.core.schedule_first(now.at, offset);
            }
            self.rearm(cx, i, now);
        }
        self.ensure_open_file_limit();
    }

    /// Every socket checker may hold its socket at the same time (slow or
    /// silent real servers): make room for one descriptor each on top of
    /// the usual allowance, as keepalived's checker process does. Without
    /// it, past ~1000 probes in flight `socket()` fails with EMFILE and
    /// healthy real servers are reported down.
    fn ensure_open_file_limit(&self) {
        let sockets = self
            .slots
            .iter()
            .filter_map(|s| s.run.as_ref())
            .filter(|r| {
                !matches!(
                    r.plan,
                    Plan::Misc { .. } | Plan::File { .. } | Plan::Disabled
                )
            })
            .count();
        if sockets > 0 {
            raise_open_file_limit(sockets as u64 + OPEN_FILE_ALLOWANCE);
        }
    }

    /// A disabled checker never holds its real server down.
    fn checker_counts_up(&self, index: usize) -> bool {
        self.slots
            .get(index)
            .and_then(|s| s.run.as_ref())
            .map_or(true, |r| matches!(r.plan, Plan::Disabled) || r.core.is_up())
    }

    fn dynamic_weight_of(&self, checkers: &[usize]) -> Option<u32> {
        checkers.iter().find_map(|&i| {
            self.slots
                .get(i)
                .and_then(|s| s.run.as_ref())
                .and_then(|r| r.dynamic_weight)
        })
    }

    fn plan(
        &self,
        config: &Config,
        tls: Option<&TlsClient>,
        vs: &VirtualServer,
        rs: &RealServer,
        checker: &Checker,
        id: &RsId,
    ) -> Plan {
        let target = &checker.target;
        let ip = target
            .connect_ip
            .as_ref()
            .map_or(rs.addr.value, |a| a.value);
        let port = target
            .connect_port
            .as_ref()
            .map(|p| p.value)
            .or_else(|| rs.port.as_ref().map(|p| p.value));
        let opts = |port: u16| ConnectOptions {
            dst: SocketAddr::new(ip, port),
            bind_addr: target.bindto.as_ref().map(|a| a.value),
            bind_port: target.bind_port.as_ref().map(|p| p.value),
            bind_if: target.bind_if.as_ref().map(|i| i.value.clone()),
            fwmark: target.fwmark.as_ref().map(|m| m.value),
        };
        let kind = checker.kind.keyword();
        let need_port = |default: Option<u16>| match port.or(default) {
            Some(p) if p != 0 => Some(p),
            _ => {
                error!(
                    "{kind} for service {id} in VS {}: no port to connect to (set connect_port); checker disabled",
                    id.vs
                );
                None
            }
        };
        match &checker.kind {
            CheckerKind::Tcp => need_port(None).map_or(Plan::Disabled, |p| Plan::Tcp(opts(p))),
            CheckerKind::Http(h) => match need_port(Some(80)) {
                Some(p) => Plan::Http {
                    opts: opts(p),
                    urls: http_requests(h, vs, rs, ip, p),
                    tls: None,
                },
                None => Plan::Disabled,
            },
            CheckerKind::Ssl(h) => {
                match tls.and_then(|c| super::tls::TlsTarget::new(c, h, vs, rs, ip, id)) {
                    Some(tls) => match need_port(Some(443)) {
                        Some(p) => Plan::Http {
                            opts: opts(p),
                            urls: http_requests(h, vs, rs, ip, p),
                            tls: Some(Box::new(tls)),
                        },
                        None => Plan::Disabled,
                    },
                    None => Plan::Disabled,
                }
            }
            CheckerKind::Smtp(s) => match need_port(Some(25)) {
                Some(p) => Plan::Smtp {
                    opts: opts(p),
                    // keepalived: the checker's helo_name, else its fixed
                    // default (not global_defs' smtp_helo_name, which is
                    // for alert mail).
                    helo: s
                        .helo_name
                        .as_ref()
                        .map_or_else(|| SMTP_DEFAULT_HELO.to_string(), |h| h.value.clone()),
                },
                None => Plan::Disabled,
            },
            CheckerKind::Dns(d) => match need_port(Some(53)) {
                Some(p) => Plan::Dns {
                    opts: opts(p),
                    name: d.name.value.clone(),
                    qtype: d.query_type.value,
                },
                None => Plan::Disabled,
            },
            CheckerKind::Udp(u) => match need_port(None) {
                Some(p) => Plan::Udp {
                    opts: opts(p),
                    exchange: Box::new(UdpExchange::from_config(u)),
                },
                None => Plan::Disabled,
            },
            CheckerKind::Ping => Plan::Ping(opts(0)),
            CheckerKind::Misc(m) => match split_command(&m.path.command.value) {
                Ok(argv) if !argv.is_empty() => Plan::Misc {
                    argv,
                    run_as: m
                        .path
                        .run_as
                        .as_ref()
                        .and_then(resolve_run_as)
                        .or(self.script_user),
                    timeout: m.timeout.value,
                    dynamic: m.dynamic.value,
                },
                Ok(_) => Plan::Disabled,
                Err(e) => {
                    error!("MISC_CHECK for service {id}: misc_path: {e}; checker disabled");
                    Plan::Disabled
                }
            },
            CheckerKind::File(f) => {
                match config
                    .track_files
                    .iter()
                    .find(|t| t.name.value == f.track_file.value)
                {
                    Some(t) => Plan::File {
                        path: t.file.value.clone(),
                        rule: FileRule {
                            weight: i64::from(
                                f.weight.as_ref().map_or(t.weight.value, |w| w.value),
                            ),
                            reverse: f.weight_reverse.value || t.weight_reverse.value,
                            base_weight: rs.weight.value,
                        },
                    },
                    None => {
                        error!(
                            "FILE_CHECK for service {id}: no track_file '{}'; checker disabled",
                            f.track_file.value
                        );
                        Plan::Disabled
                    }
                }
            }
        }
    }

    // ===== loop callbacks =====

    /// A timer with a key this engine armed is due.
    pub fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, now: Instant) {
        let now = &self.now(now);
        if decode_key(key).is_some_and(|(index, _)| index == CALENDAR_INDEX) {
            self.run_calendar(cx, now);
            return;
        }
        let Some(index) = self.run_of(key) else {
            return;
        };
        let Some(run) = self.slots[index].run.as_mut() else {
            return;
        };
        if run.wake != Wake::Precise {
            return;
        }
        run.wake = Wake::None;
        self.precise.remove(&index);
        self.wake_checker(cx, index, now);
    }

    /// The checker's wake-up came: time its probe out, or start the next.
    fn wake_checker(&mut self, cx: &mut Context<'_>, index: usize, now: &Now) {
        let Some(run) = self.slots.get_mut(index).and_then(|s| s.run.as_mut()) else {
            return;
        };
        let expired = match &mut run.probe {
            Some(Probe::Stream(i)) => self
                .streams
                .get(*i)
                .filter(|p| now.nanos() >= p.deadline.min(p.hard_deadline))
                .map(|p| {
                    Err(if p.connected {
                        if p.sent < p.outbox.len() {
                            ProbeError::WriteTimeout
                        } else {
                            ProbeError::ReadTimeout
                        }
                    } else {
                        ProbeError::ConnectTimeout
                    })
                }),
            Some(Probe::Datagram(p)) if now.nanos() >= p.deadline => Some(p.dialog.on_timeout()),
            _ => None,
        };
        if let Some(outcome) = expired {
            self.complete(cx, index, now, outcome);
            return;
        }
        let due = run.probe.is_none() && run.core.is_due(now.at);
        if due {
            self.try_start(cx, index, now);
        } else {
            self.rearm(cx, index, now);
        }
    }

    /// Starts the checker's probe (which files its wake-up), or defers it
    /// when this turn's budget is spent.
    fn try_start(&mut self, cx: &mut Context<'_>, index: usize, now: &Now) {
        if self.turn != Some(now.at) {
            self.turn = Some(now.at);
            self.starts_this_turn = 0;
        }
        let Some(run) = self.slots[index].run.as_mut() else {
            return;
        };
        if self.starts_this_turn >= MAX_PROBE_STARTS_PER_TURN {
            run.core.defer(now.at + DEFER);
            self.rearm(cx, index, now);
            return;
        }
        self.starts_this_turn += 1;
        run.core.start_probe();
        let url_index = run.urls.current();
        if let Err(outcome) = self.start_probe(cx, index, now, url_index) {
            self.complete(cx, index, now, outcome);
        }
    }

    /// Files a probe's deadline (nanoseconds on the grid): at the last tick
    /// before it if that is still to come, else as a precise timer.
    fn file_deadline(&mut self, cx: &mut Context<'_>, index: usize, at: u64, now: &Now) {
        let tick = floor_tick(at);
        if tick > floor_tick(now.nanos()) {
            self.file(cx, index, tick);
        } else {
            self.wake_precisely(cx, index, at);
        }
    }

    /// Opens the probe's socket or child and files the checker's wake-up.
    /// `Err` carries an immediate outcome.
    fn start_probe(
        &mut self,
        cx: &mut Context<'_>,
        index: usize,
        now: &Now,
        url_index: usize,
    ) -> Result<(), Outcome> {
        let Some(slot) = self.slots.get_mut(index) else {
            return Ok(());
        };
        let generation = slot.generation;
        let Some(run) = slot.run.as_mut() else {
            return Ok(());
        };
        let timeout = nanos(run.core.timing().connect_timeout);
        let deadline = now.nanos().saturating_add(timeout);
        let hard = now
            .nanos()
            .saturating_add(timeout.saturating_mul(HARD_DEADLINE_FACTOR));
        let datagram = |socket: std::net::UdpSocket, dialog: DatagramDialog| DatagramProbe {
            socket,
            token: Token(0),
            dialog,
            deadline,
        };
        let probe = match &run.plan {
            Plan::Disabled => {
                self.set_wake(cx, index, Wake::None);
                return Ok(());
            }
            Plan::Tcp(opts) => Opened::Stream(tcp_connect(opts), StreamDialog::Connect),
            Plan::Http { opts, urls, tls } => {
                let Some((request, expect)) = urls.get(url_index) else {
                    return Err(Ok(ProbeSuccess::default()));
                };
                let mut dialog = StreamDialog::Http {
                    request: Rc::clone(request),
                    reader: ResponseReader::new(Rc::clone(expect)),
                };
                if let Some(tls) = tls {
                    dialog = tls.wrap(url_index, dialog)?;
                }
                Opened::Stream(tcp_connect(opts), dialog)
            }
            Plan::Smtp { opts, helo } => {
                Opened::Stream(tcp_connect(opts), StreamDialog::Smtp(SmtpDialog::new(helo)))
            }
            Plan::Udp { opts, exchange } => {
                let socket = udp_connect(opts).map_err(|e| Err(ProbeError::Socket(e)))?;
                Opened::Datagram(Box::new(datagram(
                    socket,
                    DatagramDialog::Udp(UdpExchange::clone(exchange)),
                )))
            }
            Plan::Dns { opts, name, qtype } => {
                let next_seq = next_random(&mut self.rng) as u16;
                let Some(query) = DnsQuery::new(next_seq, name, *qtype) else {
                    return Err(Err(ProbeError::Protocol(format!(
                        "cannot encode DNS name '{name}'"
                    ))));
                };
                let socket = udp_connect(opts).map_err(|e| Err(ProbeError::Socket(e)))?;
                Opened::Datagram(Box::new(datagram(socket, DatagramDialog::Dns(query))))
            }
            Plan::Ping(opts) => {
                let (socket, raw) = icmp_connect(opts).map_err(|e| Err(ProbeError::Socket(e)))?;
                let next_seq = next_random(&mut self.rng) as u16;
                let id = (next_seq ^ 0x5a5a) | 1;
                let echo = EchoRequest::new(opts.dst.is_ipv6(), raw, id, next_seq);
                Opened::Datagram(Box::new(datagram(socket, DatagramDialog::Ping(echo))))
            }
            Plan::Misc {
                argv,
                run_as,
                timeout,
                ..
            } => {
                let key = encode_key(index as u32, generation);
                let mut spec = ChildSpec::new(argv.clone(), key);
                spec.run_as = *run_as;
                spec.timeout = Some(*timeout);
                match cx.spawn(spec) {
                    Ok(id) => {
                        run.probe = Some(Probe::Child(id));
                        // The child runner enforces misc_timeout.
                        self.set_wake(cx, index, Wake::None);
                        return Ok(());
                    }
                    Err(e) => return Err(Err(ProbeError::Script(format!("cannot run: {e}")))),
                }
            }
            Plan::File { path, rule } => {
                let mut text = String::new();
                let read = std::fs::File::open(path)
                    .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text));
                return Err(match read {
                    Ok(_) => super::file::verdict(*rule, &text, run.dynamic_weight),
                    Err(e) => Err(ProbeError::File(format!("cannot read {path}: {e}"))),
                });
            }
        };
        let registered = match probe {
            Opened::Stream(connected, dialog) => {
                let stream = connected.map_err(|e| Err(connect_error(e)))?;
                let token = cx
                    .register(
                        &mut SourceFd(&stream.as_raw_fd()),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map_err(registration_failed)?;
                let slot = self.streams.insert(StreamProbe {
                    stream,
                    token,
                    dialog,
                    connected: false,
                    outbox: Payload::default(),
                    sent: 0,
                    deadline,
                    hard_deadline: hard,
                });
                run.probe = Some(Probe::Stream(slot));
                token
            }
            Opened::Datagram(mut p) => {
                let request = p.dialog.request();
                match p.socket.send(&request) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        return Err(p.dialog.on_refused());
                    }
                    Err(e) => return Err(Err(ProbeError::Io(e))),
                }
                let token = cx
                    .register(&mut SourceFd(&p.socket.as_raw_fd()), Interest::READABLE)
                    .map_err(registration_failed)?;
                p.token = token;
                run.probe = Some(Probe::Datagram(p));
                token
            }
        };
        // Checker indexes are u32 throughout (timer keys).
        self.tokens.insert(registered, index as u32);
        self.file_deadline(cx, index, deadline, now);
        Ok(())
    }

    fn drop_probe(&mut self, cx: &mut Context<'_>, index: usize) {
        let Some(run) = self.slots.get_mut(index).and_then(|s| s.run.as_mut()) else {
            return;
        };
        match run.probe.take() {
            // The probe's socket is closed right here (dropped with `p`),
            // which takes it out of epoll: only the token is retired.
            Some(Probe::Stream(i)) => {
                if let Some(token) = self.streams.get(i).map(|p| p.token) {
                    self.tokens.remove(token);
                    cx.release_closing(token);
                }
                self.streams.discard(i);
            }
            Some(Probe::Datagram(p)) => {
                self.tokens.remove(p.token);
                cx.release_closing(p.token);
            }
            // A child that outlives its checker is still timed out by the
            // runner; its exit no longer matches and is ignored.
            Some(Probe::Child(_)) | None => {}
        }
    }

    /// A checker socket is ready.
    pub fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, event: &Event, now: Instant) {
        let Some(index) = self.tokens.get(token).map(|&i| i as usize) else {
            return;
        };
        let now = &self.now(now);
        let Some(run) = self.slots.get_mut(index).and_then(|s| s.run.as_mut()) else {
            return;
        };
        // Progress moves the probe's deadline to a connect_timeout from now.
        let renew = Renew {
            now,
            timeout: nanos(run.core.timing().connect_timeout),
        };
        let scratch = &mut self.scratch;
        let result = match &mut run.probe {
            Some(Probe::Stream(i)) => match self.streams.get_mut(*i) {
                Some(p) => drive_stream(p, cx, event, &renew, scratch),
                None => None,
            },
            Some(Probe::Datagram(p)) => drive_datagram(p, cx, scratch),
            _ => None,
        };
        if let Some(outcome) = result {
            self.complete(cx, index, now, outcome);
        }
    }

    /// A child this engine spawned exited.
    pub fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant) {
        if let Some((NOTIFY_INDEX, _)) = decode_key(exit.owner) {
            self.pending_notifies = self.pending_notifies.saturating_sub(1);
            if !exit.status.success() {
                warn!(
                    "notify script (pid {}) ended with {:?}",
                    exit.pid, exit.status
                );
            }
            return;
        }
        let Some(index) = self.run_of(exit.owner) else {
            return;
        };
        let Some(run) = self.slots[index].run.as_mut() else {
            return;
        };
        if !matches!(run.probe, Some(Probe::Child(id)) if id == exit.id) {
            return;
        }
        run.probe = None;
        let dynamic = matches!(run.plan, Plan::Misc { dynamic: true, .. });
        let outcome = super::misc::verdict(exit.status, dynamic);
        let now = &self.now(now);
        self.complete(cx, index, now, outcome);
    }

    // ===== verdicts =====

    /// The probe in flight ended with `outcome`.
    fn complete(&mut self, cx: &mut Context<'_>, index: usize, now: &Now, outcome: Outcome) {
        self.drop_probe(cx, index);
        let log_all = self.log_all_failures;
        let Some(run) = self.slots[index].run.as_mut() else {
            return;
        };
        let server_index = run.server;
        let Some(server) = self.servers.get(server_index) else {
            return;
        };
        let rs = &server.id;
        let was_up = run.core.is_up();
        let old_weight = run.dynamic_weight;
        let verdict = match &run.plan {
            Plan::Http { .. } => {
                let url = run.urls.current();
                let verdict = run
                    .core
                    .handle_url_result(now.at, &mut run.urls, outcome.is_ok());
                if outcome.is_ok() && !was_up {
                    log_url_success(&run.plan, url, rs);
                }
                verdict
            }
            _ => run.core.handle_result(now.at, outcome.is_ok()),
        };
        match &outcome {
            Ok(success) => run.dynamic_weight = success.weight,
            Err(e) => {
                if log_all || run.log_all_failures {
                    info!("{} server {rs}: {e}.", run.kind.keyword());
                } else {
                    debug!("{} server {rs}: {e}.", run.kind.keyword());
                }
            }
        }
        log_verdict(run, rs, verdict, &outcome);
        // The server's health follows its checkers' states and weights:
        // when this one's did not change, neither does the server's.
        if run.core.is_up() != was_up || run.dynamic_weight != old_weight {
            self.evaluate_server(cx, server_index);
        }
        self.rearm(cx, index, now);
    }

    fn evaluate_server(&mut self, cx: &mut Context<'_>, server_index: usize) {
        let Some(server) = self.servers.get(server_index) else {
            return;
        };
        let all_up = server.checkers.iter().all(|&i| self.checker_counts_up(i));
        let dynamic = self.dynamic_weight_of(&server.checkers);
        let Some(server) = self.servers.get_mut(server_index) else {
            return;
        };
        let Some(change) = server.health.evaluate(all_up, dynamic) else {
            return;
        };
        let id = server.id.clone();
        let inhibit = server.inhibit_on_failure;
        // "Adding/Removing service ... VS ..." is logged by the IPVS
        // manager, which knows inhibit and sorry-server state.
        let script = match change {
            ServerChange::Up { .. } => server.notify_up.as_deref().cloned(),
            ServerChange::Down => server.notify_down.as_deref().cloned(),
            ServerChange::Weight { .. } => None,
        };
        self.events.push_back(CheckEvent {
            rs: id,
            change,
            inhibit_on_failure: inhibit,
        });
        if let Some(script) = script {
            self.run_notify(cx, server_index, &script);
        }
    }

    fn run_notify(&mut self, cx: &mut Context<'_>, server_index: usize, script: &Script) {
        let Some(server) = self.servers.get(server_index) else {
            return;
        };
        info!(
            "Executing [{}] for service {} in VS {}",
            script.command.value, server.id, server.id.vs
        );
        let argv = match split_command(&script.command.value) {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => return,
            Err(e) => {
                error!("notify script [{}]: {e}", script.command.value);
                return;
            }
        };
        let mut spec = ChildSpec::new(argv, encode_key(NOTIFY_INDEX, 0));
        spec.run_as = script
            .run_as
            .as_ref()
            .and_then(resolve_run_as)
            .or(self.script_user);
        spec.timeout = Some(NOTIFY_TIMEOUT);
        match cx.spawn(spec) {
            Ok(_) => self.pending_notifies += 1,
            Err(e) => error!("cannot run notify script [{}]: {e}", script.command.value),
        }
    }
}

/// What IPVS must change to go from `old` to `new`.
fn change_between(old: &ServerHealth, new: &ServerHealth) -> Option<ServerChange> {
    match (old.is_alive(), new.is_alive()) {
        (false, true) => Some(ServerChange::Up {
            weight: new.weight(),
        }),
        (true, false) => Some(ServerChange::Down),
        (true, true) if old.weight() != new.weight() => Some(ServerChange::Weight {
            weight: new.weight(),
        }),
        _ => None,
    }
}

/// A checker configuration's hash; equal configurations (places in the
/// file aside, as for `==`) hash the same.
fn fingerprint(checker: &Checker) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    checker.hash(&mut hasher);
    hasher.finish()
}

/// The URL cursor of an HTTP_GET / SSL_GET checker (unused by the others).
fn url_cursor(checker: &Checker) -> UrlCursor {
    match &checker.kind {
        CheckerKind::Http(h) | CheckerKind::Ssl(h) => {
            UrlCursor::new(h.urls.len(), h.fast_recovery.value)
        }
        _ => UrlCursor::default(),
    }
}

/// keepalived logs each URL that passes while the checker is DOWN
/// (`http_handle_response`), naming what was checked.
fn log_url_success(plan: &Plan, url: usize, rs: &RsId) {
    if let Plan::Http { urls, .. } = plan {
        if let Some((request, expect)) = urls.get(url) {
            let what = if expect.digest.is_some() {
                "MD5 digest"
            } else {
                "HTTP status code"
            };
            info!("{what} success to {rs} url({})", request_path(request));
        }
    }
}

/// The path of a request [`build_request`] made (`GET <path> HTTP/1.x`).
fn request_path(request: &[u8]) -> std::borrow::Cow<'_, str> {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let path = line
        .strip_prefix(b"GET ")
        .and_then(|rest| rest.iter().rposition(|&b| b == b' ').map(|i| &rest[..i]))
        .unwrap_or_default();
    String::from_utf8_lossy(path)
}

/// keepalived's transition messages, per checker type.
fn log_verdict(run: &CheckerRun, rs: &RsId, verdict: Verdict, outcome: &Outcome) {
    let kind = run.kind;
    // What the log lines call a MISC_CHECK script: its first word.
    let script_name = match &run.plan {
        Plan::Misc { argv, .. } => argv.first().map_or("", String::as_str),
        _ => "",
    };
    match verdict {
        Verdict::Quiet => {}
        Verdict::Retrying { attempt } => {
            debug!(
                "{} on service {rs}: retry {attempt} of {}",
                kind.keyword(),
                run.core.timing().retry
            );
        }
        Verdict::ReportedUp => match kind {
            Kind::Tcp => info!("TCP connection to {rs} success."),
            Kind::Http | Kind::Ssl => {
                info!("Remote Web server {rs} succeed on service.")
            }
            Kind::Smtp => info!("Remote SMTP server {rs} succeed on service."),
            Kind::Misc => info!(
                "Misc check for [{rs} VS {}] by [{}] succeeded.",
                rs.vs, script_name
            ),
            Kind::Ping => info!("ICMP connection to {rs} success."),
            other => info!("{} on service {rs} success.", other.keyword()),
        },
        Verdict::ReportedDown { retries, was_up } => {
            let reason = match outcome {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            };
            // keepalived 2.2.7 (seen in the VM): TCP, UDP and PING count the
            // retries made (none after a first probe, which is not retried);
            // HTTP and MISC print the configured count even then.
            let after = |n: u32| {
                if n > 0 {
                    format!(" after {n} retries")
                } else {
                    String::new()
                }
            };
            let configured = run.core.timing().retry;
            match kind {
                Kind::Tcp => info!("TCP_CHECK on service {rs} failed{}.", after(retries)),
                Kind::Udp => info!("UDP_CHECK on service {rs} failed{}.", after(retries)),
                // After retries keepalived 2.2.7 names the virtual server too.
                Kind::Ping if retries > 0 => info!(
                    "ICMP CHECK on service {rs} of {} failed after {retries} retries.",
                    rs.vs
                ),
                Kind::Ping => info!("ICMP CHECK on service {rs} failed."),
                // An alpha checker's first failure: HTTP_GET says nothing.
                Kind::Http | Kind::Ssl if !was_up => {}
                // keepalived 2.2.7 says HTTP_CHECK for SSL_GET too.
                Kind::Http | Kind::Ssl => {
                    info!("HTTP_CHECK on service {rs} failed{}.", after(configured))
                }
                // keepalived logs the last failure's reason alone.
                Kind::Smtp => {
                    if let (Err(e), Plan::Smtp { opts, .. }) = (outcome, &run.plan) {
                        info!("SMTP_CHECK {}", smtp_failure(e, opts.dst));
                    }
                }
                Kind::Dns => {
                    if let Err(e) = outcome {
                        info!("DNS_CHECK ({rs}) {}{}", dns_failure(e), after(retries));
                    }
                }
                // MISC_CHECK's line alone says "1 retry".
                Kind::Misc => info!(
                    "Misc check for [{rs} VS {}] by [{}] failed{} ({reason}).",
                    rs.vs,
                    script_name,
                    match configured {
                        1 => " after 1 retry".to_string(),
                        n => after(n),
                    }
                ),
                other => info!(
                    "{} on service {rs} failed{} ({reason}).",
                    other.keyword(),
                    after(retries)
                ),
            }
        }
    }
}

/// keepalived's words for why an SMTP check failed (check_smtp.c), the
/// server as `[addr]:port`.
fn smtp_failure(e: &ProbeError, dst: SocketAddr) -> String {
    let server = format!("[{}]:{}", dst.ip(), dst.port());
    match e {
        ProbeError::ConnectTimeout => format!("Connection timeout to server {server}"),
        ProbeError::Connect(_) => format!("Error connecting to server {server}"),
        ProbeError::Socket(_) => format!("Could not connect to server {server}"),
        ProbeError::ReadTimeout => format!("Read timeout from server {server}"),
        ProbeError::WriteTimeout => format!("Write timeout to server {server}"),
        ProbeError::Smtp(SmtpError::BadGreeting(_)) => {
            format!("Bad greeting banner from server {server}")
        }
        ProbeError::Smtp(SmtpError::BadHelo(_)) => {
            format!("Bad HELO response from server {server}")
        }
        _ => format!("Read failure from server {server}"),
    }
}

/// keepalived's words for why a DNS check failed (check_dns.c).
fn dns_failure(e: &ProbeError) -> String {
    match e {
        ProbeError::ReadTimeout => "read timeout from socket".to_string(),
        ProbeError::DnsRcode(rcode) => format!("read error occurred. (rcode = {rcode})"),
        // recv() fails with ECONNREFUSED after an ICMP port unreachable.
        ProbeError::Refused => format!(
            "failed to read socket; errno {} (Connection refused)",
            libc::ECONNREFUSED
        ),
        ProbeError::Socket(_) | ProbeError::Connect(_) => "connection error.".to_string(),
        other => other.to_string(),
    }
}

/// A probe's deadline after progress: a connect_timeout from now.
struct Renew<'a> {
    now: &'a Now,
    timeout: u64,
}

impl Renew<'_> {
    fn deadline(&self) -> u64 {
        self.now.nanos().saturating_add(self.timeout)
    }
}

/// Moves a stream probe forward; `Some` when it is over.
fn drive_stream(
    p: &mut StreamProbe,
    cx: &mut Context<'_>,
    event: &Event,
    renew: &Renew<'_>,
    scratch: &mut Vec<u8>,
) -> Option<Outcome> {
    if !p.connected {
        // Writable without EPOLLERR is a finished connect (a failed one
        // sets SO_ERROR, which raises EPOLLERR): no getsockopt needed.
        // Any other wake-up needs SO_ERROR and getpeername to tell.
        if !event.is_writable() || event.is_error() {
            match p.stream.take_error() {
                Ok(Some(e)) | Err(e) => return Some(Err(ProbeError::Connect(e))),
                Ok(None) => {}
            }
            match p.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return None,
                Err(e) => return Some(Err(ProbeError::Connect(e))),
            }
        }
        p.connected = true;
        let step = p.dialog.start();
        if let Step::Finish(outcome) = step {
            return Some(outcome);
        }
        let steps = Steps {
            event,
            renew,
            connected_now: true,
        };
        return run_steps(p, cx, step, steps, scratch);
    }
    let steps = Steps {
        event,
        renew,
        connected_now: false,
    };
    if p.sent < p.outbox.len() {
        return run_steps(p, cx, Step::Send(Payload::default()), steps, scratch);
    }
    run_steps(p, cx, Step::Recv, steps, scratch)
}

/// What [`run_steps`] needs to know about the event it serves.
struct Steps<'a, 'b> {
    event: &'a Event,
    renew: &'a Renew<'b>,
    /// The connect finished in this event: progress already.
    connected_now: bool,
}

/// Executes dialog steps until one has to wait for the socket.
fn run_steps(
    p: &mut StreamProbe,
    cx: &mut Context<'_>,
    mut step: Step,
    steps: Steps<'_, '_>,
    scratch: &mut Vec<u8>,
) -> Option<Outcome> {
    let event = steps.event;
    // After a send, the answer comes later as a readiness edge of its own
    // (the socket is edge-triggered): reading at once would almost always
    // find nothing (measured: 88% EAGAIN), unless this event already
    // reported input.
    let input_reported = event.is_readable() || event.is_read_closed() || event.is_error();
    // Progress moves the deadline, but only a probe that goes on waiting
    // needs it (working it out costs a clock conversion).
    let mut progressed = steps.connected_now;
    // Each pass either waits, finishes, sends or consumes one read, so
    // this bounds the reads per event at about READS_PER_EVENT.
    let waiting = 'steps: {
        for _ in 0..READS_PER_EVENT + 4 {
            step = match step {
                Step::Finish(outcome) => return Some(outcome),
                Step::SendAndFinish(bytes, outcome) => {
                    let _ = p.stream.write(&bytes);
                    return Some(outcome);
                }
                Step::Send(bytes) => {
                    if !bytes.is_empty() {
                        p.outbox = bytes;
                        p.sent = 0;
                    }
                    while p.sent < p.outbox.len() {
                        match p.stream.write(&p.outbox[p.sent..]) {
                            Ok(0) => {
                                return Some(Err(ProbeError::Io(io::ErrorKind::WriteZero.into())))
                            }
                            Ok(n) => {
                                p.sent += n;
                                progressed = true;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'steps true,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Some(Err(ProbeError::Io(e))),
                        }
                    }
                    if !input_reported {
                        break 'steps true;
                    }
                    Step::Recv
                }
                Step::Recv => match p.stream.read(scratch_of(scratch, READ_CHUNK)) {
                    Ok(0) => p.dialog.on_eof(),
                    Ok(n) => {
                        progressed = true;
                        p.dialog.on_data(scratch.get(..n).unwrap_or_default())
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'steps true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Recv,
                    Err(e) => return Some(Err(ProbeError::Io(e))),
                },
            };
        }
        false
    };
    if !waiting {
        // The dialog keeps asking for more without finishing: yield to the loop.
        let token = p.token;
        let _ = cx.reregister(
            &mut SourceFd(&p.stream.as_raw_fd()),
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
    }
    if progressed {
        p.deadline = steps.renew.deadline();
    }
    None
}

/// The first `len` bytes of the shared receive buffer, grown on first use.
fn scratch_of(scratch: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if scratch.len() < len {
        scratch.resize(len, 0);
    }
    &mut scratch[..len]
}

/// Reads datagrams of a datagram probe; `Some` when it is over.
fn drive_datagram(
    p: &mut DatagramProbe,
    cx: &mut Context<'_>,
    scratch: &mut Vec<u8>,
) -> Option<Outcome> {
    let buf = scratch_of(scratch, MAX_DATAGRAM);
    for _ in 0..DATAGRAMS_PER_EVENT {
        match p.socket.recv(buf) {
            Ok(n) => {
                if let Some(outcome) = p.dialog.on_datagram(buf.get(..n).unwrap_or_default()) {
                    return Some(outcome);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Some(p.dialog.on_refused())
            }
            Err(e) => return Some(Err(ProbeError::Io(e))),
        }
    }
    let token = p.token;
    let _ = cx.reregister(
        &mut SourceFd(&p.socket.as_raw_fd()),
        token,
        Interest::READABLE,
    );
    None
}

/// One request per URL; the Host header is the url's virtualhost, else the
/// checker's, the real server's, the virtual server's, else the address.
fn http_requests(
    h: &HttpCheck,
    vs: &VirtualServer,
    rs: &RealServer,
    ip: IpAddr,
    port: u16,
) -> Vec<(Rc<[u8]>, Rc<Expect>)> {
    h.urls
        .iter()
        .map(|u| {
            let (host, port_for_header) = match h.virtualhost_for(u, rs, vs) {
                Some(v) => (v.to_string(), 80),
                None => (host_for_addr(ip), port),
            };
            let protocol: HttpProtocol = h.http_protocol.value;
            (
                build_request(&u.path.value, &host, port_for_header, protocol).into(),
                Rc::new(Expect {
                    status: u.status_code.iter().map(|s| s.value).collect(),
                    digest: u.digest.as_ref().map(|d| d.value),
                    always_hash: false,
                }),
            )
        })
        .collect()
}

/// Descriptors kept for everything but the socket checkers (the usual
/// soft limit): log, netlink, VRRP sockets, script pipes.
const OPEN_FILE_ALLOWANCE: u64 = 1024;

/// Raises RLIMIT_NOFILE to at least `wanted` (the hard limit too when
/// allowed, else as far as the hard limit goes); never lowers it.
fn raise_open_file_limit(wanted: u64) {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) } != 0 {
        return;
    }
    let wanted = wanted as libc::rlim_t;
    if cur.rlim_cur >= wanted {
        return;
    }
    let set = |l: &libc::rlimit| {
        // SAFETY: setrlimit only reads the struct we pass.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, l) == 0 }
    };
    let full = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: cur.rlim_max.max(wanted),
    };
    let capped = libc::rlimit {
        rlim_cur: cur.rlim_max.min(wanted),
        rlim_max: cur.rlim_max,
    };
    if set(&full) {
        info!("Open file limit raised to {wanted} for the checkers");
    } else if capped.rlim_cur > cur.rlim_cur && set(&capped) {
        warn!(
            "Open file limit raised to {} only (hard limit); the checkers may need {wanted}",
            capped.rlim_cur
        );
    } else {
        warn!(
            "Open file limit {} is below the {wanted} the checkers may need",
            cur.rlim_cur
        );
    }
}

/// A connect that fails at once (loopback refusals, no route) is a
/// connection failure, not a local socket problem.
fn connect_error(e: io::Error) -> ProbeError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::AddrNotAvailable => ProbeError::Connect(e),
        _ if matches!(
            e.raw_os_error(),
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH)
        ) =>
        {
            ProbeError::Connect(e)
        }
        _ => ProbeError::Socket(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_checker(text: &str) -> Checker {
        let loaded = crate::config::load_str("t.conf", text, &Default::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics.items);
        loaded.config.virtual_servers[0].real_servers[0].checkers[0].clone()
    }

    #[test]
    fn fingerprints_follow_equality_not_places() {
        let conf = |pad: &str, timeout: u32| {
            format!(
                "{pad}virtual_server 10.0.0.1 80 {{\n protocol TCP\n real_server 10.0.0.2 80 {{\n  HTTP_GET {{\n   url {{ path /a digest 0123456789abcdef0123456789abcdef }}\n   connect_timeout {timeout}\n  }}\n }}\n}}\n"
            )
        };
        let a = first_checker(&conf("", 3));
        let moved = first_checker(&conf("# moved down\n\n\n", 3));
        let changed = first_checker(&conf("", 4));
        assert_eq!(a, moved);
        assert_eq!(fingerprint(&a), fingerprint(&moved));
        assert_ne!(a, changed);
        assert_ne!(fingerprint(&a), fingerprint(&changed));
    }

    #[test]
    fn request_paths() {
        let r = build_request("/a b/c?x=1", "h", 80, HttpProtocol::V1_1);
        assert_eq!(request_path(&r), "/a b/c?x=1");
        assert_eq!(request_path(b"garbage"), "");
    }

    #[test]
    fn slots_stay_small() {
        // A few hundred bytes a checker (it was 1.2 kB with the checker's
        // configuration inline); thousands of them are the engine's bulk.
        assert!(
            std::mem::size_of::<Slot>() <= 320,
            "{}",
            std::mem::size_of::<Slot>()
        );
        assert!(
            std::mem::size_of::<Server>() <= 112,
            "{}",
            std::mem::size_of::<Server>()
        );
    }

    #[test]
    fn keys_round_trip_and_carry_the_tag() {
        let k = encode_key(123_456, 0xabcdef);
        assert_eq!(k >> 56, CHECK_KEY_TAG);
        assert_eq!(decode_key(k), Some((123_456, 0xabcdef)));
        assert_eq!(decode_key(1 << 56), None);
        // Generations wrap within 24 bits without touching the tag.
        assert_eq!(encode_key(0, 0x1ff_ffff) >> 56, CHECK_KEY_TAG);
    }
}
