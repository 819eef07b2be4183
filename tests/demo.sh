#!/usr/bin/env bash
# The demo of keepalived-rs at its current stage (README, first command):
#
#   sudo tests/demo.sh
#
# 1. `keepalived -t` on every real-world seed config (tests/data/seeds), showing
#    the precise warnings for the quirks that trip real keepalived;
# 2. `keepalived -t -d` on the LVS-DR seed: the effective configuration with
#    keepalived's defaults filled in;
# 3. the daemon in the foreground (-n -l) on that config: it logs the parsed
#    instances, reloads on SIGHUP (and keeps running on a broken edit) and exits
#    cleanly on SIGTERM, removing its pid file.
# Later stages turn this into the live VRRP failover demo.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) PATH=$CARGO_BIN:$PATH ;; esac
if ! command -v cargo >/dev/null; then
    if ! command -v curl >/dev/null; then
        apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends curl ca-certificates gcc libc6-dev
    fi
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable
fi
command -v cc >/dev/null || { apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends gcc libc6-dev; }

cargo build --release --quiet
bin=target/release/keepalived
banner() { printf '\n\033[1m==== %s\033[0m\n' "$*"; }

banner "$($bin -v)"

banner "1. keepalived -t over every seed config (warnings only, exit 0 each)"
for conf in tests/data/seeds/*.conf; do
    if $bin -t -f "$conf" 2>/tmp/kars-demo.diag; then status=ok; else status="ERRORS"; fi
    printf '%-58s %s, %s warning(s)\n' "$(basename "$conf")" "$status" "$(grep -c warning /tmp/kars-demo.diag || true)"
done
banner "   the quirks of seeds 000, 002 and 003, as reported"
for conf in tests/data/seeds/000_tcp_check.conf tests/data/seeds/002_lvs_dr_tcp_check_master.conf tests/data/seeds/003_annotated_lvs_dr_http_get.conf; do
    $bin -t -f "$conf" 2>&1 | sed 's/^/   /'
done

seed=tests/data/seeds/001_lvs_dr_ka67_full.conf
banner "2. keepalived -t -d -f $seed (effective config, first 60 lines)"
$bin -t -d -f "$seed" 2>/dev/null | head -60

banner "3. the daemon: -n -l, SIGHUP, a broken edit, SIGTERM"
work=$(mktemp -d /tmp/kars-demo.XXXXXX)
cp "$seed" "$work/keepalived.conf"
$bin -n -l -f "$work/keepalived.conf" -p "$work/keepalived.pid" 2>&1 | sed 's/^/   /' &
sleep 1
pid=$(cat "$work/keepalived.pid")
echo "   [demo] pid file says $pid; sending SIGHUP"
kill -HUP "$pid"; sleep 0.5
echo "   [demo] breaking the config (priority 300) and sending SIGHUP: the running config stays"
sed -i 's/priority 100/priority 300/' "$work/keepalived.conf"
kill -HUP "$pid"; sleep 0.5
echo "   [demo] SIGTERM"
kill -TERM "$pid"; wait || true
[ -e "$work/keepalived.pid" ] && echo "   [demo] pid file still there!" || echo "   [demo] pid file removed"
rm -rf "$work"
