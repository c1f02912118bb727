#!/usr/bin/env bash
# Runs every cargo-fuzz target of this directory for SECONDS each (default
# 20) and fails on the first crash. Needs `cargo install cargo-fuzz`.
#
# `-s none`: the crate forbids `unsafe`, so what a fuzzer can find here is a
# panic, an overflow or a hang, not memory corruption; without a sanitizer
# the targets build on the stable toolchain, which is what CI has.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in $(cargo fuzz list); do
    echo "== fuzz $target for ${secs}s"
    mkdir -p "corpus/$target"
    # Seeds (generated conversations, see fuzzing::tests::write_fuzz_seeds)
    # start a target inside its protocol rather than at random bytes.
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    if ! cargo fuzz run -s none --release "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz target $target failed; reproduce with: cargo fuzz run -s none $target artifacts/$target/<file>"
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$log" || true
done
