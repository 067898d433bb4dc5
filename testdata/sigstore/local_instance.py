#!/usr/bin/env python3
"""A self-contained, offline Sigstore instance for mcplock's tests.

Everything here is test-only key material, made with `cryptography` and `rfc8785` (both
dependencies of sigstore-python, pinned in testdata/servers/python/requirements.txt):

* a "Fulcio" CA: self-signed root -> intermediate; leaf certificates carry Fulcio's shape
  (empty subject, critical SAN with an email or URI identity, KU digitalSignature, EKU
  codeSigning, OIDC-issuer extensions 1.3.6.1.4.1.57264.1.1 and .1.8, optional further
  Fulcio extensions, and an embedded SCT);
* a "CT log" key that signs the SCT (RFC 6962 precertificate entry);
* a "Rekor v1" log: an RFC 6962 Merkle tree of hashedrekord v0.0.1 bodies; every entry comes
  with an inclusion proof, a signed checkpoint and a signed entry timestamp (SET);
* trusted_root.json (sigstore-verify / cosign / sigstore-python `TrustedRoot`) and
  trust_config.json (sigstore-python's `--trust-config` ClientTrustConfig wrapping it).

The CA and the logs are valid from 2020-01-01 to 2099-12-31, so bundles made once stay
verifiable. Leaf certificates default to [now - 1 min, now + 10 min], as Fulcio's.

Python API (see README.md):
    inst = LocalInstance.open(dir)                     # load, or create if missing
    cert = inst.issue_leaf(public_key, identity, issuer)
    uuid, entry = inst.log.append_hashedrekord(digest, signature, cert)
    bundle = inst.make_bundle(artifact_bytes, identity, issuer, fault=None)
    jwt = make_token(iss=..., email=...)               # unsigned-for-our-purposes OIDC token

CLI:
    local_instance.py init DIR
    local_instance.py bundle DIR ARTIFACT OUT.sigstore.json --identity I --issuer O [--fault F]
    local_instance.py fixtures DIR ARTIFACT            # good + every fault, into DIR/bundles/
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as dt
import hashlib
import json
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

UTC = dt.timezone.utc
CA_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=UTC)
CA_NOT_AFTER = dt.datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
DEFAULT_ORIGIN = "rekor.mcplock.test - 4242424242"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

# Fulcio certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md)
_FULCIO = "1.3.6.1.4.1.57264.1."
OID_ISSUER_V1 = ObjectIdentifier(_FULCIO + "1")  # raw string (deprecated, still emitted)
OID_ISSUER_V2 = ObjectIdentifier(_FULCIO + "8")  # DER UTF8String
OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

FAULTS = {
    "expired": "integratedTime (signed in the SET) is after the leaf certificate's notAfter",
    "not-yet-valid": "integratedTime is before the leaf certificate's notBefore",
    "untrusted-ca": "the leaf chains to a CA that the trusted root does not name",
    "tampered": "signature bytes flipped after everything was signed and logged",
    "other-digest": "signature and log entry are over a different artifact",
    "bad-set": "SET signed by a key the trusted root does not list",
    "bad-checkpoint": "checkpoint signed by a key the trusted root does not list",
    "bad-inclusion-proof": "one inclusion-proof hash altered (root hash no longer recomputes)",
    "bad-sct": "SCT signed by a key the trusted root does not list",
    "no-sct": "leaf certificate without an SCT",
    "body-mismatch": "Rekor body signs something else than the bundle (other signature)",
}


# --------------------------------------------------------------------------- small helpers
def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(public_key) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo: the log ID of CT and Rekor logs."""
    return hashlib.sha256(spki(public_key)).digest()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_utf8_string(value: str) -> bytes:
    raw = value.encode()
    return b"\x0c" + _der_len(len(raw)) + raw


def der_octet_string(value: bytes) -> bytes:
    return b"\x04" + _der_len(len(value)) + value


def _write_private_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _read_private_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


# --------------------------------------------------------------------------- CA
def _ca_certificate(common_name: str, key, issuer: tuple[x509.Name, Any] | None,
                    path_length: int, code_signing_eku: bool) -> x509.Certificate:
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mcplock-test"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(CA_NOT_BEFORE)
        .not_valid_after(CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if code_signing_eku:  # Fulcio's intermediate carries EKU codeSigning
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclasses.dataclass
class CertificateAuthority:
    """A root -> intermediate chain; leaves are signed by the intermediate."""

    root_key: Any
    root: x509.Certificate
    intermediate_key: Any
    intermediate: x509.Certificate

    @classmethod
    def generate(cls) -> "CertificateAuthority":
        root_key, inter_key = new_key(), new_key()
        root = _ca_certificate("mcplock-test-root", root_key, None, 1, False)
        inter = _ca_certificate("mcplock-test-intermediate", inter_key,
                                (root.subject, root_key), 0, True)
        return cls(root_key, root, inter_key, inter)

    def chain(self) -> list[x509.Certificate]:
        """Intermediate first, root last (trusted_root.json order)."""
        return [self.intermediate, self.root]


# --------------------------------------------------------------------------- CT (SCT)
def signed_certificate_timestamp_list(ct_key, issuer_public_key, precert_tbs: bytes,
                                      timestamp_ms: int) -> bytes:
    """RFC 6962 SignedCertificateTimestampList holding one v1 precert SCT (TLS encoding)."""
    issuer_key_hash = key_id(issuer_public_key)
    signed = (
        b"\x00"  # sct_version: v1
        + b"\x00"  # signature_type: certificate_timestamp
        + struct.pack(">Q", timestamp_ms)
        + b"\x00\x01"  # entry_type: precert_entry
        + issuer_key_hash
        + len(precert_tbs).to_bytes(3, "big") + precert_tbs
        + b"\x00\x00"  # no extensions
    )
    signature = ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    sct = (
        b"\x00"  # version
        + key_id(ct_key.public_key())
        + struct.pack(">Q", timestamp_ms)
        + b"\x00\x00"  # extensions
        + b"\x04\x03"  # sha256 / ecdsa
        + struct.pack(">H", len(signature)) + signature
    )
    item = struct.pack(">H", len(sct)) + sct
    return struct.pack(">H", len(item)) + item


# --------------------------------------------------------------------------- Merkle tree
def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (RFC 6962 section 2.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 audit path for leaves[index], leaf-to-root order."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return inclusion_path(index, leaves[:k]) + [merkle_root(leaves[k:])]
    return inclusion_path(index - k, leaves[k:]) + [merkle_root(leaves[:k])]


# --------------------------------------------------------------------------- Rekor v1 log
def hashedrekord_body(digest: bytes, signature: bytes, cert: x509.Certificate) -> bytes:
    """Canonical hashedrekord v0.0.1 body, as Rekor stores it (certificate re-encoded as PEM)."""
    return rfc8785.dumps({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
            "signature": {
                "content": b64(signature),
                "publicKey": {"content": b64(cert_pem(cert).encode())},
            },
        },
    })


class TransparencyLog:
    """An append-only Rekor v1 log (one shard). Thread-safe.

    The tree starts with `filler` deterministic leaves so that even the first real entry
    gets a non-trivial inclusion proof. With `path`, entries are also appended to a JSON-lines
    file and reloaded from it, so indices keep growing across processes.
    """

    def __init__(self, key, origin: str = DEFAULT_ORIGIN, *, filler: int = 3,
                 path: Path | None = None):
        self.key = key
        self.origin = origin
        self.log_id = key_id(key.public_key())
        self.tree_id = int(origin.rsplit(" ", 1)[-1]) if origin.rsplit(" ", 1)[-1].isdigit() else 0
        self._leaves = [leaf_hash(f"mcplock-test-filler-{i}".encode()) for i in range(filler)]
        self._entries: dict[int, dict] = {}  # index -> {"body": bytes, "integratedTime": int}
        self._by_leaf: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._path = path
        if path and path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self._add(base64.b64decode(rec["body"]), rec["integratedTime"])

    def _add(self, body: bytes, integrated_time: int) -> int:
        index = len(self._leaves)
        lh = leaf_hash(body)
        self._leaves.append(lh)
        self._entries[index] = {"body": body, "integratedTime": integrated_time}
        self._by_leaf[lh] = index
        return index

    def uuid(self, index: int) -> str:
        """Rekor v1 entry UUID: 16 hex digits of tree ID + hex leaf hash."""
        return f"{self.tree_id:016x}" + self._leaves[index].hex()

    def find(self, body: bytes) -> int | None:
        with self._lock:
            return self._by_leaf.get(leaf_hash(body))

    def append(self, body: bytes, *, integrated_time: int | None = None,
               set_key=None, checkpoint_key=None) -> tuple[str, dict]:
        """Append a canonical entry body; return (uuid, Rekor v1 LogEntry JSON object).

        `set_key` / `checkpoint_key` replace the log key for those signatures (negative tests).
        """
        if integrated_time is None:
            integrated_time = int(time.time())
        with self._lock:
            index = self._add(body, integrated_time)
            if self._path:
                with self._path.open("a") as f:
                    f.write(json.dumps({"body": b64(body), "integratedTime": integrated_time}) + "\n")
            return self.uuid(index), self._entry_json(index, set_key, checkpoint_key)

    def get(self, index: int) -> tuple[str, dict]:
        with self._lock:
            return self.uuid(index), self._entry_json(index, None, None)

    def signed_checkpoint(self, tree_size: int, root_hash: bytes, key=None) -> str:
        """C2SP signed note: origin, size, base64 root, blank line, '— name base64(hint+sig)'."""
        note = f"{self.origin}\n{tree_size}\n{b64(root_hash)}\n"
        signature = (key or self.key).sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        name = self.origin.split(" ")[0]
        return note + "\n" + f"\u2014 {name} {b64(self.log_id[:4] + signature)}\n"

    def _entry_json(self, index: int, set_key, checkpoint_key) -> dict:
        entry = self._entries[index]
        leaves = list(self._leaves)
        root = merkle_root(leaves)
        set_payload = rfc8785.dumps({
            "body": b64(entry["body"]),
            "integratedTime": entry["integratedTime"],
            "logID": self.log_id.hex(),
            "logIndex": index,
        })
        signed_entry_timestamp = (set_key or self.key).sign(set_payload, ec.ECDSA(hashes.SHA256()))
        return {
            "body": b64(entry["body"]),
            "integratedTime": entry["integratedTime"],
            "logID": self.log_id.hex(),
            "logIndex": index,
            "verification": {
                "inclusionProof": {
                    "checkpoint": self.signed_checkpoint(len(leaves), root, checkpoint_key),
                    "hashes": [h.hex() for h in inclusion_path(index, leaves)],
                    "logIndex": index,
                    "rootHash": root.hex(),
                    "treeSize": len(leaves),
                },
                "signedEntryTimestamp": b64(signed_entry_timestamp),
            },
        }

    def append_hashedrekord(self, digest: bytes, signature: bytes, cert: x509.Certificate,
                            **kwargs) -> tuple[str, dict]:
        """Verify `signature` over the SHA-256 `digest` with the cert's key, then log it."""
        cert.public_key().verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return self.append(hashedrekord_body(digest, signature, cert), **kwargs)


def bundle_tlog_entry(entry: dict) -> dict:
    """Convert a Rekor v1 LogEntry JSON object into a bundle's TransparencyLogEntry."""
    proof = entry["verification"]["inclusionProof"]
    return {
        "logIndex": str(entry["logIndex"]),
        "logId": {"keyId": b64(bytes.fromhex(entry["logID"]))},
        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "integratedTime": str(entry["integratedTime"]),
        "inclusionPromise": {"signedEntryTimestamp": entry["verification"]["signedEntryTimestamp"]},
        "inclusionProof": {
            "logIndex": str(proof["logIndex"]),
            "rootHash": b64(bytes.fromhex(proof["rootHash"])),
            "treeSize": str(proof["treeSize"]),
            "hashes": [b64(bytes.fromhex(h)) for h in proof["hashes"]],
            "checkpoint": {"envelope": proof["checkpoint"]},
        },
        "canonicalizedBody": entry["body"],
    }


# --------------------------------------------------------------------------- the instance
class LocalInstance:
    """A persistent test instance in a directory.

    Files: root.pem / root.key.pem, intermediate.pem / intermediate.key.pem, ctlog.key.pem,
    rekor.key.pem, instance.json (origin), trusted_root.json, trust_config.json; with
    `persist_log=True` also rekor_log.jsonl.
    """

    def __init__(self, directory: Path, ca: CertificateAuthority, ct_key, rekor_key,
                 origin: str, persist_log: bool = False):
        self.directory = Path(directory)
        self.ca = ca
        self.ct_key = ct_key
        self.rekor_key = rekor_key
        self.origin = origin
        self.log = TransparencyLog(
            rekor_key, origin, path=self.directory / "rekor_log.jsonl" if persist_log else None
        )

    # ---- construction
    @classmethod
    def create(cls, directory, *, origin: str = DEFAULT_ORIGIN) -> "LocalInstance":
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        inst = cls(d, CertificateAuthority.generate(), new_key(), new_key(), origin)
        _write_private_key(d / "root.key.pem", inst.ca.root_key)
        _write_private_key(d / "intermediate.key.pem", inst.ca.intermediate_key)
        _write_private_key(d / "ctlog.key.pem", inst.ct_key)
        _write_private_key(d / "rekor.key.pem", inst.rekor_key)
        (d / "root.pem").write_text(cert_pem(inst.ca.root))
        (d / "intermediate.pem").write_text(cert_pem(inst.ca.intermediate))
        (d / "instance.json").write_text(json.dumps({"origin": origin}, indent=2) + "\n")
        (d / "trusted_root.json").write_text(json.dumps(inst.trusted_root(), indent=2) + "\n")
        (d / "trust_config.json").write_text(json.dumps(inst.trust_config(), indent=2) + "\n")
        return inst

    @classmethod
    def load(cls, directory, *, persist_log: bool = False) -> "LocalInstance":
        d = Path(directory)
        ca = CertificateAuthority(
            _read_private_key(d / "root.key.pem"),
            x509.load_pem_x509_certificate((d / "root.pem").read_bytes()),
            _read_private_key(d / "intermediate.key.pem"),
            x509.load_pem_x509_certificate((d / "intermediate.pem").read_bytes()),
        )
        meta = json.loads((d / "instance.json").read_text())
        return cls(d, ca, _read_private_key(d / "ctlog.key.pem"),
                   _read_private_key(d / "rekor.key.pem"), meta["origin"], persist_log)

    @classmethod
    def open(cls, directory, *, persist_log: bool = False) -> "LocalInstance":
        """Load the instance in `directory`, creating it first if it has none."""
        if not (Path(directory) / "instance.json").exists():
            cls.create(directory)
        return cls.load(directory, persist_log=persist_log)

    # ---- trust material
    def trusted_root(self) -> dict:
        start = {"start": rfc3339(CA_NOT_BEFORE)}
        ec_key = lambda k: {"rawBytes": b64(spki(k.public_key())),
                            "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": start}
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.mcplock.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": ec_key(self.rekor_key),
                "logId": {"keyId": b64(key_id(self.rekor_key.public_key()))},
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "mcplock-test", "commonName": "mcplock-test-root"},
                "uri": "https://fulcio.mcplock.test",
                "certChain": {"certificates": [
                    {"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))}
                    for c in self.ca.chain()
                ]},
                "validFor": start,
            }],
            "ctlogs": [{
                "baseUrl": "https://ctfe.mcplock.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": ec_key(self.ct_key),
                "logId": {"keyId": b64(key_id(self.ct_key.public_key()))},
            }],
            "timestampAuthorities": [],
        }

    def trust_config(self) -> dict:
        """sigstore-python ClientTrustConfig; the signing config is required but never read
        by offline verification."""
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": self.trusted_root(),
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [], "oidcUrls": [], "rekorTlogUrls": [], "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"},
            },
        }

    # ---- Fulcio
    def issue_leaf(self, public_key, identity: str, issuer: str, *,
                   not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
                   san_type: str | None = None, extensions: dict[str, str] | None = None,
                   ca: CertificateAuthority | None = None, sct_key=None,
                   embed_sct: bool = True) -> x509.Certificate:
        """Issue a Fulcio-style leaf certificate for `public_key`.

        identity:   SAN value; `san_type` "email" or "uri" (default: "uri" if it contains
                    "://", else "email").
        issuer:     OIDC issuer, written to extensions 1.3.6.1.4.1.57264.1.1 and .1.8.
        extensions: further Fulcio extensions {dotted OID: value}; v1 OIDs (.1.2-.1.6) are
                    written raw, the others as DER UTF8String, as Fulcio does.
        not_before/not_after: default now - 1 min and now + 10 min.
        ca / sct_key / embed_sct: override the signing CA or the CT key, or leave the SCT out
                    (negative tests).
        """
        ca = ca or self.ca
        now = utcnow()
        not_before = not_before or now - dt.timedelta(minutes=1)
        not_after = not_after or now + dt.timedelta(minutes=10)
        san_type = san_type or ("uri" if "://" in identity else "email")
        san = (x509.UniformResourceIdentifier(identity) if san_type == "uri"
               else x509.RFC822Name(identity))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca.intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False,
                              key_encipherment=False, data_encipherment=False,
                              key_agreement=False, key_cert_sign=False, crl_sign=False,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V1, issuer.encode()),
                           critical=False)
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V2, der_utf8_string(issuer)),
                           critical=False)
        )
        for oid, value in sorted((extensions or {}).items(),
                                 key=lambda kv: [int(x) for x in kv[0].split(".")]):
            raw_v1 = oid.startswith(_FULCIO) and oid[len(_FULCIO):] in {"2", "3", "4", "5", "6"}
            content = value.encode() if raw_v1 else der_utf8_string(value)
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ObjectIdentifier(oid), content), critical=False
            )
        if not embed_sct:
            return builder.sign(ca.intermediate_key, hashes.SHA256())
        # The SCT signs the precertificate TBS, i.e. the final TBS without the SCT extension:
        # sign once with a placeholder SCT list, take tbs_precertificate_bytes, then re-sign.
        placeholder = builder.add_extension(
            x509.UnrecognizedExtension(OID_SCT_LIST, der_octet_string(b"\x00\x00")),
            critical=False,
        ).sign(ca.intermediate_key, hashes.SHA256())
        precert_tbs = placeholder.tbs_precertificate_bytes
        scts = signed_certificate_timestamp_list(
            sct_key or self.ct_key, ca.intermediate_key.public_key(), precert_tbs,
            int(not_before.timestamp() * 1000) + 1000,
        )
        leaf = builder.add_extension(
            x509.UnrecognizedExtension(OID_SCT_LIST, der_octet_string(scts)), critical=False
        ).sign(ca.intermediate_key, hashes.SHA256())
        assert leaf.tbs_precertificate_bytes == precert_tbs
        return leaf

    def chain_pems(self, leaf: x509.Certificate) -> list[str]:
        """Leaf first, as Fulcio's signingCert response lists it."""
        return [cert_pem(leaf)] + [cert_pem(c) for c in self.ca.chain()]

    # ---- offline bundle
    def make_bundle(self, artifact: bytes, identity: str, issuer: str, *,
                    signing_key=None, fault: str | None = None,
                    not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
                    integrated_time: int | None = None,
                    extensions: dict[str, str] | None = None) -> dict:
        """Sign `artifact` and build a v0.3 bundle (messageSignature, hashedrekord 0.0.1,
        inclusion proof + checkpoint + SET), as sigstore-sign would with this instance's
        Fulcio and Rekor. `fault` (one of FAULTS) makes a specific negative bundle."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        key = signing_key or new_key()
        now = utcnow()
        if fault == "expired":
            not_before, not_after = now - dt.timedelta(minutes=30), now - dt.timedelta(minutes=20)
        if fault == "not-yet-valid":
            not_before, not_after = now + dt.timedelta(minutes=20), now + dt.timedelta(minutes=30)
        ca = CertificateAuthority.generate() if fault == "untrusted-ca" else None
        cert = self.issue_leaf(
            key.public_key(), identity, issuer, not_before=not_before, not_after=not_after,
            extensions=extensions, ca=ca, sct_key=new_key() if fault == "bad-sct" else None,
            embed_sct=fault != "no-sct",
        )
        digest = hashlib.sha256(artifact).digest()
        if fault == "other-digest":
            digest = hashlib.sha256(artifact + b"\n(other)").digest()
        signature = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        logged_signature = signature
        if fault == "body-mismatch":
            logged_signature = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        _, entry = self.log.append(
            hashedrekord_body(digest, logged_signature, cert),
            integrated_time=integrated_time,
            set_key=new_key() if fault == "bad-set" else None,
            checkpoint_key=new_key() if fault == "bad-checkpoint" else None,
        )
        tlog = bundle_tlog_entry(entry)
        if fault == "bad-inclusion-proof" and tlog["inclusionProof"]["hashes"]:
            h = bytearray(base64.b64decode(tlog["inclusionProof"]["hashes"][0]))
            h[0] ^= 1
            tlog["inclusionProof"]["hashes"][0] = b64(bytes(h))
        if fault == "tampered":
            signature = signature[:-1] + bytes([signature[-1] ^ 1])
        return {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [tlog],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
                "signature": b64(signature),
            },
        }


# --------------------------------------------------------------------------- OIDC tokens
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(*, iss: str, sub: str | None = None, email: str | None = None,
               aud: str | list[str] = "sigstore", expires_in: int = 600,
               email_verified: bool | None = None, extra: dict | None = None) -> str:
    """A well-formed OIDC identity JWT, signed ES256 by a throwaway key nobody trusts.

    sigstore-sign's IdentityToken::from_jwt only decodes the payload (needs iss, sub, exp);
    the mock Fulcio reads the claims without checking the signature. `email_verified`
    defaults to True when `email` is given.
    """
    now = int(time.time())
    claims: dict[str, Any] = {"iss": iss, "sub": sub or email or "mcplock-test-subject",
                              "aud": aud, "iat": now, "nbf": now - 5, "exp": now + expires_in}
    if email is not None:
        claims["email"] = email
        claims["email_verified"] = True if email_verified is None else email_verified
    claims.update(extra or {})
    header = {"alg": "ES256", "typ": "JWT", "kid": "mcplock-test-throwaway"}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    der = new_key().sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def github_actions_claims(job_workflow_ref: str, *, event_name: str = "push",
                          sha: str = "0" * 40) -> dict:
    """Claims of a GitHub Actions OIDC token for workflow `owner/repo/.github/workflows/f.yml@ref`."""
    repo_and_path, _, ref = job_workflow_ref.partition("@")
    owner, repo = repo_and_path.split("/")[:2]
    return {
        "sub": f"repo:{owner}/{repo}:ref:{ref}",
        "repository": f"{owner}/{repo}",
        "repository_owner": owner,
        "repository_id": "1",
        "repository_owner_id": "1",
        "repository_visibility": "public",
        "ref": ref,
        "sha": sha,
        "event_name": event_name,
        "workflow": repo_and_path.rsplit("/", 1)[-1],
        "workflow_ref": job_workflow_ref,
        "workflow_sha": sha,
        "job_workflow_ref": job_workflow_ref,
        "job_workflow_sha": sha,
        "runner_environment": "github-hosted",
        "run_id": "1",
        "run_attempt": "1",
    }


# --------------------------------------------------------------------------- CLI
def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init", help="create DIR (keys, trusted_root.json, trust_config.json)")
    p.add_argument("dir")
    p = sub.add_parser("bundle", help="sign ARTIFACT offline into a v0.3 bundle")
    p.add_argument("dir")
    p.add_argument("artifact")
    p.add_argument("out")
    p.add_argument("--identity", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--fault", choices=sorted(FAULTS))
    p = sub.add_parser("fixtures", help="good + one bundle per fault into DIR/bundles/")
    p.add_argument("dir")
    p.add_argument("artifact")
    p.add_argument("--identity",
                   default="https://github.com/mcplock/test/.github/workflows/sign.yml@refs/heads/main")
    p.add_argument("--issuer", default=GITHUB_ISSUER)
    args = ap.parse_args(argv)

    inst = LocalInstance.open(args.dir)
    if args.cmd == "init":
        print(f"instance in {inst.directory}")
    elif args.cmd == "bundle":
        bundle = inst.make_bundle(Path(args.artifact).read_bytes(), args.identity, args.issuer,
                                  fault=args.fault)
        Path(args.out).write_text(json.dumps(bundle, indent=2) + "\n")
    else:
        out = inst.directory / "bundles"
        out.mkdir(exist_ok=True)
        data = Path(args.artifact).read_bytes()
        for fault in [None, *FAULTS]:
            bundle = inst.make_bundle(data, args.identity, args.issuer, fault=fault)
            (out / f"{fault or 'good'}.sigstore.json").write_text(json.dumps(bundle, indent=2) + "\n")
        print(f"wrote {len(FAULTS) + 1} bundles to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
