# Sourced by the gateway and OAuth benchmarks (gateway_bench.sh, limits_bench.sh, oauth_bench.sh,
# oauth_client_bench.sh) from
# the repository's root: builds mcplock, names what they run, makes a work directory removed on
# exit with every process they start (append each pid to `pids`), and starts gateways.
cargo build --release --quiet --bins
root=$PWD
mcplock=$root/target/release/mcplock
node_dir=$root/testdata/servers/node
everything=$node_dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js
driver=$node_dir/gateway_calls.mjs
python=$root/testdata/servers/python/.venv/bin/python
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

# wait_listening FILE: waits (10 s at most) until FILE says `listening on`.
wait_listening() {
  for _ in $(seq 100); do grep -q "listening on" "$1" && return; sleep 0.1; done
}

# start_auth_server CONFIG: oidc-provider (oauth_server.mjs) with CONFIG; its issuer in $issuer.
start_auth_server() {
  node "$node_dir/oauth_server.mjs" "$1" 2>"$work/as.err" &
  pids+=($!)
  wait_listening "$work/as.err"
  issuer=$(grep -o 'listening on http://[0-9.:]*' "$work/as.err" | head -1 | cut -d' ' -f3)
}

# start_gateway NAME FLAGS...: `mcplock gateway --agents agents.json --allow-unsigned` on a free
# loopback port, from the current directory, with FLAGS; its URL in $url, its pid in
# $gateway_pid, its stderr in $work/NAME.err.
start_gateway() {
  local name=$1
  shift
  "$mcplock" gateway --agents agents.json --allow-unsigned --listen 127.0.0.1:0 "$@" \
    2>"$work/$name.err" &
  gateway_pid=$!
  pids+=("$gateway_pid")
  wait_listening "$work/$name.err"
  url=$(grep -o 'listening on http://[0-9.:]*' "$work/$name.err" | head -1 | cut -d' ' -f3)
}
