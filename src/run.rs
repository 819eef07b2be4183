//! Running the daemon (placeholder until the daemon shell lands).

use crate::cli::Options;
use std::path::Path;

pub fn run_daemon(_options: &Options, _path: &Path) -> i32 {
    eprintln!("keepalived: daemon mode not wired yet");
    1
}
