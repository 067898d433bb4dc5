#!/usr/bin/env bash
# Verify an mcplock Ed25519 signature without mcplock: an independent RFC 8785 implementation
# (Python `rfc8785`) makes the canonical bytes, printf makes the DSSE PAE, openssl verifies.
# Usage: verify-with-openssl.sh LOCKFILE SIGNATURE PUBLIC_KEY [PYTHON]
# This is the recipe of docs/signing.md, run as written by the gauntlet.
set -euo pipefail
lockfile=$1 signature=$2 public=$3 python=${4:-python3}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# 1. The canonical (RFC 8785) bytes of the lockfile.
"$python" -c 'import json, sys, rfc8785; sys.stdout.buffer.write(rfc8785.dumps(json.load(open(sys.argv[1], encoding="utf-8"))))' \
  "$lockfile" > "$work/body"

# 2. What was signed: DSSE v1 pre-authentication encoding of payload type and body.
type='application/vnd.mcplock.lockfile+json; version=1'
{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < "$work/body")"; cat "$work/body"; } > "$work/signed"

# 3. The key id the envelope names must be the sha256 of this public key's DER SPKI.
want=$(sed -n 's/.*"keyId": *"sha256:\([0-9a-f]*\)".*/\1/p' "$signature")
have=$(openssl pkey -pubin -in "$public" -outform DER | sha256sum | cut -d' ' -f1)
[ "$want" = "$have" ] || { echo "key id mismatch: signature names $want, key is $have" >&2; exit 1; }

# 4. The signature itself.
sed -n 's/.*"signature": *"\([^"]*\)".*/\1/p' "$signature" | base64 -d > "$work/sig"
openssl pkeyutl -verify -pubin -inkey "$public" -rawin -in "$work/signed" -sigfile "$work/sig"
