"""List every tool of a stdio MCP server with the official Python SDK client (mcp 2.x).

The reference point for mcplock's scan benchmark: same server, same pages, another client.
Usage: python_list_tools.py CMD [ARGS...]   (prints the number of tools listed)
"""

import asyncio
import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters


async def main(argv: list[str]) -> None:
    params = StdioServerParameters(command=argv[0], args=argv[1:])
    async with Client(params) as client:
        names = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            names.extend(tool.name for tool in page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
    print(len(names))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
