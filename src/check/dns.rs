//! DNS_CHECK as data: one query (RD set, class IN) for `name`/`type`; the
//! check passes on a reply with our id, the QR bit and RCODE NOERROR, with
//! or without answers (keepalived's check_dns.c looks at nothing else).

use super::dialog::{Outcome, ProbeError, ProbeSuccess};
use crate::config::model::DnsType;

const HEADER_LEN: usize = 12;

#[derive(Debug, Clone)]
pub struct DnsQuery {
    id: u16,
    packet: Vec<u8>,
}

pub fn type_code(t: DnsType) -> u16 {
    match t {
        DnsType::A => 1,
        DnsType::Ns => 2,
        DnsType::Cname => 5,
        DnsType::Soa => 6,
        DnsType::Mx => 15,
        DnsType::Txt => 16,
        DnsType::Aaaa => 28,
    }
}

impl DnsQuery {
    /// `None` when `name` cannot be encoded (a label over 63 bytes, a name
    /// over 255, an empty label inside).
    pub fn new(id: u16, name: &str, qtype: DnsType) -> Option<Self> {
        let mut packet = Vec::with_capacity(HEADER_LEN + name.len() + 6);
        packet.extend_from_slice(&id.to_be_bytes());
        packet.extend_from_slice(&[0x01, 0x00]); // RD
        packet.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if !trimmed.is_empty() {
            for label in trimmed.split('.') {
                if label.is_empty() || label.len() > 63 {
                    return None;
                }
                packet.push(label.len() as u8);
                packet.extend_from_slice(label.as_bytes());
            }
        }
        packet.push(0);
        if packet.len() - HEADER_LEN > 255 {
            return None;
        }
        packet.extend_from_slice(&type_code(qtype).to_be_bytes());
        packet.extend_from_slice(&1u16.to_be_bytes()); // IN
        Some(DnsQuery { id, packet })
    }

    pub fn request(&self) -> Vec<u8> {
        self.packet.clone()
    }

    /// `None` for a datagram that is not the reply to this query.
    pub fn on_reply(&self, data: &[u8]) -> Option<Outcome> {
        let header = data.get(..HEADER_LEN)?;
        if u16::from_be_bytes([header[0], header[1]]) != self.id || header[2] & 0x80 == 0 {
            return None;
        }
        let rcode = header[3] & 0x0f;
        Some(if rcode != 0 {
            Err(ProbeError::DnsRcode(rcode))
        } else {
            Ok(ProbeSuccess::default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_queries() {
        let q = DnsQuery::new(0x1234, "example.org.", DnsType::A).expect("query");
        assert_eq!(
            q.request(),
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03org\x00\x00\x01\x00\x01"
        );
        let root = DnsQuery::new(1, ".", DnsType::Soa).expect("query");
        assert_eq!(&root.request()[12..], b"\x00\x00\x06\x00\x01");
        assert!(DnsQuery::new(1, "a..b", DnsType::A).is_none());
        assert!(DnsQuery::new(1, &"x".repeat(64), DnsType::A).is_none());
    }

    #[test]
    fn judges_replies() {
        let q = DnsQuery::new(7, ".", DnsType::Soa).expect("query");
        let mut reply = q.request();
        reply[2] |= 0x80;
        reply[7] = 1;
        assert!(matches!(q.on_reply(&reply), Some(Ok(_))));
        reply[3] = 3; // NXDOMAIN
        assert!(matches!(
            q.on_reply(&reply),
            Some(Err(ProbeError::DnsRcode(3)))
        ));
        reply[3] = 0;
        reply[7] = 0;
        // NOERROR without answers (NODATA) passes, as in keepalived.
        assert!(matches!(q.on_reply(&reply), Some(Ok(_))));
        reply[0] = 9; // other id
        assert!(q.on_reply(&reply).is_none());
        assert!(q.on_reply(&reply[..5]).is_none());
        assert!(q.on_reply(&q.request()).is_none(), "a query is not a reply");
    }
}
