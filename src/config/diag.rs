//! Diagnostics: every problem found while reading a configuration, with the
//! place it came from. Problems are collected, never fatal on their own.

use std::fmt;
use std::rc::Rc;

/// Where a token came from. `file` is `None` for values the loader filled in
/// from keepalived's defaults.
#[derive(Clone, Debug, Default)]
pub struct Span {
    pub file: Option<Rc<str>>,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(file: &Rc<str>, line: u32, col: u32) -> Span {
        Span {
            file: Some(Rc::clone(file)),
            line,
            col,
        }
    }

    /// True when the value was not written in any file.
    pub fn is_default(&self) -> bool {
        self.file.is_none()
    }
}

/// Places never make two configurations differ (see `Spanned`).
impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Consistent with equality: a place hashes to nothing.
impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file, self.line, self.col),
            None => f.write_str("<default>"),
        }
    }
}

/// A value with the place it was written. Equality ignores the place, so two
/// configurations that mean the same compare equal wherever they came from.
#[derive(Clone, Debug, Default)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    /// A keepalived default, not written anywhere.
    pub fn default_value(value: T) -> Self {
        Spanned {
            value,
            span: Span::default(),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// Hashes the value only, like equality.
impl<T: std::hash::Hash> std::hash::Hash for Spanned<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {}: {}", self.span, level, self.message)
    }
}

/// The collected problems of one load.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, span: &Span, message: impl Into<String>) {
        self.push(Severity::Error, span, message.into());
    }

    pub fn warning(&mut self, span: &Span, message: impl Into<String>) {
        self.push(Severity::Warning, span, message.into());
    }

    fn push(&mut self, severity: Severity, span: &Span, message: String) {
        self.items.push(Diagnostic {
            severity,
            span: span.clone(),
            message,
        });
    }

    /// Orders problems by file (in the order files were first mentioned),
    /// then line and column, so `-t` reads top to bottom.
    pub fn sort_by_place(&mut self) {
        let mut files: Vec<Option<Rc<str>>> = Vec::new();
        for d in &self.items {
            if !files.contains(&d.span.file) {
                files.push(d.span.file.clone());
            }
        }
        self.items.sort_by_key(|d| {
            let file = files.iter().position(|f| *f == d.span.file).unwrap_or(0);
            (file, d.span.line, d.span.col)
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

/// Edit distance counting a swap of neighbours as one edit (optimal string
/// alignment), for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut m = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            m[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (m[(i - 1) * width + j] + 1)
                    .min(m[i * width + j - 1] + 1)
                    .min(m[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(m[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    m[a.len() * width + b.len()]
}

/// The known keyword closest to `word`, if one is close enough to be a typo.
pub fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = (word.len() / 3).clamp(1, 3);
    known
        .into_iter()
        .map(|k| {
            // Case mistakes (`Nb_get_retry`) are the most likely typo of all.
            let d = if k.eq_ignore_ascii_case(word) {
                0
            } else {
                edit_distance(&lower, k)
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = [
            "retry",
            "nb_get_retry",
            "delay_before_retry",
            "connect_port",
        ];
        assert_eq!(suggest("Nb_get_retry", known), Some("nb_get_retry"));
        assert_eq!(suggest("conect_port", known), Some("connect_port"));
        assert_eq!(suggest("retyr", known), Some("retry"));
        assert_eq!(suggest("something_else", known), None);
    }

    #[test]
    fn spanned_equality_ignores_place() {
        let file: Rc<str> = Rc::from("a.conf");
        let a = Spanned::new(5, Span::new(&file, 1, 1));
        let b = Spanned::default_value(5);
        assert_eq!(a, b);
        assert_eq!(a.span.to_string(), "a.conf:1:1");
        assert_eq!(b.span.to_string(), "<default>");
    }
}
