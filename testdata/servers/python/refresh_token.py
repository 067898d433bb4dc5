"""Gets a refresh token as a person's own OAuth client would (to hand to mcplock through the
environment, as CI does): PKCE, a login played by browser.py, the code taken from the redirect
(nobody listens there), exchanged at the token endpoint for RESOURCE.

Usage: refresh_token.py ISSUER CLIENT_ID REDIRECT RESOURCE SCOPE LOGIN
Prints the refresh token; exits 1 when none came.
"""
import base64
import hashlib
import json
import secrets
import sys
import urllib.parse
import urllib.request

from browser import login

issuer, client_id, redirect, resource, scope, name = sys.argv[1:7]
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
state = secrets.token_urlsafe(16)
query = urllib.parse.urlencode({
    "response_type": "code",
    "client_id": client_id,
    "redirect_uri": redirect,
    "scope": scope,
    "state": state,
    "code_challenge": challenge,
    "code_challenge_method": "S256",
    "resource": resource,
    "prompt": "consent",
})
reached, _, _ = login(f"{issuer}/auth?{query}", name, stop_at_redirect=True)
answer = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(reached).query))
if answer.get("state") != state or "code" not in answer:
    print("no code in the redirect:", reached)
    sys.exit(1)
form = urllib.parse.urlencode({
    "grant_type": "authorization_code",
    "code": answer["code"],
    "redirect_uri": redirect,
    "client_id": client_id,
    "code_verifier": verifier,
    "resource": resource,
}).encode()
with urllib.request.urlopen(f"{issuer}/token", data=form, timeout=20) as response:
    tokens = json.load(response)
if "refresh_token" not in tokens:
    print("no refresh token:", sorted(tokens))
    sys.exit(1)
print(tokens["refresh_token"])
