//! Pid file: refuses to start a second daemon, replaces stale files, and is
//! removed on exit only while it still names us.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{getpid, Pid};

#[derive(Debug)]
pub enum PidFileError {
    /// Another live instance holds the file.
    AlreadyRunning {
        path: PathBuf,
        pid: i32,
    },
    Write {
        path: PathBuf,
        source: io::Error,
    },
    Remove {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for PidFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidFileError::AlreadyRunning { path, pid } => write!(
                f,
                "daemon is already running with pid {pid} (pid file {})",
                path.display()
            ),
            PidFileError::Write { path, source } => {
                write!(f, "cannot write pid file {}: {source}", path.display())
            }
            PidFileError::Remove { path, source } => {
                write!(f, "cannot remove pid file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for PidFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PidFileError::AlreadyRunning { .. } => None,
            PidFileError::Write { source, .. } | PidFileError::Remove { source, .. } => {
                Some(source)
            }
        }
    }
}

/// A pid file we wrote. Create it after daemonizing: it records the pid of
/// the calling process.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    removed: bool,
}

/// `/proc/PID/comm` holds at most 15 bytes of the program name.
const COMM_MAX: usize = 15;

fn read_pid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse::<i32>().ok().filter(|pid| *pid > 0)
}

fn is_alive(pid: i32) -> bool {
    // EPERM: it exists but belongs to someone else.
    matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

fn comm_of(pid: i32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_owned())
}

fn comm_matches(actual: &str, expected: &str) -> bool {
    let expected = expected.as_bytes();
    actual.as_bytes() == &expected[..expected.len().min(COMM_MAX)]
}

fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "pid file path has no file name",
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", getpid()));
    let temp_path = path.with_file_name(temp_name);
    let result = std::fs::File::create(&temp_path)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp_path, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp_path);
    }
    result
}

impl PidFile {
    /// Writes our pid to `path`, unless it names a live process other than us
    /// whose command name is `expected_comm` (our binary, `keepalived`).
    pub fn create(path: &Path, expected_comm: &str) -> Result<PidFile, PidFileError> {
        let own_pid = getpid().as_raw();
        match read_pid(path) {
            Some(pid) if pid == own_pid => {}
            Some(pid)
                if is_alive(pid)
                    && comm_of(pid).is_some_and(|c| comm_matches(&c, expected_comm)) =>
            {
                return Err(PidFileError::AlreadyRunning {
                    path: path.to_owned(),
                    pid,
                });
            }
            Some(pid) => log::warn!(
                "replacing stale pid file {} (pid {pid} is not a running {expected_comm})",
                path.display()
            ),
            None if path.exists() => {
                log::warn!("replacing unreadable pid file {}", path.display())
            }
            None => {}
        }
        write_atomically(path, &format!("{own_pid}\n")).map_err(|source| PidFileError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(PidFile {
            path: path.to_owned(),
            removed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it still holds the current pid (a successor may
    /// have replaced it, or we may be a forked child that must not touch it).
    pub fn remove(mut self) -> Result<(), PidFileError> {
        self.remove_if_ours()
    }

    fn remove_if_ours(&mut self) -> Result<(), PidFileError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        if read_pid(&self.path) != Some(getpid().as_raw()) {
            return Ok(());
        }
        match std::fs::remove_file(&self.path) {
            Err(source) if source.kind() != io::ErrorKind::NotFound => Err(PidFileError::Remove {
                path: self.path.clone(),
                source,
            }),
            _ => Ok(()),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(err) = self.remove_if_ours() {
            log::warn!("{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh directory per test, without the tempfile crate.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new() -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("ka-pidfile-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create test dir");
            TestDir(dir)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn own_comm() -> String {
        comm_of(std::process::id() as i32).expect("own comm")
    }

    #[test]
    fn writes_and_removes_own_pid() {
        let dir = TestDir::new();
        let path = dir.0.join("keepalived.pid");
        let pid_file = PidFile::create(&path, "keepalived").expect("create");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            format!("{}\n", std::process::id())
        );
        // Only the pid file itself is left: the temp file was renamed.
        assert_eq!(std::fs::read_dir(&dir.0).expect("list").count(), 1);
        pid_file.remove().expect("remove");
        assert!(!path.exists());
    }

    #[test]
    fn refuses_a_live_instance() {
        let dir = TestDir::new();
        let path = dir.0.join("keepalived.pid");
        // Pid 1 is alive; pretend its name is what we expect.
        std::fs::write(&path, "1\n").expect("seed");
        let init_comm = comm_of(1).expect("pid 1 comm");
        match PidFile::create(&path, &init_comm) {
            Err(PidFileError::AlreadyRunning { pid: 1, .. }) => {}
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "1\n");
    }

    #[test]
    fn replaces_stale_files() {
        let dir = TestDir::new();
        let path = dir.0.join("keepalived.pid");
        // A live process with a different name, garbage, a dead pid, ourselves.
        let own = std::process::id().to_string();
        for stale in ["1\n", "not a pid", "", "-5", "2147483646", own.as_str()] {
            std::fs::write(&path, stale).expect("seed");
            let pid_file = PidFile::create(&path, "no-such-comm").expect("replace stale");
            assert_eq!(
                std::fs::read_to_string(&path).expect("read"),
                format!("{own}\n")
            );
            drop(pid_file);
            assert!(!path.exists(), "drop removes our file");
        }
        // Our own pid under our own name is not "another instance" either.
        PidFile::create(&path, &own_comm()).expect("own pid");
    }

    #[test]
    fn leaves_a_successors_file_alone() {
        let dir = TestDir::new();
        let path = dir.0.join("keepalived.pid");
        let pid_file = PidFile::create(&path, "keepalived").expect("create");
        std::fs::write(&path, "12345\n").expect("successor");
        pid_file.remove().expect("remove");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "12345\n");
    }

    #[test]
    fn reports_unwritable_directory() {
        let path = Path::new("/nonexistent-dir/keepalived.pid");
        assert!(matches!(
            PidFile::create(path, "keepalived"),
            Err(PidFileError::Write { .. })
        ));
    }
}
