#!/usr/bin/env bash
# Copies GoogleTest's sources into the git-ignored .gtest-src/ so that a machine without a
# GoogleTest package (a bare GPU machine) can build the tests: the top-level CMakeLists.txt
# falls back to add_subdirectory(.gtest-src) when find_package(GTest) fails.
#   usage: scripts/fetch_gtest_src.sh [SOURCE_DIR]   (default: /usr/src/googletest, Debian's
#          googletest package; any GoogleTest source tree with a top-level CMakeLists.txt works)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${1:-${GTEST_SRC:-/usr/src/googletest}}"
DEST="$ROOT/.gtest-src"
if [ ! -f "$SRC/CMakeLists.txt" ] || [ ! -f "$SRC/googletest/CMakeLists.txt" ]; then
  echo "fetch_gtest_src: no GoogleTest sources at $SRC (Debian: apt-get install googletest)" >&2
  exit 1
fi
rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp"
# The library sources only: no tests, samples or docs (about 1 MB).
cp -a "$SRC/CMakeLists.txt" "$DEST.tmp/"
for part in googletest googlemock; do
  [ -d "$SRC/$part" ] || continue
  mkdir -p "$DEST.tmp/$part"
  for sub in CMakeLists.txt cmake include src README.md; do
    [ -e "$SRC/$part/$sub" ] && cp -a "$SRC/$part/$sub" "$DEST.tmp/$part/"
  done
done
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
version="$(sed -n 's/^set(GOOGLETEST_VERSION \(.*\))/\1/p' "$DEST/CMakeLists.txt" | head -1)"
echo "fetch_gtest_src: GoogleTest ${version:-?} copied to $DEST ($(du -sh "$DEST" | cut -f1))"
