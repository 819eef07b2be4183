/*! VRRPv2 authentication.

RFC 3768 dropped authentication, but keepalived still speaks both methods of
RFC 2338, and so do we:

- **PASS** (auth type 1): the password, truncated/zero padded to 8 bytes,
  travels in clear in the authentication data and is compared.
- **AH** (auth type 2): the VRRP message travels inside an IPsec
  Authentication Header (RFC 2402) with a 96-bit HMAC-MD5 ICV (RFC 2403) keyed
  with the password. The SPI is the sender's IPv4 address and the sequence
  number counts up from 1.

What keepalived 2.2.7 hashes (settled against `tests/vectors/v2_ipv4_ah.hex`
and `v2_ipv4_ah_unicast.hex`): the IPv4 header with TOS, flags/fragment
offset and header checksum zeroed, then the AH header with the ICV zeroed,
then the VRRP message. The TTL is zeroed only for unicast instances (it may
drop on the way to a routed peer); multicast adverts hash it as 255, unlike
RFC 2402 3.3.3.1.1.1. See [`IcvTtl`].
*/

use md5::{Digest, Md5};

use super::packet::{Auth, Error, Ipv4Packet, VrrpRepr, VrrpVersion, AUTH_DATA_LEN, IPPROTO_AH};

/// Length of the AH header keepalived sends: 12 fixed bytes + 12-byte ICV.
pub const AH_LEN: usize = 24;
/// Offset of the TTL in the IPv4 header.
const IPV4_TTL_OFFSET: usize = 8;
/// Length of the HMAC-MD5-96 ICV. RFC 2403 2: truncated to 96 bits.
pub const ICV_LEN: usize = 12;
/// Fixed part of the AH header (next header, length, reserved, SPI, sequence).
pub const AH_FIXED_LEN: usize = 12;

/// Whether the IPv4 TTL takes part in the AH ICV. keepalived 2.2.7 decides by
/// the instance, not by the packet: an instance with unicast peers zeroes it
/// (sending and checking), a multicast one hashes it. Both ends of a link
/// configure the same mode, so they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcvTtl {
    /// Multicast instances: the TTL (255) is hashed as it is.
    Hashed,
    /// Unicast instances: the TTL is mutable (RFC 2402 3.3.3.1.1.1) and zeroed.
    Zeroed,
}

/// Turn a configured `auth_pass` into the 8 bytes on the wire: truncated to
/// 8 (keepalived warns and truncates longer ones), zero padded.
pub fn pass_key(pass: &[u8]) -> [u8; AUTH_DATA_LEN] {
    let mut out = [0u8; AUTH_DATA_LEN];
    for (d, s) in out.iter_mut().zip(pass) {
        *d = *s;
    }
    out
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Check a parsed advertisement against the locally configured authentication.
/// For AH this checks only the type; the ICV is checked by [`verify_ah`].
pub fn check_auth(repr: &VrrpRepr, configured: &Auth) -> Result<(), Error> {
    // RFC 5798 9: VRRPv3 has no authentication fields; nothing to check.
    if repr.version == VrrpVersion::V3 {
        return Ok(());
    }
    // RFC 2338 7.1: if the Auth Type does not match the local one, MUST discard.
    if repr.auth.auth_type() != configured.auth_type() {
        return Err(Error::AuthTypeMismatch);
    }
    match (&repr.auth, configured) {
        // RFC 2338 7.1 / 5.3.6.2: simple text password MUST match the configured one.
        (Auth::Pass(got), Auth::Pass(want)) if !ct_eq(got, want) => Err(Error::AuthFailure),
        _ => Ok(()),
    }
}

mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const PAYLOAD_LEN: usize = 1;
    pub const SPI: usize = 4;
    pub const SEQ: usize = 8;
    pub const ICV: usize = 12;
}

/// A view over an AH header (RFC 2402 2) followed by its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AhPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AhPacket<T> {
    /// Wrap without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        AhPacket { buffer }
    }

    /// Wrap and check that the header (as long as its length field says) fits.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < AH_FIXED_LEN || p.header_len() < AH_FIXED_LEN || p.header_len() > len {
            return Err(Error::BadLength);
        }
        Ok(p)
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn byte(&self, i: usize) -> u8 {
        self.bytes().get(i).copied().unwrap_or(0)
    }

    fn be32(&self, i: usize) -> u32 {
        u32::from_be_bytes([
            self.byte(i),
            self.byte(i + 1),
            self.byte(i + 2),
            self.byte(i + 3),
        ])
    }

    /// Next header (112 for VRRP).
    pub fn next_header(&self) -> u8 {
        self.byte(field::NEXT_HEADER)
    }

    /// Payload length field: AH length in 32-bit words minus 2 (RFC 2402 2.2).
    pub fn payload_len(&self) -> u8 {
        self.byte(field::PAYLOAD_LEN)
    }

    /// AH header length in bytes.
    pub fn header_len(&self) -> usize {
        // RFC 2402 2.2: length of AH in 32-bit words, minus 2.
        (usize::from(self.payload_len()) + 2) * 4
    }

    /// Security parameters index (keepalived: the sender's IPv4 address).
    pub fn spi(&self) -> u32 {
        self.be32(field::SPI)
    }

    /// Sequence number (RFC 2402 2.5).
    pub fn sequence(&self) -> u32 {
        self.be32(field::SEQ)
    }

    /// Integrity check value.
    pub fn icv(&self) -> &[u8] {
        self.bytes()
            .get(field::ICV..self.header_len())
            .unwrap_or_default()
    }

    /// What follows the AH header.
    pub fn payload(&self) -> &[u8] {
        self.bytes().get(self.header_len()..).unwrap_or_default()
    }
}

/// The meaning of the AH header keepalived sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AhRepr {
    /// SPI: the sender's IPv4 address as a number.
    pub spi: u32,
    /// Sequence number, first packet 1.
    pub seq: u32,
}

impl AhRepr {
    /// Header length (with the 12-byte ICV).
    pub const fn buffer_len(&self) -> usize {
        AH_LEN
    }

    /// Write the header with a zero ICV (fill it later with [`fill_ah_icv`]).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let h = buf.get_mut(..AH_LEN).ok_or(Error::BufferTooSmall)?;
        h.fill(0);
        let mut fixed = [0u8; AH_FIXED_LEN];
        fixed[field::NEXT_HEADER] = super::packet::IPPROTO_VRRP;
        // RFC 2402 2.2: (24 bytes / 4) - 2 = 4.
        fixed[field::PAYLOAD_LEN] = (AH_LEN / 4 - 2) as u8;
        fixed[field::SPI..field::SPI + 4].copy_from_slice(&self.spi.to_be_bytes());
        fixed[field::SEQ..field::SEQ + 4].copy_from_slice(&self.seq.to_be_bytes());
        for (d, s) in h.iter_mut().zip(fixed.iter()) {
            *d = *s;
        }
        Ok(())
    }
}

/// HMAC-MD5 (RFC 2104) over the concatenation of `parts`.
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        // RFC 2104 2: keys longer than B are hashed first.
        let h = Md5::digest(key);
        for (d, s) in k.iter_mut().zip(h.iter()) {
            *d = *s;
        }
    } else {
        for (d, s) in k.iter_mut().zip(key) {
            *d = *s;
        }
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for ((i, o), kb) in ipad.iter_mut().zip(opad.iter_mut()).zip(k.iter()) {
        *i ^= kb;
        *o ^= kb;
    }
    let mut inner = Md5::new();
    inner.update(ipad);
    for p in parts {
        inner.update(p);
    }
    let ih = inner.finalize();
    let mut outer = Md5::new();
    outer.update(opad);
    outer.update(ih);
    let oh = outer.finalize();
    let mut out = [0u8; 16];
    for (d, s) in out.iter_mut().zip(oh.iter()) {
        *d = *s;
    }
    out
}

/// Compute the HMAC-MD5-96 ICV of an IPv4 + AH + VRRP packet as keepalived does.
pub fn compute_ah_icv(
    ip_packet: &[u8],
    key: &[u8],
    icv_ttl: IcvTtl,
) -> Result<[u8; ICV_LEN], Error> {
    let ip = Ipv4Packet::new_checked(ip_packet)?;
    if ip.protocol() != IPPROTO_AH {
        return Err(Error::BadProtocol);
    }
    let ah = AhPacket::new_checked(ip.payload())?;
    if ah.icv().len() != ICV_LEN {
        return Err(Error::BadLength);
    }
    // RFC 2402 3.3.3.1.1.1: mutable fields zeroed for the ICV: TOS, flags/fragment
    // offset, header checksum, and TTL but for keepalived's multicast (see the module docs).
    let mut hdr = [0u8; 60];
    let hl = ip.header_len();
    let hdr = hdr.get_mut(..hl).ok_or(Error::BadLength)?;
    for (d, s) in hdr.iter_mut().zip(ip.header()) {
        *d = *s;
    }
    for i in [1usize, 6, 7, 10, 11] {
        if let Some(b) = hdr.get_mut(i) {
            *b = 0;
        }
    }
    if icv_ttl == IcvTtl::Zeroed {
        if let Some(ttl) = hdr.get_mut(IPV4_TTL_OFFSET) {
            *ttl = 0;
        }
    }
    // RFC 2402 3.3.3.1.2: the authentication data field is zero while computing.
    let ah_fixed = ip.payload().get(..AH_FIXED_LEN).unwrap_or_default();
    let zero_icv = [0u8; ICV_LEN];
    let mac = hmac_md5(key, &[hdr, ah_fixed, &zero_icv, ah.payload()]);
    let mut icv = [0u8; ICV_LEN];
    for (d, s) in icv.iter_mut().zip(mac.iter()) {
        *d = *s;
    }
    Ok(icv)
}

/// Verify the ICV of a received IPv4 + AH + VRRP packet; returns the AH
/// sequence number (anti-replay is the instance's job: RFC 2402 3.4.3).
pub fn verify_ah(ip_packet: &[u8], key: &[u8], icv_ttl: IcvTtl) -> Result<u32, Error> {
    let icv = compute_ah_icv(ip_packet, key, icv_ttl)?;
    let ip = Ipv4Packet::new_checked(ip_packet)?;
    let ah = AhPacket::new_checked(ip.payload())?;
    // RFC 2402 3.4.4: if the computed ICV does not match, the packet MUST be discarded.
    if !ct_eq(&icv, ah.icv()) {
        return Err(Error::AuthFailure);
    }
    Ok(ah.sequence())
}

/// Compute the ICV of a complete IPv4 + AH + VRRP packet and store it in the AH header.
pub fn fill_ah_icv(ip_packet: &mut [u8], key: &[u8], icv_ttl: IcvTtl) -> Result<(), Error> {
    let icv = compute_ah_icv(ip_packet, key, icv_ttl)?;
    let hl = Ipv4Packet::new_checked(&*ip_packet)?.header_len();
    let start = hl + field::ICV;
    let dst = ip_packet
        .get_mut(start..start + ICV_LEN)
        .ok_or(Error::BadLength)?;
    dst.copy_from_slice(&icv);
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rfc2202_hmac_md5() {
        // RFC 2202 test case 2.
        let mac = hmac_md5(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            mac,
            [
                0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d,
                0xb7, 0x38
            ]
        );
        // RFC 2202 test case 6: 80-byte key is hashed first.
        let mac = hmac_md5(
            &[0xaa; 80],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            mac,
            [
                0x6b, 0x1a, 0xb7, 0xfe, 0x4b, 0xd7, 0xbf, 0x8f, 0x0b, 0x62, 0xe6, 0xce, 0x61, 0xb9,
                0xd0, 0xcd
            ]
        );
    }

    #[test]
    fn pass_key_pads_and_truncates() {
        assert_eq!(pass_key(b"abc"), *b"abc\0\0\0\0\0");
        assert_eq!(pass_key(b"secret123456"), *b"secret12");
    }
}
