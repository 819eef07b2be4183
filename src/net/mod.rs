/*! Sockets of the VRRP data path.

- [`vrrp_socket`]: the raw IPv4/IPv6 socket adverts go out of and come in
  through (protocol 112, or 51 for AH), one per interface and family.
- [`arp`] / [`nd`]: gratuitous ARP and unsolicited Neighbour Advertisement
  frames (pure builders), sent through [`FrameSender`], an `AF_PACKET`
  socket that only transmits.
- [`sysctl`]: the per-interface IPv4 settings a VMAC needs.

All sockets are non-blocking and close-on-exec; the ones that receive
implement [`mio::event::Source`].
*/

pub mod arp;
pub mod nd;
pub mod sysctl;
pub mod vrrp_socket;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(crate) use crate::sockopt::{set_int, set_opt};
pub use arp::garp_frame;
pub use nd::unsolicited_na_frame;
pub use vrrp_socket::{select_source, AhParams, Datagram, VrrpSocket, VrrpSocketConfig};

/// A failed socket operation of the VRRP data path.
#[derive(Debug)]
pub enum Error {
    /// A system call failed; `op` names it, `ifindex` the interface (0: none).
    Io {
        op: &'static str,
        ifindex: u32,
        source: io::Error,
    },
    /// A packet could not be built (see [`crate::vrrp::Error`]).
    Build(crate::vrrp::Error),
    /// The request makes no sense (wrong family, short packet); nothing sent.
    Invalid { what: &'static str, detail: String },
}

impl Error {
    /// The errno of a failed system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                op,
                ifindex: 0,
                source,
            } => write!(f, "{op}: {source}"),
            Error::Io {
                op,
                ifindex,
                source,
            } => write!(f, "{op} (ifindex {ifindex}): {source}"),
            Error::Build(err) => write!(f, "building packet: {err}"),
            Error::Invalid { what, detail } => write!(f, "{what}: {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Build(err) => Some(err),
            Error::Invalid { .. } => None,
        }
    }
}

impl From<crate::vrrp::Error> for Error {
    fn from(err: crate::vrrp::Error) -> Self {
        Error::Build(err)
    }
}

// ===== small socket helpers (the only unsafe code of this module tree) =====

pub(crate) fn io_error(op: &'static str, ifindex: u32) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io {
        op,
        ifindex,
        source,
    }
}

/// socket(2), non-blocking and close-on-exec.
pub(crate) fn open_socket(
    domain: libc::c_int,
    kind: libc::c_int,
    protocol: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right after.
    let raw = unsafe {
        libc::socket(
            domain,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Bind a socket to an interface: SO_BINDTOIFINDEX (Linux 5.0), else
/// SO_BINDTODEVICE with the interface's name.
pub(crate) fn bind_to_ifindex(fd: RawFd, ifindex: u32) -> io::Result<()> {
    // asm-generic/socket.h value, shared by the architectures listed; the
    // others (sparc, parisc, alpha) number it differently and use the name.
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    ))]
    {
        const SO_BINDTOIFINDEX: libc::c_int = 62;
        match set_int(fd, libc::SOL_SOCKET, SO_BINDTOIFINDEX, ifindex as i32) {
            Ok(()) => return Ok(()),
            Err(err) if err.raw_os_error() != Some(libc::ENOPROTOOPT) => return Err(err),
            Err(_) => {}
        }
    }
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: name has IF_NAMESIZE bytes as if_indextoname requires.
    if unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    // SAFETY: name is valid for len bytes; fd is open.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            len as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Register any fd-owning type with mio through its raw descriptor.
macro_rules! impl_mio_source {
    ($type:ty) => {
        impl mio::event::Source for $type {
            fn register(
                &mut self,
                registry: &mio::Registry,
                token: mio::Token,
                interests: mio::Interest,
            ) -> std::io::Result<()> {
                let fd = std::os::fd::AsRawFd::as_raw_fd(self);
                mio::unix::SourceFd(&fd).register(registry, token, interests)
            }

            fn reregister(
                &mut self,
                registry: &mio::Registry,
                token: mio::Token,
                interests: mio::Interest,
            ) -> std::io::Result<()> {
                let fd = std::os::fd::AsRawFd::as_raw_fd(self);
                mio::unix::SourceFd(&fd).reregister(registry, token, interests)
            }

            fn deregister(&mut self, registry: &mio::Registry) -> std::io::Result<()> {
                let fd = std::os::fd::AsRawFd::as_raw_fd(self);
                mio::unix::SourceFd(&fd).deregister(registry)
            }
        }
    };
}
pub(crate) use impl_mio_source;

// ===== frame sender =====

/// Sends whole Ethernet frames (GARP, unsolicited NA) on any interface.
///
/// An `AF_PACKET`/`SOCK_RAW` socket with protocol 0: it receives nothing,
/// so nothing piles up in its queue and it needs no event registration.
#[derive(Debug)]
pub struct FrameSender {
    fd: OwnedFd,
}

/// Ethernet header length (dst, src, ethertype).
pub const ETH_HLEN: usize = 14;

impl FrameSender {
    pub fn open() -> Result<FrameSender, Error> {
        let fd = open_socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
            .map_err(io_error("socket AF_PACKET", 0))?;
        Ok(FrameSender { fd })
    }

    /// Send one frame (Ethernet header included) out of `ifindex`.
    /// `WouldBlock` (a full device queue) is returned as an error: a lost
    /// gratuitous ARP is repeated by the next burst anyway.
    pub fn send_frame(&self, ifindex: u32, frame: &[u8]) -> Result<(), Error> {
        if frame.len() < ETH_HLEN {
            return Err(Error::Invalid {
                what: "send frame",
                detail: format!("{} bytes is no Ethernet frame", frame.len()),
            });
        }
        // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        // The ethertype as it is on the wire (network order).
        addr.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
        addr.sll_ifindex = ifindex as libc::c_int;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and addr are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io_error("send frame", ifindex)(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Gratuitous ARP for `addr` from `mac` (the interface's or the VMAC).
    pub fn send_garp(
        &self,
        ifindex: u32,
        mac: [u8; 6],
        addr: std::net::Ipv4Addr,
    ) -> Result<(), Error> {
        self.send_frame(ifindex, &garp_frame(mac, addr))
    }

    /// Unsolicited Neighbour Advertisement for `target` from `mac`.
    /// `router`: set the R flag (the interface forwards IPv6, see
    /// [`nd::ipv6_forwarding`]).
    pub fn send_na(
        &self,
        ifindex: u32,
        mac: [u8; 6],
        target: std::net::Ipv6Addr,
        router: bool,
    ) -> Result<(), Error> {
        self.send_frame(ifindex, &unsolicited_na_frame(mac, target, router))
    }
}

impl AsRawFd for FrameSender {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
