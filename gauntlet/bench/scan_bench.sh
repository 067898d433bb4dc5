#!/usr/bin/env bash
# Benchmark: scan the fixture serving 2,000 tools in pages of 50.
# Compares mcplock's wall time with the official Python SDK client listing the same pages, and
# with the fixture's own time to answer (first request received -> last response written).
# Usage: gauntlet/bench/scan_bench.sh [RUNS]   (needs testdata/servers/install.sh first)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-15}"
cargo build --release --quiet --bins
mcplock=target/release/mcplock
fixture=target/release/mcplock-fixture
python=testdata/servers/python/.venv/bin/python
timing=$(mktemp)
trap 'rm -f "$timing"' EXIT
fixture_args=(--tools 2000 --page-size 50)

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

mc=(); srv=(); busy=(); py=()
for _ in $(seq "$runs"); do
  t0=$(now)
  "$mcplock" scan --format json -- "$fixture" "${fixture_args[@]}" --timing-file "$timing" >/dev/null
  t1=$(now)
  mc+=($(( (t1 - t0) / 1000 )))
  srv+=($(sed -n 1p "$timing"))
  busy+=($(sed -n 3p "$timing"))
  t0=$(now)
  count=$("$python" gauntlet/bench/python_list_tools.py "$fixture" "${fixture_args[@]}")
  t1=$(now)
  [ "$count" = 2000 ] || { echo "python client listed $count tools, expected 2000" >&2; exit 1; }
  py+=($(( (t1 - t0) / 1000 )))
done
m_mc=$(printf '%s\n' "${mc[@]}" | median)
m_srv=$(printf '%s\n' "${srv[@]}" | median)
m_busy=$(printf '%s\n' "${busy[@]}" | median)
m_py=$(printf '%s\n' "${py[@]}" | median)
echo "runs: $runs (median wall time, microseconds)"
echo "mcplock scan (whole process: spawn, negotiate, 40 pages, JSON out, shutdown): $m_mc"
echo "fixture window, first request to last response (includes mcplock's work between pages): $m_srv"
echo "fixture busy, sum of receipt-to-flush per request (the server's own work):            $m_busy"
echo "python SDK client (whole process, same listing):                         $m_py"
