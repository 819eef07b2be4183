#!/usr/bin/env bash
# Release binary size for each opt-level, so the choice of
# [profile.release] opt-level in Cargo.toml can be rechecked as the code grows.
#
#   tests/bench/binary_size.sh [TARGET] [OPT_LEVEL...]
#
# TARGET defaults to x86_64-unknown-linux-musl; levels default to s z 2 3.
# Each level is built with CARGO_PROFILE_RELEASE_OPT_LEVEL (the rest of
# [profile.release] -- lto, codegen-units, panic, strip -- stays as in
# Cargo.toml) into its own target directory, so reruns only rebuild what
# changed. Not named ci_*.sh: tests/run.sh does not run it (4 full LTO builds).
set -euo pipefail

cd "$(dirname "$0")/../.."
target=${1:-x86_64-unknown-linux-musl}
shift || true
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(s z 2 3)

base=${CARGO_TARGET_DIR:-$PWD/target}/binary-size
configured=$(sed -n '/^\[profile.release\]/,/^\[/s/^opt-level *= *//p' Cargo.toml | tr -d '"')

declare -A size
for lvl in "${levels[@]}"; do
    echo "== building $target with opt-level=$lvl" >&2
    CARGO_TARGET_DIR="$base/opt-$lvl" CARGO_PROFILE_RELEASE_OPT_LEVEL="$lvl" \
        cargo build --quiet --release --locked --target "$target" --bin keepalived >&2
    size[$lvl]=$(stat -c %s "$base/opt-$lvl/$target/release/keepalived")
done

ref=${size[s]:-${size[${levels[0]}]}}
reflvl=s; [ -n "${size[s]:-}" ] || reflvl=${levels[0]}
printf '\nkeepalived release binary, %s, commit %s (Cargo.toml opt-level = %s)\n' \
    "$target" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "${configured:-?}"
for lvl in "${levels[@]}"; do
    echo "$lvl ${size[$lvl]}"
done | awk -v ref="$ref" -v reflvl="$reflvl" '
    BEGIN { printf "%-10s %12s %10s %10s\n", "opt-level", "bytes", "KiB", "vs " reflvl }
    { printf "%-10s %12d %10.1f %+9.1f%%\n", $1, $2, $2 / 1024, ($2 - ref) * 100 / ref }'
