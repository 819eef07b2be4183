//! The composition root: what `keepalived` does with its parsed command line.

use crate::cli::{self, Options};
use crate::config::{self, LoadOptions, Loaded};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// keepalived's exit codes (keepalived(8)).
pub const EXIT_OK: i32 = 0;
pub const EXIT_CONFIG: i32 = 1;

/// Entry point shared by `keepalived` and `genhash` (argv[0] dispatch).
pub fn main(argv: Vec<OsString>) -> i32 {
    let program = argv
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let rest = argv.get(1..).unwrap_or_default();
    if program == "genhash" {
        return genhash(rest);
    }
    let options = match cli::parse(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("keepalived: {e}");
            eprintln!("Try 'keepalived --help' for the list of options.");
            return EXIT_CONFIG;
        }
    };
    if options.help {
        print!("{}", cli::USAGE);
        return EXIT_OK;
    }
    if options.version {
        println!("{}", cli::version_line());
        return EXIT_OK;
    }
    if let Some(args) = &options.genhash {
        return genhash(args);
    }
    let path = config_path(&options);
    if let Some(report) = &options.config_test {
        return config_test(&path, &options, report.as_deref());
    }
    if options.dump_conf {
        let Some(loaded) = load_and_report(&path, &options, &mut std::io::stderr()) else {
            return EXIT_CONFIG;
        };
        print!("{}", config::dump::dump(&loaded.config));
    }
    crate::run::run_daemon(&options, &path)
}

pub fn config_path(options: &Options) -> PathBuf {
    options
        .config_file
        .clone()
        .unwrap_or_else(config::default_config_path)
}

pub fn load_options(options: &Options) -> LoadOptions {
    let mut o = LoadOptions::default();
    if let Some(id) = &options.config_id {
        o.config_id = id.clone();
    }
    o
}

/// Loads the configuration and writes every diagnostic as
/// `file:line:col: error|warning: message`. `None` when the file is unreadable.
pub fn load_and_report(path: &Path, options: &Options, out: &mut dyn Write) -> Option<Loaded> {
    match config::load_file(path, &load_options(options)) {
        Ok(loaded) => {
            for d in &loaded.diagnostics.items {
                let _ = writeln!(out, "{d}");
            }
            Some(loaded)
        }
        Err(e) => {
            let _ = writeln!(out, "{}: error: {e}", path.display());
            None
        }
    }
}

/// `-t`: every problem listed; exit 1 on any error.
fn config_test(path: &Path, options: &Options, report: Option<&Path>) -> i32 {
    let mut sink: Box<dyn Write> = match report {
        Some(file) => match std::fs::File::create(file) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("keepalived: cannot write '{}': {e}", file.display());
                return EXIT_CONFIG;
            }
        },
        None => Box::new(std::io::stderr()),
    };
    let Some(loaded) = load_and_report(path, options, &mut *sink) else {
        return EXIT_CONFIG;
    };
    if options.dump_conf {
        print!("{}", config::dump::dump(&loaded.config));
    }
    if loaded.has_errors() {
        EXIT_CONFIG
    } else {
        EXIT_OK
    }
}

/// `genhash ...` or `keepalived -T ...`.
fn genhash(args: &[OsString]) -> i32 {
    crate::check::genhash::main(args)
}
