//! Replays the inputs in tests/data/fuzz-regressions/ (minimized failures
//! found by the cargo-fuzz targets in tests/fuzz/) through the same checks as
//! the `config_load` fuzz target, on the stable toolchain:
//!
//! * `load_str` must not panic;
//! * if the load has no errors, the `-d` dump must load again without errors
//!   and give an equal `Config`.
//!
//! Like the fuzz target, inputs that are not UTF-8 or that contain "include"
//! are skipped. Every file is checked (panics are caught, and an input that
//! takes longer than `TIME_LIMIT` counts as a failure, like a fuzzer timeout;
//! its worker thread is abandoned) and all failures are reported together.

use keepalived_rs::config::{dump::dump, load_str, LoadOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The fuzz targets run with `-timeout=2` in an optimized build; an
/// unoptimized test build gets more room.
const TIME_LIMIT: Duration = Duration::from_secs(10);

fn options() -> LoadOptions {
    LoadOptions {
        config_id: "fuzz".into(),
        hostname: "fuzzhost".into(),
    }
}

fn regression_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

/// `Err(description)` when the input violates a property.
fn check(text: &str) -> Result<(), String> {
    let options = options();
    let first = load_str("fuzz.conf", text, &options);
    if first.has_errors() {
        return Ok(());
    }
    let dumped = dump(&first.config);
    let second = load_str("dump.conf", &dumped, &options);
    if second.has_errors() {
        let errors: Vec<String> = second.diagnostics.errors().map(|d| d.to_string()).collect();
        return Err(format!(
            "the dump does not load cleanly: {errors:#?}\n--- dump ---\n{dumped}"
        ));
    }
    if second.config != first.config {
        return Err(format!(
            "the reloaded dump differs from the original\n--- dump ---\n{dumped}\n--- dump of reload ---\n{}",
            dump(&second.config)
        ));
    }
    Ok(())
}

#[test]
fn fuzz_regressions_load_and_round_trip() {
    let mut failures = Vec::new();
    let files = regression_files();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if text.contains("include") {
            continue;
        }
        let (send, receive) = mpsc::channel();
        let owned = text.to_string();
        std::thread::spawn(move || {
            let _ = send.send(catch_unwind(AssertUnwindSafe(|| check(&owned))));
        });
        match receive.recv_timeout(TIME_LIMIT) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(problem))) => failures.push(format!("{name}: {problem}")),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "<non-string panic>".into());
                failures.push(format!("{name}: panicked: {message}"));
            }
            Err(_) => failures.push(format!("{name}: did not finish within {TIME_LIMIT:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fuzz regression inputs fail:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
