# In-VM half of tests/bench/vm_check_cpu.sh (run as /scenario/run.sh by the
# VM's /init; bash). The host script prepends the parameters:
#
#   SIZES="100 1000 5000"  KINDS="tcp http"  DAEMONS="ours ka"
#   WINDOW=20   (s, CPU window per run)    SETTLE=5 (s, after a full table)
#   LONG=0      (s, the long RSS run; 0 = none)  LONG_N=1000  LONG_KIND=http
#   PER_VS=100  (real servers per virtual server)  DELAY_LOOP=1
#   STRACE=0    (s; when > 0, after the CPU window strace -c counts the
#               measured process's system calls for that long, printed per
#               probe: the kernel entries each daemon needs, independent of
#               how TCG prices them)
#   INSTR=0     (1: instead of the CPU windows, count each daemon's
#               user-space instructions per probe with callgrind (valgrind
#               from /scenario/vg): zeroed after SETTLE, dumped after
#               WINDOW through vgdb; the kernel's work is not counted)
#   CPUS=same   (same: daemon and farm share both vCPUs; split: the daemon
#               runs on vCPU 0, the farm and its kernel receive path on
#               vCPU 1, as if the real servers were other machines)
#   REPS=1      (runs per daemon and configuration; the daemon order
#               alternates, ours first on odd runs, so a slow phase of the
#               host hits both)
#
# Topology: namespace "dir" (the director, 10.0.0.2) and namespace "farm"
# (10.0.0.11) on a veth pair. The farm takes every address of 10.2.0.0/16
# (`ip route add local 10.2.0.0/16 dev lo`) and one vm_listener process
# answers on all of them at port 80; the director routes 10.2.0.0/16 to
# the farm. With CPUS=split the farm's veth end steers received packets
# to vCPU 1 (RPS) and the director's end to vCPU 0, the listener is pinned
# to vCPU 1 and the daemons to vCPU 0: the softirq work of the servers'
# side of every connection (SYN-ACK, accept, answer) then runs on the
# other vCPU instead of being charged to whichever daemon sent the packet
# (the kernel has no IRQ time accounting). Real server i is 10.2.(i/200).(i%200+1):80; virtual server v
# is 10.1.(v/200).(v%200+1):80 (DR, rr), PER_VS real servers each.
# The listener's connection count checks that both daemons did the same
# work: when the VM runs out of CPU (TCG), probes per second fall below
# N / delay_loop, and CPU time per probe is the figure to compare.
#
# Per run (daemon, checker kind, size): start the daemon in "dir", wait for
# the full table (ipvsadm -Ln), SETTLE, then read utime+stime of the
# measured process (ours: the daemon; keepalived: its checker child) and
# the listener's connection count over WINDOW seconds. One line each:
#
#   KRS-BENCH daemon=ours kind=tcp n=1000 cpu_pct=.. sys_pct=.. rss_kb=.. hwm_kb=..
#       parent_rss_kb=.. probes_per_s=.. alive=N/N ready_s=..
#
# The long run prints KRS-BENCH-RSS lines (one per minute and the last)
# and a KRS-BENCH-LONG summary per daemon.

. /lib/krs/lib.sh

: "${SIZES=100 1000 5000}" "${KINDS=tcp http}" "${DAEMONS=ours ka}"
: "${WINDOW:=20}" "${SETTLE:=5}" "${LONG:=0}" "${LONG_N:=1000}" "${LONG_KIND:=http}"
: "${PER_VS:=100}" "${DELAY_LOOP:=1}" "${REPS:=1}" "${CPUS:=same}" "${STRACE:=0}" "${INSTR:=0}"
HZ=100 # USER_HZ on x86_64

uptime_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
sys_ticks() { awk '{ print $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
dests() { ip netns exec dir ipvsadm -Ln 2>/dev/null | awk '$1 == "->" && $2 != "RemoteAddress:Port" { n++ } END { print n + 0 }'; }
alive() { ip netns exec dir ipvsadm -Ln 2>/dev/null | awk '$1 == "->" && $2 != "RemoteAddress:Port" && $4 > 0 { n++ } END { print n + 0 }'; }
count() { cat /tmp/listener.count 2>/dev/null || echo 0; }

setup() {
    ip netns add dir
    ip netns add farm
    ip -n dir link set lo up
    ip -n farm link set lo up
    ip link add eth0 netns dir type veth peer name eth0 netns farm
    ip -n dir addr add 10.0.0.2/24 dev eth0
    ip -n farm addr add 10.0.0.11/24 dev eth0
    ip -n dir link set eth0 up
    ip -n farm link set eth0 up
    ip -n dir route add 10.2.0.0/16 via 10.0.0.11
    ip -n farm route add local 10.2.0.0/16 dev lo
    ip netns exec farm sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 >/dev/null
    ip netns exec dir sysctl -qw net.ipv4.ip_local_port_range="1024 65535" >/dev/null
    chmod +x /scenario/vm_listener
    FARM_CPU="" DAEMON_CPU=""
    if [ "$CPUS" = split ]; then
        [ "$(nproc)" -ge 2 ] || krs_log "CPUS=split needs 2 vCPUs, the VM has $(nproc)"
        # After `ip netns exec`: busybox taskset would run its own `ip` applet.
        FARM_CPU="taskset -c 1" DAEMON_CPU="taskset -c 0"
        ip netns exec farm sh -c 'echo 2 >/sys/class/net/eth0/queues/rx-0/rps_cpus' ||
            krs_log "farm: RPS not set"
        ip netns exec dir sh -c 'echo 1 >/sys/class/net/eth0/queues/rx-0/rps_cpus' ||
            krs_log "dir: RPS not set"
    fi
    krs_bg listener ip netns exec farm $FARM_CPU /scenario/vm_listener 80 4 /tmp/listener.count
    krs_wait_for 10 ip netns exec dir sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 10.2.0.1 80 | grep -q "200 OK"' ||
        krs_log "listener does not answer: $(tail -5 "$KRS_DIR/listener.log" 2>/dev/null | tr '\n' ' ')"
    # One fd per checker at worst, for both daemons.
    ulimit -n 65536
}

# gen_conf KIND N FILE (gen_check_conf: tests/bench/check_conf.sh, put
# before this script by vm_check_cpu.sh)
gen_conf() {
    gen_check_conf "$1" "$2" "$PER_VS" "$DELAY_LOOP" 10.1 10.2 >"$3"
}

# start DAEMON CONF: sets PID (measured process) and PPID_KA (keepalived's
# parent, else empty).
start_daemon() {
    rm -f /tmp/bench.pid /tmp/bench_check.pid
    case $1 in
    ours) krs_bg "bench-$1" ip netns exec dir $DAEMON_CPU keepalived-rs -n -l -f "$2" -p /tmp/bench.pid ;;
    ka) krs_bg "bench-$1" ip netns exec dir $DAEMON_CPU keepalived -n -l -C -f "$2" -p /tmp/bench.pid -c /tmp/bench_check.pid ;;
    esac
    krs_wait_for 30 test -s /tmp/bench.pid ||
        krs_log "$1: no pid file: $(tail -5 "$KRS_DIR/bench-$1.log" 2>/dev/null | tr '\n' ' ')"
    PPID_KA=""
    if [ "$1" = ka ]; then
        krs_wait_for 30 test -s /tmp/bench_check.pid || krs_log "ka: no checker pid file"
        PID=$(cat /tmp/bench_check.pid 2>/dev/null)
        PPID_KA=$(cat /tmp/bench.pid 2>/dev/null)
    else
        PID=$(cat /tmp/bench.pid 2>/dev/null)
    fi
}

stop_daemon() {
    b_p=$(cat /tmp/bench.pid 2>/dev/null)
    [ -n "$b_p" ] && kill -TERM "$b_p" 2>/dev/null
    b_i=0
    while [ -n "$b_p" ] && kill -0 "$b_p" 2>/dev/null && [ $b_i -lt 600 ]; do
        sleep 0.2
        b_i=$((b_i + 1))
    done
    [ -n "$b_p" ] && kill -0 "$b_p" 2>/dev/null && {
        krs_log "pid $b_p still running after 120 s: SIGKILL"
        kill -KILL "$b_p"
    }
    ip netns exec dir ipvsadm -C
    sleep 1
}

# wait_full N LIMIT_S: until the table has N destinations; prints seconds.
wait_full() {
    b_t0=$(uptime_cs)
    b_i=0
    while [ "$(dests)" -lt "$1" ] && [ $b_i -lt $(($2 * 2)) ]; do
        sleep 0.5
        b_i=$((b_i + 1))
    done
    awk -v a="$b_t0" -v b="$(uptime_cs)" 'BEGIN { printf "%.1f", (b - a) / 100 }'
}

# measure SECS: CPU% of PID (CPU: user+system, SYS: system), probes/s at
# the listener, over SECS.
measure() {
    b_u0=$(uptime_cs) b_k0=$(ticks "$PID") b_s0=$(sys_ticks "$PID") b_c0=$(count)
    sleep "$1"
    b_u1=$(uptime_cs) b_k1=$(ticks "$PID") b_s1=$(sys_ticks "$PID") b_c1=$(count)
    CPU=$(awk -v k="$((b_k1 - b_k0))" -v u="$((b_u1 - b_u0))" -v hz=$HZ 'BEGIN { printf "%.1f", (u > 0 ? k / hz * 100 / (u / 100) : 0) }')
    SYS=$(awk -v k="$((b_s1 - b_s0))" -v u="$((b_u1 - b_u0))" -v hz=$HZ 'BEGIN { printf "%.1f", (u > 0 ? k / hz * 100 / (u / 100) : 0) }')
    PROBES=$(awk -v c="$((b_c1 - b_c0))" -v u="$((b_u1 - b_u0))" 'BEGIN { printf "%.0f", (u > 0 ? c / (u / 100) : 0) }')
}

# count_syscalls DAEMON KIND N: strace -c on PID for STRACE seconds; one
# KRS-BENCH-SYSCALLS line: probes seen meanwhile, then name=calls for
# every system call (total= first). strace slows the daemon down, so
# fewer probes run: only calls per probe mean something.
count_syscalls() {
    b_c0=$(count)
    timeout -s INT "$STRACE" strace -f -c -U name,calls -o /tmp/strace.txt -p "$PID" 2>/dev/null
    sleep 1 # the listener writes its count once a second
    b_c1=$(count)
    echo "KRS-BENCH-SYSCALLS daemon=$1 kind=$2 n=$3 probes=$((b_c1 - b_c0))" \
        "$(awk '/^-/ { next } NR > 1 && NF == 2 { printf "%s=%s ", $1, $2 }' /tmp/strace.txt)"
}

run_one() { # daemon kind n
    b_d=$1 b_k=$2 b_n=$3
    b_conf=/tmp/bench-$b_k-$b_n.conf
    [ -f "$b_conf" ] || gen_conf "$b_k" "$b_n" "$b_conf"
    start_daemon "$b_d" "$b_conf"
    b_ready=$(wait_full "$b_n" 180)
    sleep "$SETTLE"
    measure "$WINDOW"
    b_alive=$(alive)
    echo "KRS-BENCH daemon=$b_d kind=$b_k n=$b_n cpu_pct=$CPU sys_pct=$SYS rss_kb=$(status_kb "$PID" VmRSS)" \
        "hwm_kb=$(status_kb "$PID" VmHWM) parent_rss_kb=${PPID_KA:+$(status_kb "$PPID_KA" VmRSS)}" \
        "probes_per_s=$PROBES alive=$b_alive/$b_n ready_s=$b_ready fds=$(ls "/proc/$PID/fd" 2>/dev/null | wc -l)"
    [ "$STRACE" -gt 0 ] && count_syscalls "$b_d" "$b_k" "$b_n"
    stop_daemon
}

long_one() { # daemon
    b_d=$1 b_n=$LONG_N b_k=$LONG_KIND
    b_conf=/tmp/bench-$b_k-$b_n.conf
    [ -f "$b_conf" ] || gen_conf "$b_k" "$b_n" "$b_conf"
    start_daemon "$b_d" "$b_conf"
    b_ready=$(wait_full "$b_n" 180)
    sleep "$SETTLE"
    b_rss0=$(status_kb "$PID" VmRSS)
    b_u0=$(uptime_cs) b_k0=$(ticks "$PID") b_c0=$(count)
    b_el=0
    while [ $b_el -lt "$LONG" ]; do
        b_step=$((LONG - b_el < 60 ? LONG - b_el : 60))
        sleep $b_step
        b_el=$((b_el + b_step))
        echo "KRS-BENCH-RSS daemon=$b_d t=$b_el rss_kb=$(status_kb "$PID" VmRSS) alive=$(alive)/$b_n"
    done
    b_u1=$(uptime_cs) b_k1=$(ticks "$PID") b_c1=$(count)
    b_cpu=$(awk -v k="$((b_k1 - b_k0))" -v u="$((b_u1 - b_u0))" -v hz=$HZ 'BEGIN { printf "%.1f", k / hz * 100 / (u / 100) }')
    b_pr=$(awk -v c="$((b_c1 - b_c0))" -v u="$((b_u1 - b_u0))" 'BEGIN { printf "%.0f", c / (u / 100) }')
    echo "KRS-BENCH-LONG daemon=$b_d kind=$b_k n=$b_n secs=$LONG rss_start_kb=$b_rss0" \
        "rss_end_kb=$(status_kb "$PID" VmRSS) hwm_kb=$(status_kb "$PID" VmHWM) cpu_pct=$b_cpu" \
        "probes_per_s=$b_pr alive=$(alive)/$b_n"
    stop_daemon
}

# instr_life DAEMON CONF N EXTRA_S: runs DAEMON under callgrind until its
# table is full, SETTLE + EXTRA_S more seconds, then stops it; sets IR (the
# measured process's instructions over its whole life, written by
# callgrind at exit) and LIFE_PROBES (the listener's count meanwhile).
instr_life() {
    rm -f /tmp/cg.* /tmp/bench.pid /tmp/bench_check.pid
    b_c0=$(count)
    b_vg="env VALGRIND_LIB=/scenario/vg /scenario/vg/valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p"
    case $1 in
    ours) krs_bg "cg-$1" ip netns exec dir $b_vg keepalived-rs -n -l -f "$2" -p /tmp/bench.pid ;;
    ka) krs_bg "cg-$1" ip netns exec dir $b_vg keepalived -n -l -C -f "$2" -p /tmp/bench.pid -c /tmp/bench_check.pid ;;
    esac
    b_pidfile=/tmp/bench.pid
    [ "$1" = ka ] && b_pidfile=/tmp/bench_check.pid
    krs_wait_for 120 test -s "$b_pidfile" ||
        krs_log "$1: no pid file: $(tail -5 "$KRS_DIR/cg-$1.log" 2>/dev/null | tr '\n' ' ')"
    PID=$(cat "$b_pidfile" 2>/dev/null)
    IR=0 LIFE_PROBES=0 READY=""
    [ -n "$PID" ] || return 0
    READY=$(wait_full "$3" 600)
    sleep $((SETTLE + $4))
    stop_daemon
    sleep 1 # the listener writes its count once a second
    LIFE_PROBES=$(($(count) - b_c0))
    IR=$(awk '/^(totals|summary):/ { print $2; exit }' "/tmp/cg.$PID" 2>/dev/null)
    [ -n "$IR" ] || krs_log "$1: no callgrind totals for pid $PID; files: $(ls /tmp/cg.* 2>/dev/null | tr '\n' ' ')"
    IR=${IR:-0}
}

# instr_one DAEMON KIND N: one KRS-BENCH-INSTR line. Two lives, one WINDOW
# seconds longer than the other: the difference of their instructions
# over the difference of their probes is the cost of a probe, start-up
# and shutdown cancelled out (no callgrind_control in the VM: no perl).
instr_one() {
    b_conf=/tmp/bench-$2-$3.conf
    [ -f "$b_conf" ] || gen_conf "$2" "$3" "$b_conf"
    instr_life "$1" "$b_conf" "$3" 0
    b_ir0=$IR b_p0=$LIFE_PROBES
    instr_life "$1" "$b_conf" "$3" "$WINDOW"
    echo "KRS-BENCH-INSTR daemon=$1 kind=$2 n=$3 instr=$((IR - b_ir0)) probes=$((LIFE_PROBES - b_p0))" \
        "short_life=$b_ir0/$b_p0 long_life=$IR/$LIFE_PROBES ready_s=$READY"
}

setup
krs_log "bench: cpus $CPUS sizes [$SIZES] kinds [$KINDS] daemons [$DAEMONS] window $WINDOW s reps $REPS long $LONG s"
for n in $SIZES; do
    [ "$INSTR" = 1 ] && break
    for k in $KINDS; do
        rep=0
        while [ $rep -lt "$REPS" ]; do
            rep=$((rep + 1))
            order=$DAEMONS
            [ $((rep % 2)) = 0 ] && order=$(echo "$DAEMONS" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }')
            for d in $order; do
                run_one "$d" "$k" "$n"
            done
        done
    done
done
if [ "$INSTR" = 1 ]; then
    for n in $SIZES; do
        for k in $KINDS; do
            for d in $DAEMONS; do
                instr_one "$d" "$k" "$n"
            done
        done
    done
fi
if [ "$LONG" -gt 0 ]; then
    for d in $DAEMONS; do
        long_one "$d"
    done
fi
krs_result bench-done PASS
krs_kill_all
