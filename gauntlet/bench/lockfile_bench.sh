#!/usr/bin/env bash
# Benchmark: lock of the 2,000-tool fixture; strict read + digest check of a 10,000-tool
# lockfile; canonicalize + digest throughput against sha256sum of the same bytes.
# Usage: gauntlet/bench/lockfile_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bins
cargo bench --quiet --bench lockfile --no-run 2>/dev/null
bench() { cargo bench --quiet --bench lockfile -- "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench generate "$work/10k.json"
bench read "$work/10k.json"
bench throughput "$work/10k.json"
now() { date +%s%N; }
t0=$(now); for _ in 1 2 3 4 5; do sha256sum "$work/10k.json" >/dev/null; done; t1=$(now)
echo "sha256sum of the pretty file (whole process, mean of 5): $(( (t1 - t0) / 5000 )) us"

times=()
for _ in 1 2 3 4 5 6 7; do
  rm -f "$work/mcp-lock.json"
  t0=$(now)
  target/release/mcplock lock -o "$work/mcp-lock.json" -- target/release/mcplock-fixture --tools 2000 --page-size 50 >/dev/null
  t1=$(now)
  times+=($(( (t1 - t0) / 1000 )))
done
echo "lock of the 2,000-tool fixture (pages of 50), median of 7: $(printf '%s\n' "${times[@]}" | sort -n | sed -n 4p) us"
/usr/bin/time -f "peak RSS of that lock: %M KiB" target/release/mcplock lock --check -o "$work/mcp-lock.json" -- target/release/mcplock-fixture --tools 2000 --page-size 50 >/dev/null

# verify of the 10,000-tool lockfile (whole process), against sha256sum of it as the floor.
(cd "$work" && "$OLDPWD/target/release/mcplock" keygen --private v.key --public v.pub >/dev/null \
  && "$OLDPWD/target/release/mcplock" sign 10k.json --key v.key >/dev/null)
vt=()
for _ in 1 2 3 4 5 6 7 8 9 10 11; do
  t0=$(now); target/release/mcplock verify "$work/10k.json" --key "$work/v.pub" >/dev/null; t1=$(now)
  vt+=($(( (t1 - t0) / 1000 )))
done
echo "mcplock verify of the 10,000-tool lockfile, median of 11: $(printf '%s\n' "${vt[@]}" | sort -n | sed -n 6p) us"
/usr/bin/time -f "peak RSS of that verify: %M KiB" target/release/mcplock verify "$work/10k.json" --key "$work/v.pub" >/dev/null

# diff of two 10,000-tool lockfiles with 5% of the tools changed (offline, whole process).
bench generate-changed "$work/10k-changed.json"
dt=()
for _ in 1 2 3 4 5 6 7; do
  t0=$(now); target/release/mcplock diff "$work/10k.json" "$work/10k-changed.json" --format json --fail-on never >/dev/null; t1=$(now)
  dt+=($(( (t1 - t0) / 1000 )))
done
echo "mcplock diff of two 10,000-tool lockfiles (500 tools changed), median of 7: $(printf '%s\n' "${dt[@]}" | sort -n | sed -n 4p) us"
/usr/bin/time -f "peak RSS of that diff: %M KiB (the two files: $(( ($(wc -c < "$work/10k.json") + $(wc -c < "$work/10k-changed.json")) / 1024 )) KiB)" \
  target/release/mcplock diff "$work/10k.json" "$work/10k-changed.json" --format json --fail-on never >/dev/null

# policy check --preset strict over the 10,000-tool lockfile.
t0=$(now); target/release/mcplock policy check --preset strict --eval-timeout 60 --lockfile "$work/10k.json" >/dev/null; t1=$(now)
echo "policy check --preset strict over 10,000 tools: $(( (t1 - t0) / 1000 )) us"
