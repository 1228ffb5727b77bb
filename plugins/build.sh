#!/usr/bin/env bash
# Builds the example plugins reproducibly and installs them as the demo model's plugins.
#
#   plugins/build.sh           build, copy to fixtures/demo-model/plugins/, print sha256
#   plugins/build.sh --check   build in a fresh temporary target dir and fail (exit 1) unless
#                              the bytes equal the committed .wasm files
#
# The bytes depend only on the sources, Cargo.lock, the flags in .cargo/config.toml and
# the rustc version (1.95.0 when the committed files were built): no absolute path of the
# checkout, of $HOME or of $CARGO_HOME enters them (the sources' paths are relative to the
# workspace and remapped below as well; std's paths are rustc's own /rustc/<commit>/).
set -euo pipefail

plugins="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname "$plugins")"
dest="$root/fixtures/demo-model/plugins"
target=wasm32-unknown-unknown
names=(ct-window label-mask)

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# Run everything from the workspace, so its .cargo/config.toml applies.
cd "$plugins"
if ! rustc --print target-libdir --target "$target" >/dev/null 2>&1 \
  || [ ! -d "$(rustc --print target-libdir --target "$target")" ]; then
  rustup target add "$target"
fi

if $check; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  export CARGO_TARGET_DIR="$tmp/target"
else
  export CARGO_TARGET_DIR="$plugins/target"
fi

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# Appended to the rustflags of .cargo/config.toml (cargo merges config arrays).
remap="target.$target.rustflags=[\"--remap-path-prefix=$plugins=/modelvet-plugins\", \"--remap-path-prefix=$cargo_home=/cargo-home\"]"

# The committed bytes were built by this compiler; another one may emit other (equally valid)
# bytes, so --check only means something with it.
pinned_rustc="1.95.0"
rustc_version="$(rustc --version | cut -d' ' -f2)"
if $check && [ "$rustc_version" != "$pinned_rustc" ]; then
  echo "skipped: rustc $rustc_version is not $pinned_rustc, which built the committed plugins" >&2
  exit 3
fi
echo "building plugins with $(rustc --version)" >&2
cargo build --release --locked --quiet --target "$target" --config "$remap" \
  -p ct-window -p label-mask

status=0
for name in "${names[@]}"; do
  built="$CARGO_TARGET_DIR/$target/release/${name//-/_}.wasm"
  committed="$dest/$name.wasm"
  if $check; then
    if [ ! -f "$committed" ]; then
      echo "error: $committed is missing; run plugins/build.sh" >&2
      status=1
    elif cmp -s "$built" "$committed"; then
      echo "ok: $name.wasm is reproducible (sha256:$(sha256sum "$built" | cut -d' ' -f1))"
    else
      echo "error: $name.wasm does not match the committed bytes" >&2
      echo "  expected: sha256:$(sha256sum "$committed" | cut -d' ' -f1)" >&2
      echo "  computed: sha256:$(sha256sum "$built" | cut -d' ' -f1)" >&2
      echo "hint: build with rustc 1.95.0, or rebuild with plugins/build.sh and update the pinned hashes" >&2
      status=1
    fi
  else
    mkdir -p "$dest"
    install -m 0644 "$built" "$committed"
    echo "sha256:$(sha256sum "$committed" | cut -d' ' -f1)  $(wc -c <"$committed") bytes  fixtures/demo-model/plugins/$name.wasm"
  fi
done
exit "$status"
