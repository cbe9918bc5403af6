#!/usr/bin/env bash
# The codec as a package for other C++ projects: builds the codec alone (SPLITRANS_CODEC_ONLY),
# installs it to a temporary prefix, checks the installed tree, then builds and runs
# tests/data/cmake_consumer with find_package(splitrans 0.2) and with pkg-config, and checks
# that an incompatible version is refused.
# Usage: cmake_package_test.sh SOURCE_DIR [CXX_COMPILER]   (KEEP=1 keeps the work directory)
# Exit: 0 pass, 1 failure, 77 skipped (no cmake).
set -u
readonly SRC=$(cd "${1:?usage: cmake_package_test.sh SOURCE_DIR [CXX_COMPILER]}" && pwd)
readonly CXX_BIN=${2:-${CXX:-c++}}

if ! command -v cmake >/dev/null; then
  echo "SKIP: cmake not found"
  exit 77
fi
work=$(mktemp -d /tmp/splitrans-pkg-test.XXXXXX) || exit 1
if [[ -z ${KEEP:-} ]]; then trap 'rm -rf "$work"' EXIT; else echo "work directory: $work"; fi
prefix=$work/prefix
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
failures=0

Fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# Runs a command with its output in $work/log; prints the log's tail and exits if it fails.
Must() {
  if ! "$@" >"$work/log" 2>&1; then
    tail -n 40 "$work/log" >&2
    echo "FAIL: $*" >&2
    exit 1
  fi
}

# 1. The codec alone, built and installed as a user would.
echo "== building the codec (SPLITRANS_CODEC_ONLY) and installing it to $prefix"
Must cmake -S "$SRC" -B "$work/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" -DSPLITRANS_CODEC_ONLY=ON -DSPLITRANS_WITH_CUDA=OFF \
  -DSPLITRANS_BUILD_TESTS=OFF -DSPLITRANS_BUILD_BENCH=OFF
have_cli=1
grep -q 'CLI11 not found' "$work/log" && have_cli=0
Must cmake --build "$work/build" -j "${JOBS:-2}"
Must cmake --install "$work/build" --prefix "$prefix"

# 2. The installed tree.
for f in include/splitrans/codec/codec.h include/splitrans/codec/status.h include/splitrans/codec/wire.h \
         include/splitrans/codec/host_device.h lib/libsplitrans_codec.a \
         lib/cmake/splitrans/splitransConfig.cmake lib/cmake/splitrans/splitransConfigVersion.cmake \
         lib/cmake/splitrans/splitransTargets.cmake lib/pkgconfig/splitrans-codec.pc; do
  [[ -f $prefix/$f ]] || Fail "not installed: $f"
done
if ((have_cli)); then
  out=$("$prefix/bin/splitrans-codec" --version 2>&1) || Fail "installed splitrans-codec --version failed"
  [[ $out == *0.2.0* ]] || Fail "splitrans-codec --version: '$out' (want 0.2.0)"
else
  echo "note: CLI11 not found, splitrans-codec not built (nor installed)"
fi
bad=$(cd "$prefix" && find . -ipath '*torch*' -o -ipath '*grpc*' -o -ipath '*proto*' -o -ipath '*absl*' \
        -o -ipath '*cuda*' -o -ipath '*edge*' -o -ipath '*cloud*')
[[ -z $bad ]] && bad=$(grep -rlE 'Torch|torch/|grpc|absl|protobuf|CUDA::|cudart' "$prefix/lib/cmake" \
                         "$prefix/lib/pkgconfig")
[[ -z $bad ]] || Fail "Torch/gRPC/CUDA parts in the installed tree: $bad"
# Self-consistent headers: standard headers only, every quoted include resolves inside
# include/splitrans, and each header compiles on its own.
for h in "$prefix"/include/splitrans/codec/*.h; do
  other=$(grep -E '^[[:space:]]*#[[:space:]]*include' "$h" | grep -vE '^#include (<[a-z_]+>|"codec/[a-z_0-9]+\.h")$')
  [[ -z $other ]] || Fail "$(basename "$h") includes more than the standard library and codec/: $other"
  for inc in $(sed -n 's/^#include "\(.*\)"/\1/p' "$h"); do
    [[ -f $prefix/include/splitrans/$inc ]] || Fail "$(basename "$h") includes \"$inc\", which is not installed"
  done
  echo "#include \"codec/$(basename "$h")\"" >"$work/one.cc"
  "$CXX_BIN" -std=c++17 -fsyntax-only -I"$prefix/include/splitrans" "$work/one.cc" >"$work/log" 2>&1 ||
    Fail "installed $(basename "$h") does not compile alone: $(head -c 400 "$work/log")"
done

# 3. A CMake consumer: find_package(splitrans 0.2 REQUIRED), splitrans::codec, a PIC shared object.
echo "== CMake consumer (find_package)"
Must cmake -S "$SRC/tests/data/cmake_consumer" -B "$work/consumer" "${gen[@]}" \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_PREFIX_PATH="$prefix"
grep -q "consumer: splitrans 0.2.0 from $prefix/lib/cmake/splitrans" "$work/log" ||
  Fail "find_package did not take the package from $prefix: $(grep 'consumer:' "$work/log")"
Must cmake --build "$work/consumer" -j "${JOBS:-2}"
if out=$("$work/consumer/app" 2>&1) && [[ $out == "round trip ok:"* ]]; then
  echo "cmake consumer: $out"
else
  Fail "cmake consumer: $out"
fi

# 4. The same program through pkg-config.
echo "== pkg-config consumer"
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
  v=$(pkg-config --modversion splitrans-codec 2>&1)
  [[ $v == 0.2.0 ]] || Fail "pkg-config --modversion splitrans-codec: '$v'"
  pkg-config --exists 'splitrans-codec >= 0.2' || Fail "pkg-config: splitrans-codec >= 0.2 not found"
  flags=$(pkg-config --cflags --libs splitrans-codec) || Fail "pkg-config --cflags --libs failed"
  if "$CXX_BIN" -std=c++17 "$SRC/tests/data/cmake_consumer/main.cc" $flags -o "$work/app_pc" >"$work/log" 2>&1; then
    if out=$("$work/app_pc" 2>&1) && [[ $out == "round trip ok:"* ]]; then
      echo "pkg-config consumer ($flags): $out"
    else
      Fail "pkg-config consumer: $out"
    fi
  else
    Fail "pkg-config consumer does not build with '$flags': $(tail -n 20 "$work/log")"
  fi
else
  Fail "pkg-config not found (apt-get install pkgconf)"
fi

# 5. Version check (SameMinorVersion): 0.2 and 0.2.0 accepted, 0.1, 0.3 and 9.0 refused.
echo "== version compatibility"
mkdir -p "$work/ver"
for want in 0.2 0.2.0 0.1 0.3 9.0; do
  printf 'cmake_minimum_required(VERSION 3.22)\nproject(v NONE)\nfind_package(splitrans %s REQUIRED)\n' \
    "$want" >"$work/ver/CMakeLists.txt"
  rm -rf "$work/ver/b"
  cmake -S "$work/ver" -B "$work/ver/b" -DCMAKE_PREFIX_PATH="$prefix" >"$work/log" 2>&1
  rc=$?
  case $want in
    0.2*) ((rc == 0)) || Fail "find_package(splitrans $want) failed: $(tail -n 10 "$work/log")" ;;
    *) if ((rc == 0)); then
         Fail "find_package(splitrans $want) accepted version 0.2.0"
       elif ! grep -q 'compatible with requested version' "$work/log"; then
         Fail "find_package(splitrans $want) failed, not for the version: $(tail -n 10 "$work/log")"
       fi ;;
  esac
done

if ((failures)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "PASS"
