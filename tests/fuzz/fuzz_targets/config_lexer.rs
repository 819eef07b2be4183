//! Fuzz the keepalived.conf lexer: arbitrary bytes (lossily decoded as
//! UTF-8) must never make `lex_str` panic.
//!
//! Inputs containing the substring "include" are skipped so that the target
//! never reads files from the filesystem; `include` handling is covered by
//! the unit tests in src/config/lexer.rs. (An include spelled through `$VAR`
//! substitution can still slip through; it would only ever *read* a file
//! relative to the working directory.)
#![no_main]

use keepalived_rs::config::diag::Diagnostics;
use keepalived_rs::config::lexer::{lex_str, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if text.contains("include") {
        return;
    }
    let options = LoadOptions {
        config_id: "fuzz".to_string(),
        hostname: "fuzzhost".to_string(),
    };
    let mut diagnostics = Diagnostics::default();
    let _ = lex_str("fuzz.conf", &text, &options, &mut diagnostics);
});
