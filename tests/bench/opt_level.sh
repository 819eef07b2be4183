#!/usr/bin/env bash
# Picks the release opt-level: for each candidate, the x86_64 musl binary's
# size and the instructions (callgrind, deterministic under load) that
# `keepalived -t` needs for a 200 x 10 generated config. Run by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
work=$(mktemp -d /tmp/kars-opt.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$work/mid.conf" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for v in range(200):
        f.write(f"virtual_server 10.100.{v // 250}.{v % 250 + 1} 80 {{\n    delay_loop 6\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n")
        for r in range(10):
            f.write(f"    real_server 10.101.{v // 25}.{(v % 25) * 10 + r + 1} 80 {{\n        weight 1\n")
            f.write("        HTTP_GET {\n            url {\n              path /index.html\n              digest 00f6c72507d2480429e5f32dbf2de638\n            }\n            connect_timeout 3\n        }\n    }\n")
        f.write("}\n")
PY
printf '%-10s %12s %16s\n' opt-level "size (B)" "instructions"
for level in s z 2 3; do
    CARGO_PROFILE_RELEASE_OPT_LEVEL=$level CARGO_TARGET_DIR="$work/target-$level" \
        cargo build --release --quiet --target x86_64-unknown-linux-musl
    bin=$work/target-$level/x86_64-unknown-linux-musl/release/keepalived
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$level" "$bin" -t -f "$work/mid.conf" 2>"$work/vg.$level" || true
    ir=$(grep -oE 'Collected : [0-9]+' "$work/vg.$level" | grep -oE '[0-9]+' || echo "?")
    printf '%-10s %12s %16s\n' "$level" "$(stat -c %s "$bin")" "$ir"
done
