#!/usr/bin/env bash
# How fast the daemon programs IPVS, next to keepalived 2.2.7, in the test VM
# (real IPVS: Debian's kernel under qemu, images/run-vm.sh).
#
#   tests/bench/vm_ipvs_program.sh [REPS]
#
# Cases, each from a cold start (empty table, daemon not running):
#   1x2000   one virtual server with 2,000 real servers
#   100x20   100 virtual servers with 20 real servers each
# and for each: a SIGHUP reload that changes the weight of 10% of the real
# servers (200 of 2,000), then SIGTERM.
#
# Per daemon and case it prints: start (until /proc/net/ip_vs lists every
# destination), reload (until all 200 new weights show), stop (until the
# table is empty), and the daemon's RSS once programmed (keepalived: parent
# plus children). Real servers have no checkers, so both daemons treat them
# as alive from the start. Both daemons run in the VM's root namespace, one
# at a time, measured the same way (poll every 20 ms), REPS times each
# (default 2); the figures are TCG-inflated: compare the two columns, not
# with host numbers.
#
# Needs root, qemu and the static musl build of the daemon (built here if
# missing). Not named ci_*.sh: tests/run.sh does not run it (one ~3-minute
# VM boot).
set -euo pipefail

cd "$(dirname "$0")/../.."
REPO=$PWD
REPS=${1:-2}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
BIN=${KRS_BINARY:-$TARGET_DIR/x86_64-unknown-linux-musl/release/keepalived}
if [ ! -x "$BIN" ]; then
    echo "== building the static daemon" >&2
    cargo build --quiet --release --locked --target x86_64-unknown-linux-musl --bin keepalived >&2
fi

WORK=$(mktemp -d /tmp/krs-ipvs-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- configs --

# one_vs WEIGHT_EVERY: 1 VS, 2000 RS; every WEIGHT_EVERY-th RS gets weight 2.
one_vs() {
    echo "global_defs { router_id bench }"
    echo "virtual_server 10.0.0.100 80 {"
    echo "    lb_algo wrr"
    echo "    lb_kind DR"
    echo "    protocol TCP"
    for i in $(seq 0 1999); do
        w=1
        [ "$1" -gt 0 ] && [ $((i % $1)) -eq 0 ] && w=2
        echo "    real_server 10.10.$((i / 250)).$((i % 250 + 1)) 80 { weight $w }"
    done
    echo "}"
}

# many_vs WEIGHT_EVERY: 100 VS x 20 RS.
many_vs() {
    echo "global_defs { router_id bench }"
    for v in $(seq 1 100); do
        echo "virtual_server 10.0.1.$v 80 {"
        echo "    lb_algo wrr"
        echo "    lb_kind DR"
        echo "    protocol TCP"
        for j in $(seq 0 19); do
            w=1
            [ "$1" -gt 0 ] && [ $((j % $1)) -eq 0 ] && w=2
            echo "    real_server 10.20.$v.$((j + 1)) 80 { weight $w }"
        done
        echo "}"
    done
}

one_vs 0 >"$WORK/1x2000.conf"
one_vs 10 >"$WORK/1x2000.reload.conf"
many_vs 0 >"$WORK/100x20.conf"
many_vs 10 >"$WORK/100x20.reload.conf"

# --------------------------------------------------------------- scenario --

cat >"$WORK/bench.sh" <<'EOF'
. /lib/krs/lib.sh
REPS=$(cat /scenario/reps)
now() { echo "$EPOCHREALTIME"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
dests() { awk '$1 == "->" && $2 != "RemoteAddress:Port" { n++ } END { print n + 0 }' /proc/net/ip_vs; }
services() { awk '$1 == "TCP" || $1 == "UDP" || $1 == "FWM" { n++ } END { print n + 0 }' /proc/net/ip_vs; }
# /proc/net/ip_vs destination lines: -> ADDR:PORT FORWARD WEIGHT ACTIVE INACTIVE
weight2() { awk '$1 == "->" && $4 == 2 { n++ } END { print n + 0 }' /proc/net/ip_vs; }
# poll SECS TEST...: every 20 ms until TEST succeeds; rc 1 after SECS.
poll() {
    _end=$(awk -v t="$(now)" -v s="$1" 'BEGIN { printf "%.3f", t + s }')
    shift
    while ! "$@"; do
        awk -v t="$(now)" -v e="$_end" 'BEGIN { exit !(t > e) }' && return 1
        sleep 0.02
    done
}
is_eq() { [ "$($1)" -eq "$2" ]; }
rss_kb() { # process names: VmRSS summed
    _t=0
    for _p in $(pidof "$@"); do
        _r=$(awk '/^VmRSS/ { print $2 }' "/proc/$_p/status" 2>/dev/null)
        _t=$((_t + ${_r:-0}))
    done
    echo "$_t"
}
gone() { ! kill -0 "$1" 2>/dev/null; }

# run LABEL CASE: one cold start / reload / stop cycle.
run() {
    label=$1 case=$2
    ipvsadm -C
    cp "/scenario/$case.conf" /tmp/bench.conf
    t0=$(now)
    case $label in
    keepalived-rs)
        keepalived-rs -n -f /tmp/bench.conf -p /tmp/bench.pid >/tmp/bench.log 2>&1 &
        procs=keepalived-rs ;;
    keepalived)
        keepalived -n -f /tmp/bench.conf -p /tmp/bench.pid -c /tmp/bench-c.pid \
            -r /tmp/bench-r.pid -b /tmp/bench-b.pid >/tmp/bench.log 2>&1 &
        procs=keepalived ;;
    esac
    pid=$!
    if ! poll 300 is_eq dests 2000; then
        krs_result "$label-$case-start" FAIL "dests=$(dests)"
        kill -9 $(pidof $procs) 2>/dev/null
        return
    fi
    t1=$(now)
    sleep 1
    rss=$(rss_kb $procs)
    cp "/scenario/$case.reload.conf" /tmp/bench.conf
    t2=$(now)
    kill -HUP "$pid"
    poll 120 is_eq weight2 200 || krs_log "$label $case: reload incomplete, weight2=$(weight2)"
    t3=$(now)
    after=$(dests)
    sleep 1
    t4=$(now)
    kill -TERM "$pid"
    poll 120 is_eq services 0 || krs_log "$label $case: stop left $(services) services"
    t5=$(now)
    poll 30 gone "$pid" || kill -9 $(pidof $procs) 2>/dev/null
    echo "KRS-BENCH $label $case start_ms=$(ms "$t0" "$t1") reload_ms=$(ms "$t2" "$t3") stop_ms=$(ms "$t4" "$t5") rss_kb=$rss dests_after_reload=$after"
    krs_result "$label-$case" PASS
}

krs_log "keepalived: $(keepalived --version 2>&1 | head -n 1)"
krs_log "keepalived-rs: $(keepalived-rs --version 2>&1 | head -n 1)"
for rep in $(seq 1 "$REPS"); do
    for case in 1x2000 100x20; do
        for label in keepalived-rs keepalived; do
            run "$label" "$case"
        done
    done
done
EOF
echo "$REPS" >"$WORK/reps"

LOG=$TARGET_DIR/vm/logs/vm_ipvs_program.log
mkdir -p "$(dirname "$LOG")"
echo "== booting the VM ($REPS repetitions; a few minutes under TCG)" >&2
status=0
CARGO_TARGET_DIR=$TARGET_DIR KRS_BINARY=$BIN KRS_VM_TIMEOUT=${KRS_VM_TIMEOUT:-1500} KRS_VM_QUIET=1 \
    bash images/run-vm.sh "$WORK/bench.sh" "$LOG" \
    "$WORK/reps:reps" \
    "$WORK/1x2000.conf:1x2000.conf" "$WORK/1x2000.reload.conf:1x2000.reload.conf" \
    "$WORK/100x20.conf:100x20.conf" "$WORK/100x20.reload.conf:100x20.reload.conf" >&2 || status=$?

tr -d '\r' <"$LOG" | grep '^KRS-LOG keepalived' | sed 's/^KRS-LOG /# /' || true
printf '# IPVS programming in the test VM (TCG), commit %s; median of %s run(s), ms\n' \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$REPS"
tr -d '\r' <"$LOG" | grep '^KRS-BENCH ' | awk '
    {
        key = $2 " " $3
        for (i = 4; i <= NF; i++) {
            split($i, kv, "=")
            v[key, kv[1], ++n[key, kv[1]]] = kv[2]
        }
        if (!(key in seen)) { seen[key] = 1; order[++k] = key }
    }
    function median(key, f,    m, i, j, t, a) {
        m = n[key, f]
        for (i = 1; i <= m; i++) a[i] = v[key, f, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m ? a[int((m + 1) / 2)] : "-"
    }
    BEGIN { printf "%-14s %-8s %10s %10s %10s %10s\n", "daemon", "case", "start", "reload", "stop", "RSS KiB" }
    END {
        for (i = 1; i <= k; i++) {
            split(order[i], p, " ")
            printf "%-14s %-8s %10s %10s %10s %10s\n", p[1], p[2], median(order[i], "start_ms"),
                median(order[i], "reload_ms"), median(order[i], "stop_ms"), median(order[i], "rss_kb")
        }
    }'
if [ "$status" -ne 0 ]; then
    echo "VM run failed (status $status); console log: $LOG" >&2
    tr -d '\r' <"$LOG" | grep -E 'KRS-RESULT .* FAIL|KRS-LOG' >&2 || true
    exit "$status"
fi
