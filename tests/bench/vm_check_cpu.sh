#!/usr/bin/env bash
# Checker CPU and memory benchmark in the test VM: keepalived-rs against
# keepalived 2.2.7's checker process (`keepalived -C`, its child), same
# configuration, same VM, one after the other.
#
#   sudo tests/bench/vm_check_cpu.sh [-n "100 1000 5000"] [-k "tcp http"]
#                                    [-w WINDOW_S] [-l LONG_S] [-L LONG_N]
#                                    [-t same|split] [-s STRACE_S] [-D DAEMONS]
#                                    [-i]
#
#   -n  real-server counts (default "100 1000 5000"; "" for the long run only)
#   -k  checker kinds: tcp (TCP_CHECK) and/or http (HTTP_GET status_code 200)
#   -w  CPU window per run, seconds (default 20)
#   -l  the long run, seconds: RSS at its start and end (and each minute)
#       for both daemons with -L real servers of HTTP_GET. Default 0 (none,
#       for CI); the 10-minute figure is `-l 600`.
#   -L  real servers in the long run (default 1000)
#   -d  delay_loop, seconds (default 1)
#   -r  runs per daemon and configuration (default 1), alternating which
#       daemon goes first; the tables show the means. Other work on the host
#       slows TCG down for whichever daemon is running: repeat, and look at
#       the host load printed at the end.
#
#   -t  CPU topology: same (default; daemon and farm share the VM's two
#       vCPUs, so the kernel work of the servers' side of each connection
#       is charged to the daemon that sent the packet) or split (daemon on
#       vCPU 0; farm, its RPS-steered receive path and its listener on
#       vCPU 1: the servers behave like other machines, and each daemon
#       pays only for its own side of the connections)
#   -D  daemons to run (default "ours ka")
#   -i  instead of CPU time: user-space instructions per probe, each daemon
#       under callgrind in the VM (valgrind is copied in from the host),
#       run twice, the second time WINDOW seconds longer: the difference
#       of instructions over the difference of probes; a figure TCG and
#       the kernel do not distort. Use small sizes (-n 100): callgrind
#       under TCG is slow.
#   -s  after each CPU window, count the measured process's system calls
#       with strace -c for this many seconds and print them per probe
#       (default 0: off)
#
# Every configuration has delay_loop -d (connect_timeout 5, retry 1,
# delay_before_retry 1), 100 real servers per LVS-DR virtual server. One
# static listener (tests/bench/vm_listener.rs, built here with rustc) in a
# namespace answers for all real servers; see vm_check_cpu.vm.sh for the
# topology. Measured: utime+stime of our daemon and of keepalived's checker
# child from /proc/PID/stat over the window, as % of one CPU; VmRSS and
# VmHWM from /proc/PID/status (keepalived's parent process separately);
# the probes per second the listener saw; how many real servers were alive
# in `ipvsadm -Ln` at the end. Figures only: no assertion. Percentages under
# TCG are inflated; only the ratio between the two daemons means something.
#
# Needs root, qemu, the VM image prerequisites (see images/) and the static
# musl build (built here when missing; KEEPALIVED_RS_BIN overrides).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

SIZES="100 1000 5000"
KINDS="tcp http"
WINDOW=20
LONG=0
LONG_N=1000
DELAY_LOOP=1
REPS=1
CPUS=same
STRACE=0
DAEMONS="ours ka"
INSTR=0
while getopts "n:k:w:l:L:d:r:t:s:D:ih" opt; do
    case $opt in
    n) SIZES=$OPTARG ;;
    k) KINDS=$OPTARG ;;
    w) WINDOW=$OPTARG ;;
    l) LONG=$OPTARG ;;
    L) LONG_N=$OPTARG ;;
    d) DELAY_LOOP=$OPTARG ;;
    r) REPS=$OPTARG ;;
    t) CPUS=$OPTARG ;;
    s) STRACE=$OPTARG ;;
    D) DAEMONS=$OPTARG ;;
    i) INSTR=1 ;;
    *)
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
        exit 2
        ;;
    esac
done
for d in $DAEMONS; do
    case $d in ours | ka) ;; *) echo "vm_check_cpu: -D takes ours and/or ka" >&2 && exit 2 ;; esac
done
case $CPUS in same | split) ;; *) echo "vm_check_cpu: -t takes same or split" >&2 && exit 2 ;; esac
for v in "$WINDOW" "$LONG" "$LONG_N" "$DELAY_LOOP" "$REPS" "$STRACE"; do
    case $v in '' | *[!0-9]*) echo "vm_check_cpu: -w/-l/-L/-d/-r/-s take whole numbers" >&2 && exit 2 ;; esac
done

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
BIN=${KEEPALIVED_RS_BIN:-$TARGET_DIR/x86_64-unknown-linux-musl/release/keepalived}
case $BIN in /*) ;; *) BIN=$REPO/$BIN ;; esac
[ -x "$BIN" ] || cargo build --release --target x86_64-unknown-linux-musl
export CARGO_TARGET_DIR=$TARGET_DIR KRS_BINARY=$BIN

WORK=$(mktemp -d /tmp/krs-check-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The listener: std only, static, linked like the daemon (rust-lld).
rustc --edition 2021 -O --target x86_64-unknown-linux-musl -C linker=rust-lld \
    -C target-feature=+crt-static -C panic=abort -C strip=symbols \
    tests/bench/vm_listener.rs -o "$WORK/vm_listener"

{
    echo "SIZES='$SIZES' KINDS='$KINDS' DAEMONS='$DAEMONS'"
    echo "WINDOW=$WINDOW SETTLE=5 LONG=$LONG LONG_N=$LONG_N LONG_KIND=http PER_VS=100 DELAY_LOOP=$DELAY_LOOP REPS=$REPS CPUS=$CPUS STRACE=$STRACE INSTR=$INSTR"
    cat tests/bench/check_conf.sh tests/bench/vm_check_cpu.vm.sh
} >"$WORK/run.sh"

# Time limit: per run start-up (up to 180 s to a full table at 5000 under
# TCG), settle and window, twice (two daemons) per size and kind; plus the
# long runs.
ndaemons=$(wc -w <<<"$DAEMONS")
nruns=$(($(wc -w <<<"$SIZES") * $(wc -w <<<"$KINDS") * ndaemons * REPS))
limit=$((nruns * (WINDOW + STRACE + 120) + ndaemons * (LONG + 240) + 120))
LOG=$TARGET_DIR/vm/logs/vm_check_cpu.log
mkdir -p "$(dirname "$LOG")"
echo "vm_check_cpu: $nruns runs (sizes $SIZES; kinds $KINDS; window $WINDOW s; long $LONG s)," \
    "VM limit $limit s; console log $LOG" >&2
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
set +e
VG_FILES=()
if [ "$INSTR" = 1 ]; then
    # Debian's /usr/bin/valgrind is a shell wrapper around valgrind.bin.
    for f in /usr/bin/valgrind.bin /usr/bin/vgdb /usr/libexec/valgrind/callgrind-amd64-linux \
        /usr/libexec/valgrind/vgpreload_core-amd64-linux.so /usr/libexec/valgrind/default.supp; do
        [ -e "$f" ] || { echo "vm_check_cpu: -i needs valgrind ($f missing; apt-get install valgrind)" >&2 && exit 2; }
        VG_FILES+=("$f:vg/$(basename "$f" .bin)")
    done
    limit=$((nruns * (2 * WINDOW + 400) + 120))
fi
KRS_VM_TIMEOUT=$limit KRS_VM_QUIET=1 bash images/run-vm.sh "$WORK/run.sh" "$LOG" \
    "$WORK/vm_listener:vm_listener" "${VG_FILES[@]}"
rc=$?
set -e
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
[ $rc -le 1 ] || echo "vm_check_cpu: run-vm.sh exited $rc (timeout or crash); partial figures" >&2

tr -d '\r' <"$LOG" | sed '/^KRS-/!s/^.*\(KRS-[A-Z0-9-]* \)/\1/' >"$WORK/log.txt"
grep '^KRS-LOG' "$WORK/log.txt" | grep -v '^KRS-LOG bench:' >&2 || true

kv() { # line key
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
# CPU microseconds per probe: cpu% of one CPU / probes per second.
per_probe() { awk -v c="$1" -v p="$2" 'BEGIN { if (c != "" && p + 0 > 0) printf "%.0f", c / 100 * 1e6 / p; else print "-" }'; }
# mean DAEMON KIND N: one line of key=value, the mean of every numeric
# value over that configuration's runs (others: the last run's).
mean() {
    grep "^KRS-BENCH daemon=$1 kind=$2 n=$3 " "$WORK/log.txt" | awk '
        { for (i = 2; i <= NF; i++) {
            k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v)
            if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
            if (v ~ /^[0-9]+(\.[0-9]+)?$/) { sum[k] += v; cnt[k]++ } else last[k] = v
        } }
        END { for (j = 1; j <= nk; j++) { k = order[j]
            if (cnt[k] > 0) printf " %s=%s", k, (k ~ /_pct$|^ready_s$/ ? sprintf("%.1f", sum[k] / cnt[k]) : sprintf("%.0f", sum[k] / cnt[k]))
            else printf " %s=%s", k, last[k]
        } }'
}
row() { # kind n -> sets O and A (ours, keepalived: means over the runs)
    O=$(mean ours "$1" "$2")
    A=$(mean ka "$1" "$2")
}
if [ "$INSTR" != 1 ] && [ -n "${SIZES// /}" ]; then
    echo
    echo "Checker CPU, keepalived-rs (ours) vs keepalived 2.2.7's checker process (ka); delay_loop $DELAY_LOOP;"
    echo "CPU topology: $CPUS (split: the farm's side of each connection runs on the other vCPU)."
    echo "means of $REPS run(s) each."
    echo "cpu = % of one vCPU under TCG over $WINDOW s; pr/s = connections/s the listener accepted;"
    echo "us/pr = CPU microseconds per probe (the comparable figure when the VM saturates);"
    echo "up = real servers alive in ipvsadm -Ln at the end of the window. Ratios are ours / ka;"
    echo "sys = the part of cpu% spent in the kernel."
    printf '%-5s %5s | %6s %6s %5s | %5s %5s | %6s %6s | %6s %6s %5s | %11s\n' \
        kind n "ours" "ka" ratio "ours" "ka" "ours" "ka" "ours" "ka" ratio "up ours/ka"
    printf '%-5s %5s | %6s %6s %5s | %5s %5s | %6s %6s | %6s %6s %5s | %11s\n' \
        "" "" "cpu%" "cpu%" "" "sys%" "sys%" "pr/s" "pr/s" "us/pr" "us/pr" "" ""
    for n in $SIZES; do
        for k in $KINDS; do
            row "$k" "$n"
            oc=$(kv "$O" cpu_pct) ac=$(kv "$A" cpu_pct) op=$(kv "$O" probes_per_s) ap=$(kv "$A" probes_per_s)
            ou=$(per_probe "$oc" "$op") au=$(per_probe "$ac" "$ap")
            printf '%-5s %5s | %6s %6s %5s | %5s %5s | %6s %6s | %6s %6s %5s | %11s\n' \
                "$k" "$n" "${oc:--}" "${ac:--}" "$(ratio "$oc" "$ac")" "$(kv "$O" sys_pct)" "$(kv "$A" sys_pct)" \
                "${op:--}" "${ap:--}" \
                "$ou" "$au" "$(ratio "$ou" "$au")" "$(kv "$O" alive) $(kv "$A" alive)"
        done
    done
    echo
    echo "User-space CPU per probe (cpu% - sys%): what each daemon's own code costs; the kernel's"
    echo "TCP work per probe (both sides of the connection, in one VM) is the same for both daemons."
    printf '%-5s %5s | %8s %8s %5s\n' kind n "ours" "ka" ratio
    printf '%-5s %5s | %8s %8s %5s\n' "" "" "usr/pr" "usr/pr" ""
    for n in $SIZES; do
        for k in $KINDS; do
            row "$k" "$n"
            ouser=$(awk -v c="$(kv "$O" cpu_pct)" -v s="$(kv "$O" sys_pct)" 'BEGIN { if (c != "" && s != "") print c - s }')
            auser=$(awk -v c="$(kv "$A" cpu_pct)" -v s="$(kv "$A" sys_pct)" 'BEGIN { if (c != "" && s != "") print c - s }')
            ou=$(per_probe "$ouser" "$(kv "$O" probes_per_s)") au=$(per_probe "$auser" "$(kv "$A" probes_per_s)")
            printf '%-5s %5s | %8s %8s %5s\n' "$k" "$n" "$ou" "$au" "$(ratio "$ou" "$au")"
        done
    done
    echo
    echo "Memory (kB): VmRSS (VmHWM) at the end of the window; ka's parent process separately."
    printf '%-5s %5s | %15s | %15s %10s | %8s %12s\n' \
        kind n "ours RSS (HWM)" "ka chk RSS (HWM)" "ka parent" "ours/chk" "ours/(chk+par)"
    for n in $SIZES; do
        for k in $KINDS; do
            row "$k" "$n"
            orss=$(kv "$O" rss_kb) arss=$(kv "$A" rss_kb) apar=$(kv "$A" parent_rss_kb)
            printf '%-5s %5s | %15s | %15s %10s | %8s %12s\n' "$k" "$n" \
                "${orss:--} ($(kv "$O" hwm_kb))" "${arss:--} ($(kv "$A" hwm_kb))" "${apar:--}" \
                "$(ratio "$orss" "$arss")" "$(ratio "$orss" "$((${arss:-0} + ${apar:-0}))")"
        done
    done
fi
if grep -q '^KRS-BENCH-INSTR ' "$WORK/log.txt"; then
    echo
    echo "User-space instructions per probe (callgrind in the VM: two lives of each daemon, $WINDOW s"
    echo "apart; the kernel's work is not counted; ka = keepalived 2.2.7's checker process):"
    grep '^KRS-BENCH-INSTR ' "$WORK/log.txt" | sed 's/^KRS-BENCH-INSTR //' | awk '
        { for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
          per = (f["probes"] > 0 ? f["instr"] / f["probes"] : 0)
          printf "  %-4s %-4s n=%-5s instructions=%s probes=%s per probe=%.0f (lives: Ir/probes %s, %s)\n", f["daemon"], f["kind"], f["n"], f["instr"], f["probes"], per, f["short_life"], f["long_life"]
          key = f["kind"] " " f["n"]; pp[f["daemon"], key] = per; keys[key] = 1 }
        END { for (key in keys) if (pp["ours", key] > 0 && pp["ka", key] > 0)
            printf "  %s: ka / ours = %.1f\n", key, pp["ka", key] / pp["ours", key] }'
fi
if grep -q '^KRS-BENCH-SYSCALLS ' "$WORK/log.txt"; then
    echo
    echo "System calls per probe (strace -c over $STRACE s after each window, all runs summed). A probe"
    echo "is a connect() (every TCP_CHECK and HTTP_GET probe makes one); calls at least 0.05 per probe."
    grep '^KRS-BENCH-SYSCALLS ' "$WORK/log.txt" | awk '
        { key = $2 " " $3 " " $4; if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
          for (i = 6; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v)
              if (!((key, k) in sum)) list[key] = list[key] " " k
              sum[key, k] += v } }
        END { for (j = 1; j <= nk; j++) { key = order[j]; p = sum[key, "connect"]
            if (p <= 0) { printf "  %s: no connect() seen\n", key; continue }
            printf "  %s connects=%d per probe: total=%.2f |", key, p, sum[key, "total"] / p
            n = split(list[key], ns, " ")
            for (i = 1; i <= n; i++) if (ns[i] != "total" && sum[key, ns[i]] / p >= 0.05) printf " %s=%.2f", ns[i], sum[key, ns[i]] / p
            printf "\n" } }'
fi
if [ "$LONG" -gt 0 ]; then
    echo
    echo "Long run: $LONG s, $LONG_N real servers, HTTP_GET"
    grep '^KRS-BENCH-RSS ' "$WORK/log.txt" | sed 's/^KRS-BENCH-RSS /  /'
    grep '^KRS-BENCH-LONG ' "$WORK/log.txt" | sed 's/^KRS-BENCH-LONG /  /'
fi
echo
echo "host load average (1/5/15 min) before the VM: $LOAD0; after: $LOAD1 (the host has $(nproc) CPUs;"
echo "anything above the VM's own ~2 slows TCG and inflates every figure)"
grep -q '^KRS-RESULT bench-done PASS' "$WORK/log.txt" || {
    echo "vm_check_cpu: the VM scenario did not finish (see $LOG)" >&2
    exit 1
}
