#!/usr/bin/env bash
# The aarch64 tests: cross-builds lowbit (Release, build-aarch64/) with Debian's g++-aarch64-linux-gnu and the
# arm64 -dev packages (multiarch, cmake/aarch64-linux-gnu.cmake), then runs under qemu-aarch64:
#   1. the whole GoogleTest suite on `-cpu max`, which has the dot product and int8 matrix multiply extensions:
#      every matmul_q check runs on the three NEON kernel variants (NEON+SDOT+I8MM, NEON+SDOT, plain NEON);
#   2. the kernel suites again on `-cpu cortex-a57` (Armv8.0, no dot product: the run-time detection must pick
#      plain NEON, and nothing outside the sdot kernels may use newer instructions);
#   3. one greedy generation with the real model on each of the two CPUs, `lowbit generate -p "Once upon a
#      time" -n 16 --temp 0 --show-ids`, whose token ids are compared with the host's (a host lowbit binary:
#      $LOWBIT_HOST_BINARY, else build/lowbit if it exists). A crash, a missing or short id list, or unprintable
#      text fails; ids that differ from the host's are reported (first divergence) but do not fail.
# Installs what it needs first (dpkg --add-architecture arm64, apt-get; idempotent; root or sudo) unless
# --no-install is given. The model comes from $LOWBIT_MODEL, else scripts/get-models.sh.
# The last line of output is the summary: "aarch64 (qemu): N tests passed, 0 failed ...".
#
#   scripts/test-aarch64.sh [--no-install]
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    -h | --help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "test-aarch64: unknown argument '$arg' (see --help)" >&2
      exit 2
      ;;
  esac
done

die() {
  echo "test-aarch64: error: $*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------------------
# Packages. The arm64 libraries must be the same Debian versions as the host's (multiarch), so they come from
# the same apt sources. nlohmann-json3-dev and libcli11-dev are header-only (Architecture: all): the host's serve.
CROSS_PACKAGES=(g++-aarch64-linux-gnu qemu-user)
ARM64_PACKAGES=(libhwy-dev libpcre2-dev libxxhash-dev libfmt-dev libgtest-dev libgmock-dev)
ALL_PACKAGES=(nlohmann-json3-dev libcli11-dev)

if [ "$install" -eq 1 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  need_update=0
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "test-aarch64: dpkg --add-architecture arm64" >&2
    $SUDO dpkg --add-architecture arm64
    need_update=1
  fi
  missing=()
  for p in "${CROSS_PACKAGES[@]}" "${ALL_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  for p in "${ARM64_PACKAGES[@]}"; do
    dpkg -s "$p:arm64" >/dev/null 2>&1 || missing+=("$p:arm64")
  done
  if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" -eq 1 ]; then
    echo "test-aarch64: apt-get install ${missing[*]}" >&2
    $SUDO apt-get update -qq
    if [ "${#missing[@]}" -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
fi
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || die "aarch64-linux-gnu-g++ not found (run without --no-install)"
command -v qemu-aarch64 >/dev/null 2>&1 || die "qemu-aarch64 not found (run without --no-install)"
# The binaries' loader is the multiarch one (libc6:arm64); qemu needs no -L (see cmake/aarch64-linux-gnu.cmake).
[ -e /lib/ld-linux-aarch64.so.1 ] || die "/lib/ld-linux-aarch64.so.1 is missing (libc6:arm64 not installed?)"
unset QEMU_LD_PREFIX QEMU_CPU

if [ -z "${LOWBIT_MODEL:-}" ]; then
  LOWBIT_MODEL="$(bash scripts/get-models.sh | tail -n 1)"
fi
export LOWBIT_MODEL
[ -f "$LOWBIT_MODEL" ] || die "model not found: $LOWBIT_MODEL"

# ---------------------------------------------------------------------------------------------------------
# Cross build.
start=$SECONDS
jobs="${JOBS:-$(nproc)}"
echo "== aarch64: cross build (build-aarch64)" >&2
cmake -S . -B build-aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DLOWBIT_BUILD_BENCH=OFF >/dev/null
nice -n 10 cmake --build build-aarch64 -j "$jobs"
build_s=$((SECONDS - start))

# ---------------------------------------------------------------------------------------------------------
# GoogleTest under qemu. Shows the failures (--gtest_brief) and the tests' own report lines on stderr; prints
# the number of tests passed.
gtest_under_qemu() {  # cpu filter
  local cpu="$1" filter="$2" log="build-aarch64/tests-$1.log" rc=0 n
  echo "== aarch64: lowbit_tests under qemu-aarch64 -cpu $cpu (--gtest_filter=$filter)" >&2
  timeout 1800 qemu-aarch64 -cpu "$cpu" build-aarch64/lowbit_tests --gtest_brief=1 --gtest_filter="$filter" \
    >"$log" 2>&1 || rc=$?
  grep -vE '^\[ *(OK|RUN) *\]|^$' "$log" | tail -n 60 >&2
  [ "$rc" -eq 0 ] || die "lowbit_tests under qemu -cpu $cpu exited with $rc (log: $log)"
  n="$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) tests\{0,1\}\.$/\1/p' "$log" | tail -n 1)"
  [ -n "$n" ] && [ "$n" -gt 0 ] || die "no test passed under qemu -cpu $cpu (log: $log)"
  if grep -q '^\[  SKIPPED \]' "$log"; then echo "test-aarch64: note: some tests were skipped (see $log)" >&2; fi
  echo "$n"
}
KERNEL_SUITES='Kernels.*:PackedFormat.*:Rtn.*:MatmulQ.*:GgmlQuants.*'
start=$SECONDS
n_max="$(gtest_under_qemu max '*')"
variants="$(sed -n 's/.*kernel variants run: *//p' build-aarch64/tests-max.log | tail -n 1)"
case " $variants " in
  *" NEON+SDOT+I8MM "*) ;;
  *) die "the NEON I8MM kernels did not run on -cpu max (variants: '${variants}')" ;;
esac
case " $variants " in
  *" NEON+SDOT "*) ;;
  *) die "the NEON+SDOT kernels did not run on -cpu max (variants: '${variants}')" ;;
esac
case " $variants " in
  *" NEON "*) ;;
  *) die "the plain NEON kernels did not run on -cpu max (variants: '${variants}')" ;;
esac
n_a57="$(gtest_under_qemu cortex-a57 "$KERNEL_SUITES")"
variants_a57="$(sed -n 's/.*kernel variants run: *//p' build-aarch64/tests-cortex-a57.log | tail -n 1)"
[ "$variants_a57" = "NEON" ] || die "expected only the plain NEON kernels on cortex-a57, ran: '${variants_a57}'"
tests_s=$((SECONDS - start))

# ---------------------------------------------------------------------------------------------------------
# End-to-end generation.
PROMPT="Once upon a time"
N_GEN=16
gen_args=(generate -m "$LOWBIT_MODEL" -p "$PROMPT" -n "$N_GEN" --temp 0 --show-ids)
ids_of() { sed -n 's/^generated ids: //p' "$1" | tail -n 1; }

host_bin="${LOWBIT_HOST_BINARY:-build/lowbit}"
host_ids=""
# The host keeps the row layout (--row-layout), the one the ARM kernels multiply from: its 16-row tiles (x86
# AVX-512 VNNI) sum in another order, and int8 activations amplify that into a near-tie flip at position 4 of
# this prompt (top-2 logits 5.48 / 5.42).
if [ -x "$host_bin" ] && "$host_bin" "${gen_args[@]}" --row-layout >build-aarch64/generate-host.out 2>build-aarch64/generate-host.err; then
  host_ids="$(ids_of build-aarch64/generate-host.err)"
else
  echo "test-aarch64: note: no host lowbit binary ($host_bin): the generated ids are not compared" >&2
fi

gen_summary=()
start=$SECONDS
for cpu in max cortex-a57; do
  out="build-aarch64/generate-$cpu.out" err="build-aarch64/generate-$cpu.err" rc=0
  echo "== aarch64: lowbit generate under qemu-aarch64 -cpu $cpu" >&2
  timeout 900 qemu-aarch64 -cpu "$cpu" build-aarch64/lowbit "${gen_args[@]}" >"$out" 2>"$err" || rc=$?
  cat "$out"
  grep -v '^generated ids:' "$err" >&2 || true
  [ "$rc" -eq 0 ] || die "lowbit generate under qemu -cpu $cpu exited with $rc: $(tail -n 3 "$err")"
  ids="$(ids_of "$err")"
  read -r -a id_list <<<"$ids"
  echo "generated ids ($cpu): $ids" >&2
  [ "${#id_list[@]}" -ge 1 ] && [ "${#id_list[@]}" -le "$N_GEN" ] ||
    die "generate on $cpu produced ${#id_list[@]} ids, expected 1 to $N_GEN"
  # Garbage check: the continuation (after the prompt) must be ordinary printable text, at least a character
  # per token when no end-of-generation token came (this prompt's greedy continuation has none).
  text="$(tail -c +$((${#PROMPT} + 1)) "$out" | tr -d '\n')"
  bytes="$(printf '%s' "$text" | wc -c)"
  printable="$(printf '%s' "$text" | LC_ALL=C tr -cd '[:alnum:][:space:][:punct:]' | wc -c)"
  min_bytes=1
  if [ "${#id_list[@]}" -eq "$N_GEN" ]; then min_bytes="$N_GEN"; fi
  [ "$bytes" -ge "$min_bytes" ] && [ $((printable * 10)) -ge $((bytes * 9)) ] ||
    die "generate on $cpu produced no plausible text: '$text'"
  if [ -z "$host_ids" ]; then
    gen_summary+=("$cpu: ${#id_list[@]} ids, not compared")
  elif [ "$ids" = "$host_ids" ]; then
    gen_summary+=("$cpu: ids equal to the host's")
  else
    read -r -a host_list <<<"$host_ids"
    i=0
    while [ "$i" -lt "${#id_list[@]}" ] && [ "${id_list[$i]}" = "${host_list[$i]:-}" ]; do i=$((i + 1)); done
    echo "test-aarch64: WARNING: $cpu ids differ from the host's from position $i:" \
      "aarch64 ${id_list[$i]:-(none)}, host ${host_list[$i]:-(none)}" >&2
    echo "  host:    $host_ids" >&2
    echo "  aarch64: $ids" >&2
    gen_summary+=("$cpu: ids differ from the host's at position $i")
  fi
done
gen_s=$((SECONDS - start))

echo "test-aarch64: times: cross build ${build_s}s, tests ${tests_s}s, generation ${gen_s}s" >&2
summary="${gen_summary[0]}"
for part in "${gen_summary[@]:1}"; do summary+="; $part"; done
echo "aarch64 (qemu): $((n_max + n_a57)) tests passed, 0 failed ($n_max on -cpu max [kernel variants: $variants]," \
  "$n_a57 kernel tests on -cpu cortex-a57 [$variants_a57]); generate: $summary"
