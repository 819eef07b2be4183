//! The daemon programming real IPVS, in the test VM (Debian's kernel under
//! qemu, see tests/vm/mod.rs), with `ipvsadm` as the independent witness
//! and real HTTP requests from a client namespace through the VIP.
//!
//! Each test is one VM boot (~40 s under TCG) that checks several things:
//! - `lvs_dr`: LVS-DR rr tables equal to the configuration (IPv4, IPv6,
//!   persistent and fwmark services); a matching service set up by hand
//!   before the daemon starts is adopted, not re-created; requests reach
//!   both real servers over IPv4 and IPv6; persistence keeps the client on
//!   one server; a SIGHUP that changes one weight changes only that entry
//!   (every counter survives, one SET_DEST); SIGTERM removes our services
//!   and leaves another tool's service alone. Then `ha_suspend` services
//!   follow the VIPs of a VRRP Master: a service appears when its VIP is
//!   added and goes when it is removed, also when a SIGHUP adds or drops a
//!   VIP of a Master that stays Master.
//! - `lvs_nat`: LVS-NAT tables and traffic (IPv4 and IPv6, wrr); a sorry
//!   server stands in when no real server is alive, both from the start
//!   (alpha, real server unreachable) and when TCP_CHECK sees every real
//!   server go away, and it serves; the real servers come back when they
//!   answer again; with `-I` SIGTERM leaves the table in place.
//!
//! - `tables_match_keepalived`: keepalived 2.2.7 and ours, one after the
//!   other on one configuration of awkward cases (DR/TUN/NAT real servers
//!   whose ports differ from the service's or are missing, fwmark services,
//!   per-server lvs_method, a port-0 persistent service, a DR sorry server,
//!   scheduler flags, thresholds, IPv6, UDP with ops, SCTP, the SIP
//!   persistence engine, tunnel types, quorum, virtual_server_groups with
//!   ranges, prefixes, fwmarks and sorry servers, SMTP_CHECK `host`
//!   blocks): `ipvsadm -Sn` must list the same table, and both daemons must
//!   start the same checkers ("Activating healthchecker" lines).
//!
//! Needs root, qemu and the static musl build of the daemon
//! (`cargo build --release --target x86_64-unknown-linux-musl`); skipped
//! otherwise, failed under KEEPALIVED_RS_FULL_TEST=1.

mod vm;

/// Shell shared by the scenarios.
const COMMON: &str = r#"
. /lib/krs/topo.sh
d1() { in_ns director1 "$@"; }
# The table as one line per destination ("SERVICE -> DEST FORWARD WEIGHT",
# services without destinations alone), whitespace squeezed, sorted, joined
# with ';' (ipvsadm lists services in hash order).
table() {
    d1 ipvsadm -Ln | awk 'NR > 3 {
        if ($1 == "->") { print svc " -> " $2 " " $3 " " $4; seen[svc] = 1 }
        else { svc = $0; gsub(/ +/, " ", svc); sub(/ $/, "", svc); order[++n] = svc }
    } END { for (i = 1; i <= n; i++) if (!(order[i] in seen)) print order[i] }' | sort | tr '\n' ';'
}
# Per-destination counters of one service (Conns InPkts OutPkts InBytes OutBytes).
counters() {
    d1 ipvsadm -Ln --stats "$@" | awk 'NR > 3 && $1 == "->" { print $2, $3, $4, $5, $6, $7 }' | sort | tr '\n' ';'
}
daemon_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
daemon_gone() { ! daemon_running "$1"; }
has_service() { d1 ipvsadm -Ln | grep -q -- "$1"; }
"#;

fn expected(lines: &[&str]) -> String {
    let mut lines: Vec<&str> = lines.to_vec();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l};")).collect()
}

const DR_CONF: &str = r#"
global_defs { router_id director1 }
virtual_server 10.0.0.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 { weight 1 }
    real_server 10.0.0.12 80 { weight 1 }
}
virtual_server 10.0.0.100 81 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    persistence_timeout 60
    real_server 10.0.0.11 81 { weight 1 }
    real_server 10.0.0.12 81 { weight 1 }
}
virtual_server fd00::100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server fd00::11 80 { weight 1 }
    real_server fd00::12 80 { weight 1 }
}
virtual_server fwmark 7 {
    lb_algo wlc
    lb_kind DR
    real_server 10.0.0.11 80 { weight 2 }
    real_server 10.0.0.12 80 { weight 1 }
}
"#;

/// `ha_suspend` services on the VIPs of one VRRP instance (no peer: it
/// becomes Master). `VIPS` is replaced by the instance's address list.
const HA_SUSPEND_CONF: &str = r#"
global_defs { router_id director1 }
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority 100
    advert_int 1
    virtual_ipaddress {
VIPS
    }
}
virtual_server 10.0.0.110 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    ha_suspend
    real_server 10.0.0.11 80 { weight 1 }
}
virtual_server 10.0.0.111 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    ha_suspend
    real_server 10.0.0.12 80 { weight 1 }
}
"#;

fn ha_suspend_conf(vips: &[&str]) -> String {
    let list: Vec<String> = vips.iter().map(|v| format!("        {v}/24")).collect();
    HA_SUSPEND_CONF.replace("VIPS", &list.join("\n"))
}

#[test]
fn lvs_dr() {
    if !vm::require_daemon() {
        return;
    }
    let table = expected(&[
        "TCP 10.0.0.100:80 rr -> 10.0.0.11:80 Route 1",
        "TCP 10.0.0.100:80 rr -> 10.0.0.12:80 Route 1",
        "TCP 10.0.0.100:81 rr persistent 60 -> 10.0.0.11:81 Route 1",
        "TCP 10.0.0.100:81 rr persistent 60 -> 10.0.0.12:81 Route 1",
        "TCP [fd00::100]:80 rr -> [fd00::11]:80 Route 1",
        "TCP [fd00::100]:80 rr -> [fd00::12]:80 Route 1",
        "FWM 7 wlc -> 10.0.0.11:0 Route 2",
        "FWM 7 wlc -> 10.0.0.12:0 Route 1",
        // Another tool's service: left alone throughout.
        "TCP 10.0.0.200:9 rr",
    ]);
    let reloaded = table.replace(
        "TCP 10.0.0.100:80 rr -> 10.0.0.12:80 Route 1",
        "TCP 10.0.0.100:80 rr -> 10.0.0.12:80 Route 3",
    );
    let reloaded_conf = DR_CONF.replacen(
        "real_server 10.0.0.12 80 { weight 1 }",
        "real_server 10.0.0.12 80 { weight 3 }",
        1,
    );
    let script = format!(
        r#"{COMMON}
topo_dr 1
topo_vip_add
topo_rs_start 80 81
# Before the daemon: another tool's service, and part of ours by hand.
d1 ipvsadm -A -t 10.0.0.200:9 -s rr
d1 ipvsadm -A -t 10.0.0.100:80 -s rr
d1 ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
krs_bg ours d1 keepalived-rs -n -l -D -f /scenario/keepalived.conf -p /tmp/ours.pid
krs_wait_for 30 has_service 'FWM  7' || krs_log "daemon did not program FWM 7"
sleep 1
krs_expect dr-table '{table}' "$(table)"
if grep -q 'add IPVS service \[10.0.0.100\]:tcp:80' /tmp/krs/ours.log ||
    grep -q 'add IPVS destination \[10.0.0.11\]:80 weight 1 in \[10.0.0.100\]:tcp:80' /tmp/krs/ours.log; then
    krs_result dr-adopted FAIL "re-created what was already there"
else
    krs_result dr-adopted PASS
fi
check_served dr-ipv4-served "$VIP4" 80 6
check_served dr-ipv6-served "$VIP6" 80 6
sticky=$(fetch_n 6 "$VIP4" 81 | sort -u | tr '\n' ' ')
case $sticky in
"rs1 " | "rs2 ") krs_result dr-persistence PASS "$sticky" ;;
*) krs_result dr-persistence FAIL "one client, several servers: $sticky" ;;
esac
before=$(counters -t "$VIP4:80")
cp /scenario/reloaded.conf /scenario/keepalived.conf
kill -HUP "$(cat /tmp/ours.pid)"
krs_wait_for 15 grep -q 'Reload finished' /tmp/krs/ours.log
sleep 1
krs_expect dr-reload-table '{reloaded}' "$(table)"
krs_expect dr-reload-counters "$before" "$(counters -t "$VIP4:80")"
ops=$(sed -n '/Reloading configuration/,$p' /tmp/krs/ours.log | grep -c 'IPVS: [a-z]* IPVS')
krs_expect dr-reload-one-op 1 "$ops"
kill -TERM "$(cat /tmp/ours.pid)"
krs_wait_for 15 daemon_gone /tmp/ours.pid
krs_expect dr-stop-table '{foreign}' "$(table)"
cat /tmp/krs/ours.log
# ha_suspend follows the VRRP Master's VIPs, also across reloads.
reloads() {{ [ "$(grep -c 'Reload finished' /tmp/krs/ha.log)" -ge "$1" ]; }}
cp /scenario/ha1.conf /tmp/ha.conf
krs_bg ha d1 keepalived-rs -n -l -D -f /tmp/ha.conf -p /tmp/ha.pid
krs_wait_for 30 has_service '10.0.0.110:80' || krs_log "ha_suspend service did not appear"
sleep 1
krs_expect ha-master-table '{ha_first}' "$(table)"
cp /scenario/ha2.conf /tmp/ha.conf
kill -HUP "$(cat /tmp/ha.pid)"
krs_wait_for 15 reloads 1
krs_wait_for 10 has_service '10.0.0.111:80'
krs_expect ha-reload-added '{ha_both}' "$(table)"
cp /scenario/ha3.conf /tmp/ha.conf
kill -HUP "$(cat /tmp/ha.pid)"
krs_wait_for 15 reloads 2
krs_wait_for 10 eval '! has_service 10.0.0.110:80'
krs_expect ha-reload-removed '{ha_last}' "$(table)"
kill -TERM "$(cat /tmp/ha.pid)"
krs_wait_for 15 daemon_gone /tmp/ha.pid
krs_expect ha-stop-table '{foreign}' "$(table)"
cat /tmp/krs/ha.log
"#,
        foreign = expected(&["TCP 10.0.0.200:9 rr"]),
        ha_first = expected(&[
            "TCP 10.0.0.110:80 rr -> 10.0.0.11:80 Route 1",
            "TCP 10.0.0.200:9 rr",
        ]),
        ha_both = expected(&[
            "TCP 10.0.0.110:80 rr -> 10.0.0.11:80 Route 1",
            "TCP 10.0.0.111:80 rr -> 10.0.0.12:80 Route 1",
            "TCP 10.0.0.200:9 rr",
        ]),
        ha_last = expected(&[
            "TCP 10.0.0.111:80 rr -> 10.0.0.12:80 Route 1",
            "TCP 10.0.0.200:9 rr",
        ]),
    );
    let ha1 = ha_suspend_conf(&["10.0.0.110"]);
    let ha2 = ha_suspend_conf(&["10.0.0.110", "10.0.0.111"]);
    let ha3 = ha_suspend_conf(&["10.0.0.111"]);
    let log = vm::run_scenario(
        "ipvs-dr",
        &script,
        &[
            ("keepalived.conf", DR_CONF.as_bytes()),
            ("reloaded.conf", reloaded_conf.as_bytes()),
            ("ha1.conf", ha1.as_bytes()),
            ("ha2.conf", ha2.as_bytes()),
            ("ha3.conf", ha3.as_bytes()),
        ],
    )
    .expect("VM run");
    log.assert_pass();
    for name in [
        "dr-table",
        "dr-adopted",
        "dr-ipv4-served",
        "dr-ipv6-served",
        "dr-persistence",
        "dr-reload-table",
        "dr-reload-counters",
        "dr-reload-one-op",
        "dr-stop-table",
        "ha-master-table",
        "ha-reload-added",
        "ha-reload-removed",
        "ha-stop-table",
    ] {
        assert!(log.result(name).is_some(), "no result {name}");
    }
    vm::note(&log.timings());
}

const NAT_CONF: &str = r#"
global_defs { router_id director1 }
virtual_server 10.0.0.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.1.0.11 8080 { weight 1 }
    real_server 10.1.0.12 8080 { weight 1 }
}
virtual_server fd00::100 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server fd01::11 8080 { weight 1 }
    real_server fd01::12 8080 { weight 1 }
}
# No real server is alive: alpha keeps it down until its checker succeeds,
# and nothing listens on 9999. The sorry server (rs1) serves instead.
# Checked real servers: when both stop answering, the sorry server (rs1's
# :8080) replaces them; when they answer again, they come back.
virtual_server 10.0.0.100 91 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    sorry_server 10.1.0.11 8080
    real_server 10.1.0.11 8081 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
    real_server 10.1.0.12 8081 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 10.0.0.100 90 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    alpha
    sorry_server 10.1.0.11 8080
    real_server 10.1.0.12 9999 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
}
"#;

#[test]
fn lvs_nat() {
    if !vm::require_daemon() {
        return;
    }
    let table = expected(&[
        "TCP 10.0.0.100:80 rr -> 10.1.0.11:8080 Masq 1",
        "TCP 10.0.0.100:80 rr -> 10.1.0.12:8080 Masq 1",
        "TCP [fd00::100]:80 wrr -> [fd01::11]:8080 Masq 1",
        "TCP [fd00::100]:80 wrr -> [fd01::12]:8080 Masq 1",
        "TCP 10.0.0.100:90 rr -> 10.1.0.11:8080 Masq 1",
        "TCP 10.0.0.100:91 rr -> 10.1.0.11:8081 Masq 1",
        "TCP 10.0.0.100:91 rr -> 10.1.0.12:8081 Masq 1",
    ]);
    let sorry_table = expected(&["TCP 10.0.0.100:91 rr -> 10.1.0.11:8080 Masq 1"]);
    let script = format!(
        r#"{COMMON}
topo_nat 1
topo_vip_add
topo_rs_start 8080 8081
krs_bg ours d1 keepalived-rs -n -l -D -I -f /scenario/keepalived.conf -p /tmp/ours.pid
krs_wait_for 30 has_service '10.0.0.100:90' || krs_log "daemon did not program :90"
sleep 1
krs_expect nat-table '{table}' "$(table)"
check_served nat-ipv4-served "$VIP4" 80 6
check_served nat-ipv6-served "$VIP6" 80 6
sorry=$(fetch_n 4 "$VIP4" 90 | sort -u | tr '\n' ' ')
krs_expect nat-sorry-served "rs1 " "$sorry"
# keepalived 2.2.7's start with the quorum down (tables_match_keepalived
# compares these lines with its own).
krs_contains nat-sorry-start 'Starting with quorum down 1-0=1 > 0 for VS [10.0.0.100]:tcp:90' "$(cat /tmp/krs/ours.log)"
krs_contains nat-sorry-start-added 'Adding sorry server [10.1.0.11]:tcp:8080 to VS [10.0.0.100]:tcp:90' "$(cat /tmp/krs/ours.log)"
if grep -q 'Lost quorum' /tmp/krs/ours.log; then
    krs_result nat-sorry-no-loss-at-start FAIL "logged a quorum loss at start"
else
    krs_result nat-sorry-no-loss-at-start PASS
fi
# Both checked real servers of :91 go away: the sorry server takes over.
kill $(awk '$2 == "httpd-rs1-8081" || $2 == "httpd-rs2-8081" {{ print $1 }}' /tmp/krs/pids)
vs91() {{ table | tr ';' '\n' | grep '10.0.0.100:91' | tr '\n' ';'; }}
is_sorry() {{ [ "$(vs91)" = '{sorry_table}' ]; }}
krs_wait_for 20 is_sorry
krs_expect nat-sorry-takes-over '{sorry_table}' "$(vs91)"
krs_expect nat-sorry-takes-over-served "rs1 " "$(fetch_n 2 "$VIP4" 91 | sort -u | tr '\n' ' ')"
krs_contains nat-sorry-log 'Adding sorry server [10.1.0.11]:tcp:8080 to VS [10.0.0.100]:tcp:91' "$(cat /tmp/krs/ours.log)"
# They answer again: back in the pool, the sorry server leaves.
krs_bg httpd-rs1-8081b ip netns exec rs1 busybox httpd -f -p 8081 -h /tmp/www/rs1
krs_bg httpd-rs2-8081b ip netns exec rs2 busybox httpd -f -p 8081 -h /tmp/www/rs2
back_in_pool() {{ [ "$(vs91)" = "$1" ]; }}
krs_wait_for 20 back_in_pool '{pool91}'
krs_expect nat-pool-back '{pool91}' "$(vs91)"
krs_contains nat-pool-back-log 'Removing sorry server [10.1.0.11]:tcp:8080 from VS [10.0.0.100]:tcp:91' "$(cat /tmp/krs/ours.log)"
kill -TERM "$(cat /tmp/ours.pid)"
krs_wait_for 15 daemon_gone /tmp/ours.pid
krs_expect nat-dont-release '{table}' "$(table)"
cat /tmp/krs/ours.log
"#,
        pool91 = expected(&[
            "TCP 10.0.0.100:91 rr -> 10.1.0.11:8081 Masq 1",
            "TCP 10.0.0.100:91 rr -> 10.1.0.12:8081 Masq 1",
        ]),
    );
    let log = vm::run_scenario(
        "ipvs-nat",
        &script,
        &[("keepalived.conf", NAT_CONF.as_bytes())],
    )
    .expect("VM run");
    log.assert_pass();
    for name in [
        "nat-table",
        "nat-ipv4-served",
        "nat-ipv6-served",
        "nat-sorry-served",
        "nat-sorry-takes-over",
        "nat-sorry-takes-over-served",
        "nat-pool-back",
        "nat-dont-release",
    ] {
        assert!(log.result(name).is_some(), "no result {name}");
    }
    vm::note(&log.timings());
}

/// Cases where keepalived corrects or fills in what the configuration says.
/// The checkers' probes hang (no host answers on the dummy link) for 30 s
/// (SMTP_CHECK, which retries its first probe, for 4 s, then 10 s between
/// retries), so the tables are read long before any checker could change
/// them; 10.1.0.11 of :85 is down from the start (alpha) and its probes
/// fail at once (no route).
const PARITY_CONF: &str = r#"
global_defs { router_id parity }
virtual_server 10.1.0.1 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.1.0.11 443 { weight 1 }
    real_server 10.1.0.12 { weight 2 }
    real_server 10.1.0.13 80 { weight 3 }
}
virtual_server 10.1.0.1 81 {
    lb_algo rr
    lb_kind TUN
    protocol TCP
    real_server 10.1.0.11 443 { weight 1 }
    real_server 10.1.0.12 { weight 2 }
}
virtual_server 10.1.0.1 82 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 10.1.0.11 8080 { weight 1 }
    real_server 10.1.0.12 { weight 2 }
}
virtual_server fwmark 5 {
    lb_algo rr
    lb_kind NAT
    real_server 10.1.0.11 8080 { weight 1 }
    real_server 10.1.0.12 { weight 2 }
}
virtual_server fwmark 6 {
    lb_algo rr
    lb_kind DR
    retry 3
    delay_before_retry 10
    sorry_server 10.1.0.20 8080
    real_server 10.1.0.11 8080 {
        weight 1
        TCP_CHECK { connect_timeout 30 }
    }
    real_server 10.1.0.12 { weight 2 }
}
virtual_server fwmark 7 {
    lb_algo rr
    lb_kind TUN
    real_server 10.1.0.11 8080 { weight 1 }
}
virtual_server 10.1.0.1 83 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.1.0.11 8080 {
        weight 1
        lvs_method NAT
    }
    real_server 10.1.0.12 9090 {
        weight 1
        lvs_method TUN
    }
}
virtual_server 10.1.0.1 84 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.1.0.11 8080 {
        weight 1
        lvs_method DR
    }
}
virtual_server 10.1.0.1 0 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    persistence_timeout 30
    real_server 10.1.0.11 80 { weight 1 }
    real_server 10.1.0.12 { weight 1 }
}
virtual_server 10.1.0.1 85 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    alpha
    sorry_server 10.1.0.20 8080
    real_server 10.1.0.11 80 {
        TCP_CHECK {
            connect_ip 10.255.255.1
            connect_port 1
            connect_timeout 1
        }
    }
}
virtual_server 10.1.0.1 86 {
    lb_algo sh
    sh-port
    sh-fallback
    lb_kind NAT
    protocol TCP
    real_server 10.1.0.11 86 {
        weight 4
        uthreshold 100
        lthreshold 10
    }
}
virtual_server 10.1.0.1 87 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    retry 3
    delay_before_retry 10
    connect_timeout 30
    real_server 10.1.0.11 443 {
        inhibit_on_failure
        TCP_CHECK { }
        HTTP_GET {
            url { path / }
        }
    }
}
virtual_server 10.1.0.1 25 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    retry 3
    delay_before_retry 10
    connect_timeout 30
    real_server 10.1.0.14 {
        SMTP_CHECK {
            host { connect_ip 10.1.0.31 }
            host {
                connect_ip 10.1.0.32
                connect_port 2525
            }
        }
    }
    real_server 10.1.0.15 25 {
        SMTP_CHECK {
            host { connect_ip 10.1.0.31 }
            connect_timeout 4
        }
    }
}
virtual_server fd00::1 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server fd00::11 443 { weight 1 }
    real_server fd00::12 { weight 1 }
}
virtual_server 10.1.0.1 53 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    ops
    real_server 10.1.0.11 5353 { weight 1 }
}
virtual_server_group G1 {
    10.2.0.1 80
    10.2.0.10-12 81
    10.2.1.0/31 82
    fwmark 11
}
virtual_server group G1 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    persistence_timeout 100
    persistence_granularity 255.255.255.0
    sorry_server 10.2.0.30
    sorry_server_inhibit
    real_server 10.2.0.21 8080 { weight 3 }
    real_server 10.2.0.22 { weight 1 }
}
virtual_server_group G2 {
    10.3.0.2 80
    fwmark 21
}
virtual_server group G2 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    sorry_server 10.3.0.30 8080
    sorry_server_inhibit
    real_server 10.3.0.21 8080 { weight 1 }
    real_server 10.3.0.22 { weight 1 }
}
virtual_server 10.2.0.2 80 {
    lb_algo mh
    mh-port
    mh-fallback
    lb_kind NAT
    protocol TCP
    real_server 10.2.0.21 80 { weight 1 }
}
virtual_server 10.2.0.3 80 {
    lb_algo lblcr
    lb_kind DR
    protocol TCP
    flag-1
    flag-3
    real_server 10.2.0.21 80 { weight 1 }
}
virtual_server 10.2.0.4 80 {
    lb_algo sed
    lb_kind TUN
    protocol TCP
    real_server 10.2.0.21 80 {
        weight 1
        lvs_method TUN type gue port 6080
    }
    real_server 10.2.0.22 80 {
        weight 1
        lvs_method TUN type gre csum
    }
}
virtual_server 10.2.0.5 80 {
    lb_algo nq
    lb_kind NAT
    protocol TCP
    persistence_timeout
    persistence_granularity 255.255.0.0
    real_server 10.2.0.21 80 { weight 1 }
}
virtual_server 10.2.0.6 5060 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    persistence_timeout 60
    persistence_engine sip
    real_server 10.2.0.21 5060 { weight 1 }
}
virtual_server 10.2.0.7 80 {
    lb_algo fo
    lb_kind NAT
    protocol SCTP
    real_server 10.2.0.21 80 { weight 5 }
    real_server 10.2.0.22 80 { weight 7 }
}
virtual_server 10.2.0.8 80 {
    lb_algo ovf
    lb_kind NAT
    protocol TCP
    hashed
    real_server 10.2.0.21 80 { weight 5 }
}
virtual_server 10.2.0.9 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 3
    hysteresis 1
    sorry_server 10.2.0.30 80
    real_server 10.2.0.21 80 { weight 1 }
    real_server 10.2.0.22 80 { weight 1 }
}
virtual_server fd00::2 443 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server fd00::21 8443 { weight 1 }
}
virtual_server fwmark 12 {
    lb_algo rr
    lb_kind NAT
    ip_family inet6
    persistence_timeout 30
    persistence_granularity 255.255.0.0
    real_server fd00::21 80 { weight 1 }
}
"#;

#[test]
fn tables_match_keepalived() {
    if !vm::require_daemon() {
        return;
    }
    // Each daemon in turn in the VM's own namespace: start, wait for the
    // last service, read the table and the checkers it started, stop,
    // clear the table.
    let script = r#". /lib/krs/lib.sh
ip link set lo up
for m in ip_vs_wlc ip_vs_mh ip_vs_lblcr ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_sh ip_vs_pe_sip; do
    modprobe "$m" || krs_log "no module $m"
done
ip link add d0 type dummy && ip link set d0 up && ip addr add 10.1.0.2/24 dev d0
has_udp53() { ipvsadm -Ln | grep -q '10.1.0.1:53'; }
activations() {
    grep -o 'Activating healthchecker for service .*' "$1" | sort >"$2"
}
run_daemon() { # name pidfile command...
    _name=$1 _pid=$2
    shift 2
    krs_bg "$_name" "$@"
    krs_wait_for 30 has_udp53 || krs_log "$_name did not program the table"
    sleep 3
    ipvsadm -Sn | sort >"/tmp/$_name.table"
    kill "$(cat "$_pid")"
    krs_wait_for 15 sh -c "! kill -0 $(cat "$_pid") 2>/dev/null"
    activations "/tmp/krs/$_name.log" "/tmp/$_name.checkers"
    krs_export "$_name.table" "/tmp/$_name.table"
    krs_export "$_name.checkers" "/tmp/$_name.checkers"
    krs_export "$_name.log" "/tmp/krs/$_name.log"
    ipvsadm -C
}
run_daemon ka /tmp/ka.pid keepalived -n -l -D -C -f /scenario/keepalived.conf -p /tmp/ka.pid -c /tmp/ka_check.pid
run_daemon ours /tmp/ours.pid keepalived-rs -n -l -D -f /scenario/keepalived.conf -p /tmp/ours.pid
krs_result parity-ran PASS
"#;
    let log = vm::run_scenario(
        "ipvs-parity",
        script,
        &[("keepalived.conf", PARITY_CONF.as_bytes())],
    )
    .expect("VM run");
    log.assert_pass();
    let text = |name: &str| log.file_text(name);
    let (ka_table, ours_table) = (text("ka.table"), text("ours.table"));
    // keepalived's own corrections, so that the comparison is about them.
    for line in [
        "-a -t 10.1.0.1:80 -r 10.1.0.11:80 -g -w 1",
        "-a -t 10.1.0.1:81 -r 10.1.0.11:81 -i -w 1 --tun-type ipip",
        "-a -f 5 -r 10.1.0.11:8080 -m -w 1",
        "-a -f 6 -r 10.1.0.11:0 -g -w 1",
        "-a -t 10.1.0.1:85 -r 10.1.0.20:85 -g -w 1",
        "-a -t 10.2.0.10:81 -r 10.2.0.22:0 -m -w 1",
        "-a -f 21 -r 10.3.0.21:0 -g -w 1",
        "-A -t 10.2.0.10:81 -s wlc -p 100",
    ] {
        assert!(
            ka_table.lines().any(|l| l == line),
            "keepalived's table lacks {line}:\n{ka_table}\n{}",
            text("ka.log")
        );
    }
    assert!(ka_table.lines().count() >= 90, "{ka_table}");
    assert_eq!(
        ours_table,
        ka_table,
        "ours (left) and keepalived's (right) tables differ; our log:\n{}",
        text("ours.log")
    );
    let (ka_checkers, ours_checkers) = (text("ka.checkers"), text("ours.checkers"));
    assert!(
        ka_checkers.contains("[10.1.0.11]:none:0 for VS FWM 6")
            && ka_checkers.contains("[10.1.0.11]:tcp:87 for VS [10.1.0.1]:tcp:87")
            && ka_checkers.matches("[10.1.0.14]:tcp:25").count() == 2
            && ka_checkers.matches("[10.1.0.15]:tcp:25").count() == 2,
        "{ka_checkers}"
    );
    assert_eq!(ours_checkers, ka_checkers, "checkers started");
    // What both say about quorums, sorry servers and pools (keepalived's
    // configuration warnings and ours differ in wording, so they are left out).
    let quorum_lines = |log: &str| -> Vec<String> {
        let mut lines: Vec<String> = log
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(_, rest)| rest.to_string()))
            .filter(|l| {
                ["quorum", "sorry server", "alive servers"]
                    .iter()
                    .any(|p| l.contains(p))
                    && !["Warning", "WARNING", "Virtual server", "/scenario/"]
                        .iter()
                        .any(|p| l.starts_with(p))
            })
            .collect();
        lines.sort();
        lines
    };
    let ka_quorum = quorum_lines(&text("ka.log"));
    assert!(
        ka_quorum
            .contains(&"Starting with quorum down 1-0=1 > 0 for VS [10.1.0.1]:tcp:85".to_string()),
        "{ka_quorum:#?}"
    );
    assert_eq!(quorum_lines(&text("ours.log")), ka_quorum, "quorum lines");
    vm::note(&log.timings());
}
