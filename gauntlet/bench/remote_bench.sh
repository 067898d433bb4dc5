#!/usr/bin/env bash
# Benchmark: scan of a 2,000-tool server over Streamable HTTP (pages of 50, sessions), mcplock
# against the official Python SDK client doing the same listing (initialize, tools/list page by
# page), paired in one farm-bench run.
# Usage: gauntlet/bench/remote_bench.sh [RUNS]   (needs testdata/servers/install.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-10}"
cargo build --release --quiet --bins
root=$PWD
python=$root/testdata/servers/python/.venv/bin/python
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" "$root/testdata/servers/python/hostile_http.py" tools "$port" 2000 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null; then break; fi
  sleep 0.1
done
url="http://127.0.0.1:$port/mcp"
echo "tools listed: mcplock $("$root/target/release/mcplock" scan --format json --url "$url" | "$python" -c 'import json,sys; print(len(json.load(sys.stdin)["tools"]))'), python sdk $("$python" "$root/testdata/servers/python/http_list_client.py" "$url")"
farm-bench -n "$runs" --timeout 600 \
  --vs "$python $root/testdata/servers/python/http_list_client.py $url" \
  -- "$root/target/release/mcplock" scan --format json --url "$url"
