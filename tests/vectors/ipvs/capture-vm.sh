# Runs INSIDE the test VM (images/run-vm.sh; started by capture.sh). Traces
# ipvsadm's netlink traffic with strace and sends the traces to the host as
# one tar file (krs_export captures.tar), where strace2hex.py turns them into
# tests/vectors/ipvs/*.hex.
#
#   cap NAME "OUT=SEL [OUT=SEL...]" ipvsadm ARGS...
#
# runs the command under strace into NAME.strace and records, in
# manifest.txt, which request/reply exchanges become which vector:
# SEL is ctrl:CMD or ipvs:CMD (generic netlink command number), optionally
# #N for the N-th such request (default 1), and !ERR when the kernel is
# expected to answer with that errno (e.g. !ESRCH) instead of an ACK.
. /lib/krs/lib.sh

OUT=/tmp/cap
mkdir -p "$OUT"
: >"$OUT/manifest.txt"

cap() {
    _name=$1 _sels=$2
    shift 2
    echo "$_name|$_sels|$*" >>"$OUT/manifest.txt"
    strace -f -x -s 65535 -e trace=sendmsg,recvmsg,sendto,recvfrom \
        -e read=all -e write=all -o "$OUT/$_name.strace" "$@" >"$OUT/$_name.out" 2>&1
    echo "$?" >"$OUT/$_name.rc"
    krs_log "cap $_name rc=$(cat "$OUT/$_name.rc"): $*"
}
quiet() { "$@" >/dev/null 2>&1 || krs_log "setup failed: $*"; }

{
    echo "kernel $(uname -r)"
    ipvsadm --version 2>&1
    strace -V | head -n 1
} >"$OUT/versions.txt"

ipvsadm -C

# --- Family resolution and GET_INFO (every ipvsadm run starts with them).
cap list_empty "ctrl_getfamily=ctrl:3 get_info=ipvs:15 get_service_dump_empty=ipvs:4" ipvsadm -Ln

# --- Services.
cap new_service_tcp4_wlc "new_service_tcp4_wlc=ipvs:1" ipvsadm -A -t 10.0.0.100:80 -s wlc
cap new_service_persistent "new_service_persistent=ipvs:1" \
    ipvsadm -A -t 10.0.0.101:443 -s rr -p 300 -M 255.255.255.0
cap new_service_fwmark "new_service_fwmark=ipvs:1" ipvsadm -A -f 1 -s rr
cap new_service_fwmark6 "new_service_fwmark6=ipvs:1" ipvsadm -A -f 2 -6 -s rr
cap new_service_tcp6 "new_service_tcp6=ipvs:1" ipvsadm -A -t '[fd00::100]:80' -s wlc
cap new_service_udp "new_service_udp=ipvs:1" ipvsadm -A -u 10.0.0.100:53 -s rr
cap new_service_sctp "new_service_sctp=ipvs:1" ipvsadm -A --sctp-service 10.0.0.100:5060 -s rr
cap new_service_sh_flags "new_service_sh_flags=ipvs:1" \
    ipvsadm -A -t 10.0.0.102:80 -s sh -b sh-port,sh-fallback
cap new_service_mh_flags "new_service_mh_flags=ipvs:1" \
    ipvsadm -A -t 10.0.0.103:80 -s mh -b mh-port,mh-fallback
cap new_service_ops "new_service_ops=ipvs:1" ipvsadm -A -u 10.0.0.105:53 -s rr -o
cap new_service_pe_sip "new_service_pe_sip=ipvs:1" \
    ipvsadm -A -u 10.0.0.104:5060 -s rr -p 60 --pe sip
cap set_service "set_service=ipvs:2" ipvsadm -E -t 10.0.0.100:80 -s rr -p 120

# --- Real servers.
cap new_dest_dr "new_dest_dr=ipvs:5" ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 3
cap new_dest_nat "new_dest_nat=ipvs:5" ipvsadm -a -t 10.0.0.100:80 -r 10.1.0.12:8080 -m
cap new_dest_tun "new_dest_tun=ipvs:5" ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.13:80 -i
cap new_dest_tun_gue "new_dest_tun_gue=ipvs:5" \
    ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.14:80 -i --tun-type gue --tun-port 6080
cap new_dest_thresholds "new_dest_thresholds=ipvs:5" \
    ipvsadm -a -t 10.0.0.101:443 -r 10.0.0.11:443 -g -w 1 -x 100 -y 50
cap new_dest_tcp6 "new_dest_tcp6=ipvs:5" \
    ipvsadm -a -t '[fd00::100]:80' -r '[fd00::11]:80' -g -w 2
cap new_dest_fwmark "new_dest_fwmark=ipvs:5" ipvsadm -a -f 1 -r 10.0.0.11 -g
cap set_dest "set_dest=ipvs:6" ipvsadm -e -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 5
cap get_service_one "get_service=ipvs:4" ipvsadm -Ln -t 10.0.0.100:80
cap zero_service "zero_service=ipvs:16" ipvsadm -Z -t 10.0.0.100:80
cap zero_all "zero_all=ipvs:16" ipvsadm -Z
cap del_dest "del_dest=ipvs:7" ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.13:80
cap del_service "del_service=ipvs:3" ipvsadm -D -t 10.0.0.103:80
cap del_service_missing "del_service_missing=ipvs:3!ESRCH" ipvsadm -D -t 10.9.9.9:9
cap flush "flush=ipvs:17" ipvsadm -C

# --- Dumps: exactly two services, two real servers each.
quiet ipvsadm -A -t 10.0.0.100:80 -s rr
quiet ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
quiet ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 2
quiet ipvsadm -A -u 10.0.0.100:53 -s wlc
quiet ipvsadm -a -u 10.0.0.100:53 -r 10.1.0.11:5353 -m -w 1
quiet ipvsadm -a -u 10.0.0.100:53 -r 10.1.0.12:5353 -m -w 1
cap list_two "get_service_dump=ipvs:4 get_dest_dump=ipvs:8 get_dest_dump_2=ipvs:8#2" ipvsadm -Ln
quiet ipvsadm -C

# --- Timeouts.
cap set_config "set_config=ipvs:12" ipvsadm --set 900 120 300
cap get_config "get_config=ipvs:13" ipvsadm -L --timeout

# --- Sync daemon (needs a multicast interface with an IPv4 address).
ip link add eth0 type dummy
ip link set eth0 multicast on up
ip addr add 10.9.0.1/24 dev eth0
cap new_daemon "new_daemon=ipvs:9" ipvsadm --start-daemon master --mcast-interface eth0 --syncid 5
cap get_daemon "get_daemon=ipvs:11" ipvsadm -L --daemon
cap del_daemon "del_daemon=ipvs:10" ipvsadm --stop-daemon master

cd "$OUT" && tar -cf /tmp/captures.tar ./*
krs_export captures.tar /tmp/captures.tar
fails=0
for f in "$OUT"/*.rc; do
    n=$(basename "$f" .rc)
    want=0
    [ "$n" = del_service_missing ] && want=nonzero
    rc=$(cat "$f")
    if { [ "$want" = 0 ] && [ "$rc" != 0 ]; } || { [ "$want" = nonzero ] && [ "$rc" = 0 ]; }; then
        krs_result "cap-$n" FAIL "rc=$rc: $(head -c 300 "$OUT/$n.out" | tr '\n' ' ')"
        fails=$((fails + 1))
    fi
done
krs_result captures PASS "$(wc -l <"$OUT/manifest.txt") commands, $fails failed"
