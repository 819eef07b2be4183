//! All VRRP instances of one daemon, their sync groups and their trackers,
//! sans-IO.
//!
//! [`Router`] owns one [`Instance`] per `vrrp_instance`, and adds what
//! spans instances: sync groups (members change state together; a fault in
//! one faults the group), tracked interfaces, `vrrp_script`s (scheduling,
//! rise/fall) and `track_file` values, folded into each instance's
//! [`TrackStatus`]. The daemon feeds it events with `now` and performs the
//! [`RouterAction`]s; nothing here touches a socket, a process or a clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::instance::{
    Action, Discard, Instance, InstanceConfig, NotifyEvent, Reason, State, TrackStatus,
};
use super::packet::VrrpRepr;
use crate::config::model::{SyncGroup, TrackRef, VrrpInstance};
use crate::config::Config;

/// Bound on cascaded sync-group transitions processed for one event.
const MAX_PROPAGATION_ROUNDS: usize = 64;

/// keepalived's limit: a tracker sum beyond ±253 (or a track_file value
/// times weight at or below -254) faults the instance.
const TRACK_FAULT_PRIORITY: i64 = -254;

/// Something the daemon must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterAction {
    /// An action of instance `index` (see [`Action`]).
    Instance { index: usize, action: Action },
    /// Start `vrrp_script` number `script`; report with
    /// [`Router::handle_script_exit`].
    RunScript { script: usize },
    /// A sync group changed state: run its notify scripts.
    GroupNotify { group: usize, event: NotifyEvent },
    /// A `vrrp_script` changed its verdict (for the log).
    ScriptChanged { script: usize, ok: bool },
}

/// What one tracked object contributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TrackWeight {
    weight: i32,
    reverse: bool,
}

impl TrackWeight {
    fn from_ref(r: &TrackRef, default_weight: i32, default_reverse: bool) -> Self {
        TrackWeight {
            weight: r.weight.as_ref().map_or(default_weight, |w| w.value),
            reverse: r.reverse.as_ref().map_or(default_reverse, |r| r.value),
        }
    }

    /// Contribution of a boolean tracker (interface up, script OK):
    /// weight 0 faults when down; a positive weight is added while up, a
    /// negative one while down; `reverse` swaps up and down.
    fn apply_bool(self, up: bool, status: &mut Sum) {
        let up = up != self.reverse;
        if self.weight == 0 {
            status.fault |= !up;
        } else if (self.weight > 0) == up {
            status.delta += i64::from(self.weight);
        }
    }

    /// Contribution of a track_file value: weight 0 faults on a non-zero
    /// value; otherwise value × weight (negated with `reverse`).
    fn apply_value(self, value: i64, status: &mut Sum) {
        if self.weight == 0 {
            status.fault |= value != 0;
            return;
        }
        let mut delta = value.saturating_mul(i64::from(self.weight));
        if self.reverse {
            delta = -delta;
        }
        if delta <= TRACK_FAULT_PRIORITY {
            status.fault = true;
        } else {
            status.delta += delta;
        }
    }
}

#[derive(Default)]
struct Sum {
    delta: i64,
    fault: bool,
}

/// The trackers one instance (or sync group) follows, by index.
#[derive(Clone, Debug, Default)]
struct Trackers {
    interfaces: Vec<(String, TrackWeight)>,
    scripts: Vec<(usize, TrackWeight)>,
    files: Vec<(String, TrackWeight)>,
}

#[derive(Clone, Debug)]
struct ScriptState {
    name: String,
    interval: Duration,
    rise: u32,
    fall: u32,
    ok: bool,
    /// Consecutive results against the current verdict.
    streak: u32,
    next_run: Option<Instant>,
    running: bool,
}

struct Member {
    instance: Instance,
    /// The instance's own interface: down means fault (unless dont_track_primary).
    interface: Option<String>,
    trackers: Trackers,
    group: Option<usize>,
}

struct Group {
    name: String,
    members: Vec<usize>,
    trackers: Trackers,
    state: State,
}

/// Every VRRP instance of the daemon with its sync groups and trackers.
pub struct Router {
    members: Vec<Member>,
    groups: Vec<Group>,
    scripts: Vec<ScriptState>,
    /// Link state of tracked interfaces by name; unknown = up until told.
    links: HashMap<String, bool>,
    /// Last value read from each track_file, by tracker name.
    files: HashMap<String, i64>,
    actions: VecDeque<RouterAction>,
    started: bool,
}

impl Router {
    /// Build from the configuration. `primary_address(instance)` is the
    /// address adverts of that instance are sent from.
    pub fn new(
        config: &Config,
        mut primary_address: impl FnMut(&VrrpInstance) -> IpAddr,
    ) -> Router {
        let script_index: HashMap<&str, usize> = config
            .vrrp_scripts
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.value.as_str(), i))
            .collect();
        let script_defaults: Vec<TrackWeight> = config
            .vrrp_scripts
            .iter()
            .map(|s| TrackWeight {
                weight: s.weight.value,
                reverse: s.weight_reverse.value,
            })
            .collect();
        let file_defaults: HashMap<&str, TrackWeight> = config
            .track_files
            .iter()
            .map(|f| {
                (
                    f.name.value.as_str(),
                    TrackWeight {
                        weight: f.weight.value,
                        reverse: f.weight_reverse.value,
                    },
                )
            })
            .collect();
        let trackers =
            |interfaces: &[TrackRef], scripts: &[TrackRef], files: &[TrackRef]| Trackers {
                interfaces: interfaces
                    .iter()
                    .map(|r| (r.name.value.clone(), TrackWeight::from_ref(r, 0, false)))
                    .collect(),
                scripts: scripts
                    .iter()
                    .filter_map(|r| {
                        let index = *script_index.get(r.name.value.as_str())?;
                        let default = script_defaults[index];
                        Some((
                            index,
                            TrackWeight::from_ref(r, default.weight, default.reverse),
                        ))
                    })
                    .collect(),
                files: files
                    .iter()
                    .map(|r| {
                        let default = file_defaults.get(r.name.value.as_str()).copied().unwrap_or(
                            TrackWeight {
                                weight: 1,
                                reverse: false,
                            },
                        );
                        (
                            r.name.value.clone(),
                            TrackWeight::from_ref(r, default.weight, default.reverse),
                        )
                    })
                    .collect(),
            };
        let mut members: Vec<Member> = config
            .instances
            .iter()
            .map(|model| Member {
                instance: Instance::new(InstanceConfig::from_model(model, primary_address(model))),
                interface: model
                    .interface
                    .as_ref()
                    .filter(|_| !model.dont_track_primary.value)
                    .map(|i| i.value.clone()),
                trackers: trackers(
                    &model.track_interface,
                    &model.track_script,
                    &model.track_file,
                ),
                group: None,
            })
            .collect();
        let groups = config
            .sync_groups
            .iter()
            .enumerate()
            .map(|(gi, g): (usize, &SyncGroup)| {
                let indices: Vec<usize> = g
                    .members
                    .iter()
                    .filter_map(|m| {
                        config
                            .instances
                            .iter()
                            .position(|i| i.name.value == m.value)
                    })
                    .collect();
                for &i in &indices {
                    members[i].group = Some(gi);
                }
                Group {
                    name: g.name.value.clone(),
                    members: indices,
                    trackers: trackers(&g.track_interface, &g.track_script, &g.track_file),
                    state: State::Initialize,
                }
            })
            .collect();
        let scripts = config
            .vrrp_scripts
            .iter()
            .map(|s| ScriptState {
                name: s.name.value.clone(),
                interval: s.interval.value.max(Duration::from_millis(10)),
                rise: s.rise.value.max(1),
                fall: s.fall.value.max(1),
                // keepalived: a script is taken as OK until it fails, unless init_fail.
                ok: !s.init_fail.value,
                streak: 0,
                next_run: None,
                running: false,
            })
            .collect();
        Router {
            members,
            groups,
            scripts,
            links: HashMap::new(),
            files: HashMap::new(),
            actions: VecDeque::new(),
            started: false,
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn instance(&self, index: usize) -> &Instance {
        &self.members[index].instance
    }

    /// See [`Instance::set_primary_address`].
    pub fn set_primary_address(&mut self, index: usize, addr: IpAddr) {
        self.members[index].instance.set_primary_address(addr);
    }

    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.members.iter().map(|m| &m.instance)
    }

    pub fn group_name(&self, group: usize) -> &str {
        &self.groups[group].name
    }

    pub fn group_state(&self, group: usize) -> State {
        self.groups[group].state
    }

    /// The sync group of instance `index`, if any.
    pub fn group_of(&self, index: usize) -> Option<usize> {
        self.members[index].group
    }

    pub fn script_name(&self, script: usize) -> &str {
        &self.scripts[script].name
    }

    pub fn script_ok(&self, script: usize) -> bool {
        self.scripts[script].ok
    }

    /// Names of every interface a tracker or an instance follows.
    pub fn tracked_interfaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .members
            .iter()
            .flat_map(|m| {
                m.interface
                    .iter()
                    .chain(m.trackers.interfaces.iter().map(|(n, _)| n))
            })
            .chain(
                self.groups
                    .iter()
                    .flat_map(|g| g.trackers.interfaces.iter().map(|(n, _)| n)),
            )
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn poll_action(&mut self) -> Option<RouterAction> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let instances = self
            .members
            .iter()
            .filter_map(|m| m.instance.poll_timeout());
        let scripts = self
            .scripts
            .iter()
            .filter(|s| !s.running)
            .filter_map(|s| s.next_run);
        instances.chain(scripts).min()
    }

    /// Start every instance (after the initial link/file states were given)
    /// and schedule the scripts (first run at once).
    pub fn handle_startup(&mut self, now: Instant) {
        self.handle_startup_resuming(now, &[]);
    }

    /// Startup after a SIGHUP reload: instance `i` resumes `previous[i]`
    /// when it is `Some` (see [`Instance::handle_resume`]), the others
    /// start afresh.
    pub fn handle_startup_resuming(&mut self, now: Instant, previous: &[Option<State>]) {
        self.started = true;
        for script in &mut self.scripts {
            script.next_run = Some(now);
        }
        self.refresh_tracking(now);
        for index in 0..self.members.len() {
            let instance = &mut self.members[index].instance;
            match previous.get(index).copied().flatten() {
                Some(state) => instance.handle_resume(now, state),
                None => instance.handle_startup(now),
            }
        }
        self.drain(now);
        self.run_due_scripts(now);
    }

    /// Reload: instance `index` left the configuration; it stops as at
    /// SIGTERM (see [`Instance::handle_shutdown`]).
    pub fn shutdown_instance(&mut self, now: Instant, index: usize) {
        if let Some(member) = self.members.get_mut(index) {
            member.instance.handle_shutdown(now);
            self.drain(now);
        }
    }

    /// SIGTERM: every instance sends priority 0 (if Master) and stops.
    pub fn handle_shutdown(&mut self, now: Instant) {
        for member in &mut self.members {
            member.instance.handle_shutdown(now);
        }
        for script in &mut self.scripts {
            script.next_run = None;
        }
        self.drain(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for member in &mut self.members {
            member.instance.handle_timeout(now);
        }
        self.drain(now);
        self.run_due_scripts(now);
    }

    /// A validated advert for instance `index`.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        index: usize,
        src: IpAddr,
        advert: &VrrpRepr,
    ) -> Result<(), Discard> {
        let result = self.members[index].instance.handle_advert(now, src, advert);
        self.drain(now);
        result
    }

    /// A tracked interface's link went up or down.
    pub fn handle_link(&mut self, now: Instant, interface: &str, up: bool) {
        if self.links.insert(interface.to_owned(), up) == Some(up) {
            return;
        }
        if self.started {
            self.refresh_tracking(now);
        }
    }

    /// A track_file's value was read.
    pub fn handle_file_value(&mut self, now: Instant, name: &str, value: i64) {
        if self.files.insert(name.to_owned(), value) == Some(value) {
            return;
        }
        if self.started {
            self.refresh_tracking(now);
        }
    }

    /// `vrrp_script` number `script` finished (`ok`: exit status 0; a timeout
    /// or a failure to start is not OK).
    pub fn handle_script_exit(&mut self, now: Instant, script: usize, ok: bool) {
        let Some(state) = self.scripts.get_mut(script) else {
            return;
        };
        state.running = false;
        if ok == state.ok {
            state.streak = 0;
        } else {
            state.streak += 1;
            // keepalived: `rise` successes in a row make a failed script OK,
            // `fall` failures in a row make an OK script fail.
            let needed = if ok { state.rise } else { state.fall };
            if state.streak >= needed {
                state.ok = ok;
                state.streak = 0;
                self.actions
                    .push_back(RouterAction::ScriptChanged { script, ok });
                if self.started {
                    self.refresh_tracking(now);
                }
            }
        }
        self.run_due_scripts(now);
    }

    fn run_due_scripts(&mut self, now: Instant) {
        for (index, script) in self.scripts.iter_mut().enumerate() {
            if script.running || !script.next_run.is_some_and(|t| t <= now) {
                continue;
            }
            script.running = true;
            script.next_run = now.checked_add(script.interval);
            self.actions
                .push_back(RouterAction::RunScript { script: index });
        }
    }

    fn link_up(&self, name: &str) -> bool {
        self.links.get(name).copied().unwrap_or(true)
    }

    fn sum(&self, trackers: &Trackers, weighted: bool) -> Sum {
        let mut sum = Sum::default();
        let mut add = |w: TrackWeight, f: &dyn Fn(TrackWeight, &mut Sum)| {
            // keepalived: in a sync group, weighted trackers of members are ignored.
            let w = if weighted || w.weight == 0 { w } else { return };
            f(w, &mut sum)
        };
        for (name, w) in &trackers.interfaces {
            let up = self.link_up(name);
            add(*w, &|w, s| w.apply_bool(up, s));
        }
        for (index, w) in &trackers.scripts {
            let ok = self.scripts[*index].ok;
            add(*w, &|w, s| w.apply_bool(ok, s));
        }
        for (name, w) in &trackers.files {
            let value = self.files.get(name).copied().unwrap_or(0);
            add(*w, &|w, s| w.apply_value(value, s));
        }
        sum
    }

    /// Recompute every instance's tracker status and hand changes to it.
    fn refresh_tracking(&mut self, now: Instant) {
        let group_faults: Vec<bool> = self
            .groups
            .iter()
            .map(|g| {
                self.sum(&g.trackers, true).fault
                    || g.members.iter().any(|&m| self.own_status(m).fault)
            })
            .collect();
        for index in 0..self.members.len() {
            let mut status = self.own_status(index);
            if let Some(group) = self.members[index].group {
                status.fault |= group_faults[group];
            }
            if status != self.members[index].instance.track_status() {
                self.members[index]
                    .instance
                    .handle_track_change(now, status);
            }
        }
        self.drain(now);
    }

    fn own_status(&self, index: usize) -> TrackStatus {
        let member = &self.members[index];
        let sum = self.sum(&member.trackers, member.group.is_none());
        let own_link_down = member
            .interface
            .as_deref()
            .is_some_and(|i| !self.link_up(i));
        TrackStatus {
            priority_delta: sum.delta.clamp(-253, 253) as i32,
            fault: sum.fault || own_link_down,
        }
    }

    /// Move instance actions to the router queue, propagating sync-group
    /// transitions to the other members.
    fn drain(&mut self, now: Instant) {
        for _ in 0..MAX_PROPAGATION_ROUNDS {
            let mut follow: Vec<(usize, State)> = Vec::new();
            let mut any = false;
            for index in 0..self.members.len() {
                while let Some(action) = self.members[index].instance.poll_action() {
                    any = true;
                    if let Action::StateChanged { to, reason, .. } = action {
                        if reason != Reason::SyncGroup {
                            if let Some(group) = self.members[index].group {
                                follow.push((group, to));
                            }
                        }
                    }
                    self.actions
                        .push_back(RouterAction::Instance { index, action });
                }
            }
            for (group, to) in follow {
                for &member in &self.groups[group].members.clone() {
                    let instance = &mut self.members[member].instance;
                    match to {
                        State::Master => instance.handle_group_master(now),
                        State::Backup => instance.handle_group_backup(now),
                        // Faults reach members through refresh_tracking.
                        State::Fault | State::Initialize => {}
                    }
                }
            }
            if !any {
                break;
            }
        }
        self.update_group_states();
    }

    fn update_group_states(&mut self) {
        for (gi, group) in self.groups.iter_mut().enumerate() {
            let states = group
                .members
                .iter()
                .map(|&m| self.members[m].instance.state());
            let new = if group.members.is_empty() {
                State::Initialize
            } else if states.clone().any(|s| s == State::Fault) {
                State::Fault
            } else if states.clone().all(|s| s == State::Master) {
                State::Master
            } else if states.clone().all(|s| s == State::Initialize) {
                State::Initialize
            } else {
                State::Backup
            };
            if new == group.state {
                continue;
            }
            let old = group.state;
            group.state = new;
            let event = match new {
                State::Master => NotifyEvent::Master,
                State::Backup => NotifyEvent::Backup,
                State::Fault => NotifyEvent::Fault,
                State::Initialize if old != State::Initialize => NotifyEvent::Stop,
                State::Initialize => continue,
            };
            self.actions
                .push_back(RouterAction::GroupNotify { group: gi, event });
        }
    }
}
