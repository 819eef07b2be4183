# LVS test topologies inside the VM, built from network namespaces on
# bridges in the VM's root namespace (POSIX sh; /bin/sh is bash in the
# image, so `ip` is iproute2's, not busybox's). Source it:
#
#   . /lib/krs/topo.sh
#   topo_dr 1            # or: topo_nat 1 / topo_dr 2 / topo_nat 2
#   topo_vip_add         # static VIP on director1 (skip when VRRP adds it)
#   topo_rs_start        # busybox httpd in rs1 and rs2 (pages "rs1", "rs2")
#   fetch "$VIP4" 80     # -> rs1 or rs2
#
# Namespaces: director1 [director2], rs1, rs2, client. Every namespace has
# lo up and IPv6 DAD off. Addresses (set as shell variables by topo_dr /
# topo_nat; *_4 IPv4, *_6 IPv6):
#
#   DR: one segment br0, 10.0.0.0/24 and fd00::/64
#     client    10.0.0.10   fd00::10     (eth0)
#     director1 10.0.0.2    fd00::2      (eth0)
#     director2 10.0.0.3    fd00::3      (eth0)
#     rs1       10.0.0.11   fd00::11     (eth0; VIP on lo, arp_ignore=1,
#     rs2       10.0.0.12   fd00::12      arp_announce=2: LVS-DR realserver)
#     VIP       10.0.0.100  fd00::100
#
#   NAT: front br0 10.0.0.0/24 fd00::/64, back br1 10.1.0.0/24 fd01::/64
#     client    10.0.0.10   fd00::10     (eth0, front)
#     director1 10.0.0.2    fd00::2      (eth0, front) 10.1.0.2 fd01::2 (eth1, back)
#     director2 10.0.0.3    fd00::3      (eth0, front) 10.1.0.3 fd01::3 (eth1, back)
#     rs1       10.1.0.11   fd01::11     (eth0, back; default via GW)
#     rs2       10.1.0.12   fd01::12     (eth0, back; default via GW)
#     VIP       10.0.0.100  fd00::100    (front)
#     GW        10.1.0.1    fd01::1      (back; the real servers' gateway,
#                                         a second VIP of the directors)
#     directors forward (net.ipv4.ip_forward=1, IPv6 forwarding=1)
#
# Variables: LAYOUT (dr|nat), DIRECTORS ("director1 [director2]"), VIP4 VIP6,
# GW4 GW6 (nat), CLIENT4 CLIENT6, DIR1_4 DIR1_6 DIR2_4 DIR2_6, RS1_4 RS1_6
# RS2_4 RS2_6, PREFIX4 PREFIX6 (front prefix length 24 / 64).
#
# Functions:
#   topo_dr [N] / topo_nat [N]     build the layout with N (1|2) directors
#   topo_vip_add [NS]              VIP4/VIP6 on NS's eth0 (+ GW on eth1 for
#                                  nat); NS defaults to director1
#   topo_vip_del [NS]              the reverse
#   topo_rs_start [PORT...]        httpd on each PORT (default 80) in rs1, rs2;
#                                  each serves its name ("rs1"/"rs2")
#   fetch ADDR PORT [NS]           HTTP/1.0 GET / from NS (default client);
#                                  prints the body; rc != 0 on failure
#   fetch_n N ADDR PORT [NS]       N fetches, one body per line ("ERROR"
#                                  for a failed one)
#   check_served NAME ADDR PORT [N] [NS]
#                                  N (default 6) fetches; result NAME PASS
#                                  when all succeeded and both rs1 and rs2
#                                  answered (detail: the bodies)
#   in_ns NS CMD...                ip netns exec NS CMD...
#   topo_teardown                  kill krs_bg processes, delete namespaces

. /lib/krs/lib.sh

PREFIX4=24
PREFIX6=64
TOPO_NS=""

in_ns() {
    _ns=$1
    shift
    ip netns exec "$_ns" "$@"
}

_topo_ns() { # name
    ip netns add "$1"
    TOPO_NS="$TOPO_NS $1"
    in_ns "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 >/dev/null
    ip -n "$1" link set lo up
}

_topo_bridge() { # name
    ip link add "$1" type bridge mcast_snooping 0
    ip link set "$1" up
}

# _topo_port NS IFNAME BRIDGE IPV4 IPV6: veth IFNAME in NS, peer on BRIDGE.
_topo_port() {
    _peer="v$1$2"
    _peer=$(echo "$_peer" | cut -c1-15)
    ip link add "$2" netns "$1" type veth peer name "$_peer"
    ip link set "$_peer" master "$3" up
    ip -n "$1" link set "$2" up
    ip -n "$1" addr add "$4/$PREFIX4" dev "$2"
    ip -n "$1" -6 addr add "$5/$PREFIX6" dev "$2" nodad
}

_topo_common_vars() {
    VIP4=10.0.0.100
    VIP6=fd00::100
    CLIENT4=10.0.0.10
    CLIENT6=fd00::10
    DIR1_4=10.0.0.2
    DIR1_6=fd00::2
    DIR2_4=10.0.0.3
    DIR2_6=fd00::3
    DIRECTORS=director1
    [ "${1:-1}" = 2 ] && DIRECTORS="director1 director2"
}

topo_dr() {
    LAYOUT=dr
    _topo_common_vars "${1:-1}"
    RS1_4=10.0.0.11
    RS1_6=fd00::11
    RS2_4=10.0.0.12
    RS2_6=fd00::12
    GW4="" GW6=""
    _topo_bridge br0
    _topo_ns client
    _topo_port client eth0 br0 "$CLIENT4" "$CLIENT6"
    _topo_ns director1
    _topo_port director1 eth0 br0 "$DIR1_4" "$DIR1_6"
    if [ "${1:-1}" = 2 ]; then
        _topo_ns director2
        _topo_port director2 eth0 br0 "$DIR2_4" "$DIR2_6"
    fi
    for _rs in rs1 rs2; do
        _topo_ns $_rs
        if [ $_rs = rs1 ]; then
            _topo_port rs1 eth0 br0 "$RS1_4" "$RS1_6"
        else
            _topo_port rs2 eth0 br0 "$RS2_4" "$RS2_6"
        fi
        # LVS-DR real server: accept the VIP locally, never answer ARP for it.
        in_ns $_rs sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2 \
            net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 >/dev/null
        ip -n $_rs addr add "$VIP4/32" dev lo
        ip -n $_rs -6 addr add "$VIP6/128" dev lo nodad
    done
}

topo_nat() {
    LAYOUT=nat
    _topo_common_vars "${1:-1}"
    RS1_4=10.1.0.11
    RS1_6=fd01::11
    RS2_4=10.1.0.12
    RS2_6=fd01::12
    GW4=10.1.0.1
    GW6=fd01::1
    _topo_bridge br0
    _topo_bridge br1
    _topo_ns client
    _topo_port client eth0 br0 "$CLIENT4" "$CLIENT6"
    _topo_ns director1
    _topo_port director1 eth0 br0 "$DIR1_4" "$DIR1_6"
    _topo_port director1 eth1 br1 10.1.0.2 fd01::2
    if [ "${1:-1}" = 2 ]; then
        _topo_ns director2
        _topo_port director2 eth0 br0 "$DIR2_4" "$DIR2_6"
        _topo_port director2 eth1 br1 10.1.0.3 fd01::3
    fi
    for _d in $DIRECTORS; do
        in_ns $_d sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
    done
    _topo_ns rs1
    _topo_port rs1 eth0 br1 "$RS1_4" "$RS1_6"
    _topo_ns rs2
    _topo_port rs2 eth0 br1 "$RS2_4" "$RS2_6"
    for _rs in rs1 rs2; do
        ip -n $_rs route add default via "$GW4"
        ip -n $_rs -6 route add default via "$GW6"
    done
}

topo_vip_add() {
    _d=${1:-director1}
    ip -n "$_d" addr add "$VIP4/32" dev eth0
    ip -n "$_d" -6 addr add "$VIP6/128" dev eth0 nodad
    if [ "$LAYOUT" = nat ]; then
        ip -n "$_d" addr add "$GW4/$PREFIX4" dev eth1
        ip -n "$_d" -6 addr add "$GW6/$PREFIX6" dev eth1 nodad
    fi
}

topo_vip_del() {
    _d=${1:-director1}
    ip -n "$_d" addr del "$VIP4/32" dev eth0
    ip -n "$_d" -6 addr del "$VIP6/128" dev eth0
    if [ "$LAYOUT" = nat ]; then
        ip -n "$_d" addr del "$GW4/$PREFIX4" dev eth1
        ip -n "$_d" -6 addr del "$GW6/$PREFIX6" dev eth1
    fi
}

topo_rs_start() {
    [ $# -gt 0 ] || set -- 80
    for _rs in rs1 rs2; do
        mkdir -p "/tmp/www/$_rs"
        echo "$_rs" >"/tmp/www/$_rs/index.html"
        for _port in "$@"; do
            krs_bg "httpd-$_rs-$_port" ip netns exec $_rs busybox httpd -f -p "$_port" -h "/tmp/www/$_rs"
        done
    done
    # Wait until every server answers locally (bounded).
    for _rs in rs1 rs2; do
        for _port in "$@"; do
            krs_wait_for 10 _topo_listening $_rs "$_port" ||
                krs_log "httpd in $_rs on port $_port not listening after 10 s"
        done
    done
}

_topo_listening() { # ns port
    in_ns "$1" netstat -ltn 2>/dev/null | grep -q ":$2 "
}

fetch() {
    _addr=$1 _port=$2 _ns=${3:-client}
    in_ns "$_ns" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | timeout 5 nc -w 2 "$1" "$2"' _ "$_addr" "$_port" \
        >"$KRS_DIR/fetch.out" 2>"$KRS_DIR/fetch.err" || true
    # Status line must say 200; print the body (after the blank line).
    head -n 1 "$KRS_DIR/fetch.out" | grep -q ' 200 ' || return 1
    tr -d '\r' <"$KRS_DIR/fetch.out" | awk 'body { print } /^$/ { body = 1 }'
}

fetch_n() {
    _n=$1
    shift
    while [ "$_n" -gt 0 ]; do
        fetch "$@" || echo "ERROR"
        _n=$((_n - 1))
    done
}

check_served() {
    _name=$1 _addr=$2 _port=$3
    _out=$(fetch_n "${4:-6}" "$_addr" "$_port" "${5:-client}" | tr '\n' ' ')
    case $_out in
    *ERROR*) krs_result "$_name" FAIL "failed fetches: $_out" ;;
    *rs1*rs2* | *rs2*rs1*) krs_result "$_name" PASS "$_out" ;;
    *) krs_result "$_name" FAIL "not both rs1 and rs2: $_out" ;;
    esac
}

topo_teardown() {
    krs_kill_all
    for _ns in $TOPO_NS; do
        ip netns del "$_ns" 2>/dev/null
    done
    TOPO_NS=""
    ip link del br0 2>/dev/null
    ip link del br1 2>/dev/null
    return 0
}
