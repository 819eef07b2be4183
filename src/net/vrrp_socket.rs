/*! The raw socket VRRP advertisements travel through.

One [`VrrpSocket`] per interface, address family and IP protocol (112 for
VRRP, 51 for IPv4 AH authentication). It both sends and receives:

- **IPv4** uses `IP_HDRINCL`: the whole packet, header included, is built
  by [`build_ipv4_advert`] so it matches keepalived 2.2.7's header byte for
  byte (TOS 0xc0, DF clear, ID counting from 1, TTL 255; see
  `tests/vectors/README.md`), and so the AH ICV can cover the header. The
  kernel only recomputes the header checksum. Received packets include the
  IPv4 header, as [`crate::vrrp::receive_ipv4`] expects.
- **IPv6** lets the kernel build the header: hop limit 255 from
  `IPV6_MULTICAST_HOPS`/`IPV6_UNICAST_HOPS`, traffic class 0xc0 from
  `IPV6_TCLASS` (as keepalived), checksum from `IPV6_CHECKSUM` (offset 6,
  pseudo-header included, so it is right whatever source the kernel used),
  source from `IPV6_PKTINFO` per packet. Received packets are the VRRP
  payload; the hop limit and destination come from ancillary data
  (`IPV6_RECVHOPLIMIT`, `IPV6_RECVPKTINFO`), as
  [`crate::vrrp::receive_ipv6`] expects.

Both: bound to the interface, multicast loop off (we never hear ourselves),
`IP(V6)_MULTICAST_ALL` off (only the groups this socket joined), joined to
224.0.0.18 / ff02::12 or the configured group. Non-blocking; register with
mio and call [`VrrpSocket::recv`] until it returns `Ok(None)`.
*/

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{bind_to_ifindex, io_error, open_socket, set_int, set_opt, Error};
use crate::netlink::rtnl::AddressInfo;
use crate::vrrp::auth::{fill_ah_icv, AhRepr, IcvTtl, AH_LEN};
use crate::vrrp::packet::{
    receive_ipv4_with, receive_ipv6_with, Family, Ipv4Packet, Ipv4Repr, Received, TtlRule,
    VrrpRepr, IPPROTO_AH, IPPROTO_VRRP, IPV4_HEADER_LEN, VRRP_TTL,
};

/// keepalived sends adverts with TOS / traffic class 0xc0 (DSCP CS6,
/// network control), seen in the captured vectors.
pub const VRRP_TOS: u8 = 0xc0;
/// Offset of the checksum in the VRRP header (for `IPV6_CHECKSUM`).
const VRRP_CHECKSUM_OFFSET: libc::c_int = 6;
/// Receive buffer: larger than any IPv4/IPv6 packet without jumbograms.
const RECV_BUF_LEN: usize = 65_536;
/// Largest advert we build: IPv4 header + AH + v2 header with 255 IPv4
/// addresses + auth data (IPv6: 255 * 16 bytes, still below this).
const SEND_BUF_LEN: usize = 8 + 255 * 16 + 8 + IPV4_HEADER_LEN + AH_LEN;
/// Retries of a system call interrupted by a signal.
const MAX_EINTR_RETRIES: usize = 8;

/// AH authentication (VRRPv2 `auth_type AH`) of one advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhParams<'a> {
    /// The `auth_pass` bytes ([`crate::vrrp::auth::pass_key`]).
    pub key: &'a [u8],
    /// AH sequence number (RFC 2402 2.5: counts up from 1 per sender).
    pub seq: u32,
    /// Whether the TTL is hashed: [`IcvTtl::Zeroed`] for unicast instances.
    pub icv_ttl: IcvTtl,
}

/// Write a whole IPv4 advertisement (header with TTL `ttl`, optional AH,
/// VRRP) into `buf` the way keepalived does; returns its length.
pub fn build_ipv4_advert(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    ttl: u8,
    repr: &VrrpRepr,
    ah: Option<&AhParams<'_>>,
) -> Result<usize, crate::vrrp::Error> {
    let Some(ah) = ah else {
        return crate::vrrp::emit_ipv4_advert(buf, src, dst, ident, ttl, repr);
    };
    let payload_len = AH_LEN + repr.buffer_len();
    let len = IPV4_HEADER_LEN + payload_len;
    let out = buf
        .get_mut(..len)
        .ok_or(crate::vrrp::Error::BufferTooSmall)?;
    let (header, rest) = out.split_at_mut(IPV4_HEADER_LEN);
    let (ah_bytes, vrrp) = rest.split_at_mut(AH_LEN);
    repr.emit(vrrp, &IpAddr::V4(src), &IpAddr::V4(dst))?;
    // RFC 2402 2.4 as keepalived uses it: the SPI is the sender's address.
    AhRepr {
        spi: u32::from(src),
        seq: ah.seq,
    }
    .emit(ah_bytes)?;
    Ipv4Repr {
        src,
        dst,
        protocol: IPPROTO_AH,
        ident,
        ttl,
        payload_len,
    }
    .emit(header)?;
    fill_ah_icv(out, ah.key, ah.icv_ttl)?;
    Ok(len)
}

/// What a [`VrrpSocket`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpSocketConfig {
    /// The interface adverts are sent and received on (the VMAC with `use_vmac`).
    pub ifindex: u32,
    pub family: Family,
    /// [`IPPROTO_VRRP`] or, IPv4 only, [`IPPROTO_AH`].
    pub protocol: u8,
    /// Group to join: `vrrp_mcast_group4/6` or `mcast_dst_ip`; `None` for
    /// unicast-only instances.
    pub multicast_group: Option<IpAddr>,
}

impl VrrpSocketConfig {
    /// The usual socket: protocol 112 and the RFC group of the family.
    pub fn multicast(ifindex: u32, family: Family) -> VrrpSocketConfig {
        VrrpSocketConfig {
            ifindex,
            family,
            protocol: IPPROTO_VRRP,
            multicast_group: Some(match family {
                Family::V4 => IpAddr::V4(crate::vrrp::packet::MCAST_GROUP4),
                Family::V6 => IpAddr::V6(crate::vrrp::packet::MCAST_GROUP6),
            }),
        }
    }
}

/// One received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub family: Family,
    /// The sender's address.
    pub src: IpAddr,
    /// Destination (IPv4: from the header; IPv6: from `IPV6_PKTINFO`).
    pub dst: Option<IpAddr>,
    /// TTL / hop limit (IPv4: from the header; IPv6: `IPV6_HOPLIMIT`).
    pub hop_limit: Option<u8>,
    /// Receiving interface (IPv6 only, from `IPV6_PKTINFO`).
    pub ifindex: Option<u32>,
    /// IPv4: the whole packet, header included. IPv6: the VRRP payload.
    pub bytes: &'a [u8],
}

impl Datagram<'_> {
    /// Apply the per-packet receive checks and decode the advertisement.
    /// The TTL is checked by `ttl_rule`: the socket is shared by multicast
    /// and unicast instances, which check it differently.
    pub fn decode(&self, ttl_rule: TtlRule) -> Result<Received, crate::vrrp::Error> {
        match self.family {
            Family::V4 => receive_ipv4_with(self.bytes, ttl_rule),
            Family::V6 => {
                let (IpAddr::V6(src), Some(IpAddr::V6(dst))) = (self.src, self.dst) else {
                    return Err(crate::vrrp::Error::FamilyMismatch);
                };
                let hop_limit = self.hop_limit.ok_or(crate::vrrp::Error::BadTtl)?;
                receive_ipv6_with(src, dst, hop_limit, self.bytes, ttl_rule)
            }
        }
    }
}

/// A raw VRRP socket on one interface.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: OwnedFd,
    config: VrrpSocketConfig,
    /// IPv4 Identification of the next advert (keepalived counts from 1).
    next_ident: u16,
    recv_buf: Vec<u8>,
    send_buf: Vec<u8>,
}

fn retry_eintr(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    for _ in 0..MAX_EINTR_RETRIES {
        let rc = call();
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Err(io::Error::from(io::ErrorKind::Interrupted))
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr_in {
    // SAFETY: all-zero sockaddr_in is valid.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr.s_addr = u32::from_ne_bytes(addr.octets());
    sa
}

fn needs_scope(addr: &Ipv6Addr) -> bool {
    let first = addr.segments()[0];
    // Link-local unicast (fe80::/10) and link- or interface-local multicast.
    (first & 0xffc0) == 0xfe80 || (addr.is_multicast() && matches!(first & 0x000f, 1 | 2))
}

fn sockaddr_in6(addr: Ipv6Addr, ifindex: u32) -> libc::sockaddr_in6 {
    // SAFETY: all-zero sockaddr_in6 is valid.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = addr.octets();
    if needs_scope(&addr) {
        sa.sin6_scope_id = ifindex;
    }
    sa
}

impl VrrpSocket {
    /// Open, bind to the interface, set the options and join the group.
    pub fn open(config: &VrrpSocketConfig) -> Result<VrrpSocket, Error> {
        let ifindex = config.ifindex;
        let invalid = |detail: &str| Error::Invalid {
            what: "open VRRP socket",
            detail: detail.to_owned(),
        };
        if ifindex == 0 {
            return Err(invalid("no interface"));
        }
        if config.protocol != IPPROTO_VRRP
            && !(config.protocol == IPPROTO_AH && config.family == Family::V4)
        {
            return Err(invalid("protocol must be 112, or 51 (AH) for IPv4"));
        }
        if let Some(group) = config.multicast_group {
            if Family::of(&group) != config.family || !group.is_multicast() {
                return Err(invalid("group is not a multicast address of the family"));
            }
        }
        let domain = match config.family {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        };
        let fd = open_socket(domain, libc::SOCK_RAW, libc::c_int::from(config.protocol))
            .map_err(io_error("socket VRRP", ifindex))?;
        let raw = fd.as_raw_fd();
        bind_to_ifindex(raw, ifindex)
            .map_err(io_error("bind VRRP socket to interface", ifindex))?;
        match config.family {
            Family::V4 => Self::setup_v4(raw, ifindex)?,
            Family::V6 => Self::setup_v6(raw, ifindex)?,
        }
        let socket = VrrpSocket {
            fd,
            config: config.clone(),
            next_ident: 1,
            recv_buf: vec![0; RECV_BUF_LEN],
            send_buf: vec![0; SEND_BUF_LEN],
        };
        if let Some(group) = config.multicast_group {
            socket.join_group(group)?;
        }
        Ok(socket)
    }

    fn setup_v4(fd: RawFd, ifindex: u32) -> Result<(), Error> {
        let err = |op| io_error(op, ifindex);
        set_int(fd, libc::IPPROTO_IP, libc::IP_HDRINCL, 1).map_err(err("IP_HDRINCL"))?;
        let mreqn = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex as libc::c_int,
        };
        set_opt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)
            .map_err(err("IP_MULTICAST_IF"))?;
        // RFC 5798 5.1.1.3: TTL 255. The header we build says so already;
        // this covers anything the kernel would build.
        set_int(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_TTL,
            i32::from(VRRP_TTL),
        )
        .map_err(err("IP_MULTICAST_TTL"))?;
        set_int(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, 0)
            .map_err(err("IP_MULTICAST_LOOP"))?;
        set_int(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0)
            .map_err(err("IP_MULTICAST_ALL"))?;
        set_int(fd, libc::IPPROTO_IP, libc::IP_TOS, i32::from(VRRP_TOS)).map_err(err("IP_TOS"))?;
        Ok(())
    }

    fn setup_v6(fd: RawFd, ifindex: u32) -> Result<(), Error> {
        let err = |op| io_error(op, ifindex);
        let ip6 = libc::IPPROTO_IPV6;
        set_int(fd, ip6, libc::IPV6_CHECKSUM, VRRP_CHECKSUM_OFFSET)
            .map_err(err("IPV6_CHECKSUM"))?;
        set_int(fd, ip6, libc::IPV6_MULTICAST_IF, ifindex as i32)
            .map_err(err("IPV6_MULTICAST_IF"))?;
        // RFC 5798 5.1.2.3: hop limit 255.
        set_int(fd, ip6, libc::IPV6_MULTICAST_HOPS, i32::from(VRRP_TTL))
            .map_err(err("IPV6_MULTICAST_HOPS"))?;
        set_int(fd, ip6, libc::IPV6_UNICAST_HOPS, i32::from(VRRP_TTL))
            .map_err(err("IPV6_UNICAST_HOPS"))?;
        set_int(fd, ip6, libc::IPV6_MULTICAST_LOOP, 0).map_err(err("IPV6_MULTICAST_LOOP"))?;
        // Linux 4.20+; without it we may also see groups other sockets joined,
        // which the VRID/address checks then reject.
        match set_int(fd, ip6, libc::IPV6_MULTICAST_ALL, 0) {
            Err(e) if e.raw_os_error() != Some(libc::ENOPROTOOPT) => {
                return Err(err("IPV6_MULTICAST_ALL")(e))
            }
            _ => {}
        }
        set_int(fd, ip6, libc::IPV6_TCLASS, i32::from(VRRP_TOS)).map_err(err("IPV6_TCLASS"))?;
        set_int(fd, ip6, libc::IPV6_RECVHOPLIMIT, 1).map_err(err("IPV6_RECVHOPLIMIT"))?;
        set_int(fd, ip6, libc::IPV6_RECVPKTINFO, 1).map_err(err("IPV6_RECVPKTINFO"))?;
        Ok(())
    }

    pub fn config(&self) -> &VrrpSocketConfig {
        &self.config
    }

    pub fn ifindex(&self) -> u32 {
        self.config.ifindex
    }

    pub fn family(&self) -> Family {
        self.config.family
    }

    /// Join another multicast group on the socket's interface (several
    /// instances with different `mcast_dst_ip` can share a socket).
    pub fn join_group(&self, group: IpAddr) -> Result<(), Error> {
        let fd = self.fd.as_raw_fd();
        let ifindex = self.config.ifindex;
        match group {
            IpAddr::V4(g) if self.config.family == Family::V4 => {
                let mreqn = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(g.octets()),
                    },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as libc::c_int,
                };
                set_opt(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreqn)
            }
            IpAddr::V6(g) if self.config.family == Family::V6 => {
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: g.octets(),
                    },
                    ipv6mr_interface: ifindex as libc::c_uint,
                };
                set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)
            }
            _ => {
                return Err(Error::Invalid {
                    what: "join multicast group",
                    detail: format!("{group} is not of the socket's family"),
                })
            }
        }
        // Joining twice is fine (two instances, one group).
        .or_else(|e| {
            if e.raw_os_error() == Some(libc::EADDRINUSE) {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(io_error("join multicast group", ifindex))
    }

    /// Send a whole IPv4 packet (header included); the destination is read
    /// from the header.
    pub fn send_ipv4(&self, packet: &[u8]) -> Result<(), Error> {
        let ifindex = self.config.ifindex;
        if self.config.family != Family::V4 {
            return Err(Error::Invalid {
                what: "send IPv4 advert",
                detail: "IPv6 socket".into(),
            });
        }
        let dst = Ipv4Packet::new_checked(packet)?.dst_addr();
        let sa = sockaddr_in(dst);
        retry_eintr(|| {
            // SAFETY: packet and sa are valid for the lengths given.
            unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        })
        .map_err(io_error("send VRRP advert", ifindex))?;
        Ok(())
    }

    /// Send a VRRP payload over IPv6 from `src` (a local address, normally
    /// the interface's link-local one) to `dst` with hop limit `hop_limit`.
    pub fn send_ipv6(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        payload: &[u8],
    ) -> Result<(), Error> {
        let ifindex = self.config.ifindex;
        if self.config.family != Family::V6 {
            return Err(Error::Invalid {
                what: "send IPv6 advert",
                detail: "IPv4 socket".into(),
            });
        }
        let mut sa = sockaddr_in6(dst, ifindex);
        let pktinfo = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: src.octets(),
            },
            ipi6_ifindex: ifindex,
        };
        // u64 array: cmsghdr alignment.
        let mut control = [0u64; 8];
        let pktinfo_len = std::mem::size_of::<libc::in6_pktinfo>() as libc::c_uint;
        let hop_len = std::mem::size_of::<libc::c_int>() as libc::c_uint;
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(pktinfo_len) + libc::CMSG_SPACE(hop_len) } as usize;
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        // SAFETY: all-zero msghdr is valid; fields set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space.min(std::mem::size_of_val(&control)) as _;
        // SAFETY: msg describes `control`, which has room for the two cmsgs
        // (64 >= CMSG_SPACE(20) + CMSG_SPACE(4)); each header pointer is
        // checked for null before use.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if cmsg.is_null() {
                return Err(Error::Invalid {
                    what: "send IPv6 advert",
                    detail: "no room for IPV6_PKTINFO".into(),
                });
            }
            (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
            (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
            (*cmsg).cmsg_len = libc::CMSG_LEN(pktinfo_len) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), pktinfo);
            let hop = libc::CMSG_NXTHDR(&msg, cmsg);
            if hop.is_null() {
                return Err(Error::Invalid {
                    what: "send IPv6 advert",
                    detail: "no room for IPV6_HOPLIMIT".into(),
                });
            }
            (*hop).cmsg_level = libc::IPPROTO_IPV6;
            (*hop).cmsg_type = libc::IPV6_HOPLIMIT;
            (*hop).cmsg_len = libc::CMSG_LEN(hop_len) as _;
            std::ptr::write_unaligned(
                libc::CMSG_DATA(hop).cast::<libc::c_int>(),
                libc::c_int::from(hop_limit),
            );
        }
        retry_eintr(|| {
            // SAFETY: msg and everything it points to live across the call.
            unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) }
        })
        .map_err(io_error("send VRRP advert", ifindex))?;
        Ok(())
    }

    /// Build and send an advertisement from `src` to `dst` (the group or a
    /// unicast peer) with TTL / hop limit `ttl` (255 but for keepalived's
    /// `unicast_ttl`). IPv4 packets get the next Identification; `ah` is
    /// IPv4 only.
    pub fn send_advert(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        repr: &VrrpRepr,
        ah: Option<&AhParams<'_>>,
    ) -> Result<(), Error> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let ident = self.next_ident;
                // 0 would make the kernel pick one; keepalived wraps to 1.
                self.next_ident = self.next_ident.checked_add(1).unwrap_or(1);
                let len = build_ipv4_advert(&mut self.send_buf, src, dst, ident, ttl, repr, ah)?;
                let packet = self.send_buf.get(..len).unwrap_or_default();
                self.send_ipv4(packet)
            }
            (IpAddr::V6(src6), IpAddr::V6(dst6)) if ah.is_none() => {
                let len = repr.emit(&mut self.send_buf, &src, &dst)?;
                let payload = self.send_buf.get(..len).unwrap_or_default();
                self.send_ipv6(src6, dst6, ttl, payload)
            }
            _ => Err(Error::Invalid {
                what: "send VRRP advert",
                detail: format!("{src} -> {dst}: mixed families or AH over IPv6"),
            }),
        }
    }

    /// Receive one datagram; `Ok(None)` when nothing is pending. Call until
    /// `Ok(None)` after each readiness event.
    pub fn recv(&mut self) -> Result<Option<Datagram<'_>>, Error> {
        let ifindex = self.config.ifindex;
        // SAFETY: all-zero sockaddr_storage is valid.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: self.recv_buf.as_mut_ptr().cast(),
            iov_len: self.recv_buf.len(),
        };
        // SAFETY: all-zero msghdr is valid; fields set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let received = retry_eintr(|| {
            // SAFETY: msg points to live buffers of the stated sizes.
            unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) }
        });
        let len = match received {
            Ok(len) => len.min(self.recv_buf.len()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(io_error("receive VRRP advert", ifindex)(e)),
        };
        let bytes = &self.recv_buf[..len];
        match self.config.family {
            Family::V4 => {
                let header = Ipv4Packet::new_checked(bytes).ok();
                let src = match &header {
                    Some(h) => h.src_addr(),
                    // SAFETY: an AF_INET socket fills a sockaddr_in.
                    None => Ipv4Addr::from(u32::from_be(unsafe {
                        (*(&name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>())
                            .sin_addr
                            .s_addr
                    })),
                };
                Ok(Some(Datagram {
                    family: Family::V4,
                    src: IpAddr::V4(src),
                    dst: header.as_ref().map(|h| IpAddr::V4(h.dst_addr())),
                    hop_limit: header.as_ref().map(|h| h.ttl()),
                    ifindex: None,
                    bytes,
                }))
            }
            Family::V6 => {
                // SAFETY: an AF_INET6 socket fills a sockaddr_in6.
                let sa6 = unsafe {
                    *(&name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                let (hop_limit, dst, rx_ifindex) = parse_ipv6_control(&msg);
                Ok(Some(Datagram {
                    family: Family::V6,
                    src: IpAddr::V6(Ipv6Addr::from(sa6.sin6_addr.s6_addr)),
                    dst: dst.map(IpAddr::V6),
                    hop_limit,
                    ifindex: rx_ifindex,
                    bytes,
                }))
            }
        }
    }
}

/// Hop limit, destination and interface from `recvmsg` ancillary data.
fn parse_ipv6_control(msg: &libc::msghdr) -> (Option<u8>, Option<Ipv6Addr>, Option<u32>) {
    let mut hop_limit = None;
    let mut dst = None;
    let mut ifindex = None;
    // SAFETY: msg was filled by recvmsg; the CMSG_* macros stay within
    // msg_control/msg_controllen, and each data read is bounds-checked
    // against cmsg_len first.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        let mut seen = 0;
        while !cmsg.is_null() && seen < 16 {
            seen += 1;
            let level = (*cmsg).cmsg_level;
            let kind = (*cmsg).cmsg_type;
            let data_len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            let data = libc::CMSG_DATA(cmsg);
            if level == libc::IPPROTO_IPV6 {
                if kind == libc::IPV6_HOPLIMIT && data_len >= std::mem::size_of::<libc::c_int>() {
                    let value = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    hop_limit = u8::try_from(value).ok();
                } else if kind == libc::IPV6_PKTINFO
                    && data_len >= std::mem::size_of::<libc::in6_pktinfo>()
                {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    ifindex = Some(info.ipi6_ifindex);
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (hop_limit, dst, ifindex)
}

impl AsRawFd for VrrpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

super::impl_mio_source!(VrrpSocket);

/// The source address of adverts: the configured `mcast_src_ip` /
/// `unicast_src_ip` if any; else, from the interface's addresses
/// (`Rtnl::addresses(Some(ifindex))`, kernel order), for IPv4 the first
/// primary address and for IPv6 the first link-local one (RFC 5798 5.1.2.1:
/// the IPv6 source MUST be the interface's link-local address). Addresses in
/// `exclude` (the VIPs, which may be on the interface already) and tentative
/// ones are skipped.
pub fn select_source(
    configured: Option<IpAddr>,
    family: Family,
    addresses: &[AddressInfo],
    exclude: &[IpAddr],
) -> Option<IpAddr> {
    if let Some(addr) = configured {
        return (Family::of(&addr) == family).then_some(addr);
    }
    let candidates = || {
        addresses.iter().filter(|a| {
            Family::of(&a.addr) == family && a.is_usable_source() && !exclude.contains(&a.addr)
        })
    };
    match family {
        Family::V4 => candidates()
            .find(|a| a.is_primary())
            .or_else(|| candidates().next())
            .map(|a| a.addr),
        Family::V6 => candidates()
            .find(|a| matches!(a.addr, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
            .map(|a| a.addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::rtnl::{Scope, IFA_F_SECONDARY, IFA_F_TENTATIVE};
    use crate::vrrp::packet::{Auth, VrrpVersion, MCAST_GROUP4};

    fn hex(s: &str) -> Vec<u8> {
        let s = s.trim();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);

    fn v2(auth: Auth, addrs: &[Ipv4Addr]) -> VrrpRepr {
        VrrpRepr {
            version: VrrpVersion::V2,
            vrid: 51,
            priority: 150,
            max_advert_int: 100,
            addresses: addrs.iter().map(|a| IpAddr::V4(*a)).collect(),
            auth,
        }
    }

    /// The builder reproduces every IPv4 packet keepalived 2.2.7 sent
    /// (tests/vectors), header included: ID 1, TOS 0xc0, TTL 255, no DF.
    #[test]
    fn ipv4_adverts_match_keepalived_vectors() {
        let mut buf = [0u8; SEND_BUF_LEN];
        let cases: [(&str, VrrpRepr, Option<AhParams<'_>>); 4] = [
            (
                include_str!("../../tests/vectors/v2_ipv4_pass.hex"),
                v2(Auth::Pass(*b"secret12"), &[VIP]),
                None,
            ),
            (
                include_str!("../../tests/vectors/v2_ipv4_noauth_3vips.hex"),
                v2(
                    Auth::None,
                    &[
                        VIP,
                        Ipv4Addr::new(10, 99, 0, 101),
                        Ipv4Addr::new(10, 99, 0, 102),
                    ],
                ),
                None,
            ),
            (
                include_str!("../../tests/vectors/v3_ipv4.hex"),
                VrrpRepr {
                    version: VrrpVersion::V3,
                    max_advert_int: 50,
                    ..v2(Auth::None, &[VIP])
                },
                None,
            ),
            (
                include_str!("../../tests/vectors/v2_ipv4_ah.hex"),
                v2(Auth::Ah, &[VIP]),
                Some(AhParams {
                    key: b"secret12",
                    seq: 1,
                    icv_ttl: IcvTtl::Hashed,
                }),
            ),
        ];
        for (vector, repr, ah) in cases {
            let want = hex(vector);
            let len =
                build_ipv4_advert(&mut buf, SRC, MCAST_GROUP4, 1, 255, &repr, ah.as_ref()).unwrap();
            assert_eq!(hex_string(&buf[..len]), hex_string(&want));
        }
    }

    fn hex_string(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn info(addr: &str, flags: u32) -> AddressInfo {
        AddressInfo {
            ifindex: 2,
            addr: addr.parse().unwrap(),
            prefix_len: 24,
            peer: None,
            broadcast: None,
            label: None,
            scope: Scope::Universe,
            flags,
        }
    }

    #[test]
    fn source_selection() {
        let addrs = [
            info("10.99.0.100", 0),
            info("10.99.0.1", 0),
            info("10.99.0.7", IFA_F_SECONDARY),
            info("fd99::1", 0),
            info("fe80::1", IFA_F_TENTATIVE),
            info("fe80::2", 0),
        ];
        let vip: IpAddr = "10.99.0.100".parse().unwrap();
        assert_eq!(
            select_source(None, Family::V4, &addrs, &[vip]),
            Some("10.99.0.1".parse().unwrap()),
            "first primary that is not a VIP"
        );
        assert_eq!(
            select_source(None, Family::V6, &addrs, &[]),
            Some("fe80::2".parse().unwrap()),
            "first usable link-local"
        );
        let configured: IpAddr = "10.99.0.7".parse().unwrap();
        assert_eq!(
            select_source(Some(configured), Family::V4, &addrs, &[]),
            Some(configured)
        );
        assert_eq!(
            select_source(Some(configured), Family::V6, &addrs, &[]),
            None
        );
        assert_eq!(
            select_source(None, Family::V4, &addrs[2..3], &[]),
            Some(configured)
        );
        assert_eq!(select_source(None, Family::V6, &addrs[..4], &[]), None);
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut cfg = VrrpSocketConfig::multicast(1, Family::V6);
        cfg.protocol = IPPROTO_AH;
        assert!(matches!(VrrpSocket::open(&cfg), Err(Error::Invalid { .. })));
        let mut cfg = VrrpSocketConfig::multicast(1, Family::V4);
        cfg.multicast_group = Some("10.0.0.1".parse().unwrap());
        assert!(matches!(VrrpSocket::open(&cfg), Err(Error::Invalid { .. })));
        cfg.ifindex = 0;
        assert!(matches!(VrrpSocket::open(&cfg), Err(Error::Invalid { .. })));
        assert!(needs_scope(&"ff02::12".parse().unwrap()));
        assert!(needs_scope(&"fe80::1".parse().unwrap()));
        assert!(!needs_scope(&"fd99::1".parse().unwrap()));
        assert!(!needs_scope(&"ff05::12".parse().unwrap()));
    }
}
