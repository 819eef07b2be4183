#!/bin/bash
# Regenerate layout.request.hex: the batch nft(8) sends for layout.nft
# (the no_accept table of src/netlink/nft.rs), captured with strace in a
# scratch network namespace. Run as root from any directory; needs nft,
# strace and python3. See README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ns="krs-nftcap-$$"
tmp=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add "$ns"
# fd 3 is nft's netlink socket; -e write=3 dumps every byte sent on it.
ip netns exec "$ns" strace -f -e trace=sendmsg -e write=3 -o "$tmp/trace" \
    nft -f "$here/layout.nft"
python3 - "$tmp/trace" "$here/layout.request.hex" "$(nft --version)" <<'PY'
import re, struct, sys
trace, out, version = sys.argv[1:4]
data = b""
for line in open(trace):
    m = re.match(r"\s*(?:\d+\s+)?\|\s+[0-9a-f]{5}\s+((?:[0-9a-f]{2}\s{1,2})+)", line)
    if m:
        data += bytes.fromhex(m.group(1).replace(" ", ""))
lines = ["# nft -f layout.nft: the batch nft sent (one datagram), one message a line",
         "# " + version,
         "# [i] len type flags seq"]
msgs = []
off = 0
while off < len(data):
    ln, ty, fl, seq = struct.unpack_from("<IHHI", data, off)
    lines.append(f"# [{len(msgs)}] {ln} 0x{ty:04x} 0x{fl:04x} {seq}")
    msgs.append(data[off:off + ln].hex())
    off += (ln + 3) & ~3
open(out, "w").write("\n".join(lines + msgs) + "\n")
print(f"{len(msgs)} messages, {len(data)} bytes -> {out}")
PY
