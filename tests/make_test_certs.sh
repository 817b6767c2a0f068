#!/usr/bin/env bash
# Writes throw-away TLS material for the tests into DIR (never committed):
#   ca.pem ca.key              test CA
#   server.pem server.key      signed by ca, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   client.pem client.key      signed by ca, for mutual TLS (clientAuth)
#   other-ca.pem               a second CA, which signed:
#   other-client.pem other-client.key
# Usage: make_test_certs.sh DIR. Needs the openssl CLI. EC P-256 keys (fast).
set -euo pipefail
DIR=$1
mkdir -p "$DIR"
cd "$DIR"
command -v openssl >/dev/null || { echo "make_test_certs: openssl not found" >&2; exit 77; }

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # NAME CN
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

leaf() {  # NAME CA CN EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$3"
  printf '%s\n' "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "wavepool test CA"
ca other-ca "wavepool other CA"
leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
leaf client ca wavepool-test-client "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
leaf other-client other-ca wavepool-other-client "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
chmod 600 ./*.key
