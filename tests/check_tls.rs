//! SSL_GET and `genhash -S` against real HTTPS servers (Python's http.server
//! wrapped in TLS, certificate made by `openssl req` at test time) in a
//! private network namespace.
//!
//! Needs the `tls` cargo feature:
//!
//!     cargo test --features tls --test check_tls
//!
//! Without it the tests here are reported as ignored, with the reason, and
//! one test checks that the default build still refuses `genhash -S`
//! clearly. With the feature they need root (namespaces), python3, openssl
//! and md5sum: under plain `cargo test` as a normal user they print why they
//! skip; with KEEPALIVED_RS_FULL_TEST=1 a missing prerequisite fails them.
//!
//! The engine runs on the real `daemon::EventLoop` in a forked,
//! single-threaded child that joined the namespace (as in check_netns.rs);
//! the parent kills and restarts the servers on a timeline and reads the
//! child's record of real-server events and log lines.
//!
//! Every external command runs with a time limit, and every process a test
//! starts is owned by a guard (the lab, or the engine's `ChildGuard`), so a
//! failing test neither hangs nor leaves processes behind.

mod common;

#[cfg(not(feature = "tls"))]
#[test]
#[ignore = "SSL_GET needs the 'tls' feature: cargo test --features tls --test check_tls"]
fn ssl_get_against_https_servers() {}

#[cfg(not(feature = "tls"))]
#[test]
#[ignore = "SSL_GET needs the 'tls' feature: cargo test --features tls --test check_tls"]
fn ssl_block_client_certificate() {}

#[cfg(not(feature = "tls"))]
#[test]
#[ignore = "genhash -S needs the 'tls' feature: cargo test --features tls --test check_tls"]
fn genhash_ssl_matches_md5sum() {}

/// The default build keeps refusing TLS with a clear message.
#[cfg(not(feature = "tls"))]
#[test]
fn without_the_feature_genhash_ssl_says_why() {
    let out = common::lab::output_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_keepalived")).args([
            "-T",
            "-S",
            "-s",
            "127.0.0.1",
            "-p",
            "1",
            "-u",
            "/",
            "-t",
            "1",
        ]),
        std::time::Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built without the 'tls' feature"),
        "{stderr}"
    );
}

#[cfg(feature = "tls")]
#[path = "common/engine_harness.rs"]
mod engine_harness;

#[cfg(feature = "tls")]
mod with_tls {
    use std::fs;

    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use crate::common::lab::{can_run, output_bounded, Lab, Proc, STOP_GRACE};

    const BIN: &str = env!("CARGO_BIN_EXE_keepalived");
    const TOOLS: &[&str] = &["python3", "openssl", "md5sum"];
    /// The lab's only node.
    const ADDR: &str = "10.77.0.1";
    /// TLS 1.3 (Python's default) and TLS 1.2 only.
    const PORT13: u16 = 4443;
    const PORT12: u16 = 4444;
    /// Servers that require a client certificate (TLS 1.3, TLS 1.2), and
    /// one that requires a certificate from a CA we have no key of.
    const MTLS_PORT13: u16 = 4446;
    const MTLS_PORT12: u16 = 4447;
    const MTLS_OTHER_CA: u16 = 4448;

    /// One test at a time: both time their servers.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// An HTTPS server: DIR CERT KEY ADDR PORT MAXVER SNI_LOG CLIENT_CA
    /// (`-`: no client certificate asked for; else one signed by that CA
    /// is required, and each accepted one's subject CN is logged to
    /// SNI_LOG.peer).
    const HTTPS_SERVER: &str = r#"
import http.server, ssl, sys
d, cert, key, addr, port, maxver, sni_log, client_ca = sys.argv[1:9]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=d, **k)
    def log_message(self, *a):
        pass
    def do_GET(self):
        peer = self.connection.getpeercert()
        if peer:
            cn = [v for rdn in peer["subject"] for (k, v) in rdn if k == "commonName"]
            with open(sni_log + ".peer", "a") as f:
                f.write("%s\n" % ",".join(cn))
        super().do_GET()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if client_ca != "-":
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)
if maxver == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
def sni(sock, name, c):
    with open(sni_log, "a") as f:
        f.write("%s\n" % name)
ctx.sni_callback = sni
srv = http.server.ThreadingHTTPServer((addr, int(port)), Quiet)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

    struct Site {
        www: PathBuf,
        cert: PathBuf,
        key: PathBuf,
        digest: String,
    }

    /// A page, its md5sum, and a fresh self-signed RSA certificate.
    fn site(lab: &Lab, size: u32) -> Site {
        let www = lab.dir.join("www");
        fs::create_dir_all(&www).expect("www");
        let page: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(www.join("page.bin"), &page).expect("page");
        let out = output_bounded(
            Command::new("md5sum").arg(www.join("page.bin")),
            Duration::from_secs(30),
        );
        let digest = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        assert_eq!(digest.len(), 32, "md5sum output");
        let cert = lab.dir.join("cert.pem");
        let key = lab.dir.join("key.pem");
        let out = output_bounded(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
                .args(["-subj", "/CN=test", "-days", "1", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Site {
            www,
            cert,
            key,
            digest,
        }
    }

    fn start_server(lab: &mut Lab, site: &Site, port: u16, name: &str) -> Proc {
        start_server_with(lab, site, port, name, None)
    }

    /// `client_ca`: require a client certificate signed by it.
    fn start_server_with(
        lab: &mut Lab,
        site: &Site,
        port: u16,
        name: &str,
        client_ca: Option<&std::path::Path>,
    ) -> Proc {
        let maxver = if port == PORT12 || port == MTLS_PORT12 {
            "1.2"
        } else {
            "1.3"
        };
        let sni_log = lab.dir.join(format!("sni-{port}.log"));
        let args: Vec<String> = vec![
            "python3".into(),
            "-c".into(),
            HTTPS_SERVER.into(),
            site.www.display().to_string(),
            site.cert.display().to_string(),
            site.key.display().to_string(),
            ADDR.into(),
            port.to_string(),
            maxver.into(),
            sni_log.display().to_string(),
            client_ca.map_or_else(|| "-".to_string(), |p| p.display().to_string()),
        ];
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let proc = lab.spawn(0, name, &refs);
        lab.wait_tcp(0, ADDR, port);
        proc
    }

    use crate::engine_harness::{at, engine_record, spawn_engine};

    #[test]
    fn ssl_get_against_https_servers() {
        if !can_run("ssl_get_against_https_servers", TOOLS) {
            return;
        }
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut lab = Lab::new("tls", 1, 1).with_stop_grace(STOP_GRACE);
        let site = site(&lab, 50_000);
        let s13 = start_server(&mut lab, &site, PORT13, "https13");
        let s12 = start_server(&mut lab, &site, PORT12, "https12");
        let results = lab.dir.join("results");
        let digest = &site.digest;
        let timing = "connect_timeout 1\n retry 1\n delay_before_retry 1\n warmup 0";
        // 4445 checks the TLS 1.3 server with a wrong digest: always down.
        let config = format!(
            r#"
virtual_server 10.77.0.100 443 {{
    delay_loop 1
    protocol TCP
    real_server {ADDR} {PORT13} {{
        SSL_GET {{
            url {{
                path /page.bin
                digest {digest}
            }}
            {timing}
        }}
    }}
    real_server {ADDR} {PORT12} {{
        SSL_GET {{
            url {{
                path /page.bin
                digest {digest}
            }}
            sni_name www.test.example
            tls_compliant
            {timing}
        }}
    }}
    real_server {ADDR} 4445 {{
        SSL_GET {{
            url {{
                path /page.bin
                digest 00112233445566778899aabbccddeeff
            }}
            connect_port {PORT13}
            log_all_failures
            {timing}
        }}
    }}
}}
"#
        );

        // Timeline: healthy; at 3 s both servers die; at 8 s they return.
        let kill_at = Duration::from_secs(3);
        let return_at = Duration::from_secs(8);
        let run_for = Duration::from_secs(14);
        let t0 = Instant::now();
        let child = spawn_engine(lab.ns(0), &config, &results, run_for);
        at(t0, kill_at);
        s13.kill();
        s12.kill();
        at(t0, return_at);
        start_server(&mut lab, &site, PORT13, "https13b");
        start_server(&mut lab, &site, PORT12, "https12b");
        let text = engine_record(&child, &results, run_for);
        eprintln!("{text}");

        // delay_loop + retry * delay_before_retry + connect_timeout, plus
        // the offsets of our timeline and slack (as check_netns.rs).
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
        for port in [PORT13, PORT12] {
            let rs = format!("[{ADDR}]:tcp:{port}");
            assert!(
                text.contains(&format!("INITIAL {rs} true")),
                "{rs} starts UP\n{text}"
            );
            let mine: Vec<&(u128, String, String)> =
                events.iter().filter(|(_, r, _)| *r == rs).collect();
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
                "{rs} down at {} ms: up with the right digest until the kill\n{text}",
                down.0
            );
            assert!(
                up.0 > return_at.as_millis() && up.0 <= (return_at + bound).as_millis(),
                "{rs} up at {} ms\n{text}",
                up.0
            );
            assert_eq!(mine.len(), 2, "{rs}: exactly one down and one up\n{text}");
        }
        // The wrong digest: down at the first verdict, never up again.
        let wrong = format!("[{ADDR}]:tcp:4445");
        let mine: Vec<&(u128, String, String)> =
            events.iter().filter(|(_, r, _)| *r == wrong).collect();
        assert!(
            matches!(mine.first(), Some((ms, _, c)) if c == "DOWN" && *ms < return_at.as_millis()),
            "{wrong} goes down at once\n{text}"
        );
        assert_eq!(mine.len(), 1, "{wrong} stays down\n{text}");
        assert!(
            text.contains(&format!("SSL_GET server {wrong}: MD5SUM [{digest}]")),
            "the wrong digest is logged with the real one\n{text}"
        );
        for line in [
            format!("Remote Web server [{ADDR}]:tcp:{PORT13} succeed on service."),
            format!("HTTP_CHECK on service [{ADDR}]:tcp:{PORT12} failed after 1 retries."),
        ] {
            assert!(text.contains(&line), "missing log line {line:?}\n{text}");
        }
        assert!(!text.contains("no TLS support"), "{text}");
        // SNI: only the checker with sni_name sends one.
        let sni12 =
            fs::read_to_string(lab.dir.join(format!("sni-{PORT12}.log"))).unwrap_or_default();
        assert!(
            !sni12.is_empty() && sni12.lines().all(|l| l == "www.test.example"),
            "SNI seen by the TLS 1.2 server: {sni12:?}"
        );
        let sni13 =
            fs::read_to_string(lab.dir.join(format!("sni-{PORT13}.log"))).unwrap_or_default();
        assert!(
            !sni13.is_empty() && sni13.lines().all(|l| l == "None"),
            "no SNI for an address: {sni13:?}"
        );
    }

    /// `openssl` with a time limit; panics with its stderr on failure.
    fn openssl(args: &[&str]) {
        let out = output_bounded(Command::new("openssl").args(args), Duration::from_secs(60));
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn ssl_block_client_certificate() {
        if !can_run("ssl_block_client_certificate", TOOLS) {
            return;
        }
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut lab = Lab::new("tlsc", 1, 1).with_stop_grace(STOP_GRACE);
        let site = site(&lab, 2_000);
        // The client's key in SEC1 form ("EC PRIVATE KEY"), its
        // self-signed certificate, which the servers trust as the CA.
        let ckey = lab.dir.join("client-key.pem");
        let ccert = lab.dir.join("client-cert.pem");
        let (ckey_s, ccert_s) = (ckey.display().to_string(), ccert.display().to_string());
        openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &ckey_s,
        ]);
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &ckey_s,
            "-subj",
            "/CN=krs-client",
            "-days",
            "1",
            "-out",
            &ccert_s,
        ]);
        let _a = start_server_with(&mut lab, &site, MTLS_PORT13, "mtls13", Some(&ccert));
        let _b = start_server_with(&mut lab, &site, MTLS_PORT12, "mtls12", Some(&ccert));
        // Trusts only the site's own certificate: ours is refused.
        let _c = start_server_with(
            &mut lab,
            &site,
            MTLS_OTHER_CA,
            "mtls-other",
            Some(&site.cert),
        );
        let results = lab.dir.join("results");
        let digest = &site.digest;
        let checker = |port: u16| {
            format!(
                r#"
    real_server {ADDR} {port} {{
        SSL_GET {{
            url {{
                path /page.bin
                digest {digest}
            }}
            alpha
            connect_timeout 1
            retry 1
            delay_before_retry 1
            warmup 0
        }}
    }}"#
            )
        };
        let config = format!(
            r#"
SSL {{
    certificate {ccert_s}
    key {ckey_s}
}}
virtual_server 10.77.0.100 443 {{
    delay_loop 1
    protocol TCP{}{}{}
}}
"#,
            checker(MTLS_PORT13),
            checker(MTLS_PORT12),
            checker(MTLS_OTHER_CA)
        );
        let run_for = Duration::from_secs(5);
        let child = spawn_engine(lab.ns(0), &config, &results, run_for);
        let text = engine_record(&child, &results, run_for);
        eprintln!("{text}");
        // alpha: every server starts down; only a completed handshake and
        // the right digest bring one up.
        for port in [MTLS_PORT13, MTLS_PORT12] {
            let rs = format!("[{ADDR}]:tcp:{port}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with("EVENT ") && l.contains(&format!(" {rs} UP"))),
                "{rs} (client certificate required) comes up\n{text}"
            );
            let peers = fs::read_to_string(lab.dir.join(format!("sni-{port}.log.peer")))
                .unwrap_or_default();
            assert!(
                !peers.is_empty() && peers.lines().all(|l| l == "krs-client"),
                "the server on {port} saw our certificate: {peers:?}"
            );
        }
        let other = format!("[{ADDR}]:tcp:{MTLS_OTHER_CA}");
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("EVENT ") && l.contains(&format!(" {other} UP"))),
            "{other} refuses our certificate: it never comes up\n{text}"
        );
        assert!(!text.contains("no client certificate"), "{text}");
    }

    /// Our genhash in the node, given at most 20 s (every run here has a
    /// `-t` of 5 s or less).
    fn genhash(lab: &Lab, args: &[&str]) -> std::process::Output {
        output_bounded(
            lab.command(0, &[BIN, "-T"]).args(args),
            Duration::from_secs(20),
        )
    }

    #[test]
    fn genhash_ssl_matches_md5sum() {
        if !can_run("genhash_ssl_matches_md5sum", TOOLS) {
            return;
        }
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut lab = Lab::new("tlsgh", 1, 1).with_stop_grace(STOP_GRACE);
        let site = site(&lab, 200_000);
        start_server(&mut lab, &site, PORT13, "https13");
        start_server(&mut lab, &site, PORT12, "https12");
        // A plain HTTP server, to see -S fail against it.
        let plain = lab.spawn(
            0,
            "http",
            &[
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                ADDR,
                "--directory",
                &site.www.display().to_string(),
            ],
        );
        lab.wait_tcp(0, ADDR, 8080);
        for port in [PORT13, PORT12] {
            let port = port.to_string();
            for extra in [&[][..], &["-V", "www.test.example"], &["-P", "1.1"]] {
                let mut args = vec!["-S", "-s", ADDR, "-p", &port, "-u", "/page.bin", "-t", "5"];
                args.extend_from_slice(extra);
                let out = genhash(&lab, &args);
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{args:?}: {stdout} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(stdout, format!("{}\n", site.digest), "{args:?}");
            }
        }
        let sni = fs::read_to_string(lab.dir.join(format!("sni-{PORT13}.log"))).unwrap_or_default();
        assert!(
            sni.lines().any(|l| l == "www.test.example"),
            "-V is sent as SNI: {sni:?}"
        );
        // -S against plain HTTP: a TLS error, exit 1, within the timeout.
        let start = Instant::now();
        let out = genhash(
            &lab,
            &["-S", "-s", ADDR, "-p", "8080", "-u", "/", "-t", "3"],
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("SSL"), "{stderr}");
        assert!(start.elapsed() < Duration::from_secs(5));
        // Nothing listening.
        let out = genhash(
            &lab,
            &["-S", "-s", ADDR, "-p", "4999", "-u", "/", "-t", "2"],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
        // A server that accepts and never answers: the timeout ends it.
        let silent = lab.spawn(
            0,
            "silent",
            &[
                "python3",
                "-c",
                &format!(
                    "import socket,time\ns=socket.socket()\ns.bind(('{ADDR}',4998))\ns.listen(8)\nc=s.accept()\ntime.sleep(60)"
                ),
            ],
        );
        lab.wait_tcp(0, ADDR, 4998);
        let start = Instant::now();
        let out = genhash(
            &lab,
            &["-S", "-s", ADDR, "-p", "4998", "-u", "/", "-t", "1"],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("timed out"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        silent.kill();
        plain.kill();
    }
}
