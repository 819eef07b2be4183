#!/usr/bin/env bash
# VRRP failover benchmark: keepalived-rs (musl release build) and keepalived
# 2.2.7 in network namespaces, SIGKILL and SIGTERM, v2 1 s and v3 0.1 s,
# median of 5 runs each, with RSS, process count and SIGTERM-to-exit time.
# Prints figures only (see tests/vrrp_failover_bench.rs). Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${KEEPALIVED_RS_BIN:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/keepalived}
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
[ -x "$BIN" ] || cargo build --release --target x86_64-unknown-linux-musl
KEEPALIVED_RS_BIN=$BIN cargo test --quiet --test vrrp_failover_bench -- --ignored --nocapture --test-threads=1 2>&1 \
    | grep -v '^running\|^test result\|^$'
