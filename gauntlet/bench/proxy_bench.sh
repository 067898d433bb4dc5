#!/usr/bin/env bash
# Benchmark: 10,000 sequential tools/call round trips against the fixture, directly and through
# `mcplock proxy` (without and with --audit), alternating in one run; then the proxy's resident
# memory every 10,000 calls over 100,000.
# Usage: gauntlet/bench/proxy_bench.sh [ROUNDS] [CALLS]   (needs testdata/servers/install.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
calls="${2:-10000}"
cargo build --release --quiet --bins
root=$PWD
mcplock=$root/target/release/mcplock
fixture=$root/target/release/mcplock-fixture
python=$root/testdata/servers/python/.venv/bin/python
driver=$root/gauntlet/bench/proxy_calls.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
server=("$fixture" --era legacy --tools 1)
"$mcplock" lock -- "${server[@]}" >/dev/null
proxy=("$mcplock" proxy --allow-unsigned --)
audited=("$mcplock" proxy --allow-unsigned --audit "$work/audit.jsonl" --)

for round in $(seq "$rounds"); do
  printf 'direct  %s\n' "$("$python" "$driver" "$calls" -- "${server[@]}")"
  printf 'proxy   %s\n' "$("$python" "$driver" "$calls" -- "${proxy[@]}" "${server[@]}" 2>/dev/null)"
  printf 'audited %s\n' "$("$python" "$driver" "$calls" -- "${audited[@]}" "${server[@]}" 2>/dev/null)"
  rm -f "$work/audit.jsonl"
done | tee "$work/runs"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { grep "^$1 " "$work/runs" | sed 's/^[a-z]* *//' | "$python" -c "import json,sys; [print(json.loads(l)['$2']) for l in sys.stdin]" | median; }
echo "rounds: $rounds x $calls calls (medians over rounds)"
for kind in direct proxy audited; do
  echo "$kind: $(field "$kind" calls_per_second) calls/s, median round trip $(field "$kind" median_us) us, p99 $(field "$kind" p99_us) us"
done
# Each round's runs share the machine's conditions: the ratio within a round is what holds on a
# shared machine, so the medians of per-round ratios and differences are printed too.
"$python" - "$work/runs" <<'PY'
import json, statistics, sys
runs = {"direct": [], "proxy": [], "audited": []}
for line in open(sys.argv[1]):
    kind, doc = line.split(None, 1)
    runs[kind].append(json.loads(doc))
for kind in ("proxy", "audited"):
    ratios = [p["calls_per_second"] / d["calls_per_second"] for d, p in zip(runs["direct"], runs[kind])]
    added = [p["median_us"] - d["median_us"] for d, p in zip(runs["direct"], runs[kind])]
    print(f"{kind}/direct per round: throughput ratio median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}), added median latency median {statistics.median(added):.1f} us")
PY
echo "proxy memory (VmRSS KiB every 10,000 of 100,000 calls):"
"$python" "$driver" 100000 --rss-every 10000 -- "${proxy[@]}" "${server[@]}" 2>/dev/null
