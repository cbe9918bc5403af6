# Sourced by the harness smoke tests (link_bench_test.sh, policy_bench_test.sh): exits 77 (ctest's
# skip, with the reason) unless this runs as root with network namespaces. $1: the harness's name.
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root for ip netns and tc (run the harness by hand: tools/$1 --help)"
  exit 77
fi
probe="splitrans-probe-$$"
if ! ip netns add "$probe" 2>/dev/null; then
  echo "SKIP: network namespaces are not available here (ip netns add failed)"
  exit 77
fi
ip netns del "$probe"
