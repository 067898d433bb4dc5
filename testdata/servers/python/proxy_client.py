"""A real MCP host for the proxy tests: the official Python SDK's ClientSession over stdio.

Usage: proxy_client.py CALLS_JSON -- CMD ARGS...
Initializes, lists tools, then calls each (name, arguments) of CALLS_JSON in order and prints
one JSON document: the server's name, the tool names listed, and for each call either the
text it returned or the JSON-RPC error the session raised. MCP_SERVER_ENV (a JSON object), when
set, is the server's `env`, given on top of the SDK's default environment as a host does.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client


async def main() -> None:
    calls = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    env = None
    if os.environ.get("MCP_SERVER_ENV"):
        env = {**get_default_environment(), **json.loads(os.environ["MCP_SERVER_ENV"])}
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            out["descriptions"] = {t.name: t.description for t in tools.tools}
            out["calls"] = []
            for name, arguments in calls:
                try:
                    result = await session.call_tool(name, arguments)
                    texts = [c.text for c in result.content if getattr(c, "text", None)]
                    out["calls"].append({"tool": name, "text": texts, "isError": bool(result.is_error)})
                except Exception as error:  # a JSON-RPC error from the proxy or the server
                    out["calls"].append({"tool": name, "error": str(error)})
    print(json.dumps(out, sort_keys=True))


asyncio.run(main())
