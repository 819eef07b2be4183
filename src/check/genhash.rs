//! `genhash` (and `keepalived -T`): fetch a URL once and print the MD5 of
//! its body, the value HTTP_GET's `digest` expects. A one-shot command, so
//! blocking I/O, but every wait is bounded by the timeout (`-t`, default 5 s,
//! also bounding the whole fetch).

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::http::{build_request, hex, host_for_addr, Expect, HttpError, Progress, ResponseReader};
use crate::config::model::{HttpProtocol, StatusRange};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub const USAGE: &str = "Usage: genhash COMMAND [OPTIONS]
Commands:
   -s server-address -p port -u url
   -S -s server-address -p port -u url
   -h

Options:
Either long or short options are allowed.
   --use-ssl         -S       Use SSL connection to remote server.
   --server          -s       Use the specified remote server address.
   --port            -p       Use the specified remote server port.
   --url             -u       Use the specified remote server url.
   --use-virtualhost -V       Use the specified virtualhost in GET query.
   --verbose         -v       Use verbose mode output.
   --help            -h       Display this short inlined help screen.
   --protocol        -P       Use the specified HTTP protocol - '1.0', 1.0c', '1.1'.
                                1.0c means 1.0 with 'Connection: close'
   --timeout         -t       Timeout in seconds
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub server: IpAddr,
    pub port: u16,
    pub url: String,
    pub virtualhost: Option<String>,
    pub ssl: bool,
    pub verbose: bool,
    pub protocol: HttpProtocol,
    pub timeout: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UsageError {
    Help,
    Missing(&'static str),
    Invalid { option: String, value: String },
    UnknownOption(String),
    MissingValue(String),
    Unexpected(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Help => write!(f, "help requested"),
            UsageError::Missing(what) => write!(f, "missing mandatory option {what}"),
            UsageError::Invalid { option, value } => write!(f, "invalid {option} '{value}'"),
            UsageError::UnknownOption(o) => write!(f, "unknown option '{o}'"),
            UsageError::MissingValue(o) => write!(f, "option '{o}' requires a value"),
            UsageError::Unexpected(a) => write!(f, "Unexpected argument(s): {a}"),
        }
    }
}

/// Parses genhash's command line (getopt_long style: `-s X`, `-sX`,
/// `--server X`, `--server=X`; `-T` / `--genhash` are accepted and ignored).
pub fn parse(args: &[OsString]) -> Result<Options, UsageError> {
    let mut server = None;
    let mut port = None;
    let mut url = None;
    let mut o = Options {
        server: IpAddr::from([0u8; 4]),
        port: 0,
        url: String::new(),
        virtualhost: None,
        ssl: false,
        verbose: false,
        protocol: HttpProtocol::V1_0,
        timeout: DEFAULT_TIMEOUT,
    };
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (name, inline): (String, Option<String>) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('?');
            let rest: String = chars.collect();
            let long = match c {
                's' => "server",
                'p' => "port",
                'u' => "url",
                'V' => "use-virtualhost",
                'S' => "use-ssl",
                'v' => "verbose",
                'h' => "help",
                'T' => "genhash",
                'P' => "protocol",
                't' => "timeout",
                _ => return Err(UsageError::UnknownOption(arg.clone())),
            };
            (long.to_string(), (!rest.is_empty()).then_some(rest))
        } else {
            return Err(UsageError::Unexpected(args[i - 1..].join(" ")));
        };
        let takes_value = matches!(
            name.as_str(),
            "server" | "port" | "url" | "use-virtualhost" | "protocol" | "timeout"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .cloned()
                        .ok_or_else(|| UsageError::MissingValue(arg.clone()))?;
                    i += 1;
                    v
                }
            }
        } else {
            if inline.is_some() && arg.starts_with("--") {
                return Err(UsageError::Invalid {
                    option: name,
                    value: inline.unwrap_or_default(),
                });
            }
            String::new()
        };
        let invalid = |option: &str, value: &str| UsageError::Invalid {
            option: option.to_string(),
            value: value.to_string(),
        };
        match name.as_str() {
            "server" => {
                server = Some(
                    value
                        .parse::<IpAddr>()
                        .map_err(|_| invalid("server (should be an IP)", &value))?,
                )
            }
            "port" => {
                port = Some(
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| invalid("port number", &value))?,
                )
            }
            "url" => url = Some(value),
            "use-virtualhost" => o.virtualhost = Some(value),
            "use-ssl" => o.ssl = true,
            "verbose" => o.verbose = true,
            "help" => return Err(UsageError::Help),
            "genhash" => {}
            "protocol" => {
                o.protocol = match value.as_str() {
                    "1.0" => HttpProtocol::V1_0,
                    "1.0c" | "1.0C" => HttpProtocol::V1_0C,
                    "1.1" => HttpProtocol::V1_1,
                    _ => return Err(invalid("HTTP protocol version", &value)),
                }
            }
            "timeout" => {
                let secs = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| invalid("timeout", &value))?;
                o.timeout = Duration::from_secs(secs);
            }
            _ => return Err(UsageError::UnknownOption(arg.clone())),
        }
    }
    o.server = server.ok_or(UsageError::Missing("-s server-address"))?;
    o.port = port.ok_or(UsageError::Missing("-p port"))?;
    o.url = url.ok_or(UsageError::Missing("-u url"))?;
    Ok(o)
}

#[derive(Debug)]
pub enum FetchError {
    NoTls,
    Connect(io::Error),
    Timeout,
    Io(io::Error),
    Http(HttpError),
    #[cfg(feature = "tls")]
    Tls(super::tls::TlsError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NoTls => write!(
                f,
                "SSL (-S) is not supported: this build has no TLS (built without the 'tls' feature)"
            ),
            FetchError::Connect(e) => write!(f, "cannot connect: {e}"),
            FetchError::Timeout => write!(f, "timed out"),
            FetchError::Io(e) => write!(f, "{e}"),
            FetchError::Http(e) => write!(f, "{e}"),
            #[cfg(feature = "tls")]
            FetchError::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// The fetched page, with what `-v` needs to print it the way keepalived
/// 2.2.7 does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Every byte received (head and body), up to [`MAX_VERBOSE_BYTES`].
    pub raw: Vec<u8>,
    /// The length of the head (through the empty line) at the start of `raw`.
    pub head_len: usize,
    /// The sizes of the reads that filled `raw`, in order: keepalived dumps
    /// the body read by read.
    pub reads: Vec<usize>,
    pub digest: [u8; 16],
    /// From the request to the end of the response.
    pub elapsed: Duration,
}

impl Fetched {
    pub fn head(&self) -> &[u8] {
        self.raw.get(..self.head_len).unwrap_or_default()
    }
}

/// Raw bytes kept for `-v` output; hashing continues past this.
pub const MAX_VERBOSE_BYTES: usize = 1024 * 1024;

/// keepalived reads into a 4 KiB buffer (MAX_BUFFER_LENGTH, one byte kept
/// for a NUL); reading the same way makes `-v` show the same dumps.
const READ_SIZE: usize = 4095;

/// What genhash reads the page over: TCP, or TLS with `-S`.
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::BlockingTls>),
}

/// Time left before `deadline`, or a timeout.
fn remaining(deadline: Instant) -> Result<Duration, FetchError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(FetchError::Timeout)
}

#[cfg(feature = "tls")]
fn tls_error(e: super::tls::BlockingError) -> FetchError {
    match e {
        super::tls::BlockingError::Io(e) => timeout_or_io(e),
        super::tls::BlockingError::Tls(e) => FetchError::Tls(e),
    }
}

impl Conn {
    fn new(stream: TcpStream, o: &Options) -> Result<Conn, FetchError> {
        if !o.ssl {
            return Ok(Conn::Plain(stream));
        }
        #[cfg(feature = "tls")]
        {
            // SNI: the virtualhost when given (as `enable_sni` would).
            super::tls::BlockingTls::new(stream, o.server, o.virtualhost.as_deref())
                .map(|t| Conn::Tls(Box::new(t)))
                .map_err(FetchError::Tls)
        }
        #[cfg(not(feature = "tls"))]
        Err(FetchError::NoTls)
    }

    fn send(&mut self, data: &[u8], deadline: Instant) -> Result<(), FetchError> {
        match self {
            Conn::Plain(stream) => {
                stream
                    .set_write_timeout(Some(remaining(deadline)?))
                    .map_err(FetchError::Io)?;
                stream.write_all(data).map_err(timeout_or_io)
            }
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => tls.send(data, deadline).map_err(tls_error),
        }
    }

    /// Reads some bytes, waiting at most until `deadline`; 0 at the end.
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<usize, FetchError> {
        match self {
            Conn::Plain(stream) => loop {
                stream
                    .set_read_timeout(Some(remaining(deadline)?))
                    .map_err(FetchError::Io)?;
                match stream.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => return other.map_err(timeout_or_io),
                }
            },
            #[cfg(feature = "tls")]
            Conn::Tls(tls) => tls.recv(buf, deadline).map_err(tls_error),
        }
    }
}

pub fn fetch(o: &Options) -> Result<Fetched, FetchError> {
    #[cfg(not(feature = "tls"))]
    if o.ssl {
        return Err(FetchError::NoTls);
    }
    let start = Instant::now();
    let deadline = start + o.timeout;
    let addr = SocketAddr::new(o.server, o.port);
    let stream = TcpStream::connect_timeout(&addr, o.timeout).map_err(|e| {
        if e.kind() == io::ErrorKind::TimedOut {
            FetchError::Timeout
        } else {
            FetchError::Connect(e)
        }
    })?;
    let (host, port) = match &o.virtualhost {
        Some(v) => (v.clone(), 80),
        None => (host_for_addr(o.server), o.port),
    };
    let request = build_request(&o.url, &host, port, o.protocol);
    let mut conn = Conn::new(stream, o)?;
    conn.send(&request, deadline)?;
    let mut reader = ResponseReader::new(Expect {
        status: vec![StatusRange {
            first: 100,
            last: 999,
        }],
        digest: None,
        always_hash: true,
    });
    let mut raw = Vec::new();
    let mut reads = Vec::new();
    let mut buf = vec![0u8; READ_SIZE];
    // Bounded by the deadline: each read waits at most the time left.
    loop {
        let progress = match conn.recv(&mut buf, deadline)? {
            0 => reader.finish(),
            n => {
                let keep = n.min(MAX_VERBOSE_BYTES - raw.len());
                if keep > 0 {
                    raw.extend_from_slice(&buf[..keep]);
                    reads.push(keep);
                }
                reader.feed(&buf[..n])
            }
        };
        match progress.map_err(FetchError::Http)? {
            Progress::NeedMore => continue,
            Progress::Done(response) => {
                return Ok(Fetched {
                    head_len: response.head_len.min(raw.len()),
                    raw,
                    reads,
                    digest: response.digest.unwrap_or_default(),
                    elapsed: start.elapsed(),
                });
            }
        }
    }
}

fn timeout_or_io(e: io::Error) -> FetchError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FetchError::Timeout,
        _ => FetchError::Io(e),
    }
}

const DELIM_BEGIN: &str = "-----------------------[";
const DELIM_END: &str = "]-----------------------";
const HTTP_HEADER_HEXA: &str = "    HTTP Header Buffer    ";
const HTTP_HEADER_ASCII: &str = " HTTP Header Ascii Buffer ";
const HTML_HEADER_HEXA: &str = "        HTML Buffer        ";
const HTML_HASH: &str = "    HTML hash resulting    ";
const HTML_HASH_FINAL: &str = " HTML hash final resulting ";

fn section(out: &mut Vec<u8>, title: &str) {
    out.extend_from_slice(format!("{DELIM_BEGIN}{title}{DELIM_END}\n").as_bytes());
}

/// keepalived's `dump_buffer`: 16 bytes a line, a decimal offset of at
/// least four digits (modulo 65536), the bytes in hex with a ` -` after the
/// eighth, then the printable ASCII; the last line is padded.
fn hexdump(out: &mut Vec<u8>, bytes: &[u8]) {
    for (n, line) in bytes.chunks(16).enumerate() {
        let mut text = format!("{:04} ", (n * 16) & 0xffff);
        for i in 0..16 {
            match line.get(i) {
                Some(b) => text.push_str(&format!(" {b:02x}")),
                None => text.push_str("   "),
            }
            if i == 7 {
                text.push_str(" -");
            }
        }
        text.push_str("   ");
        for i in 0..16 {
            text.push(match line.get(i) {
                Some(&b) if (0x20..=0x7e).contains(&b) => b as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        text.push('\n');
        out.extend_from_slice(text.as_bytes());
    }
}

/// The Content-Length of a response head, if it has a valid one.
fn content_length(head: &[u8]) -> Option<u64> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(head).ok()?;
    response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.trim().parse().ok())
}

/// What genhash prints for a fetched page. Verbose output follows
/// keepalived 2.2.7 (`http_process_response`, `dump_digest`, genhash's
/// exit): a "HTTP Header Buffer" title for every read until the head is
/// complete, the head dumped and printed, the body dumped read by read
/// (the "HTML Buffer" title only when body bytes came with the head, the
/// bytes past Content-Length not shown), the digest dumped, the digest, and
/// the response time.
pub fn render(f: &Fetched, url: &str, verbose: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if verbose {
        let length = content_length(f.head());
        // How much of `r` new body bytes keepalived shows, `rx` already seen.
        let shown = |rx: u64, r: usize| match length {
            Some(l) if l < rx + r as u64 => usize::try_from(l.saturating_sub(rx)).unwrap_or(r),
            _ => r,
        };
        let mut pos = 0;
        let mut rx: Option<u64> = None;
        for &n in &f.reads {
            let end = (pos + n).min(f.raw.len());
            match rx {
                None => {
                    section(&mut out, HTTP_HEADER_HEXA);
                    if end >= f.head_len {
                        hexdump(&mut out, f.head());
                        section(&mut out, HTTP_HEADER_ASCII);
                        out.extend_from_slice(f.head());
                        out.push(b'\n');
                        let body = &f.raw[f.head_len..end];
                        if !body.is_empty() && length.map_or(true, |l| l > 0) {
                            section(&mut out, HTML_HEADER_HEXA);
                            hexdump(&mut out, &body[..shown(0, body.len())]);
                        }
                        rx = Some(body.len() as u64);
                    }
                }
                Some(seen) => {
                    let chunk = &f.raw[pos..end];
                    if length.map_or(true, |l| l > seen) {
                        hexdump(&mut out, &chunk[..shown(seen, chunk.len())]);
                    }
                    rx = Some(seen + chunk.len() as u64);
                }
            }
            pos = end;
        }
        out.push(b'\n');
        section(&mut out, HTML_HASH);
        hexdump(&mut out, &f.digest);
        section(&mut out, HTML_HASH_FINAL);
    }
    // keepalived 2.2.7 prints the digest alone (what goes into `digest`).
    out.extend_from_slice(hex(&f.digest).as_bytes());
    out.push(b'\n');
    if verbose {
        out.extend_from_slice(
            format!(
                "\nGlobal response time for [{url}] = {} usecs\n",
                f.elapsed.as_micros()
            )
            .as_bytes(),
        );
    }
    out
}

/// Runs genhash; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let options = match parse(args) {
        Ok(o) => o,
        Err(UsageError::Help) => {
            eprint!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("genhash: {e}");
            eprint!("{USAGE}");
            return 1;
        }
    };
    match fetch(&options) {
        Ok(fetched) => {
            let mut stdout = io::stdout().lock();
            // A closed stdout (`genhash ... | head -1`) is not an error here.
            let _ = stdout
                .write_all(&render(&fetched, &options.url, options.verbose))
                .and_then(|()| stdout.flush());
            0
        }
        Err(e) => {
            if matches!(e, FetchError::Connect(_)) {
                // keepalived 2.2.7's genhash says exactly this, on stdout.
                println!("Connection failed");
            }
            eprintln!(
                "genhash: {}:{}{}: {e}",
                host_for_addr(options.server),
                options.port,
                options.url
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn parses_keepalived_style_options() {
        let o = parse(&args("-s 192.168.230.13 -p 80 -u /index.html")).expect("valid");
        assert_eq!(o.server, "192.168.230.13".parse::<IpAddr>().expect("ip"));
        assert_eq!((o.port, o.url.as_str()), (80, "/index.html"));
        assert!(!o.verbose && !o.ssl);
        let o = parse(&args(
            "--server=::1 --port 8080 -u/x -V www.example -v -P 1.1 -t 2 -T",
        ))
        .expect("valid");
        assert_eq!(o.virtualhost.as_deref(), Some("www.example"));
        assert_eq!(
            (o.port, o.protocol, o.verbose),
            (8080, HttpProtocol::V1_1, true)
        );
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(parse(&args("-h")), Err(UsageError::Help));
        assert_eq!(
            parse(&args("-s 1.2.3.4 -p 80")),
            Err(UsageError::Missing("-u url"))
        );
        assert!(matches!(
            parse(&args("-s host.example -p 80 -u /")),
            Err(UsageError::Invalid { .. })
        ));
        assert!(matches!(
            parse(&args("-s 1.2.3.4 -p 0 -u /")),
            Err(UsageError::Invalid { .. })
        ));
        assert!(matches!(
            parse(&args("-x")),
            Err(UsageError::UnknownOption(_))
        ));
        assert!(matches!(
            parse(&args("-s")),
            Err(UsageError::MissingValue(_))
        ));
        assert!(matches!(
            parse(&args("-s 1.2.3.4 -p 80 -u / extra")),
            Err(UsageError::Unexpected(_))
        ));
    }

    #[test]
    fn renders_like_keepalived() {
        let head = b"HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\n".to_vec();
        let mut raw = head.clone();
        raw.extend_from_slice(b"0123456789abcdef\x01xyz");
        let f = Fetched {
            head_len: head.len(),
            reads: vec![raw.len()],
            raw,
            digest: [0xab; 16],
            elapsed: Duration::from_micros(1234),
        };
        assert_eq!(
            render(&f, "/x", false),
            b"abababababababababababababababab\n"
        );
        let verbose = String::from_utf8(render(&f, "/x", true)).expect("ascii");
        let expected = "\
-----------------------[    HTTP Header Buffer    ]-----------------------
0000  48 54 54 50 2f 31 2e 30 - 20 32 30 30 20 4f 4b 0d   HTTP/1.0 200 OK.
0016  0a 43 6f 6e 74 65 6e 74 - 2d 4c 65 6e 67 74 68 3a   .Content-Length:
0032  20 32 30 0d 0a 0d 0a    -                            20....         
-----------------------[ HTTP Header Ascii Buffer ]-----------------------
HTTP/1.0 200 OK\r
Content-Length: 20\r
\r

-----------------------[        HTML Buffer        ]-----------------------
0000  30 31 32 33 34 35 36 37 - 38 39 61 62 63 64 65 66   0123456789abcdef
0016  01 78 79 7a             -                           .xyz            

-----------------------[    HTML hash resulting    ]-----------------------
0000  ab ab ab ab ab ab ab ab - ab ab ab ab ab ab ab ab   ................
-----------------------[ HTML hash final resulting ]-----------------------
abababababababababababababababab

Global response time for [/x] = 1234 usecs
";
        assert_eq!(verbose, expected);
    }

    #[test]
    fn verbose_body_is_dumped_read_by_read() {
        // The head alone in the first read: no "HTML Buffer" title; each
        // later read dumped from offset 0; bytes past Content-Length hidden.
        let head = b"HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\n".to_vec();
        let mut raw = head.clone();
        raw.extend_from_slice(&[b'a'; 18]);
        raw.extend_from_slice(b"bbXX");
        let f = Fetched {
            head_len: head.len(),
            reads: vec![10, head.len() - 10, 18, 4],
            raw,
            digest: [0; 16],
            elapsed: Duration::ZERO,
        };
        let out = String::from_utf8(render(&f, "/", true)).expect("ascii");
        assert_eq!(out.matches("HTTP Header Buffer").count(), 2, "{out}");
        assert!(!out.contains("HTML Buffer  "), "{out}");
        assert!(
            out.contains(
                "\n0016  61 61                   -                           aa              \n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "\n0000  62 62                   -                           bb              \n"
            ),
            "{out}"
        );
        assert!(!out.contains("XX"), "{out}");
    }
}
