#!/usr/bin/env bash
# Installs the third-party MCP servers the gauntlet scans, at pinned versions, inside this
# folder: @modelcontextprotocol/server-everything and tailwindcss-mcp-server (npm, TypeScript
# SDK; the latter prints banners on stdout), the TypeScript SDK itself (its Client drives the
# proxy tests as a host), a server and a host on the official Python SDK (PyPI `mcp`),
# and mcp-server-sqlite (PyPI; advertises resources without a templates handler) in a venv of
# its own. Needs node/npm and python3 with venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

npm ci --prefix "$here/node" --no-audit --no-fund --loglevel=error

if [ ! -x "$here/python/.venv/bin/python" ]; then
  python3 -m venv "$here/python/.venv"
fi
"$here/python/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"

if [ ! -x "$here/sqlite/.venv/bin/python" ]; then
  python3 -m venv "$here/sqlite/.venv"
fi
"$here/sqlite/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/sqlite/requirements.txt"

echo "real servers installed under $here"
