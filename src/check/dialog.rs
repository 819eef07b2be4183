//! One probe's conversation with a server, as data: what to send, how to
//! judge what comes back. Stream dialogs (TCP, HTTP, SMTP) run over one TCP
//! connection; datagram dialogs (UDP, DNS, PING) over one connected datagram
//! socket. The engine owns the sockets and deadlines.

use std::fmt;
use std::io;
use std::rc::Rc;

use super::dns::DnsQuery;
use super::http::{HttpError, Progress, ResponseReader};
use super::ping::EchoRequest;
use super::smtp::{SmtpDialog, SmtpError};
use super::udp::UdpExchange;

/// Why one probe failed. Logged when keepalived would (log_all_failures).
#[derive(Debug)]
pub enum ProbeError {
    /// The socket could not be created, bound or connected at once.
    Socket(io::Error),
    ConnectTimeout,
    /// The connection was refused or failed.
    Connect(io::Error),
    /// No (complete) answer within connect_timeout.
    ReadTimeout,
    WriteTimeout,
    Io(io::Error),
    Http(HttpError),
    /// A protocol-level rejection (DNS answer, UDP payload, ...).
    Protocol(String),
    Smtp(SmtpError),
    /// The DNS server answered with this RCODE (not NOERROR).
    DnsRcode(u8),
    /// ICMP unreachable for a UDP probe.
    Refused,
    /// The check script failed, timed out or could not start.
    Script(String),
    /// The tracked file could not be read or its value means down.
    File(String),
    /// SSL_GET: the TLS layer failed.
    #[cfg(feature = "tls")]
    Tls(super::tls::TlsError),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Socket(e) => write!(f, "cannot open socket: {e}"),
            ProbeError::ConnectTimeout => write!(f, "Timeout connecting"),
            ProbeError::Connect(e) => write!(f, "Error connecting: {e}"),
            ProbeError::ReadTimeout => write!(f, "Timeout reading"),
            ProbeError::WriteTimeout => write!(f, "Timeout writing"),
            ProbeError::Io(e) => write!(f, "I/O error: {e}"),
            ProbeError::Http(e) => write!(f, "{e}"),
            ProbeError::Protocol(why) => write!(f, "{why}"),
            ProbeError::Smtp(e) => write!(f, "{e}"),
            ProbeError::DnsRcode(rcode) => write!(f, "DNS reply RCODE {rcode}"),
            ProbeError::Refused => write!(f, "port unreachable"),
            ProbeError::Script(why) => write!(f, "{why}"),
            ProbeError::File(why) => write!(f, "{why}"),
            #[cfg(feature = "tls")]
            ProbeError::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// A successful probe; `weight` is set by dynamic checkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeSuccess {
    pub weight: Option<u32>,
}

pub type Outcome = Result<ProbeSuccess, ProbeError>;

/// Bytes a stream dialog sends: a request every probe of a checker shares
/// (built once, at configuration), or bytes made for this one probe.
#[derive(Debug, Clone)]
pub enum Payload {
    Shared(Rc<[u8]>),
    Owned(Vec<u8>),
}

impl Default for Payload {
    fn default() -> Self {
        Payload::Owned(Vec::new())
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Payload::Shared(bytes) => bytes,
            Payload::Owned(bytes) => bytes,
        }
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload::Owned(bytes)
    }
}

/// What a stream dialog wants next.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes, then wait for data.
    Send(Payload),
    /// Wait for (more) data.
    Recv,
    /// Send these bytes best-effort and finish with the outcome (SMTP QUIT).
    SendAndFinish(Vec<u8>, Outcome),
    Finish(Outcome),
}

/// A conversation over one TCP connection.
// Always lives in a boxed stream probe, so the HTTP reader stays inline:
// boxing it would cost one more allocation per HTTP probe.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum StreamDialog {
    /// TCP_CHECK: connected is all we need.
    Connect,
    Http {
        request: Rc<[u8]>,
        reader: ResponseReader,
    },
    Smtp(SmtpDialog),
    /// SSL_GET: another dialog (HTTP) over TLS.
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::TlsDialog>),
}

impl StreamDialog {
    /// The connection is established.
    pub fn start(&mut self) -> Step {
        match self {
            StreamDialog::Connect => Step::Finish(Ok(ProbeSuccess::default())),
            StreamDialog::Http { request, .. } => Step::Send(Payload::Shared(Rc::clone(request))),
            StreamDialog::Smtp(_) => Step::Recv,
            #[cfg(feature = "tls")]
            StreamDialog::Tls(tls) => tls.start(),
        }
    }

    pub fn on_data(&mut self, data: &[u8]) -> Step {
        match self {
            StreamDialog::Connect => Step::Finish(Ok(ProbeSuccess::default())),
            StreamDialog::Http { reader, .. } => http_step(reader.feed(data)),
            StreamDialog::Smtp(smtp) => smtp.on_data(data),
            #[cfg(feature = "tls")]
            StreamDialog::Tls(tls) => tls.on_data(data),
        }
    }

    /// The server closed its side.
    pub fn on_eof(&mut self) -> Step {
        match self {
            StreamDialog::Connect => Step::Finish(Ok(ProbeSuccess::default())),
            StreamDialog::Http { reader, .. } => http_step(reader.finish()),
            StreamDialog::Smtp(smtp) => smtp.on_eof(),
            #[cfg(feature = "tls")]
            StreamDialog::Tls(tls) => tls.on_eof(),
        }
    }
}

fn http_step(result: Result<Progress, HttpError>) -> Step {
    match result {
        Ok(Progress::NeedMore) => Step::Recv,
        Ok(Progress::Done(_)) => Step::Finish(Ok(ProbeSuccess::default())),
        Err(e) => Step::Finish(Err(ProbeError::Http(e))),
    }
}

/// A request/reply exchange over one connected datagram socket.
#[derive(Debug)]
pub enum DatagramDialog {
    Udp(UdpExchange),
    Dns(DnsQuery),
    Ping(EchoRequest),
}

impl DatagramDialog {
    /// The datagram to send.
    pub fn request(&self) -> Vec<u8> {
        match self {
            DatagramDialog::Udp(u) => u.request(),
            DatagramDialog::Dns(d) => d.request(),
            DatagramDialog::Ping(p) => p.request(),
        }
    }

    /// A datagram arrived: `None` to keep waiting (not ours).
    pub fn on_datagram(&mut self, data: &[u8]) -> Option<Outcome> {
        match self {
            DatagramDialog::Udp(u) => Some(u.on_reply(data)),
            DatagramDialog::Dns(d) => d.on_reply(data),
            DatagramDialog::Ping(p) => p.on_reply(data),
        }
    }

    /// ICMP port unreachable came back (ECONNREFUSED on the socket).
    pub fn on_refused(&mut self) -> Outcome {
        Err(ProbeError::Refused)
    }

    /// No verdict within the timeout.
    pub fn on_timeout(&mut self) -> Outcome {
        match self {
            DatagramDialog::Udp(u) => u.on_timeout(),
            DatagramDialog::Dns(_) | DatagramDialog::Ping(_) => Err(ProbeError::ReadTimeout),
        }
    }
}
