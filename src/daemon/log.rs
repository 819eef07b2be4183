//! Logging through the `log` crate to syslog (ident `Keepalived`, with pid)
//! and/or the console, like keepalived's `-l`, `-D` and `-S` flags.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use syslog::{Facility, LogFormat, LoggerBackend, Severity};

/// keepalived's syslog ident.
pub const SYSLOG_IDENT: &str = "Keepalived";

#[derive(Debug, Clone, Copy)]
pub enum LogTarget {
    Syslog {
        facility: Facility,
    },
    /// stderr, `Sat Nov 21 14:52:00 2026: message` like keepalived `-l`.
    Console,
    Both {
        facility: Facility,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// A logger was already installed in this process.
    AlreadyInitialized,
    /// Not a value keepalived's `-S` accepts.
    InvalidFacility { value: String },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::AlreadyInitialized => write!(f, "logging is already initialised"),
            LogError::InvalidFacility { value } => write!(
                f,
                "invalid log facility {value:?} (expected 0-7, local0-local7, user or daemon)"
            ),
        }
    }
}

impl std::error::Error for LogError {}

/// Parses keepalived's `-S` value: `0`-`7` mean local0-local7.
pub fn parse_facility(value: &str) -> Result<Facility, LogError> {
    const LOCAL: [Facility; 8] = [
        Facility::LOG_LOCAL0,
        Facility::LOG_LOCAL1,
        Facility::LOG_LOCAL2,
        Facility::LOG_LOCAL3,
        Facility::LOG_LOCAL4,
        Facility::LOG_LOCAL5,
        Facility::LOG_LOCAL6,
        Facility::LOG_LOCAL7,
    ];
    let lower = value.to_ascii_lowercase();
    let local_index = lower.strip_prefix("local").unwrap_or(&lower);
    match lower.as_str() {
        "user" => Ok(Facility::LOG_USER),
        "daemon" => Ok(Facility::LOG_DAEMON),
        _ => local_index
            .parse::<usize>()
            .ok()
            .filter(|_| local_index.len() == 1)
            .and_then(|index| LOCAL.get(index).copied())
            .ok_or_else(|| LogError::InvalidFacility {
                value: value.to_owned(),
            }),
    }
}

/// `<PRI>Keepalived[pid]: message`, without a timestamp: the local syslog
/// daemon stamps messages in its own (local) time, whereas the syslog
/// crate's RFC 3164 formatter would write UTC.
#[derive(Debug, Clone, Copy)]
struct SyslogFormat {
    facility: Facility,
}

impl<T: fmt::Display> LogFormat<T> for SyslogFormat {
    fn format<W: Write>(&self, w: &mut W, severity: Severity, message: T) -> syslog::Result<()> {
        let priority = self.facility as u8 | severity as u8;
        // The pid is read per message because daemonizing changes it.
        write!(
            w,
            "<{priority}>{SYSLOG_IDENT}[{}]: {message}",
            std::process::id()
        )
        .map_err(syslog::Error::Write)
    }
}

struct SyslogSink {
    logger: syslog::Logger<LoggerBackend, SyslogFormat>,
    format: SyslogFormat,
    socket_path: Option<std::path::PathBuf>,
}

impl SyslogSink {
    /// Connects to `/dev/log` (or the crate's other standard paths), or to
    /// `socket_path` when given.
    fn connect(facility: Facility, socket_path: Option<&Path>) -> syslog::Result<Self> {
        let format = SyslogFormat { facility };
        let logger = match socket_path {
            Some(path) => syslog::unix_custom(format, path)?,
            None => syslog::unix(format)?,
        };
        if let LoggerBackend::Unix(socket) = &logger.backend {
            // A stuck syslog daemon must cost us messages, not the event loop.
            socket.set_nonblocking(true)?;
        }
        Ok(SyslogSink {
            logger,
            format,
            socket_path: socket_path.map(Path::to_owned),
        })
    }

    fn send(&mut self, level: Level, message: &str) -> syslog::Result<()> {
        let severity = match level {
            Level::Error => Severity::LOG_ERR,
            Level::Warn => Severity::LOG_WARNING,
            Level::Info => Severity::LOG_INFO,
            Level::Debug | Level::Trace => Severity::LOG_DEBUG,
        };
        self.format
            .format(&mut self.logger.backend, severity, message)
    }

    fn log(&mut self, level: Level, message: &str) {
        match self.send(level, message) {
            Ok(()) => return,
            Err(syslog::Error::Write(err) | syslog::Error::Io(err))
                if err.kind() == std::io::ErrorKind::WouldBlock =>
            {
                return;
            }
            Err(_) => {}
        }
        // The syslog daemon may have restarted: reconnect once, then give up
        // on this message rather than block or spin.
        if let Ok(fresh) = Self::connect(self.format.facility, self.socket_path.as_deref()) {
            *self = fresh;
            let _ = self.send(level, message);
        }
    }
}

struct DaemonLogger {
    level: LevelFilter,
    syslog: Option<Mutex<SyslogSink>>,
    console: bool,
}

/// Local time like keepalived's console output: `Sat Nov 21 14:52:00 2026`.
fn local_timestamp() -> String {
    let mut buffer = [0u8; 64];
    // SAFETY: localtime_r/strftime write into our stack buffers; strftime
    // returns the number of bytes written (0 on failure) within the length.
    let written = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut broken_down: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut broken_down).is_null() {
            return String::new();
        }
        libc::strftime(
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            c"%a %b %d %T %Y".as_ptr(),
            &broken_down,
        )
    };
    String::from_utf8_lossy(buffer.get(..written).unwrap_or_default()).into_owned()
}

impl Log for DaemonLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        if let Some(sink) = &self.syslog {
            // A panic elsewhere while holding the lock must not silence logging.
            let mut sink = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            sink.log(record.level(), &message);
        }
        if self.console {
            // One write per line so lines from forked children do not interleave.
            let line = format!("{}: {message}\n", local_timestamp());
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs the process-wide logger; a second call fails with
/// `AlreadyInitialized`. `detail` (keepalived `-D`) enables debug messages.
pub fn init_logging(target: LogTarget, detail: bool) -> Result<(), LogError> {
    init_logging_at(target, detail, None)
}

fn init_logging_at(
    target: LogTarget,
    detail: bool,
    syslog_socket: Option<&Path>,
) -> Result<(), LogError> {
    let level = if detail {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let (facility, mut console) = match target {
        LogTarget::Syslog { facility } => (Some(facility), false),
        LogTarget::Console => (None, true),
        LogTarget::Both { facility } => (Some(facility), true),
    };
    let syslog = match facility.map(|facility| SyslogSink::connect(facility, syslog_socket)) {
        Some(Ok(sink)) => Some(Mutex::new(sink)),
        Some(Err(err)) => {
            let _ = writeln!(
                std::io::stderr(),
                "{SYSLOG_IDENT}: cannot connect to syslog ({err}); logging to the console"
            );
            console = true;
            None
        }
        None => None,
    };
    log::set_boxed_logger(Box::new(DaemonLogger {
        level,
        syslog,
        console,
    }))
    .map_err(|_| LogError::AlreadyInitialized)?;
    log::set_max_level(level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keepalived_facilities() {
        assert!(matches!(parse_facility("0"), Ok(Facility::LOG_LOCAL0)));
        assert!(matches!(parse_facility("7"), Ok(Facility::LOG_LOCAL7)));
        assert!(matches!(parse_facility("local3"), Ok(Facility::LOG_LOCAL3)));
        assert!(matches!(parse_facility("LOCAL5"), Ok(Facility::LOG_LOCAL5)));
        assert!(matches!(parse_facility("user"), Ok(Facility::LOG_USER)));
        assert!(matches!(parse_facility("daemon"), Ok(Facility::LOG_DAEMON)));
        for bad in [
            "8", "local8", "local", "-1", "07", "local01", "kern", "", "local٣",
        ] {
            assert_eq!(
                parse_facility(bad).err(),
                Some(LogError::InvalidFacility { value: bad.into() }),
                "{bad}"
            );
        }
    }

    #[test]
    fn formats_syslog_lines() {
        let mut out = Vec::new();
        let format = SyslogFormat {
            facility: Facility::LOG_DAEMON,
        };
        format
            .format(&mut out, Severity::LOG_INFO, "hello")
            .expect("format");
        let expected = format!("<30>Keepalived[{}]: hello", std::process::id());
        assert_eq!(String::from_utf8(out).expect("utf8"), expected);
    }

    #[test]
    fn console_timestamp_looks_like_keepalived() {
        let stamp = local_timestamp();
        // e.g. "Sat Nov 21 14:52:00 2026"
        let fields: Vec<&str> = stamp.split(' ').collect();
        assert_eq!(fields.len(), 5, "{stamp}");
        assert_eq!(fields[3].len(), 8, "{stamp}");
    }

    /// The only test installing the global logger: logs through a fake
    /// /dev/log, then checks a second init is refused.
    #[test]
    fn logs_to_syslog_socket_and_initialises_once() {
        let dir = std::env::temp_dir().join(format!("ka-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let socket_path = dir.join("log");
        let server = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let target = LogTarget::Syslog {
            facility: Facility::LOG_LOCAL1,
        };
        init_logging_at(target, false, Some(&socket_path)).expect("first init");
        log::debug!("hidden without -D");
        log::warn!("(VI_1) Entering MASTER STATE");
        // local1 (17 << 3) | warning (4) = 140
        let expected = format!(
            "<140>Keepalived[{}]: (VI_1) Entering MASTER STATE",
            std::process::id()
        );
        // Tests running in parallel threads may log too: skip their lines.
        let mut buffer = [0u8; 512];
        loop {
            let len = server.recv(&mut buffer).expect("syslog datagram");
            let line = String::from_utf8_lossy(&buffer[..len]).into_owned();
            assert!(!line.contains("hidden"), "debug line logged without -D");
            if line == expected {
                break;
            }
        }
        assert_eq!(
            init_logging(LogTarget::Console, true),
            Err(LogError::AlreadyInitialized)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
