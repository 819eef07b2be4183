#!/usr/bin/env bash
# The demo of keepalived-rs at its current stage (README, first command):
#
#   sudo tests/demo.sh
#
# 1. `keepalived -t` on every real-world seed config (tests/data/seeds), showing
#    the precise warnings for the quirks that trip real keepalived;
# 2. `keepalived -t -d` on the LVS-DR seed: the effective configuration with
#    keepalived's defaults filled in;
# 3. live VRRP failover in network namespaces: two routers on a bridge elect
#    a master, SIGKILL moves the VIP, the old master preempts on return, and
#    SIGTERM hands over with a priority-0 advert.
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
bin=${KEEPALIVED_RS_BIN:-target/release/keepalived}
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

banner "3. live VRRP failover in network namespaces (two routers and a client on a bridge)"
# Everything runs in private namespaces: nothing touches this machine's
# interfaces. Router a (priority 150) and b (100) share VIP 10.77.0.100.
if ! command -v ip >/dev/null || ! command -v ping >/dev/null; then
    apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends iproute2 iputils-ping
fi
work=$(mktemp -d /tmp/kars-demo.XXXXXX)
suf=$$
NS=(kdemo-sw-$suf kdemo-a-$suf kdemo-b-$suf kdemo-c-$suf)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "${NS[0]}" link add br0 type bridge
ip -n "${NS[0]}" link set br0 up
i=1
for n in "${NS[@]:1}"; do
    ip -n "${NS[0]}" link add "p$i" type veth peer name eth0 netns "$n"
    ip -n "${NS[0]}" link set "p$i" master br0 up
    ip -n "$n" addr add "10.77.0.$i/24" dev eth0
    ip -n "$n" link set eth0 up
    i=$((i + 1))
done
conf() {
    printf 'vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority %s\n    advert_int 1\n    authentication {\n        auth_type PASS\n        auth_pass demo\n    }\n    virtual_ipaddress {\n        10.77.0.100/24\n    }\n}\n' "$1"
}
start() { # start ROUTER PRIORITY
    conf "$2" > "$work/$1.conf"
    ip netns exec "kdemo-$1-$suf" "$PWD/$bin" -n -l -f "$work/$1.conf" -p "$work/$1.pid" 2>&1 \
        | grep --line-buffered -v 'syslog' | sed -u "s/^[A-Za-z]* [A-Za-z]* [0-9]* \([0-9:]*\) [0-9]*:/   [$1 \1]/" &
    PIDS+=($!)
}
holder() {
    local out=""
    for r in a b; do
        if ip -n "kdemo-$r-$suf" -o addr show dev eth0 | grep -q ' 10.77.0.100/'; then out="$out $r"; fi
    done
    echo "${out:- nobody}"
}
ping_vip() { ip netns exec "${NS[3]}" ping -c1 -W1 10.77.0.100 >/dev/null 2>&1 && echo reachable || echo unreachable; }
start a 150
start b 100
sleep 5
echo "   [demo] VIP 10.77.0.100 is on:$(holder); from the client it is $(ping_vip)"
echo "   [demo] SIGKILL of router a (the master)"
t0=$(date +%s%N)
kill -KILL "$(cat "$work/a.pid")"
for _ in $(seq 200); do
    ip -n "kdemo-b-$suf" -o addr show dev eth0 | grep -q ' 10.77.0.100/' && break
    sleep 0.05
done
t1=$(date +%s%N)
echo "   [demo] router b holds the VIP $(( (t1 - t0) / 1000000 )) ms after the kill (Master_Down_Interval 3609 ms runs from a's last advert, up to 1 s before the kill)"
ip -n "kdemo-a-$suf" addr del 10.77.0.100/24 dev eth0 2>/dev/null || true  # as a reboot would
rm -f "$work/a.pid"
echo "   [demo] from the client the VIP is $(ping_vip)"
echo "   [demo] router a comes back; priority 150 preempts once its Master_Down_Interval (3.41 s) passes"
start a 150
sleep 4.5
echo "   [demo] VIP is on:$(holder)"
echo "   [demo] SIGTERM of router a: priority-0 advert, b takes over after Skew_Time (609 ms)"
kill -TERM "$(cat "$work/a.pid")"
sleep 1.5
echo "   [demo] VIP is on:$(holder); from the client it is $(ping_vip)"
kill -TERM "$(cat "$work/b.pid")"
sleep 0.5
echo "   [demo] both stopped (SIGTERM); VIP is on:$(holder)"
