#!/usr/bin/env bash
# Benchmark: the cost of a limit decision, and two gateway replicas behind HAProxy. In one run,
# alternating rounds, SESSIONS concurrent official TypeScript SDK clients call `echo` on
# server-everything (stdio, locked) through:
#   plain    one gateway, no limits
#   memory   one gateway, a limit every call counts against (calls per window and concurrent
#            calls), counted in the gateway's memory
#   redis    the same limit counted in Redis (one Lua script per call, a ZREM when it is answered)
#   haproxy  two replicas (limits in the same Redis) behind HAProxy, round-robin with sessions
#            kept on their replica by Mcp-Session-Id (the 2025-11-25 era needs it)
# Usage: gauntlet/bench/limits_bench.sh [ROUNDS] [SESSIONS] [CALLS]
# (needs testdata/servers/install.sh, redis-server and haproxy)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
sessions="${2:-16}"
calls="${3:-300}"
source gauntlet/bench/gateway_lib.sh
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
cd "$work"
"$mcplock" lock --name everything -- node "$everything" stdio >/dev/null 2>&1
printf 'name: bench\nlimits:\n  - {agent: "*", calls: 1000000, per: 1s, concurrent: 1000}\n' > limits.yaml
token=$("$mcplock" gateway token --agents agents.json --agent bench --grant everything 2>/dev/null)

start_gateway plain --max-sessions 512; plain=$url
start_gateway memory --max-sessions 512 --policy limits.yaml; memory=$url
state="redis://127.0.0.1:$redis_port"
start_gateway redis --max-sessions 512 --policy limits.yaml --state "$state"; redis=$url
start_gateway replica2 --max-sessions 512 --policy limits.yaml --state "$state"; replica2=$url
lb_port=$(free_port)
cat > haproxy.cfg <<CFG
global
  maxconn 1024
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend mcp
  bind 127.0.0.1:$lb_port
  default_backend gateways
backend gateways
  balance roundrobin
  stick-table type string len 64 size 100k expire 30m
  stick match req.hdr(mcp-session-id)
  stick store-response res.hdr(mcp-session-id)
  server replica1 ${redis#http://}
  server replica2 ${replica2#http://}
CFG
haproxy -db -f haproxy.cfg >/dev/null 2>&1 &
pids+=($!)
sleep 1

cd "$node_dir"
for round in $(seq "$rounds"); do
  for kind in plain memory redis haproxy; do
    case $kind in
      plain) target=$plain ;; memory) target=$memory ;; redis) target=$redis ;;
      haproxy) target="http://127.0.0.1:$lb_port" ;;
    esac
    printf '%s %s\n' "$kind" "$(node "$driver" "$target/servers/everything/mcp" "$token" "$sessions" "$calls")"
  done
done | tee "$work/runs"

"$python" - "$work/runs" "$root/gauntlet/bench" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from rounds import added_latency, load, medians, spread, throughput_ratio
runs = load(sys.argv[1])
medians(runs)
for kind in ("memory", "redis"):
    print(f"{kind} limit decision: added median latency per call, over rounds "
          f"{spread(added_latency(runs, 'plain', kind), ' us')}")
print(f"two replicas behind HAProxy / one gateway (both with limits in Redis): throughput ratio "
      f"{spread(throughput_ratio(runs, 'redis', 'haproxy'), digits=3)}")
PY
