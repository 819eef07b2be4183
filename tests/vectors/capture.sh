#!/usr/bin/env bash
# Capture VRRP adverts sent by a real keepalived into tests/vectors/<case>.hex.
#
# Needs root, ip(8), tcpdump, python3 and keepalived (tested with 2.2.7 at
# /usr/sbin/keepalived). For every case it creates two network namespaces
# joined by a veth pair, runs keepalived in namespace A, captures three VRRP
# (or AH) packets in namespace B, and writes the first one as hex: the whole
# IPv4 packet, or the IPv6 header plus payload. Everything it starts is killed
# by PID, and the namespaces are deleted on exit.
set -euo pipefail

KEEPALIVED=${KEEPALIVED:-/usr/sbin/keepalived}
OUT=$(cd "$(dirname "$0")" && pwd)
SUF=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
NSA="kars-cap-a-$SUF"
NSB="kars-cap-b-$SUF"
VA="kca$SUF"   # veth end in A (<= 15 chars)
VB="kcb$SUF"   # veth end in B
TMP=$(mktemp -d /tmp/kars-cap.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    sleep 0.5
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    done
    ip netns del "$NSA" 2>/dev/null || true
    ip netns del "$NSB" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

setup_netns() {
    ip netns add "$NSA"
    ip netns add "$NSB"
    for ns in "$NSA" "$NSB"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
        ip -n "$ns" link set lo up
    done
    ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB"
    ip -n "$NSA" addr add 10.99.0.1/24 dev "$VA"
    ip -n "$NSB" addr add 10.99.0.2/24 dev "$VB"
    ip -n "$NSA" addr add fd99::1/64 dev "$VA" nodad
    ip -n "$NSB" addr add fd99::2/64 dev "$VB" nodad
    ip -n "$NSA" link set "$VA" up
    ip -n "$NSB" link set "$VB" up
}

# write_conf CASE: keepalived.conf for one case on stdout
write_conf() {
    local common="    interface $VA
    virtual_router_id 51
    priority 150
    state MASTER"
    local ah="    authentication {
        auth_type AH
        auth_pass secret12
    }"
    echo "global_defs {
    router_id kars_cap
}"
    case "$1" in
    v2_ipv4_pass)
        echo "vrrp_instance VI_1 {
$common
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret12
    }
    virtual_ipaddress {
        10.99.0.100/24
    }
}" ;;
    v2_ipv4_noauth_3vips)
        echo "vrrp_instance VI_1 {
$common
    advert_int 1
    virtual_ipaddress {
        10.99.0.100/24
        10.99.0.101/24
        10.99.0.102/24
    }
}" ;;
    v3_ipv4)
        echo "vrrp_instance VI_1 {
$common
    version 3
    advert_int 0.5
    virtual_ipaddress {
        10.99.0.100/24
    }
}" ;;
    v3_ipv6)
        echo "vrrp_instance VI_1 {
$common
    version 3
    advert_int 1
    virtual_ipaddress {
        fd99::100/64
    }
}" ;;
    v2_ipv4_ah)
        echo "vrrp_instance VI_1 {
$common
    advert_int 1
$ah
    virtual_ipaddress {
        10.99.0.100/24
    }
}" ;;
    v2_ipv4_ah_unicast)
        echo "vrrp_instance VI_1 {
$common
    advert_int 1
$ah
    unicast_src_ip 10.99.0.1
    unicast_peer {
        10.99.0.2
    }
    unicast_ttl 64
    virtual_ipaddress {
        10.99.0.100/24
    }
}" ;;
    esac
}

capture_case() {
    local c=$1 conf="$TMP/$1.conf" pcap="$TMP/$1.pcap"
    write_conf "$c" > "$conf"
    cp "$conf" "$OUT/$c.conf"
    # tcpdump in B: three VRRP (proto 112) or AH (proto 51) packets, at most 15 s.
    ip netns exec "$NSB" timeout 15 tcpdump -n -U -i "$VB" -w "$pcap" -c 3 \
        'ip proto 112 or ip6 proto 112 or ip proto 51' 2>"$TMP/$c.tcpdump.log" &
    local tpid=$!
    PIDS+=("$tpid")
    sleep 1
    ip netns exec "$NSA" "$KEEPALIVED" --dont-fork -l -P -D -f "$conf" \
        -p "$TMP/$c.pid" -r "$TMP/$c.vrrp.pid" >"$TMP/$c.keepalived.log" 2>&1 &
    local kpid=$!
    PIDS+=("$kpid")
    wait "$tpid" || true
    kill "$kpid" 2>/dev/null || true
    wait "$kpid" 2>/dev/null || true
    python3 - "$pcap" "$OUT/$c.hex" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
magic = data[:4]
if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
    e = '<'
elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
    e = '>'
else:
    sys.exit('not a pcap file')
linktype = struct.unpack(e + 'I', data[20:24])[0]
off = 24
packets = []
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack(e + 'IIII', data[off:off + 16])
    packets.append(data[off + 16:off + 16 + incl])
    off += 16 + incl
if not packets:
    sys.exit('no packets captured')
frame = packets[0]
if linktype == 1:            # Ethernet
    etype = struct.unpack('>H', frame[12:14])[0]
    ip = frame[14:]
elif linktype == 113:        # Linux cooked (SLL)
    etype = struct.unpack('>H', frame[14:16])[0]
    ip = frame[16:]
else:
    sys.exit('unsupported linktype %d' % linktype)
if etype == 0x0800:
    ip = ip[:struct.unpack('>H', ip[2:4])[0]]
elif etype == 0x86dd:
    ip = ip[:40 + struct.unpack('>H', ip[4:6])[0]]
else:
    sys.exit('unexpected ethertype %#x' % etype)
with open(sys.argv[2], 'w') as f:
    f.write(ip.hex() + '\n')
print('%s: %d packets, first is %d bytes' % (sys.argv[2], len(packets), len(ip)))
PY
}

setup_netns
"$KEEPALIVED" -v 2>&1 | head -1
for c in ${CASES:-v2_ipv4_pass v2_ipv4_noauth_3vips v3_ipv4 v3_ipv6 v2_ipv4_ah v2_ipv4_ah_unicast}; do
    capture_case "$c"
done
