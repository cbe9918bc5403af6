#!/usr/bin/env bash
# Split-inference demo: starts splitrans-cloud and splitrans-edge on loopback ports with the bundled
# model repository, waits for health, evaluates the Fashion-MNIST test set through the edge with
# splitrans-client, prints accuracy vs the unsplit model, compression and the latency breakdown,
# and stops both servers (also on Ctrl-C / errors).
#
# usage: scripts/demo.sh [BUILD_DIR] [--model NAME] [--limit N] [--q Q] [--mode MODE] [--split SPLIT]
#                        [--concurrency C] [--batch B] [--json] [--cloud-rpc stream|unary] [--tls]
#   --model: fmnist_resnet (default, the CNN) or fmnist_vit (the Vision Transformer); both are
#   Fashion-MNIST classifiers in models/, served by the same edge and cloud
#   BUILD_DIR defaults to build/ (configure + build the whole project first:
#   cmake --preset default && cmake --build build)
#   --tls: certificates and a token from deploy/make_certs.sh (in a temporary directory); TLS with
#   a bearer token on client -> edge, mutual TLS on edge -> cloud, configured through the same
#   SPLITRANS_* variables as docker-compose.tls.yml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="build"
if [[ $# -gt 0 && "$1" != --* ]]; then BUILD="$1"; shift; fi
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
MODEL="" LIMIT=0 Q=4 MODE=auto SPLIT="" CONCURRENCY=4 BATCH=1 JSON="" CLOUD_RPC=stream TLS=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --q) Q="$2"; shift 2 ;;
    --mode) MODE="$2"; shift 2 ;;
    --split) SPLIT="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --json) JSON="--json"; shift ;;
    --cloud-rpc) CLOUD_RPC="$2"; shift 2 ;;
    --tls) TLS=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

MODEL_REPO="${SPLITRANS_MODEL_REPO:-$ROOT/models}"
for bin in cloud/splitrans-cloud edge/splitrans-edge client/splitrans-client; do
  if [[ ! -x "$BUILD/$bin" ]]; then
    echo "demo.sh: $BUILD/$bin not found; build the project first (cmake --build $BUILD)" >&2
    exit 1
  fi
done
CLOUD_BIN="$BUILD/cloud/splitrans-cloud"
EDGE_BIN="$BUILD/edge/splitrans-edge"
CLIENT_BIN="$BUILD/client/splitrans-client"

WORK="$(mktemp -d -t splitrans-demo.XXXXXX)"
CLOUD_PID="" EDGE_PID=""
stop() {
  local pid="$1" name="$2"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "demo.sh: $name did not stop, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop "$EDGE_PID" splitrans-edge
  stop "$CLOUD_PID" splitrans-cloud
  if [[ $rc -ne 0 ]]; then
    echo "demo.sh: failed (exit $rc); server logs:" >&2
    tail -n 20 "$WORK/cloud.log" "$WORK/edge.log" >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Reads the bound port from a server log ("... on port N ...").
wait_port() {
  local log="$1" pid="$2" port=""
  for _ in $(seq 600); do
    port="$(grep -o 'on port [0-9]*' "$log" 2>/dev/null | head -1 | awk '{print $3}')" || true
    if [[ -n "$port" ]]; then echo "$port"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "demo.sh: server exited early" >&2; return 1; }
    sleep 0.1
  done
  echo "demo.sh: server did not report its port" >&2
  return 1
}

# Progress on stderr; stdout carries only the evaluation summary (text or --json).
say() { echo "$@" >&2; }

CLOUD_ENV=() EDGE_ENV=() CLOUD_PROBE=() EDGE_PROBE=()
if [[ $TLS == 1 ]]; then
  C="$WORK/certs"
  bash "$ROOT/deploy/make_certs.sh" "$C" 1 >&2
  CLOUD_ENV=(SPLITRANS_CLOUD_TLS_CERT="$C/cloud.pem" SPLITRANS_CLOUD_TLS_KEY="$C/cloud.key"
             SPLITRANS_CLOUD_TLS_CA="$C/ca.pem" SPLITRANS_CLOUD_TLS_CLIENT_CERTS=require)
  EDGE_ENV=(SPLITRANS_EDGE_TLS_CERT="$C/edge.pem" SPLITRANS_EDGE_TLS_KEY="$C/edge.key"
            SPLITRANS_EDGE_TLS_CA="$C/ca.pem" SPLITRANS_EDGE_TLS_CLIENT_CERTS=optional
            SPLITRANS_EDGE_AUTH_TOKENS="$C/edge-tokens"
            SPLITRANS_EDGE_CLOUD_TLS_CA="$C/ca.pem" SPLITRANS_EDGE_CLOUD_TLS_CERT="$C/edge-client.pem"
            SPLITRANS_EDGE_CLOUD_TLS_KEY="$C/edge-client.key")
  CLOUD_PROBE=(--tls-ca "$C/ca.pem" --tls-cert "$C/edge-client.pem" --tls-key "$C/edge-client.key")
  EDGE_PROBE=(--tls-ca "$C/ca.pem" --token-file "$C/client.token")
  export SPLITRANS_CLIENT_TLS_CA="$C/ca.pem" SPLITRANS_TOKEN_FILE="$C/client.token"
fi

say "== starting splitrans-cloud (model repo $MODEL_REPO)"
env "${CLOUD_ENV[@]}" "$CLOUD_BIN" --listen 127.0.0.1:0 --model-repo "$MODEL_REPO" >"$WORK/cloud.log" 2>&1 &
CLOUD_PID=$!
CLOUD_PORT="$(wait_port "$WORK/cloud.log" "$CLOUD_PID")"
say "   cloud on 127.0.0.1:$CLOUD_PORT"

say "== starting splitrans-edge"
env "${EDGE_ENV[@]}" "$EDGE_BIN" --listen 127.0.0.1:0 --cloud "127.0.0.1:$CLOUD_PORT" --model-repo "$MODEL_REPO" \
  --cloud-rpc "$CLOUD_RPC" >"$WORK/edge.log" 2>&1 &
EDGE_PID=$!
EDGE_PORT="$(wait_port "$WORK/edge.log" "$EDGE_PID")"
say "   edge on 127.0.0.1:$EDGE_PORT"

say "== waiting for health"
"$CLIENT_BIN" health --addr "127.0.0.1:$CLOUD_PORT" --wait-ms 30000 "${CLOUD_PROBE[@]}" >&2
"$CLIENT_BIN" health --addr "127.0.0.1:$EDGE_PORT" --wait-ms 30000 "${EDGE_PROBE[@]}" >&2
"$CLIENT_BIN" health --addr "127.0.0.1:$EDGE_PORT" --ready --wait-ms 30000 "${EDGE_PROBE[@]}" >&2
for side in cloud edge; do
  line="$(grep -o 'serving .* on port .*' "$WORK/$side.log" | head -1 || true)"
  [[ -n "$line" ]] && say "   $side: $line"
done
# Which codec each side runs (GPU where usable, else CPU, and why).
for side in cloud edge; do
  line="$(grep -o 'feature codec on .*' "$WORK/$side.log" | head -1 || true)"
  [[ -n "$line" ]] && say "   $side: $line"
done

N="all 10000"; [[ "$LIMIT" != 0 ]] && N="$LIMIT"
say "== evaluating $N Fashion-MNIST test images (model=${MODEL:-default}, q=$Q, mode=$MODE, split=${SPLIT:-default}, concurrency=$CONCURRENCY)"
"$CLIENT_BIN" eval --edge "127.0.0.1:$EDGE_PORT" --model-repo "$MODEL_REPO" ${MODEL:+--model "$MODEL"} --limit "$LIMIT" \
  --q "$Q" --mode "$MODE" ${SPLIT:+--split "$SPLIT"} --concurrency "$CONCURRENCY" --batch "$BATCH" $JSON

say "== stopping servers"
