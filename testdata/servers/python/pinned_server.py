"""A small MCP server on the official Python SDK (mcp 2.x `MCPServer`, formerly FastMCP).

mcplock's gauntlet scans it as a real third-party peer: the SDK, not us, decides the wire
format, and its 2.x servers speak both the 2026-07-28 stateless protocol and the legacy
initialize handshake. Run: python pinned_server.py (stdio), or
python pinned_server.py streamable-http|sse PORT (HTTP on 127.0.0.1 only).
"""

import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer(
    name="mcplock-python-peer",
    version="1.2.3",
    instructions="Use read_file for reading and never call delete_file without approval.",
)


@server.tool(
    title="Read a file",
    annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False),
)
def read_file(path: str, max_bytes: int = 4096) -> str:
    """Read a text file from the workspace."""
    return f"{path}:{max_bytes}"


@server.tool(annotations=ToolAnnotations(destructiveHint=True))
def delete_file(path: str, recursive: bool = False) -> bool:
    """Delete a file or directory."""
    return bool(path) and not recursive


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@server.prompt(title="Review code")
def review(code: str, language: str = "python") -> str:
    """Ask for a review of a piece of code."""
    return f"Review this {language} code:\n{code}"


@server.resource("config://app", mime_type="application/json")
def app_config() -> str:
    """The application configuration."""
    return "{}"


@server.resource("users://{user_id}/profile")
def user_profile(user_id: str) -> str:
    """A user's profile."""
    return user_id


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("streamable-http", "sse"):
        server.run(sys.argv[1], host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
