#!/usr/bin/env bash
# Installs the third-party MCP servers the gauntlet scans, at pinned versions, inside this
# folder: @modelcontextprotocol/server-everything and tailwindcss-mcp-server (npm, TypeScript
# SDK; the latter prints banners on stdout), the TypeScript SDK itself (its Client drives the
# proxy tests as a host), a server and a host on the official Python SDK (PyPI `mcp`), and
# mcp-server-sqlite (PyPI; advertises resources without a templates handler) in a venv of its
# own. For the artifact tests also: another server-everything version (node-alt), an npx cache
# of our own (npx-cache) and a uv cache of our own (uv-cache, through the uv the Python venv
# installs). Infrastructure the gateway tests stand on, from npm too: Express (a static file
# server with ETags, for published lockfiles and revocation lists) and oidc-provider (a certified
# OpenID Provider, the authorization server of the OAuth tests). Needs node/npm and python3
# with venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

npm ci --prefix "$here/node" --no-audit --no-fund --loglevel=error
# Another version of server-everything: the artifact tests swap it in behind the same launch.
npm ci --prefix "$here/node-alt" --no-audit --no-fund --loglevel=error
# mcp-remote, the bridge a stdio-only host reaches a remote server with (the gateway tests), in a
# tree of its own so the servers in node/ keep the dependencies they were locked with.
npm ci --prefix "$here/node-bridge" --no-audit --no-fund --loglevel=error
# ToolPin (npm), a peer: its own CLI signs the lockfile `mcplock import` then checks.
npm ci --prefix "$here/toolpin" --no-audit --no-fund --loglevel=error
# An npx cache of our own, warmed with the exact spec the tests launch with `npx -y` (npx names
# its cache directory after the spec; run from outside any project so npx installs it there).
# Also a range that only that version satisfies: a launch that floats, for `lock --pin`.
for spec in "@modelcontextprotocol/server-everything@2026.8.31" \
  "@modelcontextprotocol/server-everything@>=2026.8.31 <2026.8.32"; do
  (cd "$(mktemp -d)" && npm_config_cache="$here/npx-cache" npm exec --yes --no-audit --no-fund \
    --loglevel=error --package="$spec" -- node -e "")
done

if [ ! -x "$here/python/.venv/bin/python" ]; then
  python3 -m venv "$here/python/.venv"
fi
"$here/python/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"

if [ ! -x "$here/sqlite/.venv/bin/python" ]; then
  python3 -m venv "$here/sqlite/.venv"
fi
"$here/sqlite/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/sqlite/requirements.txt"

# A uv cache of our own holding mcp-server-sqlite, for a server launched with uvx; its
# dependencies are held to the sqlite venv's pins (it breaks on the 2.x SDK), as the tests do.
UV_CACHE_DIR="$here/uv-cache" UV_CONSTRAINT="$here/sqlite/requirements.txt" \
  "$here/python/.venv/bin/uvx" --quiet --from mcp-server-sqlite==2025.4.25 python -c ""

echo "real servers installed under $here"
