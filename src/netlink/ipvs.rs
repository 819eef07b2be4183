/*! The IPVS generic netlink family ("IPVS", `linux/ip_vs.h`).

Every request is a generic netlink message whose attributes nest a service
(`IPVS_CMD_ATTR_SERVICE`), a destination (`IPVS_CMD_ATTR_DEST`) or a sync
daemon (`IPVS_CMD_ATTR_DAEMON`). ipvsadm (libnl) marks the nests of its
requests `NLA_F_NESTED`, and so do we; the kernel's replies do not.

Byte orders, from the uapi header and the kernel's attribute policy
(`net/netfilter/ipvs/ip_vs_ctl.c`), are the trap here:

| attribute                                   | wire form                                  |
|---------------------------------------------|--------------------------------------------|
| `IPVS_SVC_ATTR_ADDR`, `IPVS_DEST_ATTR_ADDR` | 16-byte `union nf_inet_addr` (IPv4 in the first 4, rest 0) |
| `IPVS_SVC_ATTR_PORT`, `IPVS_DEST_ATTR_PORT`, `IPVS_DEST_ATTR_TUN_PORT` | `__be16` |
| `IPVS_SVC_ATTR_NETMASK`                     | raw `__be32`: an IPv4 mask in network order; for IPv6 the prefix length as a host-order integer (the kernel checks `1..=128` on the raw value) |
| `IPVS_SVC_ATTR_FLAGS`                       | `struct ip_vs_flags { __u32 flags; __u32 mask; }`, host order |
| `IPVS_DAEMON_ATTR_MCAST_GROUP`              | `__be32` IPv4 address                      |
| `IPVS_DAEMON_ATTR_MCAST_PORT`               | host-order u16 (`nla_get_u16`)             |
| everything else (`AF`, `PROTOCOL`, `FWMARK`, `TIMEOUT`, `WEIGHT`, thresholds, stats) | host order |

The kernel's dump replies carry `IPVS_CMD_NEW_SERVICE` / `IPVS_CMD_NEW_DEST`
messages; `IPVS_CMD_GET_INFO` is answered with `IPVS_CMD_SET_INFO`.

[`Request`] encodes every command (sans-IO, testable byte for byte against
ipvsadm's requests); [`Service::parse`], [`Dest::parse`] and [`Info::parse`]
decode the kernel's replies and never panic; [`IpvsClient`] sends requests
on a [`NetlinkSocket`] and waits for the kernel's answers.
*/

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::genl;
use super::socket::NetlinkSocket;
use super::wire::{Attr, Attrs, Message, MessageBuilder, WireError, NLA_F_NESTED, NLM_F_ACK};
use super::Error;

/// `IPVS_GENL_NAME`.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 0x1;

pub const IPVS_CMD_NEW_SERVICE: u8 = 1;
pub const IPVS_CMD_SET_SERVICE: u8 = 2;
pub const IPVS_CMD_DEL_SERVICE: u8 = 3;
pub const IPVS_CMD_GET_SERVICE: u8 = 4;
pub const IPVS_CMD_NEW_DEST: u8 = 5;
pub const IPVS_CMD_SET_DEST: u8 = 6;
pub const IPVS_CMD_DEL_DEST: u8 = 7;
pub const IPVS_CMD_GET_DEST: u8 = 8;
pub const IPVS_CMD_NEW_DAEMON: u8 = 9;
pub const IPVS_CMD_DEL_DAEMON: u8 = 10;
pub const IPVS_CMD_GET_DAEMON: u8 = 11;
pub const IPVS_CMD_SET_CONFIG: u8 = 12;
pub const IPVS_CMD_GET_CONFIG: u8 = 13;
pub const IPVS_CMD_SET_INFO: u8 = 14;
pub const IPVS_CMD_GET_INFO: u8 = 15;
pub const IPVS_CMD_ZERO: u8 = 16;
pub const IPVS_CMD_FLUSH: u8 = 17;

pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
pub const IPVS_CMD_ATTR_DEST: u16 = 2;
pub const IPVS_CMD_ATTR_DAEMON: u16 = 3;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
pub const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;

pub const IPVS_SVC_ATTR_AF: u16 = 1;
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
pub const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;

pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;
pub const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
pub const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
pub const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;

pub const IPVS_DAEMON_ATTR_STATE: u16 = 1;
pub const IPVS_DAEMON_ATTR_MCAST_IFN: u16 = 2;
pub const IPVS_DAEMON_ATTR_SYNC_ID: u16 = 3;
pub const IPVS_DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
pub const IPVS_DAEMON_ATTR_MCAST_GROUP: u16 = 5;
pub const IPVS_DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
pub const IPVS_DAEMON_ATTR_MCAST_PORT: u16 = 7;
pub const IPVS_DAEMON_ATTR_MCAST_TTL: u16 = 8;

pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
pub const IPVS_STATS_ATTR_CPS: u16 = 6;
pub const IPVS_STATS_ATTR_INPPS: u16 = 7;
pub const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
pub const IPVS_STATS_ATTR_INBPS: u16 = 9;
pub const IPVS_STATS_ATTR_OUTBPS: u16 = 10;

pub const IPVS_INFO_ATTR_VERSION: u16 = 1;
pub const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;
pub const IP_VS_SVC_F_HASHED: u32 = 0x0002;
pub const IP_VS_SVC_F_ONEPACKET: u32 = 0x0004;
pub const IP_VS_SVC_F_SCHED1: u32 = 0x0008;
pub const IP_VS_SVC_F_SCHED2: u32 = 0x0010;
pub const IP_VS_SVC_F_SCHED3: u32 = 0x0020;
/// `IP_VS_SVC_F_SCHED_SH_FALLBACK` (also mh-fallback).
pub const IP_VS_SVC_F_SCHED_SH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
/// `IP_VS_SVC_F_SCHED_SH_PORT` (also mh-port).
pub const IP_VS_SVC_F_SCHED_SH_PORT: u32 = IP_VS_SVC_F_SCHED2;

pub const IP_VS_CONN_F_FWD_MASK: u32 = 0x0007;
pub const IP_VS_CONN_F_MASQ: u32 = 0x0000;
pub const IP_VS_CONN_F_LOCALNODE: u32 = 0x0001;
pub const IP_VS_CONN_F_TUNNEL: u32 = 0x0002;
pub const IP_VS_CONN_F_DROUTE: u32 = 0x0003;
pub const IP_VS_CONN_F_BYPASS: u32 = 0x0004;

pub const IP_VS_CONN_F_TUNNEL_TYPE_IPIP: u8 = 0;
pub const IP_VS_CONN_F_TUNNEL_TYPE_GUE: u8 = 1;
pub const IP_VS_CONN_F_TUNNEL_TYPE_GRE: u8 = 2;

pub const IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM: u16 = 0;
pub const IP_VS_TUNNEL_ENCAP_FLAG_CSUM: u16 = 1 << 0;
pub const IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM: u16 = 1 << 1;

pub const IP_VS_STATE_MASTER: u32 = 0x0001;
pub const IP_VS_STATE_BACKUP: u32 = 0x0002;

pub const IP_VS_SCHEDNAME_MAXLEN: usize = 16;
pub const IP_VS_PENAME_MAXLEN: usize = 16;
pub const IP_VS_IFNAME_MAXLEN: usize = 16;

/// Size of `union nf_inet_addr`.
const NF_INET_ADDR_LEN: usize = 16;

const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;

/// Why a kernel reply could not be read as an IPVS object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Wire(WireError),
    /// A message other than the expected one (`expected`, `got` are IPVS_CMD_*).
    UnexpectedCommand {
        expected: u8,
        got: u8,
    },
    /// A mandatory attribute is absent (named as in the uapi header).
    Missing(&'static str),
    /// An address family other than AF_INET / AF_INET6.
    UnknownFamily(u16),
    /// An address attribute of the wrong size.
    BadAddress {
        attr: &'static str,
        len: usize,
    },
}

impl From<WireError> for DecodeError {
    fn from(err: WireError) -> Self {
        DecodeError::Wire(err)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Wire(err) => write!(f, "{err}"),
            DecodeError::UnexpectedCommand { expected, got } => {
                write!(f, "expected IPVS command {expected}, got {got}")
            }
            DecodeError::Missing(attr) => write!(f, "{attr} missing"),
            DecodeError::UnknownFamily(af) => write!(f, "unknown address family {af}"),
            DecodeError::BadAddress { attr, len } => write!(f, "{attr}: {len}-byte address"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// An IP protocol number (`IPVS_SVC_ATTR_PROTOCOL`); unknown ones are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u16);

impl IpProtocol {
    pub const TCP: IpProtocol = IpProtocol(libc::IPPROTO_TCP as u16);
    pub const UDP: IpProtocol = IpProtocol(libc::IPPROTO_UDP as u16);
    pub const SCTP: IpProtocol = IpProtocol(libc::IPPROTO_SCTP as u16);

    /// keepalived's lower-case name in log lines (`[10.0.0.1]:tcp:80`).
    pub fn name(self) -> &'static str {
        match self {
            IpProtocol::TCP => "tcp",
            IpProtocol::UDP => "udp",
            IpProtocol::SCTP => "sctp",
            _ => "?",
        }
    }
}

/// Address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    fn af(self) -> u16 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }

    fn from_af(af: u16) -> Result<Family, DecodeError> {
        match af {
            AF_INET => Ok(Family::Inet),
            AF_INET6 => Ok(Family::Inet6),
            other => Err(DecodeError::UnknownFamily(other)),
        }
    }
}

/// What identifies a virtual service in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// protocol + virtual address + port (port 0 for persistent all-port services).
    Addr {
        protocol: IpProtocol,
        addr: IpAddr,
        port: u16,
    },
    /// A firewall mark (`-f`), per address family.
    Fwmark { family: Family, mark: u32 },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

/// keepalived's notation: `[10.0.0.100]:tcp:80`, `FWM 1`.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "[{addr}]:{}:{port}", protocol.name()),
            ServiceKey::Fwmark { mark, .. } => write!(f, "FWM {mark}"),
        }
    }
}

/// The settable part of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceParams {
    /// `IPVS_SVC_ATTR_SCHED_NAME` (`rr`, `wlc`, ...).
    pub scheduler: String,
    /// `IPVS_SVC_ATTR_PE_NAME` (persistence engine, e.g. `sip`).
    pub pe_name: Option<String>,
    /// `IP_VS_SVC_F_*`; sent with mask `!0` (every flag is set or cleared).
    pub flags: u32,
    /// Persistence timeout in seconds (`IPVS_SVC_ATTR_TIMEOUT`).
    pub timeout: u32,
    /// `IPVS_SVC_ATTR_NETMASK`: for IPv4 the mask as a number
    /// (255.255.255.0 = 0xffff_ff00), for IPv6 the prefix length.
    pub netmask: u32,
}

impl ServiceParams {
    /// The kernel's own defaults for a non-persistent service.
    pub fn new(scheduler: &str, family: Family) -> Self {
        ServiceParams {
            scheduler: scheduler.to_owned(),
            pe_name: None,
            flags: 0,
            timeout: 0,
            netmask: match family {
                Family::Inet => u32::MAX,
                Family::Inet6 => 128,
            },
        }
    }
}

/// Traffic counters of a service or destination (`IPVS_STATS_ATTR_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl Stats {
    /// Read `IPVS_*_ATTR_STATS64` (all u64) or `IPVS_*_ATTR_STATS`
    /// (u32 counters and rates, u64 bytes); unknown attributes are skipped.
    fn parse(attrs: Attrs<'_>) -> Result<Stats, DecodeError> {
        let mut stats = Stats::default();
        for attr in attrs {
            let attr = attr?;
            let value = match attr.value.len() {
                8 => attr.as_u64()?,
                _ => u64::from(attr.as_u32()?),
            };
            match attr.kind() {
                IPVS_STATS_ATTR_CONNS => stats.conns = value,
                IPVS_STATS_ATTR_INPKTS => stats.inpkts = value,
                IPVS_STATS_ATTR_OUTPKTS => stats.outpkts = value,
                IPVS_STATS_ATTR_INBYTES => stats.inbytes = value,
                IPVS_STATS_ATTR_OUTBYTES => stats.outbytes = value,
                IPVS_STATS_ATTR_CPS => stats.cps = value,
                IPVS_STATS_ATTR_INPPS => stats.inpps = value,
                IPVS_STATS_ATTR_OUTPPS => stats.outpps = value,
                IPVS_STATS_ATTR_INBPS => stats.inbps = value,
                IPVS_STATS_ATTR_OUTBPS => stats.outbps = value,
                _ => {}
            }
        }
        Ok(stats)
    }
}

/// A virtual service as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    pub params: ServiceParams,
    /// Counters (dump replies only).
    pub stats: Option<Stats>,
}

impl Service {
    pub fn new(key: ServiceKey, params: ServiceParams) -> Self {
        Service {
            key,
            params,
            stats: None,
        }
    }

    /// Decode one `IPVS_CMD_NEW_SERVICE` message of a service dump (or the
    /// answer to a GET_SERVICE).
    pub fn parse(message: &Message<'_>) -> Result<Service, DecodeError> {
        let (header, attrs) = genl::parse(message)?;
        if header.cmd != IPVS_CMD_NEW_SERVICE {
            return Err(DecodeError::UnexpectedCommand {
                expected: IPVS_CMD_NEW_SERVICE,
                got: header.cmd,
            });
        }
        let nest = find(attrs, IPVS_CMD_ATTR_SERVICE)?
            .ok_or(DecodeError::Missing("IPVS_CMD_ATTR_SERVICE"))?;
        Service::parse_attrs(nest.nested())
    }

    fn parse_attrs(attrs: Attrs<'_>) -> Result<Service, DecodeError> {
        let mut af = None;
        let mut protocol = None;
        let mut addr = None;
        let mut port = None;
        let mut fwmark = None;
        let mut scheduler = None;
        let mut pe_name = None;
        let mut flags = 0;
        let mut timeout = 0;
        let mut netmask_raw = None;
        let mut stats = None;
        let mut stats64 = None;
        for attr in attrs {
            let attr = attr?;
            match attr.kind() {
                IPVS_SVC_ATTR_AF => af = Some(attr.as_u16()?),
                IPVS_SVC_ATTR_PROTOCOL => protocol = Some(IpProtocol(attr.as_u16()?)),
                IPVS_SVC_ATTR_ADDR => addr = Some(attr),
                IPVS_SVC_ATTR_PORT => port = Some(attr.as_u16_be()?),
                IPVS_SVC_ATTR_FWMARK => fwmark = Some(attr.as_u32()?),
                IPVS_SVC_ATTR_SCHED_NAME => scheduler = Some(attr.as_str()?.to_owned()),
                IPVS_SVC_ATTR_PE_NAME => pe_name = Some(attr.as_str()?.to_owned()),
                IPVS_SVC_ATTR_FLAGS => {
                    // struct ip_vs_flags: only `flags` is meaningful in a reply.
                    let raw = attr.value.get(..4).ok_or(WireError::BadAttributeSize {
                        kind: IPVS_SVC_ATTR_FLAGS,
                        expected: 8,
                        got: attr.value.len(),
                    })?;
                    flags = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
                }
                IPVS_SVC_ATTR_TIMEOUT => timeout = attr.as_u32()?,
                IPVS_SVC_ATTR_NETMASK => netmask_raw = Some(attr),
                IPVS_SVC_ATTR_STATS => stats = Some(Stats::parse(attr.nested())?),
                IPVS_SVC_ATTR_STATS64 => stats64 = Some(Stats::parse(attr.nested())?),
                _ => {}
            }
        }
        let family = Family::from_af(af.ok_or(DecodeError::Missing("IPVS_SVC_ATTR_AF"))?)?;
        let key = match fwmark {
            Some(mark) if mark != 0 => ServiceKey::Fwmark { family, mark },
            _ => ServiceKey::Addr {
                protocol: protocol.ok_or(DecodeError::Missing("IPVS_SVC_ATTR_PROTOCOL"))?,
                addr: parse_addr(
                    family,
                    addr.ok_or(DecodeError::Missing("IPVS_SVC_ATTR_ADDR"))?,
                    "IPVS_SVC_ATTR_ADDR",
                )?,
                port: port.ok_or(DecodeError::Missing("IPVS_SVC_ATTR_PORT"))?,
            },
        };
        let netmask = match netmask_raw {
            None => ServiceParams::new("", family).netmask,
            Some(attr) => match family {
                Family::Inet => attr.as_u32_be()?,
                Family::Inet6 => attr.as_u32()?,
            },
        };
        Ok(Service {
            key,
            params: ServiceParams {
                scheduler: scheduler.ok_or(DecodeError::Missing("IPVS_SVC_ATTR_SCHED_NAME"))?,
                pe_name,
                flags,
                timeout,
                netmask,
            },
            stats: stats64.or(stats),
        })
    }
}

/// How packets reach a destination (`IPVS_DEST_ATTR_FWD_METHOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMethod {
    /// `IP_VS_CONN_F_MASQ` (NAT).
    Masquerade,
    /// `IP_VS_CONN_F_LOCALNODE`.
    Local,
    /// `IP_VS_CONN_F_TUNNEL`.
    Tunnel,
    /// `IP_VS_CONN_F_DROUTE` (DR).
    DirectRoute,
    /// `IP_VS_CONN_F_BYPASS`.
    Bypass,
    Unknown(u32),
}

impl ForwardMethod {
    pub fn to_raw(self) -> u32 {
        match self {
            ForwardMethod::Masquerade => IP_VS_CONN_F_MASQ,
            ForwardMethod::Local => IP_VS_CONN_F_LOCALNODE,
            ForwardMethod::Tunnel => IP_VS_CONN_F_TUNNEL,
            ForwardMethod::DirectRoute => IP_VS_CONN_F_DROUTE,
            ForwardMethod::Bypass => IP_VS_CONN_F_BYPASS,
            ForwardMethod::Unknown(raw) => raw,
        }
    }

    pub fn from_raw(raw: u32) -> Self {
        match raw & IP_VS_CONN_F_FWD_MASK {
            IP_VS_CONN_F_MASQ => ForwardMethod::Masquerade,
            IP_VS_CONN_F_LOCALNODE => ForwardMethod::Local,
            IP_VS_CONN_F_TUNNEL => ForwardMethod::Tunnel,
            IP_VS_CONN_F_DROUTE => ForwardMethod::DirectRoute,
            IP_VS_CONN_F_BYPASS => ForwardMethod::Bypass,
            other => ForwardMethod::Unknown(other),
        }
    }
}

/// Tunnel encapsulation of a TUN destination (`IPVS_DEST_ATTR_TUN_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    pub kind: u8,
    /// GUE destination port.
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    pub flags: u16,
}

/// What identifies a destination within its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestKey {
    pub addr: IpAddr,
    pub port: u16,
}

/// keepalived's notation `[10.0.0.2]:80` (the protocol is added by callers).
impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}", self.addr, self.port)
    }
}

/// The settable part of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestParams {
    pub forward: ForwardMethod,
    pub weight: u32,
    /// Upper / lower connection thresholds (0 = none).
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub tunnel: Tunnel,
}

/// A destination (real server) as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub key: DestKey,
    pub params: DestParams,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Option<Stats>,
}

impl Dest {
    pub fn new(key: DestKey, params: DestParams) -> Self {
        Dest {
            key,
            params,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
            stats: None,
        }
    }

    /// Decode one `IPVS_CMD_NEW_DEST` message of a destination dump.
    /// `service_family` is the family the address is in when the kernel
    /// omits `IPVS_DEST_ATTR_ADDR_FAMILY` (kernels before 4.3).
    pub fn parse(message: &Message<'_>, service_family: Family) -> Result<Dest, DecodeError> {
        let (header, attrs) = genl::parse(message)?;
        if header.cmd != IPVS_CMD_NEW_DEST {
            return Err(DecodeError::UnexpectedCommand {
                expected: IPVS_CMD_NEW_DEST,
                got: header.cmd,
            });
        }
        let nest =
            find(attrs, IPVS_CMD_ATTR_DEST)?.ok_or(DecodeError::Missing("IPVS_CMD_ATTR_DEST"))?;
        let mut addr = None;
        let mut family = service_family;
        let mut dest = Dest::new(
            DestKey {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port: 0,
            },
            DestParams {
                forward: ForwardMethod::Masquerade,
                weight: 0,
                u_threshold: 0,
                l_threshold: 0,
                tunnel: Tunnel::default(),
            },
        );
        let mut port = None;
        let mut stats = None;
        let mut stats64 = None;
        for attr in nest.nested() {
            let attr = attr?;
            match attr.kind() {
                IPVS_DEST_ATTR_ADDR => addr = Some(attr),
                IPVS_DEST_ATTR_PORT => port = Some(attr.as_u16_be()?),
                IPVS_DEST_ATTR_FWD_METHOD => {
                    dest.params.forward = ForwardMethod::from_raw(attr.as_u32()?)
                }
                IPVS_DEST_ATTR_WEIGHT => dest.params.weight = attr.as_u32()?,
                IPVS_DEST_ATTR_U_THRESH => dest.params.u_threshold = attr.as_u32()?,
                IPVS_DEST_ATTR_L_THRESH => dest.params.l_threshold = attr.as_u32()?,
                IPVS_DEST_ATTR_ACTIVE_CONNS => dest.active_conns = attr.as_u32()?,
                IPVS_DEST_ATTR_INACT_CONNS => dest.inactive_conns = attr.as_u32()?,
                IPVS_DEST_ATTR_PERSIST_CONNS => dest.persistent_conns = attr.as_u32()?,
                IPVS_DEST_ATTR_ADDR_FAMILY => family = Family::from_af(attr.as_u16()?)?,
                IPVS_DEST_ATTR_TUN_TYPE => dest.params.tunnel.kind = attr.as_u8()?,
                IPVS_DEST_ATTR_TUN_PORT => dest.params.tunnel.port = attr.as_u16_be()?,
                IPVS_DEST_ATTR_TUN_FLAGS => dest.params.tunnel.flags = attr.as_u16()?,
                IPVS_DEST_ATTR_STATS => stats = Some(Stats::parse(attr.nested())?),
                IPVS_DEST_ATTR_STATS64 => stats64 = Some(Stats::parse(attr.nested())?),
                _ => {}
            }
        }
        dest.key.addr = parse_addr(
            family,
            addr.ok_or(DecodeError::Missing("IPVS_DEST_ATTR_ADDR"))?,
            "IPVS_DEST_ATTR_ADDR",
        )?;
        dest.key.port = port.ok_or(DecodeError::Missing("IPVS_DEST_ATTR_PORT"))?;
        dest.stats = stats64.or(stats);
        Ok(dest)
    }
}

/// `IPVS_CMD_GET_INFO`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// `IP_VS_VERSION_CODE`, e.g. 0x010201 for 1.2.1.
    pub version: u32,
    pub conn_tab_size: u32,
}

impl Info {
    pub fn parse(message: &Message<'_>) -> Result<Info, DecodeError> {
        let (header, attrs) = genl::parse(message)?;
        if header.cmd != IPVS_CMD_SET_INFO {
            return Err(DecodeError::UnexpectedCommand {
                expected: IPVS_CMD_SET_INFO,
                got: header.cmd,
            });
        }
        let version = find(attrs.clone(), IPVS_INFO_ATTR_VERSION)?
            .ok_or(DecodeError::Missing("IPVS_INFO_ATTR_VERSION"))?
            .as_u32()?;
        let conn_tab_size = match find(attrs, IPVS_INFO_ATTR_CONN_TAB_SIZE)? {
            Some(attr) => attr.as_u32()?,
            None => 0,
        };
        Ok(Info {
            version,
            conn_tab_size,
        })
    }

    /// `1.2.1`, as ipvsadm prints it.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// Connection timeouts in seconds (`IPVS_CMD_SET_CONFIG`); 0 leaves the
/// kernel's value unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

impl Timeouts {
    /// Decode the answer to `IPVS_CMD_GET_CONFIG` (an `IPVS_CMD_SET_CONFIG`).
    pub fn parse(message: &Message<'_>) -> Result<Timeouts, DecodeError> {
        let (header, attrs) = genl::parse(message)?;
        if header.cmd != IPVS_CMD_SET_CONFIG {
            return Err(DecodeError::UnexpectedCommand {
                expected: IPVS_CMD_SET_CONFIG,
                got: header.cmd,
            });
        }
        let mut timeouts = Timeouts::default();
        for attr in attrs {
            let attr = attr?;
            match attr.kind() {
                IPVS_CMD_ATTR_TIMEOUT_TCP => timeouts.tcp = attr.as_u32()?,
                IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => timeouts.tcp_fin = attr.as_u32()?,
                IPVS_CMD_ATTR_TIMEOUT_UDP => timeouts.udp = attr.as_u32()?,
                _ => {}
            }
        }
        Ok(timeouts)
    }
}

/// Role of a connection-sync daemon (`IPVS_DAEMON_ATTR_STATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DaemonState {
    Master,
    Backup,
}

impl DaemonState {
    fn to_raw(self) -> u32 {
        match self {
            DaemonState::Master => IP_VS_STATE_MASTER,
            DaemonState::Backup => IP_VS_STATE_BACKUP,
        }
    }
}

/// A connection-sync daemon (`lvs_sync_daemon`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    pub state: DaemonState,
    pub interface: String,
    pub sync_id: u32,
    pub maxlen: Option<u16>,
    pub group: Option<IpAddr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

impl SyncDaemon {
    /// Decode one `IPVS_CMD_NEW_DAEMON` message of a daemon dump.
    pub fn parse(message: &Message<'_>) -> Result<SyncDaemon, DecodeError> {
        let (header, attrs) = genl::parse(message)?;
        if header.cmd != IPVS_CMD_NEW_DAEMON {
            return Err(DecodeError::UnexpectedCommand {
                expected: IPVS_CMD_NEW_DAEMON,
                got: header.cmd,
            });
        }
        let nest = find(attrs, IPVS_CMD_ATTR_DAEMON)?
            .ok_or(DecodeError::Missing("IPVS_CMD_ATTR_DAEMON"))?;
        let mut state = None;
        let mut daemon = SyncDaemon {
            state: DaemonState::Master,
            interface: String::new(),
            sync_id: 0,
            maxlen: None,
            group: None,
            port: None,
            ttl: None,
        };
        for attr in nest.nested() {
            let attr = attr?;
            match attr.kind() {
                IPVS_DAEMON_ATTR_STATE => {
                    state = match attr.as_u32()? {
                        IP_VS_STATE_MASTER => Some(DaemonState::Master),
                        IP_VS_STATE_BACKUP => Some(DaemonState::Backup),
                        _ => None,
                    }
                }
                IPVS_DAEMON_ATTR_MCAST_IFN => daemon.interface = attr.as_str()?.to_owned(),
                IPVS_DAEMON_ATTR_SYNC_ID => daemon.sync_id = attr.as_u32()?,
                IPVS_DAEMON_ATTR_SYNC_MAXLEN => daemon.maxlen = Some(attr.as_u16()?),
                IPVS_DAEMON_ATTR_MCAST_GROUP => {
                    let octets: [u8; 4] =
                        attr.value.try_into().map_err(|_| DecodeError::BadAddress {
                            attr: "IPVS_DAEMON_ATTR_MCAST_GROUP",
                            len: attr.value.len(),
                        })?;
                    daemon.group = Some(IpAddr::V4(Ipv4Addr::from(octets)));
                }
                IPVS_DAEMON_ATTR_MCAST_GROUP6 => {
                    daemon.group = Some(parse_addr(
                        Family::Inet6,
                        attr,
                        "IPVS_DAEMON_ATTR_MCAST_GROUP6",
                    )?)
                }
                IPVS_DAEMON_ATTR_MCAST_PORT => daemon.port = Some(attr.as_u16()?),
                IPVS_DAEMON_ATTR_MCAST_TTL => daemon.ttl = Some(attr.as_u8()?),
                _ => {}
            }
        }
        daemon.state = state.ok_or(DecodeError::Missing("IPVS_DAEMON_ATTR_STATE"))?;
        Ok(daemon)
    }
}

/// One IPVS command, ready to encode.
///
/// The layout follows ipvsadm's requests (captured with strace, see
/// `tests/vectors/ipvs/`): commands about a service carry the whole
/// service (identity, scheduler, flags, timeout, netmask), commands about
/// a destination carry the whole destination, even for deletions (the
/// kernel reads only the identifying attributes there); only the
/// destination dump names its service by identity alone.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    NewService(&'a Service),
    SetService(&'a Service),
    DelService(&'a Service),
    NewDest(&'a Service, &'a Dest),
    SetDest(&'a Service, &'a Dest),
    DelDest(&'a Service, &'a Dest),
    /// Dump every service.
    GetServices,
    /// Dump the destinations of one service.
    GetDests(&'a ServiceKey),
    /// One service (answered by a single `IPVS_CMD_NEW_SERVICE`).
    GetService(&'a Service),
    GetInfo,
    /// Zero the counters of one service, or of all.
    Zero(Option<&'a Service>),
    Flush,
    SetConfig(&'a Timeouts),
    GetConfig,
    NewDaemon(&'a SyncDaemon),
    DelDaemon(DaemonState),
    /// Dump the running sync daemons.
    GetDaemons,
}

impl Request<'_> {
    /// The generic netlink command.
    pub fn cmd(&self) -> u8 {
        match self {
            Request::NewService(_) => IPVS_CMD_NEW_SERVICE,
            Request::SetService(_) => IPVS_CMD_SET_SERVICE,
            Request::DelService(_) => IPVS_CMD_DEL_SERVICE,
            Request::NewDest(..) => IPVS_CMD_NEW_DEST,
            Request::SetDest(..) => IPVS_CMD_SET_DEST,
            Request::DelDest(..) => IPVS_CMD_DEL_DEST,
            Request::GetServices | Request::GetService(_) => IPVS_CMD_GET_SERVICE,
            Request::GetDests(_) => IPVS_CMD_GET_DEST,
            Request::GetInfo => IPVS_CMD_GET_INFO,
            Request::Zero(_) => IPVS_CMD_ZERO,
            Request::Flush => IPVS_CMD_FLUSH,
            Request::SetConfig(_) => IPVS_CMD_SET_CONFIG,
            Request::GetConfig => IPVS_CMD_GET_CONFIG,
            Request::NewDaemon(_) => IPVS_CMD_NEW_DAEMON,
            Request::DelDaemon(_) => IPVS_CMD_DEL_DAEMON,
            Request::GetDaemons => IPVS_CMD_GET_DAEMON,
        }
    }

    /// What the request does, for error messages.
    pub fn what(&self) -> &'static str {
        match self {
            Request::NewService(_) => "add IPVS service",
            Request::SetService(_) => "update IPVS service",
            Request::DelService(_) => "delete IPVS service",
            Request::NewDest(..) => "add IPVS destination",
            Request::SetDest(..) => "update IPVS destination",
            Request::DelDest(..) => "delete IPVS destination",
            Request::GetServices => "dump IPVS services",
            Request::GetDests(_) => "dump IPVS destinations",
            Request::GetService(_) => "get IPVS service",
            Request::GetInfo => "get IPVS info",
            Request::Zero(_) => "zero IPVS counters",
            Request::Flush => "flush IPVS table",
            Request::SetConfig(_) => "set IPVS timeouts",
            Request::GetConfig => "get IPVS timeouts",
            Request::NewDaemon(_) => "start IPVS sync daemon",
            Request::DelDaemon(_) => "stop IPVS sync daemon",
            Request::GetDaemons => "dump IPVS sync daemons",
        }
    }

    /// Dumps are sent with `NLM_F_DUMP` and answered by multipart replies.
    pub fn is_dump(&self) -> bool {
        matches!(
            self,
            Request::GetServices | Request::GetDests(_) | Request::GetDaemons
        )
    }

    /// The message without seq/pid; `NLM_F_DUMP` is added by the socket
    /// for dumps. Like ipvsadm, every request asks for an ACK (a dump is
    /// still ended by NLMSG_DONE alone).
    pub fn encode(&self, family_id: u16) -> MessageBuilder {
        let mut msg = genl::request(family_id, self.cmd(), IPVS_GENL_VERSION, NLM_F_ACK);
        match self {
            Request::NewService(service)
            | Request::SetService(service)
            | Request::DelService(service)
            | Request::GetService(service)
            | Request::Zero(Some(service)) => push_service(&mut msg, service),
            Request::GetDests(key) => push_service_key(&mut msg, key),
            Request::NewDest(service, dest)
            | Request::SetDest(service, dest)
            | Request::DelDest(service, dest) => {
                push_service(&mut msg, service);
                push_dest(&mut msg, dest);
            }
            Request::GetServices
            | Request::GetInfo
            | Request::Zero(None)
            | Request::Flush
            | Request::GetConfig
            | Request::GetDaemons => {}
            Request::SetConfig(timeouts) => {
                msg.attr_u32(IPVS_CMD_ATTR_TIMEOUT_TCP, timeouts.tcp)
                    .attr_u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, timeouts.tcp_fin)
                    .attr_u32(IPVS_CMD_ATTR_TIMEOUT_UDP, timeouts.udp);
            }
            Request::NewDaemon(daemon) => push_daemon(&mut msg, daemon),
            Request::DelDaemon(state) => {
                // ipvsadm names the daemon by state; interface and sync id
                // are sent empty.
                let nest = msg.begin_nested(IPVS_CMD_ATTR_DAEMON | NLA_F_NESTED);
                msg.attr_u32(IPVS_DAEMON_ATTR_STATE, state.to_raw())
                    .attr_str(IPVS_DAEMON_ATTR_MCAST_IFN, "")
                    .attr_u32(IPVS_DAEMON_ATTR_SYNC_ID, 0);
                msg.end_nested(nest);
            }
        }
        msg
    }
}

fn addr_bytes(addr: &IpAddr) -> [u8; NF_INET_ADDR_LEN] {
    let mut bytes = [0u8; NF_INET_ADDR_LEN];
    match addr {
        IpAddr::V4(a) => bytes[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => bytes = a.octets(),
    }
    bytes
}

fn parse_addr(family: Family, attr: Attr<'_>, name: &'static str) -> Result<IpAddr, DecodeError> {
    let bad = DecodeError::BadAddress {
        attr: name,
        len: attr.value.len(),
    };
    match family {
        Family::Inet => {
            let octets: [u8; 4] = attr
                .value
                .get(..4)
                .ok_or(bad.clone())?
                .try_into()
                .map_err(|_| bad)?;
            Ok(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        Family::Inet6 => {
            let octets: [u8; 16] = attr.value.try_into().map_err(|_| bad)?;
            Ok(IpAddr::V6(Ipv6Addr::from(octets)))
        }
    }
}

/// The first attribute of `kind`; a malformed run is an error.
fn find(attrs: Attrs<'_>, kind: u16) -> Result<Option<Attr<'_>>, DecodeError> {
    for attr in attrs {
        let attr = attr?;
        if attr.kind() == kind {
            return Ok(Some(attr));
        }
    }
    Ok(None)
}

/// The identifying attributes of a service.
fn push_key_attrs(msg: &mut MessageBuilder, key: &ServiceKey) {
    msg.attr_u16(IPVS_SVC_ATTR_AF, key.family().af());
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            msg.attr_u16(IPVS_SVC_ATTR_PROTOCOL, protocol.0)
                .attr(IPVS_SVC_ATTR_ADDR, &addr_bytes(addr))
                .attr_u16_be(IPVS_SVC_ATTR_PORT, *port);
        }
        ServiceKey::Fwmark { mark, .. } => {
            msg.attr_u32(IPVS_SVC_ATTR_FWMARK, *mark);
        }
    }
}

/// `IPVS_CMD_ATTR_SERVICE` with the identity only (destination dumps).
fn push_service_key(msg: &mut MessageBuilder, key: &ServiceKey) {
    let nest = msg.begin_nested(IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED);
    push_key_attrs(msg, key);
    msg.end_nested(nest);
}

/// `IPVS_CMD_ATTR_SERVICE` complete, in ipvsadm's order.
fn push_service(msg: &mut MessageBuilder, service: &Service) {
    let nest = msg.begin_nested(IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED);
    push_key_attrs(msg, &service.key);
    let params = &service.params;
    msg.attr_str(IPVS_SVC_ATTR_SCHED_NAME, &params.scheduler);
    if let Some(pe) = &params.pe_name {
        msg.attr_str(IPVS_SVC_ATTR_PE_NAME, pe);
    }
    // struct ip_vs_flags: the mask covers every flag, so the kernel sets
    // exactly these.
    let mut flags = [0u8; 8];
    flags[..4].copy_from_slice(&params.flags.to_ne_bytes());
    flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    msg.attr(IPVS_SVC_ATTR_FLAGS, &flags)
        .attr_u32(IPVS_SVC_ATTR_TIMEOUT, params.timeout);
    match service.key.family() {
        Family::Inet => msg.attr_u32_be(IPVS_SVC_ATTR_NETMASK, params.netmask),
        Family::Inet6 => msg.attr_u32(IPVS_SVC_ATTR_NETMASK, params.netmask),
    };
    msg.end_nested(nest);
}

/// `IPVS_CMD_ATTR_DEST` complete, in ipvsadm's order (the tunnel
/// attributes are always present, zero unless tunnelling).
fn push_dest(msg: &mut MessageBuilder, dest: &Dest) {
    let nest = msg.begin_nested(IPVS_CMD_ATTR_DEST | NLA_F_NESTED);
    let params = &dest.params;
    msg.attr_u16(IPVS_DEST_ATTR_ADDR_FAMILY, Family::of(&dest.key.addr).af())
        .attr(IPVS_DEST_ATTR_ADDR, &addr_bytes(&dest.key.addr))
        .attr_u16_be(IPVS_DEST_ATTR_PORT, dest.key.port)
        .attr_u32(IPVS_DEST_ATTR_FWD_METHOD, params.forward.to_raw())
        .attr_u32(IPVS_DEST_ATTR_WEIGHT, params.weight)
        .attr_u8(IPVS_DEST_ATTR_TUN_TYPE, params.tunnel.kind)
        .attr_u16_be(IPVS_DEST_ATTR_TUN_PORT, params.tunnel.port)
        .attr_u16(IPVS_DEST_ATTR_TUN_FLAGS, params.tunnel.flags)
        .attr_u32(IPVS_DEST_ATTR_U_THRESH, params.u_threshold)
        .attr_u32(IPVS_DEST_ATTR_L_THRESH, params.l_threshold);
    msg.end_nested(nest);
}

fn push_daemon(msg: &mut MessageBuilder, daemon: &SyncDaemon) {
    let nest = msg.begin_nested(IPVS_CMD_ATTR_DAEMON | NLA_F_NESTED);
    msg.attr_u32(IPVS_DAEMON_ATTR_STATE, daemon.state.to_raw())
        .attr_str(IPVS_DAEMON_ATTR_MCAST_IFN, &daemon.interface)
        .attr_u32(IPVS_DAEMON_ATTR_SYNC_ID, daemon.sync_id);
    if let Some(maxlen) = daemon.maxlen {
        msg.attr_u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN, maxlen);
    }
    match daemon.group {
        Some(IpAddr::V4(group)) => {
            msg.attr(IPVS_DAEMON_ATTR_MCAST_GROUP, &group.octets());
        }
        Some(IpAddr::V6(group)) => {
            msg.attr(IPVS_DAEMON_ATTR_MCAST_GROUP6, &group.octets());
        }
        None => {}
    }
    if let Some(port) = daemon.port {
        msg.attr_u16(IPVS_DAEMON_ATTR_MCAST_PORT, port);
    }
    if let Some(ttl) = daemon.ttl {
        msg.attr_u8(IPVS_DAEMON_ATTR_MCAST_TTL, ttl);
    }
    msg.end_nested(nest);
}

fn decode_error(what: &'static str) -> impl Fn(DecodeError) -> Error {
    move |err| Error::Protocol {
        what,
        detail: err.to_string(),
    }
}

/// A generic netlink socket bound to the IPVS family.
#[derive(Debug)]
pub struct IpvsClient {
    sock: NetlinkSocket,
    family_id: u16,
}

impl IpvsClient {
    /// Open a socket and resolve the "IPVS" family. A kernel without IPVS
    /// answers `ENOENT` (see [`Error::errno`]).
    pub fn open() -> Result<Self, Error> {
        let mut sock = NetlinkSocket::open(libc::NETLINK_GENERIC, false)?;
        let family = genl::resolve_family(&mut sock, IPVS_GENL_NAME)?;
        Ok(IpvsClient {
            sock,
            family_id: family.id,
        })
    }

    pub fn family_id(&self) -> u16 {
        self.family_id
    }

    /// Send a non-dump request and wait for the kernel's ACK.
    pub fn execute(&mut self, request: &Request<'_>) -> Result<(), Error> {
        self.sock
            .request(request.encode(self.family_id), request.what())
    }

    /// Several non-dump requests, pipelined (many per datagram); one
    /// result each, in order.
    pub fn execute_batch(&mut self, requests: &[Request<'_>]) -> Vec<Result<(), Error>> {
        let what = requests.first().map_or("IPVS batch", Request::what);
        let msgs = requests.iter().map(|r| r.encode(self.family_id)).collect();
        self.sock.request_batch(msgs, what)
    }

    /// Send a GET and parse its single answer; `missing` names the reply
    /// command for the error when the kernel sends none.
    fn get_one<T>(
        &mut self,
        request: Request<'_>,
        missing: &str,
        parse: impl Fn(&Message<'_>) -> Result<T, DecodeError>,
    ) -> Result<T, Error> {
        let what = request.what();
        let mut answer = None;
        self.sock
            .request_with(request.encode(self.family_id), what, |message| {
                answer = Some(parse(message).map_err(decode_error(what))?);
                Ok(())
            })?;
        answer.ok_or(Error::Protocol {
            what,
            detail: format!("no {missing} in the answer"),
        })
    }

    /// Send a dump request and parse every reply message.
    fn dump_all<T>(
        &mut self,
        request: Request<'_>,
        parse: impl Fn(&Message<'_>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, Error> {
        let what = request.what();
        let mut items = Vec::new();
        self.sock
            .dump(request.encode(self.family_id), what, |message| {
                items.push(parse(message).map_err(decode_error(what))?);
                Ok(())
            })?;
        Ok(items)
    }

    pub fn info(&mut self) -> Result<Info, Error> {
        self.get_one(Request::GetInfo, "IPVS_CMD_SET_INFO", Info::parse)
    }

    /// Every service the kernel holds.
    pub fn services(&mut self) -> Result<Vec<Service>, Error> {
        self.dump_all(Request::GetServices, Service::parse)
    }

    /// The destinations of one service.
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<Dest>, Error> {
        let family = key.family();
        self.dump_all(Request::GetDests(key), |m| Dest::parse(m, family))
    }

    /// The kernel's connection timeouts.
    pub fn timeouts(&mut self) -> Result<Timeouts, Error> {
        self.get_one(Request::GetConfig, "IPVS_CMD_SET_CONFIG", Timeouts::parse)
    }

    /// The running sync daemons.
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>, Error> {
        self.dump_all(Request::GetDaemons, SyncDaemon::parse)
    }

    /// The whole table: every service with its destinations.
    pub fn table(&mut self) -> Result<Vec<(Service, Vec<Dest>)>, Error> {
        let services = self.services()?;
        let mut table = Vec::with_capacity(services.len());
        for service in services {
            let dests = self.dests(&service.key)?;
            table.push((service, dests));
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::Messages;

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: IpProtocol::TCP,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    /// A service dump entry as the kernel writes it (`ip_vs_genl_fill_service`).
    fn kernel_service(key: &ServiceKey, params: &ServiceParams) -> Vec<u8> {
        let mut msg = genl::request(0x1d, IPVS_CMD_NEW_SERVICE, 1, 0);
        let nest = msg.begin_nested(IPVS_CMD_ATTR_SERVICE);
        msg.attr_u16(IPVS_SVC_ATTR_AF, key.family().af());
        match key {
            ServiceKey::Fwmark { mark, .. } => {
                msg.attr_u32(IPVS_SVC_ATTR_FWMARK, *mark);
            }
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                msg.attr_u16(IPVS_SVC_ATTR_PROTOCOL, protocol.0)
                    .attr(IPVS_SVC_ATTR_ADDR, &addr_bytes(addr))
                    .attr_u16_be(IPVS_SVC_ATTR_PORT, *port);
            }
        }
        let mut flags = Vec::new();
        flags.extend_from_slice(&(params.flags | IP_VS_SVC_F_HASHED).to_ne_bytes());
        flags.extend_from_slice(&u32::MAX.to_ne_bytes());
        msg.attr_str(IPVS_SVC_ATTR_SCHED_NAME, &params.scheduler)
            .attr(IPVS_SVC_ATTR_FLAGS, &flags)
            .attr_u32(IPVS_SVC_ATTR_TIMEOUT, params.timeout);
        match key.family() {
            Family::Inet => msg.attr_u32_be(IPVS_SVC_ATTR_NETMASK, params.netmask),
            Family::Inet6 => msg.attr_u32(IPVS_SVC_ATTR_NETMASK, params.netmask),
        };
        let stats = msg.begin_nested(IPVS_SVC_ATTR_STATS);
        msg.attr_u32(IPVS_STATS_ATTR_CONNS, 7)
            .attr(IPVS_STATS_ATTR_INBYTES, &99u64.to_ne_bytes());
        msg.end_nested(stats);
        msg.end_nested(nest);
        msg.finish()
    }

    #[test]
    fn service_round_trip_through_kernel_layout() {
        let cases = [
            (
                tcp("10.0.0.100", 80),
                ServiceParams::new("rr", Family::Inet),
            ),
            (
                tcp("2001:db8::100", 443),
                ServiceParams {
                    scheduler: "sh".into(),
                    pe_name: None,
                    flags: IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED_SH_PORT,
                    timeout: 300,
                    netmask: 64,
                },
            ),
            (
                ServiceKey::Fwmark {
                    family: Family::Inet,
                    mark: 7,
                },
                ServiceParams {
                    netmask: 0xffff_ff00,
                    ..ServiceParams::new("wlc", Family::Inet)
                },
            ),
        ];
        for (key, params) in cases {
            let bytes = kernel_service(&key, &params);
            let message = Messages::new(&bytes).next().unwrap().unwrap();
            let service = Service::parse(&message).unwrap();
            assert_eq!(service.key, key);
            assert_eq!(service.params.flags & !IP_VS_SVC_F_HASHED, params.flags);
            assert_eq!(service.params.netmask, params.netmask);
            assert_eq!(service.params.scheduler, params.scheduler);
            assert_eq!(service.stats.unwrap().conns, 7);
            assert_eq!(service.stats.unwrap().inbytes, 99);
        }
    }

    #[test]
    fn byte_orders() {
        let service = Service::new(
            tcp("10.0.0.100", 80),
            ServiceParams {
                netmask: 0xffff_ff00,
                ..ServiceParams::new("rr", Family::Inet)
            },
        );
        let bytes = Request::NewService(&service).encode(0x1d).finish();
        let message = Messages::new(&bytes).next().unwrap().unwrap();
        let (header, attrs) = genl::parse(&message).unwrap();
        assert_eq!((header.cmd, header.version), (IPVS_CMD_NEW_SERVICE, 1));
        let nest = attrs.find(IPVS_CMD_ATTR_SERVICE).unwrap();
        assert!(nest.is_nested(), "ipvsadm marks its nests NLA_F_NESTED");
        let svc = nest.nested();
        assert_eq!(svc.find(IPVS_SVC_ATTR_PORT).unwrap().value, &[0, 80]);
        assert_eq!(
            svc.find(IPVS_SVC_ATTR_ADDR).unwrap().value,
            &[10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            svc.find(IPVS_SVC_ATTR_NETMASK).unwrap().value,
            &[255, 255, 255, 0]
        );
        let flags = svc.find(IPVS_SVC_ATTR_FLAGS).unwrap().value;
        assert_eq!(&flags[4..], &[0xff; 4], "mask covers every flag");
        assert_eq!(
            svc.find(IPVS_SVC_ATTR_SCHED_NAME)
                .unwrap()
                .as_str()
                .unwrap(),
            "rr"
        );
    }

    #[test]
    fn dest_round_trip() {
        let key = DestKey {
            addr: "192.168.1.2".parse().unwrap(),
            port: 8080,
        };
        let dest = Dest::new(
            key,
            DestParams {
                forward: ForwardMethod::Tunnel,
                weight: 3,
                u_threshold: 100,
                l_threshold: 10,
                tunnel: Tunnel {
                    kind: IP_VS_CONN_F_TUNNEL_TYPE_GUE,
                    port: 6080,
                    flags: IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
                },
            },
        );
        let svc = Service::new(
            tcp("10.0.0.100", 80),
            ServiceParams::new("rr", Family::Inet),
        );
        // The request's dest nest has the same layout the kernel answers with.
        let mut bytes = Request::NewDest(&svc, &dest).encode(0x1d).finish();
        bytes[16] = IPVS_CMD_NEW_DEST;
        let message = Messages::new(&bytes).next().unwrap().unwrap();
        let parsed = Dest::parse(&message, Family::Inet).unwrap();
        assert_eq!(parsed, dest);
    }

    #[test]
    fn info_reply() {
        let mut msg = genl::request(0x1d, IPVS_CMD_SET_INFO, 1, 0);
        msg.attr_u32(IPVS_INFO_ATTR_VERSION, 0x010201)
            .attr_u32(IPVS_INFO_ATTR_CONN_TAB_SIZE, 4096);
        let bytes = msg.finish();
        let message = Messages::new(&bytes).next().unwrap().unwrap();
        let info = Info::parse(&message).unwrap();
        assert_eq!(info.version_string(), "1.2.1");
        assert_eq!(info.conn_tab_size, 4096);
    }

    #[test]
    fn truncated_and_corrupted_replies_never_panic() {
        let bytes = kernel_service(
            &tcp("2001:db8::1", 80),
            &ServiceParams::new("wlc", Family::Inet6),
        );
        for cut in 0..bytes.len() {
            for message in Messages::new(&bytes[..cut]).flatten() {
                let _ = Service::parse(&message);
                let _ = Dest::parse(&message, Family::Inet6);
                let _ = Info::parse(&message);
            }
        }
        for i in 16..bytes.len() {
            for value in [0u8, 1, 0x7f, 0xff] {
                let mut bad = bytes.clone();
                bad[i] = value;
                for message in Messages::new(&bad).flatten() {
                    let _ = Service::parse(&message);
                    let _ = Dest::parse(&message, Family::Inet);
                }
            }
        }
    }

    #[test]
    fn display_like_keepalived() {
        assert_eq!(tcp("10.0.0.100", 80).to_string(), "[10.0.0.100]:tcp:80");
        assert_eq!(
            ServiceKey::Fwmark {
                family: Family::Inet6,
                mark: 3
            }
            .to_string(),
            "FWM 3"
        );
    }
}
