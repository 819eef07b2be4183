//! The daemon's jobs (VRRP, health checks, IPVS) as subsystems of one
//! service.
//!
//! The event loop knows one [`Service`](super::Service); the keepalived
//! service fans its calls out to subsystems. Timer and child keys carry the
//! owning subsystem's [`Tag`] in their top byte so a due timer or an exited
//! child goes back to whoever armed it; I/O tokens are claimed with
//! [`Subsystem::owns`].

use std::time::Instant;

use mio::event::Event;
use mio::Token;

use super::{ChildExit, Context};
use crate::config::Config;

/// Which subsystem a timer or child key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tag {
    Vrrp = 1,
    Check = 2,
    Ipvs = 3,
}

const TAG_SHIFT: u32 = 56;
const INNER_MASK: u64 = (1 << TAG_SHIFT) - 1;

impl Tag {
    /// A loop key for `inner` (which must fit in 56 bits; higher bits are dropped).
    pub const fn key(self, inner: u64) -> u64 {
        ((self as u64) << TAG_SHIFT) | (inner & INNER_MASK)
    }

    /// The tag of a loop key, if it carries a known one.
    pub fn of(key: u64) -> Option<Tag> {
        match key >> TAG_SHIFT {
            1 => Some(Tag::Vrrp),
            2 => Some(Tag::Check),
            3 => Some(Tag::Ipvs),
            _ => None,
        }
    }

    /// The subsystem's own part of a loop key.
    pub const fn inner(key: u64) -> u64 {
        key & INNER_MASK
    }
}

/// One job of the daemon. Calls mirror [`Service`](super::Service); keys
/// passed to `handle_timer` / `handle_child_exit` are the full tagged keys.
pub trait Subsystem {
    fn tag(&self) -> Tag;
    fn start(&mut self, cx: &mut Context<'_>, now: Instant);
    /// Whether `token` is one of this subsystem's registered sources.
    fn owns(&self, token: Token) -> bool;
    fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, event: &Event, now: Instant);
    fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, now: Instant);
    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant);
    /// A new configuration passed `-t`-level checks; apply it, touching only
    /// what changed.
    fn reload(&mut self, cx: &mut Context<'_>, config: &Config, now: Instant);
    /// Text for the SIGUSR1 data dump.
    fn dump_state(&self, _out: &mut String) {}
    /// Begin an orderly shutdown; return true when nothing is left to wait for.
    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool;
    /// After `shutdown` returned false: true once the subsystem is done.
    fn shutdown_done(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let key = Tag::Check.key(0x1234_5678);
        assert_eq!(Tag::of(key), Some(Tag::Check));
        assert_eq!(Tag::inner(key), 0x1234_5678);
        assert_eq!(Tag::of(Tag::Ipvs.key(u64::MAX)), Some(Tag::Ipvs));
        assert_eq!(Tag::inner(Tag::Vrrp.key(u64::MAX)), INNER_MASK);
        assert_eq!(Tag::of(7), None);
    }
}
