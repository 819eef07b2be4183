/*! rtnetlink: interface addresses, links, routes, macvlan VMACs and the
link/address event stream.

Requests are synchronous: the kernel answers an rtnetlink request before
`sendmsg` returns to it, so [`Rtnl`] sends and waits for the ACK on a
blocking socket with a receive timeout (see [`NetlinkSocket`]). Events use
a separate non-blocking socket, [`RtnlEvents`], registered in the mio loop.

Message building ([`address_request`], [`route_request`], [`vmac_request`])
and parsing ([`parse_link`], [`parse_address`], [`parse_notification`]) are
pure functions over bytes, so they are tested without a kernel.

Constant names are the ones of `linux/rtnetlink.h`, `linux/if_addr.h`,
`linux/if_link.h` and `linux/if.h`; their values are checked against the
`libc` crate's copies in the unit tests.
*/

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};

use super::socket::NetlinkSocket;
use super::wire::{
    Attrs, Message, MessageBuilder, WireError, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use super::Error;
use crate::config::model::{AddressScope, Broadcast, RouteType, VirtualAddress, VirtualRoute};
use crate::sockopt::set_int;

// ===== constants (uapi names) =====

/// `linux/rtnetlink.h` message types.
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

/// `enum rtnetlink_groups`.
pub const RTNLGRP_LINK: u32 = 1;
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;

/// `enum rt_scope_t`.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_SITE: u8 = 200;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;
pub const RT_SCOPE_NOWHERE: u8 = 255;

/// Route types (`rtm_type`).
pub const RTN_UNSPEC: u8 = 0;
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BLACKHOLE: u8 = 6;
pub const RTN_UNREACHABLE: u8 = 7;
pub const RTN_PROHIBIT: u8 = 8;

/// Route origin (`rtm_protocol`): `ip route` shows "proto keepalived".
pub const RTPROT_UNSPEC: u8 = 0;
pub const RTPROT_KEEPALIVED: u8 = 18;

/// `enum rt_class_t`.
pub const RT_TABLE_UNSPEC: u8 = 0;
pub const RT_TABLE_MAIN: u32 = 254;

/// `rtm_flags` / `rtnh_flags`.
pub const RTNH_F_ONLINK: u32 = 4;

/// `enum rtattr_type_t`.
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_TABLE: u16 = 15;

/// `linux/if_addr.h` attributes.
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_CACHEINFO: u16 = 6;
pub const IFA_FLAGS: u16 = 8;

/// `linux/if_addr.h` address flags.
pub const IFA_F_SECONDARY: u32 = 0x01;
pub const IFA_F_NODAD: u32 = 0x02;
pub const IFA_F_DADFAILED: u32 = 0x08;
pub const IFA_F_HOMEADDRESS: u32 = 0x10;
pub const IFA_F_DEPRECATED: u32 = 0x20;
pub const IFA_F_TENTATIVE: u32 = 0x40;
pub const IFA_F_PERMANENT: u32 = 0x80;
pub const IFA_F_MANAGETEMPADDR: u32 = 0x100;
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;
pub const IFA_F_MCAUTOJOIN: u32 = 0x400;

/// `struct ifa_cacheinfo` lifetime meaning "forever".
pub const INFINITY_LIFE_TIME: u32 = 0xFFFF_FFFF;

/// `linux/if_link.h` attributes.
pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_LINK: u16 = 5;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_AF_SPEC: u16 = 26;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const IFLA_MACVLAN_MODE: u16 = 1;
pub const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;

/// `enum macvlan_mode`.
pub const MACVLAN_MODE_PRIVATE: u32 = 1;
pub const MACVLAN_MODE_VEPA: u32 = 2;
pub const MACVLAN_MODE_BRIDGE: u32 = 4;

/// `enum in6_addr_gen_mode`: no automatic link-local address.
pub const IN6_ADDR_GEN_MODE_NONE: u8 = 1;

/// `linux/if.h` interface flags.
pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x1_0000;

const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// Lengths of the fixed family headers.
const IFADDRMSG_LEN: usize = 8;
const IFINFOMSG_LEN: usize = 16;
const RTMSG_LEN: usize = 12;

/// Interface names are at most IFNAMSIZ-1 = 15 bytes.
pub const IFNAMSIZ: usize = 16;

/// Upper bound on link/address messages kept from one dump (a router with
/// thousands of VLANs stays well below).
const MAX_DUMP_ENTRIES: usize = 65_536;

// ===== plain data =====

/// Address scope (`rtm_scope` / `ifa_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Universe,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

impl Scope {
    pub const fn to_raw(self) -> u8 {
        match self {
            Scope::Universe => RT_SCOPE_UNIVERSE,
            Scope::Site => RT_SCOPE_SITE,
            Scope::Link => RT_SCOPE_LINK,
            Scope::Host => RT_SCOPE_HOST,
            Scope::Nowhere => RT_SCOPE_NOWHERE,
            Scope::Other(n) => n,
        }
    }

    pub const fn from_raw(n: u8) -> Scope {
        match n {
            RT_SCOPE_UNIVERSE => Scope::Universe,
            RT_SCOPE_SITE => Scope::Site,
            RT_SCOPE_LINK => Scope::Link,
            RT_SCOPE_HOST => Scope::Host,
            RT_SCOPE_NOWHERE => Scope::Nowhere,
            other => Scope::Other(other),
        }
    }
}

impl From<AddressScope> for Scope {
    fn from(scope: AddressScope) -> Self {
        match scope {
            AddressScope::Global => Scope::Universe,
            AddressScope::Site => Scope::Site,
            AddressScope::Link => Scope::Link,
            AddressScope::Host => Scope::Host,
            AddressScope::Nowhere => Scope::Nowhere,
        }
    }
}

/// An address to add to or delete from an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressSpec {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Point-to-point peer (`peer IP`).
    pub peer: Option<IpAddr>,
    /// IPv4 broadcast address (ignored for IPv6).
    pub broadcast: Option<Ipv4Addr>,
    /// IPv4 label such as `eth0:1` (ignored for IPv6, which has none).
    pub label: Option<String>,
    pub scope: Scope,
    /// `IFA_F_*` flags (NODAD, HOMEADDRESS, MANAGETEMPADDR, NOPREFIXROUTE,
    /// MCAUTOJOIN).
    pub flags: u32,
    /// Preferred lifetime in seconds; `Some(0)` makes the address deprecated
    /// (never chosen as a source). `None` = forever.
    pub preferred_lft: Option<u32>,
}

impl AddressSpec {
    /// A plain address with keepalived's defaults for a VIP: global scope,
    /// and `IFA_F_NODAD` for IPv6 (a VIP moving between routers must work at
    /// once, not after duplicate address detection).
    pub fn vip(ifindex: u32, addr: IpAddr, prefix_len: u8) -> AddressSpec {
        AddressSpec {
            ifindex,
            addr,
            prefix_len,
            peer: None,
            broadcast: None,
            label: None,
            scope: Scope::Universe,
            flags: if addr.is_ipv6() { IFA_F_NODAD } else { 0 },
            preferred_lft: None,
        }
    }

    /// The parent's IPv6 link-local address copied onto an IPv6 VMAC, as
    /// keepalived does (the VMAC itself gets none, see [`Rtnl::create_vmac`]):
    /// adverts then leave the VMAC with the parent's link-local source.
    /// Scope link, /64, NODAD, and deprecated (preferred lifetime 0) so the
    /// kernel never picks it as a source for other traffic.
    pub fn vmac_link_local(vmac_ifindex: u32, link_local: Ipv6Addr) -> AddressSpec {
        AddressSpec {
            scope: Scope::Link,
            preferred_lft: Some(0),
            ..AddressSpec::vip(vmac_ifindex, IpAddr::V6(link_local), 64)
        }
    }

    /// From a `virtual_ipaddress` / `virtual_ipaddress_excluded` line; the
    /// caller resolved `dev` (or the instance's interface) to `ifindex`.
    pub fn from_virtual_address(va: &VirtualAddress, ifindex: u32) -> AddressSpec {
        let addr = va.addr.value;
        let mut spec = AddressSpec::vip(ifindex, addr, va.prefix_len);
        spec.peer = va.peer;
        spec.label = va.label.as_ref().map(|l| l.value.clone());
        if let Some(scope) = va.scope {
            spec.scope = scope.into();
        }
        if let IpAddr::V4(v4) = addr {
            spec.broadcast = match &va.broadcast {
                Some(Broadcast::Address(b)) => Some(*b),
                Some(Broadcast::Computed) => ipv4_broadcast(v4, va.prefix_len),
                Some(Broadcast::None) | None => None,
            };
        }
        if va.home {
            spec.flags |= IFA_F_HOMEADDRESS;
        }
        if va.nodad {
            spec.flags |= IFA_F_NODAD;
        }
        if va.mngtmpaddr {
            spec.flags |= IFA_F_MANAGETEMPADDR;
        }
        if va.noprefixroute {
            spec.flags |= IFA_F_NOPREFIXROUTE;
        }
        if va.autojoin {
            spec.flags |= IFA_F_MCAUTOJOIN;
        }
        spec.preferred_lft = va.preferred_lft;
        spec
    }
}

/// `brd +`: the all-ones host part of `addr/prefix_len`; none for /31 and
/// /32, which have no broadcast address (RFC 3021).
pub fn ipv4_broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    Some(Ipv4Addr::from(u32::from(addr) | host_mask))
}

/// An address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressInfo {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Set when the peer (`IFA_ADDRESS`) differs from the local address.
    pub peer: Option<IpAddr>,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    pub scope: Scope,
    /// `IFA_F_*` (the 32-bit `IFA_FLAGS` when present).
    pub flags: u32,
}

impl AddressInfo {
    /// A primary IPv4 address (not `secondary`), or any IPv6 address.
    pub fn is_primary(&self) -> bool {
        self.flags & IFA_F_SECONDARY == 0
    }

    /// Usable as a source now: not tentative, not failed DAD.
    pub fn is_usable_source(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }
}

/// RFC 2863 operational state (`IFLA_OPERSTATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
    Other(u8),
}

impl OperState {
    pub const fn from_raw(n: u8) -> OperState {
        match n {
            0 => OperState::Unknown,
            1 => OperState::NotPresent,
            2 => OperState::Down,
            3 => OperState::LowerLayerDown,
            4 => OperState::Testing,
            5 => OperState::Dormant,
            6 => OperState::Up,
            other => OperState::Other(other),
        }
    }
}

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    /// Hardware address, when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    pub operstate: OperState,
    /// `ARPHRD_*` link type.
    pub link_type: u16,
    /// The lower device (`IFLA_LINK`), e.g. a macvlan's parent.
    pub parent_ifindex: Option<u32>,
    /// `IFLA_INFO_KIND`: "macvlan", "veth", "bridge", ...
    pub kind: Option<String>,
    /// `IFLA_MACVLAN_MODE` for macvlan links.
    pub macvlan_mode: Option<u32>,
}

impl LinkInfo {
    /// Administratively up (`ip link set up`).
    pub fn is_admin_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// Up and running (carrier present): what VRRP tracks. keepalived treats
    /// an interface as down unless both IFF_UP and IFF_RUNNING are set.
    pub fn is_up(&self) -> bool {
        self.flags & (IFF_UP | IFF_RUNNING) == (IFF_UP | IFF_RUNNING)
    }
}

/// Kind of a route (`rtm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteKind {
    const fn to_raw(self) -> u8 {
        match self {
            RouteKind::Unicast => RTN_UNICAST,
            RouteKind::Blackhole => RTN_BLACKHOLE,
            RouteKind::Unreachable => RTN_UNREACHABLE,
            RouteKind::Prohibit => RTN_PROHIBIT,
        }
    }
}

impl From<RouteType> for RouteKind {
    fn from(t: RouteType) -> Self {
        match t {
            RouteType::Unicast => RouteKind::Unicast,
            RouteType::Blackhole => RouteKind::Blackhole,
            RouteType::Unreachable => RouteKind::Unreachable,
            RouteType::Prohibit => RouteKind::Prohibit,
        }
    }
}

/// A route to add or delete (`virtual_routes`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    pub kind: RouteKind,
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub via: Option<IpAddr>,
    /// Output interface (`dev`).
    pub ifindex: Option<u32>,
    /// Preferred source (`src`).
    pub src: Option<IpAddr>,
    pub metric: Option<u32>,
    /// Routing table; `None` = main.
    pub table: Option<u32>,
    /// `None` = what `ip route` picks: link for a unicast route without a
    /// gateway, universe otherwise.
    pub scope: Option<Scope>,
    pub onlink: bool,
}

impl RouteSpec {
    /// From a `virtual_routes` line; the caller resolved `dev` to `ifindex`.
    pub fn from_virtual_route(vr: &VirtualRoute, ifindex: Option<u32>) -> RouteSpec {
        RouteSpec {
            kind: vr.route_type.into(),
            dst: vr.dest.value,
            prefix_len: vr.prefix_len,
            via: vr.via,
            ifindex,
            src: vr.src,
            metric: vr.metric,
            table: vr.table,
            scope: vr.scope.map(Scope::from),
            onlink: vr.onlink,
        }
    }

    fn effective_scope(&self) -> Scope {
        match self.scope {
            Some(scope) => scope,
            None if self.kind == RouteKind::Unicast && self.via.is_none() && self.dst.is_ipv4() => {
                Scope::Link
            }
            None => Scope::Universe,
        }
    }
}

/// What an add request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The kernel already had it (EEXIST): not an error for a reconciler.
    AlreadyPresent,
}

/// What a delete request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// It was not there (EADDRNOTAVAIL, ESRCH, ENODEV): already the desired state.
    NotPresent,
}

/// A macvlan VMAC (RFC 5798 7.3 virtual router MAC) to create.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VmacSpec {
    /// Interface name (`vrrp.VRID` unless configured).
    pub name: String,
    /// The interface it sits on (the instance's `interface`).
    pub parent_ifindex: u32,
    pub mac: [u8; 6],
}

/// RFC 5798 7.3: the virtual router MAC, 00-00-5E-00-01-{VRID} for IPv4
/// and 00-00-5E-00-02-{VRID} for IPv6.
pub const fn vmac_address(ipv6: bool, vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// keepalived's default VMAC interface name: `vrrp.VRID`.
pub fn vmac_default_name(vrid: u8) -> String {
    format!("vrrp.{vrid}")
}

// ===== message building (pure) =====

fn ip_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family_of(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

fn invalid(what: &'static str, detail: impl Into<String>) -> Error {
    Error::Invalid {
        what,
        detail: detail.into(),
    }
}

fn check_name(what: &'static str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.contains(['/', ' ', '\0']) {
        return Err(invalid(what, format!("bad interface name {name:?}")));
    }
    Ok(())
}

/// The RTM_NEWADDR (`add`) or RTM_DELADDR request for `spec`.
pub fn address_request(spec: &AddressSpec, add: bool) -> Result<MessageBuilder, Error> {
    let what = if add { "add address" } else { "delete address" };
    let max_prefix = if spec.addr.is_ipv4() { 32 } else { 128 };
    if spec.prefix_len > max_prefix {
        return Err(invalid(
            what,
            format!("prefix /{} too long", spec.prefix_len),
        ));
    }
    if spec.ifindex == 0 {
        return Err(invalid(what, "no interface"));
    }
    if let Some(peer) = &spec.peer {
        if peer.is_ipv4() != spec.addr.is_ipv4() {
            return Err(invalid(what, "peer of another address family"));
        }
    }
    let (kind, flags) = if add {
        (RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)
    } else {
        (RTM_DELADDR, NLM_F_REQUEST)
    };
    let mut msg = MessageBuilder::new(kind, flags);
    let mut header = [0u8; IFADDRMSG_LEN];
    header[0] = family_of(&spec.addr);
    header[1] = spec.prefix_len;
    // The 8-bit field carries the low flags; IFA_FLAGS carries all of them.
    header[2] = (spec.flags & 0xff) as u8;
    header[3] = spec.scope.to_raw();
    header[4..8].copy_from_slice(&spec.ifindex.to_ne_bytes());
    msg.push_header(&header);
    let local = ip_bytes(&spec.addr);
    msg.attr(IFA_LOCAL, &local);
    match &spec.peer {
        Some(peer) => msg.attr(IFA_ADDRESS, &ip_bytes(peer)),
        None => msg.attr(IFA_ADDRESS, &local),
    };
    if add {
        if spec.addr.is_ipv4() {
            if let Some(brd) = spec.broadcast {
                msg.attr(IFA_BROADCAST, &brd.octets());
            }
            if let Some(label) = &spec.label {
                check_name(what, label)?;
                msg.attr_str(IFA_LABEL, label);
            }
        }
        if let Some(preferred) = spec.preferred_lft {
            // struct ifa_cacheinfo { prefered, valid, cstamp, tstamp }.
            let mut cache = [0u8; 16];
            cache[0..4].copy_from_slice(&preferred.to_ne_bytes());
            cache[4..8].copy_from_slice(&INFINITY_LIFE_TIME.to_ne_bytes());
            msg.attr(IFA_CACHEINFO, &cache);
        }
        msg.attr_u32(IFA_FLAGS, spec.flags);
    }
    Ok(msg)
}

/// The RTM_NEWROUTE (`add`) or RTM_DELROUTE request for `spec`.
pub fn route_request(spec: &RouteSpec, add: bool) -> Result<MessageBuilder, Error> {
    let what = if add { "add route" } else { "delete route" };
    let v4 = spec.dst.is_ipv4();
    let max_prefix = if v4 { 32 } else { 128 };
    if spec.prefix_len > max_prefix {
        return Err(invalid(
            what,
            format!("prefix /{} too long", spec.prefix_len),
        ));
    }
    for (name, other) in [("gateway", &spec.via), ("source", &spec.src)] {
        if other.is_some_and(|a| a.is_ipv4() != v4) {
            return Err(invalid(what, format!("{name} of another address family")));
        }
    }
    if spec.kind != RouteKind::Unicast && spec.via.is_some() {
        return Err(invalid(what, "only unicast routes have a gateway"));
    }
    let (kind, flags) = if add {
        (RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)
    } else {
        (RTM_DELROUTE, NLM_F_REQUEST)
    };
    let table = spec.table.unwrap_or(RT_TABLE_MAIN);
    let mut header = [0u8; RTMSG_LEN];
    header[0] = family_of(&spec.dst);
    header[1] = spec.prefix_len;
    // Tables above 255 only fit in RTA_TABLE.
    header[4] = u8::try_from(table).unwrap_or(RT_TABLE_UNSPEC);
    header[5] = if add {
        RTPROT_KEEPALIVED
    } else {
        RTPROT_UNSPEC
    };
    // On delete, RT_SCOPE_NOWHERE means "any scope" unless one was given.
    header[6] = match (add, spec.scope) {
        (false, None) => RT_SCOPE_NOWHERE,
        _ => spec.effective_scope().to_raw(),
    };
    header[7] = spec.kind.to_raw();
    let rtm_flags = if spec.onlink { RTNH_F_ONLINK } else { 0 };
    header[8..12].copy_from_slice(&rtm_flags.to_ne_bytes());
    let mut msg = MessageBuilder::new(kind, flags);
    msg.push_header(&header);
    msg.attr(RTA_DST, &ip_bytes(&spec.dst));
    if let Some(via) = &spec.via {
        msg.attr(RTA_GATEWAY, &ip_bytes(via));
    }
    if let Some(ifindex) = spec.ifindex {
        msg.attr_u32(RTA_OIF, ifindex);
    }
    if let Some(src) = &spec.src {
        msg.attr(RTA_PREFSRC, &ip_bytes(src));
    }
    if let Some(metric) = spec.metric {
        msg.attr_u32(RTA_PRIORITY, metric);
    }
    msg.attr_u32(RTA_TABLE, table);
    Ok(msg)
}

fn ifinfomsg(ifindex: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut header = [0u8; IFINFOMSG_LEN];
    header[0] = AF_UNSPEC;
    header[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    header[8..12].copy_from_slice(&flags.to_ne_bytes());
    header[12..16].copy_from_slice(&change.to_ne_bytes());
    header
}

/// The RTM_NEWLINK request creating a macvlan VMAC the way keepalived does:
/// mode private, the VRRP MAC, on top of the parent. [`Rtnl::create_vmac`]
/// then sets `addrgenmode none` (no automatic IPv6 link-local address; the
/// daemon adds the parent's link-local itself, as keepalived does) and up.
pub fn vmac_request(spec: &VmacSpec) -> Result<MessageBuilder, Error> {
    check_name("create VMAC", &spec.name)?;
    if spec.parent_ifindex == 0 {
        return Err(invalid("create VMAC", "no parent interface"));
    }
    let mut msg = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
    msg.push_header(&ifinfomsg(0, 0, 0));
    msg.attr_str(IFLA_IFNAME, &spec.name);
    msg.attr_u32(IFLA_LINK, spec.parent_ifindex);
    msg.attr(IFLA_ADDRESS, &spec.mac);
    let info = msg.begin_nested(IFLA_LINKINFO);
    msg.attr_str(IFLA_INFO_KIND, "macvlan");
    let data = msg.begin_nested(IFLA_INFO_DATA);
    msg.attr_u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_PRIVATE);
    msg.end_nested(data);
    msg.end_nested(info);
    Ok(msg)
}

/// RTM_NEWLINK setting `addrgenmode none` on an existing link, so bringing
/// it up adds no IPv6 link-local address. (Linux refuses IFLA_AF_SPEC in
/// the creating request with EAFNOSUPPORT, as `ip link add ... addrgenmode`
/// shows, so it is a second request made while the link is still down.)
pub fn addr_gen_mode_none_request(ifindex: u32) -> MessageBuilder {
    let mut msg = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST);
    msg.push_header(&ifinfomsg(ifindex, 0, 0));
    let af_spec = msg.begin_nested(IFLA_AF_SPEC);
    let inet6 = msg.begin_nested(u16::from(AF_INET6));
    msg.attr_u8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
    msg.end_nested(inet6);
    msg.end_nested(af_spec);
    msg
}

/// RTM_NEWLINK changing only IFF_UP of an existing link.
pub fn set_link_up_request(ifindex: u32, up: bool) -> MessageBuilder {
    let mut msg = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST);
    msg.push_header(&ifinfomsg(ifindex, if up { IFF_UP } else { 0 }, IFF_UP));
    msg
}

// ===== parsing (pure) =====

fn parse_ip(family: u8, value: &[u8], kind: u16) -> Result<IpAddr, WireError> {
    match family {
        AF_INET => {
            let octets: [u8; 4] = value.try_into().map_err(|_| WireError::BadAttributeSize {
                kind,
                expected: 4,
                got: value.len(),
            })?;
            Ok(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        _ => {
            let octets: [u8; 16] = value.try_into().map_err(|_| WireError::BadAttributeSize {
                kind,
                expected: 16,
                got: value.len(),
            })?;
            Ok(IpAddr::V6(Ipv6Addr::from(octets)))
        }
    }
}

/// Read an RTM_NEWADDR / RTM_DELADDR message. `Ok(None)` for families other
/// than IPv4 and IPv6 (or an address-less message).
pub fn parse_address(msg: &Message<'_>) -> Result<Option<AddressInfo>, WireError> {
    let (header, attrs) = msg.split_header(IFADDRMSG_LEN)?;
    let family = header[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let mut local = None;
    let mut address = None;
    let mut broadcast = None;
    let mut label = None;
    let mut flags = u32::from(header[2]);
    for attr in attrs {
        let attr = attr?;
        match attr.kind() {
            IFA_LOCAL => local = Some(parse_ip(family, attr.value, IFA_LOCAL)?),
            IFA_ADDRESS => address = Some(parse_ip(family, attr.value, IFA_ADDRESS)?),
            IFA_BROADCAST => {
                if let IpAddr::V4(b) = parse_ip(AF_INET, attr.value, IFA_BROADCAST)? {
                    broadcast = Some(b);
                }
            }
            IFA_LABEL => label = Some(attr.as_str()?.to_owned()),
            IFA_FLAGS => flags = attr.as_u32()?,
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equal to it otherwise (IPv6 often sends only
    // IFA_ADDRESS).
    let Some(addr) = local.or(address) else {
        return Ok(None);
    };
    let peer = match (local, address) {
        (Some(l), Some(a)) if l != a => Some(a),
        _ => None,
    };
    Ok(Some(AddressInfo {
        ifindex: u32::from_ne_bytes([header[4], header[5], header[6], header[7]]),
        addr,
        prefix_len: header[1],
        peer,
        broadcast,
        label,
        scope: Scope::from_raw(header[3]),
        flags,
    }))
}

fn parse_linkinfo(attrs: Attrs<'_>, link: &mut LinkInfo) -> Result<(), WireError> {
    for attr in attrs {
        let attr = attr?;
        match attr.kind() {
            IFLA_INFO_KIND => link.kind = Some(attr.as_str()?.to_owned()),
            // Only macvlan data is read; other kinds reuse the numbers.
            IFLA_INFO_DATA if link.kind.as_deref() == Some("macvlan") => {
                if let Some(mode) = attr.nested().find(IFLA_MACVLAN_MODE) {
                    link.macvlan_mode = Some(mode.as_u32()?);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Read an RTM_NEWLINK / RTM_DELLINK message.
pub fn parse_link(msg: &Message<'_>) -> Result<LinkInfo, WireError> {
    let (header, attrs) = msg.split_header(IFINFOMSG_LEN)?;
    let mut link = LinkInfo {
        ifindex: u32::from_ne_bytes([header[4], header[5], header[6], header[7]]),
        name: String::new(),
        mac: None,
        mtu: 0,
        flags: u32::from_ne_bytes([header[8], header[9], header[10], header[11]]),
        operstate: OperState::Unknown,
        link_type: u16::from_ne_bytes([header[2], header[3]]),
        parent_ifindex: None,
        kind: None,
        macvlan_mode: None,
    };
    for attr in attrs {
        let attr = attr?;
        match attr.kind() {
            IFLA_IFNAME => link.name = attr.as_str()?.to_owned(),
            IFLA_ADDRESS => link.mac = attr.value.try_into().ok(),
            IFLA_MTU => link.mtu = attr.as_u32()?,
            IFLA_OPERSTATE => link.operstate = OperState::from_raw(attr.as_u8()?),
            IFLA_LINK => link.parent_ifindex = Some(attr.as_u32()?),
            IFLA_LINKINFO => parse_linkinfo(attr.nested(), &mut link)?,
            _ => {}
        }
    }
    Ok(link)
}

/// One rtnetlink notification, as the kernel sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// RTM_NEWLINK: a link appeared or changed (flags, name, MTU, ...).
    NewLink(LinkInfo),
    /// RTM_DELLINK: a link is gone.
    DelLink(LinkInfo),
    NewAddress(AddressInfo),
    DelAddress(AddressInfo),
}

/// Read one message from the event socket. `Ok(None)` for messages that are
/// not link/address notifications (or families we do not handle).
pub fn parse_notification(msg: &Message<'_>) -> Result<Option<Notification>, WireError> {
    Ok(match msg.kind {
        RTM_NEWLINK => Some(Notification::NewLink(parse_link(msg)?)),
        RTM_DELLINK => Some(Notification::DelLink(parse_link(msg)?)),
        RTM_NEWADDR => parse_address(msg)?.map(Notification::NewAddress),
        RTM_DELADDR => parse_address(msg)?.map(Notification::DelAddress),
        _ => None,
    })
}

// ===== the command socket =====

/// rtnetlink requests (blocking, answered at once by the kernel).
#[derive(Debug)]
pub struct Rtnl {
    sock: NetlinkSocket,
}

fn is_errno(err: &Error, errnos: &[i32]) -> bool {
    err.errno().is_some_and(|e| errnos.contains(&e))
}

impl Rtnl {
    pub fn open() -> Result<Rtnl, Error> {
        Ok(Rtnl {
            sock: NetlinkSocket::open(libc::NETLINK_ROUTE, false)?,
        })
    }

    /// The netlink port id of the command socket (for logs).
    pub fn port_id(&self) -> u32 {
        self.sock.port_id()
    }

    fn add(&mut self, msg: MessageBuilder, what: &'static str) -> Result<Added, Error> {
        match self.sock.request(msg, what) {
            Ok(()) => Ok(Added::Added),
            Err(err) if is_errno(&err, &[libc::EEXIST]) => Ok(Added::AlreadyPresent),
            Err(err) => Err(err),
        }
    }

    fn delete(
        &mut self,
        msg: MessageBuilder,
        what: &'static str,
        absent: &[i32],
    ) -> Result<Deleted, Error> {
        match self.sock.request(msg, what) {
            Ok(()) => Ok(Deleted::Deleted),
            Err(err) if is_errno(&err, absent) => Ok(Deleted::NotPresent),
            Err(err) => Err(err),
        }
    }

    /// Add an address; EEXIST is [`Added::AlreadyPresent`].
    pub fn add_address(&mut self, spec: &AddressSpec) -> Result<Added, Error> {
        self.add(address_request(spec, true)?, "add address")
    }

    /// Delete an address; EADDRNOTAVAIL (and ENODEV: the interface is gone)
    /// is [`Deleted::NotPresent`].
    pub fn del_address(&mut self, spec: &AddressSpec) -> Result<Deleted, Error> {
        self.delete(
            address_request(spec, false)?,
            "delete address",
            &[libc::EADDRNOTAVAIL, libc::ENODEV],
        )
    }

    /// Every IPv4 and IPv6 address, or those of one interface.
    pub fn addresses(&mut self, ifindex: Option<u32>) -> Result<Vec<AddressInfo>, Error> {
        let mut msg = MessageBuilder::new(RTM_GETADDR, NLM_F_REQUEST);
        msg.push_header(&[0; IFADDRMSG_LEN]);
        let mut out = Vec::new();
        self.sock.dump(msg, "dump addresses", |m| {
            if let Some(info) = parse_address(m)? {
                if ifindex.map_or(true, |i| i == info.ifindex) && out.len() < MAX_DUMP_ENTRIES {
                    out.push(info);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every link.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, Error> {
        let mut msg = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST);
        msg.push_header(&ifinfomsg(0, 0, 0));
        let mut out = Vec::new();
        self.sock.dump(msg, "dump links", |m| {
            if m.kind == RTM_NEWLINK && out.len() < MAX_DUMP_ENTRIES {
                out.push(parse_link(m)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn get_link(&mut self, msg: MessageBuilder) -> Result<Option<LinkInfo>, Error> {
        let mut found = None;
        let result = self.sock.request_with(msg, "get link", |m| {
            if m.kind == RTM_NEWLINK {
                found = Some(parse_link(m)?);
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(found),
            Err(err) if is_errno(&err, &[libc::ENODEV]) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The link called `name`, if any.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<LinkInfo>, Error> {
        check_name("get link", name)?;
        let mut msg = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST);
        msg.push_header(&ifinfomsg(0, 0, 0));
        msg.attr_str(IFLA_IFNAME, name);
        self.get_link(msg)
    }

    /// The link with index `ifindex`, if any.
    pub fn link_by_index(&mut self, ifindex: u32) -> Result<Option<LinkInfo>, Error> {
        let mut msg = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST);
        msg.push_header(&ifinfomsg(ifindex, 0, 0));
        self.get_link(msg)
    }

    /// Set a link administratively up or down.
    pub fn set_link_up(&mut self, ifindex: u32, up: bool) -> Result<(), Error> {
        self.sock
            .request(set_link_up_request(ifindex, up), "set link up/down")
    }

    /// Delete a link (a VMAC); ENODEV is [`Deleted::NotPresent`].
    pub fn delete_link(&mut self, ifindex: u32) -> Result<Deleted, Error> {
        let mut msg = MessageBuilder::new(RTM_DELLINK, NLM_F_REQUEST);
        msg.push_header(&ifinfomsg(ifindex, 0, 0));
        self.delete(msg, "delete link", &[libc::ENODEV])
    }

    /// Create (or adopt, after a restart) the macvlan VMAC and set it up.
    ///
    /// An existing link of that name is adopted when it is a macvlan on the
    /// same parent (its MAC is then set to `spec.mac`); any other link of
    /// that name is an error, never deleted.
    pub fn create_vmac(&mut self, spec: &VmacSpec) -> Result<LinkInfo, Error> {
        let created = self.add(vmac_request(spec)?, "create VMAC")?;
        let link = self
            .link_by_name(&spec.name)?
            .ok_or_else(|| invalid("create VMAC", format!("{} vanished", spec.name)))?;
        if created == Added::AlreadyPresent {
            if link.kind.as_deref() != Some("macvlan")
                || link.parent_ifindex != Some(spec.parent_ifindex)
            {
                return Err(invalid(
                    "create VMAC",
                    format!(
                        "{} exists and is not a macvlan on ifindex {}",
                        spec.name, spec.parent_ifindex
                    ),
                ));
            }
            if link.mac != Some(spec.mac) {
                let mut msg = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST);
                msg.push_header(&ifinfomsg(link.ifindex, 0, 0));
                msg.attr(IFLA_ADDRESS, &spec.mac);
                self.sock.request(msg, "set VMAC address")?;
            }
        }
        if created == Added::Added {
            self.sock.request(
                addr_gen_mode_none_request(link.ifindex),
                "set VMAC addrgenmode none",
            )?;
        }
        self.set_link_up(link.ifindex, true)?;
        self.link_by_index(link.ifindex)?
            .ok_or_else(|| invalid("create VMAC", format!("{} vanished", spec.name)))
    }

    /// Add a route; EEXIST is [`Added::AlreadyPresent`].
    pub fn add_route(&mut self, spec: &RouteSpec) -> Result<Added, Error> {
        self.add(route_request(spec, true)?, "add route")
    }

    /// Delete a route; ESRCH (no such route) is [`Deleted::NotPresent`].
    pub fn del_route(&mut self, spec: &RouteSpec) -> Result<Deleted, Error> {
        self.delete(
            route_request(spec, false)?,
            "delete route",
            &[libc::ESRCH, libc::ENODEV],
        )
    }
}

// ===== the event socket =====

/// What changed, as the VRRP manager needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtnlEvent {
    /// The link became up and running (or was first seen so).
    LinkUp {
        ifindex: u32,
        name: String,
    },
    /// The link lost IFF_UP or IFF_RUNNING (or was first seen so).
    LinkDown {
        ifindex: u32,
        name: String,
    },
    /// The link was deleted.
    LinkRemoved {
        ifindex: u32,
        name: String,
    },
    AddressAdded(AddressInfo),
    /// An address disappeared. IPv6 notifications do not say who removed
    /// it, so the manager compares with the addresses it wants.
    AddressRemoved(AddressInfo),
}

/// Datagrams read per [`RtnlEvents::read_events`] call before yielding back
/// to the loop (VRRP adverts must not wait behind an event storm).
const MAX_EVENT_DATAGRAMS: usize = 256;
/// Event socket receive buffer: room for bursts (many VMACs going up).
const EVENT_RCVBUF: libc::c_int = 4 * 1024 * 1024;
/// Links remembered for up/down edge detection.
const MAX_TRACKED_LINKS: usize = 65_536;

/// Non-blocking subscription to link and IPv4/IPv6 address changes.
#[derive(Debug)]
pub struct RtnlEvents {
    sock: NetlinkSocket,
    /// Last up state per ifindex, so only transitions are reported.
    link_up: HashMap<u32, bool>,
}

impl RtnlEvents {
    pub fn open() -> Result<RtnlEvents, Error> {
        let sock = NetlinkSocket::open(libc::NETLINK_ROUTE, true)?;
        let fd = sock.as_raw_fd();
        // A larger buffer makes ENOBUFS (lost events) rarer; FORCE works as
        // root, plain RCVBUF is capped by net.core.rmem_max otherwise.
        if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, EVENT_RCVBUF).is_err() {
            let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, EVENT_RCVBUF);
        }
        for group in [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR] {
            sock.join_group(group)?;
        }
        Ok(RtnlEvents {
            sock,
            link_up: HashMap::new(),
        })
    }

    /// Seed the up/down memory from a link dump so the first notification
    /// of an unchanged link is not reported as a transition.
    pub fn seed_links(&mut self, links: &[LinkInfo]) {
        for link in links.iter().take(MAX_TRACKED_LINKS) {
            self.link_up.insert(link.ifindex, link.is_up());
        }
    }

    /// Read pending notifications into `out`. Returns `Ok(true)` when the
    /// socket is drained (WouldBlock), `Ok(false)` when the per-call bound
    /// was hit and the caller should call again before polling.
    ///
    /// `Err(Error::Overrun)` means the kernel dropped notifications (socket
    /// buffer full): the caller must re-read links and addresses.
    pub fn read_events(&mut self, out: &mut Vec<RtnlEvent>) -> Result<bool, Error> {
        for _ in 0..MAX_EVENT_DATAGRAMS {
            let datagram = match self.sock.recv() {
                Ok(Some(d)) => d,
                Ok(None) => return Ok(true),
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(Error::Overrun {
                        what: "link/address events",
                    })
                }
                Err(err) => return Err(err),
            };
            let mut notes = Vec::new();
            for message in super::wire::Messages::new(datagram) {
                // A malformed message ends this datagram, not the stream.
                let Ok(message) = message else { break };
                if let Ok(Some(note)) = parse_notification(&message) {
                    notes.push(note);
                }
            }
            for note in notes {
                self.translate(note, out);
            }
        }
        Ok(false)
    }

    fn translate(&mut self, note: Notification, out: &mut Vec<RtnlEvent>) {
        match note {
            Notification::NewLink(link) => {
                let up = link.is_up();
                let previous = self.link_up.get(&link.ifindex).copied();
                if previous == Some(up) {
                    return;
                }
                if previous.is_some() || self.link_up.len() < MAX_TRACKED_LINKS {
                    self.link_up.insert(link.ifindex, up);
                }
                let (ifindex, name) = (link.ifindex, link.name);
                out.push(if up {
                    RtnlEvent::LinkUp { ifindex, name }
                } else {
                    RtnlEvent::LinkDown { ifindex, name }
                });
            }
            Notification::DelLink(link) => {
                self.link_up.remove(&link.ifindex);
                out.push(RtnlEvent::LinkRemoved {
                    ifindex: link.ifindex,
                    name: link.name,
                });
            }
            Notification::NewAddress(addr) => out.push(RtnlEvent::AddressAdded(addr)),
            Notification::DelAddress(addr) => out.push(RtnlEvent::AddressRemoved(addr)),
        }
    }
}

impl AsRawFd for RtnlEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl mio::event::Source for RtnlEvents {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.sock.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.sock.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        mio::unix::SourceFd(&self.sock.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::{Messages, NLMSG_HDRLEN};

    /// Our constants against the libc crate's copies of the uapi headers.
    #[test]
    fn constants_match_libc() {
        assert_eq!(RTM_NEWLINK, libc::RTM_NEWLINK);
        assert_eq!(RTM_DELLINK, libc::RTM_DELLINK);
        assert_eq!(RTM_GETLINK, libc::RTM_GETLINK);
        assert_eq!(RTM_NEWADDR, libc::RTM_NEWADDR);
        assert_eq!(RTM_DELADDR, libc::RTM_DELADDR);
        assert_eq!(RTM_GETADDR, libc::RTM_GETADDR);
        assert_eq!(RTM_NEWROUTE, libc::RTM_NEWROUTE);
        assert_eq!(RTM_DELROUTE, libc::RTM_DELROUTE);
        assert_eq!(RTM_GETROUTE, libc::RTM_GETROUTE);
        assert_eq!(RTNLGRP_LINK, libc::RTNLGRP_LINK);
        assert_eq!(RTNLGRP_IPV4_IFADDR, libc::RTNLGRP_IPV4_IFADDR);
        assert_eq!(RTNLGRP_IPV6_IFADDR, libc::RTNLGRP_IPV6_IFADDR);
        assert_eq!(RT_SCOPE_UNIVERSE, libc::RT_SCOPE_UNIVERSE);
        assert_eq!(RT_SCOPE_SITE, libc::RT_SCOPE_SITE);
        assert_eq!(RT_SCOPE_LINK, libc::RT_SCOPE_LINK);
        assert_eq!(RT_SCOPE_HOST, libc::RT_SCOPE_HOST);
        assert_eq!(RT_SCOPE_NOWHERE, libc::RT_SCOPE_NOWHERE);
        assert_eq!(RTN_UNSPEC, libc::RTN_UNSPEC);
        assert_eq!(RTN_UNICAST, libc::RTN_UNICAST);
        assert_eq!(RTN_LOCAL, libc::RTN_LOCAL);
        assert_eq!(RTN_BLACKHOLE, libc::RTN_BLACKHOLE);
        assert_eq!(RTN_UNREACHABLE, libc::RTN_UNREACHABLE);
        assert_eq!(RTN_PROHIBIT, libc::RTN_PROHIBIT);
        assert_eq!(RTPROT_UNSPEC, libc::RTPROT_UNSPEC);
        assert_eq!(RTA_DST, libc::RTA_DST);
        assert_eq!(RTA_OIF, libc::RTA_OIF);
        assert_eq!(RTA_GATEWAY, libc::RTA_GATEWAY);
        assert_eq!(RTA_PRIORITY, libc::RTA_PRIORITY);
        assert_eq!(RTA_PREFSRC, libc::RTA_PREFSRC);
        assert_eq!(RTA_TABLE, libc::RTA_TABLE);
        assert_eq!(IFA_ADDRESS, libc::IFA_ADDRESS);
        assert_eq!(IFA_LOCAL, libc::IFA_LOCAL);
        assert_eq!(IFA_LABEL, libc::IFA_LABEL);
        assert_eq!(IFA_BROADCAST, libc::IFA_BROADCAST);
        assert_eq!(IFA_CACHEINFO, libc::IFA_CACHEINFO);
        assert_eq!(IFA_F_SECONDARY, libc::IFA_F_SECONDARY);
        assert_eq!(IFA_F_NODAD, libc::IFA_F_NODAD);
        assert_eq!(IFA_F_DADFAILED, libc::IFA_F_DADFAILED);
        assert_eq!(IFA_F_HOMEADDRESS, libc::IFA_F_HOMEADDRESS);
        assert_eq!(IFA_F_DEPRECATED, libc::IFA_F_DEPRECATED);
        assert_eq!(IFA_F_TENTATIVE, libc::IFA_F_TENTATIVE);
        assert_eq!(IFA_F_PERMANENT, libc::IFA_F_PERMANENT);
        assert_eq!(IFLA_ADDRESS, libc::IFLA_ADDRESS);
        assert_eq!(IFLA_IFNAME, libc::IFLA_IFNAME);
        assert_eq!(IFLA_MTU, libc::IFLA_MTU);
        assert_eq!(IFLA_LINK, libc::IFLA_LINK);
        assert_eq!(IFLA_OPERSTATE, libc::IFLA_OPERSTATE);
        assert_eq!(IFLA_LINKINFO, libc::IFLA_LINKINFO);
        assert_eq!(IFLA_AF_SPEC, libc::IFLA_AF_SPEC);
        assert_eq!(IFLA_INFO_KIND, libc::IFLA_INFO_KIND);
        assert_eq!(IFLA_INFO_DATA, libc::IFLA_INFO_DATA);
        assert_eq!(IFF_UP, libc::IFF_UP as u32);
        assert_eq!(IFF_RUNNING, libc::IFF_RUNNING as u32);
        assert_eq!(IFF_LOWER_UP, libc::IFF_LOWER_UP as u32);
        assert_eq!(OperState::from_raw(libc::IF_OPER_UP as u8), OperState::Up);
        assert_eq!(
            OperState::from_raw(libc::IF_OPER_DOWN as u8),
            OperState::Down
        );
        assert_eq!(
            OperState::from_raw(libc::IF_OPER_LOWERLAYERDOWN as u8),
            OperState::LowerLayerDown
        );
    }

    /// Bytes of `ip addr add 10.99.0.100/24 brd 10.99.0.255 dev <ifindex 7>
    /// label eth0:vip scope link`, as this module builds them: header and
    /// attributes in order, checked field by field.
    #[test]
    fn address_request_layout() {
        let spec = AddressSpec {
            ifindex: 7,
            addr: "10.99.0.100".parse().unwrap(),
            prefix_len: 24,
            peer: None,
            broadcast: Some(Ipv4Addr::new(10, 99, 0, 255)),
            label: Some("eth0:vip".into()),
            scope: Scope::Link,
            flags: 0,
            preferred_lft: None,
        };
        let bytes = address_request(&spec, true).unwrap().finish();
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        assert_eq!(msg.kind, RTM_NEWADDR);
        assert_eq!(
            msg.flags,
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
            "EXCL makes a duplicate an EEXIST"
        );
        let (header, attrs) = msg.split_header(IFADDRMSG_LEN).unwrap();
        assert_eq!(header, &[AF_INET, 24, 0, RT_SCOPE_LINK, 7, 0, 0, 0]);
        let attrs: Vec<_> = attrs.map(|a| a.unwrap()).collect();
        let kinds: Vec<u16> = attrs.iter().map(|a| a.kind()).collect();
        assert_eq!(
            kinds,
            [IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST, IFA_LABEL, IFA_FLAGS]
        );
        assert_eq!(attrs[0].value, &[10, 99, 0, 100]);
        assert_eq!(attrs[1].value, &[10, 99, 0, 100]);
        assert_eq!(attrs[2].value, &[10, 99, 0, 255]);
        assert_eq!(attrs[3].value, b"eth0:vip\0");
        assert_eq!(bytes.len(), NLMSG_HDRLEN + 8 + 8 + 8 + 8 + 16 + 8);

        // Deletion: same address and prefix, no label/broadcast.
        let bytes = address_request(&spec, false).unwrap().finish();
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        assert_eq!((msg.kind, msg.flags), (RTM_DELADDR, NLM_F_REQUEST));
        let (_, attrs) = msg.split_header(IFADDRMSG_LEN).unwrap();
        let kinds: Vec<u16> = attrs.map(|a| a.unwrap().kind()).collect();
        assert_eq!(kinds, [IFA_LOCAL, IFA_ADDRESS]);
    }

    #[test]
    fn ipv6_vip_has_nodad_and_no_label() {
        let mut spec = AddressSpec::vip(3, "fd99::100".parse().unwrap(), 64);
        spec.label = Some("ignored".into());
        spec.preferred_lft = Some(0);
        assert_eq!(spec.flags, IFA_F_NODAD);
        let bytes = address_request(&spec, true).unwrap().finish();
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        let (header, attrs) = msg.split_header(IFADDRMSG_LEN).unwrap();
        assert_eq!(header[..4], [AF_INET6, 64, IFA_F_NODAD as u8, 0]);
        let attrs: Vec<_> = attrs.map(|a| a.unwrap()).collect();
        let kinds: Vec<u16> = attrs.iter().map(|a| a.kind()).collect();
        assert_eq!(kinds, [IFA_LOCAL, IFA_ADDRESS, IFA_CACHEINFO, IFA_FLAGS]);
        let cache = attrs[2].value;
        assert_eq!(cache[0..4], 0u32.to_ne_bytes());
        assert_eq!(cache[4..8], INFINITY_LIFE_TIME.to_ne_bytes());
        assert_eq!(attrs[3].as_u32().unwrap(), IFA_F_NODAD);
    }

    #[test]
    fn bad_requests_are_refused_before_the_kernel() {
        let mut spec = AddressSpec::vip(3, "10.0.0.1".parse().unwrap(), 33);
        assert!(matches!(
            address_request(&spec, true),
            Err(Error::Invalid { .. })
        ));
        spec.prefix_len = 32;
        spec.label = Some("far-too-long-label".into());
        assert!(address_request(&spec, true).is_err());
        spec.label = None;
        spec.peer = Some("::1".parse().unwrap());
        assert!(address_request(&spec, true).is_err());
        let route = RouteSpec {
            kind: RouteKind::Blackhole,
            dst: "10.1.0.0".parse().unwrap(),
            prefix_len: 16,
            via: Some("10.0.0.1".parse().unwrap()),
            ifindex: None,
            src: None,
            metric: None,
            table: None,
            scope: None,
            onlink: false,
        };
        assert!(route_request(&route, true).is_err());
        let vmac = VmacSpec {
            name: "vrrp.51/x".into(),
            parent_ifindex: 2,
            mac: vmac_address(false, 51),
        };
        assert!(vmac_request(&vmac).is_err());
    }

    #[test]
    fn route_request_layout() {
        let spec = RouteSpec {
            kind: RouteKind::Unicast,
            dst: "10.1.0.0".parse().unwrap(),
            prefix_len: 16,
            via: None,
            ifindex: Some(4),
            src: Some("10.99.0.100".parse().unwrap()),
            metric: Some(50),
            table: Some(1000),
            scope: None,
            onlink: false,
        };
        let bytes = route_request(&spec, true).unwrap().finish();
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        assert_eq!(msg.kind, RTM_NEWROUTE);
        let (header, attrs) = msg.split_header(RTMSG_LEN).unwrap();
        // family, dst_len, src_len, tos, table (>255: UNSPEC), proto, scope, type
        assert_eq!(
            header[..8],
            [
                AF_INET,
                16,
                0,
                0,
                RT_TABLE_UNSPEC,
                RTPROT_KEEPALIVED,
                RT_SCOPE_LINK,
                RTN_UNICAST
            ]
        );
        let attrs: Vec<_> = attrs.map(|a| a.unwrap()).collect();
        let kinds: Vec<u16> = attrs.iter().map(|a| a.kind()).collect();
        assert_eq!(
            kinds,
            [RTA_DST, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE]
        );
        assert_eq!(attrs[4].as_u32().unwrap(), 1000);

        let bytes = route_request(&spec, false).unwrap().finish();
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        let (header, _) = msg.split_header(RTMSG_LEN).unwrap();
        assert_eq!(msg.kind, RTM_DELROUTE);
        assert_eq!(header[5..7], [RTPROT_UNSPEC, RT_SCOPE_NOWHERE]);
    }

    #[test]
    fn vmac_request_layout() {
        let spec = VmacSpec {
            name: vmac_default_name(51),
            parent_ifindex: 2,
            mac: vmac_address(false, 51),
        };
        assert_eq!(spec.name, "vrrp.51");
        assert_eq!(spec.mac, [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(vmac_address(true, 52), [0, 0, 0x5e, 0, 2, 52]);
        let bytes = vmac_request(&spec).unwrap().finish();
        let msg = Messages::new(&bytes).next().unwrap().unwrap();
        let (_, attrs) = msg.split_header(IFINFOMSG_LEN).unwrap();
        let info = attrs.find(IFLA_LINKINFO).unwrap().nested();
        assert_eq!(
            info.find(IFLA_INFO_KIND).unwrap().as_str().unwrap(),
            "macvlan"
        );
        let data = info.find(IFLA_INFO_DATA).unwrap().nested();
        assert_eq!(
            data.find(IFLA_MACVLAN_MODE).unwrap().as_u32().unwrap(),
            MACVLAN_MODE_PRIVATE
        );
        assert_eq!(attrs.find(IFLA_LINK).unwrap().as_u32().unwrap(), 2);
        assert_eq!(attrs.find(IFLA_ADDRESS).unwrap().value, &spec.mac);
        // What the kernel reports back reads the same way.
        let link = parse_link(&msg).unwrap();
        assert_eq!(link.kind.as_deref(), Some("macvlan"));
        assert_eq!(link.macvlan_mode, Some(MACVLAN_MODE_PRIVATE));
        assert_eq!(link.parent_ifindex, Some(2));
        assert_eq!(link.mac, Some(spec.mac));
        assert_eq!(link.name, "vrrp.51");
    }

    #[test]
    fn broadcast_computation() {
        let a = Ipv4Addr::new(10, 99, 0, 100);
        assert_eq!(ipv4_broadcast(a, 24), Some(Ipv4Addr::new(10, 99, 0, 255)));
        assert_eq!(ipv4_broadcast(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(ipv4_broadcast(a, 31), None);
        assert_eq!(ipv4_broadcast(a, 32), None);
    }

    #[test]
    fn parsers_never_panic_on_cut_messages() {
        let spec = AddressSpec::vip(3, "fd99::100".parse().unwrap(), 64);
        let mut builder = address_request(&spec, true).unwrap();
        builder.attr_str(IFA_LABEL, "x");
        let bytes = builder.finish();
        for cut in 0..bytes.len() {
            // Re-stamp the length so the cut message is self-consistent.
            let mut b = bytes[..cut].to_vec();
            if b.len() >= 4 {
                let len = b.len() as u32;
                b[0..4].copy_from_slice(&len.to_ne_bytes());
            }
            for m in Messages::new(&b).flatten() {
                let _ = parse_notification(&m);
                let _ = parse_link(&m);
            }
        }
    }

    /// The kernel is the witness: `lo` exists in every namespace with
    /// 127.0.0.1/8 scope host, and `ip` agrees with what we parse.
    #[test]
    fn loopback_seen_by_kernel_and_ip() {
        let mut rtnl = Rtnl::open().unwrap();
        let lo = rtnl.link_by_name("lo").unwrap().expect("lo exists");
        assert_eq!(lo.link_type, libc::ARPHRD_LOOPBACK);
        assert_eq!(rtnl.link_by_index(lo.ifindex).unwrap().unwrap().name, "lo");
        assert_eq!(rtnl.link_by_name("krs-nope0").unwrap(), None);
        assert!(rtnl.links().unwrap().iter().any(|l| l.name == "lo"));
        let addrs = rtnl.addresses(Some(lo.ifindex)).unwrap();
        let ip = std::process::Command::new("ip")
            .args(["-o", "-4", "addr", "show", "dev", "lo"])
            .output();
        let Ok(ip) = ip else {
            eprintln!("skip the ip(8) comparison: ip not runnable");
            return;
        };
        let text = String::from_utf8_lossy(&ip.stdout);
        for info in addrs.iter().filter(|a| a.addr.is_ipv4()) {
            let needle = format!("inet {}/{} ", info.addr, info.prefix_len);
            assert!(text.contains(&needle), "{needle} not in {text}");
        }
        if lo.is_admin_up() {
            let v4 = addrs
                .iter()
                .find(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST))
                .expect("127.0.0.1 on lo");
            assert_eq!((v4.prefix_len, v4.scope), (8, Scope::Host));
        }
    }
}
