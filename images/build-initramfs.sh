#!/usr/bin/env bash
# Build the x86_64 IPVS test initramfs (gzip'd newc cpio) and copy the kernel
# next to it.
#
#   images/build-initramfs.sh [-o OUTDIR] [-b BINARY] [-k KVER] [-f]
#
#   -o OUTDIR  output directory (env KRS_VM_OUT; default $CARGO_TARGET_DIR/vm,
#              i.e. target/vm in the repo)
#   -b BINARY  the static keepalived-rs binary to put in the image (env
#              KRS_BINARY; default $CARGO_TARGET_DIR/x86_64-unknown-linux-musl/
#              release/keepalived from `cargo build --release --target
#              x86_64-unknown-linux-musl`). A missing binary is a warning: the
#              image is built without /usr/bin/keepalived-rs.
#   -k KVER    kernel version (default: newest /boot/vmlinuz-* with modules)
#   -f         rebuild even when the inputs did not change
#
# Outputs in OUTDIR: base.cpio.gz, vmlinuz, base.stamp (input fingerprint),
# base.manifest (what went in). The image is rebuilt only when the
# fingerprint of its inputs (this script, images/rootfs/, every copied host
# file's path+size+mtime, the project binary) changes.
#
# The image holds Debian's kernel modules (ip_vs and every scheduler, the
# nf_conntrack closure, veth, bridge, macvlan, nlmon, ...), busybox with its
# applet links, iproute2's ip, ipvsadm, strace, tcpdump (when installed), the
# real keepalived + genhash, their shared libraries, the project binary and
# images/rootfs/ (the generic /init and /lib/krs/*.sh). A scenario is added at
# boot time as a second, concatenated cpio (see images/run-vm.sh).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac

OUT=${KRS_VM_OUT:-$TARGET_DIR/vm}
BINARY=${KRS_BINARY:-$TARGET_DIR/x86_64-unknown-linux-musl/release/keepalived}
KVER=${KRS_KVER:-}
FORCE=0
while getopts "o:b:k:fh" opt; do
    case $opt in
    o) OUT=$OPTARG ;;
    b) BINARY=$OPTARG ;;
    k) KVER=$OPTARG ;;
    f) FORCE=1 ;;
    *)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
    esac
done

die() {
    echo "build-initramfs: $*" >&2
    exit 1
}
log() { echo "build-initramfs: $*" >&2; }

# ------------------------------------------------------------- inputs --

if [ -z "$KVER" ]; then
    for f in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
        k=${f#/boot/vmlinuz-}
        if [ -f "/lib/modules/$k/modules.dep" ]; then
            KVER=$k
            break
        fi
    done
fi
[ -n "$KVER" ] || die "no /boot/vmlinuz-* with /lib/modules/<kver>/modules.dep (apt-get install linux-image-amd64)"
KERNEL=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
[ -r "$KERNEL" ] || die "cannot read $KERNEL"

# Modules: REQUIRED must exist; OPTIONAL are taken when the kernel has them
# (ip_vs_twos is not built in Debian 12's 6.1 kernel, for example).
REQUIRED_MODULES=(
    ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr
    ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh
    ip_vs_pe_sip nf_conntrack veth bridge
)
OPTIONAL_MODULES=(
    ip_vs_twos macvlan ipv6 nlmon dummy ipip ip6_tunnel fou fou6 ip_gre
)

# Programs: path in the image = path on the host. REQUIRED must exist.
REQUIRED_PROGS=(/usr/sbin/ip /usr/sbin/ipvsadm /usr/sbin/keepalived)
OPTIONAL_PROGS=(/usr/bin/strace /usr/bin/genhash /usr/bin/tcpdump /usr/sbin/tcpdump)
# bash is /bin/sh in the image: Debian's busybox ash prefers its own applets
# over PATH, so `ip` in an ash script would be busybox ip (no netns).
REQUIRED_PROGS+=(/bin/bash)
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && [ -x "$BUSYBOX" ] || die "busybox not found (apt-get install busybox-static)"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
    ldd "$BUSYBOX" 2>&1 | grep -q 'not a dynamic' ||
    die "$BUSYBOX is not static (apt-get install busybox-static)"
for p in "${REQUIRED_PROGS[@]}"; do
    [ -x "$p" ] || die "missing $p (apt-get install iproute2 ipvsadm keepalived)"
done
PROGS=("${REQUIRED_PROGS[@]}")
for p in "${OPTIONAL_PROGS[@]}"; do
    if [ -x "$p" ]; then PROGS+=("$p"); else log "optional $p not installed, skipped"; fi
done
if [ -f "$BINARY" ]; then
    BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
else
    log "warning: project binary $BINARY not found; image without keepalived-rs"
    log "         (cargo build --release --target x86_64-unknown-linux-musl)"
    BINARY=""
fi

# Module closure, in load order, via kmod on the host.
MODS=()   # top-level names to modprobe in the VM
KOS=()    # every .ko file to copy
add_module() { # name required(0/1)
    local m=$1 req=$2 out line
    if ! out=$(modprobe -S "$KVER" -d / --show-depends --ignore-install "$m" 2>&1); then
        [ "$req" = 1 ] && die "module $m not found for $KVER: $out"
        log "optional module $m not in $KVER, skipped"
        return 0
    fi
    case $out in
    builtin*)
        log "module $m is built in"
        return 0
        ;;
    esac
    while IFS= read -r line; do
        case $line in
        insmod\ *)
            line=${line#insmod }
            line=${line%% *}
            KOS+=("$line")
            ;;
        esac
    done <<<"$out"
    MODS+=("$m")
}
for m in "${REQUIRED_MODULES[@]}"; do add_module "$m" 1; done
for m in "${OPTIONAL_MODULES[@]}"; do add_module "$m" 0; done
mapfile -t KOS < <(printf '%s\n' "${KOS[@]}" | awk '!seen[$0]++')

# Shared libraries (and the ELF interpreter) of every dynamic program.
libs_of() {
    ldd "$1" 2>/dev/null | awk '
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $1 ~ /^\// { print $1 }'
}
LIBS=()
for p in "${PROGS[@]}"; do
    mapfile -t -O "${#LIBS[@]}" LIBS < <(libs_of "$p")
done
mapfile -t LIBS < <(printf '%s\n' "${LIBS[@]}" | sort -u)

EXTRA_FILES=()
for f in /etc/services /etc/protocols /etc/iproute2/rt_tables /etc/iproute2/rt_protos \
    /etc/iproute2/rt_scopes /etc/iproute2/rt_realms /etc/iproute2/group; do
    [ -f "$f" ] && EXTRA_FILES+=("$f")
done

# ---------------------------------------------------------- fingerprint --

fingerprint() {
    {
        echo "kver $KVER"
        sha256sum <"$0"
        (cd "$HERE/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
        for f in "$KERNEL" "$BUSYBOX" "${PROGS[@]}" "${LIBS[@]}" "${KOS[@]}" "${EXTRA_FILES[@]}" \
            ${BINARY:+"$BINARY"} "$MODDIR/modules.builtin" "$MODDIR/modules.order"; do
            stat -L -c '%n %s %Y' "$f"
        done
        echo "binary ${BINARY:-none}"
        echo "mods ${MODS[*]}"
    } | sha256sum | cut -d' ' -f1
}

mkdir -p "$OUT"
exec 8>"$OUT/.build.lock"
flock -w 600 8 || die "timed out waiting for $OUT/.build.lock"

STAMP=$(fingerprint)
if [ "$FORCE" = 0 ] && [ -f "$OUT/base.cpio.gz" ] && [ -f "$OUT/vmlinuz" ] &&
    [ "$(cat "$OUT/base.stamp" 2>/dev/null)" = "$STAMP" ]; then
    log "up to date: $OUT/base.cpio.gz"
    echo "$OUT"
    exit 0
fi

# -------------------------------------------------------------- build --

T0=$(date +%s.%N)
ROOT=$(mktemp -d "$OUT/.root.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT

mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,var,root,scenario}
mkdir -p "$ROOT/etc/keepalived" "$ROOT/etc/krs" "$ROOT/lib/x86_64-linux-gnu"
ln -s ../run "$ROOT/var/run"
ln -s ../tmp "$ROOT/var/tmp"

# busybox and its applets (/bin); real tools win over applets of the same
# name: iproute2's ip is needed for `ip netns`.
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] && continue
    ln -s busybox "$ROOT/bin/$a"
done
for p in "${PROGS[@]}"; do
    mkdir -p "$ROOT$(dirname "$p")"
    cp -L "$p" "$ROOT$p"
    [ "$(dirname "$p")" = /bin ] || rm -f "$ROOT/bin/$(basename "$p")"
done
ln -sf bash "$ROOT/bin/sh"
# The kernel's module autoloader calls /sbin/modprobe.
for a in modprobe insmod rmmod lsmod depmod; do ln -s ../bin/busybox "$ROOT/sbin/$a"; done
for l in "${LIBS[@]}"; do
    mkdir -p "$ROOT$(dirname "$l")"
    cp -L "$l" "$ROOT$l"
done
for f in "${EXTRA_FILES[@]}"; do
    mkdir -p "$ROOT$(dirname "$f")"
    cp -L "$f" "$ROOT$f"
done

# The project binary; argv[0] dispatch wants "genhash" for the genhash tool.
if [ -n "$BINARY" ]; then
    mkdir -p "$ROOT/opt/keepalived-rs"
    cp "$BINARY" "$ROOT/opt/keepalived-rs/keepalived"
    ln -s keepalived "$ROOT/opt/keepalived-rs/genhash"
    ln -s /opt/keepalived-rs/keepalived "$ROOT/usr/bin/keepalived-rs"
fi

# Kernel modules + depmod on the image tree.
for k in "${KOS[@]}"; do
    mkdir -p "$ROOT$(dirname "$k")"
    cp "$k" "$ROOT$k"
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$MODDIR/$f" ] && cp "$MODDIR/$f" "$ROOT$MODDIR/$f"
done
depmod -b "$ROOT" "$KVER"
printf '%s\n' "${MODS[@]}" >"$ROOT/etc/krs/modules"
# Load order (dependencies and softdeps first), as kmod on the host says;
# busybox modprobe ignores softdeps (libcrc32c needs crc32c loaded first).
printf '%s\n' "${KOS[@]}" >"$ROOT/etc/krs/modules.load"
echo "$KVER" >"$ROOT/etc/krs/kver"

# Minimal /etc.
cat >"$ROOT/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
keepalived_script:x:998:998:keepalived scripts:/nonexistent:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat >"$ROOT/etc/group" <<'GR'
root:x:0:
keepalived_script:x:998:
nogroup:x:65534:
GR
printf '127.0.0.1 localhost krs-vm\n::1 localhost ip6-localhost\n' >"$ROOT/etc/hosts"
echo krs-vm >"$ROOT/etc/hostname"
: >"$ROOT/etc/fstab"

# /init and the scenario helpers.
cp -a "$HERE/rootfs/." "$ROOT/"
chmod 755 "$ROOT/init"

# /dev/console lets the kernel give /init its console before devtmpfs is
# mounted (needs root; /init reopens the console anyway).
mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || true

{
    echo "kernel $KERNEL ($KVER)"
    echo "busybox $BUSYBOX"
    printf 'prog %s\n' "${PROGS[@]}"
    echo "binary ${BINARY:-none}"
    printf 'module %s\n' "${MODS[@]}"
    printf 'ko %s\n' "${KOS[@]}"
    printf 'lib %s\n' "${LIBS[@]}"
} >"$ROOT/etc/krs/manifest"

# GNU cpio when installed, else busybox's; both write newc with -R 0:0.
if command -v cpio >/dev/null && cpio --version 2>/dev/null | grep -q GNU; then
    CPIO=(cpio -o -H newc -R 0:0 --quiet)
else
    CPIO=("$BUSYBOX" cpio -o -H newc -R 0:0)
fi
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | "${CPIO[@]}") |
    gzip -6 -n >"$OUT/base.cpio.gz.tmp"
mv "$OUT/base.cpio.gz.tmp" "$OUT/base.cpio.gz"
cp "$KERNEL" "$OUT/vmlinuz"
cp "$ROOT/etc/krs/manifest" "$OUT/base.manifest"
echo "$STAMP" >"$OUT/base.stamp"

T1=$(date +%s.%N)
log "built $OUT/base.cpio.gz: $(stat -c %s "$OUT/base.cpio.gz") bytes gzip," \
    "$(du -sb "$ROOT" | cut -f1) bytes unpacked, ${#MODS[@]} modules (${#KOS[@]} .ko)," \
    "in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s"
echo "$OUT"
