#!/usr/bin/env bash
# Benchmark: what OAuth adds to a one-shot command against a protected remote server. In one
# farm-bench run, alternating, `mcplock scan --url` of the Python SDK's protected server
# (protected_server.py) with a token from the environment (--bearer-env, the baseline) and with
# OAuth by client credentials (--oauth-client-id: the 401, Protected Resource Metadata, the
# authorization server's metadata and a token request to oidc-provider, every run).
# Usage: gauntlet/bench/oauth_client_bench.sh [RUNS]  (needs testdata/servers/install.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-10}"
source gauntlet/bench/gateway_lib.sh

start_auth_server '{"clients":[{"id":"bench","secret":"bench-secret","ttl":3600}]}'
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" "$root/testdata/servers/python/protected_server.py" "$issuer" "$port" 2>"$work/server.err" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/mcp" && break; sleep 0.1; done
url=http://127.0.0.1:$port/mcp
token=$(curl -s -X POST "$issuer/token" -d grant_type=client_credentials -d scope=mcp \
  -d client_id=bench -d client_secret=bench-secret -d "resource=$url" \
  | "$python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

BENCH_TOKEN=$token BENCH_SECRET=bench-secret farm-bench -n "$runs" --timeout 600 \
  --vs "$mcplock scan --url $url --bearer-env BENCH_TOKEN" -- \
  "$mcplock" scan --url "$url" --oauth-client-id bench --oauth-client-secret-env BENCH_SECRET
