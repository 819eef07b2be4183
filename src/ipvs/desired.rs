//! The desired IPVS table: configuration plus live state (checker
//! verdicts, dynamic weights, which VIPs this director holds), kept as
//! plain data. No sockets, no clock: every input is a method call, every
//! output is the table from [`State::desired`] and the [`Notice`]s from
//! [`State::poll_notice`].
//!
//! keepalived's rules (keepalived.conf(5), "Virtual server(s)"):
//! - a real server is in the pool while it is alive; with
//!   `inhibit_on_failure` a dead one stays with weight 0 instead;
//! - `quorum` is the minimum total weight of the live servers;
//!   `hysteresis` widens the band: the quorum is lost below
//!   `quorum - hysteresis` and gained again at `quorum + hysteresis`;
//! - when the quorum is lost and a `sorry_server` is configured, the live
//!   real servers leave the pool and the sorry server (weight 1) takes
//!   their place; `sorry_server_inhibit` keeps it in the pool with weight 0
//!   while unused;
//! - `alpha`: real servers start dead until their checkers succeed (real
//!   servers without checkers are always alive);
//! - `ha_suspend`: the service exists only while its virtual address is
//!   on this director (VRRP master).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ids::{RsId, VsId};
use super::table::{Table, TableService};
use crate::config::model::{
    AddressFamily, Config, ForwardMethod as ConfigForward, Script, TunnelChecksum, TunnelType,
    VirtualServer, VsGroupEntry, VsKey,
};
use crate::netlink::ipvs::{
    DestKey, DestParams, Family, ForwardMethod, ServiceKey, ServiceParams, Tunnel,
    IP_VS_CONN_F_TUNNEL_TYPE_GRE, IP_VS_CONN_F_TUNNEL_TYPE_GUE, IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
    IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2,
    IP_VS_SVC_F_SCHED3, IP_VS_SVC_F_SCHED_SH_FALLBACK, IP_VS_SVC_F_SCHED_SH_PORT,
    IP_VS_TUNNEL_ENCAP_FLAG_CSUM, IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM, IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
};

use crate::config::model::group_entry_bounds;
/// The configuration refuses larger entries; the bound is applied again
/// here for models built by hand.
pub use crate::config::model::MAX_GROUP_ENTRY_ADDRESSES;

/// Something that happened, for the log or for a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A real server entered the pool (`Adding service ... to VS ...`), or
    /// with inhibit_on_failure got its weight back (`Enabling ...`).
    RsUp { rs: RsId, inhibit: bool },
    /// A real server left the pool, or got weight 0 (`Disabling ...`).
    RsDown { rs: RsId, inhibit: bool },
    WeightChanged {
        rs: RsId,
        from: u32,
        to: u32,
        alive: bool,
    },
    /// The first evaluation found the live weight short of the quorum
    /// (`Starting with quorum down ...`; keepalived prints quorum +
    /// hysteresis after the '=', the weight the quorum needs to come up).
    QuorumDownAtStart {
        vs: VsId,
        quorum: u32,
        hysteresis: u32,
        weight: u64,
    },
    QuorumLost {
        vs: VsId,
        quorum: u32,
        hysteresis: u32,
        weight: u64,
    },
    QuorumGained {
        vs: VsId,
        quorum: u32,
        hysteresis: u32,
        weight: u64,
    },
    /// With `sorry_server_inhibit` the sorry server is enabled (weight 1)
    /// and disabled (weight 0) instead of added and removed.
    SorryServerAdded {
        vs: VsId,
        sorry: String,
        inhibit: bool,
    },
    SorryServerRemoved {
        vs: VsId,
        sorry: String,
        inhibit: bool,
    },
    /// The live real servers left (false) or re-entered (true) the pool.
    Pool { vs: VsId, added: bool },
    /// ha_suspend: the virtual address appeared (true) or went away.
    Suspend {
        vs: VsId,
        addr: IpAddr,
        active: bool,
    },
    /// Run `quorum_up` (up) or `quorum_down`.
    QuorumScript { vs: VsId, up: bool, script: Script },
    /// A configuration value was adjusted the way keepalived does.
    Adjusted(String),
}

/// keepalived's wording.
impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::RsUp { rs, inhibit: false } => {
                write!(f, "Adding service {rs} to VS {}", rs.vs)
            }
            Notice::RsUp { rs, inhibit: true } => {
                write!(f, "Enabling service {rs} of VS {}", rs.vs)
            }
            Notice::RsDown { rs, inhibit: false } => {
                write!(f, "Removing service {rs} from VS {}", rs.vs)
            }
            Notice::RsDown { rs, inhibit: true } => {
                write!(f, "Disabling service {rs} of VS {}", rs.vs)
            }
            Notice::WeightChanged {
                rs,
                from,
                to,
                alive,
            } => write!(
                f,
                "Changing weight from {from} to {to} for {}active service {rs} of VS {}",
                if *alive { "" } else { "in" },
                rs.vs
            ),
            Notice::QuorumLost {
                vs,
                quorum,
                hysteresis,
                weight,
            } => write!(
                f,
                "Lost quorum {quorum}-{hysteresis}={} > {weight} for VS {vs}",
                quorum.saturating_sub(*hysteresis)
            ),
            Notice::QuorumDownAtStart {
                vs,
                quorum,
                hysteresis,
                weight,
            } => write!(
                f,
                "Starting with quorum down {quorum}-{hysteresis}={} > {weight} for VS {vs}",
                u64::from(*quorum) + u64::from(*hysteresis)
            ),
            Notice::QuorumGained {
                vs,
                quorum,
                hysteresis,
                weight,
            } => write!(
                f,
                "Gained quorum {quorum}+{hysteresis}={} <= {weight} for VS {vs}",
                u64::from(*quorum) + u64::from(*hysteresis)
            ),
            Notice::SorryServerAdded { vs, sorry, inhibit } => write!(
                f,
                "{} sorry server {sorry} to VS {vs}",
                if *inhibit { "Enabling" } else { "Adding" }
            ),
            Notice::SorryServerRemoved { vs, sorry, inhibit } => write!(
                f,
                "{} sorry server {sorry} from VS {vs}",
                if *inhibit { "Disabling" } else { "Removing" }
            ),
            Notice::Pool { vs, added: true } => {
                write!(f, "Adding alive servers to the pool for VS {vs}")
            }
            Notice::Pool { vs, added: false } => {
                write!(f, "Removing alive servers from the pool for VS {vs}")
            }
            Notice::Suspend {
                vs,
                addr,
                active: true,
            } => write!(
                f,
                "VS {vs}: address {addr} is present, activating (ha_suspend)"
            ),
            Notice::Suspend {
                vs,
                addr,
                active: false,
            } => write!(
                f,
                "VS {vs}: address {addr} is gone, suspending (ha_suspend)"
            ),
            Notice::QuorumScript { vs, up, script } => write!(
                f,
                "Executing [{}] for VS {vs} (quorum {})",
                script.command.value,
                if *up { "up" } else { "down" }
            ),
            Notice::Adjusted(text) => f.write_str(text),
        }
    }
}

/// One real server's live state.
#[derive(Debug, Clone)]
struct RsState {
    id: RsId,
    /// The configured port (`None`: the service's port, 0 for fwmark).
    port: Option<u16>,
    configured_weight: u32,
    /// Current weight: configured, or what a dynamic checker set.
    weight: u32,
    alive: bool,
    inhibit: bool,
    template: DestParams,
}

#[derive(Debug, Clone)]
struct SorryServer {
    addr: IpAddr,
    port: Option<u16>,
    inhibit: bool,
    template: DestParams,
    label: String,
}

/// One service the virtual server expands to (several for a group).
#[derive(Debug, Clone)]
struct ServiceSlot {
    key: ServiceKey,
    /// Port NAT destinations without a port of their own use: the
    /// service's for a plain virtual server, 0 (the packet's own port) for
    /// a fwmark service or a group's service, as keepalived 2.2.7 does.
    default_port: u16,
    /// The address ha_suspend watches (none for fwmark services).
    vip: Option<IpAddr>,
}

#[derive(Debug, Clone)]
struct VsState {
    id: VsId,
    slots: Vec<ServiceSlot>,
    scheduler: String,
    pe_name: Option<String>,
    flags: u32,
    timeout: u32,
    granularity: Option<IpAddr>,
    real_servers: Vec<RsState>,
    sorry: Option<SorryServer>,
    quorum: u32,
    hysteresis: u32,
    quorum_up_script: Option<Script>,
    quorum_down_script: Option<Script>,
    quorum_up: bool,
    ha_suspend: bool,
    omega: bool,
}

impl VsState {
    fn live_weight(&self) -> u64 {
        self.real_servers
            .iter()
            .filter(|rs| rs.alive)
            .map(|rs| u64::from(rs.weight))
            .sum()
    }

    /// True while the sorry server replaces the real servers.
    fn sorry_active(&self) -> bool {
        !self.quorum_up && self.sorry.is_some()
    }

    fn params(&self, family: Family) -> ServiceParams {
        let mut params = ServiceParams::new(&self.scheduler, family);
        params.pe_name = self.pe_name.clone();
        params.flags = self.flags;
        params.timeout = self.timeout;
        match (family, self.granularity) {
            (Family::Inet, Some(IpAddr::V4(mask))) => params.netmask = u32::from(mask),
            (Family::Inet6, Some(IpAddr::V6(mask))) => {
                params.netmask = u128::from(mask).leading_ones()
            }
            _ => {}
        }
        params
    }

    /// The first evaluation (start, or a virtual server new at reload), as
    /// keepalived 2.2.7 logs it (seen in the VM, tests/ipvs_vm.rs
    /// `tables_match_keepalived`): "Gained quorum ..." when the live weight
    /// reaches it; otherwise "Starting with quorum down ...", then the sorry
    /// server's and the pool's lines when there is a sorry server.
    fn evaluate_initial_quorum(&mut self, notices: &mut VecDeque<Notice>) {
        self.quorum_up = false;
        let weight = self.live_weight();
        if weight < u64::from(self.quorum) + u64::from(self.hysteresis) {
            notices.push_back(Notice::QuorumDownAtStart {
                vs: self.id.clone(),
                quorum: self.quorum,
                hysteresis: self.hysteresis,
                weight,
            });
            self.announce_sorry_server_in(notices);
        } else {
            self.quorum_up = true;
            notices.push_back(Notice::QuorumGained {
                vs: self.id.clone(),
                quorum: self.quorum,
                hysteresis: self.hysteresis,
                weight,
            });
            if let Some(script) = &self.quorum_up_script {
                notices.push_back(Notice::QuorumScript {
                    vs: self.id.clone(),
                    up: true,
                    script: script.clone(),
                });
            }
        }
    }

    /// The lines of a sorry server replacing the pool, when there is one.
    fn announce_sorry_server_in(&self, notices: &mut VecDeque<Notice>) {
        if let Some(sorry) = &self.sorry {
            notices.push_back(Notice::SorryServerAdded {
                vs: self.id.clone(),
                sorry: sorry.label.clone(),
                inhibit: sorry.inhibit,
            });
            notices.push_back(Notice::Pool {
                vs: self.id.clone(),
                added: false,
            });
        }
    }

    /// Re-evaluate the quorum after a change of the live weight.
    fn evaluate_quorum(&mut self, notices: &mut VecDeque<Notice>) {
        let weight = self.live_weight();
        let lost_below = u64::from(self.quorum.saturating_sub(self.hysteresis));
        let gained_at = u64::from(self.quorum) + u64::from(self.hysteresis);
        if self.quorum_up && weight < lost_below {
            self.quorum_up = false;
            notices.push_back(Notice::QuorumLost {
                vs: self.id.clone(),
                quorum: self.quorum,
                hysteresis: self.hysteresis,
                weight,
            });
            self.announce_sorry_server_in(notices);
            if let Some(script) = &self.quorum_down_script {
                notices.push_back(Notice::QuorumScript {
                    vs: self.id.clone(),
                    up: false,
                    script: script.clone(),
                });
            }
        } else if !self.quorum_up && weight >= gained_at {
            self.quorum_up = true;
            notices.push_back(Notice::QuorumGained {
                vs: self.id.clone(),
                quorum: self.quorum,
                hysteresis: self.hysteresis,
                weight,
            });
            // keepalived 2.2.7 logs these two in this order.
            if let Some(sorry) = &self.sorry {
                notices.push_back(Notice::SorryServerRemoved {
                    vs: self.id.clone(),
                    sorry: sorry.label.clone(),
                    inhibit: sorry.inhibit,
                });
                notices.push_back(Notice::Pool {
                    vs: self.id.clone(),
                    added: true,
                });
            }
            if let Some(script) = &self.quorum_up_script {
                notices.push_back(Notice::QuorumScript {
                    vs: self.id.clone(),
                    up: true,
                    script: script.clone(),
                });
            }
        }
    }
}

/// Map a configured forwarding method to the kernel's.
fn dest_template(method: ConfigForward, uthreshold: u32, lthreshold: u32) -> DestParams {
    let (forward, tunnel) = match method {
        ConfigForward::Nat => (ForwardMethod::Masquerade, Tunnel::default()),
        ConfigForward::Dr => (ForwardMethod::DirectRoute, Tunnel::default()),
        ConfigForward::Tun { tunnel, checksum } => {
            let (kind, port) = match tunnel {
                TunnelType::Ipip => (IP_VS_CONN_F_TUNNEL_TYPE_IPIP, 0),
                TunnelType::Gue { port } => (IP_VS_CONN_F_TUNNEL_TYPE_GUE, port),
                TunnelType::Gre => (IP_VS_CONN_F_TUNNEL_TYPE_GRE, 0),
            };
            let flags = match checksum {
                None | Some(TunnelChecksum::NoCsum) => IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
                Some(TunnelChecksum::Csum) => IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
                Some(TunnelChecksum::RemCsum) => IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
            };
            (ForwardMethod::Tunnel, Tunnel { kind, port, flags })
        }
    };
    DestParams {
        forward,
        weight: 0,
        u_threshold: uthreshold,
        l_threshold: lthreshold,
        tunnel,
    }
}

fn family_of(af: AddressFamily) -> Family {
    match af {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
    }
}

/// Every address of a group entry (`IP`, `IP-LAST`, `IP-IP`, `IP/nn`), bounded.
fn expand_addresses(
    addr: IpAddr,
    range_end: Option<IpAddr>,
    prefix_len: Option<u8>,
    notices: &mut VecDeque<Notice>,
) -> Vec<IpAddr> {
    let Some((first, last, v6)) = group_entry_bounds(addr, range_end, prefix_len) else {
        return Vec::new();
    };
    // `::/0` is 2^128 addresses: saturate rather than overflow.
    let count = (last - first).saturating_add(1);
    if count > u128::from(MAX_GROUP_ENTRY_ADDRESSES) {
        notices.push_back(Notice::Adjusted(format!(
            "virtual_server_group entry {addr}: {count} addresses, using the first {MAX_GROUP_ENTRY_ADDRESSES}"
        )));
    }
    let take = count.min(u128::from(MAX_GROUP_ENTRY_ADDRESSES));
    (0..take)
        .map(|i| {
            let n = first + i;
            if v6 {
                IpAddr::V6(Ipv6Addr::from(n))
            } else {
                IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)))
            }
        })
        .collect()
}

/// The default address family of a fwmark service: the configured
/// `ip_family`, else the real servers' family, else IPv4.
fn fwmark_family(vs: &VirtualServer, explicit: Option<AddressFamily>) -> Family {
    if let Some(af) = explicit.or(vs.ip_family) {
        return family_of(af);
    }
    vs.real_servers
        .first()
        .map_or(Family::Inet, |rs| Family::of(&rs.addr.value))
}

fn slots_of(
    vs: &VirtualServer,
    config: &Config,
    notices: &mut VecDeque<Notice>,
) -> Vec<ServiceSlot> {
    let protocol = super::ids::ip_protocol(super::ids::ProtocolId::from_config(vs.protocol.value));
    match &vs.key {
        VsKey::Address { addr, port } => vec![ServiceSlot {
            key: ServiceKey::Addr {
                protocol,
                addr: addr.value,
                port: port.value,
            },
            default_port: port.value,
            vip: Some(addr.value),
        }],
        VsKey::Fwmark(mark) => vec![ServiceSlot {
            key: ServiceKey::Fwmark {
                family: fwmark_family(vs, None),
                mark: mark.value,
            },
            default_port: 0,
            vip: None,
        }],
        VsKey::Group(name) => {
            let Some(group) = config.vs_groups.iter().find(|g| g.name.value == name.value) else {
                notices.push_back(Notice::Adjusted(format!(
                    "virtual_server group {}: no virtual_server_group of that name; no service",
                    name.value
                )));
                return Vec::new();
            };
            let mut slots = Vec::new();
            for entry in &group.entries {
                match entry {
                    VsGroupEntry::Address {
                        addr,
                        range_end,
                        prefix_len,
                        port,
                    } => {
                        for a in expand_addresses(addr.value, *range_end, *prefix_len, notices) {
                            slots.push(ServiceSlot {
                                key: ServiceKey::Addr {
                                    protocol,
                                    addr: a,
                                    port: *port,
                                },
                                // keepalived 2.2.7 gives a port-less NAT
                                // real server of a group port 0 (the
                                // packet's own port), not the entry's.
                                default_port: 0,
                                vip: Some(a),
                            });
                        }
                    }
                    VsGroupEntry::Fwmark { mark, family } => slots.push(ServiceSlot {
                        key: ServiceKey::Fwmark {
                            family: fwmark_family(vs, *family),
                            mark: mark.value,
                        },
                        default_port: 0,
                        vip: None,
                    }),
                }
            }
            slots
        }
    }
}

fn vs_state(vs: &VirtualServer, config: &Config, notices: &mut VecDeque<Notice>) -> VsState {
    let id = VsId::from_config(vs);
    let slots = slots_of(vs, config, notices);
    let scheduler = vs.lb_algo.value.name();
    let mut flags = 0;
    if vs.persistence_timeout.is_some() {
        flags |= IP_VS_SVC_F_PERSISTENT;
    }
    // One-packet scheduling exists for UDP only.
    if vs.flags.ops && vs.protocol.value == crate::config::model::Protocol::Udp {
        flags |= IP_VS_SVC_F_ONEPACKET;
    }
    // sh-* flags mean something to sh only, mh-* to mh only; they share bits.
    let (port_flag, fallback_flag) = match scheduler {
        "sh" => (vs.flags.sh_port, vs.flags.sh_fallback),
        "mh" => (vs.flags.mh_port, vs.flags.mh_fallback),
        _ => (false, false),
    };
    if port_flag {
        flags |= IP_VS_SVC_F_SCHED_SH_PORT;
    }
    if fallback_flag {
        flags |= IP_VS_SVC_F_SCHED_SH_FALLBACK;
    }
    // flag-N is the raw bit: keepalived sets it for any scheduler.
    for (set, bit) in [
        (vs.flags.flag_1, IP_VS_SVC_F_SCHED1),
        (vs.flags.flag_2, IP_VS_SVC_F_SCHED2),
        (vs.flags.flag_3, IP_VS_SVC_F_SCHED3),
    ] {
        if set {
            flags |= bit;
        }
    }
    let real_servers: Vec<RsState> = vs
        .real_servers
        .iter()
        .map(|rs| {
            let method = rs.lvs_method.as_ref().map_or(vs.lb_kind.value, |m| m.value);
            let weight = rs.weight.value;
            RsState {
                id: RsId::new(&id, rs),
                port: rs.port.as_ref().map(|p| p.value),
                configured_weight: weight,
                weight,
                // alpha: dead until the checkers say otherwise; a real
                // server without checkers is always alive.
                alive: rs.checkers.is_empty() || !rs.alpha.value,
                inhibit: rs.inhibit_on_failure.value,
                template: dest_template(
                    method,
                    rs.uthreshold.as_ref().map_or(0, |t| t.value),
                    rs.lthreshold.as_ref().map_or(0, |t| t.value),
                ),
            }
        })
        .collect();
    let total: u64 = real_servers
        .iter()
        .map(|rs| u64::from(rs.configured_weight))
        .sum();
    let mut quorum = vs.quorum.value.max(1);
    if total > 0 && u64::from(quorum) > total {
        let reduced = u32::try_from(total).unwrap_or(u32::MAX);
        notices.push_back(Notice::Adjusted(format!(
            "Warning - quorum {quorum} for {id} exceeds total weight of real servers {total}, reducing quorum to {reduced}"
        )));
        quorum = reduced;
    }
    let mut hysteresis = vs.hysteresis.value;
    if hysteresis >= quorum {
        notices.push_back(Notice::Adjusted(format!(
            "Virtual server {id}: hysteresis {hysteresis} >= quorum {quorum}; setting hysteresis to {}",
            quorum - 1
        )));
        hysteresis = quorum - 1;
    }
    let sorry = vs.sorry_server.as_ref().map(|s| {
        let method = vs
            .sorry_server_lvs_method
            .as_ref()
            .map_or(vs.lb_kind.value, |m| m.value);
        // The configuration already corrected DR/TUN ports (finalize.rs);
        // a NAT sorry server of a fwmark service keeps its port.
        let port = s.port;
        SorryServer {
            addr: s.addr.value,
            port,
            inhibit: vs.sorry_server_inhibit.value,
            template: dest_template(method, 0, 0),
            label: RsId {
                vs: id.clone(),
                addr: s.addr.value,
                port: port.unwrap_or(match &vs.key {
                    VsKey::Address { port, .. } => port.value,
                    _ => 0,
                }),
            }
            .to_string(),
        }
    });
    VsState {
        id,
        slots,
        scheduler: scheduler.to_owned(),
        pe_name: vs.persistence_engine.as_ref().map(|p| p.value.clone()),
        flags,
        timeout: vs.persistence_timeout.as_ref().map_or(0, |t| t.value),
        granularity: vs.persistence_granularity.as_ref().map(|g| g.value),
        real_servers,
        sorry,
        quorum,
        hysteresis,
        quorum_up_script: vs.quorum_up.clone(),
        quorum_down_script: vs.quorum_down.clone(),
        quorum_up: false,
        ha_suspend: vs.ha_suspend.value,
        omega: vs.omega.value,
    }
}

/// The live state of every virtual server of a configuration.
#[derive(Debug, Clone, Default)]
pub struct State {
    vss: Vec<VsState>,
    /// Where each real server is in `vss` (verdicts arrive by the thousand).
    index: HashMap<RsId, (usize, usize)>,
    /// Virtual addresses present on this director (for ha_suspend).
    vips: BTreeSet<IpAddr>,
    notices: VecDeque<Notice>,
}

/// What a live update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// The configuration has no such real server.
    Unknown,
    /// Nothing changed (a repeated verdict): nothing to send.
    Unchanged,
    Changed,
}

fn index_of(vss: &[VsState]) -> HashMap<RsId, (usize, usize)> {
    let mut index = HashMap::new();
    for (v, vs) in vss.iter().enumerate() {
        for (r, rs) in vs.real_servers.iter().enumerate() {
            // A duplicate real server keeps its first position.
            index.entry(rs.id.clone()).or_insert((v, r));
        }
    }
    index
}

impl State {
    /// Initial state: real servers alive unless `alpha`, quorum from that.
    /// `vips` are the addresses on this director now.
    pub fn new(config: &Config, vips: BTreeSet<IpAddr>) -> Self {
        let mut notices = VecDeque::new();
        let vss: Vec<VsState> = config
            .virtual_servers
            .iter()
            .map(|vs| {
                let mut state = vs_state(vs, config, &mut notices);
                state.evaluate_initial_quorum(&mut notices);
                state
            })
            .collect();
        State {
            index: index_of(&vss),
            vss,
            vips,
            notices,
        }
    }

    /// A new configuration: virtual and real servers that remain (same
    /// identity) keep their live state; new ones start as at startup.
    pub fn reload(&mut self, config: &Config) {
        let mut notices = VecDeque::new();
        let old_vs: HashMap<VsId, &VsState> = self.vss.iter().map(|v| (v.id.clone(), v)).collect();
        let old_rs: HashMap<&RsId, &RsState> = self
            .vss
            .iter()
            .flat_map(|v| v.real_servers.iter().map(|rs| (&rs.id, rs)))
            .collect();
        let mut vss: Vec<VsState> = config
            .virtual_servers
            .iter()
            .map(|vs| vs_state(vs, config, &mut notices))
            .collect();
        for vs in &mut vss {
            for rs in &mut vs.real_servers {
                if let Some(old) = old_rs.get(&rs.id) {
                    rs.alive = old.alive;
                    // A weight a dynamic checker set survives; a changed
                    // configured weight replaces the old configured one.
                    if old.weight != old.configured_weight {
                        rs.weight = old.weight;
                    }
                }
            }
            if let Some(old) = old_vs.get(&vs.id) {
                vs.quorum_up = old.quorum_up;
                vs.evaluate_quorum(&mut notices);
            } else {
                vs.evaluate_initial_quorum(&mut notices);
            }
        }
        self.index = index_of(&vss);
        self.vss = vss;
        self.notices.extend(notices);
    }

    /// The table the kernel should hold now.
    pub fn desired(&self) -> Table {
        let mut table = Table::new();
        for vs in &self.vss {
            self.insert_services(vs, &mut table);
        }
        table
    }

    /// The desired services of one virtual server, and every service key
    /// it can produce (suspended or not): what a change confined to this
    /// virtual server needs to reconcile.
    pub fn desired_of(&self, id: &VsId) -> (Table, BTreeSet<ServiceKey>) {
        let mut table = Table::new();
        let mut keys = BTreeSet::new();
        for vs in self.vss.iter().filter(|vs| vs.id == *id) {
            self.insert_services(vs, &mut table);
            keys.extend(vs.slots.iter().map(|s| s.key));
        }
        (table, keys)
    }

    fn insert_services(&self, vs: &VsState, table: &mut Table) {
        for slot in &vs.slots {
            if vs.ha_suspend && slot.vip.is_some_and(|a| !self.vips.contains(&a)) {
                continue;
            }
            table.insert(
                slot.key,
                TableService {
                    params: vs.params(slot.key.family()),
                    dests: pool(vs, slot),
                },
            );
        }
    }

    /// Every service key the configuration can produce (suspended or not),
    /// i.e. the services this daemon manages.
    pub fn configured_services(&self) -> BTreeSet<ServiceKey> {
        self.vss
            .iter()
            .flat_map(|vs| vs.slots.iter().map(|s| s.key))
            .collect()
    }

    fn find_rs(&self, rs: &RsId) -> Option<(usize, usize)> {
        self.index.get(rs).copied()
    }

    /// A checker verdict for a whole real server.
    pub fn set_alive(&mut self, rs: &RsId, alive: bool) -> Update {
        let Some((v, r)) = self.find_rs(rs) else {
            return Update::Unknown;
        };
        let vs = &mut self.vss[v];
        let server = &mut vs.real_servers[r];
        if server.alive == alive {
            return Update::Unchanged;
        }
        server.alive = alive;
        let inhibit = server.inhibit;
        let id = server.id.clone();
        // While the sorry server stands in, real servers are not in the
        // pool, so their comings and goings change nothing there yet.
        if !vs.sorry_active() {
            self.notices.push_back(if alive {
                Notice::RsUp { rs: id, inhibit }
            } else {
                Notice::RsDown { rs: id, inhibit }
            });
        }
        vs.evaluate_quorum(&mut self.notices);
        Update::Changed
    }

    /// A dynamic weight (MISC_CHECK `misc_dynamic`, FILE_CHECK).
    pub fn set_weight(&mut self, rs: &RsId, weight: u32) -> Update {
        let Some((v, r)) = self.find_rs(rs) else {
            return Update::Unknown;
        };
        let vs = &mut self.vss[v];
        let server = &mut vs.real_servers[r];
        if server.weight == weight {
            return Update::Unchanged;
        }
        self.notices.push_back(Notice::WeightChanged {
            rs: server.id.clone(),
            from: server.weight,
            to: weight,
            alive: server.alive,
        });
        server.weight = weight;
        vs.evaluate_quorum(&mut self.notices);
        Update::Changed
    }

    /// Whether the real server is alive, `None` if unknown.
    pub fn is_alive(&self, rs: &RsId) -> Option<bool> {
        self.vss
            .iter()
            .filter(|vs| vs.id == rs.vs)
            .flat_map(|vs| vs.real_servers.iter())
            .find(|r| r.id == *rs)
            .map(|r| r.alive)
    }

    /// A virtual address appeared on or left this director (VRRP master
    /// state). Only `ha_suspend` virtual servers care.
    pub fn set_vip(&mut self, addr: IpAddr, present: bool) {
        let changed = if present {
            self.vips.insert(addr)
        } else {
            self.vips.remove(&addr)
        };
        if !changed {
            return;
        }
        for vs in &self.vss {
            if vs.ha_suspend && vs.slots.iter().any(|s| s.vip == Some(addr)) {
                self.notices.push_back(Notice::Suspend {
                    vs: vs.id.clone(),
                    addr,
                    active: present,
                });
            }
        }
    }

    /// True while every service of this ha_suspend virtual server is
    /// suspended (its checkers can pause too).
    pub fn is_suspended(&self, vs: &VsId) -> bool {
        self.vss.iter().any(|v| {
            v.id == *vs
                && v.ha_suspend
                && !v.slots.is_empty()
                && v.slots
                    .iter()
                    .all(|s| s.vip.is_some_and(|a| !self.vips.contains(&a)))
        })
    }

    /// Quorum state of a virtual server.
    pub fn quorum_up(&self, vs: &VsId) -> Option<bool> {
        self.vss.iter().find(|v| v.id == *vs).map(|v| v.quorum_up)
    }

    /// At shutdown, `omega` virtual servers whose quorum is up run their
    /// `quorum_down` script.
    pub fn shutdown_scripts(&self) -> Vec<Notice> {
        self.vss
            .iter()
            .filter(|vs| vs.omega && vs.quorum_up)
            .filter_map(|vs| {
                vs.quorum_down_script
                    .as_ref()
                    .map(|script| Notice::QuorumScript {
                        vs: vs.id.clone(),
                        up: false,
                        script: script.clone(),
                    })
            })
            .collect()
    }

    /// Real servers currently in the pool of a service, for shutdown logs.
    pub fn pool_members(&self) -> Vec<RsId> {
        self.vss
            .iter()
            .filter(|vs| !vs.sorry_active())
            .flat_map(|vs| vs.real_servers.iter().filter(|rs| rs.alive || rs.inhibit))
            .map(|rs| rs.id.clone())
            .collect()
    }

    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }
}

/// The port of a destination in one service. The configuration already
/// gave DR and TUN real servers of an address or fwmark service the port
/// keepalived uses; this keeps that true for each service of a
/// virtual_server_group too: DR and TUN cannot change ports, so their
/// destinations take the service's port (0 for fwmark), as ipvsadm does.
fn dest_port(slot: &ServiceSlot, forward: ForwardMethod, port: Option<u16>) -> u16 {
    match (forward, slot.key) {
        (ForwardMethod::Masquerade | ForwardMethod::Local, _) => port.unwrap_or(slot.default_port),
        (_, ServiceKey::Fwmark { .. }) => 0,
        (
            _,
            ServiceKey::Addr {
                port: service_port, ..
            },
        ) => service_port,
    }
}

/// The destinations of one service of a virtual server.
fn pool(vs: &VsState, slot: &ServiceSlot) -> BTreeMap<DestKey, DestParams> {
    let mut dests = BTreeMap::new();
    let sorry = vs.sorry.as_ref().map(|s| {
        let key = DestKey {
            addr: s.addr,
            port: dest_port(slot, s.template.forward, s.port),
        };
        (key, s)
    });
    let put_real_servers = |dests: &mut BTreeMap<DestKey, DestParams>, active: bool| {
        for rs in &vs.real_servers {
            let weight = if active && rs.alive {
                rs.weight
            } else if rs.inhibit {
                0
            } else {
                continue;
            };
            let key = DestKey {
                addr: rs.id.addr,
                port: dest_port(slot, rs.template.forward, rs.port),
            };
            dests.insert(
                key,
                DestParams {
                    weight,
                    ..rs.template
                },
            );
        }
    };
    if vs.sorry_active() {
        // Real servers first so the sorry server wins a shared address.
        put_real_servers(&mut dests, false);
        if let Some((key, s)) = sorry {
            dests.insert(
                key,
                DestParams {
                    weight: 1,
                    ..s.template
                },
            );
        }
    } else {
        if let Some((key, s)) = sorry.filter(|(_, s)| s.inhibit) {
            dests.insert(
                key,
                DestParams {
                    weight: 0,
                    ..s.template
                },
            );
        }
        put_real_servers(&mut dests, true);
    }
    dests
}
