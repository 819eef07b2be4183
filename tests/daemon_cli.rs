//! The daemon as users run it: `keepalived -n -l -f seed.conf`. It logs the
//! parsed instances, reloads on SIGHUP (keeping the running configuration
//! when the new one is broken), refuses a second instance on the same pid
//! file, and exits cleanly on SIGTERM, removing its pid file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keepalived");

/// The daemon now does real network work (VRRP sockets, VIPs, checks), so
/// as root it runs in a private, empty network namespace: nothing it does
/// can reach the host's interfaces. Without root it cannot open raw sockets
/// or change addresses at all.
struct Netns(Option<String>);

impl Netns {
    fn new(tag: &str) -> Netns {
        if !nix::unistd::geteuid().is_root() {
            return Netns(None);
        }
        let name = format!("kars-cli-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        Netns(Some(name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(name) = &self.0 {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// `keepalived -n -l -G -f CONF -p PID`: foreground, console log only.
fn foreground(conf: &Path, pid: &Path, ns: &Netns) -> Command {
    let mut cmd = match &ns.0 {
        Some(name) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", name, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    cmd.args(["-n", "-l", "-G", "-f"])
        .arg(conf)
        .arg("-p")
        .arg(pid);
    cmd
}

struct Daemon {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(conf: &Path, pid: &Path, ns: &Netns) -> Daemon {
        let mut child = foreground(conf, pid, ns)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start keepalived");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line containing {needle:?}; saw:\n{}",
            self.seen.join("\n")
        );
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kars-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn starts_logs_reloads_and_stops_cleanly() {
    use nix::sys::signal::Signal;
    let dir = workdir("daemon");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/seeds/001_sync_dual_master_ka67.conf");
    let conf = dir.join("keepalived.conf");
    std::fs::copy(&seed, &conf).unwrap();
    let pid_file = dir.join("keepalived.pid");

    let ns = Netns::new("daemon");
    let mut d = Daemon::start(&conf, &pid_file, &ns);
    d.expect("Starting Keepalived-rs");
    d.expect("(External_1) VRRP instance: state MASTER, interface eth1, vrid 171, priority 100");
    d.expect("(Internal_2) VRRP instance: state BACKUP, interface eth2, vrid 192, priority 95");
    d.expect("Sync group VG_1: External_1, Internal_1");
    d.expect("Configuration loaded: 4 VRRP instance(s)");
    let recorded: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(recorded, d.child.id(), "pid file names the daemon");

    // A second daemon on the same pid file refuses to start.
    let second = foreground(&conf, &pid_file, &ns).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&recorded.to_string()), "{err}");

    // SIGHUP with a changed, valid config: the new values are in force.
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replacen("priority 95", "priority 90", 1)).unwrap();
    d.signal(Signal::SIGHUP);
    d.expect("Reloading configuration file");
    d.expect("(External_2) VRRP instance: state BACKUP, interface eth1, vrid 172, priority 90");
    d.expect("Reload finished");

    // SIGHUP with a broken config: errors logged, old config kept.
    std::fs::write(
        &conf,
        text.replacen("virtual_router_id 171", "virtual_router_id 0", 1),
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    let line = d.expect("error: 'virtual_router_id': expected an integer 1..255, found '0'");
    assert!(line.contains("keepalived.conf:26:"), "{line}");
    d.expect("Reload failed: the new configuration has errors; keeping the running configuration");

    // SIGUSR1 writes the running configuration.
    let _ = std::fs::remove_file("/tmp/keepalived.data");
    d.signal(Signal::SIGUSR1);
    d.expect("Wrote /tmp/keepalived.data");
    let data = std::fs::read_to_string("/tmp/keepalived.data").unwrap();
    assert!(
        data.contains("virtual_router_id 171"),
        "the kept config is the one in force"
    );
    assert!(data.contains("priority 90"));

    d.signal(Signal::SIGTERM);
    d.expect("Stopped Keepalived-rs");
    let status = d.wait_exit();
    assert_eq!(status.code(), Some(0));
    assert!(!pid_file.exists(), "pid file removed on exit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_to_start_on_a_broken_config() {
    let dir = workdir("broken");
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/broken/bad_values.conf");
    let pid_file = dir.join("keepalived.pid");
    let out = foreground(&conf, &pid_file, &Netns(None)).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad_values.conf:8:14: error: 'priority'"),
        "{err}"
    );
    assert!(
        err.contains("Configuration has errors; not starting"),
        "{err}"
    );
    assert!(!pid_file.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_test_and_version_flags() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seeds");
    let ok = Command::new(BIN)
        .arg("-t")
        .arg("-f")
        .arg(seeds.join("002_lvs_dr_tcp_check_master.conf"))
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let err = String::from_utf8_lossy(&ok.stderr);
    assert!(
        err.contains(
            "002_lvs_dr_tcp_check_master.conf:42:10: warning: 'nb_get_retry' is deprecated"
        ),
        "{err}"
    );

    let broken =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/broken/missing_required.conf");
    let bad = Command::new(BIN)
        .args(["--config-test", "--use-file"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));

    let v = Command::new(BIN).arg("-v").output().unwrap();
    assert_eq!(v.status.code(), Some(0));
    let v = String::from_utf8_lossy(&v.stdout);
    assert!(v.starts_with("Keepalived-rs v0.1.0 (git "), "{v}");

    let unknown = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown option '--bogus'"));

    // -d output re-parses to the same configuration (the library test checks
    // model equality; here the binary's own output must pass -t cleanly).
    let dumped = Command::new(BIN)
        .args(["-t", "-d", "-f"])
        .arg(seeds.join("000_http_get.conf"))
        .output()
        .unwrap();
    let dir = workdir("dump");
    let again = dir.join("dump.conf");
    std::fs::write(&again, &dumped.stdout).unwrap();
    let check = Command::new(BIN)
        .arg("-t")
        .arg("-f")
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0));
    assert!(
        check.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
