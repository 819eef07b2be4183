# Scenario helpers for the keepalived-rs test VM (POSIX sh; /bin/sh is bash
# in the image). Source it:
#
#   . /lib/krs/lib.sh
#
# krs_result NAME PASS|FAIL [DETAIL...]   print a result marker
# krs_check NAME CMD [ARGS...]            run CMD; PASS if it exits 0
# krs_expect NAME WANT GOT                PASS if the strings are equal
# krs_contains NAME NEEDLE HAYSTACK       PASS if HAYSTACK contains NEEDLE
# krs_export NAME FILE                    send FILE to the host (base64 lines)
# krs_log MSG...                          a plain, prefixed log line
# krs_wait_for SECS CMD [ARGS...]         retry CMD every 0.2 s until it
#                                         succeeds or SECS pass (rc 0/1)
# krs_bg NAME CMD [ARGS...]               start CMD in the background, output
#                                         to /tmp/krs/NAME.log, pid recorded
# krs_kill_all                            kill what krs_bg started, by pid
#
# Result names are single words ([A-Za-z0-9_.:-]); the host parser splits
# `KRS-RESULT NAME STATUS DETAIL`.

KRS_DIR=/tmp/krs
mkdir -p "$KRS_DIR"
: >>"$KRS_DIR/results"
: >>"$KRS_DIR/pids"

krs_log() { echo "KRS-LOG $*"; }

krs_result() {
    _n=$1 _s=$2
    shift 2
    echo "KRS-RESULT $_n $_s $*"
    echo "$_n $_s" >>"$KRS_DIR/results"
    [ "$_s" = PASS ]
}

krs_check() {
    _n=$1
    shift
    if _out=$("$@" 2>&1); then
        krs_result "$_n" PASS
    else
        _rc=$?
        krs_result "$_n" FAIL "rc=$_rc: $(echo "$_out" | tail -n 3 | tr '\n' ' ' | cut -c1-300)"
    fi
}

krs_expect() {
    if [ "$2" = "$3" ]; then
        krs_result "$1" PASS "$3"
    else
        krs_result "$1" FAIL "want '$2' got '$3'"
    fi
}

krs_contains() {
    case $3 in
    *"$2"*) krs_result "$1" PASS ;;
    *) krs_result "$1" FAIL "no '$2' in: $(echo "$3" | tr '\n' ' ' | cut -c1-300)" ;;
    esac
}

# The host (images/run-vm.sh KRS_VM_EXPORT_DIR, tests/vm ScenarioLog::files)
# decodes these blocks back into files.
krs_export() {
    _n=$1 _f=$2
    if [ ! -f "$_f" ]; then
        echo "KRS-LOG export $_n: no file $_f"
        return 1
    fi
    echo "KRS-FILE-BEGIN $_n $(wc -c <"$_f")"
    base64 "$_f" | sed 's/^/KRS-B64 /'
    echo "KRS-FILE-END $_n"
}

krs_wait_for() {
    _limit=$1
    shift
    _tries=$((_limit * 5))
    while [ "$_tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        _tries=$((_tries - 1))
        sleep 0.2
    done
    return 1
}

krs_bg() {
    _n=$1
    shift
    "$@" >"$KRS_DIR/$_n.log" 2>&1 &
    echo "$! $_n" >>"$KRS_DIR/pids"
}

krs_kill_all() {
    while read -r _p _n; do
        kill "$_p" 2>/dev/null
    done <"$KRS_DIR/pids"
    : >"$KRS_DIR/pids"
}
