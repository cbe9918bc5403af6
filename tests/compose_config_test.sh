#!/usr/bin/env bash
# Validates docker-compose.yml without a Docker engine: `config -q` must pass,
# services cloud/edge/client must exist with the expected wiring, and the
# `gpu` profile's cloud-gpu service must reserve an NVIDIA GPU.
# Exit: 0 pass, 1 fail, 77 skipped (neither docker-compose nor `docker compose`).
# Needs the Debian package docker-compose (v1.29, supports profiles).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
file="$(dirname "$here")/docker-compose.yml"

if command -v docker-compose >/dev/null 2>&1; then
  dc=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  dc=(docker compose)
else
  echo "SKIP: docker-compose not installed (apt-get install docker-compose)"
  exit 77
fi
echo "using: $("${dc[@]}" version 2>/dev/null | head -n1)"

# Fixed environment so interpolation is deterministic.
unset SPLITRANS_LOG_LEVEL COMPOSE_PROFILES COMPOSE_FILE
fail=0
check() {  # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then echo "ok   - $what"; else echo "FAIL - $what"; fail=1; fi
}

# Print the block of one service from `config` output (4-space-indented body).
service_block() {  # service_block CONFIG_TEXT NAME
  printf '%s\n' "$1" | awk -v s="  $2:" '
    $0 == s { on = 1; next }
    on && /^  [^ ]/ { on = 0 }
    on && /^[^ ]/ { on = 0 }
    on { print }'
}

check "config -q (default profile)" "${dc[@]}" -f "$file" config -q
check "config -q (--profile gpu)" "${dc[@]}" -f "$file" --profile gpu config -q

cfg="$("${dc[@]}" -f "$file" config 2>&1)"
gpu="$("${dc[@]}" -f "$file" --profile gpu config 2>&1)"
services="$("${dc[@]}" -f "$file" config --services 2>&1)"

for s in cloud edge client; do
  check "service $s exists" grep -qx "$s" <<<"$services"
done

cloud="$(service_block "$cfg" cloud)"
edge="$(service_block "$cfg" edge)"
client="$(service_block "$cfg" client)"
cloudgpu="$(service_block "$gpu" cloud-gpu)"

check "cloud listens on :50052"            grep -q 'SPLITRANS_CLOUD_ADDR: 0.0.0.0:50052' <<<"$cloud"
check "cloud has a model repo"             grep -q 'SPLITRANS_MODEL_REPO: /opt/splitrans/models' <<<"$cloud"
check "cloud has a health check"           grep -q 'splitrans-client' <<<"$cloud"
check "edge listens on :8001"              grep -q 'SPLITRANS_EDGE_ADDR: 0.0.0.0:8001' <<<"$edge"
check "edge points at cloud:50052"         grep -q 'SPLITRANS_CLOUD_TARGET: cloud:50052' <<<"$edge"
check "edge waits for cloud healthy"       grep -q 'condition: service_healthy' <<<"$edge"
check "edge has a readiness check"         grep -q -- '--ready' <<<"$edge"
check "client runs eval against edge:8001" grep -q 'edge:8001' <<<"$client"
check "client waits for edge healthy"      grep -q 'condition: service_healthy' <<<"$client"
check "cloud has no GPU reservation"       bash -c '! grep -q "driver: nvidia" <<<"$1"' _ "$cloud"
check "cloud-gpu in --profile gpu config"  test -n "$cloudgpu"
check "cloud-gpu reserves driver nvidia"   grep -q 'driver: nvidia' <<<"$cloudgpu"
check "cloud-gpu reserves count 1"         grep -Eq "count: '?1'?$" <<<"$cloudgpu"
check "cloud-gpu capability gpu"           grep -Eq -- '- gpu$|capabilities: \[gpu\]' <<<"$cloudgpu"
check "cloud-gpu is in profile gpu"        grep -Eq -- '- gpu$|profiles: \[gpu\]' <(sed -n '/profiles:/,/^    [^ -]/p' <<<"$cloudgpu")
check "cloud has no profile (default)"     bash -c '! grep -q "profiles:" <<<"$1"' _ "$cloud"

if [ $fail -ne 0 ]; then
  echo "--- docker-compose --profile gpu config ---"
  printf '%s\n' "$gpu"
  exit 1
fi
echo "PASS"
