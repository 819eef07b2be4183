//! Daemon shell: the single-threaded event loop and the process plumbing
//! around it (signals, children, pid file, logging, daemonizing). Nothing
//! here knows about the configuration.

pub mod child;
pub mod daemonize;
pub mod deadline;
pub mod event_loop;
pub mod log;
pub mod pidfile;
pub mod signals;
pub mod subsystem;
pub mod timer;

pub use child::{
    split_command, ChildError, ChildExit, ChildId, ChildRunner, ChildSpec, ChildStatus, RunAs,
    RunAsError, SplitError,
};
pub use daemonize::{daemonize, DaemonizeError};
pub use event_loop::{Context, DumpKind, EventLoop, LoopError, Priority, Service, TokenSlab};
pub use log::{init_logging, parse_facility, LogError, LogTarget};
pub use pidfile::{PidFile, PidFileError};
pub use signals::{reset_signals_for_exec, DaemonSignal, SignalError, SignalFd};
pub use subsystem::{Subsystem, Tag};
pub use timer::{TimerId, TimerQueue};
