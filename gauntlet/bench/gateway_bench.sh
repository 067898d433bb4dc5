#!/usr/bin/env bash
# Benchmark: SESSIONS concurrent host sessions (the official TypeScript SDK client) calling
# `echo` through `mcplock gateway` (each session its own stdio server-everything, held to the
# lock), against the same calls made directly to server-everything's own Streamable HTTP mode,
# alternating in one run; then the gateway's resident memory per idle session.
# Usage: gauntlet/bench/gateway_bench.sh [ROUNDS] [SESSIONS] [CALLS]  (needs testdata/servers/install.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
sessions="${2:-16}"
calls="${3:-500}"
source gauntlet/bench/gateway_lib.sh

# server-everything's own Streamable HTTP, on loopback (loopback.cjs binds 127.0.0.1).
(cd "$node_dir" && PORT=0 exec node --require ./loopback.cjs "$everything" streamableHttp) >/dev/null 2>"$work/direct.err" &
pids+=($!)
# The gateway, in front of the same server locked over stdio.
cd "$work"
"$mcplock" lock --name everything -- node "$everything" stdio >/dev/null 2>&1
token=$("$mcplock" gateway token --agents agents.json --agent bench --grant everything 2>/dev/null)
start_gateway gateway --max-sessions 512
wait_listening "$work/direct.err"
direct_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/direct.err" | head -1 | cut -d: -f2)
direct="http://127.0.0.1:$direct_port/mcp"
through="$url/servers/everything/mcp"

cd "$node_dir"
for round in $(seq "$rounds"); do
  printf 'direct  %s\n' "$(node "$driver" "$direct" - "$sessions" "$calls")"
  printf 'gateway %s\n' "$(node "$driver" "$through" "$token" "$sessions" "$calls")"
done | tee "$work/runs"

"$python" - "$work/runs" "$root/gauntlet/bench" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from rounds import added_latency, load, medians, spread, throughput_ratio
runs = load(sys.argv[1])
medians(runs)
print(f"gateway/direct per round: throughput ratio {spread(throughput_ratio(runs, 'direct', 'gateway'), digits=3)}, "
      f"added median latency {spread(added_latency(runs, 'direct', 'gateway'), ' us')}")
PY

# Memory per idle session: the gateway's resident set before and with 64 idle sessions open
# (their servers are other processes, measured apart).
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss "$gateway_pid")
node --input-type=module -e "
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
const open = [];
for (let i = 0; i < 64; i++) {
  const t = new StreamableHTTPClientTransport(new URL('$through'), { requestInit: { headers: { Authorization: 'Bearer $token' } } });
  const c = new Client({ name: 'idle', version: '1' });
  await c.connect(t); await c.listTools(); open.push(c);
}
console.log('open');
await new Promise((r) => setTimeout(r, 3000));
// Their GET streams would keep node alive: the sessions end with the process.
process.exit(0);
" > "$work/idle.out" &
idle=$!
for _ in $(seq 600); do grep -q open "$work/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep 1
with=$(rss "$gateway_pid")
upstream=$(pgrep -P "$gateway_pid" | head -1)
echo "gateway resident: $before KiB idle, $with KiB with 64 idle sessions: $(( (with - before) / 64 )) KiB per idle session (each session's server: $(rss "$upstream") KiB, its own process)"
wait "$idle" || true
