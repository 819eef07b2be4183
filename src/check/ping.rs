//! PING_CHECK as data: one ICMP (or ICMPv6) echo request; the matching echo
//! reply passes the check. Works on a ping socket (`SOCK_DGRAM`, the kernel
//! owns the identifier and checksum) and on a raw socket (IPv4 raw sockets
//! deliver the IP header too).

use super::dialog::{Outcome, ProbeSuccess};

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const PAYLOAD: &[u8] = b"keepalived-rs";

#[derive(Debug, Clone)]
pub struct EchoRequest {
    ipv6: bool,
    /// Raw socket: we see every ICMP message, so match our identifier.
    raw: bool,
    id: u16,
    seq: u16,
}

impl EchoRequest {
    pub fn new(ipv6: bool, raw: bool, id: u16, seq: u16) -> Self {
        EchoRequest { ipv6, raw, id, seq }
    }

    pub fn request(&self) -> Vec<u8> {
        let kind = if self.ipv6 {
            ICMPV6_ECHO_REQUEST
        } else {
            ICMP_ECHO_REQUEST
        };
        let mut packet = vec![kind, 0, 0, 0];
        packet.extend_from_slice(&self.id.to_be_bytes());
        packet.extend_from_slice(&self.seq.to_be_bytes());
        packet.extend_from_slice(PAYLOAD);
        // ICMPv6 checksums need the pseudo-header: the kernel fills them in.
        if !self.ipv6 {
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        packet
    }

    /// `None` for anything but our echo reply.
    pub fn on_reply(&self, data: &[u8]) -> Option<Outcome> {
        let icmp = if self.raw && !self.ipv6 {
            let ihl = usize::from(data.first()? & 0x0f) * 4;
            data.get(ihl..)?
        } else {
            data
        };
        let expected = if self.ipv6 {
            ICMPV6_ECHO_REPLY
        } else {
            ICMP_ECHO_REPLY
        };
        if *icmp.first()? != expected {
            return None;
        }
        let id = u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]);
        let seq = u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]);
        if seq != self.seq || (self.raw && id != self.id) {
            return None;
        }
        Some(Ok(ProbeSuccess::default()))
    }
}

/// RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = match pair {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let r = EchoRequest::new(false, true, 0x4242, 9).request();
        assert_eq!(r[0], 8);
        assert_eq!(checksum(&r), 0);
        assert_eq!(EchoRequest::new(true, false, 1, 2).request()[0], 128);
    }

    #[test]
    fn matches_only_our_reply() {
        let raw = EchoRequest::new(false, true, 0x4242, 9);
        let mut reply = vec![0x45u8; 20];
        reply.extend_from_slice(&[0, 0, 0, 0, 0x42, 0x42, 0, 9]);
        assert!(matches!(raw.on_reply(&reply), Some(Ok(_))));
        reply[25] = 8; // other sequence
        assert!(raw.on_reply(&reply).is_none());
        reply[25] = 9;
        reply[20] = 8; // an echo request (our own, looped back)
        assert!(raw.on_reply(&reply).is_none());
        let dgram = EchoRequest::new(false, false, 0, 9);
        // The kernel rewrote the id; only the sequence counts.
        assert!(matches!(
            dgram.on_reply(&[0, 0, 0, 0, 0x77, 0x77, 0, 9]),
            Some(Ok(_))
        ));
        assert!(dgram.on_reply(&[0, 0]).is_none());
        assert!(raw.on_reply(&[]).is_none());
    }
}
