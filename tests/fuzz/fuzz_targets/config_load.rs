//! Fuzz the whole configuration pipeline (lexer -> block tree -> typed model
//! -> finalize) and the `-d` dump round trip:
//!
//! * `load_str` must never panic on any UTF-8 input;
//! * if the load reports no errors, `dump` of the config must load again
//!   without errors and give an equal `Config`.
//!
//! Non-UTF-8 inputs are skipped (the lexer target covers lossy decoding).
//! Inputs containing the substring "include" are skipped so that the target
//! never reads files from the filesystem; `include` handling is covered by
//! the unit tests in src/config/lexer.rs. (An include spelled through `$VAR`
//! substitution can still slip through; it would only ever *read* a file
//! relative to the working directory.)
#![no_main]

use keepalived_rs::config::dump::dump;
use keepalived_rs::config::{load_str, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("include") {
        return;
    }
    let options = LoadOptions {
        config_id: "fuzz".to_string(),
        hostname: "fuzzhost".to_string(),
    };
    let first = load_str("fuzz.conf", text, &options);
    if first.has_errors() {
        return;
    }
    let dumped = dump(&first.config);
    let second = load_str("dump.conf", &dumped, &options);
    if second.has_errors() {
        let errors: Vec<String> = second.diagnostics.items.iter().map(|d| d.to_string()).collect();
        panic!(
            "round trip: the dump does not load cleanly\n--- input ---\n{text}\n--- dump ---\n{dumped}\n--- errors ---\n{}",
            errors.join("\n")
        );
    }
    if second.config != first.config {
        let redumped = dump(&second.config);
        panic!(
            "round trip: reloaded config differs\n--- input ---\n{text}\n--- dump ---\n{dumped}\n--- dump of reload ---\n{redumped}\n--- first ---\n{:#?}\n--- second ---\n{:#?}",
            first.config, second.config
        );
    }
});
