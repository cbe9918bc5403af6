#!/usr/bin/env bash
# Installs every Debian package splitrans needs on a fresh Debian 12 machine.
# Idempotent and non-interactive: packages already present are skipped quickly.
set -euo pipefail

PACKAGES=(
  # build tools
  cmake ninja-build g++ pkg-config git ca-certificates
  # codec + tests + benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libzstd-dev liblz4-dev zstd
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  # image decoding on the edge (libpng, libjpeg-turbo's TurboJPEG API)
  libpng-dev libturbojpeg0-dev
  # fuzzing (clang's libFuzzer runtime)
  clang-14 libclang-rt-14-dev
  # services
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libssl-dev
  # TLS certificates for the tests and deploy/make_certs.sh
  openssl
  # metrics: HTTP endpoint (cpp-httplib); promtool and a real Prometheus for the tests
  libcpp-httplib-dev prometheus
  libtorch-dev libopenblas0-pthread
  # docker-compose v1 client: validates docker-compose.yml offline (no engine needed)
  docker-compose
  # model training / export and real data
  python3 python3-numpy python3-torch python3-torchvision dataset-fashion-mnist
  # tests/k8s_test.sh reads the rendered manifests
  python3-yaml
  # the Python package (python/): pybind11 module, pip install offline, pytest
  pybind11-dev python3-pybind11 python3-pytest python3-setuptools python3-pip python3-wheel
  # the link benchmark (tools/link_bench.py): network namespaces and tc (iproute2), plots
  iproute2 python3-matplotlib
  # photographs for the ImageNet-shaped link benchmark (tools/make_photos.py)
  plasma-workspace-wallpapers python3-pil
  # the character LM's corpus (tools/train_charlm.py, tools/evaluate_charlm.py): the King James
  # Bible (bible-kjv-text, public domain) and its reader `bible`
  bible-kjv
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# kubectl (its kustomize renders deploy/k8s in the tests): Debian's kubernetes-client, unless a
# kubectl with kustomize is already installed (e.g. the Google Cloud SDK's kubectl package, whose
# /usr/bin/kubectl kubernetes-client would collide with).
if ! { command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; }; then
  missing+=(kubernetes-client)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "bootstrap: installing ${#missing[@]} packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
