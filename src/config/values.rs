//! Value readers for keyword arguments. Each reports a precise error naming
//! the keyword and what was expected, and returns `None` so the caller keeps
//! the default and carries on.

use super::diag::{Diagnostics, Spanned};
use super::model::{RunAs, Script};
use super::parser::{Node, Word};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// The single value of `keyword VALUE`; extra words are reported.
pub fn single<'n>(n: &'n Node, d: &mut Diagnostics, what: &str) -> Option<&'n Word> {
    match n.args.first() {
        None => {
            d.error(n.span(), format!("'{}': expected {what}", n.name.text));
            None
        }
        Some(first) => {
            if let Some(extra) = n.args.get(1) {
                d.warning(
                    &extra.span,
                    format!("'{}': extra value '{}' ignored", n.name.text, extra.text),
                );
            }
            Some(first)
        }
    }
}

pub fn integer<T>(
    keyword: &str,
    w: &Word,
    min: i64,
    max: i64,
    d: &mut Diagnostics,
) -> Option<Spanned<T>>
where
    T: TryFrom<i64>,
{
    let parsed = w
        .text
        .parse::<i64>()
        .ok()
        .filter(|v| (min..=max).contains(v));
    match parsed.and_then(|v| T::try_from(v).ok()) {
        Some(v) => Some(Spanned::new(v, w.span.clone())),
        None => {
            d.error(
                &w.span,
                format!(
                    "'{keyword}': expected an integer {min}..{max}, found '{}'",
                    w.text
                ),
            );
            None
        }
    }
}

pub fn int_arg<T: TryFrom<i64>>(
    n: &Node,
    min: i64,
    max: i64,
    d: &mut Diagnostics,
) -> Option<Spanned<T>> {
    let w = single(n, d, &format!("an integer {min}..{max}"))?;
    integer(&n.name.text, w, min, max, d)
}

/// Seconds, with microsecond resolution (keepalived's `<TIMER>`).
pub fn timer_word(
    keyword: &str,
    w: &Word,
    max_secs: f64,
    d: &mut Diagnostics,
) -> Option<Spanned<Duration>> {
    let parsed = w
        .text
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= max_secs);
    match parsed {
        Some(secs) => {
            let micros = (secs * 1_000_000.0).round() as u64;
            Some(Spanned::new(Duration::from_micros(micros), w.span.clone()))
        }
        None => {
            d.error(
                &w.span,
                format!(
                    "'{keyword}': expected a time in seconds (0..{max_secs}), found '{}'",
                    w.text
                ),
            );
            None
        }
    }
}

pub fn timer(n: &Node, d: &mut Diagnostics) -> Option<Spanned<Duration>> {
    timer_arg(n, 1_000_000.0, d)
}

pub fn timer_arg(n: &Node, max_secs: f64, d: &mut Diagnostics) -> Option<Spanned<Duration>> {
    let w = single(n, d, "a time in seconds")?;
    timer_word(&n.name.text, w, max_secs, d)
}

/// keepalived's `<BOOL>`: no value means true.
pub fn boolean(n: &Node, d: &mut Diagnostics) -> Spanned<bool> {
    let Some(w) = n.args.first() else {
        return Spanned::new(true, n.span().clone());
    };
    match w.text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Spanned::new(true, w.span.clone()),
        "off" | "false" | "no" => Spanned::new(false, w.span.clone()),
        _ => {
            d.error(
                &w.span,
                format!(
                    "'{}': expected on|off|true|false|yes|no, found '{}'",
                    n.name.text, w.text
                ),
            );
            Spanned::new(true, n.span().clone())
        }
    }
}

/// A flag keyword that takes no value.
pub fn flag(n: &Node, d: &mut Diagnostics) -> Spanned<bool> {
    if let Some(extra) = n.args.first() {
        d.warning(
            &extra.span,
            format!("'{}' takes no value; '{}' ignored", n.name.text, extra.text),
        );
    }
    Spanned::new(true, n.span().clone())
}

pub fn ip_word(keyword: &str, w: &Word, d: &mut Diagnostics) -> Option<Spanned<IpAddr>> {
    match IpAddr::from_str(&w.text) {
        Ok(ip) => Some(Spanned::new(ip, w.span.clone())),
        Err(_) => {
            d.error(
                &w.span,
                format!(
                    "'{keyword}': expected an IPv4 or IPv6 address, found '{}'",
                    w.text
                ),
            );
            None
        }
    }
}

pub fn ip_arg(n: &Node, d: &mut Diagnostics) -> Option<Spanned<IpAddr>> {
    let w = single(n, d, "an IP address")?;
    ip_word(&n.name.text, w, d)
}

/// `ADDR[/LEN]`; the length defaults to the full address.
pub fn prefix_word(keyword: &str, w: &Word, d: &mut Diagnostics) -> Option<(Spanned<IpAddr>, u8)> {
    let (addr_text, len_text) = match w.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (w.text.as_str(), None),
    };
    let Ok(addr) = IpAddr::from_str(addr_text) else {
        d.error(
            &w.span,
            format!(
                "'{keyword}': expected an IP address or ADDRESS/PREFIX, found '{}'",
                w.text
            ),
        );
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len_text {
        None => max,
        Some(l) => match l.parse::<u8>().ok().filter(|v| *v <= max) {
            Some(v) => v,
            None => {
                d.error(
                    &w.span,
                    format!(
                        "'{keyword}': expected a prefix length 0..{max} after '/', found '{l}'"
                    ),
                );
                return None;
            }
        },
    };
    Some((Spanned::new(addr, w.span.clone()), len))
}

pub fn string(n: &Node, d: &mut Diagnostics, what: &str) -> Option<Spanned<String>> {
    single(n, d, what).map(|w| Spanned::new(w.text.clone(), w.span.clone()))
}

/// `keyword "command args" [user [group]]`.
pub fn script(n: &Node, d: &mut Diagnostics) -> Option<Script> {
    let Some(cmd) = n.args.first() else {
        d.error(
            n.span(),
            format!("'{}': expected a script command", n.name.text),
        );
        return None;
    };
    if cmd.text.trim().is_empty() {
        d.error(
            &cmd.span,
            format!("'{}': the script command is empty", n.name.text),
        );
        return None;
    }
    let run_as = n.args.get(1).map(|user| RunAs {
        user: user.text.clone(),
        group: n.args.get(2).map(|g| g.text.clone()),
    });
    if let Some(extra) = n.args.get(3) {
        d.warning(
            &extra.span,
            format!(
                "'{}': extra value '{}' ignored (quote the whole command: \"cmd args\")",
                n.name.text, extra.text
            ),
        );
    }
    Some(Script {
        command: Spanned::new(cmd.text.clone(), cmd.span.clone()),
        run_as,
    })
}

/// Every word of every line of a block (`notification_email`, `group`).
pub fn word_list(n: &Node, d: &mut Diagnostics) -> Vec<Spanned<String>> {
    let Some(children) = &n.block else {
        d.error(
            n.span(),
            format!("'{}': expected a {{ }} block", n.name.text),
        );
        return Vec::new();
    };
    children
        .iter()
        .flat_map(|c| std::iter::once(&c.name).chain(c.args.iter()))
        .map(|w| Spanned::new(w.text.clone(), w.span.clone()))
        .collect()
}

/// The children of a keyword that must open a block.
pub fn block<'n>(n: &'n Node, d: &mut Diagnostics) -> &'n [Node] {
    match &n.block {
        Some(children) => children,
        None => {
            d.error(
                n.span(),
                format!("'{}': expected a {{ }} block", n.name.text),
            );
            &[]
        }
    }
}

pub fn hex_bytes(keyword: &str, w: &Word, d: &mut Diagnostics) -> Option<Vec<u8>> {
    let text = w.text.strip_prefix("0x").unwrap_or(&w.text);
    let valid = text.len() % 2 == 0 && text.chars().all(|c| c.is_ascii_hexdigit());
    if !valid {
        d.error(
            &w.span,
            format!(
                "'{keyword}': expected hexadecimal bytes, found '{}'",
                w.text
            ),
        );
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
