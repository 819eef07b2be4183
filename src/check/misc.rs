//! MISC_CHECK verdicts from the script's exit (keepalived.conf(5)):
//! exit 0 passes, 1 fails; with `misc_dynamic`, 2..=255 pass and set the
//! real server's weight to `code - 2`; without it any non-zero code fails.
//! A script that is killed, times out or cannot run fails.

use super::dialog::{Outcome, ProbeError, ProbeSuccess};
use crate::daemon::ChildStatus;

pub fn verdict(status: ChildStatus, dynamic: bool) -> Outcome {
    match status {
        ChildStatus::Exited(0) => Ok(ProbeSuccess { weight: None }),
        ChildStatus::Exited(code @ 2..=255) if dynamic => Ok(ProbeSuccess {
            weight: Some(code as u32 - 2),
        }),
        ChildStatus::Exited(code) => Err(ProbeError::Script(format!("exited with status {code}"))),
        ChildStatus::Signaled(sig) => Err(ProbeError::Script(format!("due to signal {sig}"))),
        ChildStatus::TimedOut => Err(ProbeError::Script("timed out".into())),
        ChildStatus::Lost => Err(ProbeError::Script("exit status lost".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(
            verdict(ChildStatus::Exited(0), false).ok(),
            Some(ProbeSuccess { weight: None })
        );
        assert!(verdict(ChildStatus::Exited(1), true).is_err());
        assert!(verdict(ChildStatus::Exited(2), false).is_err());
        assert_eq!(
            verdict(ChildStatus::Exited(2), true).ok(),
            Some(ProbeSuccess { weight: Some(0) })
        );
        assert_eq!(
            verdict(ChildStatus::Exited(255), true).ok(),
            Some(ProbeSuccess { weight: Some(253) })
        );
        assert!(verdict(ChildStatus::TimedOut, true).is_err());
        assert!(verdict(ChildStatus::Signaled(9), true).is_err());
        assert!(verdict(ChildStatus::Exited(127), false).is_err());
    }
}
