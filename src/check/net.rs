//! Checker sockets: non-blocking TCP connects and connected datagram
//! sockets, with keepalived's `bindto`, `bind_port`, `bind_if` and `fwmark`.

use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{bind, setsockopt, sockopt, SockaddrStorage};

/// Where and how a probe connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub dst: SocketAddr,
    pub bind_addr: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
}

impl ConnectOptions {
    pub fn to(dst: SocketAddr) -> Self {
        ConnectOptions {
            dst,
            bind_addr: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
        }
    }
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn new_socket(
    family: libc::c_int,
    kind: libc::c_int,
    protocol: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success we own the returned descriptor.
    let fd = unsafe {
        libc::socket(
            family,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn family_of(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// Applies the bind / device / mark options (before connect), if any.
#[inline]
fn prepare(fd: &OwnedFd, opts: &ConnectOptions) -> io::Result<()> {
    let any = opts.bind_if.is_some()
        || opts.fwmark.is_some()
        || opts.bind_addr.is_some()
        || opts.bind_port.is_some();
    if any {
        apply_options(fd, opts)?;
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn apply_options(fd: &OwnedFd, opts: &ConnectOptions) -> io::Result<()> {
    if let Some(dev) = &opts.bind_if {
        setsockopt(fd, sockopt::BindToDevice, &OsString::from(dev)).map_err(errno_io)?;
    }
    if let Some(mark) = opts.fwmark {
        setsockopt(fd, sockopt::Mark, &mark).map_err(errno_io)?;
    }
    if opts.bind_addr.is_some() || opts.bind_port.is_some() {
        let ip = opts.bind_addr.unwrap_or(match opts.dst {
            SocketAddr::V4(_) => IpAddr::from([0u8; 4]),
            SocketAddr::V6(_) => IpAddr::from([0u16; 8]),
        });
        setsockopt(fd, sockopt::ReuseAddr, &true).map_err(errno_io)?;
        let local = SockaddrStorage::from(SocketAddr::new(ip, opts.bind_port.unwrap_or(0)));
        bind(fd.as_raw_fd(), &local).map_err(errno_io)?;
    }
    Ok(())
}

/// connect(2) with the address built on the stack: nix's
/// `SockaddrStorage` zeroes and copies 128 bytes for every probe.
fn connect_to(fd: &OwnedFd, dst: &SocketAddr) -> Result<(), Errno> {
    let rc = match dst {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sin` is a valid sockaddr_in of the length given.
            unsafe {
                libc::connect(
                    fd.as_raw_fd(),
                    std::ptr::from_ref(&sin).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sin6` is a valid sockaddr_in6 of the length given.
            unsafe {
                libc::connect(
                    fd.as_raw_fd(),
                    std::ptr::from_ref(&sin6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Starts a non-blocking TCP connect. Completion shows up as writability;
/// then `take_error()` / `peer_addr()` tell success from failure.
pub fn tcp_connect(opts: &ConnectOptions) -> io::Result<std::net::TcpStream> {
    let fd = new_socket(family_of(&opts.dst), libc::SOCK_STREAM, libc::IPPROTO_TCP)?;
    prepare(&fd, opts)?;
    match connect_to(&fd, &opts.dst) {
        Ok(()) | Err(Errno::EINPROGRESS) => {}
        Err(e) => return Err(errno_io(e)),
    }
    // SAFETY: ownership of the descriptor moves into the std stream.
    let std_stream = unsafe { std::net::TcpStream::from_raw_fd(fd.into_raw_fd()) };
    Ok(std_stream)
}

/// A connected UDP socket: replies from others are filtered by the kernel
/// and an ICMP port unreachable comes back as ECONNREFUSED.
pub fn udp_connect(opts: &ConnectOptions) -> io::Result<std::net::UdpSocket> {
    let fd = new_socket(family_of(&opts.dst), libc::SOCK_DGRAM, libc::IPPROTO_UDP)?;
    prepare(&fd, opts)?;
    connect_to(&fd, &opts.dst).map_err(errno_io)?;
    // SAFETY: ownership of the descriptor moves into the std socket.
    let std_socket = unsafe { std::net::UdpSocket::from_raw_fd(fd.into_raw_fd()) };
    Ok(std_socket)
}

/// An ICMP echo socket connected to `opts.dst`: a ping socket
/// (`SOCK_DGRAM`) when `net.ipv4.ping_group_range` allows it, else a raw one
/// (needs CAP_NET_RAW). The flag says which (raw sockets see every ICMP
/// message, and IPv4 ones the IP header too). Send/recv on a connected
/// socket of either kind work through the UDP socket type.
/// Sockets are non-blocking; register them with `mio::unix::SourceFd`.
pub fn icmp_connect(opts: &ConnectOptions) -> io::Result<(std::net::UdpSocket, bool)> {
    let (family, protocol) = match opts.dst {
        SocketAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
        SocketAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
    };
    let (fd, raw) = match new_socket(family, libc::SOCK_DGRAM, protocol) {
        Ok(fd) => (fd, false),
        Err(_) => (new_socket(family, libc::SOCK_RAW, protocol)?, true),
    };
    let icmp_opts = ConnectOptions {
        bind_port: None,
        ..opts.clone()
    };
    prepare(&fd, &icmp_opts)?;
    let dst = SocketAddr::new(opts.dst.ip(), 0);
    connect_to(&fd, &dst).map_err(errno_io)?;
    // SAFETY: ownership of the descriptor moves into the std socket.
    let std_socket = unsafe { std::net::UdpSocket::from_raw_fd(fd.into_raw_fd()) };
    Ok((std_socket, raw))
}
