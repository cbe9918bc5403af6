#!/usr/bin/env bash
# Scale-out figures for results/scaleout.md: three splitrans-cloud processes on 127.0.0.1 and one
# splitrans-edge whose --cloud is the static list of all three (one stream per replica), with
# metrics on; then `splitrans-client load`:
#   1. spread: 16 in flight x N requests; each replica's share from the edge's
#      splitrans_edge_cloud_requests_total and from the replica's own splitrans_cloud_requests_total;
#   2. kill: 16 in flight for 10 s, one replica SIGKILLed (after a 300 ms SIGSTOP, so that requests
#      are surely in flight on it) at 3 s: failures by code, when the last one ended, retries,
#      and whether the dead replica got anything after 1 s;
#   3. drain: 16 in flight for 8 s, another replica gets SIGTERM at 3 s: failures (none expected).
# Prints markdown on stdout; logs in a temporary directory.
#   usage: scripts/scaleout_test.sh [BUILD_DIR] [--requests N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
if [[ $# -gt 0 && "$1" != --* ]]; then BUILD="$1"; shift; fi
N=20000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --requests) N="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "scaleout_test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
CLOUD="$BUILD/cloud/splitrans-cloud" EDGE="$BUILD/edge/splitrans-edge" CLIENT="$BUILD/client/splitrans-client"
for b in "$CLOUD" "$EDGE" "$CLIENT"; do [[ -x "$b" ]] || { echo "scaleout_test.sh: $b not built" >&2; exit 1; }; done
WORK="$(mktemp -d -t splitrans-scaleout.XXXXXX)"
source "$ROOT/scripts/free_port.sh"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
CP=() CM=() CPID=()
TARGET="ipv4:"
for i in 0 1 2; do
  CP[$i]=$(free_port); CM[$i]=$(free_port)
  "$CLOUD" --listen "127.0.0.1:${CP[$i]}" --metrics-listen "127.0.0.1:${CM[$i]}" --model-repo "$ROOT/models" \
    --codec-device cpu --drain-delay-ms 300 >"$WORK/cloud$i.log" 2>&1 &
  CPID[$i]=$!; PIDS+=($!)
  if [[ $i -gt 0 ]]; then TARGET+=","; fi
  TARGET+="127.0.0.1:${CP[$i]}"
done
EP=$(free_port) EM=$(free_port)
"$EDGE" --listen "127.0.0.1:$EP" --cloud "$TARGET" --metrics-listen "127.0.0.1:$EM" --model-repo "$ROOT/models" \
  --codec-device cpu >"$WORK/edge.log" 2>&1 &
PIDS+=($!)
for i in 0 1 2; do "$CLIENT" health --addr "127.0.0.1:${CP[$i]}" --wait-ms 60000 >/dev/null; done
"$CLIENT" health --addr "127.0.0.1:$EP" --wait-ms 60000 >/dev/null
sleep 1  # every replica's stream up (health is SERVING with the first)
load() { "$CLIENT" load --edge "127.0.0.1:$EP" "$@"; }
metric() {  # PORT PROMQL-ish prefix -> sum of matching samples
  curl -sf "http://127.0.0.1:$1/metrics" | python3 -c '
import sys
prefix = sys.argv[1]
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in sys.stdin if l.startswith(prefix))))' "$2"
}
edge_sent() { metric "$EM" "splitrans_edge_cloud_requests_total{replica=\"ipv4:127.0.0.1:$1\""; }
cloud_count() { metric "${CM[$1]}" 'splitrans_cloud_requests_total{'; }

echo "## Scale-out: 3 cloud replicas behind one edge ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1))"
echo
echo "Three splitrans-cloud processes and one splitrans-edge (\`--cloud ipv4:A,B,C\`, one stream per"
echo "replica, least-in-flight choice) on 127.0.0.1 with default flags (CPU codec, q=4 auto, stage2);"
echo "the client on the same machine. Requests: one Fashion-MNIST image each."
echo
load --concurrency 8 --requests 300 >/dev/null  # warm-up
declare -A BEFORE CBEFORE
for i in 0 1 2; do BEFORE[$i]=$(edge_sent "${CP[$i]}"); CBEFORE[$i]=$(cloud_count "$i"); done
load --concurrency 16 --requests "$N" --deadline-ms 5000 --json >"$WORK/spread.json"
echo "### Spread: 16 in flight x $N requests"
echo
echo "| replica | requests (edge's count) | requests (replica's own count) | share | vs. even |"
echo "|---|---:|---:|---:|---:|"
for i in 0 1 2; do
  e=$(( $(edge_sent "${CP[$i]}") - ${BEFORE[$i]} ))
  c=$(( $(cloud_count "$i") - ${CBEFORE[$i]} ))
  python3 -c "import sys; e,c,n=$e,$c,$N; print(f'| 127.0.0.1:${CP[$i]} | {e} | {c} | {100*e/n:.1f}% | {100*(3*e/n-1):+.1f}% |')"
done
python3 -c "import json; d=json.load(open('$WORK/spread.json')); print(); print(f\"ok {d['ok']}, errors {d['errors'] or 'none'}, {d['ok_per_s']:.1f} req/s, p50 {d['latency_ms']['p50']:.2f} ms, p99 {d['latency_ms']['p99']:.2f} ms\")"
echo

# Kill one replica under load.
retries_before=$(metric "$EM" 'splitrans_edge_cloud_retries_total{')
load --concurrency 16 --requests 0 --duration-s 10 --deadline-ms 5000 --timeline "$WORK/kill.csv" --json >"$WORK/kill.json" &
LPID=$!
sleep 3
kill -STOP "${CPID[0]}"; sleep 0.3
KILLED=$(date +%s%3N)
kill -KILL "${CPID[0]}"; wait "${CPID[0]}" 2>/dev/null || true
sleep 1
SENT_1S=$(edge_sent "${CP[0]}")
wait "$LPID" || true
SENT_END=$(edge_sent "${CP[0]}")
retries=$(( $(metric "$EM" 'splitrans_edge_cloud_retries_total{') - retries_before ))
python3 - "$WORK/kill.csv" "$KILLED" "$SENT_1S" "$SENT_END" "$retries" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
killed = float(sys.argv[2]); sent_1s, sent_end, retries = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
names = {0: "OK", 1: "CANCELLED", 4: "DEADLINE_EXCEEDED", 8: "RESOURCE_EXHAUSTED", 14: "UNAVAILABLE"}
codes = {}
for r in rows:
    c = names.get(int(r["code"]), "code " + r["code"])
    codes[c] = codes.get(c, 0) + 1
bad = [r for r in rows if r["code"] != "0"]
last_bad = max((float(r["end_unix_ms"]) - killed for r in bad), default=None)
late_bad = sum(1 for r in bad if float(r["start_unix_ms"]) > killed + 1000)
print("### One replica killed (SIGKILL after a 300 ms SIGSTOP) under load (16 in flight, 10 s)")
print()
print("| requests | by code | last failure after the kill | failures of requests started > 1 s after | retried on another replica | sent to the dead replica after 1 s |")
print("|---:|---|---:|---:|---:|---:|")
print(f"| {len(rows)} | {', '.join(f'{k} {v}' for k, v in sorted(codes.items()))} | "
      f"{'none' if last_bad is None else f'{last_bad:.0f} ms'} | {late_bad} | {retries} | {sent_end - sent_1s} |")
PY
echo

# Drain another one.
load --concurrency 16 --requests 0 --duration-s 8 --deadline-ms 5000 --json >"$WORK/drain.json" &
LPID=$!
sleep 3
kill -TERM "${CPID[1]}"
set +e; wait "${CPID[1]}"; RC=$?; set -e
wait "$LPID" || true
echo "### Another replica drained (SIGTERM, --drain-delay-ms 300) under load (16 in flight, 8 s)"
echo
echo "| requests OK | errors | replica exit code |"
echo "|---:|---|---:|"
python3 -c "import json; d=json.load(open('$WORK/drain.json')); print(f\"| {d['ok']} | {', '.join(f'{k} {v}' for k,v in d['errors'].items()) or 'none'} | $RC |\")"
echo
echo "Logs: $WORK"
