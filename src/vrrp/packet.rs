/*! VRRP advertisement wire format.

```text
 VRRPv2 (RFC 3768 5.1)                    VRRPv3 (RFC 5798 5.1)
 0       4       8              16       0       4       8              16        20
+-------+-------+---------------+--     +-------+-------+---------------+---------+--
|Version| Type  | Virtual Rtr ID| ..    |Version| Type  | Virtual Rtr ID| ..
+-------+-------+---------------+--     +-------+-------+---------------+---------+--
  .. Priority | Count IP Addrs |           .. Priority | Count IPvX Addr |
  Auth Type   | Adver Int | Checksum       (rsvd) Max Adver Int (12 bits) | Checksum
  IPv4 Address(es) ...                     IPv4 or IPv6 Address(es) ...
  Authentication Data (8 bytes)
```

[`VrrpPacket`] is a view over the VRRP message (the IP payload). Its layout
depends on the address family, which is not on the wire inside VRRP, so the
family is given to [`VrrpPacket::new_checked`] and kept in the view.
*/

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP. RFC 5798 5.1.1.4 / RFC 3768 5.2.4: protocol 112.
pub const IPPROTO_VRRP: u8 = 112;
/// IP protocol number of the IPsec Authentication Header (RFC 2402).
pub const IPPROTO_AH: u8 = 51;
/// TTL / hop limit of every advertisement. RFC 5798 5.1.1.3 / 5.1.2.3: MUST be 255.
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group of VRRP. RFC 5798 5.1.1.2: 224.0.0.18.
pub const MCAST_GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP. RFC 5798 5.1.2.2: ff02::12.
pub const MCAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Fixed VRRP header length (both versions).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data. RFC 3768 5.3.10: 8 octets.
pub const AUTH_DATA_LEN: usize = 8;
/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;

/// Why a packet was rejected.
///
/// Each variant is one statistics counter: the RFC 6527 (VRRPv3 MIB) or
/// RFC 2787 (VRRPv2 MIB) object and keepalived's `vrrp stats` name are given
/// by [`Error::counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Packet shorter than its headers, or length not matching the address
    /// count (`vrrpv3StatisticsPacketLengthErrors`, keepalived `packet_len_err`).
    BadLength,
    /// IPv4 TTL or IPv6 hop limit is not 255 (`vrrpv3StatisticsIpTtlErrors`, `ip_ttl_err`).
    BadTtl,
    /// VRRP version is not 2 or 3, or not one this family allows (`vrrpv3GlobalStatisticsVersionErrors`).
    BadVersion,
    /// Type is not ADVERTISEMENT (`vrrpv3StatisticsRcvdInvalidTypePackets`, `invalid_type_rcvd`).
    BadType,
    /// VRID is 0 or not configured here (`vrrpv3GlobalStatisticsVrIdErrors`).
    BadVrid,
    /// Checksum does not verify (`vrrpv3GlobalStatisticsChecksumErrors`).
    BadChecksum,
    /// IP protocol is neither VRRP (112) nor AH (51) (`vrrpv3StatisticsProtoErrReason`).
    BadProtocol,
    /// Address list differs from the configured one (`vrrpv3StatisticsAddressListErrors`, `addr_list_err`).
    AddressListMismatch,
    /// VRRPv2 authentication failed (`vrrpStatsAuthFailures`, `auth_failure`).
    AuthFailure,
    /// VRRPv2 auth type is not 0, 1 or 2 (`vrrpStatsInvalidAuthType`, `invalid_authtype`).
    InvalidAuthType,
    /// VRRPv2 auth type differs from the configured one (`vrrpStatsAuthTypeMismatch`, `authtype_mismatch`).
    AuthTypeMismatch,
    /// Advertisement interval differs from ours (`vrrpv3StatisticsAdvIntervalErrors`, `advert_interval_err`).
    AdvertIntervalMismatch,
    /// Source/destination address family differs from the packet's family.
    FamilyMismatch,
    /// Emit: the output buffer is smaller than `buffer_len()`.
    BufferTooSmall,
    /// Emit: the Repr cannot be put on the wire (e.g. v2 interval not whole
    /// seconds, more than 255 addresses, address of the wrong family).
    Unrepresentable,
}

impl Error {
    /// The statistics counter this error increments: (MIB object, stats name).
    /// The stats names are keepalived's per-instance `vrrp_stats` fields; the
    /// global ones (version, VRID, checksum, protocol errors) are ours.
    pub const fn counter(self) -> (&'static str, &'static str) {
        match self {
            Error::BadLength => ("vrrpv3StatisticsPacketLengthErrors", "packet_len_err"),
            Error::BadTtl => ("vrrpv3StatisticsIpTtlErrors", "ip_ttl_err"),
            Error::BadVersion => ("vrrpv3GlobalStatisticsVersionErrors", "version_err"),
            Error::BadType => (
                "vrrpv3StatisticsRcvdInvalidTypePackets",
                "invalid_type_rcvd",
            ),
            Error::BadVrid => ("vrrpv3GlobalStatisticsVrIdErrors", "vrid_err"),
            Error::BadChecksum => ("vrrpv3GlobalStatisticsChecksumErrors", "checksum_err"),
            Error::BadProtocol => ("vrrpv3StatisticsProtoErrReason", "proto_err"),
            Error::AddressListMismatch => ("vrrpv3StatisticsAddressListErrors", "addr_list_err"),
            Error::AuthFailure => ("vrrpStatsAuthFailures", "auth_failure"),
            Error::InvalidAuthType => ("vrrpStatsInvalidAuthType", "invalid_authtype"),
            Error::AuthTypeMismatch => ("vrrpStatsAuthTypeMismatch", "authtype_mismatch"),
            Error::AdvertIntervalMismatch => {
                ("vrrpv3StatisticsAdvIntervalErrors", "advert_interval_err")
            }
            Error::FamilyMismatch => ("vrrpv3StatisticsProtoErrReason", "proto_err"),
            Error::BufferTooSmall | Error::Unrepresentable => ("", ""),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Error::BadLength => "bad packet length",
            Error::BadTtl => "TTL/hop limit is not 255",
            Error::BadVersion => "bad VRRP version",
            Error::BadType => "not an ADVERTISEMENT",
            Error::BadVrid => "bad VRID",
            Error::BadChecksum => "bad checksum",
            Error::BadProtocol => "IP protocol is not VRRP or AH",
            Error::AddressListMismatch => "address list mismatch",
            Error::AuthFailure => "authentication failure",
            Error::InvalidAuthType => "invalid auth type",
            Error::AuthTypeMismatch => "auth type mismatch",
            Error::AdvertIntervalMismatch => "advertisement interval mismatch",
            Error::FamilyMismatch => "address family mismatch",
            Error::BufferTooSmall => "buffer too small",
            Error::Unrepresentable => "value cannot be encoded",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// Address family of a VRRP instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: 4-byte addresses.
    V4,
    /// IPv6: 16-byte addresses (VRRPv3 only).
    V6,
}

impl Family {
    /// Size of one address in the address list.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// Family of an address.
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// RFC 3768.
    V2,
    /// RFC 5798.
    V3,
}

impl VrrpVersion {
    /// The 4-bit wire value.
    pub const fn number(self) -> u8 {
        match self {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }
    }
}

/// VRRP message type (4 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// RFC 5798 5.2.2: type 1, the only one defined.
    Advertisement,
    /// Anything else, kept as data.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => MessageType::Advertisement,
            n => MessageType::Unknown(n),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::Advertisement => 1,
            MessageType::Unknown(n) => n,
        }
    }
}

/// VRRPv2 authentication type (RFC 3768 5.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// 0: no authentication.
    None,
    /// 1: simple text password (RFC 2338; removed by RFC 3768 but still used).
    Pass,
    /// 2: IPsec AH (RFC 2338; keepalived `auth_type AH`).
    Ah,
    /// Anything else, kept as data.
    Unknown(u8),
}

impl From<u8> for AuthType {
    fn from(v: u8) -> Self {
        match v {
            0 => AuthType::None,
            1 => AuthType::Pass,
            2 => AuthType::Ah,
            n => AuthType::Unknown(n),
        }
    }
}

impl From<AuthType> for u8 {
    fn from(t: AuthType) -> u8 {
        match t {
            AuthType::None => 0,
            AuthType::Pass => 1,
            AuthType::Ah => 2,
            AuthType::Unknown(n) => n,
        }
    }
}

mod field {
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: auth type; v3: high byte of rsvd + max adver int.
    pub const AUTH_TYPE: usize = 4;
    /// v2: adver int (seconds).
    pub const ADVER_INT: usize = 5;
    /// v3: 4 bits rsvd (RFC 5798 5.2.6) + 12 bits max adver int in centiseconds (5.2.7).
    pub const MAX_ADVER_INT: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const ADDRS: usize = 8;
}

// Big-endian helpers that never panic: out-of-range reads give 0, writes are dropped.
fn get_u8(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn get_u16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([get_u8(b, i), get_u8(b, i.wrapping_add(1))])
}

fn get_u32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([
        get_u8(b, i),
        get_u8(b, i.wrapping_add(1)),
        get_u8(b, i.wrapping_add(2)),
        get_u8(b, i.wrapping_add(3)),
    ])
}

fn put_u8(b: &mut [u8], i: usize, v: u8) {
    if let Some(x) = b.get_mut(i) {
        *x = v;
    }
}

fn put_bytes(b: &mut [u8], i: usize, v: &[u8]) {
    for (k, byte) in v.iter().enumerate() {
        put_u8(b, i.wrapping_add(k), *byte);
    }
}

fn put_u16(b: &mut [u8], i: usize, v: u16) {
    put_bytes(b, i, &v.to_be_bytes());
}

fn addr_at(b: &[u8], off: usize, family: Family) -> Option<IpAddr> {
    match family {
        Family::V4 => {
            let s = b.get(off..off.checked_add(4)?)?;
            let a: [u8; 4] = s.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(a)))
        }
        Family::V6 => {
            let s = b.get(off..off.checked_add(16)?)?;
            let a: [u8; 16] = s.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
    }
}

/// Internet checksum (RFC 1071) accumulator over several slices.
#[derive(Default)]
pub(crate) struct Checksum {
    sum: u32,
    odd: Option<u8>,
}

impl Checksum {
    pub(crate) fn add(&mut self, data: &[u8]) {
        let mut rest = data;
        if let Some(hi) = self.odd.take() {
            match rest.split_first() {
                Some((lo, tail)) => {
                    self.add_word(u16::from_be_bytes([hi, *lo]));
                    rest = tail;
                }
                None => {
                    self.odd = Some(hi);
                    return;
                }
            }
        }
        let mut chunks = rest.chunks_exact(2);
        for c in &mut chunks {
            if let [a, b] = c {
                self.add_word(u16::from_be_bytes([*a, *b]));
            }
        }
        if let [last] = chunks.remainder() {
            self.odd = Some(*last);
        }
    }

    fn add_word(&mut self, w: u16) {
        self.sum += u32::from(w);
        // Fold as we go so the u32 never overflows.
        self.sum = (self.sum & 0xffff) + (self.sum >> 16);
    }

    pub(crate) fn finish(mut self) -> u16 {
        if let Some(hi) = self.odd.take() {
            self.add_word(u16::from_be_bytes([hi, 0]));
        }
        let mut s = self.sum;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

/// A read/write view over a VRRP message (the payload after the IP header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Wrap a buffer without checking it. Accessors still never panic (short
    /// buffers read as zeros), but values are meaningless until [`check_len`](Self::check_len).
    pub const fn new_unchecked(buffer: T, family: Family) -> Self {
        VrrpPacket { buffer, family }
    }

    /// Wrap a received buffer and check its length. The only constructor for
    /// untrusted input.
    pub fn new_checked(buffer: T, family: Family) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer, family);
        p.check_len()?;
        Ok(p)
    }

    /// Check that the buffer holds exactly the header, the address list given
    /// by the count and (v2) the authentication data.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        // RFC 5798 7.1 / RFC 3768 7.1: the packet length must be at least the VRRP header.
        if len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        let expected = match (self.version(), self.family) {
            // RFC 3768 5.1: VRRPv2 is IPv4 only; 4-byte addresses then 8 octets of auth data.
            (2, Family::V4) => expected_len(VrrpVersion::V2, self.family, self.count_addrs()),
            // RFC 5798 5.2.1: version 3.
            (3, _) => expected_len(VrrpVersion::V3, self.family, self.count_addrs()),
            _ => return Err(Error::BadVersion),
        };
        // RFC 5798 5.2.5 / RFC 3768 5.3.5: Count IPvX Addr is the number of addresses in the packet.
        if len != expected {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Give back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Address family given at construction.
    pub const fn family(&self) -> Family {
        self.family
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version field (4 bits).
    pub fn version(&self) -> u8 {
        get_u8(self.bytes(), field::VER_TYPE) >> 4
    }

    /// Type field (4 bits).
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(get_u8(self.bytes(), field::VER_TYPE) & 0x0f)
    }

    /// Virtual router identifier.
    pub fn vrid(&self) -> u8 {
        get_u8(self.bytes(), field::VRID)
    }

    /// Priority (0: master stepping down, 255: address owner).
    pub fn priority(&self) -> u8 {
        get_u8(self.bytes(), field::PRIORITY)
    }

    /// Number of addresses in the list.
    pub fn count_addrs(&self) -> u8 {
        get_u8(self.bytes(), field::COUNT)
    }

    /// VRRPv2 auth type (byte 4; meaningless for v3).
    pub fn auth_type(&self) -> AuthType {
        AuthType::from(get_u8(self.bytes(), field::AUTH_TYPE))
    }

    /// VRRPv2 advertisement interval in seconds (byte 5).
    pub fn advert_int(&self) -> u8 {
        get_u8(self.bytes(), field::ADVER_INT)
    }

    /// VRRPv3 maximum advertisement interval in centiseconds (12 bits).
    pub fn max_advert_int(&self) -> u16 {
        // RFC 5798 5.2.6-5.2.7: 4 reserved bits (ignored on receive), 12 bits of centiseconds.
        get_u16(self.bytes(), field::MAX_ADVER_INT) & 0x0fff
    }

    /// VRRPv3 reserved bits (top 4 bits of bytes 4-5).
    pub fn reserved(&self) -> u8 {
        get_u8(self.bytes(), field::MAX_ADVER_INT) >> 4
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.bytes(), field::CHECKSUM)
    }

    /// The `i`th address of the list, if it is in the buffer.
    pub fn address(&self, i: usize) -> Option<IpAddr> {
        if i >= usize::from(self.count_addrs()) {
            return None;
        }
        let off = i
            .checked_mul(self.family.addr_len())?
            .checked_add(field::ADDRS)?;
        addr_at(self.bytes(), off, self.family)
    }

    /// Iterate over the address list (stops early on a short buffer).
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        (0..usize::from(self.count_addrs())).map_while(move |i| self.address(i))
    }

    fn auth_offset(&self) -> usize {
        field::ADDRS + usize::from(self.count_addrs()) * self.family.addr_len()
    }

    /// VRRPv2 authentication data (8 bytes); empty for v3 or a short buffer.
    pub fn auth_data(&self) -> &[u8] {
        if self.version() != 2 {
            return &[];
        }
        let off = self.auth_offset();
        self.bytes()
            .get(off..off + AUTH_DATA_LEN)
            .unwrap_or_default()
    }

    /// The checksum this packet should carry (computed with the checksum field
    /// taken as zero). `src`/`dst` are only used for v3 (pseudo-header).
    pub fn compute_checksum(&self, src: &IpAddr, dst: &IpAddr) -> u16 {
        let b = self.bytes();
        let mut c = Checksum::default();
        if self.version() == 3 {
            pseudo_header(&mut c, src, dst, b.len());
        }
        c.add(b.get(..field::CHECKSUM).unwrap_or_default());
        c.add(b.get(field::CHECKSUM + 2..).unwrap_or_default());
        c.finish()
    }

    /// Does the checksum verify?
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let b = self.bytes();
        let mut c = Checksum::default();
        if self.version() == 3 {
            pseudo_header(&mut c, src, dst, b.len());
        }
        c.add(b);
        c.finish() == 0
    }
}

fn pseudo_header(c: &mut Checksum, src: &IpAddr, dst: &IpAddr, len: usize) {
    match (src, dst) {
        // RFC 5798 5.2.8: v3 over IPv4 includes the IPv4 pseudo-header
        // (src, dst, zero, protocol 112, VRRP length) — confirmed by keepalived 2.2.7 bytes.
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            c.add(&s.octets());
            c.add(&d.octets());
            c.add(&[0, IPPROTO_VRRP]);
            c.add(&(len as u16).to_be_bytes());
        }
        // RFC 5798 5.2.8 / RFC 2460 8.1: v3 over IPv6 includes the IPv6 pseudo-header
        // (src, dst, 32-bit length, 3 zero bytes, next header 112).
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            c.add(&s.octets());
            c.add(&d.octets());
            c.add(&(len as u32).to_be_bytes());
            c.add(&[0, 0, 0, IPPROTO_VRRP]);
        }
        // Mixed families: caller error, caught in parse/emit; checksum simply won't verify.
        _ => {}
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set version and type.
    pub fn set_version_type(&mut self, version: u8, t: MessageType) {
        let v = (version << 4) | (u8::from(t) & 0x0f);
        put_u8(self.bytes_mut(), field::VER_TYPE, v);
    }

    /// Set the VRID.
    pub fn set_vrid(&mut self, v: u8) {
        put_u8(self.bytes_mut(), field::VRID, v);
    }

    /// Set the priority.
    pub fn set_priority(&mut self, v: u8) {
        put_u8(self.bytes_mut(), field::PRIORITY, v);
    }

    /// Set the address count.
    pub fn set_count_addrs(&mut self, v: u8) {
        put_u8(self.bytes_mut(), field::COUNT, v);
    }

    /// Set the v2 auth type.
    pub fn set_auth_type(&mut self, t: AuthType) {
        put_u8(self.bytes_mut(), field::AUTH_TYPE, u8::from(t));
    }

    /// Set the v2 advertisement interval (seconds).
    pub fn set_advert_int(&mut self, secs: u8) {
        put_u8(self.bytes_mut(), field::ADVER_INT, secs);
    }

    /// Set the v3 max advertisement interval (centiseconds, 12 bits; reserved bits zeroed).
    pub fn set_max_advert_int(&mut self, cs: u16) {
        // RFC 5798 5.2.6: rsvd MUST be zero on transmit.
        put_u16(self.bytes_mut(), field::MAX_ADVER_INT, cs & 0x0fff);
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.bytes_mut(), field::CHECKSUM, v);
    }

    /// Write the `i`th address (ignored if out of the buffer).
    pub fn set_address(&mut self, i: usize, addr: &IpAddr) {
        let off = field::ADDRS.saturating_add(i.saturating_mul(self.family.addr_len()));
        match addr {
            IpAddr::V4(a) => put_bytes(self.bytes_mut(), off, &a.octets()),
            IpAddr::V6(a) => put_bytes(self.bytes_mut(), off, &a.octets()),
        }
    }

    /// Write the v2 authentication data (after the address list given by the count).
    pub fn set_auth_data(&mut self, data: &[u8; AUTH_DATA_LEN]) {
        let off = self.auth_offset();
        put_bytes(self.bytes_mut(), off, data);
    }

    /// Compute and store the checksum.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        let c = self.compute_checksum(src, dst);
        self.set_checksum(c);
    }
}

fn expected_len(version: VrrpVersion, family: Family, count: u8) -> usize {
    let addrs = usize::from(count) * family.addr_len();
    match version {
        VrrpVersion::V2 => HEADER_LEN + addrs + AUTH_DATA_LEN,
        VrrpVersion::V3 => HEADER_LEN + addrs,
    }
}

/// VRRPv2 authentication carried in the advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Auth type 0 (and always for v3).
    None,
    /// Auth type 1: the password, zero padded to 8 bytes.
    Pass([u8; AUTH_DATA_LEN]),
    /// Auth type 2: IPsec AH; the VRRP auth data is zero, the proof is in the AH header.
    Ah,
}

impl Auth {
    /// Wire auth type.
    pub const fn auth_type(&self) -> AuthType {
        match self {
            Auth::None => AuthType::None,
            Auth::Pass(_) => AuthType::Pass,
            Auth::Ah => AuthType::Ah,
        }
    }
}

/// The meaning of a VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VrrpRepr {
    /// Protocol version.
    pub version: VrrpVersion,
    /// Virtual router identifier (1..=255).
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2: seconds * 100).
    pub max_advert_int: u16,
    /// Virtual addresses, all of one family.
    pub addresses: Vec<IpAddr>,
    /// v2 authentication; always `None` for v3.
    pub auth: Auth,
}

impl VrrpRepr {
    /// Validate a checked packet and extract its meaning. `src`/`dst` are the
    /// IP source and destination (needed for the v3 checksum pseudo-header).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &VrrpPacket<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<VrrpRepr, Error> {
        let family = packet.family();
        if Family::of(src) != family || Family::of(dst) != family {
            return Err(Error::FamilyMismatch);
        }
        packet.check_len()?;
        // RFC 5798 7.1: MUST verify the VRRP version; RFC 3768 5.1: v2 is IPv4 only.
        let version = match (packet.version(), family) {
            (2, Family::V4) => VrrpVersion::V2,
            (3, _) => VrrpVersion::V3,
            _ => return Err(Error::BadVersion),
        };
        // RFC 5798 5.2.2: type 1 (ADVERTISEMENT); packets with unknown type MUST be discarded.
        if packet.msg_type() != MessageType::Advertisement {
            return Err(Error::BadType);
        }
        // RFC 5798 5.2.3 / RFC 3768 5.3.3: VRID is 1..255; 0 is never valid.
        if packet.vrid() == 0 {
            return Err(Error::BadVrid);
        }
        // RFC 5798 7.1 / RFC 3768 7.1: MUST verify the VRRP checksum.
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let (max_advert_int, auth) = match version {
            VrrpVersion::V2 => {
                // RFC 3768 5.3.7: Adver Int in seconds.
                let cs = u16::from(packet.advert_int()) * 100;
                let auth = match packet.auth_type() {
                    AuthType::None => Auth::None,
                    AuthType::Pass => {
                        let mut pw = [0u8; AUTH_DATA_LEN];
                        for (d, s) in pw.iter_mut().zip(packet.auth_data()) {
                            *d = *s;
                        }
                        Auth::Pass(pw)
                    }
                    AuthType::Ah => Auth::Ah,
                    // RFC 2787 vrrpStatsInvalidAuthType: unknown auth type.
                    AuthType::Unknown(_) => return Err(Error::InvalidAuthType),
                };
                (cs, auth)
            }
            VrrpVersion::V3 => (packet.max_advert_int(), Auth::None),
        };
        Ok(VrrpRepr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_advert_int,
            addresses: packet.addresses().collect(),
            auth,
        })
    }

    /// Family of the address list (IPv4 if empty).
    pub fn family(&self) -> Family {
        self.addresses.first().map(Family::of).unwrap_or(Family::V4)
    }

    /// Length of the VRRP message this Repr emits.
    pub fn buffer_len(&self) -> usize {
        let addrs = self
            .addresses
            .len()
            .saturating_mul(self.family().addr_len());
        match self.version {
            VrrpVersion::V2 => HEADER_LEN + addrs + AUTH_DATA_LEN,
            VrrpVersion::V3 => HEADER_LEN + addrs,
        }
    }

    /// Write the VRRP message into `buf` (at least `buffer_len()` long; only
    /// that prefix is written) and fill the checksum.
    pub fn emit(&self, buf: &mut [u8], src: &IpAddr, dst: &IpAddr) -> Result<usize, Error> {
        let family = self.family();
        let count = u8::try_from(self.addresses.len()).map_err(|_| Error::Unrepresentable)?;
        if self.addresses.iter().any(|a| Family::of(a) != family) {
            return Err(Error::Unrepresentable);
        }
        if Family::of(src) != family || Family::of(dst) != family {
            return Err(Error::FamilyMismatch);
        }
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out.fill(0);
        let mut p = VrrpPacket::new_unchecked(out, family);
        p.set_version_type(self.version.number(), MessageType::Advertisement);
        p.set_vrid(self.vrid);
        p.set_priority(self.priority);
        p.set_count_addrs(count);
        match self.version {
            VrrpVersion::V2 => {
                // RFC 3768 5.1: v2 is IPv4 only.
                if family != Family::V4 {
                    return Err(Error::Unrepresentable);
                }
                // RFC 3768 5.3.7: Adver Int is whole seconds in 8 bits.
                let secs = self.max_advert_int / 100;
                if self.max_advert_int % 100 != 0 || secs > 255 {
                    return Err(Error::Unrepresentable);
                }
                p.set_auth_type(self.auth.auth_type());
                p.set_advert_int(secs as u8);
            }
            VrrpVersion::V3 => {
                // RFC 5798 5.2.7: 12-bit centiseconds.
                if self.max_advert_int > 0x0fff || self.auth != Auth::None {
                    return Err(Error::Unrepresentable);
                }
                p.set_max_advert_int(self.max_advert_int);
            }
        }
        for (i, a) in self.addresses.iter().enumerate() {
            p.set_address(i, a);
        }
        if let Auth::Pass(pw) = &self.auth {
            // RFC 2338 5.3.10: the password, zero padded.
            p.set_auth_data(pw);
        }
        // RFC 5798 5.2.8: checksum over the message (v3: plus pseudo-header), field zero while computing.
        p.fill_checksum(src, dst);
        Ok(len)
    }
}

mod ipv4 {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// A read view over an IPv4 packet as a raw socket delivers it (header included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap without checks (accessors read zeros past the end).
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wrap and check version, header length and total length.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check version 4, 20 <= header length <= total length <= buffer length.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < IPV4_HEADER_LEN {
            return Err(Error::BadLength);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hl = self.header_len();
        let total = usize::from(self.total_len());
        if hl < IPV4_HEADER_LEN || hl > total || total > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Give back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// IP version (4).
    pub fn version(&self) -> u8 {
        get_u8(self.bytes(), ipv4::VER_IHL) >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(get_u8(self.bytes(), ipv4::VER_IHL) & 0x0f) * 4
    }

    /// Type of service / DSCP+ECN byte.
    pub fn tos(&self) -> u8 {
        get_u8(self.bytes(), ipv4::TOS)
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        get_u16(self.bytes(), ipv4::TOTAL_LEN)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.bytes(), ipv4::IDENT)
    }

    /// Flags (3 bits) and fragment offset (13 bits).
    pub fn flags_frag(&self) -> u16 {
        get_u16(self.bytes(), ipv4::FLAGS_FRAG)
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        get_u8(self.bytes(), ipv4::TTL)
    }

    /// Protocol.
    pub fn protocol(&self) -> u8 {
        get_u8(self.bytes(), ipv4::PROTOCOL)
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.bytes(), ipv4::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(self.bytes(), ipv4::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(self.bytes(), ipv4::DST))
    }

    /// The header bytes (with options).
    pub fn header(&self) -> &[u8] {
        self.bytes().get(..self.header_len()).unwrap_or_default()
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        let total = usize::from(self.total_len());
        self.bytes()
            .get(self.header_len()..total)
            .unwrap_or_default()
    }

    /// Does the header checksum verify?
    pub fn verify_checksum(&self) -> bool {
        let mut c = Checksum::default();
        c.add(self.header());
        c.finish() == 0
    }
}

/// The meaning of the IPv4 header of an advertisement we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source (the primary address of the interface).
    pub src: Ipv4Addr,
    /// Destination (224.0.0.18 or a unicast peer).
    pub dst: Ipv4Addr,
    /// 112 (VRRP) or 51 (AH).
    pub protocol: u8,
    /// Identification (keepalived counts up from 1).
    pub ident: u16,
    /// [`VRRP_TTL`], but for keepalived's `unicast_ttl` on unicast adverts.
    pub ttl: u8,
    /// Payload length.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Header length (no options).
    pub const fn buffer_len(&self) -> usize {
        IPV4_HEADER_LEN
    }

    /// Write a 20-byte header the way keepalived does (TOS 0xc0, no DF) with its checksum.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let total = u16::try_from(IPV4_HEADER_LEN + self.payload_len)
            .map_err(|_| Error::Unrepresentable)?;
        let h = buf
            .get_mut(..IPV4_HEADER_LEN)
            .ok_or(Error::BufferTooSmall)?;
        h.fill(0);
        put_u8(h, ipv4::VER_IHL, 0x45);
        // keepalived 2.2.7 sends TOS 0xc0 (network control), as seen in the vectors.
        put_u8(h, ipv4::TOS, 0xc0);
        put_u16(h, ipv4::TOTAL_LEN, total);
        put_u16(h, ipv4::IDENT, self.ident);
        put_u8(h, ipv4::TTL, self.ttl);
        put_u8(h, ipv4::PROTOCOL, self.protocol);
        put_bytes(h, ipv4::SRC, &self.src.octets());
        put_bytes(h, ipv4::DST, &self.dst.octets());
        let mut c = Checksum::default();
        c.add(h);
        let sum = c.finish();
        put_u16(h, ipv4::CHECKSUM, sum);
        Ok(())
    }
}

/// Write a whole IPv4 advertisement (20-byte header + VRRP message) into
/// `buf` with TTL `ttl` (RFC 5798 5.1.1.3: [`VRRP_TTL`]; keepalived's
/// `unicast_ttl` may lower it for unicast); returns its length. Not for AH
/// (see [`crate::vrrp::auth`]).
pub fn emit_ipv4_advert(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    ttl: u8,
    repr: &VrrpRepr,
) -> Result<usize, Error> {
    let len = IPV4_HEADER_LEN + repr.buffer_len();
    let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
    let (hdr, body) = out.split_at_mut(IPV4_HEADER_LEN);
    repr.emit(body, &IpAddr::V4(src), &IpAddr::V4(dst))?;
    Ipv4Repr {
        src,
        dst,
        protocol: IPPROTO_VRRP,
        ident,
        ttl,
        payload_len: repr.buffer_len(),
    }
    .emit(hdr)?;
    Ok(len)
}

/// A received advertisement after the per-packet receive checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address.
    pub dst: IpAddr,
    /// AH sequence number if the packet came inside an AH header (ICV not yet
    /// verified: see [`crate::vrrp::auth::verify_ah`]).
    pub ah_seq: Option<u32>,
    /// IPv4 TTL or IPv6 hop limit the packet arrived with.
    pub ttl: u8,
    /// The advertisement.
    pub repr: VrrpRepr,
}

/// Which TTL / hop limit a received advertisement must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlRule {
    /// RFC 5798 7.1 / RFC 3768 7.1: exactly 255 (multicast adverts).
    Exactly255,
    /// Not checked here: keepalived checks unicast adverts only against a
    /// peer's `min_ttl` / `max_ttl`, which the caller knows.
    Unchecked,
}

impl TtlRule {
    fn check(self, ttl: u8) -> Result<(), Error> {
        match self {
            TtlRule::Exactly255 if ttl != VRRP_TTL => Err(Error::BadTtl),
            _ => Ok(()),
        }
    }
}

/// Receive checks for an IPv4 packet (header included) from a raw socket:
/// TTL, protocol, optional AH header, then [`VrrpRepr::parse`].
pub fn receive_ipv4(bytes: &[u8]) -> Result<Received, Error> {
    receive_ipv4_with(bytes, TtlRule::Exactly255)
}

/// [`receive_ipv4`] with the TTL checked by `ttl_rule`.
pub fn receive_ipv4_with(bytes: &[u8], ttl_rule: TtlRule) -> Result<Received, Error> {
    let ip = Ipv4Packet::new_checked(bytes)?;
    // RFC 5798 7.1 / RFC 3768 7.1: MUST verify that the IP TTL is 255.
    ttl_rule.check(ip.ttl())?;
    let src = IpAddr::V4(ip.src_addr());
    let dst = IpAddr::V4(ip.dst_addr());
    let (payload, ah_seq) = match ip.protocol() {
        IPPROTO_VRRP => (ip.payload(), None),
        IPPROTO_AH => {
            let ah = crate::vrrp::auth::AhPacket::new_checked(ip.payload())?;
            if ah.next_header() != IPPROTO_VRRP {
                return Err(Error::BadProtocol);
            }
            (
                ip.payload().get(ah.header_len()..).unwrap_or_default(),
                Some(ah.sequence()),
            )
        }
        _ => return Err(Error::BadProtocol),
    };
    let packet = VrrpPacket::new_checked(payload, Family::V4)?;
    let repr = VrrpRepr::parse(&packet, &src, &dst)?;
    // RFC 2338 5.3.6.3: auth type 2 means the packet is carried in AH, and vice versa.
    if (repr.auth == Auth::Ah) != ah_seq.is_some() {
        return Err(Error::AuthTypeMismatch);
    }
    Ok(Received {
        src,
        dst,
        ah_seq,
        ttl: ip.ttl(),
        repr,
    })
}

/// Receive checks for an IPv6 VRRP payload: the kernel strips the IPv6
/// header, so addresses and hop limit come from `recvmsg` (IPV6_RECVHOPLIMIT).
pub fn receive_ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    payload: &[u8],
) -> Result<Received, Error> {
    receive_ipv6_with(src, dst, hop_limit, payload, TtlRule::Exactly255)
}

/// [`receive_ipv6`] with the hop limit checked by `ttl_rule`.
pub fn receive_ipv6_with(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    payload: &[u8],
    ttl_rule: TtlRule,
) -> Result<Received, Error> {
    // RFC 5798 7.1: MUST verify that the IPv6 Hop Limit is 255.
    ttl_rule.check(hop_limit)?;
    let src = IpAddr::V6(src);
    let dst = IpAddr::V6(dst);
    let packet = VrrpPacket::new_checked(payload, Family::V6)?;
    let repr = VrrpRepr::parse(&packet, &src, &dst)?;
    Ok(Received {
        src,
        dst,
        ah_seq: None,
        ttl: hop_limit,
        repr,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    // keepalived 2.2.7, VRRPv2, vrid 51, priority 150, advert_int 1,
    // auth_type PASS "secret12", VIP 10.99.0.100; from 10.99.0.1 to 224.0.0.18.
    static PACKET_BYTES: [u8; 20] = [
        0x21, 0x33, 0x96, 0x01, 0x01, 0x01, 0xcf, 0x84, 0x0a, 0x63, 0x00, 0x64, b's', b'e', b'c',
        b'r', b'e', b't', b'1', b'2',
    ];
    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    const DST: IpAddr = IpAddr::V4(MCAST_GROUP4);

    fn repr() -> VrrpRepr {
        VrrpRepr {
            version: VrrpVersion::V2,
            vrid: 51,
            priority: 150,
            max_advert_int: 100,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))],
            auth: Auth::Pass(*b"secret12"),
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = VrrpPacket::new_checked(&PACKET_BYTES[..], Family::V4).unwrap();
        assert_eq!(p.version(), 2);
        assert_eq!(p.msg_type(), MessageType::Advertisement);
        assert_eq!(p.vrid(), 51);
        assert_eq!(p.priority(), 150);
        assert_eq!(p.count_addrs(), 1);
        assert_eq!(p.auth_type(), AuthType::Pass);
        assert_eq!(p.advert_int(), 1);
        assert_eq!(p.checksum(), 0xcf84);
        assert_eq!(
            p.addresses().collect::<Vec<_>>(),
            vec![IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))]
        );
        assert_eq!(p.address(1), None);
        assert_eq!(p.auth_data(), b"secret12");
        assert!(p.verify_checksum(&SRC, &DST));
        assert_eq!(p.compute_checksum(&SRC, &DST), 0xcf84);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 20];
        let mut p = VrrpPacket::new_unchecked(&mut bytes[..], Family::V4);
        p.set_version_type(2, MessageType::Advertisement);
        p.set_vrid(51);
        p.set_priority(150);
        p.set_count_addrs(1);
        p.set_auth_type(AuthType::Pass);
        p.set_advert_int(1);
        p.set_address(0, &IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)));
        p.set_auth_data(b"secret12");
        p.fill_checksum(&SRC, &DST);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn test_parse() {
        let p = VrrpPacket::new_checked(&PACKET_BYTES[..], Family::V4).unwrap();
        assert_eq!(VrrpRepr::parse(&p, &SRC, &DST), Ok(repr()));
    }

    #[test]
    fn test_emit() {
        let r = repr();
        assert_eq!(r.buffer_len(), PACKET_BYTES.len());
        let mut bytes = [0xa5u8; 20];
        assert_eq!(r.emit(&mut bytes, &SRC, &DST), Ok(20));
        assert_eq!(bytes, PACKET_BYTES);
        assert_eq!(
            r.emit(&mut bytes[..19], &SRC, &DST),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn test_checksum_odd_split() {
        let mut a = Checksum::default();
        a.add(&PACKET_BYTES);
        let mut b = Checksum::default();
        for chunk in PACKET_BYTES.chunks(3) {
            b.add(chunk);
        }
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn test_unchecked_short_never_panics() {
        let p = VrrpPacket::new_unchecked(&[0x21u8][..], Family::V6);
        assert_eq!(p.vrid(), 0);
        assert_eq!(p.address(0), None);
        assert!(p.auth_data().is_empty());
        assert_eq!(
            VrrpPacket::new_checked(&[0x21u8][..], Family::V4),
            Err(Error::BadLength)
        );
    }
}
