//! The health checkers as a daemon subsystem: [`check::Engine`] behind the
//! [`Subsystem`] calls.

use std::time::Instant;

use mio::event::Event;
use mio::Token;

use crate::check::{self, Engine};
use crate::config::Config;
use crate::daemon::{ChildExit, Context, Subsystem, Tag};

// The engine tags its own keys; both tags must agree.
const _: () = assert!(check::CHECK_KEY_TAG == Tag::Check as u64);

impl Subsystem for Engine {
    fn tag(&self) -> Tag {
        Tag::Check
    }

    fn start(&mut self, cx: &mut Context<'_>, now: Instant) {
        Engine::start(self, cx, now);
    }

    fn owns(&self, token: Token) -> bool {
        Engine::owns(self, token)
    }

    fn handle_io(&mut self, cx: &mut Context<'_>, token: Token, event: &Event, now: Instant) {
        Engine::handle_io(self, cx, token, event, now);
    }

    fn handle_timer(&mut self, cx: &mut Context<'_>, key: u64, now: Instant) {
        Engine::handle_timer(self, cx, key, now);
    }

    fn handle_child_exit(&mut self, cx: &mut Context<'_>, exit: ChildExit<u64>, now: Instant) {
        Engine::handle_child_exit(self, cx, exit, now);
    }

    fn reload(&mut self, cx: &mut Context<'_>, config: &Config, now: Instant) {
        Engine::reload(self, config, cx, now);
    }

    fn dump_state(&self, out: &mut String) {
        out.push_str(&Engine::dump(self));
    }

    fn shutdown(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        Engine::shutdown(self, cx, now)
    }

    fn shutdown_done(&self) -> bool {
        Engine::is_shut_down(self)
    }
}
