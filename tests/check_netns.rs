//! Checkers against real servers in a private network namespace.
//!
//! Needs root (namespaces). Under plain `cargo test` as a normal user the
//! tests print why they skip; with KEEPALIVED_RS_FULL_TEST=1 a missing
//! prerequisite fails them instead (see `common::lab::can_run`).
//!
//! Each test has a one-node lab (`common::lab::Lab`) whose eth0 also
//! carries the servers' 192.0.2.x/24 addresses; other addresses on that
//! LAN get no ARP answer, so connections to them time out.
//!
//! The engine runs on the real `daemon::EventLoop` in a forked,
//! single-threaded child that joined the namespace (the loop blocks signals
//! for its signalfd, which only works without other threads). The parent
//! kills and restarts the servers on a timeline; the child records every
//! real-server event and log line with its time offset.
//!
//! Every external command runs with a time limit, and every process a test
//! starts is owned by a guard (the lab, or the engine's `ChildGuard`), so a
//! failing test neither hangs nor leaves processes behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;
use common::lab::{can_run, output_bounded, Lab, STOP_GRACE};

#[path = "common/engine_harness.rs"]
mod engine_harness;
use engine_harness::{at, engine_record, spawn_engine};

/// One test at a time: every lab is private, but the tests time their
/// servers' failures, and that wants a machine not busy with the others.
static SERIAL: Mutex<()> = Mutex::new(());

/// Tools besides `ip` that every test here needs.
const TOOLS: &[&str] = &["python3", "md5sum"];

/// keepalived 2.2.7's genhash, the reference for ours.
const REAL_GENHASH: &str = "/usr/bin/genhash";

/// A one-node lab for a test, with `addrs` (/24) added on the node's eth0.
fn lab(tag: &str, addrs: &[&str]) -> Lab {
    let lab = Lab::new(tag, 1, 1).with_stop_grace(STOP_GRACE);
    for a in addrs {
        lab.add_addr(0, "eth0", &format!("{a}/24"));
    }
    lab
}

const HTTP_SERVER: &str = "python3";

fn http_server_args(dir: &Path) -> Vec<String> {
    vec![
        HTTP_SERVER.into(),
        "-m".into(),
        "http.server".into(),
        "8080".into(),
        "--bind".into(),
        "192.0.2.1".into(),
        "--directory".into(),
        dir.display().to_string(),
    ]
}

const TCP_SERVER: &str = "import socket,time
s=socket.socket()
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('192.0.2.2',9000))
s.listen(64)
while True:
    c,_=s.accept()
    c.close()
";

const UDP_SERVER: &str = "import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('192.0.2.5',5005))
while True:
    d,a=s.recvfrom(2048)
    s.sendto(b'pong'+d,a)
";

fn md5sum(path: &Path) -> String {
    let out = output_bounded(Command::new("md5sum").arg(path), Duration::from_secs(30));
    assert!(out.status.success(), "md5sum {}: {out:?}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn checkers_follow_servers_down_and_up() {
    if !can_run("checkers_follow_servers_down_and_up", TOOLS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = lab(
        "chk",
        &[
            "192.0.2.1",
            "192.0.2.2",
            "192.0.2.3",
            "192.0.2.4",
            "192.0.2.5",
        ],
    );
    let www = lab.dir.join("www");
    fs::create_dir_all(&www).expect("www");
    let page: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(www.join("page.bin"), &page).expect("page");
    let digest = md5sum(&www.join("page.bin"));
    let code_file = lab.dir.join("code");
    fs::write(&code_file, "0").expect("code");
    let script = lab.dir.join("misc.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\nexit $(cat {})\n", code_file.display()),
    )
    .expect("script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    let notify_file = lab.dir.join("notify");
    let results = lab.dir.join("results");

    let http_args = http_server_args(&www);
    let http_refs: Vec<&str> = http_args.iter().map(String::as_str).collect();
    let http = lab.spawn(0, "http", &http_refs);
    let tcp = lab.spawn(0, "tcp", &["python3", "-c", TCP_SERVER]);
    let udp = lab.spawn(0, "udp", &["python3", "-c", UDP_SERVER]);
    lab.wait_tcp(0, "192.0.2.1", 8080);
    lab.wait_tcp(0, "192.0.2.2", 9000);

    let timing = "connect_timeout 1\n retry 1\n delay_before_retry 1\n warmup 0";
    let config = format!(
        r#"
virtual_server 192.0.2.100 80 {{
    delay_loop 1
    protocol TCP
    real_server 192.0.2.1 8080 {{
        HTTP_GET {{
            url {{
                path /page.bin
                digest {digest}
            }}
            {timing}
        }}
    }}
    real_server 192.0.2.2 9000 {{
        notify_up "/bin/sh -c 'echo up >> {notify}'"
        notify_down "/bin/sh -c 'echo down >> {notify}'"
        TCP_CHECK {{
            {timing}
        }}
    }}
    real_server 192.0.2.3 7000 {{
        weight 2
        MISC_CHECK {{
            misc_path "{script}"
            misc_timeout 2
            misc_dynamic
            {timing}
        }}
    }}
    real_server 192.0.2.4 0 {{
        PING_CHECK {{
            {timing}
        }}
    }}
    real_server 192.0.2.5 5005 {{
        UDP_CHECK {{
            payload 70696e67
            require_reply 706f6e67
            {timing}
        }}
    }}
}}
"#,
        notify = notify_file.display(),
        script = script.display(),
    );

    // Timeline: all healthy; at 3 s every server dies; at 8 s all return.
    let kill_at = Duration::from_secs(3);
    let return_at = Duration::from_secs(8);
    let run_for = Duration::from_secs(14);
    let t0 = Instant::now();
    let child = spawn_engine(lab.ns(0), &config, &results, run_for);
    at(t0, kill_at);
    http.kill();
    tcp.kill();
    udp.kill();
    fs::write(&code_file, "1").expect("code");
    lab.del_addr(0, "eth0", "192.0.2.4/24");
    at(t0, return_at);
    lab.spawn(0, "http2", &http_refs);
    lab.spawn(0, "tcp2", &["python3", "-c", TCP_SERVER]);
    lab.spawn(0, "udp2", &["python3", "-c", UDP_SERVER]);
    // Dynamic: exit 5 means up with weight 5 - 2.
    fs::write(&code_file, "5").expect("code");
    lab.add_addr(0, "eth0", "192.0.2.4/24");
    let text = engine_record(&child, &results, run_for);

    // Bound from the issue: delay_loop + retry * delay_before_retry +
    // connect_timeout, plus the start offset of our timeline and slack.
    let bound = Duration::from_millis(1000 + 1000 + 1000 + 1500);
    let events: Vec<(u128, String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            Some((
                parts.next()?.parse().ok()?,
                parts.next()?.to_string(),
                parts.next()?.to_string(),
            ))
        })
        .collect();
    for rs in [
        "[192.0.2.1]:tcp:8080",
        "[192.0.2.2]:tcp:9000",
        "[192.0.2.3]:tcp:7000",
        "[192.0.2.4]:tcp:0",
        "[192.0.2.5]:tcp:5005",
    ] {
        assert!(
            text.contains(&format!("INITIAL {rs} true")),
            "{rs} starts UP\n{text}"
        );
        let mine: Vec<&(u128, String, String)> =
            events.iter().filter(|(_, r, _)| r == rs).collect();
        let down = mine
            .iter()
            .find(|(_, _, c)| c == "DOWN")
            .unwrap_or_else(|| panic!("{rs} never went down\n{text}"));
        let up = mine
            .iter()
            .find(|(_, _, c)| c.starts_with("UP"))
            .unwrap_or_else(|| panic!("{rs} never came back\n{text}"));
        assert!(
            down.0 > kill_at.as_millis() && down.0 <= (kill_at + bound).as_millis(),
            "{rs} down at {} ms\n{text}",
            down.0
        );
        assert!(
            up.0 > return_at.as_millis() && up.0 <= (return_at + bound).as_millis(),
            "{rs} up at {} ms\n{text}",
            up.0
        );
        assert_eq!(mine.len(), 2, "{rs}: exactly one down and one up\n{text}");
    }
    assert!(
        events
            .iter()
            .any(|(_, r, c)| r == "[192.0.2.3]:tcp:7000" && c == "UP 3"),
        "misc_dynamic exit 5 sets weight 3\n{text}"
    );
    // keepalived's wording, once per transition.
    for line in [
        "TCP connection to [192.0.2.2]:tcp:9000 success.",
        "TCP_CHECK on service [192.0.2.2]:tcp:9000 failed after 1 retries.",
        "Remote Web server [192.0.2.1]:tcp:8080 succeed on service.",
        "HTTP_CHECK on service [192.0.2.1]:tcp:8080 failed after 1 retries.",
        "Misc check for [[192.0.2.3]:tcp:7000 VS [192.0.2.100]:tcp:80] by [",
    ] {
        assert!(text.contains(line), "missing log line {line:?}\n{text}");
    }
    assert_eq!(
        text.matches("HTTP_CHECK on service [192.0.2.1]:tcp:8080 failed")
            .count(),
        1,
        "logged on the transition only\n{text}"
    );
    // Pool changes are the IPVS manager's to log (tests/ipvs_state.rs), not twice.
    assert!(
        !text.contains("Removing service"),
        "engine logged a pool change\n{text}"
    );
    eprintln!("{text}");
    let notified = fs::read_to_string(&notify_file).unwrap_or_default();
    assert_eq!(notified, "down\nup\n", "notify_down then notify_up ran");
}

/// A small SMTP server on 192.0.2.6:2525 (greeting 220, HELO/EHLO 250,
/// QUIT 221 then close); every line it receives goes to the log (argv[1]).
const SMTP_SERVER: &str = r#"import socket, sys
log = open(sys.argv[1], 'a', buffering=1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('192.0.2.6', 2525))
s.listen(16)
while True:
    c, _ = s.accept()
    c.settimeout(5)
    try:
        f = c.makefile('rb')
        c.sendall(b'220 test ESMTP\r\n')
        for line in f:
            log.write(line.decode(errors='replace').rstrip() + '\n')
            word = line.upper()
            if word.startswith(b'HELO') or word.startswith(b'EHLO'):
                c.sendall(b'250 hello\r\n')
            elif word.startswith(b'QUIT'):
                c.sendall(b'221 bye\r\n')
                break
            else:
                c.sendall(b'500 what\r\n')
        f.close()
    except Exception:
        pass
    c.close()
"#;

/// A DNS responder on 192.0.2.7:5353/udp: MX for mail.example.test is
/// answered (NOERROR, one MX record), anything else gets NXDOMAIN. Each
/// query's name and type go to the log (argv[1]).
const DNS_SERVER: &str = r#"import socket, struct, sys
log = open(sys.argv[1], 'a', buffering=1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('192.0.2.7', 5353))
while True:
    q, peer = s.recvfrom(512)
    if len(q) < 12:
        continue
    i, labels = 12, []
    while i < len(q) and q[i] != 0:
        n = q[i]
        labels.append(q[i + 1:i + 1 + n].decode(errors='replace'))
        i += 1 + n
    i += 1
    if i + 4 > len(q):
        continue
    qtype, _ = struct.unpack('>HH', q[i:i + 4])
    name = '.'.join(labels)
    log.write('%s %d\n' % (name, qtype))
    ok = name == 'mail.example.test' and qtype == 15
    header = q[:2] + struct.pack('>HHHHH', 0x8180 if ok else 0x8183, 1, 1 if ok else 0, 0, 0)
    answer = b''
    if ok:
        answer = b'\xc0\x0c' + struct.pack('>HHIH', 15, 1, 60, 7) + struct.pack('>H', 10) + b'\x02mx\xc0\x0c'
    s.sendto(header + q[12:i + 4] + answer, peer)
"#;

/// `EVENT <ms> <rs> <change>` lines of a result file.
fn events_of(text: &str) -> Vec<(u128, String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            Some((
                parts.next()?.parse().ok()?,
                parts.next()?.to_string(),
                parts.next()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn smtp_and_dns_checkers_follow_servers_down_and_up() {
    if !can_run("smtp_and_dns_checkers_follow_servers_down_and_up", TOOLS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = lab("sd", &["192.0.2.6", "192.0.2.7"]);
    // What the servers saw (their own stdout and stderr go to the lab's
    // smtpd*.log and dnsd*.log).
    let smtp_log = lab.dir.join("smtp-seen.log");
    let dns_log = lab.dir.join("dns-seen.log");
    let results = lab.dir.join("results");
    let smtp_log_arg = smtp_log.display().to_string();
    let dns_log_arg = dns_log.display().to_string();
    let smtp_args = ["python3", "-c", SMTP_SERVER, &smtp_log_arg];
    let dns_args = ["python3", "-c", DNS_SERVER, &dns_log_arg];
    let smtp = lab.spawn(0, "smtpd", &smtp_args);
    let dns = lab.spawn(0, "dnsd", &dns_args);
    lab.wait_tcp(0, "192.0.2.6", 2525);
    let timing = "connect_timeout 1\n retry 1\n delay_before_retry 1\n warmup 0";
    let config = format!(
        r#"
virtual_server 192.0.2.100 25 {{
    delay_loop 1
    protocol TCP
    real_server 192.0.2.6 2525 {{
        SMTP_CHECK {{
            {timing}
        }}
    }}
}}
virtual_server 192.0.2.100 53 {{
    delay_loop 1
    protocol UDP
    real_server 192.0.2.7 5353 {{
        DNS_CHECK {{
            type MX
            name mail.example.test
            {timing}
        }}
    }}
}}
"#
    );
    // Timeline: healthy; at 3 s both servers die; at 8 s both return.
    let kill_at = Duration::from_secs(3);
    let return_at = Duration::from_secs(8);
    let run_for = Duration::from_secs(14);
    let t0 = Instant::now();
    let child = spawn_engine(lab.ns(0), &config, &results, run_for);
    at(t0, kill_at);
    smtp.kill();
    dns.kill();
    at(t0, return_at);
    lab.spawn(0, "smtpd2", &smtp_args);
    lab.spawn(0, "dnsd2", &dns_args);
    let text = engine_record(&child, &results, run_for);
    let smtp_seen = fs::read_to_string(&smtp_log).unwrap_or_default();
    let dns_seen = fs::read_to_string(&dns_log).unwrap_or_default();
    let summary = format!("{text}\nSMTP server saw:\n{smtp_seen}\nDNS server saw:\n{dns_seen}");

    // delay_loop + retry * delay_before_retry + connect_timeout, plus the
    // start offset of our timeline and slack.
    let bound = Duration::from_millis(1000 + 1000 + 1000 + 1500);
    let events = events_of(&text);
    for rs in ["[192.0.2.6]:tcp:2525", "[192.0.2.7]:udp:5353"] {
        assert!(
            text.contains(&format!("INITIAL {rs} true")),
            "{rs} starts UP\n{summary}"
        );
        let mine: Vec<&(u128, String, String)> =
            events.iter().filter(|(_, r, _)| r == rs).collect();
        assert_eq!(mine.len(), 2, "{rs}: one DOWN then one UP\n{summary}");
        let (down, up) = (mine[0], mine[1]);
        assert_eq!(down.2, "DOWN", "{summary}");
        assert!(up.2.starts_with("UP"), "{summary}");
        assert!(
            down.0 > kill_at.as_millis() && down.0 <= (kill_at + bound).as_millis(),
            "{rs} down at {} ms\n{summary}",
            down.0
        );
        assert!(
            up.0 > return_at.as_millis() && up.0 <= (return_at + bound).as_millis(),
            "{rs} up at {} ms\n{summary}",
            up.0
        );
    }
    // The dialog keepalived has: HELO with its default name, then QUIT.
    assert!(
        smtp_seen
            .lines()
            .all(|l| l == "HELO smtpchecker.keepalived.org" || l == "QUIT"),
        "{summary}"
    );
    assert!(
        smtp_seen.contains("HELO smtpchecker.keepalived.org\nQUIT\n"),
        "{summary}"
    );
    // The configured query, and nothing else.
    assert!(!dns_seen.is_empty(), "{summary}");
    assert!(
        dns_seen.lines().all(|l| l == "mail.example.test 15"),
        "{summary}"
    );
    for line in [
        "Remote SMTP server [192.0.2.6]:tcp:2525 succeed on service.",
        "SMTP_CHECK Error connecting to server [192.0.2.6]:2525",
        "DNS_CHECK ([192.0.2.7]:udp:5353) failed to read socket; errno 111 (Connection refused) after 1 retries",
    ] {
        assert!(text.contains(line), "missing log line {line:?}\n{summary}");
    }
    eprintln!("{summary}");
}

/// The request paths in python's http.server log, in order.
fn requested_paths(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split('"').nth(1))
        .filter_map(|req| req.split(' ').nth(1))
        .map(str::to_string)
        .collect()
}

#[test]
fn http_get_retries_resume_at_the_failed_url() {
    if !can_run("http_get_retries_resume_at_the_failed_url", TOOLS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = lab("url", &["192.0.2.1"]);
    let www = lab.dir.join("www");
    fs::create_dir_all(&www).expect("www");
    for name in ["a", "b", "c"] {
        fs::write(www.join(name), name).expect("page");
    }
    let results = lab.dir.join("results");
    let http_args = http_server_args(&www);
    let http_refs: Vec<&str> = http_args.iter().map(String::as_str).collect();
    // http.server logs requests to stderr; its stdout has no request lines.
    let access = lab.spawn(0, "access", &http_refs).log;
    lab.wait_tcp(0, "192.0.2.1", 8080);
    let config = r#"
virtual_server 192.0.2.100 80 {
    delay_loop 1
    protocol TCP
    real_server 192.0.2.1 8080 {
        HTTP_GET {
            url { path /a }
            url { path /b }
            url { path /c }
            connect_timeout 1
            retry 1
            delay_before_retry 1
            warmup 0
        }
    }
}
"#;
    // keepalived fetches one URL per delay_loop: a1 b2 c3 a4 b5 ... /b
    // disappears at 4.5 s and returns at 9.5 s.
    let off_at = Duration::from_millis(4500);
    let on_at = Duration::from_millis(9500);
    let run_for = Duration::from_secs(16);
    // Requests made by wait_tcp's probe are not in the log (no request line).
    let skip = requested_paths(&fs::read_to_string(&access).unwrap_or_default()).len();
    let t0 = Instant::now();
    let child = spawn_engine(lab.ns(0), config, &results, run_for);
    at(t0, off_at);
    fs::rename(www.join("b"), www.join("b.off")).expect("hide /b");
    at(t0, on_at);
    fs::rename(www.join("b.off"), www.join("b")).expect("restore /b");
    let text = engine_record(&child, &results, run_for);
    let log = fs::read_to_string(&access).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"GET "))
        .skip(skip)
        .collect();
    let paths = requested_paths(&lines.join("\n"));
    let failed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"GET /b ") && l.contains("\" 404 "))
        .map(|(i, _)| i)
        .collect();
    let summary = format!("{paths:?}\n{log}\n{text}");
    let (Some(&first_fail), Some(&last_fail)) = (failed.first(), failed.last()) else {
        panic!("/b never failed\n{summary}");
    };
    // Before the failure: whole rounds a, b, c in order.
    assert!(
        paths[..first_fail]
            .iter()
            .zip(["/a", "/b", "/c"].iter().cycle())
            .all(|(p, e)| p == e),
        "{summary}"
    );
    // From the first failure until /b passes again, only /b is fetched
    // (the retry and, once DOWN, the failed URL alone)...
    assert!(failed.len() >= 3, "retry + probes while down\n{summary}");
    assert!(
        paths[first_fail..=last_fail + 1].iter().all(|p| p == "/b"),
        "{summary}"
    );
    // ...then every URL again from the first.
    assert_eq!(
        paths.get(last_fail + 2..last_fail + 5),
        Some(&["/a".to_string(), "/b".to_string(), "/c".to_string()][..]),
        "{summary}"
    );
    for line in [
        "HTTP_CHECK on service [192.0.2.1]:tcp:8080 failed after 1 retries.",
        "HTTP status code success to [192.0.2.1]:tcp:8080 url(/b)",
        "HTTP status code success to [192.0.2.1]:tcp:8080 url(/c)",
        "Remote Web server [192.0.2.1]:tcp:8080 succeed on service.",
    ] {
        assert!(text.contains(line), "missing log line {line:?}\n{summary}");
    }
    let events: Vec<&str> = text.lines().filter(|l| l.starts_with("EVENT ")).collect();
    assert_eq!(events.len(), 2, "one DOWN, one UP\n{summary}");
    assert!(
        events[0].ends_with(" DOWN") && events[1].contains(" UP "),
        "{summary}"
    );
    eprintln!("fetched: {paths:?}");
}

/// Runs a genhash (`program`, ours or keepalived's) with `args` in the
/// lab's node, for at most 20 s: every run here has a `-t` of 5 s or less,
/// or the default 5 s.
fn genhash(lab: &Lab, program: &[&str], args: &[&str]) -> Output {
    output_bounded(lab.command(0, program).args(args), Duration::from_secs(20))
}

#[test]
fn genhash_matches_md5sum() {
    if !can_run("genhash_matches_md5sum", TOOLS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = lab("gh", &["192.0.2.1"]);
    let www = lab.dir.join("www");
    fs::create_dir_all(&www).expect("www");
    let page: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 253) as u8).collect();
    fs::write(www.join("index.html"), &page).expect("page");
    let expected = md5sum(&www.join("index.html"));
    let http_args = http_server_args(&www);
    let http_refs: Vec<&str> = http_args.iter().map(String::as_str).collect();
    lab.spawn(0, "http", &http_refs);
    lab.wait_tcp(0, "192.0.2.1", 8080);

    let binary = env!("CARGO_BIN_EXE_keepalived");
    let link = lab.dir.join("genhash");
    std::os::unix::fs::symlink(binary, &link).expect("symlink");
    for program in [
        vec![binary.to_string(), "-T".to_string()],
        vec![link.display().to_string()],
        vec![link.display().to_string(), "-v".to_string()],
    ] {
        let program: Vec<&str> = program.iter().map(String::as_str).collect();
        let out = genhash(
            &lab,
            &program,
            &[
                "-s",
                "192.0.2.1",
                "-p",
                "8080",
                "-u",
                "/index.html",
                "-t",
                "5",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{program:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // keepalived 2.2.7: the digest alone; -v adds dumps before it.
        let verbose = program.contains(&"-v");
        assert!(
            if verbose {
                stdout.lines().any(|l| l == expected)
            } else {
                stdout == format!("{expected}\n")
            },
            "{program:?} printed {stdout}"
        );
    }
    // Nothing listening: a clear error and exit 1, within the timeout.
    let start = Instant::now();
    let out = genhash(
        &lab,
        &[binary, "-T"],
        &["-s", "192.0.2.1", "-p", "8081", "-u", "/", "-t", "2"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
    assert!(start.elapsed() < Duration::from_secs(5));
    // An address nobody answers for: the timeout ends it.
    let start = Instant::now();
    let out = genhash(
        &lab,
        &[binary, "-T"],
        &["-s", "192.0.2.77", "-p", "80", "-u", "/", "-t", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

/// Answers every request with the whole response in one write, so any
/// client reading after it arrived sees the same read boundaries (4095-byte
/// reads, as keepalived's genhash does). Paths: /page (5000 bytes, exact
/// Content-Length), /clip (Content-Length 100, 300 bytes sent), /nolen (no
/// Content-Length, body until close), /empty (Content-Length 0).
const GENHASH_SERVER: &str = r#"import socket
body = bytes(i * 7 % 256 for i in range(5000))
pages = {
    b'/page': b'Content-Length: 5000\r\n\r\n' + body,
    b'/clip': b'Content-Length: 100\r\n\r\n' + body[:300],
    b'/nolen': b'\r\n' + body[:300],
    b'/empty': b'Content-Length: 0\r\n\r\n',
    b'/chunked': b'Transfer-Encoding: chunked\r\n\r\n'
        + b''.join(b'%x\r\n' % len(p) + p + b'\r\n' for p in (body[:10], body[10:300], body[300:1000]))
        + b'0\r\n\r\n',
}
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('192.0.2.1', 8090))
s.listen(16)
while True:
    c, _ = s.accept()
    req = b''
    while b'\r\n\r\n' not in req and len(req) < 8192:
        d = c.recv(4096)
        if not d:
            break
        req += d
    path = req.split(b' ')[1] if req.count(b' ') >= 2 else b'/'
    c.sendall(b'HTTP/1.0 200 OK\r\nServer: fixed\r\n' + pages.get(path, b'Content-Length: 0\r\n\r\n'))
    c.close()
"#;

/// genhash output with the timing figure masked.
fn mask_timing(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| match l.split_once("] = ") {
            Some((start, rest)) if l.starts_with("Global response time for [") => {
                assert!(
                    rest.strip_suffix(" usecs")
                        .is_some_and(|n| n.parse::<u64>().is_ok()),
                    "{l}"
                );
                format!("{start}] = N usecs")
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn genhash_verbose_matches_keepalived() {
    // keepalived's own genhash is the reference; without it there is
    // nothing to compare with.
    let tools = [TOOLS, &[REAL_GENHASH]].concat();
    if !can_run("genhash_verbose_matches_keepalived", &tools) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut lab = lab("ghv", &["192.0.2.1"]);
    lab.spawn(0, "fixed", &["python3", "-c", GENHASH_SERVER]);
    let www = lab.dir.join("www");
    fs::create_dir_all(&www).expect("www");
    fs::write(www.join("index.html"), "hello genhash\n".repeat(40)).expect("page");
    let http_args = http_server_args(&www);
    let http_refs: Vec<&str> = http_args.iter().map(String::as_str).collect();
    lab.spawn(0, "http", &http_refs);
    lab.wait_tcp(0, "192.0.2.1", 8090);
    lab.wait_tcp(0, "192.0.2.1", 8080);
    let ours = env!("CARGO_BIN_EXE_keepalived");
    let run = |program: &[&str], port: &str, url: &str| -> Vec<u8> {
        let out = genhash(
            &lab,
            program,
            &["-v", "-s", "192.0.2.1", "-p", port, "-u", url],
        );
        assert!(out.status.success(), "{program:?} {url}: {out:?}");
        out.stdout
    };
    // One write per response: the outputs are the same byte for byte, but
    // for the response time.
    // /chunked: 2.2.7 hashes the chunked coding as sent, and so do we.
    for url in ["/page", "/clip", "/nolen", "/empty", "/chunked"] {
        let reference = mask_timing(&run(&[REAL_GENHASH], "8090", url));
        let mine = mask_timing(&run(&[ours, "-T"], "8090", url));
        assert_eq!(mine, reference, "genhash -v {url}");
        assert!(
            reference.contains("Global response time for ["),
            "{reference}"
        );
    }
    // python's http.server writes head and body separately, so where the
    // reads split varies from run to run: compare all but the body dumps
    // (and the Date header, and the head dump's bytes, which hold it).
    let shape = |out: Vec<u8>| -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        let mut section = String::new();
        for l in mask_timing(&out).lines() {
            let is_dump =
                l.len() > 6 && l[..4].bytes().all(|b| b.is_ascii_digit()) && &l[4..6] == "  ";
            if l.starts_with("-----------------------[") {
                section = l.to_string();
                if l.contains("HTML Buffer") || lines.last().is_some_and(|last| last == l) {
                    continue;
                }
                lines.push(l.to_string());
            } else if is_dump && section.contains("HTTP Header Buffer") {
                lines.push("<head dump line>".into());
            } else if is_dump && !section.contains("HTML hash resulting") {
                // a body dump
            } else if !l.starts_with("Date: ") {
                lines.push(l.to_string());
            }
        }
        lines
    };
    let reference = shape(run(&[REAL_GENHASH], "8080", "/index.html"));
    let mine = shape(run(&[ours, "-T"], "8080", "/index.html"));
    assert_eq!(mine, reference);
}
