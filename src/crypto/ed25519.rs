//! Ed25519 keys in standard files: PKCS#8 PEM private keys, SPKI PEM public keys (both
//! readable by `openssl pkey`), and signatures over the bytes `core::signature` defines.
//!
//! Secret material lives in `ed25519_dalek::SigningKey` (zeroized on drop) and in
//! `Zeroizing` buffers; `PrivateKey` has no Debug that could print it.

use crate::core::canonical::Digest;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroizing;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    #[error("not an Ed25519 private key in PEM PKCS#8 (\"BEGIN PRIVATE KEY\"): {0}")]
    BadPrivate(String),
    #[error("not an Ed25519 public key in PEM SPKI (\"BEGIN PUBLIC KEY\"): {0}")]
    BadPublic(String),
    #[error("this is a private key; give the public key (keygen writes it beside the private one)")]
    PrivateGivenAsPublic,
    #[error("cannot encode the key: {0}")]
    Encode(String),
}

/// A signing key. Deliberately not `Debug`, `Clone` or `Display`.
pub struct PrivateKey(SigningKey);

/// A verifying key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PrivateKey {
    pub fn generate() -> Result<PrivateKey, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(PrivateKey(SigningKey::from_bytes(&seed)))
    }

    pub fn from_pem(pem: &str) -> Result<PrivateKey, KeyError> {
        SigningKey::from_pkcs8_pem(pem.trim_start())
            .map(PrivateKey)
            .map_err(|e| KeyError::BadPrivate(e.to_string()))
    }

    /// PKCS#8 v1 (RFC 8410: the seed only). The v2 form with the public key inside, which
    /// ed25519-dalek writes by default, is rejected by OpenSSL 3.0.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let pair = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        pair.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        if pem.contains("PRIVATE KEY-----") {
            return Err(KeyError::PrivateGivenAsPublic);
        }
        VerifyingKey::from_public_key_pem(pem.trim_start())
            .map(PublicKey)
            .map_err(|e| KeyError::BadPublic(e.to_string()))
    }

    /// The 32 raw bytes of the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// `sha256:` of the DER SubjectPublicKeyInfo, the same as
    /// `openssl pkey -pubin -outform DER | sha256sum`.
    pub fn key_id(&self) -> Result<Digest, KeyError> {
        let der = self
            .0
            .to_public_key_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Digest::of_bytes(der.as_bytes()))
    }

    /// True when `signature` is a valid Ed25519 signature over `message` (strict verification:
    /// non-canonical encodings and small-order keys are rejected).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = Signature::from_bytes(signature);
        self.0.verify_strict(message, &signature).is_ok()
            && self.0.verify(message, &signature).is_ok()
    }
}

impl crate::core::code::Coded for KeyError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::KeyInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_sign() {
        let key = PrivateKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(again.public(), key.public());
        let public_pem = key.public().to_pem().unwrap();
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let public = PublicKey::from_pem(&public_pem).unwrap();
        let sig = key.sign(b"message");
        assert!(public.verify(b"message", &sig));
        assert!(!public.verify(b"messagf", &sig));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!public.verify(b"message", &flipped));
        assert_eq!(
            PublicKey::from_pem(&pem),
            Err(KeyError::PrivateGivenAsPublic)
        );
        assert!(PrivateKey::from_pem(&public_pem).is_err());
        assert_ne!(PrivateKey::generate().unwrap().public(), key.public());
    }

    #[test]
    fn signing_is_deterministic() {
        let key = PrivateKey::generate().unwrap();
        assert_eq!(key.sign(b"x"), key.sign(b"x"));
    }
}
