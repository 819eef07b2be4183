//! Harness for tests that need real IPVS: boots the x86_64 test VM
//! (`images/run-vm.sh`, Debian's kernel under qemu) with one scenario script
//! and returns what the scenario printed.
//!
//! Use from an integration test with `mod vm;`:
//!
//! ```ignore
//! mod vm;
//!
//! #[test]
//! fn dr_round_robin() {
//!     if !vm::require() {
//!         return;
//!     }
//!     let log = vm::run_scenario(
//!         "dr-rr",
//!         ". /lib/krs/topo.sh\ntopo_dr 1\n...\nkrs_result served PASS\n",
//!         &[("keepalived.conf", b"global_defs {}\n")],
//!     )
//!     .expect("VM run");
//!     log.assert_pass();
//!     vm::note(&log.timings());
//! }
//! ```
//!
//! The scenario is a shell script run by the VM's `/init` as
//! `/scenario/run.sh` (bash; `. /lib/krs/topo.sh` for the LVS topologies,
//! `. /lib/krs/lib.sh` for the markers alone). `files` land under
//! `/scenario/` (relative names) or at their absolute path; contents that
//! start with `#!` are made executable. The scenario
//! reports with `krs_result NAME PASS|FAIL detail` and can send files back
//! with `krs_export NAME FILE` (see [`ScenarioLog::files`]).
//!
//! VM runs are serialised: a mutex within a test binary, and `run-vm.sh`
//! holds a machine-wide lock (`/tmp/keepalived-rs-vm.lock`), since the
//! machines have two cores and TCG needs both.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default hard limit for one VM run (boot + scenario), enforced by
/// `run-vm.sh` (it kills qemu by PID).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

static VM_LOCK: Mutex<()> = Mutex::new(());

/// One `KRS-RESULT NAME PASS|FAIL DETAIL` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmResult {
    pub name: String,
    pub pass: bool,
    pub detail: String,
}

/// What one VM run produced.
#[derive(Debug, Clone)]
pub struct ScenarioLog {
    pub name: String,
    /// Console lines (CR dropped; firmware escape codes before a `KRS-`
    /// marker removed).
    pub lines: Vec<String>,
    /// The `KRS-RESULT` lines, in order.
    pub results: Vec<VmResult>,
    /// The scenario's exit status (`KRS-DONE rc=N`; 137 = killed by the
    /// in-VM timeout).
    pub rc: i32,
    /// Files sent with `krs_export NAME FILE`, by NAME.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Modules that did not load (`KRS-MODULE-FAIL`).
    pub module_failures: Vec<String>,
    /// The serial console log on the host (kept for debugging).
    pub log_path: PathBuf,
    /// Host wall time of the whole run (lock wait, image check, boot,
    /// scenario, power off).
    pub wall: Duration,
    /// `tcg` or `kvm`, as run-vm.sh reported.
    pub accel: String,
    /// Seconds waiting for the machine-wide VM lock (another VM running).
    pub lock_wait_secs: Option<f64>,
    /// Seconds spent checking/building the cached image.
    pub image_secs: Option<f64>,
    /// Seconds qemu ran.
    pub vm_secs: Option<f64>,
    /// Guest uptime when /init started, when modules were loaded (scenario
    /// start), and when the scenario ended.
    pub guest_init: Option<f64>,
    pub guest_ready: Option<f64>,
    pub guest_done: Option<f64>,
}

impl ScenarioLog {
    /// A file the scenario sent with `krs_export NAME FILE`, as text;
    /// panics naming it when the scenario did not send it.
    pub fn file_text(&self, name: &str) -> String {
        let bytes = self
            .files
            .get(name)
            .unwrap_or_else(|| panic!("no {name} from the VM ({})", self.log_path.display()));
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// The scenario exited 0 and no result failed.
    pub fn passed(&self) -> bool {
        self.rc == 0 && self.results.iter().all(|r| r.pass) && self.module_failures.is_empty()
    }

    pub fn result(&self, name: &str) -> Option<&VmResult> {
        self.results.iter().find(|r| r.name == name)
    }

    /// Console lines containing `needle`.
    pub fn grep<'a>(&'a self, needle: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .map(String::as_str)
            .filter(move |l| l.contains(needle))
    }

    /// Panics (with the failed results and the end of the console log)
    /// unless [`passed`](Self::passed); also when no result was reported.
    pub fn assert_pass(&self) {
        if self.passed() && !self.results.is_empty() {
            return;
        }
        let mut msg = format!(
            "VM scenario '{}' failed: rc={}, {} results, log {}\n",
            self.name,
            self.rc,
            self.results.len(),
            self.log_path.display()
        );
        for m in &self.module_failures {
            msg.push_str(&format!("  module not loaded: {m}\n"));
        }
        for r in self.results.iter().filter(|r| !r.pass) {
            msg.push_str(&format!("  FAIL {}: {}\n", r.name, r.detail));
        }
        if self.results.is_empty() {
            msg.push_str("  (no KRS-RESULT lines)\n");
        }
        msg.push_str("--- last console lines:\n");
        let start = self.lines.len().saturating_sub(40);
        for l in &self.lines[start..] {
            msg.push_str(l);
            msg.push('\n');
        }
        panic!("{msg}");
    }

    /// One line: accelerator and where the time went.
    pub fn timings(&self) -> String {
        let f = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1}"));
        format!(
            "vm '{}': {} results, accel {}, wall {:.1} s (lock wait {} s, image {} s, qemu {} s; \
             guest: /init at {} s, modules loaded at {} s, scenario done at {} s)",
            self.name,
            self.results.len(),
            self.accel,
            self.wall.as_secs_f64(),
            f(self.lock_wait_secs),
            f(self.image_secs),
            f(self.vm_secs),
            f(self.guest_init),
            f(self.guest_ready),
            f(self.guest_done),
        )
    }
}

/// Why a VM run could not produce a [`ScenarioLog`].
#[derive(Debug)]
pub enum VmError {
    /// Writing the scenario files or starting run-vm.sh failed.
    Io(String, std::io::Error),
    /// run-vm.sh failed before booting (status 3) or the VM never printed
    /// `KRS-DONE` (status 2: timeout, kernel panic, qemu error).
    Run {
        status: Option<i32>,
        output: String,
        log_tail: String,
    },
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::Io(what, e) => write!(f, "{what}: {e}"),
            VmError::Run {
                status,
                output,
                log_tail,
            } => write!(
                f,
                "run-vm.sh exited with {status:?}\n--- run-vm.sh output:\n{output}\n--- console tail:\n{log_tail}"
            ),
        }
    }
}

impl std::error::Error for VmError {}

/// `KEEPALIVED_RS_FULL_TEST=1` (tests/run.sh): missing prerequisites fail.
pub fn full_test() -> bool {
    std::env::var("KEEPALIVED_RS_FULL_TEST").is_ok_and(|v| v == "1")
}

/// Writes straight to the process's stderr, past libtest's output capture,
/// so skip reasons and timings show under a plain `cargo test`.
pub fn note(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{msg}");
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
pub fn target_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(Path::to_path_buf).unwrap_or(tmp)
}

/// Where the image, the logs and the scenario scratch files live.
pub fn vm_dir() -> PathBuf {
    std::env::var_os("KRS_VM_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("vm"))
}

/// The static musl build of the daemon that goes into the image
/// (`cargo build --release --target x86_64-unknown-linux-musl`), or
/// `KRS_BINARY`.
pub fn daemon_binary() -> PathBuf {
    std::env::var_os("KRS_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("x86_64-unknown-linux-musl/release/keepalived"))
}

fn in_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| fs::metadata(d.join(prog)).is_ok_and(|m| m.is_file()))
    })
}

fn missing_prerequisite() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the VM image build needs root: sudo)".into());
    }
    if !in_path("qemu-system-x86_64") {
        return Some("qemu-system-x86_64 not found (apt-get install qemu-system-x86)".into());
    }
    let kernel = fs::read_dir("/boot").ok().and_then(|d| {
        d.flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
    });
    if kernel.is_none() {
        return Some("no /boot/vmlinuz-* (apt-get install linux-image-amd64)".into());
    }
    for (prog, pkg) in [
        ("busybox", "busybox-static"),
        ("ipvsadm", "ipvsadm"),
        ("ip", "iproute2"),
        ("keepalived", "keepalived"),
        ("flock", "util-linux"),
    ] {
        let found = in_path(prog)
            || ["/usr/sbin", "/sbin", "/bin", "/usr/bin"]
                .iter()
                .any(|d| Path::new(d).join(prog).is_file());
        if !found {
            return Some(format!("{prog} not found (apt-get install {pkg})"));
        }
    }
    None
}

fn skip_or_panic(reason: &str) -> bool {
    if full_test() {
        panic!("VM test prerequisite missing with KEEPALIVED_RS_FULL_TEST=1: {reason}");
    }
    note(&format!("skipped (VM test): {reason}"));
    false
}

/// True when VM tests can run here. Otherwise prints why and returns false
/// (the test should return early), or panics under
/// `KEEPALIVED_RS_FULL_TEST=1`.
pub fn require() -> bool {
    match missing_prerequisite() {
        None => true,
        Some(reason) => skip_or_panic(&reason),
    }
}

/// [`require`] plus the static musl daemon binary for the image
/// (`/usr/bin/keepalived-rs` in the VM).
pub fn require_daemon() -> bool {
    if !require() {
        return false;
    }
    let bin = daemon_binary();
    if bin.is_file() {
        return true;
    }
    skip_or_panic(&format!(
        "{} missing: cargo build --release --target x86_64-unknown-linux-musl",
        bin.display()
    ))
}

/// Boots the VM with `script` as `/scenario/run.sh` and `files` (name or
/// absolute path in the VM, contents); waits at most [`DEFAULT_TIMEOUT`].
pub fn run_scenario(
    name: &str,
    script: &str,
    files: &[(&str, &[u8])],
) -> Result<ScenarioLog, VmError> {
    run_scenario_timeout(name, script, files, DEFAULT_TIMEOUT)
}

/// [`run_scenario`] with an explicit limit for the VM run.
pub fn run_scenario_timeout(
    name: &str,
    script: &str,
    files: &[(&str, &[u8])],
    timeout: Duration,
) -> Result<ScenarioLog, VmError> {
    let _guard = VM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let vm_dir = vm_dir();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let logs = vm_dir.join("logs");
    let scratch = vm_dir.join(format!("scenario-{safe}-{}", std::process::id()));
    let io = |what: String| move |e| VmError::Io(what, e);
    fs::create_dir_all(&logs).map_err(io(format!("mkdir {}", logs.display())))?;
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(io(format!("mkdir {}", scratch.display())))?;
    let cleanup = Cleanup(scratch.clone());

    let script_path = scratch.join("run.sh");
    fs::write(&script_path, script).map_err(io(format!("write {}", script_path.display())))?;
    let mut args = vec![
        script_path.display().to_string(),
        logs.join(format!("{safe}.log")).display().to_string(),
    ];
    for (i, (dest, data)) in files.iter().enumerate() {
        let src = scratch.join(format!("file{i}"));
        fs::write(&src, data).map_err(io(format!("write {}", src.display())))?;
        if data.starts_with(b"#!") {
            // Scripts (notify, track, MISC_CHECK) arrive executable.
            fs::set_permissions(&src, fs::Permissions::from_mode(0o755))
                .map_err(io(format!("chmod {}", src.display())))?;
        }
        args.push(format!("{}:{}", src.display(), dest));
    }
    let log_path = logs.join(format!("{safe}.log"));
    let out_path = logs.join(format!("{safe}.run.txt"));
    let out = fs::File::create(&out_path).map_err(io(format!("create {}", out_path.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("dup {}", out_path.display())))?;

    let t0 = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(repo_dir().join("images/run-vm.sh"))
        .args(&args)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("KRS_VM_OUT", &vm_dir)
        .env("KRS_BINARY", daemon_binary())
        .env("KRS_VM_TIMEOUT", timeout.as_secs().max(30).to_string())
        .env("KRS_VM_QUIET", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = cmd
        .spawn()
        .map_err(io("spawn images/run-vm.sh".to_string()))?;
    // run-vm.sh bounds qemu and its lock wait itself; this bounds run-vm.sh
    // in case something hangs outside qemu.
    let lock_wait = std::env::var("KRS_VM_LOCK_WAIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1800);
    let limit = timeout + Duration::from_secs(lock_wait + 600);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            Ok(None) if t0.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(VmError::Io("wait for run-vm.sh".into(), e)),
        }
    };
    let wall = t0.elapsed();
    drop(cleanup);

    let output = fs::read_to_string(&out_path).unwrap_or_default();
    let raw = fs::read(&log_path).unwrap_or_default();
    let mut log = parse_console(name, &String::from_utf8_lossy(&raw));
    log.log_path = log_path;
    log.wall = wall;
    parse_run_output(&output, &mut log);
    let done = log.lines.iter().any(|l| l.starts_with("KRS-DONE "));
    if !done || !matches!(status, Some(0) | Some(1)) {
        let start = log.lines.len().saturating_sub(30);
        return Err(VmError::Run {
            status,
            output,
            log_tail: log.lines[start..].join("\n"),
        });
    }
    Ok(log)
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn parse_secs(v: Option<&str>) -> Option<f64> {
    v.and_then(|s| s.trim_end_matches('s').parse().ok())
}

fn parse_run_output(output: &str, log: &mut ScenarioLog) {
    if let Some(line) = output.lines().find(|l| l.starts_with("run-vm: accel=")) {
        log.accel = field(line, "accel").unwrap_or("?").to_string();
        log.lock_wait_secs = parse_secs(field(line, "lock_wait"));
        log.image_secs = parse_secs(field(line, "image"));
        log.vm_secs = parse_secs(field(line, "vm"));
    }
}

/// Parses a serial console log: markers, results, exported files.
pub fn parse_console(name: &str, text: &str) -> ScenarioLog {
    let mut log = ScenarioLog {
        name: name.to_string(),
        lines: Vec::new(),
        results: Vec::new(),
        rc: -1,
        files: BTreeMap::new(),
        module_failures: Vec::new(),
        log_path: PathBuf::new(),
        wall: Duration::ZERO,
        accel: "?".into(),
        lock_wait_secs: None,
        image_secs: None,
        vm_secs: None,
        guest_init: None,
        guest_ready: None,
        guest_done: None,
    };
    let mut file: Option<(String, String)> = None;
    for raw in text.split('\n') {
        let mut line = raw.replace('\r', "");
        // The firmware's screen-clearing escape codes may precede a marker.
        if let Some(i) = line.find("KRS-") {
            if i > 0 && line[..i].contains('\u{1b}') {
                line = line[i..].to_string();
            }
        }
        if let Some(rest) = line.strip_prefix("KRS-B64 ") {
            if let Some((_, b64)) = file.as_mut() {
                b64.push_str(rest.trim());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("KRS-FILE-BEGIN ") {
            let fname = rest.split_whitespace().next().unwrap_or("").to_string();
            file = Some((fname, String::new()));
        } else if line.starts_with("KRS-FILE-END") {
            if let Some((fname, b64)) = file.take() {
                log.files.insert(fname, base64_decode(&b64));
            }
        } else if let Some(rest) = line.strip_prefix("KRS-RESULT ") {
            let mut it = rest.splitn(3, ' ');
            let rname = it.next().unwrap_or("").to_string();
            let status = it.next().unwrap_or("");
            let detail = it.next().unwrap_or("").trim_end().to_string();
            log.results.push(VmResult {
                name: rname,
                pass: status == "PASS",
                detail,
            });
        } else if let Some(rest) = line.strip_prefix("KRS-MODULE-FAIL ") {
            log.module_failures.push(rest.trim().to_string());
        } else if line.starts_with("KRS-BOOT ") {
            log.guest_init = parse_secs(field(&line, "uptime"));
        } else if line.starts_with("KRS-READY ") {
            log.guest_ready = parse_secs(field(&line, "uptime"));
        } else if line.starts_with("KRS-DONE ") {
            log.guest_done = parse_secs(field(&line, "uptime"));
            log.rc = field(&line, "rc")
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1);
        }
        log.lines.push(line);
    }
    if log.lines.last().is_some_and(String::is_empty) {
        log.lines.pop();
    }
    log
}

/// Standard base64 (busybox `base64` output); ignores anything else.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
