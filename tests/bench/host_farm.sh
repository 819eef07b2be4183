# Shared by tests/bench/host_check_cpu.sh and host_check_stall_rss.sh
# (sourced): the real-server farm on the host. One static listener
# (tests/bench/vm_listener.rs, built here with rustc -O) answers on every
# address of 10.200.0.0/16 (`ip route add local ... dev lo`) at port 80 in
# network namespace NS; it writes the connections it accepted, once a
# second, to WORK/count. The daemon under test runs in the same namespace.
#
# farm_start WORK NS: builds and starts the listener; sets LISTENER (pid).
# farm_stop: stops it and deletes the namespace (call from the EXIT trap,
# after the daemon is gone).
LISTENER=""
FARM_NS=""

farm_start() {
    FARM_NS=$2
    rustc --edition 2021 -O tests/bench/vm_listener.rs -o "$1/vm_listener"
    ip netns add "$FARM_NS"
    ip -n "$FARM_NS" link set lo up
    ip -n "$FARM_NS" route add local 10.200.0.0/16 dev lo
    ip netns exec "$FARM_NS" sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 \
        net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1 >/dev/null
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    ip netns exec "$FARM_NS" "$1/vm_listener" 80 4 "$1/count" >/dev/null 2>&1 &
    LISTENER=$!
}

farm_stop() {
    [ -n "$LISTENER" ] && kill -KILL "$LISTENER" 2>/dev/null
    wait 2>/dev/null
    [ -n "$FARM_NS" ] && ip netns del "$FARM_NS" 2>/dev/null
    return 0
}
