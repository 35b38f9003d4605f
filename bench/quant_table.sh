#!/usr/bin/env bash
# The quantization table (issue: quantization schemes): for each recipe, the size, bits per weight, wikitext-2
# perplexity at ctx 512 and prefill/decode speed with lowbit, beside llama.cpp's Q8_0 / Q4_0 / Q4_1 made from
# the same weights (its F32 conversion), all in one run.
#
#   bench/quant_table.sh LLAMA_CPP_BIN [--model GGUF] [--chunks N] [--lowbit BIN] [--work DIR] [--threads N]
#                        [--skip-ppl | --skip-speed]
#
# --chunks limits perplexity to the first N windows of 512 tokens (default 40; 0 = all 603) for both runtimes.
# --skip-ppl / --skip-speed leave those columns empty (e.g. perplexity while the machine is busy, speed on a
# quiet machine).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
LLAMA="$1"; shift
MODEL="" CHUNKS=40 LOWBIT="$here/build/lowbit" WORK="${LOWBIT_CACHE:-$HOME/.cache/lowbit}/compare" THREADS=2
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
    *) echo "quant_table.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
done
for b in llama-quantize llama-perplexity llama-bench; do
  [ -x "$LLAMA/$b" ] || { echo "quant_table.sh: error: $LLAMA/$b not found" >&2; exit 2; }
done
[ -n "$MODEL" ] || MODEL="$(bash "$here/scripts/get-models.sh" | tail -n 1)"
TEXT="$here/../shared/data/wikitext-2-test.txt"
mkdir -p "$WORK"
base="$WORK/$(basename "${MODEL%.gguf}")"
[ -s "$base.F32.gguf" ] || "$LLAMA/llama-quantize" --allow-requantize "$MODEL" "$base.F32.gguf" F32 >/dev/null 2>&1
chunk_args=(); [ "$CHUNKS" -gt 0 ] && chunk_args=(--chunks "$CHUNKS")

ppl_lowbit() { [ "$DO_PPL" = 1 ] || { echo 0; return; }; "$LOWBIT" perplexity -m "$1" --ctx 512 -t "$THREADS" "${chunk_args[@]}" -f "$TEXT" "${@:2}" 2>/dev/null | sed -n 's/^PPL = \([0-9.]*\).*/\1/p'; }
ppl_llama() { [ "$DO_PPL" = 1 ] || { echo 0; return; }; "$LLAMA/llama-perplexity" -m "$1" -f "$TEXT" -c 512 -t "$THREADS" "${chunk_args[@]}" 2>&1 | sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p'; }

echo "# Quantization table — $(date -u +%F) — $(basename "$MODEL"), $THREADS threads, perplexity over ${CHUNKS/#0/all} windows of 512"
echo
echo "| runtime | scheme | weights | bits/weight | PPL | vs fp32 | prefill-128 tok/s | decode tok/s |"
echo "|---|---|---|---|---|---|---|---|"
fp32_ppl=""
row_lowbit() {  # name, then lowbit model args
  local name="$1"; shift
  local ppl j
  ppl="$(ppl_lowbit "$@")"
  [ -n "$fp32_ppl" ] || fp32_ppl="$ppl"
  if [ "$DO_SPEED" = 1 ]; then
    j="$("$LOWBIT" bench -m "$@" -t "$THREADS" -p 128 -n 64 -r 3 --json 2>/dev/null)"
  else
    j="$("$LOWBIT" bench -m "$@" -t "$THREADS" -p 1 -n 1 -r 1 --no-limits --json 2>/dev/null)"
  fi
  python3 - "$name" "$ppl" "$fp32_ppl" "$j" "$DO_SPEED" <<'PY'
import json, sys
name, ppl, base, j, speed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5] == "1"
p = f"{ppl:.4f} | {100*(ppl-base)/base:+.2f}%" if base else "- | -"
s = f"{j['prefill_tok_s']:.1f} | {j['decode_tok_s']:.1f}" if speed else "- | -"
print(f"| lowbit | {name} | {j['weight_bytes']/2**20:.1f} MiB | {j['bits_per_weight']:.2f} | {p} | {s} |")
PY
}
row_lowbit "fp32 (baseline)" "$MODEL" --dtype f32
row_lowbit "native Q4_1 file" "$MODEL"
while IFS='|' read -r name recipe; do
  [ -n "$name" ] || continue
  row_lowbit "$name" "$MODEL" -q "$recipe"
done <<'EOF_RECIPES'
int8 g0|{"linear:int8": {"groupsize": 0}}
int8 g32|{"linear:int8": {"groupsize": 32}}
int4 g32|{"linear:int4": {"groupsize": 32}}
int4 g64|{"linear:int4": {"groupsize": 64}}
int4 g128 (g96 on 576-wide rows)|{"linear:int4": {"groupsize": 128}}
int4 g256 (g192 on 576-wide rows)|{"linear:int4": {"groupsize": 256}}
int4 g0 (channelwise)|{"linear:int4": {"groupsize": 0}}
a8w4dq g32|{"linear:a8w4dq": {"groupsize": 32}}
a8w4dq g256 (g192 on 576-wide rows)|{"linear:a8w4dq": {"groupsize": 256}}
a8wxdq 2-bit g32|{"linear:a8wxdq": {"bitwidth": 2, "groupsize": 32}}
a8wxdq 2-bit g32 zeros|{"linear:a8wxdq": {"bitwidth": 2, "groupsize": 32, "has_weight_zeros": true}}
a8wxdq 3-bit g32|{"linear:a8wxdq": {"bitwidth": 3, "groupsize": 32}}
a8wxdq 3-bit g32 zeros|{"linear:a8wxdq": {"bitwidth": 3, "groupsize": 32, "has_weight_zeros": true}}
a8wxdq 5-bit g32|{"linear:a8wxdq": {"bitwidth": 5, "groupsize": 32}}
a8wxdq 5-bit g32 zeros|{"linear:a8wxdq": {"bitwidth": 5, "groupsize": 32, "has_weight_zeros": true}}
a8wxdq 6-bit g32|{"linear:a8wxdq": {"bitwidth": 6, "groupsize": 32}}
a8wxdq 6-bit g32 zeros|{"linear:a8wxdq": {"bitwidth": 6, "groupsize": 32, "has_weight_zeros": true}}
embedding 8 g32 only|{"embedding": {"bitwidth": 8, "groupsize": 32}}
embedding 4 g32 only|{"embedding": {"bitwidth": 4, "groupsize": 32}}
int8 g32 + embedding 8 g32|{"linear:int8": {"groupsize": 32}, "embedding": {"bitwidth": 8, "groupsize": 32}}
a8wxdq 8-bit g32 + embedding 8 g32 (Q8_0 bytes)|{"linear:a8wxdq": {"bitwidth": 8, "groupsize": 32}, "embedding": {"bitwidth": 8, "groupsize": 32}}
a8w4dq g32 + embedding:wx 6 g32 (≈ Q4_0 bytes)|{"linear:a8w4dq": {"groupsize": 32}, "embedding:wx": {"bitwidth": 6, "groupsize": 32}}
int4 g32 + embedding:wx 6 g32 (≈ Q4_1 bytes)|{"linear:int4": {"groupsize": 32}, "embedding:wx": {"bitwidth": 6, "groupsize": 32}}
a8w4dq g32 + embedding 4 g32 (mobile)|{"linear:a8w4dq": {"groupsize": 32}, "embedding": {"bitwidth": 4, "groupsize": 32}}
EOF_RECIPES
for q in Q8_0 Q4_0 Q4_1; do
  f="$base.$q.gguf"
  [ -s "$f" ] || "$LLAMA/llama-quantize" --allow-requantize "$base.F32.gguf" "$f" "$q" >/dev/null 2>&1
  ppl="$(ppl_llama "$f")"
  reps=5; [ "$DO_SPEED" = 1 ] || reps=1
  "$LLAMA/llama-bench" -m "$f" -t "$THREADS" -p 128 -n 64 -r "$reps" -o json 2>/dev/null |
    python3 -c '
import json, sys
rows = json.load(sys.stdin)
pp = next(r["avg_ts"] for r in rows if r["n_prompt"]); tg = next(r["avg_ts"] for r in rows if r["n_gen"])
size, params = rows[0]["model_size"], rows[0]["model_n_params"]
ppl, base, speed = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
p = f"{ppl:.4f} | {100*(ppl-base)/base:+.2f}%" if base else "- | -"
s = f"{pp:.1f} | {tg:.1f}" if speed else "- | -"
print(f"| llama.cpp | {sys.argv[1]} (from F32) | {size/2**20:.1f} MiB | {8*size/params:.2f} | {p} | {s} |")' "$q" "$ppl" "$fp32_ppl" "$DO_SPEED"
done
