// Benchmark driver: SESSIONS concurrent official TypeScript SDK clients over Streamable HTTP,
// each calling `echo` CALLS times in a row; prints one JSON line: calls per second over all
// sessions, and the median and p99 round trip in microseconds.
// Usage: node gateway_calls.mjs URL TOKEN|- SESSIONS CALLS  (run from testdata/servers/node)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, sessions, calls] = process.argv.slice(2);
const headers = token && token !== "-" ? { Authorization: `Bearer ${token}` } : {};

async function session() {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: "mcplock-bench", version: "1.0.0" });
  await client.connect(transport);
  await client.listTools();
  return { client, transport };
}

const opened = await Promise.all(Array.from({ length: Number(sessions) }, session));
const times = [];
const started = process.hrtime.bigint();
await Promise.all(
  opened.map(async ({ client }) => {
    for (let i = 0; i < Number(calls); i++) {
      const t = process.hrtime.bigint();
      await client.callTool({ name: "echo", arguments: { message: `m${i}` } });
      times.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  }),
);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
for (const { client, transport } of opened) {
  await transport.terminateSession().catch(() => {});
  await client.close();
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
console.log(
  JSON.stringify({
    calls_per_second: Math.round(times.length / seconds),
    median_us: Math.round(at(0.5)),
    p99_us: Math.round(at(0.99)),
  }),
);
