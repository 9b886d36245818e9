#!/usr/bin/env bash
# Verify a custody bundle's signature with standard tools only (GNU tar, zstd, jq, base64,
# sha256sum, openssl): the recipe of docs/format.md §7, run by tests/interop.rs.
#
# usage: openssl-verify.sh BUNDLE.tar.zst SIGNER.pub
# Prints "Signature Verified Successfully" and exits 0 when the DSSE signature verifies with
# SIGNER.pub (Ed25519, SPKI PEM) AND what it signs binds manifest.json (and analysis.json, when
# the manifest names one); exits non-zero otherwise. v2 bundles sign a statement naming
# manifest.json's SHA-256 and size; v1 bundles signed manifest.json itself. The blobs are
# checked with sha256sum (see docs/format.md) and the signer must be a key you trust.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BUNDLE.tar.zst SIGNER.pub" >&2; exit 2; }
bundle=$(realpath "$1")
pub=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# 1. Take the manifest, its DSSE envelope and (v2, if any) the analysis out of the bundle.
tar --zstd -xf "$bundle" --wildcards 'manifest.json' 'manifest.dsse.json' 'analysis.json' 2>/dev/null ||
  tar --zstd -xf "$bundle" manifest.json manifest.dsse.json

# 2. The signed payload (standard base64 in the envelope).
T=$(jq -r '.payloadType' manifest.dsse.json)
jq -r '.payload' manifest.dsse.json | base64 -d > payload.bin
case "$T" in
  application/vnd.custody.manifest-statement.v2+json)
    # v2 and v3: the payload names manifest.json's format, SHA-256 and size.
    [ "$(jq -r .format payload.bin)" = "$(jq -r .format manifest.json)" ] || { echo "BAD statement format" >&2; exit 1; }
    case "$(jq -r .format payload.bin)" in custody-bundle/v2|custody-bundle/v3) ;; *) echo "BAD statement format" >&2; exit 1 ;; esac
    [ "$(jq -r .manifest_sha256 payload.bin)" = "$(sha256sum < manifest.json | cut -d' ' -f1)" ] ||
      { echo "BAD manifest.json: its SHA-256 is not the signed one" >&2; exit 1; }
    [ "$(jq -r .manifest_size payload.bin)" = "$(stat -c %s manifest.json)" ] ||
      { echo "BAD manifest.json: its size is not the signed one" >&2; exit 1; }
    # …and the manifest names analysis.json's SHA-256 and size.
    if [ "$(jq -r '.analysis_ref != null' manifest.json)" = true ]; then
      [ "$(jq -r .analysis_ref.sha256 manifest.json)" = "$(sha256sum < analysis.json | cut -d' ' -f1)" ] ||
        { echo "BAD analysis.json: its SHA-256 is not the one the manifest names" >&2; exit 1; }
    fi
    ;;
  application/vnd.custody.manifest.v1+json)
    # v1: the payload is manifest.json, byte for byte.
    cmp -s payload.bin manifest.json || { echo "BAD manifest.json: not the signed payload" >&2; exit 1; }
    ;;
  *) echo "unknown payload type $T" >&2; exit 1 ;;
esac

# 3. Build the DSSE pre-authentication encoding:
#    "DSSEv1" SP len(type) SP type SP len(payload) SP payload   (lengths in decimal bytes)
printf 'DSSEv1 %d %s %d ' ${#T} "$T" "$(stat -c %s payload.bin)" > pae.bin
cat payload.bin >> pae.bin

# 4. The signature (standard base64 of 64 raw Ed25519 bytes).
jq -r '.signatures[0].sig' manifest.dsse.json | base64 -d > sig.bin

# 5. Pure Ed25519 over the PAE bytes.
openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in pae.bin -sigfile sig.bin
