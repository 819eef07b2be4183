#!/usr/bin/env bash
# Benchmark (prints figures, asserts nothing): parse time and peak RSS of
# `keepalived -t` on a generated config with 1,000 virtual servers x 10 real
# servers (HTTP_GET + TCP_CHECK), for this build and, when installed, for
# Debian's keepalived 2.2.7 on the same file.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The shipped binary: static musl (its allocator differs from glibc's).
target_dir=${CARGO_TARGET_DIR:-target}
bin=${KEEPALIVED_RS_BIN:-$target_dir/x86_64-unknown-linux-musl/release/keepalived}
[ -x "$bin" ] || cargo build --release --quiet --target x86_64-unknown-linux-musl
work=$(mktemp -d /tmp/kars-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
conf=$work/big.conf

python3 - "$conf" <<'PY'
import sys
vs, rs = 1000, 10
with open(sys.argv[1], "w") as f:
    f.write("global_defs {\n    router_id bench\n}\n")
    # No vrrp_instance: keepalived -t checks that the interface exists on
    # this host, which would make its exit status depend on the machine.
    for v in range(vs):
        f.write(f"virtual_server 10.100.{v // 250}.{v % 250 + 1} 80 {{\n    delay_loop 6\n    lb_algo wrr\n"
                "    lb_kind DR\n    protocol TCP\n    persistence_timeout 50\n")
        for r in range(rs):
            f.write(f"    real_server 10.101.{v // 25}.{(v % 25) * 10 + r + 1} 80 {{\n        weight {r + 1}\n")
            if r % 2:
                f.write("        TCP_CHECK {\n            connect_port 80\n            connect_timeout 3\n"
                        "            retry 3\n            delay_before_retry 3\n        }\n")
            else:
                f.write("        HTTP_GET {\n            url {\n              path /index.html\n"
                        "              digest 00f6c72507d2480429e5f32dbf2de638\n            }\n"
                        "            url {\n              path /health\n              status_code 200-299\n            }\n"
                        "            connect_timeout 3\n            retry 3\n            delay_before_retry 3\n        }\n")
            f.write("    }\n")
        f.write("}\n")
PY

measure() { # label, command...
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
label, cmd = sys.argv[1], sys.argv[2:]
runs = []
for _ in range(5):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs.append(time.perf_counter() - t)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
runs.sort()
print(f"{label:<28} median {runs[2]*1000:8.1f} ms   min {runs[0]*1000:8.1f} ms   peak RSS {rss/1024:7.1f} MiB   exit {p.returncode}")
PY
}

echo "config: $(wc -l < "$conf") lines, $(du -h "$conf" | cut -f1), 1000 virtual servers x 10 real servers"
measure "keepalived-rs -t (musl)" "$bin" -t -f "$conf"
if [ -x /usr/sbin/keepalived ]; then
    measure "keepalived 2.2.7 -t" /usr/sbin/keepalived -t -f "$conf"
else
    echo "keepalived 2.2.7 -t           (not installed; apt-get install keepalived to compare)"
fi
