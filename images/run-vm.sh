#!/usr/bin/env bash
# Boot the keepalived-rs test VM with one scenario.
#
#   images/run-vm.sh SCENARIO.sh LOG [FILE[:DEST]]...
#
# SCENARIO.sh becomes /scenario/run.sh in the VM (run by /init with /bin/sh,
# which is bash there); each FILE is copied to DEST (absolute, or relative to /scenario;
# default /scenario/<basename>). The serial console (ttyS0) is written to
# LOG. The base image is built (cached) by images/build-initramfs.sh; the
# scenario travels in a second gzip'd cpio concatenated after it.
#
# Exit status: 0 when the scenario ended with rc=0 and no KRS-RESULT FAIL;
# 1 when it ended otherwise; 2 when it never ended (timeout, crash, no
# KRS-DONE); 3 on a usage or setup error.
#
# Environment:
#   KRS_VM_OUT         image directory (default $CARGO_TARGET_DIR/vm)
#   KRS_BINARY         project binary for the image (see build-initramfs.sh)
#   KRS_VM_TIMEOUT     hard limit for the whole VM run, seconds (default 300)
#   KRS_VM_ACCEL       auto (default) | tcg | kvm. auto uses KVM only when a
#                      probe boot under KVM works (result cached in
#                      KRS_VM_OUT/accel.cache), else TCG.
#   KRS_VM_MEM         MiB (default 2048);  KRS_VM_SMP  CPUs (default 2)
#   KRS_VM_CPU         qemu -cpu model (default: host under KVM, qemu's
#                      default under TCG)
#   KRS_VM_EXPORT_DIR  if set, files the scenario sent with krs_export are
#                      decoded into this directory
#   KRS_VM_QUIET=1     do not echo the KRS-RESULT lines
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
OUT=${KRS_VM_OUT:-$TARGET_DIR/vm}
TIMEOUT=${KRS_VM_TIMEOUT:-300}
ACCEL=${KRS_VM_ACCEL:-auto}
MEM=${KRS_VM_MEM:-2048}
SMP=${KRS_VM_SMP:-2}
QEMU=${KRS_QEMU:-qemu-system-x86_64}
# One VM at a time on this machine (2 cores): a global lock.
LOCK=${KRS_VM_LOCK:-/tmp/keepalived-rs-vm.lock}

usage() {
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    exit 3
}
die() {
    echo "run-vm: $*" >&2
    exit 3
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ $# -ge 2 ] || usage
SCENARIO=$1
LOG=$2
shift 2
[ -f "$SCENARIO" ] || die "no scenario file $SCENARIO"
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-system-x86)"
case $TIMEOUT in '' | *[!0-9]*) die "KRS_VM_TIMEOUT must be whole seconds" ;; esac

T_START=$(now)
exec 9>"$LOCK"
flock -w $((TIMEOUT + 600)) 9 || die "timed out waiting for $LOCK"
T_LOCKED=$(now)

"$HERE/build-initramfs.sh" -o "$OUT" >/dev/null || die "image build failed"
T_BUILT=$(now)

WORK=$(mktemp -d /tmp/krs-vm.XXXXXX)
QPID=""
cleanup() {
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill "$QPID" 2>/dev/null
        sleep 0.5
        kill -9 "$QPID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 3' INT TERM

# ----------------------------------------------------- scenario archive --

mkdir -p "$WORK/root/scenario"
cp "$SCENARIO" "$WORK/root/scenario/run.sh"
for spec in "$@"; do
    src=${spec%%:*}
    dest=${spec#*:}
    [ "$dest" = "$spec" ] && dest=$(basename "$src")
    case $dest in /*) ;; *) dest=/scenario/$dest ;; esac
    [ -f "$src" ] || die "no file $src"
    mkdir -p "$WORK/root$(dirname "$dest")"
    cp "$src" "$WORK/root$dest"
done
if command -v cpio >/dev/null && cpio --version 2>/dev/null | grep -q GNU; then
    CPIO=(cpio -o -H newc -R 0:0 --quiet)
else
    CPIO=(busybox cpio -o -H newc -R 0:0)
fi
(cd "$WORK/root" && find . -mindepth 1 | LC_ALL=C sort | "${CPIO[@]}") | gzip -1 -n >"$WORK/scenario.cpio.gz" ||
    die "scenario cpio failed"
# Linux unpacks concatenated (compressed) cpio archives in order; later
# files win.
cat "$OUT/base.cpio.gz" "$WORK/scenario.cpio.gz" >"$WORK/initrd.gz"

# ------------------------------------------------------------- boot qemu --

# boot ACCEL LOG LIMIT [KERNEL_ARGS...]: start qemu, wait for it to exit (or
# LIMIT seconds, or 10 s after KRS-DONE), kill it by PID if needed.
# Returns 0 if qemu exited by itself.
boot() {
    local accel=$1 log=$2 limit=$3 initrd=$4
    shift 4
    local cpu=()
    if [ -n "${KRS_VM_CPU:-}" ]; then
        cpu=(-cpu "$KRS_VM_CPU")
    elif [ "$accel" = kvm ]; then
        cpu=(-cpu host)
    fi
    : >"$log"
    "$QEMU" -accel "$accel" "${cpu[@]}" -smp "$SMP" -m "$MEM" \
        -nic none -nographic -monitor none -serial "file:$log" -no-reboot \
        -kernel "$OUT/vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 quiet $*" \
        </dev/null >"$WORK/qemu.out" 2>&1 &
    QPID=$!
    local deadline done_at="" t
    deadline=$(($(date +%s) + limit))
    while kill -0 "$QPID" 2>/dev/null; do
        t=$(date +%s)
        if [ "$t" -ge "$deadline" ]; then
            echo "run-vm: qemu ($accel) still running after $limit s: killing pid $QPID" >&2
            kill "$QPID" 2>/dev/null
            sleep 1
            kill -9 "$QPID" 2>/dev/null
            wait "$QPID" 2>/dev/null
            QPID=""
            return 1
        fi
        if [ -z "$done_at" ] && grep -q '^KRS-DONE' "$log" 2>/dev/null; then
            done_at=$t
            deadline=$((t + 10 < deadline ? t + 10 : deadline))
        fi
        sleep 0.2
    done
    wait "$QPID" 2>/dev/null
    QPID=""
    return 0
}

# KVM only when it really boots here (a paravirtual /dev/kvm inside a nested
# VM aborts or hangs qemu): probe once with the base image alone, cache it.
pick_accel() {
    case $ACCEL in
    tcg | kvm)
        echo "$ACCEL"
        return
        ;;
    esac
    if [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        echo tcg
        return
    fi
    local key cache=$OUT/accel.cache
    key="$(uname -r) $("$QEMU" --version | head -n 1) $(stat -c %s "$OUT/vmlinuz")"
    if [ -f "$cache" ] && [ "$(head -n 1 "$cache")" = "$key" ]; then
        sed -n 2p "$cache"
        return
    fi
    local result=tcg
    if boot kvm "$WORK/probe.log" 20 "$OUT/base.cpio.gz" &&
        grep -q '^KRS-DONE rc=0' "$WORK/probe.log"; then
        result=kvm
    fi
    echo "run-vm: KVM probe: using $result" >&2
    printf '%s\n%s\n' "$key" "$result" >"$cache"
    echo "$result"
}

ACCEL_USED=$(pick_accel)
T_BOOT=$(now)
boot "$ACCEL_USED" "$LOG" "$TIMEOUT" "$WORK/initrd.gz" "krs.timeout=$((TIMEOUT > 20 ? TIMEOUT - 10 : TIMEOUT))"
T_END=$(now)

# --------------------------------------------------------------- verdict --

# Markers start lines; drop CRs and whatever precedes "KRS-" (escape codes).
tr -d '\r' <"$LOG" | sed '/^KRS-/!s/^.*\(KRS-[A-Z0-9-]* \)/\1/' >"$WORK/log.txt"
if [ -n "${KRS_VM_EXPORT_DIR:-}" ]; then
    mkdir -p "$KRS_VM_EXPORT_DIR"
    awk -v dir="$KRS_VM_EXPORT_DIR" -v work="$WORK" '
        /^KRS-FILE-BEGIN / { name = $2; n = 0; f = work "/exp." name; printf "" > f; next }
        /^KRS-B64 / && name != "" { print substr($0, 9) >> f; next }
        /^KRS-FILE-END / { close(f); print name; name = ""; next }' "$WORK/log.txt" |
        while read -r name; do
            base64 -d "$WORK/exp.$name" >"$KRS_VM_EXPORT_DIR/$name" ||
                echo "run-vm: export $name: bad base64" >&2
        done
fi
[ "${KRS_VM_QUIET:-0}" = 1 ] || grep -E '^KRS-(RESULT|MODULE-FAIL|DONE)' "$WORK/log.txt"

boot_up=$(sed -n 's/^KRS-BOOT uptime=\([0-9.]*\).*/\1/p' "$WORK/log.txt" | head -n 1)
done_line=$(grep '^KRS-DONE' "$WORK/log.txt" | tail -n 1)
echo "run-vm: accel=$ACCEL_USED lock_wait=$(secs "$T_START" "$T_LOCKED")s" \
    "image=$(secs "$T_LOCKED" "$T_BUILT")s vm=$(secs "$T_BOOT" "$T_END")s" \
    "guest_init_at=${boot_up:-?}s log=$LOG" >&2

if [ -z "$done_line" ]; then
    echo "run-vm: no KRS-DONE marker (timeout or crash); last lines:" >&2
    tail -n 20 "$WORK/log.txt" >&2
    exit 2
fi
if [ "$done_line" = "${done_line#KRS-DONE rc=0 }" ] || grep -q '^KRS-RESULT [^ ]* FAIL' "$WORK/log.txt"; then
    exit 1
fi
exit 0
