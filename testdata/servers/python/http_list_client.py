"""The official Python SDK client listing every tool of a server over Streamable HTTP.

Usage: http_list_client.py URL   ->  prints the number of tools listed
The yardstick of the remote scan benchmark (gauntlet/bench/remote_bench.sh): the same
exchanges mcplock makes (initialize, tools/list page by page), by a client nobody here wrote.
"""
import asyncio
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import PaginatedRequestParams


async def main() -> None:
    async with streamable_http_client(sys.argv[1]) as (read, write, *_):
        async with ClientSession(read, write) as session:
            await session.initialize()
            count = 0
            params = None
            while True:
                page = await session.list_tools(params=params)
                count += len(page.tools)
                if not page.next_cursor:
                    break
                params = PaginatedRequestParams(cursor=page.next_cursor)
            print(count)


asyncio.run(main())
