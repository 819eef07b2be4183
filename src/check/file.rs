//! FILE_CHECK verdicts from a tracked file's value (`track_file`), as
//! keepalived 2.2.7 gives them (measured side by side in the VM; its man
//! page says the real-server side is "not fully implemented yet", and the
//! behaviour is not what the text describes):
//! - weight 0: the value is a status, 0 passes and anything else fails;
//! - any other weight: the check always passes and the real server's IPVS
//!   weight becomes its configured weight plus value × weight (negated with
//!   `reverse`), floored at 0: the server stays in the table, at weight 0
//!   if need be. FILE_CHECK's `dynamic` is not needed (2.2.7 does not know
//!   the keyword).
//!
//! A value outside the 32-bit range keepalived reads is ignored: the weight
//! stays as it was. Text without a number reads as 0, as strtol does.

use super::dialog::{Outcome, ProbeError, ProbeSuccess};

/// Files are read with this cap; a value never needs more.
pub const MAX_FILE_BYTES: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRule {
    pub weight: i64,
    pub reverse: bool,
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

/// The verdict for the file's `text`; `current` is the weight the last
/// verdict gave (kept when the value is out of range).
pub fn verdict(rule: FileRule, text: &str, current: Option<u32>) -> Outcome {
    let value = parse_value(text).unwrap_or(0);
    let in_range = i32::try_from(value).is_ok();
    if rule.weight == 0 {
        return if value == 0 {
            Ok(ProbeSuccess::default())
        } else {
            Err(ProbeError::File(format!("tracked file value {value}")))
        };
    }
    if !in_range {
        return Ok(ProbeSuccess { weight: current });
    }
    let delta = value.saturating_mul(rule.weight);
    let delta = if rule.reverse {
        delta.saturating_neg()
    } else {
        delta
    };
    let total = i64::from(rule.base_weight).saturating_add(delta).max(0);
    Ok(ProbeSuccess {
        weight: Some(u32::try_from(total).unwrap_or(u32::MAX)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(weight: i64, reverse: bool) -> FileRule {
        FileRule {
            weight,
            reverse,
            base_weight: 5,
        }
    }

    fn weight(rule: FileRule, text: &str) -> Option<u32> {
        verdict(rule, text, Some(19)).ok().and_then(|s| s.weight)
    }

    #[test]
    fn values() {
        assert_eq!(parse_value(" 42\n"), Some(42));
        assert_eq!(parse_value("-3 apples"), Some(-3));
        assert_eq!(parse_value("x"), None);
    }

    /// The weights keepalived 2.2.7 programmed for a real server of weight
    /// 5 as the file went 0, 5, -1, -7, -3000000000 (tests/check_vm.rs
    /// `file_check_matches_keepalived` compares the two daemons live).
    #[test]
    fn weights_as_keepalived_2_2_7_sets_them() {
        let values = ["0", "5", "-1", "-7"];
        let table =
            |r: FileRule| -> Vec<Option<u32>> { values.iter().map(|v| weight(r, v)).collect() };
        assert_eq!(table(rule(1, false)), [Some(5), Some(10), Some(4), Some(0)]);
        assert_eq!(table(rule(2, true)), [Some(5), Some(0), Some(7), Some(19)]);
        assert_eq!(table(rule(3, false)), [Some(5), Some(20), Some(2), Some(0)]);
        // Out of range: the weight stays.
        assert_eq!(weight(rule(2, true), "-3000000000"), Some(19));
        // Weight 0: a status.
        assert!(verdict(rule(0, false), "0\n", None).is_ok());
        assert!(verdict(rule(0, false), "1\n", None).is_err());
        assert!(verdict(rule(0, false), "-3000000000", None).is_err());
        // No number reads as 0, as strtol does.
        assert!(verdict(rule(0, false), "", None).is_ok());
        assert_eq!(weight(rule(1, false), "x"), Some(5));
    }
}
