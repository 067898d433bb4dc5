#!/usr/bin/env bash
# Benchmark: peak memory and wall time of `mcplock lock` of a server with many tools in one page.
#
# `/usr/bin/time` reports the largest peak RSS among the process and every descendant it waited
# for, and the fixture building a 50,000-tool answer is itself larger than mcplock. So the fixture
# runs outside mcplock's process tree: mcplock launches a two-`cat` shim joined to the fixture by
# named pipes, and the figure is mcplock's own (the shim is a few hundred KiB).
# Usage: gauntlet/bench/lock_memory.sh [TOOLS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
tools="${1:-50000}"
runs="${2:-3}"
cargo build --release --quiet --bins
mcplock="$PWD/target/release/mcplock"
fixture="$PWD/target/release/mcplock-fixture"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkfifo "$work/to-server" "$work/from-server"
cat >"$work/shim.sh" <<EOF
#!/bin/sh
cat "$work/from-server" &
exec cat >"$work/to-server"
EOF
chmod +x "$work/shim.sh"

for run in $(seq "$runs"); do
  rm -f "$work/mcp-lock.json"
  /usr/bin/time -f "%e %M" -o "$work/fixture.time" \
    "$fixture" --era legacy --tools "$tools" <"$work/to-server" >"$work/from-server" 2>/dev/null &
  fixture_pid=$!
  (cd "$work" && /usr/bin/time -f "%e %M" -o "$work/lock.time" \
    "$mcplock" lock --max-message-size 64MiB --max-items 200000 --name bench -- "$work/shim.sh" >/dev/null)
  wait "$fixture_pid" || true
  bytes=$(stat -c %s "$work/mcp-lock.json")
  read -r wall kib <"$work/lock.time"
  read -r _ fixture_kib <"$work/fixture.time"
  awk -v run="$run" -v tools="$tools" -v bytes="$bytes" -v wall="$wall" -v kib="$kib" -v fk="$fixture_kib" 'BEGIN {
    printf "run %d: %d tools, lockfile %.1f MB, lock %.2f s, peak RSS %.1f MiB (%.2fx the lockfile); fixture %.1f MiB\n",
      run, tools, bytes / 1e6, wall, kib / 1024, kib * 1024 / bytes, fk / 1024
  }'
done
