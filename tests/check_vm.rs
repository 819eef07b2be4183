//! Health checkers driving real IPVS, end to end, in the test VM (Debian's
//! kernel under qemu, see tests/vm/mod.rs): the seeds' LVS-DR setup
//! (tests/data/seeds/000_http_get.conf, 000_tcp_check.conf,
//! 003_annotated_lvs_dr_http_get.conf) moved to the VM's DR topology, with
//! our daemon as the director, busybox httpd real servers that the
//! scenario stops, restarts and edits, and `ipvsadm -Ln` as the
//! independent witness.
//!
//! One boot runs the suite twice: first with keepalived-rs, then, as the
//! reference that shows the expectations are keepalived's, with the real
//! keepalived 2.2.7 (`keepalived -C`) on the same configuration. Per
//! virtual server (VIP 10.0.0.100, rs1 10.0.0.11, rs2 10.0.0.12):
//!
//! | port | checker                    | what it shows                          |
//! |------|----------------------------|----------------------------------------|
//! | 80   | HTTP_GET `digest`          | stop/restart; wrong page content fails |
//! | 81   | HTTP_GET `status_code 200` | stop/restart; a 404 fails              |
//! | 82   | TCP_CHECK                  | stop/restart                           |
//! | 83   | TCP_CHECK, inhibit_on_failure | weight 0 instead of removal         |
//! | 84   | TCP_CHECK, sorry_server 10.0.0.13 | sorry server when both are down, gone when one returns |
//!
//! Steps, each checked against the whole table afterwards: (a) every real
//! server present, and (ours) every checker logged its first success; (b)
//! rs1's httpd stopped on every port, and rs2's on :84: rs1 leaves :80-:82,
//! gets weight 0 on :83, the sorry server replaces both on :84, rs2 stays;
//! (c) rs1's httpd restarted: it returns everywhere, the sorry server
//! leaves :84 as soon as one real server is back; (d) rs1's page on :80
//! changed (digest mismatch) and removed on :81 (404): rs1 leaves both,
//! and returns when the page is restored. The times from each change to
//! the table showing it are printed.
//!
//! Then, ours only: 2000 real servers whose SYNs are dropped (probes hang
//! for connect_timeout) next to 20 healthy ones, started with a soft limit
//! of 1024 open files: the daemon raises the limit (as keepalived's checker
//! does) and the healthy real servers stay up.
//!
//! Also: keepalived 2.2.7's `genhash` and ours print the MD5 the digest
//! checker compares, alone on the last line.
//!
//! Timing: delay_loop 2, connect_timeout 2, retry 1, delay_before_retry 1,
//! so a real server must leave within 2 + 1*1 + 2 = 5 s of its failure, and
//! come back within the same bound; the scenario allows
//! [`SLACK_SECS`] more (TCG). The measured times are printed.
//!
//! `first_probes_match_keepalived`: keepalived 2.2.7 and ours side by side
//! (one network namespace each) on checkers whose first probe fails, or
//! passes: the IPVS tables a few seconds in and later, and the checkers'
//! log lines, must be the same.
//!
//! `lifecycle_matches_keepalived`: the same, through a real server's life:
//! HTTP_GET, TCP_CHECK (inhibit_on_failure), MISC_CHECK with misc_dynamic,
//! FILE_CHECK weights and PING_CHECK, with notify_up/notify_down scripts,
//! while the servers stop, come back and change their answers: the tables
//! at each step, the checkers' lines and the scripts' runs must be the same.
//!
//! Needs root, qemu and the static musl build of the daemon
//! (`cargo build --release --target x86_64-unknown-linux-musl`); skipped
//! otherwise, failed under KEEPALIVED_RS_FULL_TEST=1.

mod vm;

const DELAY_LOOP: u32 = 2;
const CONNECT_TIMEOUT: u32 = 2;
const RETRY: u32 = 1;
const DELAY_BEFORE_RETRY: u32 = 1;
/// Allowance on top of the configured detection time: TCG is slow, the
/// poll loop samples every 0.2 s and ipvsadm itself takes a while.
const SLACK_SECS: u32 = 3;

/// The seeds' virtual servers in the VM's DR topology. `@D11@` / `@D12@`
/// are replaced in the VM by the MD5 of the pages rs1 and rs2 serve on
/// port 80 (what `genhash` would print).
fn config() -> String {
    let timing = format!(
        "connect_timeout {CONNECT_TIMEOUT}\n            retry {RETRY}\n            \
         delay_before_retry {DELAY_BEFORE_RETRY}"
    );
    // Per-port checker block for rs1 (.11) and rs2 (.12).
    let http_digest = |d: &str| {
        format!(
            "HTTP_GET {{\n            url {{\n                path /index.html\n                \
             digest {d}\n            }}\n            connect_port 80\n            {timing}\n        }}"
        )
    };
    let http_status = format!(
        "HTTP_GET {{\n            url {{\n                path /index.html\n                \
         status_code 200\n            }}\n            {timing}\n        }}"
    );
    let tcp = format!("TCP_CHECK {{\n            {timing}\n        }}");
    let vs = |port: u16, extra: &str, c11: &str, c12: &str| {
        format!(
            "virtual_server 10.0.0.100 {port} {{\n    delay_loop {DELAY_LOOP}\n    lb_algo rr\n    \
             lb_kind DR\n    protocol TCP\n{extra}\n    real_server 10.0.0.11 {port} {{\n        \
             weight 1\n        {c11}\n    }}\n    real_server 10.0.0.12 {port} {{\n        \
             weight 1\n        {c12}\n    }}\n}}\n"
        )
    };
    let mut conf = String::from("global_defs {\n    router_id director1\n}\n\n");
    conf += &vs(80, "", &http_digest("@D11@"), &http_digest("@D12@"));
    conf += &vs(81, "", &http_status, &http_status);
    conf += &vs(82, "", &tcp, &tcp);
    conf += &vs(83, "    inhibit_on_failure", &tcp, &tcp);
    conf += &vs(84, "    sorry_server 10.0.0.13 84", &tcp, &tcp);
    conf
}

/// The expected table, in the `table` shell function's form, from
/// "PORT HOST WEIGHT" entries (HOST 11/12/13 = rs1/rs2/the sorry server
/// of :84, which exists only in the table).
fn table(entries: &[&str]) -> String {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| {
            let mut it = e.split_whitespace();
            let vs: u16 = it.next().and_then(|v| v.parse().ok()).expect("vs port");
            let host = it.next().expect("rs host");
            let weight = it.next().expect("weight");
            format!("TCP 10.0.0.100:{vs} rr -> 10.0.0.{host}:{vs} Route {weight}")
        })
        .collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l};")).collect()
}

const SCENARIO: &str = r#"
. /lib/krs/topo.sh
d1() { in_ns director1 "$@"; }
# One line per destination ("SERVICE -> DEST FORWARD WEIGHT"), services
# without destinations alone, whitespace squeezed, sorted, ';'-joined.
table() {
    d1 ipvsadm -Ln | awk 'NR > 3 {
        if ($1 == "->") { print svc " -> " $2 " " $3 " " $4; seen[svc] = 1 }
        else { svc = $0; gsub(/ +/, " ", svc); sub(/ $/, "", svc); order[++n] = svc }
    } END { for (i = 1; i <= n; i++) if (!(order[i] in seen)) print order[i] }' | sort | tr '\n' ';'
}
uptime_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
secs() { awk -v c="$1" 'BEGIN { printf "%.1f", c / 100 }'; }

# Real servers: busybox httpd per namespace and port, serving
# /tmp/www/NS-PORT/index.html ("NS PORT"); killed by pid.
rs_start() { # ns port
    rsdir=/tmp/www/$1-$2
    mkdir -p "$rsdir"
    [ -f "$rsdir/index.html" ] || echo "$1 $2" >"$rsdir/index.html"
    ip netns exec "$1" busybox httpd -f -p "$2" -h "$rsdir" >/dev/null 2>&1 &
    echo "$!" >"/tmp/krs/httpd-$1-$2.pid"
    echo "$! httpd-$1-$2" >>/tmp/krs/pids
}
rs_stop() { # ns port
    kill "$(cat "/tmp/krs/httpd-$1-$2.pid")" 2>/dev/null
    rm -f "/tmp/krs/httpd-$1-$2.pid"
}
rs_page() { # ns port text
    echo "$3" >"/tmp/www/$1-$2/index.html"
}
listening() { in_ns "$1" netstat -ltn 2>/dev/null | grep -q ":$2 "; }
not_listening() { ! listening "$@"; }
wait_listening() { # ns port...
    wl_ns=$1
    shift
    for port in "$@"; do
        krs_wait_for 10 listening "$wl_ns" "$port" || krs_log "httpd in $wl_ns:$port not listening"
    done
}

# Conditions on the table, for wait_all.
dest() { # vsport rsaddr:port -> "FORWARD WEIGHT" or nothing
    d1 ipvsadm -Ln -t "10.0.0.100:$1" 2>/dev/null | awk -v d="$2" '$1 == "->" && $2 == d { print $3, $4 }'
}
present() { [ -n "$(dest "$1" "$2")" ]; }
absent() { [ -z "$(dest "$1" "$2")" ]; }
weight_is() { [ "$(dest "$1" "$2")" = "Route $3" ]; }

# wait_all PREFIX LIMIT_CS T0_CS NAME 'CONDITION' ...: polls every 0.2 s
# until every CONDITION holds (checked with eval) or LIMIT_CS passes
# since T0_CS; reports PREFIX-NAME PASS with the time from T0 to the
# first poll that saw it, or FAIL.
wait_all() {
    wa_pfx=$1 wa_limit=$2 wa_t0=$3
    shift 3
    declare -A wa_cond=() wa_at=()
    declare -a wa_names=()
    while [ $# -ge 2 ]; do
        wa_names+=("$1")
        wa_cond[$1]=$2
        shift 2
    done
    wa_polls=0
    while [ $wa_polls -lt 600 ]; do
        wa_polls=$((wa_polls + 1))
        wa_now=$(uptime_cs)
        wa_left=0
        for wa_name in "${wa_names[@]}"; do
            [ -n "${wa_at[$wa_name]:-}" ] && continue
            if eval "${wa_cond[$wa_name]}" >/dev/null 2>&1; then
                wa_at[$wa_name]=$((wa_now - wa_t0))
            else
                wa_left=$((wa_left + 1))
            fi
        done
        [ $wa_left -eq 0 ] && break
        [ $((wa_now - wa_t0)) -gt "$wa_limit" ] && break
        sleep 0.2
    done
    for wa_name in "${wa_names[@]}"; do
        if [ -n "${wa_at[$wa_name]:-}" ] && [ "${wa_at[$wa_name]}" -le "$wa_limit" ]; then
            krs_result "$wa_pfx-$wa_name" PASS "after $(secs "${wa_at[$wa_name]}") s (limit $(secs "$wa_limit") s)"
            echo "KRS-TIME $wa_pfx-$wa_name $(secs "${wa_at[$wa_name]}")"
        else
            krs_result "$wa_pfx-$wa_name" FAIL "not within $(secs "$wa_limit") s: ${wa_cond[$wa_name]}; table: $(table)"
        fi
    done
}

all_rs_start() {
    for port in 80 81 82 83 84; do
        rs_start rs1 $port
        rs_start rs2 $port
    done
    wait_listening rs1 80 81 82 83 84
    wait_listening rs2 80 81 82 83 84
}

# suite PREFIX PIDFILE CMD...: one run of every check with the daemon CMD
# (started in director1); results are PREFIX-*.
suite() {
    sx=$1 pidf=$2
    shift 2
    rm -f "$pidf"
    krs_bg "$sx" d1 "$@"
    krs_wait_for 30 present 84 10.0.0.12:84 || krs_log "$sx: no :84 service after 30 s"
    # Let every checker run at least once (first probe within 1 s +
    # warmup <= delay_loop; a failure would be final after one retry).
    sleep $((DELAY_LOOP + 1 + RETRY * DELAY_BEFORE_RETRY + 2))
    krs_expect "$sx-a-all-present" "$T_ALL" "$(table)"
    # Every checker has probed and succeeded (both daemons log a checker's
    # first verdict), when the daemon's output was captured.
    if [ -s "/tmp/krs/$sx.log" ]; then
        missing=""
        for rsaddr in 10.0.0.11 10.0.0.12; do
            for port in 80 81 82 83 84; do
                grep -Eq "$rsaddr\\]:tcp:$port (succeed on service|success)\\.\$" "/tmp/krs/$sx.log" || missing="$missing $rsaddr:$port"
            done
        done
        if [ -z "$missing" ]; then
            krs_result "$sx-a-probed" PASS
        else
            krs_result "$sx-a-probed" FAIL "no success logged for$missing"
        fi
    fi

    # (b) rs1 fails on every service, both real servers of :84.
    t0=$(uptime_cs)
    for port in 80 81 82 83 84; do rs_stop rs1 $port; done
    rs_stop rs2 84
    wait_all "$sx-b" "$LIMIT_CS" "$t0" \
        digest-rs1-gone 'absent 80 10.0.0.11:80' \
        status-rs1-gone 'absent 81 10.0.0.11:81' \
        tcp-rs1-gone 'absent 82 10.0.0.11:82' \
        inhibit-rs1-weight0 'weight_is 83 10.0.0.11:83 0' \
        sorry-in 'weight_is 84 10.0.0.13:84 1'
    sleep 1
    krs_expect "$sx-b-table" "$T_DOWN" "$(table)"

    # (c) rs1 back on every service; one of :84's two returns.
    t0=$(uptime_cs)
    for port in 80 81 82 83 84; do rs_start rs1 $port; done
    wait_listening rs1 80 81 82 83 84
    wait_all "$sx-c" "$LIMIT_CS" "$t0" \
        digest-rs1-back 'weight_is 80 10.0.0.11:80 1' \
        status-rs1-back 'weight_is 81 10.0.0.11:81 1' \
        tcp-rs1-back 'weight_is 82 10.0.0.11:82 1' \
        inhibit-rs1-weight1 'weight_is 83 10.0.0.11:83 1' \
        sorry-out 'absent 84 10.0.0.13:84' \
        sorry-rs1-in 'weight_is 84 10.0.0.11:84 1'
    sleep 1
    krs_expect "$sx-c-table" "$T_BACK" "$(table)"

    # (d) content: rs1's page on :80 no longer matches its digest; rs1 on
    # :81 answers 404. rs2 of :84 returns.
    t0=$(uptime_cs)
    rs_page rs1 80 "defaced"
    mv /tmp/www/rs1-81/index.html /tmp/www/rs1-81/moved.html
    rs_start rs2 84
    wait_listening rs2 84
    wait_all "$sx-d" "$LIMIT_CS" "$t0" \
        digest-wrong-gone 'absent 80 10.0.0.11:80' \
        status-404-gone 'absent 81 10.0.0.11:81' \
        sorry-rs2-in 'weight_is 84 10.0.0.12:84 1'
    sleep 1
    krs_expect "$sx-d-table" "$T_CONTENT" "$(table)"
    t0=$(uptime_cs)
    rs_page rs1 80 "rs1 80"
    mv /tmp/www/rs1-81/moved.html /tmp/www/rs1-81/index.html
    wait_all "$sx-d" "$LIMIT_CS" "$t0" \
        digest-right-back 'weight_is 80 10.0.0.11:80 1' \
        status-200-back 'weight_is 81 10.0.0.11:81 1'
    sleep 1
    krs_expect "$sx-d-final-table" "$T_ALL" "$(table)"

    kill -TERM "$(cat "$pidf")" 2>/dev/null
    krs_wait_for 20 eval '! kill -0 "$(cat "$pidf")"' || krs_log "$sx: still running 20 s after SIGTERM"
    sleep 1
    d1 ipvsadm -C
    echo "KRS-LOG ---- $sx log"
    sed 's/^/KRS-LOG | /' "/tmp/krs/$sx.log" | grep -v 'TCP connection to .* success\.$' | tail -n 80
}

topo_dr 1
topo_vip_add
all_rs_start
D11=$(md5sum </tmp/www/rs1-80/index.html | cut -d' ' -f1)
D12=$(md5sum </tmp/www/rs2-80/index.html | cut -d' ' -f1)
sed -e "s/@D11@/$D11/" -e "s/@D12@/$D12/" /scenario/keepalived.conf.in >/scenario/keepalived.conf
# keepalived 2.2.7's genhash and ours print what the checker hashes, the
# MD5 of the body, alone on the last line (what the seeds paste into
# `digest`).
krs_expect genhash-ka "$D11" "$(d1 genhash -s 10.0.0.11 -p 80 -u /index.html 2>&1 | tail -n 1)"
krs_expect genhash-ours "$D11" "$(d1 /opt/keepalived-rs/genhash -s 10.0.0.11 -p 80 -u /index.html 2>&1 | tail -n 1)"

suite ours /tmp/ours.pid keepalived-rs -n -l -D -f /scenario/keepalived.conf -p /tmp/ours.pid
suite ka /tmp/ka.pid keepalived -n -l -D -C -f /scenario/keepalived.conf -p /tmp/ka.pid -c /tmp/ka_check.pid

# (fd) Many probes in flight: 2000 real servers whose SYNs vanish (routed
# to the client namespace, which does not forward) keep ~2000 sockets open
# for connect_timeout 5, next to 20 healthy ones (NAT, rs1's httpd on :82).
# Started with the usual soft limit of 1024 open files, the daemon must
# make room (as keepalived does) or the healthy ones fail with EMFILE.
d1 ip route add 10.9.0.0/16 via 10.0.0.10
awk 'BEGIN {
    t = "        TCP_CHECK {\n            connect_timeout 5\n            retry 1\n            delay_before_retry 1\n"
    print "virtual_server 10.0.0.100 90 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP"
    for (i = 1; i <= 20; i++)
        printf "    real_server 10.0.0.11 %d {\n        weight 1\n%s            connect_port 82\n        }\n    }\n", 8000 + i, t
    print "}"
    for (v = 0; v < 20; v++) {
        printf "virtual_server 10.0.1.%d 90 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n", v + 1
        for (i = 0; i < 100; i++) {
            k = v * 100 + i
            printf "    real_server 10.9.%d.%d 90 {\n        weight 1\n%s        }\n    }\n", int(k / 200), k % 200 + 1, t
        }
        print "}"
    }
}' >/tmp/fd.conf
healthy() { d1 ipvsadm -Ln -t 10.0.0.100:90 | awk '$1 == "->" && $2 ~ /^10\./ && $4 > 0 { n++ } END { print n + 0 }'; }
krs_bg ours-fd d1 sh -c 'ulimit -S -n 1024; exec keepalived-rs -n -l -f /tmp/fd.conf -p /tmp/fd.pid'
krs_wait_for 60 eval '[ "$(healthy)" = 20 ]' || krs_log "fd: the 20 healthy real servers never all present"
samples=""
worst=20
for i in 1 2 3 4 5 6 7 8 9 10; do
    sleep 2
    h=$(healthy)
    samples="$samples $h"
    [ "$h" -lt "$worst" ] && worst=$h
done
pid=$(cat /tmp/fd.pid)
fds=$(ls "/proc/$pid/fd" | wc -l)
limit=$(awk '/Max open files/ { print $4 }' "/proc/$pid/limits")
krs_expect ours-fd-healthy-stay 20 "$worst"
krs_log "fd: healthy per 2 s:$samples; open fds $fds; soft limit $limit"
if [ "$limit" -ge 2020 ]; then
    krs_result ours-fd-limit PASS "soft limit $limit, $fds open"
else
    krs_result ours-fd-limit FAIL "soft limit $limit for 2020 socket checkers ($fds open)"
fi
grep -i 'open file' /tmp/krs/ours-fd.log | sed 's/^/KRS-LOG | /'
kill -TERM "$pid"
krs_wait_for 30 eval '! kill -0 "$pid"' || krs_log "fd: daemon still running 30 s after SIGTERM"
topo_teardown
"#;

#[test]
fn checkers_drive_ipvs() {
    if !vm::require_daemon() {
        return;
    }
    let limit_cs = (DELAY_LOOP + RETRY * DELAY_BEFORE_RETRY + CONNECT_TIMEOUT + SLACK_SECS) * 100;
    let t_all = table(&[
        "80 11 1", "80 12 1", "81 11 1", "81 12 1", "82 11 1", "82 12 1", "83 11 1", "83 12 1",
        "84 11 1", "84 12 1",
    ]);
    let t_down = table(&[
        "80 12 1", "81 12 1", "82 12 1", "83 11 0", "83 12 1", "84 13 1",
    ]);
    let t_back = table(&[
        "80 11 1", "80 12 1", "81 11 1", "81 12 1", "82 11 1", "82 12 1", "83 11 1", "83 12 1",
        "84 11 1",
    ]);
    let t_content = table(&[
        "80 12 1", "81 12 1", "82 11 1", "82 12 1", "83 11 1", "83 12 1", "84 11 1", "84 12 1",
    ]);
    let script = format!(
        "DELAY_LOOP={DELAY_LOOP} RETRY={RETRY} DELAY_BEFORE_RETRY={DELAY_BEFORE_RETRY}\n\
         LIMIT_CS={limit_cs}\nT_ALL='{t_all}'\nT_DOWN='{t_down}'\nT_BACK='{t_back}'\n\
         T_CONTENT='{t_content}'\n{SCENARIO}"
    );
    let conf = config();
    let log = vm::run_scenario(
        "check-dr",
        &script,
        &[("keepalived.conf.in", conf.as_bytes())],
    )
    .expect("VM run");
    let times: Vec<&str> = log.grep("KRS-TIME ").collect();
    vm::note(&format!(
        "check-dr detection times (s):\n  {}",
        times.join("\n  ")
    ));
    log.assert_pass();
    assert!(
        log.result("ours-a-probed").is_some(),
        "no result ours-a-probed"
    );
    for daemon in ["ours", "ka"] {
        for name in [
            "a-all-present",
            "b-digest-rs1-gone",
            "b-status-rs1-gone",
            "b-tcp-rs1-gone",
            "b-inhibit-rs1-weight0",
            "b-sorry-in",
            "b-table",
            "c-digest-rs1-back",
            "c-status-rs1-back",
            "c-tcp-rs1-back",
            "c-inhibit-rs1-weight1",
            "c-sorry-out",
            "c-sorry-rs1-in",
            "c-table",
            "d-digest-wrong-gone",
            "d-status-404-gone",
            "d-sorry-rs2-in",
            "d-table",
            "d-digest-right-back",
            "d-status-200-back",
            "d-final-table",
        ] {
            let full = format!("{daemon}-{name}");
            assert!(log.result(&full).is_some(), "no result {full}");
        }
    }
    vm::note(&log.timings());
}

#[test]
fn config_is_clean_and_tables_format() {
    // The generated configuration loads without a diagnostic (the same
    // text with real digests is what keepalived 2.2.7 runs in the VM):
    // five virtual servers, two real servers each, one checker each.
    let conf = config()
        .replace("@D11@", &"a".repeat(32))
        .replace("@D12@", &"b".repeat(32));
    let loaded = keepalived_rs::config::load_str("check_vm.conf", &conf, &Default::default());
    assert!(
        loaded.diagnostics.items.is_empty(),
        "{:?}",
        loaded.diagnostics.items
    );
    let vss = &loaded.config.virtual_servers;
    assert_eq!(vss.len(), 5);
    assert!(vss
        .iter()
        .all(|vs| vs.real_servers.len() == 2
            && vs.real_servers.iter().all(|rs| rs.checkers.len() == 1)));
    assert_eq!(
        table(&["84 13 1", "80 11 0"]),
        "TCP 10.0.0.100:80 rr -> 10.0.0.11:80 Route 0;TCP 10.0.0.100:84 rr -> 10.0.0.13:84 Route 1;"
    );
    // first_probes_match_keepalived's: eleven cases, one checker each.
    let loaded =
        keepalived_rs::config::load_str("first.conf", &first_probes_conf(), &Default::default());
    assert!(
        loaded.diagnostics.items.is_empty(),
        "{:?}",
        loaded.diagnostics.items
    );
    assert_eq!(loaded.config.virtual_servers.len(), 11);
    let alpha = loaded
        .config
        .virtual_servers
        .iter()
        .filter(|vs| vs.alpha.value)
        .count();
    assert_eq!(alpha, 2);
}

/// The health checkers' lines of a daemon's log, without timestamps,
/// sorted: what the side-by-side tests compare. keepalived says nothing
/// about FILE_CHECK, so ours are left out.
fn checker_lines(log: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, rest)| rest.to_string()))
        .filter(|l| {
            [
                " on service ",
                "connection to ",
                "Misc check for",
                "succeed on service",
                "success to ",
                "SMTP_CHECK ",
                "DNS_CHECK (",
                "Disabling service",
                "Enabling service",
                "Adding service",
                "Removing service",
            ]
            .iter()
            .any(|p| l.contains(p))
                && !l.starts_with("FILE_CHECK")
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// One virtual server per case; every real server of 10.1.0.0/24 sits
/// behind a dummy link where probes vanish (connect_timeout 1 s). retry 3,
/// delay_before_retry 10: a retried first probe would keep the server
/// (inhibit_on_failure: weight 1) for 30 s and more. SMTP_CHECK, which
/// keepalived does retry, has retry 1: weight 1 at the first reading, 0 at
/// the second.
fn first_probes_conf() -> String {
    const FAILING: &str = "connect_timeout 1\n warmup 0\n retry 3\n delay_before_retry 10";
    // (VS port, protocol, alpha, real server, checker)
    let cases: [(u16, &str, bool, &str, String); 11] = [
        (
            1,
            "TCP",
            false,
            "10.1.0.11",
            format!("TCP_CHECK {{\n {FAILING}\n}}"),
        ),
        (
            2,
            "TCP",
            false,
            "10.1.0.12",
            format!("HTTP_GET {{\n url {{ path / }}\n {FAILING}\n}}"),
        ),
        (
            3,
            "TCP",
            false,
            "10.1.0.13",
            "MISC_CHECK {\n misc_path /bin/false\n warmup 0\n retry 3\n delay_before_retry 10\n}"
                .into(),
        ),
        (
            4,
            "UDP",
            false,
            "10.1.0.14",
            format!("UDP_CHECK {{\n require_reply\n {FAILING}\n}}"),
        ),
        (
            5,
            "TCP",
            false,
            "10.1.0.15",
            format!("PING_CHECK {{\n {FAILING}\n}}"),
        ),
        (
            6,
            "TCP",
            true,
            "10.1.0.16",
            format!("TCP_CHECK {{\n {FAILING}\n}}"),
        ),
        (
            7,
            "TCP",
            true,
            "10.1.0.17",
            format!("HTTP_GET {{\n url {{ path / }}\n {FAILING}\n}}"),
        ),
        (
            8,
            "TCP",
            false,
            "127.0.0.1",
            "PING_CHECK {\n connect_timeout 1\n warmup 0\n}".into(),
        ),
        (
            9,
            "TCP",
            false,
            "10.1.0.19",
            "MISC_CHECK {\n misc_path /bin/true\n warmup 0\n}".into(),
        ),
        (
            10,
            "TCP",
            false,
            "10.1.0.20",
            "SMTP_CHECK {\n connect_timeout 1\n warmup 0\n retry 1\n delay_before_retry 10\n}"
                .into(),
        ),
        (
            11,
            "UDP",
            false,
            "10.1.0.21",
            format!("DNS_CHECK {{\n {FAILING}\n}}"),
        ),
    ];
    let mut conf = String::from("global_defs { router_id first }\n");
    for (port, protocol, alpha, rs, checker) in cases {
        let alpha = if alpha { "alpha" } else { "" };
        conf.push_str(&format!(
            "virtual_server 10.9.0.1 {port} {{\n lb_algo rr\n lb_kind NAT\n protocol {protocol}\n delay_loop 30\n {alpha}\n real_server {rs} {port} {{\n  inhibit_on_failure\n  {checker}\n }}\n}}\n"
        ));
    }
    conf
}

#[test]
fn first_probes_match_keepalived() {
    if !vm::require_daemon() {
        return;
    }
    // Both daemons start at once, each in a namespace of its own (IPVS
    // tables are per namespace) with the same blackhole link.
    let script = r#". /lib/krs/lib.sh
for d in ka ours; do
    ip netns add "$d"
    ip -n "$d" link set lo up
    ip -n "$d" link add d0 type dummy
    ip -n "$d" link set d0 up
    ip -n "$d" addr add 10.1.0.2/24 dev d0
done
weights() { ip netns exec "$1" ipvsadm -Ln | awk '$1 == "->" && $2 != "RemoteAddress:Port" { print $2, $4 }' | sort | tr '\n' ';'; }
krs_bg ka ip netns exec ka keepalived -n -l -C -f /scenario/keepalived.conf -p /tmp/ka.pid -c /tmp/ka_check.pid
krs_bg ours ip netns exec ours keepalived-rs -n -l -f /scenario/keepalived.conf -p /tmp/ours.pid
sleep 7
for d in ka ours; do weights "$d" >"/tmp/$d.early"; done
sleep 11
for d in ka ours; do weights "$d" >"/tmp/$d.late"; done
for d in ka ours; do kill "$(cat /tmp/$d.pid)"; done
sleep 2
for d in ka ours; do
    krs_export "$d.early" "/tmp/$d.early"
    krs_export "$d.late" "/tmp/$d.late"
    krs_export "$d.log" "/tmp/krs/$d.log"
done
krs_result first-probes-ran PASS
"#;
    let log = vm::run_scenario(
        "check-first-probes",
        script,
        &[("keepalived.conf", first_probes_conf().as_bytes())],
    )
    .expect("VM run");
    log.assert_pass();
    let text = |name: &str| log.file_text(name);
    // keepalived's own behaviour, so that the comparison is about it: the
    // failing first probes took their servers out at once, SMTP's not yet.
    let ka_early = text("ka.early");
    for entry in [
        "10.1.0.11:1 0",
        "10.1.0.13:3 0",
        "10.1.0.20:10 1",
        "127.0.0.1:8 1",
    ] {
        assert!(ka_early.contains(entry), "{entry} in {ka_early}");
    }
    assert!(
        text("ka.late").contains("10.1.0.20:10 0"),
        "{}",
        text("ka.late")
    );
    assert_eq!(
        text("ours.early"),
        ka_early,
        "weights after 7 s, ours then keepalived's"
    );
    assert_eq!(text("ours.late"), text("ka.late"), "weights after 18 s");
    // The checkers' lines, without timestamps, in any order.
    let ka_lines = checker_lines(&text("ka.log"));
    assert!(
        ka_lines.contains(&"TCP_CHECK on service [10.1.0.11]:tcp:1 failed.".to_string()),
        "{ka_lines:#?}"
    );
    assert_eq!(
        checker_lines(&text("ours.log")),
        ka_lines,
        "checker log lines"
    );
    vm::note(&log.timings());
}

/// Real servers on the daemon's own addresses (10.1.0.11 and 10.1.0.12 on
/// lo; 10.1.0.0/24 otherwise leads into a dummy link). The scripts find
/// their namespace's state files by `ip netns identify`.
const LIFECYCLE_CONF: &str = r#"
global_defs {
    router_id life
    enable_script_security
    script_user root
}
track_file tf {
    file /tmp/tf.value
    weight 1
}
track_file t0 {
    file /tmp/tf.value
    weight 0
}
virtual_server 10.9.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    delay_loop 2
    retry 1
    delay_before_retry 1
    connect_timeout 1
    real_server 10.1.0.11 80 {
        weight 2
        notify_up "/scenario/notify.sh up-http"
        notify_down "/scenario/notify.sh down-http"
        HTTP_GET {
            url {
                path /index.html
                status_code 200
            }
        }
    }
    real_server 10.1.0.11 81 {
        inhibit_on_failure
        TCP_CHECK {
            connect_port 80
        }
    }
    real_server 10.1.0.13 82 {
        weight 7
        MISC_CHECK {
            misc_path "/scenario/misc.sh"
            misc_dynamic
        }
    }
    real_server 10.1.0.12 84 {
        inhibit_on_failure
        notify_down "/scenario/notify.sh down-ping"
        PING_CHECK {
        }
    }
    real_server 10.1.0.14 1 {
        weight 5
        FILE_CHECK {
            track_file tf
        }
    }
    real_server 10.1.0.14 2 {
        weight 5
        FILE_CHECK {
            track_file t0
        }
    }
    real_server 10.1.0.14 3 {
        weight 5
        FILE_CHECK {
            track_file tf
            weight 2 reverse
        }
    }
    real_server 10.1.0.14 4 {
        weight 5
        inhibit_on_failure
        FILE_CHECK {
            track_file tf
            weight 3
        }
    }
}
"#;

const NOTIFY_SH: &str = "#!/bin/sh\necho \"$*\" >>\"/tmp/notify.$(ip netns identify $$)\"\n";
const MISC_SH: &str = "#!/bin/sh\nexit \"$(cat /tmp/misc.$(ip netns identify $$))\"\n";

#[test]
fn lifecycle_matches_keepalived() {
    if !vm::require_daemon() {
        return;
    }
    let script = r#". /lib/krs/lib.sh
mkdir -p /tmp/www
echo hello >/tmp/www/index.html
httpd_start() { ip netns exec "$1" busybox httpd -f -p 10.1.0.11:80 -h /tmp/www & echo $! >"/tmp/httpd.$1"; }
for d in ka ours; do
    ip netns add "$d"
    ip -n "$d" link set lo up
    ip -n "$d" link add d0 type dummy
    ip -n "$d" link set d0 up
    ip -n "$d" addr add 10.1.0.2/24 dev d0
    ip -n "$d" addr add 10.1.0.11/32 dev lo
    ip -n "$d" addr add 10.1.0.12/32 dev lo
    echo 0 >"/tmp/misc.$d"
    httpd_start "$d"
done
echo 0 >/tmp/tf.value
weights() { ip netns exec "$1" ipvsadm -Ln | awk '$1 == "->" && $2 != "RemoteAddress:Port" { print $2, $4 }' | sort | tr '\n' ';'; }
snap() { for d in ka ours; do echo "$1 $(weights "$d")" >>"/tmp/$d.tables"; done; }
krs_bg ka ip netns exec ka keepalived -n -l -C -f /scenario/keepalived.conf -p /tmp/ka.pid -c /tmp/ka_check.pid
krs_bg ours ip netns exec ours keepalived-rs -n -l -f /scenario/keepalived.conf -p /tmp/ours.pid
sleep 8
snap up
# Everything fails or changes: httpd stops, the script exits 1, the
# pinged address goes, the file says 5.
for d in ka ours; do
    kill "$(cat "/tmp/httpd.$d")"
    echo 1 >"/tmp/misc.$d"
    ip -n "$d" addr del 10.1.0.12/32 dev lo
done
echo 5 >/tmp/tf.value
sleep 10
snap down
# Everything comes back; the script asks for weight 3, the file says -7.
for d in ka ours; do
    httpd_start "$d"
    echo 5 >"/tmp/misc.$d"
    ip -n "$d" addr add 10.1.0.12/32 dev lo
done
echo -7 >/tmp/tf.value
sleep 10
snap back
echo -1 >/tmp/tf.value
sleep 5
snap minus-one
echo -3000000000 >/tmp/tf.value
sleep 5
snap out-of-range
for d in ka ours; do kill "$(cat "/tmp/$d.pid")"; done
sleep 2
for d in ka ours; do
    kill "$(cat "/tmp/httpd.$d")"
    krs_export "$d.tables" "/tmp/$d.tables"
    krs_export "$d.log" "/tmp/krs/$d.log"
    krs_export "$d.notify" "/tmp/notify.$d"
done
krs_result lifecycle-ran PASS
"#;
    let log = vm::run_scenario(
        "check-lifecycle",
        script,
        &[
            ("keepalived.conf", LIFECYCLE_CONF.as_bytes()),
            ("notify.sh", NOTIFY_SH.as_bytes()),
            ("misc.sh", MISC_SH.as_bytes()),
        ],
    )
    .expect("VM run");
    log.assert_pass();
    let text = |name: &str| log.file_text(name);
    let ka_tables = text("ka.tables");
    // keepalived's own answers, so that the comparison is about them.
    for expected in [
        "down 10.1.0.11:81 0;",
        "10.1.0.14:1 10;",
        "back 10.1.0.11:80 2;",
        "10.1.0.13:82 3;",
        "10.1.0.14:3 19;",
    ] {
        assert!(ka_tables.contains(expected), "{expected} in\n{ka_tables}");
    }
    let steps = |t: &str| t.lines().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        steps(&text("ours.tables")),
        steps(&ka_tables),
        "tables, ours then keepalived's"
    );
    let ka_notify = text("ka.notify");
    assert!(
        ka_notify.contains("down-http") && ka_notify.contains("up-http"),
        "{ka_notify}"
    );
    assert_eq!(text("ours.notify"), ka_notify, "notify scripts run");
    let ka_lines = checker_lines(&text("ka.log"));
    assert!(ka_lines.len() >= 10, "{ka_lines:#?}");
    assert_eq!(
        checker_lines(&text("ours.log")),
        ka_lines,
        "checker log lines"
    );
    vm::note(&log.timings());
}
