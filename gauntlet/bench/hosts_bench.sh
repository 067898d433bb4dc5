#!/usr/bin/env bash
# Benchmark: `mcplock lock --host` of 8 real servers at once (two each of server-everything,
# tailwindcss-mcp-server, the Python SDK server and mcp-server-sqlite, from one host config)
# against the slowest of them locked alone, paired in one farm-bench run.
# Usage: gauntlet/bench/hosts_bench.sh [RUNS]   (needs testdata/servers/install.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
cargo build --release --quiet --bins
root=$PWD
mcplock=$root/target/release/mcplock
servers=$root/testdata/servers
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$servers/python/.venv/bin/python" - "$servers" "$work" <<'PY'
import json, sys
servers, work = sys.argv[1], sys.argv[2]
kinds = {
    "everything": {"command": "node", "args": [f"{servers}/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"]},
    "tailwind": {"command": "node", "args": [f"{servers}/node/node_modules/tailwindcss-mcp-server/build/index.js"]},
    "python": {"command": f"{servers}/python/.venv/bin/python", "args": [f"{servers}/python/pinned_server.py"]},
    "sqlite": {"command": f"{servers}/sqlite/.venv/bin/mcp-server-sqlite", "args": ["--db-path", f"{work}/bench.db"]},
}
every = {f"{kind}-{i}": entry for kind, entry in kinds.items() for i in (1, 2)}
json.dump({"mcpServers": every}, open(f"{work}/all.json", "w"))
for kind, entry in kinds.items():
    json.dump({"mcpServers": {kind: entry}}, open(f"{work}/{kind}.json", "w"))
PY
# Each kind alone, to find the slowest (median of 3 runs each).
slowest=""; slowest_ms=0
for kind in everything tailwind python sqlite; do
  times=()
  for _ in 1 2 3; do
    rm -f "$work/$kind-lock.json"
    start=$(date +%s%N)
    "$mcplock" lock --host cursor --config "$work/$kind.json" -o "$work/$kind-lock.json" >/dev/null
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
  done
  ms=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
  echo "$kind alone: ${ms} ms (median of 3)"
  if [ "$ms" -gt "$slowest_ms" ]; then slowest=$kind; slowest_ms=$ms; fi
done
echo "slowest alone: $slowest"
farm-bench -n "$runs" --timeout 600 \
  --vs "sh -c 'rm -f $work/one-lock.json && exec $mcplock lock --host cursor --config $work/$slowest.json -o $work/one-lock.json'" \
  -- sh -c "rm -f $work/all-lock.json && exec $mcplock lock --host cursor --config $work/all.json -o $work/all-lock.json --jobs 8"
