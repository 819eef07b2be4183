//! VRRP codec against adverts captured from keepalived 2.2.7 (tests/vectors/README.md):
//! parse -> expected Repr, emit(expected Repr) -> the captured bytes, and
//! negative / mutation tests that must give specific errors and never panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keepalived_rs::vrrp::auth::{self, AhRepr, IcvTtl};
use keepalived_rs::vrrp::packet::{emit_ipv4_advert, IPPROTO_AH, MCAST_GROUP4, MCAST_GROUP6};
use keepalived_rs::vrrp::{
    receive_ipv4, receive_ipv6, Auth, AuthType, Error, Family, Ipv4Packet, Ipv4Repr, MessageType,
    VrrpPacket, VrrpRepr, VrrpVersion,
};

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len() % 2 == 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn v2_pass() -> Vec<u8> {
    hex(include_str!("vectors/v2_ipv4_pass.hex"))
}
fn v2_noauth() -> Vec<u8> {
    hex(include_str!("vectors/v2_ipv4_noauth_3vips.hex"))
}
fn v3_ipv4() -> Vec<u8> {
    hex(include_str!("vectors/v3_ipv4.hex"))
}
fn v3_ipv6() -> Vec<u8> {
    hex(include_str!("vectors/v3_ipv6.hex"))
}
fn v2_ah() -> Vec<u8> {
    hex(include_str!("vectors/v2_ipv4_ah.hex"))
}
fn v2_ah_unicast() -> Vec<u8> {
    hex(include_str!("vectors/v2_ipv4_ah_unicast.hex"))
}

const SRC4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const KEY: &[u8] = b"secret12";

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn vip6() -> IpAddr {
    IpAddr::V6("fd99::100".parse().unwrap())
}

fn repr(version: VrrpVersion, cs: u16, addresses: Vec<IpAddr>, auth: Auth) -> VrrpRepr {
    VrrpRepr {
        version,
        vrid: 51,
        priority: 150,
        max_advert_int: cs,
        addresses,
        auth,
    }
}

fn expected_pass() -> VrrpRepr {
    repr(
        VrrpVersion::V2,
        100,
        vec![v4(10, 99, 0, 100)],
        Auth::Pass(*b"secret12"),
    )
}
fn expected_noauth() -> VrrpRepr {
    repr(
        VrrpVersion::V2,
        100,
        vec![v4(10, 99, 0, 100), v4(10, 99, 0, 101), v4(10, 99, 0, 102)],
        Auth::None,
    )
}
fn expected_v3_ipv4() -> VrrpRepr {
    repr(VrrpVersion::V3, 50, vec![v4(10, 99, 0, 100)], Auth::None)
}
fn expected_v3_ipv6() -> VrrpRepr {
    repr(VrrpVersion::V3, 100, vec![vip6()], Auth::None)
}
fn expected_ah() -> VrrpRepr {
    repr(VrrpVersion::V2, 100, vec![v4(10, 99, 0, 100)], Auth::Ah)
}

/// IPv6 vector split the way a raw socket + recvmsg gives it.
fn split6(b: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, &[u8]) {
    let src: [u8; 16] = b[8..24].try_into().unwrap();
    let dst: [u8; 16] = b[24..40].try_into().unwrap();
    (src.into(), dst.into(), b[7], &b[40..])
}

/// Recompute the VRRP checksum of an IPv4 vector (VRRP starts at `off`).
fn refill_checksum4(b: &mut [u8], off: usize) {
    let ip = Ipv4Packet::new_unchecked(&b[..]);
    let (s, d) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    let mut p = VrrpPacket::new_unchecked(&mut b[off..], Family::V4);
    p.fill_checksum(&s, &d);
}

// ---- positive: parse and emit both directions ----

#[test]
fn v2_pass_parse() {
    let b = v2_pass();
    let r = receive_ipv4(&b).unwrap();
    assert_eq!(r.src, IpAddr::V4(SRC4));
    assert_eq!(r.dst, IpAddr::V4(MCAST_GROUP4));
    assert_eq!(r.ah_seq, None);
    assert_eq!(r.repr, expected_pass());
    assert_eq!(
        auth::check_auth(&r.repr, &Auth::Pass(auth::pass_key(KEY))),
        Ok(())
    );
}

#[test]
fn v2_pass_emit() {
    let b = v2_pass();
    let mut out = vec![0u8; expected_pass().buffer_len()];
    let n = expected_pass()
        .emit(&mut out, &IpAddr::V4(SRC4), &IpAddr::V4(MCAST_GROUP4))
        .unwrap();
    assert_eq!(&out[..n], &b[20..]);
    // Whole packet, IPv4 header included (keepalived: TOS 0xc0, ID 1, TTL 255).
    let mut whole = [0u8; 64];
    let n = emit_ipv4_advert(&mut whole, SRC4, MCAST_GROUP4, 1, 255, &expected_pass()).unwrap();
    assert_eq!(&whole[..n], &b[..]);
}

#[test]
fn v2_noauth_3vips_parse_emit() {
    let b = v2_noauth();
    let r = receive_ipv4(&b).unwrap();
    assert_eq!(r.repr, expected_noauth());
    let p = VrrpPacket::new_checked(&b[20..], Family::V4).unwrap();
    assert_eq!(p.count_addrs(), 3);
    assert_eq!(p.auth_type(), AuthType::None);
    assert_eq!(p.auth_data(), &[0u8; 8]);
    let mut whole = [0u8; 64];
    let n = emit_ipv4_advert(&mut whole, SRC4, MCAST_GROUP4, 1, 255, &expected_noauth()).unwrap();
    assert_eq!(&whole[..n], &b[..]);
}

#[test]
fn v3_ipv4_parse_emit() {
    let b = v3_ipv4();
    let r = receive_ipv4(&b).unwrap();
    assert_eq!(r.repr, expected_v3_ipv4());
    let p = VrrpPacket::new_checked(&b[20..], Family::V4).unwrap();
    assert_eq!(p.version(), 3);
    assert_eq!(p.max_advert_int(), 50);
    assert_eq!(p.reserved(), 0);
    assert!(p.auth_data().is_empty());
    let mut whole = [0u8; 64];
    let n = emit_ipv4_advert(&mut whole, SRC4, MCAST_GROUP4, 1, 255, &expected_v3_ipv4()).unwrap();
    assert_eq!(&whole[..n], &b[..]);
}

#[test]
fn v3_ipv6_parse_emit() {
    let b = v3_ipv6();
    let (src, dst, hl, payload) = split6(&b);
    assert_eq!(dst, MCAST_GROUP6);
    assert_eq!(
        src.segments()[0],
        0xfe80,
        "source is the link-local address"
    );
    let r = receive_ipv6(src, dst, hl, payload).unwrap();
    assert_eq!(r.repr, expected_v3_ipv6());
    let mut out = [0u8; 64];
    let n = expected_v3_ipv6()
        .emit(&mut out, &IpAddr::V6(src), &IpAddr::V6(dst))
        .unwrap();
    assert_eq!(&out[..n], payload);
}

#[test]
fn v2_ah_parse_verify_emit() {
    let b = v2_ah();
    let r = receive_ipv4(&b).unwrap();
    assert_eq!(r.repr, expected_ah());
    assert_eq!(r.ah_seq, Some(1));
    assert_eq!(auth::check_auth(&r.repr, &Auth::Ah), Ok(()));
    assert_eq!(auth::verify_ah(&b, KEY, IcvTtl::Hashed), Ok(1));
    // Key zero padded to 8 is the same HMAC key.
    assert_eq!(
        auth::verify_ah(&b, &auth::pass_key(KEY), IcvTtl::Hashed),
        Ok(1)
    );
    assert_eq!(
        auth::verify_ah(&b, b"secret13", IcvTtl::Hashed),
        Err(Error::AuthFailure)
    );
    let ah = auth::AhPacket::new_checked(&b[20..]).unwrap();
    assert_eq!(ah.next_header(), 112);
    assert_eq!(ah.spi(), u32::from(SRC4));
    assert_eq!(ah.icv().len(), 12);

    // Build the same packet from scratch: IPv4 header + AH + VRRP, then the ICV.
    let vrrp = expected_ah();
    let total = 20 + auth::AH_LEN + vrrp.buffer_len();
    let mut out = vec![0u8; total];
    Ipv4Repr {
        src: SRC4,
        dst: MCAST_GROUP4,
        protocol: IPPROTO_AH,
        ident: 1,
        ttl: 255,
        payload_len: auth::AH_LEN + vrrp.buffer_len(),
    }
    .emit(&mut out)
    .unwrap();
    AhRepr {
        spi: u32::from(SRC4),
        seq: 1,
    }
    .emit(&mut out[20..])
    .unwrap();
    vrrp.emit(
        &mut out[20 + auth::AH_LEN..],
        &IpAddr::V4(SRC4),
        &IpAddr::V4(MCAST_GROUP4),
    )
    .unwrap();
    auth::fill_ah_icv(&mut out, KEY, IcvTtl::Hashed).unwrap();
    assert_eq!(out, b);
}

/// keepalived's unicast AH advert (TTL 64) verifies only with the TTL zeroed,
/// and building it from scratch gives its bytes.
#[test]
fn v2_ah_unicast_zeroes_ttl() {
    let b = v2_ah_unicast();
    assert_eq!(b[8], 64, "captured with unicast_ttl 64");
    assert_eq!(auth::verify_ah(&b, KEY, IcvTtl::Zeroed), Ok(1));
    assert_eq!(
        auth::verify_ah(&b, KEY, IcvTtl::Hashed),
        Err(Error::AuthFailure)
    );
    // Any TTL on the way verifies: it is mutable.
    let mut routed = b.clone();
    routed[8] = 60;
    assert_eq!(auth::verify_ah(&routed, KEY, IcvTtl::Zeroed), Ok(1));
    let peer = Ipv4Addr::new(10, 99, 0, 2);
    let mut buf = [0u8; 128];
    let n = keepalived_rs::net::vrrp_socket::build_ipv4_advert(
        &mut buf,
        SRC4,
        peer,
        1,
        64,
        &expected_ah(),
        Some(&keepalived_rs::net::vrrp_socket::AhParams {
            key: KEY,
            seq: 1,
            icv_ttl: IcvTtl::Zeroed,
        }),
    )
    .unwrap();
    assert_eq!(&buf[..n], &b[..]);
}

#[test]
fn ah_ttl_is_hashed_tos_is_not() {
    // keepalived zeroes TOS (and checksum, frag) but not TTL when computing the ICV.
    let mut b = v2_ah();
    b[1] = 0x00;
    b[10] ^= 0xff;
    assert_eq!(auth::verify_ah(&b, KEY, IcvTtl::Hashed), Ok(1));
    let mut b = v2_ah();
    b[8] = 254;
    assert_eq!(
        auth::verify_ah(&b, KEY, IcvTtl::Hashed),
        Err(Error::AuthFailure)
    );
    // Tampered VRRP payload.
    let mut b = v2_ah();
    b[46] ^= 1;
    assert_eq!(
        auth::verify_ah(&b, KEY, IcvTtl::Hashed),
        Err(Error::AuthFailure)
    );
}

#[test]
fn ipv4_view_fields() {
    let b = v2_pass();
    let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(ip.version(), 4);
    assert_eq!(ip.header_len(), 20);
    assert_eq!(ip.tos(), 0xc0);
    assert_eq!(ip.total_len(), 40);
    assert_eq!(ip.ident(), 1);
    assert_eq!(ip.flags_frag(), 0);
    assert_eq!(ip.ttl(), 255);
    assert_eq!(ip.protocol(), 112);
    assert_eq!(ip.src_addr(), SRC4);
    assert_eq!(ip.dst_addr(), MCAST_GROUP4);
    assert!(ip.verify_checksum());
    assert_eq!(ip.payload(), &b[20..]);
}

// ---- checksums ----

#[test]
fn checksums_verify() {
    let s4 = IpAddr::V4(SRC4);
    let d4 = IpAddr::V4(MCAST_GROUP4);
    for (b, off) in [
        (v2_pass(), 20),
        (v2_noauth(), 20),
        (v3_ipv4(), 20),
        (v2_ah(), 44),
    ] {
        let p = VrrpPacket::new_checked(&b[off..], Family::V4).unwrap();
        assert!(p.verify_checksum(&s4, &d4));
        assert_eq!(p.compute_checksum(&s4, &d4), p.checksum());
    }
    let b = v3_ipv6();
    let (s, d, _, payload) = split6(&b);
    let p = VrrpPacket::new_checked(payload, Family::V6).unwrap();
    assert!(p.verify_checksum(&IpAddr::V6(s), &IpAddr::V6(d)));
}

#[test]
fn v3_checksum_covers_pseudo_header_v2_does_not() {
    let other = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2));
    let d4 = IpAddr::V4(MCAST_GROUP4);
    // v3 IPv4: a different source address breaks the checksum (pseudo-header).
    let b = v3_ipv4();
    let p = VrrpPacket::new_checked(&b[20..], Family::V4).unwrap();
    assert!(!p.verify_checksum(&other, &d4));
    assert_eq!(VrrpRepr::parse(&p, &other, &d4), Err(Error::BadChecksum));
    // v2: the checksum is over the VRRP message only.
    let b = v2_pass();
    let p = VrrpPacket::new_checked(&b[20..], Family::V4).unwrap();
    assert!(p.verify_checksum(&other, &d4));
    // v3 IPv6: pseudo-header too.
    let b = v3_ipv6();
    let (s, d, hl, payload) = split6(&b);
    let mut s2 = s.octets();
    s2[15] ^= 1;
    assert_eq!(
        receive_ipv6(s2.into(), d, hl, payload).unwrap_err(),
        Error::BadChecksum
    );
    assert!(receive_ipv6(s, d, hl, payload).is_ok());
}

#[test]
fn wrong_checksum() {
    for b in [v2_pass(), v2_noauth(), v3_ipv4()] {
        for bit in [0x01u8, 0x80] {
            let mut m = b.clone();
            m[27] ^= bit;
            assert_eq!(receive_ipv4(&m), Err(Error::BadChecksum));
        }
    }
    let mut b = v2_ah();
    b[51] ^= 1;
    assert_eq!(receive_ipv4(&b), Err(Error::BadChecksum));
    let b = v3_ipv6();
    let (s, d, hl, payload) = split6(&b);
    let mut m = payload.to_vec();
    m[6] ^= 1;
    assert_eq!(receive_ipv6(s, d, hl, &m), Err(Error::BadChecksum));
}

// ---- negative ----

#[test]
fn truncated_at_every_length() {
    for b in [v2_pass(), v2_noauth(), v3_ipv4(), v2_ah()] {
        for n in 0..b.len() {
            assert_eq!(receive_ipv4(&b[..n]), Err(Error::BadLength), "len {n}");
            // Truncated payload with a consistent IP total length.
            let mut m = b[..n].to_vec();
            if n >= 20 {
                m[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                let e = receive_ipv4(&m).unwrap_err();
                assert_eq!(e, Error::BadLength, "len {n}");
            }
        }
        let vrrp_off = if b[9] == IPPROTO_AH { 44 } else { 20 };
        let v = &b[vrrp_off..];
        for n in 0..v.len() {
            assert_eq!(
                VrrpPacket::new_checked(&v[..n], Family::V4).unwrap_err(),
                Error::BadLength,
                "vrrp len {n}"
            );
        }
    }
    let b = v3_ipv6();
    let (s, d, hl, payload) = split6(&b);
    for n in 0..payload.len() {
        assert_eq!(receive_ipv6(s, d, hl, &payload[..n]), Err(Error::BadLength));
    }
    // Trailing garbage is a length error too (count says how long the packet is).
    let mut long = payload.to_vec();
    long.extend_from_slice(&[0; 4]);
    assert_eq!(receive_ipv6(s, d, hl, &long), Err(Error::BadLength));
}

#[test]
fn wrong_ttl() {
    for b in [v2_pass(), v2_noauth(), v3_ipv4(), v2_ah()] {
        for ttl in [0u8, 1, 64, 254] {
            let mut m = b.clone();
            m[8] = ttl;
            assert_eq!(receive_ipv4(&m), Err(Error::BadTtl));
        }
    }
    let b = v3_ipv6();
    let (s, d, _, payload) = split6(&b);
    for hl in [0u8, 1, 64, 254] {
        assert_eq!(receive_ipv6(s, d, hl, payload), Err(Error::BadTtl));
    }
}

#[test]
fn count_mismatch() {
    for b in [v2_pass(), v2_noauth(), v3_ipv4()] {
        for delta in [1u8, 255] {
            let mut m = b.clone();
            m[23] = m[23].wrapping_add(delta);
            refill_checksum4(&mut m, 20);
            assert_eq!(receive_ipv4(&m), Err(Error::BadLength));
        }
    }
    let b = v3_ipv6();
    let (s, d, hl, payload) = split6(&b);
    let mut m = payload.to_vec();
    m[3] = 2;
    assert_eq!(receive_ipv6(s, d, hl, &m), Err(Error::BadLength));
}

#[test]
fn bad_version() {
    for b in [v2_pass(), v3_ipv4()] {
        for v in [0u8, 1, 4, 15] {
            let mut m = b.clone();
            m[20] = (v << 4) | 1;
            assert_eq!(receive_ipv4(&m), Err(Error::BadVersion), "version {v}");
        }
    }
    // VRRPv2 over IPv6 does not exist (RFC 3768 is IPv4 only).
    let b = v3_ipv6();
    let (s, d, hl, payload) = split6(&b);
    let mut m = payload.to_vec();
    m[0] = 0x21;
    assert_eq!(receive_ipv6(s, d, hl, &m), Err(Error::BadVersion));
    // Not IPv4 at all.
    let mut m = v2_pass();
    m[0] = 0x65;
    assert_eq!(receive_ipv4(&m), Err(Error::BadVersion));
}

#[test]
fn bad_type() {
    for b in [v2_pass(), v2_noauth(), v3_ipv4()] {
        for t in [0u8, 2, 15] {
            let mut m = b.clone();
            m[20] = (m[20] & 0xf0) | t;
            refill_checksum4(&mut m, 20);
            assert_eq!(receive_ipv4(&m), Err(Error::BadType));
            let p = VrrpPacket::new_checked(&m[20..], Family::V4).unwrap();
            assert_eq!(p.msg_type(), MessageType::Unknown(t));
        }
    }
}

#[test]
fn vrid_zero() {
    for b in [v2_pass(), v2_noauth(), v3_ipv4()] {
        let mut m = b.clone();
        m[21] = 0;
        refill_checksum4(&mut m, 20);
        assert_eq!(receive_ipv4(&m), Err(Error::BadVrid));
    }
    let b = v3_ipv6();
    let (s, d, hl, payload) = split6(&b);
    let mut m = payload.to_vec();
    m[1] = 0;
    assert_eq!(receive_ipv6(s, d, hl, &m), Err(Error::BadVrid));
}

#[test]
fn bad_protocol_and_auth_types() {
    let mut m = v2_pass();
    m[9] = 17;
    assert_eq!(receive_ipv4(&m), Err(Error::BadProtocol));
    // Unknown v2 auth type.
    let mut m = v2_pass();
    m[24] = 7;
    refill_checksum4(&mut m, 20);
    assert_eq!(receive_ipv4(&m), Err(Error::InvalidAuthType));
    // Auth type AH without an AH header.
    let mut m = v2_pass();
    m[24] = 2;
    refill_checksum4(&mut m, 20);
    assert_eq!(receive_ipv4(&m), Err(Error::AuthTypeMismatch));
    // AH header around a type-0 message.
    let mut m = v2_ah();
    m[44 + 4] = 0;
    refill_checksum4(&mut m, 44);
    assert_eq!(receive_ipv4(&m), Err(Error::AuthTypeMismatch));
    // AH next header not VRRP.
    let mut m = v2_ah();
    m[20] = 6;
    assert_eq!(receive_ipv4(&m), Err(Error::BadProtocol));
}

#[test]
fn check_auth_rules() {
    let r = receive_ipv4(&v2_pass()).unwrap().repr;
    assert_eq!(
        auth::check_auth(&r, &Auth::Pass(auth::pass_key(b"secret12345"))),
        Ok(())
    );
    assert_eq!(
        auth::check_auth(&r, &Auth::Pass(auth::pass_key(b"secret"))),
        Err(Error::AuthFailure)
    );
    assert_eq!(
        auth::check_auth(&r, &Auth::None),
        Err(Error::AuthTypeMismatch)
    );
    assert_eq!(
        auth::check_auth(&r, &Auth::Ah),
        Err(Error::AuthTypeMismatch)
    );
    let r = receive_ipv4(&v2_noauth()).unwrap().repr;
    assert_eq!(auth::check_auth(&r, &Auth::None), Ok(()));
    assert_eq!(
        auth::check_auth(&r, &Auth::Pass(*b"secret12")),
        Err(Error::AuthTypeMismatch)
    );
    // v3 has no authentication.
    let r = receive_ipv4(&v3_ipv4()).unwrap().repr;
    assert_eq!(auth::check_auth(&r, &Auth::Pass(*b"secret12")), Ok(()));
}

#[test]
fn emit_rejects_unrepresentable() {
    let s = IpAddr::V4(SRC4);
    let d = IpAddr::V4(MCAST_GROUP4);
    let mut buf = [0u8; 128];
    let mut r = expected_pass();
    r.max_advert_int = 50;
    assert_eq!(r.emit(&mut buf, &s, &d), Err(Error::Unrepresentable));
    let mut r = expected_v3_ipv4();
    r.max_advert_int = 4096;
    assert_eq!(r.emit(&mut buf, &s, &d), Err(Error::Unrepresentable));
    let mut r = expected_v3_ipv4();
    r.auth = Auth::Pass(*b"secret12");
    assert_eq!(r.emit(&mut buf, &s, &d), Err(Error::Unrepresentable));
    let mut r = expected_v3_ipv4();
    r.addresses.push(vip6());
    assert_eq!(r.emit(&mut buf, &s, &d), Err(Error::Unrepresentable));
    let r = expected_v3_ipv6();
    assert_eq!(r.emit(&mut buf, &s, &d), Err(Error::FamilyMismatch));
    let mut r = expected_v3_ipv6();
    r.version = VrrpVersion::V2;
    let s6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(r.emit(&mut buf, &s6, &s6), Err(Error::Unrepresentable));
    let mut r = expected_noauth();
    r.addresses = vec![v4(1, 2, 3, 4); 256];
    assert_eq!(r.emit(&mut buf, &s, &d), Err(Error::Unrepresentable));
    let r = expected_noauth();
    assert_eq!(r.emit(&mut buf[..10], &s, &d), Err(Error::BufferTooSmall));
}

#[test]
fn max_addresses_round_trip() {
    let s = IpAddr::V6("fe80::1".parse().unwrap());
    let d = IpAddr::V6(MCAST_GROUP6);
    let addrs: Vec<IpAddr> = (0..255u16)
        .map(|i| IpAddr::V6(Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 1, i)))
        .collect();
    let r = repr(VrrpVersion::V3, 100, addrs, Auth::None);
    let mut buf = vec![0u8; r.buffer_len()];
    assert_eq!(r.emit(&mut buf, &s, &d), Ok(8 + 255 * 16));
    let p = VrrpPacket::new_checked(&buf[..], Family::V6).unwrap();
    assert_eq!(VrrpRepr::parse(&p, &s, &d), Ok(r));
}

#[test]
fn error_counters_are_named() {
    for e in [
        Error::BadLength,
        Error::BadTtl,
        Error::BadVersion,
        Error::BadType,
        Error::BadVrid,
        Error::BadChecksum,
        Error::AddressListMismatch,
        Error::AuthFailure,
        Error::InvalidAuthType,
        Error::AuthTypeMismatch,
        Error::AdvertIntervalMismatch,
    ] {
        let (mib, ka) = e.counter();
        assert!(!mib.is_empty() && !ka.is_empty());
        assert!(!e.to_string().is_empty());
    }
}

// ---- mutation loop ----

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Touch every accessor of every view; the point is that nothing panics.
fn exercise(bytes: &[u8], family: Family) -> usize {
    let p = VrrpPacket::new_unchecked(bytes, family);
    let mut acc = usize::from(p.version())
        + usize::from(p.vrid())
        + usize::from(p.priority())
        + usize::from(p.count_addrs())
        + usize::from(p.advert_int())
        + usize::from(p.max_advert_int())
        + usize::from(p.checksum())
        + p.auth_data().len()
        + p.addresses().count();
    let _ = (p.msg_type(), p.auth_type(), p.address(300));
    if let Ok(p) = VrrpPacket::new_checked(bytes, family) {
        acc += p.addresses().count() + p.auth_data().len();
    }
    let ip = Ipv4Packet::new_unchecked(bytes);
    acc += ip.payload().len() + ip.header().len() + usize::from(ip.total_len());
    let ah = auth::AhPacket::new_unchecked(bytes);
    acc += ah.icv().len() + ah.payload().len();
    acc
}

#[test]
fn mutation_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0usize;
    let v6 = v3_ipv6();
    let (s6, d6, _, _) = split6(&v6);
    for (b, is_v6) in [
        (v2_pass(), false),
        (v2_noauth(), false),
        (v3_ipv4(), false),
        (v2_ah(), false),
        (v6.clone(), true),
    ] {
        for _ in 0..10_000 {
            let mut m = b.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            if rng.below(8) == 0 {
                let n = rng.below(m.len() + 1);
                m.truncate(n);
            }
            if rng.below(8) == 0 {
                m.extend_from_slice(&[rng.next() as u8; 5]);
            }
            if is_v6 {
                let payload = m.get(40..).unwrap_or(&[]);
                let hl = m.get(7).copied().unwrap_or(0);
                // Fix the checksum half the time so the deeper checks run.
                let mut fixed = payload.to_vec();
                if rng.below(2) == 0 {
                    let mut p = VrrpPacket::new_unchecked(&mut fixed[..], Family::V6);
                    p.fill_checksum(&IpAddr::V6(s6), &IpAddr::V6(d6));
                }
                if receive_ipv6(s6, d6, hl, &fixed).is_ok() {
                    accepted += 1;
                }
                exercise(payload, Family::V6);
            } else {
                if rng.below(2) == 0 && m.len() > 20 {
                    let off = if m[9] == IPPROTO_AH { 44 } else { 20 };
                    if m.len() > off {
                        refill_checksum4(&mut m, off);
                    }
                }
                if receive_ipv4(&m).is_ok() {
                    accepted += 1;
                }
                let _ = auth::verify_ah(&m, KEY, IcvTtl::Hashed);
                let _ = auth::compute_ah_icv(&m, KEY, IcvTtl::Hashed);
                let _ = auth::fill_ah_icv(&mut m.clone(), KEY, IcvTtl::Zeroed);
                exercise(&m, Family::V4);
                exercise(m.get(20..).unwrap_or(&[]), Family::V4);
                exercise(m.get(20..).unwrap_or(&[]), Family::V6);
            }
        }
    }
    // Some mutants (e.g. priority or address changes) are still valid adverts.
    assert!(accepted > 0);
}
