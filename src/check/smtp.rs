//! SMTP_CHECK as data: wait for the 220 greeting, send `HELO name`, expect
//! 250, send `QUIT` and wait for its reply (keepalived's check_smtp.c
//! sequence: the check passes once a line answers the QUIT; a server that
//! closes without answering fails it).

use std::fmt;

use super::dialog::{ProbeError, ProbeSuccess, Step};

/// keepalived's HELO name when the checker sets no `helo_name`
/// (SMTP_DEFAULT_HELO in check_smtp.h).
pub const DEFAULT_HELO: &str = "smtpchecker.keepalived.org";

/// Longest reply (all lines of a multi-line reply) we buffer.
const MAX_REPLY_BYTES: usize = 4096;

/// Why an SMTP dialog failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpError {
    /// The greeting was not 220 (`None`: not a reply line at all).
    BadGreeting(Option<u16>),
    /// The answer to HELO was not 250.
    BadHelo(Option<u16>),
    /// The server closed the connection before the dialog ended.
    Closed,
    /// A reply longer than we buffer.
    ReplyTooLong,
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpError::BadGreeting(Some(c)) => write!(f, "SMTP greeting code {c}, expected 220"),
            SmtpError::BadGreeting(None) => write!(f, "malformed SMTP greeting"),
            SmtpError::BadHelo(Some(c)) => write!(f, "SMTP HELO reply code {c}, expected 250"),
            SmtpError::BadHelo(None) => write!(f, "malformed SMTP HELO reply"),
            SmtpError::Closed => write!(f, "SMTP server closed the connection"),
            SmtpError::ReplyTooLong => write!(f, "SMTP reply too long"),
        }
    }
}

impl std::error::Error for SmtpError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Helo,
    Quit,
}

#[derive(Debug)]
pub struct SmtpDialog {
    helo_name: String,
    stage: Stage,
    buf: Vec<u8>,
}

impl SmtpDialog {
    pub fn new(helo_name: &str) -> Self {
        SmtpDialog {
            helo_name: helo_name.to_string(),
            stage: Stage::Greeting,
            buf: Vec::new(),
        }
    }

    pub fn on_data(&mut self, data: &[u8]) -> Step {
        self.buf.extend_from_slice(data);
        if self.stage == Stage::Quit {
            // keepalived takes any line as the answer to QUIT.
            return if self.buf.contains(&b'\n') {
                Step::Finish(Ok(ProbeSuccess::default()))
            } else if self.buf.len() > MAX_REPLY_BYTES {
                fail(SmtpError::ReplyTooLong)
            } else {
                Step::Recv
            };
        }
        let code = match complete_reply(&self.buf) {
            Ok(Some(code)) => Some(code),
            Ok(None) if self.buf.len() > MAX_REPLY_BYTES => return fail(SmtpError::ReplyTooLong),
            Ok(None) => return Step::Recv,
            Err(Malformed) => None,
        };
        self.buf.clear();
        match (self.stage, code) {
            (Stage::Greeting, Some(220)) => {
                self.stage = Stage::Helo;
                Step::Send(format!("HELO {}\r\n", self.helo_name).into_bytes().into())
            }
            (Stage::Helo, Some(250)) => {
                self.stage = Stage::Quit;
                Step::Send(b"QUIT\r\n".to_vec().into())
            }
            (Stage::Greeting, c) => fail(SmtpError::BadGreeting(c)),
            (_, c) => fail(SmtpError::BadHelo(c)),
        }
    }

    /// The server closed its side: always a failure (even after QUIT, until
    /// its answer came).
    pub fn on_eof(&mut self) -> Step {
        fail(SmtpError::Closed)
    }
}

fn fail(why: SmtpError) -> Step {
    Step::Finish(Err(ProbeError::Smtp(why)))
}

/// A reply line that does not start with a three-digit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Malformed;

/// The code of a complete reply (last line `NNN ` or `NNN`), `None` while
/// incomplete.
fn complete_reply(buf: &[u8]) -> Result<Option<u16>, Malformed> {
    let mut rest = buf;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        rest = &rest[end + 1..];
        let code = line
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or(Malformed)?;
        match line.get(3) {
            Some(b'-') => continue,
            None | Some(b' ') => return Ok(Some(code)),
            Some(_) => return Err(Malformed),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(step: Step) -> Option<SmtpError> {
        match step {
            Step::Finish(Err(ProbeError::Smtp(e))) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn greeting_helo_quit() {
        let mut d = SmtpDialog::new("probe.example");
        assert!(matches!(d.on_data(b"220-mail ESMTP\r\n"), Step::Recv));
        match d.on_data(b"220 ready\r\n") {
            Step::Send(b) => assert_eq!(&b[..], b"HELO probe.example\r\n"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(d.on_data(b"25"), Step::Recv));
        match d.on_data(b"0 hello\r\n") {
            Step::Send(b) => assert_eq!(&b[..], b"QUIT\r\n"),
            other => panic!("{other:?}"),
        }
        // The check passes once QUIT is answered, whatever the answer.
        assert!(matches!(d.on_data(b"221 b"), Step::Recv));
        assert!(matches!(d.on_data(b"ye\r\n"), Step::Finish(Ok(_))));
    }

    #[test]
    fn closing_before_answering_quit_fails() {
        let mut d = SmtpDialog::new("x");
        let _ = d.on_data(b"220 hi\r\n");
        let _ = d.on_data(b"250 ok\r\n");
        assert_eq!(failure(d.on_eof()), Some(SmtpError::Closed));
    }

    #[test]
    fn rejects_bad_codes_and_garbage() {
        let mut d = SmtpDialog::new("x");
        assert_eq!(
            failure(d.on_data(b"554 go away\r\n")),
            Some(SmtpError::BadGreeting(Some(554)))
        );
        let mut d = SmtpDialog::new("x");
        assert_eq!(
            failure(d.on_data(b"hello\r\n")),
            Some(SmtpError::BadGreeting(None))
        );
        let mut d = SmtpDialog::new("x");
        let _ = d.on_data(b"220 hi\r\n");
        assert_eq!(
            failure(d.on_data(b"+50 no\r\n")),
            Some(SmtpError::BadHelo(None))
        );
        let mut d = SmtpDialog::new("x");
        let long = vec![b'2'; MAX_REPLY_BYTES + 1];
        assert_eq!(failure(d.on_data(&long)), Some(SmtpError::ReplyTooLong));
    }
}
