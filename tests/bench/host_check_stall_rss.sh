#!/usr/bin/env bash
# Checker RSS across stalls, on the host (no VM, no IPVS): the daemon is
# stopped (SIGSTOP) for a few seconds, several times; on each resume the
# checkers that fell due meanwhile start their probes in one burst. A daemon
# that keeps the room of such bursts grows by a step per stall (the timer
# wheel did: ~370 kB per stall at 1,000 HTTP_GET checkers before it capped
# what its buckets keep); one that does not stays level after the first.
# This is what a loaded router (or TCG, in the VM benchmark) does to the
# daemon. Figures only: no assertion. Run by hand, as root:
#
#   tests/bench/host_check_stall_rss.sh [-n N] [-k tcp|http] [-s STALLS] [-p STOP_S]
#
#   -n  real servers (default 1000), delay_loop 1, 100 per virtual server
#   -k  checker kind (default http)
#   -s  stalls (default 6)
#   -p  length of each stall, seconds (default 6: beyond connect_timeout 5)
#
# Prints VmRSS before the first stall and 15 s after each one. The farm is
# tests/bench/vm_listener.rs in a namespace of its own (as in
# host_check_cpu.sh). The binary is $KEEPALIVED_RS_BIN, else the static
# x86_64 musl release build (built here when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

N=1000
KIND=http
STALLS=6
STOP=6
while getopts "n:k:s:p:h" opt; do
    case $opt in
    n) N=$OPTARG ;;
    k) KIND=$OPTARG ;;
    s) STALLS=$OPTARG ;;
    p) STOP=$OPTARG ;;
    *)
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
        exit 2
        ;;
    esac
done
for v in "$N" "$STALLS" "$STOP"; do
    case $v in '' | *[!0-9]*) echo "host_check_stall_rss: -n/-s/-p take whole numbers" >&2 && exit 2 ;; esac
done
case $KIND in tcp | http) ;; *) echo "host_check_stall_rss: -k takes tcp or http" >&2 && exit 2 ;; esac

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=${KEEPALIVED_RS_BIN:-$TARGET_DIR/x86_64-unknown-linux-musl/release/keepalived}
[ -x "$BIN" ] || cargo build --release --quiet --target x86_64-unknown-linux-musl

WORK=$(mktemp -d /tmp/krs-stall-bench.XXXXXX)
DAEMON=""
# shellcheck source=tests/bench/host_farm.sh
. tests/bench/host_farm.sh
cleanup() {
    if [ -n "$DAEMON" ]; then
        kill -CONT "$DAEMON" 2>/dev/null || true
        kill -TERM "$DAEMON" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON" 2>/dev/null || true
    fi
    farm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
farm_start "$WORK" "krs-stall-$$"
NS=$FARM_NS

# shellcheck source=tests/bench/check_conf.sh
. tests/bench/check_conf.sh
gen_check_conf "$KIND" "$N" 100 1 10.201 10.200 >"$WORK/k.conf"
# The daemon itself (not a wrapper) gets the signals: exec in the netns.
ip netns exec "$NS" "$BIN" -n -l -f "$WORK/k.conf" -p "$WORK/pid" >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$DAEMON/status" 2>/dev/null || echo "-"; }

echo "host_check_stall_rss: $N x $KIND, delay_loop 1, $STALLS stalls of $STOP s; binary $BIN"
sleep 20
first=$(rss)
echo "before the stalls: VmRSS $first kB"
for i in $(seq "$STALLS"); do
    kill -STOP "$DAEMON"
    sleep "$STOP"
    kill -CONT "$DAEMON"
    sleep 15
    echo "15 s after stall $i: VmRSS $(rss) kB"
done
last=$(rss)
awk -v a="$first" -v b="$last" -v s="$STALLS" 'BEGIN {
    if (a + 0 > 0 && b + 0 > 0) printf "growth: %d kB over %d stalls (%.0f kB per stall)\n", b - a, s, (b - a) / s }'
echo "daemon log: $(wc -l <"$WORK/daemon.log") lines"
