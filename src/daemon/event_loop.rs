//! The single-threaded mio loop: I/O readiness, timers, signals and child
//! processes, dispatched to one [`Service`] that knows the configuration.
//!
//! One turn: poll (timeout = earliest timer, child or shutdown deadline),
//! read the clock once, then in order: signals, due timers (at most
//! [`MAX_TIMERS_PER_TURN`]), child timeouts, I/O events of `Priority::High`
//! sources, then of `Priority::Normal` ones. Every callback of a turn sees
//! the same `now`; only the poll timeout is computed from a fresh clock read
//! so that the turn's own work does not delay the next timer.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use mio::event::{Event, Source};
use mio::{Events, Interest, Poll, Registry, Token};

use super::child::{ChildError, ChildExit, ChildId, ChildRunner, ChildSpec};
use super::signals::{DaemonSignal, SignalError, SignalFd};
use super::timer::{TimerId, TimerQueue};

/// Timers fired per turn; the rest wait one (zero-timeout) poll so a burst
/// of timers cannot starve I/O.
pub const MAX_TIMERS_PER_TURN: usize = 64;

/// Default bound on an orderly shutdown (procd SIGKILLs after 5 s).
/// With the deadline timerfd armed, the poll timeout only guards against a
/// lost wakeup; it is this much later than the deadline.
const DEADLINE_BACKSTOP: Duration = Duration::from_millis(50);

pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_millis(4500);

const EVENTS_CAPACITY: usize = 256;

/// Which dump a SIGUSR asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    /// SIGUSR1: configuration and state (`/tmp/keepalived.data`).
    Data,
    /// SIGUSR2: statistics (`/tmp/keepalived.stats`).
    Stats,
}

/// Dispatch order of I/O events within one turn: VRRP sockets register as
/// `High` so adverts are never queued behind checker traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    High,
    Normal,
}

/// The daemon logic driven by the loop. Callbacks must not block.
pub trait Service {
    /// Called once before the loop starts.
    fn start(&mut self, cx: &mut Context<'_>, now: Instant);
    /// A source the service registered is ready; `token` is the one
    /// `cx.register` returned (never a stale one).
    fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, event: &Event, now: Instant);
    /// A timer armed with `cx.add_timer(_, key)` is due.
    fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, now: Instant);
    /// A child started with `cx.spawn` has exited (or timed out).
    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant);
    /// SIGHUP.
    fn reload(&mut self, cx: &mut Context<'_>, now: Instant);
    /// SIGUSR1 / SIGUSR2.
    fn dump(&mut self, cx: &mut Context<'_>, which: DumpKind, now: Instant);
    /// SIGTERM/SIGINT or `cx.request_shutdown()`: begin an orderly shutdown.
    /// Return true when done; otherwise the loop keeps serving I/O, timers
    /// and children until `cx.shutdown_complete()` or the shutdown grace
    /// period ends. Called once.
    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool;
}

#[derive(Debug)]
pub enum LoopError {
    Poll(io::Error),
    Signals(SignalError),
    /// Registering or deregistering a source with the poller failed.
    Register(io::Error),
    /// Every token slot is in use.
    TooManySources,
    /// The token is not (or no longer) registered.
    StaleToken(Token),
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::Poll(err) => write!(f, "event loop: poll failed: {err}"),
            LoopError::Signals(err) => write!(f, "event loop: {err}"),
            LoopError::Register(err) => write!(f, "event loop: cannot (de)register source: {err}"),
            LoopError::TooManySources => write!(f, "event loop: too many registered sources"),
            LoopError::StaleToken(token) => {
                write!(f, "event loop: token {} is not registered", token.0)
            }
        }
    }
}

impl std::error::Error for LoopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopError::Poll(err) | LoopError::Register(err) => Some(err),
            LoopError::Signals(err) => Some(err),
            LoopError::TooManySources | LoopError::StaleToken(_) => None,
        }
    }
}

// A token is (generation << INDEX_BITS) | slot index. Half the bits each:
// 65536 slots and generations on 32-bit routers, plenty either way. The
// all-ones index is never handed out, so no token equals SIGNAL_TOKEN.
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: usize = INDEX_MASK;
const MAX_SLOTS: usize = INDEX_MASK;
const SIGNAL_TOKEN: Token = Token(usize::MAX);
/// The deadline timerfd: index all ones too, another generation.
const DEADLINE_TOKEN: Token = Token(INDEX_MASK);

#[derive(Debug)]
struct Slot {
    generation: usize,
    /// `None` while the slot is free.
    priority: Option<Priority>,
}

/// Per-source data of one subsystem, indexed by the token's slot: a lookup
/// is an index and a compare where a hash map hashes and probes. Holds
/// only tokens [`Context::register`] returned (slots are dense, so the
/// table stays as small as the loop's own).
#[derive(Debug)]
pub struct TokenSlab<V> {
    entries: Vec<Option<(Token, V)>>,
}

impl<V> Default for TokenSlab<V> {
    fn default() -> Self {
        TokenSlab {
            entries: Vec::new(),
        }
    }
}

impl<V> TokenSlab<V> {
    fn index(token: Token) -> usize {
        token.0 & INDEX_MASK
    }

    /// Stores `value` for `token`; returns what a token of the same slot held.
    pub fn insert(&mut self, token: Token, value: V) -> Option<V> {
        let index = Self::index(token);
        if index >= self.entries.len() {
            self.entries.resize_with(index + 1, || None);
        }
        let entry = self.entries.get_mut(index)?;
        entry.replace((token, value)).map(|(_, old)| old)
    }

    pub fn get(&self, token: Token) -> Option<&V> {
        match self.entries.get(Self::index(token)) {
            Some(Some((held, value))) if *held == token => Some(value),
            _ => None,
        }
    }

    pub fn contains(&self, token: Token) -> bool {
        self.get(token).is_some()
    }

    pub fn remove(&mut self, token: Token) -> Option<V> {
        let entry = self.entries.get_mut(Self::index(token))?;
        match entry {
            Some((held, _)) if *held == token => entry.take().map(|(_, value)| value),
            _ => None,
        }
    }
}

/// Token table: slab of slots with generations, so an event queued for a
/// deregistered source never reaches whoever reuses its slot.
#[derive(Debug, Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Live slots of `Priority::High`: without any, I/O is dispatched in
    /// one pass.
    high: usize,
}

impl Slots {
    fn token(index: usize, generation: usize) -> Token {
        Token((generation << INDEX_BITS) | index)
    }

    fn allocate(&mut self, priority: Priority) -> Option<Token> {
        let index = match self.free.pop() {
            Some(index) => index,
            None if self.slots.len() < MAX_SLOTS => {
                self.slots.push(Slot {
                    generation: 0,
                    priority: None,
                });
                self.slots.len() - 1
            }
            None => return None,
        };
        let slot = self.slots.get_mut(index)?;
        slot.priority = Some(priority);
        if priority == Priority::High {
            self.high += 1;
        }
        Some(Self::token(index, slot.generation))
    }

    fn live_slot(&mut self, token: Token) -> Option<&mut Slot> {
        let index = token.0 & INDEX_MASK;
        let generation = (token.0 >> INDEX_BITS) & GENERATION_MASK;
        self.slots
            .get_mut(index)
            .filter(|slot| slot.priority.is_some() && slot.generation == generation)
    }

    fn priority(&mut self, token: Token) -> Option<Priority> {
        self.live_slot(token).and_then(|slot| slot.priority)
    }

    fn release(&mut self, token: Token) -> bool {
        let Some(slot) = self.live_slot(token) else {
            return false;
        };
        let was_high = slot.priority == Some(Priority::High);
        slot.priority = None;
        slot.generation = (slot.generation + 1) & GENERATION_MASK;
        self.free.push(token.0 & INDEX_MASK);
        if was_high {
            self.high -= 1;
        }
        true
    }
}

/// Loop state the service may change through [`Context`].
#[derive(Debug)]
struct LoopCore {
    slots: Slots,
    timers: TimerQueue<u64>,
    /// The timers that must fire on time (VRRP): only these arm the
    /// deadline timerfd. The others (checkers, children, shutdown) ride
    /// the poll timeout, whose millisecond rounding and 0.1% slack do not
    /// matter to them, and save a timerfd_settime + read per wakeup.
    precise: std::collections::BTreeSet<TimerId>,
    children: ChildRunner<u64>,
    shutdown_requested: bool,
    /// Set once `Service::shutdown` was called.
    shutdown_deadline: Option<Instant>,
    shutdown_complete: bool,
}

/// The service's handle on the loop during a callback.
pub struct Context<'a> {
    registry: &'a Registry,
    core: &'a mut LoopCore,
    now: Instant,
}

impl Context<'_> {
    /// The instant of the current turn (also passed to every callback).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The raw mio registry, for anything the helpers below do not cover.
    pub fn registry(&self) -> &Registry {
        self.registry
    }

    /// Registers `source` with `Priority::Normal`.
    pub fn register<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        interest: Interest,
    ) -> Result<Token, LoopError> {
        self.register_with_priority(source, interest, Priority::Normal)
    }

    pub fn register_with_priority<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        interest: Interest,
        priority: Priority,
    ) -> Result<Token, LoopError> {
        let token = self
            .core
            .slots
            .allocate(priority)
            .ok_or(LoopError::TooManySources)?;
        if let Err(err) = self.registry.register(source, token, interest) {
            self.core.slots.release(token);
            return Err(LoopError::Register(err));
        }
        Ok(token)
    }

    pub fn reregister<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        token: Token,
        interest: Interest,
    ) -> Result<(), LoopError> {
        if self.core.slots.priority(token).is_none() {
            return Err(LoopError::StaleToken(token));
        }
        self.registry
            .reregister(source, token, interest)
            .map_err(LoopError::Register)
    }

    /// Deregisters `source` and retires `token`; call it before dropping a
    /// source. The token is retired even if the poller reports an error.
    pub fn deregister<S: Source + ?Sized>(
        &mut self,
        source: &mut S,
        token: Token,
    ) -> Result<(), LoopError> {
        if !self.core.slots.release(token) {
            return Err(LoopError::StaleToken(token));
        }
        self.registry
            .deregister(source)
            .map_err(LoopError::Register)
    }

    pub fn add_timer(&mut self, deadline: Instant, key: u64) -> TimerId {
        self.core.timers.insert(deadline, key)
    }

    /// A timer that must fire within the timer slack of `deadline` (VRRP
    /// failover bounds), not the poll's millisecond rounding.
    pub fn add_precise_timer(&mut self, deadline: Instant, key: u64) -> TimerId {
        let id = self.core.timers.insert(deadline, key);
        self.core.precise.insert(id);
        id
    }

    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        if !self.core.precise.is_empty() {
            self.core.precise.remove(&id);
        }
        self.core.timers.cancel(id)
    }

    /// Retires `token` without asking the poller: for a source that is
    /// closed right after (the kernel drops a closed descriptor from epoll
    /// by itself), which saves an epoll_ctl per short-lived socket. Do not
    /// use it for a descriptor that has been duplicated.
    pub fn release_closing(&mut self, token: Token) -> bool {
        self.core.slots.release(token)
    }

    /// Starts a child; its exit comes back through `handle_child_exit` with
    /// `spec.owner` as the exit's owner.
    pub fn spawn(&mut self, spec: ChildSpec<u64>) -> Result<ChildId, ChildError> {
        self.core.children.spawn(spec, self.now)
    }

    /// Pid of a child that has not exited (been reaped) yet.
    pub fn child_pid(&self, id: ChildId) -> Option<nix::unistd::Pid> {
        self.core.children.pid_of(id)
    }

    pub fn running_children(&self) -> usize {
        self.core.children.running()
    }

    /// Asks for the same orderly shutdown as SIGTERM.
    pub fn request_shutdown(&mut self) {
        self.core.shutdown_requested = true;
    }

    /// Ends the loop at the end of the current turn (also valid without
    /// a prior shutdown, for a service that must stop at once).
    pub fn shutdown_complete(&mut self) {
        self.core.shutdown_complete = true;
    }
}

/// Owns the poller, the token table, timers, the signalfd and children.
pub struct EventLoop {
    poll: Poll,
    events: Events,
    signals: SignalFd,
    /// Wakes the poll at the next deadline precisely (see `deadline.rs`);
    /// `None` if the kernel refused one, then the poll timeout is used.
    deadline: Option<super::deadline::DeadlineFd>,
    core: LoopCore,
    shutdown_grace: Duration,
}

fn context<'a>(poll: &'a Poll, core: &'a mut LoopCore, now: Instant) -> Context<'a> {
    Context {
        registry: poll.registry(),
        core,
        now,
    }
}

impl EventLoop {
    /// Creates the poller and blocks the daemon's signals (see
    /// [`SignalFd`]): call from the main thread before any thread exists.
    pub fn new() -> Result<Self, LoopError> {
        let poll = Poll::new().map_err(LoopError::Poll)?;
        let mut signals = SignalFd::new().map_err(LoopError::Signals)?;
        poll.registry()
            .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)
            .map_err(LoopError::Register)?;
        let deadline = super::deadline::DeadlineFd::new().ok().and_then(|fd| {
            let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
            poll.registry()
                .register(
                    &mut mio::unix::SourceFd(&raw),
                    DEADLINE_TOKEN,
                    Interest::READABLE,
                )
                .ok()
                .map(|()| fd)
        });
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            signals,
            deadline,
            core: LoopCore {
                slots: Slots::default(),
                timers: TimerQueue::new(),
                precise: std::collections::BTreeSet::new(),
                children: ChildRunner::new(),
                shutdown_requested: false,
                shutdown_deadline: None,
                shutdown_complete: false,
            },
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        })
    }

    /// How long an unfinished shutdown may run before `run` returns anyway.
    pub fn set_shutdown_grace(&mut self, grace: Duration) {
        self.shutdown_grace = grace;
    }

    /// Runs until the service's shutdown completes or its grace period ends.
    /// Children still running then are SIGKILLed.
    pub fn run<S: Service>(&mut self, service: &mut S) -> Result<(), LoopError> {
        let result = self.run_turns(service);
        self.core.children.kill_all();
        result
    }

    fn run_turns<S: Service>(&mut self, service: &mut S) -> Result<(), LoopError> {
        let mut now = Instant::now();
        service.start(&mut context(&self.poll, &mut self.core, now), now);
        loop {
            self.begin_shutdown_if_requested(service, now);
            if self.core.shutdown_complete {
                return Ok(());
            }
            if self
                .core
                .shutdown_deadline
                .is_some_and(|deadline| now >= deadline)
            {
                log::warn!(
                    "shutdown did not complete within {:?}; exiting",
                    self.shutdown_grace
                );
                return Ok(());
            }

            let next = self.next_deadline();
            let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            let next_precise = self.core.precise.first().map(TimerId::deadline);
            let timeout = match (&mut self.deadline, timeout) {
                // Due now, or no timerfd: the plain timeout.
                (_, Some(t)) if t.is_zero() => timeout,
                (None, _) => timeout,
                (Some(fd), _) => match fd.arm(next_precise) {
                    // The timerfd wakes us for a precise deadline; the
                    // timeout is then only a backstop.
                    Ok(()) if next_precise.is_some() && next_precise == next => {
                        timeout.map(|t| t + DEADLINE_BACKSTOP)
                    }
                    Ok(()) | Err(_) => timeout,
                },
            };
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(LoopError::Poll(err)),
            }
            now = Instant::now();
            let (mut deadline_fired, mut signalled) = (false, false);
            for event in self.events.iter() {
                deadline_fired |= event.token() == DEADLINE_TOKEN;
                signalled |= event.token() == SIGNAL_TOKEN;
            }
            if let (Some(fd), true) = (&mut self.deadline, deadline_fired) {
                fd.drain();
            }
            if signalled {
                self.handle_signals(service, now)?;
            }
            self.fire_timers(service, now);
            self.core.children.handle_timeouts(now);
            self.dispatch_io(service, now);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.core.timers.next_deadline(),
            self.core.children.next_deadline(),
            self.core.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn begin_shutdown_if_requested<S: Service>(&mut self, service: &mut S, now: Instant) {
        if !self.core.shutdown_requested || self.core.shutdown_deadline.is_some() {
            return;
        }
        self.core.shutdown_deadline = Some(now + self.shutdown_grace);
        if service.shutdown(&mut context(&self.poll, &mut self.core, now), now) {
            self.core.shutdown_complete = true;
        }
    }

    fn handle_signals<S: Service>(
        &mut self,
        service: &mut S,
        now: Instant,
    ) -> Result<(), LoopError> {
        // Edge-triggered: drain completely.
        while let Some(signal) = self.signals.read().map_err(LoopError::Signals)? {
            let (poll, core) = (&self.poll, &mut self.core);
            match signal {
                DaemonSignal::Hup => service.reload(&mut context(poll, core, now), now),
                DaemonSignal::Usr1 => {
                    service.dump(&mut context(poll, core, now), DumpKind::Data, now)
                }
                DaemonSignal::Usr2 => {
                    service.dump(&mut context(poll, core, now), DumpKind::Stats, now)
                }
                DaemonSignal::Term | DaemonSignal::Int => {
                    if core.shutdown_deadline.is_some() {
                        log::info!("shutdown already in progress, ignoring {signal:?}");
                    }
                    core.shutdown_requested = true;
                    self.begin_shutdown_if_requested(service, now);
                }
                DaemonSignal::Child => {
                    for exit in core.children.reap(now) {
                        service.handle_child_exit(&mut context(poll, core, now), exit, now);
                    }
                }
            }
        }
        Ok(())
    }

    fn fire_timers<S: Service>(&mut self, service: &mut S, now: Instant) {
        for _ in 0..MAX_TIMERS_PER_TURN {
            let Some((id, key)) = self.core.timers.pop_expired(now) else {
                return;
            };
            if !self.core.precise.is_empty() {
                self.core.precise.remove(&id);
            }
            service.handle_timer(&mut context(&self.poll, &mut self.core, now), key, now);
        }
    }

    fn dispatch_io<S: Service>(&mut self, service: &mut S, now: Instant) {
        // With no High source, a High pass would find nothing.
        let first = if self.core.slots.high > 0 { 0 } else { 1 };
        for priority in [Priority::High, Priority::Normal].into_iter().skip(first) {
            for event in self.events.iter() {
                // Checked per event: an earlier callback may have
                // deregistered this source during the same turn.
                if self.core.slots.priority(event.token()) != Some(priority) {
                    continue;
                }
                let mut cx = context(&self.poll, &mut self.core, now);
                service.handle_io(&mut cx, event.token(), event, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_generations() {
        let mut slots = Slots::default();
        let first = slots.allocate(Priority::High).expect("slot");
        assert_eq!(slots.priority(first), Some(Priority::High));
        assert_eq!(slots.high, 1);
        assert!(slots.release(first));
        assert!(!slots.release(first), "double release");
        assert_eq!(slots.high, 0, "counted once");
        let reused = slots.allocate(Priority::Normal).expect("slot");
        assert_eq!(
            reused.0 & INDEX_MASK,
            first.0 & INDEX_MASK,
            "slot is reused"
        );
        assert_ne!(reused, first);
        assert_eq!(slots.priority(first), None, "stale token is dead");
        assert_eq!(slots.priority(reused), Some(Priority::Normal));
        assert_eq!(slots.priority(SIGNAL_TOKEN), None);
        assert_eq!(slots.priority(Token(12345)), None);
    }

    #[test]
    fn token_slab_tells_generations_apart() {
        let mut slots = Slots::default();
        let mut slab = TokenSlab::default();
        let first = slots.allocate(Priority::Normal).expect("slot");
        assert_eq!(slab.insert(first, 1u32), None);
        assert_eq!(slab.get(first), Some(&1));
        assert!(slots.release(first));
        let reused = slots.allocate(Priority::Normal).expect("slot");
        assert!(!slab.contains(reused), "another generation of the slot");
        assert_eq!(slab.remove(reused), None);
        assert_eq!(slab.remove(first), Some(1));
        assert_eq!(slab.get(first), None);
        assert!(!slab.contains(SIGNAL_TOKEN));
        assert!(!slab.contains(DEADLINE_TOKEN));
        assert_eq!(slab.insert(reused, 2), None);
        assert_eq!(slab.get(reused), Some(&2));
    }

    #[test]
    fn generations_wrap_without_colliding_with_the_signal_token() {
        let mut slots = Slots::default();
        let token = slots.allocate(Priority::Normal).expect("slot");
        slots.slots[0].generation = GENERATION_MASK;
        let oldest = Slots::token(0, GENERATION_MASK);
        assert_ne!(oldest, SIGNAL_TOKEN);
        assert_eq!(slots.priority(token), None);
        assert!(slots.release(oldest));
        let wrapped = slots.allocate(Priority::Normal).expect("slot");
        assert_eq!(wrapped, Slots::token(0, 0));
        assert_eq!(slots.slots.len(), 1);
    }
}
