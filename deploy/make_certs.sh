#!/usr/bin/env bash
# Makes a private CA and the certificates splitrans needs, with Debian's openssl, into OUT_DIR:
#   ca.pem / ca.key                      the CA (keep ca.key offline in real deployments)
#   cloud.pem / cloud.key                splitrans-cloud's server certificate
#   edge.pem / edge.key                  splitrans-edge's server certificate (front door)
#   edge-client.pem / edge-client.key    the edge's client certificate towards the cloud (mTLS)
#   client.pem / client.key              a client certificate for the edge's front door (optional mTLS)
#   edge-tokens / client.token           a random bearer token: the edge's --auth-tokens file and the
#                                        client's --token-file (kept only when they do not exist yet)
# Server certificates name DNS:<name>, DNS:localhost, IP:127.0.0.1 and IP:::1 (plus the names in
# SPLITRANS_CERT_EXTRA_SAN, e.g. "DNS:cloud.example.com,IP:10.0.0.5"). Keys are EC P-256, valid
# for DAYS days (default 30). Private keys are written mode 0600 and must never be committed.
#   usage: deploy/make_certs.sh OUT_DIR [DAYS]
# Rotation: run it again into a new directory (same CA: reuse with SPLITRANS_CA_DIR=<dir with
# ca.pem and ca.key>) and copy the new files over the old ones; the servers re-read them.
set -euo pipefail
OUT="${1:?usage: make_certs.sh OUT_DIR [DAYS]}"
DAYS="${2:-30}"
command -v openssl >/dev/null || { echo "make_certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$OUT"
umask 077
cd "$OUT"

if [[ -n "${SPLITRANS_CA_DIR:-}" ]]; then
  cp "$SPLITRANS_CA_DIR/ca.pem" "$SPLITRANS_CA_DIR/ca.key" .
else
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -sha256 -days "$DAYS" -subj "/CN=splitrans test CA ${RANDOM}" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem 2>/dev/null
fi

# name, extended key usage (serverAuth / clientAuth)
issue() {
  local name="$1" usage="$2" san=""
  if [[ "$usage" == serverAuth ]]; then
    san="subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1,IP:::1${SPLITRANS_CERT_EXTRA_SAN:+,$SPLITRANS_CERT_EXTRA_SAN}"
  else
    san="subjectAltName=DNS:${name}"
  fi
  openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -subj "/CN=${name}" -out "$name.csr" 2>/dev/null
  printf '%s\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
    "$san" "$usage" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$DAYS" -sha256 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
issue cloud serverAuth
issue edge serverAuth
issue edge-client clientAuth
issue client clientAuth
rm -f ca.srl
if [[ ! -f edge-tokens ]]; then
  token="$(openssl rand -hex 24)"
  printf '# bearer tokens accepted by splitrans-edge --auth-tokens (one per line)\n%s\n' "$token" > edge-tokens
  printf '%s\n' "$token" > client.token
fi
chmod 0644 ./*.pem
echo "make_certs.sh: CA, certificates for cloud, edge, edge-client, client and a bearer token in $OUT (valid $DAYS days)"
