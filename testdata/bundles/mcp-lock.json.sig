{
  "algorithm": "ed25519",
  "canonicalization": "RFC8785",
  "keyId": "sha256:549111c04b449760d48e0da2034a4773d47f3184829424e2906fa66c45ee4071",
  "mcplockSignature": 1,
  "payloadType": "application/vnd.mcplock.lockfile+json; version=1",
  "signature": "duEb2QhJ2F4lYYq7iqVdXM8bXen/5UVrT73Fp47RYbVOy3X11FnK0ieTRqfX0Aj1Gcd5MZseO0pS+wDYf+ePDQ=="
}
