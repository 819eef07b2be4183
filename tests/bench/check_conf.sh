# Shared by tests/bench/host_check_cpu.sh (sourced) and vm_check_cpu.sh
# (copied into the VM's scenario): the checker benchmark configuration.
#
# gen_check_conf KIND N PER_VS DELAY_LOOP VS_NET RS_NET: a keepalived.conf
# on stdout with N real servers of KIND (tcp: TCP_CHECK; http: HTTP_GET
# status_code 200), connect_timeout 5, retry 1, delay_before_retry 1,
# PER_VS of them per LVS-DR virtual server. Real server i is
# RS_NET.(i/200).(i%200+1):80, virtual server v is VS_NET.(v/200).(v%200+1):80
# (RS_NET and VS_NET are the first two octets, e.g. 10.2).
gen_check_conf() {
    awk -v kind="$1" -v n="$2" -v per="$3" -v dl="$4" -v vsnet="$5" -v rsnet="$6" 'BEGIN {
        print "global_defs {\n    router_id bench\n}"
        for (i = 0; i < n; i++) {
            if (i % per == 0) {
                if (i > 0) print "}"
                v = i / per
                printf "virtual_server %s.%d.%d 80 {\n    delay_loop %d\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n", vsnet, int(v / 200), v % 200 + 1, dl
            }
            printf "    real_server %s.%d.%d 80 {\n        weight 1\n", rsnet, int(i / 200), i % 200 + 1
            if (kind == "tcp")
                print "        TCP_CHECK {\n            connect_timeout 5\n            retry 1\n            delay_before_retry 1\n        }"
            else
                print "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n            connect_timeout 5\n            retry 1\n            delay_before_retry 1\n        }"
            print "    }"
        }
        if (n > 0) print "}"
    }'
}
