#!/usr/bin/env bash
# Benchmark: what checking an OAuth access token costs per request. In one run, alternating by
# round, one official TypeScript SDK client calls `echo` on server-everything (stdio, locked)
# through one gateway, presenting either an agents-file token (`static`) or a JWT access token
# from oidc-provider for the same agent (`jwt`: signature against the issuer's JWKS, issuer,
# audience, expiry, scope, on every request).
# Usage: gauntlet/bench/oauth_bench.sh [ROUNDS] [SESSIONS] [CALLS]  (needs testdata/servers/install.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
sessions="${2:-1}"
calls="${3:-500}"
source gauntlet/bench/gateway_lib.sh

start_auth_server '{"clients":[{"id":"bench","secret":"bench-secret","ttl":3600}]}'
audience=https://gw.example/mcp
cd "$work"
"$mcplock" lock --name everything -- node "$everything" stdio >/dev/null 2>&1
static=$("$mcplock" gateway token --agents agents.json --agent bench --grant everything 2>/dev/null)
"$mcplock" gateway subject --agents agents.json --agent bench --subject bench >/dev/null
jwt=$(curl -s -X POST "$issuer/token" -d grant_type=client_credentials -d scope=mcp \
  -d client_id=bench -d client_secret=bench-secret -d "resource=$audience" \
  | "$python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
start_gateway gw --oauth-issuer "$issuer" --oauth-audience "$audience" --oauth-scope mcp
url=$url/servers/everything/mcp

cd "$node_dir"
for round in $(seq "$rounds"); do
  printf 'static %s\n' "$(node "$driver" "$url" "$static" "$sessions" "$calls")"
  printf 'jwt %s\n' "$(node "$driver" "$url" "$jwt" "$sessions" "$calls")"
done | tee "$work/runs"

"$python" - "$work/runs" "$root/gauntlet/bench" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from rounds import added_latency, load, medians, spread
runs = load(sys.argv[1])
medians(runs)
print(f"JWT check: added median latency per request, over rounds "
      f"{spread(added_latency(runs, 'static', 'jwt'), ' us')}")
PY
