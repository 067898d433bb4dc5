// A real OAuth 2.1 authorization server for the gateway's tests: panva's oidc-provider (a
// certified OpenID Provider implementation), on 127.0.0.1 only, issuing JWT access tokens
// bound to the resource asked for (RFC 8707) to machine clients (client credentials).
//
// A client with a `redirect` is a native app a person logs in to (authorization code with PKCE,
// a public client when it has no secret; with `"refresh": true`, also given refresh tokens), through oidc-provider's own development login and
// consent pages (any login name is accepted and becomes the token's subject).
//
// Usage: node oauth_server.mjs CONFIG_JSON
//   CONFIG_JSON: {"clients": [{"id": ID, "secret": SECRET, "ttl": SECONDS, "redirect": URL}],
//                 "scopes": [EXTRA SCOPE, ...], "log": FILE}
//   (a client's tokens live `ttl` seconds, 300 by default; with `log`, one line per request,
//   "METHOD PATH", is appended to FILE)
// Prints `listening on http://127.0.0.1:PORT` (its issuer) on stderr.
import fs from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(process.argv[2] ?? "{}");
const server = http.createServer();
const extraScopes = config.scopes ?? [];
const people = (config.clients ?? []).some((c) => c.redirect);
const ttlOf = (client) => (config.clients ?? []).find((c) => c.id === client.clientId)?.ttl ?? 300;
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients ?? []).map((c) =>
      c.redirect
        ? {
            client_id: c.id,
            ...(c.secret ? { client_secret: c.secret } : {}),
            application_type: "native",
            grant_types: c.refresh ? ["authorization_code", "refresh_token"] : ["authorization_code"],
            redirect_uris: [c.redirect],
            response_types: ["code"],
            token_endpoint_auth_method: c.secret ? "client_secret_post" : "none",
          }
        : {
            client_id: c.id,
            client_secret: c.secret,
            grant_types: ["client_credentials"],
            redirect_uris: [],
            response_types: [],
            token_endpoint_auth_method: "client_secret_post",
          },
    ),
    scopes: ["openid", "offline_access", "mcp", ...extraScopes],
    // Every lifetime set (oidc-provider warns about each left to its default); a resource's
    // access tokens live as long as getResourceServerInfo says.
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      ClientCredentials: (_ctx, _token, client) => ttlOf(client),
      Grant: 3600,
      IdToken: 300,
      Interaction: 600,
      RefreshToken: 3600,
      Session: 3600,
    },
    // A client allowed the refresh_token grant gets a refresh token with every code.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    features: {
      devInteractions: { enabled: people },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => ({
          scope: ["mcp", ...extraScopes].join(" "),
          audience: resource,
          accessTokenTTL: ttlOf(client),
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
  });
  if (config.log) {
    server.on("request", (req) => fs.appendFileSync(config.log, `${req.method} ${req.url.split("?")[0]}\n`));
  }
  server.on("request", provider.callback());
  process.stderr.write(`listening on ${issuer}\n`);
});
