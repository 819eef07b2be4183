//! keepalived's sequence and list lines (keepalived.conf(5), "Sequence
//! blocks" and "List blocks"): a line starting `~SEQ(var, start, step, end)`,
//! `~SEQx(...)` or `~LST(var, a, b, ...)` stands for its remainder repeated
//! once per value, with `$var` defined as that value. This module only reads
//! the head of such a line; the lexer does the repeating.
//!
//! Read as keepalived 2.2.7 reads them, except that input it accepts by
//! accident is an error here: an empty or non-numeric `~SEQ` argument
//! (2.2.7 reads it as 0), arguments separated by spaces instead of commas,
//! and a `~LST` value group shorter than its variable group (2.2.7 sets the
//! missing variables to nothing).

use super::lexer::{is_space, skip_leading_space};

/// The most lines one configuration line may generate. keepalived's own
/// example (8 x 32 x 254 VRRP instances) fits.
pub const MAX_GENERATED_LINES: usize = 65536;

/// The head of a sequence or list line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    /// Variables defined on each pass (one for `~SEQ`, one or more for `~LST`).
    pub vars: Vec<String>,
    pub passes: Passes,
    /// Byte offset where the repeated remainder of the line starts.
    pub body_start: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passes {
    /// `~SEQ`: `count` values from `start` in steps of `step`.
    Numbers {
        start: i64,
        step: i64,
        count: u128,
        hex: bool,
    },
    /// `~LST`: one row of values (one per variable) per pass.
    Values(Vec<Vec<String>>),
}

impl Loop {
    pub fn pass_count(&self) -> u128 {
        match &self.passes {
            Passes::Numbers { count, .. } => *count,
            Passes::Values(rows) => rows.len() as u128,
        }
    }

    /// The variables' values on pass `index` (`index < pass_count()`).
    pub fn values(&self, index: u128) -> Vec<String> {
        match &self.passes {
            Passes::Numbers {
                start, step, hex, ..
            } => {
                // Within [start, end] for a valid index; saturating keeps an
                // invalid one from overflowing.
                let offset =
                    i128::from(*step).saturating_mul(i128::try_from(index).unwrap_or(i128::MAX));
                let value = i128::from(*start).saturating_add(offset);
                vec![if *hex {
                    format!("{value:x}")
                } else {
                    value.to_string()
                }]
            }
            Passes::Values(rows) => usize::try_from(index)
                .ok()
                .and_then(|i| rows.get(i))
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// Why a head cannot be read, and where (byte offset in the line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadError {
    pub offset: usize,
    pub message: String,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, HeadError> {
    Err(HeadError {
        offset,
        message: message.into(),
    })
}

/// True when `line` is a sequence or list line (its first word starts
/// `~SEQ` or `~LST`), whether or not the head is well formed.
pub fn starts_loop(line: &str) -> bool {
    let rest = skip_leading_space(line);
    rest.starts_with("~SEQ") || rest.starts_with("~LST")
}

/// Reads the head of a sequence or list line. `None` when `line` is not one.
/// `substitute` expands `$NAME` references in each argument (so arguments
/// may use definitions and the variables of enclosing loops); it returns an
/// error message when that fails.
pub fn parse(
    line: &str,
    substitute: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Option<Result<Loop, HeadError>> {
    let head_start = line.len() - skip_leading_space(line).len();
    let rest = &line[head_start..];
    let (is_list, name) = if rest.starts_with("~SEQ") {
        (false, "~SEQ")
    } else if rest.starts_with("~LST") {
        (true, "~LST")
    } else {
        return None;
    };
    let mut pos = head_start + name.len();
    let hex = !is_list && line[pos..].starts_with('x');
    let keyword = if hex { "~SEQx" } else { name };
    if hex {
        pos += 1;
    }
    Some(parse_after_keyword(
        line, pos, keyword, is_list, hex, substitute,
    ))
}

fn parse_after_keyword(
    line: &str,
    keyword_end: usize,
    keyword: &str,
    is_list: bool,
    hex: bool,
    substitute: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Loop, HeadError> {
    let open = skip_space(line, keyword_end);
    if !line[open..].starts_with('(') {
        if is_list && line[keyword_end..].starts_with('x') {
            return fail(
                keyword_end - 4,
                "~LSTx is not a keepalived list form (only sequences have a hex \
                 variant, ~SEQx)",
            );
        }
        return fail(
            keyword_end,
            format!(
                "{keyword}: expected '(' after '{keyword}', found {}",
                describe(&line[keyword_end..])
            ),
        );
    }
    let (items, close) = read_items(line, open, keyword)?;
    let body_start = close + 1;
    let Some((first, values)) = items.split_first() else {
        return fail(
            open,
            format!("{keyword}: expected a variable name after '('"),
        );
    };
    if is_list {
        let vars = list_variables(first, keyword)?;
        let rows = list_rows(values, &vars, keyword, open, substitute)?;
        Ok(Loop {
            vars,
            passes: Passes::Values(rows),
            body_start,
        })
    } else {
        let var = match first {
            Item::Value(word) => variable_name(word, keyword)?,
            Item::Group(_, at) => {
                return fail(
                    *at,
                    format!("{keyword}: '{{...}}' groups belong to ~LST, not to {keyword}"),
                )
            }
        };
        let passes = sequence_passes(values, keyword, hex, open, substitute)?;
        Ok(Loop {
            vars: vec![var],
            passes,
            body_start,
        })
    }
}

/// One argument as written: its text and byte offset in the line.
#[derive(Clone, Debug)]
struct Word<'l> {
    text: &'l str,
    at: usize,
}

#[derive(Clone, Debug)]
enum Item<'l> {
    Value(Word<'l>),
    /// `{a, b}` and the offset of its '{'.
    Group(Vec<Word<'l>>, usize),
}

fn skip_space(line: &str, from: usize) -> usize {
    line.len() - skip_leading_space(&line[from..]).len()
}

/// `found 'text'` for messages, cut short; `found the end of the line`.
fn describe(text: &str) -> String {
    let text = skip_leading_space(text);
    if text.is_empty() {
        return "the end of the line".to_string();
    }
    let shown: String = text.chars().take(24).collect();
    let more = if shown.len() < text.len() { "..." } else { "" };
    format!("'{shown}{more}'")
}

/// A value runs to white space, ',', ')', '{' or '}', except that a `${NAME}`
/// reference is read whole. Returns the end offset.
fn value_end(line: &str, from: usize) -> usize {
    let bytes = line.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if line[i..].starts_with("${") {
            match line[i..].find('}') {
                Some(close) => {
                    i += close + 1;
                    continue;
                }
                None => return line.len(),
            }
        }
        let c = line[i..].chars().next().unwrap_or(' ');
        if is_space(c) || matches!(c, ',' | ')' | '{' | '}') {
            return i;
        }
        i += c.len_utf8();
    }
    i
}

/// Reads `( item, item, ... )` from the '(' at `open`; returns the items and
/// the offset of the closing ')'.
fn read_items<'l>(
    line: &'l str,
    open: usize,
    keyword: &str,
) -> Result<(Vec<Item<'l>>, usize), HeadError> {
    let mut items = Vec::new();
    let mut pos = open + 1;
    // Each turn consumes at least the separator after an item, so the loop
    // ends within the line.
    loop {
        pos = skip_space(line, pos);
        let item = if line[pos..].starts_with('{') {
            let (words, end) = read_group(line, pos, keyword)?;
            let item = Item::Group(words, pos);
            pos = end;
            item
        } else {
            let end = value_end(line, pos);
            let item = Item::Value(Word {
                text: &line[pos..end],
                at: pos,
            });
            pos = end;
            item
        };
        items.push(item);
        pos = skip_space(line, pos);
        match line[pos..].chars().next() {
            Some(',') => pos += 1,
            Some(')') => {
                // `~SEQ()` / `~LST()`: nothing at all, not one empty item.
                if items.len() == 1 && matches!(&items[0], Item::Value(w) if w.text.is_empty()) {
                    items.clear();
                }
                return Ok((items, pos));
            }
            None => {
                return fail(
                    open,
                    format!("{keyword}: missing ')' closing the '(' opened here"),
                )
            }
            Some(_) => {
                let last = match items.last() {
                    Some(Item::Value(w)) => format!("'{}'", w.text),
                    _ => "'}'".to_string(),
                };
                return fail(
                    pos,
                    format!(
                        "{keyword}: expected ',' or ')' after {last}, found {}",
                        describe(&line[pos..])
                    ),
                );
            }
        }
    }
}

/// Reads `{ a, b }` from the '{' at `open`; returns the words and the offset
/// just after the '}'.
fn read_group<'l>(
    line: &'l str,
    open: usize,
    keyword: &str,
) -> Result<(Vec<Word<'l>>, usize), HeadError> {
    let mut words = Vec::new();
    let mut pos = open + 1;
    loop {
        pos = skip_space(line, pos);
        let end = value_end(line, pos);
        words.push(Word {
            text: &line[pos..end],
            at: pos,
        });
        pos = skip_space(line, end);
        match line[pos..].chars().next() {
            Some(',') => pos += 1,
            Some('}') => return Ok((words, pos + 1)),
            None | Some(')') => {
                return fail(
                    open,
                    format!("{keyword}: missing '}}' closing the '{{' opened here"),
                )
            }
            Some(_) => {
                return fail(
                    pos,
                    format!(
                        "{keyword}: expected ',' or '}}' inside '{{...}}', found {}",
                        describe(&line[pos..])
                    ),
                )
            }
        }
    }
}

fn variable_name(word: &Word<'_>, keyword: &str) -> Result<String, HeadError> {
    let mut chars = word.text.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(word.text.to_string())
    } else {
        fail(
            word.at,
            format!(
                "{keyword}: expected a variable name (letters, digits and '_', not \
                 starting with a digit), found {}",
                if word.text.is_empty() {
                    "nothing".to_string()
                } else {
                    format!("'{}'", word.text)
                }
            ),
        )
    }
}

fn list_variables(first: &Item<'_>, keyword: &str) -> Result<Vec<String>, HeadError> {
    match first {
        Item::Value(word) => Ok(vec![variable_name(word, keyword)?]),
        Item::Group(words, _) => words.iter().map(|w| variable_name(w, keyword)).collect(),
    }
}

fn substituted(
    word: &Word<'_>,
    keyword: &str,
    substitute: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<String, HeadError> {
    if !word.text.contains('$') {
        return Ok(word.text.to_string());
    }
    match substitute(word.text) {
        Ok(value) if value.contains('\n') => fail(
            word.at,
            format!(
                "{keyword}: '{}' is a multi-line definition; an argument must be one line",
                word.text
            ),
        ),
        Ok(value) => Ok(value),
        Err(message) => fail(word.at, format!("{keyword}: '{}': {message}", word.text)),
    }
}

fn list_rows(
    values: &[Item<'_>],
    vars: &[String],
    keyword: &str,
    open: usize,
    substitute: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Vec<Vec<String>>, HeadError> {
    if values.is_empty() {
        return fail(
            open,
            format!("{keyword}: expected at least one value after the variable"),
        );
    }
    let mut rows = Vec::with_capacity(values.len());
    for item in values {
        let (words, at) = match item {
            Item::Value(word) => (std::slice::from_ref(word), word.at),
            Item::Group(words, at) => (words.as_slice(), *at),
        };
        if words.len() != vars.len() {
            return fail(
                at,
                format!(
                    "{keyword}: {} value{} for {} variable{} {{{}}}; each value group \
                     needs one value per variable",
                    words.len(),
                    if words.len() == 1 { "" } else { "s" },
                    vars.len(),
                    if vars.len() == 1 { "" } else { "s" },
                    vars.join(", ")
                ),
            );
        }
        let row = words
            .iter()
            .map(|w| substituted(w, keyword, substitute))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// An integer as C's `strtoll(.., 0)` reads it whole: optional sign, then
/// decimal, `0x` hex or `0` octal digits.
pub fn parse_integer(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        (16, hex)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        (8, &unsigned[1..])
    } else {
        (10, unsigned)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

fn sequence_passes(
    values: &[Item<'_>],
    keyword: &str,
    hex: bool,
    open: usize,
    substitute: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Passes, HeadError> {
    let roles: &[&str] = match values.len() {
        1 => &["END"],
        2 => &["START", "END"],
        3 => &["START", "STEP", "END"],
        n => {
            return fail(
                open,
                format!(
                    "{keyword}: expected (VAR, END), (VAR, START, END) or \
                     (VAR, START, STEP, END), found {} argument{}",
                    n + 1,
                    if n == 0 { "" } else { "s" }
                ),
            )
        }
    };
    let mut numbers = Vec::with_capacity(3);
    for (item, role) in values.iter().zip(roles) {
        let word = match item {
            Item::Value(word) => word,
            Item::Group(_, at) => {
                return fail(
                    *at,
                    format!("{keyword}: '{{...}}' groups belong to ~LST, not to {keyword}"),
                )
            }
        };
        let text = substituted(word, keyword, substitute)?;
        let Some(number) = parse_integer(text.trim_matches(is_space)) else {
            return fail(
                word.at,
                format!(
                    "{keyword}: expected an integer for {role} (decimal, 0x hex or 0 octal, \
                     within 64 bits), found {}",
                    if text.is_empty() {
                        "nothing".to_string()
                    } else {
                        format!("'{text}'")
                    }
                ),
            );
        };
        numbers.push((number, word.at));
    }
    let toward = |start: i64, end: i64| if end >= start { 1 } else { -1 };
    let ((start, start_at), step, (end, end_at)) = match numbers[..] {
        [end] => {
            // keepalived.conf(5): start defaults to 1, or -1 for a negative end.
            let start = if end.0 < 0 { -1 } else { 1 };
            ((start, end.1), toward(start, end.0), end)
        }
        [start, end] => (start, toward(start.0, end.0), end),
        [start, (step, step_at), end] => {
            if step == 0 {
                return fail(step_at, format!("{keyword}: STEP must not be 0"));
            }
            if (step > 0 && start.0 > end.0) || (step < 0 && start.0 < end.0) {
                return fail(
                    step_at,
                    format!(
                        "{keyword}: STEP {step} leads away from END {} (START is {})",
                        end.0, start.0
                    ),
                );
            }
            (start, step, end)
        }
        _ => return fail(open, format!("{keyword}: expected 1 to 3 numbers")),
    };
    if hex && (start < 0 || end < 0) {
        let (value, at) = if start < 0 {
            (start, start_at)
        } else {
            (end, end_at)
        };
        return fail(
            at,
            format!("{keyword} formats only non-negative numbers in hex, found {value}"),
        );
    }
    let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
    Ok(Passes::Numbers {
        start,
        step,
        count: count.unsigned_abs(),
        hex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_definitions(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }

    fn head_or_error(line: &str) -> Result<Loop, HeadError> {
        parse(line, &mut no_definitions).expect("a loop line")
    }

    fn head(line: &str) -> Loop {
        head_or_error(line).unwrap_or_else(|e| panic!("{line}: {e:?}"))
    }

    /// All values of a one-variable loop, joined by spaces.
    fn values(line: &str) -> String {
        let lp = head(line);
        (0..lp.pass_count())
            .map(|i| lp.values(i).join("/"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn error(line: &str) -> (usize, String) {
        let e = head_or_error(line).expect_err(line);
        (e.offset, e.message)
    }

    #[test]
    fn not_a_loop_line() {
        assert!(parse("ip_address 10.0.0.1", &mut no_definitions).is_none());
        assert!(parse("~seq(A,1,2) x", &mut no_definitions).is_none());
        assert!(parse("~FOO", &mut no_definitions).is_none());
        assert!(!starts_loop("a ~SEQ(A,1,2)"));
        assert!(starts_loop("  ~SEQy"));
    }

    #[test]
    fn sequence_forms_and_defaults() {
        assert_eq!(values("~SEQ(A, 0, 3)"), "0 1 2 3");
        assert_eq!(values("~SEQ(A, 3)"), "1 2 3");
        assert_eq!(values("~SEQ(A, -3)"), "-1 -2 -3");
        // An end of 0 counts down from the default start of 1 (as 2.2.7 does).
        assert_eq!(values("~SEQ(A, 0)"), "1 0");
        assert_eq!(values("~SEQ(A, 3, 1)"), "3 2 1");
        assert_eq!(values("~SEQ(A, 1, 1)"), "1");
        assert_eq!(values("~SEQ(A, 1, 2, 6)"), "1 3 5");
        assert_eq!(values("~SEQ(A, 5, -2, 0)"), "5 3 1");
        assert_eq!(values("~SEQ(A, -1, -2, -5)"), "-1 -3 -5");
        assert_eq!(values("~SEQ( A , 1 , 2 )"), "1 2");
        assert_eq!(values("~SEQ\t(A,\t1,2)"), "1 2");
        assert_eq!(values("~SEQ(A, 010, 0x9)"), "8 9");
        assert_eq!(values("~SEQ(A, +5, -0X3, -1)"), "5 2 -1");
        assert_eq!(
            values("~SEQ(A, 9223372036854775806, 9223372036854775807)"),
            "9223372036854775806 9223372036854775807"
        );
    }

    #[test]
    fn hex_sequences() {
        // keepalived.conf(5)'s examples.
        assert_eq!(values("~SEQx(SUBNET, 144, 16, 192)"), "90 a0 b0 c0");
        assert_eq!(values("~SEQx(SUBNET, 0x90, 0x10, 0xc0)"), "90 a0 b0 c0");
        assert_eq!(values("~SEQx(AD1, 0x12, -1, 0x0c)"), "12 11 10 f e d c");
        assert_eq!(values("~SEQx(A, 0, 1)"), "0 1");
    }

    #[test]
    fn lists() {
        assert_eq!(values("~LST(A, 1, 2, 3)"), "1 2 3");
        assert_eq!(
            values("~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8})"),
            "10/1 20/4 5/6 12/8"
        );
        assert_eq!(values("~LST({A}, {1}, 2)"), "1 2");
        assert_eq!(values("~LST ( A , x-y , a.b , c:d )"), "x-y a.b c:d");
        // Empty values are values, as in 2.2.7.
        assert_eq!(values("~LST(A,,x)"), " x");
        assert_eq!(values("~LST(A,)"), "");
        let lp = head("~LST(A,)");
        assert_eq!(lp.pass_count(), 1);
        // A `${NAME}` reference is one value, not a group.
        assert_eq!(values("~LST(A, ${X}, b)"), "${X} b");
    }

    #[test]
    fn malformed_heads_say_what_was_expected() {
        let cases: &[(&str, usize, &str)] = &[
            ("~SEQ(A,1,2", 4, "~SEQ: missing ')' closing the '(' opened here"),
            ("~SEQ A,1,2)", 4, "~SEQ: expected '(' after '~SEQ', found 'A,1,2)'"),
            ("~SEQy(A,1,2)", 4, "~SEQ: expected '(' after '~SEQ', found 'y(A,1,2)'"),
            ("~SEQ", 4, "~SEQ: expected '(' after '~SEQ', found the end of the line"),
            ("~LSTx(A,1)", 0, "~LSTx is not a keepalived list form (only sequences have a hex variant, ~SEQx)"),
            ("~SEQ()", 4, "~SEQ: expected a variable name after '('"),
            ("~SEQ(A)", 4, "~SEQ: expected (VAR, END), (VAR, START, END) or (VAR, START, STEP, END), found 1 argument"),
            ("~SEQ(A,1,2,3,4)", 4, "~SEQ: expected (VAR, END), (VAR, START, END) or (VAR, START, STEP, END), found 5 arguments"),
            ("~SEQ(A 1 2)", 7, "~SEQ: expected ',' or ')' after 'A', found '1 2)'"),
            ("~SEQ(1A,1,2)", 5, "~SEQ: expected a variable name (letters, digits and '_', not starting with a digit), found '1A'"),
            ("~SEQ(A-b,1,2)", 5, "~SEQ: expected a variable name (letters, digits and '_', not starting with a digit), found 'A-b'"),
            ("~SEQ(,1,2)", 5, "~SEQ: expected a variable name (letters, digits and '_', not starting with a digit), found nothing"),
            ("~SEQ(A,,3)", 7, "~SEQ: expected an integer for START (decimal, 0x hex or 0 octal, within 64 bits), found nothing"),
            ("~SEQ(A,1.5,3)", 7, "~SEQ: expected an integer for START (decimal, 0x hex or 0 octal, within 64 bits), found '1.5'"),
            ("~SEQ(A,0x,3)", 7, "~SEQ: expected an integer for START (decimal, 0x hex or 0 octal, within 64 bits), found '0x'"),
            ("~SEQ(A,08,9)", 7, "~SEQ: expected an integer for START (decimal, 0x hex or 0 octal, within 64 bits), found '08'"),
            ("~SEQ(A,1,9223372036854775808)", 9, "~SEQ: expected an integer for END (decimal, 0x hex or 0 octal, within 64 bits), found '9223372036854775808'"),
            ("~SEQ(A,1,2,)", 11, "~SEQ: expected an integer for END (decimal, 0x hex or 0 octal, within 64 bits), found nothing"),
            ("~SEQ(A,0,0,3)", 9, "~SEQ: STEP must not be 0"),
            ("~SEQ(A,1,2,0)", 9, "~SEQ: STEP 2 leads away from END 0 (START is 1)"),
            ("~SEQ(A,3,-1,5)", 9, "~SEQ: STEP -1 leads away from END 5 (START is 3)"),
            ("~SEQx(A,-3,-1)", 8, "~SEQx formats only non-negative numbers in hex, found -3"),
            ("~SEQ({A},1)", 5, "~SEQ: '{...}' groups belong to ~LST, not to ~SEQ"),
            ("~LST(A)", 4, "~LST: expected at least one value after the variable"),
            ("~LST(A,x y,z)", 9, "~LST: expected ',' or ')' after 'x', found 'y,z)'"),
            ("~LST(A,\"x y\")", 10, "~LST: expected ',' or ')' after '\"x', found 'y\")'"),
            ("~LST({A,B},{1,2}", 4, "~LST: missing ')' closing the '(' opened here"),
            ("~LST({A,B,{1,2}) x", 10, "~LST: expected ',' or '}' inside '{...}', found '{1,2}) x'"),
            ("~LST({A,B},{1,2},{3})", 17, "~LST: 1 value for 2 variables {A, B}; each value group needs one value per variable"),
            ("~LST({A,B},{1,2},{3,4,5})", 17, "~LST: 3 values for 2 variables {A, B}; each value group needs one value per variable"),
            ("~LST(A,{x,y},z)", 7, "~LST: 2 values for 1 variable {A}; each value group needs one value per variable"),
        ];
        for (line, offset, message) in cases {
            assert_eq!(error(line), (*offset, message.to_string()), "{line}");
        }
    }

    #[test]
    fn arguments_are_substituted() {
        let mut defs = |text: &str| match text {
            "$E" => Ok("3".to_string()),
            "${V}" => Ok("q,r".to_string()),
            "$M" => Ok("1\n2".to_string()),
            "$BIG" => Err("expands beyond 1048576 bytes".to_string()),
            other => Ok(other.to_string()),
        };
        let lp = parse("~SEQ(A, 1, $E) x", &mut defs).unwrap().unwrap();
        assert_eq!(lp.pass_count(), 3);
        assert_eq!(lp.body_start, 14);
        // A definition holding a comma is still one value (as in 2.2.7).
        let lp = parse("~LST(A, ${V}, b)", &mut defs).unwrap().unwrap();
        assert_eq!(
            lp.passes,
            Passes::Values(vec![vec!["q,r".into()], vec!["b".into()]])
        );
        let e = parse("~SEQ(A, 1, $M)", &mut defs).unwrap().unwrap_err();
        assert_eq!(
            e.message,
            "~SEQ: '$M' is a multi-line definition; an argument must be one line"
        );
        let e = parse("~LST(A, $BIG)", &mut defs).unwrap().unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (8, "~LST: '$BIG': expands beyond 1048576 bytes")
        );
    }

    #[test]
    fn body_starts_right_after_the_parenthesis() {
        assert_eq!(head("  ~SEQ(A,1,2)K_$A").body_start, 13);
        assert_eq!(head("~LST({A,B},{1,2}) x").body_start, 17);
    }

    #[test]
    fn huge_sequences_are_counted_not_built() {
        let lp = head("~SEQ(A, -9223372036854775808, 9223372036854775807)");
        assert_eq!(lp.pass_count(), 1u128 << 64);
        assert_eq!(lp.values((1u128 << 64) - 1), ["9223372036854775807"]);
    }
}
