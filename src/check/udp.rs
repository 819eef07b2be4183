//! UDP_CHECK as data: send the payload; with `require_reply`, a reply must
//! come (matching the expected bytes as a prefix, when given) with a length
//! in `[min_reply_length, max_reply_length]`; without it, silence is fine and
//! only an ICMP port unreachable fails the check.

use super::dialog::{Outcome, ProbeError, ProbeSuccess};
use crate::config::model::UdpCheck;

#[derive(Debug, Clone)]
pub struct UdpExchange {
    payload: Vec<u8>,
    require_reply: bool,
    expected: Option<Vec<u8>>,
    min_len: usize,
    max_len: usize,
}

impl UdpExchange {
    pub fn from_config(c: &UdpCheck) -> Self {
        let (require_reply, expected) = match &c.require_reply {
            Some(r) => (true, r.value.clone()),
            None => (false, None),
        };
        UdpExchange {
            payload: c
                .payload
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or_default(),
            require_reply,
            expected,
            min_len: c.min_reply_length.value as usize,
            max_len: c.max_reply_length.value as usize,
        }
    }

    pub fn request(&self) -> Vec<u8> {
        self.payload.clone()
    }

    pub fn on_reply(&self, data: &[u8]) -> Outcome {
        if !self.require_reply {
            return Ok(ProbeSuccess::default());
        }
        if data.len() < self.min_len || data.len() > self.max_len {
            return Err(ProbeError::Protocol(format!(
                "UDP reply of {} bytes, expected {}..={}",
                data.len(),
                self.min_len,
                self.max_len
            )));
        }
        match &self.expected {
            Some(e) if !data.starts_with(e) => {
                Err(ProbeError::Protocol("UDP reply does not match".into()))
            }
            _ => Ok(ProbeSuccess::default()),
        }
    }

    pub fn on_timeout(&self) -> Outcome {
        if self.require_reply {
            Err(ProbeError::ReadTimeout)
        } else {
            Ok(ProbeSuccess::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Spanned;

    fn check(require: Option<Option<Vec<u8>>>) -> UdpExchange {
        UdpExchange::from_config(&UdpCheck {
            payload: Some(Spanned::default_value(b"ping".to_vec())),
            require_reply: require.map(Spanned::default_value),
            min_reply_length: Spanned::default_value(2),
            max_reply_length: Spanned::default_value(8),
        })
    }

    #[test]
    fn reply_rules() {
        let silent = check(None);
        assert_eq!(silent.request(), b"ping");
        assert!(silent.on_timeout().is_ok());
        let any = check(Some(None));
        assert!(any.on_timeout().is_err());
        assert!(any.on_reply(b"ok").is_ok());
        assert!(any.on_reply(b"x").is_err(), "too short");
        assert!(any.on_reply(b"123456789").is_err(), "too long");
        let exact = check(Some(Some(b"po".to_vec())));
        assert!(exact.on_reply(b"pong").is_ok());
        assert!(exact.on_reply(b"nope").is_err());
    }
}
