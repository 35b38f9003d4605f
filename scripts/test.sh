#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, fetches the real model, builds Release and an
# ASan+UBSan build, and runs ctest in both; then the aarch64 cross build, whose tests and one generation run
# under qemu-aarch64 (scripts/test-aarch64.sh; LOWBIT_SKIP_AARCH64=1 leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
LOWBIT_MODEL="$(bash scripts/get-models.sh | tail -n 1)"
export LOWBIT_MODEL
jobs="$(nproc)"

echo "== Release build" >&2
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs") | tee build/ctest-summary.log

echo "== ASan+UBSan build" >&2
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_SANITIZE=ON -DLOWBIT_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j "$jobs") |
  tee build-asan/ctest-summary.log

aarch64_line="aarch64 (qemu): skipped (LOWBIT_SKIP_AARCH64=1)"
if [ "${LOWBIT_SKIP_AARCH64:-0}" != "1" ]; then
  echo "== aarch64 cross build, tests under qemu-aarch64" >&2
  # The host's Release lowbit (built above) is the reference for the generated token ids.
  LOWBIT_HOST_BINARY="$PWD/build/lowbit" bash scripts/test-aarch64.sh | tee build/aarch64-summary.log
  aarch64_line="$(tail -n 1 build/aarch64-summary.log)"
fi

echo "== Summary" >&2
echo "Release (x86-64):"
grep -E '^[0-9]+% tests passed' build/ctest-summary.log | tail -n 1
echo "ASan+UBSan (x86-64):"
grep -E '^[0-9]+% tests passed' build-asan/ctest-summary.log | tail -n 1
echo "$aarch64_line"
