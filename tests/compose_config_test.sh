#!/usr/bin/env bash
# Validates docker-compose.yml without a Docker engine: `config -q` must pass,
# services cloud/edge/client must exist with the expected wiring, the
# `gpu` profile's cloud-gpu service must reserve an NVIDIA GPU and build the
# CUDA image (Dockerfile target cloud-gpu, configured as scripts/gpu_check.sh
# configures the codec), every build target must be a stage of deploy/Dockerfile,
# and the TLS variant (docker-compose.tls.yml on top) must wire certificates and tokens.
# Exit: 0 pass, 1 fail, 77 skipped (neither docker-compose nor `docker compose`).
# Needs the Debian package docker-compose (v1.29, supports profiles).
#   usage: tests/compose_config_test.sh [BUILD_DIR]   (with BUILD_DIR: also checks that the
#   binaries built there know every SPLITRANS_* variable the compose files set)
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
file="$(dirname "$here")/docker-compose.yml"
tls_file="$(dirname "$here")/docker-compose.tls.yml"
dockerfile="$(dirname "$here")/deploy/Dockerfile"

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
check "cloud builds target cloud"          grep -q 'target: cloud$' <<<"$cloud"
check "cloud does not demand a GPU codec"  bash -c '! grep -q "SPLITRANS_CODEC_DEVICE: gpu" <<<"$1"' _ "$cloud"
check "cloud-gpu builds target cloud-gpu"  grep -q 'target: cloud-gpu$' <<<"$cloudgpu"
check "cloud-gpu image splitrans-cloud-gpu" grep -Eq 'image: splitrans-cloud-gpu(:|$)' <<<"$cloudgpu"
check "cloud-gpu demands the GPU codec"    grep -q 'SPLITRANS_CODEC_DEVICE: gpu' <<<"$cloudgpu"

# Every build target is a stage of deploy/Dockerfile (docker-compose config does not read it).
for t in $(printf '%s\n' "$gpu" | sed -n 's/^ *target: \([a-z][a-z0-9-]*\)$/\1/p' | sort -u); do  # not ports' target
  check "Dockerfile has stage $t" grep -Eqi "^FROM [^ ]+ AS $t\$" "$dockerfile"
done
# The GPU image is configured like scripts/gpu_check.sh's codec build: preset cloud-cuda inherits
# the hidden preset "cuda" that codec-cuda (gpu_check.sh's options) inherits, and the CUDA
# architectures default to CMakeLists.txt's list, which is gpu_check.sh's fallback.
root="$(dirname "$here")"
check "Dockerfile cloud-gpu build uses preset cloud-cuda" grep -q -- '--preset cloud-cuda' "$dockerfile"
check "Dockerfile cloud-gpu stage copies the CUDA build" grep -q 'COPY --from=build-gpu /out/bin/splitrans-cloud' "$dockerfile"
check "presets cloud-cuda and codec-cuda share the CUDA options" /usr/bin/python3 - "$root/CMakePresets.json" <<'PY'
import json, sys
p = {c["name"]: c for c in json.load(open(sys.argv[1]))["configurePresets"]}
base = p["cuda"]["cacheVariables"]
ok = all(p[n].get("inherits") == "cuda" for n in ("cloud-cuda", "codec-cuda"))
ok = ok and base.get("CMAKE_BUILD_TYPE") == "Release" and base.get("SPLITRANS_WITH_CUDA") == "ON"
ok = ok and "CMAKE_CUDA_ARCHITECTURES" not in base and p["codec-cuda"]["cacheVariables"].get("SPLITRANS_CODEC_ONLY") == "ON"
sys.exit(0 if ok else 1)
PY
cmake_archs="$(sed -n 's/^ *set(CMAKE_CUDA_ARCHITECTURES \(.*\))$/\1/p' "$root/CMakeLists.txt" | tr ' ' ';')"
gpu_check_archs="$(sed -n 's/^\[ -z "\$ARCH" \] && ARCH="\(.*\)"$/\1/p' "$root/scripts/gpu_check.sh")"
check "CUDA architectures: CMakeLists.txt ($cmake_archs) = gpu_check.sh fallback ($gpu_check_archs)" \
  test -n "$cmake_archs" -a "$cmake_archs" = "$gpu_check_archs"

check "config -q (TLS variant)" "${dc[@]}" -f "$file" -f "$tls_file" config -q
tls="$("${dc[@]}" -f "$file" -f "$tls_file" config 2>&1)"
tcloud="$(service_block "$tls" cloud)"
tedge="$(service_block "$tls" edge)"
tclient="$(service_block "$tls" client)"
check "tls: cloud serves its certificate"        grep -q 'SPLITRANS_CLOUD_TLS_CERT: /etc/splitrans/certs/cloud.pem' <<<"$tcloud"
check "tls: cloud requires client certificates"  grep -q 'SPLITRANS_CLOUD_TLS_CLIENT_CERTS: require' <<<"$tcloud"
check "tls: cloud probe presents a certificate"  grep -q 'edge-client.pem' <<<"$tcloud"
check "tls: certificates mounted read-only"      grep -q '/etc/splitrans/certs:ro' <<<"$tcloud"
check "tls: edge serves its certificate"         grep -q 'SPLITRANS_EDGE_TLS_CERT: /etc/splitrans/certs/edge.pem' <<<"$tedge"
check "tls: edge requires tokens"                grep -q 'SPLITRANS_EDGE_AUTH_TOKENS: /etc/splitrans/certs/edge-tokens' <<<"$tedge"
check "tls: edge presents its client cert"       grep -q 'SPLITRANS_EDGE_CLOUD_TLS_CERT: /etc/splitrans/certs/edge-client.pem' <<<"$tedge"
check "tls: edge verifies the cloud"             grep -q 'SPLITRANS_EDGE_CLOUD_TLS_CA: /etc/splitrans/certs/ca.pem' <<<"$tedge"
check "tls: edge still points at cloud:50052"    grep -q 'SPLITRANS_CLOUD_TARGET: cloud:50052' <<<"$tedge"
check "tls: edge probe sends the token"          grep -q 'client.token' <<<"$tedge"
check "tls: client trusts the CA"                grep -q 'SPLITRANS_CLIENT_TLS_CA: /etc/splitrans/certs/ca.pem' <<<"$tclient"
check "tls: client sends the token"              grep -q 'SPLITRANS_TOKEN_FILE: /etc/splitrans/certs/client.token' <<<"$tclient"
check "no private key is committed"              bash -c '! git -C "$1" ls-files | grep -Eq "\.key$|edge-tokens|client\.token"' _ "$(dirname "$here")"
# The env names the compose files use are the binaries' (checked against their --help).
build_dir="${1:-}"
for bin in edge/splitrans-edge cloud/splitrans-cloud client/splitrans-client; do
  [ -n "$build_dir" ] || break
  b="$build_dir/$bin"
  check "$bin is built" test -x "$b"
  [ -x "$b" ] || continue
  help="$("$b" --help 2>&1; [ "$bin" = client/splitrans-client ] && "$b" eval --help 2>&1)"
  for v in $(grep -o 'SPLITRANS_[A-Z_]*' "$file" "$tls_file" | cut -d: -f2 | sort -u); do
    case "$bin:$v" in
      edge/*:SPLITRANS_EDGE_*|edge/*:SPLITRANS_CLOUD_TARGET|cloud/*:SPLITRANS_CLOUD_ADDR|cloud/*:SPLITRANS_CLOUD_TLS_*|cloud/*:SPLITRANS_CODEC_DEVICE|client/*:SPLITRANS_CLIENT_*|client/*:SPLITRANS_TOKEN_FILE)
        check "$bin knows $v" grep -q "$v" <<<"$help" ;;
    esac
  done
done

if [ $fail -ne 0 ]; then
  echo "--- docker-compose --profile gpu config ---"
  printf '%s\n' "$gpu"
  exit 1
fi
echo "PASS"
