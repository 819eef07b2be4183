//! HTTP_GET as data: the request keepalived sends, and a response reader
//! that is fed bytes as they arrive (any split is fine) and ends in a
//! verdict. No socket here; the engine and genhash do the I/O.
//!
//! The response head is parsed with httparse; the body is delimited by
//! `Content-Length`, by chunked transfer coding, or by the server closing the
//! connection (HTTP/1.0), and is hashed with MD5 as it streams by, never
//! stored. The digest covers the body bytes as they came over the wire: for
//! a chunked body that includes the chunk sizes and CRLFs, as keepalived
//! 2.2.7's checker and genhash hash it (checked against /usr/bin/genhash),
//! so digests taken with either tool match either daemon. The chunked
//! coding is still parsed, to find the end and to reject a malformed one. Heads and bodies have size caps so a hostile server cannot make
//! us buffer without bound.

use std::fmt;
use std::mem::MaybeUninit;
use std::rc::Rc;

use md5::{Digest, Md5};

use crate::config::model::{HttpProtocol, StatusRange};

/// Largest response head we accept.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest body we hash; a larger one fails the check.
pub const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// Longest chunk-size or trailer line.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_HEADERS: usize = 64;

/// keepalived's default accepted statuses (check_http.h: 200-299).
pub const DEFAULT_STATUS: StatusRange = StatusRange {
    first: 200,
    last: 299,
};

/// Builds the GET request keepalived sends. `host` is the virtualhost, or
/// the address the check connects to (IPv6 in brackets); `:port` is added
/// unless it is 80.
pub fn build_request(path: &str, host: &str, port: u16, protocol: HttpProtocol) -> Vec<u8> {
    let version = match protocol {
        HttpProtocol::V1_1 => "HTTP/1.1",
        HttpProtocol::V1_0 | HttpProtocol::V1_0C => "HTTP/1.0",
    };
    let port_suffix = if port == 80 {
        String::new()
    } else {
        format!(":{port}")
    };
    let connection = match protocol {
        HttpProtocol::V1_0 => "",
        HttpProtocol::V1_0C | HttpProtocol::V1_1 => "Connection: close\r\n",
    };
    format!(
        "GET {path} {version}\r\nUser-Agent: KeepAliveClient\r\nHost: {host}{port_suffix}\r\n{connection}\r\n"
    )
    .into_bytes()
}

/// The `Host:` value for an address (brackets around IPv6).
pub fn host_for_addr(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    }
}

/// Why a response did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The head is not valid HTTP.
    BadHead(&'static str),
    /// The head exceeds [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// `Content-Length` is unparsable or given twice with different values.
    BadContentLength,
    /// Malformed chunked coding.
    BadChunk(&'static str),
    /// The body exceeds [`MAX_BODY_BYTES`].
    BodyTooLarge,
    /// The connection closed before the head or the declared body ended.
    EarlyClose,
    /// The status is not in the accepted set.
    Status(u16),
    /// The body's MD5 differs from the configured digest.
    Digest([u8; 16]),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadHead(why) => write!(f, "malformed HTTP response head ({why})"),
            HttpError::HeadTooLarge => {
                write!(f, "HTTP response head larger than {MAX_HEAD_BYTES} bytes")
            }
            HttpError::BadContentLength => write!(f, "invalid Content-Length"),
            HttpError::BadChunk(why) => write!(f, "malformed chunked body ({why})"),
            HttpError::BodyTooLarge => write!(f, "HTTP body larger than {MAX_BODY_BYTES} bytes"),
            HttpError::EarlyClose => write!(f, "connection closed before the response ended"),
            HttpError::Status(code) => write!(f, "status_code [{code}]"),
            HttpError::Digest(d) => write!(f, "MD5SUM [{}]", hex(d)),
        }
    }
}

impl std::error::Error for HttpError {}

/// Lower-case hex, as keepalived prints digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the reader needs to judge a response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expect {
    /// Empty means [`DEFAULT_STATUS`].
    pub status: Vec<StatusRange>,
    pub digest: Option<[u8; 16]>,
    /// Hash the body even without a digest to compare (genhash).
    pub always_hash: bool,
}

impl Expect {
    fn status_ok(&self, code: u16) -> bool {
        if self.status.is_empty() {
            return (DEFAULT_STATUS.first..=DEFAULT_STATUS.last).contains(&code);
        }
        self.status
            .iter()
            .any(|r| (r.first..=r.last).contains(&code))
    }

    fn needs_body(&self) -> bool {
        self.digest.is_some() || self.always_hash
    }
}

/// A passed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// MD5 of the body, when the body was read.
    pub digest: Option<[u8; 16]>,
    pub body_len: u64,
    /// Length of the head, through its empty line (genhash -v prints it).
    pub head_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size line.
    Size,
    /// `remaining` bytes of chunk data left.
    Data { remaining: u64 },
    /// The CRLF after a chunk's data; `seen_cr` once the CR arrived.
    DataEnd { seen_cr: bool },
    /// Trailer lines after the last chunk, until an empty one.
    Trailer,
}

#[derive(Debug, Clone)]
enum State {
    /// `buf` holds a head that came in pieces; a head that arrives whole
    /// is parsed where it lies.
    Head {
        buf: Vec<u8>,
    },
    /// Boxed: only digest checks read bodies, and the hasher is large.
    Body(Box<Body>),
    Done,
}

#[derive(Debug, Clone)]
struct Body {
    status: u16,
    head_len: usize,
    framing: Framing,
    hasher: Md5,
    received: u64,
    /// Chunked: payload bytes so far (the cap applies to these too).
    decoded: u64,
    chunk: ChunkState,
    line: Vec<u8>,
}

/// Feeds on response bytes; see the module docs.
#[derive(Debug, Clone)]
pub struct ResponseReader {
    /// Shared: a checker builds its expectations once, not per probe.
    expect: Rc<Expect>,
    state: State,
}

/// What the reader wants after some input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Keep reading.
    NeedMore,
    /// The response is complete and passed.
    Done(Response),
}

impl ResponseReader {
    pub fn new(expect: impl Into<Rc<Expect>>) -> Self {
        ResponseReader {
            expect: expect.into(),
            state: State::Head { buf: Vec::new() },
        }
    }

    /// Feeds bytes; after `Done` or an error the reader must not be fed again
    /// (further calls return the same kind of result without looking).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<Progress, HttpError> {
        loop {
            match &mut self.state {
                State::Done => return Err(HttpError::BadHead("data after the response")),
                State::Head { buf } => {
                    let room = MAX_HEAD_BYTES.saturating_sub(buf.len());
                    let take = data.len().min(room);
                    // The usual head comes in one read: parse it in place.
                    let parsed = if buf.is_empty() {
                        let head = &data[..take];
                        let parsed = parse_head(head)?;
                        if parsed.is_none() {
                            buf.extend_from_slice(head);
                        }
                        parsed
                    } else {
                        buf.extend_from_slice(&data[..take]);
                        parse_head(buf)?
                    };
                    match parsed {
                        None if buf.len() >= MAX_HEAD_BYTES => return Err(HttpError::HeadTooLarge),
                        None => return Ok(Progress::NeedMore),
                        Some((head_len, status, framing)) => {
                            // Body bytes that came with the head.
                            let already = if buf.is_empty() { take } else { buf.len() } - head_len;
                            let rest_start = take - already.min(take);
                            *buf = Vec::new();
                            if !self.expect.status_ok(status) {
                                self.state = State::Done;
                                return Err(HttpError::Status(status));
                            }
                            if !self.expect.needs_body() {
                                self.state = State::Done;
                                return Ok(Progress::Done(Response {
                                    status,
                                    digest: None,
                                    body_len: 0,
                                    head_len,
                                }));
                            }
                            self.state = State::Body(Box::new(Body {
                                status,
                                head_len,
                                framing,
                                hasher: Md5::new(),
                                received: 0,
                                decoded: 0,
                                chunk: ChunkState::Size,
                                line: Vec::new(),
                            }));
                            data = &data[rest_start..];
                            if let Some(done) = self.body_complete_without_data()? {
                                return Ok(done);
                            }
                        }
                    }
                }
                State::Body(body) => {
                    let complete = body.feed(data)?;
                    if complete {
                        return self.finish_body();
                    }
                    return Ok(Progress::NeedMore);
                }
            }
            if data.is_empty() {
                return Ok(Progress::NeedMore);
            }
        }
    }

    /// A Content-Length of 0 completes without any body byte.
    fn body_complete_without_data(&mut self) -> Result<Option<Progress>, HttpError> {
        match &self.state {
            State::Body(b) if b.framing == Framing::Length(0) => self.finish_body().map(Some),
            _ => Ok(None),
        }
    }

    /// The peer closed the connection (read returned 0).
    pub fn finish(&mut self) -> Result<Progress, HttpError> {
        match &self.state {
            State::Body(b) if b.framing == Framing::UntilClose => self.finish_body(),
            State::Done => Err(HttpError::EarlyClose),
            _ => {
                self.state = State::Done;
                Err(HttpError::EarlyClose)
            }
        }
    }

    fn finish_body(&mut self) -> Result<Progress, HttpError> {
        let State::Body(body) = std::mem::replace(&mut self.state, State::Done) else {
            return Err(HttpError::EarlyClose);
        };
        let mut digest = [0u8; 16];
        for (d, s) in digest.iter_mut().zip(body.hasher.finalize().iter()) {
            *d = *s;
        }
        if let Some(expected) = self.expect.digest {
            if expected != digest {
                return Err(HttpError::Digest(digest));
            }
        }
        Ok(Progress::Done(Response {
            status: body.status,
            digest: Some(digest),
            body_len: body.received,
            head_len: body.head_len,
        }))
    }
}

/// `Some((head_len, status, framing))` once the head is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, u16, Framing)>, HttpError> {
    // Left uninitialised: httparse fills what it parses, and zeroing 64
    // headers cost more than parsing a usual head.
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    );
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::BadHead("too many headers")),
        Err(_) => return Err(HttpError::BadHead("invalid status line or header")),
    };
    let status = response.code.ok_or(HttpError::BadHead("no status code"))?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in response.headers.iter() {
        // Most names have neither length: no comparison at all.
        if !matches!(h.name.len(), 14 | 17) {
            continue;
        }
        if token_is(h.name, "content-length") {
            let value = content_length(h.value).ok_or(HttpError::BadContentLength)?;
            if length.is_some_and(|l| l != value) {
                return Err(HttpError::BadContentLength);
            }
            length = Some(value);
        } else if token_is(h.name, "transfer-encoding") {
            chunked = h
                .value
                .split(|&b| b == b',')
                .next_back()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    // RFC 9112 6.3: chunked wins over Content-Length; 1xx/204/304 have no body.
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(l) = length {
        if l > MAX_BODY_BYTES {
            return Err(HttpError::BodyTooLarge);
        }
        Framing::Length(l)
    } else {
        Framing::UntilClose
    };
    Ok(Some((head_len, status, framing)))
}

/// Whether a header name is `lower` (lower case letters and '-'), case
/// aside. Names are HTTP tokens (httparse checks): among token bytes only a
/// letter's two cases OR with 0x20 to that letter, and only '-' to '-', so
/// this is `eq_ignore_ascii_case` at a third of the cost.
fn token_is(name: &str, lower: &str) -> bool {
    name.len() == lower.len()
        && name
            .bytes()
            .zip(lower.bytes())
            .all(|(byte, want)| byte | 0x20 == want)
}

/// A Content-Length value: the usual plain digits at once, anything else
/// as `str::parse` after trimming takes it.
fn content_length(value: &[u8]) -> Option<u64> {
    if !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit) {
        return Some(
            value
                .iter()
                .fold(0u64, |n, &digit| n * 10 + u64::from(digit - b'0')),
        );
    }
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

impl Body {
    fn take(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        self.received += bytes.len() as u64;
        if self.received > MAX_BODY_BYTES {
            return Err(HttpError::BodyTooLarge);
        }
        self.hasher.update(bytes);
        Ok(())
    }

    /// Chunked: hashes (and counts) the wire bytes the decoder consumed.
    fn feed_chunked(&mut self, data: &[u8]) -> Result<bool, HttpError> {
        let (consumed, complete) = self.decode_chunked(data)?;
        self.take(data.get(..consumed).unwrap_or(data))?;
        Ok(complete)
    }

    /// True when the body is complete.
    fn feed(&mut self, data: &[u8]) -> Result<bool, HttpError> {
        match self.framing {
            Framing::UntilClose => {
                self.take(data)?;
                Ok(false)
            }
            Framing::Length(total) => {
                let left = total - self.received;
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                self.take(&data[..n])?;
                // Bytes past Content-Length are ignored: we close anyway.
                Ok(self.received == total)
            }
            Framing::Chunked => self.feed_chunked(data),
        }
    }

    /// Walks the chunked coding over `data`: how many bytes belong to the
    /// body (all, or up to the end of the last chunk's trailer) and whether
    /// the body is complete.
    fn decode_chunked(&mut self, mut data: &[u8]) -> Result<(usize, bool), HttpError> {
        let total = data.len();
        let consumed = |rest: &[u8]| total - rest.len();
        // Each pass consumes at least one byte or returns.
        while !data.is_empty() {
            match self.chunk {
                ChunkState::Size => {
                    let (line, rest) = match take_line(&mut self.line, data)? {
                        Some(split) => split,
                        None => return Ok((total, false)),
                    };
                    data = rest;
                    let size = parse_chunk_size(&line)?;
                    self.chunk = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        if self.decoded.saturating_add(size) > MAX_BODY_BYTES {
                            return Err(HttpError::BodyTooLarge);
                        }
                        ChunkState::Data { remaining: size }
                    };
                }
                ChunkState::Data { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    self.decoded += n as u64;
                    data = &data[n..];
                    let remaining = remaining - n as u64;
                    self.chunk = if remaining == 0 {
                        ChunkState::DataEnd { seen_cr: false }
                    } else {
                        ChunkState::Data { remaining }
                    };
                }
                ChunkState::DataEnd { seen_cr } => {
                    let (&b, rest) = data.split_first().unwrap_or((&0, &[]));
                    data = rest;
                    self.chunk = match (seen_cr, b) {
                        (false, b'\r') => ChunkState::DataEnd { seen_cr: true },
                        // A bare LF is tolerated, as most clients do.
                        (_, b'\n') => ChunkState::Size,
                        _ => return Err(HttpError::BadChunk("no CRLF after chunk data")),
                    };
                }
                ChunkState::Trailer => {
                    let (line, rest) = match take_line(&mut self.line, data)? {
                        Some(split) => split,
                        None => return Ok((total, false)),
                    };
                    data = rest;
                    if line.is_empty() {
                        return Ok((consumed(data), true));
                    }
                }
            }
        }
        Ok((total, false))
    }
}

/// Accumulates one CRLF- (or LF-) terminated line across feeds. Returns the
/// line without its terminator and the rest of `data` once complete.
/// A complete line and the input after it.
type LineSplit<'a> = (Vec<u8>, &'a [u8]);

fn take_line<'a>(
    partial: &mut Vec<u8>,
    data: &'a [u8],
) -> Result<Option<LineSplit<'a>>, HttpError> {
    match data.iter().position(|&b| b == b'\n') {
        None => {
            partial.extend_from_slice(data);
            if partial.len() > MAX_CHUNK_LINE {
                return Err(HttpError::BadChunk("line too long"));
            }
            Ok(None)
        }
        Some(i) => {
            partial.extend_from_slice(&data[..i]);
            if partial.len() > MAX_CHUNK_LINE {
                return Err(HttpError::BadChunk("line too long"));
            }
            let mut line = std::mem::take(partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Ok(Some((line, &data[i + 1..])))
        }
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    // Chunk extensions (";name=value") are ignored.
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(HttpError::BadChunk("invalid chunk size"));
    }
    let text =
        std::str::from_utf8(digits).map_err(|_| HttpError::BadChunk("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| HttpError::BadChunk("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_like_keepalived() {
        assert_eq!(
            build_request("/index.html", "10.0.0.2", 80, HttpProtocol::V1_0),
            b"GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.2\r\n\r\n"
        );
        assert_eq!(
            build_request("/", "[::1]", 8080, HttpProtocol::V1_1),
            b"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            host_for_addr("::1".parse().expect("addr")),
            "[::1]".to_string()
        );
    }

    #[test]
    fn header_names_and_lengths() {
        assert!(token_is("Content-Length", "content-length"));
        assert!(token_is("CONTENT-LENGTH", "content-length"));
        assert!(!token_is("Content-Lengths", "content-length"));
        assert!(!token_is("Content_Length", "content-length"));
        assert!(!token_is("Content-Type", "content-length"));
        // Every token byte against every target byte, as eq_ignore_ascii_case.
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        for b in (0..=255u8).filter(|&b| token(b)) {
            for want in b"abcdefghijklmnopqrstuvwxyz-".iter().copied() {
                let name = [b];
                let name = std::str::from_utf8(&name).expect("ascii");
                let want = [want];
                let want = std::str::from_utf8(&want).expect("ascii");
                assert_eq!(token_is(name, want), name.eq_ignore_ascii_case(want));
            }
        }
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(
            content_length(b"1234567890123456789"),
            Some(1_234_567_890_123_456_789)
        );
        // Beyond 19 digits and anything not plain digits: str::parse's rules.
        assert_eq!(content_length(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(content_length(b"18446744073709551616"), None);
        assert_eq!(content_length(b"+5"), Some(5));
        assert_eq!(content_length(b" 7 "), Some(7));
        assert_eq!(content_length(b""), None);
        assert_eq!(content_length(b"-1"), None);
        assert_eq!(content_length(b"1a"), None);
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Ok(26));
        assert_eq!(parse_chunk_size(b"A;ext=1"), Ok(10));
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"zz").is_err());
        assert!(parse_chunk_size(b"ffffffffffffffffff").is_err());
    }
}
