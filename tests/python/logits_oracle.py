#!/usr/bin/env python3
"""Oracle: lowbit's logits against a plain numpy forward pass of the same GGUF.

The GGUF is read with the `gguf` PyPI package (llama.cpp's own reader) and dequantized with its
`gguf.quants.dequantize`; the forward pass below is written here from the Llama definition and shares no
code with lowbit. Exit 0 = pass, 1 = fail, 77 = skipped (no model).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import gguf
    from gguf.quants import dequantize
except ImportError:  # pragma: no cover
    print("SKIP: the gguf package is not installed")
    sys.exit(77)

PROMPTS = [
    "Once upon a time",
    "The capital of France is Paris. The capital of Germany is",
    "def fibonacci(n):\n    if n < 2:\n        return n",
]


def default_model():
    env = os.environ.get("LOWBIT_MODEL")
    if env:
        return env
    cache = os.environ.get("LOWBIT_CACHE", os.path.expanduser("~/.cache/lowbit"))
    return os.path.join(cache, "SmolLM2-135M-Instruct.Q4_1.gguf")


class Weights:
    def __init__(self, path):
        self.reader = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in self.reader.tensors}

    def field(self, key):
        return self.reader.fields[key].contents()

    def get(self, name):
        t = self.tensors[name]
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        # ggml lists dims fastest-first; numpy wants them slowest-first.
        return w.reshape([int(d) for d in reversed(t.shape)])


def rms_norm(x, w, eps):
    x64 = x.astype(np.float64)
    return (x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps) * w).astype(np.float32)


def rope(x, pos, base, rot_dim):
    """llama.cpp 'normal' RoPE: rotate adjacent pairs (x[2i], x[2i+1]) by pos * base^(-2i/rot_dim)."""
    out = x.astype(np.float64).copy()
    i = np.arange(rot_dim // 2)
    ang = np.outer(pos, base ** (-2.0 * i / rot_dim))  # [T, rot_dim/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = out[..., 0:rot_dim:2].copy(), out[..., 1:rot_dim:2].copy()
    out[..., 0:rot_dim:2] = a * cos - b * sin
    out[..., 1:rot_dim:2] = a * sin + b * cos
    return out


def forward(w, ids):
    arch = w.field("general.architecture")
    n_layers = int(w.field(f"{arch}.block_count"))
    n_heads = int(w.field(f"{arch}.attention.head_count"))
    n_kv = int(w.field(f"{arch}.attention.head_count_kv"))
    eps = float(w.field(f"{arch}.attention.layer_norm_rms_epsilon"))
    base = float(w.field(f"{arch}.rope.freq_base"))
    emb = w.get("token_embd.weight")  # [vocab, dim]
    dim = emb.shape[1]
    hd = dim // n_heads
    rot = int(w.field(f"{arch}.rope.dimension_count")) if f"{arch}.rope.dimension_count" in w.reader.fields else hd
    T = len(ids)
    pos = np.arange(T)
    x = emb[ids].astype(np.float64)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(n_layers):
        p = f"blk.{l}."
        h = rms_norm(x, w.get(p + "attn_norm.weight"), eps)
        q = (h @ w.get(p + "attn_q.weight").T).reshape(T, n_heads, hd)
        k = (h @ w.get(p + "attn_k.weight").T).reshape(T, n_kv, hd)
        v = (h @ w.get(p + "attn_v.weight").T).reshape(T, n_kv, hd).astype(np.float64)
        q, k = rope(q, pos, base, rot), rope(k, pos, base, rot)
        group = n_heads // n_kv
        att = np.empty((T, n_heads, hd))
        for hh in range(n_heads):
            kv = hh // group
            s = q[:, hh, :] @ k[:, kv, :].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, hh, :] = s @ v[:, kv, :]
        x = x + att.reshape(T, dim) @ w.get(p + "attn_output.weight").T.astype(np.float64)
        h = rms_norm(x, w.get(p + "ffn_norm.weight"), eps).astype(np.float64)
        g = h @ w.get(p + "ffn_gate.weight").T
        u = h @ w.get(p + "ffn_up.weight").T
        x = x + ((g / (1.0 + np.exp(-g))) * u) @ w.get(p + "ffn_down.weight").T
    x = rms_norm(x, w.get("output_norm.weight"), eps).astype(np.float64)
    out = w.get("output.weight") if "output.weight" in w.tensors else emb
    return x @ out.T.astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lowbit", required=True, help="path of the lowbit executable")
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    if not os.path.exists(args.model):
        print(f"SKIP: model not found at {args.model} (run scripts/get-models.sh)")
        return 77
    w = Weights(args.model)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, prompt in enumerate(PROMPTS):
            out = os.path.join(tmp, f"logits{i}.f32")
            # --dtype f32: the weights dequantized to fp32, the same numbers the numpy reference multiplies.
            res = subprocess.run([args.lowbit, "logits", "-m", args.model, "-p", prompt, "-o", out, "-t", "2",
                                  "--dtype", "f32"],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                print(f"FAIL: lowbit logits exited {res.returncode}: {res.stderr.strip()}")
                return 1
            ids = [int(t) for t in res.stdout.split()]
            ours = np.fromfile(out, dtype=np.float32).reshape(len(ids), -1)
            ref = forward(w, ids)
            rel = float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))
            same_top = bool(np.all(ours.argmax(axis=1) == ref.argmax(axis=1)))
            worst = max(worst, rel)
            print(f"prompt {i}: {len(ids)} tokens, max relative error {rel:.2e}, same argmax at every position: {same_top}")
            if rel > args.tol or not same_top:
                print(f"FAIL: prompt {i} ({prompt!r}): relative error {rel:.2e} > {args.tol:g} or argmax differs")
                return 1
    print(f"PASS: max relative error {worst:.2e} <= {args.tol:g} over {len(PROMPTS)} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
