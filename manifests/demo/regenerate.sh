#!/usr/bin/env bash
# Rebuilds the signed demo release in manifests/demo/ from fixtures/demo-model (whose plugins
# plugins/build.sh builds reproducibly), with the snakeoil test key in fixtures/keys/ (made on
# first use). Run after changing the demo model.
set -euo pipefail
cd "$(dirname "$0")/../.."
modelvet() { cargo run --quiet --release -- "$@"; }

[ -f fixtures/keys/snakeoil.key ] || modelvet key generate --out fixtures/keys/snakeoil
# git does not keep file modes; a secret key must not be readable by others to be used.
chmod 600 fixtures/keys/snakeoil.key
rm -f manifests/demo/manifest.json manifests/demo/manifest.json.sig manifests/demo/trust.json
modelvet manifest create fixtures/demo-model \
    --name modelvet-demo/ct-segmenter --version 2 --expires 2036-01-01T00:00:00Z \
    --plugin ct-window=plugins/ct-window.wasm,timeout_ms=5000,memory_mb=256 \
    --plugin label-mask=plugins/label-mask.wasm,timeout_ms=5000,memory_mb=256 \
    --license Apache-2.0 --intended-use "demonstration of modelvet; not for clinical use" \
    --source-prefix ../../fixtures/demo-model/ \
    --current-time 2026-11-28T00:00:00Z --out manifests/demo/manifest.json
modelvet sign manifests/demo/manifest.json --key fixtures/keys/snakeoil.key
modelvet trust init --key fixtures/keys/snakeoil.pub --out manifests/demo/trust.json
