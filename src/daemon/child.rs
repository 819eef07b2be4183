//! Child processes for scripts (`script`, `notify_*`, `misc_path`).
//!
//! Commands are split into words by [`split_command`] and run with fork +
//! execve, never through an implicit `/bin/sh`; whoever wants a shell writes
//! `/bin/sh -c "..."`. A bare program name is looked up in `PATH` at spawn
//! time (execvp semantics), in the parent, so the forked child only has to
//! call async-signal-safe functions.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, setpgid, ForkResult, Pid};

use super::signals::reset_signals_for_exec;

/// How long a timed-out child gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// `PATH` used when neither the spec nor the daemon's environment has one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A quote opened at byte `offset` is never closed.
    UnterminatedQuote { quote: char, offset: usize },
    /// The line ends with a lone backslash.
    TrailingBackslash,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::UnterminatedQuote { quote, offset } => {
                write!(f, "unterminated {quote} quote starting at offset {offset}")
            }
            SplitError::TrailingBackslash => write!(f, "command ends with a lone backslash"),
        }
    }
}

impl std::error::Error for SplitError {}

/// Splits a script line into argv words.
///
/// Rules (keepalived's, without any shell expansion):
/// - unquoted whitespace separates words; runs of it count once;
/// - `'...'` groups everything literally up to the next `'`;
/// - `"..."` groups up to the next unescaped `"`; inside, `\` escapes any char;
/// - outside quotes `\` makes the next char literal (`e\ f` is one word);
/// - quoted and unquoted parts touching each other form one word (`a"b c"` is
///   `ab c`), and `""` is an empty word;
/// - an unterminated quote or a trailing lone `\` is an error.
pub fn split_command(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.char_indices();
    while let Some((offset, ch)) = chars.next() {
        match ch {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                let (_, escaped) = chars.next().ok_or(SplitError::TrailingBackslash)?;
                word.push(escaped);
                in_word = true;
            }
            '\'' | '"' => {
                let unterminated = SplitError::UnterminatedQuote { quote: ch, offset };
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, c)) if c == ch => break,
                        Some((_, '\\')) if ch == '"' => {
                            let (_, escaped) = chars.next().ok_or(unterminated.clone())?;
                            word.push(escaped);
                        }
                        Some((_, c)) => word.push(c),
                        None => return Err(unterminated),
                    }
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Credentials a script runs with (keepalived's `script_user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// A `script_user` / `user` setting that names no account here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAsError {
    UnknownUser(String),
    UnknownGroup(String),
    Lookup { name: String, errno: Errno },
}

impl fmt::Display for RunAsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunAsError::UnknownUser(u) => write!(f, "no such user '{u}'"),
            RunAsError::UnknownGroup(g) => write!(f, "no such group '{g}'"),
            RunAsError::Lookup { name, errno } => write!(f, "cannot look up '{name}': {errno}"),
        }
    }
}

impl std::error::Error for RunAsError {}

impl RunAs {
    /// keepalived's `USER [GROUP]`: the group defaults to the user's
    /// primary group. Names are looked up in the passwd/group databases.
    pub fn from_names(user: &str, group: Option<&str>) -> Result<RunAs, RunAsError> {
        let lookup = |errno| RunAsError::Lookup {
            name: user.to_string(),
            errno,
        };
        let account = nix::unistd::User::from_name(user)
            .map_err(lookup)?
            .ok_or_else(|| RunAsError::UnknownUser(user.to_string()))?;
        let gid = match group {
            None => account.gid.as_raw(),
            Some(g) => nix::unistd::Group::from_name(g)
                .map_err(|errno| RunAsError::Lookup {
                    name: g.to_string(),
                    errno,
                })?
                .ok_or_else(|| RunAsError::UnknownGroup(g.to_string()))?
                .gid
                .as_raw(),
        };
        Ok(RunAs {
            uid: account.uid.as_raw(),
            gid,
        })
    }
}

/// What to run, and who asked for it (`owner` comes back in [`ChildExit`]).
#[derive(Debug, Clone)]
pub struct ChildSpec<O> {
    pub argv: Vec<String>,
    pub run_as: Option<RunAs>,
    pub timeout: Option<Duration>,
    /// Added to (or overriding) the daemon's own environment.
    pub env: Vec<(String, String)>,
    pub owner: O,
}

impl<O> ChildSpec<O> {
    pub fn new(argv: Vec<String>, owner: O) -> Self {
        ChildSpec {
            argv,
            run_as: None,
            timeout: None,
            env: Vec::new(),
            owner,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// Normal exit with this code. Exec failures exit 127 (program missing)
    /// or 126 (not executable, bad credentials), like a shell.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
    /// Overran its timeout and was killed.
    TimedOut,
    /// Reaped by someone else (SIGCHLD ignored?): status unknown.
    Lost,
}

impl ChildStatus {
    pub fn success(&self) -> bool {
        *self == ChildStatus::Exited(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildExit<O> {
    pub id: ChildId,
    pub owner: O,
    pub pid: Pid,
    pub status: ChildStatus,
    pub runtime: Duration,
}

#[derive(Debug)]
pub enum ChildError {
    EmptyCommand,
    /// An argument or environment entry contains a NUL byte (or `=` in a name).
    InvalidString {
        text: String,
    },
    /// A bare program name was not found in `PATH`.
    NotFound {
        program: String,
    },
    DevNull(io::Error),
    Fork(Errno),
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::EmptyCommand => write!(f, "empty command"),
            ChildError::InvalidString { text } => {
                write!(f, "invalid argument or environment entry {text:?}")
            }
            ChildError::NotFound { program } => write!(f, "{program}: not found in PATH"),
            ChildError::DevNull(err) => write!(f, "cannot open /dev/null: {err}"),
            ChildError::Fork(errno) => write!(f, "fork failed: {errno}"),
        }
    }
}

impl std::error::Error for ChildError {}

/// Everything the forked child needs, built before fork so the child never
/// allocates (malloc is not async-signal-safe).
struct PreparedExec {
    program: CString,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    // Own the strings the pointer arrays point into.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    dev_null: File,
    run_as: Option<RunAs>,
}

fn to_cstring(bytes: Vec<u8>) -> Result<CString, ChildError> {
    CString::new(bytes).map_err(|err| ChildError::InvalidString {
        text: String::from_utf8_lossy(&err.into_vec()).into_owned(),
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// execvp's lookup, minus its habit of treating empty `PATH` entries as the
/// current directory (a daemon's cwd is `/`, never what the user meant).
fn resolve_program(program: &str, search_path: &OsStr) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    search_path
        .as_bytes()
        .split(|&b| b == b':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(OsStr::from_bytes(dir)).join(program))
        .find(|candidate| is_executable_file(candidate))
}

fn build_environment(extra: &[(String, String)]) -> Result<Vec<CString>, ChildError> {
    let mut entries = Vec::new();
    for (name, value) in std::env::vars_os() {
        if extra
            .iter()
            .any(|(key, _)| key.as_bytes() == name.as_bytes())
        {
            continue;
        }
        let mut entry = name.into_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        entries.push(to_cstring(entry)?);
    }
    for (name, value) in extra {
        if name.is_empty() || name.contains('=') {
            return Err(ChildError::InvalidString { text: name.clone() });
        }
        entries.push(to_cstring(format!("{name}={value}").into_bytes())?);
    }
    Ok(entries)
}

fn prepare<O>(spec: &ChildSpec<O>) -> Result<PreparedExec, ChildError> {
    let program_name = spec.argv.first().ok_or(ChildError::EmptyCommand)?;
    let search_path = spec
        .env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| OsString::from(value))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let program_path =
        resolve_program(program_name, &search_path).ok_or_else(|| ChildError::NotFound {
            program: program_name.clone(),
        })?;
    let program = to_cstring(program_path.into_os_string().into_vec())?;
    let argv = spec
        .argv
        .iter()
        .map(|arg| to_cstring(arg.clone().into_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = build_environment(&spec.env)?;
    // std opens with O_CLOEXEC, so the child's copy vanishes at exec.
    let dev_null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(ChildError::DevNull)?;
    Ok(PreparedExec {
        program,
        argv_ptrs: null_terminated(&argv),
        envp_ptrs: null_terminated(&envp),
        _argv: argv,
        _envp: envp,
        dev_null,
        run_as: spec.run_as,
    })
}

/// Runs in the forked child: only async-signal-safe calls, no allocation,
/// never returns.
fn exec_prepared(prepared: &PreparedExec) -> ! {
    // SAFETY: raw syscalls on memory prepared before fork; every pointer array
    // is NUL-terminated and its strings outlive the call (we exec or _exit).
    unsafe {
        // Own process group, so a timeout kills the script's children too.
        libc::setpgid(0, 0);
        reset_signals_for_exec();
        let null_fd = prepared.dev_null.as_raw_fd();
        for target in 0..=2 {
            let redirected = if null_fd == target {
                // dup2 onto itself would keep O_CLOEXEC and lose the fd at exec.
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(null_fd, target)
            };
            if redirected < 0 {
                libc::_exit(126);
            }
        }
        if let Some(ids) = prepared.run_as {
            // Groups first: after setuid we would no longer be allowed to.
            let gid: libc::gid_t = ids.gid;
            if libc::setgroups(1, &gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(ids.uid) != 0
            {
                libc::_exit(126);
            }
        }
        libc::execve(
            prepared.program.as_ptr(),
            prepared.argv_ptrs.as_ptr(),
            prepared.envp_ptrs.as_ptr(),
        );
        let code = if Errno::last_raw() == libc::ENOENT {
            127
        } else {
            126
        };
        libc::_exit(code)
    }
}

#[derive(Debug)]
struct RunningChild<O> {
    id: ChildId,
    pid: Pid,
    owner: O,
    program: String,
    started: Instant,
    /// SIGTERM the group at this instant.
    timeout_at: Option<Instant>,
    /// Set once SIGTERM was sent: SIGKILL the group at this instant.
    kill_at: Option<Instant>,
    timed_out: bool,
}

impl<O> RunningChild<O> {
    fn next_deadline(&self) -> Option<Instant> {
        if self.timed_out {
            self.kill_at
        } else {
            self.timeout_at
        }
    }

    fn signal_group(&self, signal: Signal) {
        // The pid stays ours (a zombie at worst) until we reap it, so the
        // group id cannot have been recycled. ESRCH just means all are gone.
        if let Err(errno) = killpg(self.pid, signal) {
            if errno != Errno::ESRCH {
                log::warn!(
                    "cannot send {signal} to {} (pid {}): {errno}",
                    self.program,
                    self.pid
                );
            }
        }
    }
}

/// Spawns, times out and reaps script children. `O` identifies the owner of
/// each child (a VRRP script, a checker, ...).
#[derive(Debug)]
pub struct ChildRunner<O> {
    children: Vec<RunningChild<O>>,
    next_id: u64,
}

impl<O> Default for ChildRunner<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O> ChildRunner<O> {
    pub fn new() -> Self {
        ChildRunner {
            children: Vec::new(),
            next_id: 0,
        }
    }

    /// Forks and execs `spec`. Must be called from a single-threaded process
    /// in production (the daemon); the child only calls async-signal-safe
    /// functions, so tests in a threaded harness are fine too.
    pub fn spawn(&mut self, spec: ChildSpec<O>, now: Instant) -> Result<ChildId, ChildError> {
        let prepared = prepare(&spec)?;
        // SAFETY: the child branch only runs `exec_prepared`, which is
        // async-signal-safe and ends in execve or _exit.
        let pid = match unsafe { fork() } {
            Ok(ForkResult::Parent { child }) => child,
            Ok(ForkResult::Child) => exec_prepared(&prepared),
            Err(errno) => return Err(ChildError::Fork(errno)),
        };
        // Also set the group from this side: a timeout may fire before the
        // child runs. EACCES (child already exec'd) means it did it itself.
        let _ = setpgid(pid, pid);
        let id = ChildId(self.next_id);
        self.next_id += 1;
        self.children.push(RunningChild {
            id,
            pid,
            program: spec.argv.first().cloned().unwrap_or_default(),
            owner: spec.owner,
            started: now,
            timeout_at: spec.timeout.map(|timeout| now + timeout),
            kill_at: None,
            timed_out: false,
        });
        Ok(id)
    }

    /// Collects every child of ours that has exited. Waits per pid rather than
    /// on -1 so children spawned by other code are never stolen.
    pub fn reap(&mut self, now: Instant) -> Vec<ChildExit<O>> {
        let mut exits = Vec::new();
        let mut index = 0;
        while index < self.children.len() {
            let Some(status) = try_wait(self.children[index].pid) else {
                index += 1;
                continue;
            };
            let child = self.children.swap_remove(index);
            let status = if child.timed_out {
                ChildStatus::TimedOut
            } else {
                status
            };
            exits.push(ChildExit {
                id: child.id,
                owner: child.owner,
                pid: child.pid,
                status,
                runtime: now.saturating_duration_since(child.started),
            });
        }
        exits.sort_by_key(|exit| exit.id);
        exits
    }

    /// Earliest instant at which `handle_timeouts` has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.children
            .iter()
            .filter_map(RunningChild::next_deadline)
            .min()
    }

    /// On timeout, SIGTERM the child's process group, then SIGKILL it
    /// [`KILL_GRACE`] later if the child is still not reaped. The exit is
    /// reported by `reap` as `TimedOut`.
    pub fn handle_timeouts(&mut self, now: Instant) {
        for child in &mut self.children {
            match (child.timed_out, child.timeout_at, child.kill_at) {
                (false, Some(timeout_at), _) if timeout_at <= now => {
                    log::warn!(
                        "{} (pid {}) timed out, sending SIGTERM",
                        child.program,
                        child.pid
                    );
                    child.timed_out = true;
                    child.kill_at = Some(now + KILL_GRACE);
                    child.signal_group(Signal::SIGTERM);
                }
                (true, _, Some(kill_at)) if kill_at <= now => {
                    log::warn!(
                        "{} (pid {}) ignored SIGTERM, sending SIGKILL",
                        child.program,
                        child.pid
                    );
                    child.kill_at = None;
                    child.signal_group(Signal::SIGKILL);
                }
                _ => {}
            }
        }
    }

    /// SIGKILLs every running child's process group (shutdown). Their exits
    /// are still reported by `reap`.
    pub fn kill_all(&mut self) {
        for child in &mut self.children {
            child.kill_at = None;
            child.signal_group(Signal::SIGKILL);
        }
    }

    /// Pid of a child that has not been reaped yet.
    pub fn pid_of(&self, id: ChildId) -> Option<Pid> {
        self.children
            .iter()
            .find(|child| child.id == id)
            .map(|child| child.pid)
    }

    pub fn running(&self) -> usize {
        self.children.len()
    }
}

/// Non-blocking wait for one pid; `None` while it is still running.
fn try_wait(pid: Pid) -> Option<ChildStatus> {
    loop {
        return match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Some(ChildStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(ChildStatus::Signaled(signal as i32)),
            Ok(_) => None,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => Some(ChildStatus::Lost),
            Err(_) => None,
        };
    }
}

#[cfg(test)]
mod run_as_tests {
    use super::*;

    #[test]
    fn resolves_names_like_keepalived() {
        assert_eq!(
            RunAs::from_names("root", None),
            Ok(RunAs { uid: 0, gid: 0 })
        );
        assert_eq!(
            RunAs::from_names("root", Some("root")),
            Ok(RunAs { uid: 0, gid: 0 })
        );
        assert_eq!(
            RunAs::from_names("no-such-user-kars", None),
            Err(RunAsError::UnknownUser("no-such-user-kars".into()))
        );
        assert_eq!(
            RunAs::from_names("root", Some("no-such-group-kars")),
            Err(RunAsError::UnknownGroup("no-such-group-kars".into()))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_command(line).expect("valid command line")
    }

    #[test]
    fn splits_words_quotes_and_escapes() {
        assert_eq!(
            split(r#"/bin/notify.sh "a b" 'c d' e\ f"#),
            ["/bin/notify.sh", "a b", "c d", "e f"]
        );
        assert_eq!(split("  a \t b  "), ["a", "b"]);
        assert_eq!(split(""), Vec::<String>::new());
        assert_eq!(split("   "), Vec::<String>::new());
        assert_eq!(split(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(split(r#"x "" ''"#), ["x", "", ""]);
        assert_eq!(split(r#"'a "b" c'"#), [r#"a "b" c"#]);
        assert_eq!(split(r#""it's""#), ["it's"]);
        assert_eq!(split(r#"'no \escape'"#), [r"no \escape"]);
        assert_eq!(split(r#""say \"hi\" \\""#), [r#"say "hi" \"#]);
        assert_eq!(split(r"a\'b"), ["a'b"]);
        assert_eq!(
            split(r#"/bin/sh -c "echo $X > /tmp/f""#),
            ["/bin/sh", "-c", "echo $X > /tmp/f"]
        );
        assert_eq!(split("ünïcode 'wörds'"), ["ünïcode", "wörds"]);
    }

    #[test]
    fn rejects_unterminated_quotes_and_trailing_backslash() {
        assert_eq!(
            split_command(r#"a "b c"#),
            Err(SplitError::UnterminatedQuote {
                quote: '"',
                offset: 2
            })
        );
        assert_eq!(
            split_command("a 'b"),
            Err(SplitError::UnterminatedQuote {
                quote: '\'',
                offset: 2
            })
        );
        assert_eq!(
            split_command(r#"a "b\"#),
            Err(SplitError::UnterminatedQuote {
                quote: '"',
                offset: 2
            })
        );
        assert_eq!(split_command(r"a b\"), Err(SplitError::TrailingBackslash));
    }

    fn command(line: &str) -> ChildSpec<u32> {
        ChildSpec::new(split(line), 7)
    }

    /// Drives timeouts and reaping until `count` exits, failing after `limit`.
    fn wait_exits(
        runner: &mut ChildRunner<u32>,
        count: usize,
        limit: Duration,
    ) -> Vec<ChildExit<u32>> {
        let start = Instant::now();
        let mut exits = Vec::new();
        while exits.len() < count {
            let now = Instant::now();
            assert!(
                now - start < limit,
                "children did not exit within {limit:?}"
            );
            runner.handle_timeouts(now);
            exits.extend(runner.reap(now));
            std::thread::sleep(Duration::from_millis(5));
        }
        exits
    }

    fn run_one(spec: ChildSpec<u32>) -> ChildExit<u32> {
        let mut runner = ChildRunner::new();
        let id = runner.spawn(spec, Instant::now()).expect("spawn");
        let exit = wait_exits(&mut runner, 1, Duration::from_secs(10)).remove(0);
        assert_eq!((exit.id, exit.owner), (id, 7));
        assert_eq!(runner.running(), 0);
        exit
    }

    #[test]
    fn reports_exit_codes() {
        assert_eq!(run_one(command("/bin/true")).status, ChildStatus::Exited(0));
        assert_eq!(
            run_one(command("/bin/sh -c 'exit 3'")).status,
            ChildStatus::Exited(3)
        );
        // Bare names go through PATH; no shell is involved.
        assert_eq!(run_one(command("false")).status, ChildStatus::Exited(1));
        assert_eq!(
            run_one(command("/bin/sh -c 'kill -USR1 $$'")).status,
            ChildStatus::Signaled(libc::SIGUSR1)
        );
    }

    #[test]
    fn missing_programs() {
        assert_eq!(
            run_one(command("/nonexistent/program")).status,
            ChildStatus::Exited(127)
        );
        assert_eq!(
            run_one(command("/etc/hostname")).status,
            ChildStatus::Exited(126)
        );
        let mut runner = ChildRunner::new();
        let error = runner.spawn(command("no-such-program-xyz"), Instant::now());
        assert!(
            matches!(error, Err(ChildError::NotFound { .. })),
            "{error:?}"
        );
        let error = runner.spawn(ChildSpec::new(Vec::new(), 1), Instant::now());
        assert!(matches!(error, Err(ChildError::EmptyCommand)), "{error:?}");
        assert_eq!(runner.running(), 0);
    }

    #[test]
    fn passes_environment_and_uses_dev_null() {
        let mut spec = command(
            r#"/bin/sh -c 'test "$KA_TEST" = "a b" || exit 1; if read line; then exit 2; fi'"#,
        );
        spec.env.push(("KA_TEST".into(), "a b".into()));
        assert_eq!(run_one(spec).status, ChildStatus::Exited(0));
    }

    #[test]
    fn times_out_and_kills_the_group() {
        let mut runner = ChildRunner::new();
        let mut spec = command("/bin/sh -c 'sleep 10 & sleep 10'");
        spec.timeout = Some(Duration::from_millis(200));
        let start = Instant::now();
        runner.spawn(spec, start).expect("spawn");
        assert!(runner.next_deadline().is_some());
        let exit = wait_exits(&mut runner, 1, Duration::from_secs(5)).remove(0);
        assert_eq!(exit.status, ChildStatus::TimedOut);
        assert!(exit.runtime >= Duration::from_millis(200));
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "SIGTERM should suffice"
        );
        assert!(!Path::new(&format!("/proc/{}", exit.pid)).exists());
        assert_eq!(runner.next_deadline(), None);
    }

    #[test]
    fn child_gets_own_group_and_clean_signal_state() {
        // Block a signal in this (test) thread: the child must not inherit it.
        let mut usr1 = nix::sys::signal::SigSet::empty();
        usr1.add(Signal::SIGUSR1);
        usr1.thread_block().expect("block");
        let mut runner = ChildRunner::new();
        let spawned = runner.spawn(command("sleep 10"), Instant::now());
        usr1.thread_unblock().expect("unblock");
        let pid = runner
            .pid_of(spawned.expect("spawn"))
            .expect("running")
            .as_raw();
        // Wait for exec: before it, the child still runs our image.
        let start = Instant::now();
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n"
        {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "child never exec'd"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let after_comm = stat.rsplit(')').next().unwrap_or_default();
        let process_group: Vec<&str> = after_comm.split_whitespace().take(3).collect();
        assert_eq!(process_group.get(2), Some(&pid.to_string().as_str()));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let mask_of = |field: &str| {
            let line = status.lines().find(|l| l.starts_with(field)).expect(field);
            u64::from_str_radix(line.trim_start_matches(field).trim(), 16).expect("hex mask")
        };
        // The test process blocks nothing but ignores SIGPIPE (Rust runtime);
        // the child must have neither. (Some programs ignore realtime
        // signals 32/33 themselves, so only check the standard ones.)
        assert_eq!(mask_of("SigBlk:") & 0xffff_ffff, 0);
        assert_eq!(mask_of("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0);
        runner.kill_all();
        let exit = wait_exits(&mut runner, 1, Duration::from_secs(5)).remove(0);
        assert_eq!(exit.status, ChildStatus::Signaled(libc::SIGKILL));
    }

    #[test]
    fn runs_as_another_user_when_root() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let mut spec =
            command(r#"/bin/sh -c 'test "$(id -u):$(id -g):$(id -G)" = "65534:65533:65533"'"#);
        spec.run_as = Some(RunAs {
            uid: 65534,
            gid: 65533,
        });
        assert_eq!(run_one(spec).status, ChildStatus::Exited(0));
    }
}
