/*! Netlink wire format: message headers and attribute TLVs.

```text
 struct nlmsghdr (16 bytes, host byte order)       struct nlattr (4 bytes + value, padded to 4)
 +----------+--------+---------+-------+-------+    +---------+---------+-----------------+
 | len u32  |type u16|flags u16|seq u32|pid u32|    | len u16 | type u16| value ... (pad) |
 +----------+--------+---------+-------+-------+    +---------+---------+-----------------+
```

Receive side: [`Messages`] walks a datagram of messages, [`Attrs`] walks
attributes; both yield `Result` and stop at the first malformed element, so
no accessor can read past the buffer. Send side: [`MessageBuilder`] appends
fixed headers and attributes (nested ones through [`MessageBuilder::begin_nested`])
and patches the lengths. Constant names follow `linux/netlink.h`.
*/

use std::fmt;

pub const NLMSG_HDRLEN: usize = 16;
pub const NLA_HDRLEN: usize = 4;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_MULTI: u16 = 0x02;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_ECHO: u16 = 0x08;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// In an NLMSG_ERROR: the original request's payload was not echoed back.
pub const NLM_F_CAPPED: u16 = 0x100;
/// In an NLMSG_ERROR: extended-ack attributes follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;

pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// `enum nlmsgerr_attrs`.
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSGERR_ATTR_OFFS: u16 = 2;

/// Round up to the 4-byte netlink alignment.
pub const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Why bytes from the kernel could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// A message header is cut off or its length is impossible.
    TruncatedMessage,
    /// An attribute header is cut off or its length is impossible.
    TruncatedAttribute,
    /// An attribute's value has the wrong size for its type.
    BadAttributeSize {
        kind: u16,
        expected: usize,
        got: usize,
    },
    /// A message's fixed family header is shorter than expected.
    TruncatedHeader { expected: usize, got: usize },
    /// A string attribute is not NUL-terminated UTF-8.
    BadString { kind: u16 },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TruncatedMessage => write!(f, "truncated netlink message"),
            WireError::TruncatedAttribute => write!(f, "truncated netlink attribute"),
            WireError::BadAttributeSize {
                kind,
                expected,
                got,
            } => write!(
                f,
                "netlink attribute {kind}: expected {expected} bytes, got {got}"
            ),
            WireError::TruncatedHeader { expected, got } => write!(
                f,
                "netlink family header: expected {expected} bytes, got {got}"
            ),
            WireError::BadString { kind } => {
                write!(f, "netlink attribute {kind}: not a NUL-terminated string")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// One netlink message in a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// Bytes after the 16-byte header, up to `nlmsg_len` (unpadded).
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Interpret an `NLMSG_ERROR` payload. `None` for other message kinds.
    pub fn error(&self) -> Option<Result<KernelAck<'a>, WireError>> {
        (self.kind == NLMSG_ERROR).then(|| KernelAck::parse(self.flags, self.payload))
    }

    /// Split the payload into a fixed family header of `len` bytes and the
    /// attributes after it (at the aligned offset).
    pub fn split_header(&self, len: usize) -> Result<(&'a [u8], Attrs<'a>), WireError> {
        if self.payload.len() < len {
            return Err(WireError::TruncatedHeader {
                expected: len,
                got: self.payload.len(),
            });
        }
        let rest = self.payload.get(align(len)..).unwrap_or(&[]);
        Ok((&self.payload[..len], Attrs::new(rest)))
    }
}

/// The body of an `NLMSG_ERROR`: errno 0 is an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAck<'a> {
    /// Positive errno (0 = success).
    pub errno: i32,
    /// Sequence number of the request this answers.
    pub request_seq: u32,
    /// Extended ack message (`NLMSGERR_ATTR_MSG`), when the kernel gave one.
    pub message: Option<&'a str>,
}

impl<'a> KernelAck<'a> {
    fn parse(flags: u16, payload: &'a [u8]) -> Result<Self, WireError> {
        // struct nlmsgerr { int error; struct nlmsghdr msg; } + echoed payload + TLVs.
        if payload.len() < 4 + NLMSG_HDRLEN {
            return Err(WireError::TruncatedMessage);
        }
        let error = i32::from_ne_bytes(payload[0..4].try_into().unwrap_or_default());
        let orig_len = read_u32(&payload[4..8]) as usize;
        let request_seq = read_u32(&payload[12..16]);
        let mut message = None;
        if flags & NLM_F_ACK_TLVS != 0 {
            let tlv_start = if flags & NLM_F_CAPPED != 0 || error == 0 {
                4 + NLMSG_HDRLEN
            } else {
                4 + align(orig_len)
            };
            if let Some(tlvs) = payload.get(tlv_start..) {
                for attr in Attrs::new(tlvs) {
                    let Ok(attr) = attr else { break };
                    if attr.kind() == NLMSGERR_ATTR_MSG {
                        message = attr.as_str().ok();
                    }
                }
            }
        }
        Ok(KernelAck {
            errno: error.checked_neg().unwrap_or(i32::MAX),
            request_seq,
            message,
        })
    }
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_ne_bytes(bytes.try_into().unwrap_or_default())
}

/// Iterator over the messages of one received datagram.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Messages { rest: buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let buf = self.rest;
        if buf.len() < NLMSG_HDRLEN {
            self.rest = &[];
            return Some(Err(WireError::TruncatedMessage));
        }
        let len = read_u32(&buf[0..4]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            self.rest = &[];
            return Some(Err(WireError::TruncatedMessage));
        }
        let message = Message {
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: read_u32(&buf[8..12]),
            pid: read_u32(&buf[12..16]),
            payload: &buf[NLMSG_HDRLEN..len],
        };
        self.rest = buf.get(align(len)..).unwrap_or(&[]);
        Some(Ok(message))
    }
}

/// One attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    raw_kind: u16,
    pub value: &'a [u8],
}

impl<'a> Attr<'a> {
    /// Attribute type without the NESTED / NET_BYTEORDER flag bits.
    pub fn kind(&self) -> u16 {
        self.raw_kind & NLA_TYPE_MASK
    }

    pub fn is_nested(&self) -> bool {
        self.raw_kind & NLA_F_NESTED != 0
    }

    fn fixed<const N: usize>(&self) -> Result<[u8; N], WireError> {
        self.value
            .try_into()
            .map_err(|_| WireError::BadAttributeSize {
                kind: self.kind(),
                expected: N,
                got: self.value.len(),
            })
    }

    pub fn as_u8(&self) -> Result<u8, WireError> {
        Ok(self.fixed::<1>()?[0])
    }
    pub fn as_u16(&self) -> Result<u16, WireError> {
        Ok(u16::from_ne_bytes(self.fixed()?))
    }
    /// A 16-bit value in network byte order (ports).
    pub fn as_u16_be(&self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.fixed()?))
    }
    pub fn as_u32(&self) -> Result<u32, WireError> {
        Ok(u32::from_ne_bytes(self.fixed()?))
    }
    /// A 32-bit value in network byte order (IPv4 netmasks in IPVS).
    pub fn as_u32_be(&self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.fixed()?))
    }
    pub fn as_u64(&self) -> Result<u64, WireError> {
        Ok(u64::from_ne_bytes(self.fixed()?))
    }
    /// A NUL-terminated string (the NUL and anything after it is dropped).
    pub fn as_str(&self) -> Result<&'a str, WireError> {
        let bad = WireError::BadString { kind: self.kind() };
        let end = self.value.iter().position(|&b| b == 0).ok_or(bad)?;
        std::str::from_utf8(&self.value[..end]).map_err(|_| bad)
    }
    /// The attributes nested inside this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value)
    }
}

/// Iterator over a run of attributes.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { rest: buf }
    }

    /// The first attribute of the given kind (malformed data ends the search).
    pub fn find(&self, kind: u16) -> Option<Attr<'a>> {
        self.clone()
            .map_while(Result::ok)
            .find(|a| a.kind() == kind)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Trailing padding shorter than a header is not an attribute.
        if self.rest.len() < NLA_HDRLEN {
            self.rest = &[];
            return None;
        }
        let buf = self.rest;
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < NLA_HDRLEN || len > buf.len() {
            self.rest = &[];
            return Some(Err(WireError::TruncatedAttribute));
        }
        let attr = Attr {
            raw_kind: u16::from_ne_bytes([buf[2], buf[3]]),
            value: &buf[NLA_HDRLEN..len],
        };
        self.rest = buf.get(align(len)..).unwrap_or(&[]);
        Some(Ok(attr))
    }
}

/// Position of an open nested attribute in a [`MessageBuilder`].
#[derive(Debug)]
#[must_use = "close the nest with MessageBuilder::end_nested"]
pub struct Nest(usize);

/// Builds one netlink request.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    /// Start a message; `seq` and `pid` can be set later with [`Self::set_seq`].
    pub fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        MessageBuilder { buf }
    }

    pub fn set_seq(&mut self, seq: u32) {
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    }

    pub fn add_flags(&mut self, flags: u16) {
        let old = u16::from_ne_bytes([self.buf[6], self.buf[7]]);
        self.buf[6..8].copy_from_slice(&(old | flags).to_ne_bytes());
    }

    pub fn seq(&self) -> u32 {
        read_u32(&self.buf[8..12])
    }

    /// Append a fixed family header (`genlmsghdr`, `ifaddrmsg`, ...), padded.
    pub fn push_header(&mut self, header: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(header);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    pub fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        // An attribute longer than u16 cannot be encoded; callers only pass
        // addresses, names and small structs.
        let len = (NLA_HDRLEN + value.len()).min(u16::MAX as usize) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf
            .extend_from_slice(&value[..len as usize - NLA_HDRLEN]);
        self.pad();
        self
    }
    pub fn attr_u8(&mut self, kind: u16, value: u8) -> &mut Self {
        self.attr(kind, &[value])
    }
    pub fn attr_u16(&mut self, kind: u16, value: u16) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }
    pub fn attr_u16_be(&mut self, kind: u16, value: u16) -> &mut Self {
        self.attr(kind, &value.to_be_bytes())
    }
    pub fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }
    pub fn attr_u32_be(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_be_bytes())
    }
    /// A string with its terminating NUL.
    pub fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attr(kind, &bytes)
    }

    /// Open a nested attribute; `kind` should include [`NLA_F_NESTED`] where
    /// the family expects it (IPVS does not).
    pub fn begin_nested(&mut self, kind: u16) -> Nest {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        Nest(at)
    }

    pub fn end_nested(&mut self, nest: Nest) -> &mut Self {
        let len = (self.buf.len() - nest.0).min(u16::MAX as usize) as u16;
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The finished message with its length patched in.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }

    /// The bytes so far with the length patched in, keeping the builder.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.clone().finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_iterators_round_trip() {
        let mut msg = MessageBuilder::new(0x10, NLM_F_REQUEST | NLM_F_ACK);
        msg.set_seq(7);
        msg.push_header(&[1, 2, 3]);
        msg.attr_u32(1, 0xdead_beef).attr_str(2, "eth0");
        let nest = msg.begin_nested(3 | NLA_F_NESTED);
        msg.attr_u16_be(1, 80).attr_u8(2, 9);
        msg.end_nested(nest);
        let bytes = msg.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(read_u32(&bytes[0..4]) as usize, bytes.len());

        let messages: Vec<_> = Messages::new(&bytes).collect();
        assert_eq!(messages.len(), 1);
        let message = messages[0].unwrap();
        assert_eq!((message.kind, message.seq), (0x10, 7));
        let (header, attrs) = message.split_header(3).unwrap();
        assert_eq!(header, &[1, 2, 3]);
        let attrs: Vec<_> = attrs.map(Result::unwrap).collect();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0].as_u32().unwrap(), 0xdead_beef);
        assert_eq!(attrs[1].as_str().unwrap(), "eth0");
        assert!(attrs[2].is_nested());
        assert_eq!(attrs[2].kind(), 3);
        let inner = attrs[2].nested();
        assert_eq!(inner.find(1).unwrap().as_u16_be().unwrap(), 80);
        assert_eq!(inner.find(2).unwrap().as_u8().unwrap(), 9);
        assert_eq!(
            attrs[0].as_u16(),
            Err(WireError::BadAttributeSize {
                kind: 1,
                expected: 2,
                got: 4
            })
        );
    }

    /// An NLMSG_ERROR as Linux sends it for a failed request with extended
    /// ack: errno -EEXIST, capped echo, then NLMSGERR_ATTR_MSG.
    #[test]
    fn kernel_error_with_extended_ack() {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(-17i32).to_ne_bytes());
        // Echoed request header: len 20, type 0x24, flags, seq 42, pid 0.
        payload.extend_from_slice(&20u32.to_ne_bytes());
        payload.extend_from_slice(&0x24u16.to_ne_bytes());
        payload.extend_from_slice(&0x605u16.to_ne_bytes());
        payload.extend_from_slice(&42u32.to_ne_bytes());
        payload.extend_from_slice(&0u32.to_ne_bytes());
        let text = b"Address already assigned\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        payload.resize(align(payload.len()), 0);
        let mut msg = MessageBuilder::new(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS);
        msg.push_header(&payload);
        let bytes = msg.finish();

        let message = Messages::new(&bytes).next().unwrap().unwrap();
        let ack = message.error().unwrap().unwrap();
        assert_eq!(ack.errno, 17);
        assert_eq!(ack.request_seq, 42);
        assert_eq!(ack.message, Some("Address already assigned"));
    }

    #[test]
    fn malformed_input_never_panics() {
        // Every prefix and a few corruptions of a valid message.
        let mut msg = MessageBuilder::new(NLMSG_ERROR, 0);
        msg.push_header(&[0; 20]).attr_str(1, "x");
        let bytes = msg.finish();
        for cut in 0..=bytes.len() {
            for message in Messages::new(&bytes[..cut]).flatten() {
                let _ = message.error();
                if let Ok((_, attrs)) = message.split_header(4) {
                    for attr in attrs.flatten() {
                        let _ = attr.as_str();
                        let _ = attr.nested().count();
                    }
                }
            }
        }
        let mut bad = bytes.clone();
        bad[0] = 0xff; // length beyond the buffer
        assert_eq!(
            Messages::new(&bad).next(),
            Some(Err(WireError::TruncatedMessage))
        );
        let attrs: Vec<_> = Attrs::new(&[8, 0, 1, 0, 0]).collect();
        assert_eq!(attrs, vec![Err(WireError::TruncatedAttribute)]);
    }
}
