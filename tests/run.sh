#!/usr/bin/env bash
# The test command for keepalived-rs:
#
#   sudo tests/run.sh
#
# On a fresh Debian 12 machine (as root) it installs what the tests need, then
# runs, in order: rustfmt, clippy, every unit and integration test, the static
# musl release builds for x86_64 and aarch64 (printing size and `file` output),
# and the CI benchmarks (tests/bench/ci_*.sh). It is idempotent: on a rerun
# with everything present it touches neither apt nor the network.
#
# Tests see KEEPALIVED_RS_FULL_TEST=1. It means "this is the real run": a test
# that needs root, network namespaces, the VM image or a real keepalived must
# FAIL when its prerequisite is missing, not skip.
#
# Environment: CARGO_TARGET_DIR is honoured (default: target/ in the repo).
# Benchmark convention: tests/bench/ci_*.sh run here; other tests/bench/*.sh
# (e.g. binary_size.sh) are run by hand.
set -euo pipefail

# Debian packages the test suite needs, in one place. Later stages need all
# of them: namespace tests (iproute2, procps, tcpdump, python3), interop with
# the real daemon (keepalived, ipvsadm), the IPVS VM image (qemu-system-x86,
# linux-image-amd64, busybox-static). gcc/libc6-dev link cargo's host build
# scripts and test binaries; `file` checks the release binaries. musl-tools is
# not needed: .cargo/config.toml links the musl targets with rust-lld.
APT_PACKAGES=(
    gcc libc6-dev file
    iproute2 procps tcpdump python3 psmisc iputils-ping nftables
    keepalived ipvsadm
    busybox-static qemu-system-x86 linux-image-amd64 strace
    openssl # certificates for tests/check_tls.rs
)
MUSL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

cd "$(dirname "$0")/.."
REPO=$PWD
export KEEPALIVED_RS_FULL_TEST=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
# sudo resets PATH; rustup installs into $CARGO_HOME/bin.
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) PATH=$CARGO_BIN:$PATH ;; esac
export PATH
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac

# ---------------------------------------------------------------- stages --

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

T0=$(now)
STAGE=""
STAGE_T0=$T0
SUMMARY=()

on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "$STAGE" ]; then
        echo
        echo "!!!! FAILED: stage '$STAGE' (exit $rc) after $(secs "$STAGE_T0" "$(now)") s"
        echo "!!!! total $(secs "$T0" "$(now)") s"
    fi
}
trap on_exit EXIT

# run_stage NAME CMD...: banner, run, duration. Called plainly (never under
# `if`/`||`) so `set -e` stays in force inside CMD; a failure ends the script
# through the EXIT trap, which names the stage.
run_stage() {
    STAGE=$1
    shift
    STAGE_T0=$(now)
    echo
    echo "==== [$STAGE] $(date '+%H:%M:%S')"
    "$@"
    local d
    d=$(secs "$STAGE_T0" "$(now)")
    echo "==== [$STAGE] ok in $d s"
    SUMMARY+=("$(printf '%-24s %8s s' "$STAGE" "$d")")
    STAGE=""
}

# ----------------------------------------------------------- setup steps --

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

setup_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    # No Rust toolchain at all: rustup's installer needs curl.
    if ! command -v rustup >/dev/null; then
        for p in curl ca-certificates; do
            pkg_installed "$p" || missing+=("$p")
        done
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        echo "all ${#APT_PACKAGES[@]} packages present, apt skipped"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]}; run as root: sudo tests/run.sh" >&2
        return 1
    fi
    local had_keepalived=1
    pkg_installed keepalived || had_keepalived=0
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update
    # --no-remove: never let the install take packages away from the
    # machine (qemu-system-x86 from bookworm would replace a backported
    # qemu-utils, say); fail instead and let a human decide.
    apt-get -q install -y --no-install-recommends --no-remove "${missing[@]}"
    # The tests start keepalived themselves, inside namespaces. A distro
    # daemon on the host would fight over VRRP, so keep the unit we just
    # installed off. (Without a config file it does not start anyway.)
    if [ "$had_keepalived" = 0 ] && [ -d /run/systemd/system ]; then
        systemctl disable --now keepalived.service || true
    fi
}

setup_rust() {
    if ! command -v rustup >/dev/null; then
        if command -v cargo >/dev/null; then
            echo "cargo found but no rustup: cannot add the musl targets" >&2
            echo "install rustup (https://rustup.rs) and rerun" >&2
            return 1
        fi
        echo "no Rust toolchain: installing rustup (stable, minimal profile)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --default-toolchain stable
    fi
    local have want=()
    have=$(rustup component list --installed 2>/dev/null || true)
    grep -q '^rustfmt' <<<"$have" || want+=(rustfmt)
    grep -q '^clippy' <<<"$have" || want+=(clippy)
    [ ${#want[@]} -eq 0 ] || rustup component add "${want[@]}"

    have=$(rustup target list --installed)
    want=()
    local t
    for t in "${MUSL_TARGETS[@]}"; do
        grep -qx "$t" <<<"$have" || want+=("$t")
    done
    [ ${#want[@]} -eq 0 ] || rustup target add "${want[@]}"
    rustc --version
    cargo --version
}

# ------------------------------------------------------------ the checks --

check_fmt() { cargo fmt --all --check; }

check_clippy() { cargo clippy --locked --all-targets -- -D warnings; }

# Plain `cargo test` runs lib, bin, integration and doc tests
# (--all-targets would skip the doc tests).
check_test() { cargo test --locked; }

build_musl() {
    local t
    for t in "${MUSL_TARGETS[@]}"; do
        cargo build --locked --release --target "$t"
    done
}

report_binaries() {
    local t f info bad=0
    for t in "${MUSL_TARGETS[@]}"; do
        f=$TARGET_DIR/$t/release/keepalived
        info=$(file -b "$f")
        printf '%-28s %10d bytes\n' "$t" "$(stat -c %s "$f")"
        echo "    $info"
        # x86_64 is static-pie, aarch64 plain static; both have no
        # interpreter and no shared-library dependencies.
        case $info in
        *"statically linked"* | *"static-pie linked"*) ;;
        *)
            echo "    NOT STATIC" >&2
            bad=1
            ;;
        esac
    done
    return $bad
}

# The optional `tls` feature (SSL_GET, genhash -S): lint, its unit tests
# (the TLS dialog, client certificates) and namespace test,
# and the musl builds with it, in their own target dir so the default
# binaries stay the ones the other stages use. Prints the size it adds.
check_tls_feature() {
    cargo clippy --locked --all-targets --features tls -- -D warnings
    cargo test --locked --features tls --lib --test check_tls
    local t plain tls
    for t in "${MUSL_TARGETS[@]}"; do
        CARGO_TARGET_DIR=$TARGET_DIR/tls cargo build --locked --release --target "$t" --features tls
        plain=$(stat -c %s "$TARGET_DIR/$t/release/keepalived")
        tls=$(stat -c %s "$TARGET_DIR/tls/$t/release/keepalived")
        printf '%-28s %10d bytes with tls (+%d)\n' "$t" "$tls" $((tls - plain))
    done
}

# Packaging files: init scripts parse with a POSIX sh, and the default config
# is accepted by the real keepalived (the reference for the syntax).
check_board() {
    local f
    for f in board/openwrt/keepalived-rs/files/keepalived.init \
        board/buildroot/keepalived-rs/S30keepalived; do
        sh -n "$f"
        busybox sh -n "$f"
        echo "sh -n ok: $f"
    done
    /usr/sbin/keepalived -t -f board/keepalived.conf
    echo "keepalived -t ok: board/keepalived.conf"
}

run_ci_benches() {
    local f n=0
    for f in tests/bench/ci_*.sh; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        echo "---- $f"
        bash "$f"
    done
    [ $n -gt 0 ] || echo "no tests/bench/ci_*.sh yet"
}

# ------------------------------------------------------------------ main --

echo "keepalived-rs test run: $REPO ($(git rev-parse --short HEAD 2>/dev/null || echo no git))"
echo "KEEPALIVED_RS_FULL_TEST=1, target dir $TARGET_DIR"

run_stage "apt packages" setup_apt
run_stage "rust toolchain" setup_rust
run_stage "cargo fmt --check" check_fmt
run_stage "cargo clippy" check_clippy
# The VM tests boot the static x86_64 build, so it is built first.
run_stage "release builds (musl)" build_musl
run_stage "release binaries" report_binaries
run_stage "cargo test" check_test
run_stage "tls feature" check_tls_feature
run_stage "board scripts" check_board
run_stage "ci benchmarks" run_ci_benches

echo
echo "==== summary"
printf '%s\n' "${SUMMARY[@]}"
echo "all stages ok in $(secs "$T0" "$(now)") s"
