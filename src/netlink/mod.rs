//! Netlink: the wire format shared by rtnetlink (addresses, links, routes)
//! and generic netlink (IPVS), and a socket for request/response exchanges.

pub mod genl;
pub mod ipvs;
pub mod nft;
pub mod rtnl;
pub mod socket;
pub mod wire;

use std::fmt;
use std::io;

pub use socket::NetlinkSocket;
pub use wire::{Attr, Attrs, Message, MessageBuilder, Messages, WireError};

/// A failed netlink exchange.
#[derive(Debug)]
pub enum Error {
    /// A socket call failed.
    Io { op: &'static str, source: io::Error },
    /// The kernel's bytes could not be read.
    Wire(WireError),
    /// The kernel refused the request (`what` names it, e.g. "add address").
    Kernel {
        what: &'static str,
        errno: i32,
        /// The kernel's extended-ack text, when it gave one.
        message: Option<String>,
    },
    /// No answer within the reply timeout.
    Timeout { what: &'static str },
    /// The kernel dropped messages (NLMSG_OVERRUN) or a dump never ended.
    Overrun { what: &'static str },
    /// A reply lacked something the protocol requires.
    Protocol { what: &'static str, detail: String },
    /// The request cannot be expressed (bad prefix length, name too long,
    /// mixed address families); nothing was sent.
    Invalid { what: &'static str, detail: String },
}

impl Error {
    /// The kernel's errno, for callers that treat e.g. EEXIST as success.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

impl From<WireError> for Error {
    fn from(err: WireError) -> Self {
        Error::Wire(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, source } => write!(f, "netlink {op}: {source}"),
            Error::Wire(err) => write!(f, "{err}"),
            Error::Kernel {
                what,
                errno,
                message,
            } => {
                write!(f, "{what}: {}", io::Error::from_raw_os_error(*errno))?;
                if let Some(message) = message {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            Error::Timeout { what } => write!(f, "{what}: no answer from the kernel"),
            Error::Overrun { what } => write!(f, "{what}: netlink reply overrun"),
            Error::Protocol { what, detail } => write!(f, "{what}: {detail}"),
            Error::Invalid { what, detail } => write!(f, "{what}: {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Wire(err) => Some(err),
            _ => None,
        }
    }
}
