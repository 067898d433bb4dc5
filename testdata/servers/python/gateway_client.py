"""A real remote MCP host for the gateway tests: the official Python SDK's ClientSession over
its Streamable HTTP client transport, driven one step at a time so a test can change things
between two steps of one live session.

Usage: gateway_client.py URL TOKEN [legacy|auto]
Connects with `Authorization: Bearer TOKEN` (none when TOKEN is empty): `legacy` (the
default) with ClientSession's initialize handshake; `auto` with the SDK's Client and its own
era negotiation (server/discover, falling back to initialize). Prints {"connected":
SERVER_NAME, "protocol": VERSION} (or {"connectError": MESSAGE} and exits), then reads one
JSON step per line on stdin and prints one JSON line per step:
  {"list": true}                          -> {"tools": [NAMES]}
  {"call": NAME, "arguments": {...}}      -> {"text": [...], "isError": B} or {"error": MESSAGE}
     (with "progress": true, the call asks for progress: "progress": [each report's value])
  {"resources": true}                     -> {"resources": [URIS], "templates": [URI_TEMPLATES]}
  {"read": URI}                           -> {"text": [...]} or {"error": MESSAGE}
The session ends (DELETE) when stdin closes.
"""
import asyncio
import json
import sys

from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def say(doc) -> None:
    print(json.dumps(doc, sort_keys=True), flush=True)


async def steps(session) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        step = json.loads(line)
        try:
            if step.get("list"):
                tools = await session.list_tools()
                say({"tools": sorted(t.name for t in tools.tools)})
            elif step.get("resources"):
                resources = await session.list_resources()
                templates = await session.list_resource_templates()
                say({
                    "resources": sorted(str(r.uri) for r in resources.resources),
                    "templates": sorted(t.uri_template for t in templates.resource_templates),
                })
            elif "read" in step:
                read = await session.read_resource(step["read"])
                say({"text": [c.text for c in read.contents if getattr(c, "text", None) is not None]})
            else:
                reports = []

                async def progressed(progress, total, message):
                    reports.append(progress)

                on_progress = progressed if step.get("progress") else None
                result = await session.call_tool(
                    step["call"], step.get("arguments", {}), progress_callback=on_progress
                )
                texts = [c.text for c in result.content if getattr(c, "text", None)]
                said = {"text": texts, "isError": bool(result.is_error)}
                if on_progress:
                    said["progress"] = reports
                say(said)
        except Exception as error:  # a JSON-RPC error from the gateway or the server
            say({"error": str(error)})


async def main() -> None:
    url, token = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "legacy"
    # An empty token: no header at all (a server reached directly, for comparison).
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        if mode == "auto":
            async with http, Client(streamable_http_client(url, http_client=http), mode="auto") as client:
                name = client.server_info.name if client.server_info else None
                say({"connected": name, "protocol": client.protocol_version})
                await steps(client)
            return
        async with http, streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                say({"connected": init.server_info.name, "protocol": init.protocol_version})
                await steps(session)
    except Exception as error:
        say({"connectError": str(error)})


asyncio.run(main())
