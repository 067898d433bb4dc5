"""The rounds a gateway benchmark ran (`KIND JSON` lines, JSON from gateway_calls.mjs) and what
they say: each kind's medians over rounds, and what one kind adds to another round by round.
Used by gateway_bench.sh, limits_bench.sh and oauth_bench.sh."""
import json
import statistics


def load(path):
    runs = {}
    for line in open(path):
        kind, doc = line.split(None, 1)
        runs.setdefault(kind, []).append(json.loads(doc))
    return runs


def medians(runs):
    for kind, r in runs.items():
        print(f"{kind}: {statistics.median(x['calls_per_second'] for x in r):.0f} calls/s, "
              f"median round trip {statistics.median(x['median_us'] for x in r):.0f} us, "
              f"p99 {statistics.median(x['p99_us'] for x in r):.0f} us (medians over rounds)")


def spread(values, unit="", digits=0):
    return (f"median {statistics.median(values):.{digits}f}{unit} "
            f"(min {min(values):.{digits}f}, max {max(values):.{digits}f})")


def added_latency(runs, base, kind):
    """Median round trip of `kind` minus `base`'s, round by round."""
    return [k["median_us"] - b["median_us"] for b, k in zip(runs[base], runs[kind])]


def throughput_ratio(runs, base, kind):
    return [k["calls_per_second"] / b["calls_per_second"] for b, k in zip(runs[base], runs[kind])]
