#!/usr/bin/env bash
# Smoke test of splitrans-codec: encode/decode/inspect/search on committed features (if any) and
# generated .npy files, exit codes, and clean failures on corrupt input.
# Usage: cli_smoke_test.sh PATH/TO/splitrans-codec SOURCE_DIR WORK_DIR
set -u

readonly BIN=$1 SRC=$2 WORK=$3
readonly kMaxCommittedFeatures=3
failures=0

rm -rf "$WORK" && mkdir -p "$WORK" || exit 1

Fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Runs the tool, keeping stdout/stderr in $WORK/out, $WORK/err; checks the exit status.
Expect() {
  local want=$1
  shift
  "$BIN" "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [[ $rc -ne $want ]]; then
    Fail "exit $rc (want $want): splitrans-codec $* :: $(head -c 400 "$WORK/err")"
    return 1
  fi
  if [[ $want -ne 0 ]] && ! grep -q '^splitrans-codec: ' "$WORK/err"; then
    Fail "no 'splitrans-codec: <message>' on stderr: splitrans-codec $*"
    return 1
  fi
  return 0
}

# Writes a numpy 1.0 .npy file: $1 path, $2 descr, $3 shape repr, $4 data as printf escapes.
WriteNpy() {
  local dict="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
  while (((10 + ${#dict} + 1) % 64 != 0)); do dict+=" "; done
  local len=$((${#dict} + 1))
  printf '\x93NUMPY\x01\x00' >"$1"
  printf "\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))" >>"$1"
  printf '%s\n' "$dict" >>"$1"
  printf "$4" >>"$1"
}

# Deterministic ReLU-like data: about half zeros, the rest in {0.5, 1, 1.5, 2, 2.5, 3}.
readonly -a kF32=('\x00\x00\x00\x00' '\x00\x00\x00\x3f' '\x00\x00\x80\x3f' '\x00\x00\xc0\x3f' '\x00\x00\x00\x40'
  '\x00\x00\x20\x40' '\x00\x00\x40\x40')
readonly -a kF16=('\x00\x00' '\x00\x38' '\x00\x3c' '\x00\x3e' '\x00\x40' '\x00\x41' '\x00\x42')
f32="" f16=""
for ((i = 0; i < 256; ++i)); do
  v=$(((i * 37 + i / 16) % 13))
  ((v > 6)) && v=0
  f32+=${kF32[$v]}
  f16+=${kF16[$v]}
done
WriteNpy "$WORK/gen_f32.npy" '<f4' '(4, 8, 8)' "$f32"
WriteNpy "$WORK/gen_f16.npy" '<f2' '(256,)' "$f16"

HeaderField() {  # $1 file, $2 shape|descr: prints e.g. 'shape': (4, 8, 8)
  local pattern="'shape': ([0-9, L]*)"
  [[ $2 == descr ]] && pattern="'descr': '[^']*'"
  head -c 4096 "$1" | tr -c '[:print:]' '.' | grep -o "$pattern" | head -1
}

inputs=("$WORK/gen_f32.npy" "$WORK/gen_f16.npy")
n=0
for f in "$SRC"/tests/data/features/*.npy; do
  [[ -f $f && $n -lt $kMaxCommittedFeatures ]] || continue
  inputs+=("$f")
  n=$((n + 1))
done
echo "inputs: ${inputs[*]}"

for in in "${inputs[@]}"; do
  base=$WORK/$(basename "$in" .npy)
  for mode in auto paper dense sparse context; do
    Expect 0 encode "$in" "$base.$mode.srns" --q 4 --mode "$mode" || continue
    grep -q "layout" "$WORK/out" || Fail "encode output lacks the layout: $(cat "$WORK/out")"
    Expect 0 decode "$base.$mode.srns" "$base.$mode.npy" || continue
    [[ "$(HeaderField "$in" shape)" == "$(HeaderField "$base.$mode.npy" shape)" ]] ||
      Fail "$in $mode: decoded shape $(HeaderField "$base.$mode.npy" shape) != $(HeaderField "$in" shape)"
    [[ "$(HeaderField "$in" descr)" == "$(HeaderField "$base.$mode.npy" descr)" ]] ||
      Fail "$in $mode: decoded dtype $(HeaderField "$base.$mode.npy" descr) != $(HeaderField "$in" descr)"
  done
  Expect 0 encode "$in" "$base.ex.srns" --q 3 --mode paper --search exhaustive
  Expect 0 encode "$in" "$base.clip.srns" --q 2 --quantizer clip && Expect 0 decode "$base.clip.srns" "$base.clip.npy" ||
    Fail "$in: --quantizer clip did not round-trip"
  Expect 1 encode "$in" "$base.x.srns" --q 2 --mode paper --quantizer clip && grep -q 'paper' "$WORK/err" ||
    Fail "$in: --quantizer clip --mode paper: $(cat "$WORK/err")"
  Expect 0 inspect "$base.auto.srns" && grep -q '^shape ' "$WORK/out" || Fail "inspect: no shape line"
  Expect 0 inspect --json "$base.paper.srns" && grep -q '"layout": "paper"' "$WORK/out" ||
    Fail "inspect --json: no paper layout: $(head -c 300 "$WORK/out")"
  Expect 0 search "$in" --q 4 && grep -q 'algorithm1' "$WORK/out" || Fail "search: no algorithm1 mark"
  Expect 0 search "$in" --q 2 --csv &&
    [[ "$(head -1 "$WORK/out")" == n,k,len_d,entropy_bits_per_symbol,cost_bits,coded_bytes,* ]] ||
    Fail "search --csv: bad header row $(head -1 "$WORK/out")"
done

# Corrupt, truncated and foreign inputs: exit 1 with a message, never a crash.
good=$WORK/gen_f32.auto.srns
size=$(stat -c %s "$good")
cp "$good" "$WORK/flip.srns"
off=$((size / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$good" | tr -d ' ')
printf "\\x$(printf %02x $((byte ^ 0x5a)))" | dd of="$WORK/flip.srns" bs=1 seek="$off" conv=notrunc status=none
Expect 1 decode "$WORK/flip.srns" "$WORK/x.npy" && grep -q 'CHECKSUM_MISMATCH' "$WORK/err" ||
  Fail "flipped byte: $(cat "$WORK/err")"
Expect 1 inspect "$WORK/flip.srns"
head -c $((size - 3)) "$good" >"$WORK/trunc.srns"
Expect 1 decode "$WORK/trunc.srns" "$WORK/x.npy" && grep -q 'TRUNCATED' "$WORK/err" || Fail "truncated: $(cat "$WORK/err")"
Expect 1 decode "$WORK/gen_f32.npy" "$WORK/x.npy" && grep -q 'BAD_MAGIC' "$WORK/err" || Fail "npy as srns: $(cat "$WORK/err")"
Expect 1 encode "$good" "$WORK/x.srns" && grep -q 'not a .npy file' "$WORK/err" || Fail "srns as npy: $(cat "$WORK/err")"
Expect 1 decode "$WORK/missing.srns" "$WORK/x.npy"
Expect 1 encode "$WORK/missing.npy" "$WORK/x.srns"
: >"$WORK/empty.srns"
Expect 1 inspect "$WORK/empty.srns"
WriteNpy "$WORK/f8.npy" '<f8' '(1,)' '\x00\x00\x00\x00\x00\x00\x00\x00'
Expect 1 encode "$WORK/f8.npy" "$WORK/x.srns" && grep -q "dtype '<f8' not supported" "$WORK/err" ||
  Fail "f8: $(cat "$WORK/err")"
WriteNpy "$WORK/nan.npy" '<f4' '(2,)' '\x00\x00\xc0\x7f\x00\x00\x00\x00'
Expect 1 encode "$WORK/nan.npy" "$WORK/x.srns" && grep -q 'NaN' "$WORK/err" || Fail "NaN: $(cat "$WORK/err")"
head -c 100 "$WORK/gen_f32.npy" >"$WORK/trunc.npy"
Expect 1 encode "$WORK/trunc.npy" "$WORK/x.srns"

# Decode limits: --max-elements and --max-shape refuse a bitstream (exit 1, LIMIT_EXCEEDED).
# gen_f32 is 4 x 8 x 8 = 256 elements.
for sub in decode inspect; do
  args=("$good")
  [[ $sub == decode ]] && args+=("$WORK/lim.npy")
  Expect 0 "$sub" "${args[@]}" --max-elements 256 || Fail "$sub --max-elements 256"
  Expect 1 "$sub" "${args[@]}" --max-elements 255 && grep -q 'LIMIT_EXCEEDED' "$WORK/err" ||
    Fail "$sub --max-elements 255: $(cat "$WORK/err")"
  Expect 0 "$sub" "${args[@]}" --max-shape 4,8,8 || Fail "$sub --max-shape 4,8,8"
  Expect 0 "$sub" "${args[@]}" --max-shape 8,8,8 --max-elements 256 || Fail "$sub --max-shape 8,8,8"
  Expect 1 "$sub" "${args[@]}" --max-shape 4,8,7 && grep -q 'LIMIT_EXCEEDED' "$WORK/err" &&
    grep -q '\[4, 8, 8\].*\[4, 8, 7\]' "$WORK/err" || Fail "$sub --max-shape 4,8,7: $(cat "$WORK/err")"
  Expect 1 "$sub" "${args[@]}" --max-shape 256 && grep -q 'LIMIT_EXCEEDED' "$WORK/err" ||
    Fail "$sub --max-shape 256 (rank): $(cat "$WORK/err")"
  Expect 2 "$sub" "${args[@]}" --max-shape 4,x,8
  Expect 2 "$sub" "${args[@]}" --max-shape ''
  Expect 2 "$sub" "${args[@]}" --max-elements -1
  Expect 2 "$sub" "${args[@]}" --max-elements 1e9
  Expect 0 "$sub" --help && grep -q -- '--max-shape' "$WORK/out" && grep -q -- '--max-elements' "$WORK/out" ||
    Fail "$sub --help lacks the limit options"
done
[[ -f $WORK/lim.npy ]] || Fail "decode within the limits wrote no file"

# Usage errors: exit 2. Help: exit 0 and complete for each subcommand.
Expect 2
Expect 2 frobnicate
Expect 2 encode "$WORK/gen_f32.npy"
Expect 2 encode "$WORK/gen_f32.npy" "$WORK/x.srns" --q 9
Expect 2 encode "$WORK/gen_f32.npy" "$WORK/x.srns" --mode fast
Expect 2 encode "$WORK/gen_f32.npy" "$WORK/x.srns" --search greedy
Expect 2 inspect "$good" --xml
Expect 0 --help
for sub in encode decode inspect search; do
  Expect 0 "$sub" --help && grep -q "^Usage: splitrans-codec $sub" "$WORK/out" || Fail "$sub --help"
done
Expect 0 encode --help && grep -q -- '--search' "$WORK/out" || Fail "encode --help lacks --search"

if ((failures > 0)); then
  echo "cli_smoke: $failures failure(s)" >&2
  exit 1
fi
echo "cli_smoke: all checks passed"
