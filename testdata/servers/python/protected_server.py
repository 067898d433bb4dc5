"""An MCP server protected by the official Python SDK's auth support, as a resource server: it
takes only JWT access tokens of ISSUER (checked against ISSUER's JWKS with PyJWT), issued for
its own URL (RFC 8707 audience) and holding the scope `mcp`; anything else gets the SDK's 401
with its Protected Resource Metadata. A token that also holds the scope `admin` is offered one tool
more (`purge_catalog`): `tools/list` MAY vary by the authorization presented, so one URL has a
surface per credential.

Usage: protected_server.py ISSUER PORT   (Streamable HTTP on 127.0.0.1:PORT/mcp)
"""
import sys

import jwt
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

issuer, port = sys.argv[1], int(sys.argv[2])
resource = f"http://127.0.0.1:{port}/mcp"
keys = jwt.PyJWKClient(f"{issuer}/jwks")


class Verifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            key = keys.get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=resource, issuer=issuer)
        except Exception:
            return None
        return AccessToken(
            token=token,
            client_id=claims.get("client_id", ""),
            scopes=claims.get("scope", "").split(),
            expires_at=claims.get("exp"),
            resource=resource,
        )


ADMIN_ONLY = {"purge_catalog"}


def is_admin() -> bool:
    token = get_access_token()
    return token is not None and "admin" in token.scopes


class ScopedServer(MCPServer):
    async def list_tools(self):
        tools = await super().list_tools()
        return tools if is_admin() else [t for t in tools if t.name not in ADMIN_ONLY]

    async def call_tool(self, name, arguments, context=None):
        if name in ADMIN_ONLY and not is_admin():
            raise ValueError(f"unknown tool {name}")
        return await super().call_tool(name, arguments, context)


server = ScopedServer(
    name="mcplock-protected-peer",
    token_verifier=Verifier(),
    auth=AuthSettings(
        issuer_url=issuer,
        resource_server_url=resource,
        required_scopes=["mcp"],
        validate_token_resource=True,
    ),
)


@server.tool()
def lookup(term: str) -> str:
    """Look a term up in the catalog."""
    return f"{term}: found"


@server.tool()
def purge_catalog(confirm: bool) -> str:
    """Delete every entry of the catalog (administrators only)."""
    return "purged" if confirm else "nothing done"


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=port)
