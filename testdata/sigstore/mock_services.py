#!/usr/bin/env python3
"""Mock Fulcio (v2) and Rekor (v1) HTTP services backed by a LocalInstance, for offline
signing tests with the `sigstore-sign` crate (0.15.x).

    mock_services.py --instance DIR [--cert-validity-seconds N] [--not-before-offset S]
                     [--integrated-time-offset S] [--fault F] [--persist-log] [--ignore-stdin]

Binds 127.0.0.1 on an ephemeral port and prints exactly one line, `LISTENING <port>`, on
stdout once ready. Both services share the one base URL `http://127.0.0.1:<port>`
(give it as both the Fulcio and the Rekor URL). Logs requests to stderr. Exits when stdin
reaches EOF (the harness closes the pipe; pass --ignore-stdin for manual runs) or on
SIGTERM/SIGINT.

Endpoints:
  POST /api/v2/signingCert   Fulcio. Body {"credentials":{"oidcIdentityToken":JWT},
                             "publicKeyRequest":{"publicKey":{"algorithm":"","content":PEM},
                             "proofOfPossession":b64(ECDSA-SHA256 over the challenge)}}
                             or {"credentials":..., "certificateSigningRequest":b64(PEM CSR)}.
                             201 {"signedCertificateEmbeddedSct":{"chain":{"certificates":
                             [leaf PEM, intermediate PEM, root PEM]}}}.
  POST /api/v1/log/entries   Rekor. Body hashedrekord v0.0.1 (certificate as base64 PEM).
                             201 {uuid: LogEntry} + Location; 409 if already logged.
  GET  /api/v1/log/entries/<uuid>, /api/v1/log, /api/v1/log/publicKey,
       /api/v2/trustBundle, /api/v2/configuration, /healthz

The identity token's signature is NOT checked (tokens come from make_token.py), but its
claims are, as Fulcio would: exp in the future, aud contains "sigstore", and
  iss https://token.actions.githubusercontent.com -> URI SAN https://github.com/<job_workflow_ref>,
                                                      challenge = sub, GitHub extensions;
  iss https://oauth2.sigstore.dev/auth             -> issuer = federated_claims.connector_id;
  otherwise, with an `email` claim                 -> email SAN (email_verified must be true),
                                                      challenge = email;
  otherwise, a URI-shaped `sub`                    -> URI SAN = sub, challenge = sub.
The proof of possession (signature over the challenge) or the CSR signature is verified.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography import x509  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed  # noqa: E402

import local_instance as li  # noqa: E402

DEX_ISSUER = "https://oauth2.sigstore.dev/auth"
SERVER_FAULTS = ("untrusted-ca", "bad-sct", "no-sct", "bad-set", "bad-checkpoint")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- Fulcio logic
def unverified_claims(jwt: str) -> dict:
    parts = jwt.split(".")
    if len(parts) != 3:
        raise ApiError(401, "invalid identity token: not a JWT")
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error) as e:
        raise ApiError(401, f"invalid identity token: {e}") from None
    if not isinstance(claims, dict):
        raise ApiError(401, "invalid identity token: claims are not an object")
    return claims


def github_extensions(claims: dict) -> dict[str, str]:
    """Fulcio's GitHub Actions certificate extensions, for the claims that are present."""
    gh = "https://github.com/"
    c = claims.get
    pairs = {
        "2": c("event_name"), "3": c("sha"), "4": c("workflow"), "5": c("repository"),
        "6": c("ref"),
        "9": c("job_workflow_ref") and gh + c("job_workflow_ref"),
        "10": c("job_workflow_sha"), "11": c("runner_environment"),
        "12": c("repository") and gh + c("repository"), "13": c("sha"), "14": c("ref"),
        "15": c("repository_id"),
        "16": c("repository_owner") and gh + c("repository_owner"),
        "17": c("repository_owner_id"),
        "18": c("workflow_ref") and gh + c("workflow_ref"), "19": c("workflow_sha"),
        "20": c("event_name"),
        "21": c("repository") and c("run_id") and c("run_attempt")
              and f"{gh}{c('repository')}/actions/runs/{c('run_id')}/attempts/{c('run_attempt')}",
        "22": c("repository_visibility"),
    }
    return {li._FULCIO + k: str(v) for k, v in pairs.items() if v}


def principal(claims: dict) -> tuple[str, str, str, dict[str, str]]:
    """(SAN identity, OIDC issuer, proof-of-possession challenge, extra extensions)."""
    iss = claims.get("iss")
    if not iss or not isinstance(iss, str):
        raise ApiError(401, "identity token has no issuer")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= time.time():
        raise ApiError(401, "identity token is expired")
    aud = claims.get("aud")
    if "sigstore" not in ([aud] if isinstance(aud, str) else aud or []):
        raise ApiError(401, "identity token audience does not contain 'sigstore'")
    sub = claims.get("sub")
    if iss == li.GITHUB_ISSUER:
        ref = claims.get("job_workflow_ref")
        if not ref or not sub:
            raise ApiError(400, "GitHub Actions token needs job_workflow_ref and sub")
        return f"https://github.com/{ref}", iss, sub, github_extensions(claims)
    if iss == DEX_ISSUER:
        iss = (claims.get("federated_claims") or {}).get("connector_id") or iss
    email = claims.get("email")
    if email:
        if claims.get("email_verified") is not True:
            raise ApiError(401, "identity token email is not verified")
        return email, iss, email, {}
    if isinstance(sub, str) and "://" in sub:
        return sub, iss, sub, {}
    raise ApiError(400, f"unsupported identity token from issuer {iss} (no email, no URI sub)")


def requested_public_key(body: dict, challenge: str):
    """Public key from the request, after checking the proof of possession or CSR."""
    if "certificateSigningRequest" in body:
        try:
            csr = x509.load_pem_x509_csr(base64.b64decode(body["certificateSigningRequest"]))
        except ValueError as e:
            raise ApiError(400, f"invalid CSR: {e}") from None
        if not csr.is_signature_valid:
            raise ApiError(400, "CSR signature is invalid")
        return csr.public_key()
    req = body.get("publicKeyRequest") or {}
    try:
        pem = (req.get("publicKey") or {}).get("content", "")
        public_key = serialization.load_pem_public_key(pem.encode())
        proof = base64.b64decode(req.get("proofOfPossession", ""), validate=True)
    except (ValueError, binascii.Error, TypeError) as e:
        raise ApiError(400, f"invalid public key request: {e}") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ApiError(400, "only ECDSA public keys are supported by the mock")
    try:
        public_key.verify(proof, challenge.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ApiError(400, "proof of possession does not verify over the challenge") from None
    return public_key


# --------------------------------------------------------------------------- HTTP
class Services:
    def __init__(self, inst: li.LocalInstance, args):
        self.inst = inst
        self.args = args
        self.other_ca = li.CertificateAuthority.generate() if args.fault == "untrusted-ca" else None
        self.bad_key = li.new_key()

    def signing_cert(self, body: dict) -> tuple[int, dict, dict]:
        token = (body.get("credentials") or {}).get("oidcIdentityToken")
        if not token:
            raise ApiError(401, "missing credentials.oidcIdentityToken")
        identity, issuer, challenge, extensions = principal(unverified_claims(token))
        public_key = requested_public_key(body, challenge)
        now = li.utcnow()
        not_before = now + dt.timedelta(seconds=self.args.not_before_offset)
        not_after = not_before + dt.timedelta(seconds=self.args.cert_validity_seconds)
        fault = self.args.fault
        leaf = self.inst.issue_leaf(
            public_key, identity, issuer, not_before=not_before, not_after=not_after,
            extensions=extensions, ca=self.other_ca,
            sct_key=self.bad_key if fault == "bad-sct" else None, embed_sct=fault != "no-sct",
        )
        chain = [li.cert_pem(leaf)] + [li.cert_pem(c) for c in (self.other_ca or self.inst.ca).chain()]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}, {}

    def create_entry(self, body: dict) -> tuple[int, dict, dict]:
        if body.get("kind") != "hashedrekord" or body.get("apiVersion") != "0.0.1":
            raise ApiError(400, "the mock Rekor accepts only hashedrekord 0.0.1")
        try:
            spec = body["spec"]
            hash_ = spec["data"]["hash"]
            if hash_["algorithm"] != "sha256":
                raise ValueError("hash algorithm must be sha256")
            digest = bytes.fromhex(hash_["value"])
            if len(digest) != 32:
                raise ValueError("sha256 digest must be 32 bytes")
            signature = base64.b64decode(spec["signature"]["content"], validate=True)
            pem = base64.b64decode(spec["signature"]["publicKey"]["content"], validate=True)
            cert = x509.load_pem_x509_certificate(pem)
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise ApiError(400, f"invalid hashedrekord entry: {e}") from None
        try:
            cert.public_key().verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        except (InvalidSignature, AttributeError, TypeError):
            raise ApiError(400, "verifying signature: invalid signature") from None
        canonical = li.hashedrekord_body(digest, signature, cert)
        existing = self.inst.log.find(canonical)
        if existing is not None:
            uuid = self.inst.log.uuid(existing)
            raise ApiError(409, f"An equivalent entry already exists in the transparency log "
                                f"with UUID {uuid}")
        fault = self.args.fault
        uuid, entry = self.inst.log.append(
            canonical,
            integrated_time=int(time.time()) + self.args.integrated_time_offset,
            set_key=self.bad_key if fault == "bad-set" else None,
            checkpoint_key=self.bad_key if fault == "bad-checkpoint" else None,
        )
        location = f"/api/v1/log/entries/{uuid}"
        return 201, {uuid: entry}, {"Location": location, "ETag": uuid}

    def get(self, path: str) -> tuple[int, object, dict]:
        log = self.inst.log
        if path == "/healthz":
            return 200, {"status": "ok"}, {}
        if path == "/api/v2/trustBundle":
            chain = [li.cert_pem(c) for c in self.inst.ca.chain()]
            return 200, {"chains": [{"certificates": chain}]}, {}
        if path == "/api/v2/configuration":
            return 200, {"issuers": [
                {"issuerUrl": li.GITHUB_ISSUER, "audience": "sigstore", "issuerType": "github-workflow"},
                {"issuerUrl": DEX_ISSUER, "audience": "sigstore", "issuerType": "email"},
            ]}, {}
        if path == "/api/v1/log/publicKey":
            pem = self.inst.rekor_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            return 200, pem.decode(), {"Content-Type": "application/x-pem-file"}
        if path == "/api/v1/log":
            with log._lock:
                leaves = list(log._leaves)
            root = li.merkle_root(leaves)
            return 200, {"rootHash": root.hex(), "treeSize": len(leaves),
                         "signedTreeHead": log.signed_checkpoint(len(leaves), root),
                         "treeID": str(log.tree_id)}, {}
        prefix = "/api/v1/log/entries/"
        if path.startswith(prefix):
            wanted = path[len(prefix):]
            with log._lock:
                indices = [i for i in log._entries if log.uuid(i) == wanted
                           or log.uuid(i)[16:] == wanted]
            if indices:
                uuid, entry = log.get(indices[0])
                return 200, {uuid: entry}, {}
            raise ApiError(404, "entry not found")
        raise ApiError(404, f"no route for GET {path}")


def make_handler(services: Services):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mcplock-mock-sigstore/1"

        def log_message(self, fmt, *args):
            sys.stderr.write(f"mock-sigstore: {self.address_string()} {fmt % args}\n")

        def _send(self, status: int, payload, headers: dict) -> None:
            if isinstance(payload, str):
                data = payload.encode()
                ctype = "text/plain"
            else:
                data = json.dumps(payload).encode()
                ctype = "application/json"
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", ctype))
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _run(self, fn) -> None:
            try:
                status, payload, headers = fn()
            except ApiError as e:
                status, payload, headers = e.status, {"code": e.status, "message": e.message}, {}
                sys.stderr.write(f"mock-sigstore: {self.command} {self.path} -> {e.status}: {e.message}\n")
            except Exception as e:  # a bug in the mock: report it, keep serving
                status, payload, headers = 500, {"code": 500, "message": repr(e)}, {}
                sys.stderr.write(f"mock-sigstore: internal error: {e!r}\n")
            self._send(status, payload, headers)

        def do_GET(self):
            self._run(lambda: services.get(self.path.split("?", 1)[0]))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?", 1)[0]

            def handle():
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise ApiError(400, f"request body is not JSON: {e}") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "request body is not a JSON object")
                if path == "/api/v2/signingCert":
                    return services.signing_cert(body)
                if path == "/api/v1/log/entries":
                    return services.create_entry(body)
                raise ApiError(404, f"no route for POST {path}")

            self._run(handle)

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Mock Fulcio + Rekor for offline signing tests.")
    ap.add_argument("--instance", required=True, type=Path,
                    help="LocalInstance directory (created if missing)")
    ap.add_argument("--cert-validity-seconds", type=int, default=600,
                    help="leaf certificate lifetime (default 600, as Fulcio)")
    ap.add_argument("--not-before-offset", type=int, default=-60,
                    help="leaf notBefore = now + this many seconds (default -60); e.g. -3600 with "
                         "the default validity gives certificates that expired before logging")
    ap.add_argument("--integrated-time-offset", type=int, default=0,
                    help="Rekor integratedTime = now + this many seconds (default 0)")
    ap.add_argument("--fault", choices=SERVER_FAULTS,
                    help="make every response carry this defect (negative tests)")
    ap.add_argument("--persist-log", action="store_true",
                    help="append log entries to INSTANCE/rekor_log.jsonl (default: in memory)")
    ap.add_argument("--ignore-stdin", action="store_true",
                    help="do not exit when stdin reaches EOF")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)

    inst = li.LocalInstance.open(args.instance, persist_log=args.persist_log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(Services(inst, args)))
    server.daemon_threads = True
    stop = threading.Event()

    def watch_stdin():
        # os.read on the raw fd: a daemon thread blocked in a buffered read would abort the
        # interpreter at exit.
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        stop.set()

    if not args.ignore_stdin:
        threading.Thread(target=watch_stdin, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                               daemon=True)
    serving.start()
    print(f"LISTENING {server.server_address[1]}", flush=True)
    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # do not wait for (or finalize under) the stdin watcher thread


if __name__ == "__main__":
    sys.exit(main())
