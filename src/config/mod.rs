//! The keepalived.conf language: lexer -> block tree -> typed model, with
//! every problem collected as a diagnostic carrying file:line:col.

pub mod diag;
pub mod dump;
mod finalize;
mod keywords;
pub mod lexer;
pub mod model;
pub mod parser;
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
    Read { path: PathBuf, source: std::io::Error },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Read { path, source } => write!(f, "cannot read configuration file '{}': {}", path.display(), source),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads `path` and everything it includes.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut diagnostics = Diagnostics::default();
    let tokens = lexer::lex_file(path, options, &mut diagnostics).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(build(&tokens, options, diagnostics))
}

/// Reads configuration text; `name` is used in diagnostics.
pub fn load_str(name: &str, text: &str, options: &LoadOptions) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    let tokens = lexer::lex_str(name, text, options, &mut diagnostics);
    build(&tokens, options, diagnostics)
}

fn build(tokens: &[lexer::Tok], options: &LoadOptions, mut diagnostics: Diagnostics) -> Loaded {
    let tree = parser::parse_tree(tokens, &mut diagnostics);
    let mut top = keywords::TopLevel {
        config: Config::default(),
        instances: Vec::new(),
        servers: Vec::new(),
    };
    keywords::apply(&mut top, "the top level", &tree, &keywords::top_level_table(), &mut diagnostics);
    let config = finalize::finalize(top, &options.hostname, &mut diagnostics);
    diagnostics.sort_by_place();
    Loaded { config, diagnostics }
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
