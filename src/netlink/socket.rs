//! A netlink socket for request/response exchanges with the kernel.
//!
//! Requests (add an address, program an IPVS service) are answered by the
//! kernel at once, so [`NetlinkSocket::request`] and [`NetlinkSocket::dump`]
//! wait for the answer on a blocking socket with a receive timeout; the
//! kernel's reply never depends on another process. Event subscriptions
//! (link changes) use a separate non-blocking socket registered in the event
//! loop and read with [`NetlinkSocket::recv`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::wire::{
    Message, MessageBuilder, Messages, WireError, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN,
    NLM_F_ACK, NLM_F_DUMP,
};
use super::Error;
use crate::sockopt::{set_int, set_opt};

/// Receive buffer: large enough for any single datagram the kernel sends
/// (dumps are split into datagrams of at most 32 KiB).
const RECV_BUF_LEN: usize = 64 * 1024;
/// How long a request waits for the kernel's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on datagrams read for one dump (a 100k-entry IPVS table is ~3k).
const MAX_DUMP_DATAGRAMS: usize = 100_000;
/// [`NetlinkSocket::request_batch`]: requests per datagram, which also bounds
/// the ACKs queued at once (each takes ~1 KiB of the receive buffer).
const BATCH_MAX_MESSAGES: usize = 64;
/// [`NetlinkSocket::request_batch`]: bytes per datagram.
const BATCH_MAX_BYTES: usize = 32 * 1024;

const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

#[derive(Debug)]
pub struct NetlinkSocket {
    fd: OwnedFd,
    /// Port id the kernel assigned to this socket.
    port_id: u32,
    next_seq: u32,
    buf: Vec<u8>,
}

impl NetlinkSocket {
    /// Open and bind a socket of `protocol` (`libc::NETLINK_ROUTE`,
    /// `libc::NETLINK_GENERIC`). `nonblocking` for event sockets.
    pub fn open(protocol: libc::c_int, nonblocking: bool) -> Result<Self, Error> {
        let io_err = |op: &'static str| move |source| Error::Io { op, source };
        let mut flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        if nonblocking {
            flags |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: plain socket(2) call; the fd is owned right after.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, flags, protocol) };
        if raw < 0 {
            return Err(io_err("socket")(io::Error::last_os_error()));
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Extended acks give the kernel's reason in words; capped acks keep
        // error replies small. Both are optional (older kernels).
        let _ = set_int(raw, libc::SOL_NETLINK, NETLINK_EXT_ACK, 1);
        let _ = set_int(raw, libc::SOL_NETLINK, NETLINK_CAP_ACK, 1);
        if !nonblocking {
            let tv = libc::timeval {
                tv_sec: REPLY_TIMEOUT.as_secs() as _,
                tv_usec: 0,
            };
            set_opt(raw, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
                .map_err(io_err("setsockopt SO_RCVTIMEO"))?;
        }
        // SAFETY: zeroed sockaddr_nl is valid (family set below, pid 0 =
        // kernel assigns, no groups).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: addr is a valid sockaddr_nl of `len` bytes.
        if unsafe { libc::bind(raw, (&addr as *const libc::sockaddr_nl).cast(), len) } < 0 {
            return Err(io_err("bind")(io::Error::last_os_error()));
        }
        let mut len = len;
        // SAFETY: addr/len describe a writable sockaddr_nl.
        if unsafe { libc::getsockname(raw, (&mut addr as *mut libc::sockaddr_nl).cast(), &mut len) }
            < 0
        {
            return Err(io_err("getsockname")(io::Error::last_os_error()));
        }
        Ok(NetlinkSocket {
            fd,
            port_id: addr.nl_pid,
            // Start from something other than 0 so replies to a previous
            // process's requests are never mistaken for ours.
            next_seq: std::process::id().wrapping_mul(2654435761),
            buf: vec![0; RECV_BUF_LEN],
        })
    }

    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// Subscribe to a multicast group (e.g. `RTNLGRP_LINK`).
    pub fn join_group(&self, group: u32) -> Result<(), Error> {
        set_int(
            self.fd.as_raw_fd(),
            libc::SOL_NETLINK,
            NETLINK_ADD_MEMBERSHIP,
            group as libc::c_int,
        )
        .map_err(|source| Error::Io {
            op: "join netlink group",
            source,
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// Send raw message bytes to the kernel.
    pub fn send(&self, bytes: &[u8]) -> Result<(), Error> {
        // SAFETY: zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: bytes and addr are valid for the given lengths.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::Io {
                op: "send",
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Read one datagram. On a non-blocking socket `Ok(None)` means nothing
    /// is pending.
    pub fn recv(&mut self) -> Result<Option<&[u8]>, Error> {
        loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n >= 0 {
                return Ok(Some(&self.buf[..n as usize]));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => {
                    return Err(Error::Io {
                        op: "recv",
                        source: err,
                    })
                }
            }
        }
    }

    /// Send a request with NLM_F_ACK and wait for the kernel's answer.
    /// Non-error replies to the request (e.g. with NLM_F_ECHO, or a genl
    /// GET) are passed to `on_reply`.
    pub fn request_with(
        &mut self,
        mut msg: MessageBuilder,
        what: &'static str,
        mut on_reply: impl FnMut(&Message<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let seq = self.next_seq();
        msg.set_seq(seq);
        msg.add_flags(NLM_F_ACK);
        let bytes = msg.finish();
        self.send(&bytes)?;
        self.read_until(seq, what, false, &mut on_reply)
    }

    /// Send a request with NLM_F_ACK and wait for the ACK.
    pub fn request(&mut self, msg: MessageBuilder, what: &'static str) -> Result<(), Error> {
        self.request_with(msg, what, |_| Ok(()))
    }

    /// Send a dump request (NLM_F_DUMP) and pass every reply message to
    /// `on_reply` until NLMSG_DONE.
    pub fn dump(
        &mut self,
        mut msg: MessageBuilder,
        what: &'static str,
        mut on_reply: impl FnMut(&Message<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let seq = self.next_seq();
        msg.set_seq(seq);
        msg.add_flags(NLM_F_DUMP);
        let bytes = msg.finish();
        self.send(&bytes)?;
        self.read_until(seq, what, true, &mut on_reply)
    }

    /// Send many requests, each with NLM_F_ACK, several per datagram, and
    /// collect every answer: one result per message, in order. The kernel
    /// handles the messages of a datagram one after the other and answers
    /// each, so a failed request does not stop the ones after it. Replies
    /// other than ACKs / errors are ignored (use [`Self::request_with`]).
    pub fn request_batch(
        &mut self,
        msgs: Vec<MessageBuilder>,
        what: &'static str,
    ) -> Vec<Result<(), Error>> {
        let mut results: Vec<Option<Result<(), Error>>> = (0..msgs.len()).map(|_| None).collect();
        let mut queue = msgs.into_iter().enumerate().peekable();
        while queue.peek().is_some() {
            let mut datagram = Vec::new();
            // (seq, index in results) of the requests in this datagram.
            let mut pending: Vec<(u32, usize)> = Vec::new();
            while pending.len() < BATCH_MAX_MESSAGES {
                let Some((index, mut msg)) = queue.next() else {
                    break;
                };
                let seq = self.next_seq();
                msg.set_seq(seq);
                msg.add_flags(NLM_F_ACK);
                datagram.extend_from_slice(&msg.finish());
                pending.push((seq, index));
                if datagram.len() >= BATCH_MAX_BYTES {
                    break;
                }
            }
            if let Err(err) = self.send(&datagram) {
                let detail = err.to_string();
                for (_, index) in pending {
                    results[index] = Some(Err(Error::Protocol {
                        what,
                        detail: detail.clone(),
                    }));
                }
                continue;
            }
            self.read_acks(&mut pending, &mut results, what);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Timeout { what })))
            .collect()
    }

    /// Read until every request in `pending` has its ACK or error.
    fn read_acks(
        &mut self,
        pending: &mut Vec<(u32, usize)>,
        results: &mut [Option<Result<(), Error>>],
        what: &'static str,
    ) {
        let port_id = self.port_id;
        // Every ACK may come in its own datagram; stale ones are skipped.
        let max_datagrams = pending.len() * 2 + 16;
        for _ in 0..max_datagrams {
            if pending.is_empty() {
                return;
            }
            let datagram = match self.recv() {
                Ok(Some(d)) => d,
                // Timeout or socket error: the rest stay unanswered.
                Ok(None) | Err(_) => return,
            };
            for message in Messages::new(datagram) {
                let Ok(message) = message else { break };
                if message.kind != NLMSG_ERROR || (message.pid != port_id && message.pid != 0) {
                    continue;
                }
                let Some(at) = pending.iter().position(|(seq, _)| *seq == message.seq) else {
                    continue;
                };
                let (_, index) = pending.swap_remove(at);
                results[index] = Some(match message.error() {
                    Some(Ok(ack)) if ack.errno == 0 => Ok(()),
                    Some(Ok(ack)) => Err(Error::Kernel {
                        what,
                        errno: ack.errno,
                        message: ack.message.map(str::to_owned),
                    }),
                    Some(Err(err)) => Err(Error::Wire(err)),
                    None => Err(Error::Wire(WireError::TruncatedMessage)),
                });
            }
        }
    }

    fn read_until(
        &mut self,
        seq: u32,
        what: &'static str,
        dump: bool,
        on_reply: &mut dyn FnMut(&Message<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let port_id = self.port_id;
        for _ in 0..MAX_DUMP_DATAGRAMS {
            let datagram = match self.recv() {
                Ok(Some(d)) => d,
                Ok(None) => return Err(Error::Timeout { what }),
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::WouldBlock => {
                    return Err(Error::Timeout { what })
                }
                Err(e) => return Err(e),
            };
            for message in Messages::new(datagram) {
                let message = message?;
                // Stale replies (earlier timed-out requests) are skipped.
                if message.seq != seq || (message.pid != port_id && message.pid != 0) {
                    continue;
                }
                match message.kind {
                    NLMSG_ERROR => {
                        let ack = message
                            .error()
                            .unwrap_or(Err(WireError::TruncatedMessage))?;
                        if ack.errno != 0 {
                            return Err(Error::Kernel {
                                what,
                                errno: ack.errno,
                                message: ack.message.map(str::to_owned),
                            });
                        }
                        if !dump {
                            return Ok(());
                        }
                    }
                    NLMSG_DONE => return Ok(()),
                    NLMSG_OVERRUN => return Err(Error::Overrun { what }),
                    _ => {
                        // Single replies are followed by the ACK we
                        // asked for; multipart dumps end with DONE.
                        on_reply(&message)?;
                    }
                }
            }
        }
        Err(Error::Overrun { what })
    }
}

impl AsRawFd for NetlinkSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::NLM_F_REQUEST;

    const RTM_GETLINK: u16 = 18;
    const RTM_NEWLINK: u16 = 16;
    const IFLA_IFNAME: u16 = 3;
    const IFINFOMSG_LEN: usize = 16;

    /// The kernel is the independent witness here: a link dump must list
    /// `lo`, and a request the kernel rejects must come back as its errno.
    #[test]
    fn dump_links_and_kernel_errors() {
        let mut sock = NetlinkSocket::open(libc::NETLINK_ROUTE, false).unwrap();
        let mut msg = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST);
        msg.push_header(&[0; IFINFOMSG_LEN]);
        let mut names = Vec::new();
        sock.dump(msg, "dump links", |m| {
            assert_eq!(m.kind, RTM_NEWLINK);
            let (_, attrs) = m.split_header(IFINFOMSG_LEN)?;
            if let Some(name) = attrs.find(IFLA_IFNAME) {
                names.push(name.as_str()?.to_owned());
            }
            Ok(())
        })
        .unwrap();
        assert!(names.iter().any(|n| n == "lo"), "{names:?}");

        // Get a link by a name that cannot exist: ENODEV from the kernel.
        let mut msg = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST);
        msg.push_header(&[0; IFINFOMSG_LEN]);
        msg.attr_str(IFLA_IFNAME, "krs-no-such0");
        let err = sock.request(msg, "get link").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENODEV), "{err}");
        assert!(err.to_string().starts_with("get link: "), "{err}");
    }

    /// Batches span several datagrams, keep their order, and one refused
    /// request does not stop the others.
    #[test]
    fn batch_of_requests() {
        let mut sock = NetlinkSocket::open(libc::NETLINK_ROUTE, false).unwrap();
        let msgs: Vec<MessageBuilder> = (0..150)
            .map(|i| {
                let mut msg = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST);
                msg.push_header(&[0; IFINFOMSG_LEN]);
                msg.attr_str(IFLA_IFNAME, if i % 3 == 1 { "krs-no-such0" } else { "lo" });
                msg
            })
            .collect();
        let results = sock.request_batch(msgs, "get link");
        assert_eq!(results.len(), 150);
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(()) => assert_ne!(i % 3, 1, "request {i}"),
                Err(err) => {
                    assert_eq!(i % 3, 1, "request {i}: {err}");
                    assert_eq!(err.errno(), Some(libc::ENODEV));
                }
            }
        }
        // The socket is still in step: a plain request works after it.
        let mut msg = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST);
        msg.push_header(&[0; IFINFOMSG_LEN]);
        msg.attr_str(IFLA_IFNAME, "lo");
        sock.request(msg, "get link").unwrap();
    }
}
