#!/usr/bin/env bash
# Speed on a model big enough to be memory-bound (issue: fast kernels): lowbit against llama.cpp and, if given,
# ik_llama.cpp, on the very same GGUF files, all in one run, 2 threads by default.
#
#   bench/speed_table.sh LLAMA_CPP_BIN [--ik IK_LLAMA_BIN] [--ik-args "ARGS"] [--preset NAME] [--work DIR]
#                        [--threads N] [--lowbit BIN] [--types "Q4_0 Q8_0 Q2_K Q3_K_S F16"] [--rounds N]
#                        [--decode-only]
#
# LLAMA_CPP_BIN / IK_LLAMA_BIN: folders holding llama-bench and llama-quantize (docs/benchmarks.md says how to
# build them beside this project). --ik-args are extra llama-bench arguments for ik_llama.cpp (e.g. "-rtr 1"
# for its run-time repacking).
# Steps:
#   1. `lowbit synth --preset NAME --type f16` (default tinyllama-1.1b, the llama-spm vocabulary): random weights
#      of the real dimensions, as GGUF, in WORK;
#   2. llama.cpp's llama-quantize makes Q4_0 and Q8_0 with --pure (every tensor in that type, so lowbit runs the
#      identical file natively) and Q2_K / Q3_K_S with llama.cpp's default mixtures;
#   3. llama-bench (prefill of 128 tokens, decode of 64) for each file with each anchor; `lowbit bench` on the
#      Q4_0/Q8_0 files natively, on the F16 file with --dtype f16 and bf16, and on the F16 file with the recipe of the
#      same bits (a8w4dq g32 ≈ Q4_0, a8wxdq 8-bit g32 ≈ Q8_0, a8wxdq 2/3-bit g32 with zeros beside Q2_K/Q3_K_S);
#   4. steps 3 repeated --rounds times (default 3), every runtime once per round, interleaved, because this
#      kind of VM's bandwidth drifts by tens of percent within minutes;
#   5. one table of the medians over the rounds: tokens/s, lowbit's % of the bandwidth limit (decode) and of the
#      multiply-add peak (prefill), and lowbit's ratio to each anchor on the same file or bit width;
#   6. the read bandwidth (`lowbit bench --membw`) is measured right before every runtime's run, and a second
#      table gives each round's decode beside it and the median of the per-round ratios (runs next to each other
#      in time mostly share the VM's bandwidth state, where medians over rounds may not).
# --decode-only: no prefill (anchors -p 0, lowbit a 16-token prompt, 2 repeats, no limits measured), so a round
# is short (about a minute for Q4_0 and Q8_0) and many fit: the per-round ratios are then the robust figure on
# a drifting machine.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }
LLAMA="$1"; shift
IK="" IK_ARGS="" PRESET="tinyllama-1.1b" WORK="${LOWBIT_CACHE:-$HOME/.cache/lowbit}/synth" THREADS=2
LOWBIT="$here/build/lowbit" TYPES="Q4_0 Q8_0 Q2_K Q3_K_S F16" ROUNDS=3 DECODE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ik) IK="$2"; shift 2 ;;
    --ik-args) IK_ARGS="$2"; shift 2 ;;
    --preset) PRESET="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --lowbit) LOWBIT="$2"; shift 2 ;;
    --types) TYPES="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --decode-only) DECODE_ONLY=1; shift ;;
    *) echo "speed_table.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
done
for d in "$LLAMA" ${IK:+"$IK"}; do
  for b in llama-bench llama-quantize; do
    [ -x "$d/$b" ] || { echo "speed_table.sh: error: $d/$b not found (give the folder of the built binaries)" >&2; exit 2; }
  done
done
[ -x "$LOWBIT" ] || { echo "speed_table.sh: error: $LOWBIT not found (build lowbit first)" >&2; exit 2; }
mkdir -p "$WORK"
RAW="$WORK/speed_table.$PRESET.jsonl"
: >"$RAW"
log() { printf '%s\n' "$*" >&2; }

F16="$WORK/$PRESET.F16.gguf"
vocab=()
case "$PRESET" in tinyllama-1.1b|llama-2-7b) vocab=(--vocab "$here/../shared/tokenizers/ggml-vocab-llama-spm.gguf") ;; esac
[ -s "$F16" ] || { log "synth $PRESET..."; "$LOWBIT" synth --preset "$PRESET" "${vocab[@]}" --type f16 -o "$F16" >&2; }
file_of() { [ "$1" = F16 ] && echo "$F16" || echo "$WORK/$PRESET.$1.gguf"; }
for t in $TYPES; do
  f="$(file_of "$t")"
  [ "$t" = F16 ] || [ -s "$f" ] || {
    pure=(); case "$t" in Q4_0|Q8_0) pure=(--pure) ;; esac
    log "llama-quantize $t..."
    "$LLAMA/llama-quantize" "${pure[@]}" "$F16" "$f.tmp" "$t" >/dev/null 2>&1 && mv "$f.tmp" "$f"
  }
done

# One JSON line per measurement: {"type", "runtime", "how", "round", "bw_before", "pp", "tg", "pct_bw", "pct_peak"}.
round=0  # the current round: the loop below sets it, anchor and ours record it
probe() {  # read bandwidth right now, GB/s
  "$LOWBIT" bench --membw -t "$THREADS" --json 2>/dev/null |
    python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["read_bandwidth_gb_s"])'
}
anchor() {  # name, bin dir, extra args, type
  local name="$1" dir="$2" extra="$3" t="$4" bw
  bw="$(probe)"
  log "$name llama-bench $t (read bandwidth before: $bw GB/s)..."
  local np=128 reps=()
  [ "$DECODE_ONLY" = 0 ] || { np=0; reps=(-r 2); }
  # shellcheck disable=SC2086
  "$dir/llama-bench" -m "$(file_of "$t")" -t "$THREADS" -p "$np" -n 64 "${reps[@]}" $extra -o json 2>/dev/null |
    python3 -c '
import json, sys
rows = json.load(sys.stdin)
pp = next((r["avg_ts"] for r in rows if r["n_prompt"]), None); tg = next(r["avg_ts"] for r in rows if r["n_gen"])
print(json.dumps({"type": sys.argv[1], "runtime": sys.argv[2], "how": "file", "round": int(sys.argv[3]),
                  "bw_before": float(sys.argv[4]), "pp": pp, "tg": tg}))' "$t" "$name" "$round" "$bw" >>"$RAW"
}
ours() {  # type label, how, then lowbit args
  local t="$1" how="$2" bw; shift 2
  bw="$(probe)"
  log "lowbit $t ($how) (read bandwidth before: $bw GB/s)..."
  local opts=(-p 128 -n 64 -r 3)
  [ "$DECODE_ONLY" = 0 ] || opts=(-p 16 -n 64 -r 2 --no-limits)
  "$LOWBIT" bench "$@" -t "$THREADS" "${opts[@]}" --json 2>/dev/null |
    python3 -c '
import json, sys
j = json.load(sys.stdin)
print(json.dumps({"type": sys.argv[1], "runtime": "lowbit", "how": sys.argv[2], "round": int(sys.argv[3]),
                  "bw_before": float(sys.argv[4]), "pp": j["prefill_tok_s"] if sys.argv[5] == "0" else None,
                  "tg": j["decode_tok_s"], "pct_bw": j.get("decode_pct_of_limit", 0),
                  "pct_peak": j.get("prefill_pct_of_peak", 0), "peak_kind": j.get("peak_kind", ""),
                  "bw": j.get("read_bandwidth_gb_s", 0), "bpw": j["bits_per_weight"]}))' "$t" "$how" "$round" "$bw" "$DECODE_ONLY" >>"$RAW"
}
recipe_for() {
  case "$1" in
    Q4_0) echo '{"linear:a8w4dq": {"groupsize": 32}, "embedding": {"bitwidth": 4, "groupsize": 32}, "output": {"scheme": "linear:a8w4dq", "groupsize": 32}}' ;;
    Q8_0) echo '{"linear:a8wxdq": {"bitwidth": 8, "groupsize": 32}, "embedding": {"bitwidth": 8, "groupsize": 32}, "output": {"scheme": "linear:a8wxdq", "bitwidth": 8, "groupsize": 32}}' ;;
    Q2_K) echo '{"linear:a8wxdq": {"bitwidth": 2, "groupsize": 32, "has_weight_zeros": true}, "embedding:wx": {"bitwidth": 4, "groupsize": 32}, "output": {"scheme": "linear:a8wxdq", "bitwidth": 6, "groupsize": 32}}' ;;
    Q3_K_S) echo '{"linear:a8wxdq": {"bitwidth": 3, "groupsize": 32, "has_weight_zeros": true}, "embedding:wx": {"bitwidth": 4, "groupsize": 32}, "output": {"scheme": "linear:a8wxdq", "bitwidth": 6, "groupsize": 32}}' ;;
  esac
}
for round in $(seq "$ROUNDS"); do
log "== round $round of $ROUNDS"
for t in $TYPES; do
  anchor llama.cpp "$LLAMA" "" "$t"
  [ -z "$IK" ] || anchor ik_llama.cpp "$IK" "$IK_ARGS" "$t"
  case "$t" in
    F16)
      ours "$t" "--dtype f16" -m "$F16" --dtype f16
      ours "$t" "--dtype bf16" -m "$F16" --dtype bf16 ;;
    Q4_0|Q8_0)
      ours "$t" "same file, native" -m "$(file_of "$t")"
      ours "$t" "recipe from F16" -m "$F16" -q "$(recipe_for "$t")" ;;
    *) ours "$t" "recipe from F16" -m "$F16" -q "$(recipe_for "$t")" ;;
  esac
done
done

python3 - "$RAW" "$PRESET" "$THREADS" "$ROUNDS" <<'PY'
import json, statistics, sys
raw = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# Median of every numeric field over the rounds, per (type, runtime, how), in first-seen order.
groups = {}
for r in raw:
    groups.setdefault((r["type"], r["runtime"], r["how"]), []).append(r)
rows = []
for (t, rt, how), rs in groups.items():
    m = dict(rs[0])
    for k, v in rs[0].items():
        if isinstance(v, (int, float)):
            vals = [x[k] for x in rs if isinstance(x.get(k), (int, float))]
            m[k] = statistics.median(vals) if vals else None
        elif v is None:
            m[k] = None
    m["n"] = len(rs)
    rows.append(m)
what = "prefill 128 / decode 64" if any(r.get("pp") for r in raw) else "decode 64 only"
print(f"# Speed — {sys.argv[2]} (random weights, real dimensions), {sys.argv[3]} threads, {what}")
bws = [r["bw_before"] for r in raw if r.get("bw_before")]
bw = statistics.median(bws) if bws else 0
print(f"\nmedians of {sys.argv[4]} interleaved rounds; read bandwidth right before the runs: median {bw:.1f} GB/s"
      f" (range {min(bws, default=0):.1f}-{max(bws, default=0):.1f})\n")
print("| type | runtime | how | prefill tok/s | decode tok/s | lowbit decode % of BW limit | lowbit prefill % of peak "
      "| decode vs llama.cpp | decode vs ik | prefill vs llama.cpp | prefill vs ik |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    same = {x["runtime"]: x for x in rows if x["type"] == r["type"] and x["runtime"] != "lowbit"}
    cells = [r["type"], r["runtime"], r["how"], f"{r['pp']:.1f}" if r["pp"] else "-", f"{r['tg']:.2f}"]
    if r["runtime"] == "lowbit":
        cells += [f"{r['pct_bw']:.0f}%" if r["pct_bw"] else "-",
                  f"{r['pct_peak']:.0f}% ({r['peak_kind']})" if r["pct_peak"] else "-"]
        for key in ("tg", "pp"):
            for a in ("llama.cpp", "ik_llama.cpp"):
                ok = a in same and r[key] and same[a][key]
                cells.append(f"{r[key] / same[a][key]:.2f}x" if ok else "-")
    else:
        cells += ["", "", "", "", "", ""]
    print("| " + " | ".join(cells) + " |")

# Per round: decode tok/s with the read bandwidth measured right before it, and lowbit's per-round ratios.
print("\nper round: decode tok/s (read bandwidth in GB/s right before that run); last columns: median over the rounds"
      " of lowbit's decode divided by each anchor's in the same round\n")
n_rounds = max(r.get("round", 1) for r in raw)
head = ["type", "runtime", "how"] + [f"round {i}" for i in range(1, n_rounds + 1)] + ["per-round vs llama.cpp", "per-round vs ik"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for (t, rt, how), rs in groups.items():
    by_round = {r.get("round", 1): r for r in rs}
    cells = [t, rt, how]
    for i in range(1, n_rounds + 1):
        r = by_round.get(i)
        cells.append(f"{r['tg']:.1f} ({r.get('bw_before', 0):.0f})" if r else "-")
    for a in ("llama.cpp", "ik_llama.cpp"):
        anchor = {r.get("round", 1): r for r in raw if r["type"] == t and r["runtime"] == a}
        ratios = [by_round[i]["tg"] / anchor[i]["tg"] for i in by_round if i in anchor]
        cells.append(f"{statistics.median(ratios):.2f}x" if rt == "lowbit" and ratios else "")
    print("| " + " | ".join(cells) + " |")
PY
