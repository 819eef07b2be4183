//! The typed configuration: plain data, no I/O. After loading, every value
//! keepalived defaults is filled in (with a `<default>` span), so consumers
//! never re-implement keepalived's defaults.

use super::diag::Spanned;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub global: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub track_files: Vec<TrackFile>,
    pub sync_groups: Vec<SyncGroup>,
    pub instances: Vec<VrrpInstance>,
    pub vs_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// The top-level `SSL` block (SSL_GET's client side), when given.
    pub ssl: Option<SslOptions>,
}

/// `SSL { password; ca; certificate; key }`: files for SSL_GET's TLS
/// client. As in keepalived, `ca` does not make the server's certificate
/// verified; `certificate` and `key` are the client certificate chain and
/// its key (PEM), presented when a server asks for one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SslOptions {
    pub password: Option<Spanned<String>>,
    pub ca: Option<Spanned<String>>,
    pub certificate: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// A script line (`"cmd args" [user [group]]`), split into argv at run time.
#[derive(Clone, Debug, PartialEq, Default, Hash)]
pub struct Script {
    pub command: Spanned<String>,
    pub run_as: Option<RunAs>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct RunAs {
    pub user: String,
    pub group: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SmtpServer {
    /// An address or a host name, as written.
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LvsSyncDaemon {
    pub interface: String,
    pub instance: Option<String>,
    pub sync_id: Option<u8>,
    pub maxlen: Option<u16>,
    pub port: u16,
    pub ttl: u8,
    pub group: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GlobalDefs {
    pub notification_email: Vec<Spanned<String>>,
    pub notification_email_from: Option<Spanned<String>>,
    pub smtp_server: Option<Spanned<SmtpServer>>,
    pub smtp_helo_name: Option<Spanned<String>>,
    pub smtp_connect_timeout: Spanned<Duration>,
    pub smtp_alert: Spanned<bool>,
    pub smtp_alert_vrrp: Option<Spanned<bool>>,
    pub smtp_alert_checker: Option<Spanned<bool>>,
    pub no_email_faults: Spanned<bool>,
    pub checker_log_all_failures: Spanned<bool>,
    pub router_id: Spanned<String>,
    /// `nftables [TABLE]`: the nftables table (inet family) that drops
    /// traffic to the VIPs of `no_accept` Masters.
    pub nftables_table: Spanned<String>,
    pub default_interface: Spanned<String>,
    pub vrrp_mcast_group4: Spanned<Ipv4Addr>,
    pub vrrp_mcast_group6: Spanned<Ipv6Addr>,
    pub vrrp_version: Spanned<u8>,
    pub vrrp_strict: Spanned<bool>,
    pub vrrp_garp_master_delay: Spanned<Duration>,
    pub vrrp_garp_master_repeat: Spanned<u32>,
    pub vrrp_garp_master_refresh: Spanned<Duration>,
    pub vrrp_garp_master_refresh_repeat: Spanned<u32>,
    pub vrrp_garp_lower_prio_delay: Spanned<Duration>,
    pub vrrp_garp_lower_prio_repeat: Spanned<u32>,
    /// Default of the instances' `down_timer_adverts` (1..100, else 3).
    pub vrrp_down_timer_adverts: Spanned<u8>,
    pub vrrp_garp_interval: Spanned<Duration>,
    pub vrrp_gna_interval: Spanned<Duration>,
    pub vrrp_min_garp: Spanned<bool>,
    pub vrrp_lower_prio_no_advert: Spanned<bool>,
    pub vrrp_higher_prio_send_advert: Spanned<bool>,
    pub vrrp_check_unicast_src: Spanned<bool>,
    pub vrrp_skip_check_adv_addr: Spanned<bool>,
    pub vrrp_startup_delay: Spanned<Duration>,
    pub enable_script_security: Spanned<bool>,
    pub script_user: Option<Spanned<RunAs>>,
    pub startup_script: Option<Script>,
    pub startup_script_timeout: Spanned<Duration>,
    pub shutdown_script: Option<Script>,
    pub shutdown_script_timeout: Spanned<Duration>,
    pub dynamic_interfaces: Spanned<bool>,
    pub lvs_sync_daemon: Option<Spanned<LvsSyncDaemon>>,
    pub lvs_timeouts: Spanned<LvsTimeouts>,
    pub lvs_flush: Spanned<bool>,
    pub lvs_flush_on_stop: Spanned<bool>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        fn d<T>(v: T) -> Spanned<T> {
            Spanned::default_value(v)
        }
        GlobalDefs {
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: d(Duration::from_secs(30)),
            smtp_alert: d(false),
            smtp_alert_vrrp: None,
            smtp_alert_checker: None,
            no_email_faults: d(false),
            checker_log_all_failures: d(false),
            router_id: d(String::new()),
            nftables_table: d("keepalived".into()),
            default_interface: d("eth0".to_string()),
            vrrp_mcast_group4: d(Ipv4Addr::new(224, 0, 0, 18)),
            vrrp_mcast_group6: d(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
            vrrp_version: d(2),
            vrrp_strict: d(false),
            vrrp_garp_master_delay: d(Duration::from_secs(5)),
            vrrp_garp_master_repeat: d(5),
            vrrp_garp_master_refresh: d(Duration::ZERO),
            vrrp_garp_master_refresh_repeat: d(1),
            vrrp_garp_lower_prio_delay: d(Duration::from_secs(5)),
            vrrp_garp_lower_prio_repeat: d(5),
            vrrp_down_timer_adverts: d(3),
            vrrp_garp_interval: d(Duration::ZERO),
            vrrp_gna_interval: d(Duration::ZERO),
            vrrp_min_garp: d(false),
            vrrp_lower_prio_no_advert: d(false),
            vrrp_higher_prio_send_advert: d(false),
            vrrp_check_unicast_src: d(false),
            vrrp_skip_check_adv_addr: d(false),
            vrrp_startup_delay: d(Duration::ZERO),
            enable_script_security: d(false),
            script_user: None,
            startup_script: None,
            startup_script_timeout: d(Duration::from_secs(10)),
            shutdown_script: None,
            shutdown_script_timeout: d(Duration::from_secs(10)),
            dynamic_interfaces: d(false),
            lvs_sync_daemon: None,
            lvs_timeouts: d(LvsTimeouts::default()),
            lvs_flush: d(false),
            lvs_flush_on_stop: d(false),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VrrpScript {
    pub name: Spanned<String>,
    pub script: Script,
    pub interval: Spanned<Duration>,
    /// keepalived: defaults to the interval.
    pub timeout: Spanned<Duration>,
    pub weight: Spanned<i32>,
    pub weight_reverse: Spanned<bool>,
    pub rise: Spanned<u32>,
    pub fall: Spanned<u32>,
    pub init_fail: Spanned<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrackFile {
    pub name: Spanned<String>,
    pub file: Spanned<String>,
    pub weight: Spanned<i32>,
    pub weight_reverse: Spanned<bool>,
    /// `init_file [VALUE] [overwrite]`.
    pub init_file: Option<Spanned<(i64, bool)>>,
}

/// A reference to a tracker from an instance or a sync group, with an
/// optional weight that overrides the tracker's own.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackRef {
    pub name: Spanned<String>,
    pub weight: Option<Spanned<i32>>,
    pub reverse: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Notify {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    pub deleted: Option<Script>,
    pub master_rx_lower_pri: Option<Script>,
    /// The generic `notify` script: `TYPE NAME STATE PRIORITY` appended.
    pub generic: Option<Script>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncGroup {
    pub name: Spanned<String>,
    pub members: Vec<Spanned<String>>,
    pub track_interface: Vec<TrackRef>,
    pub track_script: Vec<TrackRef>,
    pub track_file: Vec<TrackRef>,
    pub notify: Notify,
    pub smtp_alert: Spanned<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// Simple text password (RFC 2338 type 1).
    Pass,
    /// IPsec AH with HMAC-MD5-96.
    Ah,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Authentication {
    pub auth_type: Spanned<AuthType>,
    /// At most 8 bytes (longer passwords are truncated, as keepalived does).
    pub auth_pass: Spanned<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressScope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Broadcast {
    Address(Ipv4Addr),
    /// `brd +`: computed from the prefix.
    Computed,
    /// `brd -`: none.
    None,
}

/// One line of `virtual_ipaddress` / `virtual_ipaddress_excluded`.
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualAddress {
    pub addr: Spanned<IpAddr>,
    pub prefix_len: u8,
    pub broadcast: Option<Broadcast>,
    pub dev: Option<Spanned<String>>,
    pub scope: Option<AddressScope>,
    pub label: Option<Spanned<String>>,
    pub peer: Option<IpAddr>,
    pub use_vmac: bool,
    pub no_track: bool,
    pub home: bool,
    pub nodad: bool,
    pub mngtmpaddr: bool,
    pub noprefixroute: bool,
    pub autojoin: bool,
    pub preferred_lft: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteType {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One line of `virtual_routes` (the common `ip route` subset).
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualRoute {
    pub route_type: RouteType,
    pub dest: Spanned<IpAddr>,
    pub prefix_len: u8,
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub scope: Option<AddressScope>,
    pub table: Option<u32>,
    pub metric: Option<u32>,
    pub onlink: bool,
    pub no_track: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UnicastPeer {
    pub addr: Spanned<IpAddr>,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UseVmac {
    pub name: Option<String>,
    pub mac: Option<[u8; 6]>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VrrpInstance {
    pub name: Spanned<String>,
    pub state: Spanned<InitialState>,
    pub interface: Option<Spanned<String>>,
    pub virtual_router_id: Spanned<u8>,
    pub priority: Spanned<u8>,
    pub advert_int: Spanned<Duration>,
    /// Effective version: the instance's, else global `vrrp_version`; 3 for IPv6.
    pub version: Spanned<u8>,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualAddress>,
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    pub virtual_routes: Vec<VirtualRoute>,
    pub unicast_src_ip: Option<Spanned<IpAddr>>,
    pub unicast_peer: Vec<UnicastPeer>,
    pub unicast_ttl: Spanned<u8>,
    pub mcast_src_ip: Option<Spanned<IpAddr>>,
    pub mcast_dst_ip: Option<Spanned<IpAddr>>,
    pub track_interface: Vec<TrackRef>,
    pub track_script: Vec<TrackRef>,
    pub track_file: Vec<TrackRef>,
    pub dont_track_primary: Spanned<bool>,
    pub track_src_ip: Spanned<bool>,
    pub notify: Notify,
    pub smtp_alert: Spanned<bool>,
    pub nopreempt: Spanned<bool>,
    pub preempt_delay: Spanned<Duration>,
    pub garp_master_delay: Spanned<Duration>,
    pub garp_master_repeat: Spanned<u32>,
    pub garp_master_refresh: Spanned<Duration>,
    pub garp_master_refresh_repeat: Spanned<u32>,
    pub garp_lower_prio_delay: Spanned<Duration>,
    pub garp_lower_prio_repeat: Spanned<u32>,
    /// Effective: the advert intervals a Backup waits before taking over,
    /// the instance's, else global `vrrp_down_timer_adverts`, else the
    /// RFCs' 3.
    pub down_timer_adverts: Spanned<u8>,
    pub use_vmac: Option<Spanned<UseVmac>>,
    pub vmac_xmit_base: Spanned<bool>,
    /// Effective: `accept` unless strict mode (then `no_accept` unless owner).
    pub accept: Spanned<bool>,
    /// Effective strict mode: `strict_mode` or global `vrrp_strict`.
    pub strict_mode: Spanned<bool>,
    pub lower_prio_no_advert: Spanned<bool>,
    pub higher_prio_send_advert: Spanned<bool>,
    pub skip_check_adv_addr: Spanned<bool>,
    pub check_unicast_src: Spanned<bool>,
    pub promote_secondaries: Spanned<bool>,
}

impl VrrpInstance {
    /// The address family of the instance, from its first VIP (IPv4 if none).
    pub fn is_ipv6(&self) -> bool {
        self.virtual_ipaddress
            .first()
            .is_some_and(|a| a.addr.value.is_ipv6())
    }
}

/// Bound on the addresses (IPVS services) one `virtual_server_group`
/// entry may stand for (`10.0.0.0/16` would be 65536 services).
pub const MAX_GROUP_ENTRY_ADDRESSES: u32 = 4096;

/// The addresses a `virtual_server_group` address entry stands for, as
/// integers: `(first, last, is_ipv6)`. A prefix covers its whole network, a
/// range `addr..=range_end`. `None` for a range that ends before it starts
/// or mixes families.
pub fn group_entry_bounds(
    addr: IpAddr,
    range_end: Option<IpAddr>,
    prefix_len: Option<u8>,
) -> Option<(u128, u128, bool)> {
    match (addr, range_end, prefix_len) {
        (IpAddr::V4(a), Some(IpAddr::V4(end)), _) => {
            Some((u128::from(u32::from(a)), u128::from(u32::from(end)), false))
        }
        (IpAddr::V6(a), Some(IpAddr::V6(end)), _) => Some((u128::from(a), u128::from(end), true)),
        (_, Some(_), _) => None,
        (IpAddr::V4(a), None, len) => {
            let host_bits = 32 - u32::from(len.unwrap_or(32).min(32));
            let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
            let network = u32::from(a) & mask;
            Some((u128::from(network), u128::from(network | !mask), false))
        }
        (IpAddr::V6(a), None, len) => {
            let host_bits = 128 - u32::from(len.unwrap_or(128).min(128));
            let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
            let network = u128::from(a) & mask;
            Some((network, network | !mask, true))
        }
    }
    .filter(|(first, last, _)| first <= last)
}

#[derive(Clone, Debug, PartialEq)]
pub enum VsGroupEntry {
    /// `IP [PORT]`, `IP/nn`, or a range `IP-LAST` / `IP-IP` from `addr` to
    /// `range_end` inclusive (same family, never before `addr`).
    Address {
        addr: Spanned<IpAddr>,
        range_end: Option<IpAddr>,
        prefix_len: Option<u8>,
        port: u16,
    },
    Fwmark {
        mark: Spanned<u32>,
        family: Option<AddressFamily>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressFamily {
    Inet,
    Inet6,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VirtualServerGroup {
    pub name: Spanned<String>,
    pub entries: Vec<VsGroupEntry>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum VsKey {
    Address {
        addr: Spanned<IpAddr>,
        port: Spanned<u16>,
    },
    Fwmark(Spanned<u32>),
    Group(Spanned<String>),
}

impl VsKey {
    /// `virtual_server 10.0.0.1:80`, `virtual_server [::1]:80`, ...
    pub fn label(&self) -> String {
        match self {
            VsKey::Address { addr, port } => match addr.value {
                IpAddr::V6(a) => format!("virtual_server [{a}]:{}", port.value),
                a => format!("virtual_server {a}:{}", port.value),
            },
            VsKey::Fwmark(m) => format!("virtual_server fwmark {}", m.value),
            VsKey::Group(g) => format!("virtual_server group {}", g.value),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Mh,
    Twos,
}

impl Scheduler {
    pub const ALL: [(&'static str, Scheduler); 14] = [
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("lblc", Scheduler::Lblc),
        ("lblcr", Scheduler::Lblcr),
        ("dh", Scheduler::Dh),
        ("sh", Scheduler::Sh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fo", Scheduler::Fo),
        ("ovf", Scheduler::Ovf),
        ("mh", Scheduler::Mh),
        ("twos", Scheduler::Twos),
    ];

    /// The kernel's scheduler name (IPVS_SVC_ATTR_SCHED_NAME).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("wlc", |(n, _)| n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelType {
    Ipip,
    Gue { port: u16 },
    Gre,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelChecksum {
    NoCsum,
    Csum,
    RemCsum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardMethod {
    Nat,
    Dr,
    Tun {
        tunnel: TunnelType,
        checksum: Option<TunnelChecksum>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl ForwardMethod {
    /// keepalived's keyword: NAT, DR or TUN.
    pub fn name(self) -> &'static str {
        match self {
            ForwardMethod::Nat => "NAT",
            ForwardMethod::Dr => "DR",
            ForwardMethod::Tun { .. } => "TUN",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SorryServer {
    pub addr: Spanned<IpAddr>,
    pub port: Option<u16>,
}

/// Service flags keepalived exposes (`ops`, `sh-port`, ...).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ServiceFlags {
    pub ops: bool,
    pub sh_port: bool,
    pub sh_fallback: bool,
    pub mh_port: bool,
    pub mh_fallback: bool,
    /// `flag-1`, `flag-2`, `flag-3`: IP_VS_SVC_F_SCHED1..3 (ipvsadm's
    /// `-b flag-N`), set for any scheduler; sh-fallback/mh-fallback are
    /// flag-1 and sh-port/mh-port flag-2 in the kernel.
    pub flag_1: bool,
    pub flag_2: bool,
    pub flag_3: bool,
    pub hashed: bool,
}

/// Check timing a virtual or real server hands down to its checkers. `None`
/// means inherit.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InheritedTiming {
    pub delay_loop: Option<Spanned<Duration>>,
    pub connect_timeout: Option<Spanned<Duration>>,
    pub retry: Option<Spanned<u32>>,
    pub delay_before_retry: Option<Spanned<Duration>>,
    pub warmup: Option<Spanned<Duration>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VirtualServer {
    pub key: VsKey,
    pub ip_family: Option<AddressFamily>,
    pub delay_loop: Spanned<Duration>,
    pub lb_algo: Spanned<Scheduler>,
    pub lb_kind: Spanned<ForwardMethod>,
    pub persistence_timeout: Option<Spanned<u32>>,
    pub persistence_granularity: Option<Spanned<IpAddr>>,
    pub persistence_engine: Option<Spanned<String>>,
    pub protocol: Spanned<Protocol>,
    pub flags: ServiceFlags,
    pub ha_suspend: Spanned<bool>,
    pub virtualhost: Option<Spanned<String>>,
    pub alpha: Spanned<bool>,
    pub omega: Spanned<bool>,
    pub quorum: Spanned<u32>,
    pub hysteresis: Spanned<u32>,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    pub sorry_server: Option<SorryServer>,
    pub sorry_server_inhibit: Spanned<bool>,
    pub sorry_server_lvs_method: Option<Spanned<ForwardMethod>>,
    pub inhibit_on_failure: Spanned<bool>,
    pub smtp_alert: Spanned<bool>,
    pub timing: InheritedTiming,
    pub real_servers: Vec<RealServer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RealServer {
    pub addr: Spanned<IpAddr>,
    pub port: Option<Spanned<u16>>,
    pub weight: Spanned<u32>,
    pub lvs_method: Option<Spanned<ForwardMethod>>,
    pub uthreshold: Option<Spanned<u32>>,
    pub lthreshold: Option<Spanned<u32>>,
    /// Boxed: rare, and a Script is large.
    pub notify_up: Option<Box<Script>>,
    pub notify_down: Option<Box<Script>>,
    /// Effective: the real server's own setting, else the virtual server's.
    pub inhibit_on_failure: Spanned<bool>,
    pub alpha: Spanned<bool>,
    pub virtualhost: Option<Spanned<String>>,
    pub smtp_alert: Spanned<bool>,
    pub timing: InheritedTiming,
    pub checkers: Vec<Checker>,
}

/// Concrete timing of one checker: checker, else real server, else virtual
/// server, else keepalived's default for the checker type.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct CheckTiming {
    pub delay_loop: Spanned<Duration>,
    pub connect_timeout: Spanned<Duration>,
    pub retry: Spanned<u32>,
    pub delay_before_retry: Spanned<Duration>,
    /// Upper bound of the random initial delay.
    pub warmup: Spanned<Duration>,
}

#[derive(Clone, Debug, PartialEq, Default, Hash)]
pub struct CheckTarget {
    pub connect_ip: Option<Spanned<IpAddr>>,
    pub connect_port: Option<Spanned<u16>>,
    pub bindto: Option<Spanned<IpAddr>>,
    pub bind_if: Option<Spanned<String>>,
    pub bind_port: Option<Spanned<u16>>,
    pub fwmark: Option<Spanned<u32>>,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Checker {
    pub kind: CheckerKind,
    pub target: CheckTarget,
    pub timing: CheckTiming,
    pub alpha: Option<Spanned<bool>>,
    pub log_all_failures: Spanned<bool>,
    pub span: super::diag::Span,
}

#[derive(Clone, Debug, PartialEq, Hash)]
/// The payloads are boxed: most real servers have a TCP_CHECK, and a
/// thousand checkers should not each carry room for an HTTP_GET.
pub enum CheckerKind {
    Tcp,
    Http(Box<HttpCheck>),
    Ssl(Box<HttpCheck>),
    Misc(Box<MiscCheck>),
    Smtp(Box<SmtpCheck>),
    Dns(Box<DnsCheck>),
    Udp(Box<UdpCheck>),
    Ping,
    File(Box<FileCheck>),
}

impl CheckerKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http(_) => "HTTP_GET",
            CheckerKind::Ssl(_) => "SSL_GET",
            CheckerKind::Misc(_) => "MISC_CHECK",
            CheckerKind::Smtp(_) => "SMTP_CHECK",
            CheckerKind::Dns(_) => "DNS_CHECK",
            CheckerKind::Udp(_) => "UDP_CHECK",
            CheckerKind::Ping => "PING_CHECK",
            CheckerKind::File(_) => "FILE_CHECK",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpProtocol {
    /// HTTP/1.0, keepalived's default.
    V1_0,
    /// HTTP/1.0 with `Connection: close`.
    V1_0C,
    V1_1,
}

/// An inclusive status code range; `status_code 200` is `200..=200`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusRange {
    pub first: u16,
    pub last: u16,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Url {
    pub path: Spanned<String>,
    pub digest: Option<Spanned<[u8; 16]>>,
    /// Empty means keepalived's default, 200-299.
    pub status_code: Vec<Spanned<StatusRange>>,
    pub virtualhost: Option<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct HttpCheck {
    pub urls: Vec<Url>,
    pub virtualhost: Option<Spanned<String>>,
    pub http_protocol: Spanned<HttpProtocol>,
    pub fast_recovery: Spanned<bool>,
    pub enable_sni: Spanned<bool>,
    pub sni_name: Option<Spanned<String>>,
    pub tls_compliant: Spanned<bool>,
}

impl HttpCheck {
    /// keepalived's virtualhost for `url`: the url's, else the checker's,
    /// the real server's, the virtual server's (the Host header, and the
    /// SNI name with `enable_sni`).
    pub fn virtualhost_for<'a>(
        &'a self,
        url: &'a Url,
        rs: &'a RealServer,
        vs: &'a VirtualServer,
    ) -> Option<&'a str> {
        url.virtualhost
            .as_ref()
            .or(self.virtualhost.as_ref())
            .or(rs.virtualhost.as_ref())
            .or(vs.virtualhost.as_ref())
            .map(|v| v.value.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct MiscCheck {
    pub path: Script,
    /// keepalived: defaults to the delay loop.
    pub timeout: Spanned<Duration>,
    pub dynamic: Spanned<bool>,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct SmtpCheck {
    pub helo_name: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsType {
    A,
    Ns,
    Cname,
    Soa,
    Mx,
    Txt,
    Aaaa,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct DnsCheck {
    pub query_type: Spanned<DnsType>,
    pub name: Spanned<String>,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct UdpCheck {
    pub payload: Option<Spanned<Vec<u8>>>,
    /// `require_reply` with optional expected bytes.
    pub require_reply: Option<Spanned<Option<Vec<u8>>>>,
    pub min_reply_length: Spanned<u32>,
    pub max_reply_length: Spanned<u32>,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct FileCheck {
    pub track_file: Spanned<String>,
    pub weight: Option<Spanned<i32>>,
    pub weight_reverse: Spanned<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_real_server_model_stays_small() {
        // The model is kept for reloads, one Checker and RealServer per
        // real server: 800 + 792 B before the checker payloads and notify
        // scripts were boxed (5000 TCP_CHECK servers: 14.2 -> 11.2 MB RSS).
        let sizes = (
            std::mem::size_of::<Checker>(),
            std::mem::size_of::<RealServer>(),
        );
        assert!(sizes.0 <= 560 && sizes.1 <= 616, "{sizes:?}");
    }
}
