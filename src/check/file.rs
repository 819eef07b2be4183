//! FILE_CHECK verdicts from a tracked file's value (keepalived.conf(5)
//! `track_file`): the file holds an integer. With weight 0 the value is a
//! status: 0 passes, anything else fails. Otherwise the value times the
//! weight (negated with `reverse`) is added to the real server's weight;
//! the check fails when that leaves it at 0 or less, and with `dynamic` the
//! real server takes the new weight.

use super::dialog::{Outcome, ProbeError, ProbeSuccess};

/// Files are read with this cap; a value never needs more.
pub const MAX_FILE_BYTES: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRule {
    pub weight: i64,
    pub reverse: bool,
    pub dynamic: bool,
    pub base_weight: u32,
}

/// Parses the leading integer of the file (keepalived reads it with strtol).
pub fn parse_value(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().ok()
}

pub fn verdict(rule: FileRule, text: &str) -> Outcome {
    let value = parse_value(text).ok_or_else(|| {
        ProbeError::File(format!("no integer in tracked file ({:?})", text.trim()))
    })?;
    if rule.weight == 0 {
        return if value == 0 {
            Ok(ProbeSuccess::default())
        } else {
            Err(ProbeError::File(format!("tracked file value {value}")))
        };
    }
    let delta = value.saturating_mul(rule.weight);
    let delta = if rule.reverse {
        delta.saturating_neg()
    } else {
        delta
    };
    let total = i64::from(rule.base_weight).saturating_add(delta);
    if total <= 0 {
        return Err(ProbeError::File(format!(
            "tracked file value {value} leaves weight {total}"
        )));
    }
    Ok(ProbeSuccess {
        weight: rule
            .dynamic
            .then(|| u32::try_from(total).unwrap_or(u32::MAX)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(weight: i64, reverse: bool, dynamic: bool) -> FileRule {
        FileRule {
            weight,
            reverse,
            dynamic,
            base_weight: 10,
        }
    }

    #[test]
    fn values() {
        assert_eq!(parse_value(" 42\n"), Some(42));
        assert_eq!(parse_value("-3 apples"), Some(-3));
        assert_eq!(parse_value("x"), None);
        assert!(verdict(rule(0, false, false), "0\n").is_ok());
        assert!(verdict(rule(0, false, false), "1\n").is_err());
        assert!(verdict(rule(0, false, false), "").is_err());
        assert_eq!(
            verdict(rule(2, false, true), "3").ok(),
            Some(ProbeSuccess { weight: Some(16) })
        );
        assert!(verdict(rule(2, false, true), "-5").is_err());
        assert!(verdict(rule(2, true, false), "5").is_err());
        assert_eq!(
            verdict(rule(1, false, false), "5").ok(),
            Some(ProbeSuccess { weight: None })
        );
    }
}
