// A real remote MCP host for the gateway tests: the official TypeScript SDK's Client over its
// StreamableHTTPClientTransport.
//
// Usage: node http_client.mjs URL TOKEN CALLS_JSON
// Connects (initialize) with `Authorization: Bearer TOKEN`, lists tools, calls each
// [name, arguments] of CALLS_JSON in order and prints one JSON document: the server's name,
// the tool names listed, and each call's texts or the error the client raised. A failure to
// connect is printed as {"connectError": MESSAGE}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, callsJson] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: token ? { Authorization: `Bearer ${token}` } : {} },
});
const client = new Client({ name: "mcplock-gateway-test", version: "1.0.0" });
try {
  await client.connect(transport);
} catch (error) {
  console.log(JSON.stringify({ connectError: String(error.message ?? error) }));
  process.exit(0);
}
const out = { server: client.getServerVersion()?.name, session: Boolean(transport.sessionId) };
const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name).sort();
out.calls = [];
for (const [name, args] of JSON.parse(callsJson)) {
  try {
    const result = await client.callTool({ name, arguments: args });
    const text = result.content.filter((c) => typeof c.text === "string").map((c) => c.text);
    out.calls.push({ tool: name, text, isError: Boolean(result.isError) });
  } catch (error) {
    out.calls.push({ tool: name, error: String(error.message ?? error) });
  }
}
await transport.terminateSession().catch(() => {});
await client.close();
console.log(JSON.stringify(out));
