#!/usr/bin/env bash
# Checker cost per probe on the host (no VM, no IPVS): instructions
# (callgrind), syscalls (strace -c) and CPU time (perf stat) that the daemon
# spends per TCP_CHECK / HTTP_GET probe against a local real-server farm.
# Figures only: no assertion. Run by hand, as root:
#
#   tests/bench/host_check_cpu.sh [-n N] [-k "tcp http"] [-w WINDOW_S]
#                                 [-s SETTLE_S] [-m "callgrind strace perf"]
#
#   -n  real servers (default 1000), delay_loop 1, 100 per virtual server
#   -k  checker kinds (default "tcp http"; http = HTTP_GET status_code 200)
#   -w  measuring window, seconds (default 10)
#   -s  settle time after start, seconds (default 8; callgrind runs slowly)
#   -m  measurements (default "callgrind strace perf")
#
# The farm is tests/bench/vm_listener.rs (built here with rustc -O) in a
# namespace of its own where `ip route add local 10.200.0.0/16 dev lo`
# makes every real server address answer. The daemon runs in the same
# namespace with -n -l; IPVS is absent, so only the checkers work (the
# IPVS subsystem logs that it cannot start). The binary is
# $KEEPALIVED_RS_BIN, else a release build with debug info in
# $CARGO_TARGET_DIR (default target/) built here.
#
# callgrind: the counters are zeroed after the settle time and dumped after
# the window; probes = calls to socket() in that part (one per probe),
# checked against the listener's count. The top functions are summed per
# function with inlined code folded in (tests/bench/callgrind_sum.py).
# CALLGRIND_KEEP=DIR keeps the profiles (callgrind.KIND.out) for
# callgrind_annotate.
# Under callgrind the daemon is slower, so more events share one
# epoll_wait than natively: per-probe figures of the loop itself come out
# a little low.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

N=1000
KINDS="tcp http"
WINDOW=10
SETTLE=8
MEASURES="callgrind strace perf"
while getopts "n:k:w:s:m:h" opt; do
    case $opt in
    n) N=$OPTARG ;;
    k) KINDS=$OPTARG ;;
    w) WINDOW=$OPTARG ;;
    s) SETTLE=$OPTARG ;;
    m) MEASURES=$OPTARG ;;
    *)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
    esac
done

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=${KEEPALIVED_RS_BIN:-}
if [ -z "$BIN" ]; then
    CARGO_PROFILE_RELEASE_DEBUG=true CARGO_PROFILE_RELEASE_STRIP=false \
        CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet
    BIN=$TARGET_DIR/release/keepalived
fi

WORK=$(mktemp -d /tmp/krs-host-bench.XXXXXX)
DAEMON=""
# shellcheck source=tests/bench/host_farm.sh
. tests/bench/host_farm.sh
cleanup() {
    [ -n "$DAEMON" ] && kill -KILL "$DAEMON" 2>/dev/null
    farm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
farm_start "$WORK" "krs-bench-$$"
NS=$FARM_NS

# shellcheck source=tests/bench/check_conf.sh
. tests/bench/check_conf.sh
gen_conf() { # KIND N
    gen_check_conf "$1" "$2" 100 1 10.201 10.200
}

# The listener writes its count once a second: wait for the next write, so
# two readings are whole seconds apart.
# (The file is rewritten in place: a reading may catch it empty.)
read_count() {
    local c
    for _ in $(seq 100); do
        c=$(cat "$WORK/count" 2>/dev/null || true)
        [ -n "$c" ] && echo "$c" && return
        sleep 0.005
    done
    echo 0
}
count_tick() {
    local c0 c
    c0=$(read_count)
    for _ in $(seq 300); do
        c=$(read_count)
        [ "$c" != "$c0" ] && echo "$c" && return
        sleep 0.01
    done
    echo "$c0"
}

start_daemon() { # CONF [WRAPPER...]
    local conf=$1
    shift
    rm -f "$WORK/pid"
    ip netns exec "$NS" "$@" "$BIN" -n -l -f "$conf" -p "$WORK/pid" >"$WORK/daemon.log" 2>&1 &
    DAEMON=$!
    for _ in $(seq 200); do
        [ -s "$WORK/pid" ] && break
        sleep 0.1
    done
    PID=$(cat "$WORK/pid")
}

stop_daemon() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
    DAEMON=""
}

for kind in $KINDS; do
    conf=$WORK/$kind.conf
    gen_conf "$kind" "$N" >"$conf"
    for m in $MEASURES; do
        case $m in
        callgrind)
            start_daemon "$conf" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out"
            sleep "$SETTLE"
            c0=$(count_tick)
            callgrind_control -z "$PID" >/dev/null
            sleep $((WINDOW - 1))
            c1=$(count_tick)
            callgrind_control -d "$PID" >/dev/null
            stop_daemon
            echo "== $kind n=$N callgrind: listener saw $((c1 - c0)) connections in the window"
            python3 tests/bench/callgrind_sum.py "$WORK/cg.out.1" socket 30
            [ -n "${CALLGRIND_KEEP:-}" ] && cp "$WORK/cg.out.1" "$CALLGRIND_KEEP/callgrind.$kind.out"
            ;;
        strace)
            start_daemon "$conf"
            sleep "$SETTLE"
            timeout -s INT "$WINDOW" strace -c -p "$PID" -o "$WORK/strace.txt" 2>/dev/null || true
            stop_daemon
            echo "== $kind n=$N strace -c: syscalls per probe (probes = socket() calls)"
            # Rows: % time, seconds, usecs/call, calls, [errors,] syscall.
            awk '$1 ~ /^[0-9.]+$/ { calls[$NF] = $4; order[++n] = $NF }
                END { p = calls["socket"]; if (p == 0) { print "  no socket() call"; exit }
                    for (i = 1; i <= n; i++) if (calls[order[i]] / p >= 0.01 || order[i] == "total")
                        printf "  %-16s %8.3f\n", order[i], calls[order[i]] / p }' "$WORK/strace.txt"
            ;;
        perf)
            start_daemon "$conf"
            sleep "$SETTLE"
            c0=$(count_tick)
            read -r u0 s0 < <(awk '{ print $14, $15 }' "/proc/$PID/stat")
            perf stat -x, -e task-clock -p "$PID" -o "$WORK/perf.txt" &
            perf=$!
            sleep $((WINDOW - 1))
            c1=$(count_tick)
            kill -INT "$perf"
            wait "$perf" || true
            read -r u1 s1 < <(awk '{ print $14, $15 }' "/proc/$PID/stat")
            rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
            stop_daemon
            echo "== $kind n=$N VmRSS at the end: ${rss} kB"
            # task-clock in ms (perf), utime/stime in USER_HZ ticks (100/s).
            awk -F, -v p=$((c1 - c0)) -v u=$((u1 - u0)) -v s=$((s1 - s0)) '
                $3 == "task-clock" { t = $1 }
                END { if (p > 0) printf "== '"$kind"' n='"$N"' perf stat: %d probes; CPU per probe %.1f us (user %.1f, sys %.1f from /proc ticks)\n",
                    p, t * 1000 / p, u * 1e4 / p, s * 1e4 / p }' "$WORK/perf.txt"
            ;;
        *) echo "unknown measurement $m" >&2 ;;
        esac
    done
done
