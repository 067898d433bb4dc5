#!/usr/bin/env bash
# Check an mcplock audit bundle without mcplock: unzip, sha256sum and openssl (plus the
# lockfile recipe, verify-with-openssl.sh, which needs Python's `rfc8785`).
# Usage: verify-bundle-by-hand.sh BUNDLE PUBLIC_KEY [PYTHON]
# PUBLIC_KEY is the signer's key as obtained from the signer, never the one inside the bundle.
# This is the recipe of docs/bundle.md, run as written by the gauntlet.
set -euo pipefail
bundle=$1 public=$2 python=${3:-python3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# 1. List before extracting: only plain top-level names, nothing else.
names=$(unzip -Z1 "$bundle")
if printf '%s\n' "$names" | grep -qvE '^(README\.txt|manifest\.json(\.sig)?|mcp-lock\.json(\.sig)?|signer\.pub|policy\.yaml|policy-result\.json)$'; then
  echo "unexpected member in the bundle:" >&2; printf '%s\n' "$names" >&2; exit 1
fi
unzip -q "$bundle" -d "$work"
cd "$work"

# 2. The manifest is signed by the signer's key, over its exact bytes.
want=$(sed -n 's/.*"keyId": *"sha256:\([0-9a-f]*\)".*/\1/p' manifest.json.sig)
have=$(openssl pkey -pubin -in "$public" -outform DER | sha256sum | cut -d' ' -f1)
[ "$want" = "$have" ] || { echo "manifest signed by key $want, not by $have" >&2; exit 1; }
type='application/vnd.mcplock.bundle-manifest+json; version=1'
{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(wc -c < manifest.json)"; cat manifest.json; } > "$work/signed"
sed -n 's/.*"signature": *"\([^"]*\)".*/\1/p' manifest.json.sig | base64 -d > "$work/sig"
openssl pkeyutl -verify -pubin -inkey "$public" -rawin -in "$work/signed" -sigfile "$work/sig"

# 3. Every member is in the manifest with its sha256, and every listed file is present.
listed=$(sed -n '/^  "files": {$/,/^  },$/s/^    "\([^"]*\)": {$/\1/p' manifest.json)
for f in $names; do
  case $f in manifest.json|manifest.json.sig) continue ;; esac
  printf '%s\n' "$listed" | grep -qxF "$f" || { echo "$f is not in manifest.json" >&2; exit 1; }
done
for f in $listed; do
  [ -f "$f" ] || { echo "$f is listed in manifest.json but missing" >&2; exit 1; }
  sum=$(grep -A1 "^    \"$f\": {\$" manifest.json | sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p')
  echo "$sum  $f" | sha256sum --check --quiet
done

# 4. The lockfile's own signature (over its RFC 8785 canonical bytes).
"$here/verify-with-openssl.sh" mcp-lock.json mcp-lock.json.sig "$public" "$python"
echo "bundle verified by hand"
