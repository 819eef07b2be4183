//! SMTP_CHECK as data: wait for the 220 greeting, send `HELO name`, expect
//! 250, then say QUIT and finish (keepalived's check_smtp.c sequence).

use super::dialog::{ProbeError, ProbeSuccess, Step};

/// Longest reply (all lines of a multi-line reply) we buffer.
const MAX_REPLY_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    Helo,
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
        let code = match complete_reply(&self.buf) {
            Ok(Some(code)) => code,
            Ok(None) if self.buf.len() > MAX_REPLY_BYTES => {
                return fail("SMTP reply too long".into());
            }
            Ok(None) => return Step::Recv,
            Err(why) => return fail(why.into()),
        };
        self.buf.clear();
        match (self.stage, code) {
            (Stage::Greeting, 220) => {
                self.stage = Stage::Helo;
                Step::Send(format!("HELO {}\r\n", self.helo_name).into_bytes())
            }
            (Stage::Helo, 250) => {
                Step::SendAndFinish(b"QUIT\r\n".to_vec(), Ok(ProbeSuccess::default()))
            }
            (Stage::Greeting, c) => fail(format!("SMTP greeting code {c}, expected 220")),
            (Stage::Helo, c) => fail(format!("SMTP HELO reply code {c}, expected 250")),
        }
    }
}

fn fail(why: String) -> Step {
    Step::Finish(Err(ProbeError::Protocol(why)))
}

/// The code of a complete reply (last line `NNN ` or `NNN`), `None` while
/// incomplete.
fn complete_reply(buf: &[u8]) -> Result<Option<u16>, &'static str> {
    let mut rest = buf;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        rest = &rest[end + 1..];
        let code = line
            .get(..3)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or("malformed SMTP reply")?;
        match line.get(3) {
            Some(b'-') => continue,
            None | Some(b' ') => return Ok(Some(code)),
            Some(_) => return Err("malformed SMTP reply"),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_helo_quit() {
        let mut d = SmtpDialog::new("probe.example");
        assert!(matches!(d.on_data(b"220-mail ESMTP\r\n"), Step::Recv));
        match d.on_data(b"220 ready\r\n") {
            Step::Send(b) => assert_eq!(b, b"HELO probe.example\r\n"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(d.on_data(b"25"), Step::Recv));
        assert!(matches!(
            d.on_data(b"0 hello\r\n"),
            Step::SendAndFinish(_, Ok(_))
        ));
    }

    #[test]
    fn rejects_bad_codes_and_garbage() {
        let mut d = SmtpDialog::new("x");
        assert!(matches!(
            d.on_data(b"554 go away\r\n"),
            Step::Finish(Err(_))
        ));
        let mut d = SmtpDialog::new("x");
        assert!(matches!(d.on_data(b"hello\r\n"), Step::Finish(Err(_))));
        let mut d = SmtpDialog::new("x");
        let long = vec![b'2'; MAX_REPLY_BYTES + 1];
        assert!(matches!(d.on_data(&long), Step::Finish(Err(_))));
    }
}
