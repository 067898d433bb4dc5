//! What a signature covers and how it is written down (pure: no keys, no files).
//!
//! The signed bytes are DSSE's pre-authentication encoding (PAE) of our payload type and the
//! RFC 8785 canonical bytes of the lockfile:
//!
//! ```text
//! "DSSEv1" SP len(PAYLOAD_TYPE) SP PAYLOAD_TYPE SP len(body) SP body
//! ```
//!
//! so a signature made for a lockfile can never be replayed as a signature over anything else
//! (and vice versa). The envelope beside the lockfile is a small JSON document.
//!
//! The manifest of an audit bundle is signed the same way with its own payload type, over the
//! exact bytes of `manifest.json` (no canonicalization: every byte of the bundle is covered).

use crate::core::canonical::Digest;
use crate::core::json::parse_strict;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The DSSE payload type of a signed mcplock lockfile.
pub const PAYLOAD_TYPE: &str = "application/vnd.mcplock.lockfile+json; version=1";
/// The DSSE payload type of a signed audit-bundle manifest.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.mcplock.bundle-manifest+json; version=1";
/// The DSSE payload type of a signed revocation list.
pub const REVOCATIONS_PAYLOAD_TYPE: &str = "application/vnd.mcplock.revocations+json; version=1";
/// The DSSE payload type of a signed audit-log checkpoint.
pub const CHECKPOINT_PAYLOAD_TYPE: &str =
    "application/vnd.mcplock.audit-checkpoint+json; version=1";
/// Format version of the signature envelope.
pub const ENVELOPE_VERSION: u64 = 1;
pub const ALGORITHM: &str = "ed25519";

/// What a signature is over; each has its own payload type, so neither can stand for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signed {
    /// The RFC 8785 canonical bytes of a lockfile.
    Lockfile,
    /// The exact bytes of an audit bundle's `manifest.json`.
    BundleManifest,
    /// The RFC 8785 canonical bytes of a revocation list.
    Revocations,
    /// The RFC 8785 canonical bytes of an audit-log checkpoint line without its signature.
    AuditCheckpoint,
}

impl Signed {
    pub fn payload_type(self) -> &'static str {
        match self {
            Signed::Lockfile => PAYLOAD_TYPE,
            Signed::BundleManifest => MANIFEST_PAYLOAD_TYPE,
            Signed::Revocations => REVOCATIONS_PAYLOAD_TYPE,
            Signed::AuditCheckpoint => CHECKPOINT_PAYLOAD_TYPE,
        }
    }

    /// How the signed body is made from the file: `RFC8785` (canonical form of the JSON) or
    /// `none` (the file's exact bytes).
    pub fn canonicalization(self) -> &'static str {
        match self {
            Signed::Lockfile | Signed::Revocations | Signed::AuditCheckpoint => "RFC8785",
            Signed::BundleManifest => "none",
        }
    }

    /// The bytes an Ed25519 signature of this kind covers.
    pub fn signed_bytes(self, body: &[u8]) -> Vec<u8> {
        pae(self.payload_type(), body)
    }
}

/// DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

/// The bytes an Ed25519 signature over a lockfile covers.
pub fn signed_bytes(canonical_lockfile: &[u8]) -> Vec<u8> {
    Signed::Lockfile.signed_bytes(canonical_lockfile)
}

/// [`signed_bytes`] of a parsed lockfile, in one buffer: the canonical form is written once
/// and the header put in front of it, where a large lockfile's canonical bytes would otherwise
/// be held twice (once alone, once inside the encoding).
pub fn signed_value(lockfile: &serde_json::Value) -> Vec<u8> {
    let (mut buffer, start) = frame_value(lockfile);
    buffer.drain(..start);
    buffer
}

/// A parsed lockfile's canonical bytes after [`header_room`] bytes, with the header written
/// (see [`put_header`]); returns the buffer and where the signed bytes start.
pub fn frame_value(lockfile: &serde_json::Value) -> (Vec<u8>, usize) {
    let mut buffer = vec![0u8; header_room()];
    crate::core::canonical::append_canonical(&mut buffer, lockfile);
    let start = put_header(&mut buffer);
    (buffer, start)
}

/// The room to leave in front of a lockfile's canonical bytes for [`put_header`], whatever
/// their length: "DSSEv1 " + type length + type + body length, with spaces.
pub fn header_room() -> usize {
    7 + 20 + 1 + Signed::Lockfile.payload_type().len() + 1 + 20 + 1
}

/// Writes the DSSE header of a lockfile's canonical bytes, which follow [`header_room`] bytes
/// at the front of `buffer`, just before them; returns where the signed bytes
/// ([`signed_bytes`] of the canonical bytes) start.
pub fn put_header(buffer: &mut [u8]) -> usize {
    let room = header_room();
    let payload_type = Signed::Lockfile.payload_type();
    let body = buffer.len() - room;
    let header = format!("DSSEv1 {} {payload_type} {body} ", payload_type.len());
    let start = room - header.len();
    buffer[start..room].copy_from_slice(header.as_bytes());
    start
}

/// What a lockfile's signature covers, viewed in a buffer framed by [`put_header`]: the
/// canonical bytes (a Sigstore bundle signs them) and their DSSE encoding (an Ed25519
/// signature signs that).
#[derive(Clone, Copy)]
pub struct Covered<'a> {
    pub canonical: &'a [u8],
    pub dsse: &'a [u8],
}

impl<'a> Covered<'a> {
    /// `start` is what [`put_header`] returned for `buffer`.
    pub fn in_frame(buffer: &'a [u8], start: usize) -> Covered<'a> {
        Covered {
            canonical: &buffer[header_room()..],
            dsse: &buffer[start..],
        }
    }
}

/// A parsed signature envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// `sha256:` of the signer's public key, DER SubjectPublicKeyInfo.
    pub key_id: Digest,
    pub signature: [u8; 64],
}

/// Why an envelope cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the signature file is empty")]
    Empty,
    #[error("the signature file is not valid JSON: {0}")]
    Json(String),
    #[error("the signature file is not an mcplock signature envelope: {0}")]
    Shape(String),
    #[error(
        "the signature envelope has version {0}, written by a newer mcplock; this one reads version 1: upgrade mcplock"
    )]
    NewerVersion(u64),
}

impl Envelope {
    /// The envelope of a lockfile signature as written.
    pub fn to_pretty(&self) -> Vec<u8> {
        self.to_pretty_for(Signed::Lockfile)
    }

    /// The envelope as written: pretty JSON, sorted keys, final newline.
    pub fn to_pretty_for(&self, kind: Signed) -> Vec<u8> {
        let doc = json!({
            "algorithm": ALGORITHM,
            "canonicalization": kind.canonicalization(),
            "keyId": self.key_id.to_string(),
            "mcplockSignature": ENVELOPE_VERSION,
            "payloadType": kind.payload_type(),
            "signature": STANDARD.encode(self.signature),
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads a lockfile signature envelope strictly.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::parse_for(bytes, Signed::Lockfile)
    }

    /// Reads an envelope strictly: exactly the documented fields, with the expected values.
    pub fn parse_for(bytes: &[u8], kind: Signed) -> Result<Envelope, EnvelopeError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(EnvelopeError::Empty);
        }
        let value = parse_strict(bytes).map_err(|e| EnvelopeError::Json(e.message().into()))?;
        let shape = |m: String| EnvelopeError::Shape(m);
        let Value::Object(obj) = value else {
            return Err(shape("expected a JSON object".into()));
        };
        match obj.get("mcplockSignature").and_then(Value::as_u64) {
            Some(ENVELOPE_VERSION) => {}
            Some(v) if v > ENVELOPE_VERSION => return Err(EnvelopeError::NewerVersion(v)),
            _ => return Err(shape("no \"mcplockSignature\": 1".into())),
        }
        const KEYS: [&str; 6] = [
            "algorithm",
            "canonicalization",
            "keyId",
            "mcplockSignature",
            "payloadType",
            "signature",
        ];
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(shape(format!("unknown field {k:?}")));
        }
        let text = |key: &str| -> Result<&str, EnvelopeError> {
            obj.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("missing string field {key:?}")))
        };
        for (key, expected) in [
            ("algorithm", ALGORITHM),
            ("canonicalization", kind.canonicalization()),
            ("payloadType", kind.payload_type()),
        ] {
            let found = text(key)?;
            if found != expected {
                return Err(shape(format!("{key} is {found:?}, expected {expected:?}")));
            }
        }
        let key_id = Digest::parse(text("keyId")?)
            .ok_or_else(|| shape("keyId is not sha256:<64 hex digits>".into()))?;
        let raw = STANDARD
            .decode(text("signature")?)
            .map_err(|e| shape(format!("signature is not base64: {e}")))?;
        let signature: [u8; 64] = raw
            .try_into()
            .map_err(|v: Vec<u8>| shape(format!("signature is {} bytes, expected 64", v.len())))?;
        Ok(Envelope { key_id, signature })
    }
}

impl crate::core::code::Coded for EnvelopeError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::SignatureMalformed
    }
}

#[cfg(test)]
mod tests {

    proptest::proptest! {
        /// The one-buffer encoding is the encoding of the canonical bytes, for any document.
        #[test]
        fn signed_value_is_signed_bytes_of_the_canonical_form(doc in crate::core::testkit::any_json()) {
            let expected = signed_bytes(&crate::core::canonical::to_canonical(&doc));
            proptest::prop_assert_eq!(signed_value(&doc), expected);
        }
    }

    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // DSSE's own test vector: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelopes_round_trip_and_reject_tampering() {
        let env = Envelope {
            key_id: Digest::of_bytes(b"key"),
            signature: [7; 64],
        };
        let bytes = env.to_pretty();
        assert_eq!(Envelope::parse(&bytes), Ok(env.clone()));
        let text = String::from_utf8(bytes).unwrap();
        for (from, to) in [
            ("\"mcplockSignature\": 1", "\"mcplockSignature\": 2"),
            ("\"algorithm\": \"ed25519\"", "\"algorithm\": \"rsa\""),
            ("RFC8785", "olpc"),
            ("version=1", "version=2"),
            ("\"keyId\": \"sha256:", "\"keyId\": \"sha1:"),
        ] {
            let bad = text.replacen(from, to, 1);
            assert!(Envelope::parse(bad.as_bytes()).is_err(), "accepted {to}");
        }
        assert_eq!(Envelope::parse(b""), Err(EnvelopeError::Empty));
        assert!(matches!(
            Envelope::parse(&text.as_bytes()[..40]),
            Err(EnvelopeError::Json(_))
        ));
        let short = text.replace(&STANDARD.encode([7u8; 64]), &STANDARD.encode([7u8; 63]));
        assert!(
            Envelope::parse(short.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("63 bytes")
        );
        let extra = text.replacen('{', "{\"note\": \"x\",", 1);
        assert!(Envelope::parse(extra.as_bytes()).is_err());
    }

    #[test]
    fn a_manifest_envelope_is_never_read_as_a_lockfile_envelope() {
        let env = Envelope {
            key_id: Digest::of_bytes(b"key"),
            signature: [9; 64],
        };
        let manifest = env.to_pretty_for(Signed::BundleManifest);
        assert_eq!(
            Envelope::parse_for(&manifest, Signed::BundleManifest),
            Ok(env.clone())
        );
        assert!(Envelope::parse(&manifest).is_err());
        assert!(Envelope::parse_for(&env.to_pretty(), Signed::BundleManifest).is_err());
        assert_ne!(
            Signed::Lockfile.signed_bytes(b"x"),
            Signed::BundleManifest.signed_bytes(b"x")
        );
    }
}
