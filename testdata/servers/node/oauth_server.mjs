// A real OAuth 2.1 authorization server for the gateway's tests: panva's oidc-provider (a
// certified OpenID Provider implementation), on 127.0.0.1 only, issuing JWT access tokens
// bound to the resource asked for (RFC 8707) to machine clients (client credentials).
//
// Usage: node oauth_server.mjs CONFIG_JSON
//   CONFIG_JSON: {"clients": [{"id": ID, "secret": SECRET, "ttl": SECONDS}]}
//   (a client's tokens live `ttl` seconds, 300 by default)
// Prints `listening on http://127.0.0.1:PORT` (its issuer) on stderr.
import http from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(process.argv[2] ?? "{}");
const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients ?? []).map((c) => ({
      client_id: c.id,
      client_secret: c.secret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_post",
    })),
    scopes: ["mcp"],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => ({
          scope: "mcp",
          audience: resource,
          accessTokenTTL: (config.clients ?? []).find((c) => c.id === client.clientId)?.ttl ?? 300,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
  });
  server.on("request", provider.callback());
  process.stderr.write(`listening on ${issuer}\n`);
});
