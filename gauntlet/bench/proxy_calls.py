"""Benchmark driver: N sequential tools/call round trips over stdio, as one JSON-RPC client.

Usage: proxy_calls.py N [--rss-every K] -- CMD ARGS...
Starts CMD, initializes (legacy handshake), lists tools, then sends N `tools/call` requests of
the first tool one after another, each waiting for its answer. Prints one JSON object: calls,
seconds, calls per second, median and p99 round trip in microseconds, and with --rss-every the
resident memory (VmRSS, KiB) of CMD's process every K calls. A raw client on purpose: an SDK's
own overhead would hide what the proxy adds.
"""
import json
import statistics
import subprocess
import sys
import time


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1:]
    opts = sys.argv[1:sys.argv.index("--")]
    n = int(opts[0])
    rss_every = int(opts[opts.index("--rss-every") + 1]) if "--rss-every" in opts else 0
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    out = proc.stdout
    next_id = 0

    def call(method, params):
        nonlocal next_id
        next_id += 1
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method,
                                     "params": params}).encode() + b"\n")
        while True:
            line = out.readline()
            if not line:
                raise SystemExit(f"the server closed its output during {method}")
            msg = json.loads(line)
            if msg.get("id") == next_id:
                if "error" in msg:
                    raise SystemExit(f"{method} failed: {msg['error']}")
                return msg["result"]

    def rss_kib():
        with open(f"/proc/{proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "bench", "version": "1"}})
    proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    tool = call("tools/list", {})["tools"][0]["name"]
    times = []
    rss = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        call("tools/call", {"name": tool, "arguments": {"path": f"file-{i}"}})
        times.append(time.perf_counter() - t0)
        if rss_every and (i + 1) % rss_every == 0:
            rss.append(rss_kib())
    seconds = time.perf_counter() - start
    proc.stdin.close()
    proc.wait(timeout=10)
    times.sort()
    print(json.dumps({
        "calls": n,
        "seconds": round(seconds, 3),
        "calls_per_second": round(n / seconds),
        "median_us": round(statistics.median(times) * 1e6, 1),
        "p99_us": round(times[int(len(times) * 0.99)] * 1e6, 1),
        "rss_kib": rss,
    }))


main()
