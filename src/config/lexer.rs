//! Source loading and tokenizing, keepalived's way: line based, with
//! `include` (globs, relative to the including file), `@id` / `@^id`
//! conditional lines, `$NAME=value` definitions and `$NAME` / `${NAME}`
//! substitution, `#` and `!` comments, `"quoted strings"`, and braces split
//! off words. Produces a flat token stream with an end-of-line marker per
//! logical line; `parser` builds the block tree from it.

use super::diag::{Diagnostics, Span};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Include nesting deeper than this is treated as a loop gone wrong.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Recursive `$NAME` expansion stops here (a definition may refer to itself).
const MAX_SUBSTITUTION_DEPTH: usize = 16;
/// A line after `$NAME` substitution; definitions that double at every
/// level would otherwise grow exponentially.
const MAX_EXPANDED_LINE: usize = 1 << 20;
/// No configuration file legitimately has more tokens than this.
const MAX_TOKENS: usize = 20_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokKind {
    Word,
    Open,
    Close,
    EndOfLine,
}

#[derive(Clone, Debug)]
pub struct Tok {
    pub kind: TokKind,
    pub text: String,
    /// Written in double quotes: never a keyword or a brace.
    pub quoted: bool,
    pub span: Span,
}

/// Settings that change what a configuration means.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `-i/--config-id`; selects `@id` lines. keepalived's default is the host
    /// name up to the first dot.
    pub config_id: String,
    /// Default of `router_id`.
    pub hostname: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        LoadOptions {
            config_id: hostname.split('.').next().unwrap_or_default().to_string(),
            hostname,
        }
    }
}

/// Characters keepalived itself treats as white space.
fn is_ascii_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r' | '\n')
}

/// Unicode spaces that blog posts and word processors put into configs. Real
/// keepalived reads them as part of a word; we read them as space and warn.
fn is_foreign_space(c: char) -> bool {
    matches!(
        c,
        '\u{a0}' | '\u{2000}'..='\u{200b}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

fn is_space(c: char) -> bool {
    is_ascii_space(c) || is_foreign_space(c)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Foreign spaces seen in one file, reported once per file.
struct ForeignSpaces {
    first: Span,
    first_char: char,
    lines: u32,
}

/// Where tokens go as they are produced: a `Vec` in tests, the tree builder
/// in production (so the whole token stream never sits in memory).
pub trait TokenSink {
    fn token(&mut self, tok: Tok, diags: &mut Diagnostics);
}

impl TokenSink for Vec<Tok> {
    fn token(&mut self, tok: Tok, _: &mut Diagnostics) {
        self.push(tok);
    }
}

pub struct Lexer<'o, S: TokenSink> {
    options: &'o LoadOptions,
    definitions: HashMap<String, String>,
    /// (canonical identity, path as written) of each file being read.
    include_stack: Vec<(PathBuf, PathBuf)>,
    sink: S,
    /// Tokens emitted so far.
    count: usize,
    /// A line has tokens but no end-of-line marker yet.
    line_open: bool,
    too_many_tokens: bool,
}

/// Tokenize `path` and everything it includes into `sink`.
pub fn lex_file_into<S: TokenSink>(
    path: &Path,
    options: &LoadOptions,
    sink: S,
    diags: &mut Diagnostics,
) -> Result<S, std::io::Error> {
    let text = read_text(path)?;
    let mut lexer = Lexer::new(options, sink);
    lexer.enter_file(path, &text, diags);
    Ok(lexer.sink)
}

/// Tokenize text that did not come from a file (tests, fuzzing) into `sink`.
/// Includes are resolved relative to the current directory.
pub fn lex_str_into<S: TokenSink>(
    name: &str,
    text: &str,
    options: &LoadOptions,
    sink: S,
    diags: &mut Diagnostics,
) -> S {
    let mut lexer = Lexer::new(options, sink);
    lexer.enter_file(Path::new(name), text, diags);
    lexer.sink
}

pub fn lex_file(
    path: &Path,
    options: &LoadOptions,
    diags: &mut Diagnostics,
) -> Result<Vec<Tok>, std::io::Error> {
    lex_file_into(path, options, Vec::new(), diags)
}

pub fn lex_str(name: &str, text: &str, options: &LoadOptions, diags: &mut Diagnostics) -> Vec<Tok> {
    lex_str_into(name, text, options, Vec::new(), diags)
}

fn read_text(path: &Path) -> Result<String, std::io::Error> {
    let bytes = fs::read(path)?;
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

impl<'o, S: TokenSink> Lexer<'o, S> {
    fn new(options: &'o LoadOptions, sink: S) -> Self {
        Lexer {
            options,
            definitions: HashMap::new(),
            include_stack: Vec::new(),
            sink,
            count: 0,
            line_open: false,
            too_many_tokens: false,
        }
    }

    fn enter_file(&mut self, path: &Path, text: &str, diags: &mut Diagnostics) {
        let identity = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.include_stack.push((identity, path.to_path_buf()));
        let file: Rc<str> = Rc::from(path.to_string_lossy().as_ref());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.lex_lines(text, &file, &dir, diags);
        self.include_stack.pop();
    }

    fn lex_lines(&mut self, text: &str, file: &Rc<str>, dir: &Path, diags: &mut Diagnostics) {
        let lines: Vec<&str> = text.split('\n').collect();
        let mut foreign: Option<ForeignSpaces> = None;
        let mut index = 0;
        while index < lines.len() {
            let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let raw = lines[index].strip_suffix('\r').unwrap_or(lines[index]);
            index += 1;

            let Some((body, col0)) = self.select_conditional(raw) else {
                continue;
            };
            if let Some((name, mut value)) = parse_definition(body) {
                // A trailing backslash continues a definition on the next line;
                // the pieces become separate lines when the name is used.
                while value.ends_with('\\') && index < lines.len() {
                    value.pop();
                    value.push('\n');
                    value.push_str(lines[index].strip_suffix('\r').unwrap_or(lines[index]));
                    index += 1;
                }
                self.definitions.insert(name, value);
                continue;
            }
            let expanded;
            let body = if body.contains('$') {
                let mut budget = MAX_EXPANDED_LINE;
                match self.substitute(body, dir, &mut Vec::new(), &mut budget) {
                    Ok(text) => {
                        expanded = text;
                        expanded.as_str()
                    }
                    Err(()) => {
                        diags.error(
                            &Span::new(file, line_no, col0 + 1),
                            format!("$NAME substitution expands this line beyond {MAX_EXPANDED_LINE} bytes; line ignored"),
                        );
                        continue;
                    }
                }
            } else {
                body
            };
            for piece in body.split('\n') {
                if let Some((keyword, pattern)) = split_include(piece, file, line_no, col0) {
                    self.include(&keyword, pattern, dir, diags);
                    continue;
                }
                let continued = self.tokenize_line(piece, file, line_no, col0, &mut foreign, diags);
                if self.line_open && !continued {
                    self.end_line(Span::new(file, line_no, 0), diags);
                }
            }
        }
        // A continuation on the last line still ends that line.
        if self.line_open {
            let line = u32::try_from(lines.len()).unwrap_or(u32::MAX);
            self.end_line(Span::new(file, line, 0), diags);
        }
        if let Some(f) = foreign {
            diags.warning(
                &f.first,
                format!(
                    "U+{:04X} ({}) used as white space on {} line{} of this file; \
                     read as a space (real keepalived would read it as part of a word)",
                    u32::from(f.first_char),
                    if f.first_char == '\u{a0}' {
                        "non-breaking space"
                    } else {
                        "unicode space"
                    },
                    f.lines,
                    if f.lines == 1 { "" } else { "s" }
                ),
            );
        }
    }

    fn push(&mut self, tok: Tok, diags: &mut Diagnostics) {
        if self.count < MAX_TOKENS {
            self.count += 1;
            self.line_open = tok.kind != TokKind::EndOfLine;
            self.sink.token(tok, diags);
        } else {
            self.too_many_tokens = true;
        }
    }

    fn end_line(&mut self, span: Span, diags: &mut Diagnostics) {
        self.push(
            Tok {
                kind: TokKind::EndOfLine,
                text: String::new(),
                quoted: false,
                span,
            },
            diags,
        );
    }

    /// Applies `@id` / `@^id`: returns the rest of the line and the column
    /// where it starts, or `None` when the line is for another config id.
    fn select_conditional<'l>(&self, raw: &'l str) -> Option<(&'l str, u32)> {
        let trimmed = raw.trim_start_matches(is_space);
        let Some(rest) = trimmed.strip_prefix('@') else {
            return Some((raw, 0));
        };
        let (negated, rest) = match rest.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let id_end = rest.find(is_space).unwrap_or(rest.len());
        let matches = rest[..id_end] == *self.options.config_id;
        if matches == negated {
            return None;
        }
        let body = &rest[id_end..];
        let col0 = raw.len() - body.len();
        Some((
            body,
            u32::try_from(raw[..col0].chars().count()).unwrap_or(0),
        ))
    }

    /// Replaces `$NAME` and `${NAME}` with their definitions; unknown names
    /// stay as written, like keepalived. A name is never expanded inside its
    /// own expansion (`$A=$A$A` stays finite), and the result is bounded by
    /// `budget` bytes; `Err` when a definition would expand beyond it.
    fn substitute(
        &self,
        text: &str,
        dir: &Path,
        expanding: &mut Vec<String>,
        budget: &mut usize,
    ) -> Result<String, ()> {
        let mut out = String::with_capacity(text.len().min(*budget));
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .char_indices()
                    .find(|&(i, c)| !(is_name_char(c) && (i > 0 || is_name_start(c))))
                    .map_or(after.len(), |(i, _)| i);
                (&after[..end], end)
            };
            let value = match name {
                "" => None,
                _ if expanding.iter().any(|n| n == name) => None,
                "_PWD" => Some(dir.to_string_lossy().into_owned()),
                "_INSTANCE" => Some(self.options.config_id.clone()),
                _ => self.definitions.get(name).cloned(),
            };
            match value {
                Some(v) if expanding.len() < MAX_SUBSTITUTION_DEPTH => {
                    expanding.push(name.to_string());
                    let expanded = self.substitute(&v, dir, expanding, budget);
                    expanding.pop();
                    out.push_str(&expanded?);
                    rest = &after[consumed..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
            *budget = budget.checked_sub(pos + 1).ok_or(())?;
        }
        *budget = budget.checked_sub(rest.len()).ok_or(())?;
        out.push_str(rest);
        Ok(out)
    }

    /// Splits one line into tokens. Returns true when the line ends with a
    /// backslash, i.e. the next line continues it.
    fn tokenize_line(
        &mut self,
        line: &str,
        file: &Rc<str>,
        line_no: u32,
        col0: u32,
        foreign: &mut Option<ForeignSpaces>,
        diags: &mut Diagnostics,
    ) -> bool {
        let chars: Vec<char> = line.chars().collect();
        let span_at = |i: usize| Span::new(file, line_no, col0 + u32::try_from(i + 1).unwrap_or(0));
        let mut saw_foreign = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if is_foreign_space(c) {
                if !saw_foreign {
                    saw_foreign = true;
                    match foreign {
                        Some(f) => f.lines += 1,
                        None => {
                            *foreign = Some(ForeignSpaces {
                                first: span_at(i),
                                first_char: c,
                                lines: 1,
                            })
                        }
                    }
                }
                i += 1;
                continue;
            }
            if is_ascii_space(c) {
                i += 1;
                continue;
            }
            match c {
                '#' | '!' => return false,
                '{' | '}' => {
                    self.push(
                        Tok {
                            kind: if c == '{' {
                                TokKind::Open
                            } else {
                                TokKind::Close
                            },
                            text: c.to_string(),
                            quoted: false,
                            span: span_at(i),
                        },
                        diags,
                    );
                    i += 1;
                }
                '\\' if chars[i + 1..].iter().all(|&c| is_space(c)) => return true,
                '"' => {
                    let start = i;
                    let mut text = String::new();
                    i += 1;
                    let mut closed = false;
                    while i < chars.len() {
                        match chars[i] {
                            '"' => {
                                closed = true;
                                i += 1;
                                break;
                            }
                            // Keep the escape: scripts are split later and
                            // need to see it.
                            '\\' if i + 1 < chars.len() => {
                                text.push('\\');
                                text.push(chars[i + 1]);
                                i += 2;
                            }
                            other => {
                                text.push(other);
                                i += 1;
                            }
                        }
                    }
                    if !closed {
                        diags.error(
                            &span_at(start),
                            "unterminated quoted string: expected a closing '\"' on this line",
                        );
                    }
                    self.push(
                        Tok {
                            kind: TokKind::Word,
                            text,
                            quoted: true,
                            span: span_at(start),
                        },
                        diags,
                    );
                }
                _ => {
                    let start = i;
                    let mut text = String::new();
                    while i < chars.len() {
                        let c = chars[i];
                        if is_space(c) || matches!(c, '{' | '}' | '#' | '!' | '"') {
                            break;
                        }
                        if c == '\\' && matches!(chars.get(i + 1), Some('#' | '!')) {
                            text.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        text.push(c);
                        i += 1;
                    }
                    self.push(
                        Tok {
                            kind: TokKind::Word,
                            text,
                            quoted: false,
                            span: span_at(start),
                        },
                        diags,
                    );
                }
            }
        }
        false
    }

    fn include(
        &mut self,
        keyword: &Span,
        pattern_tok: Option<Tok>,
        dir: &Path,
        diags: &mut Diagnostics,
    ) {
        let Some(pattern_tok) = pattern_tok else {
            diags.error(keyword, "include: expected a file name or glob pattern");
            return;
        };
        if self.include_stack.len() >= MAX_INCLUDE_DEPTH {
            diags.error(
                &pattern_tok.span,
                format!("include: nesting deeper than {MAX_INCLUDE_DEPTH} files"),
            );
            return;
        }
        let pattern = dir.join(&pattern_tok.text);
        let has_magic = pattern_tok.text.contains(['*', '?', '[', '{']);
        let paths = if has_magic {
            let found = glob(&pattern);
            if found.is_empty() {
                diags.warning(
                    &pattern_tok.span,
                    format!("include: pattern '{}' matched no files", pattern.display()),
                );
            }
            found
        } else {
            vec![pattern]
        };
        for path in paths {
            let identity = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if self.include_stack.iter().any(|(id, _)| *id == identity) {
                diags.error(
                    &pattern_tok.span,
                    format!(
                        "include loop: '{}' is already being read (include chain: {})",
                        path.display(),
                        self.include_stack
                            .iter()
                            .map(|(_, shown)| shown.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" -> ")
                    ),
                );
                continue;
            }
            match read_text(&path) {
                Ok(text) => self.enter_file(&path, &text, diags),
                Err(e) => diags.error(
                    &pattern_tok.span,
                    format!("include: cannot read '{}': {}", path.display(), e),
                ),
            }
        }
        if self.too_many_tokens {
            diags.error(keyword, "configuration too large");
        }
    }
}

/// An `include PATTERN` line. Taken raw, not tokenized: glob patterns may
/// hold `{a,b}` braces. Returns the keyword's place and the pattern.
fn split_include(
    line: &str,
    file: &Rc<str>,
    line_no: u32,
    col0: u32,
) -> Option<(Span, Option<Tok>)> {
    let rest = line.trim_start_matches(is_space);
    let indent = line.len() - rest.len();
    let keyword_len = rest.find(is_space).unwrap_or(rest.len());
    if !matches!(
        &rest[..keyword_len],
        "include" | "includea" | "includeb" | "includem" | "includer" | "includew"
    ) {
        return None;
    }
    let col_of = |byte: usize| col0 + u32::try_from(line[..byte].chars().count() + 1).unwrap_or(0);
    let keyword = Span::new(file, line_no, col_of(indent));
    let after = &rest[keyword_len..];
    let arg = after.trim_start_matches(is_space);
    let arg_start = line.len() - arg.len();
    let text = if let Some(quoted) = arg.strip_prefix('"') {
        quoted.split('"').next().unwrap_or_default().to_string()
    } else {
        let end = arg
            .find(|c: char| is_space(c) || c == '#' || c == '!')
            .unwrap_or(arg.len());
        arg[..end].to_string()
    };
    let pattern = (!text.is_empty()).then(|| Tok {
        kind: TokKind::Word,
        text,
        quoted: false,
        span: Span::new(file, line_no, col_of(arg_start)),
    });
    Some((keyword, pattern))
}

/// `$NAME=value` at the start of a line.
fn parse_definition(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start_matches(is_space).strip_prefix('$')?;
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(is_name_char(c) && (i > 0 || is_name_start(c))))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let value = rest[name_len..].strip_prefix('=')?;
    Some((rest[..name_len].to_string(), value.trim().to_string()))
}

/// Expands `{a,b}` alternatives, then `*`, `?` and `[...]` per path
/// component. Results are sorted; a leading dot is only matched explicitly.
pub fn glob(pattern: &Path) -> Vec<PathBuf> {
    let text = pattern.to_string_lossy();
    let mut out = Vec::new();
    for alternative in expand_braces(&text, 0) {
        let mut current = vec![PathBuf::from(if alternative.starts_with('/') {
            "/"
        } else {
            ""
        })];
        for component in alternative.split('/').filter(|c| !c.is_empty()) {
            let mut next = Vec::new();
            for base in &current {
                if !component.contains(['*', '?', '[']) {
                    next.push(base.join(component));
                    continue;
                }
                let listing = if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base
                };
                let Ok(entries) = fs::read_dir(listing) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| wildcard_match(component, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            }
            current = next;
        }
        out.extend(current.into_iter().filter(|p| p.exists()));
    }
    out.sort();
    out.dedup();
    out
}

fn expand_braces(text: &str, depth: usize) -> Vec<String> {
    let Some(open) = text.find('{') else {
        return vec![text.to_string()];
    };
    let mut level = 0;
    let mut close = None;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => level += 1,
            '}' => {
                level -= 1;
                if level == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![text.to_string()];
    };
    if depth > 8 {
        return vec![text.to_string()];
    }
    let (head, inner, tail) = (&text[..open], &text[open + 1..close], &text[close + 1..]);
    let mut parts = Vec::new();
    let mut level = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => level += 1,
            '}' => level -= 1,
            ',' if level == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .flat_map(|p| expand_braces(&format!("{head}{p}{tail}"), depth + 1))
        .collect()
}

/// Shell wildcard match of one path component.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point for the last '*'.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = match_class(&p[pi..], n[ni]) {
                        if matched {
                            pi += len;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `[abc]`, `[a-z]`, `[!x]`; returns (matched, pattern length) or
/// `None` when the class is not closed.
fn match_class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, id: &str) -> (Vec<String>, Diagnostics) {
        let mut diags = Diagnostics::default();
        let options = LoadOptions {
            config_id: id.to_string(),
            hostname: "host".to_string(),
        };
        let toks = lex_str("t.conf", text, &options, &mut diags);
        let out = toks
            .iter()
            .map(|t| match t.kind {
                TokKind::EndOfLine => "\\n".to_string(),
                _ => t.text.clone(),
            })
            .collect();
        (out, diags)
    }

    #[test]
    fn braces_comments_quotes() {
        let (w, d) = words("a{b}c # x\n! whole line\nd \"e f\" g!h\n", "x");
        assert_eq!(w, ["a", "{", "b", "}", "c", "\\n", "d", "e f", "g", "\\n"]);
        assert!(d.items.is_empty());
    }

    #[test]
    fn nbsp_is_space_with_one_warning() {
        let (w, d) = words("\u{a0}\u{a0}a\u{a0}b\n\u{a0}c\n", "x");
        assert_eq!(w, ["a", "b", "\\n", "c", "\\n"]);
        assert_eq!(d.items.len(), 1);
        assert_eq!(d.items[0].span.to_string(), "t.conf:1:1");
        assert!(
            d.items[0].message.contains("U+00A0"),
            "{}",
            d.items[0].message
        );
        assert!(
            d.items[0].message.contains("2 lines"),
            "{}",
            d.items[0].message
        );
    }

    #[test]
    fn conditionals_and_definitions() {
        let text =
            "@high priority 200\n@^high priority 100\n$IF=eth9\ninterface $IF ${IF}x $NOPE\n";
        let (w, _) = words(text, "high");
        assert_eq!(
            w,
            [
                "priority",
                "200",
                "\\n",
                "interface",
                "eth9",
                "eth9x",
                "$NOPE",
                "\\n"
            ]
        );
        let (w, _) = words(text, "low");
        assert_eq!(w[..3], ["priority", "100", "\\n"]);
    }

    #[test]
    fn multiline_definition_and_continuation() {
        let (w, _) = words("$B=a 1 \\\nb 2\n$B\nx \\\n y\n", "x");
        assert_eq!(w, ["a", "1", "\\n", "b", "2", "\\n", "x", "y", "\\n"]);
    }

    #[test]
    fn self_referencing_definition_terminates() {
        // Found by fuzzing: each level tripled the line.
        let (w, d) = words("$I=$I$I$I\n$I\n", "x");
        assert_eq!(w, ["$I$I$I", "\\n"]);
        assert!(d.items.is_empty());
    }

    #[test]
    fn exponential_definitions_are_bounded() {
        let mut text = String::from("$D0=xxxxxxxxxxxxxxxx\n");
        for i in 1..16 {
            text.push_str(&format!("$D{i}=$D{p} $D{p} $D{p} $D{p}\n", p = i - 1));
        }
        text.push_str("a $D15\nb\n");
        let (w, d) = words(&text, "x");
        assert_eq!(w, ["b", "\\n"]);
        let e: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("t.conf:17:1: error: $NAME substitution expands this line beyond"),
            "{e:?}"
        );
    }

    #[test]
    fn unterminated_quote() {
        let (_, d) = words("a \"b c\n", "x");
        assert!(d.has_errors());
        assert_eq!(d.items[0].span.to_string(), "t.conf:1:3");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.conf", "a.conf"));
        assert!(!wildcard_match("*.conf", ".a.conf"));
        assert!(wildcard_match("vi_[0-9].c?nf", "vi_3.conf"));
        assert!(!wildcard_match("vi_[!0-9]*", "vi_3"));
        assert!(wildcard_match("a*b*c", "aXbYbc"));
        assert_eq!(expand_braces("x{a,b{1,2}}y", 0), ["xay", "xb1y", "xb2y"]);
    }

    #[test]
    fn includes_globs_and_loops() {
        let dir = std::env::temp_dir().join(format!("kars-lex-{}", std::process::id()));
        let sub = dir.join("conf.d");
        fs::create_dir_all(&sub).unwrap();
        fs::write(
            dir.join("main.conf"),
            "top\ninclude conf.d/*.conf\ninclude main.conf\n",
        )
        .unwrap();
        fs::write(sub.join("b.conf"), "bee\n").unwrap();
        fs::write(sub.join("a.conf"), "ay\ninclude ../conf.d/{a,b}.conf\n").unwrap();
        let mut diags = Diagnostics::default();
        let toks = lex_file(&dir.join("main.conf"), &LoadOptions::default(), &mut diags).unwrap();
        let w: Vec<&str> = toks
            .iter()
            .filter(|t| t.kind == TokKind::Word)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(w, ["top", "ay", "bee", "bee"]);
        let errors: Vec<String> = diags.errors().map(|d| d.to_string()).collect();
        // a.conf includes itself through the brace pattern; main includes itself.
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| e.contains("include loop")));
        fs::remove_dir_all(&dir).unwrap();
    }
}
