#!/usr/bin/env bash
# Benchmark: `bundle export` and `bundle verify` around a 10,000-tool lockfile (whole process,
# release build), against zip/unzip of the same files as a floor.
# Usage: gauntlet/bench/bundle_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bins
cargo bench --quiet --bench lockfile --no-run 2>/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
m=$PWD/target/release/mcplock
cargo bench --quiet --bench lockfile -- generate "$work/mcp-lock.json" >/dev/null
cd "$work"
"$m" keygen --private b.key --public b.pub >/dev/null
"$m" sign --key b.key >/dev/null
printf 'name: bench\nrules:\n  - id: has-tools\n    on: server\n    severity: error\n    expr: size(mcp.server.tools) > 0\n    message: m\n' > policy.yaml
now() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

et=()
for _ in 1 2 3 4 5 6 7; do
  rm -f approval.zip
  t0=$(now); "$m" bundle export --key b.key --policy policy.yaml >/dev/null; t1=$(now)
  et+=($(( (t1 - t0) / 1000 )))
done
echo "lockfile: $(wc -c < mcp-lock.json) bytes; bundle: $(wc -c < approval.zip) bytes"
echo "bundle export (--key, --policy), median of 7: $(median "${et[@]}") us"
/usr/bin/time -f "peak RSS of that export: %M KiB" "$m" bundle export --key b.key --policy policy.yaml -o again.zip >/dev/null
cmp approval.zip again.zip && echo "second export: byte-identical"

vt=()
for _ in 1 2 3 4 5 6 7; do
  t0=$(now); "$m" bundle verify approval.zip --key b.pub >/dev/null; t1=$(now)
  vt+=($(( (t1 - t0) / 1000 )))
done
echo "bundle verify --key, median of 7: $(median "${vt[@]}") us"
/usr/bin/time -f "peak RSS of that verify: %M KiB" "$m" bundle verify approval.zip --key b.pub >/dev/null

# Floor: the same members with zip -9 / unzip -t (no signatures, no JSON).
if command -v zip >/dev/null; then
  mkdir floor && unzip -q approval.zip -d floor
  t0=$(now); (cd floor && zip -q -9 -X ../floor.zip ./*); t1=$(now)
  echo "floor: zip -9 of the same members: $(( (t1 - t0) / 1000 )) us"
fi
t0=$(now); unzip -tq approval.zip >/dev/null; t1=$(now)
echo "floor: unzip -t of the bundle: $(( (t1 - t0) / 1000 )) us"
