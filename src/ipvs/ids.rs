//! Identities of virtual and real servers that survive a reload, and
//! keepalived's way of printing them (`FMT_VS`, `FMT_RS`). They are the
//! checker engine's, so a verdict names the same server in both.

pub use crate::check::{ProtocolId, RsId, VsId};

use crate::netlink::ipvs::IpProtocol;

/// The IP protocol number IPVS keys a service by.
pub fn ip_protocol(protocol: ProtocolId) -> IpProtocol {
    match protocol {
        ProtocolId::Tcp => IpProtocol::TCP,
        ProtocolId::Udp => IpProtocol::UDP,
        ProtocolId::Sctp => IpProtocol::SCTP,
    }
}
