#!/usr/bin/env python3
"""Print a well-formed OIDC identity token (JWT) for the mock Fulcio in mock_services.py.

The token is ES256-signed by a throwaway key: sigstore-sign's IdentityToken::from_jwt only
decodes the claims (it needs iss, sub, exp), and the mock Fulcio does not check signatures.
aud is "sigstore"; exp is now + --expires-in (use a negative value for an expired token).

    make_token.py --iss https://accounts.example.com --email alice@example.com
    make_token.py --github-workflow-ref mcplock/test/.github/workflows/sign.yml@refs/heads/main
    make_token.py --iss https://oauth2.sigstore.dev/auth --email a@b.c \
                  --claim federated_claims='{"connector_id":"https://github.com/login/oauth"}'

With --github-workflow-ref the issuer is https://token.actions.githubusercontent.com and the
claims are those of a GitHub Actions token; the mock issues the URI SAN
https://github.com/<job_workflow_ref>.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
sys.path.insert(0, str(Path(__file__).resolve().parent))

import local_instance as li  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Print a test OIDC identity JWT.")
    ap.add_argument("--iss", help="issuer (default with --github-workflow-ref: GitHub Actions)")
    ap.add_argument("--sub")
    ap.add_argument("--email")
    ap.add_argument("--email-verified", choices=["true", "false"])
    ap.add_argument("--aud", default="sigstore")
    ap.add_argument("--expires-in", type=int, default=600, help="seconds (default 600)")
    ap.add_argument("--github-workflow-ref", metavar="OWNER/REPO/PATH@REF")
    ap.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE",
                    help="extra claim; VALUE is parsed as JSON if it parses, else a string")
    args = ap.parse_args(argv)

    extra: dict = {}
    iss = args.iss
    if args.github_workflow_ref:
        extra.update(li.github_actions_claims(args.github_workflow_ref))
        iss = iss or li.GITHUB_ISSUER
    if not iss:
        ap.error("--iss is required (or --github-workflow-ref)")
    for item in args.claim:
        name, _, value = item.partition("=")
        try:
            extra[name] = json.loads(value)
        except ValueError:
            extra[name] = value
    sub = args.sub or extra.pop("sub", None)
    verified = None if args.email_verified is None else args.email_verified == "true"
    print(li.make_token(iss=iss, sub=sub, email=args.email, aud=args.aud,
                        expires_in=args.expires_in, email_verified=verified, extra=extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
