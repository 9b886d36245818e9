#!/usr/bin/env bash
# Verify a custody bundle's signature with standard tools only (GNU tar, zstd, jq, base64,
# openssl): the recipe of docs/format.md, run by tests/interop.rs.
#
# usage: openssl-verify.sh BUNDLE.tar.zst SIGNER.pub
# Prints "Signature Verified Successfully" and exits 0 when the DSSE signature over the
# exact bytes of manifest.json verifies with SIGNER.pub (Ed25519, SPKI PEM); exits non-zero
# otherwise. It checks the signature only: the blobs are checked with sha256sum (see
# docs/format.md) and the signer must be a key you trust.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BUNDLE.tar.zst SIGNER.pub" >&2; exit 2; }
bundle=$(realpath "$1")
pub=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# 1. Take the manifest and its DSSE envelope out of the bundle.
tar --zstd -xf "$bundle" manifest.json manifest.dsse.json

# 2. Build the DSSE pre-authentication encoding:
#    "DSSEv1" SP len(type) SP type SP len(payload) SP payload   (lengths in decimal bytes)
T=$(jq -r '.payloadType' manifest.dsse.json)
printf 'DSSEv1 %d %s %d ' ${#T} "$T" "$(stat -c %s manifest.json)" > pae.bin
cat manifest.json >> pae.bin

# 3. The signature (standard base64 of 64 raw Ed25519 bytes).
jq -r '.signatures[0].sig' manifest.dsse.json | base64 -d > sig.bin

# 4. Pure Ed25519 over the PAE bytes.
openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in pae.bin -sigfile sig.bin
