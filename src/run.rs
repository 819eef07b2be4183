//! The daemon run: logging, configuration, daemonizing, pid file, then the
//! event loop with the configuration service. Subsystems (VRRP, IPVS,
//! checkers) hook into `KeepalivedService` as they land.

use crate::app::{load_options, EXIT_CONFIG, EXIT_OK};
use crate::check;
use crate::cli::{self, Options};
use crate::config::{self, dump::dump, Config, Severity};
use crate::daemon::{
    daemonize, init_logging, parse_facility, ChildExit, Context, DumpKind, EventLoop, LogTarget,
    PidFile, Service, Subsystem, Tag,
};
use crate::service::vrrp::{VrrpEvent, VrrpService};
use log::{error, info, warn};
use mio::event::Event;
use mio::Token;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where state dumps go (keepalived's defaults; /tmp is writable on a
/// read-only root).
const DATA_DUMP_FILE: &str = "/tmp/keepalived.data";
const STATS_DUMP_FILE: &str = "/tmp/keepalived.stats";

fn default_pid_file() -> PathBuf {
    if Path::new("/run").is_dir() {
        PathBuf::from("/run/keepalived.pid")
    } else {
        PathBuf::from("/var/run/keepalived.pid")
    }
}

fn log_target(options: &Options) -> Result<LogTarget, String> {
    let facility = match &options.log_facility {
        Some(f) => parse_facility(f).map_err(|e| format!("-S {f}: {e}"))?,
        None => syslog::Facility::LOG_DAEMON,
    };
    Ok(match (options.log_console, options.no_syslog) {
        (true, true) => LogTarget::Console,
        (true, false) => LogTarget::Both { facility },
        // -G without -l: keepalived logs nowhere; stderr is the honest fallback.
        (false, true) => LogTarget::Console,
        (false, false) => LogTarget::Syslog { facility },
    })
}

/// Logs every diagnostic, and a `script_user` this host cannot resolve;
/// true when the configuration can run.
fn log_diagnostics(loaded: &config::Loaded) -> bool {
    for d in &loaded.diagnostics.items {
        match d.severity {
            Severity::Error => error!("{d}"),
            Severity::Warning => warn!("{d}"),
        }
    }
    if let Some(user) = &loaded.config.global.script_user {
        let u = &user.value;
        if let Err(e) = crate::daemon::RunAs::from_names(&u.user, u.group.as_deref()) {
            warn!(
                "{}: script_user: {e}; scripts will fail to start",
                user.span
            );
        }
    }
    !loaded.has_errors()
}

pub fn run_daemon(options: &Options, path: &Path) -> i32 {
    let target = match log_target(options) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("keepalived: {e}");
            return EXIT_CONFIG;
        }
    };
    if let Err(e) = init_logging(target, options.log_detail) {
        eprintln!("keepalived: cannot start logging: {e}");
        return EXIT_CONFIG;
    }
    info!("Starting {}", cli::version_line());
    info!("Configuration file {}", path.display());
    let loaded = match config::load_file(path, &load_options(options)) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return EXIT_CONFIG;
        }
    };
    if !log_diagnostics(&loaded) {
        error!(
            "Configuration has errors; not starting (check it with 'keepalived -t -f {}')",
            path.display()
        );
        return EXIT_CONFIG;
    }
    if !options.dont_fork {
        if let Err(e) = daemonize() {
            error!("cannot daemonize: {e}");
            return EXIT_CONFIG;
        }
    }
    let pid_path = options.pid_file.clone().unwrap_or_else(default_pid_file);
    let pid_file = match PidFile::create(&pid_path, "keepalived") {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return EXIT_CONFIG;
        }
    };
    let mut event_loop = match EventLoop::new() {
        Ok(l) => l,
        Err(e) => {
            error!("cannot start the event loop: {e}");
            return EXIT_CONFIG;
        }
    };
    let checkers = if loaded.config.virtual_servers.is_empty() {
        None
    } else {
        match check::Engine::new(&loaded.config) {
            Ok(engine) => Some(engine),
            Err(e) => {
                error!("{e}; not starting");
                return EXIT_CONFIG;
            }
        }
    };
    let mut service = KeepalivedService {
        path: path.to_path_buf(),
        options: options.clone(),
        ipvs: ipvs_manager(&loaded.config, options),
        shutting_down: false,
        vrrp: VrrpService::new(&loaded.config),
        checkers,
        config: loaded.config,
    };
    let result = event_loop.run(&mut service);
    if let Err(e) = pid_file.remove() {
        warn!("{e}");
    }
    match result {
        Ok(()) => {
            info!("Stopped {}", cli::version_line());
            EXIT_OK
        }
        Err(e) => {
            error!("event loop failed: {e}");
            EXIT_CONFIG
        }
    }
}

/// The daemon's service. Today it owns the configuration and its reload;
/// VRRP, IPVS and the checkers plug in here.
pub struct KeepalivedService {
    path: PathBuf,
    options: Options,
    config: Config,
    ipvs: Option<crate::ipvs::Manager>,
    shutting_down: bool,
    vrrp: Option<VrrpService>,
    checkers: Option<check::Engine>,
}

/// The IPVS subsystem, when the configuration has anything for it to do.
fn ipvs_manager(config: &Config, options: &Options) -> Option<crate::ipvs::Manager> {
    let options = crate::ipvs::ManagerOptions {
        release_on_stop: !options.dont_release_ipvs,
    };
    crate::ipvs::Manager::is_needed(config).then(|| crate::ipvs::Manager::new(config, options))
}

impl KeepalivedService {
    fn log_config(&self) {
        let c = &self.config;
        for i in &c.instances {
            let vips: Vec<String> = i
                .virtual_ipaddress
                .iter()
                .map(|a| format!("{}/{}", a.addr.value, a.prefix_len))
                .collect();
            info!(
                "({}) VRRP instance: state {}, interface {}, vrid {}, priority {}, advert_int {:?}, version {}, VIPs [{}]",
                i.name.value,
                match i.state.value {
                    config::model::InitialState::Master => "MASTER",
                    config::model::InitialState::Backup => "BACKUP",
                },
                i.interface.as_ref().map_or("-", |s| s.value.as_str()),
                i.virtual_router_id.value,
                i.priority.value,
                i.advert_int.value,
                i.version.value,
                vips.join(", ")
            );
        }
        for g in &c.sync_groups {
            let members: Vec<&str> = g.members.iter().map(|m| m.value.as_str()).collect();
            info!("Sync group {}: {}", g.name.value, members.join(", "));
        }
        for vs in &c.virtual_servers {
            info!(
                "{}: protocol {}, lb_algo {}, lb_kind {}, {} real server(s)",
                vs.key.label(),
                vs.protocol.value.name(),
                vs.lb_algo.value.name(),
                vs.lb_kind.value.name(),
                vs.real_servers.len()
            );
        }
        info!(
            "Configuration loaded: {} VRRP instance(s), {} virtual server(s)",
            c.instances.len(),
            c.virtual_servers.len()
        );
    }
}

impl KeepalivedService {
    /// The running subsystems, in service order: VRRP first so its adverts
    /// never wait behind checker or IPVS work.
    /// Runs on every event, so it builds no collection.
    fn subsystems(&mut self) -> impl Iterator<Item = &mut dyn Subsystem> {
        let vrrp = self.vrrp.as_mut().map(|s| s as &mut dyn Subsystem);
        let checkers = self.checkers.as_mut().map(|s| s as &mut dyn Subsystem);
        let ipvs = self.ipvs.as_mut().map(|s| s as &mut dyn Subsystem);
        [vrrp, checkers, ipvs].into_iter().flatten()
    }

    /// Carry events between subsystems (checker verdicts and VRRP state to
    /// IPVS) after any of them ran.
    fn pump(&mut self, cx: &mut Context<'_>, now: Instant) {
        // VRRP state to IPVS: ha_suspend services follow the VIPs held here,
        // and lvs_sync_daemon follows its instance. Drained even without
        // IPVS, so the queue cannot grow.
        if let Some(vrrp) = self.vrrp.as_mut() {
            while let Some(event) = vrrp.poll_event() {
                let Some(ipvs) = self.ipvs.as_mut() else {
                    continue;
                };
                match event {
                    VrrpEvent::Master { instance, master } => {
                        ipvs.set_vrrp_instance_master(&instance, master)
                    }
                    VrrpEvent::Vip { addr, present } => ipvs.set_vip_master(cx, addr, present, now),
                }
            }
        }
        // Checker verdicts to IPVS (which logs the pool changes).
        let Some(checkers) = self.checkers.as_mut() else {
            return;
        };
        while let Some(event) = checkers.poll_event() {
            let Some(ipvs) = self.ipvs.as_mut() else {
                continue;
            };
            match event.change {
                check::ServerChange::Up { weight } => {
                    ipvs.set_real_server_weight(cx, &event.rs, weight, now);
                    ipvs.set_real_server_alive(cx, &event.rs, true, now);
                }
                check::ServerChange::Down => ipvs.set_real_server_alive(cx, &event.rs, false, now),
                check::ServerChange::Weight { weight } => {
                    ipvs.set_real_server_weight(cx, &event.rs, weight, now)
                }
            }
        }
    }

    /// During shutdown: tell the loop once every subsystem is done.
    fn check_shutdown_done(&mut self, cx: &mut Context<'_>) {
        if self.shutting_down && self.subsystems().all(|s| s.shutdown_done()) {
            cx.shutdown_complete();
        }
    }
}

impl Service for KeepalivedService {
    fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        self.log_config();
        for subsystem in self.subsystems() {
            subsystem.start(cx, now);
        }
        self.pump(cx, now);
    }

    fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, event: &Event, now: Instant) {
        if let Some(subsystem) = self.subsystems().find(|s| s.owns(token)) {
            subsystem.handle_io(cx, token, event, now);
        }
        self.pump(cx, now);
        self.check_shutdown_done(cx);
    }

    fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, now: Instant) {
        let tag = Tag::of(key);
        if let Some(subsystem) = self.subsystems().find(|s| Some(s.tag()) == tag) {
            subsystem.handle_timer(cx, key, now);
        }
        self.pump(cx, now);
        self.check_shutdown_done(cx);
    }

    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant) {
        let tag = Tag::of(exit.owner);
        if let Some(subsystem) = self.subsystems().find(|s| Some(s.tag()) == tag) {
            subsystem.handle_child_exit(cx, exit, now);
        }
        self.pump(cx, now);
        self.check_shutdown_done(cx);
    }

    fn reload(&mut self, cx: &mut Context<'_>, now: Instant) {
        info!("Reloading configuration file {}", self.path.display());
        match config::load_file(&self.path, &load_options(&self.options)) {
            Err(e) => error!("{e}; keeping the running configuration"),
            Ok(loaded) => {
                if !log_diagnostics(&loaded) {
                    error!("Reload failed: the new configuration has errors; keeping the running configuration");
                    return;
                }
                if loaded.config == self.config {
                    info!("Configuration unchanged");
                }
                self.config = loaded.config;
                self.log_config();
                let config = self.config.clone();
                for subsystem in self.subsystems() {
                    subsystem.reload(cx, &config, now);
                }
                // Subsystems the old configuration did not need start now.
                if self.ipvs.is_none() {
                    self.ipvs = ipvs_manager(&config, &self.options);
                    if let Some(ipvs) = self.ipvs.as_mut() {
                        Subsystem::start(ipvs, cx, now);
                    }
                }
                if self.vrrp.is_none() {
                    self.vrrp = VrrpService::new(&config);
                    if let Some(vrrp) = self.vrrp.as_mut() {
                        Subsystem::start(vrrp, cx, now);
                    }
                }
                if self.checkers.is_none() && !config.virtual_servers.is_empty() {
                    match check::Engine::new(&config) {
                        Ok(mut engine) => {
                            Subsystem::start(&mut engine, cx, now);
                            self.checkers = Some(engine);
                        }
                        Err(e) => error!("{e}; health checkers not started"),
                    }
                }
                self.pump(cx, now);
                info!("Reload finished");
            }
        }
    }

    fn dump(&mut self, _cx: &mut Context<'_>, which: DumpKind, _now: Instant) {
        let (file, text) = match which {
            DumpKind::Data => {
                let mut text = dump(&self.config);
                for subsystem in self.subsystems() {
                    subsystem.dump_state(&mut text);
                }
                (DATA_DUMP_FILE, text)
            }
            DumpKind::Stats => (
                STATS_DUMP_FILE,
                format!(
                    "VRRP instances: {}\nVirtual servers: {}\n",
                    self.config.instances.len(),
                    self.config.virtual_servers.len()
                ),
            ),
        };
        match std::fs::write(file, text) {
            Ok(()) => info!("Wrote {file}"),
            Err(e) => error!("cannot write {file}: {e}"),
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        info!("Stopping");
        self.shutting_down = true;
        let mut done = true;
        for subsystem in self.subsystems() {
            done &= subsystem.shutdown(cx, now);
        }
        self.pump(cx, now);
        done
    }
}
