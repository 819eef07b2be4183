/*! Health checkers for real servers (keepalived's checker process).

- [`core`]: the sans-IO schedule and verdict rules every checker shares
  (delay_loop, retry, delay_before_retry, warmup, alpha) and how the
  checkers of one real server combine.
- [`http`], [`smtp`], [`dns`], [`udp`], [`ping`], [`misc`], [`file`]: each
  protocol as data (request bytes in, verdict out), no sockets.
- [`engine`]: the [`Engine`] that runs all checkers of a configuration on
  the daemon's event loop and reports real servers going up or down.
- [`genhash`]: the `genhash` / `keepalived -T` command.
- [`tls`]: SSL_GET's TLS transport (cargo feature `tls`).

Log lines keep keepalived's wording (`TCP connection to [10.0.0.2]:tcp:80
success.`, `Removing service [10.0.0.2]:tcp:80 from VS [10.0.0.100]:tcp:80`)
and are written only on transitions.
*/

pub mod calendar;
pub mod core;
pub mod dialog;
pub mod dns;
pub mod engine;
pub mod file;
pub mod genhash;
pub mod http;
pub mod misc;
pub mod net;
pub mod ping;
pub mod smtp;
pub mod tls;
pub mod udp;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::model::{Protocol, RealServer, VirtualServer, VsKey};

pub use core::ServerChange;
pub use engine::{CheckEvent, Engine, EngineError, RsStatus};

/// Tag in the top byte of every timer and child key the checkers use, so the
/// daemon's service can route them here (`key >> 56 == CHECK_KEY_TAG`).
pub const CHECK_KEY_TAG: u64 = 2;

/// True when a timer or child key belongs to the checkers.
pub fn owns_key(key: u64) -> bool {
    key >> 56 == CHECK_KEY_TAG
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
        /// Shared by the ids of all its real servers (clones do not copy it).
        name: Arc<str>,
        protocol: ProtocolId,
    },
}

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
                name: Arc::from(g.value.as_str()),
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
    pub fn from_config(vs: &VirtualServer, rs: &RealServer) -> Self {
        RsId::new(&VsId::from_config(vs), rs)
    }

    /// The id of `rs` in the virtual server `vs` identifies: with the
    /// virtual server's id made once, its real servers share its strings.
    pub fn new(vs: &VsId, rs: &RealServer) -> Self {
        RsId {
            vs: vs.clone(),
            addr: rs.addr.value,
            port: rs.port.as_ref().map_or(0, |p| p.value),
        }
    }
}

/// keepalived's FMT_RS: `[10.0.0.2]:tcp:80`; a fwmark service has no
/// protocol of its own, so its real servers read `[10.0.0.2]:none:0`.
impl fmt::Display for RsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.vs {
            VsId::Fwmark { .. } => "none",
            _ => self.vs.protocol().name(),
        };
        write!(f, "[{}]:{}:{}", self.addr, protocol, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_keepalived() {
        let vs = VsId::Address {
            addr: "10.0.0.100".parse().expect("addr"),
            port: 80,
            protocol: ProtocolId::Tcp,
        };
        let rs = RsId {
            vs: vs.clone(),
            addr: "10.0.0.2".parse().expect("addr"),
            port: 80,
        };
        assert_eq!(vs.to_string(), "[10.0.0.100]:tcp:80");
        assert_eq!(rs.to_string(), "[10.0.0.2]:tcp:80");
        let fw = VsId::Fwmark {
            mark: 7,
            protocol: ProtocolId::Udp,
        };
        assert_eq!(fw.to_string(), "FWM 7");
        assert!(owns_key(CHECK_KEY_TAG << 56 | 12345));
        assert!(!owns_key(1 << 56));
    }
}
