//! A tiny static real-server farm for tests/bench/vm_check_cpu.sh: one
//! process answering TCP connections and HTTP/1.0 GETs on every address
//! that reaches it (the namespace routes a whole prefix to `lo` with
//! `ip route add local PREFIX dev lo`, and this listens on 0.0.0.0), so
//! thousands of "real servers" cost one process and no fork per check.
//!
//!   vm_listener PORT [THREADS] [COUNT_FILE]
//!
//! Every connection: read until the end of the request head (or EOF, or
//! 2 s), answer `200 OK` with the body "ok\n" when there was a request,
//! close. Once a second the number of connections accepted so far is
//! written to COUNT_FILE, so the scenario can tell how many probes the
//! daemon under test made.
//!
//! Built by the bench script, not by cargo:
//!   rustc --edition 2021 -O --target x86_64-unknown-linux-musl \
//!       -C linker=rust-lld -C target-feature=+crt-static vm_listener.rs

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

extern "C" {
    fn listen(fd: i32, backlog: i32) -> i32;
}

const RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

fn serve(mut s: std::net::TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4096];
    let mut len = 0;
    // Bounded: at most buf.len() bytes or a few reads.
    for _ in 0..16 {
        match s.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                len += n;
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
                    let _ = s.write_all(RESPONSE);
                    break;
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(80);
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(4);
    let count_file = args.get(3).cloned();
    let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
    // std listens with a small backlog; a burst of checks needs more
    // (capped by net.core.somaxconn).
    // SAFETY: listen() on a socket we own; re-listening only resizes the queue.
    unsafe {
        listen(listener.as_raw_fd(), 65535);
    }
    let listener = Arc::new(listener);
    let accepted = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..threads.max(1) {
        let l = Arc::clone(&listener);
        let n = Arc::clone(&accepted);
        workers.push(std::thread::spawn(move || loop {
            if let Ok((s, _)) = l.accept() {
                n.fetch_add(1, Ordering::Relaxed);
                serve(s);
            }
        }));
    }
    if let Some(path) = count_file {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let _ = std::fs::write(&path, format!("{}\n", accepted.load(Ordering::Relaxed)));
        }
    }
    for w in workers {
        let _ = w.join();
    }
}
