#!/usr/bin/env bash
# Installs the third-party MCP servers the gauntlet scans, at pinned versions, inside this
# folder: @modelcontextprotocol/server-everything (npm, TypeScript SDK) and a server on the
# official Python SDK (PyPI `mcp`). Needs node/npm and python3 with venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

npm ci --prefix "$here/node" --no-audit --no-fund --loglevel=error

if [ ! -x "$here/python/.venv/bin/python" ]; then
  python3 -m venv "$here/python/.venv"
fi
"$here/python/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"

echo "real servers installed under $here"
