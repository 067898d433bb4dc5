#!/usr/bin/env bash
# Benchmark (issues 19 and 33): verify, diff (5% of tools changed, and every tool changed) and
# policy check --preset strict on 1,000 / 10,000 / 100,000-tool lockfiles, each command's
# median wall time and peak RSS next to its floor (sha256sum for verify; jq -S . for a full
# parse; `mcplock --version` for the process itself), and the input size, in one run.
# Usage: gauntlet/bench/scale_bench.sh [RUNS]   (needs jq and GNU time)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
cargo build --release --quiet --bins
cargo bench --quiet --bench lockfile --no-run 2>/dev/null
root=$PWD
gen() { (cd "$root" && cargo bench --quiet --bench lockfile -- "$@" >/dev/null); }
mcplock=$root/target/release/mcplock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$mcplock" keygen --private k.key --public k.pub >/dev/null

# One measurement: median wall ms and max peak RSS KiB over $runs runs of the command.
measure() {
  local walls=() rss=0 out
  for _ in $(seq "$runs"); do
    # Exit 1 is a finding (policy, diff), not a failed measurement; 2 and up are.
    local code=0
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1 || code=$?
    if [ "$code" -gt 1 ]; then echo "failed ($code): $*" >&2; fi
    out=$(tail -1 "$work/time")
    walls+=("$(echo "$out" | awk '{printf "%d", $1 * 1000}')")
    local r; r=$(echo "$out" | awk '{print $2}')
    [ "$r" -gt "$rss" ] && rss=$r
  done
  local median; median=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  echo "$median $rss"
}

printf '%-8s %-10s %-26s %10s %12s %14s\n' tools input_MB command wall_ms peak_RSS_MiB RSS/input
floor=$(/usr/bin/time -f "%M" "$mcplock" --version 2>&1 >/dev/null | tail -1)
echo "process floor (mcplock --version): $(awk "BEGIN{printf \"%.1f\", $floor/1024}") MiB peak RSS"
for n in 1000 10000 100000; do
  gen generate "$work/a-$n.json" "$n"
  gen generate-changed "$work/b-$n.json" "$n"
  gen generate-all-changed "$work/c-$n.json" "$n"
  "$mcplock" sign "a-$n.json" --key k.key >/dev/null
  bytes=$(stat -c %s "a-$n.json")
  two=$(( bytes + $(stat -c %s "b-$n.json") ))
  row() { # label, input bytes, command...
    local label=$1 input=$2; shift 2
    read -r wall rss < <(measure "$@")
    printf '%-8s %-10s %-26s %10s %12s %14s\n' "$n" "$(awk "BEGIN{printf \"%.1f\", $input/1048576}")" "$label" "$wall" \
      "$(awk "BEGIN{printf \"%.1f\", $rss/1024}")" "$(awk "BEGIN{printf \"%.1fx\", $rss*1024/$input}")"
  }
  row "sha256sum (floor)" "$bytes" sha256sum "a-$n.json"
  row "jq -S . (floor)" "$bytes" jq -S . "a-$n.json"
  row "verify" "$bytes" "$mcplock" verify "a-$n.json" --key k.pub
  row "diff a b (5% changed)" "$two" "$mcplock" diff "a-$n.json" "b-$n.json" --fail-on never
  row "diff a c (all changed)" "$(( bytes + $(stat -c %s "c-$n.json") ))" "$mcplock" diff "a-$n.json" "c-$n.json" --fail-on never
  row "policy check strict" "$bytes" "$mcplock" policy check --preset strict --lockfile "a-$n.json" --eval-timeout 300 --eval-memory 12GiB
  rm -f "a-$n.json" "b-$n.json" "c-$n.json" "a-$n.json.sig"
done
