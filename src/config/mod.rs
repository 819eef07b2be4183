//! The keepalived.conf language: lexer -> block tree -> typed model, with
//! every problem collected as a diagnostic carrying file:line:col.

pub mod diag;
pub mod dump;
mod finalize;
mod keywords;
pub mod lexer;
pub mod model;
pub mod parser;
mod sequence;
mod values;

pub use diag::{Diagnostic, Diagnostics, Severity, Span, Spanned};
pub use lexer::LoadOptions;
pub use model::Config;

use std::path::{Path, PathBuf};

/// The result of reading a configuration: the effective model (as complete as
/// the input allowed) and every problem found.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub diagnostics: Diagnostics,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.has_errors()
    }
}

#[derive(Debug)]
pub enum LoadError {
    /// The main configuration file cannot be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Read { path, source } => write!(
                f,
                "cannot read configuration file '{}': {}",
                path.display(),
                source
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads `path` and everything it includes.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut diagnostics = Diagnostics::default();
    let sink = lexer::lex_file_into(path, options, ModelSink::new(), &mut diagnostics).map_err(
        |source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        },
    )?;
    Ok(sink.finish(options, diagnostics))
}

/// Reads configuration text; `name` is used in diagnostics.
pub fn load_str(name: &str, text: &str, options: &LoadOptions) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    let sink = lexer::lex_str_into(name, text, options, ModelSink::new(), &mut diagnostics);
    sink.finish(options, diagnostics)
}

/// Tokens -> tree -> model, one top-level block at a time, so a large
/// configuration never exists as a whole token stream or tree in memory.
struct ModelSink {
    tree: parser::TreeBuilder,
    top: keywords::TopLevel,
    table: &'static [keywords::Kw<keywords::TopLevel>],
}

impl ModelSink {
    fn new() -> Self {
        ModelSink {
            tree: parser::TreeBuilder::default(),
            top: keywords::TopLevel {
                config: Config::default(),
                instances: Vec::new(),
            },
            table: keywords::TOP_LEVEL,
        }
    }

    fn finish(self, options: &LoadOptions, mut diagnostics: Diagnostics) -> Loaded {
        let ModelSink {
            tree,
            mut top,
            table,
        } = self;
        let rest = tree.finish(&mut diagnostics);
        keywords::apply(&mut top, "the top level", &rest, table, &mut diagnostics);
        let config = finalize::finalize(top, &options.hostname, &mut diagnostics);
        diagnostics.sort_by_place();
        Loaded {
            config,
            diagnostics,
        }
    }
}

impl lexer::TokenSink for ModelSink {
    fn token(&mut self, tok: lexer::Tok, diags: &mut Diagnostics) {
        self.tree.token(tok, diags);
        let done: Vec<parser::Node> = self.tree.take_completed().collect();
        if !done.is_empty() {
            keywords::apply(&mut self.top, "the top level", &done, self.table, diags);
        }
    }
}

/// keepalived's default configuration path: /etc/keepalived.conf if present,
/// else /etc/keepalived/keepalived.conf.
pub fn default_config_path() -> PathBuf {
    let primary = Path::new("/etc/keepalived.conf");
    if primary.exists() {
        primary.to_path_buf()
    } else {
        PathBuf::from("/etc/keepalived/keepalived.conf")
    }
}
