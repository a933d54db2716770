#!/usr/bin/env bash
# Every check of the project, as CI runs it: formatting, lints, all tests
# (unit, property, integration, doc tests) and one quick run of the
# benchmark code paths so they do not rot.
#
# Usage: scripts/test.sh
# It installs what is missing when it can (rustup components; Debian
# packages with apt-get as root or with sudo) and otherwise says what to
# install.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 \
  || fail "cargo is not installed: install Rust with https://rustup.rs, then run scripts/test.sh again"

# A Rust component (rustfmt, clippy): added with rustup when missing.
ensure_component() {
  local probe=$1 component=$2
  if ! cargo "$probe" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      say "installing the Rust component $component"
      rustup component add "$component"
    else
      fail "cargo $probe is missing: install the Rust component $component (rustup component add $component)"
    fi
  fi
}

# A command the tests need, from a Debian package: installed with apt-get
# when possible, otherwise named.
ensure_package() {
  local command=$1 package=$2
  command -v "$command" >/dev/null 2>&1 && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo="sudo -n" \
      || fail "$command is missing: install the Debian package $package (apt-get install $package)"
  fi
  if command -v apt-get >/dev/null 2>&1; then
    say "installing $package (for $command)"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$package" \
      || fail "could not install $package: install it yourself (apt-get install $package) and run again"
  else
    fail "$command is missing and apt-get is not available: install $package with your package manager"
  fi
}

ensure_component fmt rustfmt
ensure_component clippy clippy
# System parts the tests start themselves: redis-server and redis-cli (each
# Redis test starts its own servers and cluster on free ports), Chromium,
# Node.js and npm for the browser test (e2e/, playwright-core with the
# system Chromium).
for dep in redis-server:redis-server redis-cli:redis-tools chromium:chromium node:nodejs npm:npm \
  ${TEST_SYSTEM_DEPS:-}; do
  ensure_package "${dep%%:*}" "${dep##*:}"
done

say "formatting (cargo fmt --check)"
cargo fmt --all -- --check || fail "formatting differs: run cargo fmt --all"

say "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo clippy -p examples --test chaos --locked -- -D warnings

say "timeout-tower without axum (a plain tower/hyper app compiles no axum)"
cargo check -p timeout-tower --no-default-features --locked --quiet

say "tests (unit, property, integration; benchmarks once with tiny sizes)"
TIMEOUT_BENCH_KEYS=${TIMEOUT_BENCH_KEYS:-20000} TIMEOUT_BENCH_DUE=${TIMEOUT_BENCH_DUE:-2000} \
  cargo test --workspace --all-targets --all-features --locked

say "chaos harness, quick (scripts/chaos.sh --quick: every fault, 24 users each)"
scripts/chaos.sh --quick

say "doc tests, and docs without broken links"
cargo test --workspace --doc --all-features --locked
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked --quiet

say "packages as crates.io would take them (cargo publish --workspace --dry-run)"
# Packages and builds each published crate from what it would upload, against
# the others' packages. Cargo's own "aborting upload due to dry run" is the
# only warning allowed: anything else (a missing field, a file left out) fails.
publish_log=$(mktemp)
# Cargo unpacks the packages it verifies against into its registry cache and
# reuses an unpacked copy of the same version: drop ours from earlier runs,
# or the others are verified against stale sources.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/timeout-{core,tower,actix,redis}-[0-9]*
# Cargo also takes a registry package's build as never changing: a crate
# verified against an earlier run's timeout-core of the same version would
# compile against its stale library. Their builds go too (the workspace's own
# are rebuilt when next needed).
cargo clean --quiet -p timeout-core -p timeout-tower -p timeout-actix -p timeout-redis
if ! cargo publish --workspace --dry-run --locked --allow-dirty >"$publish_log" 2>&1; then
  cat "$publish_log" >&2
  fail "cargo publish --dry-run failed (above)"
fi
if grep '^warning' "$publish_log" | grep -v 'aborting upload due to dry run' >&2; then
  fail "cargo publish --dry-run warned (above): fix the manifest or the package's files"
fi
for crate in timeout-core timeout-tower timeout-actix timeout-redis; do
  listed=$(cargo package -p "$crate" --list --locked --allow-dirty 2>/dev/null)
  for file in README.md LICENSE-MIT LICENSE-APACHE; do
    grep -qx "$file" <<<"$listed" || fail "the $crate package lacks $file"
  done
done
rm -f "$publish_log"

say "browser test of the axum demo and the actix demo (headless Chromium)"
scripts/e2e.sh axum-demo
scripts/e2e.sh actix-demo

say "all checks passed"
