//! Proves the IPVS test VM with ipvsadm alone (no daemon): LVS-DR and
//! LVS-NAT services with two real servers, IPv4 and IPv6, served through the
//! VIP to a client namespace. Needs root and qemu (see tests/vm/mod.rs);
//! skipped otherwise, failed under KEEPALIVED_RS_FULL_TEST=1.

mod vm;

/// Shell shared by both scenarios: the image's tools answer.
const TOOLS: &str = r#"
. /lib/krs/topo.sh
krs_check tool-ipvsadm ipvsadm --version
krs_check tool-keepalived keepalived --version
krs_check tool-ip-netns ip netns list
krs_check tool-strace strace -V
krs_check ipvs-proc test -r /proc/net/ip_vs
"#;

const DR: &str = r#"
topo_dr 1
topo_vip_add
topo_rs_start 80
d1() { in_ns director1 "$@"; }
d1 ipvsadm -A -t "$VIP4:80" -s rr
d1 ipvsadm -a -t "$VIP4:80" -r "$RS1_4" -g
d1 ipvsadm -a -t "$VIP4:80" -r "$RS2_4" -g
d1 ipvsadm -A -t "[$VIP6]:80" -s rr
d1 ipvsadm -a -t "[$VIP6]:80" -r "[$RS1_6]:80" -g
d1 ipvsadm -a -t "[$VIP6]:80" -r "[$RS2_6]:80" -g
list=$(d1 ipvsadm -Ln)
echo "$list"
krs_contains dr-list-service "TCP  $VIP4:80 rr" "$list"
krs_contains dr-list-rs1 "-> $RS1_4:80                 Route" "$list"
krs_contains dr-list-rs2 "-> $RS2_4:80                 Route" "$list"
krs_contains dr-list-v6 "TCP  [$VIP6]:80 rr" "$list"
check_served dr-ipv4-served "$VIP4" 80 6
check_served dr-ipv6-served "$VIP6" 80 6
# The kernel folds its per-CPU counters into the totals ipvsadm reads from
# the rate estimator, every 2 s: read until the requests show (bounded).
for _ in 1 2 3 4 5 6; do
    stats=$(d1 ipvsadm -Ln --stats -t "$VIP4:80")
    inout=$(echo "$stats" | awk '$1 == "TCP" { print $4 "/" $5 }')
    case $inout in 0/*) sleep 1 ;; *) break ;; esac
done
echo "$stats"
# Direct return: the replies bypass the director (OutPkts 0), requests not.
case $inout in
0/* | */[1-9]*) krs_result dr-direct-return FAIL "InPkts/OutPkts $inout" ;;
*) krs_result dr-direct-return PASS "InPkts/OutPkts $inout" ;;
esac
"#;

const NAT: &str = r#"
topo_nat 1
topo_vip_add
topo_rs_start 8080
d1() { in_ns director1 "$@"; }
d1 ipvsadm -A -t "$VIP4:80" -s rr
d1 ipvsadm -a -t "$VIP4:80" -r "$RS1_4:8080" -m
d1 ipvsadm -a -t "$VIP4:80" -r "$RS2_4:8080" -m
d1 ipvsadm -A -t "[$VIP6]:80" -s wrr
d1 ipvsadm -a -t "[$VIP6]:80" -r "[$RS1_6]:8080" -m -w 1
d1 ipvsadm -a -t "[$VIP6]:80" -r "[$RS2_6]:8080" -m -w 1
list=$(d1 ipvsadm -Ln)
echo "$list"
krs_contains nat-list-rs1 "-> $RS1_4:8080               Masq" "$list"
krs_contains nat-list-rs2 "-> $RS2_4:8080               Masq" "$list"
krs_contains nat-list-v6 "TCP  [$VIP6]:80 wrr" "$list"
check_served nat-ipv4-served "$VIP4" 80 6
check_served nat-ipv6-served "$VIP6" 80 6
# The client cannot reach the real servers without the director.
if fetch "$RS1_4" 8080 >/dev/null; then
    krs_result nat-rs-hidden FAIL "client reached $RS1_4 directly"
else
    krs_result nat-rs-hidden PASS
fi
stats=$(d1 ipvsadm -Ln --stats -t "$VIP4:80")
echo "$stats"
inout=$(echo "$stats" | awk '$1 == "TCP" { print $4 "/" $5 }')
case $inout in
*/0 | 0/*) krs_result nat-replies-via-director FAIL "InPkts/OutPkts $inout" ;;
*) krs_result nat-replies-via-director PASS "InPkts/OutPkts $inout" ;;
esac
"#;

fn run(name: &str, body: &str, expect: &[&str]) {
    if !vm::require() {
        return;
    }
    let script = format!("{TOOLS}{body}");
    let log = vm::run_scenario(name, &script, &[]).unwrap_or_else(|e| panic!("{e}"));
    vm::note(&log.timings());
    log.assert_pass();
    for want in expect {
        assert!(
            log.result(want).is_some(),
            "result {want} missing; log {}",
            log.log_path.display()
        );
    }
    assert!(
        log.grep("IP Virtual Server version").next().is_some(),
        "ipvsadm -Ln output not in the console log"
    );
}

#[test]
fn vm_dr_ipvsadm_round_robin() {
    run(
        "smoke-dr",
        DR,
        &["dr-ipv4-served", "dr-ipv6-served", "dr-direct-return"],
    );
}

#[test]
fn vm_nat_ipvsadm_round_robin() {
    run(
        "smoke-nat",
        NAT,
        &["nat-ipv4-served", "nat-ipv6-served", "nat-rs-hidden"],
    );
}

#[test]
fn console_parser_reads_markers_and_files() {
    let text = "\u{1b}c\u{1b}[2JKRS-BOOT uptime=5.50 kver=6.1\r\n\
                noise\r\n\
                KRS-READY uptime=7.25\r\n\
                KRS-RESULT a PASS 1 2 3\r\n\
                KRS-RESULT b FAIL why not\r\n\
                KRS-FILE-BEGIN f.bin 5\r\n\
                KRS-B64 aGVsbG8=\r\n\
                KRS-FILE-END f.bin\r\n\
                KRS-DONE rc=3 uptime=9.00 pass=1 fail=1\r\n";
    let log = vm::parse_console("t", text);
    assert_eq!(log.guest_init, Some(5.5));
    assert_eq!(log.guest_ready, Some(7.25));
    assert_eq!(log.guest_done, Some(9.0));
    assert_eq!(log.rc, 3);
    assert_eq!(log.results.len(), 2);
    assert!(log.results[0].pass && log.results[0].detail == "1 2 3");
    assert!(!log.results[1].pass && log.results[1].detail == "why not");
    assert_eq!(log.files["f.bin"], b"hello");
    assert!(!log.passed());
    assert_eq!(vm::base64_decode("AAEC/w=="), [0, 1, 2, 255]);
}
