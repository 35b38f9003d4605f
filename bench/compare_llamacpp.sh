#!/usr/bin/env bash
# Side-by-side with llama.cpp on the same weights (issue: foundation, acceptance 3 and 7).
#
#   bench/compare_llamacpp.sh LLAMA_CPP_BIN [--model GGUF] [--chunks N] [--lowbit BIN] [--work DIR]
#                             [--skip-ppl] [--skip-speed] [--threads N]
#
# LLAMA_CPP_BIN: the folder holding llama.cpp's built binaries (llama-quantize, llama-cli, llama-perplexity,
# llama-bench); docs/benchmarks.md says how to obtain and build it beside this project, never inside it.
# Steps, all in one run:
#   1. llama-quantize --allow-requantize MODEL → F32 (and F16) copies in WORK, so both runtimes compute in fp32;
#   2. greedy continuation of "Once upon a time" for 64 tokens on the F32 file: identical, or the first
#      divergence and lowbit's top-2 logit gap there;
#   3. wikitext-2 perplexity at ctx 512 (all windows unless --chunks), both runtimes, and the difference in %;
#   4. speed with 2 threads: llama-bench (F32, F16, native Q4_1) and `lowbit bench` (f32, f16, bf16, native),
#      prefill of 128 tokens and decode of 64, plus `lowbit bench --membw`.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
LLAMA="$1"; shift
MODEL="" CHUNKS=0 LOWBIT="$here/build/lowbit" WORK="${LOWBIT_CACHE:-$HOME/.cache/lowbit}/compare" THREADS=2
DO_PPL=1 DO_SPEED=1
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --chunks) CHUNKS="$2"; shift 2 ;;
    --lowbit) LOWBIT="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --skip-ppl) DO_PPL=0; shift ;;
    --skip-speed) DO_SPEED=0; shift ;;
    *) echo "compare_llamacpp.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
done
for b in llama-quantize llama-cli llama-perplexity llama-bench; do
  [ -x "$LLAMA/$b" ] || { echo "compare_llamacpp.sh: error: $LLAMA/$b not found (give llama.cpp's bin folder)" >&2; exit 2; }
done
[ -x "$LOWBIT" ] || { echo "compare_llamacpp.sh: error: $LOWBIT not found (build lowbit first)" >&2; exit 2; }
[ -n "$MODEL" ] || MODEL="$(bash "$here/scripts/get-models.sh" | tail -n 1)"
TEXT="$here/../shared/data/wikitext-2-test.txt"
mkdir -p "$WORK"
F32="$WORK/$(basename "${MODEL%.gguf}").F32.gguf"
F16="$WORK/$(basename "${MODEL%.gguf}").F16.gguf"
log() { printf '%s\n' "$*" >&2; }

if [ ! -s "$F32" ]; then "$LLAMA/llama-quantize" --allow-requantize "$MODEL" "$F32.tmp" F32 >/dev/null 2>&1 && mv "$F32.tmp" "$F32"; fi
if [ ! -s "$F16" ]; then "$LLAMA/llama-quantize" --allow-requantize "$MODEL" "$F16.tmp" F16 >/dev/null 2>&1 && mv "$F16.tmp" "$F16"; fi

echo "# lowbit vs llama.cpp — $(date -u +%F) — $(basename "$MODEL"), $THREADS threads"
echo
echo "llama.cpp: $LLAMA ($("$LLAMA/llama-cli" --version 2>&1 | grep -m1 version || true))"
echo

# 2. Greedy continuation.
PROMPT="Once upon a time"
ours_txt="$("$LOWBIT" generate -m "$F32" -p "$PROMPT" -n 64 --temp 0 --ignore-eos -t "$THREADS" --show-ids 2>"$WORK/gen.err")"
ours_ids="$(sed -n 's/^generated ids: //p' "$WORK/gen.err")"
theirs_txt="$("$LLAMA/llama-cli" -m "$F32" -p "$PROMPT" -n 64 --temp 0 -no-cnv -t "$THREADS" --seed 1 </dev/null 2>/dev/null)"
theirs_ids="$("$LOWBIT" tokenize -m "$F32" --ids -p "$theirs_txt")"
prompt_ids="$("$LOWBIT" tokenize -m "$F32" --ids -p "$PROMPT")"
echo "## Greedy continuation of \"$PROMPT\", 64 tokens, F32 weights"
python3 - "$prompt_ids" "$ours_ids" "$theirs_ids" "$LOWBIT" "$F32" "$WORK" <<'PY'
import os, subprocess, sys
import numpy as np
prompt, ours, theirs, lowbit, model, work = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3].split(), *sys.argv[4:]
theirs = theirs[len(prompt):len(prompt) + len(ours)]
n = min(len(ours), len(theirs))
first = next((i for i in range(n) if ours[i] != theirs[i]), None)
if first is None and len(theirs) >= len(ours):
    print(f"identical: all {len(ours)} generated tokens match llama.cpp")
else:
    first = n if first is None else first
    out = os.path.join(work, "divergence.f32")
    ids = " ".join(prompt + ours[:first])
    subprocess.run([lowbit, "logits", "-m", model, "--ids", ids, "--last", "-o", out], check=True, capture_output=True)
    logits = np.fromfile(out, dtype=np.float32)
    top = np.argsort(logits)[::-1][:2]
    print(f"first divergence at generated token {first} of {len(ours)}: lowbit chose {ours[first]}, "
          f"llama.cpp {theirs[first] if first < len(theirs) else '-'}; lowbit's top-2 logit gap there: "
          f"{logits[top[0]] - logits[top[1]]:.4g} (tokens {top[0]}, {top[1]})")
PY
echo

# 3. Perplexity.
if [ "$DO_PPL" = 1 ]; then
  log "perplexity: lowbit..."
  t0=$(date +%s)
  ours_ppl="$("$LOWBIT" perplexity -m "$F32" -f "$TEXT" --ctx 512 --chunks "$CHUNKS" -t "$THREADS" 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\) +\/- \([0-9.]*\)$/\1 \2/p')"
  t1=$(date +%s)
  # Logged at once so that a run stopped during llama.cpp's (long) pass keeps lowbit's figure.
  log "perplexity: lowbit PPL = ${ours_ppl:-?} ($((t1 - t0)) s); llama.cpp..."
  chunk_arg=(); [ "$CHUNKS" -gt 0 ] && chunk_arg=(--chunks "$CHUNKS")
  theirs_ppl="$("$LLAMA/llama-perplexity" -m "$F32" -f "$TEXT" -c 512 -t "$THREADS" "${chunk_arg[@]}" 2>&1 | sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\)$/\1 \2/p')"
  t2=$(date +%s)
  echo "## wikitext-2 test perplexity, ctx 512, F32 weights (${CHUNKS/#0/all} windows)"
  echo
  echo "| runtime | PPL | ± | seconds |"
  echo "|---|---|---|---|"
  echo "| lowbit | ${ours_ppl% *} | ${ours_ppl#* } | $((t1 - t0)) |"
  echo "| llama.cpp | ${theirs_ppl% *} | ${theirs_ppl#* } | $((t2 - t1)) |"
  python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'\nlowbit vs llama.cpp: {100*(a-b)/b:+.3f}%')" "${ours_ppl% *}" "${theirs_ppl% *}"
  echo
fi

# 4. Speed.
if [ "$DO_SPEED" = 1 ]; then
  echo "## Speed, $THREADS threads: prefill of 128 tokens and decode of 64 (tokens/s)"
  echo
  echo "| runtime | weights | prefill-128 tok/s | decode tok/s |"
  echo "|---|---|---|---|"
  "$LLAMA/llama-bench" -m "$F32" -m "$F16" -m "$MODEL" -t "$THREADS" -p 128 -n 64 -o json 2>/dev/null |
    python3 -c '
import json, sys, collections
rows = collections.OrderedDict()
for r in json.load(sys.stdin):
    key = r["model_type"]
    rows.setdefault(key, {})["pp" if r["n_prompt"] else "tg"] = r["avg_ts"]
for k, v in rows.items():
    pp, tg = v.get("pp", 0), v.get("tg", 0)
    print(f"| llama.cpp | {k} | {pp:.1f} | {tg:.1f} |")'
  for dt in f32 f16 bf16 native; do
    dt_arg=(--dtype "$dt"); label="$dt (from the GGUF)"
    [ "$dt" = native ] && { dt_arg=(); label="native GGUF types"; }
    "$LOWBIT" bench -m "$MODEL" "${dt_arg[@]}" -t "$THREADS" -p 128 -n 64 -r 3 --json |
      python3 -c "import json,sys; j=json.load(sys.stdin); print(f'| lowbit | $label | {j[\"prefill_tok_s\"]:.1f} | {j[\"decode_tok_s\"]:.1f} |')"
  done
  echo
  echo "Read bandwidth (\`lowbit bench --membw\`): $("$LOWBIT" bench --membw -t "$THREADS")"
fi
