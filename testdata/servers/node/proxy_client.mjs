// A real MCP host for the proxy tests: the official TypeScript SDK's Client over stdio.
//
// Usage: node proxy_client.mjs CALLS_JSON -- CMD ARGS...
// Connects (initialize), lists tools, then calls each [name, arguments] of CALLS_JSON in order
// and prints one JSON document: the server's name, the tool names and descriptions listed, and
// for each call either the texts it returned or the error the client raised. A call given as
// [name, arguments, {"cancelOnProgress": true}] asks for progress and cancels the call (the
// SDK sends notifications/cancelled) at its first progress report, or after 10 s without one;
// its entry records the progress reports seen and whether it was cancelled.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const calls = JSON.parse(process.argv[2]);
const argv = process.argv.slice(process.argv.indexOf("--") + 1);
const transport = new StdioClientTransport({ command: argv[0], args: argv.slice(1), stderr: "inherit" });
const client = new Client({ name: "mcplock-proxy-test", version: "1.0.0" });
await client.connect(transport);
const out = { server: client.getServerVersion()?.name };
const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name).sort();
out.descriptions = Object.fromEntries(tools.map((t) => [t.name, t.description ?? null]));
out.calls = [];
for (const [name, args, how] of calls) {
  if (how?.cancelOnProgress) {
    const controller = new AbortController();
    const progress = [];
    const timer = setTimeout(() => controller.abort(new Error("no progress within 10 s")), 10_000);
    try {
      await client.callTool({ name, arguments: args }, undefined, {
        signal: controller.signal,
        onprogress: (p) => {
          progress.push(p);
          controller.abort(new Error("cancelled at the first progress report"));
        },
      });
      out.calls.push({ tool: name, progress, cancelled: false });
    } catch (error) {
      out.calls.push({ tool: name, progress, cancelled: controller.signal.aborted, error: String(error.message ?? error) });
    } finally {
      clearTimeout(timer);
    }
    continue;
  }
  try {
    const result = await client.callTool({ name, arguments: args });
    const text = result.content.filter((c) => typeof c.text === "string").map((c) => c.text);
    out.calls.push({ tool: name, text, isError: Boolean(result.isError) });
  } catch (error) {
    out.calls.push({ tool: name, error: String(error.message ?? error) });
  }
}
await client.close();
const sorted = (v) =>
  Array.isArray(v) ? v.map(sorted)
  : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
  : v;
console.log(JSON.stringify(sorted(out)));
