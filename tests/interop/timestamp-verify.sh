#!/usr/bin/env bash
# Check a bundle's RFC 3161 timestamp token with OpenSSL alone (docs/format.md §7.1).
# Usage: timestamp-verify.sh BUNDLE.tar.zst TOKEN.tsr TSA-CA.pem
# The token covers the SHA-256 of the bundle envelope's raw signature bytes.
set -euo pipefail
B=$1 TSR=$2 CA=$3
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
tar --zstd -xOf "$B" manifest.dsse.json > "$D/manifest.dsse.json"
jq -r '.signatures[0].sig' "$D/manifest.dsse.json" | base64 -d > "$D/sig.bin"
openssl ts -verify -data "$D/sig.bin" -in "$TSR" -CAfile "$CA"
# → Verification: OK
openssl ts -reply -in "$TSR" -text | grep -E '^(Time stamp|Serial number|TSA):'
