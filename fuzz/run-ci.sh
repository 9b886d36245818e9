#!/usr/bin/env bash
# Build every fuzz target and run each for ~60 s (FUZZ_SECONDS) from the committed corpus,
# then replay any committed regression inputs. Exits non-zero on a crash, a leak, a timeout
# or an out-of-memory, leaving the input in fuzz/artifacts/<target>/.
#
# Needs: cargo-fuzz (`cargo install cargo-fuzz --locked`, ~3-5 min to build) and a C/C++
# compiler (libFuzzer is built by libfuzzer-sys). The stable toolchain is enough:
# cargo-fuzz passes -Z flags (sanitizer, coverage), which RUSTC_BOOTSTRAP=1 lets stable
# rustc accept.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SECONDS:-60}
targets=(archive archive_raw envelope_manifest collector jsoncheck ledger)
cargo fuzz build -O
for t in "${targets[@]}"; do
    work=$(mktemp -d)
    cp corpus/"$t"/* "$work"/
    echo "fuzz: $t for ${secs}s"
    cargo fuzz run -O "$t" "$work" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=20
    rm -rf "$work"
    if [ -d regressions/"$t" ] && [ -n "$(ls -A regressions/"$t")" ]; then
        echo "fuzz: $t regressions"
        cargo fuzz run -O "$t" regressions/"$t"/* -- -runs=1
    fi
done
echo "fuzz: all targets ran clean"
