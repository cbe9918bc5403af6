#!/usr/bin/env bash
# Metrics end to end with a real Prometheus: a cloud and an edge (the binaries) with
# --metrics-listen on loopback, N requests through the edge, `promtool check metrics` on both
# expositions, then a Prometheus server (Debian's prometheus, on loopback, private data dir)
# scrapes both every second and PromQL queries must give back what was sent: N requests OK on
# the edge and on the cloud, the per-replica count, histogram counts, both targets up, and a
# p99 latency from the histogram. Every wait is bounded; every process is killed at the end.
# Exit: 0 pass, 1 fail (promtool and prometheus are required: deploy/bootstrap.sh installs them).
#   usage: tests/prometheus_test.sh BUILD_DIR
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:?usage: prometheus_test.sh BUILD_DIR}"
N=40
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }
for tool in promtool prometheus curl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (deploy/bootstrap.sh installs it)"; exit 1; }
done
bin() { find "$build" -type f -name "$1" -perm -u+x | head -n1; }
cloud_bin="$(bin splitrans-cloud)"; edge_bin="$(bin splitrans-edge)"; client_bin="$(bin splitrans-client)"
[ -n "$cloud_bin" ] && [ -n "$edge_bin" ] && [ -n "$client_bin" ] || { echo "FAIL: binaries not found in $build"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/prometheus_test.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# Free loopback ports (bound and released; the servers bind them right after).
read -r CP CM EP EM PP < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()
PY
)

"$cloud_bin" --listen "127.0.0.1:$CP" --metrics-listen "127.0.0.1:$CM" --model-repo "$root/models" \
  --codec-device cpu --log-level warn >"$work/cloud.log" 2>&1 &
pids+=($!)
"$edge_bin" --listen "127.0.0.1:$EP" --cloud "127.0.0.1:$CP" --metrics-listen "127.0.0.1:$EM" \
  --model-repo "$root/models" --codec-device cpu --log-level warn >"$work/edge.log" 2>&1 &
pids+=($!)
"$client_bin" health --addr "127.0.0.1:$EP" --wait-ms 30000 >/dev/null || fail "the edge did not become ready"

"$client_bin" load --edge "127.0.0.1:$EP" --requests "$N" --concurrency 4 >"$work/load.log" 2>&1 ||
  fail "splitrans-client load failed"

for side in edge:$EM cloud:$CM; do
  name="${side%%:*}" port="${side##*:}"
  curl -sf "http://127.0.0.1:$port/metrics" >"$work/$name.prom" || fail "GET /metrics on the $name failed"
  lint="$(promtool check metrics <"$work/$name.prom" 2>&1)" || fail "promtool check metrics ($name): $lint"
  [ -z "$lint" ] || fail "promtool lint warnings ($name): $lint"
done
echo "promtool check metrics: edge and cloud expositions clean"

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: splitrans-edge
    static_configs: [{targets: ["127.0.0.1:$EM"]}]
  - job_name: splitrans-cloud
    static_configs: [{targets: ["127.0.0.1:$CM"]}]
EOF
promtool check config "$work/prometheus.yml" >/dev/null 2>&1 || fail "promtool check config"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$PP" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)

# query EXPR -> the value of the first result ("" when there is none yet).
query() {
  curl -sf --get "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1" 2>/dev/null | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}
# expect EXPR VALUE: polls (bounded, 30 s) until the query gives VALUE.
expect() {
  local got="" i
  for i in $(seq 1 60); do
    got="$(query "$1")"
    [ "$got" = "$2" ] && { echo "PromQL $1 = $got"; return 0; }
    sleep 0.5
  done
  fail "PromQL $1 = '${got}', expected $2"
}
expect 'up{job="splitrans-edge"}' 1
expect 'up{job="splitrans-cloud"}' 1
expect 'sum(splitrans_edge_requests_total{code="OK"})' "$N"
expect 'sum(splitrans_cloud_requests_total{code="OK"})' "$N"
expect "sum(splitrans_edge_cloud_requests_total{replica=\"127.0.0.1:$CP\",code=\"OK\"})" "$N"
expect 'sum(splitrans_edge_stage_duration_seconds_count{stage="encode"})' "$N"
expect 'sum(splitrans_cloud_stage_duration_seconds_count{stage="decode"})' "$N"
expect 'splitrans_edge_cloud_replica_up' 1
# The compression ratio and a latency quantile follow from what is exposed.
ratio="$(query 'sum(splitrans_edge_feature_raw_bytes_total) / sum(splitrans_edge_feature_coded_bytes_total)')"
p99="$(query 'histogram_quantile(0.99, sum by (le) (splitrans_edge_request_duration_seconds_bucket))')"
python3 -c "import sys; r, p = float('${ratio:-0}'), float('${p99:-nan}'); sys.exit(0 if r > 2 and 0 < p < 30 else 1)" ||
  fail "compression ratio '$ratio' or p99 '$p99' not plausible"
echo "PromQL compression ratio = $ratio, p99 end to end = ${p99} s"
echo "PASS"
