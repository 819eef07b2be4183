//! The sans-IO state machine of one VRRP instance (RFC 5798 6.4 for VRRPv3,
//! RFC 3768 6.4 for VRRPv2).
//!
//! The [`Instance`] never touches a socket or reads a clock. The daemon feeds
//! it events with the `handle_*` methods, passing the current time, then
//! drains the resulting [`Action`]s with [`Instance::poll_action`] and sleeps
//! until [`Instance::poll_timeout`]:
//!
//! ```text
//! inst.handle_startup(now);
//! loop {
//!     while let Some(action) = inst.poll_action() { /* perform it */ }
//!     wait for a packet or until inst.poll_timeout();
//!     inst.handle_advert(now, src, &repr)  or  inst.handle_timeout(now);
//! }
//! ```
//!
//! Every `handle_*` call may queue actions, and may move the timeout, so
//! call `poll_action` until it returns `None` and then `poll_timeout` again
//! after each one.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::packet::{Auth, VrrpRepr, VrrpVersion};
use super::timers::{Timer, TimerTable};
use crate::config::model::{InitialState, VrrpInstance};

/// RFC 5798 5.2.4: priority of the router that owns the virtual addresses.
pub const PRIORITY_OWNER: u8 = 255;
/// RFC 5798 5.2.4: priority 0 says that the current Master stops participating.
pub const PRIORITY_STOP: u8 = 0;
/// RFC 5798 5.2.4: the highest priority a router that is not the owner may have.
pub const PRIORITY_MAX_BACKUP: u8 = 254;
/// RFC 5798 5.2.7: the largest Max Adver Int (12 bits, centiseconds).
pub const MAX_ADVERT_INT_CENTIS: u16 = 4095;

/// State of a VRRP instance (RFC 5798 6.4), plus keepalived's FAULT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// RFC 5798 6.4.1: waiting for a Startup event (also after Shutdown).
    Initialize,
    /// RFC 5798 6.4.2: monitoring the Master.
    Backup,
    /// RFC 5798 6.4.3: forwarding for the virtual addresses.
    Master,
    /// keepalived: a tracked object with weight 0 failed; silent, no VIPs.
    Fault,
}

impl State {
    /// The state as keepalived spells it in logs and notify arguments.
    pub const fn keepalived_name(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// Why a state transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Startup of a router that is not the owner: Backup.
    Startup,
    /// Startup (or fault recovery) of the address owner (priority 255).
    AddressOwner,
    /// Startup with `state MASTER` configured.
    ConfiguredMaster,
    /// The Master_Down_Timer fired.
    MasterDown,
    /// An advertisement with a higher priority arrived while Master.
    HigherPriority,
    /// An advertisement with equal priority from a greater primary address.
    EqualPriorityGreaterAddress,
    /// A tracked object with weight 0 failed.
    TrackFault,
    /// Every failed tracked object with weight 0 recovered.
    TrackRecovered,
    /// A Shutdown event.
    Shutdown,
    /// Another member of the instance's sync group changed state.
    SyncGroup,
}

/// Which notify script to run (keepalived's `notify_master`, ... and the
/// generic `notify` with the state name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotifyEvent {
    /// `notify_master`.
    Master,
    /// `notify_backup`.
    Backup,
    /// `notify_fault`.
    Fault,
    /// `notify_stop`.
    Stop,
}

/// Something the daemon must do on behalf of the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send one ADVERTISEMENT with this priority (0 on shutdown and fault);
    /// [`Instance::advert_repr`] builds it.
    SendAdvert {
        /// Priority field of the advertisement.
        priority: u8,
    },
    /// Add the virtual addresses to the interface.
    AddVips,
    /// Remove the virtual addresses from the interface.
    DelVips,
    /// Start a burst of gratuitous ARPs (IPv4) or unsolicited Neighbor
    /// Advertisements (IPv6) for every virtual address.
    SendGratuitous,
    /// The instance changed state.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// What caused it.
        reason: Reason,
    },
    /// Run the notify scripts for this event.
    RunNotify(NotifyEvent),
}

/// Why an advertisement was not processed. Each is a statistics counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Discard {
    /// The VRID is not this instance's (the daemon should not route it here).
    VridMismatch,
    /// RFC 5798 7.1 / RFC 3768 7.1: the version differs from the configured one.
    VersionMismatch,
    /// RFC 3768 7.1: a v2 advertisement interval differs from the local one.
    AdvertIntervalMismatch,
    /// The instance is in Initialize or Fault and does not take part.
    NotParticipating,
    /// Strict mode: the addresses differ from the configured ones and the
    /// sender is not the address owner (RFC 3768 7.1).
    AddressListMismatch,
}

impl std::fmt::Display for Discard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Discard::VridMismatch => "VRID mismatch",
            Discard::VersionMismatch => "VRRP version mismatch",
            Discard::AdvertIntervalMismatch => "advertisement interval mismatch",
            Discard::NotParticipating => "instance not participating",
            Discard::AddressListMismatch => "address list mismatch",
        })
    }
}

/// What the tracked objects (interfaces, scripts, files) say, summed by the
/// daemon: the sum of the weights of the tracked objects in effect, and
/// whether any tracked object with weight 0 is down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrackStatus {
    /// Added to the configured priority (ignored for the address owner).
    pub priority_delta: i32,
    /// A tracked object with weight 0 failed: the instance goes to Fault.
    pub fault: bool,
}

/// Plain data the state machine needs, derived from
/// [`config::model::VrrpInstance`](VrrpInstance) by [`InstanceConfig::from_model`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Instance name (`vrrp_instance NAME`), for logs.
    pub name: String,
    /// Virtual router identifier, 1..=255.
    pub vrid: u8,
    /// Configured priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// Advertisement_Interval: whole seconds for v2, centiseconds for v3.
    pub advert_interval: Duration,
    /// Protocol version.
    pub version: VrrpVersion,
    /// `state MASTER` or `state BACKUP`.
    pub initial_state: InitialState,
    /// `nopreempt`: never take over from a live lower-priority Master.
    pub nopreempt: bool,
    /// `preempt_delay`: after startup or a fault, wait this long before
    /// preempting a lower-priority Master.
    pub preempt_delay: Duration,
    /// The virtual addresses (`virtual_ipaddress`), carried in adverts.
    pub virtual_addresses: Vec<IpAddr>,
    /// Accept_Mode (RFC 5798 6.1): the daemon drops traffic to the
    /// addresses while Master when false (the state machine does not use it).
    pub accept: bool,
    /// keepalived strict mode (`vrrp_strict` / `strict_mode`): an advert
    /// whose address list differs from ours is dropped unless it comes from
    /// the address owner (RFC 3768 7.1); otherwise it is only reported.
    pub strict: bool,
    /// The local primary address, compared with the sender's on a priority tie.
    pub primary_address: IpAddr,
    /// `lower_prio_no_advert`: as Master, do not answer a lower-priority advert.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: as Master, send one advert before yielding
    /// to a higher-priority advert.
    pub higher_prio_send_advert: bool,
    /// keepalived `down_timer_adverts`, 1..=100: the advert intervals in
    /// Master_Down_Interval (the RFCs' 3).
    pub down_timer_adverts: u8,
}

impl InstanceConfig {
    /// Derive the state machine's configuration from the typed config;
    /// `primary_address` is the interface address adverts are sent from.
    pub fn from_model(model: &VrrpInstance, primary_address: IpAddr) -> InstanceConfig {
        let version = if model.version.value == 3 {
            VrrpVersion::V3
        } else {
            VrrpVersion::V2
        };
        InstanceConfig {
            name: model.name.value.clone(),
            vrid: model.virtual_router_id.value,
            priority: model.priority.value.max(1),
            advert_interval: normalize_interval(version, model.advert_int.value),
            version,
            initial_state: model.state.value,
            nopreempt: model.nopreempt.value,
            preempt_delay: model.preempt_delay.value,
            virtual_addresses: model
                .virtual_ipaddress
                .iter()
                .map(|vip| vip.addr.value)
                .collect(),
            accept: model.accept.value,
            strict: model.strict_mode.value,
            primary_address,
            lower_prio_no_advert: model.lower_prio_no_advert.value,
            higher_prio_send_advert: model.higher_prio_send_advert.value,
            down_timer_adverts: model.down_timer_adverts.value,
        }
    }
}

/// RFC 3768 5.3.7: the v2 interval is whole seconds (at least 1).
/// RFC 5798 5.2.7: the v3 interval is 1..=4095 centiseconds.
fn normalize_interval(version: VrrpVersion, interval: Duration) -> Duration {
    match version {
        VrrpVersion::V2 => Duration::from_secs(interval.as_secs().clamp(1, 255)),
        VrrpVersion::V3 => centis_to_duration(duration_to_centis(interval)),
    }
}

/// Whole centiseconds in `d`, clamped to the 12-bit field (at least 1).
fn duration_to_centis(d: Duration) -> u16 {
    let centis = d.as_millis() / 10;
    let clamped = centis.clamp(1, u128::from(MAX_ADVERT_INT_CENTIS));
    u16::try_from(clamped).unwrap_or(MAX_ADVERT_INT_CENTIS)
}

/// `now + delay`; an `Instant` overflow (impossible with real clocks and the
/// bounded intervals here) yields `now` instead of a panic.
fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay).unwrap_or(now)
}

fn centis_to_duration(centis: u16) -> Duration {
    Duration::from_millis(u64::from(centis) * 10)
}

/// One VRRP instance: the RFC 5798 / RFC 3768 state machine.
#[derive(Clone, Debug)]
pub struct Instance {
    config: InstanceConfig,
    state: State,
    timers: TimerTable,
    actions: VecDeque<Action>,
    track: TrackStatus,
    /// RFC 5798 6.1 Master_Adver_Interval (v3: learned from the Master).
    master_adver_interval: Duration,
    /// keepalived preempt_delay: lower-priority Masters are not preempted
    /// before this instant.
    preempt_hold_until: Option<Instant>,
    /// Priority and primary address of the last Master heard in Backup.
    last_master: Option<(u8, IpAddr)>,
}

impl Instance {
    /// A new instance in Initialize state; nothing happens before
    /// [`Instance::handle_startup`].
    pub fn new(mut config: InstanceConfig) -> Instance {
        config.priority = config.priority.max(1);
        // keepalived's range; 0 would make a Backup take over within Skew_Time.
        config.down_timer_adverts = config.down_timer_adverts.clamp(1, 100);
        config.advert_interval = normalize_interval(config.version, config.advert_interval);
        let master_adver_interval = config.advert_interval;
        Instance {
            config,
            state: State::Initialize,
            timers: TimerTable::default(),
            actions: VecDeque::new(),
            track: TrackStatus::default(),
            master_adver_interval,
            preempt_hold_until: None,
            last_master: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// The local primary address became known (the daemon reads it from
    /// the interface at start); compared with the sender's on priority ties.
    pub fn set_primary_address(&mut self, addr: IpAddr) {
        self.config.primary_address = addr;
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The last tracker status given to [`Instance::handle_track_change`].
    pub fn track_status(&self) -> TrackStatus {
        self.track
    }

    /// Priority and primary address of the last Master heard while Backup.
    pub fn last_master(&self) -> Option<(u8, IpAddr)> {
        self.last_master
    }

    /// The priority in effect: the configured one plus the tracker weights,
    /// clamped to 1..=254; the address owner always has 255.
    pub fn effective_priority(&self) -> u8 {
        // keepalived: the owner's priority is not changed by tracker weights.
        if self.config.priority == PRIORITY_OWNER {
            return PRIORITY_OWNER;
        }
        let sum = i64::from(self.config.priority) + i64::from(self.track.priority_delta);
        let clamped = sum.clamp(1, i64::from(PRIORITY_MAX_BACKUP));
        u8::try_from(clamped).unwrap_or(PRIORITY_MAX_BACKUP)
    }

    /// RFC 5798 6.1 Master_Adver_Interval (v2: the configured interval).
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// RFC 5798 6.1 / RFC 3768 6.1 Skew_Time for the effective priority.
    pub fn skew_time(&self) -> Duration {
        let inverse_priority = 256 - u64::from(self.effective_priority());
        match self.config.version {
            // RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 seconds.
            // 1 s / 256 = 3 906 250 ns exactly.
            VrrpVersion::V2 => Duration::from_nanos(inverse_priority * 3_906_250),
            // RFC 5798 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
            // Not truncated to whole centiseconds: keepalived computes it in
            // microseconds (0.1 s, priority 100: 60.9375 ms, so the bound is
            // 0.3609 s), and a backup that waits less would fail over early.
            VrrpVersion::V3 => {
                let mai = u64::from(duration_to_centis(self.master_adver_interval));
                Duration::from_nanos(inverse_priority * mai * 10_000_000 / 256)
            }
        }
    }

    /// RFC 5798 6.1: Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    /// RFC 3768 6.1: Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time.
    /// keepalived's `down_timer_adverts` replaces the 3.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval * u32::from(self.config.down_timer_adverts) + self.skew_time()
    }

    /// The advertisement to send for [`Action::SendAdvert`].
    pub fn advert_repr(&self, priority: u8, auth: Auth) -> VrrpRepr {
        let auth = match self.config.version {
            VrrpVersion::V2 => auth,
            VrrpVersion::V3 => Auth::None,
        };
        VrrpRepr {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            max_advert_int: duration_to_centis(self.config.advert_interval),
            addresses: self.config.virtual_addresses.clone(),
            auth,
        }
    }

    /// The next action to perform, in order. Call until `None` after every
    /// `handle_*` call.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Instance::handle_timeout`] must next be called, if ever.
    /// Ask again after every `handle_*` call.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The Startup event (RFC 5798 6.4.1). Ignored unless in Initialize.
    pub fn handle_startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.preempt_hold_until = self.preempt_hold_after(now);
        if self.track.fault {
            self.enter_fault(Reason::TrackFault);
        } else if self.config.priority == PRIORITY_OWNER {
            // RFC 5798 6.4.1: if the Priority = 255 ... transition to the {Master} state.
            self.enter_master(now, Reason::AddressOwner);
        } else if self.config.initial_state == InitialState::Master {
            // keepalived `state MASTER`: the configured initial state is Master.
            self.enter_master(now, Reason::ConfiguredMaster);
        } else {
            // RFC 5798 6.4.1: else set Master_Adver_Interval to Advertisement_Interval,
            // Master_Down_Timer to Master_Down_Interval, transition to {Backup}.
            self.enter_backup(now, Reason::Startup);
        }
    }

    /// Start in the state a previous configuration left this instance in
    /// (SIGHUP reload keeps keepalived's instances where they were): a
    /// Master keeps advertising and (re)installs its addresses, a Backup
    /// waits a full Master_Down_Interval. No state change is reported and no
    /// notify script runs. Ignored unless in Initialize.
    pub fn handle_resume(&mut self, now: Instant, previous: State) {
        if self.state != State::Initialize {
            return;
        }
        if self.track.fault {
            self.enter_fault(Reason::TrackFault);
            return;
        }
        match previous {
            State::Master => {
                self.state = State::Master;
                self.send_advert(now);
                self.actions.push_back(Action::AddVips);
                // Announce the addresses again: some may be new.
                self.actions.push_back(Action::SendGratuitous);
            }
            State::Backup => {
                self.state = State::Backup;
                self.master_adver_interval = self.config.advert_interval;
                self.timers
                    .set(Timer::MasterDown, after(now, self.master_down_interval()));
            }
            // Out of Fault (its trackers are fine now) or never started: as at startup.
            State::Fault | State::Initialize => self.handle_startup(now),
        }
    }

    /// The Shutdown event (RFC 5798 6.4.2 / 6.4.3): back to Initialize.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        let from = self.state;
        match from {
            State::Initialize => return,
            State::Master => {
                // RFC 5798 6.4.3: if a Shutdown event is received, cancel the Adver_Timer,
                // send an ADVERTISEMENT with Priority = 0, transition to {Initialize}.
                self.actions.push_back(Action::SendAdvert {
                    priority: PRIORITY_STOP,
                });
                self.actions.push_back(Action::DelVips);
            }
            // RFC 5798 6.4.2: if a Shutdown event is received, cancel the
            // Master_Down_Timer, transition to {Initialize}.
            State::Backup | State::Fault => {}
        }
        self.timers.stop_all();
        self.last_master = None;
        self.transition(from, State::Initialize, Reason::Shutdown);
        self.actions.push_back(Action::RunNotify(NotifyEvent::Stop));
    }

    /// Timers fired. Call when `now >= poll_timeout()`; an early or extra
    /// call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.is_expired(Timer::Advert, now) {
            self.timers.stop(Timer::Advert);
            if self.state == State::Master {
                // RFC 5798 6.4.3: if the Adver_Timer fires, send an ADVERTISEMENT and
                // reset the Adver_Timer to Advertisement_Interval.
                self.send_advert(now);
            }
        }
        if self.timers.is_expired(Timer::MasterDown, now) {
            self.timers.stop(Timer::MasterDown);
            if self.state == State::Backup {
                // RFC 5798 6.4.2: if the Master_Down_Timer fires, send an ADVERTISEMENT,
                // broadcast gratuitous ARPs, set the Adver_Timer, transition to {Master}.
                self.enter_master(now, Reason::MasterDown);
            }
        }
    }

    /// An ADVERTISEMENT for this VRID arrived from `src` (its IP source, the
    /// sender's primary address) and passed the packet checks of
    /// [`super::packet`]. Returns why it was not processed, for statistics.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        advert: &VrrpRepr,
    ) -> Result<(), Discard> {
        if advert.vrid != self.config.vrid {
            return Err(Discard::VridMismatch);
        }
        // RFC 5798 7.1: MUST verify that the version matches the configured one.
        if advert.version != self.config.version {
            return Err(Discard::VersionMismatch);
        }
        // RFC 3768 7.1: MUST verify that the Adver Interval in the packet is the same as the
        // locally configured for this virtual router; if not, MUST discard the packet.
        if self.config.version == VrrpVersion::V2
            && advert.max_advert_int != duration_to_centis(self.config.advert_interval)
        {
            return Err(Discard::AdvertIntervalMismatch);
        }
        // RFC 3768 7.1: if the address check fails and the packet was not generated by the
        // address owner, the receiver MUST drop the packet. keepalived enforces it in strict
        // mode only (and never for priority 0, which carries no claim).
        if self.config.strict
            && advert.priority != PRIORITY_STOP
            && advert.priority != PRIORITY_OWNER
            && !self.address_list_matches(advert)
        {
            return Err(Discard::AddressListMismatch);
        }
        match self.state {
            State::Initialize | State::Fault => Err(Discard::NotParticipating),
            State::Backup => {
                self.backup_receive(now, src, advert);
                Ok(())
            }
            State::Master => {
                self.master_receive(now, src, advert);
                Ok(())
            }
        }
    }

    /// Whether the advert carries exactly the configured addresses (as a
    /// set: the order may differ between implementations).
    pub fn address_list_matches(&self, advert: &VrrpRepr) -> bool {
        let ours = &self.config.virtual_addresses;
        advert.addresses.len() == ours.len() && advert.addresses.iter().all(|a| ours.contains(a))
    }

    /// The tracked objects changed: a new sum of weights, or a weight-0
    /// object failed or recovered. Before startup the status is only stored.
    pub fn handle_track_change(&mut self, now: Instant, status: TrackStatus) {
        let old_priority = self.effective_priority();
        self.track = status;
        let priority_changed = self.effective_priority() != old_priority;
        match (self.state, status.fault) {
            (State::Initialize, _) => {}
            // keepalived: a failed weight-0 tracker puts the instance in FAULT.
            (State::Backup | State::Master, true) => self.enter_fault(Reason::TrackFault),
            // keepalived: when every weight-0 tracker recovered, the instance
            // starts again as at startup (the owner becomes Master at once).
            (State::Fault, false) => {
                // keepalived: preempt_delay runs again after a fault, as after startup.
                self.preempt_hold_until = self.preempt_hold_after(now);
                if self.config.priority == PRIORITY_OWNER {
                    self.enter_master(now, Reason::AddressOwner);
                } else {
                    self.enter_backup(now, Reason::TrackRecovered);
                }
            }
            (State::Fault, true) => {}
            (State::Master, false) => {
                if priority_changed {
                    // Tell the Backups at once so a higher-priority one can preempt.
                    self.send_advert(now);
                }
            }
            // The new Skew_Time applies at the next reset of the Master_Down_Timer.
            (State::Backup, false) => {}
        }
    }

    /// Sync group: another member became Master, so this Backup member
    /// follows at once (keepalived's sync group semantics).
    pub fn handle_group_master(&mut self, now: Instant) {
        if self.state == State::Backup {
            self.enter_master(now, Reason::SyncGroup);
        }
    }

    /// Sync group: another member left Master for Backup, so this Master
    /// member follows. It listens for the new Master as after a higher
    /// priority advert.
    pub fn handle_group_backup(&mut self, now: Instant) {
        if self.state != State::Master {
            return;
        }
        self.timers.stop(Timer::Advert);
        self.master_adver_interval = self.config.advert_interval;
        self.timers
            .set(Timer::MasterDown, after(now, self.master_down_interval()));
        self.actions.push_back(Action::DelVips);
        self.transition(State::Master, State::Backup, Reason::SyncGroup);
        self.actions
            .push_back(Action::RunNotify(NotifyEvent::Backup));
    }

    /// RFC 5798 6.4.2: an ADVERTISEMENT received in Backup state.
    fn backup_receive(&mut self, now: Instant, src: IpAddr, advert: &VrrpRepr) {
        // RFC 5798 6.4.2: if the Priority in the ADVERTISEMENT is zero, set the
        // Master_Down_Timer to Skew_Time.
        if advert.priority == PRIORITY_STOP {
            self.last_master = None;
            self.timers
                .set(Timer::MasterDown, after(now, self.skew_time()));
            return;
        }
        self.last_master = Some((advert.priority, src));
        let local_priority = self.effective_priority();
        let lower_priority_master = advert.priority < local_priority;
        // RFC 5798 6.1: the address owner always preempts, whatever Preempt_Mode says.
        let preempt_mode = !self.config.nopreempt || self.config.priority == PRIORITY_OWNER;
        // keepalived preempt_delay: within the delay after startup, a lower-priority Master
        // is treated as if Preempt_Mode were False.
        let preempt_held = self.preempt_hold_until.is_some_and(|until| now < until);
        if !preempt_mode || preempt_held || !lower_priority_master {
            // RFC 5798 6.4.2: if Preempt_Mode is False, or the Priority in the ADVERTISEMENT
            // is greater than or equal to the local Priority: set Master_Adver_Interval to
            // the Max Advertise Interval in the ADVERTISEMENT, recompute Skew_Time and
            // Master_Down_Interval, reset the Master_Down_Timer to Master_Down_Interval.
            if self.config.version == VrrpVersion::V3 {
                self.master_adver_interval =
                    centis_to_duration(advert.max_advert_int.clamp(1, MAX_ADVERT_INT_CENTIS));
            }
            self.timers
                .set(Timer::MasterDown, after(now, self.master_down_interval()));
        }
        // RFC 5798 6.4.2: else (Priority less than the local Priority and Preempt_Mode
        // True) discard the ADVERTISEMENT: the Master_Down_Timer runs out and we preempt.
    }

    /// RFC 5798 6.4.3: an ADVERTISEMENT received in Master state.
    fn master_receive(&mut self, now: Instant, src: IpAddr, advert: &VrrpRepr) {
        let local_priority = self.effective_priority();
        // RFC 5798 6.4.3: if the Priority in the ADVERTISEMENT is zero, send an
        // ADVERTISEMENT and reset the Adver_Timer to Advertisement_Interval.
        if advert.priority == PRIORITY_STOP {
            self.send_advert(now);
            return;
        }
        // RFC 5798 6.4.3: if the Priority in the ADVERTISEMENT is greater than the local
        // Priority, or equal and the primary IP address of the sender is greater than the
        // local primary IP address: cancel the Adver_Timer, set Master_Adver_Interval,
        // recompute Master_Down_Interval, set the Master_Down_Timer, go to {Backup}.
        let reason = if advert.priority > local_priority {
            Some(Reason::HigherPriority)
        } else if advert.priority == local_priority && src > self.config.primary_address {
            Some(Reason::EqualPriorityGreaterAddress)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                if self.config.higher_prio_send_advert {
                    // keepalived higher_prio_send_advert: one last advert before yielding.
                    self.actions.push_back(Action::SendAdvert {
                        priority: local_priority,
                    });
                }
                self.last_master = Some((advert.priority, src));
                self.leave_master_for_backup(now, advert, reason);
            }
            None => {
                // RFC 5798 6.4.3: otherwise discard the ADVERTISEMENT. keepalived (unless
                // lower_prio_no_advert) answers at once so the other router yields sooner.
                if !self.config.lower_prio_no_advert {
                    self.send_advert(now);
                }
            }
        }
    }

    fn leave_master_for_backup(&mut self, now: Instant, advert: &VrrpRepr, reason: Reason) {
        self.timers.stop(Timer::Advert);
        self.master_adver_interval = match self.config.version {
            VrrpVersion::V3 => {
                centis_to_duration(advert.max_advert_int.clamp(1, MAX_ADVERT_INT_CENTIS))
            }
            VrrpVersion::V2 => self.config.advert_interval,
        };
        self.timers
            .set(Timer::MasterDown, after(now, self.master_down_interval()));
        self.actions.push_back(Action::DelVips);
        self.transition(State::Master, State::Backup, reason);
        self.actions
            .push_back(Action::RunNotify(NotifyEvent::Backup));
    }

    fn enter_backup(&mut self, now: Instant, reason: Reason) {
        let from = self.state;
        self.timers.stop_all();
        self.last_master = None;
        // RFC 5798 6.4.1: set Master_Adver_Interval to Advertisement_Interval and the
        // Master_Down_Timer to Master_Down_Interval.
        self.master_adver_interval = self.config.advert_interval;
        self.timers
            .set(Timer::MasterDown, after(now, self.master_down_interval()));
        self.transition(from, State::Backup, reason);
        self.actions
            .push_back(Action::RunNotify(NotifyEvent::Backup));
    }

    fn enter_master(&mut self, now: Instant, reason: Reason) {
        let from = self.state;
        self.timers.stop_all();
        self.last_master = None;
        self.transition(from, State::Master, reason);
        // RFC 5798 6.4.1 / 6.4.2: send an ADVERTISEMENT, broadcast gratuitous ARPs (IPv4)
        // or unsolicited Neighbor Advertisements (IPv6), set the Adver_Timer.
        // The advert goes first: adding addresses is a netlink round trip,
        // and the Backups' timers run from the advert.
        self.send_advert(now);
        self.actions.push_back(Action::AddVips);
        self.actions.push_back(Action::SendGratuitous);
        self.actions
            .push_back(Action::RunNotify(NotifyEvent::Master));
    }

    fn enter_fault(&mut self, reason: Reason) {
        let from = self.state;
        if from == State::Master {
            // keepalived: a Master going to FAULT sends a priority 0 advert so a
            // Backup takes over after Skew_Time, then releases the addresses.
            self.actions.push_back(Action::SendAdvert {
                priority: PRIORITY_STOP,
            });
            self.actions.push_back(Action::DelVips);
        }
        self.timers.stop_all();
        self.last_master = None;
        self.transition(from, State::Fault, reason);
        self.actions
            .push_back(Action::RunNotify(NotifyEvent::Fault));
    }

    /// Queue an advert with the effective priority and re-arm the Adver_Timer.
    fn send_advert(&mut self, now: Instant) {
        self.actions.push_back(Action::SendAdvert {
            priority: self.effective_priority(),
        });
        self.timers
            .set(Timer::Advert, after(now, self.config.advert_interval));
    }

    fn transition(&mut self, from: State, to: State, reason: Reason) {
        self.state = to;
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }

    fn preempt_hold_after(&self, now: Instant) -> Option<Instant> {
        if self.config.preempt_delay.is_zero() {
            None
        } else {
            now.checked_add(self.config.preempt_delay)
        }
    }
}
