#!/usr/bin/env bash
# Smoke run of the link benchmark (tools/link_bench.py): one emulated link, 10 Mbit/s with 40 ms
# round trip, in a private network namespace; the codec's split against the raw float32 split.
# Checks that the link is what it says (no request beats the physics of bandwidth + RTT), that
# the coded split is faster than the raw one there, and that the report tool reads the output.
#   usage: tests/link_bench_test.sh BUILD_DIR     (exit 77: skipped, with the reason)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$(cd "${1:?usage: link_bench_test.sh BUILD_DIR}" && pwd)"
PY=/usr/bin/python3

source "$ROOT/tests/netns_preflight.sh" link_bench.py

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
"$PY" "$ROOT/tools/link_bench.py" --build "$BUILD" --links 10:40 --methods auto-q4,raw --concurrency 1 \
  --requests 30 --min-requests 30 --out "$OUT/run.jsonl"
"$PY" "$ROOT/tools/link_report.py" "$OUT/run.jsonl" --png "$OUT/plot.png" > "$OUT/report.md"
cat "$OUT/report.md"
test -s "$OUT/plot.png"
"$PY" - "$OUT/run.jsonl" <<'EOF'
import json, sys
runs = {r["method"]: r for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "latency"}
raw, coded = runs["raw"], runs["auto-q4"]
for r in (raw, coded):
    assert r["failed"] == 0 and r["requests"] == 30, r
# Physics: one request moves its payload (plus ~5% headers) at 10 Mbit/s and waits one RTT.
floor_ms = lambda r: r["bytes"] * 8 / 10e6 * 1e3 + 40
for r in (raw, coded):
    assert r["p50_ms"] >= floor_ms(r), (r["method"], r["p50_ms"], floor_ms(r))
    assert r["p50_ms"] < floor_ms(r) * 1.05 + 40, ("far slower than the link explains", r["method"], r["p50_ms"])
assert raw["bytes"] == 25088 and coded["bytes"] < raw["bytes"] / 8, (raw["bytes"], coded["bytes"])
assert coded["p50_ms"] < raw["p50_ms"], ("the coded split is not faster on a 10 Mbit/s link", coded, raw)
print(f"link_bench_test: raw {raw['p50_ms']:.1f} ms (floor {floor_ms(raw):.1f}), auto-q4 {coded['p50_ms']:.1f} ms "
      f"(floor {floor_ms(coded):.1f}) at 10 Mbit/s, RTT 40 ms")
EOF
if ip netns list | grep -q "splitrans-link-"; then
  echo "FAIL: the harness left a network namespace behind"; ip netns list; exit 1
fi
echo "link_bench_test: OK"
