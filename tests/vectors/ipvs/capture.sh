#!/usr/bin/env bash
# Regenerate tests/vectors/ipvs/*.hex: netlink messages ipvsadm sends to the
# kernel's IPVS generic netlink family, and the kernel's replies.
#
#   sudo tests/vectors/ipvs/capture.sh [OUT_DIR]
#
# OUT_DIR defaults to this directory (the committed vectors); another
# directory lets you compare a fresh capture without touching them.
#
# (KRS_KEEP_TRACES=DIR keeps the raw strace transcripts.)
#
# The host kernel has no IPVS, so this boots the test VM (images/run-vm.sh;
# Debian's kernel, ipvsadm, strace) with capture-vm.sh as the scenario. In
# the VM every ipvsadm command runs under
#   strace -f -x -s 65535 -e trace=sendmsg,recvmsg,sendto,recvfrom -e read=all -e write=all
# and the traces come back as one tar file over the serial console;
# strace2hex.py (python3) cuts them into one request and one reply vector
# per case. nlmsg_seq/nlmsg_pid (and the family id) differ from run to run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
DEST=${1:-$HERE}
mkdir -p "$DEST"
TMP=$(mktemp -d /tmp/krs-ipvs-cap.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

if ! KRS_VM_EXPORT_DIR=$TMP/export KRS_VM_TIMEOUT=${KRS_VM_TIMEOUT:-400} \
    "$REPO/images/run-vm.sh" "$HERE/capture-vm.sh" "$TMP/console.log"; then
    echo "capture: VM run failed; console log tail:" >&2
    tail -n 40 "$TMP/console.log" | tr -d '\r' >&2
    exit 1
fi
mkdir -p "$TMP/cap"
tar -xf "$TMP/export/captures.tar" -C "$TMP/cap"
# The image copies the host's packages; name their versions.
dpkg-query -W -f='${Package} ${Version}\n' ipvsadm libnl-3-200 libnl-genl-3-200 linux-image-amd64 \
    >>"$TMP/cap/versions.txt" 2>/dev/null || true
if [ -n "${KRS_KEEP_TRACES:-}" ]; then
    mkdir -p "$KRS_KEEP_TRACES"
    cp -a "$TMP/cap/." "$KRS_KEEP_TRACES/"
    echo "traces kept in $KRS_KEEP_TRACES"
fi
# Convert into a scratch directory first: a failed conversion leaves the
# committed vectors alone.
mkdir -p "$TMP/hex"
python3 "$HERE/strace2hex.py" "$TMP/cap" "$TMP/hex"
rm -f "$DEST"/*.hex
cp "$TMP/hex"/*.hex "$TMP/hex/README.md" "$DEST/"
