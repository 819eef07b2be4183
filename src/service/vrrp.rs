//! The VRRP subsystem: the I/O shell around [`Router`].
//!
//! It owns the raw VRRP sockets (one per interface and family), the
//! rtnetlink sockets (VIPs, routes, VMACs, link events), the gratuitous
//! ARP / NA senders and the script children, feeds the router packets, link
//! changes, script results and the time, and performs the router's actions.
//! Everything here is non-blocking except rtnetlink requests, which the
//! kernel answers at once.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::event::Event;
use mio::Token;

use crate::config::model::{AuthType as ConfAuthType, Notify, Script, VrrpInstance};
use crate::config::Config;
use crate::daemon::{ChildExit, Context, Priority, Subsystem, Tag, TimerId};
use crate::net::{nd, select_source, AhParams, FrameSender, VrrpSocket, VrrpSocketConfig};
use crate::netlink::nft::NftVips;
use crate::netlink::rtnl::{
    self, AddressSpec, LinkInfo, RouteSpec, Rtnl, RtnlEvent, RtnlEvents, VmacSpec,
};
use crate::service::script::child_spec;
use crate::vrrp::auth::{check_auth, pass_key, verify_ah, IcvTtl};
use crate::vrrp::packet::{Family, IPPROTO_AH, IPPROTO_VRRP};
use crate::vrrp::{
    Action, Auth, NotifyEvent, Reason, Received, Router, RouterAction, State, TtlRule, VrrpVersion,
};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::{AsFd, AsRawFd};

/// Datagrams read from one socket per readiness event, so one busy socket
/// cannot hold the loop (bad-packet floods are bounded here).
const MAX_RECV_PER_EVENT: usize = 256;
/// At most one drop summary per instance in this interval.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How often track_file files are read.
const TRACK_FILE_POLL: Duration = Duration::from_secs(1);

const TIMER_MAIN: u64 = 0;
const CHILD_SCRIPT: u64 = 1 << 40;
const CHILD_NOTIFY: u64 = 2 << 40;
/// Child keys of vrrp_scripts: the reload generation in bits 24..40, the
/// script's index below.
const SCRIPT_INDEX_BITS: u32 = 24;
const SCRIPT_GENERATION_MASK: u64 = 0xffff;

fn script_key(generation: u64, script: usize) -> u64 {
    let index = script as u64 & ((1 << SCRIPT_INDEX_BITS) - 1);
    CHILD_SCRIPT | (generation & SCRIPT_GENERATION_MASK) << SCRIPT_INDEX_BITS | index
}

/// The script a child key names, if it was started under `generation`:
/// a script started before a reload may have another index now (or none).
fn script_of_key(inner: u64, generation: u64) -> Option<usize> {
    if inner & CHILD_SCRIPT == 0
        || (inner >> SCRIPT_INDEX_BITS) & SCRIPT_GENERATION_MASK
            != generation & SCRIPT_GENERATION_MASK
    {
        return None;
    }
    usize::try_from(inner & ((1 << SCRIPT_INDEX_BITS) - 1)).ok()
}

/// The socket adverts of one instance go through.
struct SocketEntry {
    ifindex: u32,
    ipv6: bool,
    protocol: u8,
    socket: VrrpSocket,
    token: Token,
    /// (VRID -> instance index) of the instances using this socket.
    vrids: HashMap<u8, usize>,
}

/// Pending gratuitous ARP / NA packets of an instance.
struct GarpJob {
    instance: usize,
    at: Instant,
    /// Packets per VIP still to send in this burst.
    remaining: u32,
    /// Send one round every `spacing` (zero: the whole burst at once).
    spacing: Duration,
    /// A garp_master_refresh burst: schedules the next one when done.
    refresh: bool,
}

struct InstanceIo {
    name: String,
    ifname: String,
    ifindex: Option<u32>,
    ipv6: bool,
    socket: Option<usize>,
    /// Interface the VIPs live on and adverts / GARPs leave from (the VMAC
    /// when use_vmac is set).
    send_ifindex: Option<u32>,
    send_mac: Option<[u8; 6]>,
    vmac: Option<VmacSpec>,
    src: Option<IpAddr>,
    fixed_src: Option<IpAddr>,
    destinations: Vec<IpAddr>,
    unicast: bool,
    auth: Auth,
    ah_key: Option<Vec<u8>>,
    ah_seq: u32,
    vips: Vec<AddressSpec>,
    routes: Vec<RouteSpec>,
    installed: bool,
    garp_delay: Duration,
    garp_repeat: u32,
    garp_refresh: Duration,
    garp_refresh_repeat: u32,
    garp_spacing: Duration,
    notify: Notify,
    last_priority: u8,
    drops: HashMap<&'static str, u64>,
    drops_since_log: u64,
    last_drop_log: Option<Instant>,
    last_mismatch_log: Option<Instant>,
}

/// What the VRRP side tells the IPVS side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VrrpEvent {
    /// An instance entered (`master`) or left MASTER: `lvs_sync_daemon`
    /// follows its instance.
    Master { instance: String, master: bool },
    /// A virtual address was added to (`present`) or removed from an
    /// interface here: `ha_suspend` virtual servers follow their address.
    /// Raised where addresses change, so a reload that adds or drops VIPs
    /// of a Master that stays Master is heard too.
    Vip { addr: IpAddr, present: bool },
}

pub struct VrrpService {
    config: Config,
    router: Router,
    instances: Vec<InstanceIo>,
    sockets: Vec<SocketEntry>,
    rtnl: Option<Rtnl>,
    events: Option<(RtnlEvents, Token)>,
    frames: Option<FrameSender>,
    garp_jobs: Vec<GarpJob>,
    timer: Option<(Instant, TimerId)>,
    next_file_poll: Option<Instant>,
    next_notify: u64,
    stopped: bool,
    /// Events for the IPVS side, oldest first.
    outbox: VecDeque<VrrpEvent>,
    /// Counts reloads: children started before one are not matched to the
    /// configuration that replaced theirs.
    generation: u64,
    /// The nftables table that drops traffic to `no_accept` Masters' VIPs.
    nft: Option<NftVips>,
    /// inotify on the directories of the `track_file`s (as keepalived);
    /// without it the files are polled every second.
    file_watch: Option<(Inotify, Token)>,
}

fn family_name(ipv6: bool) -> &'static str {
    if ipv6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

impl VrrpService {
    /// Build the subsystem; `None` when the configuration has no VRRP instance.
    pub fn new(config: &Config) -> Option<VrrpService> {
        if config.instances.is_empty() {
            return None;
        }
        Some(VrrpService::build(config))
    }

    fn build(config: &Config) -> VrrpService {
        let g = &config.global;
        let instances = config
            .instances
            .iter()
            .map(|m| {
                let ipv6 = m.is_ipv6();
                let version = if m.version.value == 3 {
                    VrrpVersion::V3
                } else {
                    VrrpVersion::V2
                };
                let (auth, ah_key) = match (&m.authentication, version) {
                    (Some(a), VrrpVersion::V2) => match a.auth_type.value {
                        ConfAuthType::Pass => {
                            (Auth::Pass(pass_key(a.auth_pass.value.as_bytes())), None)
                        }
                        ConfAuthType::Ah => (Auth::Ah, Some(a.auth_pass.value.as_bytes().to_vec())),
                    },
                    _ => (Auth::None, None),
                };
                let unicast = !m.unicast_peer.is_empty();
                let destinations = if unicast {
                    m.unicast_peer.iter().map(|p| p.addr.value).collect()
                } else if let Some(dst) = &m.mcast_dst_ip {
                    vec![dst.value]
                } else if ipv6 {
                    vec![IpAddr::V6(g.vrrp_mcast_group6.value)]
                } else {
                    vec![IpAddr::V4(g.vrrp_mcast_group4.value)]
                };
                let fixed_src = m
                    .unicast_src_ip
                    .as_ref()
                    .filter(|_| unicast)
                    .or(m.mcast_src_ip.as_ref())
                    .map(|s| s.value);
                let spacing = if ipv6 {
                    g.vrrp_gna_interval.value
                } else {
                    g.vrrp_garp_interval.value
                };
                InstanceIo {
                    name: m.name.value.clone(),
                    ifname: m
                        .interface
                        .as_ref()
                        .map(|i| i.value.clone())
                        .unwrap_or_default(),
                    ifindex: None,
                    ipv6,
                    socket: None,
                    send_ifindex: None,
                    send_mac: None,
                    vmac: None,
                    src: fixed_src,
                    fixed_src,
                    destinations,
                    unicast,
                    auth,
                    ah_key,
                    ah_seq: initial_ah_sequence(),
                    vips: Vec::new(),
                    routes: Vec::new(),
                    installed: false,
                    garp_delay: m.garp_master_delay.value,
                    garp_repeat: m.garp_master_repeat.value.max(1),
                    garp_refresh: m.garp_master_refresh.value,
                    garp_refresh_repeat: m.garp_master_refresh_repeat.value.max(1),
                    garp_spacing: spacing,
                    notify: m.notify.clone(),
                    last_priority: 0,
                    drops: HashMap::new(),
                    drops_since_log: 0,
                    last_drop_log: None,
                    last_mismatch_log: None,
                }
            })
            .collect();
        // Source addresses are not known before the interfaces are read; the
        // router only compares them on priority ties, so `start` fills them
        // in before the first election.
        let router = Router::new(config, |_| IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        VrrpService {
            config: config.clone(),
            router,
            instances,
            sockets: Vec::new(),
            rtnl: None,
            events: None,
            frames: None,
            garp_jobs: Vec::new(),
            timer: None,
            next_file_poll: None,
            next_notify: 0,
            stopped: false,
            outbox: VecDeque::new(),
            generation: 0,
            nft: None,
            file_watch: None,
        }
    }

    /// The next event for the IPVS side since the last call, oldest first.
    pub fn poll_event(&mut self) -> Option<VrrpEvent> {
        self.outbox.pop_front()
    }

    /// Open what the instances need and start them. A fresh start first
    /// removes VIPs a killed predecessor left; a reload (`previous`: the
    /// state each instance continues from) keeps the I/O handles it was
    /// given and the addresses in place.
    fn bring_up(&mut self, cx: &mut Context<'_>, now: Instant, previous: Option<&[Option<State>]>) {
        if self.rtnl.is_none() {
            match Rtnl::open() {
                Ok(rtnl) => self.rtnl = Some(rtnl),
                Err(e) => error!("cannot open rtnetlink: {e}; VRRP cannot manage addresses"),
            }
        }
        let links = match self.rtnl.as_mut().map(Rtnl::links) {
            Some(Ok(links)) => links,
            Some(Err(e)) => {
                error!("cannot read links: {e}");
                Vec::new()
            }
            None => Vec::new(),
        };
        self.resolve_interfaces(&links);
        if previous.is_none() {
            self.remove_stale_vips();
        }
        self.sync_firewall();
        for (index, io) in self.instances.iter().enumerate() {
            if let Some(src) = io.src {
                self.router.set_primary_address(index, src);
            }
        }
        if self.events.is_none() {
            match RtnlEvents::open() {
                Ok(mut events) => {
                    events.seed_links(&links);
                    match cx.register_with_priority(
                        &mut events,
                        mio::Interest::READABLE,
                        Priority::High,
                    ) {
                        Ok(token) => self.events = Some((events, token)),
                        Err(e) => error!("cannot watch link changes: {e}"),
                    }
                }
                Err(e) => error!("cannot watch link changes: {e}"),
            }
        }
        let by_name: HashMap<&str, bool> =
            links.iter().map(|l| (l.name.as_str(), l.is_up())).collect();
        for name in self.router.tracked_interfaces() {
            let up = by_name.get(name.as_str()).copied().unwrap_or(false);
            self.router.handle_link(now, &name, up);
        }
        self.open_sockets(cx);
        if self.frames.is_none() {
            match FrameSender::open() {
                Ok(frames) => self.frames = Some(frames),
                Err(e) => error!("cannot open the gratuitous ARP socket: {e}"),
            }
        }
        if !self.config.track_files.is_empty() {
            self.watch_track_files(cx);
            self.read_track_files(now);
            if self.file_watch.is_none() {
                self.next_file_poll = now.checked_add(TRACK_FILE_POLL);
            }
        }
        match previous {
            None => self.router.handle_startup(now),
            Some(previous) => self.router.handle_startup_resuming(now, previous),
        }
        self.process(cx, now);
    }

    /// SIGHUP with a changed VRRP configuration, the way keepalived reloads:
    /// an instance that keeps its name, interface, family and VRID keeps its
    /// state (a Master stays Master, its VIPs stay up); addresses and routes
    /// it no longer has are removed; instances that are gone send priority 0
    /// (if Master) and release everything; new instances start as at startup.
    fn apply_reload(&mut self, cx: &mut Context<'_>, config: &Config, now: Instant) {
        let mut next = VrrpService::build(config);
        let carried: Vec<Option<usize>> = next
            .instances
            .iter()
            .zip(&next.config.instances)
            .map(|(new, model)| {
                self.instances
                    .iter()
                    .zip(&self.config.instances)
                    .position(|(old, old_model)| {
                        old.name == new.name
                            && old.ifname == new.ifname
                            && old.ipv6 == new.ipv6
                            && old_model.virtual_router_id.value == model.virtual_router_id.value
                    })
            })
            .collect();
        let previous: Vec<Option<State>> = carried
            .iter()
            .map(|old| old.map(|i| self.router.instance(i).state()))
            .collect();
        for index in 0..self.instances.len() {
            if !carried.contains(&Some(index)) {
                self.retire(cx, now, index, &next.config);
            }
        }
        for (io, state) in next.instances.iter().zip(&previous) {
            if let Some(state) = state {
                info!(
                    "({}) stays in {} STATE across the reload",
                    io.name,
                    state.keepalived_name()
                );
            }
        }
        // Sockets carry over: an instance finds its interface's socket again
        // (no window without one); those left without a VRID close below.
        next.sockets = std::mem::take(&mut self.sockets);
        for socket in &mut next.sockets {
            socket.vrids.clear();
        }
        if let Some((inotify, token)) = self.file_watch.take() {
            let raw = inotify.as_fd().as_raw_fd();
            if let Err(e) = cx.deregister(&mut mio::unix::SourceFd(&raw), token) {
                warn!("cannot deregister the track_file watch: {e}");
            }
        }
        if let Some((_, id)) = self.timer.take() {
            cx.cancel_timer(id);
        }
        next.rtnl = self.rtnl.take();
        next.events = self.events.take();
        next.frames = self.frames.take();
        next.nft = self.nft.take();
        next.next_notify = self.next_notify;
        next.outbox = std::mem::take(&mut self.outbox);
        next.generation = self.generation.wrapping_add(1);
        next.bring_up(cx, now, Some(&previous));
        next.close_unused_sockets(cx);
        for (index, old) in carried.iter().enumerate() {
            if let Some(old) = *old {
                let old_filtered = !accepts_vip_traffic(&self.config.instances[old]);
                next.release_dropped(index, &self.instances[old], old_filtered);
            }
        }
        *self = next;
    }

    /// Reload: instance `index` is not in the new configuration. It stops
    /// as at SIGTERM (priority 0 if Master, VIPs released, Stop notify),
    /// and its VMAC goes unless a new instance uses it.
    fn retire(&mut self, cx: &mut Context<'_>, now: Instant, index: usize, new_config: &Config) {
        let name = self.instances[index].name.clone();
        info!("({name}) removed from the configuration; stopping it");
        self.router.shutdown_instance(now, index);
        self.process(cx, now);
        // Addresses a failed shutdown left behind (e.g. a Fault that still
        // held them) go too; a no-op once released.
        self.set_vips(index, false);
        let io = &self.instances[index];
        let (Some(vmac), Some(ifindex), Some(rtnl)) =
            (&io.vmac, io.send_ifindex, self.rtnl.as_mut())
        else {
            return;
        };
        let still_used = new_config.instances.iter().any(|m| {
            m.use_vmac.as_ref().is_some_and(|v| {
                v.value
                    .name
                    .clone()
                    .unwrap_or_else(|| rtnl::vmac_default_name(m.virtual_router_id.value))
                    == vmac.name
            })
        });
        if !still_used {
            if let Err(e) = rtnl.delete_link(ifindex) {
                warn!("({name}) cannot remove VMAC {}: {e}", vmac.name);
            }
        }
    }

    /// Reload: instance `index` continues `old` (whose traffic was dropped
    /// by nftables when `old_filtered`); remove the addresses and routes
    /// `old` installed that the new configuration does not have, and stop
    /// filtering the kept ones when the instance now accepts traffic.
    fn release_dropped(&mut self, index: usize, old: &InstanceIo, old_filtered: bool) {
        if !old.installed {
            return;
        }
        let now_accepts = accepts_vip_traffic(&self.config.instances[index]);
        let Some(rtnl) = self.rtnl.as_mut() else {
            return;
        };
        let io = &self.instances[index];
        let mut released = Vec::new();
        for vip in old.vips.iter().filter(|v| !io.vips.contains(v)) {
            match rtnl.del_address(vip) {
                Ok(_) => {
                    info!("({}) reload: removed VIP {}", io.name, vip.addr);
                    released.push(vip.addr);
                }
                Err(e) => warn!("({}) cannot remove VIP {}: {e}", io.name, vip.addr),
            }
        }
        for route in old.routes.iter().filter(|r| !io.routes.contains(r)) {
            if let Err(e) = rtnl.del_route(route) {
                warn!("({}) cannot remove route: {e}", io.name);
            }
        }
        let mut unfilter = released.clone();
        if old_filtered && now_accepts {
            unfilter.extend(old.vips.iter().map(|v| v.addr));
        }
        if let (false, Some(nft)) = (unfilter.is_empty(), self.nft.as_mut()) {
            // Absent elements are fine: the old instance may have accepted.
            if let Err(e) = nft.remove(&unfilter) {
                warn!("({}) no_accept: cannot unfilter the VIPs: {e}", io.name);
            }
        }
        self.outbox
            .extend(released.into_iter().map(|addr| VrrpEvent::Vip {
                addr,
                present: false,
            }));
    }

    /// Resolve interfaces, VMACs, source addresses and VIP specs. Instances
    /// whose interface is missing stay without a socket (and in FAULT).
    fn resolve_interfaces(&mut self, links: &[LinkInfo]) {
        let Some(rtnl) = self.rtnl.as_mut() else {
            return;
        };
        let addresses = rtnl.addresses(None).unwrap_or_else(|e| {
            error!("cannot read interface addresses: {e}");
            Vec::new()
        });
        let by_name: HashMap<&str, &LinkInfo> =
            links.iter().map(|l| (l.name.as_str(), l)).collect();
        for (io, model) in self.instances.iter_mut().zip(&self.config.instances) {
            let Some(link) = by_name.get(io.ifname.as_str()) else {
                error!(
                    "({}) interface {} not found; instance stays in FAULT",
                    io.name, io.ifname
                );
                continue;
            };
            io.ifindex = Some(link.ifindex);
            io.send_ifindex = Some(link.ifindex);
            io.send_mac = link.mac;
            let family = if io.ipv6 { Family::V6 } else { Family::V4 };
            let vip_addrs: Vec<IpAddr> = model
                .virtual_ipaddress
                .iter()
                .map(|v| v.addr.value)
                .collect();
            let on_link: Vec<_> = addresses
                .iter()
                .filter(|a| a.ifindex == link.ifindex)
                .cloned()
                .collect();
            io.src = select_source(io.fixed_src, family, &on_link, &vip_addrs);
            if io.src.is_none() {
                warn!(
                    "({}) no {} address on {}; adverts cannot be sent",
                    io.name,
                    family_name(io.ipv6),
                    io.ifname
                );
            }
            if let Some(vmac) = &model.use_vmac {
                let spec =
                    VmacSpec {
                        name: vmac.value.name.clone().unwrap_or_else(|| {
                            rtnl::vmac_default_name(model.virtual_router_id.value)
                        }),
                        parent_ifindex: link.ifindex,
                        mac: vmac
                            .value
                            .mac
                            .unwrap_or(rtnl::vmac_address(io.ipv6, model.virtual_router_id.value)),
                    };
                match rtnl.create_vmac(&spec) {
                    Ok(vlink) => {
                        info!("({}) created VMAC interface {}", io.name, spec.name);
                        io.send_ifindex = Some(vlink.ifindex);
                        io.send_mac = Some(spec.mac);
                        io.vmac = Some(spec);
                    }
                    Err(e) => error!("({}) cannot create VMAC {}: {e}", io.name, spec.name),
                }
            }
            let vip_ifindex = |dev: Option<&str>| -> Option<u32> {
                match dev {
                    Some(dev) => by_name.get(dev).map(|l| l.ifindex),
                    None => io.send_ifindex,
                }
            };
            io.vips = model
                .virtual_ipaddress
                .iter()
                .chain(&model.virtual_ipaddress_excluded)
                .filter_map(|va| {
                    let dev = va.dev.as_ref().map(|d| d.value.as_str());
                    match vip_ifindex(dev) {
                        Some(ifindex) => Some(AddressSpec::from_virtual_address(va, ifindex)),
                        None => {
                            error!(
                                "({}) VIP {}: interface {} not found",
                                io.name,
                                va.addr.value,
                                dev.unwrap_or(&io.ifname)
                            );
                            None
                        }
                    }
                })
                .collect();
            io.routes = model
                .virtual_routes
                .iter()
                .map(|vr| RouteSpec::from_virtual_route(vr, vip_ifindex(vr.dev.as_deref())))
                .collect();
        }
    }

    /// keepalived removes VIPs a killed predecessor left behind before it
    /// elects, so a Backup never answers for an address it does not own.
    fn remove_stale_vips(&mut self) {
        let Some(rtnl) = self.rtnl.as_mut() else {
            return;
        };
        let present = match rtnl.addresses(None) {
            Ok(a) => a,
            Err(e) => {
                error!("cannot read addresses for stale VIP cleanup: {e}");
                return;
            }
        };
        for io in &self.instances {
            for vip in &io.vips {
                if present
                    .iter()
                    .any(|a| a.ifindex == vip.ifindex && a.addr == vip.addr)
                {
                    match rtnl.del_address(vip) {
                        Ok(_) => info!(
                            "({}) removed stale VIP {} left by a previous run",
                            io.name, vip.addr
                        ),
                        Err(e) => warn!("({}) cannot remove stale VIP {}: {e}", io.name, vip.addr),
                    }
                }
            }
        }
    }

    fn open_sockets(&mut self, cx: &mut Context<'_>) {
        for index in 0..self.instances.len() {
            let io = &self.instances[index];
            let Some(ifindex) = io.send_ifindex else {
                continue;
            };
            let protocol = if io.ah_key.is_some() {
                IPPROTO_AH
            } else {
                IPPROTO_VRRP
            };
            let group = (!io.unicast)
                .then(|| io.destinations.first().copied())
                .flatten();
            let existing = self
                .sockets
                .iter()
                .position(|s| s.ifindex == ifindex && s.ipv6 == io.ipv6 && s.protocol == protocol);
            let socket_index = match existing {
                Some(i) => {
                    // Several instances may use different groups on one socket.
                    if let Some(group) = group {
                        if self.sockets[i].socket.config().multicast_group != Some(group) {
                            if let Err(e) = self.sockets[i].socket.join_group(group) {
                                warn!("({}) cannot join {group}: {e}", io.name);
                            }
                        }
                    }
                    i
                }
                None => {
                    let config = VrrpSocketConfig {
                        ifindex,
                        family: if io.ipv6 { Family::V6 } else { Family::V4 },
                        protocol,
                        multicast_group: group,
                    };
                    let mut socket = match VrrpSocket::open(&config) {
                        Ok(s) => s,
                        Err(e) => {
                            error!(
                                "({}) cannot open the VRRP socket on {}: {e}",
                                io.name, io.ifname
                            );
                            continue;
                        }
                    };
                    let token = match cx.register_with_priority(
                        &mut socket,
                        mio::Interest::READABLE,
                        Priority::High,
                    ) {
                        Ok(t) => t,
                        Err(e) => {
                            error!("({}) cannot register the VRRP socket: {e}", io.name);
                            continue;
                        }
                    };
                    self.sockets.push(SocketEntry {
                        ifindex,
                        ipv6: io.ipv6,
                        protocol,
                        socket,
                        token,
                        vrids: HashMap::new(),
                    });
                    self.sockets.len() - 1
                }
            };
            let vrid = self.config.instances[index].virtual_router_id.value;
            self.sockets[socket_index].vrids.insert(vrid, index);
            self.instances[index].socket = Some(socket_index);
        }
    }

    /// Reload: close the carried-over sockets no instance uses any more.
    /// Instances refer to sockets by position, so those are renumbered.
    fn close_unused_sockets(&mut self, cx: &mut Context<'_>) {
        if self.sockets.iter().all(|s| !s.vrids.is_empty()) {
            return;
        }
        let mut kept = Vec::with_capacity(self.sockets.len());
        let mut new_position = vec![None; self.sockets.len()];
        for (old, mut socket) in std::mem::take(&mut self.sockets).into_iter().enumerate() {
            if socket.vrids.is_empty() {
                if let Err(e) = cx.deregister(&mut socket.socket, socket.token) {
                    warn!("cannot deregister a VRRP socket: {e}");
                }
            } else {
                new_position[old] = Some(kept.len());
                kept.push(socket);
            }
        }
        self.sockets = kept;
        for io in &mut self.instances {
            io.socket = io
                .socket
                .and_then(|s| new_position.get(s).copied().flatten());
        }
    }

    fn rearm(&mut self, cx: &mut Context<'_>) {
        let garp = self.garp_jobs.iter().map(|j| j.at).min();
        let next = [self.router.poll_timeout(), garp, self.next_file_poll]
            .into_iter()
            .flatten()
            .min();
        if self.timer.map(|(at, _)| at) == next {
            return;
        }
        if let Some((_, id)) = self.timer.take() {
            cx.cancel_timer(id);
        }
        if let Some(at) = next {
            self.timer = Some((at, cx.add_precise_timer(at, Tag::Vrrp.key(TIMER_MAIN))));
        }
    }

    /// Perform every pending router action, then re-arm the timer.
    fn process(&mut self, cx: &mut Context<'_>, now: Instant) {
        while let Some(action) = self.router.poll_action() {
            self.apply(cx, now, action);
        }
        for index in 0..self.instances.len() {
            let priority = self.router.instance(index).effective_priority();
            let io = &mut self.instances[index];
            if io.last_priority != priority {
                if io.last_priority != 0 {
                    info!(
                        "({}) Changing effective priority from {} to {}",
                        io.name, io.last_priority, priority
                    );
                }
                io.last_priority = priority;
            }
        }
        self.rearm(cx);
    }

    fn apply(&mut self, cx: &mut Context<'_>, now: Instant, action: RouterAction) {
        match action {
            RouterAction::Instance { index, action } => self.apply_instance(cx, now, index, action),
            RouterAction::RunScript { script } => self.run_vrrp_script(cx, script),
            RouterAction::ScriptChanged { script, ok } => {
                let name = self.router.script_name(script);
                if ok {
                    info!("VRRP_Script({name}) succeeded");
                } else {
                    info!("VRRP_Script({name}) failed");
                }
            }
            RouterAction::GroupNotify { group, event } => {
                let name = self.router.group_name(group).to_owned();
                let state = notify_state(event);
                info!("VRRP_Group({name}) Syncing instances to {state} state");
                let notify = self.config.sync_groups[group].notify.clone();
                self.run_notify(cx, &notify, event, "GROUP", &name, 0);
            }
        }
    }

    fn apply_instance(&mut self, cx: &mut Context<'_>, now: Instant, index: usize, action: Action) {
        match action {
            Action::SendAdvert { priority } => self.send_advert(index, priority),
            Action::AddVips => self.set_vips(index, true),
            Action::DelVips => self.set_vips(index, false),
            Action::SendGratuitous => {
                let io = &self.instances[index];
                let vips: Vec<String> = io.vips.iter().map(|v| v.addr.to_string()).collect();
                info!(
                    "({}) Sending/queueing {} on {} for {}",
                    io.name,
                    if io.ipv6 {
                        "Unsolicited Neighbour Adverts"
                    } else {
                        "gratuitous ARPs"
                    },
                    io.ifname,
                    vips.join(", ")
                );
                self.garp_jobs.retain(|j| j.instance != index);
                let burst = |at: Instant, remaining: u32, refresh: bool| GarpJob {
                    instance: index,
                    at,
                    remaining,
                    spacing: io.garp_spacing,
                    refresh,
                };
                // keepalived: one burst at once, a second after garp_master_delay,
                // then every garp_master_refresh while Master.
                let mut jobs = vec![burst(now, io.garp_repeat, false)];
                if let Some(at) = Some(io.garp_delay)
                    .filter(|d| !d.is_zero())
                    .and_then(|d| now.checked_add(d))
                {
                    jobs.push(burst(at, io.garp_repeat, false));
                }
                if let Some(at) = Some(io.garp_refresh)
                    .filter(|d| !d.is_zero())
                    .and_then(|d| now.checked_add(d))
                {
                    jobs.push(burst(at, io.garp_refresh_repeat, true));
                }
                self.garp_jobs.extend(jobs);
            }
            Action::StateChanged { from, to, reason } => {
                if (from == State::Master) != (to == State::Master) {
                    self.outbox.push_back(VrrpEvent::Master {
                        instance: self.instances[index].name.clone(),
                        master: to == State::Master,
                    });
                }
                let name = &self.instances[index].name;
                if to != State::Master {
                    self.garp_jobs.retain(|j| j.instance != index);
                }
                match (to, reason) {
                    (State::Backup, Reason::Startup) => {
                        info!("({name}) Entering BACKUP STATE (init)")
                    }
                    (State::Master, Reason::MasterDown) => {
                        info!("({name}) Receive advertisement timeout");
                        info!("({name}) Entering MASTER STATE");
                    }
                    (State::Master, _) => info!("({name}) Entering MASTER STATE"),
                    (
                        State::Backup,
                        Reason::HigherPriority | Reason::EqualPriorityGreaterAddress,
                    ) => {
                        if let Some((prio, src)) = self.router.instance(index).last_master() {
                            info!(
                                "({name}) Master received advert from {src} with higher priority {prio}, ours {}",
                                self.router.instance(index).effective_priority()
                            );
                        }
                        info!("({name}) Entering BACKUP STATE");
                    }
                    (State::Backup, _) => info!("({name}) Entering BACKUP STATE"),
                    (State::Fault, _) => info!("({name}) Entering FAULT STATE"),
                    (State::Initialize, _) if from != State::Initialize => {
                        info!("({name}) Stopped")
                    }
                    (State::Initialize, _) => {}
                }
            }
            Action::RunNotify(event) => {
                let io = &self.instances[index];
                let (notify, name) = (io.notify.clone(), io.name.clone());
                let priority = self.router.instance(index).effective_priority();
                self.run_notify(cx, &notify, event, "INSTANCE", &name, priority);
            }
        }
    }

    fn send_advert(&mut self, index: usize, priority: u8) {
        let io = &mut self.instances[index];
        let (Some(socket), Some(src)) = (io.socket, io.src) else {
            return;
        };
        let repr = self.router.instance(index).advert_repr(priority, io.auth);
        if priority == 0 {
            info!("({}) sent 0 priority", io.name);
        }
        let ttl = if io.unicast {
            self.config.instances[index].unicast_ttl.value
        } else {
            crate::vrrp::packet::VRRP_TTL
        };
        for dst in &io.destinations {
            let ah = io.ah_key.as_deref().map(|key| {
                // RFC 2402 2.5: the sequence number counts up from 1.
                io.ah_seq = io.ah_seq.wrapping_add(1).max(1);
                AhParams {
                    key,
                    seq: io.ah_seq,
                    icv_ttl: icv_ttl(io.unicast),
                }
            });
            if let Err(e) =
                self.sockets[socket]
                    .socket
                    .send_advert(src, *dst, ttl, &repr, ah.as_ref())
            {
                warn!("({}) cannot send advert to {dst}: {e}", io.name);
            }
        }
    }

    fn set_vips(&mut self, index: usize, add: bool) {
        let Some(rtnl) = self.rtnl.as_mut() else {
            return;
        };
        let io = &mut self.instances[index];
        if !add && !io.installed {
            return;
        }
        io.installed = add;
        let filtered = !accepts_vip_traffic(&self.config.instances[index]);
        let addrs: Vec<IpAddr> = io.vips.iter().map(|v| v.addr).collect();
        // RFC 5798 Accept_Mode False: the drop rule is in place before the
        // address appears, and stays until it is gone.
        if let (true, true, Some(nft)) = (add, filtered, self.nft.as_mut()) {
            if let Err(e) = nft.add(&addrs) {
                error!("({}) no_accept: cannot filter the VIPs: {e}", io.name);
            }
        }
        for vip in &io.vips {
            let result = if add {
                rtnl.add_address(vip).map(|_| ())
            } else {
                rtnl.del_address(vip).map(|_| ())
            };
            if let Err(e) = &result {
                error!(
                    "({}) cannot {} VIP {}: {e}",
                    io.name,
                    if add { "add" } else { "remove" },
                    vip.addr
                );
            }
            // A removal that failed leaves no address we count on either.
            if result.is_ok() || !add {
                self.outbox.push_back(VrrpEvent::Vip {
                    addr: vip.addr,
                    present: add,
                });
            }
        }
        for route in &io.routes {
            let result = if add {
                rtnl.add_route(route).map(|_| ())
            } else {
                rtnl.del_route(route).map(|_| ())
            };
            if let Err(e) = result {
                error!(
                    "({}) cannot {} virtual route: {e}",
                    io.name,
                    if add { "add" } else { "remove" }
                );
            }
        }
        if let (false, true, Some(nft)) = (add, filtered, self.nft.as_mut()) {
            if let Err(e) = nft.remove(&addrs) {
                warn!("({}) no_accept: cannot unfilter the VIPs: {e}", io.name);
            }
        }
    }

    /// Set up (or, when no instance needs it any more, remove) the nftables
    /// table of `no_accept`. A reload keeps a table of the same name as it
    /// is: Masters that stay Master keep their elements.
    fn sync_firewall(&mut self) {
        let wanted = self
            .config
            .instances
            .iter()
            .any(|m| !accepts_vip_traffic(m))
            .then(|| self.config.global.nftables_table.value.clone());
        if let Some(nft) = self.nft.as_mut() {
            if wanted.as_deref() == Some(nft.table()) {
                return;
            }
            if let Err(e) = nft.delete_table() {
                warn!("cannot remove nftables table {}: {e}", nft.table());
            }
            self.nft = None;
        }
        let Some(table) = wanted else {
            return;
        };
        let opened = NftVips::open(&table).and_then(|mut nft| nft.ensure_table().map(|()| nft));
        match opened {
            Ok(nft) => {
                info!("no_accept: traffic to Master VIPs is dropped by nftables table inet {table}");
                self.nft = Some(nft);
            }
            Err(e) => error!(
                "no_accept: cannot set up nftables table inet {table}: {e}; traffic to the VIPs will be accepted"
            ),
        }
    }

    fn send_due_garps(&mut self, now: Instant) {
        let mut jobs = std::mem::take(&mut self.garp_jobs);
        for job in &mut jobs {
            if job.at > now || job.remaining == 0 {
                continue;
            }
            let io = &self.instances[job.instance];
            let rounds = if job.spacing.is_zero() {
                job.remaining
            } else {
                1
            };
            if let (Some(ifindex), Some(mac)) = (io.send_ifindex, io.send_mac) {
                for _ in 0..rounds {
                    for vip in io.vips.iter().filter(|v| v.addr.is_ipv6() == io.ipv6) {
                        let Some(frames) = &self.frames else { continue };
                        let sent = match vip.addr {
                            IpAddr::V4(a) => frames.send_garp(ifindex, mac, a),
                            IpAddr::V6(a) => {
                                frames.send_na(ifindex, mac, a, nd::ipv6_forwarding(&io.ifname))
                            }
                        };
                        if let Err(e) = sent {
                            debug!(
                                "({}) gratuitous packet for {} failed: {e}",
                                io.name, vip.addr
                            );
                        }
                    }
                }
            }
            job.remaining -= rounds;
            job.at = now.checked_add(job.spacing).unwrap_or(now);
            // A refresh burst re-arms itself while the instance stays Master.
            if job.remaining == 0 && job.refresh {
                if let Some(at) = now.checked_add(io.garp_refresh) {
                    job.at = at;
                    job.remaining = io.garp_refresh_repeat;
                }
            }
        }
        jobs.retain(|j| j.remaining > 0);
        self.garp_jobs = jobs;
    }

    fn run_vrrp_script(&mut self, cx: &mut Context<'_>, script: usize) {
        let model = &self.config.vrrp_scripts[script];
        let spec = child_spec(
            &model.script,
            &self.config.global,
            &[],
            Some(model.timeout.value),
            Tag::Vrrp.key(script_key(self.generation, script)),
        );
        let started = spec
            .map_err(|e| e.to_string())
            .and_then(|spec| cx.spawn(spec).map_err(|e| e.to_string()));
        if let Err(e) = started {
            warn!("VRRP_Script({}) cannot start: {e}", model.name.value);
            let now = cx.now();
            self.router.handle_script_exit(now, script, false);
        }
    }

    fn run_notify(
        &mut self,
        cx: &mut Context<'_>,
        notify: &Notify,
        event: NotifyEvent,
        kind: &str,
        name: &str,
        priority: u8,
    ) {
        let specific = match event {
            NotifyEvent::Master => &notify.master,
            NotifyEvent::Backup => &notify.backup,
            NotifyEvent::Fault => &notify.fault,
            NotifyEvent::Stop => &notify.stop,
        };
        let state = notify_state(event);
        let generic_args = [
            kind.to_owned(),
            name.to_owned(),
            state.to_owned(),
            priority.to_string(),
        ];
        let runs: [(Option<&Script>, &[String]); 2] = [
            (specific.as_ref(), &[]),
            (notify.generic.as_ref(), &generic_args),
        ];
        for (script, args) in runs {
            let Some(script) = script else { continue };
            self.next_notify = (self.next_notify + 1) & 0xff_ffff;
            let spec = child_spec(
                script,
                &self.config.global,
                args,
                Some(Duration::from_secs(30)),
                Tag::Vrrp.key(CHILD_NOTIFY | self.next_notify),
            );
            match spec
                .map_err(|e| e.to_string())
                .and_then(|s| cx.spawn(s).map_err(|e| e.to_string()))
            {
                Ok(_) => debug!("({name}) notify script '{}' started", script.command.value),
                Err(e) => warn!("({name}) cannot run notify script: {e}"),
            }
        }
    }

    /// Watch the directories holding the track files: a file written,
    /// replaced by rename, created or deleted is read again at once.
    fn watch_track_files(&mut self, cx: &mut Context<'_>) {
        let flags = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MODIFY;
        let inotify = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(i) => i,
            Err(e) => {
                warn!("track_file: inotify unavailable ({e}); polling every second");
                return;
            }
        };
        for file in &self.config.track_files {
            let path = std::path::Path::new(&file.file.value);
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            if let Err(e) = inotify.add_watch(dir, flags) {
                warn!(
                    "track_file {}: cannot watch {} ({e}); polling every second",
                    file.name.value,
                    dir.display()
                );
                return;
            }
        }
        let raw = inotify.as_fd().as_raw_fd();
        match cx.register(&mut mio::unix::SourceFd(&raw), mio::Interest::READABLE) {
            Ok(token) => self.file_watch = Some((inotify, token)),
            Err(e) => warn!("track_file: cannot register inotify ({e}); polling every second"),
        }
    }

    /// inotify reported changes: drain them (bounded) and re-read the files
    /// when one of them is concerned (the watched directory, /run or /tmp
    /// say, may see much other traffic).
    fn handle_file_events(&mut self, now: Instant) {
        let Some((inotify, _)) = self.file_watch.as_ref() else {
            return;
        };
        let mut ours = false;
        for _ in 0..MAX_RECV_PER_EVENT {
            match inotify.read_events() {
                Ok(events) if !events.is_empty() => {
                    ours |= events.iter().any(|event| {
                        event.name.as_deref().is_some_and(|name| {
                            self.config.track_files.iter().any(|f| {
                                std::path::Path::new(&f.file.value).file_name() == Some(name)
                            })
                        })
                    });
                }
                _ => break,
            }
        }
        if ours {
            self.read_track_files(now);
        }
    }

    fn read_track_files(&mut self, now: Instant) {
        for file in &self.config.track_files {
            let value = std::fs::read_to_string(&file.file.value)
                .ok()
                .and_then(|text| {
                    text.split_whitespace()
                        .next()
                        .and_then(|w| w.parse::<i64>().ok())
                })
                .unwrap_or(0);
            self.router.handle_file_value(now, &file.name.value, value);
        }
    }

    fn receive(&mut self, now: Instant, socket_index: usize) {
        for _ in 0..MAX_RECV_PER_EVENT {
            let entry = &mut self.sockets[socket_index];
            let datagram = match entry.socket.recv() {
                Ok(Some(d)) => d,
                Ok(None) => return,
                Err(e) => {
                    warn!("VRRP socket receive failed: {e}");
                    return;
                }
            };
            let decoded = datagram.decode(TtlRule::Unchecked);
            let vrid = match &decoded {
                Ok(r) => Some(r.repr.vrid),
                Err(_) => vrid_hint(datagram.bytes, entry.ipv6),
            };
            let Some(&index) = vrid.and_then(|v| entry.vrids.get(&v)) else {
                // Another router's VRID on a shared LAN: not ours to count.
                continue;
            };
            let io = &self.instances[index];
            // Our own adverts come back on some setups (multicast loop).
            if decoded.as_ref().is_ok_and(|r| Some(r.src) == io.src) {
                continue;
            }
            let checked: Result<Received, &'static str> = decoded
                .and_then(|r| match (&io.ah_key, r.ah_seq) {
                    (Some(key), Some(_)) => {
                        verify_ah(datagram.bytes, key, icv_ttl(io.unicast)).map(|_| r)
                    }
                    _ => check_auth(&r.repr, &io.auth).map(|()| r),
                })
                .map_err(|e| e.counter().1);
            let checked = checked.and_then(|r| {
                check_sender(&self.config.instances[index], io.unicast, &r).map(|()| r)
            });
            if let Ok(r) = &checked {
                self.note_address_mismatch(now, index, r);
            }
            let outcome = checked.and_then(|r| {
                self.router
                    .handle_advert(now, index, r.src, &r.repr)
                    .map_err(discard_name)
            });
            if let Err(counter) = outcome {
                self.count_drop(now, index, counter);
            }
        }
    }

    /// Outside strict mode an advert with other addresses than ours is
    /// still processed (RFC 3768 7.1: SHOULD log); count and report it,
    /// rate-limited. In strict mode the instance drops it instead.
    fn note_address_mismatch(&mut self, now: Instant, index: usize, r: &Received) {
        let instance = self.router.instance(index);
        if instance.config().strict
            || r.repr.priority == 0
            || instance.address_list_matches(&r.repr)
        {
            return;
        }
        let io = &mut self.instances[index];
        *io.drops.entry("addr_list_err").or_default() += 1;
        let due = io.last_mismatch_log.map_or(true, |t| {
            now.saturating_duration_since(t) >= DROP_LOG_INTERVAL
        });
        if due {
            warn!(
                "({}) advert from {} carries other addresses than ours ({}); check virtual_ipaddress on both routers",
                io.name,
                r.src,
                r.repr
                    .addresses
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            io.last_mismatch_log = Some(now);
        }
    }

    fn count_drop(&mut self, now: Instant, index: usize, counter: &'static str) {
        let io = &mut self.instances[index];
        *io.drops.entry(counter).or_default() += 1;
        io.drops_since_log += 1;
        let due = io.last_drop_log.map_or(true, |t| {
            now.saturating_duration_since(t) >= DROP_LOG_INTERVAL
        });
        if due {
            let mut summary: Vec<String> =
                io.drops.iter().map(|(k, v)| format!("{k} {v}")).collect();
            summary.sort();
            warn!(
                "({}) dropped {} bad advert(s) since the last report (totals: {})",
                io.name,
                io.drops_since_log,
                summary.join(", ")
            );
            io.drops_since_log = 0;
            io.last_drop_log = Some(now);
        }
    }

    fn handle_events(&mut self, now: Instant) {
        let Some((events, _)) = self.events.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        let drained = events.read_events(&mut out);
        if let Err(e) = &drained {
            warn!("link events: {e}; re-reading links");
            if let Some(rtnl) = self.rtnl.as_mut() {
                if let Ok(links) = rtnl.links() {
                    for link in links {
                        self.router.handle_link(now, &link.name, link.is_up());
                    }
                }
            }
        }
        for event in out {
            match event {
                RtnlEvent::LinkUp { name, .. } => {
                    info!("Netlink reports {name} up");
                    self.router.handle_link(now, &name, true);
                }
                RtnlEvent::LinkDown { name, .. } | RtnlEvent::LinkRemoved { name, .. } => {
                    info!("Netlink reports {name} down");
                    self.router.handle_link(now, &name, false);
                }
                RtnlEvent::AddressAdded(_) | RtnlEvent::AddressRemoved(_) => {}
            }
        }
    }
}

/// The AH sequence number to count up from. A peer keepalived drops any
/// sequence number not above the last it saw from us, also across our
/// restarts. v2 adverts go out about once a second (a few more around
/// transitions), so counting eighths of a second since 2024-01-01 stays
/// ahead of a previous run and lasts until 2040 in 32 bits.
fn initial_ah_sequence() -> u32 {
    const EPOCH_2024: u64 = 1_704_067_200;
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            (d.as_millis() as u64 / 125).saturating_sub(EPOCH_2024 * 8) as u32
        })
}

/// RFC 5798 Accept_Mode: `accept` (keepalived's default unless strict), or
/// the address owner, which always accepts traffic to its addresses.
fn accepts_vip_traffic(model: &VrrpInstance) -> bool {
    model.accept.value || model.priority.value == 255
}

/// The sender rules that depend on the instance: multicast adverts must
/// arrive with TTL 255 (RFC 5798 7.1); unicast ones only within a peer's
/// `min_ttl` / `max_ttl`, and only from a configured peer when
/// `check_unicast_src` (or a TTL range, as in keepalived) asks for it.
fn check_sender(model: &VrrpInstance, unicast: bool, r: &Received) -> Result<(), &'static str> {
    if !unicast {
        return if r.ttl == crate::vrrp::packet::VRRP_TTL {
            Ok(())
        } else {
            Err("ip_ttl_err")
        };
    }
    let peer = model.unicast_peer.iter().find(|p| p.addr.value == r.src);
    let ranged = model
        .unicast_peer
        .iter()
        .any(|p| p.min_ttl.is_some() || p.max_ttl.is_some());
    let Some(peer) = peer else {
        return if model.check_unicast_src.value || ranged {
            Err("unicast_src_err")
        } else {
            Ok(())
        };
    };
    let min = peer.min_ttl.unwrap_or(0);
    let max = peer.max_ttl.unwrap_or(u8::MAX);
    if (min..=max).contains(&r.ttl) {
        Ok(())
    } else {
        Err("ip_ttl_err")
    }
}

fn notify_state(event: NotifyEvent) -> &'static str {
    match event {
        NotifyEvent::Master => "MASTER",
        NotifyEvent::Backup => "BACKUP",
        NotifyEvent::Fault => "FAULT",
        NotifyEvent::Stop => "STOP",
    }
}

fn discard_name(d: crate::vrrp::Discard) -> &'static str {
    match d {
        crate::vrrp::Discard::VridMismatch => "vrid_mismatch",
        crate::vrrp::Discard::VersionMismatch => "version_err",
        crate::vrrp::Discard::AdvertIntervalMismatch => "advert_interval_err",
        crate::vrrp::Discard::NotParticipating => "not_participating",
        crate::vrrp::Discard::AddressListMismatch => "addr_list_err",
    }
}

/// The VRID byte of a packet that failed the checks, to charge the drop to
/// the right instance (None when even that is unreadable).
fn vrid_hint(bytes: &[u8], ipv6: bool) -> Option<u8> {
    let offset = if ipv6 {
        0
    } else {
        usize::from(bytes.first()? & 0x0f) * 4
    };
    bytes.get(offset + 1).copied()
}

impl Subsystem for VrrpService {
    fn tag(&self) -> Tag {
        Tag::Vrrp
    }

    fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        self.bring_up(cx, now, None);
    }

    fn owns(&self, token: Token) -> bool {
        self.sockets.iter().any(|s| s.token == token)
            || self.events.as_ref().is_some_and(|(_, t)| *t == token)
            || self.file_watch.as_ref().is_some_and(|(_, t)| *t == token)
    }

    fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, _event: &Event, now: Instant) {
        if self.events.as_ref().is_some_and(|(_, t)| *t == token) {
            self.handle_events(now);
        } else if self.file_watch.as_ref().is_some_and(|(_, t)| *t == token) {
            self.handle_file_events(now);
        } else if let Some(index) = self.sockets.iter().position(|s| s.token == token) {
            self.receive(now, index);
        }
        self.process(cx, now);
    }

    fn handle_timer(&mut self, cx: &mut Context<'_>, _key: u64, now: Instant) {
        self.timer = None;
        self.router.handle_timeout(now);
        self.send_due_garps(now);
        if self.next_file_poll.is_some_and(|t| t <= now) {
            self.read_track_files(now);
            self.next_file_poll = now.checked_add(TRACK_FILE_POLL);
        }
        self.process(cx, now);
    }

    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant) {
        let inner = Tag::inner(exit.owner);
        if let Some(script) = script_of_key(inner, self.generation) {
            if script < self.config.vrrp_scripts.len() {
                let ok = exit.status.success();
                if !ok {
                    debug!(
                        "VRRP_Script({}) exited with {:?}",
                        self.router.script_name(script),
                        exit.status
                    );
                }
                self.router.handle_script_exit(now, script, ok);
            }
        }
        self.process(cx, now);
    }

    fn reload(&mut self, cx: &mut Context<'_>, config: &Config, now: Instant) {
        let unchanged = config.instances == self.config.instances
            && config.sync_groups == self.config.sync_groups
            && config.vrrp_scripts == self.config.vrrp_scripts
            && config.track_files == self.config.track_files
            && config.global == self.config.global;
        if unchanged || self.stopped {
            return;
        }
        info!("VRRP configuration changed; applying it (instances keep their state)");
        self.apply_reload(cx, config, now);
    }

    fn dump_state(&self, out: &mut String) {
        for (index, io) in self.instances.iter().enumerate() {
            let inst = self.router.instance(index);
            let _ = writeln!(
                out,
                "# VRRP instance {}: state {}, effective priority {}, interface {}, drops {:?}",
                io.name,
                inst.state().keepalived_name(),
                inst.effective_priority(),
                io.ifname,
                io.drops
            );
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        if self.stopped {
            return true;
        }
        self.stopped = true;
        self.router.handle_shutdown(now);
        self.process(cx, now);
        // Belt and braces: nothing of ours stays on the interfaces.
        for index in 0..self.instances.len() {
            self.set_vips(index, false);
        }
        if let Some(mut nft) = self.nft.take() {
            if let Err(e) = nft.delete_table() {
                warn!("cannot remove nftables table {}: {e}", nft.table());
            }
        }
        if let Some(rtnl) = self.rtnl.as_mut() {
            for io in &self.instances {
                if let (Some(vmac), Some(ifindex)) = (&io.vmac, io.send_ifindex) {
                    if let Err(e) = rtnl.delete_link(ifindex) {
                        warn!("({}) cannot remove VMAC {}: {e}", io.name, vmac.name);
                    }
                }
            }
        }
        if let Some((_, id)) = self.timer.take() {
            cx.cancel_timer(id);
        }
        true
    }
}

/// keepalived hashes the TTL into the AH ICV of multicast instances only.
fn icv_ttl(unicast: bool) -> IcvTtl {
    if unicast {
        IcvTtl::Zeroed
    } else {
        IcvTtl::Hashed
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::config::{load_str, LoadOptions};
    use crate::vrrp::VrrpRepr;

    fn instance(peers: &str, extra: &str) -> VrrpInstance {
        let text = format!(
            "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n priority 100\n \
             unicast_peer {{\n{peers}\n }}\n {extra}\n virtual_ipaddress {{\n 10.0.0.100\n }}\n}}\n"
        );
        let loaded = load_str("t.conf", &text, &LoadOptions::default());
        let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        loaded.config.instances[0].clone()
    }

    fn received(src: &str, ttl: u8) -> Received {
        let src: IpAddr = src.parse().unwrap();
        Received {
            src,
            dst: src,
            ah_seq: None,
            ttl,
            repr: VrrpRepr {
                version: VrrpVersion::V2,
                vrid: 51,
                priority: 100,
                max_advert_int: 100,
                addresses: vec![],
                auth: Auth::None,
            },
        }
    }

    #[test]
    fn script_children_of_an_older_generation_are_not_matched() {
        let key = script_key(3, 5);
        assert_eq!(script_of_key(key, 3), Some(5));
        assert_eq!(script_of_key(key, 4), None, "started before the reload");
        assert_eq!(script_of_key(CHILD_NOTIFY | 5, 3), None);
        // The generation wraps within its bits, consistently on both sides.
        let wrapped = SCRIPT_GENERATION_MASK + 1;
        assert_eq!(script_of_key(script_key(wrapped, 2), wrapped), Some(2));
        assert_eq!(Tag::inner(Tag::Vrrp.key(key)), key, "fits the loop key");
    }

    #[test]
    fn multicast_adverts_need_ttl_255() {
        let model = instance("", "");
        assert_eq!(
            check_sender(&model, false, &received("10.0.0.9", 255)),
            Ok(())
        );
        assert_eq!(
            check_sender(&model, false, &received("10.0.0.9", 254)),
            Err("ip_ttl_err")
        );
    }

    #[test]
    fn unicast_adverts_are_checked_against_the_peer_ttl_range() {
        // No range: any TTL from anyone (keepalived without check_unicast_src).
        let open = instance("10.0.0.9", "");
        assert_eq!(check_sender(&open, true, &received("10.0.0.9", 64)), Ok(()));
        assert_eq!(check_sender(&open, true, &received("10.0.0.7", 1)), Ok(()));
        let checked = instance("10.0.0.9", "check_unicast_src");
        assert_eq!(
            check_sender(&checked, true, &received("10.0.0.7", 255)),
            Err("unicast_src_err")
        );
        // A range checks the TTL and, as in keepalived, the source.
        let ranged = instance("10.0.0.9 min_ttl 250 max_ttl 254\n 10.0.0.8", "");
        assert_eq!(
            check_sender(&ranged, true, &received("10.0.0.9", 250)),
            Ok(())
        );
        assert_eq!(
            check_sender(&ranged, true, &received("10.0.0.9", 254)),
            Ok(())
        );
        for ttl in [1, 249, 255] {
            assert_eq!(
                check_sender(&ranged, true, &received("10.0.0.9", ttl)),
                Err("ip_ttl_err"),
                "ttl {ttl}"
            );
        }
        assert_eq!(
            check_sender(&ranged, true, &received("10.0.0.8", 3)),
            Ok(())
        );
        assert_eq!(
            check_sender(&ranged, true, &received("10.0.0.7", 255)),
            Err("unicast_src_err")
        );
    }
}
