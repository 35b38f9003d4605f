#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, fetches the real model, builds Release and an
# ASan+UBSan build, and runs ctest in both.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
LOWBIT_MODEL="$(bash scripts/get-models.sh | tail -n 1)"
export LOWBIT_MODEL
jobs="$(nproc)"

echo "== Release build" >&2
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")

echo "== ASan+UBSan build" >&2
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOWBIT_SANITIZE=ON -DLOWBIT_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j "$jobs")
