#!/usr/bin/env bash
# The TLS demo end to end (scripts/demo.sh --tls): certificates and a token from
# deploy/make_certs.sh, servers configured through the SPLITRANS_* variables of
# docker-compose.tls.yml, 100 Fashion-MNIST images through TLS + token + mutual TLS.
# Exit: 0 pass, 1 fail, 77 skipped (the Fashion-MNIST test set is not installed).
#   usage: tests/demo_tls_test.sh BUILD_DIR
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:?usage: demo_tls_test.sh BUILD_DIR}"
images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [ ! -f "$images" ]; then
  echo "SKIP: $images not found (apt-get install dataset-fashion-mnist)"
  exit 77
fi
out="$(bash "$root/scripts/demo.sh" "$build" --tls --limit 100 --json 2>"${TMPDIR:-/tmp}/demo_tls_test.log")" || {
  echo "FAIL: demo.sh --tls failed"; tail -n 30 "${TMPDIR:-/tmp}/demo_tls_test.log"; exit 1; }
python3 - "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
ok = d["failed_requests"] == 0 and d["images"] == 100 and d["agreement"] >= 0.95
print(f"images {d['images']}, failed {d['failed_requests']}, agreement {d['agreement']:.3f}:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
