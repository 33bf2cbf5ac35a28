#!/usr/bin/env bash
# The engineering gate: formatting, clippy with the workspace lint wall,
# and cargo-deny (bans, licences, sources; advisories need network access
# CI does not have). Run by scripts/test.sh (stage "lint").
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
if ! command -v cargo-deny >/dev/null; then
    echo "==> cargo install --locked cargo-deny@0.20.2"
    cargo install --locked --quiet cargo-deny@0.20.2
fi
cargo deny check bans licenses sources
# fuzz/ is its own workspace with its own lock file: after a dependency
# change in the main workspace, refresh it (cp Cargo.lock fuzz/Cargo.lock,
# then `cargo metadata` in fuzz/ adds the fuzzing crates).
if ! cargo metadata --manifest-path fuzz/Cargo.toml --locked --format-version 1 >/dev/null; then
    echo "fuzz/Cargo.lock is out of date: cp Cargo.lock fuzz/Cargo.lock && (cd fuzz && cargo metadata --format-version 1 >/dev/null)" >&2
    exit 1
fi
