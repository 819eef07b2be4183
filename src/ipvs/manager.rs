//! The IPVS manager: keeps the kernel's table equal to the desired one.
//!
//! It holds the live [`State`], a copy of what it believes the kernel has
//! (dumped at start and after any error, then updated by every successful
//! command), and a backend that talks to the kernel. Every change (checker
//! verdict, VIP ownership, reload) recomputes the desired table and sends
//! only the difference. Kernel errors are logged, never fatal: the table is
//! dumped again [`RESYNC_DELAY`] later and reconciled from what is really
//! there.
//!
//! Timer and child keys carry [`Tag::Ipvs`] in their top byte; the manager
//! is the daemon's IPVS [`Subsystem`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};

use super::desired::{Notice, State, Update};
use super::ids::{RsId, VsId};
use super::table::{diff, table_from_dump, Op, Table};
use crate::config::model::{Config, LvsSyncDaemon, Script};
use crate::daemon::{
    split_command, ChildError, ChildExit, ChildId, ChildSpec, Context, RunAs, Subsystem, Tag,
    TimerId,
};
use crate::netlink::ipvs::{
    DaemonState, Info, IpvsClient, Request, Service, ServiceKey, SyncDaemon, Timeouts,
};
use crate::netlink::Error;

/// After a kernel error, dump and reconcile again this much later.
pub const RESYNC_DELAY: Duration = Duration::from_secs(5);
/// quorum_up / quorum_down scripts are killed after this long.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Oldest IPVS this daemon programs (`IP_VS_VERSION_CODE` 1.2.0, Linux 2.6.10+).
const MIN_IPVS_VERSION: u32 = 0x010200;

const RESYNC_KEY: u64 = Tag::Ipvs.key(1);
const SCRIPT_KEY: u64 = Tag::Ipvs.key(2);

/// True when a timer or child key belongs to the IPVS manager.
pub fn owns_key(key: u64) -> bool {
    Tag::of(key) == Some(Tag::Ipvs)
}

/// What the manager needs from the kernel (a trait so tests can use an
/// in-memory kernel).
pub trait Backend {
    fn info(&mut self) -> Result<Info, Error>;
    /// Every service with its destinations.
    fn table(&mut self) -> Result<Table, Error>;
    /// Send one non-dump request and wait for the ACK.
    fn execute(&mut self, request: &Request<'_>) -> Result<(), Error>;
    /// Several requests at once; one result each, in order. A refused
    /// request does not stop the ones after it.
    fn execute_batch(&mut self, requests: &[Request<'_>]) -> Vec<Result<(), Error>> {
        requests.iter().map(|r| self.execute(r)).collect()
    }
}

impl Backend for IpvsClient {
    fn info(&mut self) -> Result<Info, Error> {
        IpvsClient::info(self)
    }
    fn table(&mut self) -> Result<Table, Error> {
        Ok(table_from_dump(IpvsClient::table(self)?))
    }
    fn execute(&mut self, request: &Request<'_>) -> Result<(), Error> {
        IpvsClient::execute(self, request)
    }
    fn execute_batch(&mut self, requests: &[Request<'_>]) -> Vec<Result<(), Error>> {
        IpvsClient::execute_batch(self, requests)
    }
}

/// Timers and children, as the event loop's [`Context`] provides them.
pub trait Host {
    fn add_timer(&mut self, deadline: Instant, key: u64) -> TimerId;
    fn cancel_timer(&mut self, id: TimerId) -> bool;
    fn spawn(&mut self, spec: ChildSpec<u64>) -> Result<ChildId, ChildError>;
}

impl Host for Context<'_> {
    fn add_timer(&mut self, deadline: Instant, key: u64) -> TimerId {
        Context::add_timer(self, deadline, key)
    }
    fn cancel_timer(&mut self, id: TimerId) -> bool {
        Context::cancel_timer(self, id)
    }
    fn spawn(&mut self, spec: ChildSpec<u64>) -> Result<ChildId, ChildError> {
        Context::spawn(self, spec)
    }
}

/// How the manager opens its backend.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn Backend>, Error>>;

fn open_kernel() -> Result<Box<dyn Backend>, Error> {
    match IpvsClient::open() {
        Ok(client) => Ok(Box::new(client)),
        Err(err) if err.errno() == Some(libc::ENOENT) => {
            // The family appears when ip_vs is loaded; keepalived loads it too.
            load_ip_vs_module();
            Ok(Box::new(IpvsClient::open()?))
        }
        Err(err) => Err(err),
    }
}

/// `modprobe ip_vs`, once, at start (a blocking call is fine before the
/// daemon serves anything).
fn load_ip_vs_module() {
    for modprobe in ["/sbin/modprobe", "/usr/sbin/modprobe", "modprobe"] {
        match std::process::Command::new(modprobe)
            .arg("ip_vs")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
        {
            Ok(status) => {
                debug!("IPVS: {modprobe} ip_vs: {status}");
                return;
            }
            Err(_) => continue,
        }
    }
}

/// Global IPVS settings of a configuration.
#[derive(Debug, Clone, PartialEq, Default)]
struct Globals {
    flush_at_start: bool,
    flush_on_stop: bool,
    timeouts: Option<Timeouts>,
    sync_daemon: Option<LvsSyncDaemon>,
    /// VRID of the sync daemon's VRRP instance (its default sync id).
    sync_vrid: Option<u8>,
    script_user: Option<(String, Option<String>)>,
}

impl Globals {
    fn from_config(config: &Config) -> Self {
        let g = &config.global;
        let t = &g.lvs_timeouts.value;
        let timeouts =
            (t.tcp.is_some() || t.tcpfin.is_some() || t.udp.is_some()).then(|| Timeouts {
                tcp: t.tcp.unwrap_or(0),
                tcp_fin: t.tcpfin.unwrap_or(0),
                udp: t.udp.unwrap_or(0),
            });
        let sync_daemon = g.lvs_sync_daemon.as_ref().map(|s| s.value.clone());
        let sync_vrid = sync_daemon.as_ref().and_then(|s| {
            let name = s.instance.as_deref()?;
            config
                .instances
                .iter()
                .find(|i| i.name.value == name)
                .map(|i| i.virtual_router_id.value)
        });
        Globals {
            flush_at_start: g.lvs_flush.value,
            flush_on_stop: g.lvs_flush_on_stop.value,
            timeouts,
            sync_daemon,
            sync_vrid,
            script_user: g
                .script_user
                .as_ref()
                .map(|u| (u.value.user.clone(), u.value.group.clone())),
        }
    }

    fn sync_daemon(&self, state: DaemonState) -> Option<SyncDaemon> {
        let s = self.sync_daemon.as_ref()?;
        Some(SyncDaemon {
            state,
            interface: s.interface.clone(),
            sync_id: u32::from(s.sync_id.or(self.sync_vrid).unwrap_or(0)),
            maxlen: s.maxlen,
            group: Some(s.group),
            port: Some(s.port),
            ttl: Some(s.ttl),
        })
    }
}

/// Manager options from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagerOptions {
    /// Remove our services at shutdown (false with `-I / --dont-release-ipvs`).
    pub release_on_stop: bool,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            release_on_stop: true,
        }
    }
}

/// Keeps the kernel's IPVS table equal to configuration plus live state.
pub struct Manager {
    state: State,
    globals: Globals,
    options: ManagerOptions,
    opener: Opener,
    backend: Option<Box<dyn Backend>>,
    /// What the kernel holds, as far as we know.
    kernel: Table,
    /// Services of the running configuration (removed at reload when they
    /// leave it, and at shutdown).
    managed: BTreeSet<ServiceKey>,
    resync_timer: Option<TimerId>,
    /// Sync daemon role we started, to stop it again.
    sync_running: Option<DaemonState>,
    scripts_running: usize,
    stopping: bool,
    /// Failed attempts to open the backend (the first one is logged).
    connect_failures: u32,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("services", &self.kernel.len())
            .field("connected", &self.backend.is_some())
            .finish()
    }
}

impl Manager {
    /// A manager for `config` that talks to the kernel once started.
    pub fn new(config: &Config, options: ManagerOptions) -> Self {
        Self::with_opener(config, options, Box::new(open_kernel))
    }

    /// A manager with an already open backend (tests use an in-memory
    /// kernel).
    pub fn with_backend(
        config: &Config,
        options: ManagerOptions,
        backend: Box<dyn Backend>,
    ) -> Self {
        let mut slot = Some(backend);
        Self::with_opener(
            config,
            options,
            Box::new(move || {
                slot.take().ok_or(Error::Protocol {
                    what: "open IPVS",
                    detail: "the backend was already taken".into(),
                })
            }),
        )
    }

    /// A manager that opens its backend with `opener` at start.
    pub fn with_opener(config: &Config, options: ManagerOptions, opener: Opener) -> Self {
        Manager {
            state: State::new(config, local_addresses()),
            globals: Globals::from_config(config),
            options,
            opener,
            backend: None,
            kernel: Table::new(),
            managed: BTreeSet::new(),
            resync_timer: None,
            sync_running: None,
            scripts_running: 0,
            stopping: false,
            connect_failures: 0,
        }
    }

    /// True when the configuration has anything for IPVS to do.
    pub fn is_needed(config: &Config) -> bool {
        !config.virtual_servers.is_empty()
            || config.global.lvs_sync_daemon.is_some()
            || config.global.lvs_flush.value
    }

    /// Connect to the kernel, apply global settings, adopt what already
    /// matches and add the rest.
    pub fn start(&mut self, host: &mut dyn Host, now: Instant) {
        self.managed = self.state.configured_services();
        self.resync(host, now);
    }

    /// Open the backend if needed; the first time it opens, apply the
    /// global settings (lvs_flush, lvs_timeouts, lvs_sync_daemon). Without
    /// IPVS in the kernel the daemon keeps running (VRRP does not need it)
    /// and retries every [`RESYNC_DELAY`], logging the failure once.
    fn connect(&mut self) -> bool {
        if self.backend.is_some() {
            return true;
        }
        let mut backend = match (self.opener)() {
            Ok(backend) => backend,
            Err(err) => {
                if self.connect_failures == 0 {
                    error!("IPVS: Can't initialize ipvs: {err}");
                } else {
                    debug!("IPVS: Can't initialize ipvs: {err}");
                }
                self.connect_failures = self.connect_failures.saturating_add(1);
                return false;
            }
        };
        match backend.info() {
            Ok(info) if info.version < MIN_IPVS_VERSION => warn!(
                "IPVS: kernel IPVS {} is older than 1.2.0; some settings may fail",
                info.version_string()
            ),
            Ok(info) => info!(
                "IPVS: kernel IP Virtual Server version {} (size={})",
                info.version_string(),
                info.conn_tab_size
            ),
            Err(err) => warn!("IPVS: {err}"),
        }
        self.backend = Some(backend);
        self.apply_globals();
        true
    }

    /// The global settings, once per connection.
    fn apply_globals(&mut self) {
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        if self.globals.flush_at_start {
            match backend.execute(&Request::Flush) {
                Ok(()) => info!("IPVS: flushed the table (lvs_flush)"),
                Err(err) => error!("IPVS: {err}"),
            }
        }
        if let Some(timeouts) = self.globals.timeouts {
            if let Err(err) = backend.execute(&Request::SetConfig(&timeouts)) {
                error!("IPVS: {err}");
            }
        }
        let role = match self.globals.sync_daemon.as_ref() {
            // Tied to a VRRP instance: backup until that instance is master.
            Some(s) if s.instance.is_some() => Some(DaemonState::Backup),
            Some(_) => Some(DaemonState::Master),
            None => None,
        };
        if let Some(role) = role {
            self.start_sync_daemon(role);
        }
    }

    fn start_sync_daemon(&mut self, role: DaemonState) {
        let Some(daemon) = self.globals.sync_daemon(role) else {
            return;
        };
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        if let Some(running) = self.sync_running.take() {
            if let Err(err) = backend.execute(&Request::DelDaemon(running)) {
                warn!("IPVS: {err}");
            }
        }
        match backend.execute(&Request::NewDaemon(&daemon)) {
            Ok(()) => {
                info!(
                    "Starting IPVS sync daemon as {} on {} (syncid {})",
                    match role {
                        DaemonState::Master => "master",
                        DaemonState::Backup => "backup",
                    },
                    daemon.interface,
                    daemon.sync_id
                );
                self.sync_running = Some(role);
            }
            Err(err) => error!("IPVS: {err}"),
        }
    }

    /// Dump the kernel's table and reconcile against it.
    fn resync(&mut self, host: &mut dyn Host, now: Instant) {
        if let Some(timer) = self.resync_timer.take() {
            host.cancel_timer(timer);
        }
        if !self.connect() {
            self.schedule_resync(host, now);
            return;
        }
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        match backend.table() {
            Ok(table) => {
                self.kernel = table;
                self.reconcile(host, now);
            }
            Err(err) => {
                error!("IPVS: {err}");
                self.schedule_resync(host, now);
            }
        }
    }

    fn schedule_resync(&mut self, host: &mut dyn Host, now: Instant) {
        if self.resync_timer.is_none() && !self.stopping {
            self.resync_timer = Some(host.add_timer(now + RESYNC_DELAY, RESYNC_KEY));
        }
    }

    /// Log what the state reports and start its scripts.
    fn drain_notices(&mut self, host: &mut dyn Host, now: Instant) {
        // Bounded by what the state queued: each notice is popped once.
        while let Some(notice) = self.state.poll_notice() {
            match &notice {
                Notice::Adjusted(_) => warn!("{notice}"),
                Notice::QuorumScript { script, .. } => {
                    info!("{notice}");
                    let script = script.clone();
                    self.run_script(host, &script, now);
                }
                _ => info!("{notice}"),
            }
        }
    }

    fn run_script(&mut self, host: &mut dyn Host, script: &Script, _now: Instant) {
        let argv = match split_command(&script.command.value) {
            Ok(argv) if !argv.is_empty() => argv,
            Ok(_) => return,
            Err(err) => {
                error!("IPVS: script {:?}: {err}", script.command.value);
                return;
            }
        };
        let names = script
            .run_as
            .as_ref()
            .map(|r| (r.user.clone(), r.group.clone()))
            .or_else(|| self.globals.script_user.clone());
        let run_as = match names {
            Some((user, group)) => match RunAs::from_names(&user, group.as_deref()) {
                Ok(r) => Some(r),
                Err(err) => {
                    error!("IPVS: script {:?}: {err}", script.command.value);
                    return;
                }
            },
            None => None,
        };
        let mut spec = ChildSpec::new(argv, SCRIPT_KEY);
        spec.run_as = run_as;
        spec.timeout = Some(SCRIPT_TIMEOUT);
        match host.spawn(spec) {
            Ok(_) => self.scripts_running += 1,
            Err(err) => error!("IPVS: cannot run {:?}: {err}", script.command.value),
        }
    }

    /// Send the difference between desired and known kernel state.
    fn reconcile(&mut self, host: &mut dyn Host, now: Instant) {
        self.drain_notices(host, now);
        let desired = self.state.desired();
        let ops = diff(&desired, &self.kernel, &self.managed);
        self.apply(host, now, &ops);
    }

    /// Like [`Self::reconcile`], for a change confined to one virtual
    /// server: only its services are computed and compared.
    fn reconcile_vs(&mut self, host: &mut dyn Host, vs: &VsId, now: Instant) {
        self.drain_notices(host, now);
        let (desired, keys) = self.state.desired_of(vs);
        let ops = diff(&desired, &self.kernel, &keys);
        self.apply(host, now, &ops);
    }

    /// Send `ops` in three pipelined phases, keeping the diff's order within
    /// each: services added or changed, then destinations (skipping those of
    /// a service the kernel refused to add), then services removed.
    fn apply(&mut self, host: &mut dyn Host, now: Instant, ops: &[Op]) {
        if ops.is_empty() {
            return;
        }
        if self.backend.is_none() {
            self.schedule_resync(host, now);
            return;
        }
        let services: Vec<&Op> = ops
            .iter()
            .filter(|op| matches!(op, Op::AddService(_) | Op::UpdateService(_)))
            .collect();
        let mut failed = self.send_phase(&services);
        let dests: Vec<&Op> = ops
            .iter()
            .filter(|op| matches!(op, Op::AddDest(..) | Op::UpdateDest(..) | Op::DelDest(..)))
            // Destinations of a service the kernel refused would fail too.
            .filter(|op| !failed.contains(op.service()))
            .collect();
        failed.extend(self.send_phase(&dests));
        let removals: Vec<&Op> = ops
            .iter()
            .filter(|op| matches!(op, Op::DelService(_)))
            .collect();
        failed.extend(self.send_phase(&removals));
        if !failed.is_empty() {
            self.schedule_resync(host, now);
        }
    }

    /// One batch; returns the services whose operations failed.
    fn send_phase(&mut self, ops: &[&Op]) -> BTreeSet<ServiceKey> {
        let mut failed = BTreeSet::new();
        let Some(backend) = self.backend.as_mut() else {
            return failed;
        };
        if ops.is_empty() {
            return failed;
        }
        let requests: Vec<Request<'_>> = ops.iter().map(|op| op.request()).collect();
        let results = backend.execute_batch(&requests);
        for (op, result) in ops.iter().zip(results) {
            let what = op.request().what();
            match result {
                Ok(()) => {
                    debug!("IPVS: {what} {}", describe(op));
                    op.apply_to(&mut self.kernel);
                }
                Err(err) => {
                    error!("IPVS: {what} {}: {err}", describe(op));
                    failed.insert(*op.service());
                }
            }
        }
        failed
    }

    /// True when a timer or child key is this manager's.
    pub fn owns_key(&self, key: u64) -> bool {
        owns_key(key)
    }

    pub fn handle_timer(&mut self, host: &mut dyn Host, key: u64, now: Instant) {
        if key == RESYNC_KEY {
            self.resync_timer = None;
            if !self.stopping {
                self.resync(host, now);
            }
        }
    }

    pub fn handle_child_exit(&mut self, _host: &mut dyn Host, exit: ChildExit<u64>, _now: Instant) {
        if exit.owner != SCRIPT_KEY {
            return;
        }
        self.scripts_running = self.scripts_running.saturating_sub(1);
        if !exit.status.success() {
            warn!(
                "IPVS: quorum script (pid {}) ended: {:?}",
                exit.pid, exit.status
            );
        }
    }

    /// A new configuration: unchanged services and destinations are not
    /// touched; a changed weight is one update.
    pub fn reload(&mut self, host: &mut dyn Host, config: &Config, now: Instant) {
        let globals = Globals::from_config(config);
        self.state.reload(config);
        // Services of the old configuration that left it are removed too.
        let mut managed = self.state.configured_services();
        managed.extend(self.managed.iter().copied());
        self.managed = managed;
        if let Some(backend) = self.backend.as_mut() {
            if globals.timeouts != self.globals.timeouts {
                if let Some(timeouts) = globals.timeouts {
                    if let Err(err) = backend.execute(&Request::SetConfig(&timeouts)) {
                        error!("IPVS: {err}");
                    }
                }
            }
        }
        let sync_changed = globals.sync_daemon != self.globals.sync_daemon
            || globals.sync_vrid != self.globals.sync_vrid;
        self.globals = globals;
        if sync_changed {
            self.stop_sync_daemon();
            if let Some(s) = &self.globals.sync_daemon {
                let role = if s.instance.is_some() {
                    DaemonState::Backup
                } else {
                    DaemonState::Master
                };
                self.start_sync_daemon(role);
            }
        }
        if self.backend.is_none() {
            self.resync(host, now);
        } else {
            self.reconcile(host, now);
        }
        // Old services the kernel refused to delete stay managed, so the
        // next resync retries.
        let kernel = &self.kernel;
        let leftovers: Vec<ServiceKey> = self
            .managed
            .iter()
            .filter(|k| kernel.contains_key(k))
            .copied()
            .collect();
        self.managed = self.state.configured_services();
        self.managed.extend(leftovers);
    }

    fn stop_sync_daemon(&mut self) {
        if let (Some(role), Some(backend)) = (self.sync_running.take(), self.backend.as_mut()) {
            match backend.execute(&Request::DelDaemon(role)) {
                Ok(()) => info!("Stopping IPVS sync daemon"),
                Err(err) => warn!("IPVS: {err}"),
            }
        }
    }

    /// Orderly stop: remove our services (unless `-I`), flush if
    /// `lvs_flush_on_stop`, stop the sync daemon, run `omega` scripts.
    /// Returns true when done; otherwise [`Self::is_shut_down`] turns true
    /// once the scripts have ended.
    pub fn shutdown(&mut self, host: &mut dyn Host, now: Instant) -> bool {
        self.stopping = true;
        if let Some(timer) = self.resync_timer.take() {
            host.cancel_timer(timer);
        }
        for notice in self.state.shutdown_scripts() {
            if let Notice::QuorumScript { script, .. } = &notice {
                info!("{notice}");
                self.run_script(host, script, now);
            }
        }
        if self.options.release_on_stop && self.backend.is_some() {
            for rs in self.state.pool_members() {
                info!("Shutting down service {rs} from VS {}", rs.vs);
            }
            let ops: Vec<Op> = self
                .kernel
                .iter()
                .filter(|(k, _)| self.managed.contains(k))
                .map(|(k, s)| Op::DelService(Service::new(*k, s.params.clone())))
                .collect();
            self.apply(host, now, &ops);
        }
        if self.globals.flush_on_stop {
            if let Some(backend) = self.backend.as_mut() {
                match backend.execute(&Request::Flush) {
                    Ok(()) => self.kernel.clear(),
                    Err(err) => error!("IPVS: {err}"),
                }
            }
        }
        self.stop_sync_daemon();
        self.is_shut_down()
    }

    pub fn is_shut_down(&self) -> bool {
        self.stopping && self.scripts_running == 0
    }

    /// A checker verdict for a whole real server.
    pub fn set_real_server_alive(
        &mut self,
        host: &mut dyn Host,
        rs: &RsId,
        alive: bool,
        now: Instant,
    ) {
        match self.state.set_alive(rs, alive) {
            Update::Changed => self.reconcile_vs(host, &rs.vs, now),
            Update::Unchanged => {}
            Update::Unknown => {
                debug!("IPVS: verdict for unknown real server {rs} of VS {}", rs.vs)
            }
        }
    }

    /// A dynamic weight for a real server (MISC_CHECK misc_dynamic, FILE_CHECK).
    pub fn set_real_server_weight(
        &mut self,
        host: &mut dyn Host,
        rs: &RsId,
        weight: u32,
        now: Instant,
    ) {
        match self.state.set_weight(rs, weight) {
            Update::Changed => self.reconcile_vs(host, &rs.vs, now),
            Update::Unchanged => {}
            Update::Unknown => {
                debug!("IPVS: weight for unknown real server {rs} of VS {}", rs.vs)
            }
        }
    }

    /// This director became (true) or stopped being VRRP master of `addr`
    /// (`ha_suspend` services follow it).
    pub fn set_vip_master(
        &mut self,
        host: &mut dyn Host,
        addr: IpAddr,
        master: bool,
        now: Instant,
    ) {
        self.state.set_vip(addr, master);
        self.reconcile(host, now);
    }

    /// A VRRP instance changed state: the sync daemon of `lvs_sync_daemon
    /// IF INSTANCE` runs as master while that instance is master.
    pub fn set_vrrp_instance_master(&mut self, instance: &str, master: bool) {
        let tied = self
            .globals
            .sync_daemon
            .as_ref()
            .is_some_and(|s| s.instance.as_deref() == Some(instance));
        if !tied || self.stopping {
            return;
        }
        let role = if master {
            DaemonState::Master
        } else {
            DaemonState::Backup
        };
        if self.sync_running != Some(role) {
            self.start_sync_daemon(role);
        }
    }

    /// Whether checkers of this virtual server should pause (ha_suspend and
    /// its address is not here).
    pub fn is_suspended(&self, vs: &VsId) -> bool {
        self.state.is_suspended(vs)
    }

    /// The table as the manager believes the kernel holds it.
    pub fn kernel_table(&self) -> &Table {
        &self.kernel
    }

    /// The live state (for status dumps and tests).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Text for the SIGUSR1 data dump.
    pub fn dump(&self) -> String {
        let mut out = String::from("------< IPVS Topology >------\n");
        for (key, service) in &self.kernel {
            let _ = writeln!(
                out,
                " VS {key} {} flags {:#x} timeout {} netmask {:#x}",
                service.params.scheduler,
                service.params.flags,
                service.params.timeout,
                service.params.netmask
            );
            for (dest, params) in &service.dests {
                let _ = writeln!(
                    out,
                    "   -> {dest} {:?} weight {}",
                    params.forward, params.weight
                );
            }
        }
        out
    }
}

/// The daemon's IPVS subsystem. It registers no I/O sources: kernel
/// requests are answered at once on a blocking socket.
impl Subsystem for Manager {
    fn tag(&self) -> Tag {
        Tag::Ipvs
    }
    fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        Manager::start(self, cx, now);
    }
    fn owns(&self, _token: mio::Token) -> bool {
        false
    }
    fn handle_io(
        &mut self,
        _cx: &mut Context<'_>,
        _token: mio::Token,
        _event: &mio::event::Event,
        _now: Instant,
    ) {
    }
    fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, now: Instant) {
        Manager::handle_timer(self, cx, key, now);
    }
    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant) {
        Manager::handle_child_exit(self, cx, exit, now);
    }
    fn reload(&mut self, cx: &mut Context<'_>, config: &Config, now: Instant) {
        Manager::reload(self, cx, config, now);
    }
    fn dump_state(&self, out: &mut String) {
        out.push_str(&self.dump());
    }
    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        Manager::shutdown(self, cx, now)
    }
    fn shutdown_done(&self) -> bool {
        self.is_shut_down()
    }
}

fn describe(op: &Op) -> String {
    match op {
        Op::AddService(s) | Op::UpdateService(s) | Op::DelService(s) => s.key.to_string(),
        Op::AddDest(s, d) | Op::UpdateDest(s, d) => {
            format!("{} weight {} in {}", d.key, d.params.weight, s.key)
        }
        Op::DelDest(s, d) => format!("{} in {}", d.key, s.key),
    }
}

/// Addresses configured on this host now (ha_suspend's starting point).
pub fn local_addresses() -> BTreeSet<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return BTreeSet::new();
    };
    addrs
        .filter_map(|ifa| {
            let addr = ifa.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}
