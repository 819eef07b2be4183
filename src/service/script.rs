//! Turning configured scripts (`notify_master "cmd args" [user [group]]`,
//! `vrrp_script { script ... }`) into child process specs.

use std::fmt;
use std::time::Duration;

use crate::config::model::{GlobalDefs, Script};
use crate::daemon::{split_command, ChildSpec, RunAs, RunAsError, SplitError};

#[derive(Debug)]
pub enum ScriptError {
    Split { command: String, source: SplitError },
    User { command: String, source: RunAsError },
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Split { command, source } => write!(f, "script '{command}': {source}"),
            ScriptError::User { command, source } => write!(f, "script '{command}': {source}"),
        }
    }
}

impl std::error::Error for ScriptError {}

/// The child spec for `script` with `extra_args` appended. The script's own
/// user wins over the global `script_user`; without either, the script runs
/// as the daemon's user (keepalived: root when `keepalived_script` does not
/// exist).
pub fn child_spec(
    script: &Script,
    global: &GlobalDefs,
    extra_args: &[String],
    timeout: Option<Duration>,
    owner: u64,
) -> Result<ChildSpec<u64>, ScriptError> {
    let command = &script.command.value;
    let mut argv = split_command(command).map_err(|source| ScriptError::Split {
        command: command.clone(),
        source,
    })?;
    argv.extend(extra_args.iter().cloned());
    let user = script
        .run_as
        .as_ref()
        .or(global.script_user.as_ref().map(|u| &u.value));
    let run_as = match user {
        Some(u) => Some(
            RunAs::from_names(&u.user, u.group.as_deref()).map_err(|source| ScriptError::User {
                command: command.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let mut spec = ChildSpec::new(argv, owner);
    spec.run_as = run_as;
    spec.timeout = timeout;
    Ok(spec)
}
