#!/usr/bin/env bash
# Installs what lowbit needs to build and test on Debian bookworm: the C++ toolchain and -dev libraries from
# apt, and the Python test oracles (numpy, gguf) from PyPI. Idempotent; needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libxxhash-dev
  python3 python3-pip unzip
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY_PACKAGES=(numpy gguf)
if ! python3 -c "import numpy, gguf" >/dev/null 2>&1; then
  echo "install-deps: pip install ${PY_PACKAGES[*]}" >&2
  # Debian's system Python refuses plain `pip install` (PEP 668); these are test-only oracles.
  python3 -m pip install -q "${PY_PACKAGES[@]}" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "${PY_PACKAGES[@]}"
fi
