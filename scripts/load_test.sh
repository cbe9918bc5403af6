#!/usr/bin/env bash
# Load, soak and fault figures for results/services.md: starts splitrans-cloud and
# splitrans-edge on 127.0.0.1 (default flags, CPU codec), then runs `splitrans-client load`:
#   1. soak: 64 in flight x 20000 requests, RSS of both servers sampled;
#   2. throughput at concurrency 1, 4, 16, 64;
#   3. overload: 64 in flight against a second edge started with --max-inflight 32 --max-queue 8,
#      the client pausing 5 ms after each rejection (designed RESOURCE_EXHAUSTED, none late);
#   4. the cloud killed (SIGKILL) at 3 s into a 12 s run at concurrency 16 and restarted 2 s
#      later on the same port: errors by code, and the time from the new cloud being ready
#      (grpc.health.v1 SERVING) to the first success.
# Prints markdown on stdout; logs in a temporary directory (kept on failure).
#   usage: scripts/load_test.sh [BUILD_DIR] [--soak-requests N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
if [[ $# -gt 0 && "$1" != --* ]]; then BUILD="$1"; shift; fi
SOAK=20000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --soak-requests) SOAK="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "load_test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
CLOUD="$BUILD/cloud/splitrans-cloud" EDGE="$BUILD/edge/splitrans-edge" CLIENT="$BUILD/client/splitrans-client"
for b in "$CLOUD" "$EDGE" "$CLIENT"; do [[ -x "$b" ]] || { echo "load_test.sh: $b not built" >&2; exit 1; }; done
WORK="$(mktemp -d -t splitrans-load.XXXXXX)"
source "$ROOT/scripts/free_port.sh"
CPORT=$(free_port); EPORT=$(free_port)
CPID="" EPID=""
cleanup() {
  [[ -n "$EPID" ]] && kill "$EPID" 2>/dev/null || true
  [[ -n "$CPID" ]] && kill "$CPID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
start_cloud() {
  "$CLOUD" --listen "127.0.0.1:$CPORT" --model-repo "$ROOT/models" --codec-device cpu >>"$WORK/cloud.log" 2>&1 &
  CPID=$!
}
start_cloud
"$EDGE" --listen "127.0.0.1:$EPORT" --cloud "127.0.0.1:$CPORT" --model-repo "$ROOT/models" --codec-device cpu \
  >"$WORK/edge.log" 2>&1 &
EPID=$!
"$CLIENT" health --addr "127.0.0.1:$CPORT" --wait-ms 60000 >/dev/null
"$CLIENT" health --addr "127.0.0.1:$EPORT" --wait-ms 60000 >/dev/null
load() { "$CLIENT" load --edge "127.0.0.1:$EPORT" "$@"; }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval(sys.argv[1]))" "$2"; }

echo "## Load and soak ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1))"
echo
echo "Edge and cloud with default flags on 127.0.0.1 (2 workers each, CPU codec, q=4 auto, stage2), the"
echo "client on the same machine: all three share its cores. Requests: one Fashion-MNIST image each (UINT8)."
echo
load --concurrency 8 --requests 500 >/dev/null  # warm-up
load --concurrency 64 --requests "$SOAK" --deadline-ms 5000 --pid "edge=$EPID" --pid "cloud=$CPID" --sample-ms 200 --json >"$WORK/soak.json"
echo "### Soak: 64 in flight x $SOAK requests"
echo
echo "| ok | errors by code | late (>100 ms past deadline) | ok req/s | p50 ms | p90 ms | p99 ms | max ms |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
echo "| $(json "$WORK/soak.json" "d['ok']") | $(json "$WORK/soak.json" "', '.join(f'{k} {v}' for k,v in d['errors'].items()) or 'none'") | $(json "$WORK/soak.json" "d['late']") | $(json "$WORK/soak.json" "round(d['ok_per_s'],1)") | $(json "$WORK/soak.json" "round(d['latency_ms']['p50'],2)") | $(json "$WORK/soak.json" "round(d['latency_ms']['p90'],2)") | $(json "$WORK/soak.json" "round(d['latency_ms']['p99'],2)") | $(json "$WORK/soak.json" "round(d['latency_ms']['max'],2)") |"
echo
echo "| process | RSS after warm-up (MiB) | RSS at the end (MiB) | max (MiB) | growth |"
echo "|---|---:|---:|---:|---:|"
for p in edge cloud; do
  echo "| $p | $(json "$WORK/soak.json" "round(d['rss']['$p']['warm_kib']/1024,1)") | $(json "$WORK/soak.json" "round(d['rss']['$p']['end_kib']/1024,1)") | $(json "$WORK/soak.json" "round(d['rss']['$p']['max_kib']/1024,1)") | $(json "$WORK/soak.json" "f\"{100*d['rss']['$p']['growth']:+.1f}%\"") |"
done
echo
echo "### Throughput by concurrency"
echo
echo "| in flight | requests | ok req/s | p50 ms | p99 ms | errors |"
echo "|---:|---:|---:|---:|---:|---|"
for c in 1 4 16 64; do
  n=$((c == 1 ? 2000 : 5000))
  load --concurrency "$c" --requests "$n" --deadline-ms 5000 --json >"$WORK/c$c.json"
  echo "| $c | $n | $(json "$WORK/c$c.json" "round(d['ok_per_s'],1)") | $(json "$WORK/c$c.json" "round(d['latency_ms']['p50'],2)") | $(json "$WORK/c$c.json" "round(d['latency_ms']['p99'],2)") | $(json "$WORK/c$c.json" "', '.join(f'{k} {v}' for k,v in d['errors'].items()) or 'none'") |"
done
echo
# Overload: an edge with tight admission limits.
EPORT2=$(free_port)
"$EDGE" --listen "127.0.0.1:$EPORT2" --cloud "127.0.0.1:$CPORT" --model-repo "$ROOT/models" --codec-device cpu \
  --max-inflight 32 --max-queue 8 >"$WORK/edge2.log" 2>&1 &
EPID2=$!
"$CLIENT" health --addr "127.0.0.1:$EPORT2" --wait-ms 60000 >/dev/null
"$CLIENT" load --edge "127.0.0.1:$EPORT2" --concurrency 64 --requests 5000 --deadline-ms 2000 --reject-pause-ms 5 \
  --json >"$WORK/over.json"
kill "$EPID2"; wait "$EPID2" 2>/dev/null || true
echo "### Overload: 64 in flight x 5000 against an edge with --max-inflight 32 --max-queue 8 (2 s deadlines; the client pauses 5 ms after a rejection)"
echo
echo "| ok | errors by code | late (>100 ms past deadline) | ok req/s | ok p50 ms | ok p99 ms | slowest answer ms |"
echo "|---:|---|---:|---:|---:|---:|---:|"
echo "| $(json "$WORK/over.json" "d['ok']") | $(json "$WORK/over.json" "', '.join(f'{k} {v}' for k,v in d['errors'].items()) or 'none'") | $(json "$WORK/over.json" "d['late']") | $(json "$WORK/over.json" "round(d['ok_per_s'],1)") | $(json "$WORK/over.json" "round(d['latency_ms']['p50'],2)") | $(json "$WORK/over.json" "round(d['latency_ms']['p99'],2)") | $(json "$WORK/over.json" "round(d['max_any_ms'],2)") |"
echo
# Kill and restart.
load --concurrency 16 --requests 0 --duration-s 12 --deadline-ms 2000 --timeline "$WORK/timeline.csv" --json >"$WORK/kill.json" &
LPID=$!
sleep 3
kill -KILL "$CPID"; wait "$CPID" 2>/dev/null || true
KILLED=$(date +%s%3N)
sleep 2
start_cloud
"$CLIENT" health --addr "127.0.0.1:$CPORT" --wait-ms 60000 >/dev/null
READY=$(date +%s%3N)
wait "$LPID" || true
python3 - "$WORK/timeline.csv" "$KILLED" "$READY" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
killed, ready = float(sys.argv[2]), float(sys.argv[3])
names = {0: "OK", 1: "CANCELLED", 4: "DEADLINE_EXCEEDED", 8: "RESOURCE_EXHAUSTED", 14: "UNAVAILABLE"}
codes = {}
for r in rows:
    c = names.get(int(r["code"]), "code " + r["code"])
    codes[c] = codes.get(c, 0) + 1
first_ok = min((float(r["end_unix_ms"]) for r in rows if r["code"] == "0" and float(r["end_unix_ms"]) > ready), default=None)
last_ok_before = max((float(r["end_unix_ms"]) for r in rows if r["code"] == "0" and float(r["end_unix_ms"]) < killed + 1), default=None)
print("### Cloud killed (SIGKILL) and restarted under load (16 in flight, 2 s deadlines)")
print()
print("| requests | by code | cloud down (kill to ready) | first success after ready |")
print("|---:|---|---:|---:|")
rec = f"{first_ok - ready:.0f} ms" if first_ok else "none"
print(f"| {len(rows)} | {', '.join(f'{k} {v}' for k, v in sorted(codes.items()))} | {ready - killed:.0f} ms | {rec} |")
PY
echo
echo "Logs: $WORK"
