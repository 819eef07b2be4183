//! Identities of virtual and real servers that survive a reload, and
//! keepalived's way of printing them (`FMT_VS`, `FMT_RS`).
//!
//! These have the same shape as the checker engine's `check::VsId` /
//! `check::RsId`, so verdicts map one to one.

use std::fmt;
use std::net::IpAddr;

use crate::config::model::{ForwardMethod, Protocol, RealServer, VirtualServer, VsKey};
use crate::netlink::ipvs::IpProtocol;

/// The L4 protocol of a virtual server, hashable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolId {
    Tcp,
    Udp,
    Sctp,
}

impl ProtocolId {
    pub fn from_config(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => ProtocolId::Tcp,
            Protocol::Udp => ProtocolId::Udp,
            Protocol::Sctp => ProtocolId::Sctp,
        }
    }

    /// keepalived's spelling in log lines.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolId::Tcp => "tcp",
            ProtocolId::Udp => "udp",
            ProtocolId::Sctp => "sctp",
        }
    }

    pub fn ip_protocol(self) -> IpProtocol {
        match self {
            ProtocolId::Tcp => IpProtocol::TCP,
            ProtocolId::Udp => IpProtocol::UDP,
            ProtocolId::Sctp => IpProtocol::SCTP,
        }
    }
}

/// What identifies a virtual server across reloads: its address, fwmark or
/// group, and its protocol (keepalived's own identity rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VsId {
    Address {
        addr: IpAddr,
        port: u16,
        protocol: ProtocolId,
    },
    Fwmark {
        mark: u32,
        protocol: ProtocolId,
    },
    Group {
        name: String,
        protocol: ProtocolId,
    },
}

impl VsId {
    pub fn from_config(vs: &VirtualServer) -> Self {
        let protocol = ProtocolId::from_config(vs.protocol.value);
        match &vs.key {
            VsKey::Address { addr, port } => VsId::Address {
                addr: addr.value,
                port: port.value,
                protocol,
            },
            VsKey::Fwmark(m) => VsId::Fwmark {
                mark: m.value,
                protocol,
            },
            VsKey::Group(g) => VsId::Group {
                name: g.value.clone(),
                protocol,
            },
        }
    }

    pub fn protocol(&self) -> ProtocolId {
        match self {
            VsId::Address { protocol, .. }
            | VsId::Fwmark { protocol, .. }
            | VsId::Group { protocol, .. } => *protocol,
        }
    }
}

/// keepalived's FMT_VS: `[10.0.0.100]:tcp:80`, `FWM 5`, `[GROUP]:0`.
impl fmt::Display for VsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VsId::Address {
                addr,
                port,
                protocol,
            } => write!(f, "[{addr}]:{}:{port}", protocol.name()),
            VsId::Fwmark { mark, .. } => write!(f, "FWM {mark}"),
            VsId::Group { name, .. } => write!(f, "[{name}]:0"),
        }
    }
}

/// A real server of a virtual server, stable across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RsId {
    pub vs: VsId,
    pub addr: IpAddr,
    /// 0 when the configuration gives none (fwmark / persistent services).
    pub port: u16,
}

impl RsId {
    /// The port follows keepalived's corrections (keepalived 2.2.7 logs
    /// them as warnings): a fwmark service's real servers have port 0
    /// ("has port specified - clearing"), a direct-routed real server of an
    /// address service has the service's port ("ports don't match -
    /// resetting"); otherwise the configured port, 0 if none.
    pub fn from_config(vs: &VirtualServer, rs: &RealServer) -> Self {
        let configured = rs.port.as_ref().map_or(0, |p| p.value);
        let method = rs.lvs_method.as_ref().map_or(vs.lb_kind.value, |m| m.value);
        let port = match &vs.key {
            VsKey::Fwmark(_) => 0,
            VsKey::Address { port, .. } if method == ForwardMethod::Dr && rs.port.is_some() => {
                port.value
            }
            _ => configured,
        };
        RsId {
            vs: VsId::from_config(vs),
            addr: rs.addr.value,
            port,
        }
    }
}

/// keepalived's FMT_RS: `[10.0.0.2]:tcp:80`; a fwmark service has no
/// protocol (`[10.0.0.2]:none:0`, whatever `protocol` says).
impl fmt::Display for RsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.vs {
            VsId::Fwmark { .. } => "none",
            _ => self.vs.protocol().name(),
        };
        write!(f, "[{}]:{protocol}:{}", self.addr, self.port)
    }
}
