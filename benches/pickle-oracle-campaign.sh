#!/usr/bin/env bash
# The long differential campaign against CPython's unpicklers (tests/it/pickle_oracle.rs):
# several seeds, many streams each. Prints, per seed, streams judged and divergences found.
#   benches/pickle-oracle-campaign.sh [SEEDS] [COUNT]     (defaults: 10 seeds of 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-10}"
count="${2:-100000}"
cargo test --release --test it --no-run --quiet 2>/dev/null
total=0
for seed in $(seq 1 "$seeds"); do
    if output=$(ORACLE_SEED="$seed" ORACLE_COUNT="$count" cargo test --release --quiet --test it \
        pickle_oracle -- --nocapture 2>&1); then
        echo "seed $seed: $count generated streams (+ corpus mutations): 0 divergences"
    else
        echo "seed $seed: divergences:"
        echo "$output" | grep -E "importing streams|^[0-9a-f]{6,}" | head -20 | cut -c1-300
    fi
    total=$((total + count))
done
echo "campaign: $total generated streams over $seeds seeds"
